#!/bin/bash
# Issue 16, Java: OpenJDK 17's SunPKCS11 provider with enclave-acm-pkcs11.so from the build tree.
# KeyStore "PKCS11" lists each token's alias with its certificate chain, keytool -list -storetype PKCS11
# works, SHA256withRSA / RSASSA-PSS / SHA256withECDSA signatures made by the token verify with the
# certificate (JDK providers), and a JSSE HTTPS server with the PKCS#11 keystore is reached by curl over
# TLS 1.3 and TLS 1.2 with an RSA and a P-256 key (TLS 1.3 with RSA needs RSASSA-PSS, which SunPKCS11
# offers only when the token lists CKM_SHA256 as a digest).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
require_tool java javac keytool curl pkcs11-tool openssl
JAVA_SRC=$(cd "$(dirname "$0")/../integration/java" && pwd)/P11Consumer.java
[[ -f $JAVA_SRC ]] || fail "missing $JAVA_SRC"
export ENCLAVE_ACM_ADDRESS=$DATA_ADDR

start_token
provision rsa rsa2048
provision ec ec-p256
provision_keys multi 1 rsa3072 2 chain-leaf
ok "provisioned tokens rsa (RSA-2048), ec (P-256), multi (RSA-3072 + P-256 leaf with its chain)"

mkdir -p "$T/classes"
timeout 120 javac -d "$T/classes" "$JAVA_SRC" >"$LOGS/javac.log" 2>&1 || { cat "$LOGS/javac.log" >&2; fail "javac"; }
ok "javac compiled tests/integration/java/P11Consumer.java"

# slot_of LABEL: the slot id (decimal) pkcs11-tool -L shows for the token.
pkcs11-tool --module "$P11_MODULE" -L >"$T/L.out" 2>&1 || { cat "$T/L.out" >&2; fail "pkcs11-tool -L"; }
slot_of() {
        local hex
        hex=$(awk -v l="$1" '/^Slot [0-9]+ \(0x[0-9a-fA-F]+\)/ { s = $3 } $1 == "token" && $2 == "label" && $4 == l { gsub(/[():x]/, "", s); print s; exit }' "$T/L.out")
        [[ -n $hex ]] && echo $((16#$hex))
}
# The provider configuration the README documents: one provider instance per token.
java_cfg() { # LABEL
        local slot
        slot=$(slot_of "$1")
        [[ -n $slot ]] || { cat "$T/L.out" >&2; fail "no slot for token '$1'"; }
        printf 'name = eacm-%s\nlibrary = %s\nslot = %s\n' "$1" "$P11_MODULE" "$slot" >"$T/$1.cfg"
        echo "$T/$1.cfg"
}
JAVA=(timeout 120 java -cp "$T/classes")

# --- KeyStore, signatures ----------------------------------------------------------------------------
for label in rsa ec multi; do
        cfg=$(java_cfg "$label")
        "${JAVA[@]}" P11Consumer keystore "$cfg" "$T/pin" >"$LOGS/java-keystore-$label.log" 2>&1 ||
                { cat "$LOGS/java-keystore-$label.log" >&2; fail "Java KeyStore PKCS11 on token '$label'"; }
        cp "$LOGS/java-keystore-$label.log" "$T/ks.out"
        case $label in
        rsa)
                grep -q '^alias rsa key true chain 1$' "$T/ks.out" && grep -q 'rsa: RSASSA-PSS signed by the token' "$T/ks.out" &&
                        grep -q 'rsa: SHA256withRSA signed by the token' "$T/ks.out" ||
                        { cat "$T/ks.out" >&2; fail "token rsa: alias, SHA256withRSA and RSASSA-PSS"; } ;;
        ec)
                grep -q '^alias ec key true chain 1$' "$T/ks.out" && grep -q 'ec: SHA256withECDSA signed by the token' "$T/ks.out" ||
                        { cat "$T/ks.out" >&2; fail "token ec: alias and SHA256withECDSA"; } ;;
        multi)
                [[ $(grep -c '^alias .* key true chain' "$T/ks.out") -eq 2 ]] ||
                        { cat "$T/ks.out" >&2; fail "token multi: two key aliases"; }
                grep -Eq '^alias .* key true chain 2$' "$T/ks.out" && grep -q 'cert CN=enclave-acm test intermediate' "$T/ks.out" ||
                        { cat "$T/ks.out" >&2; fail "token multi: the chain-leaf alias has leaf + intermediate"; }
                [[ $(grep -c 'signed by the token, verified with the certificate' "$T/ks.out") -eq 3 ]] ||
                        { cat "$T/ks.out" >&2; fail "token multi: 3 signatures (RSA x2, ECDSA)"; } ;;
        esac
        ok "Java KeyStore PKCS11 on '$label': $(grep -c '^alias' "$T/ks.out") alias(es) with chains, every signature verified with the certificate"
