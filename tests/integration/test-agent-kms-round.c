/* The agent's KMS round, driven through agent_token_step_round() against an in-test enclave control
 * server (a thread speaking the real framing and schemas) whose ATTEST answers documents built and signed
 * by attest/'s test CA, as the NSM simulator's are:
 * - a pass with encrypted tokens to send uses ONE connection: HELLO, ATTEST (the agent's 32-byte nonce),
 *   KMS_BEGIN (region, credentials, the agent's clock), one TOKEN_ADD per token with the ciphertext as
 *   the file holds it (base64 decoded, raw as is) and its ttl, KMS_END; a plaintext token beside them
 *   goes on its own connection without a round; a pass with nothing to send opens nothing;
 * - refresh: TOKEN_REFRESH with the ciphertext read again, in one round; a changed ciphertext is a
 *   replace under the other key id instead;
 * - refusals: a PCR0 mismatch, a replayed nonce, an old enclave image and missing credentials send no
 *   credentials, with the error the token shows; KMS_UNAVAILABLE backs off, KMS_DENIED and KEY_INVALID
 *   wait for the next sync. */
#include <errno.h>
#include <ftw.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "agent/kms-round.h"
#include "agent/launcher/launcher.h"
#include "agent/token.h"
#include "attest/attest-build.h"
#include "common/rpc-codec.h"
#include "common/rpc-frame.h"
#include "common/transport.h"
#include "tests/lib/tap.h"

#define AKID   "AKIAIOSFODNN7EXAMPLE"
#define SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define SEC    1000000ull

static char dir[64];

/* ---- the fake enclave ---- */

struct server {
        struct transport_addr addr;
        int lfd;
        pthread_t thread;
        bool started;
        volatile bool stop;
        pthread_mutex_t lock;
        struct attest_test_ca *ca;
        /* knobs */
        uint32_t version;       /* HELLO (0: RPC_VERSION_MAX) */
        uint8_t pcr0[48];       /* what the document says */
        bool wrong_nonce;       /* answer a document for another nonce */
        uint8_t add_status;     /* TOKEN_ADD with a ciphertext answers this (0: OK) */
        uint8_t refresh_status; /* likewise TOKEN_REFRESH */
        /* what it saw */
        unsigned connections, hellos, attests, begins, ends, adds, kms_adds, refreshes;
        bool begin_ok; /* the last KMS_BEGIN carried the credentials of the environment */
        char region[32];
        uint64_t begin_time;
        bool in_round;          /* KMS_BEGIN seen on the current connection */
        bool add_outside_round; /* a ciphertext came without a round */
        uint8_t ct[RPC_CIPHERTEXT_MAX];
        size_t ct_len;
        uint32_t ttl, key_id;
        uint8_t ct_a[RPC_CIPHERTEXT_MAX]; /* token a's last ciphertext */
        size_t ct_a_len;
        uint32_t refresh_ids[RPC_MAX_KEYS];
        size_t refresh_n;
};

static int reply(int fd, const struct rpc_header *req, uint8_t status, const uint8_t *body, size_t len) {
        static uint8_t frame[RPC_HEADER_SIZE + 16384];
        struct rpc_header h = { .magic = RPC_MAGIC,
                                .version = req->version,
                                .kind = RPC_KIND_RESPONSE,
                                .call = req->call,
                                .status = status,
                                .request_id = req->request_id,
                                .body_len = (uint32_t) len };

        if (len > sizeof(frame) - RPC_HEADER_SIZE)
                return -EMSGSIZE;
        rpc_header_encode(&h, frame);
        if (len > 0)
                memcpy(frame + RPC_HEADER_SIZE, body, len);
        return transport_send_all(fd, frame, RPC_HEADER_SIZE + len, 5000);
}

