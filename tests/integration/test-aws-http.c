/* aws/http-curl.c against an in-test TLS server on a unix socket, with certificates made at test time:
 * round trip (headers, body, Host, SNI, a SigV4 signature the verifier accepts), connection reuse,
 * untrusted CA, wrong name, oversized bodies, a stalled server and one that closes mid-response. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <curl/curl.h>

#include "aws/http.h"
#include "aws/kms.h"
#include "aws/sigv4.h"
#include "common/cleanup-ssl.h"
#include "common/secret.h"
#include "tests/lib/tap.h"

#define HOST    "kms.us-east-1.amazonaws.com"
#define BIG     200000
#define REQ_MAX 65536

/* ---- certificates ---- */

static EVP_PKEY *ca_key, *leaf_key;
static X509 *ca_cert, *leaf_cert, *other_cert;
static char tmpdir[64], ca_path[128], wrong_ca_path[128], twin_ca_path[128], sock_path[128];

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value) {
        X509V3_CTX ctx;
        X509_EXTENSION *ext;
        int ok;

        X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
        ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
        if (!ext)
                return -1;
        ok = X509_add_ext(cert, ext, -1);
        X509_EXTENSION_free(ext);
        return ok ? 0 : -1;
}

static X509 *make_cert(EVP_PKEY *key, const char *cn, const char *san, X509 *issuer, EVP_PKEY *issuer_key) {
        X509 *c = X509_new();
        X509_NAME *name = X509_NAME_new();
        static long serial = 1;

        if (!c || !name || !X509_set_version(c, 2) ||
            !ASN1_INTEGER_set(X509_get_serialNumber(c), serial++) ||
            !X509_gmtime_adj(X509_getm_notBefore(c), -3600) ||
            !X509_gmtime_adj(X509_getm_notAfter(c), 86400) ||
            !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *) cn, -1, -1, 0) ||
            !X509_set_subject_name(c, name) ||
            !X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer) : name) ||
            !X509_set_pubkey(c, key))
                goto fail;
        if (san ? add_ext(c, issuer, NID_subject_alt_name, san) < 0 ||
                            add_ext(c, issuer, NID_basic_constraints, "critical,CA:FALSE") < 0
                : add_ext(c, c, NID_basic_constraints, "critical,CA:TRUE") < 0 ||
                            add_ext(c, c, NID_key_usage, "critical,keyCertSign,cRLSign") < 0)
                goto fail;
        if (!X509_sign(c, issuer_key ? issuer_key : key, EVP_sha256()))
                goto fail;
        X509_NAME_free(name);
        return c;
fail:
        X509_NAME_free(name);
        X509_free(c);
        return NULL;
}

static int write_pem(const char *path, X509 *cert) {
        FILE *f = fopen(path, "we");
        int ok;

        if (!f)
                return -1;
        ok = PEM_write_X509(f, cert);
        return fclose(f) == 0 && ok ? 0 : -1;
}

