/* tests/fakes/fake-kms as a real process on a unix socket, driven with the real libraries and without
 * enclave-token: a document from attest's test CA carrying an RSA-2048 SPKI, a Decrypt request from
 * aws/kms signed with aws/sigv4, POSTed with aws/http (libcurl, TLS to the fake's CA), the answer opened
 * with enclave-token/cms.h. Then every refusal, every fault mode and the connection statistics; and the
 * fake's own HTTP head parser and blob format on their own. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>

#include "attest/attest-build.h"
#include "aws/http.h"
#include "aws/kms.h"
#include "aws/sigv4.h"
#include "common/cleanup-ssl.h"
#include "common/json.h"
#include "common/secret.h"
#include "enclave-token/cms.h"
#include "tests/fakes/fake-kms-blob.h"
#include "tests/fakes/fake-kms-fault.h"
#include "tests/fakes/fake-kms-http.h"
#include "tests/lib/data.h"
#include "tests/lib/tap.h"

#define HOST   "kms.us-east-1.amazonaws.com"
#define REGION "us-east-1"
#define AKID   "ASIAFAKEKMSTEST"
#define SECRET "fake/secret/access/key+value"
#define TOKEN  "fake-session-token//value=="
#define KEY_ID "1234abcd-12ab-34cd-56ef-1234567890ab"
#define ARN    "arn:aws:kms:" REGION ":111122223333:key/" KEY_ID

static const char *fake_kms;
static char tmpdir[64], sock_path[128], ca_path[128], root_path[128], mk_path[128], blob_path[128],
        pt_path[128], fault_path[128], stats_path[128];
static pid_t server_pid = -1;
static bool setup_done, setup_ok;
static struct attest_test_ca *ca, *other_ca;
static uint8_t pcr_bytes[16][48];
static uint8_t *plaintext, *blob;
static size_t plaintext_len, blob_len;
static int slow = 1; /* valgrind: bounds grow, assertions stay */
/* The server the client helpers talk to, and the credentials they sign with. */
static const char *cur_sock = sock_path, *cur_ca = ca_path;
static const char *cur_akid = AKID, *cur_secret = SECRET, *cur_token = TOKEN;
static int64_t cur_skew; /* seconds added to the signing time of every request */

/* ---- processes and files ---------------------------------------------------------------------- */

static int run(char *const argv[]) {
        pid_t pid = fork();
        int status;

        if (pid < 0)
                return -errno;
        if (pid == 0) {
                execv(argv[0], argv);
                _exit(127);
        }
        if (waitpid(pid, &status, 0) < 0)
                return -errno;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static int read_all(const char *path, uint8_t **ret, size_t *ret_len) {
        FILE *f = fopen(path, "re");
        uint8_t *buf;
        long n;

        if (!f)
                return -errno;
        if (fseek(f, 0, SEEK_END) < 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) < 0 ||
            !(buf = malloc((size_t) n + 1))) {
                fclose(f);
                return -EIO;
        }
        if (fread(buf, 1, (size_t) n, f) != (size_t) n) {
                free(buf);
                fclose(f);
                return -EIO;
        }
        fclose(f);
        buf[n] = 0;
        *ret = buf;
        *ret_len = (size_t) n;
        return 0;
}

static int write_str(const char *path, const char *s) {
        FILE *f = fopen(path, "we");
        int ok;

        if (!f)
                return -errno;
        ok = fputs(s, f) >= 0;
        return fclose(f) == 0 && ok ? 0 : -EIO;
}

static int write_root(const char *path, const struct attest_test_ca *c) {
        const unsigned char *p = c->root_der;
        _cleanup_(X509_freep) X509 *x = d2i_X509(NULL, &p, (long) c->root_len);
        FILE *f;
        int ok;

        if (!x || !(f = fopen(path, "we")))
                return -EIO;
        ok = PEM_write_X509(f, x);
        return fclose(f) == 0 && ok ? 0 : -EIO;
}

static void hex(const uint8_t *p, size_t n, char *out) {
        for (size_t i = 0; i < n; i++)
                sprintf(out + 2 * i, "%02X", p[i]); /* upper case; the document holds bytes */
}

/* Starts fake-kms with argv and waits for its CA file (written once it listens). */
static int spawn_server(char *const argv[], const char *ca_file, pid_t *ret_pid) {
        pid_t pid = fork();
        int fd;

        if (pid < 0)
                return -errno;
        if (pid == 0) {
                fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                if (fd >= 0)
                        dup2(fd, STDIN_FILENO);
                dup2(STDERR_FILENO, STDOUT_FILENO); /* stdout is TAP */
                execv(argv[0], argv);
                _exit(127);
        }
        *ret_pid = pid;
        for (int i = 0; i < 3000 * slow; i++) {
                int status;
                if (access(ca_file, R_OK) == 0)
                        return 0;
                if (waitpid(pid, &status, WNOHANG) == pid) {
                        printf("# fake-kms serve exited (status 0x%x) before listening\n", status);
                        *ret_pid = -1;
                        return -ECHILD;
                }
                usleep(10000);
        }
        printf("# fake-kms serve did not write %s\n", ca_file);
        return -ETIMEDOUT;
}

static int start_server(void) {
        char policy[8 + 96 + 1], policy3[8 + 96 + 1], creds[128], listen[160];

        strcpy(policy, "0=");
        hex(pcr_bytes[0], 48, policy + 2);
        strcpy(policy3, "3=");
        hex(pcr_bytes[3], 48, policy3 + 2);
        for (char *p = policy3; *p; p++)
                *p = (char) tolower((unsigned char) *p);
        snprintf(creds, sizeof(creds), "%s:%s:%s", AKID, SECRET, TOKEN);
        snprintf(listen, sizeof(listen), "unix:path=%s", sock_path);
        char *argv[] = { (char *) fake_kms,
                         "serve",
                         "--listen",
                         listen,
                         "--ca-out",
                         ca_path,
                         "--credentials",
                         creds,
                         "--region",
                         REGION,
                         "--attestation-root",
                         root_path,
                         "--master-key",
                         mk_path,
                         "--policy-pcr",
                         policy,
                         "--policy-pcr",
                         policy3,
                         "--fault-file",
                         fault_path,
                         "--stats",
                         stats_path,
                         NULL };
        return spawn_server(argv, ca_path, &server_pid);
}

static bool setup(void) {
        _cleanup_free_ char *pem = NULL;
        size_t pem_len = 0;

        if (setup_done)
                return setup_ok;
        setup_done = true;
        signal(SIGPIPE, SIG_IGN);
        if (getenv("ENCLAVE_ACM_UNDER_VALGRIND"))
                slow = 5;
        fake_kms = getenv("FAKE_KMS");
        if (!fake_kms || access(fake_kms, X_OK) < 0) {
                printf("# FAKE_KMS (the fake-kms program) is not set or not executable: '%s'\n",
                       fake_kms ? fake_kms : "");
                return false;
        }
        /* the plaintext: a PEM private key, as a File source's encrypted_key holds */
        pem = test_data_load("rsa2048.key.pem", &pem_len);
        if (!pem || pem_len == 0) {
                printf("# tests/data/rsa2048.key.pem is missing (TEST_DATA)\n");
                return false;
        }
        snprintf(tmpdir, sizeof(tmpdir), "/tmp/test-fake-kms.XXXXXX");
        if (!mkdtemp(tmpdir))
                return false;
        snprintf(sock_path, sizeof(sock_path), "%s/kms.sock", tmpdir);
        snprintf(ca_path, sizeof(ca_path), "%s/kms-ca.pem", tmpdir);
        snprintf(root_path, sizeof(root_path), "%s/nsm-root.pem", tmpdir);
        snprintf(mk_path, sizeof(mk_path), "%s/master.key", tmpdir);
        snprintf(blob_path, sizeof(blob_path), "%s/key.kms", tmpdir);
        snprintf(pt_path, sizeof(pt_path), "%s/key.pem", tmpdir);
        snprintf(fault_path, sizeof(fault_path), "%s/fault", tmpdir);
        snprintf(stats_path, sizeof(stats_path), "%s/stats.json", tmpdir);
        if (write_str(pt_path, pem) < 0 || read_all(pt_path, &plaintext, &plaintext_len) < 0)
                return false;

        char *keygen[] = { (char *) fake_kms, "keygen", "--master-key", mk_path, NULL };
        char *encrypt[] = { (char *) fake_kms, "encrypt", "--master-key", mk_path, "--key-id", KEY_ID, "-i",
                            pt_path,           "-o",      blob_path,      NULL };
        struct stat st;
        if (run(keygen) != 0 || stat(mk_path, &st) < 0 || (st.st_mode & 0777) != 0600 || st.st_size != 32) {
                printf("# fake-kms keygen did not make a 0600 32-byte key\n");
                return false;
        }
        if (run(encrypt) != 0 || read_all(blob_path, &blob, &blob_len) < 0) {
                printf("# fake-kms encrypt failed\n");
                return false;
        }

        time_t now = time(NULL);
        if (attest_test_ca_new(now - 3600, now + 3600, &ca) < 0 ||
            attest_test_ca_new(now - 3600, now + 3600, &other_ca) < 0 || write_root(root_path, ca) < 0)
                return false;
        for (unsigned i = 0; i < 16; i++)
                memset(pcr_bytes[i], 0xa0 + (int) i, sizeof(pcr_bytes[i]));
        if (write_str(fault_path, "none\n") < 0 || start_server() < 0)
                return false;
        setup_ok = true;
        return true;
}

