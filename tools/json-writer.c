/* A tiny streaming JSON printer for `enclave-acm status --json`: escapes strings, indents, tracks commas. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "tools/json-writer.h"

void json_writer_init(struct json_writer *j, FILE *f) {
        *j = (struct json_writer){ .f = f };
}

void json_print_quoted(FILE *f, const char *s, size_t len) {
        fputc('"', f);
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char) s[i];

                switch (c) {
                case '"': fputs("\\\"", f); break;
                case '\\': fputs("\\\\", f); break;
                case '\n': fputs("\\n", f); break;
                case '\r': fputs("\\r", f); break;
                case '\t': fputs("\\t", f); break;
                default:
                        if (c < 0x20 || c == 0x7f)
                                fprintf(f, "\\u%04x", c);
                        else
                                fputc(c, f);
                }
        }
        fputc('"', f);
}

/* Comma, newline and indentation before a value, then the key if there is one. */
static void value_prefix(struct json_writer *j, const char *key) {
        if (j->depth > 0) {
                if (j->need_comma[j->depth])
                        fputc(',', j->f);
                fputc('\n', j->f);
                for (unsigned i = 0; i < j->depth; i++)
                        fputs("  ", j->f);
        }
        if (j->depth <= JSON_DEPTH_MAX)
                j->need_comma[j->depth] = true;
        if (key) {
                json_print_quoted(j->f, key, strlen(key));
                fputs(": ", j->f);
        }
}

static void container_begin(struct json_writer *j, const char *key, char open) {
        value_prefix(j, key);
        fputc(open, j->f);
        if (j->depth >= JSON_DEPTH_MAX) {
                j->overflow = true;
                return;
        }
        j->depth++;
        j->need_comma[j->depth] = false;
}

static void container_end(struct json_writer *j, char close) {
        bool had_items;

        if (j->depth == 0) {
                j->overflow = true;
                return;
        }
        had_items = j->need_comma[j->depth];
        j->depth--;
        if (had_items) {
                fputc('\n', j->f);
                for (unsigned i = 0; i < j->depth; i++)
                        fputs("  ", j->f);
        }
        fputc(close, j->f);
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
        json_print_quoted(j->f, s ? s : "", s ? len : 0);
}

void json_string(struct json_writer *j, const char *key, const char *s) {
        json_string_len(j, key, s, s ? strlen(s) : 0);
}

void json_uint(struct json_writer *j, const char *key, uint64_t v) {
        value_prefix(j, key);
        fprintf(j->f, "%" PRIu64, v);
}

void json_bool(struct json_writer *j, const char *key, bool v) {
        value_prefix(j, key);
        fputs(v ? "true" : "false", j->f);
}

void json_null(struct json_writer *j, const char *key) {
        value_prefix(j, key);
        fputs("null", j->f);
}

int json_writer_finish(struct json_writer *j) {
        fputc('\n', j->f);
        if (j->overflow || j->depth != 0)
                return -EINVAL;
        if (fflush(j->f) != 0 || ferror(j->f))
                return -EIO;
        return 0;
}