static int setup_certs(void) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *wrong_key = NULL;
        _cleanup_(X509_freep) X509 *wrong_ca = NULL, *twin_ca = NULL;

        if (ca_cert)
                return 0;
        signal(SIGPIPE, SIG_IGN);
        snprintf(tmpdir, sizeof(tmpdir), "/tmp/test-aws-http.XXXXXX");
        if (!mkdtemp(tmpdir))
                return -1;
        snprintf(ca_path, sizeof(ca_path), "%s/ca.pem", tmpdir);
        snprintf(wrong_ca_path, sizeof(wrong_ca_path), "%s/wrong-ca.pem", tmpdir);
        snprintf(twin_ca_path, sizeof(twin_ca_path), "%s/twin-ca.pem", tmpdir);
        snprintf(sock_path, sizeof(sock_path), "%s/kms.sock", tmpdir);
        ca_key = EVP_EC_gen("P-256");
        leaf_key = EVP_EC_gen("P-256");
        wrong_key = EVP_EC_gen("P-256");
        if (!ca_key || !leaf_key || !wrong_key)
                return -1;
        ca_cert = make_cert(ca_key, "enclave-acm test CA", NULL, NULL, NULL);
        wrong_ca = make_cert(wrong_key, "another test CA", NULL, NULL, NULL);
        twin_ca = make_cert(wrong_key, "enclave-acm test CA", NULL, NULL, NULL); /* same name, other key */
        if (!ca_cert || !wrong_ca || !twin_ca || write_pem(twin_ca_path, twin_ca) < 0) {
                ERR_print_errors_fp(stdout);
                printf("# setup: CA certificates\n");
                return -1;
        }
        leaf_cert = make_cert(leaf_key, HOST, "DNS:" HOST, ca_cert, ca_key);
        other_cert = make_cert(leaf_key, "other.example.com", "DNS:other.example.com", ca_cert, ca_key);
        if (!leaf_cert || !other_cert || write_pem(ca_path, ca_cert) < 0 ||
            write_pem(wrong_ca_path, wrong_ca) < 0) {
                ERR_print_errors_fp(stdout);
                printf("# setup: %p %p\n", (void *) leaf_cert, (void *) other_cert);
                return -1;
        }
        return 0;
}

/* ---- server ---- */

enum mode { M_ECHO, M_BIG_LENGTH, M_BIG_CHUNKED, M_STALL, M_CLOSE_MID };

struct server {
        enum mode mode;
        int lfd;
        SSL_CTX *ctx;
        pthread_t thread;
        atomic_bool stop;
        atomic_int accepts, requests;
        pthread_mutex_t lock;
        char head[REQ_MAX + 1]; /* the last request, head and body */
        size_t head_len, body_off;
        char sni[256];
};

static bool wait_readable(struct server *s, SSL *ssl, int fd) {
        while (!atomic_load(&s->stop)) {
                struct pollfd p = { fd, POLLIN, 0 };
                if (SSL_pending(ssl) > 0 || poll(&p, 1, 50) > 0)
                        return true;
        }
        return false;
}

/* One request into buf: 1, 0 at EOF or stop. */
static int read_request(struct server *s, SSL *ssl, int fd, char *buf, size_t *ret_len, size_t *ret_body) {
        size_t len = 0;

        for (;;) {
                char *end;
                buf[len] = '\0';
                end = strstr(buf, "\r\n\r\n");
                if (end) {
                        const char *cl = strcasestr(buf, "\r\ncontent-length:");
                        size_t body = (size_t) (end + 4 - buf), want = cl ? strtoul(cl + 17, NULL, 10) : 0;
                        if (len >= body + want) {
                                *ret_len = body + want;
                                *ret_body = body;
                                return 1;
                        }
                }
                if (len >= REQ_MAX || !wait_readable(s, ssl, fd))
                        return 0;
                int n = SSL_read(ssl, buf + len, (int) (REQ_MAX - len));
                if (n <= 0)
                        return 0;
                len += (size_t) n;
        }
}

static void write_all(SSL *ssl, const char *p, size_t n) {
        while (n > 0) {
                int w = SSL_write(ssl, p, (int) MIN(n, (size_t) 16384));
                if (w <= 0)
                        return;
                p += w;
                n -= (size_t) w;
        }
}

