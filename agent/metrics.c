/* The Prometheus text exposition writer (format 0.0.4) and the metrics_listen address: pure, no I/O. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/metrics.h"
#include "common/parse-util.h"

struct family {
        char *name;
        char *help;
        enum metrics_type type;
        char *text; /* the samples, in the order added */
        size_t len, cap;
};

struct metrics_set {
        struct family families[METRICS_FAMILIES_MAX];
        size_t n_families;
        size_t bytes, max_bytes; /* what rendering will take, about; the cap */
        int err;                 /* sticky */
};

static const char *const type_names[_METRICS_TYPE_MAX] = {
        [METRICS_COUNTER] = "counter",
        [METRICS_GAUGE] = "gauge",
        [METRICS_HISTOGRAM] = "histogram",
};

int metrics_set_new(size_t max_bytes, struct metrics_set **ret) {
        struct metrics_set *m = calloc(1, sizeof(*m));

        if (!m)
                return -ENOMEM;
        m->max_bytes = max_bytes ?: METRICS_MAX_BYTES_DEFAULT;
        *ret = m;
        return 0;
}

struct metrics_set *metrics_set_free(struct metrics_set *m) {
        if (!m)
                return NULL;
        for (size_t i = 0; i < m->n_families; i++) {
                free(m->families[i].name);
                free(m->families[i].help);
                free(m->families[i].text);
        }
        free(m);
        return NULL;
}

static bool name_char(char c, bool first, bool colon) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':') ||
               (!first && c >= '0' && c <= '9');
}

bool metrics_name_valid(const char *name) {
        if (!name || !*name)
                return false;
        for (size_t i = 0; name[i]; i++)
                if (!name_char(name[i], i == 0, true))
                        return false;
        return true;
}

bool metrics_label_name_valid(const char *name) {
        if (!name || !*name || strncmp(name, "__", 2) == 0)
                return false;
        for (size_t i = 0; name[i]; i++)
                if (!name_char(name[i], i == 0, false))
                        return false;
        return true;
}

static struct family *family_find(const struct metrics_set *m, const char *name) {
        for (size_t i = 0; i < m->n_families; i++)
                if (strcmp(m->families[i].name, name) == 0)
                        return (struct family *) &m->families[i];
        return NULL;
}

static int fail(struct metrics_set *m, int err) {
        if (!m->err)
                m->err = err;
        return err;
}

int metrics_family(struct metrics_set *m, const char *name, enum metrics_type type, const char *help) {
        struct family *f;

        if (m->err)
                return m->err;
        if (!metrics_name_valid(name) || type < 0 || type >= _METRICS_TYPE_MAX || !help)
                return -EINVAL;
        f = family_find(m, name);
        if (f)
                return f->type == type ? 0 : -EEXIST;
        if (m->n_families >= METRICS_FAMILIES_MAX)
                return -E2BIG;
        f = &m->families[m->n_families];
        *f = (struct family){ .name = strdup(name), .help = strdup(help), .type = type };
        if (!f->name || !f->help) {
                free(f->name);
                free(f->help);
                *f = (struct family){};
                return fail(m, -ENOMEM);
        }
        m->n_families++;
        /* "# HELP name help\n# TYPE name type\n", help escaped at most twice its size */
        m->bytes += 2 * strlen(name) + 2 * strlen(help) + 32;
        if (m->bytes > m->max_bytes)
                return fail(m, -EMSGSIZE);
        return 0;
}

/* Appends to f's text, counting against the cap. */
static int put(struct metrics_set *m, struct family *f, const char *s, size_t n) {
        if (m->err)
                return m->err;
        if (n > m->max_bytes - MIN(m->bytes, m->max_bytes))
                return fail(m, -EMSGSIZE);
        if (f->len + n + 1 > f->cap) {
                size_t cap = MAX(f->cap * 2, f->len + n + 1);
                char *t = realloc(f->text, MAX(cap, (size_t) 256));

                if (!t)
                        return fail(m, -ENOMEM);
                f->text = t;
                f->cap = MAX(cap, (size_t) 256);
        }
        memcpy(f->text + f->len, s, n);
        f->len += n;
        f->text[f->len] = '\0';
        m->bytes += n;
        return 0;
}

static int put_str(struct metrics_set *m, struct family *f, const char *s) {
        return put(m, f, s, strlen(s));
}

