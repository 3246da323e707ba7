/* agent/metrics.c and metrics-http.c (pure parts): the exposition writer (escaping, ordering, HELP/TYPE,
 * histograms, names, the size cap), options.metrics_listen and the HTTP answers. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "agent/metrics-http.h"
#include "agent/metrics.h"
#include "tests/lib/tap.h"

static char *render(struct metrics_set *m) {
        char *out = NULL;
        size_t len = 0;

        if (metrics_render(m, &out, &len) < 0)
                return NULL;
        if (strlen(out) != len) {
                free(out);
                return NULL;
        }
        return out;
}

static void test_escaping(void) {
        _cleanup_(metrics_set_freep) struct metrics_set *m = NULL;
        _cleanup_free_ char *out = NULL;

        ASSERT_OK(metrics_set_new(0, &m));
        ASSERT_OK(metrics_family(m, "x_total", METRICS_COUNTER, "Help with \\ and a\nnew line \"quoted\"."));
        ASSERT_OK(metrics_add(m, "x_total",
                              (const struct metrics_label[]){ { "token", "a\\b\"c\nd" }, { "code", "é" } },
                              2, 3));
        ASSERT_OK(metrics_add(m, "x_total", (const struct metrics_label[]){ { "token", "" } }, 1, 0));
        out = render(m);
        ASSERT_TRUE(out != NULL);
        ASSERT_STREQ(out, "# HELP x_total Help with \\\\ and a\\nnew line \"quoted\".\n"
                          "# TYPE x_total counter\n"
                          "x_total{token=\"a\\\\b\\\"c\\nd\",code=\"é\"} 3\n"
                          "x_total{token=\"\"} 0\n");
}

static void test_ordering(void) {
        _cleanup_(metrics_set_freep) struct metrics_set *m = NULL;
        _cleanup_free_ char *out = NULL;

        ASSERT_OK(metrics_set_new(0, &m));
        /* declared out of order; one without samples still gets its HELP and TYPE */
        ASSERT_OK(metrics_family(m, "zeta", METRICS_GAUGE, "Z."));
        ASSERT_OK(metrics_family(m, "alpha_total", METRICS_COUNTER, "A."));
        ASSERT_OK(metrics_family(m, "mid:sub", METRICS_GAUGE, "M."));
        ASSERT_OK(metrics_family(m, "alpha_total", METRICS_COUNTER, "again: a no-op"));
        ASSERT_ERR(metrics_family(m, "alpha_total", METRICS_GAUGE, "A."), -EEXIST);
        ASSERT_OK(metrics_add(m, "zeta", NULL, 0, 1.5));
        ASSERT_OK(metrics_add(m, "alpha_total", NULL, 0, 7));
        ASSERT_OK(metrics_add(m, "zeta", (const struct metrics_label[]){ { "a", "1" } }, 1, -2));
        out = render(m);
        ASSERT_TRUE(out != NULL);
        ASSERT_STREQ(out, "# HELP alpha_total A.\n# TYPE alpha_total counter\nalpha_total 7\n"
                          "# HELP mid:sub M.\n# TYPE mid:sub gauge\n"
                          "# HELP zeta Z.\n# TYPE zeta gauge\nzeta 1.5\nzeta{a=\"1\"} -2\n");
}

