/* The call table: names, channels, states, secret flags, and rpc_call_check() refusing the rest. */
#include <errno.h>

#include <string.h>

#include "common/rpc-calls.h"
#include "common/rpc-messages.h"
#include "tests/lib/tap.h"

static void test_table(void) {
        static const char *const names[] = {
                "HELLO",   "PING",          "TOKEN_LIST",   "TOKEN_OBJECTS", "LOGIN",         "SIGN",
                "DECRYPT", "TOKEN_ADD",     "TOKEN_REMOVE", "DESCRIBE",      "TOKEN_RELEASE", "KMS_BEGIN",
                "KMS_END", "TOKEN_REFRESH", "ATTEST",       "STATS",
        };

        ASSERT_EQ(ELEMENTSOF(names), _RPC_CALL_MAX);
        for (unsigned i = 0; i < _RPC_CALL_MAX; i++) {
                const struct rpc_call_info *c = rpc_call_lookup(i);

                ASSERT_TRUE(c != NULL);
                ASSERT_EQ(c->id, i);
                ASSERT_STREQ(c->name, names[i]);
                ASSERT_STREQ(rpc_call_to_string(i), names[i]);
                ASSERT_TRUE(c->request != NULL);
                ASSERT_TRUE(c->response != NULL);
                ASSERT_TRUE(c->channels != 0);
                ASSERT_EQ(c->states, i == RPC_CALL_HELLO ? RPC_STATE_BIT(RPC_STATE_NEW)
                                                         : RPC_STATE_BIT(RPC_STATE_READY));
                /* PINs (LOGIN, TOKEN_ADD, TOKEN_REMOVE, TOKEN_RELEASE, TOKEN_REFRESH), keys (TOKEN_ADD),
                 * tickets (SIGN, DECRYPT), AWS credentials (KMS_BEGIN) */
                ASSERT_EQ(rpc_call_secret_request(c),
                          i == RPC_CALL_LOGIN || i == RPC_CALL_TOKEN_ADD || i == RPC_CALL_TOKEN_REMOVE ||
                                  i == RPC_CALL_TOKEN_RELEASE || i == RPC_CALL_SIGN ||
                                  i == RPC_CALL_DECRYPT || i == RPC_CALL_KMS_BEGIN ||
                                  i == RPC_CALL_TOKEN_REFRESH);
                /* the ticket (LOGIN), plaintext (DECRYPT); a signature is public */
                ASSERT_EQ(rpc_call_secret_response(c), i == RPC_CALL_LOGIN || i == RPC_CALL_DECRYPT);
        }
        ASSERT_TRUE(rpc_call_lookup(_RPC_CALL_MAX) == NULL);
        ASSERT_TRUE(rpc_call_lookup(255) == NULL);
        ASSERT_TRUE(rpc_call_lookup((unsigned) -1) == NULL);
        ASSERT_TRUE(rpc_call_to_string(_RPC_CALL_MAX) == NULL);
}

static void test_channels(void) {
        /* docs/protocol.md, "Channels" */
        static const unsigned data[] = { RPC_CALL_HELLO,         RPC_CALL_PING,  RPC_CALL_TOKEN_LIST,
                                         RPC_CALL_TOKEN_OBJECTS, RPC_CALL_LOGIN, RPC_CALL_SIGN,
                                         RPC_CALL_DECRYPT };
        static const unsigned control[] = {
                RPC_CALL_HELLO,         RPC_CALL_PING,          RPC_CALL_TOKEN_ADD, RPC_CALL_TOKEN_REMOVE,
                RPC_CALL_DESCRIBE,      RPC_CALL_TOKEN_RELEASE, RPC_CALL_KMS_BEGIN, RPC_CALL_KMS_END,
                RPC_CALL_TOKEN_REFRESH, RPC_CALL_ATTEST,        RPC_CALL_STATS,
        };

        for (unsigned i = 0; i < _RPC_CALL_MAX; i++) {
                bool on_data = false, on_control = false;
                enum rpc_conn_state st = i == RPC_CALL_HELLO ? RPC_STATE_NEW : RPC_STATE_READY;
                const struct rpc_call_info *c = NULL;

                for (size_t j = 0; j < ELEMENTSOF(data); j++)
                        on_data |= data[j] == i;
                for (size_t j = 0; j < ELEMENTSOF(control); j++)
                        on_control |= control[j] == i;
                ASSERT_ERR(rpc_call_check(i, RPC_CHANNEL_DATA, st, &c), on_data ? 0 : -EPERM);
                ASSERT_ERR(rpc_call_check(i, RPC_CHANNEL_CONTROL, st, NULL), on_control ? 0 : -EPERM);
                if (on_data)
                        ASSERT_TRUE(c == rpc_call_lookup(i));
                else
                        ASSERT_TRUE(c == NULL); /* ret written only on success */
        }
}

