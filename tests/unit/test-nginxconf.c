/* Unit tests for nginx/: the stanza file and the nginx.conf / site-file editors. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/p11-uri.h"
#include "nginx/nginxconf.h"
#include "tests/lib/data.h"
#include "tests/lib/tap.h"

typedef int (*apply_fn)(const char *text, size_t len, char **ret_text, size_t *ret_len,
                        struct nginxconf_error *e);

static const char *const test_env[] = { "ENCLAVE_ACM_ADDRESS", "OPENSSL_CONF", NULL };
static const char *const snakeoil[] = { "snippets/snakeoil.conf", NULL };

#define TEST_URI                                                                                           \
        "pkcs11:model=enclave-token;manufacturer=enclave-acm;token=www.example.com;id=%01;object=acm-key;" \
        "type=private?pin-source=file:/run/enclave-acm/pins/www.example.com"

static int apply_main(const char *t, size_t n, char **o, size_t *on, struct nginxconf_error *e) {
        const struct nginxconf_main_opts opts = { .env = test_env };

        return nginxconf_ensure_main(t, n, &opts, o, on, e);
}

static int apply_debian_site(const char *t, size_t n, char **o, size_t *on, struct nginxconf_error *e) {
        const struct nginxconf_include_opts opts = {
                .stanza_path = "/etc/enclave-acm/nginx/www.example.com.conf",
                .port = 443,
                .disable_includes = snakeoil,
        };

        return nginxconf_ensure_include(t, n, &opts, o, on, e);
}

static int apply_al2023(const char *t, size_t n, char **o, size_t *on, struct nginxconf_error *e) {
        const struct nginxconf_include_opts opts = { .stanza_path = "/etc/pki/nginx/nginx-acm.conf",
                                                     .port = 443 };
        _cleanup_free_ char *mid = NULL;
        size_t mid_len;
        int r, r2;

        r = nginxconf_ensure_main(t, n, NULL, &mid, &mid_len, e);
        if (r < 0)
                return r;
        r2 = nginxconf_ensure_include(mid, mid_len, &opts, o, on, e);
        return r2 < 0 ? r2 : (r | r2);
}

static int apply_www(const char *t, size_t n, char **o, size_t *on, struct nginxconf_error *e) {
        const struct nginxconf_include_opts opts = {
                .stanza_path = "/etc/enclave-acm/nginx/www.example.com.conf",
                .port = 443,
                .server_name = "WWW.example.com",
        };

        return nginxconf_ensure_include(t, n, &opts, o, on, e);
}

static int apply_all(const char *t, size_t n, char **o, size_t *on, struct nginxconf_error *e) {
        const struct nginxconf_include_opts opts = { .stanza_path = "/etc/enclave-acm/nginx/api.conf" };
        _cleanup_free_ char *mid = NULL;
        size_t mid_len;
        int r, r2;

        r = apply_main(t, n, &mid, &mid_len, e);
        if (r < 0)
                return r;
        r2 = nginxconf_ensure_include(mid, mid_len, &opts, o, on, e);
        return r2 < 0 ? r2 : (r | r2);
}

/* Exact output for a sample, and applying again to the output changes nothing. */
static void expect_file(const char *input, const char *expected, apply_fn apply) {
        _cleanup_free_ char *in = NULL, *want = NULL, *out = NULL, *again = NULL;
        size_t in_len = 0, want_len = 0, out_len = 0, again_len = 0;
        struct nginxconf_error e = {};

        in = test_data_load(input, &in_len);
        want = test_data_load(expected, &want_len);
        ASSERT_TRUE(in && want);
        ASSERT_EQ(apply(in, in_len, &out, &out_len, &e), 1);
        ASSERT_EQ(out_len, want_len);
        ASSERT_MEMEQ(out, want, want_len);
        ASSERT_EQ(out[out_len], '\0');
        ASSERT_EQ(apply(out, out_len, &again, &again_len, &e), 0);
        ASSERT_EQ(again_len, out_len);
        ASSERT_MEMEQ(again, out, out_len);
}

