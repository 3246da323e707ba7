/* aws/s3.h: URIs, ACM's object name, GetObject targets, S3 error codes, the object JSON, negatives. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "aws/kms-encrypt.h"
#include "aws/kms.h"
#include "common/secret.h"
#include "aws/s3.h"
#include "tests/lib/tap.h"

#define CERT  "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
#define CHAIN "-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n"
#define ROLE  "arn:aws:iam::123456789012:role/web-role"
#define CARN  "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-1111-2222-3333-444455556666"

static void test_bucket_key(void) {
        struct aws_err e = {};

        ASSERT_OK(aws_s3_bucket_validate("my-bucket.example", &e));
        ASSERT_OK(aws_s3_bucket_validate("abc", &e));
        ASSERT_ERR(aws_s3_bucket_validate("ab", &e), -EINVAL);
        ASSERT_ERR(aws_s3_bucket_validate("My-Bucket", &e), -EINVAL);
        ASSERT_ERR(aws_s3_bucket_validate("-bucket", &e), -EINVAL);
        ASSERT_ERR(aws_s3_bucket_validate("bucket-", &e), -EINVAL);
        ASSERT_ERR(aws_s3_bucket_validate("a..b", &e), -EINVAL);
        ASSERT_ERR(aws_s3_bucket_validate("a.-b", &e), -EINVAL);
        ASSERT_ERR(aws_s3_bucket_validate("192.168.1.1", &e), -EINVAL);
        ASSERT_ERR(aws_s3_bucket_validate("a_b", &e), -EINVAL);
        ASSERT_ERR(aws_s3_bucket_validate("a234567890123456789012345678901234567890123456789012345678901234",
                                          &e),
                   -EINVAL);
        ASSERT_OK(aws_s3_key_validate("a/b:c", &e));
        ASSERT_ERR(aws_s3_key_validate("", &e), -EINVAL);
        ASSERT_OK(aws_s3_key_validate("a b", &e));
        ASSERT_ERR(aws_s3_key_validate("a\tb", &e), -EINVAL);
        ASSERT_ERR(aws_s3_key_validate("a\x7f", &e), -EINVAL);
}

static void test_uri(void) {
        struct aws_s3_uri u;
        struct aws_err e = {};

        ASSERT_OK(aws_s3_uri_parse("s3://certs-bucket/web/site.json", &u, &e));
        ASSERT_STREQ(u.bucket, "certs-bucket");
        ASSERT_STREQ(u.key, "web/site.json");
        ASSERT_ERR(aws_s3_uri_parse("https://certs-bucket/x", &u, &e), -EINVAL);
        ASSERT_ERR(aws_s3_uri_parse("s3://certs-bucket", &u, &e), -EINVAL);
        ASSERT_ERR(aws_s3_uri_parse("s3://certs-bucket/", &u, &e), -EINVAL);
        ASSERT_ERR(aws_s3_uri_parse("s3:///key", &u, &e), -EINVAL);
        ASSERT_ERR(aws_s3_uri_parse("s3://Certs/key", &u, &e), -EINVAL);
        ASSERT_ERR(aws_s3_uri_parse(NULL, &u, &e), -EINVAL);
}

static void test_acm_uri(void) {
        struct aws_s3_uri u;
        struct aws_err e = {};

        ASSERT_OK(aws_s3_acm_uri("aws", "us-east-1", "prod", ROLE, CARN, &u, &e));
        ASSERT_STREQ(u.bucket, "aws-ec2-enclave-certificate-us-east-1-prod");
        ASSERT_STREQ(u.key, ROLE "/" CARN);
        ASSERT_OK(aws_s3_acm_uri("aws-cn", "cn-north-1", "prod", ROLE, CARN, &u, &e));
        ASSERT_STREQ(u.bucket, "aws-cn-ec2-enclave-certificate-cn-north-1-prod");
        ASSERT_ERR(aws_s3_acm_uri("aws", "not a region", "prod", ROLE, CARN, &u, &e), -EINVAL);
        ASSERT_ERR(aws_s3_acm_uri("aws", "us-east-1", "", ROLE, CARN, &u, &e), -EINVAL);
        ASSERT_ERR(aws_s3_acm_uri("aws", "us-east-1", "prod", "", CARN, &u, &e), -EINVAL);
        ASSERT_ERR(aws_s3_acm_uri("aws", "us-east-1", "a-very-long-bucket-suffix-that-does-not-fit", ROLE,
                                  CARN, &u, &e),
                   -EINVAL);
}

static void test_target(void) {
        struct aws_s3_target t = {};
        struct aws_s3_uri u;
        struct aws_err e = {};

        ASSERT_OK(aws_s3_uri_parse("s3://certs-bucket/a b/c:d", &u, &e));
        ASSERT_OK(aws_s3_target_make(NULL, "eu-west-1", NULL, false, &u, &t, &e));
        ASSERT_STREQ(t.host, "certs-bucket.s3.eu-west-1.amazonaws.com");
        ASSERT_STREQ(t.path, "/a b/c:d");
        ASSERT_STREQ(t.url, "https://certs-bucket.s3.eu-west-1.amazonaws.com/a%20b/c%3Ad");
        aws_s3_target_done(&t);
        ASSERT_OK(aws_s3_target_make(NULL, "eu-west-1", NULL, true, &u, &t, &e));
        ASSERT_STREQ(t.host, "s3.eu-west-1.amazonaws.com");
        ASSERT_STREQ(t.url, "https://s3.eu-west-1.amazonaws.com/certs-bucket/a%20b/c%3Ad");
        aws_s3_target_done(&t);
        ASSERT_OK(aws_s3_target_make(NULL, "cn-north-1", NULL, false, &u, &t, &e));
        ASSERT_STREQ(t.host, "certs-bucket.s3.cn-north-1.amazonaws.com.cn");
        aws_s3_target_done(&t);
        /* a dotted bucket goes path style: *.s3... does not cover it */
        ASSERT_OK(aws_s3_uri_parse("s3://certs.example/k", &u, &e));
        ASSERT_OK(aws_s3_target_make(NULL, "us-east-1", NULL, false, &u, &t, &e));
        ASSERT_STREQ(t.url, "https://s3.us-east-1.amazonaws.com/certs.example/k");
        aws_s3_target_done(&t);
        ASSERT_OK(aws_s3_target_make("http://127.0.0.1:8123", "us-east-1", NULL, false, &u, &t, &e));
        ASSERT_STREQ(t.host, "127.0.0.1:8123");
        ASSERT_STREQ(t.url, "http://127.0.0.1:8123/certs.example/k");
        aws_s3_target_done(&t);
        ASSERT_ERR(aws_s3_target_make("http://s3.example.com", "us-east-1", NULL, false, &u, &t, &e),
                   -EINVAL);
        ASSERT_ERR(aws_s3_target_make("http://127.0.0.1.example.com", "us-east-1", NULL, false, &u, &t, &e),
                   -EINVAL);
        ASSERT_ERR(aws_s3_target_make("https://s3.example.com/path", "us-east-1", NULL, false, &u, &t, &e),
                   -EINVAL);
        ASSERT_ERR(aws_s3_target_make("ftp://127.0.0.1", "us-east-1", NULL, false, &u, &t, &e), -EINVAL);
        ASSERT_OK(aws_s3_target_make("https://s3.example.com:8443", "us-east-1", NULL, false, &u, &t, &e));
        aws_s3_target_done(&t);
}

