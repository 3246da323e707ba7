// A Java consumer of enclave-acm-pkcs11.so through SunPKCS11 (OpenJDK 17), for tests/e2e/java.sh.
//
//   java P11Consumer.java keystore CONFIG PINFILE
//       KeyStore "PKCS11": every alias with its chain; per private key a signature made by the token
//       (SHA256withRSA and RSASSA-PSS for RSA, SHA256withECDSA for EC) verified with the certificate's
//       public key by the JDK's own providers, and rejected for other data. Prints one line per check.
//   java P11Consumer.java server CONFIG PINFILE PORT READYFILE SECONDS
//       A JSSE HTTPS server (com.sun.net.httpserver.HttpsServer) on 127.0.0.1:PORT, TLS 1.3 and 1.2, with
//       the PKCS#11 keystore as its key manager; answers "hello from java <alias>"; stops after SECONDS.
//
// The PIN is read from PINFILE (first line), never taken on the command line, and never printed.
import com.sun.net.httpserver.HttpsConfigurator;
import com.sun.net.httpserver.HttpsParameters;
import com.sun.net.httpserver.HttpsServer;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.Provider;
import java.security.Security;
import java.security.Signature;
import java.security.cert.Certificate;
import java.security.cert.X509Certificate;
import java.security.spec.MGF1ParameterSpec;
import java.security.spec.PSSParameterSpec;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLParameters;

public class P11Consumer {
    static int checks = 0;

    static void ok(String what) {
        checks++;
        System.out.println("ok " + checks + " - " + what);
    }

    static void fail(String what) {
        System.out.println("FAIL: " + what);
        System.exit(1);
    }

    static char[] readPin(String path) throws Exception {
        List<String> lines = Files.readAllLines(Path.of(path), StandardCharsets.UTF_8);
        if (lines.isEmpty())
            fail("empty PIN file " + path);
        return lines.get(0).toCharArray();
    }

    static Provider provider(String config) {
        Provider p = Security.getProvider("SunPKCS11");
        if (p == null)
            fail("no SunPKCS11 provider in this JDK");
        return p.configure(config);
    }

    static byte[] sign(Provider p11, String alg, PSSParameterSpec pss, PrivateKey key, byte[] data) throws Exception {
        Signature s = Signature.getInstance(alg, p11);
        if (pss != null)
            s.setParameter(pss);
        s.initSign(key);
        s.update(data);
        return s.sign();
    }

    /** Verification by the JDK's own providers (the PKCS#11 provider is not registered here). */
    static boolean verify(String alg, PSSParameterSpec pss, X509Certificate cert, byte[] data, byte[] sig)
            throws Exception {
        Signature v = Signature.getInstance(alg);
        if (v.getProvider().getName().startsWith("SunPKCS11"))
            fail("verification would go through the token");
        if (pss != null)
            v.setParameter(pss);
        v.initVerify(cert.getPublicKey());
        v.update(data);
        return v.verify(sig);
    }