static void test_values(void) {
        static const struct {
                double v;
                const char *text;
        } cases[] = {
                { 0, "v 0\n" },
                { 1765172800, "v 1765172800\n" },
                { 9007199254740991.0, "v 9007199254740991\n" },
                { 0.000123, "v 0.000123\n" },
                { 1e300, "v 1e+300\n" },
                { 0.1 + 0.2, "v 0.30000000000000004\n" },
                { INFINITY, "v +Inf\n" },
                { -INFINITY, "v -Inf\n" },
                { NAN, "v NaN\n" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(metrics_set_freep) struct metrics_set *m = NULL;
                _cleanup_free_ char *out = NULL;
                const char *line;

                ASSERT_OK(metrics_set_new(0, &m));
                ASSERT_OK(metrics_family(m, "v", METRICS_GAUGE, "V."));
                ASSERT_OK(metrics_add(m, "v", NULL, 0, cases[i].v));
                out = render(m);
                ASSERT_TRUE(out != NULL);
                line = strstr(out, "\nv ");
                ASSERT_TRUE(line != NULL);
                ASSERT_STREQ(line + 1, cases[i].text);
        }
}

static void test_histogram(void) {
        static const double bounds[] = { 0.00005, 0.001, 1 };
        static const uint64_t counts[] = { 4, 0, 3, 2 };
        _cleanup_(metrics_set_freep) struct metrics_set *m = NULL;
        _cleanup_free_ char *out = NULL;

        ASSERT_OK(metrics_set_new(0, &m));
        ASSERT_OK(metrics_family(m, "op_seconds", METRICS_HISTOGRAM, "Op time."));
        ASSERT_OK(metrics_add_histogram(m, "op_seconds",
                                        (const struct metrics_label[]){ { "token", "web" } }, 1, bounds, 3,
                                        counts, 4.25));
        ASSERT_OK(metrics_add_histogram(m, "op_seconds", NULL, 0, bounds, 0, counts, 0.5));
        out = render(m);
        ASSERT_TRUE(out != NULL);
        ASSERT_STREQ(out, "# HELP op_seconds Op time.\n# TYPE op_seconds histogram\n"
                          "op_seconds_bucket{token=\"web\",le=\"5e-05\"} 4\n"
                          "op_seconds_bucket{token=\"web\",le=\"0.001\"} 4\n"
                          "op_seconds_bucket{token=\"web\",le=\"1\"} 7\n"
                          "op_seconds_bucket{token=\"web\",le=\"+Inf\"} 9\n"
                          "op_seconds_sum{token=\"web\"} 4.25\n"
                          "op_seconds_count{token=\"web\"} 9\n"
                          "op_seconds_bucket{le=\"+Inf\"} 4\n"
                          "op_seconds_sum 0.5\n"
                          "op_seconds_count 4\n");
        /* bounds must increase; a histogram is not a gauge and the other way round */
        ASSERT_ERR(metrics_add_histogram(m, "op_seconds", NULL, 0, (const double[]){ 1, 1 }, 2, counts, 0),
                   -EINVAL);
        ASSERT_ERR(metrics_add_histogram(m, "op_seconds", NULL, 0, (const double[]){ 2, 1 }, 2, counts, 0),
                   -EINVAL);
        ASSERT_ERR(metrics_add_histogram(m, "op_seconds", NULL, 0, (const double[]){ NAN }, 1, counts, 0),
                   -EINVAL);
        ASSERT_ERR(metrics_add(m, "op_seconds", NULL, 0, 1), -EINVAL);
        ASSERT_OK(metrics_family(m, "g", METRICS_GAUGE, "G."));
        ASSERT_ERR(metrics_add_histogram(m, "g", NULL, 0, bounds, 3, counts, 0), -EINVAL);
        /* "le" is the writer's own label */
        ASSERT_ERR(metrics_add_histogram(m, "op_seconds", (const struct metrics_label[]){ { "le", "1" } }, 1,
                                         bounds, 3, counts, 0),
                   -EINVAL);
}

static void test_names(void) {
        _cleanup_(metrics_set_freep) struct metrics_set *m = NULL;

        ASSERT_TRUE(metrics_name_valid("enclave_acm_x_total"));
        ASSERT_TRUE(metrics_name_valid(":a:b_9"));
        ASSERT_TRUE(metrics_name_valid("_"));
        ASSERT_FALSE(metrics_name_valid(""));
        ASSERT_FALSE(metrics_name_valid(NULL));
        ASSERT_FALSE(metrics_name_valid("9a"));
        ASSERT_FALSE(metrics_name_valid("a-b"));
        ASSERT_FALSE(metrics_name_valid("a b"));
        ASSERT_FALSE(metrics_name_valid("a\xc3\xa9"));
        ASSERT_TRUE(metrics_label_name_valid("token"));
        ASSERT_TRUE(metrics_label_name_valid("_x1"));
        ASSERT_FALSE(metrics_label_name_valid("__name__"));
        ASSERT_FALSE(metrics_label_name_valid("a:b"));
        ASSERT_FALSE(metrics_label_name_valid("1a"));
        ASSERT_FALSE(metrics_label_name_valid(""));

        ASSERT_OK(metrics_set_new(0, &m));
        ASSERT_ERR(metrics_family(m, "bad-name", METRICS_GAUGE, "X."), -EINVAL);
        ASSERT_ERR(metrics_family(m, "x", _METRICS_TYPE_MAX, "X."), -EINVAL);
        ASSERT_ERR(metrics_family(m, "x", METRICS_GAUGE, NULL), -EINVAL);
        ASSERT_ERR(metrics_add(m, "undeclared", NULL, 0, 1), -ENOENT);
        ASSERT_OK(metrics_family(m, "x", METRICS_GAUGE, "X."));
        ASSERT_ERR(metrics_add(m, "x", (const struct metrics_label[]){ { "a-b", "1" } }, 1, 1), -EINVAL);
        ASSERT_ERR(metrics_add(m, "x", (const struct metrics_label[]){ { "a", "1" }, { "a", "2" } }, 2, 1),
                   -EINVAL);
        ASSERT_ERR(metrics_add(m, "x", (const struct metrics_label[]){ { "__a", "1" } }, 1, 1), -EINVAL);
        /* refused adds leave nothing behind */
        {
                _cleanup_free_ char *out = render(m);
                ASSERT_STREQ(out, "# HELP x X.\n# TYPE x gauge\n");
        }
}

static void test_limits(void) {
        _cleanup_(metrics_set_freep) struct metrics_set *m = NULL, *empty = NULL;
        char name[32], *out = NULL;
        size_t len;
        int r = 0;

        /* the size cap: refused once reached, and the refusal sticks */
        ASSERT_OK(metrics_set_new(512, &m));
        ASSERT_OK(metrics_family(m, "x", METRICS_GAUGE, "X."));
        for (int i = 0; i < 100 && r >= 0; i++)
                r = metrics_add(m, "x", (const struct metrics_label[]){ { "token", "abcdefghij" } }, 1, i);
        ASSERT_ERR(r, -EMSGSIZE);
        ASSERT_ERR(metrics_add(m, "x", NULL, 0, 1), -EMSGSIZE);
        ASSERT_ERR(metrics_family(m, "y", METRICS_GAUGE, "Y."), -EMSGSIZE);
        ASSERT_ERR(metrics_render(m, &out, &len), -EMSGSIZE);
        ASSERT_TRUE(out == NULL);
        m = metrics_set_free(m);

        ASSERT_OK(metrics_set_new(0, &m));
        for (int i = 0; i < METRICS_FAMILIES_MAX; i++) {
                (void) snprintf(name, sizeof(name), "f%d", i);
                ASSERT_OK(metrics_family(m, name, METRICS_GAUGE, "F."));
        }
        ASSERT_ERR(metrics_family(m, "one_more", METRICS_GAUGE, "F."), -E2BIG);

        /* nothing declared: an empty exposition */
        ASSERT_OK(metrics_set_new(0, &empty));
        ASSERT_OK(metrics_render(empty, &out, &len));
        ASSERT_EQ(len, 0);
        ASSERT_STREQ(out, "");
        free(out);
}

static void test_listen(void) {
        static const struct {
                const char *s;
                int r;
                enum metrics_listen_kind kind;
                uint16_t port;
        } cases[] = {
                { "/run/enclave-acm/metrics.sock", 0, METRICS_LISTEN_UNIX, 0 },
                { "127.0.0.1:9464", 0, METRICS_LISTEN_INET, 9464 },
                { "127.255.0.9:1", 0, METRICS_LISTEN_INET, 1 },
                { "[::1]:65535", 0, METRICS_LISTEN_INET6, 65535 },
                { "0.0.0.0:9464", -EADDRNOTAVAIL },
                { "192.168.1.1:80", -EADDRNOTAVAIL },
                { "128.0.0.1:80", -EADDRNOTAVAIL },
                { "[::]:9464", -EADDRNOTAVAIL },
                { "[::ffff:127.0.0.1]:9464", -EADDRNOTAVAIL },
                { "[fe80::1]:9464", -EADDRNOTAVAIL },
                { "localhost:9464", -EINVAL },
                { "127.0.0.1", -EINVAL },
                { "127.0.0.1:", -EINVAL },
                { "127.0.0.1:0", -EINVAL },
                { "127.0.0.1:65536", -EINVAL },
                { "127.0.0.1:-1", -EINVAL },
                { "127.0.0.1: 80", -EINVAL },
                { "127.0.0.1:80x", -EINVAL },
                { "127.1:80", -EINVAL },
                { "::1:80", -EINVAL },
                { "[::1]80", -EINVAL },
                { "[::1", -EINVAL },
                { "metrics.sock", -EINVAL },
                { "", -EINVAL },
        };
        char long_path[200];

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct metrics_listen l;
                const char *why = NULL;
                int r = metrics_listen_parse(cases[i].s, &l, &why);

                if (r != cases[i].r)
                        TAP_FAIL_("'%s': %d, expected %d", cases[i].s, r, cases[i].r);
                if (r < 0) {
                        ASSERT_TRUE(why != NULL);
                        continue;
                }
                ASSERT_EQ(l.kind, cases[i].kind);
                ASSERT_EQ(l.port, cases[i].port);
                if (l.kind == METRICS_LISTEN_UNIX)
                        ASSERT_STREQ(l.path, cases[i].s);
        }
        memset(long_path, 'a', sizeof(long_path) - 1);
        long_path[0] = '/';
        long_path[sizeof(long_path) - 1] = '\0';
        ASSERT_ERR(metrics_listen_parse(long_path, &(struct metrics_listen){}, NULL), -EINVAL);
        ASSERT_ERR(metrics_listen_parse(NULL, &(struct metrics_listen){}, NULL), -EINVAL);
}

