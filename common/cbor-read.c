/* A bounded CBOR reader: cbor_stream_decode() one item head at a time, every count and length capped. */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include <cbor.h>

#include "common/cbor-read.h"
#include "common/cbor-write.h"

struct item {
        int type;        /* enum rpc_item_type, -1 until a callback ran */
        bool indefinite; /* strings, arrays, maps */
        uint64_t value;  /* uint, negint (-1 - value), tag, count, bool */
        const uint8_t *ptr;
        size_t len;
};

#define SET(ctx, ...) (*(struct item *) (ctx) = (struct item){ __VA_ARGS__ })

/* One callback per head libcbor reports; each records the item in the struct item at ctx. */
#define CB_VALUE(name, T, t)                     \
        static void name(void *ctx, T v) {       \
                SET(ctx, .type = t, .value = v); \
        }
#define CB_STRING(name, t)                                     \
        static void name(void *ctx, cbor_data p, size_t len) { \
                SET(ctx, .type = t, .ptr = p, .len = len);     \
        }
#define CB_START(name, t)                                \
        static void name(void *ctx) {                    \
                SET(ctx, .type = t, .indefinite = true); \
        }
#define CB_SIMPLE(name, t)            \
        static void name(void *ctx) { \
                SET(ctx, .type = t);  \
        }

CB_VALUE(cb_uint8, uint8_t, RPC_ITEM_UINT)
CB_VALUE(cb_uint16, uint16_t, RPC_ITEM_UINT)
CB_VALUE(cb_uint32, uint32_t, RPC_ITEM_UINT)
CB_VALUE(cb_uint64, uint64_t, RPC_ITEM_UINT)
CB_VALUE(cb_negint8, uint8_t, RPC_ITEM_NEGINT)
CB_VALUE(cb_negint16, uint16_t, RPC_ITEM_NEGINT)
CB_VALUE(cb_negint32, uint32_t, RPC_ITEM_NEGINT)
CB_VALUE(cb_negint64, uint64_t, RPC_ITEM_NEGINT)
CB_VALUE(cb_tag, uint64_t, RPC_ITEM_TAG)
CB_VALUE(cb_array, size_t, RPC_ITEM_ARRAY)
CB_VALUE(cb_map, size_t, RPC_ITEM_MAP)
CB_VALUE(cb_bool, bool, RPC_ITEM_BOOL)
/* libcbor 0.8: the definite string callbacks point into the source buffer. */
CB_STRING(cb_bytes, RPC_ITEM_BYTES)
CB_STRING(cb_text, RPC_ITEM_TEXT)
CB_START(cb_bytes_start, RPC_ITEM_BYTES)
CB_START(cb_text_start, RPC_ITEM_TEXT)
CB_START(cb_array_start, RPC_ITEM_ARRAY)
CB_START(cb_map_start, RPC_ITEM_MAP)
CB_SIMPLE(cb_undefined, RPC_ITEM_UNDEFINED)
CB_SIMPLE(cb_null, RPC_ITEM_NULL)
CB_SIMPLE(cb_break, RPC_ITEM_BREAK)

static void cb_float(void *ctx, float v) {
        SET(ctx, .type = RPC_ITEM_FLOAT);
}
static void cb_double(void *ctx, double v) {
        SET(ctx, .type = RPC_ITEM_FLOAT);
}

static const struct cbor_callbacks item_callbacks = {
        .uint8 = cb_uint8,
        .uint16 = cb_uint16,
        .uint32 = cb_uint32,
        .uint64 = cb_uint64,
        .negint8 = cb_negint8,
        .negint16 = cb_negint16,
        .negint32 = cb_negint32,
        .negint64 = cb_negint64,
        .byte_string = cb_bytes,
        .byte_string_start = cb_bytes_start,
        .string = cb_text,
        .string_start = cb_text_start,
        .array_start = cb_array,
        .indef_array_start = cb_array_start,
        .map_start = cb_map,
        .indef_map_start = cb_map_start,
        .tag = cb_tag,
        .float2 = cb_float,
        .float4 = cb_float,
        .float8 = cb_double,
        .undefined = cb_undefined,
        .null = cb_null,
        .boolean = cb_bool,
        .indef_break = cb_break,
};