static int rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw) {
        (void) st;
        (void) type;
        (void) ftw;
        return remove(path) < 0 ? -1 : 0;
}

static void teardown(void) {
        if (server_pid > 0) {
                kill(server_pid, SIGTERM);
                waitpid(server_pid, NULL, 0);
        }
        if (tmpdir[0])
                (void) nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        attest_test_ca_free(ca);
        attest_test_ca_free(other_ca);
        free(plaintext);
        free(blob);
}

/* ---- documents -------------------------------------------------------------------------------- */

/* A document of c for spki, its PCRs pcr_bytes but PCR flip (-1: none) with its last bit flipped. */
static int make_doc(const struct attest_test_ca *c, int flip, const uint8_t *spki, size_t spki_len,
                    uint8_t **ret, size_t *ret_len) {
        struct attest_pcr_value pcrs[16];
        struct attest_blob bundle[2] = { { c->root_der, c->root_len }, { c->inter_der, c->inter_len } };
        uint8_t flipped[48];

        for (unsigned i = 0; i < 16; i++)
                pcrs[i] = (struct attest_pcr_value){ i, pcr_bytes[i], 48 };
        if (flip >= 0 && flip < 16) {
                memcpy(flipped, pcr_bytes[flip], sizeof(flipped));
                flipped[47] ^= 1;
                pcrs[flip].ptr = flipped;
        }
        struct attest_build b = {
                .module_id = "i-0123456789abcdef0-enc0123456789abcdef",
                .timestamp_ms = (uint64_t) time(NULL) * 1000,
                .pcrs = pcrs,
                .n_pcrs = 16,
                .certificate = { c->leaf_der, c->leaf_len },
                .cabundle = bundle,
                .n_cabundle = 2,
                .public_key = { spki ? ATTEST_OPT_BYTES : ATTEST_OPT_ABSENT, spki, spki_len },
        };
        return attest_doc_sign(&b, c->leaf_key, ret, ret_len);
}

/* A recipient: the RSA-2048 key pair and a good document for it. */
struct recipient {
        EVP_PKEY *key;
        uint8_t *spki, *doc;
        size_t spki_len, doc_len;
};

static void recipient_done(struct recipient *r) {
        EVP_PKEY_free(r->key);
        free(r->spki);
        free(r->doc);
        *r = (struct recipient){};
}

static int recipient_new(struct recipient *r) {
        int k;

        *r = (struct recipient){};
        k = nsm_kms_keypair_new(&r->key, &r->spki, &r->spki_len);
        if (k >= 0)
                k = make_doc(ca, -1, r->spki, r->spki_len, &r->doc, &r->doc_len);
        return k;
}

/* ---- the client ------------------------------------------------------------------------------- */

static int client(int total_ms, struct aws_http_conn **ret, struct aws_err *e) {
        char addr[160];
        struct aws_http_opts o = { .address = addr,
                                   .host = HOST,
                                   .ca_file = cur_ca,
                                   .connect_timeout_ms = 3000 * slow,
                                   .total_timeout_ms = total_ms ? total_ms : 20000 * slow,
                                   .max_response = 64 * 1024 };

        snprintf(addr, sizeof(addr), "unix:path=%s", cur_sock);
        return aws_http_conn_new(&o, ret, e);
}

struct call {
        enum aws_kms_op op;
        const uint8_t *blob; /* Decrypt; NULL: the file fake-kms encrypt wrote */
        size_t blob_len;
        const uint8_t *doc;
        size_t doc_len;
        const char *body;                  /* instead of the built one */
        const char *akid, *secret, *token; /* NULL: the right ones; token "" sends none */
        int64_t skew;                      /* seconds added to the signing time */
};

static int kms_post(struct aws_http_conn *c, const struct call *k, struct aws_http_resp *ret,
                    struct aws_err *e) {
        _cleanup_secret_ struct secret_buf *secret = NULL, *token = NULL;
        _cleanup_(aws_sigv4_result_done) struct aws_sigv4_result sig = {};
        _cleanup_free_ char *body = NULL;
        struct aws_header kh[2], sign_h[3], send_h[8];
        size_t len = 0, n = 0;
        int r;

        if (k->body) {
                body = strdup(k->body);
                len = body ? strlen(body) : 0;
        } else if (k->op == AWS_KMS_DECRYPT) {
                struct aws_kms_decrypt_req q = { .ciphertext = k->blob ? k->blob : blob,
                                                 .ciphertext_len = k->blob ? k->blob_len : blob_len,
                                                 .attestation_doc = k->doc,
                                                 .attestation_doc_len = k->doc_len };
                r = aws_kms_decrypt_request_build(&q, &body, &len, e);
                if (r < 0)
                        return r;
        } else {
                struct aws_kms_random_req q = { .number_of_bytes = 32,
                                                .attestation_doc = k->doc,
                                                .attestation_doc_len = k->doc_len };
                r = aws_kms_random_request_build(&q, &body, &len, e);
                if (r < 0)
                        return r;
        }
        if (!body)
                return -ENOMEM;
        const char *sec = k->secret ? k->secret : cur_secret, *tok = k->token ? k->token : cur_token;
        if ((r = secret_buf_dup(sec, strlen(sec), &secret)) < 0 ||
            (tok[0] && (r = secret_buf_dup(tok, strlen(tok), &token)) < 0))
                return r;
        if ((r = aws_kms_headers(k->op, kh)) < 0)
                return r;
        sign_h[0] = (struct aws_header){ "Host", HOST };
        sign_h[1] = kh[0];
        sign_h[2] = kh[1];
        struct aws_credentials creds = { k->akid ? k->akid : cur_akid, secret, token };
        struct aws_sigv4_req sq = { .method = "POST",
                                    .path = "/",
                                    .headers = sign_h,
                                    .n_headers = 3,
                                    .body = body,
                                    .body_len = len,
                                    .creds = &creds,
                                    .region = REGION,
                                    .service = "kms",
                                    .time = time(NULL) + cur_skew + k->skew,
                                    .flags = AWS_SIGV4_NORMALIZE_PATH | AWS_SIGV4_SIGN_BODY };
        r = aws_sigv4_sign(&sq, &sig, e);
        if (r < 0)
                return r;
        send_h[n++] = kh[0];
        send_h[n++] = kh[1];
        for (size_t i = 0; i < sig.n_add; i++)
                send_h[n++] = sig.add[i];
        struct aws_http_req req = { "/", send_h, n, body, len };
        return aws_http_post(c, &req, ret, e);
}

/* One call on a new connection that must fail with want (status want_status, the message holding
 * msg_part when not NULL). 0 when it did, -1 with a TAP comment otherwise. */
static int expect_error(const struct call *k, enum aws_kms_error want, long want_status,
                        const char *msg_part) {
        _cleanup_(aws_http_conn_freep) struct aws_http_conn *c = NULL;
        struct aws_http_resp resp = {};
        struct aws_kms_error_info info = {};
        struct aws_err e = {};
        int r;

        r = client(0, &c, &e);
        if (r >= 0)
                r = kms_post(c, k, &resp, &e);
        if (r < 0) {
                printf("# transport error %d: %s\n", r, e.msg);
                return -1;
        }
        r = aws_kms_error_parse(resp.body, resp.body_len, &info, &e);
        printf("# %ld %s: %s\n", resp.status, info.type_name, info.message);
        if (r < 0 || resp.status != want_status || info.type != want ||
            (msg_part && !strstr(info.message, msg_part))) {
                printf("# expected %ld %s%s%s; body: %.300s\n", want_status, aws_kms_error_to_string(want),
                       msg_part ? " with " : "", msg_part ? msg_part : "", (char *) resp.body);
                aws_http_resp_done(&resp);
                return -1;
        }
        aws_http_resp_done(&resp);
        return 0;
}

