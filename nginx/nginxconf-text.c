/* Text plumbing for the nginx config writer: input bounds, error positions, splices, quoting. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nginx/nginxconf-internal.h"

int nx_fail(const char *text, size_t len, size_t off, int r, const char *msg, struct nginxconf_error *e) {
        size_t line = 1, line_start = 0;

        if (!e)
                return r;
        *e = (struct nginxconf_error){ .message = msg };
        if (off == NX_NONE || !text)
                return r;
        if (off > len)
                off = len;
        for (const char *p = text; (p = memchr(p, '\n', (size_t) (text + off - p))); p++) {
                line++;
                line_start = (size_t) (p - text) + 1;
        }
        e->line = line > UINT32_MAX ? UINT32_MAX : (unsigned) line;
        e->column = (unsigned) (off - line_start + 1);
        return r;
}

int nx_check_input(const char *text, size_t len, struct nginxconf_error *e) {
        size_t start = 0;

        if (!text && len > 0)
                return nx_fail(text, len, NX_NONE, -EINVAL, "no input text", e);
        if (len > NGINXCONF_MAX_INPUT)
                return nx_fail(text, len, NX_NONE, -E2BIG, "input larger than 16 MiB", e);
        while (start < len) {
                const char *nl = memchr(text + start, '\n', len - start);
                size_t end = nl ? (size_t) (nl - text) : len;
                const char *nul = memchr(text + start, '\0', end - start);

                if (nul)
                        return nx_fail(text, len, (size_t) (nul - text), -EINVAL, "NUL byte in input", e);
                if (end - start > NGINXCONF_MAX_LINE)
                        return nx_fail(text, len, start, -E2BIG, "line longer than 64 KiB", e);
                start = end + 1;
        }
        return 0;
}

const char *nx_newline(const char *text, size_t len) {
        const char *nl = len ? memchr(text, '\n', len) : NULL;

        return nl && nl > text && nl[-1] == '\r' ? "\r\n" : "\n";
}

size_t nx_line_start(const char *text, size_t off) {
        while (off > 0 && text[off - 1] != '\n')
                off--;
        return off;
}

size_t nx_indent_len(const char *text, size_t len, size_t line_start) {
        size_t p = line_start;

        while (p < len && (text[p] == ' ' || text[p] == '\t'))
                p++;
        return p - line_start;
}

void nx_buf_done(struct nx_buf *b) {
        free(b->p);
        *b = (struct nx_buf){};
}

void nx_buf_wipe(struct nx_buf *b) {
        if (b->p)
                explicit_bzero(b->p, b->cap);
        nx_buf_done(b);
}

int nx_buf_reserve(struct nx_buf *b, size_t n) {
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

int nx_buf_put(struct nx_buf *b, const char *s, size_t n) {
        int r = nx_buf_reserve(b, n);

        if (r < 0)
                return r;
        if (n > 0)
                memcpy(b->p + b->n, s, n);
        b->n += n;
        b->p[b->n] = '\0';
        return 0;
}

int nx_buf_puts(struct nx_buf *b, const char *s) {
        return nx_buf_put(b, s, strlen(s));
}

void nx_edits_done(struct nx_edits *e) {
        for (size_t i = 0; i < e->n; i++)
                free(e->v[i].ins);
        free(e->v);
        *e = (struct nx_edits){};
}

int nx_edits_add(struct nx_edits *e, size_t off, size_t del, struct nx_buf *b) {
        if (e->n == e->cap) {
                size_t cap = e->cap ? e->cap * 2 : 16;
                struct nx_edit *v = reallocarray(e->v, cap, sizeof(*v));

                if (!v)
                        return -ENOMEM;
                e->v = v;
                e->cap = cap;
        }
        e->v[e->n] = (struct nx_edit){
                .off = off,
                .del = del,
                .seq = e->n,
                .ins = b->p,
                .ins_len = b->n,
        };
        e->n++;
        *b = (struct nx_buf){};
        return 0;
}

static int edit_cmp(const void *a, const void *b) {
        const struct nx_edit *x = a, *y = b;

        if (x->off != y->off)
                return x->off < y->off ? -1 : 1;
        return x->seq < y->seq ? -1 : x->seq > y->seq;
}

int nx_edits_apply(const char *text, size_t len, struct nx_edits *e, char **ret_text, size_t *ret_len,
                   struct nginxconf_error *err) {
        size_t total = len, pos = 0, o = 0;
        char *out;

        if (e->n > 1)
                qsort(e->v, e->n, sizeof(*e->v), edit_cmp);
        for (size_t i = 0; i < e->n; i++) {
                /* Overlapping splices would be a bug in an editor; refuse rather than corrupt. */
                if (e->v[i].off < pos || e->v[i].off + e->v[i].del > len)
                        return nx_fail(text, len, e->v[i].off, -EINVAL, "internal error: overlapping edits",
                                       err);
                pos = e->v[i].off + e->v[i].del;
                total = total - e->v[i].del + e->v[i].ins_len;
        }
        out = malloc(total + 1);
        if (!out)
                return nx_fail(text, len, NX_NONE, -ENOMEM, "out of memory", err);
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

int nx_insert_after(const char *text, size_t len, size_t off, const struct nx_buf *lines,
                    struct nx_edits *e) {
        const char *nl = nx_newline(text, len), *q = NULL;
        struct nx_buf b = {};
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
                r = nx_buf_put(&b, lines->p, lines->n);
                if (r >= 0)
                        r = nx_buf_puts(&b, nl);
        } else {
                /* Other statements follow on this line, or the file ends without a newline. */
                r = nx_buf_puts(&b, nl);
                if (r >= 0)
                        r = nx_buf_put(&b, lines->p, lines->n);
        }
        if (r >= 0)
                r = nx_edits_add(e, at, 0, &b);
        nx_buf_done(&b);
        return r;
}

static bool quote_safe(char ch) {
        return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
               strchr("/._-+:@,=%~", ch);
}

int nx_quote(struct nx_buf *b, const char *v, bool no_dollar) {
        bool bare = *v != '\0';
        int r;

        for (const char *p = v; *p; p++) {
                unsigned char ch = (unsigned char) *p;

                if (ch < 0x20 || ch == 0x7f || (ch == '$' && no_dollar))
                        return -EINVAL;
                if (!quote_safe(*p))
                        bare = false;
        }
        if (bare)
                return nx_buf_puts(b, v);
        r = nx_buf_puts(b, "\"");
        for (const char *p = v; r >= 0 && *p; p++) {
                if (*p == '"' || *p == '\\')
                        r = nx_buf_puts(b, "\\");
                if (r >= 0)
                        r = nx_buf_put(b, p, 1);
        }
        return r < 0 ? r : nx_buf_puts(b, "\"");
}