bool rpc_slice_eq_str(const struct rpc_slice *s, const char *str) {
        size_t n = strlen(str);

        return s->len == n && (n == 0 || memcmp(s->ptr, str, n) == 0);
}

static void reader_setup(struct rpc_reader *r, const uint8_t *buf, size_t len, bool indefinite,
                         const struct rpc_reader_limits *lim) {
        *r = (struct rpc_reader){
                .buf = buf,
                .len = buf ? len : 0,
                .indefinite = indefinite,
                .lim = *lim,
        };
        if (r->lim.depth > RPC_READER_DEPTH_MAX)
                r->lim.depth = RPC_READER_DEPTH_MAX;
}

void rpc_reader_init(struct rpc_reader *r, const uint8_t *buf, size_t len) {
        static const struct rpc_reader_limits strict = { RPC_READER_DEPTH_MAX, SIZE_MAX, SIZE_MAX };

        reader_setup(r, buf, len, false, &strict);
}

void rpc_reader_init_doc(struct rpc_reader *r, const uint8_t *buf, size_t len,
                         const struct rpc_reader_limits *lim) {
        reader_setup(r, buf, len, true, lim);
}

static int reader_fail(struct rpc_reader *r) {
        if (!r->err)
                r->err = -EBADMSG;
        return r->err;
}

static size_t reader_left(const struct rpc_reader *r) {
        return r->len - r->pos;
}

/* Decodes the next head (plus a definite string's payload) without consuming it. Indefinite items
 * fail here unless the mode accepts them; definite strings are checked against lim.len. */
static int peek_item(struct rpc_reader *r, struct item *ret, size_t *ret_size) {
        struct cbor_decoder_result res;
        struct item it = { .type = -1 };

        if (r->err)
                return r->err;
        if (reader_left(r) == 0)
                return reader_fail(r);
        /* libcbor 0.8 answers CBOR_DECODER_ERROR for the one-byte tag heads 0xc6..0xd4 (tags 6..20,
         * "unassigned" in RFC 7049), among them 0xd2, tag 18: COSE_Sign1. They are plain heads. */
        if (r->buf[r->pos] >= 0xc6 && r->buf[r->pos] <= 0xd4) {
                *ret = (struct item){ .type = RPC_ITEM_TAG, .value = r->buf[r->pos] - 0xc0u };
                *ret_size = 1;
                return 0;
        }
        res = cbor_stream_decode(r->buf + r->pos, reader_left(r), &item_callbacks, &it);
        if (res.status != CBOR_DECODER_FINISHED || res.read == 0 || res.read > reader_left(r) || it.type < 0)
                return reader_fail(r);
        if (it.indefinite && !r->indefinite)
                return reader_fail(r);
        if (it.len > r->lim.len)
                return reader_fail(r);
        *ret = it;
        *ret_size = res.read;
        return 0;
}

/* One item head of the wanted type, consumed. */
static int read_item(struct rpc_reader *r, enum rpc_item_type want, struct item *ret) {
        struct item it = {};
        size_t size;
        int k;

        k = peek_item(r, &it, &size);
        if (k < 0)
                return k;
        if (it.type != (int) want)
                return reader_fail(r);
        r->pos += size;
        *ret = it;
        return 0;
}

int rpc_peek(struct rpc_reader *r, enum rpc_item_type *ret) {
        struct item it = {};
        size_t size;
        int k = peek_item(r, &it, &size);

        if (k >= 0)
                *ret = (enum rpc_item_type) it.type;
        return k;
}

