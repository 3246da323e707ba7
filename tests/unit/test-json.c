/* common/json: the bounded reader (escapes, numbers, caps, errors, mutations) and the writer. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "common/cleanup-ssl.h"
#include "common/json.h"
#include "common/secret.h"
#include "tests/lib/data.h"
#include "tests/lib/tap.h"

static int validate(const char *s) {
        return json_validate(s, strlen(s), NULL, NULL);
}

static int validate_lim(const char *s, const struct json_limits *lim) {
        return json_validate(s, strlen(s), lim, NULL);
}

/* The one string value in doc, read as a C string (or as a secret when secret). */
static int read_one_string(const char *doc, size_t len, bool secret, char **ret, size_t *ret_len) {
        _cleanup_(json_reader_done) struct json_reader r = {};
        _cleanup_secret_ struct secret_buf *s = NULL;
        char *str = NULL;
        int k;

        k = json_reader_init(&r, doc, len, NULL, NULL);
        if (k < 0)
                return k;
        k = secret ? json_read_secret(&r, &s) : json_read_string(&r, &str);
        if (k >= 0)
                k = json_reader_end(&r);
        if (k < 0) {
                free(str);
                return k;
        }
        if (secret) {
                str = malloc(s->len + 1);
                if (!str)
                        return -ENOMEM;
                memcpy(str, s->data, s->len);
                str[s->len] = 0;
                *ret_len = s->len;
        } else
                *ret_len = strlen(str);
        *ret = str;
        return 0;
}

static void test_escapes(void) {
        static const char doc[] =
                "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0041\\u00e9\\u20AC\\ud83d\\ude00 \xc3\xa9\xe2\x82\xac"
                "\xf0\x9f\x98\x80\x7f\"";
        static const char want[] =
                "\"\\/\b\f\n\r\tA\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80 \xc3\xa9\xe2\x82\xac"
                "\xf0\x9f\x98\x80\x7f";
        static const char ranges[] =
                "\"\\u0001\\u007f\\u0080\\u07ff\\u0800\\uffff\\ud800\\udc00\\udbff\\udfff\"";
        _cleanup_free_ char *s = NULL;
        size_t n;

        ASSERT_OK(read_one_string(doc, strlen(doc), false, &s, &n));
        ASSERT_EQ(n, strlen(want));
        ASSERT_STREQ(s, want);
        /* the smallest and largest code points of each UTF-8 length, escaped */
        free(s);
        s = NULL;
        ASSERT_OK(read_one_string(ranges, strlen(ranges), false, &s, &n));
        ASSERT_EQ(n, 1 + 1 + 2 + 2 + 3 + 3 + 4 + 4);
        ASSERT_MEMEQ(s, "\x01\x7f\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf\xf0\x90\x80\x80\xf4\x8f\xbf\xbf",
                     n);
}

static void test_nul(void) {
        _cleanup_free_ char *s = NULL;
        size_t n;

        /* a C string cannot hold U+0000; a secret can; skipping accepts it */
        ASSERT_ERR(read_one_string("\"a\\u0000b\"", 10, false, &s, &n), -EBADMSG);
        ASSERT_OK(read_one_string("\"a\\u0000b\"", 10, true, &s, &n));
        ASSERT_EQ(n, 3);
        ASSERT_MEMEQ(s, "a\0b", 3);
        ASSERT_OK(validate("\"a\\u0000b\""));
        ASSERT_ERR(validate("{\"a\\u0000b\": 1}"), 0); /* keys only skipped */
}

static void test_bad_escapes(void) {
        static const char *const bad[] = {
                "\"\\x\"",
                "\"\\u12\"",
                "\"\\u12G4\"",
                "\"\\U0041\"",
                "\"\\'\"",
                "\"\\\"",
                "\"\\",
                "\"\\u\"",
                "\"\\ud800\"",
                "\"\\ud800x\"",
                "\"\\udc00\"",
                "\"\\udc00\\ud800\"",
                "\"\\ud800\\u0041\"",
                "\"\\ud800\\ud800\"",
                "\"\\ud800\\\\udc00\"",
                "\"\\udbff\\ue000\"",
                "\"\\ud800\\n\"",
                "\"\\ud800\\u\"",
                "\"\\0\"",
                "\"\\a\"",
        };
        _cleanup_free_ char *s = NULL;
        size_t n;

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                ASSERT_ERR(validate(bad[i]), -EBADMSG);
                ASSERT_ERR(read_one_string(bad[i], strlen(bad[i]), false, &s, &n), -EBADMSG);
                ASSERT_ERR(read_one_string(bad[i], strlen(bad[i]), true, &s, &n), -EBADMSG);
        }
}

static void test_bad_utf8(void) {
        static const char *const bad[] = {
                "\"\xc0\xaf\"",                                             /* overlong '/' */
                "\"\xc1\xbf\"",                                             /* overlong */
                "\"\xe0\x80\xaf\"",                                         /* overlong, 3 bytes */
                "\"\xe0\x9f\xbf\"",                                         /* overlong U+07FF */
                "\"\xf0\x80\x80\xaf\"",                                     /* overlong, 4 bytes */
                "\"\xf0\x8f\xbf\xbf\"",                                     /* overlong U+FFFF */
                "\"\xed\xa0\x80\"",                                         /* encoded surrogate U+D800 */
                "\"\xed\xbf\xbf\"",                                         /* encoded surrogate U+DFFF */
                "\"\xf4\x90\x80\x80\"",                                     /* U+110000 */
                "\"\xf5\x80\x80\x80\"", "\"\xff\"", "\"\xfe\"", "\"\x80\"", /* lone continuation */
                "\"\xe2\x82\"",                                             /* truncated */
                "\"\xe2\x28\xa1\"",     "\xc3\xa9",                         /* outside a string */
        };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                ASSERT_ERR(validate(bad[i]), -EBADMSG);
        ASSERT_OK(validate(
                "\"\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xf0\x90\x80\x80\xf4\x8f\xbf\xbf\""));
}

