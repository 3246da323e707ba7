/* A tiny streaming JSON printer for `enclave-acm status --json`: escapes strings, indents, tracks commas. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define JSON_DEPTH_MAX 16

struct json_writer {
        FILE *f;
        unsigned depth;
        bool need_comma[JSON_DEPTH_MAX + 1];
        bool overflow; /* nesting went past JSON_DEPTH_MAX: output is invalid */
};

void json_writer_init(struct json_writer *j, FILE *f);

/* key is NULL inside arrays and at the top level. */
void json_begin_object(struct json_writer *j, const char *key);
void json_end_object(struct json_writer *j);
void json_begin_array(struct json_writer *j, const char *key);
void json_end_array(struct json_writer *j);

void json_string(struct json_writer *j, const char *key, const char *s);
/* Bytes that need not be NUL-terminated. */
void json_string_len(struct json_writer *j, const char *key, const char *s, size_t len);
void json_uint(struct json_writer *j, const char *key, uint64_t v);
void json_bool(struct json_writer *j, const char *key, bool v);
void json_null(struct json_writer *j, const char *key);

/* Ends the document with a newline; -EIO if the stream failed, -EINVAL if the nesting was bad. */
int json_writer_finish(struct json_writer *j);

/* Writes s as a quoted JSON string: quote, backslash and control characters escaped,
 * other bytes (UTF-8) passed through. Exposed for tests. */
void json_print_quoted(FILE *f, const char *s, size_t len);
