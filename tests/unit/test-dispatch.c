/* Tests for enclave-token/dispatch.c: every call through the dispatcher, every status, and mutated requests.
 */
#include <pthread.h>

#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "common/log.h"
#include "common/rpc-calls.h"
#include "enclave-token/dispatch.h"
#include "enclave-token/errors.h"
#include "tests/lib/tap.h"
#include "tests/unit/etok-testkeys.h"

static struct test_key k_rsa, k_ec256, k_ec384, k_ec521, k_ed25519;
static bool keys_ready;

static bool keys_init(void) {
        if (!keys_ready)
                keys_ready = test_key_load("rsa2048", &k_rsa) && test_key_load("ec-p256", &k_ec256) &&
                             test_key_load("ec-p384", &k_ec384) && test_key_load("ec-p521", &k_ec521) &&
                             test_key_load("ed25519", &k_ed25519);
        return keys_ready;
}

static struct rpc_slice S(const char *s) {
        return (struct rpc_slice){ (const uint8_t *) s, strlen(s) };
}

/* ---- a fixture: a keystore provisioned through the dispatcher, and request/response buffers ---- */

static struct etok_keystore *ks;
static struct etok_dispatch disp;
static struct etok_session data_s, ctl_s;
static uint32_t slot_rsa, slot_ec, slot_ed;
static uint8_t ticket_rsa[RPC_TICKET_LEN], ticket_ec[RPC_TICKET_LEN], ticket_ed[RPC_TICKET_LEN];

static uint8_t req_buf[RPC_MAX_BODY_CONTROL];
static size_t req_len;
static uint8_t resp_buf[RPC_MAX_BODY_CONTROL];
static size_t resp_len;
static struct etok_reply reply;

static struct rpc_writer *begin(void) {
        static struct rpc_writer w;

        rpc_writer_init(&w, req_buf, sizeof(req_buf));
        return &w;
}

/* Runs one request body; a failed call must answer no body at all. */
static enum rpc_status run_body(struct etok_session *s, unsigned call, const uint8_t *body, size_t len) {
        struct rpc_writer w;

        rpc_writer_init(&w, resp_buf, rpc_channel_max_body(s->channel));
        etok_dispatch_request(&disp, s, call, body, len, &w, &reply);
        resp_len = w.len;
        if (reply.status != RPC_STATUS_OK && resp_len != 0)
                return _RPC_STATUS_MAX;
        return reply.status;
}

/* Runs the request ENC() left in req_buf. */
static enum rpc_status run(struct etok_session *s, unsigned call) {
        return run_body(s, call, req_buf, req_len);
}

#define ENC(expr)                                 \
        do {                                      \
                struct rpc_writer *w_ = begin();  \
                expr;                             \
                ASSERT_OK(rpc_writer_finish(w_)); \
                req_len = w_->len;                \
        } while (0)
#define W w_

static enum rpc_status hello(struct etok_session *s, uint32_t lo, uint32_t hi) {
        struct rpc_writer w;

        rpc_writer_init(&w, req_buf, sizeof(req_buf));
        rpc_hello_req_encode(
                &w, &(struct rpc_hello_req){ .min_version = lo, .max_version = hi, .client = S("test") });
        if (rpc_writer_finish(&w) < 0)
                return _RPC_STATUS_MAX;
        req_len = w.len;
        return run_body(s, RPC_CALL_HELLO, req_buf, req_len);
}

static enum rpc_status token_add(const char *label, const char *pin, bool replace, size_t n,
                                 const struct rpc_add_key *keys, uint32_t *ret_slot) {
        struct rpc_token_add_req req = { .label = S(label), .pin = S(pin), .replace = replace, .n_keys = n };
        struct rpc_token_add_resp resp;
        struct rpc_writer w;
        enum rpc_status st;

        memcpy(req.keys, keys, n * sizeof(*keys));
        rpc_writer_init(&w, req_buf, sizeof(req_buf));
        rpc_token_add_req_encode(&w, &req);
        if (rpc_writer_finish(&w) < 0)
                return _RPC_STATUS_MAX;
        req_len = w.len;
        st = run_body(&ctl_s, RPC_CALL_TOKEN_ADD, req_buf, req_len);
        if (st == RPC_STATUS_OK) {
                if (rpc_token_add_resp_decode(resp_buf, resp_len, &resp) < 0)
                        return _RPC_STATUS_MAX;
                if (ret_slot)
                        *ret_slot = resp.slot;
        }
        return st;
}

static enum rpc_status do_login(uint32_t slot, const char *pin, uint8_t ticket[RPC_TICKET_LEN]) {
        struct rpc_login_resp resp;
        struct rpc_writer w;
        enum rpc_status st;

        rpc_writer_init(&w, req_buf, sizeof(req_buf));
        rpc_login_req_encode(&w, &(struct rpc_login_req){ .slot = slot, .pin = S(pin) });
        req_len = w.len;
        st = run_body(&data_s, RPC_CALL_LOGIN, req_buf, req_len);
        if (st == RPC_STATUS_OK) {
                if (rpc_login_resp_decode(resp_buf, resp_len, &resp) < 0 ||
                    resp.ticket.len != RPC_TICKET_LEN)
                        return _RPC_STATUS_MAX;
                memcpy(ticket, resp.ticket.ptr, RPC_TICKET_LEN);
        }
        return st;
}

/* Provisioning and refused-PIN lines would drown the TAP output; ENCLAVE_ACM_TEST_LOG=1 keeps them. */
static void quiet_logs(void) {
        const char *e = getenv("ENCLAVE_ACM_TEST_LOG");

        if (!e || strcmp(e, "1") != 0)
                log_set_max_level(LOG_ERR);
}

static void fixture_done(void) {
        ks = etok_keystore_free(ks);
}

/* Three tokens: "rsa" (RSA-2048, id 1), "ec" (P-256 id 2, P-384 id 3, P-521 id 4), "ed" (Ed25519 id 5). */
static bool fixture_init(bool dev) {
        struct rpc_add_key keys[3];

        quiet_logs();
        fixture_done();
        if (!keys_init() || etok_keystore_new(ETOK_MAX_TOKENS_DEFAULT, &ks) < 0)
                return false;
        disp = (struct etok_dispatch){ .keystore = ks, .dev = true };
        etok_session_init(&data_s, RPC_CHANNEL_DATA);
        etok_session_init(&ctl_s, RPC_CHANNEL_CONTROL);
        if (hello(&data_s, 1, 1) != RPC_STATUS_OK || hello(&ctl_s, 1, 1) != RPC_STATUS_OK)
                return false;
        keys[0] = test_add_key(&k_rsa, 1, "rsa-key");
        if (token_add("rsa", "rsa-pin", false, 1, keys, &slot_rsa) != RPC_STATUS_OK)
                return false;
        keys[0] = test_add_key(&k_ec256, 2, "p256");
        keys[1] = test_add_key(&k_ec384, 3, "p384");
        keys[2] = test_add_key(&k_ec521, 4, "p521");
        if (token_add("ec", "ec-pin", false, 3, keys, &slot_ec) != RPC_STATUS_OK)
                return false;
        keys[0] = test_add_key(&k_ed25519, 5, "ed");
        if (token_add("ed", "ed-pin", false, 1, keys, &slot_ed) != RPC_STATUS_OK)
                return false;
        if (do_login(slot_rsa, "rsa-pin", ticket_rsa) != RPC_STATUS_OK ||
            do_login(slot_ec, "ec-pin", ticket_ec) != RPC_STATUS_OK ||
            do_login(slot_ed, "ed-pin", ticket_ed) != RPC_STATUS_OK)
                return false;
        disp.dev = dev;
        return true;
}

/* ---- HELLO, PING, channels and states ---- */

static void test_hello(void) {
        struct rpc_hello_resp resp;
        struct etok_session s;

        ASSERT_TRUE(fixture_init(false));
        etok_session_init(&s, RPC_CHANNEL_DATA);
        ASSERT_EQ(s.state, RPC_STATE_NEW);
        /* No common version: BAD_VERSION, the session stays new and open. */
        ASSERT_EQ(hello(&s, RPC_VERSION_MAX + 1, 7), RPC_STATUS_BAD_VERSION);
        ASSERT_FALSE(reply.close);
        ASSERT_EQ(hello(&s, 3, 2), RPC_STATUS_BAD_VERSION);
        ASSERT_EQ(hello(&s, 255, 255), RPC_STATUS_BAD_VERSION);
        ASSERT_EQ(s.state, RPC_STATE_NEW);
        /* Garbage HELLO: MALFORMED. */
        ASSERT_EQ(run_body(&s, RPC_CALL_HELLO, (const uint8_t *) "\xa0", 1), RPC_STATUS_MALFORMED);
        ASSERT_EQ(run_body(&s, RPC_CALL_HELLO, NULL, 0), RPC_STATUS_MALFORMED);
        ASSERT_EQ(s.state, RPC_STATE_NEW);

        ASSERT_EQ(hello(&s, 1, 9), RPC_STATUS_OK);
        ASSERT_FALSE(reply.close);
        ASSERT_EQ(s.state, RPC_STATE_READY);
        ASSERT_EQ(s.version, RPC_VERSION_MAX); /* the highest common one */
        ASSERT_OK(rpc_hello_resp_decode(resp_buf, resp_len, &resp));
        ASSERT_EQ(resp.version, RPC_VERSION_MAX);
        ASSERT_EQ(resp.generation, etok_keystore_generation(ks));
        ASSERT_EQ(resp.max_tokens, ETOK_MAX_TOKENS_DEFAULT);
        ASSERT_FALSE(resp.dev);
        ASSERT_TRUE(resp.server.len > 14 && memcmp(resp.server.ptr, "enclave-token ", 14) == 0);

        /* A second HELLO is a call in the wrong state. */
        ASSERT_EQ(hello(&s, 1, 1), RPC_STATUS_MALFORMED);
        ASSERT_TRUE(reply.close);

        disp.dev = true;
        etok_session_init(&s, RPC_CHANNEL_CONTROL);
        ASSERT_EQ(hello(&s, 1, 1), RPC_STATUS_OK);
        ASSERT_OK(rpc_hello_resp_decode(resp_buf, resp_len, &resp));
        ASSERT_TRUE(resp.dev);
}

