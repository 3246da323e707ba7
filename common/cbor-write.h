/* A bounded CBOR writer over a caller's buffer: definite-length items only, sticky error. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/cleanup.h"

struct rpc_writer {
        uint8_t *buf;
        size_t size;
        size_t len;
        int err; /* sticky: -EMSGSIZE once the buffer is full, -EINVAL for a value out of its schema */
};

void rpc_writer_init(struct rpc_writer *w, uint8_t *buf, size_t size);
void rpc_put_map(struct rpc_writer *w, size_t n);
void rpc_put_array(struct rpc_writer *w, size_t n);
void rpc_put_uint(struct rpc_writer *w, uint64_t v);
void rpc_put_bool(struct rpc_writer *w, bool v);
void rpc_put_bytes(struct rpc_writer *w, const void *p, size_t len);
/* Strict UTF-8 without NUL bytes, or -EINVAL (the peer would reject it). */
void rpc_put_text(struct rpc_writer *w, const char *s, size_t len);
/* Key + value in one go (map entries). */
void rpc_put_kv_uint(struct rpc_writer *w, unsigned key, uint64_t v);
void rpc_put_kv_bytes(struct rpc_writer *w, unsigned key, const void *p, size_t len);
void rpc_put_kv_text(struct rpc_writer *w, unsigned key, const char *s, size_t len);
/* Sets the sticky error (the first one wins). */
void rpc_writer_fail(struct rpc_writer *w, int err);
/* 0 or the sticky error. */
_must_check_ int rpc_writer_finish(const struct rpc_writer *w);

/* Strict UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF), no NUL. */
bool rpc_utf8_valid(const uint8_t *s, size_t len);