static void test_error_code(void) {
        const char *xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code>"
                          "<Message>Access Denied</Message></Error>";
        char b[AWS_S3_CODE_MAX + 1];

        ASSERT_OK(aws_s3_error_code(xml, strlen(xml), b, sizeof(b)));
        ASSERT_STREQ(b, "AccessDenied");
        ASSERT_ERR(aws_s3_error_code("<Error></Error>", 15, b, sizeof(b)), -ENOENT);
        ASSERT_ERR(aws_s3_error_code("<Code>Access Denied</Code>", 26, b, sizeof(b)), -ENOENT);
        ASSERT_ERR(aws_s3_error_code("<Code>AccessDenied", 18, b, sizeof(b)), -ENOENT);
        ASSERT_ERR(aws_s3_error_code("<Code></Code>", 13, b, sizeof(b)), -ENOENT);
        ASSERT_ERR(aws_s3_error_code("<Code>AccessDenied</Cod>", 24, b, sizeof(b)), -ENOENT);
        ASSERT_ERR(aws_s3_error_code(xml, strlen(xml), b, 5), -ENOENT);
}

static char *build(const char *cert, const char *chain, const char *b64, const char *method) {
        char *s = NULL;
        if (asprintf(&s,
                     "{\"certificate\":\"%s\",\"certificateChain\":\"%s\",\"encryptedPrivateKey\":\"%s\","
                     "\"encryptionMethod\":\"%s\"}",
                     cert, chain, b64, method) < 0)
                return NULL;
        return s;
}

#define JCERT  "-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----\\n"
#define JCHAIN "-----BEGIN CERTIFICATE-----\\nMIIC\\n-----END CERTIFICATE-----\\n"

