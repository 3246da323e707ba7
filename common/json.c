/* The bounded JSON pull reader: strict RFC 8259 with caps on depth, string length and input size. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json-internal.h"
#include "common/json.h"
#include "common/secret.h"

/* With reject_duplicates, an object holds at most this many members: the check is a linear scan
 * over their hashes, and this keeps it cheap whatever the input. */
#define JSON_DUP_MEMBERS_MAX 1024u

struct json_keyset {
        size_t n, cap;
        struct json_key_seen {
                uint64_t hash;
                size_t quote; /* offset of the key's opening quote */
        } * v;
};

size_t json_utf8_char(const uint8_t *p, size_t n, uint32_t *ret_cp) {
        uint32_t cp;
        size_t len;

        if (n == 0)
                return 0;
        if (p[0] < 0x80) {
                *ret_cp = p[0];
                return 1;
        }
        if (p[0] < 0xc2) /* a continuation byte, or 0xc0/0xc1: always overlong */
                return 0;
        if (p[0] < 0xe0) {
                len = 2;
                cp = p[0] & 0x1f;
        } else if (p[0] < 0xf0) {
                len = 3;
                cp = p[0] & 0x0f;
        } else if (p[0] < 0xf5) {
                len = 4;
                cp = p[0] & 0x07;
        } else
                return 0;
        if (n < len)
                return 0;
        for (size_t i = 1; i < len; i++) {
                if ((p[i] & 0xc0) != 0x80)
                        return 0;
                cp = cp << 6 | (p[i] & 0x3f);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
                return 0;
        *ret_cp = cp;
        return len;
}

static void append_path(char *buf, size_t size, size_t *n, const char *fmt, int len, const char *s,
                        size_t i) {
        int k;

        if (*n >= size)
                return;
        k = len >= 0 ? snprintf(buf + *n, size - *n, fmt, len, s) : snprintf(buf + *n, size - *n, fmt, i);
        if (k < 0 || (size_t) k >= size - *n) {
                /* cut: end with "..." */
                memcpy(buf + size - 4, "...", 4);
                *n = size;
                return;
        }
        *n += (size_t) k;
}

static void format_path(const struct json_reader *r, char *buf, size_t size) {
        size_t n = 0;

        append_path(buf, size, &n, "%.*s", 1, "$", 0);
        for (unsigned d = 1; d <= r->depth; d++) {
                const struct json_frame *f = &r->stack[d];

                if (f->array && f->count > 0)
                        append_path(buf, size, &n, "[%zu]", -1, NULL, f->count - 1);
                else if (!f->array && f->key_off > 0) {
                        size_t len = MIN(f->key_len, 64u);

                        /* cut a long key where a character starts, so the path stays UTF-8 */
                        while (len < f->key_len && len > 0 && (r->data[f->key_off + len] & 0xc0) == 0x80)
                                len--;
                        append_path(buf, size, &n, ".%.*s", (int) len, (const char *) r->data + f->key_off,
                                    0);
                }
        }
}

/* Records the first error; later calls return it unchanged. */
static int fail(struct json_reader *r, int e, size_t off, const char *what) {
        if (r->error < 0)
                return r->error;
        r->error = e;
        if (r->err) {
                r->err->offset = off;
                r->err->what = what;
                format_path(r, r->err->path, sizeof(r->err->path));
        }
        return e;
}

const char *json_error_string(const struct json_error *err, char *buf, size_t size) {
        (void) snprintf(buf, size, "%s at byte %zu of the JSON (%s)", err->what ? err->what : "error",
                        err->offset, err->path);
        return buf;
}

int json_reader_init(struct json_reader *r, const void *data, size_t len, const struct json_limits *lim,
                     struct json_error *err) {
        *r = (struct json_reader){
                .data = data,
                .len = len,
                .err = err,
                .lim = lim ? *lim : (struct json_limits){},
        };
        if (r->lim.max_depth == 0)
                r->lim.max_depth = JSON_DEFAULT_MAX_DEPTH;
        if (r->lim.max_string == 0)
                r->lim.max_string = JSON_DEFAULT_MAX_STRING;
        if (r->lim.max_input == 0)
                r->lim.max_input = JSON_DEFAULT_MAX_INPUT;
        if (err)
                *err = (struct json_error){ .what = "no error", .path = "$" };
        if (r->lim.max_depth > JSON_DEPTH_LIMIT || (!data && len > 0))
                return fail(r, -EINVAL, 0, "invalid reader limits");
        if (len > r->lim.max_input)
                return fail(r, -E2BIG, r->lim.max_input, "document too large");
        return 0;
}

static void keyset_free(struct json_frame *f) {
        if (f->keys)
                free(f->keys->v);
        free(f->keys);
        f->keys = NULL;
}

void json_reader_done(struct json_reader *r) {
        for (size_t d = 0; d < ELEMENTSOF(r->stack); d++)
                keyset_free(&r->stack[d]);
}

static void skip_ws(struct json_reader *r) {
        while (r->pos < r->len && (r->data[r->pos] == ' ' || r->data[r->pos] == '\t' ||
                                   r->data[r->pos] == '\n' || r->data[r->pos] == '\r'))
                r->pos++;
}

static bool is_digit(uint8_t c) {
        return c >= '0' && c <= '9';
}

/* May a value be read here? consume: it is being read (not just peeked at). */
static int value_allowed(struct json_reader *r, bool consume) {
        if (r->error < 0)
                return r->error;
        skip_ws(r);
        if (r->depth == 0) {
                if (r->top_read)
                        return fail(r, -EINVAL, r->pos, "a second top-level value was asked for");
                r->top_read = consume;
        } else {
                if (!r->stack[r->depth].pending)
                        return fail(r, -EINVAL, r->pos, "value read before json_*_next()");
                if (consume)
                        r->stack[r->depth].pending = false;
        }
        if (r->pos >= r->len)
                return fail(r, -EBADMSG, r->pos, "unexpected end of input");
        return 0;
}

static int type_of(uint8_t c) {
        switch (c) {
        case '{': return JSON_TYPE_OBJECT;
        case '[': return JSON_TYPE_ARRAY;
        case '"': return JSON_TYPE_STRING;
        case 't':
        case 'f': return JSON_TYPE_BOOL;
        case 'n': return JSON_TYPE_NULL;
        default: return c == '-' || is_digit(c) ? JSON_TYPE_NUMBER : _JSON_TYPE_INVALID;
        }
}

int json_peek(struct json_reader *r) {
        int t, k;

        k = value_allowed(r, false);
        if (k < 0)
                return k;
        t = type_of(r->data[r->pos]);
        if (t < 0)
                return fail(r, -EBADMSG, r->pos, "unexpected character where a value should start");
        return t;
}

/* Starts reading a value that must be of type want. */
static int value_begin(struct json_reader *r, int want, const char *what) {
        int k;

        k = value_allowed(r, true);
        if (k < 0)
                return k;
        if (type_of(r->data[r->pos]) != want)
                return fail(r, -EBADMSG, r->pos, what);
        return 0;
}

static int push(struct json_reader *r, bool array) {
        if (r->depth >= r->lim.max_depth)
                return fail(r, -E2BIG, r->pos, "nesting too deep");
        r->pos++;
        r->depth++;
        r->stack[r->depth] = (struct json_frame){ .array = array };
        return 0;
}

static void pop(struct json_reader *r) {
        keyset_free(&r->stack[r->depth]);
        r->depth--;
        r->pos++;
}

int json_object_begin(struct json_reader *r) {
        int k = value_begin(r, JSON_TYPE_OBJECT, "expected an object");

        return k < 0 ? k : push(r, false);
}

int json_array_begin(struct json_reader *r) {
        int k = value_begin(r, JSON_TYPE_ARRAY, "expected an array");

        return k < 0 ? k : push(r, true);
}

static int hex4(const struct json_reader *r, size_t at, uint32_t *ret) {
        uint32_t v = 0;

        if (at + 4 > r->len)
                return -EBADMSG;
        for (size_t i = at; i < at + 4; i++) {
                uint8_t c = r->data[i];

                v <<= 4;
                if (is_digit(c))
                        v |= c - '0';
                else if (c >= 'a' && c <= 'f')
                        v |= c - 'a' + 10;
                else if (c >= 'A' && c <= 'F')
                        v |= c - 'A' + 10;
                else
                        return -EBADMSG;
        }
        *ret = v;
        return 0;
}

/* The escape at *i (its backslash): its code point, *i moved past it. */
static int read_escape(struct json_reader *r, size_t *i, uint32_t *ret_cp) {
        static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
        size_t at = *i;
        const char *e;
        uint32_t hi, lo;

        if (at + 1 >= r->len)
                return fail(r, -EBADMSG, at, "unterminated string");
        if (r->data[at + 1] != 'u') {
                e = r->data[at + 1] ? strchr(from, r->data[at + 1]) : NULL;
                if (!e)
                        return fail(r, -EBADMSG, at, "invalid escape in string");
                *ret_cp = (uint8_t) to[e - from];
                *i = at + 2;
                return 0;
        }
        if (hex4(r, at + 2, &hi) < 0)
                return fail(r, -EBADMSG, at, "invalid \\u escape in string");
        if (hi >= 0xdc00 && hi <= 0xdfff)
                return fail(r, -EBADMSG, at, "lone low surrogate in string");
        if (hi < 0xd800 || hi > 0xdbff) {
                *ret_cp = hi;
                *i = at + 6;
                return 0;
        }
        if (at + 8 > r->len || r->data[at + 6] != '\\' || r->data[at + 7] != 'u' ||
            hex4(r, at + 8, &lo) < 0 || lo < 0xdc00 || lo > 0xdfff)
                return fail(r, -EBADMSG, at, "lone high surrogate in string");
        *ret_cp = 0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00);
        *i = at + 12;
        return 0;
}

