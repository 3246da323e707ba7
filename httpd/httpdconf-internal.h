/* Internals of the httpd config writer: input checks, splice lists and the logical-line reader. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "common/cleanup.h"
#include "httpd/httpdconf.h"

#define HX_NONE ((size_t) -1)

/* ---- text helpers (httpdconf-text.c) ---- */

/* Fill *e (if any) for the byte at off (HX_NONE: no position) and return r. */
int hx_fail(const char *text, size_t len, size_t off, int r, const char *msg, struct httpdconf_error *e);
/* Size, NUL and line-length checks every entry point runs first. */
_must_check_ int hx_check_input(const char *text, size_t len, struct httpdconf_error *e);
/* "\r\n" when the first line ends in CRLF, else "\n". */
const char *hx_newline(const char *text, size_t len);
size_t hx_line_start(const char *text, size_t off);
/* Length of the blanks (' ', '\t') that open the line starting at line_start. */
size_t hx_indent_len(const char *text, size_t len, size_t line_start);

struct hx_buf {
        char *p;
        size_t n, cap;
};
void hx_buf_done(struct hx_buf *b);
void hx_buf_wipe(struct hx_buf *b);
_must_check_ int hx_buf_reserve(struct hx_buf *b, size_t n);
_must_check_ int hx_buf_put(struct hx_buf *b, const char *s, size_t n);
_must_check_ int hx_buf_puts(struct hx_buf *b, const char *s);

/* Splices into the original text, applied in offset order (ties in insertion order). */
struct hx_edit {
        size_t off, del, seq;
        char *ins;
        size_t ins_len;
};
struct hx_edits {
        struct hx_edit *v;
        size_t n, cap;
};
void hx_edits_done(struct hx_edits *e);
/* Takes ownership of b's bytes (b is left empty). */
_must_check_ int hx_edits_add(struct hx_edits *e, size_t off, size_t del, struct hx_buf *b);
/* Returns 1 when the result differs from text, 0 when equal, or a negative errno with *err set. */
_must_check_ int hx_edits_apply(const char *text, size_t len, struct hx_edits *e, char **ret_text,
                                size_t *ret_len, struct httpdconf_error *err);
/* Insert lines (already indented, no final newline) on their own line after the one ending at off. */
_must_check_ int hx_insert_after(const char *text, size_t len, size_t off, const struct hx_buf *lines,
                                 struct hx_edits *e);

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
