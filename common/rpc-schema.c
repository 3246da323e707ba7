/* The schema engine: encode, decode, check and free any message from its table of fields. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "common/rpc-schema.h"

static size_t array_count(const struct rpc_field *f, const void *msg) {
        return *(const size_t *) ((const uint8_t *) msg + f->count_offset);
}

/* The first element of an array field: inline in msg, or where the allocated pointer points. */
static const uint8_t *array_elems(const struct rpc_field *f, const void *msg) {
        const uint8_t *p = (const uint8_t *) msg + f->offset;

        return f->alloc ? *(const uint8_t *const *) p : p;
}

static bool field_present(const struct rpc_field *f, const void *msg) {
        const uint8_t *p = (const uint8_t *) msg + f->offset;

        if (f->required)
                return true;
        switch (f->type) {
        case RPC_FIELD_U32: return *(const uint32_t *) p != 0;
        case RPC_FIELD_U64: return *(const uint64_t *) p != 0;
        case RPC_FIELD_BOOL: return *(const bool *) p;
        case RPC_FIELD_BYTES:
        case RPC_FIELD_TEXT: return ((const struct rpc_slice *) p)->len > 0;
        case RPC_FIELD_ARRAY: return array_count(f, msg) > 0;
        default: return true;
        }
}

static void write_value(struct rpc_writer *w, const struct rpc_field *f, const uint8_t *p);

static void write_array(struct rpc_writer *w, const struct rpc_field *f, const void *msg) {
        size_t n = array_count(f, msg);
        const uint8_t *e = array_elems(f, msg);

        if (n < f->min || n > f->max || (n > 0 && !e)) {
                rpc_writer_fail(w, -EINVAL);
                return;
        }
        rpc_put_array(w, n);
        for (size_t i = 0; i < n && !w->err; i++)
                write_value(w, f->elem, e + i * f->elem_size);
}

/* One value of a field; p points at the member (or the array element). */
static void write_value(struct rpc_writer *w, const struct rpc_field *f, const uint8_t *p) {
        const struct rpc_slice *s = (const struct rpc_slice *) p;
        uint64_t v;

        switch (f->type) {
        case RPC_FIELD_U32:
        case RPC_FIELD_U64:
                v = f->type == RPC_FIELD_U32 ? *(const uint32_t *) p : *(const uint64_t *) p;
                if (v < f->min || v > f->max)
                        break;
                rpc_put_uint(w, v);
                return;
        case RPC_FIELD_BOOL: rpc_put_bool(w, *(const bool *) p); return;
        case RPC_FIELD_BYTES:
        case RPC_FIELD_TEXT:
                if (s->len < f->min || s->len > f->max)
                        break;
                if (f->type == RPC_FIELD_TEXT)
                        rpc_put_text(w, (const char *) s->ptr, s->len);
                else
                        rpc_put_bytes(w, s->ptr, s->len);
                return;
        case RPC_FIELD_MAP: rpc_msg_write(f->schema, w, p); return;
        default: break;
        }
        /* Out of the schema: the peer would answer MALFORMED. */
        rpc_writer_fail(w, -EINVAL);
}

void rpc_msg_write(const struct rpc_schema *s, struct rpc_writer *w, const void *msg) {
        size_t n = 0;

        for (size_t i = 0; i < s->n_fields; i++)
                if (field_present(&s->fields[i], msg))
                        n++;
        rpc_put_map(w, n);
        for (size_t i = 0; i < s->n_fields; i++) {
                const struct rpc_field *f = &s->fields[i];

                if (!field_present(f, msg))
                        continue;
                rpc_put_uint(w, f->key);
                if (f->type == RPC_FIELD_ARRAY)
                        write_array(w, f, msg);
                else
                        write_value(w, f, (const uint8_t *) msg + f->offset);
        }
}

static int read_fail(struct rpc_reader *r, int err) {
        if (!r->err)
                r->err = err;
        return r->err;
}

static int read_value(struct rpc_reader *r, const struct rpc_field *f, uint8_t *p);

static int read_array(struct rpc_reader *r, const struct rpc_field *f, void *msg) {
        size_t *count = (size_t *) ((uint8_t *) msg + f->count_offset);
        uint8_t *e = (uint8_t *) msg + f->offset;
        size_t n = 0;
        int k;

        /* Bounded by the schema and by the bytes left before anything is allocated. */
        k = rpc_get_array_sized(r, f->max, f->elem_min_bytes, &n);
        if (k < 0)
                return k;
        if (n < f->min)
                return read_fail(r, -EBADMSG);
        if (n == 0)
                return 0;
        if (f->alloc) {
                uint8_t *v = calloc(n, f->elem_size);

                if (!v)
                        return read_fail(r, -ENOMEM);
                *(uint8_t **) e = v;
                e = v;
        }
        *count = n; /* so that rpc_msg_done() frees what a failure leaves */
        for (size_t i = 0; i < n; i++) {
                k = read_value(r, f->elem, e + i * f->elem_size);
                if (k < 0)
                        return k;
        }
        return 0;
}

