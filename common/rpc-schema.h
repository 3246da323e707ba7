/* The schema engine: one table of fields per message drives encode, decode, check and free.
 *
 * A body is a CBOR map with small unsigned keys (1..63). The encoder writes required fields always
 * and optional ones when non-zero / non-empty, in key order; the decoder accepts the keys in any
 * order and rejects unknown, duplicate, out-of-range and missing required ones, wrong types,
 * indefinite lengths and trailing bytes. Decoding is zero-copy: every struct rpc_slice points into
 * the body, which must outlive the decoded struct. Only arrays marked alloc are allocated (freed
 * with rpc_msg_done()). Fields marked secret carry PINs, keys, tickets or plaintext: the call table
 * tells both ends from these flags which frames to keep in wiped memory. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/cbor-read.h"
#include "common/cbor-write.h"
#include "common/cleanup.h"

enum rpc_field_type {
        RPC_FIELD_U32,
        RPC_FIELD_U64,
        RPC_FIELD_BOOL,
        RPC_FIELD_BYTES, /* struct rpc_slice */
        RPC_FIELD_TEXT,  /* struct rpc_slice, strict UTF-8 */
        RPC_FIELD_MAP,   /* a nested struct with its own schema */
        RPC_FIELD_ARRAY, /* elements described by .elem, count in a size_t member */
        _RPC_FIELD_TYPE_MAX,
        _RPC_FIELD_TYPE_INVALID = -EINVAL,
};

struct rpc_schema;

struct rpc_field {
        uint8_t key;  /* 1..RPC_FIELD_KEY_MAX; unused for an array element */
        uint8_t type; /* enum rpc_field_type */
        bool required;
        bool secret; /* a PIN, private key, login ticket or plaintext */
        size_t offset;
        size_t size;       /* of the member (checked at compile time by the macros) */
        uint64_t min, max; /* value range (ints), length range (strings), count range (arrays) */
        /* RPC_FIELD_MAP */
        const struct rpc_schema *schema;
        /* RPC_FIELD_ARRAY: the member is elem_type[max] inline, or elem_type * when alloc */
        const struct rpc_field *elem; /* offset 0 in each element */
        size_t elem_size;
        size_t elem_min_bytes; /* smallest encoding of one element: bounds the count by the bytes left */
        size_t count_offset;   /* size_t member holding the count */
        bool alloc;
};

struct rpc_schema {
        const char *name;
        size_t size; /* of the message struct */
        const struct rpc_field *fields;
        size_t n_fields;
        bool secret; /* some field, nested ones included, is secret (test-rpc-calls checks it) */
};

#define RPC_FIELD_KEY_MAX 63
/* The largest message struct (struct rpc_token_info, ~3.4 KiB): decoded on the stack first. */
#define RPC_MSG_SIZE_MAX 4096

/* offsetof() that also checks the member's size at compile time. */
#define RPC_FIELD_OFFSET(st, m, sz) \
        (offsetof(st, m) + 0 * sizeof(char[sizeof(((st *) 0)->m) == (sz) ? 1 : -1]))

#define RPC_F_U32(k, st, m, req, lo, hi)                                                                \
        {                                                                                               \
                .key = k, .type = RPC_FIELD_U32, .required = req, .offset = RPC_FIELD_OFFSET(st, m, 4), \
                .size = 4, .min = lo, .max = hi                                                         \
        }
#define RPC_F_U64(k, st, m, req)                                                                        \
        {                                                                                               \
                .key = k, .type = RPC_FIELD_U64, .required = req, .offset = RPC_FIELD_OFFSET(st, m, 8), \
                .size = 8, .max = UINT64_MAX                                                            \
        }
#define RPC_F_BOOL(k, st, m, req)                                                               \
        {                                                                                       \
                .key = k, .type = RPC_FIELD_BOOL, .required = req,                              \
                .offset = RPC_FIELD_OFFSET(st, m, sizeof(bool)), .size = sizeof(bool), .max = 1 \
        }
#define RPC_F_STRING(k, t, st, m, req, sec, lo, hi)                          \
        {                                                                    \
                .key = k, .type = t, .required = req, .secret = sec,         \
                .offset = RPC_FIELD_OFFSET(st, m, sizeof(struct rpc_slice)), \
                .size = sizeof(struct rpc_slice), .min = lo, .max = hi       \
        }
#define RPC_F_BYTES(k, st, m, req, lo, hi)  RPC_F_STRING(k, RPC_FIELD_BYTES, st, m, req, false, lo, hi)
#define RPC_F_SECRET(k, st, m, req, lo, hi) RPC_F_STRING(k, RPC_FIELD_BYTES, st, m, req, true, lo, hi)
#define RPC_F_TEXT(k, st, m, req, lo, hi)   RPC_F_STRING(k, RPC_FIELD_TEXT, st, m, req, false, lo, hi)
/* An array member m[hi] (inline) or *m (al: allocated by the decoder), count in n; elements are
 * described by the field el (offset 0) and take at least emin bytes on the wire. */
#define RPC_F_ARRAY(k, st, m, n, req, lo, hi, el, emin, al)                                    \
        {                                                                                      \
                .key = k, .type = RPC_FIELD_ARRAY, .required = req, .offset = offsetof(st, m), \
                .size = sizeof(((st *) 0)->m), .min = lo, .max = hi, .elem = &(el),            \
                .elem_size = sizeof(((st *) 0)->m[0]), .elem_min_bytes = emin,                 \
                .count_offset = RPC_FIELD_OFFSET(st, n, sizeof(size_t)), .alloc = al           \
        }
/* The element descriptors of arrays. */
#define RPC_E_BYTES(lo, hi) \
        { .type = RPC_FIELD_BYTES, .size = sizeof(struct rpc_slice), .min = lo, .max = hi }
#define RPC_E_MAP(sch) \
        { .type = RPC_FIELD_MAP, .schema = &(sch) }

#define RPC_SCHEMA(nm, st, flds, sec) \
        { .name = nm, .size = sizeof(st), .fields = flds, .n_fields = ELEMENTSOF(flds), .secret = sec }

/* Writes msg as a map into w; check rpc_writer_finish(w). A value outside the schema (a length or
 * count out of range) sets -EINVAL: the peer would answer MALFORMED. */
void rpc_msg_write(const struct rpc_schema *s, struct rpc_writer *w, const void *msg);
/* Reads one map from r into msg, which must start zeroed. */
_must_check_ int rpc_msg_read(const struct rpc_schema *s, struct rpc_reader *r, void *msg);

/* The whole body into ret (s->size bytes), written only on success: 0, -EBADMSG, -ENOMEM, or -EINVAL
 * for a message larger than RPC_MSG_SIZE_MAX. Slices point into b. */
_must_check_ int rpc_msg_decode(const struct rpc_schema *s, const uint8_t *b, size_t n, void *ret);
/* Frees what the decoder allocated (arrays marked alloc) and zeroes the counts. NULL is fine. */
void rpc_msg_done(const struct rpc_schema *s, void *msg);
/* Decode-and-discard: 0 if b is a valid body, else -EBADMSG / -ENOMEM (fuzzing, mutation tests). */
_must_check_ int rpc_msg_check(const struct rpc_schema *s, const uint8_t *b, size_t n);

/* Walks the fields, nested ones included: true if any is secret. */
bool rpc_schema_has_secret(const struct rpc_schema *s);