static void test_control_chars(void) {
        for (unsigned c = 0; c < 0x20; c++) {
                char doc[] = "\"a?b\"";
                struct json_error err;

                doc[2] = (char) c;
                ASSERT_ERR(json_validate(doc, 5, NULL, &err), -EBADMSG);
                ASSERT_EQ(err.offset, 2);
                ASSERT_STREQ(err.what, "control character in string");
        }
        ASSERT_OK(validate("\"a\x7f\""));
}

static void test_grammar(void) {
        static const char *const good[] = {
                "{}",
                "[]",
                " \t\r\n{ } \n",
                "0",
                "-0",
                "1.5",
                "-0.0e+1",
                "1E-7",
                "1e007",
                "true",
                "false",
                "null",
                "\"\"",
                "[1,[2,[3]],{\"a\":[]}]",
                "{\"\":0}",
                "{\"a\" : 1 , \"b\" :[ true ,false , null ] }",
        };
        static const char *const bad[] = {
                "",
                " ",
                "{,}",
                "[,]",
                "[1,]",
                "{\"a\":1,}",
                "[1 2]",
                "{\"a\" 1}",
                "{\"a\":}",
                "{a:1}",
                "{'a':1}",
                "['a']",
                "01",
                "-01",
                "00",
                "+1",
                ".5",
                "1.",
                "1.e3",
                "1e",
                "1e+",
                "-",
                "NaN",
                "Infinity",
                "-Infinity",
                "tru",
                "nul",
                "True",
                "nulll",
                "[1]]",
                "{}}",
                "{}{}",
                "{} x",
                "1 2",
                "[1] //",
                "/* */ 1",
                "[1,/**/2]",
                "\xef\xbb\xbf{}",
                "{\"a\":1 \"b\":2}",
                "[\"a\" \"b\"]",
                "{\"a\"}",
                "[",
                "{",
                "{\"a\":[}",
                "[{]",
                "\"abc",
                "\x00",
                "[0x10]",
                "{\"a\":1,,\"b\":2}",
                "[1,,2]",
        };

        for (size_t i = 0; i < ELEMENTSOF(good); i++)
                ASSERT_OK(validate(good[i]));
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                ASSERT_ERR(validate(bad[i]), -EBADMSG);
        ASSERT_ERR(json_validate("\x00", 1, NULL, NULL), -EBADMSG);
        ASSERT_ERR(json_validate("{}\x00", 3, NULL, NULL), -EBADMSG);
}

static void test_integers(void) {
        static const struct {
                const char *text;
                int64_t v;
        } i64[] = {
                { "0", 0 },
                { "-0", 0 },
                { "7", 7 },
                { "-7", -7 },
                { "9223372036854775807", INT64_MAX },
                { "-9223372036854775808", INT64_MIN },
        };
        static const char *const i64_range[] = { "9223372036854775808", "-9223372036854775809",
                                                 "18446744073709551616", "99999999999999999999999999" };
        static const char *const u64_range[] = { "18446744073709551616", "-1", "-9223372036854775808",
                                                 "184467440737095516150" };
        static const char *const not_int[] = { "1.0", "1e3", "-2E-1", "\"1\"", "true", "null", "[1]" };
        _cleanup_(json_reader_done) struct json_reader r = {};
        uint64_t u;
        int64_t v;

        for (size_t i = 0; i < ELEMENTSOF(i64); i++) {
                ASSERT_OK(json_reader_init(&r, i64[i].text, strlen(i64[i].text), NULL, NULL));
                ASSERT_OK(json_read_int64(&r, &v));
                ASSERT_OK(json_reader_end(&r));
                ASSERT_EQ(v, i64[i].v);
        }
        ASSERT_OK(json_reader_init(&r, "18446744073709551615", 20, NULL, NULL));
        ASSERT_OK(json_read_uint64(&r, &u));
        ASSERT_TRUE(u == UINT64_MAX);
        ASSERT_OK(json_reader_init(&r, "-0", 2, NULL, NULL));
        ASSERT_OK(json_read_uint64(&r, &u));
        ASSERT_TRUE(u == 0);
        for (size_t i = 0; i < ELEMENTSOF(i64_range); i++) {
                ASSERT_OK(json_reader_init(&r, i64_range[i], strlen(i64_range[i]), NULL, NULL));
                ASSERT_ERR(json_read_int64(&r, &v), -ERANGE);
                ASSERT_OK(validate(i64_range[i])); /* a valid number all the same */
        }
        for (size_t i = 0; i < ELEMENTSOF(u64_range); i++) {
                ASSERT_OK(json_reader_init(&r, u64_range[i], strlen(u64_range[i]), NULL, NULL));
                ASSERT_ERR(json_read_uint64(&r, &u), -ERANGE);
        }
        for (size_t i = 0; i < ELEMENTSOF(not_int); i++) {
                ASSERT_OK(json_reader_init(&r, not_int[i], strlen(not_int[i]), NULL, NULL));
                ASSERT_ERR(json_read_int64(&r, &v), -EBADMSG);
        }
}

