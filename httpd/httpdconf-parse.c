/* Reads Apache httpd config text as logical lines and sections, the way ap_build_config() sees it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "httpd/httpdconf-internal.h"

/* Inside a logical line every newline follows a continuation backslash (ap_cfg_getline() joins
 * "\\\n" and "\\\r\n"); we read those as blanks between words. */
static size_t sep_len(const char *t, size_t i, size_t end) {
        if (i >= end)
                return 0;
        if (strchr(" \t\r\n\f\v", t[i]) && t[i] != '\0')
                return 1;
        if (t[i] == '\\' && i + 1 < end && t[i + 1] == '\n')
                return 2;
        if (t[i] == '\\' && i + 2 < end && t[i + 1] == '\r' && t[i + 2] == '\n')
                return 3;
        return 0;
}

static size_t skip_seps(const char *t, size_t p, size_t end) {
        size_t n;

        while ((n = sep_len(t, p, end)) > 0)
                p += n;
        return p;
}

/* End of the word at p, like ap_getword_conf(): a quoted word runs to the matching quote (a
 * backslash escapes that quote), any other word to the next blank. */
static int word_end(const char *t, size_t p, size_t end, size_t *ret) {
        char q = t[p];
        size_t i = p + 1;

        if (q != '"' && q != '\'') {
                while (i < end && sep_len(t, i, end) == 0)
                        i++;
                *ret = i;
                return 0;
        }
        while (i < end && t[i] != q)
                i += t[i] == '\\' && i + 1 < end && t[i + 1] == q ? 2 : 1;
        if (i >= end)
                return -EINVAL;
        *ret = i + 1;
        return 0;
}

/* A physical line continues when it ends in a backslash that is not the logical line's first
 * byte and not itself escaped ("[^\\]\\[\r]\n" in ap_cfg_getline()). */
static size_t logical_end(const char *t, size_t len, size_t start) {
        size_t p = start;

        for (;;) {
                const char *nl = memchr(t + p, '\n', len - p);
                size_t q, b;

                if (!nl)
                        return len;
                q = b = (size_t) (nl - t);
                if (b > start && t[b - 1] == '\r')
                        b--;
                if (!(b >= start + 2 && t[b - 1] == '\\' && t[b - 2] != '\\'))
                        return q;
                p = q + 1;
        }
}

static size_t trim_end(const char *t, size_t s, size_t e) {
        while (e > s) {
                char ch = t[e - 1];

                if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\f' || ch == '\v') {
                        e--;
                } else if (ch == '\n') {
                        e--;
                        if (e > s && t[e - 1] == '\r')
                                e--;
                        if (e > s && t[e - 1] == '\\')
                                e--;
                } else
                        break;
        }
        return e;
}

static int reader_fail(const struct hx_reader *r, size_t off, int err, const char *msg) {
        return hx_fail(r->t, r->len, off, err, msg, r->e);
}

static int check_words(const struct hx_reader *r, size_t p, size_t end) {
        size_t wend;

        for (p = skip_seps(r->t, p, end); p < end; p = skip_seps(r->t, wend, end))
                if (word_end(r->t, p, end, &wend) < 0)
                        return reader_fail(r, p, -EINVAL, "unterminated quoted string");
        return 0;
}

static int parse_section(const struct hx_reader *r, size_t p, size_t wend, size_t te, struct hx_line *l) {
        const char *t = r->t;
        bool closing = p + 1 < wend && t[p + 1] == '/';
        size_t ns = p + (closing ? 2 : 1), ne = ns;

        while (ne < wend && t[ne] != '>')
                ne++;
        if (t[te - 1] != '>')
                return reader_fail(r, p, -EINVAL, "section line does not end with '>'");
        if (ne == ns)
                return reader_fail(r, p, -EINVAL, "section without a name");
        l->kind = closing ? HX_CLOSE : HX_OPEN;
        l->name = ns;
        l->name_len = ne - ns;
        l->args = ne < wend ? te - 1 : skip_seps(t, wend, te - 1);
        l->args_end = MAX(l->args, trim_end(t, l->args, te - 1));
        return check_words(r, l->args, l->args_end);
}

static int parse_line(const struct hx_reader *r, size_t start, size_t end, struct hx_line *l) {
        const char *t = r->t;
        size_t p = skip_seps(t, start, end), wend, te;

        *l = (struct hx_line){ .start = start, .end = end, .opener = HX_NONE, .kind = HX_BLANK };
        if (p >= end)
                return 0;
        if (t[p] == '#') {
                l->kind = HX_COMMENT;
                return 0;
        }
        if (word_end(t, p, end, &wend) < 0)
                return reader_fail(r, p, -EINVAL, "unterminated quoted string");
        te = trim_end(t, p, end);
        if (t[p] == '<')
                return parse_section(r, p, wend, te, l);
        l->kind = HX_DIRECTIVE;
        l->name = p;
        l->name_len = wend - p;
        l->args = MIN(skip_seps(t, wend, end), te);
        l->args_end = te;
        return check_words(r, l->args, l->args_end);
}

