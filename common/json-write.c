/* The JSON writer: escapes strings, indents, tracks commas, into a growing buffer. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json-internal.h"
#include "common/json.h"

void json_writer_init(struct json_writer *j, bool compact) {
        *j = (struct json_writer){ .compact = compact };
}

void json_writer_done(struct json_writer *j) {
        free(j->buf);
        j->buf = NULL;
        j->len = j->cap = 0;
}

static void put(struct json_writer *j, const char *s, size_t n) {
        if (j->error < 0)
                return;
        if (n + 1 > j->cap - j->len) {
                size_t cap = MAX(j->cap * 2, j->len + n + 1);
                char *p;

                cap = MAX(cap, 256u);
                p = realloc(j->buf, cap);
                if (!p) {
                        j->error = -ENOMEM;
                        return;
                }
                j->buf = p;
                j->cap = cap;
        }
        memcpy(j->buf + j->len, s, n);
        j->len += n;
        j->buf[j->len] = 0;
}

static void puts_(struct json_writer *j, const char *s) {
        put(j, s, strlen(s));
}

static void quoted(struct json_writer *j, const char *s, size_t len) {
        const uint8_t *p = (const uint8_t *) s;
        size_t i = 0;

        put(j, "\"", 1);
        while (i < len) {
                char esc[8];
                uint32_t cp;
                size_t m;

                switch (p[i]) {
                case '"': puts_(j, "\\\""); break;
                case '\\': puts_(j, "\\\\"); break;
                case '\n': puts_(j, "\\n"); break;
                case '\r': puts_(j, "\\r"); break;
                case '\t': puts_(j, "\\t"); break;
                default:
                        if (p[i] < 0x20 || p[i] == 0x7f) {
                                (void) snprintf(esc, sizeof(esc), "\\u%04x", p[i]);
                                puts_(j, esc);
                                break;
                        }
                        m = json_utf8_char(p + i, len - i, &cp);
                        if (m == 0) {
                                /* not UTF-8: one replacement character per byte */
                                puts_(j, "\\ufffd");
                                break;
                        }
                        put(j, s + i, m);
                        i += m;
                        continue;
                }
                i++;
        }
        put(j, "\"", 1);
}

/* Comma, newline and indentation before a value, then the key if there is one. */
static void value_prefix(struct json_writer *j, const char *key) {
        if (j->depth > 0) {
                if (j->need_comma[j->depth])
                        put(j, ",", 1);
                if (!j->compact) {
                        put(j, "\n", 1);
                        for (unsigned i = 0; i < j->depth; i++)
                                put(j, "  ", 2);
                }
        }
        if (j->depth <= JSON_WRITER_DEPTH_MAX)
                j->need_comma[j->depth] = true;
        if (key) {
                quoted(j, key, strlen(key));
                puts_(j, j->compact ? ":" : ": ");
        }
}

static void container_begin(struct json_writer *j, const char *key, char open) {
        value_prefix(j, key);
        put(j, &open, 1);
        if (j->depth >= JSON_WRITER_DEPTH_MAX) {
                if (j->error == 0)
                        j->error = -EINVAL;
                return;
        }
        j->depth++;
        j->need_comma[j->depth] = false;
}

static void container_end(struct json_writer *j, char close) {
        bool had_items;

        if (j->depth == 0) {
                if (j->error == 0)
                        j->error = -EINVAL;
                return;
        }
        had_items = j->need_comma[j->depth];
        j->depth--;
        if (had_items && !j->compact) {
                put(j, "\n", 1);
                for (unsigned i = 0; i < j->depth; i++)
                        put(j, "  ", 2);
        }
        put(j, &close, 1);
}

void json_begin_object(struct json_writer *j, const char *key) {
        container_begin(j, key, '{');
}

void json_end_object(struct json_writer *j) {
        container_end(j, '}');
}

void json_begin_array(struct json_writer *j, const char *key) {
        container_begin(j, key, '[');
}

void json_end_array(struct json_writer *j) {
        container_end(j, ']');
}

void json_string_len(struct json_writer *j, const char *key, const char *s, size_t len) {
        value_prefix(j, key);
        quoted(j, s ? s : "", s ? len : 0);
}

void json_string(struct json_writer *j, const char *key, const char *s) {
        json_string_len(j, key, s, s ? strlen(s) : 0);
}

void json_uint(struct json_writer *j, const char *key, uint64_t v) {
        char buf[24];

        value_prefix(j, key);
        (void) snprintf(buf, sizeof(buf), "%" PRIu64, v);
        puts_(j, buf);
}

void json_int(struct json_writer *j, const char *key, int64_t v) {
        char buf[24];

        value_prefix(j, key);
        (void) snprintf(buf, sizeof(buf), "%" PRId64, v);
        puts_(j, buf);
}

void json_bool(struct json_writer *j, const char *key, bool v) {
        value_prefix(j, key);
        puts_(j, v ? "true" : "false");
}

void json_null(struct json_writer *j, const char *key) {
        value_prefix(j, key);
        puts_(j, "null");
}

int json_writer_finish(struct json_writer *j, char **ret, size_t *ret_len) {
        put(j, j->compact ? "" : "\n", j->compact ? 0 : 1);
        if (j->error == 0 && j->depth != 0)
                j->error = -EINVAL;
        if (j->error < 0) {
                int e = j->error;

                json_writer_done(j);
                return e;
        }
        *ret = TAKE_PTR(j->buf);
        if (ret_len)
                *ret_len = j->len;
        j->len = j->cap = 0;
        return 0;
}