static void test_nested(void) {
        static const char doc[] =
                "{\"a\": {\"b\": [1, -2, {\"c\": \"d\"}, []], \"e\": {}}, \"f\": [[true], [false, "
                "null]], \"g\": \"h\"}";
        _cleanup_(json_reader_done) struct json_reader r = {};
        _cleanup_free_ char *d = NULL, *h = NULL;
        const char *key;
        int64_t v, sum = 0;
        bool b;

        ASSERT_OK(json_reader_init(&r, doc, strlen(doc), NULL, NULL));
        ASSERT_EQ(json_peek(&r), JSON_TYPE_OBJECT);
        ASSERT_OK(json_object_begin(&r));
        ASSERT_EQ(json_object_next(&r, &key), 1);
        ASSERT_STREQ(key, "a");
        ASSERT_OK(json_object_begin(&r));
        ASSERT_EQ(json_object_next(&r, &key), 1);
        ASSERT_STREQ(key, "b");
        ASSERT_OK(json_array_begin(&r));
        for (int i = 0; i < 2; i++) {
                ASSERT_EQ(json_array_next(&r), 1);
                ASSERT_EQ(json_peek(&r), JSON_TYPE_NUMBER);
                ASSERT_OK(json_read_int64(&r, &v));
                sum += v;
        }
        ASSERT_EQ(sum, -1);
        ASSERT_EQ(json_array_next(&r), 1);
        ASSERT_OK(json_object_begin(&r));
        ASSERT_EQ(json_object_next(&r, &key), 1);
        ASSERT_STREQ(key, "c");
        ASSERT_OK(json_read_string(&r, &d));
        ASSERT_STREQ(d, "d");
        ASSERT_EQ(json_object_next(&r, &key), 0);
        ASSERT_EQ(json_array_next(&r), 1);
        ASSERT_EQ(json_peek(&r), JSON_TYPE_ARRAY);
        ASSERT_OK(json_array_begin(&r));
        ASSERT_EQ(json_array_next(&r), 0);
        ASSERT_EQ(json_array_next(&r), 0);
        ASSERT_EQ(json_object_next(&r, &key), 1);
        ASSERT_STREQ(key, "e");
        /* not read: the next call skips it */
        ASSERT_EQ(json_object_next(&r, &key), 0);
        ASSERT_EQ(json_object_next(&r, &key), 1);
        ASSERT_STREQ(key, "f");
        ASSERT_OK(json_array_begin(&r));
        ASSERT_EQ(json_array_next(&r), 1);
        ASSERT_OK(json_skip(&r));
        ASSERT_EQ(json_array_next(&r), 1);
        ASSERT_OK(json_array_begin(&r));
        ASSERT_EQ(json_array_next(&r), 1);
        ASSERT_EQ(json_peek(&r), JSON_TYPE_BOOL);
        ASSERT_OK(json_read_bool(&r, &b));
        ASSERT_FALSE(b);
        ASSERT_EQ(json_array_next(&r), 1);
        ASSERT_EQ(json_peek(&r), JSON_TYPE_NULL);
        ASSERT_OK(json_read_null(&r));
        ASSERT_EQ(json_array_next(&r), 0);
        ASSERT_EQ(json_array_next(&r), 0);
        ASSERT_EQ(json_object_next(&r, &key), 1);
        ASSERT_STREQ(key, "g");
        ASSERT_EQ(json_peek(&r), JSON_TYPE_STRING);
        ASSERT_OK(json_read_string(&r, &h));
        ASSERT_STREQ(h, "h");
        ASSERT_EQ(json_object_next(&r, &key), 0);
        ASSERT_OK(json_reader_end(&r));
}

static void test_misuse(void) {
        _cleanup_(json_reader_done) struct json_reader r = {};
        struct json_limits lim = { .max_depth = JSON_DEPTH_LIMIT + 1 };
        const char *key;
        int64_t v;

        /* a value without next(), next() of the wrong kind, end() before the end */
        ASSERT_OK(json_reader_init(&r, "[1]", 3, NULL, NULL));
        ASSERT_OK(json_array_begin(&r));
        ASSERT_ERR(json_read_int64(&r, &v), -EINVAL);
        ASSERT_OK(json_reader_init(&r, "[1]", 3, NULL, NULL));
        ASSERT_OK(json_array_begin(&r));
        ASSERT_ERR(json_object_next(&r, &key), -EINVAL);
        ASSERT_OK(json_reader_init(&r, "{}", 2, NULL, NULL));
        ASSERT_OK(json_object_begin(&r));
        ASSERT_ERR(json_array_next(&r), -EINVAL);
        ASSERT_OK(json_reader_init(&r, "{}", 2, NULL, NULL));
        ASSERT_OK(json_object_begin(&r));
        ASSERT_ERR(json_reader_end(&r), -EINVAL);
        ASSERT_OK(json_reader_init(&r, "1", 1, NULL, NULL));
        ASSERT_ERR(json_reader_end(&r), -EINVAL);
        ASSERT_OK(json_reader_init(&r, "1 ", 2, NULL, NULL));
        ASSERT_OK(json_read_int64(&r, &v));
        ASSERT_ERR(json_read_int64(&r, &v), -EINVAL);
        ASSERT_ERR(json_reader_init(&r, "1", 1, &lim, NULL), -EINVAL);
        /* wrong type */
        ASSERT_OK(json_reader_init(&r, "{\"a\": 1}", 8, NULL, NULL));
        ASSERT_OK(json_object_begin(&r));
        ASSERT_EQ(json_object_next(&r, &key), 1);
        ASSERT_ERR(json_read_null(&r), -EBADMSG);
}