static void test_states_channels(void) {
        static const unsigned data_calls[] = { RPC_CALL_TOKEN_LIST, RPC_CALL_TOKEN_OBJECTS, RPC_CALL_LOGIN,
                                               RPC_CALL_SIGN, RPC_CALL_DECRYPT };
        static const unsigned ctl_calls[] = { RPC_CALL_TOKEN_ADD, RPC_CALL_TOKEN_REMOVE, RPC_CALL_DESCRIBE };
        struct etok_session s;

        ASSERT_TRUE(fixture_init(true));
        /* Anything before HELLO: MALFORMED and close. */
        for (unsigned c = RPC_CALL_PING; c < _RPC_CALL_MAX; c++) {
                etok_session_init(&s, c == RPC_CALL_TOKEN_ADD || c == RPC_CALL_TOKEN_REMOVE ||
                                                      c == RPC_CALL_DESCRIBE
                                              ? RPC_CHANNEL_CONTROL
                                              : RPC_CHANNEL_DATA);
                ASSERT_EQ(run_body(&s, c, (const uint8_t *) "\xa0", 1), RPC_STATUS_MALFORMED);
                ASSERT_TRUE(reply.close);
        }
        /* Control calls on the data channel and the other way round. */
        for (size_t i = 0; i < ELEMENTSOF(ctl_calls); i++) {
                ASSERT_EQ(run_body(&data_s, ctl_calls[i], (const uint8_t *) "\xa0", 1),
                          RPC_STATUS_MALFORMED);
                ASSERT_TRUE(reply.close);
        }
        for (size_t i = 0; i < ELEMENTSOF(data_calls); i++) {
                ASSERT_EQ(run_body(&ctl_s, data_calls[i], (const uint8_t *) "\xa0", 1),
                          RPC_STATUS_MALFORMED);
                ASSERT_TRUE(reply.close);
        }
        /* Unknown call ids. */
        ASSERT_EQ(run_body(&data_s, _RPC_CALL_MAX, (const uint8_t *) "\xa0", 1), RPC_STATUS_MALFORMED);
        ASSERT_TRUE(reply.close);
        ASSERT_EQ(run_body(&ctl_s, 255, (const uint8_t *) "\xa0", 1), RPC_STATUS_MALFORMED);
        ASSERT_TRUE(reply.close);
        ASSERT_EQ(run_body(&ctl_s, UINT32_MAX, NULL, 0), RPC_STATUS_MALFORMED);
        ASSERT_TRUE(reply.close);
}

static void test_ping(void) {
        ASSERT_TRUE(fixture_init(false));
        ASSERT_EQ(run_body(&data_s, RPC_CALL_PING, (const uint8_t *) "\xa0", 1), RPC_STATUS_OK);
        ASSERT_FALSE(reply.close);
        ASSERT_FALSE(reply.secret);
        ASSERT_EQ(resp_len, 1);
        ASSERT_EQ(resp_buf[0], 0xa0);
        ASSERT_EQ(run_body(&ctl_s, RPC_CALL_PING, (const uint8_t *) "\xa0", 1), RPC_STATUS_OK);
        /* A bad body is MALFORMED but keeps the connection: the framing is intact. */
        ASSERT_EQ(run_body(&data_s, RPC_CALL_PING, (const uint8_t *) "\xa1\x01\x01", 3),
                  RPC_STATUS_MALFORMED);
        ASSERT_FALSE(reply.close);
        ASSERT_EQ(run_body(&data_s, RPC_CALL_PING, (const uint8_t *) "\xa0\x00", 2), RPC_STATUS_MALFORMED);
        ASSERT_EQ(run_body(&data_s, RPC_CALL_PING, NULL, 0), RPC_STATUS_MALFORMED);
}

/* ---- listing ---- */

static void test_list_objects(void) {
        _cleanup_free_ struct rpc_token_info *info = calloc(1, sizeof(*info));
        struct rpc_page_resp page = {};
        uint8_t *der = NULL;
        int n;

        ASSERT_TRUE(info);
        ASSERT_TRUE(fixture_init(false));
        ENC(rpc_page_req_encode(W, &(struct rpc_page_req){ 0 }));
        ASSERT_EQ(run(&data_s, RPC_CALL_TOKEN_LIST), RPC_STATUS_OK);
        ASSERT_OK(rpc_page_resp_decode(resp_buf, resp_len, &page));
        ASSERT_EQ(page.n_tokens, 3);
        ASSERT_EQ(page.n_tokens_total, 3);
        ASSERT_EQ(page.next, 0);
        ASSERT_EQ(page.generation, etok_keystore_generation(ks));
        for (size_t i = 0; i < page.n_tokens; i++) {
                const struct rpc_token_info *t = &page.tokens[i];

                if (i > 0)
                        ASSERT_TRUE(t->slot > page.tokens[i - 1].slot);
                ASSERT_EQ(t->n_keys, 0);
                if (t->slot == slot_ec) {
                        ASSERT_EQ(t->n_keys_total, 3);
                        ASSERT_TRUE(t->label.len == 2 && memcmp(t->label.ptr, "ec", 2) == 0);
                } else
                        ASSERT_EQ(t->n_keys_total, 1);
                ASSERT_TRUE(t->generation != 0);
        }
        rpc_page_resp_done(&page);

        ENC(rpc_slot_req_encode(W, &(struct rpc_slot_req){ .slot = slot_ec }));
        ASSERT_EQ(run(&data_s, RPC_CALL_TOKEN_OBJECTS), RPC_STATUS_OK);
        ASSERT_OK(rpc_token_info_decode(resp_buf, resp_len, info));
        ASSERT_EQ(info->slot, slot_ec);
        ASSERT_EQ(info->n_keys, 3);
        ASSERT_EQ(info->keys[0].id, 2);
        ASSERT_EQ(info->keys[0].type, RPC_KEY_EC);
        ASSERT_EQ(info->keys[0].bits, 256);
        ASSERT_EQ(info->keys[2].bits, 521);
        ASSERT_TRUE(info->keys[1].label.len == 4 && memcmp(info->keys[1].label.ptr, "p384", 4) == 0);
        ASSERT_EQ(info->keys[0].n_certs, 1);
        n = i2d_X509(k_ec256.cert, &der);
        ASSERT_EQ(info->keys[0].certs[0].len, n);
        ASSERT_MEMEQ(info->keys[0].certs[0].ptr, der, (size_t) n);
        OPENSSL_free(der);
        der = NULL;
        n = i2d_PUBKEY(k_ec256.pkey, &der);
        ASSERT_EQ(info->keys[0].spki.len, n);
        ASSERT_MEMEQ(info->keys[0].spki.ptr, der, (size_t) n);
        OPENSSL_free(der);
        ASSERT_EQ(info->keys[0].not_after, 0); /* DESCRIBE fields are not sent here */

        ENC(rpc_slot_req_encode(W, &(struct rpc_slot_req){ .slot = slot_ec ^ 0x40000000 }));
        ASSERT_EQ(run(&data_s, RPC_CALL_TOKEN_OBJECTS), RPC_STATUS_NO_SUCH_TOKEN);
        ASSERT_EQ(run_body(&data_s, RPC_CALL_TOKEN_OBJECTS, (const uint8_t *) "\xa0", 1),
                  RPC_STATUS_MALFORMED);
        ASSERT_EQ(run_body(&data_s, RPC_CALL_TOKEN_LIST, (const uint8_t *) "\x80", 1), RPC_STATUS_MALFORMED);
}