static void test_object(void) {
        static const uint8_t ct[] = { 0x01, 0x02, 0x03, 0xfe, 0xff };
        struct aws_s3_object o = {}, o2 = {};
        _cleanup_free_ char *doc = build(JCERT, JCHAIN, "AQID/v8=", "SYMMETRIC_DEFAULT");
        _cleanup_free_ char *out = NULL;
        struct aws_err e = {};
        size_t len;

        ASSERT_OK(aws_s3_object_parse(doc, strlen(doc), &o, &e));
        ASSERT_STREQ(o.certificate, CERT);
        ASSERT_STREQ(o.certificate_chain, CHAIN);
        ASSERT_STREQ(o.encryption_method, "SYMMETRIC_DEFAULT");
        ASSERT_EQ(o.ciphertext_len, sizeof(ct));
        ASSERT_MEMEQ(o.ciphertext, ct, sizeof(ct));
        /* what object create writes reads back the same */
        ASSERT_OK(aws_s3_object_build(CERT, CHAIN, ct, sizeof(ct), "SYMMETRIC_DEFAULT", &out, &len));
        ASSERT_OK(aws_s3_object_parse(out, len, &o2, &e));
        ASSERT_STREQ(o2.certificate, o.certificate);
        ASSERT_STREQ(o2.encrypted_private_key, o.encrypted_private_key);
        ASSERT_EQ(o2.ciphertext_len, o.ciphertext_len);
        aws_s3_object_done(&o);
        aws_s3_object_done(&o2);
        ASSERT_ERR(aws_s3_object_build(CERT, CHAIN, ct, 0, "SYMMETRIC_DEFAULT", &out, &len), -EINVAL);
        /* an empty chain is allowed (a self-signed or leaf-only object) */
        free(doc);
        doc = build(JCERT, "", "AQID/v8=", "SYMMETRIC_DEFAULT");
        ASSERT_OK(aws_s3_object_parse(doc, strlen(doc), &o, &e));
        aws_s3_object_done(&o);
}

static void test_object_negative(void) {
        struct {
                char *doc;
                int r;
        } bad[] = {
                { build("MIIB", JCHAIN, "AQID", "SYMMETRIC_DEFAULT"), -EINVAL },
                { build(JCERT, "not pem", "AQID", "SYMMETRIC_DEFAULT"), -EINVAL },
                { build(JCERT, JCHAIN, "AQI", "SYMMETRIC_DEFAULT"), -EINVAL },
                { build(JCERT, JCHAIN, "AQ ID", "SYMMETRIC_DEFAULT"), -EINVAL },
                { build(JCERT, JCHAIN, "", "SYMMETRIC_DEFAULT"), -EINVAL },
                { build(JCERT, JCHAIN, "AQID", ""), -EINVAL },
                { build(JCERT, JCHAIN, "AQID", "SYMMETRIC DEFAULT"), -EINVAL },
                { build(JCERT "\\u0000", JCHAIN, "AQID", "SYMMETRIC_DEFAULT"), -EBADMSG },
                { build(JCERT "\\u0007", JCHAIN, "AQID", "SYMMETRIC_DEFAULT"), -EINVAL },
                { strdup("{\"certificate\":\"" JCERT
                         "\",\"certificateChain\":\"\",\"encryptionMethod\":\"x\"}"),
                  -EINVAL },
                { strdup("{\"certificate\":\"" JCERT "\",\"certificate\":\"" JCERT "\"}"), -ENOTUNIQ },
                { strdup("{\"certificate\":\"" JCERT "\",\"certificateChain\":\"\",\"encryptedPrivateKey\":"
                         "\"AQID\",\"encryptionMethod\":\"x\",\"extra\":1}"),
                  -EINVAL },
                { strdup("{\"certificate\":1}"), -EBADMSG },
                { strdup("[]"), -EBADMSG },
                { strdup("{\"certificate\":{\"a\":1}}"), -EBADMSG },
                { strdup(""), -EBADMSG },
        };
        struct aws_s3_object o = {};
        struct aws_err e = {};

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                ASSERT_TRUE(bad[i].doc != NULL);
                e.msg[0] = '\0';
                ASSERT_ERR(aws_s3_object_parse(bad[i].doc, strlen(bad[i].doc), &o, &e), bad[i].r);
                ASSERT_TRUE(e.msg[0] != '\0');
                ASSERT_TRUE(o.certificate == NULL);
                ASSERT_TRUE(strstr(e.msg, "MIIB") == NULL && strstr(e.msg, "AQID") == NULL);
                free(bad[i].doc);
        }
        {
                /* a ciphertext bigger than KMS makes */
                size_t n = (AWS_KMS_BLOB_MAX + 3) / 3 * 4;
                _cleanup_free_ char *b64 = malloc(n + 1), *doc = NULL;
                ASSERT_TRUE(b64 != NULL);
                memset(b64, 'A', n);
                b64[n] = '\0';
                doc = build(JCERT, JCHAIN, b64, "SYMMETRIC_DEFAULT");
                ASSERT_ERR(aws_s3_object_parse(doc, strlen(doc), &o, &e), -EINVAL);
        }
        {
                /* over the 1 MiB object cap */
                _cleanup_free_ char *big = malloc(AWS_S3_OBJECT_MAX + 2);
                ASSERT_TRUE(big != NULL);
                memset(big, ' ', AWS_S3_OBJECT_MAX + 1);
                big[0] = '{';
                big[AWS_S3_OBJECT_MAX] = '}';
                ASSERT_ERR(aws_s3_object_parse(big, AWS_S3_OBJECT_MAX + 1, &o, &e), -E2BIG);
        }
        {
                /* every truncation of a good object is refused */
                _cleanup_free_ char *doc = build(JCERT, JCHAIN, "AQID/v8=", "SYMMETRIC_DEFAULT");
                for (size_t n = 0; n < strlen(doc); n++)
                        ASSERT_FAIL(aws_s3_object_parse(doc, n, &o, NULL));
        }
}