static void serve(struct server *s, SSL *ssl, int fd) {
        static char buf[REQ_MAX + 1];
        char out[256];
        size_t len, body;

        while (read_request(s, ssl, fd, buf, &len, &body) > 0) {
                int n = atomic_fetch_add(&s->requests, 1) + 1;
                pthread_mutex_lock(&s->lock);
                memcpy(s->head, buf, len);
                s->head[len] = '\0';
                s->head_len = len;
                s->body_off = body;
                pthread_mutex_unlock(&s->lock);
                switch (s->mode) {
                case M_ECHO: {
                        char json[64];
                        int jl = snprintf(json, sizeof(json), "{\"request\":%d}", n);
                        int hl = snprintf(out, sizeof(out),
                                          "HTTP/1.1 200 OK\r\nContent-Type: " AWS_KMS_CONTENT_TYPE
                                          "\r\nContent-Length: %d\r\n\r\n%s",
                                          jl, json);
                        write_all(ssl, out, (size_t) hl);
                        break;
                }
                case M_BIG_LENGTH:
                case M_BIG_CHUNKED: {
                        static char chunk[4096];
                        bool chunked = s->mode == M_BIG_CHUNKED;
                        memset(chunk, 'a', sizeof(chunk));
                        int hl = snprintf(out, sizeof(out), "HTTP/1.1 200 OK\r\n%s\r\n\r\n",
                                          chunked ? "Transfer-Encoding: chunked" : "Content-Length: 200000");
                        write_all(ssl, out, (size_t) hl);
                        for (size_t sent = 0; sent < BIG && !atomic_load(&s->stop); sent += sizeof(chunk)) {
                                if (chunked)
                                        write_all(ssl, "1000\r\n", 6);
                                write_all(ssl, chunk, sizeof(chunk));
                                if (chunked)
                                        write_all(ssl, "\r\n", 2);
                        }
                        return;
                }
                case M_STALL:
                        /* answer nothing; hold the connection until the client gives up */
                        while (wait_readable(s, ssl, fd) && SSL_read(ssl, buf, 1) > 0)
                                ;
                        return;
                case M_CLOSE_MID:
                        write_all(ssl, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{\"KeyId\":", 51);
                        return; /* closed without close_notify */
                }
        }
}

static void *server_main(void *userdata) {
        struct server *s = userdata;

        while (!atomic_load(&s->stop)) {
                struct pollfd p = { s->lfd, POLLIN, 0 };
                const char *sni;
                SSL *ssl;
                int fd;

                if (poll(&p, 1, 50) <= 0)
                        continue;
                fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
                if (fd < 0)
                        continue;
                atomic_fetch_add(&s->accepts, 1);
                ssl = SSL_new(s->ctx);
                if (ssl && SSL_set_fd(ssl, fd) == 1 && SSL_accept(ssl) == 1) {
                        sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
                        pthread_mutex_lock(&s->lock);
                        snprintf(s->sni, sizeof(s->sni), "%s", sni ? sni : "");
                        pthread_mutex_unlock(&s->lock);
                        serve(s, ssl, fd);
                }
                SSL_free(ssl);
                close(fd);
        }
        return NULL;
}

static int server_start(struct server *s, enum mode mode, X509 *cert) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };

        *s = (struct server){ .mode = mode, .lfd = -1 };
        pthread_mutex_init(&s->lock, NULL);
        if (setup_certs() < 0)
                return -1;
        s->ctx = SSL_CTX_new(TLS_server_method());
        if (!s->ctx || SSL_CTX_use_certificate(s->ctx, cert) != 1 ||
            SSL_CTX_use_PrivateKey(s->ctx, leaf_key) != 1)
                return -1;
        (void) unlink(sock_path);
        if (strlen(sock_path) >= sizeof(sa.sun_path))
                return -1;
        memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1);
        s->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s->lfd < 0 || bind(s->lfd, (struct sockaddr *) &sa, sizeof(sa)) < 0 || listen(s->lfd, 8) < 0)
                return -1;
        return pthread_create(&s->thread, NULL, server_main, s) == 0 ? 0 : -1;
}

static void server_stop(struct server *s) {
        atomic_store(&s->stop, true);
        pthread_join(s->thread, NULL);
        close(s->lfd);
        SSL_CTX_free(s->ctx);
        pthread_mutex_destroy(&s->lock);
}

static enum aws_http_socket_mode sock_mode = AWS_HTTP_SOCKET_AUTO;