/* A Decrypt that must succeed on c; the opened plaintext compared with the one encrypted. */
static int expect_plaintext_blob(struct aws_http_conn *c, const struct recipient *rc, const uint8_t *b,
                                 size_t b_len, long *ret_new_conns) {
        _cleanup_secret_ struct secret_buf *pt = NULL;
        _cleanup_free_ char *why = NULL;
        struct call k = {
                .op = AWS_KMS_DECRYPT, .blob = b, .blob_len = b_len, .doc = rc->doc, .doc_len = rc->doc_len
        };
        struct aws_kms_decrypt_resp dr = {};
        struct aws_http_resp resp = {};
        struct cms_envelope_info info;
        uint8_t cfr[AWS_KMS_BLOB_MAX], ski[32];
        struct aws_err e = {};
        int r;

        r = kms_post(c, &k, &resp, &e);
        if (r < 0) {
                printf("# transport error %d: %s\n", r, e.msg);
                return -1;
        }
        if (ret_new_conns)
                *ret_new_conns = resp.new_connections;
        r = resp.status == 200
                    ? aws_kms_decrypt_response_parse(resp.body, resp.body_len, cfr, sizeof(cfr), &dr, &e)
                    : -EBADMSG;
        if (r < 0) {
                printf("# status %ld, %s; body: %.300s\n", resp.status, e.msg, (char *) resp.body);
                aws_http_resp_done(&resp);
                return -1;
        }
        aws_http_resp_done(&resp);
        if (strcmp(dr.key_id, ARN) != 0 || strcmp(dr.encryption_algorithm, "SYMMETRIC_DEFAULT") != 0) {
                printf("# KeyId '%s', EncryptionAlgorithm '%s'\n", dr.key_id, dr.encryption_algorithm);
                return -1;
        }
        /* KMS's shape: BER streamed, version 2, rid the SHA-256 of the recipient's SPKI */
        r = cms_envelope_parse(cfr, dr.cfr_len, &info, &why);
        SHA256(rc->spki, rc->spki_len, ski);
        if (r < 0 || cfr[1] != 0x80 || info.version != 2 || info.ktri_version != 2 || info.rid_len != 32 ||
            memcmp(info.rid, ski, 32) != 0 || !info.ciphertext_constructed) {
                printf("# envelope shape: %d %s, version %u/%u, rid %zu bytes\n", r, why ? why : "",
                       info.version, info.ktri_version, info.rid_len);
                return -1;
        }
        r = cms_envelope_open(cfr, dr.cfr_len, rc->key, &pt, &why);
        if (r < 0) {
                printf("# cms_envelope_open: %d %s\n", r, why ? why : "");
                return -1;
        }
        if (pt->len != plaintext_len || memcmp(pt->data, plaintext, plaintext_len) != 0) {
                printf("# plaintext differs: %zu bytes, expected %zu\n", pt->len, plaintext_len);
                return -1;
        }
        return 0;
}

static int expect_plaintext(struct aws_http_conn *c, const struct recipient *rc, long *ret_new_conns) {
        return expect_plaintext_blob(c, rc, NULL, 0, ret_new_conns);
}

struct stats {
        uint64_t connections, handshakes, handshake_failures, requests, documents;
};

static int read_stats(struct stats *s) {
        _cleanup_(json_reader_done) struct json_reader rd = {};
        _cleanup_free_ uint8_t *text = NULL;
        const char *key;
        size_t len;
        int r;

        *s = (struct stats){};
        if ((r = read_all(stats_path, &text, &len)) < 0 ||
            (r = json_reader_init(&rd, text, len, NULL, NULL)) < 0 || (r = json_object_begin(&rd)) < 0)
                return r;
        while ((r = json_object_next(&rd, &key)) > 0) {
                uint64_t *slot = !strcmp(key, "connections")          ? &s->connections
                                 : !strcmp(key, "handshakes")         ? &s->handshakes
                                 : !strcmp(key, "handshake_failures") ? &s->handshake_failures
                                 : !strcmp(key, "requests")           ? &s->requests
                                 : !strcmp(key, "documents")          ? &s->documents
                                                                      : NULL;
                r = slot ? json_read_uint64(&rd, slot) : json_skip(&rd);
                if (r < 0)
                        return r;
        }
        return r;
}

/* ---- tests: the loop -------------------------------------------------------------------------- */

static void test_decrypt_roundtrip(void) {
        _cleanup_(aws_http_conn_freep) struct aws_http_conn *c = NULL;
        _cleanup_(recipient_done) struct recipient rc = {};
        struct aws_err e = {};

        ASSERT_TRUE(setup());
        ASSERT_OK(recipient_new(&rc));
        ASSERT_OK(client(0, &c, &e));
        ASSERT_OK(expect_plaintext(c, &rc, NULL));
}

static void test_generate_random(void) {
        _cleanup_(aws_http_conn_freep) struct aws_http_conn *c = NULL;
        _cleanup_(recipient_done) struct recipient rc = {};
        _cleanup_secret_ struct secret_buf *a = NULL, *b = NULL;
        _cleanup_free_ char *why = NULL;
        struct aws_http_resp resp = {};
        uint8_t cfr[AWS_KMS_BLOB_MAX];
        struct aws_err e = {};
        int n;

        ASSERT_TRUE(setup());
        ASSERT_OK(recipient_new(&rc));
        ASSERT_OK(client(0, &c, &e));
        struct call k = { .op = AWS_KMS_GENERATE_RANDOM, .doc = rc.doc, .doc_len = rc.doc_len };
        for (int i = 0; i < 2; i++) {
                ASSERT_OK(kms_post(c, &k, &resp, &e));
                ASSERT_EQ(resp.status, 200);
                n = aws_kms_random_response_parse(resp.body, resp.body_len, cfr, sizeof(cfr), &e);
                aws_http_resp_done(&resp);
                ASSERT_OK(n);
                ASSERT_OK(cms_envelope_open(cfr, (size_t) n, rc.key, i ? &b : &a, &why));
        }
        ASSERT_EQ(a->len, 32);
        ASSERT_EQ(b->len, 32);
        ASSERT_TRUE(memcmp(a->data, b->data, 32) != 0);
}

/* One round: one connection, one TLS handshake, one document for two Decrypts. */
static void test_keep_alive_stats(void) {
        _cleanup_(aws_http_conn_freep) struct aws_http_conn *c = NULL;
        _cleanup_(recipient_done) struct recipient rc = {};
        struct stats before, after;
        struct aws_err e = {};
        long n1 = -1, n2 = -1;

        ASSERT_TRUE(setup());
        ASSERT_OK(recipient_new(&rc));
        ASSERT_OK(read_stats(&before));
        ASSERT_OK(client(0, &c, &e));
        ASSERT_OK(expect_plaintext(c, &rc, &n1));
        ASSERT_OK(expect_plaintext(c, &rc, &n2));
        ASSERT_EQ(n1, 1);
        ASSERT_EQ(n2, 0);
        ASSERT_OK(read_stats(&after));
        ASSERT_EQ(after.connections - before.connections, 1);
        ASSERT_EQ(after.handshakes - before.handshakes, 1);
        ASSERT_EQ(after.requests - before.requests, 2);
        ASSERT_EQ(after.documents - before.documents, 1);
}

/* ---- tests: refusals -------------------------------------------------------------------------- */

static void test_wrong_secret(void) {
        _cleanup_(recipient_done) struct recipient rc = {};

        ASSERT_TRUE(setup());
        ASSERT_OK(recipient_new(&rc));
        struct call k = {
                .op = AWS_KMS_DECRYPT, .doc = rc.doc, .doc_len = rc.doc_len, .secret = "not/the/secret"
        };
        ASSERT_OK(expect_error(&k, AWS_KMS_ERR_INVALID_SIGNATURE, 400, "signature"));
}

static void test_missing_token(void) {
        _cleanup_(recipient_done) struct recipient rc = {};

        ASSERT_TRUE(setup());
        ASSERT_OK(recipient_new(&rc));
        struct call k = { .op = AWS_KMS_DECRYPT, .doc = rc.doc, .doc_len = rc.doc_len, .token = "" };
        ASSERT_OK(expect_error(&k, AWS_KMS_ERR_UNRECOGNIZED_CLIENT, 400, "security token"));
        k.token = "another-session-token";
        ASSERT_OK(expect_error(&k, AWS_KMS_ERR_UNRECOGNIZED_CLIENT, 400, "security token"));
}

static void test_unknown_akid(void) {
        _cleanup_(recipient_done) struct recipient rc = {};

        ASSERT_TRUE(setup());
        ASSERT_OK(recipient_new(&rc));
        struct call k = { .op = AWS_KMS_DECRYPT, .doc = rc.doc, .doc_len = rc.doc_len, .akid = "ASIAOTHER" };
        ASSERT_OK(expect_error(&k, AWS_KMS_ERR_UNRECOGNIZED_CLIENT, 400, NULL));
}

static void test_skewed_clock(void) {
        _cleanup_(recipient_done) struct recipient rc = {};

        ASSERT_TRUE(setup());
        ASSERT_OK(recipient_new(&rc));
        struct call k = { .op = AWS_KMS_DECRYPT, .doc = rc.doc, .doc_len = rc.doc_len, .skew = -600 };
        ASSERT_OK(expect_error(&k, AWS_KMS_ERR_INVALID_SIGNATURE, 400, "Signature expired"));
        k.skew = 600;
        ASSERT_OK(expect_error(&k, AWS_KMS_ERR_INVALID_SIGNATURE, 400, "Signature expired"));
}