/* A label value or HELP text: backslash and newline escaped, and the double quote in a label value. */
static int put_escaped(struct metrics_set *m, struct family *f, const char *s, bool quote) {
        int r = 0;

        for (const char *p = s; *p && r >= 0; p++) {
                if (*p == '\\')
                        r = put(m, f, "\\\\", 2);
                else if (*p == '\n')
                        r = put(m, f, "\\n", 2);
                else if (quote && *p == '"')
                        r = put(m, f, "\\\"", 2);
                else
                        r = put(m, f, p, 1);
        }
        return r;
}

/* Integral values below 2^53 print as integers, the others in the fewest digits that read back as the
 * same double (0.000123, not 0.00012300000000000001). */
static void format_value(double v, char buf[static 32]) {
        if (isnan(v))
                strcpy(buf, "NaN");
        else if (isinf(v))
                strcpy(buf, v > 0 ? "+Inf" : "-Inf");
        else if (v > -9007199254740992.0 && v < 9007199254740992.0 && v == (double) (int64_t) v)
                (void) snprintf(buf, 32, "%.0f", v);
        else
                for (int p = 15; p <= 17; p++) {
                        (void) snprintf(buf, 32, "%.*g", p, v);
                        if (strtod(buf, NULL) == v)
                                break;
                }
}

/* name{labels[,le="…"]} value\n */
static int put_sample(struct metrics_set *m, struct family *f, const char *suffix,
                      const struct metrics_label *labels, size_t n, const char *le, double value) {
        char buf[32];
        int r;

        r = put_str(m, f, f->name);
        if (r >= 0)
                r = put_str(m, f, suffix);
        if (r >= 0 && (n > 0 || le))
                r = put(m, f, "{", 1);
        for (size_t i = 0; i < n && r >= 0; i++) {
                if (i > 0)
                        r = put(m, f, ",", 1);
                if (r >= 0)
                        r = put_str(m, f, labels[i].name);
                if (r >= 0)
                        r = put(m, f, "=\"", 2);
                if (r >= 0)
                        r = put_escaped(m, f, labels[i].value ?: "", true);
                if (r >= 0)
                        r = put(m, f, "\"", 1);
        }
        if (r >= 0 && le) {
                r = put_str(m, f, n > 0 ? ",le=\"" : "le=\"");
                if (r >= 0)
                        r = put_str(m, f, le);
                if (r >= 0)
                        r = put(m, f, "\"", 1);
        }
        if (r >= 0 && (n > 0 || le))
                r = put(m, f, "}", 1);
        format_value(value, buf);
        if (r >= 0)
                r = put(m, f, " ", 1);
        if (r >= 0)
                r = put_str(m, f, buf);
        if (r >= 0)
                r = put(m, f, "\n", 1);
        return r;
}

static int check_labels(const struct metrics_label *labels, size_t n) {
        for (size_t i = 0; i < n; i++) {
                if (!metrics_label_name_valid(labels[i].name) || strcmp(labels[i].name, "le") == 0)
                        return -EINVAL;
                for (size_t j = 0; j < i; j++)
                        if (strcmp(labels[i].name, labels[j].name) == 0)
                                return -EINVAL;
        }
        return 0;
}

int metrics_add(struct metrics_set *m, const char *name, const struct metrics_label *labels, size_t n_labels,
                double value) {
        struct family *f;

        if (m->err)
                return m->err;
        f = family_find(m, name);
        if (!f)
                return -ENOENT;
        if (f->type == METRICS_HISTOGRAM || check_labels(labels, n_labels) < 0)
                return -EINVAL;
        return put_sample(m, f, "", labels, n_labels, NULL, value);
}

int metrics_add_histogram(struct metrics_set *m, const char *name, const struct metrics_label *labels,
                          size_t n_labels, const double *bounds, size_t n_bounds, const uint64_t *counts,
                          double sum) {
        struct family *f;
        uint64_t total = 0;
        char le[32];
        int r = 0;

        if (m->err)
                return m->err;
        f = family_find(m, name);
        if (!f)
                return -ENOENT;
        if (f->type != METRICS_HISTOGRAM || check_labels(labels, n_labels) < 0)
                return -EINVAL;
        for (size_t i = 0; i < n_bounds; i++)
                if (!isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1]))
                        return -EINVAL;
        for (size_t i = 0; i <= n_bounds && r >= 0; i++) {
                total += counts[i];
                if (i < n_bounds)
                        format_value(bounds[i], le);
                else
                        strcpy(le, "+Inf");
                r = put_sample(m, f, "_bucket", labels, n_labels, le, (double) total);
        }
        if (r >= 0)
                r = put_sample(m, f, "_sum", labels, n_labels, NULL, sum);
        if (r >= 0)
                r = put_sample(m, f, "_count", labels, n_labels, NULL, (double) total);
        return r;
}

