/* Target: every response decoder the client side uses (rpc_*_resp_decode, rpc_token_info_decode,
 * rpc_empty_decode) and every call's check_response.
 *
 * Input: byte 0 is a call id (modulo the number of calls) whose response decoder runs on the rest.
 * What decodes must re-encode, and the re-encoding must decode to the same bytes again. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/rpc-calls.h"
#include "common/rpc-codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum {
        T_HELLO,
        T_EMPTY,
        T_PAGE,
        T_TOKEN_INFO,
        T_LOGIN,
        T_CRYPTO,
        T_TOKEN_ADD,
};

static const unsigned response_decoder[_RPC_CALL_MAX] = {
        [RPC_CALL_HELLO] = T_HELLO,
        [RPC_CALL_PING] = T_EMPTY,
        [RPC_CALL_TOKEN_LIST] = T_PAGE,
        [RPC_CALL_TOKEN_OBJECTS] = T_TOKEN_INFO,
        [RPC_CALL_LOGIN] = T_LOGIN,
        [RPC_CALL_SIGN] = T_CRYPTO,
        [RPC_CALL_DECRYPT] = T_CRYPTO,
        [RPC_CALL_TOKEN_ADD] = T_TOKEN_ADD,
        [RPC_CALL_TOKEN_REMOVE] = T_EMPTY,
        [RPC_CALL_DESCRIBE] = T_PAGE,
};

static uint8_t out1[1u << 20], out2[1u << 20];

/* Decodes b with decoder t and re-encodes into w; 0, or the decoder's error. */
static int decode_encode(unsigned t, const uint8_t *b, size_t n, struct rpc_writer *w) {
        int r;

        switch (t) {
        case T_HELLO: {
                struct rpc_hello_resp m;
                if ((r = rpc_hello_resp_decode(b, n, &m)) >= 0)
                        rpc_hello_resp_encode(w, &m);
                return r;
        }
        case T_EMPTY:
                if ((r = rpc_empty_decode(b, n)) >= 0)
                        rpc_empty_encode(w);
                return r;
        case T_PAGE: {
                struct rpc_page_resp m = {};
                if ((r = rpc_page_resp_decode(b, n, &m)) >= 0)
                        rpc_page_resp_encode(w, &m);
                rpc_page_resp_done(&m);
                return r;
        }
        case T_TOKEN_INFO: {
                struct rpc_token_info *m = malloc(sizeof(*m));
                if (!m)
                        return -ENOMEM;
                if ((r = rpc_token_info_decode(b, n, m)) >= 0)
                        rpc_token_info_encode(w, m);
                free(m);
                return r;
        }
        case T_LOGIN: {
                struct rpc_login_resp m;
                if ((r = rpc_login_resp_decode(b, n, &m)) >= 0)
                        rpc_login_resp_encode(w, &m);
                return r;
        }
        case T_CRYPTO: {
                struct rpc_crypto_resp m;
                if ((r = rpc_crypto_resp_decode(b, n, &m)) >= 0)
                        rpc_crypto_resp_encode(w, &m);
                return r;
        }
        case T_TOKEN_ADD: {
                struct rpc_token_add_resp m;
                if ((r = rpc_token_add_resp_decode(b, n, &m)) >= 0)
                        rpc_token_add_resp_encode(w, &m);
                return r;
        }
        default:
                abort();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct rpc_writer w1, w2;
        unsigned t;
        int r;

        if (size < 1)
                return 0;
        t = data[0];
        data++;
        size--;

        /* every call's checker sees every input */
        for (unsigned c = 0; c < _RPC_CALL_MAX; c++) {
                r = rpc_call_lookup(c)->check_response(data, size);
                if (r != 0 && r != -EBADMSG && r != -ENOMEM)
                        abort();
        }

        t = response_decoder[t % _RPC_CALL_MAX];
        rpc_writer_init(&w1, out1, sizeof(out1));
        r = decode_encode(t, data, size, &w1);
        if (r < 0) {
                if (r != -EBADMSG && r != -ENOMEM)
                        abort();
                return 0;
        }
        /* Accepted input re-encodes within the schema ... */
        if (rpc_writer_finish(&w1) < 0)
                abort();
        /* ... and the canonical form is a fixed point. */
        rpc_writer_init(&w2, out2, sizeof(out2));
        if (decode_encode(t, out1, w1.len, &w2) < 0 || rpc_writer_finish(&w2) < 0)
                abort();
        if (w1.len != w2.len || memcmp(out1, out2, w1.len) != 0)
                abort();
        return 0;
}
