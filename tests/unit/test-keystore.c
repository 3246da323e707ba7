/* Tests for enclave-token/keystore.c and key.c: provisioning, limits, slot ids, PIN back-off, key checks. */
#include <pthread.h>

#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "enclave-token/errors.h"
#include "enclave-token/keystore.h"
#include "tests/lib/tap.h"
#include "tests/unit/etok-testkeys.h"

#define NSEC UINT64_C(1000000000)

/* Loaded once per run from tests/data; k_other is a second P-256 key. */
static struct test_key k_ec256, k_ec384, k_ec521, k_ed25519, k_rsa, k_other;
static bool keys_ready;

static bool keys_init(void) {
        if (keys_ready)
                return true;
        keys_ready = test_key_load("ec-p256", &k_ec256) && test_key_load("ec-p384", &k_ec384) &&
                     test_key_load("ec-p521", &k_ec521) && test_key_load("ed25519", &k_ed25519) &&
                     test_key_load("rsa2048", &k_rsa) && test_key_load("chain-leaf", &k_other);
        return keys_ready;
}

static struct rpc_slice S(const char *s) {
        return (struct rpc_slice){ (const uint8_t *) s, strlen(s) };
}

static struct rpc_token_add_req
add_req(const char *label, const char *pin, bool replace, const struct test_key *k) {
        struct rpc_token_add_req req = { .label = S(label), .pin = S(pin), .replace = replace, .n_keys = 1 };

        req.keys[0] = test_add_key(k, 1, "key1");
        return req;
}

static int add1(struct etok_keystore *ks, const char *label, const char *pin, bool replace,
                const struct test_key *k, uint32_t *ret_slot) {
        struct rpc_token_add_req req = add_req(label, pin, replace, k);
        uint32_t slot;

        return etok_keystore_add(ks, &req, ret_slot ? ret_slot : &slot);
}

static int remove1(struct etok_keystore *ks, const char *label, const char *pin) {
        return etok_keystore_remove(ks, &(struct rpc_token_remove_req){ .label = S(label), .pin = S(pin) });
}

static int login(struct etok_keystore *ks, uint32_t slot, const char *pin, uint8_t ticket[RPC_TICKET_LEN]) {
        struct rpc_slice p = S(pin);

        return etok_keystore_login(ks, slot, &p, ticket);
}

static size_t count(struct etok_keystore *ks) {
        size_t n;

        etok_keystore_read_begin(ks);
        n = etok_keystore_count_locked(ks);
        etok_keystore_read_end(ks);
        return n;
}

/* The slot id a label hashes to (before probing), whatever its keys. */
static uint32_t slot_of(const char *label) {
        return etok_slot_hash(label, strlen(label));
}

static int crypt1(struct etok_keystore *ks, uint32_t slot, const uint8_t ticket[RPC_TICKET_LEN],
                  const struct test_key *verify_with) {
        uint8_t dg[32] = { 7 }, out[RPC_SIG_MAX];
        struct rpc_crypto_req req = { .slot = slot,
                                      .key_id = 1,
                                      .ticket = { ticket, RPC_TICKET_LEN },
                                      .mech = RPC_MECH_ECDSA,
                                      .data = { dg, sizeof(dg) } };
        size_t n;
        int r;

        r = etok_keystore_crypt(ks, false, &req, out, sizeof(out), &n);
        if (r < 0)
                return r;
        return test_verify(verify_with->cert, RPC_MECH_ECDSA, NULL, 0, dg, sizeof(dg), out, n) ? 0
                                                                                               : -EBADMSG;
}

static uint64_t fake_now;
static uint64_t fake_clock(void *userdata) {
        return fake_now;
}

static void test_errno_table(void) {
        /* Each status the keystore returns round-trips through the one errmap table. */
        static const enum rpc_status all[] = {
                RPC_STATUS_UNSUPPORTED,   RPC_STATUS_NO_SUCH_TOKEN, RPC_STATUS_NO_SUCH_KEY,
                RPC_STATUS_PIN_INCORRECT, RPC_STATUS_PIN_LOCKED,    RPC_STATUS_NOT_LOGGED_IN,
                RPC_STATUS_EXISTS,        RPC_STATUS_LIMIT,         RPC_STATUS_DENIED,
                RPC_STATUS_DATA_INVALID,  RPC_STATUS_DATA_LEN,      RPC_STATUS_KEY_INVALID,
                RPC_STATUS_BAD_VERSION,
        };
        for (size_t i = 0; i < ELEMENTSOF(all); i++) {
                int e = errmap_errno_from_status(all[i]);

                ASSERT_TRUE(e < 0);
                ASSERT_EQ(errmap_status_from_errno(e), all[i]);
        }
        ASSERT_EQ(errmap_status_from_errno(-EBADMSG), RPC_STATUS_MALFORMED);
}

static void test_add_remove(void) {
        _cleanup_(etok_keystore_freep) struct etok_keystore *ks = NULL;
        const struct etok_token *t;
        uint64_t g0, g1;
        uint32_t slot;

        ASSERT_TRUE(keys_init());
        ASSERT_OK(etok_keystore_new(16, &ks));
        ASSERT_EQ(etok_keystore_max_tokens(ks), 16);
        g0 = etok_keystore_generation(ks);
        ASSERT_EQ(add1(ks, "tok1", "1234", false, &k_ec256, &slot), 0);
        ASSERT_EQ(slot, slot_of("tok1"));
        {
                /* FNV-1a 32 over the label, masked to 31 bits. */
                ASSERT_EQ(etok_slot_hash("tok1", 4), 209610244);
                ASSERT_TRUE(etok_slot_hash("tok2", 4) <= 0x7fffffff);
        }
        g1 = etok_keystore_generation(ks);
        ASSERT_EQ(g1, g0 + 1);
        ASSERT_EQ(count(ks), 1);

        etok_keystore_read_begin(ks);
        t = etok_keystore_find_locked(ks, slot);
        ASSERT_TRUE(t != NULL);
        ASSERT_STREQ(t->label, "tok1");
        ASSERT_EQ(t->n_keys, 1);
        ASSERT_EQ(t->generation, g1);
        ASSERT_EQ(t->keys[0]->type, RPC_KEY_EC);
        ASSERT_EQ(t->keys[0]->bits, 256);
        ASSERT_EQ(t->keys[0]->sig_len, 64);
        ASSERT_EQ(t->keys[0]->n_certs, 1);
        ASSERT_EQ(t->keys[0]->not_after, 4948997518); /* tests/data/ec-p256.crt.pem: 2126-10-30T01:31:58Z */
        ASSERT_STREQ(t->keys[0]->subject, "CN=ec-p256.enclave-acm.test,O=enclave-acm tests");
        ASSERT_TRUE(etok_keystore_find_locked(ks, slot + 1) == NULL);
        etok_keystore_read_end(ks);

        ASSERT_ERR(remove1(ks, "tok1", "12345"), ETOK_ERR(PIN_INCORRECT));
        ASSERT_ERR(remove1(ks, "tok2", "1234"), ETOK_ERR(NO_SUCH_TOKEN));
        ASSERT_EQ(etok_keystore_generation(ks), g1);
        ASSERT_OK(remove1(ks, "tok1", "1234"));
        ASSERT_EQ(etok_keystore_generation(ks), g1 + 1);
        ASSERT_EQ(count(ks), 0);
        ASSERT_ERR(remove1(ks, "tok1", "1234"), ETOK_ERR(NO_SUCH_TOKEN));
}

static void test_exists_replace(void) {
        _cleanup_(etok_keystore_freep) struct etok_keystore *ks = NULL;
        uint8_t t1[RPC_TICKET_LEN], t2[RPC_TICKET_LEN];
        uint32_t slot, slot2;
        uint64_t gen_before;

        ASSERT_TRUE(keys_init());
        ASSERT_OK(etok_keystore_new(16, &ks));
        ASSERT_OK(add1(ks, "web", "secret-pin", false, &k_ec256, &slot));
        ASSERT_OK(login(ks, slot, "secret-pin", t1));
        ASSERT_ERR(add1(ks, "web", "secret-pin", false, &k_ec384, NULL), ETOK_ERR(EXISTS));
        ASSERT_ERR(add1(ks, "web", "wrong-pin", true, &k_ec384, NULL), ETOK_ERR(PIN_INCORRECT));

        gen_before = etok_keystore_generation(ks);
        ASSERT_EQ(add1(ks, "web", "secret-pin", true, &k_ec384, &slot2), 1); /* 1: replaced */
        ASSERT_EQ(slot2, slot); /* other keys: the slot id stays */
        ASSERT_EQ(slot2, slot_of("web"));
        ASSERT_EQ(etok_keystore_generation(ks), gen_before + 1);
        ASSERT_EQ(count(ks), 1);
        ASSERT_EQ(etok_keystore_retired_count(ks), 1);
        etok_keystore_read_begin(ks);
        ASSERT_EQ(etok_keystore_find_locked(ks, slot)->keys[0]->bits, 384); /* the current version */
        ASSERT_EQ(etok_keystore_find_locked(ks, slot)->generation, gen_before + 1);
        etok_keystore_read_end(ks);
        ASSERT_OK(crypt1(ks, slot, t1, &k_ec256)); /* the old ticket still signs with the old key */

        /* The same keys again: the same slot id, replaced in place (no retirement), new ticket. */
        ASSERT_OK(login(ks, slot2, "secret-pin", t1));
        ASSERT_EQ(add1(ks, "web", "secret-pin", true, &k_ec384, &slot), 1);
        ASSERT_EQ(slot, slot2);
        ASSERT_EQ(count(ks), 1);
        ASSERT_EQ(etok_keystore_retired_count(ks), 1); /* still only the ec256 version */

        /* A replaced token gets a new ticket: the old one no longer signs. */
        ASSERT_OK(login(ks, slot, "secret-pin", t2));
        ASSERT_TRUE(memcmp(t1, t2, RPC_TICKET_LEN) != 0);
        {
                uint8_t dg[48] = { 1 }, out[RPC_SIG_MAX];
                struct rpc_crypto_req req = { .slot = slot,
                                              .key_id = 1,
                                              .ticket = { t1, RPC_TICKET_LEN },
                                              .mech = RPC_MECH_ECDSA,
                                              .data = { dg, sizeof(dg) } };
                size_t n;

                ASSERT_ERR(etok_keystore_crypt(ks, false, &req, out, sizeof(out), &n),
                           ETOK_ERR(NOT_LOGGED_IN));
                req.ticket.ptr = t2;
                ASSERT_OK(etok_keystore_crypt(ks, false, &req, out, sizeof(out), &n));
                ASSERT_EQ(n, 96);
                ASSERT_TRUE(test_verify(k_ec384.cert, RPC_MECH_ECDSA, NULL, 0, dg, sizeof(dg), out, n));
        }
        /* replace on a new label simply adds. */
        ASSERT_EQ(add1(ks, "web2", "secret-pin", true, &k_ec256, NULL), 0);
        ASSERT_EQ(count(ks), 2);
}