static void test_other_root(void) {
        _cleanup_(recipient_done) struct recipient rc = {};
        _cleanup_free_ uint8_t *doc = NULL;
        size_t len;

        ASSERT_TRUE(setup());
        ASSERT_OK(recipient_new(&rc));
        ASSERT_OK(make_doc(other_ca, -1, rc.spki, rc.spki_len, &doc, &len));
        struct call k = { .op = AWS_KMS_DECRYPT, .doc = doc, .doc_len = len };
        ASSERT_OK(expect_error(&k, AWS_KMS_ERR_ACCESS_DENIED, 400, "root"));
        k.op = AWS_KMS_GENERATE_RANDOM;
        ASSERT_OK(expect_error(&k, AWS_KMS_ERR_ACCESS_DENIED, 400, "root"));
}

/* The root file is re-read at each request: a simulated enclave may write it after fake-kms started. */
static void test_root_reread(void) {
        _cleanup_(aws_http_conn_freep) struct aws_http_conn *c = NULL;
        _cleanup_(recipient_done) struct recipient rc = {};
        struct aws_err e = {};

        ASSERT_TRUE(setup());
        ASSERT_OK(recipient_new(&rc));
        ASSERT_OK(write_root(root_path, other_ca));
        struct call k = { .op = AWS_KMS_DECRYPT, .doc = rc.doc, .doc_len = rc.doc_len };
        int r = expect_error(&k, AWS_KMS_ERR_ACCESS_DENIED, 400, "root");
        /* not written yet: the fake's own failure, worth a retry */
        if (r >= 0 && unlink(root_path) >= 0)
                r = expect_error(&k, AWS_KMS_ERR_INTERNAL, 500, "attestation root");
        ASSERT_OK(write_root(root_path, ca));
        ASSERT_OK(r);
        ASSERT_OK(client(0, &c, &e));
        ASSERT_OK(expect_plaintext(c, &rc, NULL));
}

/* The policy is PCR0 (upper-case hex) and PCR3 (lower-case): each must match, PCR2 is free. */
static void test_pcr_policy(void) {
        _cleanup_(aws_http_conn_freep) struct aws_http_conn *c = NULL;
        _cleanup_(recipient_done) struct recipient rc = {};
        _cleanup_free_ uint8_t *d0 = NULL, *d3 = NULL, *d2 = NULL;
        size_t l0, l3, l2;
        struct aws_err e = {};

        ASSERT_TRUE(setup());
        ASSERT_OK(recipient_new(&rc));
        ASSERT_OK(make_doc(ca, 0, rc.spki, rc.spki_len, &d0, &l0));
        ASSERT_OK(make_doc(ca, 3, rc.spki, rc.spki_len, &d3, &l3));
        ASSERT_OK(make_doc(ca, 2, rc.spki, rc.spki_len, &d2, &l2));
        struct call k = { .op = AWS_KMS_DECRYPT, .doc = d0, .doc_len = l0 };
        ASSERT_OK(expect_error(&k, AWS_KMS_ERR_ACCESS_DENIED, 400, "ImageSha384 (PCR0)"));
        k = (struct call){ .op = AWS_KMS_GENERATE_RANDOM, .doc = d3, .doc_len = l3 };
        ASSERT_OK(expect_error(&k, AWS_KMS_ERR_ACCESS_DENIED, 400, "kms:RecipientAttestation:PCR3 differs"));
        /* a PCR the policy does not name may be anything */
        free(rc.doc);
        rc.doc = TAKE_PTR(d2);
        rc.doc_len = l2;
        ASSERT_OK(client(0, &c, &e));
        ASSERT_OK(expect_plaintext(c, &rc, NULL));
}

static void test_bad_public_key(void) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *ec = EVP_EC_gen("P-256");
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) 1024);
        _cleanup_free_ uint8_t *d1 = NULL, *d2 = NULL, *d3 = NULL;
        unsigned char *spki_ec = NULL, *spki_small = NULL;
        size_t l1, l2, l3;
        int n_ec, n_small;

        ASSERT_TRUE(setup());
        ASSERT_TRUE(ec && small);
        n_ec = i2d_PUBKEY(ec, &spki_ec);
        n_small = i2d_PUBKEY(small, &spki_small);
        ASSERT_TRUE(n_ec > 0 && n_small > 0);
        int r1 = make_doc(ca, -1, spki_ec, (size_t) n_ec, &d1, &l1);
        int r2 = make_doc(ca, -1, spki_small, (size_t) n_small, &d2, &l2);
        OPENSSL_free(spki_ec);
        OPENSSL_free(spki_small);
        ASSERT_OK(r1);
        ASSERT_OK(r2);
        ASSERT_OK(make_doc(ca, -1, NULL, 0, &d3, &l3));
        struct call k = { .op = AWS_KMS_DECRYPT, .doc = d1, .doc_len = l1 };
        ASSERT_OK(expect_error(&k, AWS_KMS_ERR_VALIDATION, 400, "not an RSA key"));
        k = (struct call){ .op = AWS_KMS_DECRYPT, .doc = d2, .doc_len = l2 };
        ASSERT_OK(expect_error(&k, AWS_KMS_ERR_VALIDATION, 400, "2048"));
        k = (struct call){ .op = AWS_KMS_DECRYPT, .doc = d3, .doc_len = l3 };
        ASSERT_OK(expect_error(&k, AWS_KMS_ERR_VALIDATION, 400, "public_key"));
}

static void test_garbled_blob(void) {
        _cleanup_(recipient_done) struct recipient rc = {};
        _cleanup_free_ uint8_t *b = NULL;
        uint8_t junk[64];

        ASSERT_TRUE(setup());
        ASSERT_OK(recipient_new(&rc));
        b = malloc(blob_len);
        ASSERT_TRUE(b);
        memcpy(b, blob, blob_len);
        b[blob_len / 2] ^= 0x40;
        struct call k = {
                .op = AWS_KMS_DECRYPT, .blob = b, .blob_len = blob_len, .doc = rc.doc, .doc_len = rc.doc_len
        };
        ASSERT_OK(expect_error(&k, AWS_KMS_ERR_INVALID_CIPHERTEXT, 400, "tag"));
        k.blob_len = blob_len - 1;
        ASSERT_OK(expect_error(&k, AWS_KMS_ERR_INVALID_CIPHERTEXT, 400, NULL));
        memset(junk, 0x5a, sizeof(junk));
        k.blob = junk;
        k.blob_len = sizeof(junk);
        ASSERT_OK(expect_error(&k, AWS_KMS_ERR_INVALID_CIPHERTEXT, 400, "magic"));
}

static void test_bad_request(void) {
        ASSERT_TRUE(setup());
        /* signed correctly, but not what KMS accepts */
        struct call k = { .op = AWS_KMS_DECRYPT,
                          .body = "{\"CiphertextBlob\":\"AQID\",\"Recipient\":{\"KeyEncryptionAlgorithm\":"
                                  "\"RSAES_OAEP_SHA_1\",\"AttestationDocument\":\"AQID\"}}" };
        ASSERT_OK(expect_error(&k, AWS_KMS_ERR_VALIDATION, 400, NULL));
        k.body = "{\"CiphertextBlob\":\"AQID\"}";
        ASSERT_OK(expect_error(&k, AWS_KMS_ERR_VALIDATION, 400, "Recipient"));
        k.body = "not json";
        ASSERT_OK(expect_error(&k, AWS_KMS_ERR_VALIDATION, 400, NULL));
}

/* ---- tests: faults ---------------------------------------------------------------------------- */

static void test_faults(void) {
        static const struct {
                const char *fault;
                enum aws_kms_error type;
                long status;
        } cases[] = {
                { "access-denied", AWS_KMS_ERR_ACCESS_DENIED, 400 },
                { "bad-ciphertext", AWS_KMS_ERR_INVALID_CIPHERTEXT, 400 },
                { "throttle", AWS_KMS_ERR_THROTTLING, 400 },
                { "internal", AWS_KMS_ERR_INTERNAL, 500 },
                { "expired-token", AWS_KMS_ERR_EXPIRED_TOKEN, 400 },
        };
        _cleanup_(recipient_done) struct recipient rc = {};
        int r = 0;

        ASSERT_TRUE(setup());
        ASSERT_OK(recipient_new(&rc));
        struct call k = { .op = AWS_KMS_DECRYPT, .doc = rc.doc, .doc_len = rc.doc_len };
        for (size_t i = 0; i < ELEMENTSOF(cases) && r == 0; i++) {
                printf("# fault %s\n", cases[i].fault);
                ASSERT_OK(write_str(fault_path, cases[i].fault));
                r = expect_error(&k, cases[i].type, cases[i].status, "fault injected");
        }
        ASSERT_OK(write_str(fault_path, "none"));
        ASSERT_OK(r);
        ASSERT_TRUE(aws_kms_error_retryable(AWS_KMS_ERR_THROTTLING));
}

