/* A bounded CBOR writer: libcbor's cbor_encode_*() into the caller's buffer, definite lengths only. */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include <cbor.h>

#include "common/cbor-write.h"

/* ---- writer: libcbor's cbor_encode_*() into the caller's buffer ---- */

void rpc_writer_init(struct rpc_writer *w, uint8_t *buf, size_t size) {
        *w = (struct rpc_writer){ .buf = buf, .size = buf ? size : 0 };
}

static void writer_advance(struct rpc_writer *w, size_t n) {
        if (n == 0)
                w->err = -EMSGSIZE;
        else
                w->len += n;
}

static uint8_t *writer_pos(struct rpc_writer *w) {
        return w->buf ? w->buf + w->len : NULL;
}

#define WRITER_ROOM(w) ((w)->size - (w)->len)

/* Room for at least one byte and no error yet: a head may be tried. */
static bool writer_ready(struct rpc_writer *w) {
        if (w->err)
                return false;
        if (WRITER_ROOM(w) == 0) {
                w->err = -EMSGSIZE;
                return false;
        }
        return true;
}

void rpc_put_map(struct rpc_writer *w, size_t n) {
        if (writer_ready(w))
                writer_advance(w, cbor_encode_map_start(n, writer_pos(w), WRITER_ROOM(w)));
}

void rpc_put_array(struct rpc_writer *w, size_t n) {
        if (writer_ready(w))
                writer_advance(w, cbor_encode_array_start(n, writer_pos(w), WRITER_ROOM(w)));
}

void rpc_put_uint(struct rpc_writer *w, uint64_t v) {
        if (writer_ready(w))
                writer_advance(w, cbor_encode_uint(v, writer_pos(w), WRITER_ROOM(w)));
}

void rpc_put_bool(struct rpc_writer *w, bool v) {
        if (writer_ready(w))
                writer_advance(w, cbor_encode_bool(v, writer_pos(w), WRITER_ROOM(w)));
}

/* Header and payload, or nothing at all. */
static void put_string(struct rpc_writer *w, bool text, const void *p, size_t len) {
        size_t n;

        if (w->err)
                return;
        if (!p && len > 0) {
                w->err = -EINVAL;
                return;
        }
        if (!writer_ready(w))
                return;
        n = text ? cbor_encode_string_start(len, writer_pos(w), WRITER_ROOM(w))
                 : cbor_encode_bytestring_start(len, writer_pos(w), WRITER_ROOM(w));
        if (n == 0 || len > WRITER_ROOM(w) - n) {
                w->err = -EMSGSIZE;
                return;
        }
        if (len > 0)
                memcpy(w->buf + w->len + n, p, len);
        w->len += n + len;
}

void rpc_put_bytes(struct rpc_writer *w, const void *p, size_t len) {
        put_string(w, false, p, len);
}

void rpc_put_text(struct rpc_writer *w, const char *s, size_t len) {
        if (w->err)
                return;
        /* The peer would reject it as MALFORMED; fail here where the bug is. */
        if (s && !rpc_utf8_valid((const uint8_t *) s, len)) {
                w->err = -EINVAL;
                return;
        }
        put_string(w, true, s, len);
}

void rpc_put_kv_uint(struct rpc_writer *w, unsigned key, uint64_t v) {
        rpc_put_uint(w, key);
        rpc_put_uint(w, v);
}

void rpc_put_kv_bytes(struct rpc_writer *w, unsigned key, const void *p, size_t len) {
        rpc_put_uint(w, key);
        rpc_put_bytes(w, p, len);
}

void rpc_put_kv_text(struct rpc_writer *w, unsigned key, const char *s, size_t len) {
        rpc_put_uint(w, key);
        rpc_put_text(w, s, len);
}

void rpc_writer_fail(struct rpc_writer *w, int err) {
        if (!w->err)
                w->err = err;
}

int rpc_writer_finish(const struct rpc_writer *w) {
        return w->err;
}

bool rpc_utf8_valid(const uint8_t *s, size_t len) {
        size_t i = 0;

        while (i < len) {
                uint8_t c = s[i];
                size_t n;
                uint8_t lo = 0x80, hi = 0xbf;

                if (c == 0)
                        return false;
                if (c < 0x80) {
                        i++;
                        continue;
                }
                if (c >= 0xc2 && c <= 0xdf)
                        n = 1;
                else if (c >= 0xe0 && c <= 0xef) {
                        n = 2;
                        if (c == 0xe0)
                                lo = 0xa0;
                        else if (c == 0xed)
                                hi = 0x9f;
                } else if (c >= 0xf0 && c <= 0xf4) {
                        n = 3;
                        if (c == 0xf0)
                                lo = 0x90;
                        else if (c == 0xf4)
                                hi = 0x8f;
                } else
                        return false;
                if (len - i - 1 < n)
                        return false;
                if (s[i + 1] < lo || s[i + 1] > hi)
                        return false;
                for (size_t j = 2; j <= n; j++)
                        if ((s[i + j] & 0xc0) != 0x80)
                                return false;
                i += n + 1;
        }
        return true;
}