/* The first error sticks and every later call returns it. */
static void test_sticky(void) {
        static const char doc[] = "{\"a\": 01, \"b\": 2}";
        _cleanup_(json_reader_done) struct json_reader r = {};
        struct json_error err;
        const char *key;
        int64_t v;

        ASSERT_OK(json_reader_init(&r, doc, strlen(doc), NULL, &err));
        ASSERT_OK(json_object_begin(&r));
        ASSERT_EQ(json_object_next(&r, &key), 1);
        ASSERT_ERR(json_read_int64(&r, &v), -EBADMSG);
        ASSERT_STREQ(err.what, "invalid number: leading zero");
        ASSERT_EQ(err.offset, 6);
        ASSERT_STREQ(err.path, "$.a");
        ASSERT_ERR(json_object_next(&r, &key), -EBADMSG);
        ASSERT_ERR(json_skip(&r), -EBADMSG);
        ASSERT_ERR(json_reader_end(&r), -EBADMSG);
        ASSERT_EQ(err.offset, 6);
}

static void test_error_position(void) {
        static const struct {
                const char *doc, *what, *path;
                size_t offset;
        } cases[] = {
                { "{\"Credentials\": {\"Token\": \"ab\x01\"}}", "control character in string",
                  "$.Credentials.Token", 29 },
                { "{\"tokens\": [1, 2, [3, x]]}", "unexpected character where a value should start",
                  "$.tokens[2][1]", 22 },
                { "{\"a\": 1,}", "trailing comma", "$.a", 8 },
                { "[1] x", "trailing data after the JSON value", "$", 4 },
                { "{\"a\": \"\\ud800\"}", "lone high surrogate in string", "$.a", 7 },
                { "{\"a\": \"x", "unterminated string", "$.a", 6 },
                { "{\"a\" 1}", "expected ':' after the key", "$.a", 5 },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct json_error err;

                ASSERT_ERR(json_validate(cases[i].doc, strlen(cases[i].doc), NULL, &err), -EBADMSG);
                ASSERT_STREQ(err.what, cases[i].what);
                ASSERT_STREQ(err.path, cases[i].path);
                ASSERT_EQ(err.offset, cases[i].offset);
        }
        {
                struct json_error err;
                char buf[200];

                ASSERT_ERR(json_validate(cases[0].doc, strlen(cases[0].doc), NULL, &err), -EBADMSG);
                ASSERT_STREQ(json_error_string(&err, buf, sizeof(buf)),
                             "control character in string at byte 29 of the JSON ($.Credentials.Token)");
        }
}

/* A long key in the error path is cut to 64 bytes at a character boundary, not inside one. */
static void test_error_path_long_key(void) {
        char doc[256], want[128];
        struct json_error err;
        size_t n = 0;

        doc[n++] = '{';
        doc[n++] = '"';
        memset(doc + n, 'k', 63);
        n += 63;
        memcpy(doc + n, "\xc3\xa9\xc3\xa9\": [x]}", 10);
        n += 10;
        (void) snprintf(want, sizeof(want), "$.%.*s[0]", 63, doc + 2);
        ASSERT_ERR(json_validate(doc, n, NULL, &err), -EBADMSG);
        ASSERT_STREQ(err.path, want);
        ASSERT_EQ(err.offset, 2 + 63 + 4 + 4);
}

static char *nested(unsigned depth) {
        char *s = malloc(2 * depth + 2);

        if (!s)
                abort();
        memset(s, '[', depth);
        s[depth] = '1';
        memset(s + depth + 1, ']', depth);
        s[2 * depth + 1] = 0;
        return s;
}

static void test_cap_depth(void) {
        static const unsigned limits[] = { 1, 5, JSON_DEFAULT_MAX_DEPTH, JSON_DEPTH_LIMIT };

        for (size_t i = 0; i < ELEMENTSOF(limits); i++) {
                struct json_limits lim = { .max_depth = limits[i] };
                _cleanup_free_ char *at = nested(limits[i]), *over = nested(limits[i] + 1);
                struct json_error err;

                ASSERT_OK(validate_lim(at, &lim));
                ASSERT_ERR(json_validate(over, strlen(over), &lim, &err), -E2BIG);
                ASSERT_STREQ(err.what, "nesting too deep");
                ASSERT_EQ(err.offset, limits[i]);
                if (limits[i] == JSON_DEFAULT_MAX_DEPTH) { /* the default */
                        ASSERT_OK(validate(at));
                        ASSERT_ERR(validate(over), -E2BIG);
                }
        }
        ASSERT_OK(validate("{\"a\": {\"b\": 1}}"));
        ASSERT_ERR(validate_lim("{\"a\": {\"b\": 1}}", &(struct json_limits){ .max_depth = 1 }), -E2BIG);
}

static void test_cap_string(void) {
        struct json_limits lim = { .max_string = 8 };
        _cleanup_free_ char *big = NULL;
        size_t n = JSON_DEFAULT_MAX_STRING;

        ASSERT_OK(validate_lim("\"12345678\"", &lim));
        ASSERT_ERR(validate_lim("\"123456789\"", &lim), -E2BIG);
        /* decoded bytes count: \u00e9 is two, \ud83d\ude00 four */
        ASSERT_OK(validate_lim("\"123456\\u00e9\"", &lim));
        ASSERT_ERR(validate_lim("\"1234567\\u00e9\"", &lim), -E2BIG);
        ASSERT_OK(validate_lim("\"1234\\ud83d\\ude00\"", &lim));
        ASSERT_ERR(validate_lim("\"12345\\ud83d\\ude00\"", &lim), -E2BIG);
        /* keys too */
        ASSERT_OK(validate_lim("{\"12345678\": 1}", &lim));
        ASSERT_ERR(validate_lim("{\"123456789\": 1}", &lim), -E2BIG);
        /* the default */
        big = malloc(n + 4);
        ASSERT_TRUE(big != NULL);
        big[0] = '"';
        memset(big + 1, 'a', n);
        big[n + 1] = '"';
        ASSERT_OK(json_validate(big, n + 2, NULL, NULL));
        big[n + 1] = 'a';
        big[n + 2] = '"';
        ASSERT_ERR(json_validate(big, n + 3, NULL, NULL), -E2BIG);
}