void hx_reader_init(struct hx_reader *r, const char *text, size_t len, struct httpdconf_error *e) {
        *r = (struct hx_reader){ .t = text, .len = len, .vhost = HX_NONE, .e = e };
}

static int track_open(struct hx_reader *r, const struct hx_line *l) {
        if (r->depth >= HTTPDCONF_MAX_DEPTH)
                return reader_fail(r, l->start, -E2BIG, "sections nested too deeply");
        if (hx_name_is(r->t, l, "VirtualHost")) {
                if (r->vhost != HX_NONE)
                        return reader_fail(r, l->start, -EINVAL,
                                           "<VirtualHost> inside another <VirtualHost>");
                r->vhost = l->start;
        }
        r->stack[r->depth++] =
                (struct hx_section){ .name = l->name, .name_len = l->name_len, .start = l->start };
        return 0;
}

static int track_close(struct hx_reader *r, struct hx_line *l) {
        const struct hx_section *top;

        if (r->depth == 0)
                return reader_fail(r, l->start, -EINVAL, "closing tag without an open section");
        top = &r->stack[r->depth - 1];
        if (top->name_len != l->name_len || strncasecmp(r->t + top->name, r->t + l->name, l->name_len) != 0)
                return reader_fail(r, l->start, -EINVAL, "closing tag does not match the open section");
        l->opener = top->start;
        r->depth--;
        if (hx_name_is(r->t, l, "VirtualHost"))
                r->vhost = HX_NONE;
        return 0;
}

int hx_reader_next(struct hx_reader *r, struct hx_line *l) {
        size_t start = r->pos, end;
        int err;

        if (start >= r->len) {
                if (r->depth > 0)
                        return reader_fail(r, r->stack[r->depth - 1].start, -EINVAL,
                                           "section is never closed");
                return 0;
        }
        end = logical_end(r->t, r->len, start);
        r->pos = end < r->len ? end + 1 : r->len;
        err = parse_line(r, start, end, l);
        if (err < 0)
                return err;
        if (l->kind == HX_OPEN)
                err = track_open(r, l);
        else if (l->kind == HX_CLOSE)
                err = track_close(r, l);
        return err < 0 ? err : 1;
}

bool hx_word_next(const char *t, size_t *pos, size_t end, size_t *ret_off, size_t *ret_len) {
        size_t p = skip_seps(t, *pos, end), wend;

        if (p >= end)
                return false;
        if (word_end(t, p, end, &wend) < 0)
                wend = end;
        *ret_off = p;
        *ret_len = wend - p;
        *pos = wend;
        return true;
}

int hx_word_decode(const char *t, size_t off, size_t len, char **ret) {
        char q = len >= 2 && (t[off] == '"' || t[off] == '\'') ? t[off] : 0;
        size_t i = off + (q ? 1 : 0), end = off + len - (q ? 1 : 0), n = 0;
        char *out = malloc(len + 1);

        if (!out)
                return -ENOMEM;
        for (; i < end; i++) {
                if (q && t[i] == '\\' && i + 1 < end && t[i + 1] == q)
                        i++;
                out[n++] = t[i];
        }
        out[n] = '\0';
        *ret = out;
        return 0;
}

static int ascii_lower(char ch) {
        return ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : (unsigned char) ch;
}

bool hx_word_eq(const char *t, size_t off, size_t len, const char *s, bool ci) {
        char q = len >= 2 && (t[off] == '"' || t[off] == '\'') ? t[off] : 0;
        size_t end = off + len - (q ? 1 : 0);

        for (size_t i = off + (q ? 1 : 0); i < end; i++, s++) {
                if (q && t[i] == '\\' && i + 1 < end && t[i + 1] == q)
                        i++;
                if (*s == '\0' || (ci ? ascii_lower(t[i]) != ascii_lower(*s) : t[i] != *s))
                        return false;
        }
        return *s == '\0';
}

bool hx_name_is(const char *t, const struct hx_line *l, const char *name) {
        return l->name_len == strlen(name) && strncasecmp(t + l->name, name, l->name_len) == 0;
}

int httpdconf_check_syntax(const char *text, size_t len, struct httpdconf_error *ret_error) {
        struct hx_reader r;
        struct hx_line l;
        int err;

        text = text ? text : (len == 0 ? "" : NULL);
        err = hx_check_input(text, len, ret_error);
        if (err < 0)
                return err;
        hx_reader_init(&r, text, len, ret_error);
        while ((err = hx_reader_next(&r, &l)) > 0)
                ;
        return err;
}
