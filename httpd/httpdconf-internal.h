/* Internals of the httpd config writer: input checks, splice lists and the logical-line reader. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "common/cleanup.h"
#include "common/text-edit.h"
#include "httpd/httpdconf.h"

#define HX_NONE TEXT_NONE

/* ---- text helpers (httpdconf-text.c; the rest is common/text-edit.h) ---- */

/* Fill *e (if any) for the byte at off (HX_NONE: no position) and return r. */
int hx_fail(const char *text, size_t len, size_t off, int r, const char *msg, struct httpdconf_error *e);
/* Size, NUL and line-length checks every entry point runs first. */
_must_check_ int hx_check_input(const char *text, size_t len, struct httpdconf_error *e);
/* text_edits_apply() with the error reported as a position in text. */
_must_check_ int hx_edits_apply(const char *text, size_t len, struct text_edits *edits, char **ret_text,
                                size_t *ret_len, struct httpdconf_error *e);

/* ---- logical-line reader (httpdconf-parse.c) ---- */

enum hx_kind {
        HX_BLANK,
        HX_COMMENT,
        HX_DIRECTIVE,
        HX_OPEN,  /* <Name args> */
        HX_CLOSE, /* </Name> */
};

/* One logical line: physical lines joined by a trailing backslash, as ap_cfg_getline() does. */
struct hx_line {
        size_t start;          /* first byte (start of a physical line) */
        size_t end;            /* the '\n' that ends it, or the text length */
        size_t name, name_len; /* directive name, or section name without "<", "</", ">" */
        size_t args, args_end; /* arguments, trailing blanks and a section's '>' excluded */
        size_t opener;         /* HX_CLOSE: start of the matching opening line */
        enum hx_kind kind;
};

struct hx_section {
        size_t name, name_len;
        size_t start; /* where its opening line starts */
};

struct hx_reader {
        const char *t;
        size_t len, pos;
        struct hx_section stack[HTTPDCONF_MAX_DEPTH];
        unsigned depth;
        size_t vhost; /* opening line of the enclosing <VirtualHost>, HX_NONE outside */
        struct httpdconf_error *e;
};

void hx_reader_init(struct hx_reader *r, const char *text, size_t len, struct httpdconf_error *e);
/* Read the next logical line and track sections (r->vhost is already updated for the line: set
 * on the <VirtualHost> line, unset on its </VirtualHost>). Returns 1 with *l set, 0 at a clean
 * end of input, or -EINVAL / -E2BIG with the error set. */
_must_check_ int hx_reader_next(struct hx_reader *r, struct hx_line *l);

/* Next word in [*pos, end), quotes included; 0 when none is left. Quotes are checked by the reader. */
bool hx_word_next(const char *t, size_t *pos, size_t end, size_t *ret_off, size_t *ret_len);
/* The word (quotes removed, \" inside "…" unescaped) equals s; ci: ASCII case-insensitive. */
bool hx_word_eq(const char *t, size_t off, size_t len, const char *s, bool ci);
bool hx_name_is(const char *t, const struct hx_line *l, const char *name);
/* The word with quotes removed and \" unescaped, newly allocated. */
_must_check_ int hx_word_decode(const char *t, size_t off, size_t len, char **ret);
