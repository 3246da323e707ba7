/* Internals of the nginx config writer: input checks, splice lists and the parsed statement list. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "common/cleanup.h"
#include "nginx/nginxconf.h"

#define NX_NONE ((size_t) -1)

/* ---- text helpers (nginxconf-text.c) ---- */

/* Fill *e (if any) for the byte at off (NX_NONE: no position) and return r. */
int nx_fail(const char *text, size_t len, size_t off, int r, const char *msg, struct nginxconf_error *e);
/* Size, NUL and line-length checks every editor runs first. */
_must_check_ int nx_check_input(const char *text, size_t len, struct nginxconf_error *e);
/* "\r\n" when the first line ends in CRLF, else "\n". */
const char *nx_newline(const char *text, size_t len);
size_t nx_line_start(const char *text, size_t off);
/* Length of the blanks (' ', '\t') that open the line starting at line_start. */
size_t nx_indent_len(const char *text, size_t len, size_t line_start);

/* A growable byte string. */
struct nx_buf {
        char *p;
        size_t n, cap;
};
void nx_buf_done(struct nx_buf *b);
/* Wipe the whole allocation, then free: for buffers that held a PIN. */
void nx_buf_wipe(struct nx_buf *b);
_must_check_ int nx_buf_reserve(struct nx_buf *b, size_t n);
_must_check_ int nx_buf_put(struct nx_buf *b, const char *s, size_t n);
_must_check_ int nx_buf_puts(struct nx_buf *b, const char *s);

/* A list of splices into the original text, applied in offset order (ties in insertion order). */
struct nx_edit {
        size_t off, del, seq;
        char *ins;
        size_t ins_len;
};
struct nx_edits {
        struct nx_edit *v;
        size_t n, cap;
};
void nx_edits_done(struct nx_edits *e);
/* Takes ownership of b's bytes (b is left empty). */
_must_check_ int nx_edits_add(struct nx_edits *e, size_t off, size_t del, struct nx_buf *b);
/* Returns 1 when the result differs from text, 0 when equal, or a negative errno with *err set. */
_must_check_ int nx_edits_apply(const char *text, size_t len, struct nx_edits *e, char **ret_text,
                                size_t *ret_len, struct nginxconf_error *err);
/* Insert lines (each already indented, without newline) on their own line(s) after the statement
 * that ends at off: after the newline when only blanks or a comment follow, else right at off. */
_must_check_ int nx_insert_after(const char *text, size_t len, size_t off, const struct nx_buf *lines,
                                 struct nx_edits *e);

/* Quote a value for nginx: bare when it only holds safe characters, else in double quotes with
 * '"' and '\\' escaped. Control characters are refused (-EINVAL); so is '$' when no_dollar. */
_must_check_ int nx_quote(struct nx_buf *b, const char *v, bool no_dollar);

/* ---- parser (nginxconf-parse.c) ---- */

struct nx_word {
        size_t off, len; /* raw bytes, quotes included */
};

struct nx_stmt {
        size_t word, nwords; /* range in nx_conf.words; the first word is the directive name */
        size_t start, end;   /* first byte of the name .. one past the ';' or '{' */
        size_t parent;       /* enclosing block statement, NX_NONE at top level */
        size_t close;        /* blocks: offset of the matching '}', else NX_NONE */
        unsigned depth;
        bool block;
};

struct nx_conf {
        const char *text;
        size_t len;
        struct nx_word *words;
        size_t nwords, cap_words;
        struct nx_stmt *stmts;
        size_t nstmts, cap_stmts;
};

/* Tokenize and split into statements like nginx's ngx_conf_read_token(); errors carry line:col. */
_must_check_ int nx_conf_parse(const char *text, size_t len, struct nx_conf *c, struct nginxconf_error *e);
void nx_conf_done(struct nx_conf *c);
/* Decoded value of a word (quotes removed, \" \' \\ \t \r \n unescaped), newly allocated. */
_must_check_ int nx_word_decode(const struct nx_conf *c, size_t w, char **ret);
/* Word equals s once decoded (ci: ASCII case-insensitive); no allocation. */
bool nx_word_eq(const struct nx_conf *c, size_t w, const char *s, bool ci);
bool nx_stmt_is(const struct nx_conf *c, size_t i, const char *name);