static void test_states(void) {
        ASSERT_OK(rpc_call_check(RPC_CALL_HELLO, RPC_CHANNEL_DATA, RPC_STATE_NEW, NULL));
        ASSERT_ERR(rpc_call_check(RPC_CALL_HELLO, RPC_CHANNEL_DATA, RPC_STATE_READY, NULL), -EPROTO);
        ASSERT_ERR(rpc_call_check(RPC_CALL_HELLO, RPC_CHANNEL_CONTROL, RPC_STATE_READY, NULL), -EPROTO);
        for (unsigned i = RPC_CALL_PING; i < _RPC_CALL_MAX; i++) {
                ASSERT_ERR(rpc_call_check(i, RPC_CHANNEL_DATA, RPC_STATE_NEW, NULL),
                           (rpc_call_lookup(i)->channels & RPC_CHANNEL_BIT(RPC_CHANNEL_DATA)) ? -EPROTO
                                                                                              : -EPERM);
                ASSERT_ERR(rpc_call_check(i, RPC_CHANNEL_CONTROL, RPC_STATE_NEW, NULL),
                           (rpc_call_lookup(i)->channels & RPC_CHANNEL_BIT(RPC_CHANNEL_CONTROL)) ? -EPROTO
                                                                                                 : -EPERM);
        }
}

static void test_unknown_and_invalid(void) {
        const struct rpc_call_info *c = (const void *) 1;

        ASSERT_ERR(rpc_call_check(_RPC_CALL_MAX, RPC_CHANNEL_DATA, RPC_STATE_READY, &c), -EBADR);
        ASSERT_ERR(rpc_call_check(255, RPC_CHANNEL_CONTROL, RPC_STATE_NEW, &c), -EBADR);
        ASSERT_ERR(rpc_call_check(UINT32_MAX, RPC_CHANNEL_CONTROL, RPC_STATE_NEW, &c), -EBADR);
        ASSERT_TRUE(c == (const void *) 1);
        ASSERT_ERR(rpc_call_check(RPC_CALL_PING, _RPC_CHANNEL_MAX, RPC_STATE_READY, NULL), -EINVAL);
        ASSERT_ERR(rpc_call_check(RPC_CALL_PING, _RPC_CHANNEL_INVALID, RPC_STATE_READY, NULL), -EINVAL);
        ASSERT_ERR(rpc_call_check(RPC_CALL_PING, RPC_CHANNEL_DATA, _RPC_STATE_MAX, NULL), -EINVAL);
        ASSERT_ERR(rpc_call_check(RPC_CALL_PING, RPC_CHANNEL_DATA, _RPC_STATE_INVALID, NULL), -EINVAL);
}

static void test_checkers_reject_garbage(void) {
        static const uint8_t garbage[] = { 0xff, 0x00, 0x13 };

        for (unsigned i = 0; i < _RPC_CALL_MAX; i++) {
                const struct rpc_call_info *c = rpc_call_lookup(i);
                ASSERT_ERR(rpc_msg_check(c->request, garbage, sizeof(garbage)), -EBADMSG);
                ASSERT_ERR(rpc_msg_check(c->response, garbage, sizeof(garbage)), -EBADMSG);
                ASSERT_ERR(rpc_msg_check(c->request, NULL, 0), -EBADMSG);
                ASSERT_ERR(rpc_msg_check(c->response, NULL, 0), -EBADMSG);
        }
}

/* The members that hold a PIN, a private key, a login ticket or a plaintext, by schema name (nested
 * schemas such as add_key are not exported). */
static bool member_is_secret(const struct rpc_schema *s, size_t offset) {
        static const struct {
                const char *schema;
                size_t offset;
        } secrets[] = {
                { "login_req", offsetof(struct rpc_login_req, pin) },
                { "login_resp", offsetof(struct rpc_login_resp, ticket) },
                { "crypto_req", offsetof(struct rpc_crypto_req, ticket) },
                { "decrypt_resp", offsetof(struct rpc_crypto_resp, data) },
                { "token_add_req", offsetof(struct rpc_token_add_req, pin) },
                { "add_key", offsetof(struct rpc_add_key, key_pem) },
                { "token_remove_req", offsetof(struct rpc_token_remove_req, pin) },
                { "token_release_req", offsetof(struct rpc_token_release_req, pin) },
                { "kms_begin_req", offsetof(struct rpc_kms_begin_req, secret_access_key) },
                { "kms_begin_req", offsetof(struct rpc_kms_begin_req, session_token) },
                { "token_refresh_req", offsetof(struct rpc_token_refresh_req, pin) },
        };

        for (size_t i = 0; i < ELEMENTSOF(secrets); i++)
                if (strcmp(secrets[i].schema, s->name) == 0 && secrets[i].offset == offset)
                        return true;
        return false;
}

