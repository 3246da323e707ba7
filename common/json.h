/* Bounded, strict (RFC 8259) JSON: a pull reader over a caller's buffer and a writer into memory. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/cleanup.h"

struct secret_buf;

/* ---- Reader ------------------------------------------------------------------------------------
 *
 * The reader walks the document in order without building a tree: the caller opens an object,
 * asks for its members one by one and reads each value with the function for the type it expects
 * (a member whose value was not read is skipped, with the same caps, by the next call). Nothing
 * is allocated except strings the caller asks for and, with reject_duplicates, the keys seen in
 * the objects the caller iterates.
 *
 * Errors: -EBADMSG (not JSON, or not the type asked for), -E2BIG (a cap), -ERANGE (an integer
 * that does not fit), -ENOTUNIQ (a duplicate key), -ENOMEM, -EINVAL (the caller broke the
 * sequence). The first error sticks: every later call returns it. It is described in the
 * struct json_error passed to json_reader_init(), if any. Error text never holds a value read
 * from the document, only structural keys, so secrets stay out of logs. */

#define JSON_DEPTH_LIMIT        64u /* the most a caller may set max_depth to */
#define JSON_DEFAULT_MAX_DEPTH  32u
#define JSON_DEFAULT_MAX_STRING (256u * 1024u)
#define JSON_DEFAULT_MAX_INPUT  (1024u * 1024u)
#define JSON_KEY_MAX            255u /* longest key json_object_next() hands out, in bytes */
#define JSON_PATH_MAX           128u

struct json_limits {
        unsigned
                max_depth; /* open objects and arrays at once; 0: the default; > JSON_DEPTH_LIMIT: -EINVAL */
        size_t max_string; /* decoded bytes of one string (keys included); 0: the default */
        size_t max_input;  /* bytes of the whole document; 0: the default */
        /* -ENOTUNIQ for a key seen before in the same object, compared decoded ("a" == "\u0061"), in
         * objects the caller iterates with json_object_next() (values skipped are not checked);
         * such an object may hold at most 1024 members (-E2BIG past that). */
        bool reject_duplicates;
};

struct json_error {
        size_t offset;            /* byte offset in the buffer given to json_reader_init() */
        const char *what;         /* static text, e.g. "control character in string" */
        char path[JSON_PATH_MAX]; /* where: "$", "$.Credentials.Token", "$.Tokens[2]" */
};

enum json_type {
        JSON_TYPE_OBJECT,
        JSON_TYPE_ARRAY,
        JSON_TYPE_STRING,
        JSON_TYPE_NUMBER,
        JSON_TYPE_BOOL,
        JSON_TYPE_NULL,
        _JSON_TYPE_MAX,
        _JSON_TYPE_INVALID = -EBADMSG,
};

struct json_keyset;

struct json_frame {
        bool array;
        bool pending;   /* a key or array_next() was taken; its value not read yet */
        size_t count;   /* members or elements so far */
        size_t key_off; /* the raw (undecoded) current key in the input, for error paths */
        size_t key_len;
        struct json_keyset *keys; /* reject_duplicates: keys seen in this object */
};

struct json_reader {
        const uint8_t *data;
        size_t len, pos;
        struct json_limits lim;
        unsigned depth;
        bool top_read; /* the top-level value was started */
        int error;
        struct json_error *err;
        char key[JSON_KEY_MAX + 1];
        struct json_frame stack[JSON_DEPTH_LIMIT + 1];
};

/* Limits may be NULL (all defaults); err may be NULL. -E2BIG if len is over max_input. The reader
 * keeps pointing into data and never copies or wipes it: a caller reading secrets keeps the
 * document itself in a secret_buf. Call json_reader_done() before reusing r. */
_must_check_ int json_reader_init(struct json_reader *r, const void *data, size_t len,
                                  const struct json_limits *lim, struct json_error *err);
/* Frees the duplicate-key sets; safe on a zeroed or half-read reader. */
void json_reader_done(struct json_reader *r);