/* A document as the simulator makes one: 16 PCRs (PCR0 the knob, the others 0x11..), the nonce. */
static int make_doc(struct server *s, const struct rpc_slice *nonce, uint8_t **ret, size_t *ret_len) {
        uint8_t pcr_bytes[16][48], n[RPC_NONCE_MAX];
        struct attest_pcr_value pcrs[16];
        struct attest_blob bundle[2] = { { s->ca->root_der, s->ca->root_len },
                                         { s->ca->inter_der, s->ca->inter_len } };

        for (unsigned i = 0; i < 16; i++) {
                memset(pcr_bytes[i], (int) (0x10 + i), 48);
                pcrs[i] = (struct attest_pcr_value){ i, pcr_bytes[i], 48 };
        }
        memcpy(pcr_bytes[0], s->pcr0, 48);
        memcpy(n, nonce->ptr, MIN(nonce->len, sizeof(n)));
        if (s->wrong_nonce && nonce->len > 0)
                n[0] ^= 1;
        return attest_doc_sign(
                &(struct attest_build){ .module_id = "i-00000000000000000-enc0000000000000000",
                                        .timestamp_ms = (uint64_t) time(NULL) * 1000,
                                        .pcrs = pcrs,
                                        .n_pcrs = 16,
                                        .certificate = { s->ca->leaf_der, s->ca->leaf_len },
                                        .cabundle = bundle,
                                        .n_cabundle = 2,
                                        .user_data = { ATTEST_OPT_NULL },
                                        .nonce = { ATTEST_OPT_BYTES, n, nonce->len } },
                s->ca->leaf_key, ret, ret_len);
}

static int serve_attest(struct server *s, int fd, const struct rpc_header *h, const uint8_t *body,
                        struct rpc_writer *w) {
        struct rpc_attest_req req;
        uint8_t *doc = NULL;
        size_t len = 0;

        if (rpc_attest_req_decode(body, h->body_len, &req) < 0 || make_doc(s, &req.nonce, &doc, &len) < 0)
                return reply(fd, h, RPC_STATUS_MALFORMED, NULL, 0);
        s->attests++;
        rpc_attest_resp_encode(w, &(struct rpc_attest_resp){ .document = { doc, len } });
        free(doc);
        return 0;
}

static int serve_begin(struct server *s, int fd, const struct rpc_header *h, const uint8_t *body) {
        struct rpc_kms_begin_req req;

        if (rpc_kms_begin_req_decode(body, h->body_len, &req) < 0)
                return reply(fd, h, RPC_STATUS_MALFORMED, NULL, 0);
        s->begins++;
        s->in_round = true;
        s->begin_ok =
                req.access_key_id.len == strlen(AKID) && memcmp(req.access_key_id.ptr, AKID, 14) == 0 &&
                req.secret_access_key.len == strlen(SECRET) &&
                memcmp(req.secret_access_key.ptr, SECRET, strlen(SECRET)) == 0 && req.session_token.len == 0;
        (void) snprintf(s->region, sizeof(s->region), "%.*s", (int) req.region.len, req.region.ptr);
        s->begin_time = req.time;
        return 1;
}

static int serve_add(struct server *s, int fd, const struct rpc_header *h, const uint8_t *body,
                     struct rpc_writer *w) {
        static struct rpc_token_add_req req;

        if (rpc_token_add_req_decode(body, h->body_len, &req) < 0)
                return reply(fd, h, RPC_STATUS_MALFORMED, NULL, 0);
        s->adds++;
        if (req.keys[0].ciphertext.len > 0) {
                s->kms_adds++;
                if (!s->in_round)
                        s->add_outside_round = true;
                memcpy(s->ct, req.keys[0].ciphertext.ptr, req.keys[0].ciphertext.len);
                s->ct_len = req.keys[0].ciphertext.len;
                s->ttl = req.ttl;
                s->key_id = req.keys[0].id;
                if (req.label.len == 1 && req.label.ptr[0] == 'a') {
                        memcpy(s->ct_a, s->ct, s->ct_len);
                        s->ct_a_len = s->ct_len;
                }
                if (s->add_status)
                        return reply(fd, h, s->add_status, NULL, 0);
        }
        rpc_token_add_resp_encode(
                w, &(struct rpc_token_add_resp){ .slot = 7,
                                                 .expires = req.keys[0].ciphertext.len ? 2000000000 : 0 });
        return 0;
}