/* One schema and the ones nested in it: keys unique and in range, sizes sane, the secret flags exactly
 * on the PIN / key / ticket / plaintext members, and the schema's own flag equal to its fields'. */
static void check_schema(const struct rpc_schema *s, unsigned depth) {
        uint64_t keys = 0;
        bool any_secret = false;

        ASSERT_TRUE(depth < 4);
        ASSERT_TRUE(s->name != NULL);
        ASSERT_TRUE(s->size <= RPC_MSG_SIZE_MAX);
        ASSERT_TRUE(s->n_fields == 0 || s->fields != NULL);
        for (size_t i = 0; i < s->n_fields; i++) {
                const struct rpc_field *f = &s->fields[i];

                ASSERT_TRUE(f->key >= 1 && f->key <= RPC_FIELD_KEY_MAX);
                ASSERT_FALSE(keys & (UINT64_C(1) << f->key));
                keys |= UINT64_C(1) << f->key;
                ASSERT_TRUE(i == 0 || f->key > s->fields[i - 1].key); /* written in key order */
                ASSERT_TRUE(f->type < _RPC_FIELD_TYPE_MAX);
                ASSERT_TRUE(f->offset + f->size <= s->size);
                ASSERT_TRUE(f->min <= f->max);
                ASSERT_EQ(f->secret, member_is_secret(s, f->offset));
                /* secrets are opaque bytes: never text (a label), never a number */
                if (f->secret)
                        ASSERT_EQ(f->type, RPC_FIELD_BYTES);
                any_secret |= f->secret;
                if (f->type == RPC_FIELD_ARRAY) {
                        ASSERT_TRUE(f->elem != NULL);
                        ASSERT_TRUE(f->elem_min_bytes >= 1);
                        ASSERT_TRUE(f->alloc || f->elem_size * f->max == f->size);
                        ASSERT_TRUE(f->count_offset + sizeof(size_t) <= s->size);
                        if (f->elem->type == RPC_FIELD_MAP) {
                                check_schema(f->elem->schema, depth + 1);
                                ASSERT_EQ(f->elem->schema->size, f->elem_size);
                                any_secret |= f->elem->schema->secret;
                        } else
                                ASSERT_FALSE(f->elem->secret);
                }
        }
        ASSERT_EQ(s->secret, any_secret);
        ASSERT_EQ(s->secret, rpc_schema_has_secret(s));
}

static void test_schemas(void) {
        for (unsigned i = 0; i < _RPC_CALL_MAX; i++) {
                const struct rpc_call_info *c = rpc_call_lookup(i);

                check_schema(c->request, 0);
                check_schema(c->response, 0);
        }
        /* SIGN and DECRYPT share the wire form; only DECRYPT's answer (a plaintext) is secret. */
        ASSERT_EQ(rpc_call_lookup(RPC_CALL_SIGN)->response->size,
                  rpc_call_lookup(RPC_CALL_DECRYPT)->response->size);
        ASSERT_TRUE(rpc_call_lookup(RPC_CALL_SIGN)->request == rpc_call_lookup(RPC_CALL_DECRYPT)->request);
}

static void test_names_unique(void) {
        for (unsigned i = 0; i < _RPC_CALL_MAX; i++)
                for (unsigned j = i + 1; j < _RPC_CALL_MAX; j++)
                        ASSERT_TRUE(strcmp(rpc_call_lookup(i)->name, rpc_call_lookup(j)->name) != 0);
}

TAP_MAIN(TEST("/rpc/calls/table", test_table), TEST("/rpc/calls/schemas", test_schemas),
         TEST("/rpc/calls/names-unique", test_names_unique), TEST("/rpc/calls/channels", test_channels),
         TEST("/rpc/calls/states", test_states),
         TEST("/rpc/calls/unknown-invalid", test_unknown_and_invalid),
         TEST("/rpc/calls/checkers-reject-garbage", test_checkers_reject_garbage))