static void test_cap_input(void) {
        struct json_limits lim = { .max_input = 10 };
        _cleanup_free_ char *big = NULL;
        size_t n = JSON_DEFAULT_MAX_INPUT;
        struct json_error err;

        ASSERT_OK(validate_lim("[1,2,3,45]", &lim));
        ASSERT_ERR(json_validate("[1,2,3,456]", 11, &lim, &err), -E2BIG);
        ASSERT_STREQ(err.what, "document too large");
        ASSERT_EQ(err.offset, 10);
        big = malloc(n + 1);
        ASSERT_TRUE(big != NULL);
        memset(big, ' ', n + 1);
        big[0] = '0';
        ASSERT_OK(json_validate(big, n, NULL, NULL));
        ASSERT_ERR(json_validate(big, n + 1, NULL, NULL), -E2BIG);
}

static void test_cap_key(void) {
        char doc[JSON_KEY_MAX + 16];
        _cleanup_(json_reader_done) struct json_reader r = {};
        const char *key;

        for (size_t len = JSON_KEY_MAX; len <= JSON_KEY_MAX + 1; len++) {
                doc[0] = '{';
                doc[1] = '"';
                memset(doc + 2, 'k', len);
                memcpy(doc + 2 + len, "\":1}", 5);
                ASSERT_OK(json_reader_init(&r, doc, strlen(doc), NULL, NULL));
                ASSERT_OK(json_object_begin(&r));
                if (len == JSON_KEY_MAX) {
                        ASSERT_EQ(json_object_next(&r, &key), 1);
                        ASSERT_EQ(strlen(key), JSON_KEY_MAX);
                } else
                        ASSERT_ERR(json_object_next(&r, &key), -E2BIG);
                ASSERT_OK(validate(doc)); /* skipping has no key cap beyond max_string */
        }
}

static void test_duplicates(void) {
        struct json_limits dup = { .reject_duplicates = true };
        _cleanup_free_ char *many = NULL;
        struct json_error err;
        size_t n = 0;

        /* json_validate() only skips, so walk the members with a reader */
        static const char *const docs[] = {
                "{\"a\": 1, \"a\": 2}",
                "{\"a\": 1, \"b\": 2, \"\\u0061\": 3}",
                "{\"k\\n\": 1, \"k\\u000a\": 2}",
        };
        for (size_t i = 0; i < ELEMENTSOF(docs); i++) {
                _cleanup_(json_reader_done) struct json_reader r = {};
                const char *key;
                int k;

                ASSERT_OK(json_reader_init(&r, docs[i], strlen(docs[i]), &dup, &err));
                ASSERT_OK(json_object_begin(&r));
                while ((k = json_object_next(&r, &key)) > 0)
                        ;
                ASSERT_ERR(k, -ENOTUNIQ);
                ASSERT_STREQ(err.what, "duplicate key");
                /* without the option they are read as they come */
                json_reader_done(&r);
                ASSERT_OK(json_reader_init(&r, docs[i], strlen(docs[i]), NULL, NULL));
                ASSERT_OK(json_object_begin(&r));
                while ((k = json_object_next(&r, &key)) > 0)
                        ;
                ASSERT_OK(k);
        }

        /* each object has its own keys; the cap on members checked */
        many = malloc(16 * 1100);
        ASSERT_TRUE(many != NULL);
        for (unsigned limit = 1024; limit <= 1025; limit++) {
                _cleanup_(json_reader_done) struct json_reader r = {};
                const char *key;
                int k;

                n = (size_t) sprintf(many, "{");
                for (unsigned i = 0; i < limit; i++)
                        n += (size_t) sprintf(many + n, "%s\"%u\":{\"a\":1}", i ? "," : "", i);
                n += (size_t) sprintf(many + n, "}");
                ASSERT_OK(json_reader_init(&r, many, n, &dup, &err));
                ASSERT_OK(json_object_begin(&r));
                while ((k = json_object_next(&r, &key)) > 0) {
                        ASSERT_OK(json_object_begin(&r));
                        ASSERT_EQ(json_object_next(&r, &key), 1);
                        ASSERT_EQ(json_object_next(&r, &key), 0);
                }
                if (limit == 1024)
                        ASSERT_OK(k);
                else {
                        ASSERT_ERR(k, -E2BIG);
                        ASSERT_STREQ(err.what, "too many members to check for duplicate keys");
                }
        }
}

/* The IMDS credentials document, as a caller reads it: secrets straight into secret_bufs. */
struct imds_creds {
        char *access_key_id, *expiration;
        struct secret_buf *secret, *token;
};

static void imds_creds_done(struct imds_creds *c) {
        free(c->access_key_id);
        free(c->expiration);
        secret_buf_free(c->secret);
        secret_buf_free(c->token);
        *c = (struct imds_creds){};
}

static int imds_member(struct json_reader *r, const char *key, struct imds_creds *c) {
        char code[16];
        int k;

        if (strcmp(key, "Code") == 0) {
                k = json_read_string_buf(r, code, sizeof(code));
                return k < 0 ? k : strcmp(code, "Success") == 0 ? 0 : -EPROTO;
        }
        if (strcmp(key, "AccessKeyId") == 0 && !c->access_key_id)
                return json_read_string(r, &c->access_key_id);
        if (strcmp(key, "Expiration") == 0 && !c->expiration)
                return json_read_string(r, &c->expiration);
        if (strcmp(key, "SecretAccessKey") == 0 && !c->secret)
                return json_read_secret(r, &c->secret);
        if (strcmp(key, "Token") == 0 && !c->token)
                return json_read_secret(r, &c->token);
        return 0;
}