static size_t utf8_len(uint32_t cp) {
        return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

static void utf8_put(uint8_t *out, uint32_t cp, size_t len) {
        static const uint8_t lead[] = { 0, 0, 0xc0, 0xe0, 0xf0 };

        for (size_t k = len - 1; k > 0; k--) {
                out[k] = 0x80 | (cp & 0x3f);
                cp >>= 6;
        }
        out[0] = (uint8_t) (lead[len] | cp);
}

/* Decodes the string whose opening quote is at start into out (NULL: only check and measure; the
 * caller sized out from that first pass, so the second cannot overflow). Bytes go straight from
 * the input to out, so a secret has no other copy. *ret_end is the offset past the closing quote. */
static int string_decode(struct json_reader *r, size_t start, uint8_t *out, bool cstring, size_t *ret_len,
                         size_t *ret_end) {
        size_t i = start + 1, n = 0, m;
        uint32_t cp;
        int k;

        for (;;) {
                size_t at = i;

                if (i >= r->len)
                        return fail(r, -EBADMSG, start, "unterminated string");
                if (r->data[i] == '"')
                        break;
                if (r->data[i] < 0x20)
                        return fail(r, -EBADMSG, i, "control character in string");
                if (r->data[i] == '\\') {
                        k = read_escape(r, &i, &cp);
                        if (k < 0)
                                return k;
                        if (cp == 0 && cstring)
                                return fail(r, -EBADMSG, at, "\\u0000 in a string");
                        m = utf8_len(cp);
                } else {
                        m = json_utf8_char(r->data + i, r->len - i, &cp);
                        if (m == 0)
                                return fail(r, -EBADMSG, i, "invalid UTF-8 in string");
                        i += m;
                }
                if (m > r->lim.max_string - n)
                        return fail(r, -E2BIG, start, "string too long");
                if (out && r->data[at] == '\\')
                        utf8_put(out + n, cp, m);
                else if (out)
                        memcpy(out + n, r->data + at, m);
                n += m;
        }
        *ret_len = n;
        *ret_end = i + 1;
        return 0;
}

static uint64_t fnv1a(const char *s, size_t n) {
        uint64_t h = 0xcbf29ce484222325ULL;

        for (size_t i = 0; i < n; i++)
                h = (h ^ (uint8_t) s[i]) * 0x100000001b3ULL;
        return h;
}

/* r->key (n bytes) was just read at quote: refuse it if the object had it already. */
static int key_check_unique(struct json_reader *r, struct json_frame *f, size_t quote, size_t n) {
        uint64_t h = fnv1a(r->key, n);

        if (!f->keys) {
                f->keys = calloc(1, sizeof(*f->keys));
                if (!f->keys)
                        return fail(r, -ENOMEM, quote, "out of memory");
        }
        for (size_t i = 0; i < f->keys->n; i++) {
                uint8_t other[JSON_KEY_MAX];
                size_t len, end;

                if (f->keys->v[i].hash != h)
                        continue;
                /* a hash match: compare the keys themselves (already checked, so this cannot fail) */
                if (string_decode(r, f->keys->v[i].quote, NULL, true, &len, &end) < 0 || len != n ||
                    string_decode(r, f->keys->v[i].quote, other, true, &len, &end) < 0)
                        continue;
                if (memcmp(other, r->key, n) == 0)
                        return fail(r, -ENOTUNIQ, quote, "duplicate key");
        }
        if (f->keys->n >= JSON_DUP_MEMBERS_MAX)
                return fail(r, -E2BIG, quote, "too many members to check for duplicate keys");
        if (f->keys->n == f->keys->cap) {
                size_t cap = MAX(f->keys->cap * 2, 8u);
                struct json_key_seen *v = reallocarray(f->keys->v, cap, sizeof(*v));

                if (!v)
                        return fail(r, -ENOMEM, quote, "out of memory");
                f->keys->v = v;
                f->keys->cap = cap;
        }
        f->keys->v[f->keys->n].hash = h;
        f->keys->v[f->keys->n++].quote = quote;
        return 0;
}

/* The closing bracket, or a comma and the start of the next member or element. 1: one follows. */
static int next_item(struct json_reader *r, struct json_frame *f) {
        char close = f->array ? ']' : '}';
        int k;

        if (f->pending && (k = json_skip(r)) < 0)
                return k;
        skip_ws(r);
        if (r->pos < r->len && r->data[r->pos] == close) {
                pop(r);
                return 0;
        }
        if (f->count > 0) {
                if (r->pos >= r->len)
                        return fail(r, -EBADMSG, r->pos, "unexpected end of input");
                if (r->data[r->pos] != ',')
                        return fail(r, -EBADMSG, r->pos,
                                    f->array ? "expected ',' or ']'" : "expected ',' or '}'");
                r->pos++;
                skip_ws(r);
                if (r->pos < r->len && r->data[r->pos] == close)
                        return fail(r, -EBADMSG, r->pos, "trailing comma");
        }
        if (r->pos >= r->len)
                return fail(r, -EBADMSG, r->pos, "unexpected end of input");
        return 1;
}

static int member_next(struct json_reader *r, bool decode, const char **ret_key) {
        struct json_frame *f = &r->stack[r->depth];
        size_t quote, n, end;
        int k;

        if (r->error < 0)
                return r->error;
        if (r->depth == 0 || f->array)
                return fail(r, -EINVAL, r->pos, "not in an object");
        k = next_item(r, f);
        if (k <= 0)
                return k;
        f->key_off = f->key_len = 0;
        quote = r->pos;
        if (r->data[quote] != '"')
                return fail(r, -EBADMSG, quote, "expected a key");
        k = string_decode(r, quote, NULL, decode, &n, &end);
        if (k < 0)
                return k;
        f->count++;
        f->key_off = quote + 1;
        f->key_len = end - quote - 2;
        if (decode) {
                if (n > JSON_KEY_MAX)
                        return fail(r, -E2BIG, quote, "key too long");
                (void) string_decode(r, quote, (uint8_t *) r->key, true, &n, &end);
                r->key[n] = 0;
                if (r->lim.reject_duplicates && (k = key_check_unique(r, f, quote, n)) < 0)
                        return k;
        }
        r->pos = end;
        skip_ws(r);
        if (r->pos >= r->len || r->data[r->pos] != ':')
                return fail(r, -EBADMSG, r->pos, "expected ':' after the key");
        r->pos++;
        f->pending = true;
        if (ret_key)
                *ret_key = r->key;
        return 1;
}

int json_object_next(struct json_reader *r, const char **ret_key) {
        return member_next(r, true, ret_key);
}

int json_array_next(struct json_reader *r) {
        struct json_frame *f = &r->stack[r->depth];
        int k;

        if (r->error < 0)
                return r->error;
        if (r->depth == 0 || !f->array)
                return fail(r, -EINVAL, r->pos, "not in an array");
        k = next_item(r, f);
        if (k <= 0)
                return k;
        f->count++;
        f->pending = true;
        return 1;
}

/* The string value at r->pos: checked and measured, not consumed. */
static int string_begin(struct json_reader *r, bool cstring, size_t *ret_len, size_t *ret_end) {
        int k = value_begin(r, JSON_TYPE_STRING, "expected a string");

        return k < 0 ? k : string_decode(r, r->pos, NULL, cstring, ret_len, ret_end);
}

int json_read_string(struct json_reader *r, char **ret) {
        _cleanup_free_ char *s = NULL;
        size_t n, end;
        int k;

        k = string_begin(r, true, &n, &end);
        if (k < 0)
                return k;
        s = malloc(n + 1);
        if (!s)
                return fail(r, -ENOMEM, r->pos, "out of memory");
        (void) string_decode(r, r->pos, (uint8_t *) s, true, &n, &end);
        s[n] = 0;
        r->pos = end;
        *ret = TAKE_PTR(s);
        return 0;
}

int json_read_string_buf(struct json_reader *r, char *buf, size_t size) {
        size_t n, end;
        int k;

        k = string_begin(r, true, &n, &end);
        if (k < 0)
                return k;
        if (n >= size)
                return fail(r, -E2BIG, r->pos, "string too long for its field");
        (void) string_decode(r, r->pos, (uint8_t *) buf, true, &n, &end);
        buf[n] = 0;
        r->pos = end;
        return 0;
}

int json_read_secret(struct json_reader *r, struct secret_buf **ret) {
        _cleanup_secret_ struct secret_buf *s = NULL;
        size_t n, end;
        int k;

        k = string_begin(r, false, &n, &end);
        if (k < 0)
                return k;
        k = secret_buf_new(MAX(n, 1u), &s);
        if (k < 0)
                return fail(r, k, r->pos, "cannot allocate a secret buffer");
        (void) string_decode(r, r->pos, s->data, false, &n, &end);
        s->len = n;
        r->pos = end;
        *ret = TAKE_PTR(s);
        return 0;
}

/* The number at r->pos against the grammar; *ret_int: no fraction, no exponent. */
static int number_span(struct json_reader *r, size_t *ret_end, bool *ret_int) {
        size_t i = r->pos;
        bool integer = true;

        if (r->data[i] == '-')
                i++;
        if (i >= r->len || !is_digit(r->data[i]))
                return fail(r, -EBADMSG, r->pos, "invalid number: a digit must follow '-'");
        if (r->data[i] == '0' && i + 1 < r->len && is_digit(r->data[i + 1]))
                return fail(r, -EBADMSG, r->pos, "invalid number: leading zero");
        while (i < r->len && is_digit(r->data[i]))
                i++;
        if (i < r->len && r->data[i] == '.') {
                integer = false;
                if (++i >= r->len || !is_digit(r->data[i]))
                        return fail(r, -EBADMSG, r->pos, "invalid number: a digit must follow '.'");
                while (i < r->len && is_digit(r->data[i]))
                        i++;
        }
        if (i < r->len && (r->data[i] == 'e' || r->data[i] == 'E')) {
                integer = false;
                if (++i < r->len && (r->data[i] == '+' || r->data[i] == '-'))
                        i++;
                if (i >= r->len || !is_digit(r->data[i]))
                        return fail(r, -EBADMSG, r->pos, "invalid number: bad exponent");
                while (i < r->len && is_digit(r->data[i]))
                        i++;
        }
        *ret_end = i;
        *ret_int = integer;
        return 0;
}

/* An integer as sign and magnitude, at most max_pos above zero or max_neg below; -ERANGE past that. */
static int read_integer(struct json_reader *r, uint64_t max_pos, uint64_t max_neg, bool *ret_neg,
                        uint64_t *ret_mag) {
        uint64_t v = 0;
        size_t end, i;
        bool integer, neg;
        int k;

        k = value_begin(r, JSON_TYPE_NUMBER, "expected a number");
        if (k < 0)
                return k;
        k = number_span(r, &end, &integer);
        if (k < 0)
                return k;
        if (!integer)
                return fail(r, -EBADMSG, r->pos, "expected an integer");
        neg = r->data[r->pos] == '-';
        for (i = r->pos + neg; i < end; i++) {
                unsigned d = r->data[i] - '0';

                if (v > (UINT64_MAX - d) / 10)
                        return fail(r, -ERANGE, r->pos, "integer out of range");
                v = v * 10 + d;
        }
        if (v > (neg ? max_neg : max_pos))
                return fail(r, -ERANGE, r->pos,
                            neg && max_neg == 0 ? "negative integer where none may be"
                                                : "integer out of range");
        *ret_neg = neg;
        *ret_mag = v;
        r->pos = end;
        return 0;
}

int json_read_int64(struct json_reader *r, int64_t *ret) {
        uint64_t mag;
        bool neg;
        int k;

        k = read_integer(r, INT64_MAX, (uint64_t) INT64_MAX + 1, &neg, &mag);
        if (k < 0)
                return k;
        *ret = neg ? (int64_t) (0 - mag) : (int64_t) mag;
        return 0;
}

int json_read_uint64(struct json_reader *r, uint64_t *ret) {
        bool neg;

        return read_integer(r, UINT64_MAX, 0, &neg, ret);
}

static bool literal(struct json_reader *r, const char *word) {
        size_t n = strlen(word);

        if (r->len - r->pos < n || memcmp(r->data + r->pos, word, n) != 0)
                return false;
        r->pos += n;
        return true;
}

int json_read_bool(struct json_reader *r, bool *ret) {
        int k = value_begin(r, JSON_TYPE_BOOL, "expected true or false");

        if (k < 0)
                return k;
        if (literal(r, "true"))
                *ret = true;
        else if (literal(r, "false"))
                *ret = false;
        else
                return fail(r, -EBADMSG, r->pos, "invalid literal");
        return 0;
}

int json_read_null(struct json_reader *r) {
        int k = value_begin(r, JSON_TYPE_NULL, "expected null");

        if (k < 0)
                return k;
        return literal(r, "null") ? 0 : fail(r, -EBADMSG, r->pos, "invalid literal");
}

int json_skip(struct json_reader *r) {
        size_t n, end;
        bool integer, b;
        int t, k;

        t = json_peek(r);
        if (t < 0)
                return t;
        switch (t) {
        case JSON_TYPE_OBJECT:
        case JSON_TYPE_ARRAY:
                k = t == JSON_TYPE_OBJECT ? json_object_begin(r) : json_array_begin(r);
                while (k >= 0 &&
                       (k = t == JSON_TYPE_OBJECT ? member_next(r, false, NULL) : json_array_next(r)) > 0)
                        k = json_skip(r);
                return k;
        case JSON_TYPE_STRING:
                k = string_begin(r, false, &n, &end);
                if (k >= 0)
                        r->pos = end;
                return k;
        case JSON_TYPE_NUMBER:
                k = value_begin(r, JSON_TYPE_NUMBER, "expected a number");
                if (k >= 0 && (k = number_span(r, &end, &integer)) >= 0)
                        r->pos = end;
                return k;
        case JSON_TYPE_BOOL: return json_read_bool(r, &b);
        default: return json_read_null(r);
        }
}

int json_reader_end(struct json_reader *r) {
        if (r->error < 0)
                return r->error;
        if (!r->top_read || r->depth > 0)
                return fail(r, -EINVAL, r->pos, "the document was not read to its end");
        skip_ws(r);
        if (r->pos < r->len)
                return fail(r, -EBADMSG, r->pos, "trailing data after the JSON value");
        return 0;
}

int json_validate(const void *data, size_t len, const struct json_limits *lim, struct json_error *err) {
        struct json_reader r;
        int k;

        k = json_reader_init(&r, data, len, lim, err);
        if (k >= 0 && (k = json_skip(&r)) >= 0)
                k = json_reader_end(&r);
        json_reader_done(&r);
        return k;
}
