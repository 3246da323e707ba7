/* aws/imds.h: IMDSv2 answers (role list, credentials JSON, iam/info, the role tag), with negatives. */
#include <errno.h>
#include <string.h>

#include "aws/imds-client.h"
#include "aws/imds.h"
#include "common/secret.h"
#include "tests/lib/tap.h"

#define CREDS_OK                                                                        \
        "{\n  \"Code\" : \"Success\",\n  \"LastUpdated\" : \"2026-12-06T16:39:16Z\",\n" \
        "  \"Type\" : \"AWS-HMAC\",\n  \"AccessKeyId\" : \"ASIAIOSFODNN7EXAMPLE\",\n"   \
        "  \"SecretAccessKey\" : \"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\",\n"       \
        "  \"Token\" : \"IQoJb3JpZ2luX2VjEXAMPLETOKEN+/=\",\n"                          \
        "  \"Expiration\" : \"2026-12-07T05:00:00Z\"\n}"

static void test_iso8601(void) {
        int64_t t;

        ASSERT_OK(aws_iso8601_parse("2015-08-30T12:36:00Z", 20, &t));
        ASSERT_EQ(t, INT64_C(1440938160));
        ASSERT_OK(aws_iso8601_parse("1970-01-01T00:00:00Z", 20, &t));
        ASSERT_EQ(t, 0);
        ASSERT_ERR(aws_iso8601_parse("2015-08-30T12:36:00", 19, &t), -EINVAL);
        ASSERT_ERR(aws_iso8601_parse("2015-08-30 12:36:00Z", 20, &t), -EINVAL);
        ASSERT_ERR(aws_iso8601_parse("2015-02-30T12:36:00Z", 20, &t), -EINVAL);
        ASSERT_ERR(aws_iso8601_parse("2015-08-30T25:36:00Z", 20, &t), -EINVAL);
        ASSERT_ERR(aws_iso8601_parse("2015-08-30T12:36:00+01:00", 25, &t), -EINVAL);
        ASSERT_ERR(aws_iso8601_parse("2015-08-3xT12:36:00Z", 20, &t), -EINVAL);
        ASSERT_ERR(aws_iso8601_parse(NULL, 0, &t), -EINVAL);
}

static void test_token(void) {
        struct aws_err e = {};
        char big[AWS_IMDS_TOKEN_MAX + 1];

        ASSERT_OK(aws_imds_token_validate("AQAEAExampleToken==", 19, &e));
        ASSERT_ERR(aws_imds_token_validate("", 0, &e), -EINVAL);
        ASSERT_ERR(aws_imds_token_validate("a b", 3, &e), -EINVAL);
        ASSERT_ERR(aws_imds_token_validate("ab\n", 3, &e), -EINVAL);
        memset(big, 'A', sizeof(big));
        ASSERT_ERR(aws_imds_token_validate(big, sizeof(big), &e), -E2BIG);
        ASSERT_OK(aws_imds_token_validate(big, sizeof(big) - 1, &e));
}

static void test_role_name(void) {
        struct aws_err e = {};
        char b[AWS_IMDS_ROLE_MAX + 1];
        char big[AWS_IMDS_ROLE_MAX + 2];

        ASSERT_OK(aws_imds_role_name_parse("web-role", 8, b, sizeof(b), &e));
        ASSERT_STREQ(b, "web-role");
        ASSERT_OK(aws_imds_role_name_parse("a+=,.@_-Z9\nsecond\n", 18, b, sizeof(b), &e));
        ASSERT_STREQ(b, "a+=,.@_-Z9");
        ASSERT_ERR(aws_imds_role_name_parse("", 0, b, sizeof(b), &e), -ENOENT);
        ASSERT_ERR(aws_imds_role_name_parse("\nx", 2, b, sizeof(b), &e), -ENOENT);
        ASSERT_ERR(aws_imds_role_name_parse("bad role", 8, b, sizeof(b), &e), -EINVAL);
        ASSERT_TRUE(strstr(e.msg, "offset 3") != NULL);
        ASSERT_ERR(aws_imds_role_name_parse("a/b", 3, b, sizeof(b), &e), -EINVAL);
        ASSERT_ERR(aws_imds_role_name_parse("a\0b", 3, b, sizeof(b), &e), -EINVAL);
        memset(big, 'r', sizeof(big));
        ASSERT_ERR(aws_imds_role_name_parse(big, AWS_IMDS_ROLE_MAX + 1, b, sizeof(b), &e), -EINVAL);
        ASSERT_OK(aws_imds_role_name_parse(big, AWS_IMDS_ROLE_MAX, b, sizeof(b), &e));
        ASSERT_ERR(aws_imds_role_name_parse("role", 4, b, 4, &e), -E2BIG);
}