static int imds_parse(const char *text, size_t len, struct imds_creds *ret, struct json_error *err) {
        _cleanup_(json_reader_done) struct json_reader r = {};
        _cleanup_(imds_creds_done) struct imds_creds c = {};
        struct json_limits lim = {
                .max_depth = 4, .max_string = 4096, .max_input = 16384, .reject_duplicates = true
        };
        const char *key;
        int k;

        k = json_reader_init(&r, text, len, &lim, err);
        if (k >= 0)
                k = json_object_begin(&r);
        while (k >= 0 && (k = json_object_next(&r, &key)) > 0)
                k = imds_member(&r, key, &c);
        if (k >= 0)
                k = json_reader_end(&r);
        if (k < 0)
                return k;
        if (!c.access_key_id || !c.secret || !c.token || !c.expiration)
                return -ENODATA;
        *ret = c;
        c = (struct imds_creds){};
        return 0;
}

static const char imds_doc[] =
        "{\n"
        "  \"Code\" : \"Success\",\n"
        "  \"LastUpdated\" : \"2026-12-06T18:50:21Z\",\n"
        "  \"Type\" : \"AWS-HMAC\",\n"
        "  \"AccessKeyId\" : \"ASIAIOSFODNN7EXAMPLE\",\n"
        "  \"SecretAccessKey\" : \"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\",\n"
        "  \"Token\" : \"IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJH\\/+\\u002B==\",\n"
        "  \"Expiration\" : \"2026-12-07T01:15:43Z\",\n"
        "  \"Nested\" : {\"a\": [1, 2.5e3, null]}\n"
        "}\n";

