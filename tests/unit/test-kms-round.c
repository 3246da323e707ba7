/* Tests for the KMS key path in enclave-token (kms.c, the ATTEST / KMS_BEGIN / KMS_END / TOKEN_ADD /
 * TOKEN_REFRESH handlers) with the NSM simulator and its document maker. KMS itself is never mocked: the
 * exchange with the fake KMS is tests/integration/etok-kms.sh. Here KMS is an address nothing listens on
 * (a unix path that does not exist), which is what an unreachable vsock-proxy looks like. Like
 * test-attest, this test generates keys (the simulator's test CA, the round's RSA-2048 key): no verdict
 * depends on their values. */
#include <time.h>

#include <openssl/x509.h>

#include "attest/attest.h"
#include "common/log.h"
#include "enclave-token/dispatch.h"
#include "enclave-token/errors.h"
#include "enclave-token/kms.h"
#include "enclave-token/nsm-sim-doc.h"
#include "enclave-token/nsm-sim.h"
#include "tests/lib/tap.h"
#include "tests/unit/etok-testkeys.h"

#define NOWHERE "unix:path=/nonexistent-enclave-acm-test/kms.sock"

static struct rpc_slice S(const char *s) {
        return (struct rpc_slice){ (const uint8_t *) s, strlen(s) };
}

static const uint8_t pcr0[NSM_PCR_LEN] = { 0xe7, 0x2a, 0x46, 0xca, 1, 2, 3, 4, 5, 6, 7, 8, 9 };

static struct etok_sim_doc *sim_doc;
static struct nsm_dev *nsm;
static struct etok_keystore *ks;
static struct etok_kms_config kcfg;
static struct etok_dispatch disp;
static struct etok_session ctl;
static struct test_key k_rsa;

static uint8_t req_buf[RPC_MAX_BODY_CONTROL], resp_buf[RPC_MAX_BODY_CONTROL];
static size_t req_len, resp_len;
static struct etok_reply rep;

static void quiet_logs(void) {
        const char *e = getenv("ENCLAVE_ACM_TEST_LOG");

        if (!e || strcmp(e, "1") != 0)
                log_set_max_level(LOG_CRIT);
}

static void fixture_done(void) {
        etok_session_done(&ctl);
        ks = etok_keystore_free(ks);
        nsm = nsm_dev_free(nsm);
        sim_doc = etok_sim_doc_free(sim_doc);
        test_key_done(&k_rsa);
}

static enum rpc_status run(unsigned call) {
        struct rpc_writer w;

        rpc_writer_init(&w, resp_buf, sizeof(resp_buf));
        etok_dispatch_request(&disp, &ctl, call, req_buf, req_len, &w, &rep);
        resp_len = w.len;
        if (rep.status != RPC_STATUS_OK && resp_len != 0)
                return _RPC_STATUS_MAX;
        return rep.status;
}

