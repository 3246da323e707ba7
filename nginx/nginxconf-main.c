/* nginxconf_ensure_main(): top-level "ssl_engine" and "env" lines of the main nginx.conf. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "nginx/nginxconf-internal.h"

#define MAIN_MAX_ENV 64u

struct main_scan {
        size_t anchor;      /* last top-level directive before the first top-level block */
        size_t first_block; /* first top-level block */
        bool have_engine;
        bool have_env[MAIN_MAX_ENV];
};

static bool env_name_ok(const char *n) {
        size_t len = strnlen(n, 256);

        if (len == 0 || len > 255 || (n[0] >= '0' && n[0] <= '9'))
                return false;
        for (const char *p = n; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                      *p == '_'))
                        return false;
        return true;
}

static bool engine_name_ok(const char *n) {
        size_t len = strnlen(n, 65);

        if (len == 0 || len > 64)
                return false;
        for (const char *p = n; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                      *p == '_' || *p == '-'))
                        return false;
        return true;
}

static int main_opts_check(const struct nginxconf_main_opts *o, size_t *ret_nenv) {
        size_t n = 0;

        if (!engine_name_ok(o->engine ? o->engine : "pkcs11"))
                return -EINVAL;
        for (; o->env && o->env[n]; n++) {
                if (n >= MAIN_MAX_ENV)
                        return -E2BIG;
                if (!env_name_ok(o->env[n]))
                        return -EINVAL;
        }
        *ret_nenv = n;
        return 0;
}

/* "env NAME;" or "env NAME=value;" */
static int env_matches(const struct nx_conf *c, size_t w, const char *name, bool *ret) {
        _cleanup_free_ char *v = NULL;
        size_t n = strlen(name);
        int r;

        r = nx_word_decode(c, w, &v);
        if (r < 0)
                return r;
        *ret = strncmp(v, name, n) == 0 && (v[n] == '\0' || v[n] == '=');
        return 0;
}

static int check_engine(const struct nx_conf *c, size_t i, const char *engine, struct nginxconf_error *e) {
        const struct nx_stmt *s = &c->stmts[i];

        if (s->depth > 0 || s->block)
                return nx_fail(c->text, c->len, s->start, -EINVAL, "ssl_engine is only allowed at top level",
                               e);
        if (s->nwords != 2)
                return nx_fail(c->text, c->len, s->start, -EINVAL, "ssl_engine takes exactly one argument",
                               e);
        if (!nx_word_eq(c, s->word + 1, engine, false))
                return nx_fail(c->text, c->len, c->words[s->word + 1].off, -EEXIST,
                               "ssl_engine already names another engine", e);
        return 0;
}

static int scan_env(const struct nx_conf *c, size_t i, const struct nginxconf_main_opts *o, size_t nenv,
                    struct main_scan *m) {
        for (size_t j = 0; j < nenv; j++) {
                bool match = false;
                int r = env_matches(c, c->stmts[i].word + 1, o->env[j], &match);

                if (r < 0)
                        return r;
                m->have_env[j] = m->have_env[j] || match;
        }
        return 0;
}

static int main_scan(const struct nx_conf *c, const struct nginxconf_main_opts *o, size_t nenv,
                     struct main_scan *m, struct nginxconf_error *e) {
        const char *engine = o->engine ? o->engine : "pkcs11";
        int r;

        *m = (struct main_scan){ .anchor = NX_NONE, .first_block = NX_NONE };
        for (size_t i = 0; i < c->nstmts; i++) {
                const struct nx_stmt *s = &c->stmts[i];

                if (nx_stmt_is(c, i, "ssl_engine")) {
                        r = check_engine(c, i, engine, e);
                        if (r < 0)
                                return r;
                        m->have_engine = true;
                }
                if (s->depth > 0)
                        continue;
                if (!s->block && s->nwords == 2 && nx_stmt_is(c, i, "env")) {
                        r = scan_env(c, i, o, nenv, m);
                        if (r < 0)
                                return nx_fail(c->text, c->len, NX_NONE, r, "out of memory", e);
                }
                if (s->block && m->first_block == NX_NONE)
                        m->first_block = i;
                else if (!s->block && m->first_block == NX_NONE)
                        m->anchor = i;
        }
        return 0;
}

static int add_line(struct text_buf *b, const char *indent, size_t indent_len, const char *nl, const char *a,
                    const char *z) {
        int r = 0;

        if (b->n > 0)
                r = text_buf_puts(b, nl);
        if (r >= 0)
                r = text_buf_put(b, indent, indent_len);
        if (r >= 0)
                r = text_buf_puts(b, a);
        if (r >= 0)
                r = text_buf_puts(b, z);
        if (r >= 0)
                r = text_buf_puts(b, ";");
        return r;
}

