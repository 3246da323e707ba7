/* CBOR <-> message structs: a bounded writer and reader, and one schema table per message. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cbor.h>

#include "common/rpc-codec.h"

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

void rpc_put_map(struct rpc_writer *w, size_t n) {
        if (w->err)
                return;
        if (WRITER_ROOM(w) == 0) {
                w->err = -EMSGSIZE;
                return;
        }
        writer_advance(w, cbor_encode_map_start(n, writer_pos(w), WRITER_ROOM(w)));
}

void rpc_put_array(struct rpc_writer *w, size_t n) {
        if (w->err)
                return;
        if (WRITER_ROOM(w) == 0) {
                w->err = -EMSGSIZE;
                return;
        }
        writer_advance(w, cbor_encode_array_start(n, writer_pos(w), WRITER_ROOM(w)));
}

void rpc_put_uint(struct rpc_writer *w, uint64_t v) {
        if (w->err)
                return;
        if (WRITER_ROOM(w) == 0) {
                w->err = -EMSGSIZE;
                return;
        }
        writer_advance(w, cbor_encode_uint(v, writer_pos(w), WRITER_ROOM(w)));
}

static void put_bool(struct rpc_writer *w, bool v) {
        if (w->err)
                return;
        if (WRITER_ROOM(w) == 0) {
                w->err = -EMSGSIZE;
                return;
        }
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
        if (WRITER_ROOM(w) == 0) {
                w->err = -EMSGSIZE;
                return;
        }
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

static bool utf8_valid(const uint8_t *s, size_t len);

void rpc_put_text(struct rpc_writer *w, const char *s, size_t len) {
        if (w->err)
                return;
        /* The peer would reject it as MALFORMED; fail here where the bug is. */
        if (s && !utf8_valid((const uint8_t *) s, len)) {
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

int rpc_writer_finish(const struct rpc_writer *w) {
        return w->err;
}

/* ---- reader: cbor_stream_decode() one item header at a time ---- */

enum item_type {
        ITEM_NONE,
        ITEM_UINT,
        ITEM_BYTES,
        ITEM_TEXT,
        ITEM_ARRAY,
        ITEM_MAP,
        ITEM_BOOL,
        ITEM_INDEFINITE, /* never produced by our encoder: always rejected */
        ITEM_OTHER,      /* negative ints, tags, floats, null, undefined, break */
};

struct item {
        enum item_type type;
        uint64_t value; /* uint value, array/map count, bool */
        const uint8_t *ptr;
        size_t len;
};

static void cb_uint8(void *ctx, uint8_t v) {
        *(struct item *) ctx = (struct item){ .type = ITEM_UINT, .value = v };
}
static void cb_uint16(void *ctx, uint16_t v) {
        *(struct item *) ctx = (struct item){ .type = ITEM_UINT, .value = v };
}
static void cb_uint32(void *ctx, uint32_t v) {
        *(struct item *) ctx = (struct item){ .type = ITEM_UINT, .value = v };
}
static void cb_uint64(void *ctx, uint64_t v) {
        *(struct item *) ctx = (struct item){ .type = ITEM_UINT, .value = v };
}
static void cb_other8(void *ctx, uint8_t v) {
        ((struct item *) ctx)->type = ITEM_OTHER;
}
static void cb_other16(void *ctx, uint16_t v) {
        ((struct item *) ctx)->type = ITEM_OTHER;
}
static void cb_other32(void *ctx, uint32_t v) {
        ((struct item *) ctx)->type = ITEM_OTHER;
}
static void cb_other64(void *ctx, uint64_t v) {
        ((struct item *) ctx)->type = ITEM_OTHER;
}
static void cb_other(void *ctx) {
        ((struct item *) ctx)->type = ITEM_OTHER;
}
static void cb_float(void *ctx, float v) {
        ((struct item *) ctx)->type = ITEM_OTHER;
}
static void cb_double(void *ctx, double v) {
        ((struct item *) ctx)->type = ITEM_OTHER;
}
static void cb_indefinite(void *ctx) {
        ((struct item *) ctx)->type = ITEM_INDEFINITE;
}
/* libcbor 0.8: the definite string callbacks point into the source buffer. */
static void cb_bytes(void *ctx, cbor_data p, size_t len) {
        *(struct item *) ctx = (struct item){ .type = ITEM_BYTES, .ptr = p, .len = len };
}
static void cb_text(void *ctx, cbor_data p, size_t len) {
        *(struct item *) ctx = (struct item){ .type = ITEM_TEXT, .ptr = p, .len = len };
}
static void cb_array(void *ctx, size_t n) {
        *(struct item *) ctx = (struct item){ .type = ITEM_ARRAY, .value = n };
}
static void cb_map(void *ctx, size_t n) {
        *(struct item *) ctx = (struct item){ .type = ITEM_MAP, .value = n };
}
static void cb_bool(void *ctx, bool v) {
        *(struct item *) ctx = (struct item){ .type = ITEM_BOOL, .value = v };
}

static const struct cbor_callbacks item_callbacks = {
        .uint8 = cb_uint8,
        .uint16 = cb_uint16,
        .uint32 = cb_uint32,
        .uint64 = cb_uint64,
        .negint8 = cb_other8,
        .negint16 = cb_other16,
        .negint32 = cb_other32,
        .negint64 = cb_other64,
        .byte_string = cb_bytes,
        .byte_string_start = cb_indefinite,
        .string = cb_text,
        .string_start = cb_indefinite,
        .array_start = cb_array,
        .indef_array_start = cb_indefinite,
        .map_start = cb_map,
        .indef_map_start = cb_indefinite,
        .tag = cb_other64,
        .float2 = cb_float,
        .float4 = cb_float,
        .float8 = cb_double,
        .undefined = cb_other,
        .null = cb_other,
        .boolean = cb_bool,
        .indef_break = cb_other,
};

void rpc_reader_init(struct rpc_reader *r, const uint8_t *buf, size_t len) {
        *r = (struct rpc_reader){ .buf = buf, .len = buf ? len : 0 };
}

static int reader_fail(struct rpc_reader *r) {
        if (!r->err)
                r->err = -EBADMSG;
        return r->err;
}

static size_t reader_left(const struct rpc_reader *r) {
        return r->len - r->pos;
}

/* One item header (plus a definite string's payload); anything but the wanted type fails. */
static int read_item(struct rpc_reader *r, enum item_type want, struct item *ret) {
        struct cbor_decoder_result res;
        struct item it = { .type = ITEM_NONE };

        if (r->err)
                return r->err;
        if (reader_left(r) == 0)
                return reader_fail(r);
        res = cbor_stream_decode(r->buf + r->pos, reader_left(r), &item_callbacks, &it);
        if (res.status != CBOR_DECODER_FINISHED || res.read == 0 || res.read > reader_left(r))
                return reader_fail(r);
        if (it.type != want)
                return reader_fail(r);
        r->pos += res.read;
        *ret = it;
        return 0;
}

/* Counts: each array element takes at least elem_min bytes, each map entry at least two. */
static int get_count(struct rpc_reader *r, enum item_type t, size_t max, size_t elem_min, size_t *ret_n) {
        struct item it;
        int k;

        k = read_item(r, t, &it);
        if (k < 0)
                return k;
        if (it.value > max || (elem_min > 0 && it.value > reader_left(r) / elem_min))
                return reader_fail(r);
        *ret_n = (size_t) it.value;
        return 0;
}

int rpc_get_map(struct rpc_reader *r, size_t max, size_t *ret_n) {
        return get_count(r, ITEM_MAP, max, 2, ret_n);
}

int rpc_get_array(struct rpc_reader *r, size_t max, size_t *ret_n) {
        return get_count(r, ITEM_ARRAY, max, 1, ret_n);
}

int rpc_get_uint(struct rpc_reader *r, uint64_t max, uint64_t *ret) {
        struct item it;
        int k;

        k = read_item(r, ITEM_UINT, &it);
        if (k < 0)
                return k;
        if (it.value > max)
                return reader_fail(r);
        *ret = it.value;
        return 0;
}

static int get_bool(struct rpc_reader *r, bool *ret) {
        struct item it;
        int k;

        k = read_item(r, ITEM_BOOL, &it);
        if (k < 0)
                return k;
        *ret = it.value != 0;
        return 0;
}

int rpc_get_bytes(struct rpc_reader *r, size_t min, size_t max, struct rpc_slice *ret) {
        struct item it;
        int k;

        k = read_item(r, ITEM_BYTES, &it);
        if (k < 0)
                return k;
        if (it.len < min || it.len > max)
                return reader_fail(r);
        *ret = (struct rpc_slice){ .ptr = it.ptr, .len = it.len };
        return 0;
}

/* Strict UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF), no NUL. */
static bool utf8_valid(const uint8_t *s, size_t len) {
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

int rpc_get_text(struct rpc_reader *r, size_t min, size_t max, struct rpc_slice *ret) {
        struct item it;
        int k;

        k = read_item(r, ITEM_TEXT, &it);
        if (k < 0)
                return k;
        if (it.len < min || it.len > max || !utf8_valid(it.ptr, it.len))
                return reader_fail(r);
        *ret = (struct rpc_slice){ .ptr = it.ptr, .len = it.len };
        return 0;
}

int rpc_reader_end(const struct rpc_reader *r) {
        if (r->err)
                return r->err;
        return r->pos == r->len ? 0 : -EBADMSG;
}

/* ---- schemas ----
 *
 * A body is a map with small unsigned keys. One table per message drives both directions:
 * the encoder writes required fields always and optional ones when non-zero / non-empty, in
 * key order; the decoder accepts the keys in any order and rejects unknown, duplicate, out of
 * range and missing required ones. Nested arrays use the custom hooks. */

enum field_type {
        FIELD_U32,
        FIELD_U64,
        FIELD_BOOL,
        FIELD_BYTES,
        FIELD_TEXT,
        FIELD_CUSTOM,
};

struct field {
        uint8_t key; /* 1..63 */
        uint8_t type;
        bool required;
        size_t offset;
        uint64_t min, max; /* value range (ints) or length range (bytes, text) */
        bool (*present)(const void *msg);
        void (*encode)(struct rpc_writer *w, const void *msg);
        int (*decode)(struct rpc_reader *r, void *msg);
};

/* offsetof() that also checks the member's size at compile time. */
#define FIELD_OFFSET(st, m, size) \
        (offsetof(st, m) + 0 * sizeof(char[sizeof(((st *) 0)->m) == (size) ? 1 : -1]))

#define F_U32(k, st, m, req, lo, hi)                                                                       \
        {                                                                                                  \
                .key = k, .type = FIELD_U32, .required = req, .offset = FIELD_OFFSET(st, m, 4), .min = lo, \
                .max = hi                                                                                  \
        }
#define F_U64(k, st, m, req) \
        { .key = k, .type = FIELD_U64, .required = req, .offset = FIELD_OFFSET(st, m, 8), .max = UINT64_MAX }
#define F_BOOL(k, st, m, req)                                                                               \
        {                                                                                                   \
                .key = k, .type = FIELD_BOOL, .required = req, .offset = FIELD_OFFSET(st, m, sizeof(bool)), \
                .max = 1                                                                                    \
        }
#define F_BYTES(k, st, m, req, lo, hi)                                                        \
        {                                                                                     \
                .key = k, .type = FIELD_BYTES, .required = req,                               \
                .offset = FIELD_OFFSET(st, m, sizeof(struct rpc_slice)), .min = lo, .max = hi \
        }
#define F_TEXT(k, st, m, req, lo, hi)                                                         \
        {                                                                                     \
                .key = k, .type = FIELD_TEXT, .required = req,                                \
                .offset = FIELD_OFFSET(st, m, sizeof(struct rpc_slice)), .min = lo, .max = hi \
        }
#define F_CUSTOM(k, req, pres, enc, dec) \
        { .key = k, .type = FIELD_CUSTOM, .required = req, .present = pres, .encode = enc, .decode = dec }

#define FIELD_KEY_MAX 63

static bool field_present(const struct field *f, const void *msg) {
        const uint8_t *p = (const uint8_t *) msg + f->offset;

        if (f->required)
                return true;
        switch (f->type) {
        case FIELD_U32: return *(const uint32_t *) p != 0;
        case FIELD_U64: return *(const uint64_t *) p != 0;
        case FIELD_BOOL: return *(const bool *) p;
        case FIELD_BYTES:
        case FIELD_TEXT: return ((const struct rpc_slice *) p)->len > 0;
        default: return f->present(msg);
        }
}

static void encode_field(struct rpc_writer *w, const struct field *f, const void *msg) {
        const uint8_t *p = (const uint8_t *) msg + f->offset;
        const struct rpc_slice *s = (const struct rpc_slice *) p;
        uint64_t v;

        rpc_put_uint(w, f->key);
        switch (f->type) {
        case FIELD_U32:
        case FIELD_U64:
                v = f->type == FIELD_U32 ? *(const uint32_t *) p : *(const uint64_t *) p;
                if (v < f->min || v > f->max)
                        goto invalid;
                rpc_put_uint(w, v);
                return;
        case FIELD_BOOL: put_bool(w, *(const bool *) p); return;
        case FIELD_BYTES:
        case FIELD_TEXT:
                if (s->len < f->min || s->len > f->max)
                        goto invalid;
                if (f->type == FIELD_TEXT)
                        rpc_put_text(w, (const char *) s->ptr, s->len);
                else
                        rpc_put_bytes(w, s->ptr, s->len);
                return;
        default: f->encode(w, msg); return;
        }
invalid:
        /* Out of the schema: the peer would answer MALFORMED. */
        if (!w->err)
                w->err = -EINVAL;
}

static void encode_map(struct rpc_writer *w, const struct field *fields, size_t n_fields, const void *msg) {
        size_t n = 0;

        for (size_t i = 0; i < n_fields; i++)
                if (field_present(&fields[i], msg))
                        n++;
        rpc_put_map(w, n);
        for (size_t i = 0; i < n_fields; i++)
                if (field_present(&fields[i], msg))
                        encode_field(w, &fields[i], msg);
}

static int decode_field(struct rpc_reader *r, const struct field *f, void *msg) {
        uint8_t *p = (uint8_t *) msg + f->offset;
        uint64_t v = 0;
        int k;

        switch (f->type) {
        case FIELD_U32:
        case FIELD_U64:
                k = rpc_get_uint(r, f->max, &v);
                if (k < 0)
                        return k;
                if (v < f->min)
                        return reader_fail(r);
                if (f->type == FIELD_U32)
                        *(uint32_t *) p = (uint32_t) v;
                else
                        *(uint64_t *) p = v;
                return 0;
        case FIELD_BOOL: return get_bool(r, (bool *) p);
        case FIELD_BYTES: return rpc_get_bytes(r, f->min, f->max, (struct rpc_slice *) p);
        case FIELD_TEXT: return rpc_get_text(r, f->min, f->max, (struct rpc_slice *) p);
        default: return f->decode(r, msg);
        }
}

/* msg must start zeroed: optional fields default to zero / empty. */
static int decode_map(struct rpc_reader *r, const struct field *fields, size_t n_fields, void *msg) {
        uint64_t seen = 0, required = 0;
        size_t n = 0;
        int k;

        k = rpc_get_map(r, n_fields, &n);
        if (k < 0)
                return k;
        for (size_t i = 0; i < n; i++) {
                const struct field *f = NULL;
                uint64_t key = 0;

                k = rpc_get_uint(r, FIELD_KEY_MAX, &key);
                if (k < 0)
                        return k;
                if (seen & (UINT64_C(1) << key))
                        return reader_fail(r);
                seen |= UINT64_C(1) << key;
                for (size_t j = 0; j < n_fields && !f; j++)
                        if (fields[j].key == key)
                                f = &fields[j];
                if (!f)
                        return reader_fail(r);
                k = decode_field(r, f, msg);
                if (k < 0)
                        return k;
        }
        for (size_t j = 0; j < n_fields; j++)
                if (fields[j].required)
                        required |= UINT64_C(1) << fields[j].key;
        if ((seen & required) != required)
                return reader_fail(r);
        return 0;
}

#define ENCODE_MAP(w, fields, msg) encode_map(w, fields, ELEMENTSOF(fields), msg)
#define DECODE_MAP(r, fields, msg) decode_map(r, fields, ELEMENTSOF(fields), msg)

/* Decode a whole body into *m with one schema and check nothing trails it. */
static int decode_body(const uint8_t *b, size_t n, const struct field *fields, size_t n_fields, void *m) {
        struct rpc_reader r;
        int k;

        rpc_reader_init(&r, b, n);
        k = decode_map(&r, fields, n_fields, m);
        if (k < 0)
                return k;
        return rpc_reader_end(&r);
}

#define DECODE_BODY(b, n, fields, m) decode_body(b, n, fields, ELEMENTSOF(fields), m)

/* ---- HELLO ---- */

static const struct field hello_req_fields[] = {
        F_U32(1, struct rpc_hello_req, min_version, true, 1, UINT8_MAX),
        F_U32(2, struct rpc_hello_req, max_version, true, 1, UINT8_MAX),
        F_TEXT(3, struct rpc_hello_req, client, false, 0, RPC_TEXT_MAX),
};

void rpc_hello_req_encode(struct rpc_writer *w, const struct rpc_hello_req *m) {
        ENCODE_MAP(w, hello_req_fields, m);
}

int rpc_hello_req_decode(const uint8_t *b, size_t n, struct rpc_hello_req *ret) {
        struct rpc_hello_req m = {};
        int k;

        k = DECODE_BODY(b, n, hello_req_fields, &m);
        if (k < 0)
                return k;
        *ret = m;
        return 0;
}

static const struct field hello_resp_fields[] = {
        F_U32(1, struct rpc_hello_resp, version, true, 1, UINT8_MAX),
        F_U64(2, struct rpc_hello_resp, generation, true),
        F_TEXT(3, struct rpc_hello_resp, server, false, 0, RPC_TEXT_MAX),
        F_U32(4, struct rpc_hello_resp, max_tokens, false, 0, RPC_MAX_TOKENS),
        F_BOOL(5, struct rpc_hello_resp, dev, false),
};

void rpc_hello_resp_encode(struct rpc_writer *w, const struct rpc_hello_resp *m) {
        ENCODE_MAP(w, hello_resp_fields, m);
}

int rpc_hello_resp_decode(const uint8_t *b, size_t n, struct rpc_hello_resp *ret) {
        struct rpc_hello_resp m = {};
        int k;

        k = DECODE_BODY(b, n, hello_resp_fields, &m);
        if (k < 0)
                return k;
        *ret = m;
        return 0;
}

/* ---- PING, TOKEN_REMOVE response ---- */

void rpc_empty_encode(struct rpc_writer *w) {
        rpc_put_map(w, 0);
}

int rpc_empty_decode(const uint8_t *b, size_t n) {
        struct rpc_reader r;
        size_t count = 0;
        int k;

        rpc_reader_init(&r, b, n);
        k = rpc_get_map(&r, 0, &count);
        if (k < 0)
                return k;
        return rpc_reader_end(&r);
}

/* ---- key and token info (TOKEN_OBJECTS, TOKEN_LIST, DESCRIBE) ---- */

static bool key_certs_present(const void *msg) {
        return ((const struct rpc_key_info *) msg)->n_certs > 0;
}

static void key_certs_encode(struct rpc_writer *w, const void *msg) {
        const struct rpc_key_info *k = msg;

        if (k->n_certs > RPC_MAX_CERTS) {
                if (!w->err)
                        w->err = -EINVAL;
                return;
        }
        rpc_put_array(w, k->n_certs);
        for (size_t i = 0; i < k->n_certs; i++) {
                if (k->certs[i].len == 0 || k->certs[i].len > RPC_CERT_MAX) {
                        if (!w->err)
                                w->err = -EINVAL;
                        return;
                }
                rpc_put_bytes(w, k->certs[i].ptr, k->certs[i].len);
        }
}

static int key_certs_decode(struct rpc_reader *r, void *msg) {
        struct rpc_key_info *k = msg;
        size_t n = 0;
        int e;

        e = rpc_get_array(r, RPC_MAX_CERTS, &n);
        if (e < 0)
                return e;
        for (size_t i = 0; i < n; i++) {
                e = rpc_get_bytes(r, 1, RPC_CERT_MAX, &k->certs[i]);
                if (e < 0)
                        return e;
        }
        k->n_certs = n;
        return 0;
}

static const struct field key_info_fields[] = {
        F_U32(1, struct rpc_key_info, id, true, 0, RPC_KEY_ID_MAX),
        F_TEXT(2, struct rpc_key_info, label, false, 0, RPC_KEY_LABEL_MAX),
        F_U32(3, struct rpc_key_info, type, false, 0, UINT32_MAX),
        F_U32(4, struct rpc_key_info, bits, false, 0, UINT32_MAX),
        F_BYTES(5, struct rpc_key_info, spki, false, 0, RPC_SPKI_MAX),
        F_CUSTOM(6, false, key_certs_present, key_certs_encode, key_certs_decode),
        F_U64(7, struct rpc_key_info, not_after, false),
        F_TEXT(8, struct rpc_key_info, subject, false, 0, RPC_TEXT_MAX),
};

static bool token_keys_present(const void *msg) {
        return ((const struct rpc_token_info *) msg)->n_keys > 0;
}

static void token_keys_encode(struct rpc_writer *w, const void *msg) {
        const struct rpc_token_info *t = msg;

        if (t->n_keys > RPC_MAX_KEYS) {
                if (!w->err)
                        w->err = -EINVAL;
                return;
        }
        rpc_put_array(w, t->n_keys);
        for (size_t i = 0; i < t->n_keys; i++)
                ENCODE_MAP(w, key_info_fields, &t->keys[i]);
}

static int token_keys_decode(struct rpc_reader *r, void *msg) {
        struct rpc_token_info *t = msg;
        size_t n = 0;
        int e;

        /* A key map is at least 3 bytes: {1: id}. */
        e = get_count(r, ITEM_ARRAY, RPC_MAX_KEYS, 3, &n);
        if (e < 0)
                return e;
        for (size_t i = 0; i < n; i++) {
                e = DECODE_MAP(r, key_info_fields, &t->keys[i]);
                if (e < 0)
                        return e;
        }
        t->n_keys = n;
        return 0;
}

static const struct field token_info_fields[] = {
        F_U32(1, struct rpc_token_info, slot, true, 0, UINT32_MAX),
        F_TEXT(2, struct rpc_token_info, label, true, 1, RPC_LABEL_MAX),
        F_U64(3, struct rpc_token_info, generation, false),
        F_U32(4, struct rpc_token_info, n_keys_total, false, 0, RPC_MAX_KEYS),
        F_CUSTOM(5, false, token_keys_present, token_keys_encode, token_keys_decode),
};

/* Smallest encoding of a token: {1: slot, 2: 1-byte label}. */
#define TOKEN_INFO_MIN_BYTES 6

void rpc_token_info_encode(struct rpc_writer *w, const struct rpc_token_info *m) {
        ENCODE_MAP(w, token_info_fields, m);
}

int rpc_token_info_decode(const uint8_t *b, size_t n, struct rpc_token_info *ret) {
        /* Decoded aside so that ret is untouched on failure (~3.5 KiB of stack). */
        struct rpc_token_info m = {};
        int k;

        k = DECODE_BODY(b, n, token_info_fields, &m);
        if (k < 0)
                return k;
        *ret = m;
        return 0;
}

/* ---- TOKEN_LIST and DESCRIBE ---- */

static const struct field page_req_fields[] = {
        F_U32(1, struct rpc_page_req, cursor, false, 0, UINT32_MAX),
};

void rpc_page_req_encode(struct rpc_writer *w, const struct rpc_page_req *m) {
        ENCODE_MAP(w, page_req_fields, m);
}

int rpc_page_req_decode(const uint8_t *b, size_t n, struct rpc_page_req *ret) {
        struct rpc_page_req m = {};
        int k;

        k = DECODE_BODY(b, n, page_req_fields, &m);
        if (k < 0)
                return k;
        *ret = m;
        return 0;
}

static bool page_tokens_present(const void *msg) {
        return ((const struct rpc_page_resp *) msg)->n_tokens > 0;
}

static void page_tokens_encode(struct rpc_writer *w, const void *msg) {
        const struct rpc_page_resp *p = msg;

        if (p->n_tokens > RPC_PAGE_MAX || !p->tokens) {
                if (!w->err)
                        w->err = -EINVAL;
                return;
        }
        rpc_put_array(w, p->n_tokens);
        for (size_t i = 0; i < p->n_tokens; i++)
                ENCODE_MAP(w, token_info_fields, &p->tokens[i]);
}

static int page_tokens_decode(struct rpc_reader *r, void *msg) {
        struct rpc_page_resp *p = msg;
        size_t n = 0;
        int e;

        /* Bounded by the page size and by the bytes left before the allocation. */
        e = get_count(r, ITEM_ARRAY, RPC_PAGE_MAX, TOKEN_INFO_MIN_BYTES, &n);
        if (e < 0)
                return e;
        if (n == 0)
                return 0;
        p->tokens = calloc(n, sizeof(struct rpc_token_info));
        if (!p->tokens) {
                r->err = -ENOMEM;
                return r->err;
        }
        for (size_t i = 0; i < n; i++) {
                e = DECODE_MAP(r, token_info_fields, &p->tokens[i]);
                if (e < 0)
                        return e;
        }
        p->n_tokens = n;
        return 0;
}

static const struct field page_resp_fields[] = {
        F_U64(1, struct rpc_page_resp, generation, true),
        F_U32(2, struct rpc_page_resp, next, false, 0, UINT32_MAX),
        F_U32(3, struct rpc_page_resp, n_tokens_total, false, 0, UINT32_MAX),
        F_CUSTOM(4, false, page_tokens_present, page_tokens_encode, page_tokens_decode),
};

void rpc_page_resp_encode(struct rpc_writer *w, const struct rpc_page_resp *m) {
        ENCODE_MAP(w, page_resp_fields, m);
}

int rpc_page_resp_decode(const uint8_t *b, size_t n, struct rpc_page_resp *ret) {
        struct rpc_page_resp m = {};
        int k;

        k = DECODE_BODY(b, n, page_resp_fields, &m);
        if (k < 0) {
                rpc_page_resp_done(&m);
                return k;
        }
        *ret = m;
        return 0;
}

void rpc_page_resp_done(struct rpc_page_resp *p) {
        if (!p)
                return;
        free(p->tokens);
        p->tokens = NULL;
        p->n_tokens = 0;
}

/* ---- TOKEN_OBJECTS ---- */

static const struct field slot_req_fields[] = {
        F_U32(1, struct rpc_slot_req, slot, true, 0, UINT32_MAX),
};

void rpc_slot_req_encode(struct rpc_writer *w, const struct rpc_slot_req *m) {
        ENCODE_MAP(w, slot_req_fields, m);
}

int rpc_slot_req_decode(const uint8_t *b, size_t n, struct rpc_slot_req *ret) {
        struct rpc_slot_req m = {};
        int k;

        k = DECODE_BODY(b, n, slot_req_fields, &m);
        if (k < 0)
                return k;
        *ret = m;
        return 0;
}

/* ---- LOGIN ---- */

static const struct field login_req_fields[] = {
        F_U32(1, struct rpc_login_req, slot, true, 0, UINT32_MAX),
        F_BYTES(2, struct rpc_login_req, pin, true, RPC_PIN_MIN, RPC_PIN_MAX),
};

void rpc_login_req_encode(struct rpc_writer *w, const struct rpc_login_req *m) {
        ENCODE_MAP(w, login_req_fields, m);
}

int rpc_login_req_decode(const uint8_t *b, size_t n, struct rpc_login_req *ret) {
        struct rpc_login_req m = {};
        int k;

        k = DECODE_BODY(b, n, login_req_fields, &m);
        if (k < 0)
                return k;
        *ret = m;
        return 0;
}

static const struct field login_resp_fields[] = {
        F_BYTES(1, struct rpc_login_resp, ticket, true, RPC_TICKET_LEN, RPC_TICKET_LEN),
};

void rpc_login_resp_encode(struct rpc_writer *w, const struct rpc_login_resp *m) {
        ENCODE_MAP(w, login_resp_fields, m);
}

int rpc_login_resp_decode(const uint8_t *b, size_t n, struct rpc_login_resp *ret) {
        struct rpc_login_resp m = {};
        int k;

        k = DECODE_BODY(b, n, login_resp_fields, &m);
        if (k < 0)
                return k;
        *ret = m;
        return 0;
}

/* ---- SIGN and DECRYPT ---- */

static const struct field crypto_req_fields[] = {
        F_U32(1, struct rpc_crypto_req, slot, true, 0, UINT32_MAX),
        F_U32(2, struct rpc_crypto_req, key_id, true, 0, RPC_KEY_ID_MAX),
        /* Missing ticket: the handler answers NOT_LOGGED_IN. */
        F_BYTES(3, struct rpc_crypto_req, ticket, false, RPC_TICKET_LEN, RPC_TICKET_LEN),
        F_U32(4, struct rpc_crypto_req, mech, true, 0, UINT32_MAX),
        F_U32(5, struct rpc_crypto_req, hash, false, 0, UINT32_MAX),
        F_U32(6, struct rpc_crypto_req, mgf_hash, false, 0, UINT32_MAX),
        F_U32(7, struct rpc_crypto_req, salt_len, false, 0, UINT32_MAX),
        F_BYTES(8, struct rpc_crypto_req, data, true, 0, RPC_DATA_MAX),
        F_BYTES(9, struct rpc_crypto_req, oaep_label, false, 0, RPC_OAEP_LABEL_MAX),
};

void rpc_crypto_req_encode(struct rpc_writer *w, const struct rpc_crypto_req *m) {
        ENCODE_MAP(w, crypto_req_fields, m);
}

int rpc_crypto_req_decode(const uint8_t *b, size_t n, struct rpc_crypto_req *ret) {
        struct rpc_crypto_req m = {};
        int k;

        k = DECODE_BODY(b, n, crypto_req_fields, &m);
        if (k < 0)
                return k;
        *ret = m;
        return 0;
}

static const struct field crypto_resp_fields[] = {
        F_BYTES(1, struct rpc_crypto_resp, data, true, 0, RPC_SIG_MAX),
};

void rpc_crypto_resp_encode(struct rpc_writer *w, const struct rpc_crypto_resp *m) {
        ENCODE_MAP(w, crypto_resp_fields, m);
}

int rpc_crypto_resp_decode(const uint8_t *b, size_t n, struct rpc_crypto_resp *ret) {
        struct rpc_crypto_resp m = {};
        int k;

        k = DECODE_BODY(b, n, crypto_resp_fields, &m);
        if (k < 0)
                return k;
        *ret = m;
        return 0;
}

/* ---- TOKEN_ADD ---- */

static const struct field add_key_fields[] = {
        F_U32(1, struct rpc_add_key, id, true, 0, RPC_KEY_ID_MAX),
        F_TEXT(2, struct rpc_add_key, label, true, 1, RPC_KEY_LABEL_MAX),
        F_BYTES(3, struct rpc_add_key, key_pem, true, 1, RPC_KEY_PEM_MAX),
        F_BYTES(4, struct rpc_add_key, chain_pem, true, 1, RPC_CHAIN_PEM_MAX),
};

static bool add_keys_present(const void *msg) {
        return true;
}

static void add_keys_encode(struct rpc_writer *w, const void *msg) {
        const struct rpc_token_add_req *t = msg;

        if (t->n_keys < 1 || t->n_keys > RPC_MAX_KEYS) {
                if (!w->err)
                        w->err = -EINVAL;
                return;
        }
        rpc_put_array(w, t->n_keys);
        for (size_t i = 0; i < t->n_keys; i++)
                ENCODE_MAP(w, add_key_fields, &t->keys[i]);
}

static int add_keys_decode(struct rpc_reader *r, void *msg) {
        struct rpc_token_add_req *t = msg;
        size_t n = 0;
        int e;

        /* A key map is at least 13 bytes: four keys, id, 1-byte label and PEMs. */
        e = get_count(r, ITEM_ARRAY, RPC_MAX_KEYS, 13, &n);
        if (e < 0)
                return e;
        if (n < 1)
                return reader_fail(r);
        for (size_t i = 0; i < n; i++) {
                e = DECODE_MAP(r, add_key_fields, &t->keys[i]);
                if (e < 0)
                        return e;
        }
        t->n_keys = n;
        return 0;
}

static const struct field token_add_req_fields[] = {
        F_TEXT(1, struct rpc_token_add_req, label, true, 1, RPC_LABEL_MAX),
        F_BYTES(2, struct rpc_token_add_req, pin, true, RPC_PIN_MIN, RPC_PIN_MAX),
        F_BOOL(3, struct rpc_token_add_req, replace, false),
        F_CUSTOM(4, true, add_keys_present, add_keys_encode, add_keys_decode),
};

void rpc_token_add_req_encode(struct rpc_writer *w, const struct rpc_token_add_req *m) {
        ENCODE_MAP(w, token_add_req_fields, m);
}

int rpc_token_add_req_decode(const uint8_t *b, size_t n, struct rpc_token_add_req *ret) {
        struct rpc_token_add_req m = {};
        int k;

        k = DECODE_BODY(b, n, token_add_req_fields, &m);
        if (k < 0)
                return k;
        *ret = m;
        return 0;
}

static const struct field token_add_resp_fields[] = {
        F_U32(1, struct rpc_token_add_resp, slot, true, 0, UINT32_MAX),
};

void rpc_token_add_resp_encode(struct rpc_writer *w, const struct rpc_token_add_resp *m) {
        ENCODE_MAP(w, token_add_resp_fields, m);
}

int rpc_token_add_resp_decode(const uint8_t *b, size_t n, struct rpc_token_add_resp *ret) {
        struct rpc_token_add_resp m = {};
        int k;

        k = DECODE_BODY(b, n, token_add_resp_fields, &m);
        if (k < 0)
                return k;
        *ret = m;
        return 0;
}

/* ---- TOKEN_REMOVE ---- */

static const struct field token_remove_req_fields[] = {
        F_TEXT(1, struct rpc_token_remove_req, label, true, 1, RPC_LABEL_MAX),
        F_BYTES(2, struct rpc_token_remove_req, pin, true, RPC_PIN_MIN, RPC_PIN_MAX),
};

void rpc_token_remove_req_encode(struct rpc_writer *w, const struct rpc_token_remove_req *m) {
        ENCODE_MAP(w, token_remove_req_fields, m);
}

int rpc_token_remove_req_decode(const uint8_t *b, size_t n, struct rpc_token_remove_req *ret) {
        struct rpc_token_remove_req m = {};
        int k;

        k = DECODE_BODY(b, n, token_remove_req_fields, &m);
        if (k < 0)
                return k;
        *ret = m;
        return 0;
}

/* ---- names ---- */

const char *rpc_key_type_to_string(enum rpc_key_type t) {
        static const char *const names[_RPC_KEY_MAX] = {
                [RPC_KEY_NONE] = "none",
                [RPC_KEY_RSA] = "rsa",
                [RPC_KEY_EC] = "ec",
                [RPC_KEY_ED25519] = "ed25519",
        };
        return t >= 0 && t < _RPC_KEY_MAX ? names[t] : NULL;
}

const char *rpc_mech_to_string(enum rpc_mech m) {
        static const char *const names[_RPC_MECH_MAX] = {
                [RPC_MECH_NONE] = "none",         [RPC_MECH_RSA_PKCS] = "rsa-pkcs",
                [RPC_MECH_RSA_PSS] = "rsa-pss",   [RPC_MECH_ECDSA] = "ecdsa",
                [RPC_MECH_EDDSA] = "eddsa",       [RPC_MECH_RSA_PKCS_DEC] = "rsa-pkcs-dec",
                [RPC_MECH_RSA_OAEP] = "rsa-oaep",
        };
        return m >= 0 && m < _RPC_MECH_MAX ? names[m] : NULL;
}