done

cfg=$(java_cfg multi)
timeout 120 keytool -list -keystore NONE -storetype PKCS11 -addprovider SunPKCS11 -providerArg "$cfg" \
        -storepass:file "$T/pin" >"$LOGS/keytool.log" 2>&1 || { cat "$LOGS/keytool.log" >&2; fail "keytool -list -storetype PKCS11"; }
grep -q 'Your keystore contains 2 entries' "$LOGS/keytool.log" && [[ $(grep -c 'PrivateKeyEntry' "$LOGS/keytool.log") -eq 2 ]] ||
        { cat "$LOGS/keytool.log" >&2; fail "keytool lists the two PrivateKeyEntry aliases of token multi"; }
ok "keytool -list -storetype PKCS11 lists token multi's two private key entries"

# --- JSSE HTTPS server ---------------------------------------------------------------------------
java_server_stop() {
        [[ -n ${JAVA_PID-} ]] || return 0
        kill -TERM "$JAVA_PID" 2>/dev/null || true
        stop_pids 10 "$JAVA_PID"
        wait "$JAVA_PID" 2>/dev/null || true
        JAVA_PID=
}
STOP_HOOKS+=(java_server_stop)
for label in rsa ec; do
        name=rsa2048
        [[ $label == ec ]] && name=ec-p256
        cfg=$(java_cfg "$label")
        port=$(free_port)
        rm -f "$T/ready"
        timeout 200 java -cp "$T/classes" P11Consumer server "$cfg" "$T/pin" "$port" "$T/ready" 150 \
                >"$LOGS/java-server-$label.log" 2>&1 &
        JAVA_PID=$!
        BG_PIDS+=("$JAVA_PID")
        for ((i = 0; i < 600; i++)); do
                [[ -e $T/ready ]] && break
                alive "$JAVA_PID" || { cat "$LOGS/java-server-$label.log" >&2; fail "the Java server for '$label' exited"; }
                sleep 0.1
        done
        [[ -e $T/ready ]] || fail "the Java server for '$label' did not start within 60 s"
        for proto in 1.3 1.2; do
                opt=(--tlsv1.3)
                [[ $proto == 1.2 ]] && opt=(--tlsv1.2 --tls-max 1.2)
                curl_get "$port" "$name" "$T/body" "${opt[@]}" -v ||
                        { cat "$T/body.err" "$LOGS/java-server-$label.log" >&2; fail "curl TLS $proto to the Java server with the $name key"; }
                grep -q "^hello from java $label\$" "$T/body" || { cat "$T/body" >&2; fail "Java server answer"; }
                grep -q "SSL connection using TLSv$proto" "$T/body.err" || { cat "$T/body.err" >&2; fail "TLS $proto negotiated"; }
                ok "curl reached the Java HTTPS server with the $name key in the token over TLS $proto (certificate and hostname verified)"
        done
        check_tls "$port" "$name" tls1_3
        java_server_stop
done
finish
