/* The call table: which call may come on which channel and in which state, and its message schemas. */
#include <errno.h>
#include <stdlib.h>

#include "common/rpc-calls.h"
#include "common/rpc-messages.h"

#define DATA    RPC_CHANNEL_BIT(RPC_CHANNEL_DATA)
#define CONTROL RPC_CHANNEL_BIT(RPC_CHANNEL_CONTROL)
#define NEW     RPC_STATE_BIT(RPC_STATE_NEW)
#define READY   RPC_STATE_BIT(RPC_STATE_READY)

#define CALL(c, ch, st, req, resp) \
        [RPC_CALL_##c] = { RPC_CALL_##c, #c, ch, st, &rpc_##req##_schema, &rpc_##resp##_schema }

static const struct rpc_call_info calls[_RPC_CALL_MAX] = {
        CALL(HELLO, DATA | CONTROL, NEW, hello_req, hello_resp),
        CALL(PING, DATA | CONTROL, READY, empty, empty),
        CALL(TOKEN_LIST, DATA, READY, page_req, page_resp),
        CALL(TOKEN_OBJECTS, DATA, READY, slot_req, token_info),
        CALL(LOGIN, DATA, READY, login_req, login_resp),
        CALL(SIGN, DATA, READY, crypto_req, sign_resp),
        CALL(DECRYPT, DATA, READY, crypto_req, decrypt_resp),
        CALL(TOKEN_ADD, CONTROL, READY, token_add_req, token_add_resp),
        CALL(TOKEN_REMOVE, CONTROL, READY, token_remove_req, empty),
        CALL(DESCRIBE, CONTROL, READY, page_req, page_resp),
        CALL(TOKEN_RELEASE, CONTROL, READY, token_release_req, token_release_resp),
        CALL(KMS_BEGIN, CONTROL, READY, kms_begin_req, kms_begin_resp),
        CALL(KMS_END, CONTROL, READY, empty, empty),
        CALL(TOKEN_REFRESH, CONTROL, READY, token_refresh_req, token_refresh_resp),
        CALL(ATTEST, CONTROL, READY, attest_req, attest_resp),
        CALL(STATS, CONTROL, READY, page_req, stats_resp),
};

const struct rpc_call_info *rpc_call_lookup(unsigned id) {
        return id < _RPC_CALL_MAX ? &calls[id] : NULL;
}

int rpc_call_check(unsigned id, enum rpc_channel ch, enum rpc_conn_state state,
                   const struct rpc_call_info **ret) {
        const struct rpc_call_info *c;

        if (ch < 0 || ch >= _RPC_CHANNEL_MAX || state < 0 || state >= _RPC_STATE_MAX)
                return -EINVAL;
        c = rpc_call_lookup(id);
        if (!c)
                return -EBADR;
        if (!(c->channels & RPC_CHANNEL_BIT(ch)))
                return -EPERM;
        if (!(c->states & RPC_STATE_BIT(state)))
                return -EPROTO;
        if (ret)
                *ret = c;
        return 0;
}

const char *rpc_call_to_string(unsigned id) {
        const struct rpc_call_info *c = rpc_call_lookup(id);
        return c ? c->name : NULL;
}