/* 300 tokens: TOKEN_LIST and DESCRIBE pages of 128, 128 and 44 in slot order. */
static void test_paging(void) {
        struct rpc_add_key key;
        size_t seen = 0;
        uint32_t last = 0;

        ASSERT_TRUE(fixture_init(true));
        key = test_add_key(&k_ec256, 9, "k");
        for (int i = 0; i < 297; i++) {
                char label[16];

                snprintf(label, sizeof(label), "page-%03d", i);
                ASSERT_EQ(token_add(label, "1234", false, 1, &key, NULL), RPC_STATUS_OK);
        }
        for (unsigned call = RPC_CALL_TOKEN_LIST; call <= RPC_CALL_DESCRIBE;
             call += RPC_CALL_DESCRIBE - RPC_CALL_TOKEN_LIST) {
                struct etok_session *s = call == RPC_CALL_TOKEN_LIST ? &data_s : &ctl_s;
                uint32_t cursor = 0;
                size_t pages = 0;

                seen = 0;
                last = 0;
                do {
                        struct rpc_page_resp page = {};

                        ENC(rpc_page_req_encode(W, &(struct rpc_page_req){ .cursor = cursor }));
                        ASSERT_EQ(run(s, call), RPC_STATUS_OK);
                        ASSERT_OK(rpc_page_resp_decode(resp_buf, resp_len, &page));
                        ASSERT_EQ(page.n_tokens_total, 300);
                        ASSERT_EQ(page.n_tokens, pages < 2 ? 128 : 44);
                        for (size_t i = 0; i < page.n_tokens; i++) {
                                const struct rpc_token_info *t = &page.tokens[i];

                                ASSERT_TRUE(seen == 0 || t->slot > last);
                                last = t->slot;
                                if (call == RPC_CALL_DESCRIBE) {
                                        ASSERT_TRUE(t->n_keys >= 1);
                                        /* notAfter of tests/data/rsa2048.crt.pem (2126-10-30T01:31:57Z)
                                         * or of the EC and Ed25519 ones, made a second later */
                                        ASSERT_TRUE(t->keys[0].not_after == 4948997517 ||
                                                    t->keys[0].not_after == 4948997518);
                                        ASSERT_TRUE(t->keys[0].subject.len > 3);
                                        ASSERT_EQ(t->keys[0].spki.len, 0);
                                        ASSERT_EQ(t->keys[0].n_certs, 0);
                                } else
                                        ASSERT_EQ(t->n_keys, 0);
                                seen++;
                        }
                        if (page.next)
                                ASSERT_TRUE(page.next > last);
                        cursor = page.next;
                        pages++;
                        rpc_page_resp_done(&page);
                } while (cursor != 0);
                ASSERT_EQ(pages, 3);
                ASSERT_EQ(seen, 300);
        }
        /* A cursor past every slot: an empty last page. */
        {
                struct rpc_page_resp page = {};

                ENC(rpc_page_req_encode(W, &(struct rpc_page_req){ .cursor = UINT32_MAX }));
                ASSERT_EQ(run(&data_s, RPC_CALL_TOKEN_LIST), RPC_STATUS_OK);
                ASSERT_OK(rpc_page_resp_decode(resp_buf, resp_len, &page));
                ASSERT_EQ(page.n_tokens, 0);
                ASSERT_EQ(page.next, 0);
                rpc_page_resp_done(&page);
        }
}

/* ---- LOGIN, SIGN, DECRYPT ---- */

static void test_login(void) {
        uint8_t t[RPC_TICKET_LEN];
        struct rpc_writer w;
        uint32_t slot;

        ASSERT_TRUE(fixture_init(false));
        ASSERT_EQ(do_login(slot_ec, "ec-pin", t), RPC_STATUS_OK);
        ASSERT_TRUE(reply.secret);
        ASSERT_MEMEQ(t, ticket_ec, RPC_TICKET_LEN);
        ASSERT_EQ(do_login(slot_ec, "ec-pin!", t), RPC_STATUS_PIN_INCORRECT);
        ASSERT_EQ(do_login(slot_ec + 1, "ec-pin", t), RPC_STATUS_NO_SUCH_TOKEN);
        ASSERT_EQ(run_body(&data_s, RPC_CALL_LOGIN, (const uint8_t *) "\xa0", 1), RPC_STATUS_MALFORMED);

        /* Back-off: five failures on this connection (one above), then PIN_LOCKED for a while on it,
         * even with the right PIN... */
        slot = slot_ed;
        for (int i = 0; i < 4; i++)
                ASSERT_EQ(do_login(slot, "nope", t), RPC_STATUS_PIN_INCORRECT);
        ASSERT_EQ(do_login(slot, "ed-pin", t), RPC_STATUS_PIN_LOCKED);
        ASSERT_FALSE(reply.close);
        /* ...but not on another connection. */
        {
                struct etok_session other = data_s;

                other.pin_guard = (struct etok_pin_guard){};
                rpc_writer_init(&w, req_buf, sizeof(req_buf));
                rpc_login_req_encode(&w, &(struct rpc_login_req){ .slot = slot, .pin = S("ed-pin") });
                ASSERT_EQ(run_body(&other, RPC_CALL_LOGIN, req_buf, w.len), RPC_STATUS_OK);
        }
}

static uint8_t sig[RPC_SIG_MAX];
static size_t sig_len;

static enum rpc_status do_crypt(unsigned call, const struct rpc_crypto_req *req) {
        struct rpc_crypto_resp resp;
        struct rpc_writer w;
        enum rpc_status st;

        rpc_writer_init(&w, req_buf, sizeof(req_buf));
        rpc_crypto_req_encode(&w, req);
        if (rpc_writer_finish(&w) < 0)
                return _RPC_STATUS_MAX;
        req_len = w.len;
        st = run_body(&data_s, call, req_buf, req_len);
        sig_len = 0;
        if (st == RPC_STATUS_OK) {
                if (rpc_crypto_resp_decode(resp_buf, resp_len, &resp) < 0 || resp.data.len > sizeof(sig))
                        return _RPC_STATUS_MAX;
                memcpy(sig, resp.data.ptr, resp.data.len);
                sig_len = resp.data.len;
        }
        return st;
}

static struct rpc_crypto_req creq(uint32_t slot, uint32_t key, const uint8_t *ticket, uint32_t mech,
                                  const void *data, size_t len) {
        return (struct rpc_crypto_req){ .slot = slot,
                                        .key_id = key,
                                        .ticket = { ticket, RPC_TICKET_LEN },
                                        .mech = mech,
                                        .data = { data, len } };
}

static void test_sign_rsa(void) {
        static const uint8_t sha256_prefix[] = { 0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                                 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20 };
        uint8_t di[sizeof(sha256_prefix) + 32], dg384[48], big[246];
        const char *msg = "the quick brown fox";
        struct rpc_crypto_req req;
        EVP_MD_CTX *m;

        ASSERT_TRUE(fixture_init(false));
        memcpy(di, sha256_prefix, sizeof(sha256_prefix));
        SHA256((const uint8_t *) msg, strlen(msg), di + sizeof(sha256_prefix));

        /* PKCS#1 v1.5 over a DigestInfo: verifies as an ordinary SHA-256 signature of the message. */
        req = creq(slot_rsa, 1, ticket_rsa, RPC_MECH_RSA_PKCS, di, sizeof(di));
        ASSERT_EQ(do_crypt(RPC_CALL_SIGN, &req), RPC_STATUS_OK);
        ASSERT_FALSE(reply.secret);
        ASSERT_EQ(sig_len, 256);
        m = EVP_MD_CTX_new();
        ASSERT_TRUE(m &&
                    EVP_DigestVerifyInit(m, NULL, EVP_sha256(), NULL, X509_get0_pubkey(k_rsa.cert)) == 1);
        ASSERT_EQ(EVP_DigestVerify(m, sig, sig_len, (const uint8_t *) msg, strlen(msg)), 1);
        EVP_MD_CTX_free(m);
        ASSERT_TRUE(test_verify(k_rsa.cert, RPC_MECH_RSA_PKCS, NULL, 0, di, sizeof(di), sig, sig_len));
        /* k - 11 bytes at most. */
        memset(big, 7, sizeof(big));
        req = creq(slot_rsa, 1, ticket_rsa, RPC_MECH_RSA_PKCS, big, 245);
        ASSERT_EQ(do_crypt(RPC_CALL_SIGN, &req), RPC_STATUS_OK);
        req.data.len = 246;
        ASSERT_EQ(do_crypt(RPC_CALL_SIGN, &req), RPC_STATUS_DATA_LEN);
        req.data.len = 0;
        ASSERT_EQ(do_crypt(RPC_CALL_SIGN, &req), RPC_STATUS_DATA_LEN);

        /* PSS: SHA-256 with a 32-byte salt, SHA-384 with none, MGF1 defaulting to the hash. */
        req = creq(slot_rsa, 1, ticket_rsa, RPC_MECH_RSA_PSS, di + sizeof(sha256_prefix), 32);
        req.hash = RPC_HASH_SHA256;
        req.mgf_hash = RPC_HASH_SHA256;
        req.salt_len = 32;
        ASSERT_EQ(do_crypt(RPC_CALL_SIGN, &req), RPC_STATUS_OK);
        ASSERT_EQ(sig_len, 256);
        ASSERT_TRUE(
                test_verify(k_rsa.cert, RPC_MECH_RSA_PSS, EVP_sha256(), 32, req.data.ptr, 32, sig, sig_len));
        ASSERT_FALSE(
                test_verify(k_rsa.cert, RPC_MECH_RSA_PSS, EVP_sha256(), 20, req.data.ptr, 32, sig, sig_len));
        SHA384((const uint8_t *) msg, strlen(msg), dg384);
        req = creq(slot_rsa, 1, ticket_rsa, RPC_MECH_RSA_PSS, dg384, sizeof(dg384));
        req.hash = RPC_HASH_SHA384;
        ASSERT_EQ(do_crypt(RPC_CALL_SIGN, &req), RPC_STATUS_OK);
        ASSERT_TRUE(test_verify(k_rsa.cert, RPC_MECH_RSA_PSS, EVP_sha384(), 0, dg384, sizeof(dg384), sig,
                                sig_len));
        /* Wrong digest length, no hash, an unknown hash, a salt too long for the modulus. */
        req.data.len = 32;
        ASSERT_EQ(do_crypt(RPC_CALL_SIGN, &req), RPC_STATUS_DATA_LEN);
        req.data.len = 48;
        req.hash = RPC_HASH_NONE;
        ASSERT_EQ(do_crypt(RPC_CALL_SIGN, &req), RPC_STATUS_UNSUPPORTED);
        req.hash = 77;
        ASSERT_EQ(do_crypt(RPC_CALL_SIGN, &req), RPC_STATUS_UNSUPPORTED);
        req.hash = RPC_HASH_SHA384;
        req.mgf_hash = 77;
        ASSERT_EQ(do_crypt(RPC_CALL_SIGN, &req), RPC_STATUS_UNSUPPORTED);
        req.mgf_hash = RPC_HASH_NONE;
        req.salt_len = 256 - 48 - 2 + 1;
        ASSERT_EQ(do_crypt(RPC_CALL_SIGN, &req), RPC_STATUS_UNSUPPORTED);
        req.salt_len = 256 - 48 - 2;
        ASSERT_EQ(do_crypt(RPC_CALL_SIGN, &req), RPC_STATUS_OK);
        ASSERT_TRUE(test_verify(k_rsa.cert, RPC_MECH_RSA_PSS, EVP_sha384(), 206, dg384, sizeof(dg384), sig,
                                sig_len));

        /* Mechanisms that are not RSA signatures. */
        req = creq(slot_rsa, 1, ticket_rsa, RPC_MECH_ECDSA, di, 32);
        ASSERT_EQ(do_crypt(RPC_CALL_SIGN, &req), RPC_STATUS_UNSUPPORTED);
        req.mech = RPC_MECH_EDDSA;
        ASSERT_EQ(do_crypt(RPC_CALL_SIGN, &req), RPC_STATUS_UNSUPPORTED);
        req.mech = RPC_MECH_RSA_OAEP;
        ASSERT_EQ(do_crypt(RPC_CALL_SIGN, &req), RPC_STATUS_UNSUPPORTED);
        req.mech = RPC_MECH_NONE;
        ASSERT_EQ(do_crypt(RPC_CALL_SIGN, &req), RPC_STATUS_UNSUPPORTED);
        req.mech = 1000;
        ASSERT_EQ(do_crypt(RPC_CALL_SIGN, &req), RPC_STATUS_UNSUPPORTED);
        ASSERT_EQ(ERR_peek_error(), 0);
}