static void test_validation(void) {
        _cleanup_(etok_keystore_freep) struct etok_keystore *ks = NULL;
        struct rpc_token_add_req req;
        uint32_t slot;

        ASSERT_TRUE(keys_init());
        ASSERT_OK(etok_keystore_new(16, &ks));
        ASSERT_ERR(add1(ks, "", "1234", false, &k_ec256, NULL), -EBADMSG);
        ASSERT_ERR(add1(ks, "123456789012345678901234567890123", "1234", false, &k_ec256, NULL), -EBADMSG);
        ASSERT_OK(add1(ks, "12345678901234567890123456789012", "1234", false, &k_ec256, NULL));
        ASSERT_ERR(add1(ks, "t", "123", false, &k_ec256, NULL), -EBADMSG);
        ASSERT_ERR(add1(ks, "t", "12345678901234567890123456789012345678901234567890123456789012345", false,
                        &k_ec256, NULL),
                   -EBADMSG);
        ASSERT_OK(add1(ks, "t", "1234567890123456789012345678901234567890123456789012345678901234", false,
                       &k_ec256, NULL));

        req = add_req("k", "1234", false, &k_ec256);
        req.n_keys = 0;
        ASSERT_ERR(etok_keystore_add(ks, &req, &slot), -EBADMSG);
        req.n_keys = RPC_MAX_KEYS + 1;
        ASSERT_ERR(etok_keystore_add(ks, &req, &slot), -EBADMSG);

        req = add_req("k", "1234", false, &k_ec256);
        req.keys[1] = test_add_key(&k_ec384, 1, "key2"); /* duplicate id */
        req.n_keys = 2;
        ASSERT_ERR(etok_keystore_add(ks, &req, &slot), -EBADMSG);
        req.keys[1] = test_add_key(&k_ec384, 2, "key1"); /* duplicate label */
        ASSERT_ERR(etok_keystore_add(ks, &req, &slot), -EBADMSG);
        req.keys[1] = test_add_key(&k_ec384, 2, ""); /* empty key label */
        ASSERT_ERR(etok_keystore_add(ks, &req, &slot), -EBADMSG);
        req.keys[1] = test_add_key(&k_ec384, RPC_KEY_ID_MAX + 1, "key2");
        ASSERT_ERR(etok_keystore_add(ks, &req, &slot), -EBADMSG);
        req.keys[1] = test_add_key(&k_ec384, RPC_KEY_ID_MAX, "key2");
        ASSERT_OK(etok_keystore_add(ks, &req, &slot));
        ASSERT_EQ(count(ks), 3);
        ASSERT_EQ(ERR_peek_error(), 0);
}

static int add_pem(struct etok_keystore *ks, const char *key_pem, const char *chain_pem) {
        struct rpc_token_add_req req = { .label = S("pem"), .pin = S("1234"), .n_keys = 1 };
        uint32_t slot;

        req.keys[0] = (struct rpc_add_key){
                .id = 7, .label = S("k"), .key_pem = S(key_pem), .chain_pem = S(chain_pem)
        };
        return etok_keystore_add(ks, &req, &slot);
}

static void test_key_types(void) {
        static const struct {
                const char *type;
                bool ok;
                enum rpc_key_type kt;
                uint32_t bits;
        } cases[] = {
                { "ec-p256", true, RPC_KEY_EC, 256 },   { "ec-p384", true, RPC_KEY_EC, 384 },
                { "ec-p521", true, RPC_KEY_EC, 521 },   { "ed25519", true, RPC_KEY_ED25519, 256 },
                { "rsa2048", true, RPC_KEY_RSA, 2048 }, { "rsa1024", false, 0, 0 },
                { "secp256k1", false, 0, 0 },           { "x25519", false, 0, 0 },
        };
        _cleanup_(etok_keystore_freep) struct etok_keystore *ks = NULL;

        ASSERT_TRUE(keys_init());
        ASSERT_OK(etok_keystore_new(16, &ks));
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct test_key k;
                const struct test_key *use = &k;
                uint32_t slot;
                int r;

                /* Reuse the run's RSA-2048 key rather than loading it again. */
                if (strcmp(cases[i].type, "rsa2048") == 0)
                        use = &k_rsa;
                else
                        ASSERT_TRUE(test_key_load(cases[i].type, &k));
                r = add1(ks, cases[i].type, "1234", false, use, &slot);
                if (use == &k)
                        test_key_done(&k);
                printf("# %s: %d\n", cases[i].type, r);
                if (!cases[i].ok) {
                        ASSERT_ERR(r, ETOK_ERR(KEY_INVALID));
                        continue;
                }
                ASSERT_OK(r);
                etok_keystore_read_begin(ks);
                ASSERT_EQ(etok_keystore_find_locked(ks, slot)->keys[0]->type, cases[i].kt);
                ASSERT_EQ(etok_keystore_find_locked(ks, slot)->keys[0]->bits, cases[i].bits);
                etok_keystore_read_end(ks);
        }
        ASSERT_EQ(ERR_peek_error(), 0);
}

static void test_key_cert_checks(void) {
        _cleanup_(etok_keystore_freep) struct etok_keystore *ks = NULL;
        _cleanup_free_ char *enc = NULL, *two = NULL, *nine = NULL, *rsa_chain = NULL;
        size_t n;

        ASSERT_TRUE(keys_init());
        ASSERT_OK(etok_keystore_new(16, &ks));

        /* The leaf must carry the private key's public key. */
        ASSERT_ERR(add_pem(ks, k_ec256.key_pem, k_other.chain_pem), ETOK_ERR(KEY_INVALID));
        ASSERT_ERR(add_pem(ks, k_rsa.key_pem, k_ec256.chain_pem), ETOK_ERR(KEY_INVALID));
        /* Garbage and empty PEMs. */
        ASSERT_ERR(add_pem(ks, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
                           k_ec256.chain_pem),
                   ETOK_ERR(KEY_INVALID));
        ASSERT_ERR(add_pem(ks, "not a key", k_ec256.chain_pem), ETOK_ERR(KEY_INVALID));
        ASSERT_ERR(add_pem(ks, k_ec256.key_pem, "not a certificate"), ETOK_ERR(KEY_INVALID));
        ASSERT_ERR(add_pem(ks, k_ec256.key_pem, k_ec256.key_pem), ETOK_ERR(KEY_INVALID));
        /* The chain PEM where the key goes, the key where the chain goes. */
        ASSERT_ERR(add_pem(ks, k_ec256.chain_pem, k_ec256.key_pem), ETOK_ERR(KEY_INVALID));

        /* An encrypted PEM key is refused without prompting on a terminal. */
        {
                BIO *b = BIO_new(BIO_s_mem());

                ASSERT_TRUE(b);
                ASSERT_TRUE(PEM_write_bio_PKCS8PrivateKey(b, k_ec256.pkey, EVP_aes_128_cbc(), "passphrase",
                                                          10, NULL, NULL) == 1);
                enc = test_bio_to_string(b, &n);
                BIO_free(b);
                ASSERT_TRUE(enc);
                ASSERT_ERR(add_pem(ks, enc, k_ec256.chain_pem), ETOK_ERR(KEY_INVALID));
        }

        /* Leaf plus chain: two certificates kept in order. */
        ASSERT_TRUE(asprintf(&two, "%s%s", k_ec256.chain_pem, k_rsa.chain_pem) > 0);
        ASSERT_OK(add_pem(ks, k_ec256.key_pem, two));
        etok_keystore_read_begin(ks);
        {
                const struct etok_token *t = etok_keystore_find_locked(ks, slot_of("pem"));
                uint8_t *der = NULL;
                int len;

                ASSERT_TRUE(t);
                ASSERT_EQ(t->keys[0]->n_certs, 2);
                len = i2d_X509(k_rsa.cert, &der);
                ASSERT_EQ(t->keys[0]->cert_lens[1], len);
                ASSERT_MEMEQ(t->keys[0]->certs[1], der, (size_t) len);
                OPENSSL_free(der);
                der = NULL;
                len = i2d_PUBKEY(k_ec256.pkey, &der);
                ASSERT_EQ(t->keys[0]->spki_len, len);
                ASSERT_MEMEQ(t->keys[0]->spki, der, (size_t) len);
                OPENSSL_free(der);
        }
        etok_keystore_read_end(ks);
        ASSERT_OK(remove1(ks, "pem", "1234"));

        /* More than RPC_MAX_CERTS certificates. */
        ASSERT_TRUE(asprintf(&nine, "%s%s%s%s%s%s%s%s%s", k_ec256.chain_pem, k_rsa.chain_pem,
                             k_rsa.chain_pem, k_rsa.chain_pem, k_rsa.chain_pem, k_rsa.chain_pem,
                             k_rsa.chain_pem, k_rsa.chain_pem, k_rsa.chain_pem) > 0);
        ASSERT_ERR(add_pem(ks, k_ec256.key_pem, nine), ETOK_ERR(LIMIT));
        ASSERT_EQ(count(ks), 0);

        /* 16 keys with 8 RSA certificates each: the TOKEN_OBJECTS answer would not fit a data frame. */
        {
                struct rpc_token_add_req req = { .label = S("big"),
                                                 .pin = S("1234"),
                                                 .n_keys = RPC_MAX_KEYS };
                char labels[RPC_MAX_KEYS][8];
                uint32_t slot;

                ASSERT_TRUE(asprintf(&rsa_chain, "%s%s%s%s%s%s%s%s", k_rsa.chain_pem, k_rsa.chain_pem,
                                     k_rsa.chain_pem, k_rsa.chain_pem, k_rsa.chain_pem, k_rsa.chain_pem,
                                     k_rsa.chain_pem, k_rsa.chain_pem) > 0);
                for (size_t i = 0; i < RPC_MAX_KEYS; i++) {
                        snprintf(labels[i], sizeof(labels[i]), "k%zu", i);
                        req.keys[i] = (struct rpc_add_key){ .id = (uint32_t) i,
                                                            .label = S(labels[i]),
                                                            .key_pem = S(k_rsa.key_pem),
                                                            .chain_pem = S(rsa_chain) };
                }
                ASSERT_ERR(etok_keystore_add(ks, &req, &slot), ETOK_ERR(LIMIT));
                req.n_keys = 8; /* about half fits */
                ASSERT_OK(etok_keystore_add(ks, &req, &slot));
        }
        ASSERT_EQ(ERR_peek_error(), 0);
}