static int serve_refresh(struct server *s, int fd, const struct rpc_header *h, const uint8_t *body,
                         struct rpc_writer *w) {
        static struct rpc_token_refresh_req req;

        if (rpc_token_refresh_req_decode(body, h->body_len, &req) < 0 || !s->in_round)
                return reply(fd, h, !s->in_round ? RPC_STATUS_NO_KMS_ROUND : RPC_STATUS_MALFORMED, NULL, 0);
        s->refreshes++;
        s->refresh_n = req.n_keys;
        for (size_t i = 0; i < req.n_keys; i++)
                s->refresh_ids[i] = req.keys[i].id;
        memcpy(s->ct, req.keys[0].ciphertext.ptr, req.keys[0].ciphertext.len);
        s->ct_len = req.keys[0].ciphertext.len;
        s->ttl = req.ttl;
        if (s->refresh_status)
                return reply(fd, h, s->refresh_status, NULL, 0);
        rpc_token_refresh_resp_encode(w, &(struct rpc_token_refresh_resp){ .expires = 2000000100 });
        return 0;
}

static int serve_one(struct server *s, int fd, const struct rpc_header *h, const uint8_t *body) {
        static uint8_t out[16384];
        struct rpc_writer w;
        int r = 0;

        rpc_writer_init(&w, out, sizeof(out));
        (void) pthread_mutex_lock(&s->lock);
        switch (h->call) {
        case RPC_CALL_HELLO:
                s->hellos++;
                rpc_hello_resp_encode(&w,
                                      &(struct rpc_hello_resp){ .version = s->version ?: RPC_VERSION_MAX,
                                                                .generation = 1,
                                                                .server = { (const uint8_t *) "fake", 4 },
                                                                .max_tokens = 16 });
                break;
        case RPC_CALL_ATTEST: r = serve_attest(s, fd, h, body, &w); break;
        case RPC_CALL_KMS_BEGIN:
                r = serve_begin(s, fd, h, body);
                if (r > 0) {
                        r = 0;
                        rpc_kms_begin_resp_encode(&w, &(struct rpc_kms_begin_resp){ .time = s->begin_time });
                }
                break;
        case RPC_CALL_KMS_END:
                s->ends++;
                s->in_round = false;
                rpc_empty_encode(&w);
                break;
        case RPC_CALL_TOKEN_ADD: r = serve_add(s, fd, h, body, &w); break;
        case RPC_CALL_TOKEN_REFRESH: r = serve_refresh(s, fd, h, body, &w); break;
        case RPC_CALL_TOKEN_RELEASE:
                rpc_token_release_resp_encode(&w, &(struct rpc_token_release_resp){ .released = 0 });
                break;
        default: r = reply(fd, h, RPC_STATUS_MALFORMED, NULL, 0); break;
        }
        (void) pthread_mutex_unlock(&s->lock);
        if (r < 0 || w.len == 0 || r == 1)
                return r;
        if (rpc_writer_finish(&w) < 0)
                return -EIO;
        return reply(fd, h, RPC_STATUS_OK, out, w.len);
}

static void *server_main(void *userdata) {
        struct server *s = userdata;
        int fds[8];
        size_t n = 0;

        /* The agent keeps its plaintext client open while the round has its own: serve both, one
         * request at a time, by polling every open connection. */
        while (!s->stop) {
                struct pollfd p[9] = { { .fd = s->lfd, .events = POLLIN } };

                for (size_t i = 0; i < n; i++)
                        p[i + 1] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
                if (poll(p, n + 1, 50) <= 0)
                        continue;
                if ((p[0].revents & POLLIN) && n < ELEMENTSOF(fds)) {
                        int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
                        if (fd >= 0) {
                                (void) pthread_mutex_lock(&s->lock);
                                s->connections++;
                                s->in_round = false;
                                (void) pthread_mutex_unlock(&s->lock);
                                fds[n++] = fd;
                        }
                }
                for (size_t i = 0; i < n; i++) {
                        uint8_t hb[RPC_HEADER_SIZE];
                        static uint8_t body[RPC_MAX_BODY_CONTROL];
                        struct rpc_header h;

                        if (!(p[i + 1].revents & (POLLIN | POLLHUP)))
                                continue;
                        if (transport_recv_all(fds[i], hb, sizeof(hb), 5000) < 0 ||
                            rpc_header_decode(hb, RPC_CHANNEL_CONTROL, &h) < 0 ||
                            transport_recv_all(fds[i], body, h.body_len, 5000) < 0 ||
                            serve_one(s, fds[i], &h, body) < 0) {
                                safe_close(fds[i]);
                                fds[i] = fds[--n];
                                break; /* p[] is stale now */
                        }
                }
        }
        for (size_t i = 0; i < n; i++)
                safe_close(fds[i]);
        return NULL;
}

