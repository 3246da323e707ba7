/* The PIN status enclave-token reports for C_GetTokenInfo's CKF_USER_PIN_* flags (etok_keystore_pin_status,
 * on a fake clock: no sleeping), and its trip over the wire in TOKEN_LIST / TOKEN_OBJECTS answers
 * (struct rpc_token_info.pin_status, protocol version 3), with the values the schema refuses. */
#include <stdlib.h>
#include <string.h>

#include "common/rpc-messages.h"
#include "enclave-token/errors.h"
#include "enclave-token/keystore.h"
#include "tests/lib/tap.h"
#include "tests/unit/etok-testkeys.h"

#define NSEC UINT64_C(1000000000)

static struct test_key k_ec256;
static bool keys_ready;
static uint64_t fake_now;

static uint64_t fake_clock(void *userdata) {
        return fake_now;
}

static struct rpc_slice S(const char *s) {
        return (struct rpc_slice){ (const uint8_t *) s, strlen(s) };
}

/* A keystore on the fake clock with tokens "tok" and "other", PIN "good-pin". */
static int
keystore_new(struct etok_keystore **ret, uint32_t *ret_slot, uint32_t *ret_other) {
        struct rpc_token_add_req req = { .label = S("tok"), .pin = S("good-pin"), .n_keys = 1 };
        int r;

        if (!keys_ready && !(keys_ready = test_key_load("ec-p256", &k_ec256)))
                return -ENOKEY;
        r = etok_keystore_new(16, ret);
        if (r < 0)
                return r;
        fake_now = 1000 * NSEC;
        etok_keystore_set_clock(*ret, fake_clock, NULL);
        req.keys[0] = test_add_key(&k_ec256, 1, "key1");
        r = etok_keystore_add(*ret, &req, ret_slot);
        if (r < 0)
                return r;
        req.label = S("other");
        return etok_keystore_add(*ret, &req, ret_other);
}

static int login(struct etok_keystore *ks, struct etok_pin_guard *g, uint32_t slot, const char *pin) {
        uint8_t ticket[RPC_TICKET_LEN];
        struct rpc_slice p = S(pin);

        return etok_keystore_login_conn(ks, g, slot, &p, ticket);
}

static uint32_t status(struct etok_keystore *ks, uint32_t slot, const struct etok_pin_guard *g) {
        const struct etok_token *t;
        uint32_t st;

        etok_keystore_read_begin(ks);
        t = etok_keystore_find_locked(ks, slot);
        st = t ? etok_keystore_pin_status(ks, t, g) : UINT32_MAX;
        etok_keystore_read_end(ks);
        return st;
}

/* One connection guessing: COUNT_LOW, FINAL_TRY at the 4th, LOCKED during its back-off, cleared by the
 * right PIN. */
static void test_one_connection(void) {
        _cleanup_(etok_keystore_freep) struct etok_keystore *ks = NULL;
        struct etok_pin_guard g = {}, fresh = {};
        uint32_t slot, other;

        ASSERT_OK(keystore_new(&ks, &slot, &other));
        ASSERT_EQ(status(ks, slot, &g), 0);
        ASSERT_EQ(status(ks, slot, NULL), 0);
        ASSERT_ERR(login(ks, &g, slot, "bad-pin"), ETOK_ERR(PIN_INCORRECT));
        ASSERT_EQ(status(ks, slot, &g), RPC_PIN_COUNT_LOW);
        ASSERT_EQ(status(ks, other, &fresh), 0); /* per token */
        ASSERT_ERR(login(ks, &g, slot, "bad-pin"), ETOK_ERR(PIN_INCORRECT));
        ASSERT_ERR(login(ks, &g, slot, "bad-pin"), ETOK_ERR(PIN_INCORRECT));
        ASSERT_EQ(status(ks, slot, &g), RPC_PIN_COUNT_LOW);
        ASSERT_ERR(login(ks, &g, slot, "bad-pin"), ETOK_ERR(PIN_INCORRECT));
        ASSERT_EQ(status(ks, slot, &g), RPC_PIN_COUNT_LOW | RPC_PIN_FINAL_TRY);
        /* A new connection sees the token's count too: 4 in a row, the 5th is a final try for it. */
        ASSERT_EQ(status(ks, slot, &fresh), RPC_PIN_COUNT_LOW | RPC_PIN_FINAL_TRY);
        ASSERT_ERR(login(ks, &g, slot, "bad-pin"), ETOK_ERR(PIN_INCORRECT)); /* the 5th: back-off, 1 s */
        ASSERT_EQ(status(ks, slot, &g), RPC_PIN_COUNT_LOW | RPC_PIN_LOCKED);
        ASSERT_ERR(login(ks, &g, slot, "good-pin"), ETOK_ERR(PIN_LOCKED));
        ASSERT_EQ(status(ks, slot, &fresh), RPC_PIN_COUNT_LOW); /* not refused on another connection */
        fake_now += NSEC - 1;
        ASSERT_EQ(status(ks, slot, &g), RPC_PIN_COUNT_LOW | RPC_PIN_LOCKED);
        fake_now += 1;
        /* Back-off over: the next wrong PIN starts the next one. */
        ASSERT_EQ(status(ks, slot, &g), RPC_PIN_COUNT_LOW | RPC_PIN_FINAL_TRY);
        ASSERT_OK(login(ks, &g, slot, "good-pin"));
        ASSERT_EQ(status(ks, slot, &g), 0);
        ASSERT_EQ(status(ks, slot, &fresh), 0);
}