static int client(const char *ca, struct aws_http_conn **ret, struct aws_err *e) {
        char addr[160];
        /* valgrind slows the TLS handshake tenfold: the bounds grow, the assertions stay */
        int slow = getenv("ENCLAVE_ACM_UNDER_VALGRIND") ? 5 : 1;
        struct aws_http_opts o = { .address = addr,
                                   .host = HOST,
                                   .ca_file = ca,
                                   .connect_timeout_ms = 1000 * slow,
                                   .total_timeout_ms = 2000 * slow,
                                   .max_response = 64 * 1024,
                                   .socket_mode = sock_mode };

        snprintf(addr, sizeof(addr), "unix:path=%s", sock_path);
        return aws_http_conn_new(&o, ret, e);
}

static const struct aws_header kms_headers[] = {
        { "Content-Type", AWS_KMS_CONTENT_TYPE },
        { "X-Amz-Target", "TrentService.Decrypt" },
};
static const char body[] = "{\"CiphertextBlob\":\"AQID\"}";

/* A request and its error under one server mode: the expected negative errno. */
static int one_failure(enum mode mode, X509 *cert, const char *ca, struct aws_err *e) {
        _cleanup_(aws_http_conn_freep) struct aws_http_conn *c = NULL;
        struct aws_http_resp resp = {};
        struct aws_http_req req = { "/", kms_headers, 2, body, sizeof(body) - 1 };
        struct server s;
        int r;

        if (server_start(&s, mode, cert) < 0)
                return -EIO;
        r = client(ca, &c, e);
        if (r >= 0)
                r = aws_http_post(c, &req, &resp, e);
        if (r >= 0) {
                printf("# unexpected success: status %ld, %zu bytes\n", resp.status, resp.body_len);
                aws_http_resp_done(&resp);
                r = 0;
        } else
                printf("# %s\n", e->msg);
        aws_http_conn_free(TAKE_PTR(c));
        server_stop(&s);
        return r;
}

/* ---- tests ---- */

struct creds_db {
        struct secret_buf *secret, *token;
};

static int lookup(void *userdata, const char *akid, const struct secret_buf **ret_secret,
                  const struct secret_buf **ret_token) {
        struct creds_db *db = userdata;

        if (strcmp(akid, "ASIATEST") != 0)
                return -ENOKEY;
        *ret_secret = db->secret;
        *ret_token = db->token;
        return 0;
}

/* Splits the recorded head into headers for the verifier (edits it). */
static size_t parse_head(char *head, struct aws_header *h, size_t max, char **ret_target) {
        char *line = strstr(head, "\r\n"), *sp;
        size_t n = 0;

        *line = '\0';
        sp = strchr(head, ' ');
        *ret_target = sp + 1;
        *strchr(sp + 1, ' ') = '\0';
        for (line += 2; n < max && strncmp(line, "\r\n", 2) != 0;) {
                char *end = strstr(line, "\r\n"), *colon = strchr(line, ':');
                *end = '\0';
                *colon = '\0';
                h[n++] = (struct aws_header){ line, colon[1] == ' ' ? colon + 2 : colon + 1 };
                line = end + 2;
        }
        return n;
}