static void test_fault_garbage(void) {
        _cleanup_(aws_http_conn_freep) struct aws_http_conn *c = NULL;
        _cleanup_(recipient_done) struct recipient rc = {};
        struct aws_kms_decrypt_resp dr;
        struct aws_http_resp resp = {};
        uint8_t cfr[AWS_KMS_BLOB_MAX];
        struct aws_err e = {};
        int r;

        ASSERT_TRUE(setup());
        ASSERT_OK(recipient_new(&rc));
        ASSERT_OK(client(0, &c, &e));
        ASSERT_OK(write_str(fault_path, "garbage\n"));
        struct call k = { .op = AWS_KMS_DECRYPT, .doc = rc.doc, .doc_len = rc.doc_len };
        r = kms_post(c, &k, &resp, &e);
        ASSERT_OK(write_str(fault_path, "none"));
        ASSERT_OK(r);
        ASSERT_EQ(resp.status, 200);
        r = aws_kms_decrypt_response_parse(resp.body, resp.body_len, cfr, sizeof(cfr), &dr, &e);
        aws_http_resp_done(&resp);
        ASSERT_ERR(r, -EBADMSG);
        printf("# %s\n", e.msg);
}

static void test_fault_close(void) {
        _cleanup_(aws_http_conn_freep) struct aws_http_conn *c = NULL;
        _cleanup_(recipient_done) struct recipient rc = {};
        struct aws_http_resp resp = {};
        struct aws_err e = {};
        int r;

        ASSERT_TRUE(setup());
        ASSERT_OK(recipient_new(&rc));
        ASSERT_OK(client(0, &c, &e));
        ASSERT_OK(write_str(fault_path, "close"));
        struct call k = { .op = AWS_KMS_DECRYPT, .doc = rc.doc, .doc_len = rc.doc_len };
        r = kms_post(c, &k, &resp, &e);
        ASSERT_OK(write_str(fault_path, "none"));
        printf("# %d: %s\n", r, e.msg);
        ASSERT_FAIL(r);
        ASSERT_TRUE(r == -ECONNRESET || r == -EPROTO);
        /* the next round gets its answer */
        aws_http_conn_free(TAKE_PTR(c));
        ASSERT_OK(client(0, &c, &e));
        ASSERT_OK(expect_plaintext(c, &rc, NULL));
}

static void test_fault_slow(void) {
        _cleanup_(aws_http_conn_freep) struct aws_http_conn *c = NULL;
        _cleanup_(recipient_done) struct recipient rc = {};
        struct aws_http_resp resp = {};
        struct aws_err e = {};
        char fault[32];
        int r;

        ASSERT_TRUE(setup());
        ASSERT_OK(recipient_new(&rc));
        /* an answer later than the client waits: a timeout */
        ASSERT_OK(client(500 * slow, &c, &e));
        snprintf(fault, sizeof(fault), "slow=%d", 3000 * slow);
        ASSERT_OK(write_str(fault_path, fault));
        struct call k = { .op = AWS_KMS_DECRYPT, .doc = rc.doc, .doc_len = rc.doc_len };
        r = kms_post(c, &k, &resp, &e);
        printf("# %d: %s\n", r, e.msg);
        if (r >= 0)
                aws_http_resp_done(&resp);
        ASSERT_ERR(r, -ETIMEDOUT);
        /* a slow answer within the client's bound still arrives */
        aws_http_conn_free(TAKE_PTR(c));
        ASSERT_OK(write_str(fault_path, "slow=100"));
        ASSERT_OK(client(0, &c, &e));
        r = expect_plaintext(c, &rc, NULL);
        ASSERT_OK(write_str(fault_path, "none"));
        ASSERT_OK(r);
}

/* One TAP diagnostic line of up to max bytes of s, its CR and LF shown as \r and \n. */
static void diag(const char *what, const char *s, size_t max) {
        fputs("# ", stdout);
        fputs(what, stdout);
        for (size_t i = 0; i < max && s[i]; i++) {
                if (s[i] == '\r' || s[i] == '\n')
                        printf("\\%c", s[i] == '\r' ? 'r' : 'n');
                else
                        putchar(s[i]);
        }
        putchar('\n');
}

/* ---- tests: HTTP on a raw TLS connection ------------------------------------------------------ */

struct raw {
        int fd;
        SSL_CTX *ctx;
        SSL *ssl;
};

static void raw_close(struct raw *r) {
        SSL_free(r->ssl);
        SSL_CTX_free(r->ctx);
        if (r->fd >= 0)
                close(r->fd);
        *r = (struct raw){ .fd = -1 };
}

static int unix_connect(void) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        struct timeval tv = { 10 * slow, 0 };
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (strlen(cur_sock) >= sizeof(sa.sun_path)) {
                if (fd >= 0)
                        close(fd);
                return -ENAMETOOLONG;
        }
        memcpy(sa.sun_path, cur_sock, strlen(cur_sock) + 1);
        if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
            connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                if (fd >= 0)
                        close(fd);
                return -errno;
        }
        return fd;
}

/* TLS to the fake with its CA and the KMS host name checked, as libcurl does. */
static int raw_open(struct raw *r) {
        *r = (struct raw){ .fd = unix_connect() };
        if (r->fd < 0)
                return r->fd;
        r->ctx = SSL_CTX_new(TLS_client_method());
        if (!r->ctx || SSL_CTX_load_verify_locations(r->ctx, cur_ca, NULL) != 1)
                return -EIO;
        SSL_CTX_set_verify(r->ctx, SSL_VERIFY_PEER, NULL);
        r->ssl = SSL_new(r->ctx);
        if (!r->ssl || SSL_set_tlsext_host_name(r->ssl, HOST) != 1 || SSL_set1_host(r->ssl, HOST) != 1 ||
            SSL_set_fd(r->ssl, r->fd) != 1 || SSL_connect(r->ssl) != 1)
                return -EPROTO;
        return 0;
}

static int raw_send(struct raw *r, const char *s, size_t len) {
        return SSL_write(r->ssl, s, (int) len) == (int) len ? 0 : -EIO;
}

/* Reads until buf holds n complete responses (head and Content-Length body), or the connection ends.
 * Returns the number of complete responses; *ret_closed tells whether the server closed. */
static int raw_read(struct raw *r, char *buf, size_t cap, int n, bool *ret_closed) {
        size_t len = 0;
        int done = 0;

        *ret_closed = false;
        buf[0] = '\0';
        for (;;) {
                const char *p = buf;
                done = 0;
                for (;;) {
                        const char *end = strstr(p, "\r\n\r\n"), *cl;
                        size_t body = 0;
                        if (!end)
                                break;
                        cl = strcasestr(p, "\r\nContent-Length:");
                        if (cl && cl < end)
                                body = strtoul(cl + 17, NULL, 10);
                        if ((size_t) (end + 4 - buf) + body > len)
                                break;
                        if (strncmp(p, "HTTP/1.1 100 ", 13) != 0)
                                done++;
                        p = end + 4 + body;
                }
                if (done >= n || len + 1 >= cap)
                        return done;
                int k = SSL_read(r->ssl, buf + len, (int) (cap - 1 - len));
                if (k <= 0) {
                        *ret_closed = true;
                        return done;
                }
                len += (size_t) k;
                buf[len] = '\0';
        }
}

/* One head (and body) on a new connection: the server's answer, and whether it closed. */
static int raw_exchange(const char *req, size_t len, char *buf, size_t cap, int n, bool *ret_closed) {
        struct raw r;
        int k = raw_open(&r);

        if (k >= 0)
                k = raw_send(&r, req, len);
        if (k >= 0)
                k = raw_read(&r, buf, cap, n, ret_closed);
        if (k >= 0 && n == 1 && !*ret_closed) {
                /* after an error answer the server closes: the next read sees the end */
                char more[64];
                *ret_closed = SSL_read(r.ssl, more, sizeof(more)) <= 0;
        }
        raw_close(&r);
        return k;
}

static void test_http_refusals(void) {
        static const struct {
                const char *req;
                const char *status;
        } cases[] = {
                { "POST / HTTP/1.1\nHost: " HOST "\r\n\r\n", "HTTP/1.1 400 " },
                { "POST / HTTP/1.1\r\nHost: " HOST "\r\nContent-Length: 70000\r\n\r\n", "HTTP/1.1 413 " },
                { "POST / HTTP/1.1\r\nHost: " HOST "\r\nTransfer-Encoding: chunked\r\n\r\n",
                  "HTTP/1.1 501 " },
                { "POST / HTTP/1.1\r\nHost: " HOST "\r\n\r\n", "HTTP/1.1 411 " },
                { "POST / HTTP/3.0\r\nHost: " HOST "\r\n\r\n", "HTTP/1.1 505 " },
        };
        char buf[4096];
        bool closed;

        ASSERT_TRUE(setup());
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                int n = raw_exchange(cases[i].req, strlen(cases[i].req), buf, sizeof(buf), 1, &closed);
                char what[32];
                snprintf(what, sizeof(what), "case %zu: ", i);
                diag(what, buf, 60);
                ASSERT_EQ(n, 1);
                ASSERT_TRUE(strncmp(buf, cases[i].status, strlen(cases[i].status)) == 0);
                ASSERT_TRUE(closed);
        }
}

