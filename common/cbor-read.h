/* A bounded CBOR reader over a caller's buffer, one item at a time (libcbor's cbor_stream_decode()).
 *
 * Nothing is allocated and nothing is copied unless asked: byte and text strings come back as slices
 * into the buffer, which must outlive them. Every count and length is checked against the caller's
 * maximum, the reader's limits and the bytes left before anything trusts it. Errors are sticky: after
 * the first one every call returns it.
 *
 * Two modes. rpc_reader_init() is our own protocol: definite lengths only (our encoder never emits
 * anything else), so an indefinite-length item is malformed. rpc_reader_init_doc() is for documents
 * produced by others (Nitro attestation documents: COSE_Sign1 with tags, negative ints, text keys,
 * maps that real hardware sometimes encodes with indefinite length): indefinite-length maps, arrays
 * and chunked strings are accepted, with the same caps on every count, length and depth. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/cleanup.h"

/* Deepest nesting any reader accepts (containers and tags). */
#define RPC_READER_DEPTH_MAX 16

struct rpc_slice {
        const uint8_t *ptr;
        size_t len;
};

/* True if s holds exactly the bytes of the C string str (text map keys). */
bool rpc_slice_eq_str(const struct rpc_slice *s, const char *str);

enum rpc_item_type {
        RPC_ITEM_UINT,
        RPC_ITEM_NEGINT,
        RPC_ITEM_BYTES,
        RPC_ITEM_TEXT,
        RPC_ITEM_ARRAY,
        RPC_ITEM_MAP,
        RPC_ITEM_TAG,
        RPC_ITEM_BOOL,
        RPC_ITEM_NULL,
        RPC_ITEM_UNDEFINED,
        RPC_ITEM_FLOAT,
        RPC_ITEM_BREAK, /* the end of an indefinite-length item */
        _RPC_ITEM_MAX,
        _RPC_ITEM_INVALID = -EINVAL,
};

/* Caps for every item, on top of what each call asks for. */
struct rpc_reader_limits {
        unsigned depth; /* open containers and tags, at most RPC_READER_DEPTH_MAX */
        size_t count;   /* elements of an array, pairs of a map, chunks of a string */
        size_t len;     /* bytes of a string, all chunks together */
};

struct rpc_reader {
        const uint8_t *buf;
        size_t len;
        size_t pos;
        int err;         /* sticky */
        bool indefinite; /* indefinite-length items accepted (rpc_reader_init_doc()) */
        unsigned depth;  /* containers entered with rpc_get_*_begin() and not yet left */
        struct rpc_reader_limits lim;
};

/* A map or array being walked: see rpc_container_next(). */
struct rpc_container {
        size_t n; /* declared count (pairs for a map); unused when indefinite */
        size_t i; /* elements (pairs) started so far */
        size_t max;
        bool indefinite;
};

/* Our protocol: definite lengths only, depth RPC_READER_DEPTH_MAX, counts and lengths capped by
 * each call's maximum and the bytes left. */
void rpc_reader_init(struct rpc_reader *r, const uint8_t *buf, size_t len);
/* Others' documents: indefinite-length items accepted within lim (depth clamped to
 * RPC_READER_DEPTH_MAX). */
void rpc_reader_init_doc(struct rpc_reader *r, const uint8_t *buf, size_t len,
                         const struct rpc_reader_limits *lim);

/* The type of the next item without consuming it; -EBADMSG at the end or on a malformed head. */
_must_check_ int rpc_peek(struct rpc_reader *r, enum rpc_item_type *ret);

/* Each reads one item of the given type; a wrong type, an indefinite length, a count or length
 * above max or above the bytes left gives -EBADMSG (sticky). */
_must_check_ int rpc_get_map(struct rpc_reader *r, size_t max, size_t *ret_n);
_must_check_ int rpc_get_array(struct rpc_reader *r, size_t max, size_t *ret_n);
/* Arrays whose elements take at least elem_min bytes each: the count is checked against that. */
_must_check_ int rpc_get_array_sized(struct rpc_reader *r, size_t max, size_t elem_min, size_t *ret_n);
_must_check_ int rpc_get_uint(struct rpc_reader *r, uint64_t max, uint64_t *ret);
/* Unsigned or negative integer within [min, max]. */
_must_check_ int rpc_get_int(struct rpc_reader *r, int64_t min, int64_t max, int64_t *ret);
_must_check_ int rpc_get_bool(struct rpc_reader *r, bool *ret);
_must_check_ int rpc_get_null(struct rpc_reader *r);
/* A tag's number; the tagged item follows. */
_must_check_ int rpc_get_tag(struct rpc_reader *r, uint64_t *ret);
/* Definite strings as slices into the buffer (a chunked string has no single slice: use the copy
 * variants). Text is strict UTF-8 without NUL bytes. */
_must_check_ int rpc_get_bytes(struct rpc_reader *r, size_t min, size_t max, struct rpc_slice *ret);
_must_check_ int rpc_get_text(struct rpc_reader *r, size_t min, size_t max, struct rpc_slice *ret);
/* Definite or (rpc_reader_init_doc()) chunked strings copied into buf, which holds max bytes. */
_must_check_ int rpc_get_bytes_copy(struct rpc_reader *r, size_t min, size_t max, uint8_t *buf,
                                    size_t *ret_len);
_must_check_ int rpc_get_text_copy(struct rpc_reader *r, size_t min, size_t max, char *buf, size_t *ret_len);

/* Walking a map or array of either length encoding (indefinite only with rpc_reader_init_doc()):
 *
 *         r = rpc_get_map_begin(&rd, 16, &m);
 *         while (r >= 0 && (r = rpc_container_next(&rd, &m)) > 0)
 *                 ... read the key, then the value ...
 *
 * rpc_container_next() returns 1 when another element (a map: a pair) follows, 0 at the end (an
 * indefinite container's break is consumed), or -EBADMSG past max elements or on a stray break. */
_must_check_ int rpc_get_map_begin(struct rpc_reader *r, size_t max, struct rpc_container *ret);
_must_check_ int rpc_get_array_begin(struct rpc_reader *r, size_t max, struct rpc_container *ret);
_must_check_ int rpc_container_next(struct rpc_reader *r, struct rpc_container *c);

/* Skips one whole item, nested items included, checking every head against the limits. */
_must_check_ int rpc_skip(struct rpc_reader *r);

/* 0 if every byte was consumed, no container is open and no error occurred, else -EBADMSG. */
_must_check_ int rpc_reader_end(const struct rpc_reader *r);