static void test_roundtrip(void) {
        _cleanup_secret_ struct secret_buf *secret = NULL, *token = NULL;
        _cleanup_(aws_http_conn_freep) struct aws_http_conn *c = NULL;
        _cleanup_(aws_sigv4_result_done) struct aws_sigv4_result sig = {};
        struct aws_header sign_h[] = { { "Host", HOST }, kms_headers[0], kms_headers[1] }, send_h[8],
                          got[32];
        struct aws_http_resp resp = {};
        struct aws_err e = {};
        struct server s;
        char *target, head[REQ_MAX + 1];
        size_t n_send = 0, n_got, body_off;
        enum aws_sigv4_verdict v = _AWS_SIGV4_VERDICT_INVALID;

        ASSERT_OK(secret_buf_dup("test/secret/key", 15, &secret));
        ASSERT_OK(secret_buf_dup("session-token-value", 19, &token));
        struct aws_credentials creds = { "ASIATEST", secret, token };
        struct aws_sigv4_req sq = { .method = "POST",
                                    .path = "/",
                                    .headers = sign_h,
                                    .n_headers = 3,
                                    .body = body,
                                    .body_len = sizeof(body) - 1,
                                    .creds = &creds,
                                    .region = "us-east-1",
                                    .service = "kms",
                                    .time = time(NULL),
                                    .flags = AWS_SIGV4_NORMALIZE_PATH | AWS_SIGV4_SIGN_BODY };
        ASSERT_OK(aws_sigv4_sign(&sq, &sig, &e));
        ASSERT_TRUE(setup_certs() == 0);
        send_h[n_send++] = kms_headers[0];
        send_h[n_send++] = kms_headers[1];
        for (size_t i = 0; i < sig.n_add; i++)
                send_h[n_send++] = sig.add[i];

        ASSERT_TRUE(server_start(&s, M_ECHO, leaf_cert) == 0);
        ASSERT_OK(client(ca_path, &c, &e));
        struct aws_http_req req = { "/", send_h, n_send, body, sizeof(body) - 1 };
        int r = aws_http_post(c, &req, &resp, &e);
        if (r < 0)
                printf("# %s\n", e.msg);
        pthread_mutex_lock(&s.lock);
        memcpy(head, s.head, s.head_len + 1);
        body_off = s.body_off;
        pthread_mutex_unlock(&s.lock);
        char sni[256];
        snprintf(sni, sizeof(sni), "%s", s.sni);
        server_stop(&s);
        ASSERT_OK(r);
        ASSERT_EQ(resp.status, 200);
        ASSERT_STREQ((char *) resp.body, "{\"request\":1}");
        aws_http_resp_done(&resp);

        ASSERT_STREQ(sni, HOST);
        ASSERT_TRUE(strncmp(head, "POST / HTTP/1.1\r\n", 17) == 0);
        ASSERT_TRUE(strstr(head, "\r\nHost: " HOST "\r\n"));
        ASSERT_TRUE(strstr(head, "\r\nX-Amz-Target: TrentService.Decrypt\r\n"));
        ASSERT_TRUE(strstr(head, "\r\nContent-Type: " AWS_KMS_CONTENT_TYPE "\r\n"));
        ASSERT_FALSE(strcasestr(head, "\r\nExpect:"));
        ASSERT_STREQ(head + body_off, body);

        /* what arrived is what was signed: the fake KMS's verifier accepts it */
        n_got = parse_head(head, got, ELEMENTSOF(got), &target);
        struct creds_db db = { secret, token };
        struct aws_sigv4_received rq = {
                "POST", target, got, n_got, head + body_off, strlen(head + body_off)
        };
        struct aws_sigv4_verify_params vp = { "us-east-1", "kms", time(NULL), 300, AWS_SIGV4_NORMALIZE_PATH,
                                              lookup,      &db };
        ASSERT_OK(aws_sigv4_verify(&rq, &vp, &v, &e));
        if (v != AWS_SIGV4_OK)
                printf("# %s: %s\n", aws_sigv4_verdict_to_string(v), e.msg);
        ASSERT_EQ(v, AWS_SIGV4_OK);
}

static void test_reuse(void) {
        _cleanup_(aws_http_conn_freep) struct aws_http_conn *c = NULL;
        struct aws_http_resp r1 = {}, r2 = {};
        struct aws_http_req req = { "/", kms_headers, 2, body, sizeof(body) - 1 };
        struct aws_err e = {};
        struct server s;
        int a, b;

        ASSERT_TRUE(server_start(&s, M_ECHO, leaf_cert) == 0);
        ASSERT_OK(client(ca_path, &c, &e));
        a = aws_http_post(c, &req, &r1, &e);
        b = a < 0 ? a : aws_http_post(c, &req, &r2, &e);
        server_stop(&s);
        if (b < 0)
                printf("# %s\n", e.msg);
        ASSERT_OK(a);
        ASSERT_OK(b);
        ASSERT_STREQ((char *) r1.body, "{\"request\":1}");
        ASSERT_STREQ((char *) r2.body, "{\"request\":2}");
        ASSERT_EQ(r1.new_connections, 1);
        ASSERT_EQ(r2.new_connections, 0);
        ASSERT_EQ(atomic_load(&s.accepts), 1);
        ASSERT_EQ(atomic_load(&s.requests), 2);
        aws_http_resp_done(&r1);
        aws_http_resp_done(&r2);
}