/* Many connections: the token's budget (10 at once, one per second) is what refuses. */
static void test_token_budget(void) {
        _cleanup_(etok_keystore_freep) struct etok_keystore *ks = NULL;
        struct etok_pin_guard g[12] = {}, fresh = {};
        uint32_t slot, other;

        ASSERT_OK(keystore_new(&ks, &slot, &other));
        for (int i = 0; i < 9; i++)
                ASSERT_ERR(login(ks, &g[i], slot, "bad-pin"), ETOK_ERR(PIN_INCORRECT));
        /* Room for one more wrong PIN in the burst: a final try. */
        ASSERT_EQ(status(ks, slot, &fresh), RPC_PIN_COUNT_LOW | RPC_PIN_FINAL_TRY);
        ASSERT_ERR(login(ks, &g[9], slot, "bad-pin"), ETOK_ERR(PIN_INCORRECT));
        ASSERT_EQ(status(ks, slot, &fresh), RPC_PIN_COUNT_LOW | RPC_PIN_LOCKED);
        ASSERT_ERR(login(ks, &g[10], slot, "good-pin"), ETOK_ERR(PIN_LOCKED));
        ASSERT_EQ(status(ks, other, &fresh), 0);
        fake_now += NSEC; /* one more allowed */
        ASSERT_EQ(status(ks, slot, &fresh), RPC_PIN_COUNT_LOW | RPC_PIN_FINAL_TRY);
        ASSERT_OK(login(ks, &g[11], slot, "good-pin"));
        /* The count is cleared; the budget is not (SECURITY.md), so one more wrong PIN is still the last. */
        ASSERT_EQ(status(ks, slot, &fresh), RPC_PIN_FINAL_TRY);
        fake_now += 20 * NSEC;
        ASSERT_EQ(status(ks, slot, &fresh), 0);
}

/* Replacing or removing a token with a wrong PIN counts like a LOGIN. */
static void test_remove_counts(void) {
        _cleanup_(etok_keystore_freep) struct etok_keystore *ks = NULL;
        uint32_t slot, other;

        ASSERT_OK(keystore_new(&ks, &slot, &other));
        ASSERT_ERR(etok_keystore_remove(
                           ks, &(struct rpc_token_remove_req){ .label = S("tok"), .pin = S("nope") }),
                   ETOK_ERR(PIN_INCORRECT));
        ASSERT_EQ(status(ks, slot, NULL), RPC_PIN_COUNT_LOW);
}

static void test_wire(void) {
        struct rpc_token_info in = { .slot = 7,
                                     .label = S("tok"),
                                     .pin_status = RPC_PIN_COUNT_LOW | RPC_PIN_LOCKED };
        struct rpc_token_info *out = calloc(1, sizeof(*out));
        uint8_t buf[256];
        struct rpc_writer w;

        ASSERT_TRUE(out);
        rpc_writer_init(&w, buf, sizeof(buf));
        rpc_token_info_encode(&w, &in);
        ASSERT_OK(rpc_writer_finish(&w));
        ASSERT_OK(rpc_token_info_decode(buf, w.len, out));
        ASSERT_EQ(out->pin_status, RPC_PIN_COUNT_LOW | RPC_PIN_LOCKED);
        /* absent means none */
        in.pin_status = 0;
        rpc_writer_init(&w, buf, sizeof(buf));
        rpc_token_info_encode(&w, &in);
        ASSERT_OK(rpc_writer_finish(&w));
        memset(out, 0xff, sizeof(*out));
        ASSERT_OK(rpc_token_info_decode(buf, w.len, out));
        ASSERT_EQ(out->pin_status, 0);
        /* {1: 7, 2: "tok", 7: 8}: a bit nobody defined is refused */
        static const uint8_t bad[] = { 0xa3, 0x01, 0x07, 0x02, 0x63, 't', 'o', 'k', 0x07, 0x08 };
        ASSERT_FAIL(rpc_token_info_decode(bad, sizeof(bad), out));
        static const uint8_t good[] = { 0xa3, 0x01, 0x07, 0x02, 0x63, 't', 'o', 'k', 0x07, 0x07 };
        ASSERT_OK(rpc_token_info_decode(good, sizeof(good), out));
        ASSERT_EQ(out->pin_status, 7);
        /* not a number */
        static const uint8_t text[] = { 0xa3, 0x01, 0x07, 0x02, 0x63, 't', 'o', 'k', 0x07, 0x61, 'x' };
        ASSERT_FAIL(rpc_token_info_decode(text, sizeof(text), out));
        free(out);
}

TAP_MAIN(TEST("/p11/pin-status/one-connection", test_one_connection),
         TEST("/p11/pin-status/token-budget", test_token_budget),
         TEST("/p11/pin-status/remove-counts", test_remove_counts), TEST("/p11/pin-status/wire", test_wire))
