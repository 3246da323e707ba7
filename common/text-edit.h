/* Text plumbing for the config writers: input bounds, error positions, growable buffers, splices. Pure. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "common/cleanup.h"

#define TEXT_NONE ((size_t) -1)

/* Why a text was refused: the byte offset (TEXT_NONE: no position) and a static message. */
struct text_error {
        size_t off;
        const char *message;
};

/* 1-based line and column (in bytes) of the byte at off; both 0 when off is TEXT_NONE or text NULL. */
void text_position(const char *text, size_t len, size_t off, unsigned *ret_line, unsigned *ret_column);
/* Size, NUL and line-length checks every editor runs first: -EINVAL / -E2BIG with *ret_error set. */
_must_check_ int text_check_input(const char *text, size_t len, size_t max_input, size_t max_line,
                                  struct text_error *ret_error);
/* "\r\n" when the first line ends in CRLF, else "\n". */
const char *text_newline(const char *text, size_t len);
size_t text_line_start(const char *text, size_t off);
/* Length of the blanks (' ', '\t') that open the line starting at line_start. */
size_t text_indent_len(const char *text, size_t len, size_t line_start);

/* A growable byte string, always NUL-terminated once it holds anything. */
struct text_buf {
        char *p;
        size_t n, cap;
};
void text_buf_done(struct text_buf *b);
/* Wipe the whole allocation, then free: for buffers that held a PIN. */
void text_buf_wipe(struct text_buf *b);
_must_check_ int text_buf_reserve(struct text_buf *b, size_t n);
_must_check_ int text_buf_put(struct text_buf *b, const char *s, size_t n);
_must_check_ int text_buf_puts(struct text_buf *b, const char *s);

/* A list of splices into the original text, applied in offset order (ties in insertion order). */
struct text_edit {
        size_t off, del, seq;
        char *ins;
        size_t ins_len;
};
struct text_edits {
        struct text_edit *v;
        size_t n, cap;
};
void text_edits_done(struct text_edits *e);
/* Takes ownership of b's bytes (b is left empty). */
_must_check_ int text_edits_add(struct text_edits *e, size_t off, size_t del, struct text_buf *b);
/* Returns 1 when the result differs from text, 0 when equal, or -EINVAL (overlapping splices) /
 * -ENOMEM with *ret_error set. */
_must_check_ int text_edits_apply(const char *text, size_t len, struct text_edits *e, char **ret_text,
                                  size_t *ret_len, struct text_error *ret_error);
/* Insert lines (each already indented, without newline) on their own line(s) after the statement
 * that ends at off: after the newline when only blanks or a comment follow, else right at off. */
_must_check_ int text_insert_after(const char *text, size_t len, size_t off, const struct text_buf *lines,
                                   struct text_edits *e);