static void test_sign_ec_ed(void) {
        static const struct {
                uint32_t key;
                const EVP_MD *(*md)(void);
                size_t sig_len;
                struct test_key *k;
        } cases[] = {
                { 2, EVP_sha256, 64, &k_ec256 },
                { 3, EVP_sha384, 96, &k_ec384 },
                { 4, EVP_sha512, 132, &k_ec521 },
                { 2, EVP_sha512, 64, &k_ec256 }, /* a longer digest is truncated */
                { 4, EVP_sha1, 132, &k_ec521 },
        };
        const char *msg = "ECDSA over a digest";
        struct rpc_crypto_req req;
        uint8_t dg[64];

        ASSERT_TRUE(fixture_init(false));
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                unsigned dlen = 0;

                ASSERT_TRUE(EVP_Digest(msg, strlen(msg), dg, &dlen, cases[i].md(), NULL) == 1);
                req = creq(slot_ec, cases[i].key, ticket_ec, RPC_MECH_ECDSA, dg, dlen);
                ASSERT_EQ(do_crypt(RPC_CALL_SIGN, &req), RPC_STATUS_OK);
                ASSERT_EQ(sig_len, cases[i].sig_len);
                ASSERT_TRUE(test_verify(cases[i].k->cert, RPC_MECH_ECDSA, NULL, 0, dg, dlen, sig, sig_len));
                dg[0] ^= 1;
                ASSERT_FALSE(test_verify(cases[i].k->cert, RPC_MECH_ECDSA, NULL, 0, dg, dlen, sig, sig_len));
        }
        req = creq(slot_ec, 2, ticket_ec, RPC_MECH_ECDSA, dg, 0);
        ASSERT_EQ(do_crypt(RPC_CALL_SIGN, &req), RPC_STATUS_DATA_LEN);
        req = creq(slot_ec, 2, ticket_ec, RPC_MECH_RSA_PKCS, dg, 32);
        ASSERT_EQ(do_crypt(RPC_CALL_SIGN, &req), RPC_STATUS_UNSUPPORTED);
        req = creq(slot_ec, 2, ticket_ec, RPC_MECH_EDDSA, dg, 32);
        ASSERT_EQ(do_crypt(RPC_CALL_SIGN, &req), RPC_STATUS_UNSUPPORTED);
        req = creq(slot_ec, 2, ticket_ec, RPC_MECH_RSA_PKCS_DEC, dg, 32);
        ASSERT_EQ(do_crypt(RPC_CALL_DECRYPT, &req), RPC_STATUS_UNSUPPORTED);

        /* Ed25519 signs the message itself, up to RPC_DATA_MAX bytes, the empty one too. */
        {
                static uint8_t m[RPC_DATA_MAX];

                memset(m, 'e', sizeof(m));
                for (size_t len = 0; len <= sizeof(m); len += sizeof(m) / 4) {
                        req = creq(slot_ed, 5, ticket_ed, RPC_MECH_EDDSA, m, len);
                        ASSERT_EQ(do_crypt(RPC_CALL_SIGN, &req), RPC_STATUS_OK);
                        ASSERT_EQ(sig_len, 64);
                        ASSERT_TRUE(
                                test_verify(k_ed25519.cert, RPC_MECH_EDDSA, NULL, 0, m, len, sig, sig_len));
                }
                req = creq(slot_ed, 5, ticket_ed, RPC_MECH_ECDSA, m, 32);
                ASSERT_EQ(do_crypt(RPC_CALL_SIGN, &req), RPC_STATUS_UNSUPPORTED);
        }
        ASSERT_EQ(ERR_peek_error(), 0);
}

static void test_decrypt(void) {
        static const struct {
                uint32_t mech;
                const EVP_MD *(*md)(void);
                const char *label;
        } cases[] = {
                { RPC_MECH_RSA_PKCS_DEC, NULL, NULL },   { RPC_MECH_RSA_OAEP, EVP_sha1, NULL },
                { RPC_MECH_RSA_OAEP, EVP_sha256, NULL }, { RPC_MECH_RSA_OAEP, EVP_sha256, "a label" },
                { RPC_MECH_RSA_OAEP, EVP_sha512, "" },
        };
        const uint8_t secret[] = "a 32-byte TLS premaster secret!!";
        uint8_t ct[512];
        struct rpc_crypto_req req;

        ASSERT_TRUE(fixture_init(false));
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                const EVP_MD *md = cases[i].md ? cases[i].md() : NULL;
                const char *label = cases[i].label ? cases[i].label : "";
                size_t ct_len = sizeof(ct);

                ASSERT_TRUE(test_encrypt(k_rsa.cert, md, (const uint8_t *) label, strlen(label), secret, 32,
                                         ct, &ct_len));
                ASSERT_EQ(ct_len, 256);
                req = creq(slot_rsa, 1, ticket_rsa, cases[i].mech, ct, ct_len);
                req.hash = !md                  ? 0
                           : md == EVP_sha1()   ? RPC_HASH_SHA1
                           : md == EVP_sha256() ? RPC_HASH_SHA256
                                                : RPC_HASH_SHA512;
                req.oaep_label = S(label);
                ASSERT_EQ(do_crypt(RPC_CALL_DECRYPT, &req), RPC_STATUS_OK);
                ASSERT_TRUE(reply.secret);
                ASSERT_EQ(sig_len, 32);
                ASSERT_MEMEQ(sig, secret, 32);
                if (cases[i].mech == RPC_MECH_RSA_OAEP) {
                        /* A wrong label or hash fails the OAEP check. */
                        req.oaep_label = S("other");
                        ASSERT_EQ(do_crypt(RPC_CALL_DECRYPT, &req), RPC_STATUS_DATA_INVALID);
                        req.oaep_label = S(label);
                        req.hash = req.hash == RPC_HASH_SHA1 ? RPC_HASH_SHA224 : RPC_HASH_SHA1;
                        ASSERT_EQ(do_crypt(RPC_CALL_DECRYPT, &req), RPC_STATUS_DATA_INVALID);
                }
                /* Lengths other than k. */
                req.data.len = 255;
                ASSERT_EQ(do_crypt(RPC_CALL_DECRYPT, &req), RPC_STATUS_DATA_LEN);
                req.data.len = 0;
                ASSERT_EQ(do_crypt(RPC_CALL_DECRYPT, &req), RPC_STATUS_DATA_LEN);
        }
        /* OAEP without a hash; a decryption mechanism on SIGN. */
        req = creq(slot_rsa, 1, ticket_rsa, RPC_MECH_RSA_OAEP, ct, 256);
        ASSERT_EQ(do_crypt(RPC_CALL_DECRYPT, &req), RPC_STATUS_UNSUPPORTED);
        req.mech = RPC_MECH_RSA_PKCS;
        ASSERT_EQ(do_crypt(RPC_CALL_DECRYPT, &req), RPC_STATUS_UNSUPPORTED);
        req.mech = RPC_MECH_RSA_PKCS_DEC;
        ASSERT_EQ(do_crypt(RPC_CALL_SIGN, &req), RPC_STATUS_UNSUPPORTED);
        /* Garbage ciphertext under OAEP (a value below the modulus). */
        memset(ct, 0x11, 256);
        req = creq(slot_rsa, 1, ticket_rsa, RPC_MECH_RSA_OAEP, ct, 256);
        req.hash = RPC_HASH_SHA256;
        ASSERT_EQ(do_crypt(RPC_CALL_DECRYPT, &req), RPC_STATUS_DATA_INVALID);
        ASSERT_EQ(resp_len, 0);
        ASSERT_EQ(ERR_peek_error(), 0);
}