static int family_cmp(const void *a, const void *b) {
        return strcmp((*(const struct family *const *) a)->name, (*(const struct family *const *) b)->name);
}

int metrics_render(const struct metrics_set *m, char **ret, size_t *ret_len) {
        const struct family *order[METRICS_FAMILIES_MAX];
        _cleanup_free_ char *out = NULL;
        size_t cap = m->bytes + 1, len = 0;

        if (m->err)
                return m->err;
        out = malloc(cap);
        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < m->n_families; i++)
                order[i] = &m->families[i];
        qsort(order, m->n_families, sizeof(order[0]), family_cmp);
        for (size_t i = 0; i < m->n_families; i++) {
                const struct family *f = order[i];
                size_t need = 2 * strlen(f->name) + 2 * strlen(f->help) + 32 + f->len;
                char *p;

                if (len + need + 1 > cap) {
                        p = realloc(out, len + need + 1);
                        if (!p)
                                return -ENOMEM;
                        out = p;
                        cap = len + need + 1;
                }
                len += (size_t) sprintf(out + len, "# HELP %s ", f->name);
                for (const char *h = f->help; *h; h++) {
                        if (*h == '\\' || *h == '\n') {
                                out[len++] = '\\';
                                out[len++] = *h == '\n' ? 'n' : '\\';
                        } else
                                out[len++] = *h;
                }
                len += (size_t) sprintf(out + len, "\n# TYPE %s %s\n", f->name, type_names[f->type]);
                if (f->len > 0) {
                        memcpy(out + len, f->text, f->len);
                        len += f->len;
                }
                out[len] = '\0';
        }
        out[len] = '\0';
        *ret_len = len;
        *ret = TAKE_PTR(out);
        return 0;
}

/* ---- options.metrics_listen ---- */

static int listen_error(const char **ret_error, const char *msg, int r) {
        if (ret_error)
                *ret_error = msg;
        return r;
}

int metrics_listen_parse(const char *s, struct metrics_listen *ret, const char **ret_error) {
        struct metrics_listen l = {};
        char host[INET6_ADDRSTRLEN + 1];
        const char *port, *end;
        unsigned long p;

        if (!s || !*s)
                return listen_error(ret_error, "is empty", -EINVAL);
        if (s[0] == '/') {
                if (strlen(s) >= sizeof(l.path))
                        return listen_error(ret_error, "is too long for a unix socket path", -EINVAL);
                l.kind = METRICS_LISTEN_UNIX;
                strcpy(l.path, s);
                *ret = l;
                return 0;
        }
        if (s[0] == '[') {
                end = strchr(s, ']');
                if (!end || end[1] != ':')
                        return listen_error(ret_error, "is not [::1]:PORT", -EINVAL);
                l.kind = METRICS_LISTEN_INET6;
                port = end + 2;
                s++;
        } else {
                end = strrchr(s, ':');
                if (!end)
                        return listen_error(ret_error,
                                            "is neither an absolute path nor an address with a :PORT",
                                            -EINVAL);
                l.kind = METRICS_LISTEN_INET;
                port = end + 1;
        }
        if ((size_t) (end - s) >= sizeof(host))
                return listen_error(ret_error, "has a malformed address", -EINVAL);
        memcpy(host, s, (size_t) (end - s));
        host[end - s] = '\0';
        if (inet_pton(l.kind == METRICS_LISTEN_INET ? AF_INET : AF_INET6, host, l.addr) != 1)
                return listen_error(ret_error,
                                    "has a malformed address (expected 127.0.0.1:PORT or [::1]:PORT; no "
                                    "host names)",
                                    -EINVAL);
        if (parse_unsigned(port, 10, 1, UINT16_MAX, &p) < 0)
                return listen_error(ret_error, "has no port 1..65535", -EINVAL);
        l.port = (uint16_t) p;
        if (l.kind == METRICS_LISTEN_INET ? l.addr[0] != 127
                                          : memcmp(l.addr, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\1", 16) != 0)
                return listen_error(ret_error,
                                    "is not a loopback address: the metrics endpoint has no authentication "
                                    "and listens on 127.0.0.0/8, ::1 or a unix socket only",
                                    -EADDRNOTAVAIL);
        *ret = l;
        return 0;
}
