/* Text plumbing for the config writers: input bounds, error positions, growable buffers, splices. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/text-edit.h"

static int edit_fail(size_t off, int r, const char *msg, struct text_error *ret_error) {
        if (ret_error)
                *ret_error = (struct text_error){ .off = off, .message = msg };
        return r;
}

void text_position(const char *text, size_t len, size_t off, unsigned *ret_line, unsigned *ret_column) {
        size_t line = 1, line_start = 0;

        *ret_line = *ret_column = 0;
        if (off == TEXT_NONE || !text)
                return;
        if (off > len)
                off = len;
        for (const char *p = text; (p = memchr(p, '\n', (size_t) (text + off - p))); p++) {
                line++;
                line_start = (size_t) (p - text) + 1;
        }
        *ret_line = line > UINT32_MAX ? UINT32_MAX : (unsigned) line;
        *ret_column = (unsigned) MIN(off - line_start + 1, (size_t) UINT32_MAX);
}

int text_check_input(const char *text, size_t len, size_t max_input, size_t max_line,
                     struct text_error *ret_error) {
        size_t start = 0;

        if (!text && len > 0)
                return edit_fail(TEXT_NONE, -EINVAL, "no input text", ret_error);
        if (len > max_input)
                return edit_fail(TEXT_NONE, -E2BIG, "input too large", ret_error);
        while (start < len) {
                const char *nl = memchr(text + start, '\n', len - start);
                size_t end = nl ? (size_t) (nl - text) : len;
                const char *nul = memchr(text + start, '\0', end - start);

                if (nul)
                        return edit_fail((size_t) (nul - text), -EINVAL, "NUL byte in input", ret_error);
                if (end - start > max_line)
                        return edit_fail(start, -E2BIG, "line too long", ret_error);
                start = end + 1;
        }
        return 0;
}

const char *text_newline(const char *text, size_t len) {
        const char *nl = len ? memchr(text, '\n', len) : NULL;

        return nl && nl > text && nl[-1] == '\r' ? "\r\n" : "\n";
}

size_t text_line_start(const char *text, size_t off) {
        while (off > 0 && text[off - 1] != '\n')
                off--;
        return off;
}

size_t text_indent_len(const char *text, size_t len, size_t line_start) {
        size_t p = line_start;

        while (p < len && (text[p] == ' ' || text[p] == '\t'))
                p++;
        return p - line_start;
}

void text_buf_done(struct text_buf *b) {
        free(b->p);
        *b = (struct text_buf){};
}

void text_buf_wipe(struct text_buf *b) {
        if (b->p)
                explicit_bzero(b->p, b->cap);
        text_buf_done(b);
}

int text_buf_reserve(struct text_buf *b, size_t n) {
        size_t cap;
        char *p;

        if (n >= SIZE_MAX / 2 - b->n)
                return -ENOMEM;
        if (b->n + n + 1 <= b->cap)
                return 0;
        cap = MAX(MAX(b->cap * 2, b->n + n + 1), (size_t) 64);
        p = realloc(b->p, cap);
        if (!p)
                return -ENOMEM;
        b->p = p;
        b->cap = cap;
        return 0;
}

int text_buf_put(struct text_buf *b, const char *s, size_t n) {
        int r = text_buf_reserve(b, n);

        if (r < 0)
                return r;
        if (n > 0)
                memcpy(b->p + b->n, s, n);
        b->n += n;
        b->p[b->n] = '\0';
        return 0;
}

int text_buf_puts(struct text_buf *b, const char *s) {
        return text_buf_put(b, s, strlen(s));
}

void text_edits_done(struct text_edits *e) {
        for (size_t i = 0; i < e->n; i++)
                free(e->v[i].ins);
        free(e->v);
        *e = (struct text_edits){};
}

int text_edits_add(struct text_edits *e, size_t off, size_t del, struct text_buf *b) {
        if (e->n == e->cap) {
                size_t cap = e->cap ? e->cap * 2 : 16;
                struct text_edit *v = reallocarray(e->v, cap, sizeof(*v));

                if (!v)
                        return -ENOMEM;
                e->v = v;
                e->cap = cap;
        }
        e->v[e->n] = (struct text_edit){
                .off = off,
                .del = del,
                .seq = e->n,
                .ins = b->p,
                .ins_len = b->n,
        };
        e->n++;
        *b = (struct text_buf){};
        return 0;
}

static int edit_cmp(const void *a, const void *b) {
        const struct text_edit *x = a, *y = b;

        if (x->off != y->off)
                return x->off < y->off ? -1 : 1;
        return x->seq < y->seq ? -1 : x->seq > y->seq;
}

int text_edits_apply(const char *text, size_t len, struct text_edits *e, char **ret_text, size_t *ret_len,
                     struct text_error *ret_error) {
        size_t total = len, pos = 0, o = 0;
        char *out;

        if (e->n > 1)
                qsort(e->v, e->n, sizeof(*e->v), edit_cmp);
        for (size_t i = 0; i < e->n; i++) {
                /* Overlapping splices would be a bug in an editor; refuse rather than corrupt. */
                if (e->v[i].off < pos || e->v[i].off + e->v[i].del > len)
                        return edit_fail(e->v[i].off, -EINVAL, "internal error: overlapping edits",
                                         ret_error);
                pos = e->v[i].off + e->v[i].del;
                total = total - e->v[i].del + e->v[i].ins_len;
        }
        out = malloc(total + 1);
        if (!out)
                return edit_fail(TEXT_NONE, -ENOMEM, "out of memory", ret_error);
        pos = 0;
        for (size_t i = 0; i < e->n; i++) {
                memcpy(out + o, text + pos, e->v[i].off - pos);
                o += e->v[i].off - pos;
                if (e->v[i].ins_len)
                        memcpy(out + o, e->v[i].ins, e->v[i].ins_len);
                o += e->v[i].ins_len;
                pos = e->v[i].off + e->v[i].del;
        }
        if (len > pos)
                memcpy(out + o, text + pos, len - pos);
        out[total] = '\0';
        *ret_len = total;
        *ret_text = out;
        return total != len || (len > 0 && memcmp(out, text, len) != 0);
}

int text_insert_after(const char *text, size_t len, size_t off, const struct text_buf *lines,
                      struct text_edits *e) {
        const char *nl = text_newline(text, len), *q = NULL;
        struct text_buf b = {};
        size_t p = off, at = off;
        int r;

        while (p < len && (text[p] == ' ' || text[p] == '\t' || text[p] == '\r'))
                p++;
        if (p >= len || text[p] == '\n' || text[p] == '#') {
                q = memchr(text + p, '\n', len - p);
                at = len; /* the last line, without a newline */
        }
        if (q) {
                at = (size_t) (q - text) + 1;
                r = text_buf_put(&b, lines->p, lines->n);
                if (r >= 0)
                        r = text_buf_puts(&b, nl);
        } else {
                /* Other statements follow on this line, or the file ends without a newline. */
                r = text_buf_puts(&b, nl);
                if (r >= 0)
                        r = text_buf_put(&b, lines->p, lines->n);
        }
        if (r >= 0)
                r = text_edits_add(e, at, 0, &b);
        text_buf_done(&b);
        return r;
}
