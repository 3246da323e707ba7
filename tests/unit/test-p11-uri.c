/* Unit tests for common/p11-uri: the PKCS#11 URI of a token's key as libp11 0.4.12 reads it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/p11-uri.h"
#include "tests/lib/tap.h"

static const uint8_t key_id[] = { 0x01 };

#define TEST_URI                                                                                           \
        "pkcs11:model=enclave-token;manufacturer=enclave-acm;token=www.example.com;id=%01;object=acm-key;" \
        "type=private?pin-source=file:/run/enclave-acm/pins/www.example.com"

static void test_uri_default(void) {
        const struct p11uri_key k = {
                .token = "www.example.com",
                .id = key_id,
                .id_len = 1,
                .object = "acm-key",
                .pin_file = "/run/enclave-acm/pins/www.example.com",
        };
        _cleanup_free_ char *uri = NULL;
        size_t n;

        ASSERT_OK(p11uri_build(&k, &uri, &n));
        ASSERT_STREQ(uri, TEST_URI);
        ASSERT_EQ(n, strlen(TEST_URI));
}

static void test_uri_encoding(void) {
        static const uint8_t id[] = { 0x00, 0x41, 0xff };
        const struct p11uri_key k = {
                .model = "",
                .manufacturer = "ACME Inc.",
                .token = "my tok;x/\xc3\xa9?",
                .id = id,
                .id_len = 3,
                .pin = "p%n;?&\"$",
        };
        _cleanup_free_ char *uri = NULL;
        size_t n;

        ASSERT_OK(p11uri_build(&k, &uri, &n));
        ASSERT_STREQ(uri, "pkcs11:manufacturer=ACME%20Inc.;token=my%20tok%3Bx%2F%C3%A9%3F;id=%00%41%FF;"
                          "type=private?pin-value=p%25n%3B%3F%26%22%24");
}

static void test_uri_pin_file_wins(void) {
        const struct p11uri_key k = {
                .model = "",
                .manufacturer = "",
                .token = "t",
                .id = key_id,
                .id_len = 1,
                .pin_file = "/run/a b/pin~1",
                .pin = "1234",
        };
        _cleanup_free_ char *uri = NULL;
        size_t n;

        ASSERT_OK(p11uri_build(&k, &uri, &n));
        ASSERT_STREQ(uri, "pkcs11:token=t;id=%01;type=private?pin-source=file:/run/a%20b/pin~1");
}

static void test_uri_limits(void) {
        struct p11uri_key k = { .token = "t", .id = key_id, .id_len = 1 };
        static uint8_t big_id[101];
        char long_object[256], *uri = NULL;
        size_t n;

        ASSERT_OK(p11uri_build(&k, &uri, &n));
        free(uri);
        k.token = "123456789012345678901234567890123"; /* 33 > CK_TOKEN_INFO label */
        ASSERT_ERR(p11uri_build(&k, &uri, &n), -EINVAL);
        k.token = "";
        ASSERT_ERR(p11uri_build(&k, &uri, &n), -EINVAL);
        k.token = "t";
        k.pin = "123456789012345678901234567890123"; /* libp11 0.4.12 takes 32 */
        ASSERT_ERR(p11uri_build(&k, &uri, &n), -EINVAL);
        k.pin = NULL;
        k.pin_file = "run/pin";
        ASSERT_ERR(p11uri_build(&k, &uri, &n), -EINVAL);
        k.pin_file = NULL;
        k.id = big_id;
        k.id_len = sizeof(big_id);
        ASSERT_ERR(p11uri_build(&k, &uri, &n), -EINVAL);
        k.id_len = 0;
        ASSERT_ERR(p11uri_build(&k, &uri, &n), -EINVAL);
        k.id_len = 100;
        memset(long_object, ' ', 255);
        long_object[255] = '\0';
        k.object = long_object; /* 765 + 300 bytes: fine */
        ASSERT_OK(p11uri_build(&k, &uri, &n));
        free(uri);
        ASSERT_ERR(p11uri_build(NULL, &uri, &n), -EINVAL);
        ASSERT_TRUE(uri != NULL); /* untouched by the failures */
}