/* A declared count: within max and the limits, and each element takes at least elem_min bytes. */
static int check_count(struct rpc_reader *r, uint64_t n, size_t max, size_t elem_min) {
        if (n > max || n > r->lim.count || (elem_min > 0 && n > reader_left(r) / elem_min))
                return reader_fail(r);
        return 0;
}

static int get_count(struct rpc_reader *r, enum rpc_item_type t, size_t max, size_t elem_min,
                     size_t *ret_n) {
        struct item it = {};
        int k;

        k = read_item(r, t, &it);
        if (k < 0)
                return k;
        if (it.indefinite)
                return reader_fail(r);
        k = check_count(r, it.value, max, elem_min);
        if (k < 0)
                return k;
        *ret_n = (size_t) it.value;
        return 0;
}

int rpc_get_map(struct rpc_reader *r, size_t max, size_t *ret_n) {
        return get_count(r, RPC_ITEM_MAP, max, 2, ret_n);
}

int rpc_get_array(struct rpc_reader *r, size_t max, size_t *ret_n) {
        return get_count(r, RPC_ITEM_ARRAY, max, 1, ret_n);
}

int rpc_get_array_sized(struct rpc_reader *r, size_t max, size_t elem_min, size_t *ret_n) {
        return get_count(r, RPC_ITEM_ARRAY, max, MAX(elem_min, (size_t) 1), ret_n);
}

/* The value of an item of type t (uint, tag, bool), at most max. */
static int get_value(struct rpc_reader *r, enum rpc_item_type t, uint64_t max, uint64_t *ret) {
        struct item it = {};
        int k;

        k = read_item(r, t, &it);
        if (k < 0)
                return k;
        if (it.value > max)
                return reader_fail(r);
        *ret = it.value;
        return 0;
}

int rpc_get_uint(struct rpc_reader *r, uint64_t max, uint64_t *ret) {
        return get_value(r, RPC_ITEM_UINT, max, ret);
}

int rpc_get_int(struct rpc_reader *r, int64_t min, int64_t max, int64_t *ret) {
        struct item it = {};
        size_t size;
        int64_t v;
        int k;

        k = peek_item(r, &it, &size);
        if (k < 0)
                return k;
        if (it.type == RPC_ITEM_UINT && it.value <= (uint64_t) INT64_MAX)
                v = (int64_t) it.value;
        else if (it.type == RPC_ITEM_NEGINT && it.value <= (uint64_t) INT64_MAX)
                v = -1 - (int64_t) it.value;
        else
                return reader_fail(r);
        if (v < min || v > max)
                return reader_fail(r);
        r->pos += size;
        *ret = v;
        return 0;
}

int rpc_get_bool(struct rpc_reader *r, bool *ret) {
        uint64_t v = 0;
        int k;

        k = get_value(r, RPC_ITEM_BOOL, 1, &v);
        if (k < 0)
                return k;
        *ret = v != 0;
        return 0;
}

int rpc_get_null(struct rpc_reader *r) {
        struct item it = {};

        return read_item(r, RPC_ITEM_NULL, &it);
}

int rpc_get_tag(struct rpc_reader *r, uint64_t *ret) {
        return get_value(r, RPC_ITEM_TAG, UINT64_MAX, ret);
}

static int get_string(struct rpc_reader *r, enum rpc_item_type t, size_t min, size_t max,
                      struct rpc_slice *ret) {
        struct item it = {};
        int k;

        k = read_item(r, t, &it);
        if (k < 0)
                return k;
        if (it.indefinite || it.len < min || it.len > max)
                return reader_fail(r);
        if (t == RPC_ITEM_TEXT && !rpc_utf8_valid(it.ptr, it.len))
                return reader_fail(r);
        *ret = (struct rpc_slice){ .ptr = it.ptr, .len = it.len };
        return 0;
}

int rpc_get_bytes(struct rpc_reader *r, size_t min, size_t max, struct rpc_slice *ret) {
        return get_string(r, RPC_ITEM_BYTES, min, max, ret);
}