static void test_partition_line(void) {
        struct aws_err e = {};
        char b[64];

        ASSERT_OK(aws_imds_partition_parse("aws", 3, b, sizeof(b), &e));
        ASSERT_STREQ(b, "aws");
        ASSERT_OK(aws_imds_partition_parse("aws-cn\n", 7, b, sizeof(b), &e));
        ASSERT_STREQ(b, "aws-cn");
        ASSERT_OK(aws_imds_partition_parse("aws-us-gov", 10, b, sizeof(b), &e));
        ASSERT_ERR(aws_imds_partition_parse("", 0, b, sizeof(b), &e), -EINVAL);
        ASSERT_ERR(aws_imds_partition_parse("gcp", 3, b, sizeof(b), &e), -EINVAL);
        ASSERT_ERR(aws_imds_partition_parse("awsx", 4, b, sizeof(b), &e), -EINVAL);
        ASSERT_ERR(aws_imds_partition_parse("aws-", 4, b, sizeof(b), &e), -EINVAL);
        ASSERT_ERR(aws_imds_partition_parse("aws--cn", 7, b, sizeof(b), &e), -EINVAL);
        ASSERT_ERR(aws_imds_partition_parse("AWS", 3, b, sizeof(b), &e), -EINVAL);
        ASSERT_ERR(aws_imds_partition_parse("aws\n\n", 5, b, sizeof(b), &e), -EINVAL);

        ASSERT_OK(aws_imds_line_parse("eu-west-1\r\n", 11, b, sizeof(b), &e));
        ASSERT_STREQ(b, "eu-west-1");
        ASSERT_ERR(aws_imds_line_parse("eu west", 7, b, sizeof(b), &e), -EINVAL);
        ASSERT_ERR(aws_imds_line_parse("eu-west-1", 9, b, 5, &e), -E2BIG);
        ASSERT_ERR(aws_imds_line_parse("\n", 1, b, sizeof(b), &e), -EINVAL);
}

static void test_credentials(void) {
        struct aws_imds_credentials c = {};
        struct aws_err e = {};

        ASSERT_OK(aws_imds_credentials_parse(CREDS_OK, strlen(CREDS_OK), &c, &e));
        ASSERT_STREQ(c.access_key_id, "ASIAIOSFODNN7EXAMPLE");
        ASSERT_EQ(c.secret_access_key->len, strlen("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"));
        ASSERT_MEMEQ(c.secret_access_key->data, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                     c.secret_access_key->len);
        ASSERT_MEMEQ(c.session_token->data, "IQoJb3JpZ2luX2VjEXAMPLETOKEN+/=", c.session_token->len);
        ASSERT_EQ(c.expiration, INT64_C(1796619600)); /* 2026-12-07T05:00:00Z */
        aws_imds_credentials_done(&c);
        ASSERT_TRUE(c.secret_access_key == NULL);
}