static void test_http_head_too_long(void) {
        _cleanup_free_ char *req = malloc(FKMS_HTTP_HEAD_MAX + 256);
        char buf[4096];
        bool closed;
        size_t n;

        ASSERT_TRUE(setup());
        ASSERT_TRUE(req);
        n = (size_t) sprintf(req, "POST / HTTP/1.1\r\nHost: " HOST "\r\n");
        while (n < FKMS_HTTP_HEAD_MAX + 100)
                n += (size_t) sprintf(req + n, "X-Filler: %0100d\r\n", 0);
        ASSERT_EQ(raw_exchange(req, n, buf, sizeof(buf), 1, &closed), 1);
        ASSERT_TRUE(strncmp(buf, "HTTP/1.1 431 ", 13) == 0);
        ASSERT_TRUE(closed);
}

static void test_http_wrong_host(void) {
        static const char req[] = "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: " AWS_KMS_CONTENT_TYPE
                                  "\r\nX-Amz-Target: TrentService.Decrypt\r\nContent-Length: 2\r\n\r\n{}";
        char buf[4096];
        bool closed;

        ASSERT_TRUE(setup());
        ASSERT_EQ(raw_exchange(req, sizeof(req) - 1, buf, sizeof(buf), 1, &closed), 1);
        diag("", buf, 200);
        ASSERT_TRUE(strncmp(buf, "HTTP/1.1 400 ", 13) == 0);
        ASSERT_TRUE(strstr(buf, "InvalidHostException"));
}

/* Two requests in one write get two answers in order on the kept-alive connection; an Expect gets
 * its 100 Continue before the body is sent. */
static void test_http_pipelined_expect(void) {
        static const char two[] = "GET /a HTTP/1.1\r\nHost: " HOST "\r\n\r\n"
                                  "POST / HTTP/1.1\r\nHost: " HOST ":443\r\nContent-Length: 2\r\n\r\n{}";
        static const char expect[] =
                "POST / HTTP/1.1\r\nHost: " HOST "\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n";
        char buf[8192];
        struct raw r;
        bool closed;

        ASSERT_TRUE(setup());
        ASSERT_OK(raw_open(&r));
        int n = raw_send(&r, two, sizeof(two) - 1) < 0 ? -1 : raw_read(&r, buf, sizeof(buf), 2, &closed);
        if (n == 2) {
                /* the same connection goes on: 100 Continue, then the answer once the body came */
                ASSERT_OK(raw_send(&r, expect, sizeof(expect) - 1));
                int k = SSL_read(r.ssl, buf, 25);
                buf[k > 0 ? k : 0] = '\0';
                diag("", buf, sizeof(buf));
                ASSERT_TRUE(strncmp(buf, "HTTP/1.1 100 Continue\r\n\r\n", 25) == 0);
                ASSERT_OK(raw_send(&r, "{}", 2));
                n = raw_read(&r, buf, sizeof(buf), 1, &closed) + 2;
                diag("", buf, 120);
                ASSERT_TRUE(strstr(buf, "MissingAuthenticationTokenException"));
        }
        raw_close(&r);
        ASSERT_EQ(n, 3);
        ASSERT_FALSE(closed);
}

static void test_http_handshake_failure(void) {
        struct stats before, after;
        char junk[] = "GET / HTTP/1.1\r\nHost: not-tls\r\n\r\n", c;
        int fd;

        ASSERT_TRUE(setup());
        ASSERT_OK(read_stats(&before));
        fd = unix_connect();
        ASSERT_OK(fd);
        ASSERT_EQ(write(fd, junk, sizeof(junk) - 1), (ssize_t) sizeof(junk) - 1);
        /* the server gives up on it and closes */
        while (read(fd, &c, 1) > 0)
                ;
        close(fd);
        /* the statistics are written once the connection ended */
        for (int i = 0; i < 500 * slow; i++) {
                ASSERT_OK(read_stats(&after));
                if (after.handshake_failures > before.handshake_failures)
                        break;
                usleep(10000);
        }
        ASSERT_EQ(after.handshake_failures - before.handshake_failures, 1);
        ASSERT_EQ(after.handshakes, before.handshakes);
}

/* ---- tests: a second server: long-term credentials from a file, short timeouts ---------------- */

/* After a read, did the server close (not our own receive timeout)? */
static bool server_closed(struct raw *r) {
        char c;
        int k;

        errno = 0;
        k = SSL_read(r->ssl, &c, 1);
        if (k > 0)
                return false;
        return errno != EAGAIN && errno != EWOULDBLOCK;
}

static void test_second_server(void) {
        _cleanup_(aws_http_conn_freep) struct aws_http_conn *c = NULL;
        _cleanup_(recipient_done) struct recipient rc = {};
        char sock2[160], ca2[160], creds_file[160], creds_arg[170], listen[170];
        struct aws_err e = {};
        struct raw r = { .fd = -1 };
        pid_t pid = -1;
        int status = -1, k;
        bool idle_closed = false, loris_closed = false;

        ASSERT_TRUE(setup());
        ASSERT_OK(recipient_new(&rc));
        snprintf(sock2, sizeof(sock2), "%s/kms2.sock", tmpdir);
        snprintf(ca2, sizeof(ca2), "%s/kms2-ca.pem", tmpdir);
        snprintf(creds_file, sizeof(creds_file), "%s/creds", tmpdir);
        snprintf(creds_arg, sizeof(creds_arg), "@%s", creds_file);
        snprintf(listen, sizeof(listen), "unix:path=%s", sock2);
        ASSERT_OK(write_str(creds_file, "AKIALONGTERM:long/term+secret\n"));
        char *argv[] = { (char *) fake_kms,
                         "serve",
                         "--listen",
                         listen,
                         "--ca-out",
                         ca2,
                         "--credentials",
                         creds_arg,
                         "--region",
                         REGION,
                         "--master-key",
                         mk_path,
                         "--attestation-root",
                         root_path,
                         "--idle-timeout",
                         "1",
                         "--io-timeout",
                         "1",
                         "--clock-offset",
                         "600",
                         NULL };
        ASSERT_OK(spawn_server(argv, ca2, &pid));
        cur_sock = sock2;
        cur_ca = ca2;
        cur_akid = "AKIALONGTERM";
        cur_secret = "long/term+secret";
        cur_token = "";
        /* its clock is 10 minutes ahead: a request signed now is refused, one signed by that clock
         * passes (no policy: any PCR0; no session token) */
        struct call now = { .op = AWS_KMS_DECRYPT, .doc = rc.doc, .doc_len = rc.doc_len };
        k = expect_error(&now, AWS_KMS_ERR_INVALID_SIGNATURE, 400, "Signature expired");
        cur_skew = 600;
        if (k >= 0)
                k = client(0, &c, &e);
        if (k >= 0)
                k = expect_plaintext(c, &rc, NULL);
        cur_skew = 0;
        aws_http_conn_free(TAKE_PTR(c));
        /* an idle connection is closed by the server */
        if (k >= 0 && (k = raw_open(&r)) >= 0)
                idle_closed = server_closed(&r);
        raw_close(&r);
        /* so is one whose request head stalls */
        if (k >= 0 && (k = raw_open(&r)) >= 0 && (k = raw_send(&r, "POST / HTTP/1.1\r\n", 17)) >= 0)
                loris_closed = server_closed(&r);
        raw_close(&r);
        cur_sock = sock_path;
        cur_ca = ca_path;
        cur_akid = AKID;
        cur_secret = SECRET;
        cur_token = TOKEN;
        if (pid > 0) {
                kill(pid, SIGTERM);
                waitpid(pid, &status, 0);
        }
        ASSERT_OK(k);
        ASSERT_TRUE(idle_closed);
        ASSERT_TRUE(loris_closed);
        /* SIGTERM: a clean exit that removes the socket */
        ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        ASSERT_TRUE(access(sock2, F_OK) < 0);
}

/* ---- tests: encrypt and keygen ---------------------------------------------------------------- */

