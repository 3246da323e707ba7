/* The call table: which call may come on which channel and in which state, and how to check its bodies. */
#include <errno.h>
#include <stdlib.h>

#include "common/rpc-calls.h"
#include "common/rpc-codec.h"

/* Decode-and-discard wrappers around the codec. */

static int check_empty(const uint8_t *b, size_t n) {
        return rpc_empty_decode(b, n);
}

static int check_hello_req(const uint8_t *b, size_t n) {
        struct rpc_hello_req m;
        return rpc_hello_req_decode(b, n, &m);
}

static int check_hello_resp(const uint8_t *b, size_t n) {
        struct rpc_hello_resp m;
        return rpc_hello_resp_decode(b, n, &m);
}

static int check_page_req(const uint8_t *b, size_t n) {
        struct rpc_page_req m;
        return rpc_page_req_decode(b, n, &m);
}

static int check_page_resp(const uint8_t *b, size_t n) {
        struct rpc_page_resp m = {};
        int r;

        r = rpc_page_resp_decode(b, n, &m);
        rpc_page_resp_done(&m);
        return r;
}

static int check_slot_req(const uint8_t *b, size_t n) {
        struct rpc_slot_req m;
        return rpc_slot_req_decode(b, n, &m);
}

static int check_token_info(const uint8_t *b, size_t n) {
        _cleanup_free_ struct rpc_token_info *m = NULL;

        m = malloc(sizeof(*m));
        if (!m)
                return -ENOMEM;
        return rpc_token_info_decode(b, n, m);
}

static int check_login_req(const uint8_t *b, size_t n) {
        struct rpc_login_req m;
        return rpc_login_req_decode(b, n, &m);
}

static int check_login_resp(const uint8_t *b, size_t n) {
        struct rpc_login_resp m;
        return rpc_login_resp_decode(b, n, &m);
}

static int check_crypto_req(const uint8_t *b, size_t n) {
        struct rpc_crypto_req m;
        return rpc_crypto_req_decode(b, n, &m);
}

static int check_crypto_resp(const uint8_t *b, size_t n) {
        struct rpc_crypto_resp m;
        return rpc_crypto_resp_decode(b, n, &m);
}

static int check_token_add_req(const uint8_t *b, size_t n) {
        struct rpc_token_add_req m;
        return rpc_token_add_req_decode(b, n, &m);
}

static int check_token_add_resp(const uint8_t *b, size_t n) {
        struct rpc_token_add_resp m;
        return rpc_token_add_resp_decode(b, n, &m);
}

static int check_token_remove_req(const uint8_t *b, size_t n) {
        struct rpc_token_remove_req m;
        return rpc_token_remove_req_decode(b, n, &m);
}

#define DATA    RPC_CHANNEL_BIT(RPC_CHANNEL_DATA)
#define CONTROL RPC_CHANNEL_BIT(RPC_CHANNEL_CONTROL)
#define NEW     RPC_STATE_BIT(RPC_STATE_NEW)
#define READY   RPC_STATE_BIT(RPC_STATE_READY)

static const struct rpc_call_info calls[_RPC_CALL_MAX] = {
        [RPC_CALL_HELLO] = { RPC_CALL_HELLO, "HELLO", DATA | CONTROL, NEW, false, check_hello_req,
                             check_hello_resp },
        [RPC_CALL_PING] = { RPC_CALL_PING, "PING", DATA | CONTROL, READY, false, check_empty, check_empty },
        [RPC_CALL_TOKEN_LIST] = { RPC_CALL_TOKEN_LIST, "TOKEN_LIST", DATA, READY, false, check_page_req,
                                  check_page_resp },
        [RPC_CALL_TOKEN_OBJECTS] = { RPC_CALL_TOKEN_OBJECTS, "TOKEN_OBJECTS", DATA, READY, false,
                                     check_slot_req, check_token_info },
        [RPC_CALL_LOGIN] = { RPC_CALL_LOGIN, "LOGIN", DATA, READY, true, check_login_req, check_login_resp },
        [RPC_CALL_SIGN] = { RPC_CALL_SIGN, "SIGN", DATA, READY, false, check_crypto_req, check_crypto_resp },
        [RPC_CALL_DECRYPT] = { RPC_CALL_DECRYPT, "DECRYPT", DATA, READY, false, check_crypto_req,
                               check_crypto_resp },
        [RPC_CALL_TOKEN_ADD] = { RPC_CALL_TOKEN_ADD, "TOKEN_ADD", CONTROL, READY, true, check_token_add_req,
                                 check_token_add_resp },
        [RPC_CALL_TOKEN_REMOVE] = { RPC_CALL_TOKEN_REMOVE, "TOKEN_REMOVE", CONTROL, READY, true,
                                    check_token_remove_req, check_empty },
        [RPC_CALL_DESCRIBE] = { RPC_CALL_DESCRIBE, "DESCRIBE", CONTROL, READY, false, check_page_req,
                                check_page_resp },
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