static int scrapes;
static int fake_scrape(char **ret, size_t *ret_len) {
        scrapes++;
        *ret = strdup("# HELP a A.\n# TYPE a gauge\na 1\n");
        *ret_len = strlen(*ret);
        return 0;
}
static int failing_scrape(char **ret, size_t *ret_len) {
        return -EMSGSIZE;
}

static int answer(const char *head, metrics_http_scrape_fn fn, char **out) {
        size_t len = 0;
        int status = 0;

        if (metrics_http_answer(head, strlen(head), fn, out, &len, &status) < 0)
                return -1;
        return strlen(*out) == len ? status : -1;
}

static void test_http_answer(void) {
        static const struct {
                const char *head;
                int status;
        } cases[] = {
                { "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 200 },
                { "GET /metrics?name[]=a HTTP/1.0\r\n\r\n", 200 },
                { "GET / HTTP/1.1\r\n\r\n", 404 },
                { "GET /metrics/ HTTP/1.1\r\n\r\n", 404 },
                { "GET /metricsx HTTP/1.1\r\n\r\n", 404 },
                { "POST /metrics HTTP/1.1\r\n\r\n", 405 },
                { "HEAD /metrics HTTP/1.1\r\n\r\n", 405 },
                { "get /metrics HTTP/1.1\r\n\r\n", 405 },
                { "GET /metrics\r\n\r\n", 400 },
                { "GET  HTTP/1.1\r\n\r\n", 400 },
                { " /metrics HTTP/1.1\r\n\r\n", 400 },
                { "GET /metrics HTTP/2.0\r\n\r\n", 400 },
                { "GET /metrics HTTP/1.1", 400 },
                { "", 400 },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *out = NULL;
                int before = scrapes, st = answer(cases[i].head, fake_scrape, &out);

                if (st != cases[i].status)
                        TAP_FAIL_("case %zu: %d, expected %d", i, st, cases[i].status);
                /* only a GET /metrics scrapes */
                ASSERT_EQ(scrapes - before, st == 200 ? 1 : 0);
                ASSERT_TRUE(strncmp(out, "HTTP/1.1 ", 9) == 0);
                ASSERT_TRUE(strstr(out, "Connection: close\r\n") != NULL);
                if (st == 200) {
                        ASSERT_TRUE(
                                strstr(out, "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
                        ASSERT_TRUE(strstr(out, "Content-Length: 31\r\n"));
                        ASSERT_STREQ(strstr(out, "\r\n\r\n") + 4, "# HELP a A.\n# TYPE a gauge\na 1\n");
                }
                if (st == 405)
                        ASSERT_TRUE(strstr(out, "Allow: GET\r\n") != NULL);
        }
        {
                _cleanup_free_ char *out = NULL;
                ASSERT_EQ(answer("GET /metrics HTTP/1.1\r\n\r\n", failing_scrape, &out), 500);
        }
}

TAP_MAIN(TEST("/agent/metrics/escaping", test_escaping), TEST("/agent/metrics/ordering", test_ordering),
         TEST("/agent/metrics/values", test_values), TEST("/agent/metrics/histogram", test_histogram),
         TEST("/agent/metrics/names", test_names), TEST("/agent/metrics/limits", test_limits),
         TEST("/agent/metrics/listen", test_listen), TEST("/agent/metrics/http-answer", test_http_answer))