static void expect_error(apply_fn apply, const char *text, size_t len, int err, unsigned line,
                         unsigned col) {
        char *out = NULL;
        size_t out_len = 12345;
        struct nginxconf_error e = {};

        ASSERT_ERR(apply(text, len, &out, &out_len, &e), err);
        ASSERT_TRUE(out == NULL && out_len == 12345); /* nothing half-written */
        ASSERT_TRUE(e.message != NULL);
        ASSERT_EQ(e.line, line);
        ASSERT_EQ(e.column, col);
}

static void expect_text(apply_fn apply, const char *in, int ret, const char *want) {
        _cleanup_free_ char *out = NULL, *again = NULL;
        size_t out_len, again_len;
        struct nginxconf_error e = {};

        ASSERT_EQ(apply(in, strlen(in), &out, &out_len, &e), ret);
        ASSERT_STREQ(out, want);
        ASSERT_EQ(out_len, strlen(want));
        ASSERT_EQ(apply(out, out_len, &again, &again_len, &e), 0);
        ASSERT_STREQ(again, out);
}

/* ---- stanza (the key URI: test-p11-uri.c) ---- */

static void test_get_pid(void) {
        static const struct {
                const char *text;
                int r;
                const char *pid;
        } cases[] = {
                { "", 0, NULL },
                { "user www-data;\nworker_processes 2;\nevents {}\n", 0, NULL },
                { "pid /run/nginx.pid;\n", 1, "/run/nginx.pid" },
                { "user x;\n  pid   \"/run/a b.pid\" ;\nevents {}\n", 1, "/run/a b.pid" },
                { "pid 'logs/n\\'x.pid';", 1, "logs/n'x.pid" },
                { "# pid /nope;\npid /yes;\npid /second;\n", 1, "/yes" },
                { "http { pid /inside; }\n", 0, NULL },
                { "pid;\n", -EINVAL, NULL },
                { "pid /a /b;\n", -EINVAL, NULL },
                { "pid \"/unterminated;\n", -EINVAL, NULL },
                { "events {\n", -EINVAL, NULL },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                _cleanup_free_ char *pid = (char *) "untouched";
                struct nginxconf_error e = {};
                int r = nginxconf_get_pid(cases[i].text, strlen(cases[i].text), &pid, &e);

                if (r < 0) {
                        ASSERT_EQ(r, cases[i].r);
                        ASSERT_TRUE(e.line > 0 || e.message);
                        ASSERT_STREQ(pid, "untouched");
                        pid = NULL;
                        continue;
                }
                ASSERT_EQ(r, cases[i].r);
                if (cases[i].pid)
                        ASSERT_STREQ(pid, cases[i].pid);
                else
                        ASSERT_TRUE(pid == NULL);
        }
        ASSERT_ERR(nginxconf_get_pid("pid /x;\0", 8, &(char *){ NULL }, NULL), -EINVAL);
}

static void test_stanza_render(void) {
        static const uint8_t id[] = { 0x01 };
        const struct p11uri_key k = {
                .model = "SoftHSM v2",
                .manufacturer = "SoftHSM project",
                .token = "enclave-acm e2e",
                .id = id,
                .id_len = 1,
                .object = "acm key",
                .pin_file = "/run/enclave-acm/e2e/pin",
        };
        _cleanup_free_ char *uri = NULL, *text = NULL, *want = NULL;
        size_t n, text_len, want_len;

        ASSERT_OK(p11uri_build(&k, &uri, &n));
        const struct nginxconf_stanza s = { .cert_path = "/run/enclave-acm/e2e/chain.pem", .key_uri = uri };
        ASSERT_OK(nginxconf_stanza_render(&s, &text, &text_len));
        want = test_data_load("nginx/stanza-softhsm.expected.conf", &want_len);
        ASSERT_TRUE(want != NULL);
        ASSERT_STREQ(text, want);
        ASSERT_EQ(text_len, want_len);
}