/* "control character in string at byte 29 of the JSON ($.Credentials.Token)" into buf, for a log line. */
const char *json_error_string(const struct json_error *err, char *buf, size_t size);

/* The type of the next value, without consuming it. */
_must_check_ int json_peek(struct json_reader *r);

_must_check_ int json_object_begin(struct json_reader *r);
/* 1 and the decoded key (NUL-terminated, valid until the next call on r) for the next member,
 * 0 at the closing brace. Keys holding \u0000 or longer than JSON_KEY_MAX are refused. */
_must_check_ int json_object_next(struct json_reader *r, const char **ret_key);
_must_check_ int json_array_begin(struct json_reader *r);
/* 1 when another element follows (read it next), 0 at the closing bracket. */
_must_check_ int json_array_next(struct json_reader *r);

/* Strings are decoded (every escape; surrogate pairs to UTF-8) and must be valid UTF-8; lone
 * surrogates are refused everywhere. A C string refuses \u0000; a secret may hold it. */
_must_check_ int json_read_string(struct json_reader *r, char **ret);
/* Into buf; -E2BIG if it does not fit with its NUL. */
_must_check_ int json_read_string_buf(struct json_reader *r, char *buf, size_t size);
/* Decoded straight into a new secret_buf: no other copy of the value is made. */
_must_check_ int json_read_secret(struct json_reader *r, struct secret_buf **ret);
/* Integers only: a fraction or exponent is -EBADMSG, a value out of range -ERANGE. */
_must_check_ int json_read_int64(struct json_reader *r, int64_t *ret);
_must_check_ int json_read_uint64(struct json_reader *r, uint64_t *ret);
_must_check_ int json_read_bool(struct json_reader *r, bool *ret);
_must_check_ int json_read_null(struct json_reader *r);
/* Any value, checked against the grammar and the caps. */
_must_check_ int json_skip(struct json_reader *r);
/* After the top-level value: only whitespace may follow. */
_must_check_ int json_reader_end(struct json_reader *r);

/* Parses a whole document as one value and checks it ends; for validation and fuzzing. */
_must_check_ int json_validate(const void *data, size_t len, const struct json_limits *lim,
                               struct json_error *err);

/* ---- Writer ------------------------------------------------------------------------------------
 *
 * Appends to a growing buffer; calls do not fail one by one: the first error sticks and
 * json_writer_finish() returns it. Pretty output (two-space indentation, "key": value) unless
 * compact. Strings are escaped: quote, backslash and control characters (and DEL, as \u007f);
 * bytes that are not valid UTF-8 are each replaced by \ufffd, so the output is always valid JSON. */

#define JSON_WRITER_DEPTH_MAX 16

struct json_writer {
        char *buf;
        size_t len, cap;
        unsigned depth;
        bool compact;
        bool need_comma[JSON_WRITER_DEPTH_MAX + 1];
        int error;
};

void json_writer_init(struct json_writer *j, bool compact);
void json_writer_done(struct json_writer *j);

/* key is NULL inside arrays and at the top level. */
void json_begin_object(struct json_writer *j, const char *key);
void json_end_object(struct json_writer *j);
void json_begin_array(struct json_writer *j, const char *key);
void json_end_array(struct json_writer *j);

void json_string(struct json_writer *j, const char *key, const char *s);
/* Bytes that need not be NUL-terminated. */
void json_string_len(struct json_writer *j, const char *key, const char *s, size_t len);
void json_uint(struct json_writer *j, const char *key, uint64_t v);
void json_int(struct json_writer *j, const char *key, int64_t v);
void json_bool(struct json_writer *j, const char *key, bool v);
void json_null(struct json_writer *j, const char *key);

/* Ends the document with a newline (not when compact) and hands out the NUL-terminated text; the
 * writer is emptied. -ENOMEM, or -EINVAL if the nesting was bad. */
_must_check_ int json_writer_finish(struct json_writer *j, char **ret, size_t *ret_len);