static void test_limits(void) {
        _cleanup_(etok_keystore_freep) struct etok_keystore *ks = NULL;
        /* The full default under valgrind costs minutes of PEM decoding and adds nothing there. */
        const int max = getenv("ENCLAVE_ACM_UNDER_VALGRIND") ? 128 : ETOK_MAX_TOKENS_DEFAULT;
        uint32_t prev = 0, slot;
        char label[16];

        ASSERT_TRUE(keys_init());
        ASSERT_ERR(etok_keystore_new(0, &ks), -EINVAL);
        ASSERT_ERR(etok_keystore_new(RPC_MAX_TOKENS + 1, &ks), -EINVAL);
        ASSERT_OK(etok_keystore_new((size_t) max, &ks));
        for (int i = 0; i < max; i++) {
                snprintf(label, sizeof(label), "tok-%04d", i);
                ASSERT_OK(add1(ks, label, "1234", false, &k_ec256, NULL));
        }
        ASSERT_EQ(count(ks), max);
        ASSERT_ERR(add1(ks, "one-too-many", "1234", false, &k_ec256, NULL), ETOK_ERR(LIMIT));
        /* Replacing still works at the limit. */
        ASSERT_OK(add1(ks, "tok-0007", "1234", true, &k_ec384, NULL));

        /* Sorted by slot id, ids unique, seek finds each. */
        etok_keystore_read_begin(ks);
        for (size_t i = 0; i < etok_keystore_count_locked(ks); i++) {
                const struct etok_token *t = etok_keystore_get_locked(ks, i);

                if (i > 0)
                        ASSERT_TRUE(t->slot > prev);
                prev = t->slot;
                ASSERT_EQ(etok_keystore_seek_locked(ks, t->slot), i);
                ASSERT_TRUE(etok_keystore_find_locked(ks, t->slot) == t);
        }
        ASSERT_TRUE(etok_keystore_get_locked(ks, (size_t) max) == NULL);
        ASSERT_EQ(etok_keystore_seek_locked(ks, UINT32_MAX), max);
        etok_keystore_read_end(ks);

        ASSERT_OK(remove1(ks, "tok-0100", "1234"));
        ASSERT_OK(add1(ks, "one-more", "1234", false, &k_ec256, &slot));
        ASSERT_EQ(slot, slot_of("one-more"));
        ASSERT_ERR(add1(ks, "tok-0100", "1234", false, &k_ec256, NULL), ETOK_ERR(LIMIT));
}

static void test_slot_collisions(void) {
        _cleanup_(etok_keystore_freep) struct etok_keystore *ks = NULL, *ks2 = NULL;
        const char *a = "c268724", *b = "c698200";
        uint32_t sa, sb, sa2, sb2;

        ASSERT_TRUE(keys_init());
        /* Found by a search over "c%d": the first colliding pair of 31-bit FNV-1a hashes (the labels
         * differ only in the top bit of the 32-bit state). */
        ASSERT_EQ(etok_slot_hash(a, strlen(a)), 0x17d351ad);
        ASSERT_EQ(etok_slot_hash(b, strlen(b)), 0x17d351ad);
        ASSERT_EQ(slot_of(a), slot_of(b));

        ASSERT_OK(etok_keystore_new(16, &ks));
        ASSERT_OK(add1(ks, a, "1234", false, &k_ec256, &sa));
        ASSERT_OK(add1(ks, b, "1234", false, &k_ec256, &sb));
        ASSERT_EQ(sa, slot_of(a));
        ASSERT_EQ(sb, sa + 1); /* linear probe */

        /* Stable across remove/re-add and any replace, the probed one included. */
        ASSERT_OK(add1(ks, b, "1234", true, &k_ec256, &sb2));
        ASSERT_EQ(sb2, sb);
        ASSERT_OK(add1(ks, b, "1234", true, &k_ec384, &sb2));
        ASSERT_EQ(sb2, sb);
        ASSERT_OK(add1(ks, b, "1234", true, &k_ec256, &sb2));
        ASSERT_EQ(sb2, sb);
        ASSERT_OK(remove1(ks, a, "1234"));
        ASSERT_OK(add1(ks, a, "1234", false, &k_ec256, &sa2));
        ASSERT_EQ(sa2, sa);
        ASSERT_OK(add1(ks, b, "1234", true, &k_ec384, &sb2));
        ASSERT_EQ(sb2, sb); /* b keeps its probed slot id */

        /* The same labels provisioned in the same order after a restart get the same slots. */
        ASSERT_OK(etok_keystore_new(16, &ks2));
        ASSERT_OK(add1(ks2, a, "1234", false, &k_ec256, &sa2));
        ASSERT_OK(add1(ks2, b, "1234", false, &k_ec256, &sb2));
        ASSERT_EQ(sa2, sa);
        ASSERT_EQ(sb2, sb);
}

/* Rotation: a replaced version keeps the slot id; the previous one is retired (not listed), still
 * signs for holders of its ticket until the grace period ends, and is wiped then. LOGIN and new
 * tickets go to the current version. */
static void test_rotation_grace(void) {
        _cleanup_(etok_keystore_freep) struct etok_keystore *ks = NULL, *ks2 = NULL;
        uint8_t t1[RPC_TICKET_LEN], t2[RPC_TICKET_LEN], t3[RPC_TICKET_LEN], t4[RPC_TICKET_LEN];
        const struct test_key *ring[] = { &k_ec256, &k_other, &k_ec384, &k_ec521, &k_ed25519, &k_rsa };
        uint32_t s1, s2, s3;

        ASSERT_TRUE(keys_init());
        ASSERT_OK(etok_keystore_new(4, &ks));
        fake_now = 1000 * NSEC;
        etok_keystore_set_clock(ks, fake_clock, NULL);
        etok_keystore_set_grace(ks, 10);

        ASSERT_OK(add1(ks, "web", "1234", false, &k_ec256, &s1));
        ASSERT_OK(login(ks, s1, "1234", t1));
        ASSERT_OK(crypt1(ks, s1, t1, &k_ec256));
        ASSERT_EQ(add1(ks, "web", "1234", true, &k_other, &s2), 1);
        ASSERT_EQ(s2, s1); /* the slot id depends on the label only */
        ASSERT_EQ(count(ks), 1);
        ASSERT_EQ(etok_keystore_retired_count(ks), 1);
        etok_keystore_read_begin(ks);
        ASSERT_EQ(etok_keystore_get_locked(ks, 0)->slot, s1); /* listed: the current version only */
        ASSERT_TRUE(etok_keystore_get_locked(ks, 1) == NULL);
        ASSERT_TRUE(etok_keystore_find_locked(ks, s1)->keys[0] != NULL);
        ASSERT_EQ(etok_keystore_find_locked(ks, s1)->generation, etok_keystore_generation(ks));
        etok_keystore_read_end(ks);

        /* The old ticket signs with the old key; LOGIN gives the new version's ticket, which signs
         * with the new key. */
        ASSERT_OK(crypt1(ks, s1, t1, &k_ec256));
        ASSERT_ERR(crypt1(ks, s1, t1, &k_other), -EBADMSG); /* not the new key */
        ASSERT_OK(login(ks, s1, "1234", t2));
        ASSERT_TRUE(memcmp(t1, t2, RPC_TICKET_LEN) != 0);
        ASSERT_OK(crypt1(ks, s1, t2, &k_other));
        ASSERT_ERR(login(ks, s1, "4321", t3), ETOK_ERR(PIN_INCORRECT));
        memset(t3, 0x5a, sizeof(t3));
        ASSERT_ERR(crypt1(ks, s1, t3, &k_other), ETOK_ERR(NOT_LOGGED_IN)); /* no version's ticket */
        ASSERT_ERR(crypt1(ks, s1 + 1, t1, &k_ec256), ETOK_ERR(NO_SUCH_TOKEN));
        {
                /* A key id the ticket's (retired) version lacks: NOT_LOGGED_IN, so the module logs in
                 * again and retries on the current version; there it is NO_SUCH_KEY. */
                uint8_t dg[32] = { 7 }, out[RPC_SIG_MAX];
                struct rpc_crypto_req req = { .slot = s1,
                                              .key_id = 2,
                                              .ticket = { t1, RPC_TICKET_LEN },
                                              .mech = RPC_MECH_ECDSA,
                                              .data = { dg, sizeof(dg) } };
                size_t n;

                ASSERT_ERR(etok_keystore_crypt(ks, false, &req, out, sizeof(out), &n),
                           ETOK_ERR(NOT_LOGGED_IN));
                req.ticket.ptr = t2;
                ASSERT_ERR(etok_keystore_crypt(ks, false, &req, out, sizeof(out), &n),
                           ETOK_ERR(NO_SUCH_KEY));
        }

        /* A second rotation inside the grace period: both older tickets still sign with their keys. */
        ASSERT_EQ(add1(ks, "web", "1234", true, &k_ec384, &s3), 1);
        ASSERT_EQ(s3, s1);
        ASSERT_EQ(etok_keystore_retired_count(ks), 2);
        ASSERT_OK(crypt1(ks, s1, t1, &k_ec256));
        ASSERT_OK(crypt1(ks, s1, t2, &k_other));
        ASSERT_OK(login(ks, s1, "1234", t4));
        ASSERT_OK(crypt1(ks, s1, t4, &k_ec384));

        /* Retired versions do not count against --max-tokens (4 here). */
        ASSERT_OK(add1(ks, "a", "1234", false, &k_ec256, NULL));
        ASSERT_OK(add1(ks, "b", "1234", false, &k_ec256, NULL));
        ASSERT_OK(add1(ks, "c", "1234", false, &k_ec256, NULL));
        ASSERT_ERR(add1(ks, "d", "1234", false, &k_ec256, NULL), ETOK_ERR(LIMIT));

        /* Grace over: the old tickets are NOT_LOGGED_IN at once (the module logs in again and gets
         * the current version), wiped on the next expiry check. */
        fake_now += 10 * NSEC;
        ASSERT_ERR(crypt1(ks, s1, t1, &k_ec256), ETOK_ERR(NOT_LOGGED_IN));
        ASSERT_ERR(crypt1(ks, s1, t2, &k_other), ETOK_ERR(NOT_LOGGED_IN));
        ASSERT_EQ(etok_keystore_retired_count(ks), 2);
        etok_keystore_expire(ks);
        ASSERT_EQ(etok_keystore_retired_count(ks), 0);
        ASSERT_OK(crypt1(ks, s1, t4, &k_ec384));

        /* At most ETOK_RETIRED_PER_LABEL retired versions per label: the oldest goes early. */
        ASSERT_OK(login(ks, s1, "1234", t1));
        for (size_t i = 0; i < ELEMENTSOF(ring); i++)
                ASSERT_EQ(add1(ks, "web", "1234", true, ring[i], &s3), 1);
        ASSERT_EQ(s3, s1);
        ASSERT_EQ(etok_keystore_retired_count(ks), ETOK_RETIRED_PER_LABEL);
        ASSERT_EQ(count(ks), 4);
        ASSERT_ERR(crypt1(ks, s1, t1, &k_ec384), ETOK_ERR(NOT_LOGGED_IN)); /* the ec384 version went */

        /* TOKEN_REMOVE wipes the current version; retired ones run out their grace period (and are
         * wiped lazily by the next write). LOGIN never reaches a retired version. */
        ASSERT_OK(login(ks, s1, "1234", t3)); /* the current (RSA) version */
        ASSERT_OK(remove1(ks, "web", "1234"));
        ASSERT_ERR(login(ks, s1, "1234", t3), ETOK_ERR(NO_SUCH_TOKEN));
        fake_now += 10 * NSEC;
        ASSERT_OK(remove1(ks, "a", "1234"));
        ASSERT_EQ(etok_keystore_retired_count(ks), 0);

        /* Same label after remove + add, and in another keystore (an enclave restart). */
        ASSERT_OK(add1(ks, "web", "1234", false, &k_ec384, &s3));
        ASSERT_EQ(s3, s1);
        ASSERT_OK(etok_keystore_new(4, &ks2));
        ASSERT_OK(add1(ks2, "web", "1234", false, &k_ec256, &s3));
        ASSERT_EQ(s3, s1);

        /* No grace period: the old version goes at once. */
        etok_keystore_set_grace(ks, 0);
        ASSERT_OK(login(ks, s1, "1234", t1));
        ASSERT_EQ(add1(ks, "web", "1234", true, &k_other, &s2), 1);
        ASSERT_EQ(s2, s1);
        ASSERT_EQ(etok_keystore_retired_count(ks), 0);
        ASSERT_ERR(crypt1(ks, s1, t1, &k_ec384), ETOK_ERR(NOT_LOGGED_IN));
        ASSERT_EQ(ERR_peek_error(), 0);
}

