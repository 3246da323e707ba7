/* Decode one message body and encode it again, for any call in either direction: the codec's round trips
 * and fuzz-rpc-response. Each returns the decoder's result (w is not finished), -ENOMEM, or -EINVAL
 * for a call it has no schema for. Driven by the call table's schemas only. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "common/rpc-calls.h"
#include "common/rpc-codec.h"

static inline int rpc_sample_reencode(const struct rpc_schema *s, const uint8_t *b, size_t n,
                                      struct rpc_writer *w) {
        void *m;
        int r;

        m = malloc(s->size > 0 ? s->size : 1);
        if (!m)
                return -ENOMEM;
        r = rpc_msg_decode(s, b, n, m);
        if (r >= 0) {
                rpc_msg_write(s, w, m);
                rpc_msg_done(s, m);
        }
        free(m);
        return r;
}

static inline int rpc_sample_reencode_request(enum rpc_call call, const uint8_t *b, size_t n,
                                              struct rpc_writer *w) {
        const struct rpc_call_info *c = rpc_call_lookup(call);

        return c ? rpc_sample_reencode(c->request, b, n, w) : -EINVAL;
}

static inline int rpc_sample_reencode_response(enum rpc_call call, const uint8_t *b, size_t n,
                                               struct rpc_writer *w) {
        const struct rpc_call_info *c = rpc_call_lookup(call);

        return c ? rpc_sample_reencode(c->response, b, n, w) : -EINVAL;
}