#define SEEN(s, field)                                   \
        ({                                               \
                unsigned _v;                             \
                (void) pthread_mutex_lock(&(s)->lock);   \
                _v = (s)->field;                         \
                (void) pthread_mutex_unlock(&(s)->lock); \
                _v;                                      \
        })

/* ---- files ---- */

static char *path_of(const char *name) {
        char *p = NULL;

        return asprintf(&p, "%s/%s", dir, name) < 0 ? NULL : p;
}

static bool write_bytes(const char *name, const void *data, size_t len) {
        char *p = path_of(name);
        FILE *f = p ? fopen(p, "we") : NULL;
        bool ok = f && fwrite(data, 1, len, f) == len;

        if (f && fclose(f) != 0)
                ok = false;
        free(p);
        return ok;
}

static char *data_path(const char *rel) {
        const char *env = getenv("TEST_DATA"), *slash = strrchr(__FILE__, '/');
        char *p = NULL;

        if (env ? asprintf(&p, "%s/%s", env, rel) < 0
                : asprintf(&p, "%.*s/../data/%s", slash ? (int) (slash - __FILE__) : 1,
                           slash ? __FILE__ : ".", rel) < 0)
                return NULL;
        return p;
}

static bool write_root_pem(const struct attest_test_ca *ca) {
        const unsigned char *p = ca->root_der;
        X509 *x = d2i_X509(NULL, &p, (long) ca->root_len);
        char *path = path_of("run/" LAUNCHER_NSM_SIM_ROOT_FILE);
        FILE *f = path ? fopen(path, "we") : NULL;
        bool ok = x && f && PEM_write_X509(f, x) == 1;

        if (f && fclose(f) != 0)
                ok = false;
        X509_free(x);
        free(path);
        return ok;
}

/* A KMS ciphertext stand-in (the fake enclave never decrypts): 0x01 0x02 then the pattern. */
static void blob(uint8_t *b, size_t n, uint8_t pattern) {
        for (size_t i = 0; i < n; i++)
                b[i] = (uint8_t) (i < 2 ? i + 1 : pattern + i);
}

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *base64(const uint8_t *b, size_t n) {
        char *out = malloc(n / 3 * 4 + 8), *o = out;

        for (size_t i = 0; out && i < n; i += 3) {
                uint32_t v = (uint32_t) b[i] << 16 | (i + 1 < n ? (uint32_t) b[i + 1] << 8 : 0) |
                             (i + 2 < n ? b[i + 2] : 0);
                *o++ = b64chars[v >> 18 & 63];
                *o++ = b64chars[v >> 12 & 63];
                *o++ = i + 1 < n ? b64chars[v >> 6 & 63] : '=';
                *o++ = i + 2 < n ? b64chars[v & 63] : '=';
        }
        if (o)
                *o = '\0';
        return out;
}

/* ---- the fixture ---- */

#define N_TOKENS 3 /* a: encrypted (base64 file), b: encrypted (raw file, ttl), c: plaintext */

struct fixture {
        struct server srv;
        struct agent_config *cfg;
        struct launcher *l;
        struct agent_token *t[N_TOKENS];
        struct rpc_client *client;
        uint64_t now;
        uint8_t ct_a[300], ct_b[200];
};