static void test_crypto_access(void) {
        uint8_t dg[32] = { 1 }, bad[RPC_TICKET_LEN];
        struct rpc_crypto_req req;

        ASSERT_TRUE(fixture_init(false));
        memcpy(bad, ticket_ec, sizeof(bad));
        bad[0] ^= 0x80;
        req = creq(slot_ec, 2, bad, RPC_MECH_ECDSA, dg, 32);
        ASSERT_EQ(do_crypt(RPC_CALL_SIGN, &req), RPC_STATUS_NOT_LOGGED_IN);
        req.ticket = (struct rpc_slice){}; /* no ticket at all */
        ASSERT_EQ(do_crypt(RPC_CALL_SIGN, &req), RPC_STATUS_NOT_LOGGED_IN);
        req = creq(slot_ec, 2, ticket_rsa, RPC_MECH_ECDSA, dg, 32); /* another token's ticket */
        ASSERT_EQ(do_crypt(RPC_CALL_SIGN, &req), RPC_STATUS_NOT_LOGGED_IN);
        req = creq(slot_ec, 1, ticket_ec, RPC_MECH_ECDSA, dg, 32);
        ASSERT_EQ(do_crypt(RPC_CALL_SIGN, &req), RPC_STATUS_NO_SUCH_KEY);
        req = creq(slot_ec + 1, 2, ticket_ec, RPC_MECH_ECDSA, dg, 32);
        ASSERT_EQ(do_crypt(RPC_CALL_SIGN, &req), RPC_STATUS_NO_SUCH_TOKEN);
        ASSERT_EQ(do_crypt(RPC_CALL_DECRYPT, &req), RPC_STATUS_NO_SUCH_TOKEN);
        ASSERT_EQ(run_body(&data_s, RPC_CALL_SIGN, (const uint8_t *) "\xa0", 1), RPC_STATUS_MALFORMED);
        ASSERT_EQ(run_body(&data_s, RPC_CALL_DECRYPT, NULL, 0), RPC_STATUS_MALFORMED);
        ASSERT_FALSE(reply.close);
}

/* ---- provisioning ---- */

static void test_token_add(void) {
        struct rpc_add_key key, two[2];
        uint32_t slot, slot2;
        uint64_t gen;
        uint8_t t[RPC_TICKET_LEN];

        ASSERT_TRUE(fixture_init(false));
        key = test_add_key(&k_ec256, 1, "k");
        /* Without --dev plaintext keys are refused. */
        ASSERT_EQ(token_add("new", "1234", false, 1, &key, &slot), RPC_STATUS_DENIED);
        ASSERT_FALSE(reply.close);

        disp.dev = true;
        gen = etok_keystore_generation(ks);
        ASSERT_EQ(token_add("new", "1234", false, 1, &key, &slot), RPC_STATUS_OK);
        ASSERT_EQ(slot, etok_slot_hash("new", 3)); /* the label only */
        ASSERT_EQ(etok_keystore_generation(ks), gen + 1);
        ASSERT_FALSE(reply.secret);
        ASSERT_EQ(do_login(slot, "1234", t), RPC_STATUS_OK);
        ASSERT_EQ(token_add("new", "1234", false, 1, &key, &slot2), RPC_STATUS_EXISTS);
        ASSERT_EQ(token_add("new", "4321", true, 1, &key, &slot2), RPC_STATUS_PIN_INCORRECT);
        key = test_add_key(&k_ec384, 1, "k");
        ASSERT_EQ(token_add("new", "1234", true, 1, &key, &slot2), RPC_STATUS_OK);
        ASSERT_EQ(slot2, slot); /* other keys, the same slot id; the old version is retired */
        ASSERT_EQ(etok_keystore_generation(ks), gen + 2);
        ASSERT_EQ(etok_keystore_retired_count(ks), 1);
        {
                /* The ticket picks the version: the old one signs with the old key (old workers),
                 * a fresh LOGIN gets the new version; TOKEN_OBJECTS shows the new version only. */
                uint8_t dg[32] = { 3 }, t2[RPC_TICKET_LEN], bad[RPC_TICKET_LEN] = { 1 };
                struct rpc_crypto_req req;
                struct rpc_token_info *info = calloc(1, sizeof(*info));

                ASSERT_TRUE(info != NULL);
                ASSERT_EQ((req = creq(slot, 1, t, RPC_MECH_ECDSA, dg, 32), do_crypt(RPC_CALL_SIGN, &req)),
                          RPC_STATUS_OK);
                ASSERT_TRUE(
                        test_verify(k_ec256.cert, RPC_MECH_ECDSA, NULL, 0, dg, sizeof(dg), sig, sig_len));
                ASSERT_EQ(do_login(slot, "1234", t2), RPC_STATUS_OK);
                ASSERT_TRUE(memcmp(t, t2, RPC_TICKET_LEN) != 0);
                ASSERT_EQ((req = creq(slot, 1, t2, RPC_MECH_ECDSA, dg, 32), do_crypt(RPC_CALL_SIGN, &req)),
                          RPC_STATUS_OK);
                ASSERT_TRUE(
                        test_verify(k_ec384.cert, RPC_MECH_ECDSA, NULL, 0, dg, sizeof(dg), sig, sig_len));
                ASSERT_EQ((req = creq(slot, 1, bad, RPC_MECH_ECDSA, dg, 32), do_crypt(RPC_CALL_SIGN, &req)),
                          RPC_STATUS_NOT_LOGGED_IN);
                ENC(rpc_slot_req_encode(W, &(struct rpc_slot_req){ .slot = slot }));
                ASSERT_EQ(run(&data_s, RPC_CALL_TOKEN_OBJECTS), RPC_STATUS_OK);
                ASSERT_OK(rpc_token_info_decode(resp_buf, resp_len, info));
                ASSERT_EQ(info->n_keys, 1);
                ASSERT_EQ(info->keys[0].bits, 384);
                free(info);
        }
        /* The same keys again: in place, nothing more retired. */
        ASSERT_EQ(token_add("new", "1234", true, 1, &key, &slot2), RPC_STATUS_OK);
        ASSERT_EQ(slot2, slot);
        ASSERT_EQ(etok_keystore_generation(ks), gen + 3);
        ASSERT_EQ(etok_keystore_retired_count(ks), 1);

        /* Bad keys, duplicate ids, a bad body, a full keystore. */
        key = test_add_key(&k_ec256, 1, "k");
        key.chain_pem = S(k_ec384.chain_pem);
        ASSERT_EQ(token_add("bad", "1234", false, 1, &key, &slot2), RPC_STATUS_KEY_INVALID);
        two[0] = test_add_key(&k_ec256, 1, "a");
        two[1] = test_add_key(&k_ec384, 1, "b");
        ASSERT_EQ(token_add("dup", "1234", false, 2, two, &slot2), RPC_STATUS_MALFORMED);
        ASSERT_EQ(run_body(&ctl_s, RPC_CALL_TOKEN_ADD, (const uint8_t *) "\xa0", 1), RPC_STATUS_MALFORMED);
        ASSERT_FALSE(reply.close);

        {
                struct etok_keystore *small = NULL;
                struct etok_keystore *saved = disp.keystore;

                ASSERT_OK(etok_keystore_new(1, &small));
                disp.keystore = small;
                key = test_add_key(&k_ec256, 1, "k");
                ASSERT_EQ(token_add("one", "1234", false, 1, &key, &slot2), RPC_STATUS_OK);
                ASSERT_EQ(token_add("two", "1234", false, 1, &key, &slot2), RPC_STATUS_LIMIT);
                disp.keystore = saved;
                etok_keystore_free(small);
        }

        /* TOKEN_REMOVE: PIN checked, keys gone, tickets dead. */
        ASSERT_EQ(do_login(slot, "1234", t), RPC_STATUS_OK);
        ENC(rpc_token_remove_req_encode(
                W, &(struct rpc_token_remove_req){ .label = S("new"), .pin = S("12345") }));
        ASSERT_EQ(run(&ctl_s, RPC_CALL_TOKEN_REMOVE), RPC_STATUS_PIN_INCORRECT);
        ENC(rpc_token_remove_req_encode(
                W, &(struct rpc_token_remove_req){ .label = S("old"), .pin = S("1234") }));
        ASSERT_EQ(run(&ctl_s, RPC_CALL_TOKEN_REMOVE), RPC_STATUS_NO_SUCH_TOKEN);
        ENC(rpc_token_remove_req_encode(
                W, &(struct rpc_token_remove_req){ .label = S("new"), .pin = S("1234") }));
        ASSERT_EQ(run(&ctl_s, RPC_CALL_TOKEN_REMOVE), RPC_STATUS_OK);
        ASSERT_EQ(resp_len, 1);
        ASSERT_EQ(resp_buf[0], 0xa0);
        ASSERT_EQ(etok_keystore_generation(ks), gen + 4);
        ASSERT_EQ(do_login(slot, "1234", t), RPC_STATUS_NO_SUCH_TOKEN);
        ASSERT_EQ(run_body(&ctl_s, RPC_CALL_TOKEN_REMOVE, (const uint8_t *) "\xa0", 1),
                  RPC_STATUS_MALFORMED);
        ASSERT_EQ(run_body(&ctl_s, RPC_CALL_DESCRIBE, (const uint8_t *) "\xa1\x09\x00", 3),
                  RPC_STATUS_MALFORMED);
}

