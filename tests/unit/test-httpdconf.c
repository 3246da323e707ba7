/* Unit tests for httpd/: SSLCertificateFile / SSLCertificateKeyFile / SSLCryptoDevice edits and the syntax
 * check. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "httpd/httpdconf.h"
#include "tests/lib/data.h"
#include "tests/lib/tap.h"

#define TEST_CERT "/run/enclave-acm/certs/www.example.com.pem"
#define TEST_URI                                                                                           \
        "pkcs11:model=enclave-token;manufacturer=enclave-acm;token=www.example.com;id=%01;object=acm-key;" \
        "type=private?pin-source=file:/run/enclave-acm/pins/www.example.com"

static const struct httpdconf_cert_opts base_opts = { .cert_path = TEST_CERT, .key_uri = TEST_URI };

/* Exact output for a sample, and applying again to the output changes nothing. */
static void expect_file(const char *input, const char *expected, const struct httpdconf_cert_opts *o) {
        _cleanup_free_ char *in = NULL, *want = NULL, *out = NULL, *again = NULL;
        size_t in_len = 0, want_len = 0, out_len = 0, again_len = 0;
        struct httpdconf_error e = {};

        in = test_data_load(input, &in_len);
        want = test_data_load(expected, &want_len);
        ASSERT_TRUE(in && want);
        ASSERT_OK(httpdconf_check_syntax(in, in_len, &e));
        ASSERT_EQ(httpdconf_set_cert(in, in_len, o, &out, &out_len, &e), 1);
        ASSERT_EQ(out_len, want_len);
        ASSERT_MEMEQ(out, want, want_len);
        ASSERT_EQ(out[out_len], '\0');
        ASSERT_EQ(httpdconf_set_cert(out, out_len, o, &again, &again_len, &e), 0);
        ASSERT_EQ(again_len, out_len);
        ASSERT_MEMEQ(again, out, out_len);
        ASSERT_OK(httpdconf_check_syntax(out, out_len, &e));
}

static void expect_text(const struct httpdconf_cert_opts *o, const char *in, int ret, const char *want) {
        _cleanup_free_ char *out = NULL, *again = NULL;
        size_t out_len, again_len;
        struct httpdconf_error e = {};

        ASSERT_EQ(httpdconf_set_cert(in, strlen(in), o, &out, &out_len, &e), ret);
        ASSERT_STREQ(out, want);
        ASSERT_EQ(out_len, strlen(want));
        ASSERT_EQ(httpdconf_set_cert(out, out_len, o, &again, &again_len, &e), 0);
        ASSERT_STREQ(again, out);
}

static void expect_error(const struct httpdconf_cert_opts *o, const char *text, size_t len, int err,
                         unsigned line, unsigned col) {
        char *out = NULL;
        size_t out_len = 12345;
        struct httpdconf_error e = {};

        ASSERT_ERR(httpdconf_set_cert(text, len, o, &out, &out_len, &e), err);
        ASSERT_TRUE(out == NULL && out_len == 12345); /* nothing half-written */
        ASSERT_TRUE(e.message != NULL);
        ASSERT_EQ(e.line, line);
        ASSERT_EQ(e.column, col);
}

static void expect_syntax_error(const char *text, size_t len, int err, unsigned line, unsigned col) {
        struct httpdconf_error e = {};

        ASSERT_ERR(httpdconf_check_syntax(text, len, &e), err);
        ASSERT_TRUE(e.message != NULL);
        ASSERT_EQ(e.line, line);
        ASSERT_EQ(e.column, col);
        expect_error(&base_opts, text, len, err, line, col);
}

/* ---- sample files ---- */

static void test_debian(void) {
        expect_file("httpd/debian-default-ssl.conf", "httpd/debian-default-ssl.expected.conf", &base_opts);
}

static void test_rhel(void) {
        expect_file("httpd/rhel-ssl.conf", "httpd/rhel-ssl.expected.conf", &base_opts);
}

static void test_acm(void) {
        expect_file("httpd/acm-httpd.conf", "httpd/acm-httpd.expected.conf", &base_opts);
}

static void test_crlf_server_name(void) {
        struct httpdconf_cert_opts o = base_opts;

        o.server_name = "Example.COM"; /* the ServerAlias, another case */
        o.port = 443;
        expect_file("httpd/multi-vhost-crlf.conf", "httpd/multi-vhost-crlf.www.expected.conf", &o);
}