static void pass(struct fixture *f, uint64_t now) {
        struct agent_round round;

        f->now = now;
        agent_round_init(&round, f->cfg, f->l);
        for (size_t i = 0; i < N_TOKENS; i++)
                (void) agent_token_step_round(f->t[i], f->cfg, f->l, &f->client, &round, now);
        agent_round_end(&round);
}

static bool fixture_init(struct fixture *f) {
        _cleanup_free_ char *yaml = NULL, *key = NULL, *crt = NULL, *ec_key = NULL, *ec_crt = NULL,
                            *a64 = NULL;
        char pcr0[97];
        int r;

        *f = (struct fixture){ .srv = { .lfd = -1, .addr.family = TRANSPORT_UNIX } };
        strcpy(dir, "/tmp/test-agent-kms-round-XXXXXX");
        if (!mkdtemp(dir))
                return false;
        for (const char *d = "run\0state\0"; *d; d += strlen(d) + 1) {
                char *p = path_of(d);
                bool ok = p && mkdir(p, 0755) == 0;
                free(p);
                if (!ok)
                        return false;
        }
        memset(f->srv.pcr0, 0x3a, sizeof(f->srv.pcr0));
        for (size_t i = 0; i < 48; i++)
                (void) snprintf(pcr0 + 2 * i, 3, "%02x", 0x3a);
        blob(f->ct_a, sizeof(f->ct_a), 0x40);
        blob(f->ct_b, sizeof(f->ct_b), 0x80);
        a64 = base64(f->ct_a, sizeof(f->ct_a));
        if (!a64 || !write_bytes("a.kms", a64, strlen(a64)) ||
            !write_bytes("b.kms", f->ct_b, sizeof(f->ct_b)))
                return false;
        key = data_path("rsa2048.key.pem");
        crt = data_path("rsa2048.crt.pem");
        ec_key = data_path("ec-p256.key.pem");
        ec_crt = data_path("ec-p256.crt.pem");
        if (!key || !crt || !ec_key || !ec_crt ||
            asprintf(&yaml,
                     "enclave:\n  launcher: local\n  nsm_simulator: true\n  expected_pcrs: {0: %s}\n"
                     "options:\n  runtime_dir: %s/run\n  state_dir: %s/state\n  sync_interval_secs: 600\n"
                     "  region: eu-west-1\n"
                     "tokens:\n"
                     "  - {label: a, pin: 'pin-aaaa', refresh_interval_secs: 100,\n"
                     "     source: {File: {encrypted_key: %s/a.kms, certificate: %s}}}\n"
                     "  - {label: b, pin: 'pin-bbbb', refresh_interval_secs: 100, ttl_secs: 90000,\n"
                     "     source: {File: {encrypted_key: %s/b.kms, certificate: %s}}}\n"
                     "  - {label: c, pin: 'pin-cccc', refresh_interval_secs: 100,\n"
                     "     source: {File: {key: %s, certificate: %s}}}\n",
                     pcr0, dir, dir, dir, crt, dir, ec_crt, ec_key, ec_crt) < 0)
                return false;
        r = agent_config_parse(yaml, strlen(yaml), "acm.yaml", &f->cfg, NULL);
        if (r < 0)
                return false;
        if (attest_test_ca_new(time(NULL) - 3600, time(NULL) + 3600, &f->srv.ca) < 0 ||
            !write_root_pem(f->srv.ca))
                return false;
        (void) pthread_mutex_init(&f->srv.lock, NULL);
        (void) snprintf(f->srv.addr.path, sizeof(f->srv.addr.path), "%s/control.sock", dir);
        f->srv.lfd = transport_listen(&f->srv.addr, 0600, (gid_t) -1, 8);
        if (f->srv.lfd < 0 || pthread_create(&f->srv.thread, NULL, server_main, &f->srv) != 0)
                return false;
        f->srv.started = true;
        if (launcher_new(f->cfg, &f->l) < 0 ||
            asprintf(&f->l->control_address, "unix:path=%s", f->srv.addr.path) < 0)
                return false;
        f->l->running = true;
        f->l->launches = 1;
        for (size_t i = 0; i < N_TOKENS; i++) {
                _cleanup_free_ char *error = NULL;
                if (agent_token_new(f->cfg, &f->cfg->tokens[i], &f->t[i], &error) < 0)
                        return false;
        }
        return setenv("AWS_ACCESS_KEY_ID", AKID, 1) == 0 &&
               setenv("AWS_SECRET_ACCESS_KEY", SECRET, 1) == 0 && unsetenv("AWS_SESSION_TOKEN") == 0 &&
               unsetenv("AWS_REGION") == 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path) < 0 ? -errno : 0;
}