static int missing_lines(const struct nx_conf *c, const struct nginxconf_main_opts *o, size_t nenv,
                         const struct main_scan *m, const char *indent, size_t indent_len,
                         struct text_buf *b) {
        const char *nl = text_newline(c->text, c->len);
        int r = 0;

        if (!m->have_engine)
                r = add_line(b, indent, indent_len, nl, "ssl_engine ", o->engine ? o->engine : "pkcs11");
        for (size_t j = 0; r >= 0 && j < nenv; j++) {
                bool dup = false;

                for (size_t k = 0; k < j; k++)
                        dup = dup || strcmp(o->env[k], o->env[j]) == 0;
                if (!m->have_env[j] && !dup)
                        r = add_line(b, indent, indent_len, nl, "env ", o->env[j]);
        }
        return r;
}

/* No top-level directive before the first block: the lines go on their own before that block's
 * line, or at the end of a file without statements. */
static int insert_before(const struct nx_conf *c, size_t at, struct text_buf *b, struct text_edits *ed) {
        const char *nl = text_newline(c->text, c->len);
        _cleanup_(text_buf_done) struct text_buf lead = {};
        int r;

        if (at == c->len && c->len > 0 && c->text[c->len - 1] != '\n') {
                r = text_buf_puts(&lead, nl);
                if (r >= 0)
                        r = text_edits_add(ed, at, 0, &lead);
                if (r < 0)
                        return r;
        }
        r = text_buf_puts(b, nl);
        if (r < 0)
                return r;
        return text_edits_add(ed, at, 0, b);
}

static int main_insert(const struct nx_conf *c, const struct nginxconf_main_opts *o, size_t nenv,
                       const struct main_scan *m, struct text_edits *ed) {
        _cleanup_(text_buf_done) struct text_buf b = {};
        size_t ls = 0, indent = 0;
        int r;

        if (m->anchor != NX_NONE) {
                ls = text_line_start(c->text, c->stmts[m->anchor].start);
                indent = text_indent_len(c->text, c->len, ls);
        }
        r = missing_lines(c, o, nenv, m, c->text + ls, indent, &b);
        if (r < 0 || b.n == 0)
                return r;
        if (m->anchor != NX_NONE)
                return text_insert_after(c->text, c->len, c->stmts[m->anchor].end, &b, ed);
        if (m->first_block != NX_NONE)
                return insert_before(c, text_line_start(c->text, c->stmts[m->first_block].start), &b, ed);
        return insert_before(c, c->len, &b, ed);
}

int nginxconf_ensure_main(const char *text, size_t len, const struct nginxconf_main_opts *opts,
                          char **ret_text, size_t *ret_len, struct nginxconf_error *ret_error) {
        static const struct nginxconf_main_opts defaults = {};
        _cleanup_(nx_conf_done) struct nx_conf c = {};
        _cleanup_(text_edits_done) struct text_edits ed = {};
        struct main_scan m;
        size_t nenv = 0;
        int r;

        if (!ret_text || !ret_len)
                return nx_fail(text, len, NX_NONE, -EINVAL, "no output given", ret_error);
        opts = opts ? opts : &defaults;
        text = text ? text : (len == 0 ? "" : NULL);
        r = main_opts_check(opts, &nenv);
        if (r < 0)
                return nx_fail(text, len, NX_NONE, r, "invalid engine or env name in options", ret_error);
        if ((r = nx_check_input(text, len, ret_error)) < 0 ||
            (r = nx_conf_parse(text, len, &c, ret_error)) < 0 ||
            (r = main_scan(&c, opts, nenv, &m, ret_error)) < 0)
                return r;
        r = main_insert(&c, opts, nenv, &m, &ed);
        if (r < 0)
                return nx_fail(text, len, NX_NONE, r, "out of memory", ret_error);
        return nx_edits_apply(text, len, &ed, ret_text, ret_len, ret_error);
}

int nginxconf_get_pid(const char *text, size_t len, char **ret_pid, struct nginxconf_error *ret_error) {
        _cleanup_(nx_conf_done) struct nx_conf c = {};
        int r;

        if (!ret_pid)
                return nx_fail(text, len, NX_NONE, -EINVAL, "no output given", ret_error);
        text = text ? text : (len == 0 ? "" : NULL);
        if ((r = nx_check_input(text, len, ret_error)) < 0 ||
            (r = nx_conf_parse(text, len, &c, ret_error)) < 0)
                return r;
        for (size_t i = 0; i < c.nstmts; i++) {
                const struct nx_stmt *s = &c.stmts[i];

                if (s->depth > 0 || s->block || !nx_stmt_is(&c, i, "pid"))
                        continue;
                if (s->nwords != 2)
                        return nx_fail(text, len, s->start, -EINVAL, "pid takes exactly one argument",
                                       ret_error);
                r = nx_word_decode(&c, s->word + 1, ret_pid);
                return r < 0 ? nx_fail(text, len, NX_NONE, r, "out of memory", ret_error) : 1;
        }
        *ret_pid = NULL;
        return 0;
}
