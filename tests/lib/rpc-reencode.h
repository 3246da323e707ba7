/* Decode one message body and encode it again, for any call in either direction: the codec's round trips
 * and fuzz-rpc-response. Each returns the decoder's result (w is not finished), -ENOMEM, or -EINVAL
 * for a call it has no decoder for. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "common/rpc-calls.h"
#include "common/rpc-codec.h"

static inline int rpc_sample_reencode_request(enum rpc_call call, const uint8_t *b, size_t n,
                                              struct rpc_writer *w) {
        int r;

        switch (call) {
        case RPC_CALL_HELLO: {
                struct rpc_hello_req m;
                if ((r = rpc_hello_req_decode(b, n, &m)) >= 0)
                        rpc_hello_req_encode(w, &m);
                return r;
        }
        case RPC_CALL_PING:
                if ((r = rpc_empty_decode(b, n)) >= 0)
                        rpc_empty_encode(w);
                return r;
        case RPC_CALL_TOKEN_LIST:
        case RPC_CALL_DESCRIBE: {
                struct rpc_page_req m;
                if ((r = rpc_page_req_decode(b, n, &m)) >= 0)
                        rpc_page_req_encode(w, &m);
                return r;
        }
        case RPC_CALL_TOKEN_OBJECTS: {
                struct rpc_slot_req m;
                if ((r = rpc_slot_req_decode(b, n, &m)) >= 0)
                        rpc_slot_req_encode(w, &m);
                return r;
        }
        case RPC_CALL_LOGIN: {
                struct rpc_login_req m;
                if ((r = rpc_login_req_decode(b, n, &m)) >= 0)
                        rpc_login_req_encode(w, &m);
                return r;
        }
        case RPC_CALL_SIGN:
        case RPC_CALL_DECRYPT: {
                struct rpc_crypto_req m;
                if ((r = rpc_crypto_req_decode(b, n, &m)) >= 0)
                        rpc_crypto_req_encode(w, &m);
                return r;
        }
        case RPC_CALL_TOKEN_ADD: {
                struct rpc_token_add_req m;
                if ((r = rpc_token_add_req_decode(b, n, &m)) >= 0)
                        rpc_token_add_req_encode(w, &m);
                return r;
        }
        case RPC_CALL_TOKEN_REMOVE: {
                struct rpc_token_remove_req m;
                if ((r = rpc_token_remove_req_decode(b, n, &m)) >= 0)
                        rpc_token_remove_req_encode(w, &m);
                return r;
        }
        default: return -EINVAL;
        }
}

static inline int rpc_sample_reencode_response(enum rpc_call call, const uint8_t *b, size_t n,
                                               struct rpc_writer *w) {
        int r;

        switch (call) {
        case RPC_CALL_HELLO: {
                struct rpc_hello_resp m;
                if ((r = rpc_hello_resp_decode(b, n, &m)) >= 0)
                        rpc_hello_resp_encode(w, &m);
                return r;
        }
        case RPC_CALL_PING:
        case RPC_CALL_TOKEN_REMOVE:
                if ((r = rpc_empty_decode(b, n)) >= 0)
                        rpc_empty_encode(w);
                return r;
        case RPC_CALL_TOKEN_LIST:
        case RPC_CALL_DESCRIBE: {
                struct rpc_page_resp m = {};
                if ((r = rpc_page_resp_decode(b, n, &m)) >= 0)
                        rpc_page_resp_encode(w, &m);
                rpc_page_resp_done(&m);
                return r;
        }
        case RPC_CALL_TOKEN_OBJECTS: {
                struct rpc_token_info *m = malloc(sizeof(*m));
                if (!m)
                        return -ENOMEM;
                if ((r = rpc_token_info_decode(b, n, m)) >= 0)
                        rpc_token_info_encode(w, m);
                free(m);
                return r;
        }
        case RPC_CALL_LOGIN: {
                struct rpc_login_resp m;
                if ((r = rpc_login_resp_decode(b, n, &m)) >= 0)
                        rpc_login_resp_encode(w, &m);
                return r;
        }
        case RPC_CALL_SIGN:
        case RPC_CALL_DECRYPT: {
                struct rpc_crypto_resp m;
                if ((r = rpc_crypto_resp_decode(b, n, &m)) >= 0)
                        rpc_crypto_resp_encode(w, &m);
                return r;
        }
        case RPC_CALL_TOKEN_ADD: {
                struct rpc_token_add_resp m;
                if ((r = rpc_token_add_resp_decode(b, n, &m)) >= 0)
                        rpc_token_add_resp_encode(w, &m);
                return r;
        }
        default: return -EINVAL;
        }
}