static void test_wrong_ca(void) {
        struct aws_err e = {};

        ASSERT_TRUE(setup_certs() == 0);
        ASSERT_ERR(one_failure(M_ECHO, leaf_cert, wrong_ca_path, &e), -EKEYREJECTED);
        ASSERT_TRUE(strstr(e.msg, "certificate"));
        /* an issuer of the same name with another key: the signature check fails */
        ASSERT_ERR(one_failure(M_ECHO, leaf_cert, twin_ca_path, &e), -EKEYREJECTED);
}

static void test_wrong_name(void) {
        struct aws_err e = {};

        ASSERT_TRUE(setup_certs() == 0);
        ASSERT_ERR(one_failure(M_ECHO, other_cert, ca_path, &e), -EKEYREJECTED);
        ASSERT_TRUE(strstr(e.msg, HOST));
}

static void test_oversize(void) {
        struct aws_err e = {};

        ASSERT_TRUE(setup_certs() == 0);
        ASSERT_ERR(one_failure(M_BIG_LENGTH, leaf_cert, ca_path, &e), -EMSGSIZE);
        ASSERT_TRUE(strstr(e.msg, "over 65536 bytes"));
        ASSERT_ERR(one_failure(M_BIG_CHUNKED, leaf_cert, ca_path, &e), -EMSGSIZE);
        ASSERT_TRUE(strstr(e.msg, "over 65536 bytes"));
}

static void test_stall(void) {
        struct aws_err e = {};

        ASSERT_TRUE(setup_certs() == 0);
        ASSERT_ERR(one_failure(M_STALL, leaf_cert, ca_path, &e), -ETIMEDOUT);
}

static void test_close_mid(void) {
        struct aws_err e = {};

        ASSERT_TRUE(setup_certs() == 0);
        ASSERT_ERR(one_failure(M_CLOSE_MID, leaf_cert, ca_path, &e), -ECONNRESET);
}

static void test_no_server(void) {
        _cleanup_(aws_http_conn_freep) struct aws_http_conn *c = NULL;
        struct aws_http_resp resp = {};
        struct aws_http_req req = { "/", kms_headers, 2, body, sizeof(body) - 1 };
        struct aws_err e = {};

        ASSERT_TRUE(setup_certs() == 0);
        (void) unlink(sock_path);
        ASSERT_OK(client(ca_path, &c, &e));
        ASSERT_ERR(aws_http_post(c, &req, &resp, &e), -ENOENT);
        ASSERT_TRUE(strstr(e.msg, "cannot connect"));
}

static void test_bad_input(void) {
        _cleanup_(aws_http_conn_freep) struct aws_http_conn *c = NULL;
        struct aws_http_opts o = { .address = "tcp:host=x", .host = HOST };
        struct aws_header bad_h[] = { { "X-Evil", "a\r\nInjected: 1" } };
        struct aws_http_req req = { "/", bad_h, 1, NULL, 0 };
        struct aws_http_resp resp = {};
        struct aws_err e = {};

        ASSERT_ERR(aws_http_conn_new(&o, &c, &e), -EINVAL);
        ASSERT_TRUE(strstr(e.msg, "address"));
        o.address = "unix:path=/nonexistent/x";
        o.host = "KMS.example.com";
        ASSERT_ERR(aws_http_conn_new(&o, &c, &e), -EINVAL);
        o.host = HOST;
        ASSERT_OK(aws_http_conn_new(&o, &c, &e));
        ASSERT_ERR(aws_http_post(c, &req, &resp, &e), -EINVAL);
        req.n_headers = 0;
        req.path = "/a b";
        ASSERT_ERR(aws_http_post(c, &req, &resp, &e), -EINVAL);
}