/* A worker forked before a rotation (new key under id 2) that logs in only after it holds the
 * current ticket but still asks for id 1 with the old certificate: the retired version signs for
 * it until the grace period ends, then NO_SUCH_KEY. */
static void test_rotation_late_login(void) {
        _cleanup_(etok_keystore_freep) struct etok_keystore *ks = NULL;
        struct rpc_token_add_req req;
        uint8_t t[RPC_TICKET_LEN];
        uint32_t s1, s2;

        ASSERT_TRUE(keys_init());
        ASSERT_OK(etok_keystore_new(4, &ks));
        fake_now = 1000 * NSEC;
        etok_keystore_set_clock(ks, fake_clock, NULL);
        etok_keystore_set_grace(ks, 10);
        ASSERT_OK(add1(ks, "web", "1234", false, &k_ec256, &s1));
        req = add_req("web", "1234", true, &k_other);
        req.keys[0].id = 2;
        ASSERT_EQ(etok_keystore_add(ks, &req, &s2), 1);
        ASSERT_EQ(s2, s1);

        ASSERT_OK(login(ks, s1, "1234", t));    /* the current version's ticket */
        ASSERT_OK(crypt1(ks, s1, t, &k_ec256)); /* id 1: only the retired version has it */
        fake_now += 10 * NSEC;
        ASSERT_ERR(crypt1(ks, s1, t, &k_ec256), ETOK_ERR(NO_SUCH_KEY));
}

/* TOKEN_ADD with hold: the replaced version signs with its ticket past any grace period, until
 * TOKEN_RELEASE (the current PIN) starts its grace period; TOKEN_REMOVE releases too. */
static int add_hold(struct etok_keystore *ks, const char *label, const struct test_key *k,
                    uint32_t *ret_slot) {
        struct rpc_token_add_req req = add_req(label, "1234", true, k);

        req.hold = true;
        return etok_keystore_add(ks, &req, ret_slot);
}

static int release1(struct etok_keystore *ks, const char *label, const char *pin) {
        return etok_keystore_release(ks,
                                     &(struct rpc_token_release_req){ .label = S(label), .pin = S(pin) });
}

static void test_held_versions(void) {
        _cleanup_(etok_keystore_freep) struct etok_keystore *ks = NULL;
        uint8_t t1[RPC_TICKET_LEN], t2[RPC_TICKET_LEN], t3[RPC_TICKET_LEN];
        uint32_t s1, s2;

        ASSERT_TRUE(keys_init());
        ASSERT_OK(etok_keystore_new(4, &ks));
        fake_now = 1000 * NSEC;
        etok_keystore_set_clock(ks, fake_clock, NULL);
        etok_keystore_set_grace(ks, 10);
        ASSERT_OK(add1(ks, "web", "1234", false, &k_ec256, &s1));
        ASSERT_OK(release1(ks, "web", "1234")); /* nothing held: OK, none released */
        ASSERT_OK(login(ks, s1, "1234", t1));

        ASSERT_EQ(add_hold(ks, "web", &k_other, &s2), 1);
        ASSERT_EQ(s2, s1);
        ASSERT_EQ(etok_keystore_held_count(ks, NULL), 1);
        ASSERT_EQ(etok_keystore_held_count(ks, &(struct rpc_slice){ (const uint8_t *) "web", 3 }), 1);
        ASSERT_EQ(etok_keystore_held_count(ks, &(struct rpc_slice){ (const uint8_t *) "we", 2 }), 0);
        ASSERT_OK(login(ks, s1, "1234", t2));
        ASSERT_OK(crypt1(ks, s1, t2, &k_other));

        /* Ten times the grace period: the held version still signs for its ticket. */
        fake_now += 100 * NSEC;
        etok_keystore_expire(ks);
        ASSERT_EQ(etok_keystore_retired_count(ks), 1);
        ASSERT_OK(crypt1(ks, s1, t1, &k_ec256));

        /* Refused releases change nothing. */
        ASSERT_ERR(release1(ks, "web", "4321"), ETOK_ERR(PIN_INCORRECT));
        ASSERT_ERR(release1(ks, "nope", "1234"), ETOK_ERR(NO_SUCH_TOKEN));
        ASSERT_EQ(etok_keystore_held_count(ks, NULL), 1);
        fake_now += 100 * NSEC;
        ASSERT_OK(crypt1(ks, s1, t1, &k_ec256));

        /* Released: the grace period runs from now, then the version is gone. */
        ASSERT_EQ(release1(ks, "web", "1234"), 1);
        ASSERT_EQ(etok_keystore_held_count(ks, NULL), 0);
        ASSERT_EQ(release1(ks, "web", "1234"), 0);
        fake_now += 9 * NSEC;
        ASSERT_OK(crypt1(ks, s1, t1, &k_ec256));
        fake_now += 1 * NSEC;
        ASSERT_ERR(crypt1(ks, s1, t1, &k_ec256), ETOK_ERR(NOT_LOGGED_IN));
        etok_keystore_expire(ks);
        ASSERT_EQ(etok_keystore_retired_count(ks), 0);
        ASSERT_OK(crypt1(ks, s1, t2, &k_other));

        /* Without a grace period a hold still holds; the release wipes at once. */
        etok_keystore_set_grace(ks, 0);
        ASSERT_EQ(add_hold(ks, "web", &k_ec384, &s2), 1);
        ASSERT_EQ(etok_keystore_retired_count(ks), 1);
        ASSERT_OK(crypt1(ks, s1, t2, &k_other));
        ASSERT_EQ(release1(ks, "web", "1234"), 1);
        ASSERT_EQ(etok_keystore_retired_count(ks), 0);
        ASSERT_ERR(crypt1(ks, s1, t2, &k_other), ETOK_ERR(NOT_LOGGED_IN));

        /* TOKEN_REMOVE releases the label's held versions: nobody could name them any more. */
        etok_keystore_set_grace(ks, 10);
        ASSERT_OK(login(ks, s1, "1234", t3));
        ASSERT_EQ(add_hold(ks, "web", &k_ec256, &s2), 1);
        ASSERT_OK(remove1(ks, "web", "1234"));
        ASSERT_EQ(etok_keystore_held_count(ks, NULL), 0);
        ASSERT_OK(crypt1(ks, s1, t3, &k_ec384));
        fake_now += 10 * NSEC;
        ASSERT_ERR(crypt1(ks, s1, t3, &k_ec384), ETOK_ERR(NO_SUCH_TOKEN));
        ASSERT_EQ(ERR_peek_error(), 0);
}

/* At ETOK_RETIRED_PER_LABEL held versions of a label a new hold releases the second oldest to the
 * grace period (the oldest is the one the server still uses), never wiping one at once; when every
 * retired version is held and the table is full, the replace is refused and nothing changes. */
static void test_held_bound(void) {
        _cleanup_(etok_keystore_freep) struct etok_keystore *ks = NULL, *small = NULL;
        const struct test_key *ring[] = { &k_ec256, &k_other, &k_ec384, &k_ec521, &k_ec256, &k_other };
        uint8_t t[ELEMENTSOF(ring)][RPC_TICKET_LEN];
        uint32_t s1, s2;

        ASSERT_TRUE(keys_init());
        ASSERT_OK(etok_keystore_new(16, &ks));
        fake_now = 1000 * NSEC;
        etok_keystore_set_clock(ks, fake_clock, NULL);
        etok_keystore_set_grace(ks, 10);
        ASSERT_OK(add1(ks, "web", "1234", false, ring[0], &s1));
        ASSERT_OK(login(ks, s1, "1234", t[0]));
        for (size_t i = 1; i < ELEMENTSOF(ring); i++) {
                ASSERT_EQ(add_hold(ks, "web", ring[i], &s2), 1);
                ASSERT_OK(login(ks, s1, "1234", t[i]));
                ASSERT_EQ(etok_keystore_held_count(ks, NULL), MIN(i, (size_t) ETOK_RETIRED_PER_LABEL));
        }
        /* Five versions held in turn: the second oldest (t[1]) was released, and still signs. */
        ASSERT_EQ(etok_keystore_retired_count(ks), ETOK_RETIRED_PER_LABEL + 1);
        for (size_t i = 0; i < ELEMENTSOF(ring); i++)
                ASSERT_OK(crypt1(ks, s1, t[i], ring[i]));
        fake_now += 10 * NSEC;
        etok_keystore_expire(ks);
        ASSERT_EQ(etok_keystore_retired_count(ks), ETOK_RETIRED_PER_LABEL);
        ASSERT_ERR(crypt1(ks, s1, t[1], ring[1]), ETOK_ERR(NOT_LOGGED_IN));
        for (size_t i = 0; i < ELEMENTSOF(ring); i++)
                if (i != 1)
                        ASSERT_OK(crypt1(ks, s1, t[i], ring[i]));

        /* max_tokens (2) retired versions, all held: the next replace is refused, the current version
         * stays; once released, the next one goes through and wipes the oldest released early. */
        ASSERT_OK(etok_keystore_new(2, &small));
        etok_keystore_set_clock(small, fake_clock, NULL);
        etok_keystore_set_grace(small, 10);
        ASSERT_OK(add1(small, "a", "1234", false, &k_ec256, &s1));
        ASSERT_OK(login(small, s1, "1234", t[0]));
        ASSERT_EQ(add_hold(small, "a", &k_other, &s2), 1);
        ASSERT_EQ(add_hold(small, "a", &k_ec384, &s2), 1);
        ASSERT_OK(login(small, s1, "1234", t[2]));
        ASSERT_ERR(add_hold(small, "a", &k_ec521, &s2), ETOK_ERR(LIMIT));
        ASSERT_ERR(add1(small, "a", "1234", true, &k_ec521, &s2), ETOK_ERR(LIMIT));
        ASSERT_EQ(etok_keystore_held_count(small, NULL), 2);
        ASSERT_OK(crypt1(small, s1, t[2], &k_ec384)); /* still the current version */
        ASSERT_EQ(release1(small, "a", "1234"), 2);
        ASSERT_EQ(add_hold(small, "a", &k_ec521, &s2), 1);
        ASSERT_EQ(etok_keystore_retired_count(small), 2);
        ASSERT_ERR(crypt1(small, s1, t[0], &k_ec256), ETOK_ERR(NOT_LOGGED_IN));
}

