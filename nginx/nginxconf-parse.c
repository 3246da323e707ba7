/* A tokenizer and statement splitter for nginx config syntax that keeps byte offsets for splicing. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "nginx/nginxconf-internal.h"

/* Mirrors ngx_conf_read_token() in nginx 1.22: words, quoted strings with backslash escapes,
 * ';', '{', '}', and '#' comments where a token may start. */
enum lex_kind {
        LX_EOF,
        LX_WORD,
        LX_SEMI,
        LX_OPEN,
        LX_CLOSE,
};

struct lex {
        const char *t;
        size_t len, pos;
        struct nginxconf_error *e;
};

static bool is_space(char ch) {
        return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

static int lex_fail(const struct lex *l, size_t off, int r, const char *msg) {
        return nx_fail(l->t, l->len, off, r, msg, l->e);
}

static void skip_blanks(struct lex *l) {
        while (l->pos < l->len) {
                const char *nl;

                if (is_space(l->t[l->pos])) {
                        l->pos++;
                        continue;
                }
                if (l->t[l->pos] != '#')
                        return;
                nl = memchr(l->t + l->pos, '\n', l->len - l->pos);
                l->pos = nl ? (size_t) (nl - l->t) + 1 : l->len;
        }
}

static int lex_quoted(struct lex *l) {
        char q = l->t[l->pos];
        size_t i = l->pos + 1;

        while (i < l->len && l->t[i] != q)
                i += l->t[i] == '\\' ? 2 : 1;
        if (i >= l->len)
                return lex_fail(l, l->pos, -EINVAL, "unterminated quoted string");
        i++;
        /* nginx wants a separator after the closing quote; ')' starts the next word. */
        if (i < l->len && !is_space(l->t[i]) && !strchr(";{)", l->t[i]))
                return lex_fail(l, i, -EINVAL, "unexpected character after quoted string");
        l->pos = i;
        return 0;
}

static void lex_word(struct lex *l) {
        size_t i = l->pos;
        bool variable = false;

        while (i < l->len) {
                char ch = l->t[i];

                if (ch == '{' && variable) { /* "${name}" */
                        i++;
                        continue;
                }
                variable = false;
                if (ch == '\\') {
                        i += 2;
                        continue;
                }
                if (is_space(ch) || ch == ';' || ch == '{')
                        break;
                variable = ch == '$';
                i++;
        }
        l->pos = MIN(i, l->len);
}

static int lex_next(struct lex *l, enum lex_kind *ret_kind, size_t *ret_off) {
        char ch;

        skip_blanks(l);
        *ret_off = l->pos;
        if (l->pos >= l->len) {
                *ret_kind = LX_EOF;
                return 0;
        }
        ch = l->t[l->pos];
        *ret_kind = ch == ';' ? LX_SEMI : ch == '{' ? LX_OPEN : ch == '}' ? LX_CLOSE : LX_WORD;
        if (*ret_kind != LX_WORD) {
                l->pos++;
                return 0;
        }
        if (ch == '"' || ch == '\'')
                return lex_quoted(l);
        lex_word(l);
        return 0;
}

static int push_word(struct nx_conf *c, size_t off, size_t end) {
        if (c->nwords == c->cap_words) {
                size_t cap = c->cap_words ? c->cap_words * 2 : 64;
                struct nx_word *v = reallocarray(c->words, cap, sizeof(*v));

                if (!v)
                        return -ENOMEM;
                c->words = v;
                c->cap_words = cap;
        }
        c->words[c->nwords++] = (struct nx_word){ .off = off, .len = end - off };
        return 0;
}

static int push_stmt(struct nx_conf *c, const struct nx_stmt *s) {
        if (c->nstmts == c->cap_stmts) {
                size_t cap = c->cap_stmts ? c->cap_stmts * 2 : 32;
                struct nx_stmt *v = reallocarray(c->stmts, cap, sizeof(*v));

                if (!v)
                        return -ENOMEM;
                c->stmts = v;
                c->cap_stmts = cap;
        }
        c->stmts[c->nstmts++] = *s;
        return 0;
}

struct parse_state {
        struct lex l;
        size_t first; /* first word of the statement being read, NX_NONE between statements */
        size_t stack[NGINXCONF_MAX_DEPTH];
        unsigned depth;
};

static int end_stmt(struct nx_conf *c, struct parse_state *ps, size_t off, bool block) {
        struct nx_stmt s;
        int r;

        if (ps->first == NX_NONE)
                return lex_fail(&ps->l, off, -EINVAL, block ? "unexpected \"{\"" : "unexpected \";\"");
        if (block && ps->depth >= NGINXCONF_MAX_DEPTH)
                return lex_fail(&ps->l, off, -E2BIG, "blocks nested too deeply");
        s = (struct nx_stmt){
                .word = ps->first,
                .nwords = c->nwords - ps->first,
                .start = c->words[ps->first].off,
                .end = off + 1,
                .parent = ps->depth > 0 ? ps->stack[ps->depth - 1] : NX_NONE,
                .close = NX_NONE,
                .depth = ps->depth,
                .block = block,
        };
        r = push_stmt(c, &s);
        if (r < 0)
                return r;
        if (block)
                ps->stack[ps->depth++] = c->nstmts - 1;
        ps->first = NX_NONE;
        return 0;
}

static int close_block(struct nx_conf *c, struct parse_state *ps, size_t off) {
        if (ps->first != NX_NONE || ps->depth == 0)
                return lex_fail(&ps->l, off, -EINVAL, "unexpected \"}\"");
        c->stmts[ps->stack[--ps->depth]].close = off;
        return 0;
}

static int at_eof(struct nx_conf *c, struct parse_state *ps) {
        if (ps->first != NX_NONE)
                return lex_fail(&ps->l, c->words[ps->first].off, -EINVAL,
                                "unexpected end of file, expecting \";\" or \"}\"");
        if (ps->depth > 0)
                return lex_fail(&ps->l, c->stmts[ps->stack[ps->depth - 1]].end - 1, -EINVAL,
                                "unexpected end of file, expecting \"}\" for this block");
        return 0;
}

int nx_conf_parse(const char *text, size_t len, struct nx_conf *c, struct nginxconf_error *e) {
        struct parse_state ps = { .l = { .t = text, .len = len, .e = e }, .first = NX_NONE };

        *c = (struct nx_conf){ .text = text, .len = len };
        for (;;) {
                enum lex_kind kind;
                size_t off;
                int r;

                r = lex_next(&ps.l, &kind, &off);
                if (r < 0)
                        return r;
                switch (kind) {
                case LX_EOF: return at_eof(c, &ps);
                case LX_WORD:
                        r = push_word(c, off, ps.l.pos);
                        if (r >= 0 && ps.first == NX_NONE)
                                ps.first = c->nwords - 1;
                        break;
                case LX_SEMI:
                case LX_OPEN: r = end_stmt(c, &ps, off, kind == LX_OPEN); break;
                case LX_CLOSE: r = close_block(c, &ps, off); break;
                }
                if (r < 0)
                        return r;
        }
}

void nx_conf_done(struct nx_conf *c) {
        free(c->words);
        free(c->stmts);
        *c = (struct nx_conf){};
}

/* Iterates over a word's decoded bytes: ngx_conf_read_token() unescapes \" \' \\ \t \r \n and
 * keeps any other backslash. */
struct decoder {
        const char *p, *end;
};

static struct decoder decoder_init(const struct nx_conf *c, size_t w) {
        const char *s = c->text + c->words[w].off;
        size_t n = c->words[w].len;

        if (n >= 2 && (s[0] == '"' || s[0] == '\''))
                return (struct decoder){ s + 1, s + n - 1 };
        return (struct decoder){ s, s + n };
}

static int decoder_next(struct decoder *d) {
        unsigned char ch;

        if (d->p >= d->end)
                return -1;
        ch = (unsigned char) *d->p++;
        if (ch != '\\' || d->p >= d->end)
                return ch;
        switch (*d->p) {
        case '"':
        case '\'':
        case '\\': return (unsigned char) *d->p++;
        case 't': d->p++; return '\t';
        case 'r': d->p++; return '\r';
        case 'n': d->p++; return '\n';
        default: return ch;
        }
}

int nx_word_decode(const struct nx_conf *c, size_t w, char **ret) {
        struct decoder d = decoder_init(c, w);
        char *out = malloc(c->words[w].len + 1);
        size_t n = 0;
        int ch;

        if (!out)
                return -ENOMEM;
        while ((ch = decoder_next(&d)) >= 0)
                out[n++] = (char) ch;
        out[n] = '\0';
        *ret = out;
        return 0;
}

static int ascii_lower(int ch) {
        return ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch;
}

bool nx_word_eq(const struct nx_conf *c, size_t w, const char *s, bool ci) {
        struct decoder d = decoder_init(c, w);

        for (;; s++) {
                int ch = decoder_next(&d);

                if (ch < 0 || *s == '\0')
                        return ch < 0 && *s == '\0';
                if (ci ? ascii_lower(ch) != ascii_lower((unsigned char) *s) : ch != (unsigned char) *s)
                        return false;
        }
}

bool nx_stmt_is(const struct nx_conf *c, size_t i, const char *name) {
        return nx_word_eq(c, c->stmts[i].word, name, false);
}
