/* Walks one whole CBOR item through the reader's typed calls (test-cbor-read, fuzz-cbor-doc): every
 * head is read with the call for its type, strings are copied, containers walked with
 * rpc_container_next(). Recursion is bounded by the reader's depth limit. */
#pragma once

#include <stdint.h>

#include "common/cbor-read.h"

struct doc_walk_stats {
        size_t items; /* every item, container or not, tags excluded */
        size_t tags;
        size_t strings; /* bytes and text */
        size_t string_bytes;
};

/* buf holds the longest string allowed (r->lim.len bytes). */
static inline int doc_walk(struct rpc_reader *r, uint8_t *buf, struct doc_walk_stats *st) {
        struct rpc_container c;
        enum rpc_item_type t;
        uint64_t u;
        int64_t i;
        size_t n;
        bool b;
        int k;

        for (;;) {
                k = rpc_peek(r, &t);
                if (k < 0)
                        return k;
                if (t != RPC_ITEM_TAG)
                        break;
                k = rpc_get_tag(r, &u);
                if (k < 0)
                        return k;
                st->tags++;
        }
        st->items++;
        switch (t) {
        case RPC_ITEM_UINT: return rpc_get_uint(r, UINT64_MAX, &u);
        case RPC_ITEM_NEGINT: return rpc_get_int(r, INT64_MIN, -1, &i); /* stricter than rpc_skip() */
        case RPC_ITEM_BYTES:
        case RPC_ITEM_TEXT:
                k = t == RPC_ITEM_BYTES ? rpc_get_bytes_copy(r, 0, r->lim.len, buf, &n)
                                        : rpc_get_text_copy(r, 0, r->lim.len, (char *) buf, &n);
                if (k < 0)
                        return k;
                st->strings++;
                st->string_bytes += n;
                return 0;
        case RPC_ITEM_ARRAY:
        case RPC_ITEM_MAP:
                k = t == RPC_ITEM_MAP ? rpc_get_map_begin(r, SIZE_MAX, &c)
                                      : rpc_get_array_begin(r, SIZE_MAX, &c);
                while (k >= 0 && (k = rpc_container_next(r, &c)) > 0) {
                        k = doc_walk(r, buf, st);
                        if (k >= 0 && t == RPC_ITEM_MAP)
                                k = doc_walk(r, buf, st);
                }
                return k;
        case RPC_ITEM_BOOL: return rpc_get_bool(r, &b);
        case RPC_ITEM_NULL: return rpc_get_null(r);
        case RPC_ITEM_UNDEFINED:
        case RPC_ITEM_FLOAT: return rpc_skip(r);
        default: return -EBADMSG; /* a break where an item belongs */
        }
}