int rpc_get_text(struct rpc_reader *r, size_t min, size_t max, struct rpc_slice *ret) {
        return get_string(r, RPC_ITEM_TEXT, min, max, ret);
}

/* The chunks of an indefinite string up to its break: each a definite string of the same type
 * (RFC 8949 3.2.3), at most lim.count of them, at most max bytes in all. buf may be NULL (skip). */
static int read_chunks(struct rpc_reader *r, enum rpc_item_type t, size_t max, uint8_t *buf,
                       size_t *ret_len) {
        size_t total = 0;

        for (size_t chunks = 0;; chunks++) {
                struct item c = {};
                size_t size;
                int k;

                k = peek_item(r, &c, &size);
                if (k < 0)
                        return k;
                if (c.type == RPC_ITEM_BREAK) {
                        r->pos += size;
                        break;
                }
                if (c.type != (int) t || c.indefinite || chunks >= r->lim.count || c.len > max - total)
                        return reader_fail(r);
                if (t == RPC_ITEM_TEXT && !rpc_utf8_valid(c.ptr, c.len))
                        return reader_fail(r);
                if (buf && c.len > 0)
                        memcpy(buf + total, c.ptr, c.len);
                total += c.len;
                r->pos += size;
        }
        if (total > r->lim.len)
                return reader_fail(r);
        *ret_len = total;
        return 0;
}

static int get_string_copy(struct rpc_reader *r, enum rpc_item_type t, size_t min, size_t max, uint8_t *buf,
                           size_t *ret_len) {
        struct item it = {};
        size_t n;
        int k;

        k = read_item(r, t, &it);
        if (k < 0)
                return k;
        if (it.indefinite) {
                k = read_chunks(r, t, max, buf, &n);
                if (k < 0)
                        return k;
        } else {
                if (it.len > max || (t == RPC_ITEM_TEXT && !rpc_utf8_valid(it.ptr, it.len)))
                        return reader_fail(r);
                n = it.len;
                if (n > 0)
                        memcpy(buf, it.ptr, n);
        }
        if (n < min)
                return reader_fail(r);
        *ret_len = n;
        return 0;
}

int rpc_get_bytes_copy(struct rpc_reader *r, size_t min, size_t max, uint8_t *buf, size_t *ret_len) {
        return get_string_copy(r, RPC_ITEM_BYTES, min, max, buf, ret_len);
}

int rpc_get_text_copy(struct rpc_reader *r, size_t min, size_t max, char *buf, size_t *ret_len) {
        return get_string_copy(r, RPC_ITEM_TEXT, min, max, (uint8_t *) buf, ret_len);
}

static int container_begin(struct rpc_reader *r, enum rpc_item_type t, size_t max,
                           struct rpc_container *ret) {
        struct item it = {};
        int k;

        if (r->depth >= r->lim.depth)
                return reader_fail(r);
        k = read_item(r, t, &it);
        if (k < 0)
                return k;
        if (!it.indefinite) {
                k = check_count(r, it.value, max, t == RPC_ITEM_MAP ? 2 : 1);
                if (k < 0)
                        return k;
        }
        r->depth++;
        *ret = (struct rpc_container){ .n = (size_t) it.value, .max = max, .indefinite = it.indefinite };
        return 0;
}

int rpc_get_map_begin(struct rpc_reader *r, size_t max, struct rpc_container *ret) {
        return container_begin(r, RPC_ITEM_MAP, max, ret);
}

int rpc_get_array_begin(struct rpc_reader *r, size_t max, struct rpc_container *ret) {
        return container_begin(r, RPC_ITEM_ARRAY, max, ret);
}

