/* httpdconf_set_cert(): point SSLCertificateFile / SSLCertificateKeyFile at a token, add SSLCryptoDevice. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "httpd/httpdconf-internal.h"

struct span {
        size_t start, end;
};

/* What one <VirtualHost>, or the server config outside them, holds. */
struct scope {
        size_t opener; /* start of the <VirtualHost> line; HX_NONE for the server config */
        struct hx_line cert, key;
        bool has_cert, has_key, port_ok, name_ok;
        struct span *extra; /* further SSLCertificate{,Key}File lines, to disable */
        size_t n_extra, cap_extra;
};

struct set_state {
        const char *t;
        size_t len;
        const struct httpdconf_cert_opts *o;
        const char *device;
        struct text_edits ed;
        struct scope top, vh;
        size_t targets;
        size_t anchor;         /* start of the earliest edited scope: where SSLCryptoDevice goes */
        size_t selected_empty; /* a selected <VirtualHost> without SSLCertificateFile */
        bool have_device;
        struct httpdconf_error *e;
};

static void scope_reset(struct scope *sc, size_t opener) {
        struct span *extra = sc->extra;
        size_t cap = sc->cap_extra;

        *sc = (struct scope){ .opener = opener, .extra = extra, .cap_extra = cap };
}

static void set_state_done(struct set_state *st) {
        free(st->top.extra);
        free(st->vh.extra);
        text_edits_done(&st->ed);
}

static int scope_record(struct scope *sc, const struct hx_line *l, bool key) {
        if (!(key ? sc->has_key : sc->has_cert)) {
                *(key ? &sc->key : &sc->cert) = *l;
                *(key ? &sc->has_key : &sc->has_cert) = true;
                return 0;
        }
        if (sc->n_extra == sc->cap_extra) {
                size_t cap = sc->cap_extra ? sc->cap_extra * 2 : 8;
                struct span *v = reallocarray(sc->extra, cap, sizeof(*v));

                if (!v)
                        return -ENOMEM;
                sc->extra = v;
                sc->cap_extra = cap;
        }
        sc->extra[sc->n_extra++] = (struct span){ l->start, l->end };
        return 0;
}

/* An address of <VirtualHost>: "*:443", "_default_:443", "[::1]:443", "192.0.2.1"; no port or
 * port '*' matches any. */
static bool address_port_matches(const char *a, unsigned port) {
        const char *p = a[0] == '[' ? strchr(a, ']') : a;
        unsigned long v = 0;

        p = p ? strrchr(p, ':') : NULL;
        if (!p || strcmp(p + 1, "*") == 0)
                return true;
        for (p++; *p; p++) {
                if (*p < '0' || *p > '9' || v > 65535)
                        return false;
                v = v * 10 + (unsigned long) (*p - '0');
        }
        return v == port;
}

static int vhost_port_matches(const struct set_state *st, const struct hx_line *l, bool *ret) {
        size_t pos = l->args, off, n;

        *ret = st->o->port == 0;
        while (!*ret && hx_word_next(st->t, &pos, l->args_end, &off, &n)) {
                _cleanup_free_ char *a = NULL;
                int r = hx_word_decode(st->t, off, n, &a);

                if (r < 0)
                        return r;
                *ret = address_port_matches(a, st->o->port);
        }
        return 0;
}

/* ServerName [scheme://]host[:port] or ServerAlias host…, compared without scheme and port. */
static int server_name_matches(const struct set_state *st, const struct hx_line *l, bool alias, bool *ret) {
        size_t pos = l->args, off, n;

        while (!*ret && hx_word_next(st->t, &pos, l->args_end, &off, &n)) {
                _cleanup_free_ char *v = NULL;
                char *h, *colon;
                int r = hx_word_decode(st->t, off, n, &v);

                if (r < 0)
                        return r;
                h = strstr(v, "://") && !alias ? strstr(v, "://") + 3 : v;
                colon = strchr(h[0] == '[' ? strchrnul(h, ']') : h, ':');
                if (colon && !alias)
                        *colon = '\0';
                *ret = strcasecmp(h, st->o->server_name) == 0;
                if (!alias)
                        break;
        }
        return 0;
}

static int replace_args(struct set_state *st, const struct hx_line *l, const char *value, bool quote) {
        const char *q = quote ? "\"" : "";
        _cleanup_(text_buf_done) struct text_buf b = {};
        int r = 0;

        if (l->args == l->name + l->name_len)
                r = text_buf_puts(&b, " ");
        if (r < 0 || (r = text_buf_puts(&b, q)) < 0 || (r = text_buf_puts(&b, value)) < 0 ||
            (r = text_buf_puts(&b, q)) < 0)
                return r;
        return text_edits_add(&st->ed, l->args, l->args_end - l->args, &b);
}