static int login_on(struct etok_keystore *ks, struct etok_pin_guard *g, uint32_t slot, const char *pin,
                    uint8_t ticket[RPC_TICKET_LEN]) {
        struct rpc_slice p = S(pin);

        return etok_keystore_login_conn(ks, g, slot, &p, ticket);
}

/* A keystore on the fake clock with one token "tok", PIN "good-pin". */
static int pin_token_new(struct etok_keystore **ret_ks, uint32_t *ret_slot) {
        int r;

        if (!keys_init())
                return -ENOKEY;
        r = etok_keystore_new(16, ret_ks);
        if (r < 0)
                return r;
        fake_now = 1000 * NSEC;
        etok_keystore_set_clock(*ret_ks, fake_clock, NULL);
        return add1(*ret_ks, "tok", "good-pin", false, &k_ec256, ret_slot);
}

/* Each connection backs off on its own wrong PINs; others are not slowed by them. */
static void test_pin_backoff(void) {
        _cleanup_(etok_keystore_freep) struct etok_keystore *ks = NULL;
        struct etok_pin_guard g = {}, other = {};
        uint8_t t[RPC_TICKET_LEN];
        uint32_t slot;

        ASSERT_OK(pin_token_new(&ks, &slot));

        ASSERT_ERR(login(ks, slot + 1, "good-pin", t), ETOK_ERR(NO_SUCH_TOKEN));
        /* Five free failures. */
        for (int i = 0; i < 5; i++)
                ASSERT_ERR(login_on(ks, &g, slot, "bad-pin", t), ETOK_ERR(PIN_INCORRECT));
        /* Now 2^0 = 1 s on this connection, without even comparing (the right PIN too)... */
        ASSERT_ERR(login_on(ks, &g, slot, "good-pin", t), ETOK_ERR(PIN_LOCKED));
        /* ...while another connection logs in at once. */
        ASSERT_OK(login_on(ks, &other, slot, "good-pin", t));
        fake_now += NSEC - 1;
        ASSERT_ERR(login_on(ks, &g, slot, "good-pin", t), ETOK_ERR(PIN_LOCKED));
        fake_now += 1;
        ASSERT_OK(login_on(ks, &g, slot, "good-pin", t)); /* success resets the connection's count */
        fake_now += 10 * NSEC;                            /* the token's budget refills */
        for (int i = 0; i < 5; i++)
                ASSERT_ERR(login_on(ks, &g, slot, "bad-pin", t), ETOK_ERR(PIN_INCORRECT));
        fake_now += NSEC;
        ASSERT_ERR(login_on(ks, &g, slot, "bad-pin", t), ETOK_ERR(PIN_INCORRECT)); /* n = 6: 2 s */
        fake_now += 2 * NSEC - 1;
        ASSERT_ERR(login_on(ks, &g, slot, "good-pin", t), ETOK_ERR(PIN_LOCKED));
        fake_now += 1;
        ASSERT_ERR(login_on(ks, &g, slot, "bad-pin", t), ETOK_ERR(PIN_INCORRECT)); /* n = 7: 4 s */
        fake_now += 3 * NSEC;
        ASSERT_ERR(login_on(ks, &g, slot, "bad-pin", t), ETOK_ERR(PIN_LOCKED));
        /* Replace and remove (control channel) count against the token's budget only. */
        ASSERT_OK(login_on(ks, &other, slot, "good-pin", t));
        /* Capped at 60 s however many failures. */
        for (int i = 0; i < 40; i++) {
                fake_now += 100 * NSEC;
                ASSERT_ERR(login_on(ks, &g, slot, "bad-pin", t), ETOK_ERR(PIN_INCORRECT));
        }
        fake_now += 60 * NSEC - 1;
        ASSERT_ERR(login_on(ks, &g, slot, "good-pin", t), ETOK_ERR(PIN_LOCKED));
        ASSERT_OK(login_on(ks, &other, slot, "good-pin", t));
        fake_now += 1;
        ASSERT_OK(login_on(ks, &g, slot, "good-pin", t));
        ASSERT_OK(login_on(ks, &g, slot, "good-pin", t));
        ASSERT_OK(remove1(ks, "tok", "good-pin"));
}

static void test_pin_compare(void) {
        _cleanup_(etok_keystore_freep) struct etok_keystore *ks = NULL;
        uint8_t t1[RPC_TICKET_LEN], t2[RPC_TICKET_LEN];
        struct rpc_slice pin;
        uint32_t slot;

        ASSERT_TRUE(keys_init());
        ASSERT_OK(etok_keystore_new(16, &ks));
        fake_now = 0;
        etok_keystore_set_clock(ks, fake_clock, NULL);
        ASSERT_OK(add1(ks, "tok", "1234", false, &k_ec256, &slot));
        ASSERT_ERR(login(ks, slot, "12345", t1), ETOK_ERR(PIN_INCORRECT)); /* longer, same prefix */
        ASSERT_ERR(login(ks, slot, "1235", t1), ETOK_ERR(PIN_INCORRECT));
        /* A PIN with a NUL byte is not the zero-padded stored PIN. */
        pin = (struct rpc_slice){ (const uint8_t *) "1234\0", 5 };
        ASSERT_ERR(etok_keystore_login(ks, slot, &pin, t1), ETOK_ERR(PIN_INCORRECT));
        pin = (struct rpc_slice){ (const uint8_t *) "1234", 0 };
        ASSERT_ERR(etok_keystore_login(ks, slot, &pin, t1), ETOK_ERR(PIN_INCORRECT));
        fake_now += 3600 * NSEC;
        ASSERT_OK(login(ks, slot, "1234", t1));
        ASSERT_OK(login(ks, slot, "1234", t2));
        /* One ticket per token until it is replaced. */
        ASSERT_MEMEQ(t1, t2, RPC_TICKET_LEN);
}

static void test_crypt_errors(void) {
        _cleanup_(etok_keystore_freep) struct etok_keystore *ks = NULL;
        uint8_t ticket[RPC_TICKET_LEN], bad[RPC_TICKET_LEN], dg[32] = { 9 }, out[RPC_SIG_MAX];
        struct rpc_crypto_req req;
        uint32_t slot;
        size_t n;

        ASSERT_TRUE(keys_init());
        ASSERT_OK(etok_keystore_new(16, &ks));
        ASSERT_OK(add1(ks, "tok", "1234", false, &k_ec256, &slot));
        ASSERT_OK(login(ks, slot, "1234", ticket));
        memcpy(bad, ticket, sizeof(bad));
        bad[31] ^= 1;

        req = (struct rpc_crypto_req){ .slot = slot,
                                       .key_id = 1,
                                       .ticket = { ticket, sizeof(ticket) },
                                       .mech = RPC_MECH_ECDSA,
                                       .data = { dg, sizeof(dg) } };
        ASSERT_OK(etok_keystore_crypt(ks, false, &req, out, sizeof(out), &n));
        ASSERT_TRUE(test_verify(k_ec256.cert, RPC_MECH_ECDSA, NULL, 0, dg, sizeof(dg), out, n));
        req.slot = slot ^ 1;
        ASSERT_ERR(etok_keystore_crypt(ks, false, &req, out, sizeof(out), &n), ETOK_ERR(NO_SUCH_TOKEN));
        req.slot = slot;
        req.ticket.ptr = bad;
        ASSERT_ERR(etok_keystore_crypt(ks, false, &req, out, sizeof(out), &n), ETOK_ERR(NOT_LOGGED_IN));
        req.ticket = (struct rpc_slice){};
        ASSERT_ERR(etok_keystore_crypt(ks, false, &req, out, sizeof(out), &n), ETOK_ERR(NOT_LOGGED_IN));
        req.ticket = (struct rpc_slice){ ticket, 16 };
        ASSERT_ERR(etok_keystore_crypt(ks, false, &req, out, sizeof(out), &n), ETOK_ERR(NOT_LOGGED_IN));
        req.ticket = (struct rpc_slice){ ticket, sizeof(ticket) };
        req.key_id = 2;
        ASSERT_ERR(etok_keystore_crypt(ks, false, &req, out, sizeof(out), &n), ETOK_ERR(NO_SUCH_KEY));
        req.key_id = 1;
        req.mech = RPC_MECH_RSA_PKCS;
        ASSERT_ERR(etok_keystore_crypt(ks, false, &req, out, sizeof(out), &n), ETOK_ERR(UNSUPPORTED));
        req.mech = RPC_MECH_ECDSA;
        ASSERT_ERR(etok_keystore_crypt(ks, true, &req, out, sizeof(out), &n), ETOK_ERR(UNSUPPORTED));

        /* Removed: the ticket dies with the token; a re-added token has a new one. */
        ASSERT_OK(remove1(ks, "tok", "1234"));
        ASSERT_ERR(etok_keystore_crypt(ks, false, &req, out, sizeof(out), &n), ETOK_ERR(NO_SUCH_TOKEN));
        ASSERT_OK(add1(ks, "tok", "1234", false, &k_ec256, &slot));
        ASSERT_ERR(etok_keystore_crypt(ks, false, &req, out, sizeof(out), &n), ETOK_ERR(NOT_LOGGED_IN));
        ASSERT_EQ(ERR_peek_error(), 0);
}

/* Signing contexts are kept per key and reused: more threads than slots sign at once, each with its
 * own messages, and every signature must verify for the message it was made for. */
#define KEPT_THREADS (ETOK_KEY_CTXS + 4)
#define KEPT_ROUNDS  12

struct kept_job {
        struct etok_keystore *ks;
        uint32_t slot[2];
        uint8_t ticket[2][RPC_TICKET_LEN];
        unsigned id;
        unsigned bad;
};