/* KMS Encrypt: the request round-trips through the fake's parser; the response through the client's. */
static void test_kms_encrypt(void) {
        static const uint8_t pt[] = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n";
        static const uint8_t blob[] = { 'F', 'K', 'M', 'S', '1', 0x00, 0xff };
        _cleanup_secret_ struct secret_buf *body = NULL, *back = NULL;
        _cleanup_free_ char *resp = NULL;
        char key_id[AWS_KMS_KEY_ID_MAX + 1];
        uint8_t out[AWS_KMS_BLOB_MAX];
        struct aws_err e = {};
        size_t len;

        ASSERT_OK(aws_kms_encrypt_request_build("alias/web-keys", pt, sizeof(pt) - 1, &body, &e));
        ASSERT_TRUE(memmem(body->data, body->len, "MIIE", 4) == NULL); /* base64, not the PEM text */
        ASSERT_OK(aws_kms_encrypt_request_parse(body->data, body->len, key_id, sizeof(key_id), &back, &e));
        ASSERT_STREQ(key_id, "alias/web-keys");
        ASSERT_EQ(back->len, sizeof(pt) - 1);
        ASSERT_MEMEQ(back->data, pt, back->len);
        ASSERT_ERR(aws_kms_encrypt_request_build("alias/\"x", pt, 3, &body, &e), -EINVAL);
        ASSERT_ERR(aws_kms_encrypt_request_build("k", pt, 0, &body, &e), -EINVAL);
        {
                static uint8_t big[AWS_KMS_PLAINTEXT_MAX + 1];
                struct secret_buf *x = NULL;
                ASSERT_ERR(aws_kms_encrypt_request_build("k", big, sizeof(big), &x, &e), -E2BIG);
        }
        {
                static const char *const bad[] = {
                        "{\"KeyId\":\"k\"}",
                        "{\"Plaintext\":\"AQID\"}",
                        "{\"KeyId\":\"k\",\"Plaintext\":\"AQI\"}",
                        "{\"KeyId\":\"k\",\"Plaintext\":\"AQID\",\"EncryptionAlgorithm\":\"RSA_1\"}",
                        "{\"KeyId\":\"k\",\"Plaintext\":\"AQID\",\"EncryptionContext\":{}}",
                        "{\"KeyId\":\"k k\",\"Plaintext\":\"AQID\"}",
                        "{\"KeyId\":\"k\",\"KeyId\":\"k\",\"Plaintext\":\"AQID\"}",
                };
                for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                        struct secret_buf *x = NULL;
                        ASSERT_FAIL(aws_kms_encrypt_request_parse(bad[i], strlen(bad[i]), key_id,
                                                                  sizeof(key_id), &x, &e));
                        ASSERT_TRUE(x == NULL);
                }
        }
        ASSERT_OK(aws_kms_encrypt_response_build("arn:aws:kms:eu-west-1:123456789012:key/k1", blob,
                                                 sizeof(blob), &resp, &len));
        ASSERT_EQ(aws_kms_encrypt_response_parse(resp, len, out, sizeof(out), &e), (int) sizeof(blob));
        ASSERT_MEMEQ(out, blob, sizeof(blob));
        ASSERT_FAIL(aws_kms_encrypt_response_parse("{\"KeyId\":\"k\"}", 12, out, sizeof(out), &e));
        ASSERT_FAIL(aws_kms_encrypt_response_parse("{\"CiphertextBlob\":\"\"}", 20, out, sizeof(out), &e));
        ASSERT_ERR(aws_kms_encrypt_response_parse(resp, len, out, 3, &e), -E2BIG);
}

TAP_MAIN(TEST("/aws/s3/bucket-key", test_bucket_key), TEST("/aws/s3/uri", test_uri),
         TEST("/aws/s3/acm-uri", test_acm_uri), TEST("/aws/s3/target", test_target),
         TEST("/aws/s3/error-code", test_error_code), TEST("/aws/s3/object", test_object),
         TEST("/aws/s3/object-negative", test_object_negative), TEST("/aws/kms/encrypt", test_kms_encrypt))
