/* The call table: names, channels, states, secret flags, and rpc_call_check() refusing the rest. */
#include <errno.h>

#include "common/rpc-calls.h"
#include "tests/lib/tap.h"

static void test_table(void) {
        static const char *const names[] = {
                "HELLO", "PING",    "TOKEN_LIST", "TOKEN_OBJECTS", "LOGIN",
                "SIGN",  "DECRYPT", "TOKEN_ADD",  "TOKEN_REMOVE",  "DESCRIBE",
        };

        ASSERT_EQ(ELEMENTSOF(names), _RPC_CALL_MAX);
        for (unsigned i = 0; i < _RPC_CALL_MAX; i++) {
                const struct rpc_call_info *c = rpc_call_lookup(i);

                ASSERT_TRUE(c != NULL);
                ASSERT_EQ(c->id, i);
                ASSERT_STREQ(c->name, names[i]);
                ASSERT_STREQ(rpc_call_to_string(i), names[i]);
                ASSERT_TRUE(c->check_request != NULL);
                ASSERT_TRUE(c->check_response != NULL);
                ASSERT_TRUE(c->channels != 0);
                ASSERT_EQ(c->states, i == RPC_CALL_HELLO ? RPC_STATE_BIT(RPC_STATE_NEW)
                                                         : RPC_STATE_BIT(RPC_STATE_READY));
                ASSERT_EQ(c->secret_request,
                          i == RPC_CALL_LOGIN || i == RPC_CALL_TOKEN_ADD || i == RPC_CALL_TOKEN_REMOVE);
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
        static const unsigned control[] = { RPC_CALL_HELLO, RPC_CALL_PING, RPC_CALL_TOKEN_ADD,
                                            RPC_CALL_TOKEN_REMOVE, RPC_CALL_DESCRIBE };

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
                ASSERT_ERR(c->check_request(garbage, sizeof(garbage)), -EBADMSG);
                ASSERT_ERR(c->check_response(garbage, sizeof(garbage)), -EBADMSG);
                ASSERT_ERR(c->check_request(NULL, 0), -EBADMSG);
                ASSERT_ERR(c->check_response(NULL, 0), -EBADMSG);
        }
}

TAP_MAIN(TEST("/rpc/calls/table", test_table), TEST("/rpc/calls/channels", test_channels),
         TEST("/rpc/calls/states", test_states),
         TEST("/rpc/calls/unknown-invalid", test_unknown_and_invalid),
         TEST("/rpc/calls/checkers-reject-garbage", test_checkers_reject_garbage))