static void test_stanza_quoting(void) {
        const struct nginxconf_stanza s = {
                .cert_path = "/etc/ssl/a \"b\"\\c;{d}.pem",
                .key_uri = TEST_URI,
                .engine = "pkcs11-x",
        };
        _cleanup_free_ char *text = NULL;
        size_t n;

        ASSERT_OK(nginxconf_stanza_render(&s, &text, &n));
        ASSERT_TRUE(strstr(text, "\nssl_certificate \"/etc/ssl/a \\\"b\\\"\\\\c;{d}.pem\";\n") != NULL);
        ASSERT_TRUE(strstr(text, "\nssl_certificate_key \"engine:pkcs11-x:" TEST_URI "\";\n") != NULL);
}

static void test_stanza_refuse(void) {
        struct nginxconf_stanza s = { .cert_path = "/etc/ssl/$host.pem", .key_uri = TEST_URI };
        char *text = NULL;
        size_t n;

        ASSERT_ERR(nginxconf_stanza_render(&s, &text, &n), -EINVAL); /* nginx variable */
        s.cert_path = "/etc/ssl/a\nb.pem";
        ASSERT_ERR(nginxconf_stanza_render(&s, &text, &n), -EINVAL);
        s.cert_path = "etc/ssl/a.pem";
        ASSERT_ERR(nginxconf_stanza_render(&s, &text, &n), -EINVAL);
        s.cert_path = "/etc/ssl/a.pem";
        s.key_uri = "pkcs11:token=$x";
        ASSERT_ERR(nginxconf_stanza_render(&s, &text, &n), -EINVAL);
        s.key_uri = "pkcs11:token=a\"b";
        ASSERT_ERR(nginxconf_stanza_render(&s, &text, &n), -EINVAL);
        s.key_uri = "/etc/ssl/key.pem";
        ASSERT_ERR(nginxconf_stanza_render(&s, &text, &n), -EINVAL);
        s.key_uri = TEST_URI;
        s.engine = "pk cs11";
        ASSERT_ERR(nginxconf_stanza_render(&s, &text, &n), -EINVAL);
        ASSERT_TRUE(text == NULL);
}

/* ---- nginx.conf: ssl_engine and env ---- */

static void test_main_debian(void) {
        expect_file("nginx/debian-nginx.conf", "nginx/debian-nginx.main.expected.conf", apply_main);
}

static void test_main_crlf(void) {
        expect_file("nginx/multi-server-crlf.conf", "nginx/multi-server-crlf.main.expected.conf",
                    apply_main);
}

static void test_main_keeps_existing(void) {
        static const char in[] = "# top\nenv OPENSSL_CONF=/etc/ssl/acm.cnf;\nssl_engine \"pkcs11\";\n"
                                 "env ENCLAVE_ACM_ADDRESS;\nevents {}\n";

        expect_text(apply_main, in, 0, in);
}

static void test_main_partial(void) {
        expect_text(apply_main, "ssl_engine pkcs11; # keep\nenv OPENSSL_CONF;\nhttp { }\n", 1,
                    "ssl_engine pkcs11; # keep\nenv OPENSSL_CONF;\nenv ENCLAVE_ACM_ADDRESS;\nhttp { }\n");
}

static void test_main_shapes(void) {
        expect_text(apply_main, "", 1, "ssl_engine pkcs11;\nenv ENCLAVE_ACM_ADDRESS;\nenv OPENSSL_CONF;\n");
        expect_text(apply_main, "# only a comment", 1,
                    "# only a comment\nssl_engine pkcs11;\nenv ENCLAVE_ACM_ADDRESS;\nenv OPENSSL_CONF;\n");
        expect_text(apply_main, "# c\n\n  events {}\n", 1,
                    "# c\n\nssl_engine pkcs11;\nenv ENCLAVE_ACM_ADDRESS;\nenv OPENSSL_CONF;\n  events {}\n");
        expect_text(apply_main, "  worker_processes 1;", 1,
                    "  worker_processes 1;\n  ssl_engine pkcs11;\n  env ENCLAVE_ACM_ADDRESS;\n  env "
                    "OPENSSL_CONF;");
        expect_text(apply_main, "pid /x; events {}\n", 1,
                    "pid /x;\nssl_engine pkcs11;\nenv ENCLAVE_ACM_ADDRESS;\nenv OPENSSL_CONF; events {}\n");
}