static int add_key_line(struct set_state *st, const struct hx_line *cert) {
        _cleanup_(text_buf_done) struct text_buf b = {};
        size_t ls = text_line_start(st->t, cert->name);
        int r;

        if ((r = text_buf_put(&b, st->t + ls, text_indent_len(st->t, st->len, ls))) < 0 ||
            (r = text_buf_puts(&b, "SSLCertificateKeyFile \"")) < 0 ||
            (r = text_buf_puts(&b, st->o->key_uri)) < 0 || (r = text_buf_puts(&b, "\"")) < 0)
                return r;
        return text_insert_after(st->t, st->len, cert->end, &b, &st->ed);
}

/* The mark goes before the first non-blank byte of each physical line of the directive (blank as
 * ap_cfg_getline() sees it: a leading '\r' too). */
static int disable_span(struct set_state *st, const struct span *s) {
        for (size_t p = s->start;;) {
                const char *nl = memchr(st->t + p, '\n', s->end - p);
                size_t q = p;

                while (q < s->end && strchr(" \t\r\f\v", st->t[q]) && st->t[q] != '\0')
                        q++;
                if (q < s->end && st->t[q] != '\n') {
                        _cleanup_(text_buf_done) struct text_buf b = {};
                        int r = text_buf_puts(&b, HTTPDCONF_DISABLED_MARK);

                        if (r < 0 || (r = text_edits_add(&st->ed, q, 0, &b)) < 0)
                                return r;
                }
                if (!nl)
                        break;
                p = (size_t) (nl - st->t) + 1;
        }
        return 0;
}

static bool scope_selected(const struct set_state *st, const struct scope *sc) {
        if (sc->opener == HX_NONE)
                return st->o->port == 0 && !st->o->server_name;
        return (st->o->port == 0 || sc->port_ok) && (!st->o->server_name || sc->name_ok);
}

static int scope_finish(struct set_state *st, struct scope *sc) {
        int r;

        if (!scope_selected(st, sc) || !sc->has_cert) {
                /* Only worth reporting when the caller asked for this <VirtualHost> by port or name. */
                if (scope_selected(st, sc) && (st->o->port || st->o->server_name) &&
                    st->selected_empty == HX_NONE)
                        st->selected_empty = sc->opener;
                return 0;
        }
        r = replace_args(st, &sc->cert, st->o->cert_path, true);
        if (r >= 0)
                r = sc->has_key ? replace_args(st, &sc->key, st->o->key_uri, true)
                                : add_key_line(st, &sc->cert);
        for (size_t i = 0; r >= 0 && i < sc->n_extra; i++)
                r = disable_span(st, &sc->extra[i]);
        if (r < 0)
                return r;
        st->targets++;
        st->anchor = MIN(st->anchor, sc->opener != HX_NONE ? sc->opener : sc->cert.start);
        return 0;
}

static int on_crypto_device(struct set_state *st, const struct hx_line *l, size_t vhost) {
        size_t pos = l->args, off, n;

        if (st->o->skip_crypto_device)
                return 0;
        if (vhost != HX_NONE)
                return hx_fail(st->t, st->len, l->name, -EINVAL,
                               "SSLCryptoDevice is not allowed in <VirtualHost>", st->e);
        if (!hx_word_next(st->t, &pos, l->args_end, &off, &n))
                return hx_fail(st->t, st->len, l->name, -EINVAL, "SSLCryptoDevice without an argument",
                               st->e);
        if (!hx_word_eq(st->t, off, n, st->device, false)) {
                if (!hx_word_eq(st->t, off, n, "builtin", true))
                        return hx_fail(st->t, st->len, off, -EEXIST, "SSLCryptoDevice names another engine",
                                       st->e);
                if (replace_args(st, l, st->device, false) < 0)
                        return hx_fail(st->t, st->len, HX_NONE, -ENOMEM, "out of memory", st->e);
        }
        st->have_device = true;
        return 0;
}

static int on_directive(struct set_state *st, const struct hx_line *l, size_t vhost) {
        struct scope *sc = vhost != HX_NONE ? &st->vh : &st->top;
        int r = 0;

        if (hx_name_is(st->t, l, "SSLCertificateFile") || hx_name_is(st->t, l, "SSLCertificateKeyFile"))
                r = scope_record(sc, l, hx_name_is(st->t, l, "SSLCertificateKeyFile"));
        else if (vhost != HX_NONE && st->o->server_name && hx_name_is(st->t, l, "ServerName"))
                r = server_name_matches(st, l, false, &sc->name_ok);
        else if (vhost != HX_NONE && st->o->server_name && hx_name_is(st->t, l, "ServerAlias"))
                r = server_name_matches(st, l, true, &sc->name_ok);
        else if (hx_name_is(st->t, l, "SSLCryptoDevice"))
                return on_crypto_device(st, l, vhost);
        return r < 0 ? hx_fail(st->t, st->len, HX_NONE, r, "out of memory", st->e) : 0;
}