/* ---- mutations: every bit flip, 0x00/0xff byte and truncation of valid requests ---- */

struct sample {
        struct etok_session *session;
        unsigned call;
        uint8_t *body;
        size_t len;
        size_t stride; /* > 1: inside long payloads (PEM text, RSA blocks) mutate every stride-th byte */
};

static void mutate_one(const struct sample *s, const uint8_t *body, size_t len) {
        struct etok_session copy = *s->session;
        struct rpc_writer w;

        rpc_writer_init(&w, resp_buf, rpc_channel_max_body(copy.channel));
        etok_dispatch_request(&disp, &copy, s->call, body, len, &w, &reply);
        if (reply.status != RPC_STATUS_OK && w.len != 0)
                tap_failed_current = true;
}

static size_t mutate_all(const struct sample *s, uint8_t *scratch) {
        size_t runs = 0;

        for (size_t i = 0; i < s->len; i++) {
                /* Every truncation is cheap (it never decodes) and always runs. */
                {
                        uint8_t *t = malloc(i ? i : 1);

                        if (t) {
                                memcpy(t, s->body, i);
                                mutate_one(s, t, i);
                                free(t);
                        }
                        runs++;
                }
                /* Each payload byte of a TOKEN_ADD costs a key parse, of an RSA sample an RSA
                 * operation: there, the map structure at both ends plus a sample of the middle. */
                if (s->stride > 1 && i >= 24 && i + 24 < s->len && i % s->stride != 0)
                        continue;
                for (int bit = 0; bit < 8; bit++) {
                        memcpy(scratch, s->body, s->len);
                        scratch[i] ^= (uint8_t) (1u << bit);
                        mutate_one(s, scratch, s->len);
                        runs++;
                }
                memcpy(scratch, s->body, s->len);
                scratch[i] = 0x00;
                mutate_one(s, scratch, s->len);
                scratch[i] = 0xff;
                mutate_one(s, scratch, s->len);
                runs += 2;
        }
        return runs;
}

static void add_sample(struct sample *list, size_t *n, struct etok_session *s, unsigned call, size_t stride,
                       void (*enc)(struct rpc_writer *w, const void *m), const void *m) {
        struct rpc_writer w;

        rpc_writer_init(&w, req_buf, sizeof(req_buf));
        enc(&w, m);
        if (rpc_writer_finish(&w) < 0)
                return;
        list[*n] = (struct sample){
                .session = s, .call = call, .body = malloc(w.len), .len = w.len, .stride = stride
        };
        if (list[*n].body) {
                memcpy(list[*n].body, req_buf, w.len);
                (*n)++;
        }
}

static void enc_empty(struct rpc_writer *w, const void *m) {
        rpc_empty_encode(w);
}

#define SAMPLE(s, call, fn, m) SAMPLE_STRIDE(s, call, 1, fn, m)
#define SAMPLE_STRIDE(s, call, stride, fn, m) \
        add_sample(samples, &n, s, call, stride, (void (*)(struct rpc_writer *, const void *)) fn, m)

static void test_mutations(void) {
        struct sample samples[16];
        struct rpc_token_add_req add = { .label = S("mut"), .pin = S("1234"), .replace = true, .n_keys = 1 };
        const uint8_t dg[32] = { 3 };
        struct etok_session fresh;
        uint8_t ct[256], *scratch;
        size_t n = 0, runs = 0, ct_len = sizeof(ct);

        ASSERT_TRUE(fixture_init(true));
        ASSERT_TRUE(test_encrypt(k_rsa.cert, EVP_sha256(), NULL, 0, dg, sizeof(dg), ct, &ct_len));
        add.keys[0] = test_add_key(&k_ed25519, 1, "k");
        etok_session_init(&fresh, RPC_CHANNEL_DATA);

        SAMPLE(&fresh, RPC_CALL_HELLO, rpc_hello_req_encode,
               &((struct rpc_hello_req){ .min_version = 1, .max_version = 3, .client = S("mutant") }));
        SAMPLE(&data_s, RPC_CALL_PING, enc_empty, NULL);
        SAMPLE(&data_s, RPC_CALL_TOKEN_LIST, rpc_page_req_encode, &((struct rpc_page_req){ .cursor = 5 }));
        SAMPLE(&ctl_s, RPC_CALL_DESCRIBE, rpc_page_req_encode, &((struct rpc_page_req){ .cursor = 0 }));
        SAMPLE(&data_s, RPC_CALL_TOKEN_OBJECTS, rpc_slot_req_encode,
               &((struct rpc_slot_req){ .slot = slot_ec }));
        SAMPLE(&data_s, RPC_CALL_LOGIN, rpc_login_req_encode,
               &((struct rpc_login_req){ .slot = slot_rsa, .pin = S("rsa-pin") }));
        {
                struct rpc_crypto_req pss = creq(slot_rsa, 1, ticket_rsa, RPC_MECH_RSA_PSS, dg, 32);
                struct rpc_crypto_req ecdsa = creq(slot_ec, 2, ticket_ec, RPC_MECH_ECDSA, dg, 32);
                struct rpc_crypto_req oaep = creq(slot_rsa, 1, ticket_rsa, RPC_MECH_RSA_OAEP, ct, ct_len);

                pss.hash = RPC_HASH_SHA256;
                pss.salt_len = 32;
                oaep.hash = RPC_HASH_SHA256;
                oaep.mgf_hash = RPC_HASH_SHA256;
                SAMPLE_STRIDE(&data_s, RPC_CALL_SIGN, 5, rpc_crypto_req_encode, &pss);
                SAMPLE(&data_s, RPC_CALL_SIGN, rpc_crypto_req_encode, &ecdsa);
                SAMPLE_STRIDE(&data_s, RPC_CALL_DECRYPT, 23, rpc_crypto_req_encode, &oaep);
        }
        SAMPLE_STRIDE(&ctl_s, RPC_CALL_TOKEN_ADD, 61, rpc_token_add_req_encode, &add);
        SAMPLE(&ctl_s, RPC_CALL_TOKEN_REMOVE, rpc_token_remove_req_encode,
               &((struct rpc_token_remove_req){ .label = S("mut"), .pin = S("1234") }));
        ASSERT_EQ(n, 11);

        scratch = malloc(RPC_MAX_BODY_CONTROL);
        ASSERT_TRUE(scratch);
        /* Each sample first succeeds as it is. */
        for (size_t i = 0; i < n; i++) {
                mutate_one(&samples[i], samples[i].body, samples[i].len);
                ASSERT_EQ(reply.status, RPC_STATUS_OK);
        }
        /* Keep the fixture's tokens: the PIN back-off would otherwise stop LOGIN mutations early. */
        for (size_t i = 0; i < n; i++)
                runs += mutate_all(&samples[i], scratch);
        printf("# %zu mutated requests\n", runs);
        free(scratch);
        for (size_t i = 0; i < n; i++)
                free(samples[i].body);
        ASSERT_EQ(ERR_peek_error(), 0);
        ASSERT_FALSE(tap_failed_current);
}

/* TOKEN_ADD hold and TOKEN_RELEASE through the dispatcher: the answer says how many versions are held,
 * the release is authenticated like TOKEN_REMOVE and control-only, and says how many it released. */
static enum rpc_status token_release(const char *label, const char *pin, uint32_t *ret_released) {
        struct rpc_token_release_resp resp = {};
        enum rpc_status st;
        struct rpc_writer w;

        rpc_writer_init(&w, req_buf, sizeof(req_buf));
        rpc_token_release_req_encode(&w,
                                     &(struct rpc_token_release_req){ .label = S(label), .pin = S(pin) });
        if (rpc_writer_finish(&w) < 0)
                return _RPC_STATUS_MAX;
        req_len = w.len;
        st = run_body(&ctl_s, RPC_CALL_TOKEN_RELEASE, req_buf, req_len);
        if (st == RPC_STATUS_OK && rpc_token_release_resp_decode(resp_buf, resp_len, &resp) < 0)
                return _RPC_STATUS_MAX;
        *ret_released = resp.released;
        return st;
}