static void test_cli_encrypt_base64(void) {
        _cleanup_(aws_http_conn_freep) struct aws_http_conn *c = NULL;
        _cleanup_(recipient_done) struct recipient rc = {};
        _cleanup_free_ uint8_t *text = NULL, *b = NULL;
        char out[160];
        struct aws_err e = {};
        size_t len;
        int n;

        ASSERT_TRUE(setup());
        ASSERT_OK(recipient_new(&rc));
        snprintf(out, sizeof(out), "%s/key.kms.b64", tmpdir);
        char *argv[] = { (char *) fake_kms,
                         "encrypt",
                         "--master-key",
                         mk_path,
                         "--key-id",
                         KEY_ID,
                         "-i",
                         pt_path,
                         "-o",
                         out,
                         "--base64",
                         NULL };
        ASSERT_EQ(run(argv), 0);
        ASSERT_OK(read_all(out, &text, &len));
        ASSERT_TRUE(len > 1 && text[len - 1] == '\n');
        b = malloc(len);
        ASSERT_TRUE(b);
        n = EVP_DecodeBlock(b, text, (int) len - 1);
        ASSERT_TRUE(n > 0);
        n -= (text[len - 2] == '=') + (text[len - 3] == '=');
        ASSERT_OK(client(0, &c, &e));
        ASSERT_OK(expect_plaintext_blob(c, &rc, b, (size_t) n, NULL));
}

static void test_cli_refusals(void) {
        _cleanup_free_ uint8_t *before = NULL, *after = NULL;
        char empty[160], big[160], badkey[160], out[160];
        size_t lb, la;
        _cleanup_free_ char *big_text = malloc(FKMS_PLAINTEXT_MAX + 2);

        ASSERT_TRUE(setup());
        ASSERT_TRUE(big_text);
        snprintf(empty, sizeof(empty), "%s/empty", tmpdir);
        snprintf(big, sizeof(big), "%s/big", tmpdir);
        snprintf(badkey, sizeof(badkey), "%s/short.key", tmpdir);
        snprintf(out, sizeof(out), "%s/out.kms", tmpdir);
        memset(big_text, 'k', FKMS_PLAINTEXT_MAX + 1);
        big_text[FKMS_PLAINTEXT_MAX + 1] = '\0';
        ASSERT_OK(write_str(empty, ""));
        ASSERT_OK(write_str(big, big_text));
        ASSERT_OK(write_str(badkey, "too short"));
        char *bad_id[] = { (char *) fake_kms,
                           "encrypt",
                           "--master-key",
                           mk_path,
                           "--key-id",
                           "a b",
                           "-i",
                           pt_path,
                           "-o",
                           out,
                           NULL };
        char *no_id[] = {
                (char *) fake_kms, "encrypt", "--master-key", mk_path, "-i", pt_path, "-o", out, NULL
        };
        char *empty_in[] = { (char *) fake_kms,
                             "encrypt",
                             "--master-key",
                             mk_path,
                             "--key-id",
                             "k",
                             "-i",
                             empty,
                             "-o",
                             out,
                             NULL };
        char *big_in[] = { (char *) fake_kms,
                           "encrypt",
                           "--master-key",
                           mk_path,
                           "--key-id",
                           "k",
                           "-i",
                           big,
                           "-o",
                           out,
                           NULL };
        char *short_key[] = { (char *) fake_kms,
                              "encrypt",
                              "--master-key",
                              badkey,
                              "--key-id",
                              "k",
                              "-i",
                              pt_path,
                              "-o",
                              out,
                              NULL };
        char *unknown[] = { (char *) fake_kms, "decrypt", NULL };
        char *bad_pcr[] = { (char *) fake_kms, "serve", "--policy-pcr", "32=00", NULL };
        char *odd_pcr[] = { (char *) fake_kms, "serve", "--policy-pcr", "0=abc", NULL };
        char *serve_bare[] = { (char *) fake_kms, "serve", NULL };
        char *keygen[] = { (char *) fake_kms, "keygen", "--master-key", mk_path, NULL };
        ASSERT_EQ(run(bad_id), 1);
        ASSERT_EQ(run(no_id), 1);
        ASSERT_EQ(run(empty_in), 1);
        ASSERT_EQ(run(big_in), 1);
        ASSERT_EQ(run(short_key), 1);
        ASSERT_EQ(run(unknown), 2);
        ASSERT_EQ(run(bad_pcr), 2);
        ASSERT_EQ(run(odd_pcr), 2);
        ASSERT_EQ(run(serve_bare), 1);
        ASSERT_TRUE(access(out, F_OK) < 0); /* nothing written by a refused encrypt */
        /* keygen keeps an existing key */
        ASSERT_OK(read_all(mk_path, &before, &lb));
        ASSERT_EQ(run(keygen), 0);
        ASSERT_OK(read_all(mk_path, &after, &la));
        ASSERT_EQ(la, lb);
        ASSERT_MEMEQ(after, before, lb);
}

/* ---- the fake's own parsers ------------------------------------------------------------------- */

static int parse_head_str(const char *s, struct fkms_http_head *h, struct fkms_http_error *err) {
        _cleanup_free_ char *copy = strdup(s);
        int end;

        if (!copy)
                return -ENOMEM;
        end = fkms_http_head_end(copy, strlen(copy));
        if (end <= 0)
                return end == 0 ? -EAGAIN : end;
        return fkms_http_head_parse(copy, (size_t) end, h, err);
}