    static void keystore(String config, String pinFile) throws Exception {
        Provider p11 = provider(config);
        char[] pin = readPin(pinFile);
        KeyStore ks = KeyStore.getInstance("PKCS11", p11);
        ks.load(null, pin);
        Arrays.fill(pin, '\0');
        List<String> aliases = Collections.list(ks.aliases());
        Collections.sort(aliases);
        if (aliases.isEmpty())
            fail("the PKCS11 keystore has no aliases");
        byte[] data = "signed by the token through SunPKCS11".getBytes(StandardCharsets.UTF_8);
        byte[] other = "other data".getBytes(StandardCharsets.UTF_8);
        PSSParameterSpec pss = new PSSParameterSpec("SHA-256", "MGF1", MGF1ParameterSpec.SHA256, 32, 1);
        for (String alias : aliases) {
            Certificate[] chain = ks.getCertificateChain(alias);
            boolean isKey = ks.isKeyEntry(alias);
            System.out.println("alias " + alias + " key " + isKey + " chain " + (chain == null ? 0 : chain.length));
            if (!isKey)
                continue;
            if (chain == null || chain.length == 0)
                fail("alias " + alias + ": no certificate chain");
            for (Certificate c : chain)
                System.out.println("  cert " + ((X509Certificate) c).getSubjectX500Principal().getName());
            X509Certificate leaf = (X509Certificate) chain[0];
            PrivateKey key = (PrivateKey) ks.getKey(alias, null);
            if (key == null)
                fail("alias " + alias + ": no private key");
            String[][] algs;
            if (key.getAlgorithm().equals("RSA"))
                algs = new String[][] {{"SHA256withRSA", ""}, {"RSASSA-PSS", "pss"}};
            else if (key.getAlgorithm().equals("EC"))
                algs = new String[][] {{"SHA256withECDSA", ""}};
            else {
                System.out.println("  key algorithm " + key.getAlgorithm() + ": not usable through SunPKCS11 17");
                continue;
            }
            for (String[] a : algs) {
                PSSParameterSpec spec = a[1].isEmpty() ? null : pss;
                byte[] sig = sign(p11, a[0], spec, key, data);
                if (!verify(a[0], spec, leaf, data, sig))
                    fail(alias + ": " + a[0] + " signature does not verify with the certificate");
                if (verify(a[0], spec, leaf, other, sig))
                    fail(alias + ": " + a[0] + " signature verifies for other data");
                ok(alias + ": " + a[0] + " signed by the token, verified with the certificate, rejected for other data");
            }
        }
        System.out.println("PASS: " + checks + " checks, " + aliases.size() + " aliases");
    }

    static void server(String config, String pinFile, int port, String readyFile, int seconds) throws Exception {
        Provider p11 = provider(config);
        Security.addProvider(p11); // JSSE finds the token's signatures through the registered provider
        char[] pin = readPin(pinFile);
        KeyStore ks = KeyStore.getInstance("PKCS11", p11);
        ks.load(null, pin);
        KeyManagerFactory kmf = KeyManagerFactory.getInstance("SunX509");
        kmf.init(ks, pin);
        Arrays.fill(pin, '\0');
        String alias = null;
        for (String a : Collections.list(ks.aliases()))
            if (ks.isKeyEntry(a))
                alias = a;
        if (alias == null)
            fail("no key entry in the PKCS11 keystore");
        SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(kmf.getKeyManagers(), null, null);
        HttpsServer srv = HttpsServer.create(new InetSocketAddress("127.0.0.1", port), 16);
        srv.setHttpsConfigurator(new HttpsConfigurator(ctx) {
            @Override
            public void configure(HttpsParameters params) {
                SSLParameters sp = getSSLContext().getDefaultSSLParameters();
                sp.setProtocols(new String[] {"TLSv1.3", "TLSv1.2"});
                params.setSSLParameters(sp);
            }
        });
        final byte[] body = ("hello from java " + alias + "\n").getBytes(StandardCharsets.UTF_8);
        srv.createContext("/", ex -> {
            ex.sendResponseHeaders(200, body.length);
            try (OutputStream os = ex.getResponseBody()) {
                os.write(body);
            }
        });
        srv.start();
        Files.writeString(Path.of(readyFile), "ready\n");
        System.out.println("serving alias " + alias + " on 127.0.0.1:" + port);
        Thread.sleep(seconds * 1000L);
        srv.stop(0);
        System.exit(0);
    }

    public static void main(String[] args) throws Exception {
        if (args.length == 3 && args[0].equals("keystore"))
            keystore(args[1], args[2]);
        else if (args.length == 6 && args[0].equals("server"))
            server(args[1], args[2], Integer.parseInt(args[3]), args[4], Integer.parseInt(args[5]));
        else {
            System.out.println("usage: P11Consumer keystore CONFIG PINFILE | server CONFIG PINFILE PORT READYFILE SECONDS");
            System.exit(2);
        }
    }
}