static void test_token_release(void) {
        struct rpc_token_add_req req = {
                .label = S("held"), .pin = S("1234"), .replace = true, .n_keys = 1
        };
        struct rpc_token_add_resp resp = {};
        uint8_t t1[RPC_TICKET_LEN], dg[32] = { 9 }, out[RPC_SIG_MAX];
        struct sample smp = { .session = &ctl_s, .call = RPC_CALL_TOKEN_RELEASE, .stride = 1 };
        struct etok_session fresh;
        uint32_t slot, released = 99;
        size_t n;

        ASSERT_TRUE(fixture_init(true));
        req.keys[0] = test_add_key(&k_ec256, 1, "k");
        ASSERT_EQ(token_add("held", "1234", false, 1, req.keys, &slot), RPC_STATUS_OK);
        ASSERT_EQ(token_release("held", "1234", &released), RPC_STATUS_OK); /* nothing held */
        ASSERT_EQ(released, 0u);
        ASSERT_EQ(resp_len, 1);
        ASSERT_EQ(resp_buf[0], 0xa0);
        ASSERT_EQ(do_login(slot, "1234", t1), RPC_STATUS_OK);

        /* The replace with hold: answered with the count of held versions. */
        req.keys[0] = test_add_key(&k_ec384, 2, "k2");
        req.hold = true;
        ENC(rpc_token_add_req_encode(W, &req));
        ASSERT_EQ(run(&ctl_s, RPC_CALL_TOKEN_ADD), RPC_STATUS_OK);
        ASSERT_OK(rpc_token_add_resp_decode(resp_buf, resp_len, &resp));
        ASSERT_EQ(resp.slot, slot);
        ASSERT_EQ(resp.held, 1u);
        /* Without hold (a manual replace): the byte-identical request of before, nothing more held. */
        req.hold = false;
        req.keys[0] = test_add_key(&k_ec521, 1, "k");
        ENC(rpc_token_add_req_encode(W, &req));
        ASSERT_TRUE(memmem(req_buf, req_len, "\x05\xf5", 2) == NULL);
        ASSERT_EQ(run(&ctl_s, RPC_CALL_TOKEN_ADD), RPC_STATUS_OK);
        ASSERT_OK(rpc_token_add_resp_decode(resp_buf, resp_len, &resp));
        ASSERT_EQ(resp.held, 1u);
        ASSERT_EQ(etok_keystore_retired_count(ks), 2);
        ASSERT_EQ(etok_keystore_held_count(ks, NULL), 1);
        ASSERT_EQ(etok_keystore_crypt(ks, false,
                                      &(struct rpc_crypto_req){ .slot = slot,
                                                                .key_id = 1,
                                                                .ticket = { t1, RPC_TICKET_LEN },
                                                                .mech = RPC_MECH_ECDSA,
                                                                .data = { dg, sizeof(dg) } },
                                      out, sizeof(out), &n),
                  0);

        /* Wrong PIN, unknown label, the data channel: refused, still held. */
        ASSERT_EQ(token_release("held", "4321", &released), RPC_STATUS_PIN_INCORRECT);
        ASSERT_EQ(token_release("nope", "1234", &released), RPC_STATUS_NO_SUCH_TOKEN);
        etok_session_init(&fresh, RPC_CHANNEL_DATA);
        ASSERT_EQ(hello(&fresh, 1, 1), RPC_STATUS_OK);
        ASSERT_EQ(run_body(&fresh, RPC_CALL_TOKEN_RELEASE, req_buf, req_len), RPC_STATUS_MALFORMED);
        ASSERT_TRUE(reply.close);
        ASSERT_EQ(etok_keystore_held_count(ks, NULL), 1);

        ASSERT_EQ(token_release("held", "1234", &released), RPC_STATUS_OK);
        ASSERT_EQ(released, 1u);
        ASSERT_FALSE(reply.secret);
        ASSERT_EQ(etok_keystore_held_count(ks, NULL), 0);
        ASSERT_EQ(token_release("held", "1234", &released), RPC_STATUS_OK);
        ASSERT_EQ(released, 0u);

        /* Mutated release requests fail cleanly or succeed, never answer a body with an error. */
        ASSERT_EQ(token_release("held", "1234", &released), RPC_STATUS_OK);
        smp.body = malloc(req_len);
        ASSERT_TRUE(smp.body);
        memcpy(smp.body, req_buf, req_len);
        smp.len = req_len;
        {
                uint8_t *scratch = malloc(RPC_MAX_BODY_CONTROL);

                ASSERT_TRUE(scratch);
                printf("# %zu mutated TOKEN_RELEASE requests\n", mutate_all(&smp, scratch));
                free(scratch);
        }
        free(smp.body);
        ASSERT_FALSE(tap_failed_current);
}

/* ---- STATS ---- */

static struct rpc_stats_resp stats;

static enum rpc_status do_stats(struct etok_session *s, uint32_t cursor) {
        struct rpc_writer *w = begin();
        enum rpc_status st;

        rpc_stats_resp_done(&stats);
        rpc_page_req_encode(w, &(struct rpc_page_req){ .cursor = cursor });
        if (rpc_writer_finish(w) < 0)
                return _RPC_STATUS_MAX;
        req_len = w->len;
        st = run(s, RPC_CALL_STATS);
        if (st == RPC_STATUS_OK && rpc_stats_resp_decode(resp_buf, resp_len, &stats) < 0)
                return _RPC_STATUS_MAX;
        return st;
}

static enum rpc_status sign_with(uint32_t slot, uint32_t key, const uint8_t *ticket, uint32_t mech,
                                 const void *data, size_t len) {
        struct rpc_crypto_req req = creq(slot, key, ticket, mech, data, len);
        return do_crypt(RPC_CALL_SIGN, &req);
}

static const struct rpc_token_stats *stats_token(uint32_t slot) {
        for (size_t i = 0; i < stats.n_tokens; i++)
                if (stats.tokens[i].slot == slot)
                        return &stats.tokens[i];
        return NULL;
}

static uint64_t stats_ops(const struct rpc_token_stats *t, uint32_t key_id, enum rpc_mech m) {
        for (size_t i = 0; i < t->n_keys; i++)
                if (t->keys[i].id == key_id)
                        return m < (int) t->keys[i].n_ops ? t->keys[i].ops[m] : 0;
        return 0;
}

static uint64_t stats_error(const uint64_t *errors, size_t n, enum rpc_status st) {
        return (size_t) st < n ? errors[st] : 0;
}

static uint64_t stats_latency_count(const struct rpc_token_stats *t) {
        uint64_t n = 0;

        for (size_t i = 0; i < t->n_latency; i++)
                n += t->latency[i];
        return n;
}