int rpc_container_next(struct rpc_reader *r, struct rpc_container *c) {
        if (r->err)
                return r->err;
        if (c->indefinite) {
                enum rpc_item_type t;
                int k;

                k = rpc_peek(r, &t);
                if (k < 0)
                        return k;
                if (t == RPC_ITEM_BREAK) {
                        r->pos++; /* a break is the single byte 0xff */
                        r->depth--;
                        return 0;
                }
                if (c->i >= c->max || c->i >= r->lim.count)
                        return reader_fail(r);
        } else if (c->i == c->n) {
                r->depth--;
                return 0;
        }
        c->i++;
        return 1;
}

/* What rpc_skip() has open: a stack of containers, each with the elements (map keys and values
 * counted apart) still expected, or seen so far when indefinite. */
struct skip_state {
        struct {
                uint64_t left;
                uint64_t seen;
                bool indefinite;
                bool map;
        } st[RPC_READER_DEPTH_MAX];
        unsigned d;
        bool tagged; /* the next item is wrapped in a tag */
};

/* A break: closes the innermost indefinite container, a map only after a whole pair. */
static int skip_break(struct rpc_reader *r, struct skip_state *s) {
        if (s->tagged || s->d == 0 || !s->st[s->d - 1].indefinite ||
            (s->st[s->d - 1].map && s->st[s->d - 1].seen % 2 != 0))
                return reader_fail(r);
        s->d--;
        return 1;
}

/* Any other head, consumed: 1 if the item is complete, 0 if it opened a container or is a tag. */
static int skip_head(struct rpc_reader *r, struct skip_state *s, const struct item *it) {
        size_t n;
        int k;

        if (!s->tagged && s->d > 0 && s->st[s->d - 1].indefinite &&
            ++s->st[s->d - 1].seen > (s->st[s->d - 1].map ? 2 * r->lim.count : r->lim.count))
                return reader_fail(r);
        s->tagged = it->type == RPC_ITEM_TAG;
        if (s->tagged)
                return 0;
        if ((it->type == RPC_ITEM_BYTES || it->type == RPC_ITEM_TEXT) && it->indefinite) {
                k = read_chunks(r, (enum rpc_item_type) it->type, r->lim.len, NULL, &n);
                return k < 0 ? k : 1;
        }
        if (it->type != RPC_ITEM_ARRAY && it->type != RPC_ITEM_MAP)
                return 1;
        if (!it->indefinite) {
                k = check_count(r, it->value, SIZE_MAX, it->type == RPC_ITEM_MAP ? 2 : 1);
                if (k < 0)
                        return k;
                if (it->value == 0)
                        return 1;
        }
        if (r->depth + s->d >= r->lim.depth)
                return reader_fail(r);
        s->st[s->d].left = it->type == RPC_ITEM_MAP ? 2 * it->value : it->value;
        s->st[s->d].seen = 0;
        s->st[s->d].indefinite = it->indefinite;
        s->st[s->d].map = it->type == RPC_ITEM_MAP;
        s->d++;
        return 0;
}

/* Iterative, so that the depth is a checked number rather than the C stack. A tag is a prefix of the
 * item it wraps, not a level: a chain of tags costs a byte each and no stack. */
int rpc_skip(struct rpc_reader *r) {
        struct skip_state s = {};

        for (;;) {
                struct item it = {};
                size_t size;
                int k;

                k = peek_item(r, &it, &size);
                if (k < 0)
                        return k;
                r->pos += size;
                k = it.type == RPC_ITEM_BREAK ? skip_break(r, &s) : skip_head(r, &s, &it);
                if (k < 0)
                        return k;
                /* A finished item may finish the definite containers around it. */
                while (k > 0) {
                        if (s.d == 0)
                                return 0;
                        if (s.st[s.d - 1].indefinite || --s.st[s.d - 1].left > 0)
                                break;
                        s.d--;
                }
        }
}

int rpc_reader_end(const struct rpc_reader *r) {
        if (r->err)
                return r->err;
        return r->pos == r->len && r->depth == 0 ? 0 : -EBADMSG;
}