static void *kept_thread(void *p) {
        struct kept_job *j = p;
        static const uint32_t mech[2] = { RPC_MECH_ECDSA, RPC_MECH_EDDSA };
        const struct test_key *key[2] = { &k_ec256, &k_ed25519 };

        for (unsigned round = 0; round < KEPT_ROUNDS; round++)
                for (unsigned t = 0; t < 2; t++) {
                        uint8_t msg[32] = { (uint8_t) j->id, (uint8_t) round, (uint8_t) t },
                                out[RPC_SIG_MAX];
                        struct rpc_crypto_req req = { .slot = j->slot[t],
                                                      .key_id = 1,
                                                      .ticket = { j->ticket[t], RPC_TICKET_LEN },
                                                      .mech = mech[t],
                                                      .data = { msg, sizeof(msg) } };
                        size_t n;

                        if (etok_keystore_crypt(j->ks, false, &req, out, sizeof(out), &n) < 0 ||
                            !test_verify(key[t]->cert, mech[t], NULL, 0, msg, sizeof(msg), out, n))
                                j->bad++;
                }
        return NULL;
}

static void test_kept_contexts(void) {
        _cleanup_(etok_keystore_freep) struct etok_keystore *ks = NULL;
        struct kept_job jobs[KEPT_THREADS];
        pthread_t th[KEPT_THREADS];
        uint8_t msg[4] = { 1, 2, 3, 4 }, a[RPC_SIG_MAX], b[RPC_SIG_MAX];
        struct rpc_crypto_req req;
        uint32_t slot[2];
        uint8_t ticket[2][RPC_TICKET_LEN];
        const struct etok_key *key;
        size_t na, nb;
        int r, r2;

        ASSERT_TRUE(keys_init());
        ASSERT_OK(etok_keystore_new(16, &ks));
        ASSERT_OK(add1(ks, "ec", "1234", false, &k_ec256, &slot[0]));
        ASSERT_OK(add1(ks, "ed", "1234", false, &k_ed25519, &slot[1]));
        ASSERT_OK(login(ks, slot[0], "1234", ticket[0]));
        ASSERT_OK(login(ks, slot[1], "1234", ticket[1]));

        /* Ed25519 is deterministic: a reused context gives the same signature for the same message,
         * and a different one for another message. */
        req = (struct rpc_crypto_req){ .slot = slot[1],
                                       .key_id = 1,
                                       .ticket = { ticket[1], RPC_TICKET_LEN },
                                       .mech = RPC_MECH_EDDSA,
                                       .data = { msg, sizeof(msg) } };
        ASSERT_OK(etok_keystore_crypt(ks, false, &req, a, sizeof(a), &na));
        ASSERT_OK(etok_keystore_crypt(ks, false, &req, b, sizeof(b), &nb));
        ASSERT_EQ(na, nb);
        ASSERT_MEMEQ(a, b, na);
        req.data.len = 3;
        ASSERT_OK(etok_keystore_crypt(ks, false, &req, b, sizeof(b), &nb));
        ASSERT_TRUE(memcmp(a, b, na) != 0);
        ASSERT_TRUE(test_verify(k_ed25519.cert, RPC_MECH_EDDSA, NULL, 0, msg, 3, b, nb));

        /* A kept context that fails (no room for the signature: the retry on a new one fails too) is
         * dropped, and the next signature is made on a new one. */
        etok_keystore_read_begin(ks);
        key = etok_keystore_find_locked(ks, slot[1])->keys[0];
        r = etok_key_sign(key, &req, b, 10, &nb);
        r2 = etok_key_sign(key, &req, b, sizeof(b), &nb);
        etok_keystore_read_end(ks);
        ASSERT_ERR(r, ETOK_ERR(DATA_INVALID));
        ASSERT_OK(r2);
        ASSERT_TRUE(test_verify(k_ed25519.cert, RPC_MECH_EDDSA, NULL, 0, msg, 3, b, nb));

        for (unsigned i = 0; i < KEPT_THREADS; i++) {
                jobs[i] = (struct kept_job){ .ks = ks, .slot = { slot[0], slot[1] }, .id = i };
                memcpy(jobs[i].ticket, ticket, sizeof(ticket));
                ASSERT_EQ(pthread_create(&th[i], NULL, kept_thread, &jobs[i]), 0);
        }
        for (unsigned i = 0; i < KEPT_THREADS; i++) {
                ASSERT_EQ(pthread_join(th[i], NULL), 0);
                ASSERT_EQ(jobs[i].bad, 0u);
        }
        /* Removing the tokens frees the kept contexts with their keys (valgrind checks the rest). */
        ASSERT_OK(remove1(ks, "ec", "1234"));
        ASSERT_OK(remove1(ks, "ed", "1234"));
        ASSERT_EQ(ERR_peek_error(), 0);
}

/* The token's PIN and ticket live in one secret_buf; private keys in OpenSSL's secure heap, which
 * OpenSSL wipes on free: removing the token gives every byte back. */
static void test_secret_storage(void) {
        _cleanup_(etok_keystore_freep) struct etok_keystore *ks = NULL;
        uint8_t ticket[RPC_TICKET_LEN];
        const struct etok_token *t;
        size_t used0;
        uint32_t slot;

        ASSERT_TRUE(keys_init());
        if (!CRYPTO_secure_malloc_initialized())
                ASSERT_TRUE(CRYPTO_secure_malloc_init(1u << 20, 64) != 0);
        used0 = CRYPTO_secure_used();
        ASSERT_OK(etok_keystore_new(16, &ks));
        ASSERT_OK(add1(ks, "tok", "pin-1234", false, &k_rsa, &slot));
        ASSERT_TRUE(CRYPTO_secure_used() > used0);
        ASSERT_OK(login(ks, slot, "pin-1234", ticket));
        etok_keystore_read_begin(ks);
        t = etok_keystore_find_locked(ks, slot);
        ASSERT_TRUE(t && t->secret);
        ASSERT_EQ(t->pin_len, 8);
        ASSERT_MEMEQ(t->secret->data, "pin-1234\0\0\0\0", 12);
        ASSERT_MEMEQ(t->secret->data + RPC_PIN_MAX, ticket, RPC_TICKET_LEN);
        etok_keystore_read_end(ks);

        /* The replaced RSA version is retired: its key stays until the grace period ends or the
         * keystore goes; without a grace period it goes at once. */
        ASSERT_OK(add1(ks, "tok", "pin-1234", true, &k_ec256, &slot));
        ASSERT_OK(remove1(ks, "tok", "pin-1234"));
        ASSERT_EQ(etok_keystore_retired_count(ks), 1);
        ASSERT_TRUE(CRYPTO_secure_used() > used0);
        ks = etok_keystore_free(ks);
        ASSERT_EQ(CRYPTO_secure_used(), used0);
        ASSERT_OK(etok_keystore_new(16, &ks));
        etok_keystore_set_grace(ks, 0);
        ASSERT_OK(add1(ks, "tok", "pin-1234", false, &k_rsa, &slot));
        ASSERT_OK(add1(ks, "tok", "pin-1234", true, &k_ec256, &slot));
        ASSERT_OK(remove1(ks, "tok", "pin-1234"));
        ASSERT_EQ(CRYPTO_secure_used(), used0);
        ks = etok_keystore_free(ks);
        ASSERT_EQ(CRYPTO_secure_used(), used0);
        ASSERT_TRUE(CRYPTO_secure_malloc_done() == 1);
}

static void cleanup_keys(void) {
        test_key_done(&k_ec256);
        test_key_done(&k_ec384);
        test_key_done(&k_ec521);
        test_key_done(&k_ed25519);
        test_key_done(&k_rsa);
        test_key_done(&k_other);
        keys_ready = false;
}

/* Wrong PINs from any number of connections: ETOK_PIN_GUESS_BURST at once, then one per
 * ETOK_PIN_GUESS_INTERVAL_NSEC; the right PIN is refused at most that long after the last wrong one. */
static void test_pin_guess_cap(void) {
        _cleanup_(etok_keystore_freep) struct etok_keystore *ks = NULL;
        uint8_t t[RPC_TICKET_LEN];
        unsigned wrong = 0;
        uint64_t end;
        uint32_t slot;

        ASSERT_OK(pin_token_new(&ks, &slot));

        /* A new connection for every guess: the connections' own back-off never starts. */
        for (int i = 0; i < ETOK_PIN_GUESS_BURST; i++)
                ASSERT_ERR(login_on(ks, &(struct etok_pin_guard){}, slot, "bad-pin", t),
                           ETOK_ERR(PIN_INCORRECT));
        ASSERT_ERR(login_on(ks, &(struct etok_pin_guard){}, slot, "bad-pin", t), ETOK_ERR(PIN_LOCKED));
        ASSERT_ERR(login_on(ks, &(struct etok_pin_guard){}, slot, "good-pin", t), ETOK_ERR(PIN_LOCKED));
        /* The control channel is a peer of its own: its right PIN is compared (a replace in place). */
        ASSERT_EQ(add1(ks, "tok", "good-pin", true, &k_ec256, NULL), 1);
        fake_now += ETOK_PIN_GUESS_INTERVAL_NSEC - 1;
        ASSERT_ERR(login_on(ks, &(struct etok_pin_guard){}, slot, "good-pin", t), ETOK_ERR(PIN_LOCKED));
        fake_now += 1;
        ASSERT_OK(login_on(ks, &(struct etok_pin_guard){}, slot, "good-pin", t));

        /* Sustained: a guess every 10 ms for 100 s on fresh connections gets one wrong PIN a second
         * compared (plus what the budget regained above), the rest refused unseen. */
        end = fake_now + 100 * NSEC;
        for (; fake_now < end; fake_now += 10 * 1000 * 1000) {
                int r = login_on(ks, &(struct etok_pin_guard){}, slot, "bad-pin", t);

                ASSERT_TRUE(r == ETOK_ERR(PIN_INCORRECT) || r == ETOK_ERR(PIN_LOCKED));
                wrong += r == ETOK_ERR(PIN_INCORRECT);
        }
        printf("# %u wrong PINs compared in 100 s of 10000 tries\n", wrong);
        ASSERT_TRUE(wrong >= 100 && wrong <= 101);
        /* The control channel's replace and remove take from its own budget, not the data peers'. */
        fake_now += ETOK_PIN_GUESS_BURST * ETOK_PIN_GUESS_INTERVAL_NSEC;
        for (int i = 0; i < ETOK_PIN_GUESS_BURST; i++)
                ASSERT_ERR(remove1(ks, "tok", "bad-pin"), ETOK_ERR(PIN_INCORRECT));
        ASSERT_ERR(remove1(ks, "tok", "good-pin"), ETOK_ERR(PIN_LOCKED));
        ASSERT_OK(login_on(ks, &(struct etok_pin_guard){}, slot, "good-pin", t));
        fake_now += ETOK_PIN_GUESS_INTERVAL_NSEC;
        ASSERT_OK(remove1(ks, "tok", "good-pin"));
}

