/* Target: json_validate, the json_reader_* / json_read_* walk and the writer
 *
 * Input: any bytes. They are validated with the default and with small caps; a document that is
 * valid is then walked value by value (strings as secrets, integers as int64 or uint64) and written
 * back with the writer. Invariants: errors are the documented ones; a valid document walks, unless
 * a key is longer than JSON_KEY_MAX, holds \u0000, repeats, or nests past the writer's depth; what
 * the writer produces is valid and comes back byte for byte when walked and written again. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/secret.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool documented(int r) {
        return r == -EBADMSG || r == -E2BIG || r == -ERANGE || r == -ENOTUNIQ;
}

static int walk(struct json_reader *r, struct json_writer *w, const char *key) {
        _cleanup_secret_ struct secret_buf *s = NULL;
        char name[JSON_KEY_MAX + 1];
        const char *k;
        uint64_t u;
        int64_t v;
        bool b;
        int t, n;

        t = json_peek(r);
        switch (t) {
        case JSON_TYPE_OBJECT:
                if ((n = json_object_begin(r)) < 0)
                        return n;
                json_begin_object(w, key);
                while ((n = json_object_next(r, &k)) > 0) {
                        /* k lives until the next call on r: keep a copy for the writer */
                        memcpy(name, k, strlen(k) + 1);
                        if ((n = walk(r, w, name)) < 0)
                                return n;
                }
                json_end_object(w);
                return n;
        case JSON_TYPE_ARRAY:
                if ((n = json_array_begin(r)) < 0)
                        return n;
                json_begin_array(w, key);
                while ((n = json_array_next(r)) > 0)
                        if ((n = walk(r, w, NULL)) < 0)
                                return n;
                json_end_array(w);
                return n;
        case JSON_TYPE_STRING:
                if ((n = json_read_secret(r, &s)) < 0)
                        return n;
                json_string_len(w, key, (const char *) s->data, s->len);
                return 0;
        case JSON_TYPE_NUMBER:
                /* integers that fit one of the two; anything else is refused by both */
                if (r->data[r->pos] == '-') {
                        if ((n = json_read_int64(r, &v)) < 0)
                                return n;
                        json_int(w, key, v);
                } else {
                        if ((n = json_read_uint64(r, &u)) < 0)
                                return n;
                        json_uint(w, key, u);
                }
                return 0;
        case JSON_TYPE_BOOL:
                if ((n = json_read_bool(r, &b)) < 0)
                        return n;
                json_bool(w, key, b);
                return 0;
        case JSON_TYPE_NULL:
                if ((n = json_read_null(r)) < 0)
                        return n;
                json_null(w, key);
                return 0;
        default: return t;
        }
}

/* Walks data and writes it back: 0 and the text, or the reader's error. */
static int rewrite(const void *data, size_t size, bool compact, char **ret, size_t *ret_len) {
        static const struct json_limits lim = { .max_depth = JSON_WRITER_DEPTH_MAX,
                                                .reject_duplicates = true };
        _cleanup_(json_reader_done) struct json_reader r = {};
        _cleanup_(json_writer_done) struct json_writer w;
        int n;

        json_writer_init(&w, compact);
        n = json_reader_init(&r, data, size, &lim, NULL);
        if (n >= 0)
                n = walk(&r, &w, NULL);
        if (n >= 0)
                n = json_reader_end(&r);
        if (n < 0)
                return n;
        if (json_writer_finish(&w, ret, ret_len) < 0)
                abort();
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const struct json_limits small = { .max_depth = 3, .max_string = 16, .max_input = 256 };
        _cleanup_free_ char *once = NULL, *twice = NULL;
        size_t once_len, twice_len;
        bool compact = size % 2 == 0;
        struct json_error err;
        int valid, r;

        valid = json_validate(data, size, NULL, &err);
        if (valid < 0 && (!documented(valid) || err.offset > size || !err.what))
                abort();
        r = json_validate(data, size, &small, &err);
        if ((r < 0 && !documented(r)) || (r >= 0 && valid < 0))
                abort();

        r = rewrite(data, size, compact, &once, &once_len);
        if (r < 0) {
                if (!documented(r))
                        abort();
                return 0;
        }
        if (valid < 0 || json_validate(once, once_len, NULL, NULL) < 0)
                abort();
        /* what the writer made reads back to the same text */
        if (rewrite(once, once_len, compact, &twice, &twice_len) < 0 || twice_len != once_len ||
            memcmp(once, twice, once_len) != 0)
                abort();
        return 0;
}