static void test_crlf_port(void) {
        struct httpdconf_cert_opts o = base_opts;

        o.port = 8443;
        expect_file("httpd/multi-vhost-crlf.conf", "httpd/multi-vhost-crlf.8443.expected.conf", &o);
        o.port = 0;
        o.server_name = "api.example.org"; /* ServerName https://api.example.org:8443 */
        expect_file("httpd/multi-vhost-crlf.conf", "httpd/multi-vhost-crlf.8443.expected.conf", &o);
}

static void test_crlf_all(void) {
        expect_file("httpd/multi-vhost-crlf.conf", "httpd/multi-vhost-crlf.all.expected.conf", &base_opts);
}

/* ---- small shapes ---- */

static void test_server_config_scope(void) {
        expect_text(&base_opts,
                    "SSLEngine on\n  SSLCertificateFile /a.pem\nSSLCertificateChainFile /c.pem\n", 1,
                    "SSLEngine on\n  SSLCryptoDevice pkcs11\n  SSLCertificateFile \"" TEST_CERT "\"\n"
                    "  SSLCertificateKeyFile \"" TEST_URI "\"\nSSLCertificateChainFile /c.pem\n");
        expect_text(&base_opts, "SSLCryptoDevice pkcs11\nSSLCertificateFile /a.pem", 1,
                    "SSLCryptoDevice pkcs11\nSSLCertificateFile \"" TEST_CERT "\"\n"
                    "SSLCertificateKeyFile \"" TEST_URI "\"");
}

static void test_device_shapes(void) {
        struct httpdconf_cert_opts o = base_opts;

        expect_text(&o,
                    "sslcryptodevice  BUILTIN\n<VirtualHost *:443>\nSSLCertificateFile\n</VirtualHost>\n", 1,
                    "sslcryptodevice  pkcs11\n<VirtualHost *:443>\nSSLCertificateFile \"" TEST_CERT "\"\n"
                    "SSLCertificateKeyFile \"" TEST_URI "\"\n</VirtualHost>\n");
        o.skip_crypto_device = true;
        expect_text(&o,
                    "<VirtualHost *:443>\n SSLCryptoDevice nosuch\n SSLCertificateFile a\n</VirtualHost>\n",
                    1,
                    "<VirtualHost *:443>\n SSLCryptoDevice nosuch\n SSLCertificateFile \"" TEST_CERT "\"\n"
                    " SSLCertificateKeyFile \"" TEST_URI "\"\n</VirtualHost>\n");
        o.skip_crypto_device = false;
        o.crypto_device = "pkcs11-custom";
        expect_text(&o, "\t<VirtualHost [::1]:443>\n\tSSLCertificateFile \"/a b\" \\\n\n\t</VirtualHost>\n",
                    1,
                    "\tSSLCryptoDevice pkcs11-custom\n\t<VirtualHost [::1]:443>\n\tSSLCertificateFile "
                    "\"" TEST_CERT "\" \\\n\n\tSSLCertificateKeyFile \"" TEST_URI "\"\n\t</VirtualHost>\n");
}

/* Found by fuzz-httpd-rewrite: a second key directive on a line that starts with '\r' (blank to
 * Apache) must be disabled on its first line too, or the next run disables it again. */
static void test_disable_extra(void) {
        expect_text(&base_opts,
                    "<VirtualHost *:443>\n SSLCertificateFile /a\n SSLCertificateKeyFile /k\n"
                    "\r  SSLCertificateKeyFile \\\r\n   /x\n</VirtualHost>\n",
                    1,
                    "SSLCryptoDevice pkcs11\n<VirtualHost *:443>\n SSLCertificateFile \"" TEST_CERT "\"\n"
                    " SSLCertificateKeyFile \"" TEST_URI "\"\n\r  " HTTPDCONF_DISABLED_MARK
                    "SSLCertificateKeyFile \\\r\n   " HTTPDCONF_DISABLED_MARK "/x\n</VirtualHost>\n");
}

static void test_vhost_selection(void) {
        struct httpdconf_cert_opts o = base_opts;
        static const char two[] =
                "<VirtualHost *:443>\nServerName a.example\nSSLCertificateFile /a\n</VirtualHost>\n"
                "<VirtualHost *>\nServerName b.example\nSSLCertificateFile /b\n</VirtualHost>\n";

        o.port = 8443; /* "*" has no port: it matches any */
        o.server_name = "b.example";
        expect_text(&o, two, 1,
                    "<VirtualHost *:443>\nServerName a.example\nSSLCertificateFile /a\n</VirtualHost>\n"
                    "SSLCryptoDevice pkcs11\n<VirtualHost *>\nServerName b.example\nSSLCertificateFile "
                    "\"" TEST_CERT "\"\nSSLCertificateKeyFile \"" TEST_URI "\"\n</VirtualHost>\n");
}