/* The attack of issue 12: a guesser keeps trying on its connection (and reconnects as often as it
 * likes); new connections with the right PIN are refused only within ETOK_PIN_GUESS_INTERVAL_NSEC of
 * a wrong PIN that was compared, and a guesser on one connection refuses them almost never. */
static void check_right_pin_bound(bool reconnect, unsigned *ret_refused, unsigned *ret_wrong) {
        _cleanup_(etok_keystore_freep) struct etok_keystore *ks = NULL;
        struct etok_pin_guard attacker = {};
        uint64_t last_wrong = 0, end;
        uint8_t t[RPC_TICKET_LEN];
        unsigned refused = 0, wrong = 0;
        uint32_t slot;

        *ret_refused = *ret_wrong = UINT_MAX;
        ASSERT_OK(pin_token_new(&ks, &slot));

        end = fake_now + 600 * NSEC;
        for (; fake_now < end; fake_now += 10 * 1000 * 1000) {
                int r;

                if (reconnect && attacker.failures >= ETOK_PIN_FREE_FAILURES)
                        attacker = (struct etok_pin_guard){};
                r = login_on(ks, &attacker, slot, "bad-pin", t);
                if (r == ETOK_ERR(PIN_INCORRECT)) {
                        last_wrong = fake_now;
                        wrong++;
                } else
                        ASSERT_ERR(r, ETOK_ERR(PIN_LOCKED));
                /* A new web-server worker, 5 ms later. */
                fake_now += 5 * 1000 * 1000;
                r = login_on(ks, &(struct etok_pin_guard){}, slot, "good-pin", t);
                if (r < 0) {
                        ASSERT_ERR(r, ETOK_ERR(PIN_LOCKED));
                        ASSERT_TRUE(last_wrong > 0 && fake_now - last_wrong < ETOK_PIN_GUESS_INTERVAL_NSEC);
                        refused++;
                }
                fake_now -= 5 * 1000 * 1000;
        }
        *ret_refused = refused;
        *ret_wrong = wrong;
}

static void test_pin_right_pin_bound(void) {
        unsigned refused, wrong;

        /* One connection: 5 free guesses, then its own back-off (1, 2, 4 ... 60 s) alone. */
        check_right_pin_bound(false, &refused, &wrong);
        printf("# one guessing connection, 600 s: %u wrong PINs compared, right PIN refused %u of 60000 "
               "times\n",
               wrong, refused);
        /* 5 free; 6 as its back-off doubles from 1 to 32 s (63 s in all); then one a minute: 8 more. */
        ASSERT_EQ(wrong, 5 + 6 + 8);
        ASSERT_EQ(refused, 0);
        /* Reconnecting after every 5 wrong PINs: held to one a second; the right PIN is refused while
         * that lasts, each time within the interval after a wrong one (SECURITY.md). */
        check_right_pin_bound(true, &refused, &wrong);
        printf("# reconnecting guesser, 600 s: %u wrong PINs compared, right PIN refused %u of 60000 "
               "times\n",
               wrong, refused);
        ASSERT_TRUE(wrong <= ETOK_PIN_GUESS_BURST + 600);
}

/* A token with a ttl expires on the keystore's clock: wiped, gone from the listing (generation bumped),
 * SIGN answers NO_SUCH_TOKEN; added again it has the same slot id. Tokens without a ttl never expire. */
static void test_expiry(void) {
        _cleanup_(etok_keystore_freep) struct etok_keystore *ks = NULL;
        struct rpc_token_add_req req;
        uint8_t t[RPC_TICKET_LEN];
        uint64_t expires = 0, gen;
        uint32_t slot, slot2, other;
        size_t bad = 7;
        time_t wall;

        ASSERT_TRUE(keys_init());
        ASSERT_OK(etok_keystore_new(16, &ks));
        fake_now = 1000 * NSEC;
        etok_keystore_set_clock(ks, fake_clock, NULL);
        ASSERT_OK(add1(ks, "forever", "pin-1234", false, &k_ec384, &other));
        req = add_req("web", "pin-1234", false, &k_ec256);
        wall = time(NULL);
        ASSERT_EQ(etok_keystore_add_ttl(ks, &req, 60, &slot, &expires, &bad), 0);
        ASSERT_EQ(bad, 7); /* untouched on success */
        ASSERT_TRUE(expires >= (uint64_t) wall + 60 && expires <= (uint64_t) time(NULL) + 60);
        etok_keystore_read_begin(ks);
        ASSERT_EQ(etok_keystore_find_locked(ks, slot)->expires, expires);
        ASSERT_EQ(etok_keystore_find_locked(ks, other)->expires, 0);
        etok_keystore_read_end(ks);
        ASSERT_OK(login(ks, slot, "pin-1234", t));
        ASSERT_OK(crypt1(ks, slot, t, &k_ec256));

        /* One nanosecond before: still there. */
        fake_now += 60 * NSEC - 1;
        gen = etok_keystore_generation(ks);
        etok_keystore_expire(ks);
        ASSERT_EQ(count(ks), 2);
        ASSERT_EQ(etok_keystore_generation(ks), gen);
        ASSERT_OK(crypt1(ks, slot, t, &k_ec256));
        fake_now += 1;
        etok_keystore_expire(ks);
        ASSERT_EQ(count(ks), 1);
        ASSERT_TRUE(etok_keystore_generation(ks) > gen);
        ASSERT_ERR(crypt1(ks, slot, t, &k_ec256), ETOK_ERR(NO_SUCH_TOKEN));
        ASSERT_ERR(login(ks, slot, "pin-1234", t), ETOK_ERR(NO_SUCH_TOKEN));
        /* The token without a ttl is untouched, even much later. */
        fake_now += 1000000 * NSEC;
        etok_keystore_expire(ks);
        ASSERT_EQ(count(ks), 1);
        ASSERT_OK(login(ks, other, "pin-1234", t));

        /* Provisioned again: the same slot id. */
        ASSERT_EQ(etok_keystore_add_ttl(ks, &req, 60, &slot2, &expires, NULL), 0);
        ASSERT_EQ(slot2, slot);
        /* An add or remove also sweeps an expired token first: the label is free again. */
        fake_now += 61 * NSEC;
        ASSERT_EQ(etok_keystore_add_ttl(ks, &req, 0, &slot2, &expires, NULL), 0); /* not EXISTS */
        ASSERT_EQ(expires, 0);
        ASSERT_EQ(slot2, slot);
}

/* A key refused at add says which one. */
static void test_add_bad_key_index(void) {
        _cleanup_(etok_keystore_freep) struct etok_keystore *ks = NULL;
        struct rpc_token_add_req req = { .label = S("two"), .pin = S("pin-1234"), .n_keys = 2 };
        size_t bad = SIZE_MAX;
        uint32_t slot;

        ASSERT_TRUE(keys_init());
        ASSERT_OK(etok_keystore_new(16, &ks));
        req.keys[0] = test_add_key(&k_ec256, 1, "a");
        req.keys[1] = test_add_key(&k_ec384, 2, "b");
        req.keys[1].chain_pem = req.keys[0].chain_pem; /* key 2 with key 1's certificate */
        ASSERT_ERR(etok_keystore_add_ttl(ks, &req, 0, &slot, NULL, &bad), ETOK_ERR(KEY_INVALID));
        ASSERT_EQ(bad, 1);
        ASSERT_EQ(count(ks), 0);
}

/* TOKEN_REFRESH's keystore half: PIN, then exactly the token's keys, then the expiry moves. */
static void test_refresh(void) {
        _cleanup_(etok_keystore_freep) struct etok_keystore *ks = NULL;
        struct rpc_token_add_req req = { .label = S("web"), .pin = S("pin-1234"), .n_keys = 2 };
        struct rpc_slice label = S("web"), pin = S("pin-1234"), bad_pin = S("pin-9999"), nope = S("nope");
        EVP_PKEY *right[2] = { k_ec256.pkey, k_ec384.pkey };
        EVP_PKEY *swapped[2] = { k_ec384.pkey, k_ec256.pkey };
        EVP_PKEY *other[2] = { k_ec256.pkey, k_other.pkey };
        uint32_t ids[2] = { 1, 2 }, dup[2] = { 1, 1 }, unknown[2] = { 1, 9 };
        uint8_t t[RPC_TICKET_LEN], t2[RPC_TICKET_LEN];
        uint64_t expires = 0, e2 = 0, gen;
        size_t bad;
        uint32_t slot;

        ASSERT_TRUE(keys_init());
        ASSERT_OK(etok_keystore_new(16, &ks));
        fake_now = 1000 * NSEC;
        etok_keystore_set_clock(ks, fake_clock, NULL);
        req.keys[0] = test_add_key(&k_ec256, 1, "a");
        req.keys[1] = test_add_key(&k_ec384, 2, "b");
        ASSERT_OK(etok_keystore_add_ttl(ks, &req, 100, &slot, &expires, NULL));
        ASSERT_OK(login(ks, slot, "pin-1234", t));
        gen = etok_keystore_generation(ks);

        ASSERT_ERR(etok_keystore_check_pin(ks, &nope, &pin), ETOK_ERR(NO_SUCH_TOKEN));
        ASSERT_ERR(etok_keystore_check_pin(ks, &label, &bad_pin), ETOK_ERR(PIN_INCORRECT));
        ASSERT_OK(etok_keystore_check_pin(ks, &label, &pin));
        ASSERT_ERR(etok_keystore_refresh(ks, &label, &bad_pin, ids, right, 2, 200, &e2, &bad),
                   ETOK_ERR(PIN_INCORRECT));
        ASSERT_ERR(etok_keystore_refresh(ks, &nope, &pin, ids, right, 2, 200, &e2, &bad),
                   ETOK_ERR(NO_SUCH_TOKEN));
        /* Another key under id 2: KEY_INVALID naming it. */
        bad = 0;
        ASSERT_ERR(etok_keystore_refresh(ks, &label, &pin, ids, other, 2, 200, &e2, &bad),
                   ETOK_ERR(KEY_INVALID));
        ASSERT_EQ(bad, 1);
        /* The keys under each other's ids. */
        ASSERT_ERR(etok_keystore_refresh(ks, &label, &pin, ids, swapped, 2, 200, &e2, &bad),
                   ETOK_ERR(KEY_INVALID));
        ASSERT_EQ(bad, 0);
        /* Not all of the token's keys. */
        ASSERT_ERR(etok_keystore_refresh(ks, &label, &pin, ids, right, 1, 200, &e2, &bad),
                   ETOK_ERR(KEY_INVALID));
        ASSERT_EQ(bad, SIZE_MAX);
        ASSERT_ERR(etok_keystore_refresh(ks, &label, &pin, unknown, right, 2, 200, &e2, &bad),
                   ETOK_ERR(NO_SUCH_KEY));
        ASSERT_ERR(etok_keystore_refresh(ks, &label, &pin, dup, right, 2, 200, &e2, &bad), -EBADMSG);
        ASSERT_ERR(etok_keystore_refresh(ks, &label, &pin, ids, right, 2, 0, &e2, &bad), -EINVAL);

        /* The token would expire at 100 s; refreshed at 90 s for 200 s it lives to 290 s. */
        fake_now += 90 * NSEC;
        ASSERT_OK(etok_keystore_refresh(ks, &label, &pin, ids, right, 2, 200, &e2, &bad));
        /* expires is wall-clock seconds: now + 200 against the add's now + 100. */
        ASSERT_TRUE(e2 >= expires + 100 && e2 <= (uint64_t) time(NULL) + 200);
        ASSERT_EQ(etok_keystore_generation(ks), gen); /* nothing a client lists changed */
        fake_now += 150 * NSEC;
        etok_keystore_expire(ks);
        ASSERT_EQ(count(ks), 1);
        ASSERT_OK(login(ks, slot, "pin-1234", t2));
        ASSERT_EQ(memcmp(t, t2, sizeof(t)), 0); /* the same ticket */
        ASSERT_OK(crypt1(ks, slot, t, &k_ec256));
        fake_now += 50 * NSEC;
        etok_keystore_expire(ks);
        ASSERT_EQ(count(ks), 0);
}