static int on_line(struct set_state *st, const struct hx_reader *rd, const struct hx_line *l) {
        int r = 0;

        if (l->kind == HX_OPEN && rd->vhost == l->start) {
                scope_reset(&st->vh, l->start);
                r = vhost_port_matches(st, l, &st->vh.port_ok);
        } else if (l->kind == HX_CLOSE && hx_name_is(st->t, l, "VirtualHost"))
                r = scope_finish(st, &st->vh);
        else if (l->kind == HX_DIRECTIVE)
                return on_directive(st, l, rd->vhost);
        return r < 0 ? hx_fail(st->t, st->len, HX_NONE, r, "out of memory", st->e) : 0;
}

static int no_target(const struct set_state *st) {
        if (st->selected_empty != HX_NONE)
                return hx_fail(st->t, st->len, st->selected_empty, -ENOENT,
                               "the selected <VirtualHost> has no SSLCertificateFile", st->e);
        if (st->o->port != 0 || st->o->server_name)
                return hx_fail(st->t, st->len, HX_NONE, -ENOENT,
                               "no <VirtualHost> matches the wanted port and server_name", st->e);
        return hx_fail(st->t, st->len, HX_NONE, -ENOENT, "no SSLCertificateFile to point at the token",
                       st->e);
}

static int add_device_line(struct set_state *st) {
        _cleanup_(text_buf_done) struct text_buf b = {};
        size_t ls = text_line_start(st->t, st->anchor);
        int r;

        if ((r = text_buf_put(&b, st->t + ls, text_indent_len(st->t, st->len, ls))) < 0 ||
            (r = text_buf_puts(&b, "SSLCryptoDevice ")) < 0 || (r = text_buf_puts(&b, st->device)) < 0 ||
            (r = text_buf_puts(&b, text_newline(st->t, st->len))) < 0)
                return r;
        return text_edits_add(&st->ed, ls, 0, &b);
}

/* Values go between double quotes, which mod_ssl cannot escape out of, and before ap_resolve_env(). */
static bool value_ok(const char *v) {
        size_t n = v ? strnlen(v, HTTPDCONF_MAX_VALUE + 1) : 0;

        if (n == 0 || n > HTTPDCONF_MAX_VALUE || strstr(v, "${"))
                return false;
        for (const char *p = v; *p; p++)
                if ((unsigned char) *p < 0x20 || *p == 0x7f || *p == '"' || *p == '\\')
                        return false;
        return true;
}

static bool device_ok(const char *d) {
        size_t n = strnlen(d, 65);

        if (n == 0 || n > 64)
                return false;
        for (const char *p = d; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                      *p == '_' || *p == '-'))
                        return false;
        return true;
}

static bool opts_ok(const struct httpdconf_cert_opts *o) {
        return o && value_ok(o->cert_path) && o->cert_path[0] == '/' && value_ok(o->key_uri) &&
               (o->key_uri[0] == '/' || strncmp(o->key_uri, "pkcs11:", 7) == 0) && o->port <= 65535 &&
               (!o->server_name || (o->server_name[0] && strnlen(o->server_name, 256) <= 255)) &&
               device_ok(o->crypto_device ? o->crypto_device : "pkcs11");
}

static int set_cert_scan(struct set_state *st) {
        struct hx_reader rd;
        struct hx_line l;
        int r;

        hx_reader_init(&rd, st->t, st->len, st->e);
        while ((r = hx_reader_next(&rd, &l)) > 0) {
                r = on_line(st, &rd, &l);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        r = scope_finish(st, &st->top);
        if (r < 0)
                return hx_fail(st->t, st->len, HX_NONE, r, "out of memory", st->e);
        if (st->targets == 0)
                return no_target(st);
        if (!st->have_device && !st->o->skip_crypto_device && (r = add_device_line(st)) < 0)
                return hx_fail(st->t, st->len, HX_NONE, r, "out of memory", st->e);
        return 0;
}

int httpdconf_set_cert(const char *text, size_t len, const struct httpdconf_cert_opts *opts, char **ret_text,
                       size_t *ret_len, struct httpdconf_error *ret_error) {
        _cleanup_(set_state_done) struct set_state st = {
                .len = len,
                .o = opts,
                .top.opener = HX_NONE,
                .anchor = HX_NONE,
                .selected_empty = HX_NONE,
                .e = ret_error,
        };
        int r;

        st.t = text ? text : (len == 0 ? "" : NULL);
        if (!ret_text || !ret_len || !opts_ok(opts))
                return hx_fail(st.t, len, HX_NONE, -EINVAL, "invalid certificate path, key URI or selector",
                               ret_error);
        st.device = opts->crypto_device ? opts->crypto_device : "pkcs11";
        if ((r = hx_check_input(st.t, len, ret_error)) < 0 || (r = set_cert_scan(&st)) < 0)
                return r;
        return hx_edits_apply(st.t, len, &st.ed, ret_text, ret_len, ret_error);
}