static void test_errors(void) {
        struct httpdconf_cert_opts o = base_opts;
        static const char none[] = "# nothing\n<VirtualHost *:443>\n  SSLEngine on\n</VirtualHost>\n";
        static const char other[] =
                "SSLCryptoDevice   rdrand\n<VirtualHost *:443>\nSSLCertificateFile /a\n</VirtualHost>\n";
        static const char in_vhost[] =
                "<VirtualHost *:443>\n    SSLCryptoDevice pkcs11\nSSLCertificateFile /a\n"
                "</VirtualHost>\n";

        expect_error(&o, none, strlen(none), -ENOENT, 0, 0);
        expect_error(&o, other, strlen(other), -EEXIST, 1, 19);
        expect_error(&o, in_vhost, strlen(in_vhost), -EINVAL, 2, 5);
        o.server_name = "nosuch.example";
        expect_error(&o, other + 25, strlen(other + 25), -ENOENT, 0, 0);
        o.server_name = NULL;
        o.port = 443;
        expect_error(&o, none, strlen(none), -ENOENT, 2, 1);
}

static void test_bad_opts(void) {
        static const char *const bad[][2] = {
                { "/a\"b.pem", TEST_URI }, { "/a\\b.pem", TEST_URI }, { "/a${X}.pem", TEST_URI },
                { "a.pem", TEST_URI },     { "/a\n.pem", TEST_URI },  { "/a.pem", "engine:pkcs11:pkcs11:x" },
                { "/a.pem", "" },          { NULL, TEST_URI },        { "/a.pem", "pkcs11:a\"b" },
        };
        struct httpdconf_error e = {};
        char *out = NULL;
        size_t n;

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                struct httpdconf_cert_opts o = { .cert_path = bad[i][0], .key_uri = bad[i][1] };

                ASSERT_ERR(httpdconf_set_cert("", 0, &o, &out, &n, &e), -EINVAL);
        }
        struct httpdconf_cert_opts o = base_opts;
        o.crypto_device = "pkcs11 x";
        ASSERT_ERR(httpdconf_set_cert("", 0, &o, &out, &n, &e), -EINVAL);
        ASSERT_ERR(httpdconf_set_cert("", 0, NULL, &out, &n, &e), -EINVAL);
        ASSERT_ERR(httpdconf_set_cert("", 0, &base_opts, NULL, &n, &e), -EINVAL);
        ASSERT_TRUE(out == NULL);
}

/* ---- syntax and hostile input ---- */

static void test_syntax(void) {
        static const struct {
                const char *text;
                unsigned line, col;
        } cases[] = {
                { "<VirtualHost *:443>\n<IfModule x>\n</VirtualHost>\n", 3, 1 }, /* mismatched close */
                { "ServerName a\n\n  <VirtualHost *:443>\n", 3, 1 },             /* never closed */
                { "</IfModule>\n", 1, 1 },                                       /* stray close */
                { "<VirtualHost *:443\nSSLEngine on\n</VirtualHost>\n", 1, 1 },  /* no '>' */
                { "<VirtualHost a>\n <VirtualHost b>\n </VirtualHost>\n</VirtualHost>\n", 2, 1 },
                { "LogFormat \"%h \\\"%r\\\" x\n", 1, 11 },      /* unterminated quote */
                { "  CustomLog logs/x \\\n   \"%t %h\n", 2, 4 }, /* ...across a continuation */
                { "<>\n", 1, 1 },
                { "# c \\\n<VirtualHost *:443>\n</VirtualHost>\n", 3,
                  1 }, /* as apache2 -t: comment continued */
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                expect_syntax_error(cases[i].text, strlen(cases[i].text), -EINVAL, cases[i].line,
                                    cases[i].col);
                if (tap_failed_current) {
                        printf("# case %zu: %s\n", i, cases[i].text);
                        return;
                }
        }
}

static void test_syntax_ok(void) {
        static const char ok[] =
                "# a comment \\\n<VirtualHost *:443>\n" /* a continued comment swallows it */
                "<IfModule !mod_ssl.c>\n  <Else>\n  </Else>\n</ifmodule>\n"
                "LogFormat \"%h \\\"%r\\\"\" x\r\nBrowserMatch \"MSIE\" \\\r\n  nokeepalive\r\n";
        struct httpdconf_error e = {};

        ASSERT_OK(httpdconf_check_syntax(ok, strlen(ok), &e));
        ASSERT_OK(httpdconf_check_syntax(NULL, 0, &e));
}