static void test_credentials_negative(void) {
        static const char *const bad[] = {
                "",
                "[]",
                "{",
                "{\"AccessKeyId\":\"ASIAIOSFODNN7EXAMPLE\",\"SecretAccessKey\":\"s\",\"Token\":\"t\"}",
                "{\"AccessKeyId\":\"ASIAIOSFODNN7EXAMPLE\",\"SecretAccessKey\":\"s\","
                "\"Expiration\":\"2026-12-07T05:00:00Z\"}",
                "{\"AccessKeyId\":\"ASIAIOSFODNN7EXAMPLE\",\"Token\":\"t\","
                "\"Expiration\":\"2026-12-07T05:00:00Z\"}",
                "{\"SecretAccessKey\":\"s\",\"Token\":\"t\",\"Expiration\":\"2026-12-07T05:00:00Z\"}",
                "{\"AccessKeyId\":\"asiaiosfodnn7example\",\"SecretAccessKey\":\"s\",\"Token\":\"t\","
                "\"Expiration\":\"2026-12-07T05:00:00Z\"}",
                "{\"AccessKeyId\":\"ASIASHORT\",\"SecretAccessKey\":\"s\",\"Token\":\"t\","
                "\"Expiration\":\"2026-12-07T05:00:00Z\"}",
                "{\"AccessKeyId\":\"ASIAIOSFODNN7EXAMPLE\",\"SecretAccessKey\":\"s p\",\"Token\":\"t\","
                "\"Expiration\":\"2026-12-07T05:00:00Z\"}",
                "{\"AccessKeyId\":\"ASIAIOSFODNN7EXAMPLE\",\"SecretAccessKey\":\"s\",\"Token\":\"t\","
                "\"Expiration\":\"tomorrow\"}",
                "{\"AccessKeyId\":\"ASIAIOSFODNN7EXAMPLE\",\"SecretAccessKey\":\"s\",\"Token\":\"\","
                "\"Expiration\":\"2026-12-07T05:00:00Z\"}",
                "{\"AccessKeyId\":\"ASIAIOSFODNN7EXAMPLE\",\"AccessKeyId\":\"ASIAIOSFODNN7EXAMPLE\","
                "\"SecretAccessKey\":\"s\",\"Token\":\"t\",\"Expiration\":\"2026-12-07T05:00:00Z\"}",
                "{\"AccessKeyId\":1,\"SecretAccessKey\":\"s\",\"Token\":\"t\","
                "\"Expiration\":\"2026-12-07T05:00:00Z\"}",
                "{\"AccessKeyId\":\"ASIAIOSFODNN7EXAMPLE\",\"SecretAccessKey\":\"s\",\"Token\":\"t\","
                "\"Expiration\":\"2026-12-07T05:00:00Z\"} x",
        };
        struct aws_imds_credentials c = {};
        struct aws_err e = {};

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                e.msg[0] = '\0';
                ASSERT_FAIL(aws_imds_credentials_parse(bad[i], strlen(bad[i]), &c, &e));
                ASSERT_TRUE(e.msg[0] != '\0');
                ASSERT_TRUE(c.secret_access_key == NULL && c.session_token == NULL);
                /* never a value in the message */
                ASSERT_TRUE(strstr(e.msg, "ASIA") == NULL);
        }
        {
                const char *failed = "{\"Code\":\"AssumeRoleUnauthorizedAccess\",\"Message\":\"x\"}";
                ASSERT_ERR(aws_imds_credentials_parse(failed, strlen(failed), &c, &e), -EKEYEXPIRED);
        }
        /* every truncation of a good document is refused */
        for (size_t n = 0; n < strlen(CREDS_OK); n++)
                ASSERT_FAIL(aws_imds_credentials_parse(CREDS_OK, n, &c, NULL));
}