static void test_main_errors(void) {
        static const char other[] = "user www-data;\n  ssl_engine   dynamic;\n";
        static const char nested[] = "http {\n\tssl_engine pkcs11;\n}\n";
        static const char args[] = "ssl_engine;\n";

        expect_error(apply_main, other, strlen(other), -EEXIST, 2, 16);
        expect_error(apply_main, nested, strlen(nested), -EINVAL, 2, 2);
        expect_error(apply_main, args, strlen(args), -EINVAL, 1, 1);
}

static void test_main_bad_opts(void) {
        const char *const bad_env[] = { "OK", "NOT OK", NULL };
        struct nginxconf_main_opts o = { .env = bad_env };
        struct nginxconf_error e = {};
        char *out = NULL;
        size_t n;

        ASSERT_ERR(nginxconf_ensure_main("", 0, &o, &out, &n, &e), -EINVAL);
        o = (struct nginxconf_main_opts){ .engine = "pkcs11;evil" };
        ASSERT_ERR(nginxconf_ensure_main("", 0, &o, &out, &n, &e), -EINVAL);
        ASSERT_ERR(nginxconf_ensure_main("", 0, NULL, NULL, &n, &e), -EINVAL);
        ASSERT_TRUE(out == NULL);
}

/* ---- site files: the stanza include ---- */

static void test_include_debian(void) {
        expect_file("nginx/debian-default-ssl.conf", "nginx/debian-default-ssl.include.expected.conf",
                    apply_debian_site);
}

static void test_include_al2023(void) {
        expect_file("nginx/al2023-nginx.conf", "nginx/al2023-nginx.expected.conf", apply_al2023);
}

static void test_include_crlf_server_name(void) {
        expect_file("nginx/multi-server-crlf.conf", "nginx/multi-server-crlf.www.expected.conf", apply_www);
}

static void test_include_crlf_all(void) {
        expect_file("nginx/multi-server-crlf.conf", "nginx/multi-server-crlf.all.expected.conf", apply_all);
}

static int apply_8443(const char *t, size_t n, char **o, size_t *on, struct nginxconf_error *e) {
        const struct nginxconf_include_opts opts = { .stanza_path = "/s.conf", .port = 8443 };

        return nginxconf_ensure_include(t, n, &opts, o, on, e);
}

static void test_include_shapes(void) {
        /* stream {} servers, the old "ssl on;", an existing include, a multi-line directive */
        expect_text(apply_8443, "stream {\n  server {\n    listen 8443;\n    ssl on;\n  }\n}\n", 1,
                    "stream {\n  server {\n    listen 8443;\n    ssl on;\n    include /s.conf;\n  }\n}\n");
        expect_text(apply_8443, "server { listen [::1]:8443 ssl; include \"/s.conf\"; }", 0,
                    "server { listen [::1]:8443 ssl; include \"/s.conf\"; }");
        expect_text(apply_8443, "server {\n\tlisten 8443 ssl;\n\tssl_certificate\n\t\t/a.pem;\n}\n", 1,
                    "server {\n\tlisten 8443 ssl;\n\t" NGINXCONF_DISABLED_MARK
                    "ssl_certificate\n\t\t" NGINXCONF_DISABLED_MARK "/a.pem;\n\tinclude /s.conf;\n}\n");
        expect_text(apply_8443, "server{listen 8443 ssl;ssl_certificate /a;ssl_certificate_key /b;}", 1,
                    "server{listen 8443 ssl;" NGINXCONF_DISABLED_MARK
                    "ssl_certificate /a;\n" NGINXCONF_DISABLED_MARK
                    "ssl_certificate_key /b;\ninclude /s.conf; }");
}