static void test_stats(void) {
        uint8_t dg[32] = { 1, 2, 3 }, other[RPC_TICKET_LEN] = {};
        const struct rpc_token_stats *t;
        struct rpc_add_key key;

        ASSERT_TRUE(fixture_init(true));
        /* Control channel only; a fresh keystore counts nothing yet. */
        ASSERT_EQ(do_stats(&data_s, 0), RPC_STATUS_MALFORMED);
        ASSERT_TRUE(reply.close);
        ASSERT_EQ(do_stats(&ctl_s, 0), RPC_STATUS_OK);
        ASSERT_FALSE(reply.secret);
        ASSERT_EQ(stats.n_tokens, 3);
        ASSERT_EQ(stats.n_tokens_total, 3);
        ASSERT_EQ(stats.next, 0);
        ASSERT_EQ(stats.keys_held, 5);
        ASSERT_EQ(stats.generation, etok_keystore_generation(ks));
        ASSERT_EQ(stats.n_bounds, ETOK_STATS_BOUNDS);
        ASSERT_EQ(stats.bounds_ns[0], 50000);
        ASSERT_EQ(stats.bounds_ns[ETOK_STATS_BOUNDS - 1], 1000000000);
        t = stats_token(slot_ec);
        ASSERT_TRUE(t != NULL);
        ASSERT_EQ(t->label.len, 2);
        ASSERT_MEMEQ(t->label.ptr, "ec", 2);
        ASSERT_EQ(t->n_keys_held, 3);
        ASSERT_EQ(t->n_keys, 0);
        ASSERT_EQ(t->n_errors, 0);
        ASSERT_EQ(stats_latency_count(t), 0);

        /* 7 ECDSA signatures with key 2, 2 with key 3, one Ed25519. */
        for (int i = 0; i < 7; i++)
                ASSERT_EQ(sign_with(slot_ec, 2, ticket_ec, RPC_MECH_ECDSA, dg, 32), RPC_STATUS_OK);
        for (int i = 0; i < 2; i++)
                ASSERT_EQ(sign_with(slot_ec, 3, ticket_ec, RPC_MECH_ECDSA, dg, 32), RPC_STATUS_OK);
        ASSERT_EQ(sign_with(slot_ed, 5, ticket_ed, RPC_MECH_EDDSA, dg, 5), RPC_STATUS_OK);
        /* Failures: an unknown key, a wrong mechanism, a stale ticket, an unknown slot, wrong PINs. */
        ASSERT_EQ(sign_with(slot_ec, 99, ticket_ec, RPC_MECH_ECDSA, dg, 32), RPC_STATUS_NO_SUCH_KEY);
        ASSERT_EQ(sign_with(slot_ec, 2, ticket_ec, RPC_MECH_EDDSA, dg, 32), RPC_STATUS_UNSUPPORTED);
        ASSERT_EQ(sign_with(slot_ec, 2, other, RPC_MECH_ECDSA, dg, 32), RPC_STATUS_NOT_LOGGED_IN);
        ASSERT_EQ(sign_with(12345, 2, ticket_ec, RPC_MECH_ECDSA, dg, 32), RPC_STATUS_NO_SUCH_TOKEN);
        ASSERT_EQ(do_login(slot_ec, "wrong-pin", other), RPC_STATUS_PIN_INCORRECT);
        ASSERT_EQ(do_login(slot_ec, "wrong-pin", other), RPC_STATUS_PIN_INCORRECT);
        ASSERT_EQ(do_login(12345, "wrong-pin", other), RPC_STATUS_NO_SUCH_TOKEN);

        ASSERT_EQ(do_stats(&ctl_s, 0), RPC_STATUS_OK);
        t = stats_token(slot_ec);
        ASSERT_TRUE(t != NULL);
        ASSERT_EQ(stats_ops(t, 2, RPC_MECH_ECDSA), 7);
        ASSERT_EQ(stats_ops(t, 3, RPC_MECH_ECDSA), 2);
        ASSERT_EQ(stats_ops(t, 4, RPC_MECH_ECDSA), 0);
        ASSERT_EQ(stats_latency_count(t), 9); /* successful operations only */
        ASSERT_EQ(t->n_latency, ETOK_STATS_BOUNDS + 1);
        ASSERT_TRUE(t->latency_sum_ns > 0);
        ASSERT_EQ(stats_error(t->errors, t->n_errors, RPC_STATUS_NO_SUCH_KEY), 1);
        ASSERT_EQ(stats_error(t->errors, t->n_errors, RPC_STATUS_UNSUPPORTED), 1);
        ASSERT_EQ(stats_error(t->errors, t->n_errors, RPC_STATUS_NOT_LOGGED_IN), 1);
        ASSERT_EQ(stats_error(t->errors, t->n_errors, RPC_STATUS_NO_SUCH_TOKEN), 0);
        ASSERT_EQ(t->login_failures, 2);
        ASSERT_EQ(t->login_locked, 0);
        /* What named no token is the daemon's. */
        ASSERT_EQ(stats_error(stats.errors, stats.n_errors, RPC_STATUS_NO_SUCH_TOKEN), 2);
        t = stats_token(slot_ed);
        ASSERT_EQ(stats_ops(t, 5, RPC_MECH_EDDSA), 1);
        ASSERT_EQ(t->login_failures, 0);
        t = stats_token(slot_rsa);
        ASSERT_EQ(stats_latency_count(t), 0);

        /* A replacement with other keys keeps the label's counters; the new key counts on. */
        key = test_add_key(&k_ec384, 7, "p384-new");
        ASSERT_EQ(token_add("ec", "ec-pin", true, 1, &key, NULL), RPC_STATUS_OK);
        ASSERT_EQ(do_login(slot_ec, "ec-pin", ticket_ec), RPC_STATUS_OK);
        ASSERT_EQ(sign_with(slot_ec, 7, ticket_ec, RPC_MECH_ECDSA, dg, 32), RPC_STATUS_OK);
        ASSERT_EQ(do_stats(&ctl_s, 0), RPC_STATUS_OK);
        ASSERT_EQ(stats.retired, 1);
        ASSERT_EQ(stats.keys_held, 3);
        t = stats_token(slot_ec);
        ASSERT_EQ(t->n_keys_held, 1);
        ASSERT_EQ(stats_ops(t, 2, RPC_MECH_ECDSA), 7);
        ASSERT_EQ(stats_ops(t, 7, RPC_MECH_ECDSA), 1);
        ASSERT_EQ(stats_latency_count(t), 10);

        /* Paging: a cursor past the first token starts there. */
        ASSERT_EQ(do_stats(&ctl_s, stats.tokens[1].slot), RPC_STATUS_OK);
        ASSERT_EQ(stats.n_tokens, 2);
        ASSERT_EQ(stats.n_tokens_total, 3);
        ASSERT_EQ(do_stats(&ctl_s, UINT32_MAX), RPC_STATUS_OK);
        ASSERT_EQ(stats.n_tokens, 0);
        /* A malformed request. */
        ASSERT_EQ(run_body(&ctl_s, RPC_CALL_STATS, (const uint8_t *) "\xa1\x01\x61\x41", 4),
                  RPC_STATUS_MALFORMED);
        rpc_stats_resp_done(&stats);
}

/* The bucket of a duration: the first upper bound it does not exceed. */
static void test_stats_buckets(void) {
        ASSERT_EQ(etok_stats_bucket(0), 0);
        ASSERT_EQ(etok_stats_bucket(50000), 0);
        ASSERT_EQ(etok_stats_bucket(50001), 1);
        ASSERT_EQ(etok_stats_bucket(999999999), ETOK_STATS_BOUNDS - 1);
        ASSERT_EQ(etok_stats_bucket(1000000000), ETOK_STATS_BOUNDS - 1);
        ASSERT_EQ(etok_stats_bucket(1000000001), ETOK_STATS_BOUNDS);
        ASSERT_EQ(etok_stats_bucket(UINT64_MAX), ETOK_STATS_BOUNDS);
        for (size_t i = 1; i < ETOK_STATS_BOUNDS; i++)
                ASSERT_TRUE(etok_stats_bounds_ns[i] > etok_stats_bounds_ns[i - 1]);
}

/* Counters from many threads at once: none is lost (relaxed atomics, no lock). */
#define STATS_THREADS 4
#define STATS_OPS     20000
static void *stats_worker(void *arg) {
        struct etok_stats *s = arg;

        for (uint32_t i = 0; i < STATS_OPS; i++) {
                etok_stats_op(s, i % 3, RPC_MECH_ECDSA, 1000 * (uint64_t) (i % 2000));
                etok_stats_error(s, RPC_STATUS_NO_SUCH_KEY);
        }
        return NULL;
}

static void test_stats_threads(void) {
        _cleanup_(etok_stats_unrefp) struct etok_stats *s = NULL;
        struct rpc_token_stats *out = calloc(1, sizeof(*out));
        pthread_t th[STATS_THREADS];
        uint64_t n = 0, ops = 0;

        ASSERT_TRUE(out != NULL);
        ASSERT_OK(etok_stats_new(&s));
        for (size_t i = 0; i < STATS_THREADS; i++)
                ASSERT_EQ(pthread_create(&th[i], NULL, stats_worker, s), 0);
        for (size_t i = 0; i < STATS_THREADS; i++)
                ASSERT_EQ(pthread_join(th[i], NULL), 0);
        etok_stats_read(s, out);
        for (size_t i = 0; i < out->n_latency; i++)
                n += out->latency[i];
        ASSERT_EQ(n, (uint64_t) STATS_THREADS * STATS_OPS);
        ASSERT_EQ(out->n_keys, 3); /* key ids 0, 1, 2: each claimed once */
        for (size_t i = 0; i < out->n_keys; i++)
                ops += out->keys[i].ops[RPC_MECH_ECDSA];
        ASSERT_EQ(ops, (uint64_t) STATS_THREADS * STATS_OPS);
        ASSERT_EQ(out->errors[RPC_STATUS_NO_SUCH_KEY], (uint64_t) STATS_THREADS * STATS_OPS);
        ASSERT_EQ(out->n_errors, RPC_STATUS_NO_SUCH_KEY + 1);
        free(out);
}

static void test_cleanup(void) {
        fixture_done();
        test_key_done(&k_rsa);
        test_key_done(&k_ec256);
        test_key_done(&k_ec384);
        test_key_done(&k_ec521);
        test_key_done(&k_ed25519);
        keys_ready = false;
}

TAP_MAIN(TEST("/dispatch/hello", test_hello), TEST("/dispatch/states-channels", test_states_channels),
         TEST("/dispatch/ping", test_ping), TEST("/dispatch/list-objects", test_list_objects),
         TEST("/dispatch/paging", test_paging), TEST("/dispatch/login", test_login),
         TEST("/dispatch/sign-rsa", test_sign_rsa), TEST("/dispatch/sign-ec-ed", test_sign_ec_ed),
         TEST("/dispatch/decrypt", test_decrypt), TEST("/dispatch/crypto-access", test_crypto_access),
         TEST("/dispatch/token-add-remove", test_token_add), TEST("/dispatch/mutations", test_mutations),
         TEST("/dispatch/token-release", test_token_release), TEST("/dispatch/stats", test_stats),
         TEST("/dispatch/stats/buckets", test_stats_buckets),
         TEST("/dispatch/stats/threads", test_stats_threads), TEST("/dispatch/cleanup", test_cleanup))