static void test_cleanup(void) {
        char path[160];

        ASSERT_TRUE(setup_certs() == 0);
        (void) unlink(sock_path);
        ASSERT_EQ(unlink(ca_path), 0);
        ASSERT_EQ(unlink(wrong_ca_path), 0);
        ASSERT_EQ(unlink(twin_ca_path), 0);
        snprintf(path, sizeof(path), "%s", tmpdir);
        ASSERT_EQ(rmdir(path), 0);
        X509_free(ca_cert);
        X509_free(leaf_cert);
        X509_free(other_cert);
        EVP_PKEY_free(ca_key);
        EVP_PKEY_free(leaf_key);
}

/* The same checks with libcurl connecting to the relay thread (how vsock works with libcurl 7.88). */
#define RELAY_VARIANT(fn)                          \
        static void fn##_relay(void) {             \
                sock_mode = AWS_HTTP_SOCKET_RELAY; \
                fn();                              \
                sock_mode = AWS_HTTP_SOCKET_AUTO;  \
        }
RELAY_VARIANT(test_roundtrip)
RELAY_VARIANT(test_reuse)
RELAY_VARIANT(test_wrong_name)
RELAY_VARIANT(test_oversize)
RELAY_VARIANT(test_stall)
RELAY_VARIANT(test_close_mid)
RELAY_VARIANT(test_no_server)

static void test_preconnected(void) {
        _cleanup_(aws_http_conn_freep) struct aws_http_conn *c = NULL;
        struct aws_err e = {};
        int r;

        ASSERT_TRUE(setup_certs() == 0);
        sock_mode = AWS_HTTP_SOCKET_PRECONNECTED;
        r = client(ca_path, &c, &e);
        sock_mode = AWS_HTTP_SOCKET_AUTO;
        if (curl_version_info(CURLVERSION_NOW)->version_num < 0x080000) {
                /* libcurl 7.88 would connect() the connected socket again (curl#10626): refused up front */
                ASSERT_ERR(r, -EOPNOTSUPP);
                ASSERT_TRUE(strstr(e.msg, "curl#10626"));
                return;
        }
        ASSERT_OK(r);
        c = aws_http_conn_free(c);
        sock_mode = AWS_HTTP_SOCKET_PRECONNECTED;
        test_roundtrip();
        sock_mode = AWS_HTTP_SOCKET_AUTO;
}

TAP_MAIN(TEST("/aws/http/roundtrip", test_roundtrip), TEST("/aws/http/reuse", test_reuse),
         TEST("/aws/http/relay/roundtrip", test_roundtrip_relay),
         TEST("/aws/http/relay/reuse", test_reuse_relay),
         TEST("/aws/http/relay/wrong-name", test_wrong_name_relay),
         TEST("/aws/http/relay/oversize", test_oversize_relay),
         TEST("/aws/http/relay/stall", test_stall_relay),
         TEST("/aws/http/relay/close-mid-response", test_close_mid_relay),
         TEST("/aws/http/relay/no-server", test_no_server_relay),
         TEST("/aws/http/preconnected", test_preconnected), TEST("/aws/http/wrong-ca", test_wrong_ca),
         TEST("/aws/http/wrong-name", test_wrong_name), TEST("/aws/http/oversize", test_oversize),
         TEST("/aws/http/stall", test_stall), TEST("/aws/http/close-mid-response", test_close_mid),
         TEST("/aws/http/no-server", test_no_server), TEST("/aws/http/bad-input", test_bad_input),
         TEST("/aws/http/cleanup", test_cleanup))