static void test_include_not_matching(void) {
        static const char plain[] = "# no TLS here\nhttp {\n  server {\n    listen 80;\n  }\n"
                                    "  upstream u { server 127.0.0.1:8443; }\n}\n";
        static const char other_port[] = "server {\n    listen 443 ssl;\n}\n";
        static const char none[] = "events {}\n";

        expect_error(apply_8443, plain, strlen(plain), -ENOENT, 3, 3);
        expect_error(apply_8443, other_port, strlen(other_port), -ENOENT, 1, 1);
        expect_error(apply_8443, none, strlen(none), -ENOENT, 0, 0);
}

static void test_include_bad_opts(void) {
        struct nginxconf_include_opts o = { .stanza_path = "relative.conf" };
        struct nginxconf_error e = {};
        char *out = NULL;
        size_t n;

        ASSERT_ERR(nginxconf_ensure_include("", 0, &o, &out, &n, &e), -EINVAL);
        o.stanza_path = "/etc/nginx/*.conf";
        ASSERT_ERR(nginxconf_ensure_include("", 0, &o, &out, &n, &e), -EINVAL);
        o.stanza_path = "/etc/nginx/a\nb.conf";
        ASSERT_ERR(nginxconf_ensure_include("", 0, &o, &out, &n, &e), -EINVAL);
        ASSERT_ERR(nginxconf_ensure_include("", 0, NULL, &out, &n, &e), -EINVAL);
        ASSERT_TRUE(out == NULL);
}

/* ---- hostile input ---- */

static void test_hostile_nul(void) {
        static const char in[] = "events {}\nhttp {\n  a b\0c;\n}\n";

        expect_error(apply_main, in, sizeof(in) - 1, -EINVAL, 3, 6);
        expect_error(apply_8443, in, sizeof(in) - 1, -EINVAL, 3, 6);
}

static void test_hostile_sizes(void) {
        size_t big = NGINXCONF_MAX_INPUT + 1, out_len = 0;
        _cleanup_free_ char *t = malloc(big), *out = NULL;
        struct nginxconf_error e = {};

        ASSERT_TRUE(t != NULL);
        memset(t, '#', big);
        t[0] = '\n';
        expect_error(apply_main, t, NGINXCONF_MAX_LINE + 2, -E2BIG, 2, 1); /* one line of 64 KiB + 1 */
        for (size_t i = 0; i < big; i += 100)
                t[i] = '\n';
        expect_error(apply_main, t, big, -E2BIG, 0, 0);
        ASSERT_EQ(apply_main(t, NGINXCONF_MAX_INPUT, &out, &out_len, &e), 1); /* 16 MiB of comments: fine */
        ASSERT_EQ(out_len, NGINXCONF_MAX_INPUT + strlen("\nssl_engine pkcs11;\nenv ENCLAVE_ACM_ADDRESS;\n"
                                                        "env OPENSSL_CONF;\n"));
}

static void test_hostile_syntax(void) {
        static const struct {
                const char *text;
                unsigned line, col;
        } cases[] = {
                { "http {\n  log_format x \"abc;\n}\n", 2, 16 }, /* unterminated quote */
                { "http {\n  return 200 'a\\'b;\n}\n", 2, 14 },  /* escaped quote inside */
                { "http {\n  server {\n  }\n", 1, 6 },           /* unclosed block */
                { "events {}\n}\n", 2, 1 },                      /* stray '}' */
                { "worker_processes 1\n", 1, 1 },                /* missing ';' at EOF */
                { "a \"b\"c;\n", 1, 6 },                         /* quote glued to a word */
                { ";\n", 1, 1 },
                { "{}\n", 1, 1 },
                { "http { a }\n", 1, 10 },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                expect_error(apply_main, cases[i].text, strlen(cases[i].text), -EINVAL, cases[i].line,
                             cases[i].col);
                if (tap_failed_current) {
                        printf("# case %zu: %s\n", i, cases[i].text);
                        return;
                }
        }
}