static void test_hostile_nul_and_sizes(void) {
        static const char nul[] = "<VirtualHost *:443>\n  SSLCertificateFile /a\0b\n</VirtualHost>\n";
        size_t big = HTTPDCONF_MAX_INPUT + 1;
        _cleanup_free_ char *t = malloc(big);

        expect_syntax_error(nul, sizeof(nul) - 1, -EINVAL, 2, 24);
        ASSERT_TRUE(t != NULL);
        memset(t, '#', big);
        t[0] = '\n';
        expect_syntax_error(t, HTTPDCONF_MAX_LINE + 2, -E2BIG, 2, 1);
        for (size_t i = 0; i < big; i += 100)
                t[i] = '\n';
        expect_syntax_error(t, big, -E2BIG, 0, 0);
        expect_error(&base_opts, t, HTTPDCONF_MAX_INPUT, -ENOENT, 0,
                     0); /* 16 MiB of comments: read through */
}

static void test_hostile_nesting(void) {
        size_t depth = 100000, unit = strlen("<IfModule x>\n");
        _cleanup_free_ char *t = malloc(depth * unit);

        ASSERT_TRUE(t != NULL);
        for (size_t i = 0; i < depth; i++)
                memcpy(t + i * unit, "<IfModule x>\n", unit);
        expect_syntax_error(t, depth * unit, -E2BIG, HTTPDCONF_MAX_DEPTH + 1, 1);
        /* 100k continuation lines make one logical line; bounded, no recursion */
        for (size_t i = 0; i < depth; i++)
                memcpy(t + i * unit, "Foo bar baz\\\n", unit);
        expect_error(&base_opts, t, depth * unit, -ENOENT, 0, 0);
}

/* Every single-bit flip, every byte set to 0x00 and 0xff, every truncation of a sample: each run
 * fails cleanly or succeeds idempotently. */
static void run_mutant(const char *t, size_t n) {
        struct httpdconf_cert_opts opts[2] = { base_opts, base_opts };

        opts[1].server_name = "www.example.com";
        for (size_t i = 0; i < ELEMENTSOF(opts); i++) {
                _cleanup_free_ char *out = NULL, *again = NULL;
                size_t out_len = 0, again_len = 0;
                struct httpdconf_error e = {};
                int r = httpdconf_set_cert(t, n, &opts[i], &out, &out_len, &e);

                if (r < 0) {
                        ASSERT_TRUE(out == NULL && e.message != NULL);
                        continue;
                }
                ASSERT_OK(httpdconf_check_syntax(t, n, &e));         /* what set_cert takes is valid */
                ASSERT_OK(httpdconf_check_syntax(out, out_len, &e)); /* and stays valid */
                r = httpdconf_set_cert(out, out_len, &opts[i], &again, &again_len, &e);
                if (r != 0)
                        printf("# opts %zu: %d %u:%u %s on:\n# %.*s\n# out:\n# %.*s\n", i, r, e.line,
                               e.column, e.message ? e.message : "", (int) n, t, (int) out_len, out);
                ASSERT_EQ(r, 0);
                ASSERT_TRUE(again_len == out_len && memcmp(again, out, out_len) == 0);
        }
}

static void test_mutations(void) {
        static const char sample[] =
                "SSLCryptoDevice builtin\n<IfModule ssl>\n<VirtualHost *:443>\n"
                " ServerName www.example.com\n SSLCertificateFile \"/a b\"\n"
                " SSLCertificateKeyFile \\\n  /k\n SSLCertificateFile /c\n</VirtualHost>\n"
                "</IfModule>\n";
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
TAP_MAIN(TEST("/httpd/sample/debian-default-ssl", test_debian),
         TEST("/httpd/sample/rhel-ssl", test_rhel),
         TEST("/httpd/sample/acm", test_acm),
         TEST("/httpd/sample/crlf-server-name", test_crlf_server_name),
         TEST("/httpd/sample/crlf-port", test_crlf_port),
         TEST("/httpd/sample/crlf-all", test_crlf_all),
         TEST("/httpd/shapes/server-config-scope", test_server_config_scope),
         TEST("/httpd/shapes/crypto-device", test_device_shapes),
         TEST("/httpd/shapes/disable-extra", test_disable_extra),
         TEST("/httpd/shapes/vhost-selection", test_vhost_selection),
         TEST("/httpd/errors/targets", test_errors),
         TEST("/httpd/errors/bad-opts", test_bad_opts),
         TEST("/httpd/syntax/errors", test_syntax),
         TEST("/httpd/syntax/ok", test_syntax_ok),
         TEST("/httpd/hostile/nul-and-sizes", test_hostile_nul_and_sizes),
         TEST("/httpd/hostile/nesting", test_hostile_nesting),
         TEST("/httpd/hostile/mutations", test_mutations))
/* clang-format on */
