/* nginxconf_ensure_include(): the stanza include inside the TLS server {} blocks of a site file. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "nginx/nginxconf-internal.h"

#define INCLUDE_MAX_PATH 1024u

struct server_info {
        bool ssl_on;        /* the deprecated "ssl on;" makes every listen an ssl one */
        bool ssl_port;      /* a "listen … ssl" on the wanted port */
        bool port;          /* any listen on the wanted port */
        bool name;          /* server_name matches (or none was asked for) */
        bool has_include;   /* already includes the stanza */
        size_t indent_line; /* a directive whose indentation the include copies */
};

static bool is_server_block(const struct nx_conf *c, size_t i) {
        const struct nx_stmt *s = &c->stmts[i];

        return s->block && s->nwords == 1 && nx_stmt_is(c, i, "server") &&
               (s->parent == NX_NONE || nx_stmt_is(c, s->parent, "http") ||
                nx_stmt_is(c, s->parent, "stream"));
}

static long parse_port(const char *p) {
        long v = 0;

        if (*p == '\0')
                return -1;
        for (; *p; p++) {
                if (*p < '0' || *p > '9' || v > 65535)
                        return -1;
                v = v * 10 + (*p - '0');
        }
        return v >= 1 && v <= 65535 ? v : -1;
}

/* The port of a listen address: "443", "*:443", "[::]:443", "127.0.0.1:443"; a bare host means 80. */
static long listen_port(const char *a) {
        const char *p;

        if (strncmp(a, "unix:", 5) == 0)
                return -1;
        if (a[0] == '[') {
                p = strchr(a, ']');
                if (!p)
                        return -1;
                return p[1] == ':' ? parse_port(p + 2) : p[1] == '\0' ? 80 : -1;
        }
        p = strrchr(a, ':');
        if (p)
                return parse_port(p + 1);
        return parse_port(a) > 0 ? parse_port(a) : 80;
}

static int scan_listen(const struct nx_conf *c, size_t j, unsigned want, struct server_info *si) {
        const struct nx_stmt *s = &c->stmts[j];
        _cleanup_free_ char *addr = NULL;
        bool ssl = false, port;
        int r;

        if (s->nwords < 2)
                return 0;
        r = nx_word_decode(c, s->word + 1, &addr);
        if (r < 0)
                return r;
        port = want == 0 || listen_port(addr) == (long) want;
        for (size_t w = s->word + 2; w < s->word + s->nwords; w++)
                ssl = ssl || nx_word_eq(c, w, "ssl", false);
        si->port = si->port || port;
        si->ssl_port = si->ssl_port || (port && ssl);
        return 0;
}

static void scan_child(const struct nx_conf *c, size_t j, const struct nginxconf_include_opts *o,
                       struct server_info *si) {
        const struct nx_stmt *s = &c->stmts[j];

        if (nx_stmt_is(c, j, "ssl") && s->nwords == 2)
                si->ssl_on = si->ssl_on || nx_word_eq(c, s->word + 1, "on", false);
        else if (nx_stmt_is(c, j, "server_name") && o->server_name)
                for (size_t w = s->word + 1; w < s->word + s->nwords; w++)
                        si->name = si->name || nx_word_eq(c, w, o->server_name, true);
        else if (nx_stmt_is(c, j, "include") && s->nwords == 2)
                si->has_include = si->has_include || nx_word_eq(c, s->word + 1, o->stanza_path, false);
}

static int server_scan(const struct nx_conf *c, size_t srv, const struct nginxconf_include_opts *o,
                       struct server_info *si) {
        *si = (struct server_info){ .name = !o->server_name, .indent_line = NX_NONE };
        for (size_t j = srv + 1; j < c->nstmts && c->stmts[j].start < c->stmts[srv].close; j++) {
                if (c->stmts[j].parent != srv)
                        continue;
                if (si->indent_line == NX_NONE)
                        si->indent_line = j;
                if (c->stmts[j].block)
                        continue;
                if (nx_stmt_is(c, j, "listen")) {
                        int r = scan_listen(c, j, o->port, si);

                        if (r < 0)
                                return r;
                } else
                        scan_child(c, j, o, si);
        }
        return (si->ssl_port || (si->ssl_on && si->port)) && si->name;
}

static int add_mark(struct text_edits *ed, size_t at) {
        _cleanup_(text_buf_done) struct text_buf b = {};
        int r = text_buf_puts(&b, NGINXCONF_DISABLED_MARK);

        return r < 0 ? r : text_edits_add(ed, at, 0, &b);
}

/* Comment a directive out: the mark goes before it and before the first non-blank byte of each
 * further line it spans; anything after it on its last line moves to a new line. */
static int disable_stmt(const struct nx_conf *c, size_t j, struct text_edits *ed) {
        const struct nx_stmt *s = &c->stmts[j];
        size_t p = s->start, ls = text_line_start(c->text, s->start);
        _cleanup_(text_buf_done) struct text_buf b = {};
        const char *nl;
        int r;

        r = add_mark(ed, s->start);
        while (r >= 0 && (nl = memchr(c->text + p, '\n', s->end - p))) {
                p = (size_t) (nl - c->text) + 1;
                while (p < s->end && (c->text[p] == ' ' || c->text[p] == '\t' || c->text[p] == '\r'))
                        p++;
                if (p < s->end && c->text[p] != '\n')
                        r = add_mark(ed, p);
        }
        for (p = s->end; p < c->len && (c->text[p] == ' ' || c->text[p] == '\t' || c->text[p] == '\r'); p++)
                ;
        if (r < 0 || p >= c->len || c->text[p] == '\n' || c->text[p] == '#')
                return r;
        if ((r = text_buf_puts(&b, text_newline(c->text, c->len))) < 0 ||
            (r = text_buf_put(&b, c->text + ls, text_indent_len(c->text, c->len, ls))) < 0)
                return r;
        return text_edits_add(ed, s->end, 0, &b);
}

