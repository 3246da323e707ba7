/* Internals of the nginx config writer: input checks, splice lists and the parsed statement list. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "common/cleanup.h"
#include "common/text-edit.h"
#include "nginx/nginxconf.h"

#define NX_NONE TEXT_NONE

/* ---- text helpers (nginxconf-text.c; the rest is common/text-edit.h) ---- */

/* Fill *e (if any) for the byte at off (NX_NONE: no position) and return r. */
int nx_fail(const char *text, size_t len, size_t off, int r, const char *msg, struct nginxconf_error *e);
/* Size, NUL and line-length checks every editor runs first. */
_must_check_ int nx_check_input(const char *text, size_t len, struct nginxconf_error *e);
/* text_edits_apply() with the error reported as a position in text. */
_must_check_ int nx_edits_apply(const char *text, size_t len, struct text_edits *edits, char **ret_text,
                                size_t *ret_len, struct nginxconf_error *e);

/* Quote a value for nginx: bare when it only holds safe characters, else in double quotes with
 * '"' and '\\' escaped. Control characters are refused (-EINVAL); so is '$' when no_dollar. */
_must_check_ int nx_quote(struct text_buf *b, const char *v, bool no_dollar);

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