static void test_hostile_nesting(void) {
        size_t depth = 100000, n = depth * 5;
        _cleanup_free_ char *t = malloc(n + 1);

        ASSERT_TRUE(t != NULL);
        for (size_t i = 0; i < depth; i++)
                memcpy(t + 3 * i, "a{\n", 3);
        for (size_t i = 0; i < depth; i++)
                memcpy(t + 3 * depth + 2 * i, "}\n", 2);
        expect_error(apply_main, t, n, -E2BIG, NGINXCONF_MAX_DEPTH + 1, 2);
        for (size_t i = 0; i < n / 2; i++)
                memcpy(t + 2 * i, "}\n", 2);
        expect_error(apply_8443, t, n / 2 * 2, -EINVAL, 1, 1);
}

/* Every single-bit flip, every byte set to 0x00 and 0xff, every truncation of a sample: each run
 * fails cleanly or succeeds idempotently. */
static void run_mutant(const char *t, size_t n) {
        apply_fn fns[] = { apply_main, apply_8443, apply_www };

        for (size_t i = 0; i < ELEMENTSOF(fns); i++) {
                _cleanup_free_ char *out = NULL, *again = NULL;
                size_t out_len = 0, again_len = 0;
                struct nginxconf_error e = {};
                int r = fns[i](t, n, &out, &out_len, &e);

                if (r < 0) {
                        ASSERT_TRUE(out == NULL && e.message != NULL);
                        continue;
                }
                r = fns[i](out, out_len, &again, &again_len, &e);
                if (r != 0)
                        printf("# fn %zu: %d %u:%u %s on:\n# %.*s\n# out:\n# %.*s\n", i, r, e.line, e.column,
                               e.message ? e.message : "", (int) n, t, (int) out_len, out);
                ASSERT_EQ(r, 0);
                ASSERT_TRUE(again_len == out_len && memcmp(again, out, out_len) == 0);
        }
}

static void test_mutations(void) {
        static const char sample[] = "user x;\nhttp {\n server {\n  listen 8443 ssl; # c\n"
                                     "  server_name www.example.com;\n  ssl_certificate \"/a;b\";\n"
                                     "  location / { return 200 'x\\'y'; }\n }\n}\n";
        size_t n = sizeof(sample) - 1;

        for (size_t i = 0; i <= n && !tap_failed_current; i++) {
                _cleanup_free_ char *m = malloc(n + 1);

                ASSERT_TRUE(m != NULL);
                run_mutant(memcpy(m, sample, i), i); /* truncation */
                for (int v = 0; i < n && v < 10 && !tap_failed_current; v++) {
                        memcpy(m, sample, n);
                        m[i] = v < 8 ? (char) (sample[i] ^ (1 << v)) : v == 8 ? '\0' : (char) 0xff;
                        run_mutant(m, n);
                }
        }
}

/* clang-format off */
TAP_MAIN(TEST("/nginx/get-pid", test_get_pid),
         TEST("/nginx/stanza/render", test_stanza_render),
         TEST("/nginx/stanza/quoting", test_stanza_quoting),
         TEST("/nginx/stanza/refuse", test_stanza_refuse),
         TEST("/nginx/main/debian", test_main_debian),
         TEST("/nginx/main/crlf", test_main_crlf),
         TEST("/nginx/main/keeps-existing", test_main_keeps_existing),
         TEST("/nginx/main/partial", test_main_partial),
         TEST("/nginx/main/shapes", test_main_shapes),
         TEST("/nginx/main/errors", test_main_errors),
         TEST("/nginx/main/bad-opts", test_main_bad_opts),
         TEST("/nginx/include/debian", test_include_debian),
         TEST("/nginx/include/al2023", test_include_al2023),
         TEST("/nginx/include/crlf-server-name", test_include_crlf_server_name),
         TEST("/nginx/include/crlf-all", test_include_crlf_all),
         TEST("/nginx/include/shapes", test_include_shapes),
         TEST("/nginx/include/not-matching", test_include_not_matching),
         TEST("/nginx/include/bad-opts", test_include_bad_opts),
         TEST("/nginx/hostile/nul", test_hostile_nul),
         TEST("/nginx/hostile/sizes", test_hostile_sizes),
         TEST("/nginx/hostile/syntax", test_hostile_syntax),
         TEST("/nginx/hostile/nesting", test_hostile_nesting),
         TEST("/nginx/hostile/mutations", test_mutations))
/* clang-format on */