static int read_value(struct rpc_reader *r, const struct rpc_field *f, uint8_t *p) {
        uint64_t v = 0;
        int k;

        switch (f->type) {
        case RPC_FIELD_U32:
        case RPC_FIELD_U64:
                k = rpc_get_uint(r, f->max, &v);
                if (k < 0)
                        return k;
                if (v < f->min)
                        return read_fail(r, -EBADMSG);
                if (f->type == RPC_FIELD_U32)
                        *(uint32_t *) p = (uint32_t) v;
                else
                        *(uint64_t *) p = v;
                return 0;
        case RPC_FIELD_BOOL: return rpc_get_bool(r, (bool *) p);
        case RPC_FIELD_BYTES: return rpc_get_bytes(r, f->min, f->max, (struct rpc_slice *) p);
        case RPC_FIELD_TEXT: return rpc_get_text(r, f->min, f->max, (struct rpc_slice *) p);
        case RPC_FIELD_MAP: return rpc_msg_read(f->schema, r, p);
        default: return read_fail(r, -EBADMSG);
        }
}

int rpc_msg_read(const struct rpc_schema *s, struct rpc_reader *r, void *msg) {
        uint64_t seen = 0, required = 0;
        size_t n = 0;
        int k;

        k = rpc_get_map(r, s->n_fields, &n);
        if (k < 0)
                return k;
        for (size_t i = 0; i < n; i++) {
                const struct rpc_field *f = NULL;
                uint64_t key = 0;

                k = rpc_get_uint(r, RPC_FIELD_KEY_MAX, &key);
                if (k < 0)
                        return k;
                if (seen & (UINT64_C(1) << key))
                        return read_fail(r, -EBADMSG);
                seen |= UINT64_C(1) << key;
                for (size_t j = 0; j < s->n_fields && !f; j++)
                        if (s->fields[j].key == key)
                                f = &s->fields[j];
                if (!f)
                        return read_fail(r, -EBADMSG);
                if (f->type == RPC_FIELD_ARRAY)
                        k = read_array(r, f, msg);
                else
                        k = read_value(r, f, (uint8_t *) msg + f->offset);
                if (k < 0)
                        return k;
        }
        for (size_t j = 0; j < s->n_fields; j++)
                if (s->fields[j].required)
                        required |= UINT64_C(1) << s->fields[j].key;
        if ((seen & required) != required)
                return read_fail(r, -EBADMSG);
        return 0;
}

int rpc_msg_decode(const struct rpc_schema *s, const uint8_t *b, size_t n, void *ret) {
        /* Decoded aside so that ret is untouched on failure, as the old per-message decoders did. */
        _Alignas(max_align_t) uint8_t m[RPC_MSG_SIZE_MAX];
        struct rpc_reader r;
        int k;

        if (s->size > sizeof(m))
                return -EINVAL;
        memset(m, 0, s->size);
        rpc_reader_init(&r, b, n);
        k = rpc_msg_read(s, &r, m);
        if (k >= 0)
                k = rpc_reader_end(&r);
        if (k < 0) {
                rpc_msg_done(s, m);
                return k;
        }
        if (s->size > 0)
                memcpy(ret, m, s->size);
        return 0;
}

static bool schema_allocates(const struct rpc_schema *s) {
        for (size_t i = 0; i < s->n_fields; i++) {
                const struct rpc_field *f = &s->fields[i];

                if (f->type == RPC_FIELD_ARRAY &&
                    (f->alloc || (f->elem->type == RPC_FIELD_MAP && schema_allocates(f->elem->schema))))
                        return true;
                if (f->type == RPC_FIELD_MAP && schema_allocates(f->schema))
                        return true;
        }
        return false;
}

void rpc_msg_done(const struct rpc_schema *s, void *msg) {
        if (!msg)
                return;
        for (size_t i = 0; i < s->n_fields; i++) {
                const struct rpc_field *f = &s->fields[i];
                uint8_t *p = (uint8_t *) msg + f->offset;

                if (f->type == RPC_FIELD_MAP)
                        rpc_msg_done(f->schema, p);
                if (f->type != RPC_FIELD_ARRAY)
                        continue;
                if (f->elem->type == RPC_FIELD_MAP && schema_allocates(f->elem->schema)) {
                        uint8_t *e = (uint8_t *) array_elems(f, msg);

                        for (size_t j = 0; e && j < array_count(f, msg); j++)
                                rpc_msg_done(f->elem->schema, e + j * f->elem_size);
                }
                if (f->alloc) {
                        free(*(void **) p);
                        *(void **) p = NULL;
                        *(size_t *) ((uint8_t *) msg + f->count_offset) = 0;
                }
        }
}

int rpc_msg_check(const struct rpc_schema *s, const uint8_t *b, size_t n) {
        _cleanup_free_ void *m = NULL;
        int k;

        m = malloc(MAX(s->size, (size_t) 1));
        if (!m)
                return -ENOMEM;
        k = rpc_msg_decode(s, b, n, m);
        if (k < 0)
                return k; /* m untouched */
        rpc_msg_done(s, m);
        return 0;
}

static bool field_has_secret(const struct rpc_field *f) {
        if (f->secret)
                return true;
        if (f->type == RPC_FIELD_MAP)
                return rpc_schema_has_secret(f->schema);
        if (f->type == RPC_FIELD_ARRAY)
                return field_has_secret(f->elem);
        return false;
}

bool rpc_schema_has_secret(const struct rpc_schema *s) {
        for (size_t i = 0; i < s->n_fields; i++)
                if (field_has_secret(&s->fields[i]))
                        return true;
        return false;
}