static void test_uri_too_long(void) {
        char path[1025];
        struct p11uri_key k = { .token = "t", .id = key_id, .id_len = 1, .pin_file = path };
        char *uri = NULL;
        size_t n;

        path[0] = '/';
        memset(path + 1, '%', sizeof(path) - 2); /* 3 bytes each once encoded */
        path[sizeof(path) - 1] = '\0';
        ASSERT_ERR(p11uri_build(&k, &uri, &n), -E2BIG);
        ASSERT_TRUE(uri == NULL);
}

static void test_uri_serial_no_pin(void) {
        const struct p11uri_key k = {
                .serial = "0001",
                .token = "t",
                .id = key_id,
                .id_len = 1,
                .object = "",
        };
        _cleanup_free_ char *uri = NULL;
        size_t n;

        ASSERT_OK(p11uri_build(&k, &uri, &n));
        ASSERT_STREQ(uri, "pkcs11:model=enclave-token;manufacturer=enclave-acm;serial=0001;token=t;id=%01;"
                          "type=private");
}

static void test_id_from_u32(void) {
        static const struct {
                uint32_t id;
                size_t n;
                uint8_t bytes[P11URI_U32_ID_MAX];
        } cases[] = {
                { 0, 1, { 0x00 } },
                { 1, 1, { 0x01 } },
                { 0xff, 1, { 0xff } },
                { 258, 2, { 0x01, 0x02 } },
                { 0x10000, 3, { 0x01, 0x00, 0x00 } },
                { 0xdeadbeef, 4, { 0xde, 0xad, 0xbe, 0xef } },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                uint8_t id[P11URI_U32_ID_MAX];

                ASSERT_EQ(p11uri_id_from_u32(cases[i].id, id), cases[i].n);
                ASSERT_MEMEQ(id, cases[i].bytes, cases[i].n);
        }
}

/* What `enclave-acm token add` and `status` print: the form tests/integration/cli.sh expects. */
static void test_uri_cli_form(void) {
        uint8_t id[P11URI_U32_ID_MAX];
        const struct p11uri_key k = {
                .token = "pin on argv",
                .id = id,
                .id_len = p11uri_id_from_u32(0x12c, id),
                .object = "my key",
        };
        _cleanup_free_ char *uri = NULL;
        size_t n;

        ASSERT_OK(p11uri_build(&k, &uri, &n));
        ASSERT_STREQ(uri, "pkcs11:model=enclave-token;manufacturer=enclave-acm;token=pin%20on%20argv;"
                          "id=%01%2C;object=my%20key;type=private");
}

static void test_unreserved(void) {
        ASSERT_TRUE(p11uri_is_unreserved('a') && p11uri_is_unreserved('Z') && p11uri_is_unreserved('9'));
        ASSERT_TRUE(p11uri_is_unreserved('-') && p11uri_is_unreserved('.') && p11uri_is_unreserved('_') &&
                    p11uri_is_unreserved('~'));
        ASSERT_FALSE(p11uri_is_unreserved('/') || p11uri_is_unreserved(';') || p11uri_is_unreserved('%') ||
                     p11uri_is_unreserved(' ') || p11uri_is_unreserved(0xc3));
}

TAP_MAIN(TEST("/p11-uri/default", test_uri_default), TEST("/p11-uri/encoding", test_uri_encoding),
         TEST("/p11-uri/pin-file-wins", test_uri_pin_file_wins), TEST("/p11-uri/limits", test_uri_limits),
         TEST("/p11-uri/too-long", test_uri_too_long),
         TEST("/p11-uri/serial-no-pin", test_uri_serial_no_pin),
         TEST("/p11-uri/cli-form", test_uri_cli_form), TEST("/p11-uri/id-from-u32", test_id_from_u32),
         TEST("/p11-uri/unreserved", test_unreserved))