static void fixture_done(struct fixture *f) {
        f->srv.stop = true;
        if (f->srv.started)
                (void) pthread_join(f->srv.thread, NULL);
        if (f->srv.lfd >= 0)
                safe_close(f->srv.lfd);
        rpc_client_free(f->client);
        for (size_t i = 0; i < N_TOKENS; i++)
                agent_token_free(f->t[i]);
        if (f->l)
                f->l->running = false;
        launcher_free(f->l);
        agent_config_free(f->cfg);
        attest_test_ca_free(f->srv.ca);
        if (dir[0] && nftw(dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS) != 0)
                fprintf(stderr, "# cannot remove %s\n", dir);
}

/* ---- the tests ---- */

static void test_round(void) {
        _cleanup_(fixture_done) struct fixture f = {};
        uint8_t changed[300];
        uint64_t t0 = 1000 * SEC;

        ASSERT_TRUE(fixture_init(&f));
        pass(&f, t0);
        for (size_t i = 0; i < N_TOKENS; i++) {
                if (f.t[i]->state != AGENT_TOKEN_READY)
                        printf("# token %zu: %s\n", i, f.t[i]->error ?: "?");
                ASSERT_EQ(f.t[i]->state, AGENT_TOKEN_READY);
        }
        /* one round for both encrypted tokens, the plaintext one on its own connection */
        ASSERT_EQ(SEEN(&f.srv, connections), 2u);
        ASSERT_EQ(SEEN(&f.srv, attests), 1u);
        ASSERT_EQ(SEEN(&f.srv, begins), 1u);
        ASSERT_EQ(SEEN(&f.srv, ends), 1u);
        ASSERT_EQ(SEEN(&f.srv, adds), 3u);
        ASSERT_EQ(SEEN(&f.srv, kms_adds), 2u);
        ASSERT_FALSE(SEEN(&f.srv, add_outside_round));
        ASSERT_TRUE(SEEN(&f.srv, begin_ok));
        ASSERT_STREQ(f.srv.region, "eu-west-1");
        ASSERT_TRUE(f.srv.begin_time > (uint64_t) 1700000000000); /* the agent's clock, in ms */
        /* a's base64 file decoded, no ttl (the enclave's default) */
        ASSERT_EQ(f.srv.ct_a_len, sizeof(f.ct_a));
        ASSERT_MEMEQ(f.srv.ct_a, f.ct_a, sizeof(f.ct_a));
        /* b came last: its raw ciphertext as the file holds it, its ttl */
        ASSERT_EQ(f.srv.ct_len, sizeof(f.ct_b));
        ASSERT_MEMEQ(f.srv.ct, f.ct_b, sizeof(f.ct_b));
        ASSERT_EQ(f.srv.ttl, 90000u);
        ASSERT_EQ(f.t[0]->expires, 2000000000u);
        ASSERT_EQ(f.t[2]->expires, 0u);

        /* nothing due: nothing opened */
        pass(&f, t0 + 1 * SEC);
        ASSERT_EQ(SEEN(&f.srv, connections), 2u);
        ASSERT_EQ(SEEN(&f.srv, attests), 1u);

        /* the refresh interval: both encrypted tokens refreshed in one round, the ciphertext read again */
        pass(&f, t0 + 100 * SEC);
        ASSERT_EQ(SEEN(&f.srv, attests), 2u);
        ASSERT_EQ(SEEN(&f.srv, begins), 2u);
        ASSERT_EQ(SEEN(&f.srv, refreshes), 2u);
        ASSERT_EQ(SEEN(&f.srv, ends), 2u);
        ASSERT_EQ(SEEN(&f.srv, adds), 3u);
        ASSERT_EQ(f.srv.refresh_n, 1u);
        ASSERT_EQ(f.srv.refresh_ids[0], 1u);
        ASSERT_MEMEQ(f.srv.ct, f.ct_b, sizeof(f.ct_b));
        ASSERT_EQ(f.srv.ttl, 90000u);
        ASSERT_EQ(f.t[1]->expires, 2000000100u);
        ASSERT_EQ(f.t[0]->state, AGENT_TOKEN_READY);

        /* a's ciphertext changes: at its next refresh it is a replace under key id 2, b refreshes */
        blob(changed, sizeof(changed), 0x41);
        ASSERT_TRUE(write_bytes("a.kms", changed, sizeof(changed)));
        pass(&f, t0 + 200 * SEC);
        ASSERT_EQ(SEEN(&f.srv, attests), 3u);
        ASSERT_EQ(SEEN(&f.srv, kms_adds), 3u);
        ASSERT_EQ(SEEN(&f.srv, refreshes), 3u);
        ASSERT_EQ(f.t[0]->cur.key_id, 2u);
        ASSERT_EQ(f.t[0]->state, AGENT_TOKEN_READY);
        ASSERT_EQ(f.srv.ct_a_len, sizeof(changed));
        ASSERT_MEMEQ(f.srv.ct_a, changed, sizeof(changed));
        ASSERT_FALSE(SEEN(&f.srv, add_outside_round));

        /* an enclave restart (a new launch): everything provisioned again, encrypted ones in one round */
        f.l->launches = 2;
        pass(&f, t0 + 201 * SEC);
        ASSERT_EQ(SEEN(&f.srv, attests), 4u);
        ASSERT_EQ(SEEN(&f.srv, kms_adds), 5u);
        ASSERT_EQ(SEEN(&f.srv, adds), 7u);
}