static bool is_disabled_include(const struct nx_conf *c, size_t j, const struct nginxconf_include_opts *o) {
        if (!o->disable_includes || c->stmts[j].nwords != 2 || !nx_stmt_is(c, j, "include"))
                return false;
        for (size_t k = 0; o->disable_includes[k]; k++)
                if (nx_word_eq(c, c->stmts[j].word + 1, o->disable_includes[k], false))
                        return true;
        return false;
}

/* The include goes on its own line before the block's '}' (or just before it when other
 * statements share that line), indented like the block's first directive. */
static int add_include(const struct nx_conf *c, size_t srv, const struct server_info *si,
                       const struct nginxconf_include_opts *o, struct text_edits *ed) {
        size_t close = c->stmts[srv].close, ls = text_line_start(c->text, close);
        size_t il = text_line_start(c->text, c->stmts[si->indent_line].start);
        bool own_line = ls + text_indent_len(c->text, c->len, ls) == close;
        _cleanup_(text_buf_done) struct text_buf b = {};
        int r;

        if ((own_line && (r = text_buf_put(&b, c->text + il, text_indent_len(c->text, c->len, il))) < 0) ||
            (r = text_buf_puts(&b, "include ")) < 0 || (r = nx_quote(&b, o->stanza_path, false)) < 0 ||
            (r = text_buf_puts(&b, own_line ? ";" : "; ")) < 0 ||
            (own_line && (r = text_buf_puts(&b, text_newline(c->text, c->len))) < 0))
                return r;
        return text_edits_add(ed, own_line ? ls : close, 0, &b);
}

static int server_edit(const struct nx_conf *c, size_t srv, const struct server_info *si,
                       const struct nginxconf_include_opts *o, struct text_edits *ed) {
        int r = 0;

        for (size_t j = srv + 1; r >= 0 && j < c->nstmts && c->stmts[j].start < c->stmts[srv].close; j++)
                /* A block named like these is not nginx's directive (nginx refuses it); leave it. */
                if (c->stmts[j].parent == srv && !c->stmts[j].block &&
                    (nx_stmt_is(c, j, "ssl_certificate") || nx_stmt_is(c, j, "ssl_certificate_key") ||
                     is_disabled_include(c, j, o)))
                        r = disable_stmt(c, j, ed);
        if (r < 0 || si->has_include)
                return r;
        return add_include(c, srv, si, o, ed);
}

static int include_opts_check(const struct nginxconf_include_opts *o) {
        if (!o || !o->stanza_path || o->stanza_path[0] != '/' || strpbrk(o->stanza_path, "*?[") ||
            strnlen(o->stanza_path, INCLUDE_MAX_PATH + 1) > INCLUDE_MAX_PATH || o->port > 65535)
                return -EINVAL;
        if (o->server_name && (o->server_name[0] == '\0' || strnlen(o->server_name, 256) > 255))
                return -EINVAL;
        for (const char *p = o->stanza_path; *p; p++)
                if ((unsigned char) *p < 0x20 || *p == 0x7f)
                        return -EINVAL;
        for (size_t k = 0; o->disable_includes && o->disable_includes[k]; k++)
                if (k >= 64 || strcmp(o->disable_includes[k], o->stanza_path) == 0)
                        return -EINVAL;
        return 0;
}

static int include_edits(const struct nx_conf *c, const struct nginxconf_include_opts *o,
                         struct text_edits *ed, struct nginxconf_error *e) {
        size_t first = NX_NONE, matched = 0;

        for (size_t i = 0; i < c->nstmts; i++) {
                struct server_info si;
                int r;

                if (!is_server_block(c, i))
                        continue;
                first = first == NX_NONE ? i : first;
                r = server_scan(c, i, o, &si);
                if (r > 0) {
                        matched++;
                        r = server_edit(c, i, &si, o, ed);
                }
                if (r < 0)
                        return nx_fail(c->text, c->len, c->stmts[i].start, r,
                                       "cannot edit this server block", e);
        }
        if (matched > 0)
                return 0;
        if (first == NX_NONE)
                return nx_fail(c->text, c->len, NX_NONE, -ENOENT, "no server block listening with ssl", e);
        return nx_fail(c->text, c->len, c->stmts[first].start, -ENOENT,
                       "no server block listens with ssl on the wanted port and server_name", e);
}

int nginxconf_ensure_include(const char *text, size_t len, const struct nginxconf_include_opts *opts,
                             char **ret_text, size_t *ret_len, struct nginxconf_error *ret_error) {
        _cleanup_(nx_conf_done) struct nx_conf c = {};
        _cleanup_(text_edits_done) struct text_edits ed = {};
        int r;

        if (!ret_text || !ret_len || include_opts_check(opts) < 0)
                return nx_fail(text, len, NX_NONE, -EINVAL, "invalid stanza path, port or server_name",
                               ret_error);
        text = text ? text : (len == 0 ? "" : NULL);
        if ((r = nx_check_input(text, len, ret_error)) < 0 ||
            (r = nx_conf_parse(text, len, &c, ret_error)) < 0 ||
            (r = include_edits(&c, opts, &ed, ret_error)) < 0)
                return r;
        return nx_edits_apply(text, len, &ed, ret_text, ret_len, ret_error);
}