static struct etok_pin_guard uid_guard(uint32_t uid) {
        return (struct etok_pin_guard){ .peer_kind = ETOK_PEER_UID, .peer_id = uid };
}
/* A fresh connection of that uid. */
#define UID_CONN(u) (&(struct etok_pin_guard){ .peer_kind = ETOK_PEER_UID, .peer_id = (u) })

/* Issue 12: a guesser of one uid reconnecting for ever is held to its own budget, and another uid's
 * right PIN is never refused; only many uids guessing at their full rate reach the token's total cap,
 * which then refuses everyone until it regains room. */
static void test_pin_per_peer(void) {
        _cleanup_(etok_keystore_freep) struct etok_keystore *ks = NULL;
        struct etok_pin_guard attacker = uid_guard(65534), web = uid_guard(33);
        unsigned wrong = 0, refused = 0, n_uids;
        uint8_t t[RPC_TICKET_LEN];
        uint64_t end;
        uint32_t slot;
        int r;

        ASSERT_OK(pin_token_new(&ks, &slot));
        end = fake_now + 600 * NSEC;
        for (; fake_now < end; fake_now += 10 * 1000 * 1000) {
                if (attacker.failures >= ETOK_PIN_FREE_FAILURES)
                        attacker = uid_guard(65534);
                r = login_on(ks, &attacker, slot, "bad-pin", t);
                ASSERT_TRUE(r == ETOK_ERR(PIN_INCORRECT) || r == ETOK_ERR(PIN_LOCKED));
                wrong += r == ETOK_ERR(PIN_INCORRECT);
                web = uid_guard(33); /* a new worker of another uid, each time */
                r = login_on(ks, &web, slot, "good-pin", t);
                refused += r != 0;
        }
        printf("# uid 65534 reconnecting, 600 s: %u wrong PINs compared; uid 33 refused %u of 60000\n",
               wrong, refused);
        ASSERT_EQ(refused, 0);
        ASSERT_TRUE(wrong >= 600 && wrong <= ETOK_PIN_GUESS_BURST + 600);
        /* The attacker's own right PIN waits for its budget: refused before the comparison. */
        attacker = uid_guard(65534);
        ASSERT_ERR(login_on(ks, &attacker, slot, "bad-pin", t), ETOK_ERR(PIN_INCORRECT));
        ASSERT_ERR(login_on(ks, UID_CONN(65534), slot, "good-pin", t), ETOK_ERR(PIN_LOCKED));
        ASSERT_OK(login_on(ks, UID_CONN(33), slot, "good-pin", t));

        /* Many uids at once: the total cap, far above one uid's budget, is the last resort. */
        fake_now += ETOK_PIN_GUESS_TOTAL_BURST * ETOK_PIN_GUESS_TOTAL_INTERVAL_NSEC + 60 * NSEC;
        n_uids = ETOK_PIN_GUESS_TOTAL_BURST / ETOK_PIN_GUESS_BURST;
        for (unsigned u = 0; u < n_uids; u++)
                for (unsigned i = 0; i < ETOK_PIN_GUESS_BURST; i++)
                        ASSERT_ERR(login_on(ks, UID_CONN(1000 + u), slot, "bad-pin", t),
                                   ETOK_ERR(PIN_INCORRECT));
        ASSERT_ERR(login_on(ks, UID_CONN(33), slot, "good-pin", t), ETOK_ERR(PIN_LOCKED));
        fake_now += ETOK_PIN_GUESS_TOTAL_INTERVAL_NSEC;
        ASSERT_OK(login_on(ks, UID_CONN(33), slot, "good-pin", t));
        /* The vsock peer: every parent process is one CID, one budget (as before issue 12). */
        for (unsigned i = 0; i < ETOK_PIN_GUESS_BURST; i++) {
                struct etok_pin_guard g = { .peer_kind = ETOK_PEER_CID, .peer_id = 3 };

                fake_now += ETOK_PIN_GUESS_TOTAL_INTERVAL_NSEC;
                ASSERT_ERR(login_on(ks, &g, slot, "bad-pin", t), ETOK_ERR(PIN_INCORRECT));
        }
        ASSERT_ERR(login_on(ks, &(struct etok_pin_guard){ .peer_kind = ETOK_PEER_CID, .peer_id = 3 }, slot,
                            "good-pin", t),
                   ETOK_ERR(PIN_LOCKED));
        ASSERT_OK(login_on(ks, UID_CONN(33), slot, "good-pin", t));
        ASSERT_OK(remove1(ks, "tok", "good-pin"));
}

/* The bounded table of per-peer budgets: 3 tokens x 86 uids, one wrong PIN each at the same moment,
 * fill its 256 entries with spent budgets (and two more pairs share the last one). A spent budget is
 * never forgotten to make room; a uid that never sent a wrong PIN is still compared. */
static void test_pin_peer_table(void) {
        _cleanup_(etok_keystore_freep) struct etok_keystore *ks = NULL;
        uint8_t t[RPC_TICKET_LEN];
        uint32_t slots[3];

        ASSERT_OK(pin_token_new(&ks, &slots[0]));
        ASSERT_OK(add1(ks, "tok2", "good-pin", false, &k_ec256, &slots[1]));
        ASSERT_OK(add1(ks, "tok3", "good-pin", false, &k_ec256, &slots[2]));
        for (uint32_t u = 0; u < 86; u++)
                for (size_t i = 0; i < 3; i++)
                        ASSERT_ERR(login_on(ks, UID_CONN(2000 + u), slots[i], "bad-pin", t),
                                   ETOK_ERR(PIN_INCORRECT));
        /* Full of budgets that are not whole: uid 2000 keeps its own on the first token (its tenth
         * wrong PIN is compared, the next attempt refused unseen), uid 2001 with one wrong PIN and uid
         * 33 without any (sharing the last entry) are compared and get in. */
        for (int i = 1; i < ETOK_PIN_GUESS_BURST; i++)
                ASSERT_ERR(login_on(ks, UID_CONN(2000), slots[0], "bad-pin", t), ETOK_ERR(PIN_INCORRECT));
        ASSERT_ERR(login_on(ks, UID_CONN(2000), slots[0], "good-pin", t), ETOK_ERR(PIN_LOCKED));
        ASSERT_OK(login_on(ks, UID_CONN(2001), slots[0], "good-pin", t));
        ASSERT_OK(login_on(ks, UID_CONN(33), slots[0], "good-pin", t));
        /* A newcomer's wrong PINs go to the shared last entry, which it can spend: then a pair without
         * an entry is refused too (the documented residue of a full table). */
        for (int i = 0; i < ETOK_PIN_GUESS_BURST - 2; i++) /* uid 2085 took 2: pairs 257 and 258 */
                ASSERT_ERR(login_on(ks, UID_CONN(5000 + i), slots[2], "bad-pin", t),
                           ETOK_ERR(PIN_INCORRECT));
        ASSERT_ERR(login_on(ks, UID_CONN(5000), slots[2], "bad-pin", t), ETOK_ERR(PIN_LOCKED));
        ASSERT_ERR(login_on(ks, UID_CONN(33), slots[2], "good-pin", t), ETOK_ERR(PIN_LOCKED));
        ASSERT_OK(login_on(ks, UID_CONN(2001), slots[2], "good-pin", t)); /* its own entry */
        /* Once they are whole again, room is made and the budgets are per pair again. */
        fake_now += ETOK_PIN_GUESS_INTERVAL_NSEC;
        for (int i = 0; i < ETOK_PIN_GUESS_BURST; i++)
                ASSERT_ERR(login_on(ks, UID_CONN(4000), slots[1], "bad-pin", t), ETOK_ERR(PIN_INCORRECT));
        ASSERT_ERR(login_on(ks, UID_CONN(4000), slots[1], "good-pin", t), ETOK_ERR(PIN_LOCKED));
        ASSERT_OK(login_on(ks, UID_CONN(33), slots[1], "good-pin", t));
        ASSERT_OK(login_on(ks, UID_CONN(33), slots[2], "good-pin", t));
}

TAP_MAIN(TEST("/keystore/errno-table", test_errno_table), TEST("/keystore/expiry", test_expiry),
         TEST("/keystore/add-bad-key-index", test_add_bad_key_index),
         TEST("/keystore/refresh", test_refresh), TEST("/keystore/add-remove", test_add_remove),
         TEST("/keystore/exists-replace", test_exists_replace),
         TEST("/keystore/validation", test_validation), TEST("/keystore/key-types", test_key_types),
         TEST("/keystore/key-cert-checks", test_key_cert_checks), TEST("/keystore/limits", test_limits),
         TEST("/keystore/pin-per-peer", test_pin_per_peer),
         TEST("/keystore/pin-peer-table", test_pin_peer_table),
         TEST("/keystore/slot-collisions", test_slot_collisions),
         TEST("/keystore/rotation-grace", test_rotation_grace),
         TEST("/keystore/rotation-late-login", test_rotation_late_login),
         TEST("/keystore/held-versions", test_held_versions), TEST("/keystore/held-bound", test_held_bound),
         TEST("/keystore/pin-backoff", test_pin_backoff), TEST("/keystore/pin-compare", test_pin_compare),
         TEST("/keystore/crypt-errors", test_crypt_errors),
         TEST("/keystore/kept-contexts", test_kept_contexts),
         TEST("/keystore/secret-storage", test_secret_storage),
         TEST("/keystore/pin-guess-cap", test_pin_guess_cap),
         TEST("/keystore/pin-right-pin-bound", test_pin_right_pin_bound),
         TEST("/keystore/cleanup", cleanup_keys))