static void test_http_head_good(void) {
        struct fkms_http_head h;
        struct fkms_http_error err = {};
        char buf[] = "POST / HTTP/1.1\r\nHost: " HOST "\r\nContent-Type: " AWS_KMS_CONTENT_TYPE
                     "\r\nX-Amz-Target:  TrentService.Decrypt \t\r\nContent-Length: 12\r\n"
                     "Expect: 100-continue\r\n\r\n{\"body\":1}..";
        int end = fkms_http_head_end(buf, sizeof(buf) - 1);

        ASSERT_TRUE(end > 0);
        ASSERT_OK(fkms_http_head_parse(buf, (size_t) end, &h, &err));
        ASSERT_STREQ(h.method, "POST");
        ASSERT_STREQ(h.target, "/");
        ASSERT_EQ(h.minor, 1);
        ASSERT_EQ(h.n_headers, 5);
        ASSERT_STREQ(h.amz_target, "TrentService.Decrypt");
        ASSERT_STREQ(h.host, HOST);
        ASSERT_TRUE(h.has_content_length);
        ASSERT_EQ(h.content_length, 12);
        ASSERT_TRUE(h.keep_alive);
        ASSERT_TRUE(h.expect_continue);
        ASSERT_STREQ(buf + end, "{\"body\":1}..");

        ASSERT_OK(parse_head_str("GET /x?y=1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &h, &err));
        ASSERT_TRUE(h.keep_alive);
        ASSERT_OK(parse_head_str("GET / HTTP/1.0\r\n\r\n", &h, &err));
        ASSERT_FALSE(h.keep_alive);
        ASSERT_OK(parse_head_str("GET / HTTP/1.1\r\nHost: a\r\nConnection: TE, Close\r\n\r\n", &h, &err));
        ASSERT_FALSE(h.keep_alive);
}

static void test_http_head_refused(void) {
        static const struct {
                const char *head;
                int r, status;
        } cases[] = {
                { "POST / HTTP/1.1\nHost: a\r\n\r\n", -EBADMSG, 400 },
                { "POST / HTTP/1.1\r\nHost: a\n\r\n\r\n", -EBADMSG, 400 },
                { "POST  / HTTP/1.1\r\nHost: a\r\n\r\n", -EBADMSG, 400 },
                { "POST / HTTP/2.0\r\nHost: a\r\n\r\n", -EOPNOTSUPP, 505 },
                { "POST / HTTP/1.1 \r\nHost: a\r\n\r\n", -EBADMSG, 400 },
                { "POST / http/1.1\r\nHost: a\r\n\r\n", -EBADMSG, 400 },
                { "P@ST / HTTP/1.1\r\nHost: a\r\n\r\n", -EBADMSG, 400 },
                { "POST / HTTP/1.1\r\n\r\n", -EBADMSG, 400 },
                { "POST / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", -EBADMSG, 400 },
                { "POST / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", -EBADMSG, 400 },
                { "POST / HTTP/1.1\r\nHost : a\r\n\r\n", -EBADMSG, 400 },
                { "POST / HTTP/1.1\r\nHost: a\x01\r\n\r\n", -EBADMSG, 400 },
                { "POST / HTTP/1.1\r\nHost: \xc3\xa9\r\n\r\n", -EBADMSG, 400 },
                { "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", -EBADMSG,
                  400 },
                { "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", -EBADMSG, 400 },
                { "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n", -EBADMSG, 400 },
                { "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 65537\r\n\r\n", -E2BIG, 413 },
                { "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n", -E2BIG,
                  413 },
                { "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", -EOPNOTSUPP, 501 },
                { "POST / HTTP/1.1\r\nHost: a\r\nExpect: something\r\n\r\n", -EBADMSG, 417 },
                { "POST / HTTP/1.1\r\nHost: a\r\nX-Amz-Target: a\r\nx-amz-target: b\r\n\r\n", -EBADMSG,
                  400 },
        };
        struct fkms_http_head h;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct fkms_http_error err = {};
                int r = parse_head_str(cases[i].head, &h, &err);
                printf("# case %zu: %d %s at %zu (%d)\n", i, r, err.what ? err.what : "", err.offset,
                       err.status);
                ASSERT_ERR(r, cases[i].r);
                ASSERT_EQ(err.status, cases[i].status);
        }
}

static void test_http_head_caps(void) {
        _cleanup_free_ char *big = malloc(FKMS_HTTP_HEAD_MAX + 64);
        struct fkms_http_head h;
        struct fkms_http_error err = {};
        size_t n;

        ASSERT_TRUE(big);
        /* no end of head within the cap */
        memset(big, 'a', FKMS_HTTP_HEAD_MAX + 8);
        ASSERT_ERR(fkms_http_head_end(big, FKMS_HTTP_HEAD_MAX + 8), -E2BIG);
        ASSERT_EQ(fkms_http_head_end(big, 100), 0);
        /* one header more than the cap */
        n = (size_t) sprintf(big, "POST / HTTP/1.1\r\nHost: a\r\n");
        for (unsigned i = 0; i < FKMS_HTTP_HEADERS_MAX; i++)
                n += (size_t) sprintf(big + n, "X-%u: v\r\n", i);
        n += (size_t) sprintf(big + n, "\r\n");
        ASSERT_EQ(fkms_http_head_end(big, n), (int) n);
        ASSERT_ERR(fkms_http_head_parse(big, n, &h, &err), -E2BIG);
        ASSERT_EQ(err.status, 431);
        /* every truncation of a good head is refused or incomplete, never read past */
        static const char good[] = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n";
        for (size_t len = 0; len < sizeof(good) - 1; len++) {
                memcpy(big, good, len);
                int end = fkms_http_head_end(big, len);
                ASSERT_EQ(end, 0);
                ASSERT_FAIL(fkms_http_head_parse(big, len, &h, &err));
        }
}

static void test_blob_format(void) {
        _cleanup_secret_ struct secret_buf *pt = NULL;
        _cleanup_free_ uint8_t *b = NULL;
        uint8_t key[FKMS_MASTER_KEY_LEN], other[FKMS_MASTER_KEY_LEN], msg[100];
        char id[FKMS_KEY_ID_MAX + 1];
        const char *why = NULL;
        size_t len;
        unsigned refused = 0;

        memset(key, 1, sizeof(key));
        memset(other, 2, sizeof(other));
        memset(msg, 'm', sizeof(msg));
        ASSERT_OK(fkms_blob_seal(key, "key-1", msg, sizeof(msg), &b, &len));
        ASSERT_EQ(len, FKMS_MAGIC_LEN + 1 + 5 + FKMS_NONCE_LEN + sizeof(msg) + FKMS_TAG_LEN);
        ASSERT_OK(fkms_blob_open(key, b, len, id, &pt, &why));
        ASSERT_STREQ(id, "key-1");
        ASSERT_EQ(pt->len, sizeof(msg));
        ASSERT_MEMEQ(pt->data, msg, sizeof(msg));
        pt = secret_buf_free(pt);
        ASSERT_ERR(fkms_blob_open(other, b, len, id, &pt, &why), -EKEYREJECTED);
        /* every truncation and every flipped bit is refused */
        for (size_t n = 0; n < len; n++)
                refused += fkms_blob_open(key, b, n, id, &pt, &why) < 0;
        ASSERT_EQ(refused, len);
        refused = 0;
        for (size_t i = 0; i < len * 8; i++) {
                b[i / 8] ^= (uint8_t) (1u << (i % 8));
                refused += fkms_blob_open(key, b, len, id, &pt, &why) < 0;
                b[i / 8] ^= (uint8_t) (1u << (i % 8));
        }
        ASSERT_EQ(refused, len * 8);
        ASSERT_ERR(fkms_blob_seal(key, "bad id", msg, sizeof(msg), &b, &len), -EINVAL);
        ASSERT_ERR(fkms_blob_seal(key, "k", msg, 0, &b, &len), -EINVAL);
        ASSERT_ERR(fkms_key_id_validate(""), -EINVAL);
}

static void test_fault_words(void) {
        static const struct {
                const char *text;
                enum fkms_fault f;
                unsigned ms;
        } cases[] = {
                { "", FKMS_FAULT_NONE, 0 },
                { "\n", FKMS_FAULT_NONE, 0 },
                { "none", FKMS_FAULT_NONE, 0 },
                { "access-denied\n", FKMS_FAULT_ACCESS_DENIED, 0 },
                { "bad-ciphertext extra words", FKMS_FAULT_BAD_CIPHERTEXT, 0 },
                { "throttle", FKMS_FAULT_THROTTLE, 0 },
                { "internal", FKMS_FAULT_INTERNAL, 0 },
                { "expired-token", FKMS_FAULT_EXPIRED_TOKEN, 0 },
                { "close\r\n", FKMS_FAULT_CLOSE, 0 },
                { "garbage", FKMS_FAULT_GARBAGE, 0 },
                { "slow=0", FKMS_FAULT_SLOW, 0 },
                { "slow=250\n", FKMS_FAULT_SLOW, 250 },
                { "slow=600000", FKMS_FAULT_SLOW, 600000 },
                { "slow=600001", _FKMS_FAULT_INVALID, 0 },
                { "slow=99999999999999999999", _FKMS_FAULT_INVALID, 0 },
                { "slow=", _FKMS_FAULT_INVALID, 0 },
                { "slow=1s", _FKMS_FAULT_INVALID, 0 },
                { "slow=-1", _FKMS_FAULT_INVALID, 0 },
                { "slow", _FKMS_FAULT_INVALID, 0 },
                { "Throttle", _FKMS_FAULT_INVALID, 0 },
                { "closed", _FKMS_FAULT_INVALID, 0 },
                { "nonex", _FKMS_FAULT_INVALID, 0 },
                { " \n throttle", FKMS_FAULT_THROTTLE, 0 },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                unsigned ms = 12345;
                enum fkms_fault f = fkms_fault_parse(cases[i].text, &ms);
                char what[32];
                snprintf(what, sizeof(what), "-> %d: ", (int) f);
                diag(what, cases[i].text, 64);
                ASSERT_EQ(f, cases[i].f);
                if (f == FKMS_FAULT_SLOW)
                        ASSERT_EQ(ms, cases[i].ms);
        }
        ASSERT_EQ(fkms_fault_parse(NULL, NULL), _FKMS_FAULT_INVALID);
}

int main(void) {
        static const struct tap_test tests[] = {
                TEST("/fake-kms/http-head/good", test_http_head_good),
                TEST("/fake-kms/http-head/refused", test_http_head_refused),
                TEST("/fake-kms/http-head/caps", test_http_head_caps),
                TEST("/fake-kms/blob/format", test_blob_format),
                TEST("/fake-kms/fault/words", test_fault_words),
                TEST("/fake-kms/decrypt/roundtrip", test_decrypt_roundtrip),
                TEST("/fake-kms/generate-random", test_generate_random),
                TEST("/fake-kms/keep-alive/stats", test_keep_alive_stats),
                TEST("/fake-kms/sigv4/wrong-secret", test_wrong_secret),
                TEST("/fake-kms/sigv4/session-token", test_missing_token),
                TEST("/fake-kms/sigv4/unknown-akid", test_unknown_akid),
                TEST("/fake-kms/sigv4/skewed-clock", test_skewed_clock),
                TEST("/fake-kms/attestation/other-root", test_other_root),
                TEST("/fake-kms/attestation/root-reread", test_root_reread),
                TEST("/fake-kms/attestation/pcr-policy", test_pcr_policy),
                TEST("/fake-kms/attestation/public-key", test_bad_public_key),
                TEST("/fake-kms/decrypt/garbled-blob", test_garbled_blob),
                TEST("/fake-kms/request/invalid", test_bad_request),
                TEST("/fake-kms/fault/errors", test_faults),
                TEST("/fake-kms/fault/garbage", test_fault_garbage),
                TEST("/fake-kms/fault/close", test_fault_close),
                TEST("/fake-kms/fault/slow", test_fault_slow),
                TEST("/fake-kms/http/refusals", test_http_refusals),
                TEST("/fake-kms/http/head-too-long", test_http_head_too_long),
                TEST("/fake-kms/http/wrong-host", test_http_wrong_host),
                TEST("/fake-kms/http/pipelined-expect", test_http_pipelined_expect),
                TEST("/fake-kms/http/handshake-failure", test_http_handshake_failure),
                TEST("/fake-kms/second-server/long-term-credentials-clock-timeouts", test_second_server),
                TEST("/fake-kms/cli/encrypt-base64", test_cli_encrypt_base64),
                TEST("/fake-kms/cli/refusals", test_cli_refusals),
        };
        int r = tap_run(tests, ELEMENTSOF(tests));

        teardown();
        return r;
}