static void test_imds(void) {
        _cleanup_(imds_creds_done) struct imds_creds c = {};
        struct json_error err;
        static const char token[] = "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJH/++==";

        ASSERT_OK(imds_parse(imds_doc, strlen(imds_doc), &c, &err));
        ASSERT_STREQ(c.access_key_id, "ASIAIOSFODNN7EXAMPLE");
        ASSERT_STREQ(c.expiration, "2026-12-07T01:15:43Z");
        ASSERT_EQ(c.secret->len, 40);
        ASSERT_MEMEQ(c.secret->data, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", 40);
        ASSERT_EQ(c.token->len, strlen(token));
        ASSERT_MEMEQ(c.token->data, token, strlen(token));
}

static void test_imds_bad(void) {
        static const char *const bad[] = {
                "{\"Code\": \"Success\", \"Token\": \"a\", \"Token\": \"b\"}",
                "{\"Code\": \"Failure\"}",
                "{\"Code\": \"Success\"}",
                "{\"Code\": \"Success\", \"SecretAccessKey\": 5}",
        };
        static const int want[] = { -ENOTUNIQ, -EPROTO, -ENODATA, -EBADMSG };
        struct imds_creds c = {};

        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                ASSERT_ERR(imds_parse(bad[i], strlen(bad[i]), &c, NULL), want[i]);
        ASSERT_TRUE(c.secret == NULL);
}

/* JSON-escapes text by hand (not with the writer), the way AWS does: \n for newlines, \/ for slashes. */
static char *escape_like_aws(const char *text) {
        char *out = malloc(2 * strlen(text) + 1), *p = out;

        if (!out)
                abort();
        for (const char *s = text; *s; s++) {
                if (*s == '\n' || *s == '/')
                        *p++ = '\\';
                *p++ = *s == '\n' ? 'n' : *s;
        }
        *p = 0;
        return out;
}

static int read_cert(const char *pem, X509 **ret) {
        _cleanup_(BIO_free_allp) BIO *bio = BIO_new_mem_buf(pem, -1);

        if (!bio)
                return -ENOMEM;
        *ret = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        return *ret ? 0 : -EBADMSG;
}

static void test_acm_s3(void) {
        size_t cert_len, chain_len;
        _cleanup_free_ char *cert = test_data_load("rsa2048.crt.pem", &cert_len);
        _cleanup_free_ char *chain = test_data_load("chain-leaf.chain.pem", &chain_len);
        _cleanup_free_ char *cert_esc = NULL, *chain_esc = NULL, *doc = NULL;
        _cleanup_free_ char *got_cert = NULL, *got_chain = NULL, *method = NULL;
        _cleanup_(json_reader_done) struct json_reader r = {};
        _cleanup_secret_ struct secret_buf *blob = NULL;
        _cleanup_(X509_freep) X509 *x = NULL;
        struct json_limits lim = { .reject_duplicates = true };
        struct json_error err;
        const char *key;
        int k;

        ASSERT_TRUE(cert && chain);
        cert_esc = escape_like_aws(cert);
        chain_esc = escape_like_aws(chain);
        ASSERT_TRUE(asprintf(&doc,
                             "{\"certificate\": \"%s\", \"certificateChain\": \"%s\", "
                             "\"encryptedPrivateKey\": \"AQICAHh0ZXN0\\/Ym9keQ==\", "
                             "\"encryptionMethod\": \"SYMMETRIC_DEFAULT\"}",
                             cert_esc, chain_esc) > 0);
        ASSERT_OK(json_reader_init(&r, doc, strlen(doc), &lim, &err));
        ASSERT_OK(json_object_begin(&r));
        while ((k = json_object_next(&r, &key)) > 0) {
                if (strcmp(key, "certificate") == 0)
                        ASSERT_OK(json_read_string(&r, &got_cert));
                else if (strcmp(key, "certificateChain") == 0)
                        ASSERT_OK(json_read_string(&r, &got_chain));
                else if (strcmp(key, "encryptedPrivateKey") == 0)
                        ASSERT_OK(json_read_secret(&r, &blob));
                else if (strcmp(key, "encryptionMethod") == 0)
                        ASSERT_OK(json_read_string(&r, &method));
        }
        ASSERT_OK(k);
        ASSERT_OK(json_reader_end(&r));
        ASSERT_STREQ(got_cert, cert);
        ASSERT_STREQ(got_chain, chain);
        ASSERT_STREQ(method, "SYMMETRIC_DEFAULT");
        ASSERT_EQ(blob->len, 21);
        ASSERT_MEMEQ(blob->data, "AQICAHh0ZXN0/Ym9keQ==", 21);
        ASSERT_OK(read_cert(got_cert, &x));
        ASSERT_TRUE(X509_get_subject_name(x) != NULL);
        /* still escaped, it is not a certificate */
        X509_free(x);
        x = NULL;
        ASSERT_ERR(read_cert(cert_esc, &x), -EBADMSG);
}

/* Samples for truncation and mutation. */
static const char *const samples[] = {
        imds_doc,
        "{\"EnclaveName\": \"enclave-acm\", \"EnclaveID\": \"i-05f6ed443aEXAMPLE-enc173dfe3eEXAMPLE\", "
        "\"ProcessID\": 7077, \"EnclaveCID\": 16, \"CPUIDs\": [1, 3], \"MemoryMiB\": 2048, \"Flags\": "
        "\"NONE\"}",
        "{\"CiphertextForRecipient\": \"MIAGCSqGSIb3DQEHA6CAMIACAQIxggFr\", \"KeyId\": "
        "\"arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab\"}",
        "[\"\\u00e9\\ud83d\\ude00\\n\\\"\", -9223372036854775808, 18446744073709551615, 1.5e-3, true, "
        "false, "
        "null, {}, [], {\"\xc3\xa9\": [\"\xf0\x9f\x98\x80\"]}]",
};

/* Every strict prefix of a document that is an object or array fails, with the error inside it. */
static void test_truncation(void) {
        for (size_t s = 0; s < ELEMENTSOF(samples); s++) {
                size_t len = strlen(samples[s]);
                _cleanup_(imds_creds_done) struct imds_creds c = {};

                ASSERT_OK(validate(samples[s]));
                for (size_t n = 0; n < len; n++) {
                        struct json_error err;
                        int k;

                        /* the final newline of imds_doc is whitespace: that prefix is whole */
                        k = json_validate(samples[s], n, NULL, &err);
                        if (n >= len - 1 && samples[s][len - 1] == '\n') {
                                ASSERT_OK(k);
                                continue;
                        }
                        ASSERT_ERR(k, -EBADMSG);
                        ASSERT_TRUE(err.offset <= n);
                        if (s == 0)
                                ASSERT_ERR(imds_parse(samples[s], n, &c, NULL), -EBADMSG);
                }
        }
}

/* Whatever a caller reads, a mutated document gives one of the documented errors or a result. */
static int check_mutant(const char *doc, size_t len) {
        _cleanup_(imds_creds_done) struct imds_creds c = {};
        struct json_error err;
        int k;

        k = json_validate(doc, len, NULL, &err);
        if (k < 0 && (err.offset > len || !err.what || !memchr(err.path, 0, sizeof(err.path))))
                return -1;
        if (k < 0 && k != -EBADMSG && k != -E2BIG && k != -ERANGE)
                return -1;
        k = imds_parse(doc, len, &c, &err);
        if (k < 0 && k != -EBADMSG && k != -E2BIG && k != -ERANGE && k != -ENOTUNIQ && k != -EPROTO &&
            k != -ENODATA)
                return -1;
        if (k >= 0 && (!c.access_key_id || strlen(c.access_key_id) > len || c.secret->len > len))
                return -1;
        return 0;
}

static void test_mutations(void) {
        for (size_t s = 0; s < ELEMENTSOF(samples); s++) {
                size_t len = strlen(samples[s]);
                _cleanup_free_ char *m = malloc(len);

                ASSERT_TRUE(m != NULL);
                for (size_t i = 0; i < len; i++) {
                        static const uint8_t fixed[] = { 0x00, 0xff };
                        char *t;
                        int k;

                        for (unsigned bit = 0; bit < 8; bit++) {
                                memcpy(m, samples[s], len);
                                m[i] ^= (char) (1u << bit);
                                ASSERT_OK(check_mutant(m, len));
                        }
                        for (size_t f = 0; f < ELEMENTSOF(fixed); f++) {
                                memcpy(m, samples[s], len);
                                m[i] = (char) fixed[f];
                                ASSERT_OK(check_mutant(m, len));
                        }
                        /* truncated copies on the heap, so valgrind sees a read past the end */
                        t = malloc(MAX(i, 1u));
                        ASSERT_TRUE(t != NULL);
                        memcpy(t, samples[s], i);
                        k = check_mutant(t, i);
                        free(t);
                        ASSERT_OK(k);
                }
        }
}

/* ---- writer ---- */

static void test_writer_pretty(void) {
        static const char want[] = "{\n"
                                   "  \"address\": \"unix:path=/run/x.sock\",\n"
                                   "  \"reachable\": true,\n"
                                   "  \"none\": null,\n"
                                   "  \"tokens\": [\n"
                                   "    {\n"
                                   "      \"slot\": 18446744073709551615,\n"
                                   "      \"delta\": -9223372036854775808,\n"
                                   "      \"keys\": []\n"
                                   "    },\n"
                                   "    {}\n"
                                   "  ],\n"
                                   "  \"empty\": {}\n"
                                   "}\n";
        _cleanup_(json_writer_done) struct json_writer j;
        _cleanup_free_ char *out = NULL;
        size_t len;

        json_writer_init(&j, false);
        json_begin_object(&j, NULL);
        json_string(&j, "address", "unix:path=/run/x.sock");
        json_bool(&j, "reachable", true);
        json_null(&j, "none");
        json_begin_array(&j, "tokens");
        json_begin_object(&j, NULL);
        json_uint(&j, "slot", UINT64_MAX);
        json_int(&j, "delta", INT64_MIN);
        json_begin_array(&j, "keys");
        json_end_array(&j);
        json_end_object(&j);
        json_begin_object(&j, NULL);
        json_end_object(&j);
        json_end_array(&j);
        json_begin_object(&j, "empty");
        json_end_object(&j);
        json_end_object(&j);
        ASSERT_OK(json_writer_finish(&j, &out, &len));
        ASSERT_EQ(len, strlen(want));
        ASSERT_STREQ(out, want);
        ASSERT_OK(validate(out));
}

static void test_writer_compact(void) {
        _cleanup_(json_writer_done) struct json_writer j;
        _cleanup_free_ char *out = NULL;
        size_t len;

        json_writer_init(&j, true);
        json_begin_object(&j, NULL);
        json_string(&j, "KeyId", "alias/x");
        json_begin_array(&j, "a");
        json_uint(&j, NULL, 1);
        json_bool(&j, NULL, false);
        json_end_array(&j);
        json_end_object(&j);
        ASSERT_OK(json_writer_finish(&j, &out, &len));
        ASSERT_STREQ(out, "{\"KeyId\":\"alias/x\",\"a\":[1,false]}");
}

static void test_writer_escapes(void) {
        /* every byte but NUL, then NUL itself through json_string_len() */
        char all[256];
        _cleanup_(json_writer_done) struct json_writer j;
        _cleanup_free_ char *out = NULL, *back = NULL;
        size_t len, n;

        json_writer_init(&j, true);
        json_string(&j, NULL,
                    "q\"b\\n\nr\rt\tc\x01\x1f"
                    "d\x7f"
                    "e\xc3\xa9");
        ASSERT_OK(json_writer_finish(&j, &out, &len));
        ASSERT_STREQ(out, "\"q\\\"b\\\\n\\nr\\rt\\tc\\u0001\\u001fd\\u007fe\xc3\xa9\"");
        free(out);
        out = NULL;

        /* invalid UTF-8: one \ufffd per byte, and the result reads back */
        json_writer_init(&j, true);
        json_string_len(&j, NULL,
                        "a\xc0\xaf"
                        "b\xed\xa0\x80"
                        "c\xe2\x82",
                        10);
        ASSERT_OK(json_writer_finish(&j, &out, &len));
        ASSERT_STREQ(out, "\"a\\ufffd\\ufffdb\\ufffd\\ufffd\\ufffdc\\ufffd\\ufffd\"");
        ASSERT_OK(validate(out));
        free(out);
        out = NULL;

        /* a round trip of every byte value: control characters and UTF-8 come back unchanged */
        for (int i = 1; i < 128; i++)
                all[i - 1] = (char) i;
        memcpy(all + 127, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9);
        json_writer_init(&j, false);
        json_string_len(&j, NULL, all, 136);
        ASSERT_OK(json_writer_finish(&j, &out, &len));
        ASSERT_OK(read_one_string(out, len, false, &back, &n));
        ASSERT_EQ(n, 136);
        ASSERT_MEMEQ(back, all, 136);
}

static void test_writer_nesting(void) {
        _cleanup_(json_writer_done) struct json_writer j;
        char *out = NULL;

        json_writer_init(&j, false);
        json_begin_object(&j, NULL);
        ASSERT_ERR(json_writer_finish(&j, &out, NULL), -EINVAL);
        json_writer_init(&j, false);
        json_end_array(&j);
        ASSERT_ERR(json_writer_finish(&j, &out, NULL), -EINVAL);
        json_writer_init(&j, false);
        for (int i = 0; i <= JSON_WRITER_DEPTH_MAX; i++)
                json_begin_array(&j, NULL);
        ASSERT_ERR(json_writer_finish(&j, &out, NULL), -EINVAL);
        ASSERT_TRUE(out == NULL);
        json_writer_init(&j, true);
        for (int i = 0; i < JSON_WRITER_DEPTH_MAX; i++)
                json_begin_array(&j, NULL);
        for (int i = 0; i < JSON_WRITER_DEPTH_MAX; i++)
                json_end_array(&j);
        ASSERT_OK(json_writer_finish(&j, &out, NULL));
        ASSERT_OK(validate(out));
        free(out);
}

TAP_MAIN({ "/json/read/escapes", test_escapes }, { "/json/read/nul", test_nul },
         { "/json/read/bad-escapes", test_bad_escapes }, { "/json/read/bad-utf8", test_bad_utf8 },
         { "/json/read/control-chars", test_control_chars }, { "/json/read/grammar", test_grammar },
         { "/json/read/integers", test_integers }, { "/json/read/nested", test_nested },
         { "/json/read/misuse", test_misuse }, { "/json/read/sticky-error", test_sticky },
         { "/json/read/error-position", test_error_position },
         { "/json/read/error-path-long-key", test_error_path_long_key },
         { "/json/read/cap-depth", test_cap_depth }, { "/json/read/cap-string", test_cap_string },
         { "/json/read/cap-input", test_cap_input }, { "/json/read/cap-key", test_cap_key },
         { "/json/read/duplicates", test_duplicates }, { "/json/read/imds", test_imds },
         { "/json/read/imds-bad", test_imds_bad }, { "/json/read/acm-s3", test_acm_s3 },
         { "/json/read/truncation", test_truncation }, { "/json/read/mutations", test_mutations },
         { "/json/write/pretty", test_writer_pretty }, { "/json/write/compact", test_writer_compact },
         { "/json/write/escapes", test_writer_escapes }, { "/json/write/nesting", test_writer_nesting }, )