#define SEND(call, codec, ...)                                                      \
        ({                                                                          \
                struct rpc_writer w_;                                               \
                rpc_writer_init(&w_, req_buf, sizeof(req_buf));                     \
                __typeof__(__VA_ARGS__) m_ = (__VA_ARGS__);                         \
                rpc_##codec##_encode(&w_, &m_);                                     \
                req_len = rpc_writer_finish(&w_) < 0 ? 0 : w_.len;                  \
                req_len ? run(RPC_CALL_##call) : (enum rpc_status) _RPC_STATUS_MAX; \
        })

static enum rpc_status send_empty(unsigned call) {
        req_buf[0] = 0xa0; /* {} */
        req_len = 1;
        return run(call);
}

static enum rpc_status hello(uint32_t version) {
        return SEND(HELLO, hello_req,
                    (struct rpc_hello_req){ .min_version = version, .max_version = version });
}

/* A control session (protocol 3) on a keystore, with the simulator (PCR0 set) or without an NSM. */
static bool fixture_init(bool with_nsm, bool dev) {
        struct nsm_sim *sim = NULL;

        quiet_logs();
        fixture_done();
        if (!test_key_load("rsa2048", &k_rsa) || etok_keystore_new(16, &ks) < 0)
                return false;
        if (with_nsm) {
                if (etok_sim_doc_new(time(NULL), NULL, &sim_doc) < 0 ||
                    nsm_sim_new(&(struct nsm_sim_config){ .pcr0 = pcr0,
                                                          .doc_fn = etok_sim_doc_make,
                                                          .doc_userdata = sim_doc },
                                &sim) < 0 ||
                    nsm_dev_new_sim(sim, &nsm) < 0)
                        return false;
        }
        /* Nothing listens there: every attempt fails at once, the back-off is 1 ms. */
        kcfg = (struct etok_kms_config){ .nsm = nsm, .proxy = NOWHERE, .backoff_ms = 1 };
        disp = (struct etok_dispatch){ .keystore = ks, .dev = dev, .nsm = nsm, .kms = &kcfg };
        etok_session_init(&ctl, RPC_CHANNEL_CONTROL);
        return hello(RPC_VERSION_KMS) == RPC_STATUS_OK;
}

static int64_t now_ms(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct rpc_kms_begin_req begin_req(const char *region, uint64_t time_ms) {
        return (struct rpc_kms_begin_req){
                .region = S(region),
                .access_key_id = S("AKIDEXAMPLE00000"),
                .secret_access_key = S("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
                .session_token = S("session-token"),
                .time = time_ms,
        };
}

static struct rpc_add_key ct_key(uint32_t id, const char *label, const char *ct) {
        struct rpc_add_key k = test_add_key(&k_rsa, id, label);

        k.key_pem = (struct rpc_slice){};
        k.ciphertext = S(ct);
        return k;
}

/* ---- without an NSM ---- */

static void test_no_nsm(void) {
        struct rpc_token_add_req add = { .label = S("web"), .pin = S("pin-1234"), .n_keys = 1 };

        ASSERT_TRUE(fixture_init(false, false));
        ASSERT_EQ(SEND(ATTEST, attest_req, (struct rpc_attest_req){ .nonce = S("n") }),
                  RPC_STATUS_NO_ATTESTATION);
        ASSERT_EQ(SEND(KMS_BEGIN, kms_begin_req, begin_req("us-east-1", (uint64_t) now_ms())),
                  RPC_STATUS_NO_ATTESTATION);
        ASSERT_TRUE(ctl.kms_round == NULL);
        ASSERT_EQ(send_empty(RPC_CALL_KMS_END), RPC_STATUS_OK);
        /* Ciphertexts without a round. */
        add.keys[0] = ct_key(1, "k", "ciphertext");
        ASSERT_EQ(SEND(TOKEN_ADD, token_add_req, add), RPC_STATUS_NO_KMS_ROUND);
        ASSERT_EQ(SEND(TOKEN_REFRESH, token_refresh_req,
                       (struct rpc_token_refresh_req){
                               .label = S("web"),
                               .pin = S("pin-1234"),
                               .n_keys = 1,
                               .keys = { { .id = 1, .ciphertext = S("ciphertext") } } }),
                  RPC_STATUS_NO_KMS_ROUND);
        /* Plaintext without --dev: DENIED, as before. */
        add.keys[0] = test_add_key(&k_rsa, 1, "k");
        ASSERT_EQ(SEND(TOKEN_ADD, token_add_req, add), RPC_STATUS_DENIED);
        /* Both, or neither: MALFORMED, also with --dev. */
        disp.dev = true;
        add.keys[0].ciphertext = S("ciphertext");
        ASSERT_EQ(SEND(TOKEN_ADD, token_add_req, add), RPC_STATUS_MALFORMED);
        add.keys[0].ciphertext = (struct rpc_slice){};
        add.keys[0].key_pem = (struct rpc_slice){};
        ASSERT_EQ(SEND(TOKEN_ADD, token_add_req, add), RPC_STATUS_MALFORMED);
        /* A plaintext key and a ciphertext: the round is still needed. */
        add.n_keys = 2;
        add.keys[0] = test_add_key(&k_rsa, 1, "k");
        add.keys[1] = ct_key(2, "k2", "ciphertext");
        ASSERT_EQ(SEND(TOKEN_ADD, token_add_req, add), RPC_STATUS_NO_KMS_ROUND);
        {
                size_t n;

                etok_keystore_read_begin(ks);
                n = etok_keystore_count_locked(ks);
                etok_keystore_read_end(ks);
                ASSERT_EQ(n, 0);
        }
}

/* --dev plaintext tokens: no expiry unless a ttl is given; DESCRIBE says expires to version 3 only. */
static void test_dev_ttl(void) {
        struct rpc_token_add_req add = { .label = S("web"), .pin = S("pin-1234"), .n_keys = 1 };
        struct rpc_token_add_resp resp;
        struct rpc_page_resp page = {};
        time_t before = time(NULL);

        ASSERT_TRUE(fixture_init(false, true));
        add.keys[0] = test_add_key(&k_rsa, 1, "k");
        ASSERT_EQ(SEND(TOKEN_ADD, token_add_req, add), RPC_STATUS_OK);
        ASSERT_OK(rpc_token_add_resp_decode(resp_buf, resp_len, &resp));
        ASSERT_EQ(resp.expires, 0);
        add.label = S("short");
        add.ttl = 600;
        ASSERT_EQ(SEND(TOKEN_ADD, token_add_req, add), RPC_STATUS_OK);
        ASSERT_OK(rpc_token_add_resp_decode(resp_buf, resp_len, &resp));
        ASSERT_TRUE(resp.expires >= (uint64_t) before + 600 && resp.expires <= (uint64_t) time(NULL) + 600);

        ASSERT_EQ(SEND(DESCRIBE, page_req, (struct rpc_page_req){}), RPC_STATUS_OK);
        ASSERT_OK(rpc_page_resp_decode(resp_buf, resp_len, &page));
        ASSERT_EQ(page.n_tokens, 2);
        for (size_t i = 0; i < page.n_tokens; i++)
                ASSERT_EQ(page.tokens[i].expires,
                          page.tokens[i].label.len == 5 ? resp.expires : (uint64_t) 0); /* "short" */
        rpc_page_resp_done(&page);
        /* A version-2 client is not sent the field. */
        etok_session_init(&ctl, RPC_CHANNEL_CONTROL);
        ASSERT_EQ(hello(2), RPC_STATUS_OK);
        ASSERT_EQ(SEND(DESCRIBE, page_req, (struct rpc_page_req){}), RPC_STATUS_OK);
        ASSERT_OK(rpc_page_resp_decode(resp_buf, resp_len, &page));
        for (size_t i = 0; i < page.n_tokens; i++)
                ASSERT_EQ(page.tokens[i].expires, 0);
        rpc_page_resp_done(&page);
}

/* ---- with the simulator ---- */

static void test_attest(void) {
        static const uint8_t nonce[] = "a nonce the parent chose";
        struct rpc_attest_resp resp;
        struct attest_result res;
        _cleanup_free_ char *pem = NULL;
        size_t pem_len = 0;
        X509 *root = NULL;
        uint8_t *root_der = NULL;
        BIO *b;
        int n;

        ASSERT_TRUE(fixture_init(true, false));
        ASSERT_EQ(SEND(ATTEST, attest_req,
                       (struct rpc_attest_req){ .nonce = { nonce, sizeof(nonce) }, .user_data = S("ud") }),
                  RPC_STATUS_OK);
        ASSERT_OK(rpc_attest_resp_decode(resp_buf, resp_len, &resp));
        /* The simulator's root, as --nsm-sim-root writes it, verifies the document. */
        ASSERT_OK(etok_sim_doc_root_pem(sim_doc, &pem, &pem_len));
        ASSERT_TRUE(pem_len > 0 && strncmp(pem, "-----BEGIN CERTIFICATE-----", 27) == 0);
        b = BIO_new_mem_buf(pem, (int) pem_len);
        ASSERT_TRUE(b);
        root = PEM_read_bio_X509(b, NULL, NULL, NULL);
        BIO_free(b);
        ASSERT_TRUE(root);
        n = i2d_X509(root, &root_der);
        X509_free(root);
        ASSERT_TRUE(n > 0);
        ASSERT_OK(attest_verify(resp.document.ptr, resp.document.len,
                                &(struct attest_opts){
                                        .root_der = root_der,
                                        .root_len = (size_t) n,
                                        .pcrs = &(struct attest_pcr_expect){ 0, pcr0, sizeof(pcr0) },
                                        .n_pcrs = 1,
                                },
                                &res));
        ASSERT_EQ(res.doc.nonce.kind, ATTEST_OPT_BYTES);
        ASSERT_MEMEQ(res.doc.nonce.ptr, nonce, sizeof(nonce));
        ASSERT_EQ(res.doc.user_data.kind, ATTEST_OPT_BYTES);
        ASSERT_EQ(res.doc.user_data.len, 2);
        ASSERT_EQ(res.doc.public_key.kind, ATTEST_OPT_NULL);
        ASSERT_EQ(res.doc.n_pcrs, 16);
        ASSERT_EQ(res.doc.n_cabundle, 2);
        /* Never against the AWS root. */
        ASSERT_ERR(attest_verify(resp.document.ptr, resp.document.len, NULL, &res), -EKEYREJECTED);
        ASSERT_EQ(res.reason, ATTEST_ERR_ROOT);
        /* Without a nonce: null. */
        ASSERT_EQ(SEND(ATTEST, attest_req, (struct rpc_attest_req){}), RPC_STATUS_OK);
        ASSERT_OK(rpc_attest_resp_decode(resp_buf, resp_len, &resp));
        ASSERT_OK(attest_parse(resp.document.ptr, resp.document.len, &res));
        ASSERT_EQ(res.doc.nonce.kind, ATTEST_OPT_NULL);
        OPENSSL_free(root_der);
}

static void test_begin(void) {
        struct rpc_kms_begin_resp resp;
        struct rpc_kms_begin_req req;
        struct etok_kms_stats st;
        int64_t t0 = now_ms();

        ASSERT_TRUE(fixture_init(true, false));
        /* Bad region, domain, access key id: MALFORMED, no round. */
        ASSERT_EQ(SEND(KMS_BEGIN, kms_begin_req, begin_req("US-EAST-1", (uint64_t) t0)),
                  RPC_STATUS_MALFORMED);
        ASSERT_EQ(SEND(KMS_BEGIN, kms_begin_req, begin_req("useast", (uint64_t) t0)), RPC_STATUS_MALFORMED);
        req = begin_req("us-east-1", (uint64_t) t0);
        req.domain = S("bad..suffix");
        ASSERT_EQ(SEND(KMS_BEGIN, kms_begin_req, req), RPC_STATUS_MALFORMED);
        req = begin_req("us-east-1", (uint64_t) t0);
        req.access_key_id = S("AKID with spaces");
        ASSERT_EQ(SEND(KMS_BEGIN, kms_begin_req, req), RPC_STATUS_MALFORMED);
        ASSERT_TRUE(ctl.kms_round == NULL);

        /* The clocks agree: the enclave's own. */
        ASSERT_EQ(SEND(KMS_BEGIN, kms_begin_req, begin_req("us-east-1", (uint64_t) t0)), RPC_STATUS_OK);
        ASSERT_OK(rpc_kms_begin_resp_decode(resp_buf, resp_len, &resp));
        ASSERT_FALSE(resp.parent_time);
        ASSERT_TRUE(resp.time >= (uint64_t) t0);
        ASSERT_TRUE(ctl.kms_round != NULL);
        etok_kms_round_stats(ctl.kms_round, &st);
        ASSERT_EQ(st.documents, 1);
        ASSERT_EQ(st.connections, 0);
        ASSERT_EQ(st.decrypts, 0);
        /* 3 min 59 s apart: still its own; 4 min 1 s either way: the parent's. */
        ASSERT_EQ(SEND(KMS_BEGIN, kms_begin_req, begin_req("us-east-1", (uint64_t) (now_ms() + 239000))),
                  RPC_STATUS_OK);
        ASSERT_OK(rpc_kms_begin_resp_decode(resp_buf, resp_len, &resp));
        ASSERT_FALSE(resp.parent_time);
        ASSERT_EQ(SEND(KMS_BEGIN, kms_begin_req, begin_req("us-east-1", (uint64_t) (now_ms() + 241000))),
                  RPC_STATUS_OK);
        ASSERT_OK(rpc_kms_begin_resp_decode(resp_buf, resp_len, &resp));
        ASSERT_TRUE(resp.parent_time);
        ASSERT_EQ(SEND(KMS_BEGIN, kms_begin_req, begin_req("cn-north-1", (uint64_t) (now_ms() - 241000))),
                  RPC_STATUS_OK);
        ASSERT_OK(rpc_kms_begin_resp_decode(resp_buf, resp_len, &resp));
        ASSERT_TRUE(resp.parent_time);
        /* A replaced round was ended (its statistics are the last ones). */
        etok_kms_last_stats(&st);
        ASSERT_EQ(st.documents, 1);
        /* KMS_END ends it; a second KMS_END is fine. */
        ASSERT_EQ(send_empty(RPC_CALL_KMS_END), RPC_STATUS_OK);
        ASSERT_TRUE(ctl.kms_round == NULL);
        ASSERT_EQ(send_empty(RPC_CALL_KMS_END), RPC_STATUS_OK);
        /* Long-term credentials (no session token), a domain given. */
        req = begin_req("eu-west-1", (uint64_t) now_ms());
        req.session_token = (struct rpc_slice){};
        req.domain = S("amazonaws.com");
        ASSERT_EQ(SEND(KMS_BEGIN, kms_begin_req, req), RPC_STATUS_OK);
        /* The connection's end ends the round. */
        etok_session_done(&ctl);
        ASSERT_TRUE(ctl.kms_round == NULL);
}

/* KMS unreachable: KMS_UNAVAILABLE after ETOK_KMS_ATTEMPTS attempts, and no token at all. */
static void test_unreachable(void) {
        struct rpc_token_add_req add = { .label = S("web"), .pin = S("pin-1234"), .n_keys = 2 };
        struct rpc_kms_begin_req req;
        struct etok_kms_stats st;
        size_t n;

        ASSERT_TRUE(fixture_init(true, true));
        ASSERT_EQ(SEND(KMS_BEGIN, kms_begin_req, begin_req("us-east-1", (uint64_t) now_ms())),
                  RPC_STATUS_OK);
        add.keys[0] = test_add_key(&k_rsa, 1, "plain"); /* --dev: a plaintext key next to a ciphertext */
        add.keys[1] = ct_key(2, "enc", "ciphertext");
        ASSERT_EQ(SEND(TOKEN_ADD, token_add_req, add), RPC_STATUS_KMS_UNAVAILABLE);
        etok_kms_round_stats(ctl.kms_round, &st);
        ASSERT_EQ(st.decrypts, ETOK_KMS_ATTEMPTS);
        ASSERT_EQ(st.documents, 1);
        etok_keystore_read_begin(ks);
        n = etok_keystore_count_locked(ks);
        etok_keystore_read_end(ks);
        ASSERT_EQ(n, 0);

        /* TOKEN_REFRESH checks the PIN before it asks KMS anything. */
        add.n_keys = 1;
        add.keys[0] = test_add_key(&k_rsa, 1, "plain");
        ASSERT_EQ(SEND(TOKEN_ADD, token_add_req, add), RPC_STATUS_OK);
        ASSERT_EQ(SEND(TOKEN_REFRESH, token_refresh_req,
                       (struct rpc_token_refresh_req){
                               .label = S("web"),
                               .pin = S("pin-9999"),
                               .n_keys = 1,
                               .keys = { { .id = 1, .ciphertext = S("ciphertext") } } }),
                  RPC_STATUS_PIN_INCORRECT);
        etok_kms_round_stats(ctl.kms_round, &st);
        ASSERT_EQ(st.decrypts, ETOK_KMS_ATTEMPTS); /* no new request */
        ASSERT_EQ(SEND(TOKEN_REFRESH, token_refresh_req,
                       (struct rpc_token_refresh_req){
                               .label = S("web"),
                               .pin = S("pin-1234"),
                               .n_keys = 1,
                               .keys = { { .id = 1, .ciphertext = S("ciphertext") } } }),
                  RPC_STATUS_KMS_UNAVAILABLE);

        /* per_key: no document at KMS_BEGIN, one for every Decrypt. */
        req = begin_req("us-east-1", (uint64_t) now_ms());
        req.per_key = true;
        ASSERT_EQ(SEND(KMS_BEGIN, kms_begin_req, req), RPC_STATUS_OK);
        etok_kms_round_stats(ctl.kms_round, &st);
        ASSERT_EQ(st.documents, 0);
        add.label = S("other");
        add.n_keys = 2;
        add.keys[0] = ct_key(1, "a", "ciphertext-a");
        add.keys[1] = ct_key(2, "b", "ciphertext-b");
        ASSERT_EQ(SEND(TOKEN_ADD, token_add_req, add), RPC_STATUS_KMS_UNAVAILABLE);
        etok_kms_round_stats(ctl.kms_round, &st);
        ASSERT_EQ(st.documents, 1); /* the first key failed: the second was never tried */
        ASSERT_EQ(st.decrypts, ETOK_KMS_ATTEMPTS);
}

/* A proxy address that is not an address: KMS_ERROR at the first Decrypt, not a crash. */
static void test_bad_proxy(void) {
        struct rpc_token_add_req add = { .label = S("web"), .pin = S("pin-1234"), .n_keys = 1 };

        ASSERT_TRUE(fixture_init(true, false));
        kcfg.proxy = "tcp:nope";
        add.keys[0] = ct_key(1, "k", "ciphertext");
        ASSERT_EQ(SEND(KMS_BEGIN, kms_begin_req, begin_req("us-east-1", (uint64_t) now_ms())),
                  RPC_STATUS_KMS_ERROR);
        ASSERT_TRUE(ctl.kms_round == NULL);
        ASSERT_EQ(SEND(TOKEN_ADD, token_add_req, add), RPC_STATUS_NO_KMS_ROUND);
}

static void test_cleanup(void) {
        fixture_done();
}

TAP_MAIN(TEST("/kms-round/no-nsm", test_no_nsm), TEST("/kms-round/dev-ttl", test_dev_ttl),
         TEST("/kms-round/attest", test_attest), TEST("/kms-round/begin", test_begin),
         TEST("/kms-round/unreachable", test_unreachable), TEST("/kms-round/bad-proxy", test_bad_proxy),
         TEST("/kms-round/cleanup", test_cleanup))