static void test_role_arn(void) {
        struct aws_err e = {};
        char b[AWS_IMDS_ARN_MAX + 1];
        bool path = true;
        const char *info =
                "{\"Code\":\"Success\",\"LastUpdated\":\"2026-12-06T16:39:16Z\","
                "\"InstanceProfileArn\":\"arn:aws:iam::123456789012:instance-profile/web-profile\","
                "\"InstanceProfileId\":\"AIPAEXAMPLE\"}";
        const char *info_path = "{\"InstanceProfileArn\":\"arn:aws-cn:iam::123456789012:instance-profile/"
                                "team/web-profile\"}";

        ASSERT_OK(aws_role_arn_validate("arn:aws:iam::123456789012:role/web-role", &e));
        ASSERT_OK(aws_role_arn_validate("arn:aws-cn:iam::123456789012:role/path/to/web-role", &e));
        ASSERT_ERR(aws_role_arn_validate("arn:aws:iam::12345678901:role/x", &e), -EINVAL);
        ASSERT_ERR(aws_role_arn_validate("arn:aws:iam::123456789012:user/x", &e), -EINVAL);
        ASSERT_ERR(aws_role_arn_validate("arn:aws:iam::123456789012:role/", &e), -EINVAL);
        ASSERT_ERR(aws_role_arn_validate("arn:aws:iam::123456789012:role/a//b", &e), -EINVAL);
        ASSERT_ERR(aws_role_arn_validate("arn:aws:sts::123456789012:role/x", &e), -EINVAL);
        ASSERT_ERR(aws_role_arn_validate("arn:aws:iam::123456789012:role/x y", &e), -EINVAL);
        ASSERT_ERR(aws_role_arn_validate("arn::iam::123456789012:role/x", &e), -EINVAL);

        ASSERT_OK(
                aws_imds_role_tag_parse("arn:aws:iam::123456789012:role/web-role\n", 40, b, sizeof(b), &e));
        ASSERT_STREQ(b, "arn:aws:iam::123456789012:role/web-role");
        ASSERT_ERR(aws_imds_role_tag_parse("web-role", 8, b, sizeof(b), &e), -EINVAL);

        ASSERT_OK(aws_imds_info_role_arn(info, strlen(info), "web-role", b, sizeof(b), &path, &e));
        ASSERT_STREQ(b, "arn:aws:iam::123456789012:role/web-role");
        ASSERT_FALSE(path);
        ASSERT_OK(aws_imds_info_role_arn(info_path, strlen(info_path), "web-role", b, sizeof(b), &path, &e));
        ASSERT_STREQ(b, "arn:aws-cn:iam::123456789012:role/web-role");
        ASSERT_TRUE(path);
        ASSERT_ERR(aws_imds_info_role_arn(info, strlen(info), "bad role", b, sizeof(b), &path, &e), -EINVAL);
        ASSERT_ERR(aws_imds_info_role_arn(info, strlen(info), "web-role", b, 20, &path, &e), -E2BIG);
        {
                const char *no = "{\"Code\":\"Success\"}";
                const char *fail = "{\"Code\":\"Failure\",\"InstanceProfileArn\":"
                                   "\"arn:aws:iam::123456789012:instance-profile/p\"}";
                const char *user = "{\"InstanceProfileArn\":\"arn:aws:iam::123456789012:user/p\"}";
                ASSERT_ERR(aws_imds_info_role_arn(no, strlen(no), "r", b, sizeof(b), &path, &e), -EINVAL);
                ASSERT_ERR(aws_imds_info_role_arn(fail, strlen(fail), "r", b, sizeof(b), &path, &e),
                           -EINVAL);
                ASSERT_ERR(aws_imds_info_role_arn(user, strlen(user), "r", b, sizeof(b), &path, &e),
                           -EINVAL);
                ASSERT_FAIL(aws_imds_info_role_arn("{", 1, "r", b, sizeof(b), &path, &e));
        }
}

static void test_endpoint(void) {
        struct aws_err e = {};

        ASSERT_OK(aws_imds_endpoint_validate("http://169.254.169.254", &e));
        ASSERT_OK(aws_imds_endpoint_validate("http://127.0.0.1:8080", &e));
        ASSERT_OK(aws_imds_endpoint_validate("http://[fd00:ec2::254]", &e));
        ASSERT_ERR(aws_imds_endpoint_validate("https://127.0.0.1", &e), -EINVAL);
        ASSERT_ERR(aws_imds_endpoint_validate("http://127.0.0.1/latest", &e), -EINVAL);
        ASSERT_ERR(aws_imds_endpoint_validate("http://u@127.0.0.1", &e), -EINVAL);
        ASSERT_ERR(aws_imds_endpoint_validate("http://", &e), -EINVAL);
        ASSERT_ERR(aws_imds_endpoint_validate(NULL, &e), -EINVAL);
}

/* Nothing listens on this loopback port: the round fails fast with the one-line "not on EC2" text. */
static void test_fetch_unreachable(void) {
        struct aws_imds_opts o = { .endpoint = "http://127.0.0.1:9", .timeout_ms = 500 };
        struct aws_imds_info i = {};
        struct aws_err e = {};
        int r;

        r = aws_imds_fetch(&o, AWS_IMDS_WANT_CREDS, &i, &e);
        ASSERT_TRUE(r == -EHOSTUNREACH || r == -ETIMEDOUT);
        ASSERT_TRUE(strstr(e.msg, "no instance metadata service at http://127.0.0.1:9") != NULL);
        ASSERT_TRUE(strchr(e.msg, '\n') == NULL);
}

TAP_MAIN(TEST("/aws/imds/iso8601", test_iso8601), TEST("/aws/imds/token", test_token),
         TEST("/aws/imds/role-name", test_role_name), TEST("/aws/imds/partition-line", test_partition_line),
         TEST("/aws/imds/credentials", test_credentials),
         TEST("/aws/imds/credentials-negative", test_credentials_negative),
         TEST("/aws/imds/role-arn", test_role_arn), TEST("/aws/imds/endpoint", test_endpoint),
         TEST("/aws/imds/fetch-unreachable", test_fetch_unreachable))