/* Each refusal: nothing of the credentials sent (or nothing at all), the token's error, when it retries. */
static void test_refusals(void) {
        _cleanup_(fixture_done) struct fixture f = {};
        uint64_t t0 = 1000 * SEC, now;

        ASSERT_TRUE(fixture_init(&f));

        /* PCR0 differs: ATTEST, no KMS_BEGIN, the next sync */
        f.srv.pcr0[0] = 0x9f;
        pass(&f, now = t0);
        ASSERT_EQ(SEEN(&f.srv, attests), 1u);
        ASSERT_EQ(SEEN(&f.srv, begins), 0u);
        ASSERT_EQ(SEEN(&f.srv, kms_adds), 0u);
        ASSERT_EQ(f.t[0]->state, AGENT_TOKEN_FAILED);
        ASSERT_TRUE(f.t[0]->error && strstr(f.t[0]->error, "attestation: PCR0 is 9f3a3a3a3a3a3a3a"));
        ASSERT_TRUE(strstr(f.t[0]->error, "expected 3a3a3a3a3a3a3a3a"));
        ASSERT_TRUE(strstr(f.t[1]->error, "not sending credentials")); /* b: the same round's error */
        ASSERT_EQ(f.t[0]->retry_at_usec, now + 600 * SEC);
        ASSERT_EQ(f.t[2]->state, AGENT_TOKEN_READY); /* the plaintext token is not held up */
        f.srv.pcr0[0] = 0x3a;

        /* a document for another nonce */
        f.srv.wrong_nonce = true;
        pass(&f, now += 600 * SEC);
        ASSERT_EQ(SEEN(&f.srv, attests), 2u);
        ASSERT_EQ(SEEN(&f.srv, begins), 0u);
        ASSERT_TRUE(f.t[0]->error && strstr(f.t[0]->error, "nonce is not the one the agent sent"));
        f.srv.wrong_nonce = false;

        /* an enclave image older than protocol version 3: not even ATTEST */
        f.srv.version = 2;
        pass(&f, now += 600 * SEC);
        ASSERT_EQ(SEEN(&f.srv, attests), 2u);
        ASSERT_TRUE(f.t[0]->error && strstr(f.t[0]->error, "update the enclave image"));
        f.srv.version = 0;

        /* no credentials: nothing reaches the enclave, back-off */
        {
                unsigned conns = SEEN(&f.srv, connections);

                ASSERT_OK(unsetenv("AWS_ACCESS_KEY_ID"));
                pass(&f, now += 600 * SEC);
                ASSERT_EQ(SEEN(&f.srv, connections), conns);
                ASSERT_TRUE(f.t[0]->error && strstr(f.t[0]->error, "AWS_ACCESS_KEY_ID is not set"));
                ASSERT_FALSE(strstr(f.t[0]->error, SECRET));
                ASSERT_TRUE(f.t[0]->retry_at_usec < now + 600 * SEC);
                ASSERT_OK(setenv("AWS_ACCESS_KEY_ID", AKID, 1));
        }

        /* KMS_UNAVAILABLE: back-off, and b (same round) does not try KMS again; after
         * enclave.attestation_retry_count (5) attempts in a row, the next sync; then KMS_DENIED and
         * KEY_INVALID: the next sync */
        f.srv.add_status = RPC_STATUS_KMS_UNAVAILABLE;
        {
                unsigned kms_adds = SEEN(&f.srv, kms_adds);

                pass(&f, now += 600 * SEC);
                ASSERT_EQ(SEEN(&f.srv, begins), 1u);
                ASSERT_EQ(SEEN(&f.srv, kms_adds), kms_adds + 1);
                ASSERT_TRUE(f.t[0]->error && strstr(f.t[0]->error, "KMS is unreachable"));
                ASSERT_TRUE(f.t[1]->error && strstr(f.t[1]->error, "an earlier call of this round"));
                ASSERT_TRUE(f.t[0]->retry_at_usec < now + 600 * SEC);
                ASSERT_TRUE(f.t[1]->retry_at_usec < now + 600 * SEC);
                /* "no credentials" above was the first back-off attempt, this the second */
                ASSERT_EQ(f.t[0]->backoff_failures, 2u);
                for (unsigned i = 3; i <= 5; i++) {
                        pass(&f, now = MAX(f.t[0]->retry_at_usec, f.t[1]->retry_at_usec));
                        ASSERT_EQ(f.t[0]->state, AGENT_TOKEN_FAILED);
                        if (i < 5)
                                ASSERT_TRUE(f.t[0]->retry_at_usec < now + 600 * SEC);
                }
                ASSERT_EQ(f.t[0]->retry_at_usec, now + 600 * SEC);
                ASSERT_EQ(f.t[0]->backoff_failures, 0u);
        }
        f.srv.add_status = RPC_STATUS_KMS_DENIED;
        pass(&f, now += 600 * SEC);
        ASSERT_TRUE(f.t[0]->error && strstr(f.t[0]->error, "TOKEN_ADD failed: KMS denied the Decrypt"));
        ASSERT_EQ(f.t[0]->retry_at_usec, now + 600 * SEC);
        f.srv.add_status = RPC_STATUS_KEY_INVALID;
        pass(&f, now += 600 * SEC);
        ASSERT_TRUE(f.t[0]->error && strstr(f.t[0]->error, "does not match the certificate chain"));
        ASSERT_EQ(f.t[0]->retry_at_usec, now + 600 * SEC);

        /* and it recovers */
        f.srv.add_status = 0;
        pass(&f, now += 600 * SEC);
        ASSERT_EQ(f.t[0]->state, AGENT_TOKEN_READY);
        ASSERT_EQ(f.t[1]->state, AGENT_TOKEN_READY);
        ASSERT_TRUE(f.t[0]->error == NULL);
}

TAP_MAIN(TEST("/agent/kms-round/round", test_round), TEST("/agent/kms-round/refusals", test_refusals))
