/* aws/: SigV4 pieces and verifier, endpoints, base64, KMS message shapes, with negatives. */
#include <errno.h>
#include <string.h>

#include "aws/endpoint.h"
#include "aws/kms.h"
#include "aws/sigv4.h"
#include "common/base64.h"
#include "common/secret.h"
#include "tests/lib/data.h"
#include "tests/lib/tap.h"

#define AKID   "AKIDEXAMPLE"
#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define T_2015 INT64_C(1440938160) /* 2015-08-30T12:36:00Z */

static struct secret_buf *secret_of(const char *s) {
        struct secret_buf *b = NULL;
        if (secret_buf_dup(s, strlen(s), &b) < 0)
                return NULL;
        return b;
}

static void test_uri_encode(void) {
        char buf[64];

        ASSERT_EQ(aws_sigv4_uri_encode("/a b/\xc3\xbc~-_.", 11, true, buf, sizeof(buf)), 17);
        ASSERT_STREQ(buf, "/a%20b/%C3%BC~-_.");
        ASSERT_EQ(aws_sigv4_uri_encode("a/b=c", 5, false, buf, sizeof(buf)), 9);
        ASSERT_STREQ(buf, "a%2Fb%3Dc");
        ASSERT_ERR(aws_sigv4_uri_encode("a b", 3, false, buf, 5), -E2BIG);
}

static void test_normalize(void) {
        static const char *const cases[][2] = {
                { "//example//", "/example/" },
                { "/", "/" },
                { "/a/./b/../c", "/a/c" },
                { "/..", "/" },
                { "/a/..", "/" },
                { "/a/b/", "/a/b/" },
                { "/a//b", "/a/b" },
                { "/./.././x", "/x" },
        };
        char buf[64];

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                ASSERT_OK(aws_sigv4_normalize_path(cases[i][0], buf, sizeof(buf)));
                ASSERT_STREQ(buf, cases[i][1]);
        }
        ASSERT_ERR(aws_sigv4_normalize_path("relative", buf, sizeof(buf)), -EINVAL);
        ASSERT_ERR(aws_sigv4_normalize_path("", buf, sizeof(buf)), -EINVAL);
}

static void test_dates(void) {
        char d[17];
        int64_t t;

        ASSERT_OK(aws_sigv4_format_date(T_2015, d));
        ASSERT_STREQ(d, "20150830T123600Z");
        ASSERT_OK(aws_sigv4_parse_date("20150830T123600Z", &t));
        ASSERT_EQ(t, T_2015);
        ASSERT_OK(aws_sigv4_parse_date("20240229T000000Z", &t));
        ASSERT_ERR(aws_sigv4_parse_date("20230229T000000Z", &t), -EINVAL);
        ASSERT_ERR(aws_sigv4_parse_date("20150830T123600", &t), -EINVAL);
        ASSERT_ERR(aws_sigv4_parse_date("2015083OT123600Z", &t), -EINVAL);
        ASSERT_ERR(aws_sigv4_parse_date("20151330T123600Z", &t), -EINVAL);
        ASSERT_ERR(aws_sigv4_parse_date("20150830T246000Z", &t), -EINVAL);
        ASSERT_ERR(aws_sigv4_format_date(-1, d), -ERANGE);
}

/* post-vanilla from the upstream suite, through the API directly */
static void test_post_vanilla(void) {
        _cleanup_secret_ struct secret_buf *secret = secret_of(SECRET);
        _cleanup_(aws_sigv4_result_done) struct aws_sigv4_result res = {};
        const struct aws_header h[] = { { "Host", "example.amazonaws.com" } };
        struct aws_credentials c = { AKID, secret, NULL };
        struct aws_sigv4_req q = { .method = "POST",
                                   .path = "/",
                                   .headers = h,
                                   .n_headers = 1,
                                   .creds = &c,
                                   .region = "us-east-1",
                                   .service = "service",
                                   .time = T_2015,
                                   .flags = AWS_SIGV4_NORMALIZE_PATH };
        struct aws_err e = {};

        ASSERT_TRUE(secret);
        ASSERT_OK(aws_sigv4_sign(&q, &res, &e));
        ASSERT_STREQ(res.signature, "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");
        ASSERT_STREQ(res.signed_headers, "host;x-amz-date");
        ASSERT_STREQ(res.authorization,
                     "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
                     "SignedHeaders=host;x-amz-date, "
                     "Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");
        ASSERT_EQ(res.n_add, 2);
        ASSERT_STREQ(res.add[0].name, "X-Amz-Date");
        ASSERT_STREQ(res.add[0].value, "20150830T123600Z");
        ASSERT_STREQ(res.add[1].name, "Authorization");
}

/* The copy in tests/data must be there (CI has only the repository) and agree with the API. */
static void test_post_vanilla_file(void) {
        _cleanup_free_ char *sig = NULL;
        size_t len = 0;

        sig = test_data_load("sigv4/post-vanilla/header-signature.txt", &len);
        ASSERT_TRUE(sig);
        ASSERT_EQ(len, 64);
        ASSERT_STREQ(sig, "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");
}

static void test_sign_negative(void) {
        _cleanup_secret_ struct secret_buf *secret = secret_of(SECRET), *bad_tok = secret_of("a\nb");
        struct aws_sigv4_result res = {};
        struct aws_header h[2] = { { "Host", "kms.us-east-1.amazonaws.com" }, { "X-Ok", "v" } };
        struct aws_credentials c = { AKID, secret, NULL };
        struct aws_sigv4_req q = { .method = "POST",
                                   .path = "/",
                                   .headers = h,
                                   .n_headers = 2,
                                   .creds = &c,
                                   .region = "us-east-1",
                                   .service = "kms",
                                   .time = T_2015 };
        struct aws_err e = {};

        q.n_headers = 0;
        ASSERT_ERR(aws_sigv4_sign(&q, &res, &e), -EINVAL);
        ASSERT_TRUE(strstr(e.msg, "Host"));
        q.n_headers = 2;
        h[1] = (struct aws_header){ "Authorization", "x" };
        ASSERT_ERR(aws_sigv4_sign(&q, &res, &e), -EINVAL);
        ASSERT_TRUE(strstr(e.msg, "Authorization"));
        h[1] = (struct aws_header){ "X-Inject", "a\r\nb: c" };
        ASSERT_ERR(aws_sigv4_sign(&q, &res, &e), -EINVAL);
        ASSERT_TRUE(strstr(e.msg, "X-Inject") && strstr(e.msg, "byte 1"));
        h[1] = (struct aws_header){ "Bad Name", "v" };
        ASSERT_ERR(aws_sigv4_sign(&q, &res, &e), -EINVAL);
        h[1] = (struct aws_header){ "X-Ok", "v" };
        q.region = "US-east-1";
        ASSERT_ERR(aws_sigv4_sign(&q, &res, &e), -EINVAL);
        ASSERT_TRUE(strstr(e.msg, "region"));
        q.region = "us-east-1";
        q.method = "post";
        ASSERT_ERR(aws_sigv4_sign(&q, &res, &e), -EINVAL);
        q.method = "POST";
        q.path = "no-slash";
        ASSERT_ERR(aws_sigv4_sign(&q, &res, &e), -EINVAL);
        q.path = "/";
        c.access_key_id = "AKID/EXAMPLE";
        ASSERT_ERR(aws_sigv4_sign(&q, &res, &e), -EINVAL);
        c.access_key_id = AKID;
        c.session_token = bad_tok;
        ASSERT_ERR(aws_sigv4_sign(&q, &res, &e), -EINVAL);
        ASSERT_TRUE(strstr(e.msg, "session token") && !strstr(e.msg, "a\nb"));
        c.session_token = NULL;
        ASSERT_ERR(aws_sigv4_presign(&q, &res, &e), -EINVAL); /* expires 0 */
        ASSERT_TRUE(strstr(e.msg, "expires"));
        c.secret_access_key = NULL;
        ASSERT_ERR(aws_sigv4_sign(&q, &res, &e), -EINVAL);
        ASSERT_EQ(res.canonical_request, NULL); /* outputs untouched on failure */
}

/* ---- verifier ---- */

struct creds_db {
        struct secret_buf *secret, *token;
};

static int lookup(void *userdata, const char *akid, const struct secret_buf **ret_secret,
                  const struct secret_buf **ret_token) {
        struct creds_db *db = userdata;

        if (strcmp(akid, "ASIAEXAMPLE") != 0)
                return -ENOKEY;
        *ret_secret = db->secret;
        *ret_token = db->token;
        return 0;
}

struct signed_req {
        struct aws_header h[8];
        size_t n;
        struct aws_sigv4_result res;
};

static int sign_kms(struct creds_db *db, const char *body, unsigned flags, struct signed_req *out) {
        static const struct aws_header base[] = {
                { "Host", "kms.us-east-1.amazonaws.com" },
                { "Content-Type", AWS_KMS_CONTENT_TYPE },
                { "X-Amz-Target", "TrentService.Decrypt" },
        };
        struct aws_credentials c = { "ASIAEXAMPLE", db->secret, db->token };
        struct aws_sigv4_req q = { .method = "POST",
                                   .path = "/",
                                   .headers = base,
                                   .n_headers = 3,
                                   .body = body,
                                   .body_len = strlen(body),
                                   .creds = &c,
                                   .region = "us-east-1",
                                   .service = "kms",
                                   .time = T_2015,
                                   .flags = AWS_SIGV4_NORMALIZE_PATH | flags };
        int r = aws_sigv4_sign(&q, &out->res, NULL);

        if (r < 0)
                return r;
        out->n = 0;
        for (size_t i = 0; i < 3; i++)
                out->h[out->n++] = base[i];
        for (size_t i = 0; i < out->res.n_add; i++)
                out->h[out->n++] = out->res.add[i];
        return 0;
}

static enum aws_sigv4_verdict verify(struct creds_db *db, struct signed_req *s, const char *target,
                                     const char *body, int64_t now, const char *region) {
        struct aws_sigv4_received rq = { "POST", target, s->h, s->n, body, strlen(body) };
        struct aws_sigv4_verify_params p = { region, "kms", now, 300, AWS_SIGV4_NORMALIZE_PATH, lookup, db };
        enum aws_sigv4_verdict v = _AWS_SIGV4_VERDICT_INVALID;
        struct aws_err e = {};

        if (aws_sigv4_verify(&rq, &p, &v, &e) < 0)
                return _AWS_SIGV4_VERDICT_INVALID;
        if (v != AWS_SIGV4_OK)
                printf("# verdict %s: %s\n", aws_sigv4_verdict_to_string(v), e.msg);
        return v;
}

static void set_header(struct signed_req *s, const char *name, const char *value) {
        for (size_t i = 0; i < s->n; i++)
                if (!strcasecmp(s->h[i].name, name))
                        s->h[i].value = value;
}

static void test_verify(void) {
        _cleanup_secret_ struct secret_buf *secret = secret_of(SECRET),
                                           *token = secret_of("FQoGZXIvYXdzEXAMPLE");
        _cleanup_secret_ struct secret_buf *other = secret_of("FQoGZXIvYXdzOTHER");
        struct creds_db db = { secret, token };
        struct signed_req s = {};
        const char *body = "{\"CiphertextBlob\":\"AQID\"}";
        char auth[512], *p;

        ASSERT_OK(sign_kms(&db, body, AWS_SIGV4_SIGN_BODY, &s));
        ASSERT_EQ(s.res.n_add, 4);
        ASSERT_EQ(verify(&db, &s, "/", body, T_2015 + 100, "us-east-1"), AWS_SIGV4_OK);
        ASSERT_EQ(verify(&db, &s, "/", "{\"CiphertextBlob\":\"AQIE\"}", T_2015, "us-east-1"),
                  AWS_SIGV4_BODY_HASH_MISMATCH);
        ASSERT_EQ(verify(&db, &s, "/?a=b", body, T_2015, "us-east-1"), AWS_SIGV4_SIGNATURE_MISMATCH);
        ASSERT_EQ(verify(&db, &s, "/", body, T_2015 + 301, "us-east-1"), AWS_SIGV4_SKEWED);
        ASSERT_EQ(verify(&db, &s, "/", body, T_2015 - 301, "us-east-1"), AWS_SIGV4_SKEWED);
        ASSERT_EQ(verify(&db, &s, "/", body, T_2015, "eu-west-1"), AWS_SIGV4_BAD_SCOPE);
        ASSERT_EQ(verify(&db, &s, "/%zz", body, T_2015, "us-east-1"), AWS_SIGV4_MALFORMED);

        db.token = other;
        ASSERT_EQ(verify(&db, &s, "/", body, T_2015, "us-east-1"), AWS_SIGV4_BAD_TOKEN);
        db.token = NULL;
        ASSERT_EQ(verify(&db, &s, "/", body, T_2015, "us-east-1"), AWS_SIGV4_BAD_TOKEN);
        db.token = token;

        set_header(&s, "X-Amz-Target", "TrentService.GenerateRandom");
        ASSERT_EQ(verify(&db, &s, "/", body, T_2015, "us-east-1"), AWS_SIGV4_SIGNATURE_MISMATCH);
        set_header(&s, "X-Amz-Target", "TrentService.Decrypt");

        /* a flipped signature digit */
        snprintf(auth, sizeof(auth), "%s", s.res.authorization);
        p = auth + strlen(auth) - 1;
        *p = *p == '0' ? '1' : '0';
        set_header(&s, "Authorization", auth);
        ASSERT_EQ(verify(&db, &s, "/", body, T_2015, "us-east-1"), AWS_SIGV4_SIGNATURE_MISMATCH);
        /* another access key */
        snprintf(auth, sizeof(auth), "%s", s.res.authorization);
        memcpy(strstr(auth, "ASIA"), "AKIA", 4);
        ASSERT_EQ(verify(&db, &s, "/", body, T_2015, "us-east-1"), AWS_SIGV4_UNKNOWN_KEY);
        /* scope of another day */
        snprintf(auth, sizeof(auth), "%s", s.res.authorization);
        memcpy(strstr(auth, "/20150830/"), "/20150831/", 10);
        ASSERT_EQ(verify(&db, &s, "/", body, T_2015, "us-east-1"), AWS_SIGV4_WRONG_DATE);
        /* malformed */
        set_header(&s, "Authorization", "AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE/20150830/us-east-1/kms");
        ASSERT_EQ(verify(&db, &s, "/", body, T_2015, "us-east-1"), AWS_SIGV4_MALFORMED);
        set_header(&s, "Authorization", "AWS4-HMAC-SHA1 x");
        ASSERT_EQ(verify(&db, &s, "/", body, T_2015, "us-east-1"), AWS_SIGV4_MALFORMED);
        /* missing */
        set_header(&s, "Authorization", s.res.authorization);
        s.h[s.n - 1].name = "X-Not-Authorization";
        ASSERT_EQ(verify(&db, &s, "/", body, T_2015, "us-east-1"), AWS_SIGV4_MISSING_HEADER);
        aws_sigv4_result_done(&s.res);

        /* without x-amz-content-sha256 a changed body is a signature mismatch; a dropped signed header is
         * missing */
        ASSERT_OK(sign_kms(&db, body, 0, &s));
        ASSERT_EQ(verify(&db, &s, "/", body, T_2015, "us-east-1"), AWS_SIGV4_OK);
        ASSERT_EQ(verify(&db, &s, "/", "{}", T_2015, "us-east-1"), AWS_SIGV4_SIGNATURE_MISMATCH);
        s.h[1].name = "X-Other"; /* Content-Type */
        ASSERT_EQ(verify(&db, &s, "/", body, T_2015, "us-east-1"), AWS_SIGV4_MISSING_HEADER);
        aws_sigv4_result_done(&s.res);
        ASSERT_STREQ(aws_sigv4_verdict_to_string(AWS_SIGV4_SKEWED), "request time too skewed");
}

/* ---- endpoint ---- */

static void test_endpoint(void) {
        static const struct {
                const char *region, *host, *partition;
        } ok[] = {
                { "us-east-1", "kms.us-east-1.amazonaws.com", "aws" },
                { "cn-north-1", "kms.cn-north-1.amazonaws.com.cn", "aws-cn" },
                { "eusc-de-east-1", "kms.eusc-de-east-1.amazonaws.eu", "aws-eusc" },
                { "us-iso-east-1", "kms.us-iso-east-1.c2s.ic.gov", "aws-iso" },
                { "us-isob-east-1", "kms.us-isob-east-1.sc2s.sgov.gov", "aws-iso-b" },
                { "us-gov-west-1", "kms.us-gov-west-1.amazonaws.com", "aws" },
                { "xx-new-9", "kms.xx-new-9.amazonaws.com", "aws" },
        };
        static const char *const bad[] = {
                "",          "US-east-1",  "us_east_1",  "us-east-1.",
                "us.east-1", "-us-east-1", "us-east-1-", "us--east",
                "useast1",   "1us-east",   "us-east-1/", "us-east-1-aaaaaaaaaaaaaaaaaaaaaaaaa"
        };
        static const char *const bad_suffix[] = { "",      "com",   "a..b",    "-a.com", "a-.com",
                                                  "A.com", "a_b.c", "a.com/x", ".a.b",   "a.b." };
        enum aws_partition p;
        struct aws_err e = {};
        char host[AWS_HOST_MAX + 1];

        for (size_t i = 0; i < ELEMENTSOF(ok); i++) {
                ASSERT_EQ(aws_kms_host(ok[i].region, NULL, host, sizeof(host), &e),
                          (int) strlen(ok[i].host));
                ASSERT_STREQ(host, ok[i].host);
                ASSERT_OK(aws_region_partition(ok[i].region, &p, &e));
                ASSERT_STREQ(aws_partition_to_string(p), ok[i].partition);
        }
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                ASSERT_ERR(aws_region_validate(bad[i], &e), -EINVAL);
                ASSERT_TRUE(strstr(e.msg, "region"));
                ASSERT_ERR(aws_kms_host(bad[i], NULL, host, sizeof(host), NULL), -EINVAL);
        }
        ASSERT_ERR(aws_region_validate(NULL, NULL), -EINVAL);
        ASSERT_EQ(aws_kms_host("us-east-1", "example.test", host, sizeof(host), &e), 26);
        ASSERT_STREQ(host, "kms.us-east-1.example.test");
        for (size_t i = 0; i < ELEMENTSOF(bad_suffix); i++)
                ASSERT_ERR(aws_kms_host("us-east-1", bad_suffix[i], host, sizeof(host), &e), -EINVAL);
        ASSERT_ERR(aws_kms_host("us-east-1", NULL, host, 10, &e), -ENOBUFS);
        ASSERT_ERR(aws_service_host("K MS", "us-east-1", NULL, host, sizeof(host), &e), -EINVAL);
}

/* ---- base64 ---- */

static void test_base64(void) {
        static const char *const vec[][2] = { { "", "" },
                                              { "f", "Zg==" },
                                              { "fo", "Zm8=" },
                                              { "foo", "Zm9v" },
                                              { "foob", "Zm9vYg==" },
                                              { "fooba", "Zm9vYmE=" },
                                              { "foobar", "Zm9vYmFy" } };
        static const char *const bad[] = { "Zg=",      "Zh==", "Zm9=", "Zm 9v", "Zm9v\n", "=Zm9",
                                           "Zg==Zg==", "Z===", "====", "Zm9-",  "Zm9_",   "Zm8==" };
        uint8_t out[16];
        char enc[16];
        size_t off = 99;

        for (size_t i = 0; i < ELEMENTSOF(vec); i++) {
                ASSERT_EQ(base64_encode(vec[i][0], strlen(vec[i][0]), enc, sizeof(enc)),
                          (int) strlen(vec[i][1]));
                ASSERT_STREQ(enc, vec[i][1]);
                ASSERT_EQ(base64_decode(vec[i][1], strlen(vec[i][1]), out, sizeof(out), NULL),
                          (int) strlen(vec[i][0]));
                ASSERT_MEMEQ(out, vec[i][0], strlen(vec[i][0]));
        }
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                ASSERT_ERR(base64_decode(bad[i], strlen(bad[i]), out, sizeof(out), &off), -EBADMSG);
        ASSERT_ERR(base64_decode("Zm9 ", 4, out, sizeof(out), &off), -EBADMSG);
        ASSERT_EQ(off, 3);
        ASSERT_ERR(base64_decode("Zm9vYmFy", 8, out, 5, NULL), -ENOBUFS);
        ASSERT_ERR(base64_encode("foo", 3, enc, 4), -ENOBUFS);
}

/* ---- KMS messages ---- */

static const uint8_t ct[] = { 1, 2, 3 };
static const uint8_t doc[] = { 4, 5 };

static void test_kms_request_bytes(void) {
        const struct aws_kms_context_pair ctx[] = { { "purpose", "tls" }, { "k\"2", "v" } };
        struct aws_kms_decrypt_req q = { ct, sizeof(ct), "alias/acm", ctx, 2, doc, sizeof(doc) };
        struct aws_kms_random_req rq = { 32, doc, sizeof(doc) };
        struct aws_header h[2];
        _cleanup_free_ char *body = NULL, *body2 = NULL, *body3 = NULL;
        size_t len;
        struct aws_err e = {};

        ASSERT_OK(aws_kms_decrypt_request_build(&q, &body, &len, &e));
        ASSERT_STREQ(
                body,
                "{\"CiphertextBlob\":\"AQID\",\"KeyId\":\"alias/acm\",\"EncryptionContext\":{\"purpose\":"
                "\"tls\",\"k\\\"2\":\"v\"},\"Recipient\":{\"KeyEncryptionAlgorithm\":\"RSAES_OAEP_SHA_"
                "256\",\"AttestationDocument\":\"BAU=\"}}");
        ASSERT_EQ(len, strlen(body));
        q.key_id = NULL;
        q.n_context = 0;
        ASSERT_OK(aws_kms_decrypt_request_build(&q, &body3, &len, &e));
        ASSERT_STREQ(body3,
                     "{\"CiphertextBlob\":\"AQID\",\"Recipient\":{\"KeyEncryptionAlgorithm\":\"RSAES_OAEP_"
                     "SHA_256\",\"AttestationDocument\":\"BAU=\"}}");
        ASSERT_OK(aws_kms_random_request_build(&rq, &body2, &len, &e));
        ASSERT_STREQ(
                body2,
                "{\"NumberOfBytes\":32,\"Recipient\":{\"KeyEncryptionAlgorithm\":\"RSAES_OAEP_SHA_256\","
                "\"AttestationDocument\":\"BAU=\"}}");
        ASSERT_OK(aws_kms_headers(AWS_KMS_GENERATE_RANDOM, h));
        ASSERT_STREQ(h[0].value, "application/x-amz-json-1.1");
        ASSERT_STREQ(h[1].value, "TrentService.GenerateRandom");
        ASSERT_EQ(aws_kms_op_from_target("TrentService.Decrypt"), AWS_KMS_DECRYPT);
        ASSERT_EQ(aws_kms_op_from_target("TrentService.Encrypt"), _AWS_KMS_OP_INVALID);
}

static void test_kms_request_build_negative(void) {
        static uint8_t big[AWS_KMS_BLOB_MAX + 1];
        const struct aws_kms_context_pair dup[] = { { "a", "1" }, { "a", "2" } };
        struct aws_kms_decrypt_req q = { ct, sizeof(ct), NULL, NULL, 0, doc, sizeof(doc) };
        struct aws_kms_random_req rq = { 0, doc, sizeof(doc) };
        char *body = NULL;
        size_t len;
        struct aws_err e = {};

        q.ciphertext_len = 0;
        ASSERT_ERR(aws_kms_decrypt_request_build(&q, &body, &len, &e), -EINVAL);
        ASSERT_TRUE(strstr(e.msg, "CiphertextBlob"));
        q.ciphertext = big;
        q.ciphertext_len = sizeof(big);
        ASSERT_ERR(aws_kms_decrypt_request_build(&q, &body, &len, &e), -E2BIG);
        q.ciphertext = ct;
        q.ciphertext_len = sizeof(ct);
        q.attestation_doc = NULL;
        ASSERT_ERR(aws_kms_decrypt_request_build(&q, &body, &len, &e), -EINVAL);
        ASSERT_TRUE(strstr(e.msg, "AttestationDocument"));
        q.attestation_doc = doc;
        q.context = dup;
        q.n_context = 2;
        ASSERT_ERR(aws_kms_decrypt_request_build(&q, &body, &len, &e), -EINVAL);
        ASSERT_ERR(aws_kms_random_request_build(&rq, &body, &len, &e), -EINVAL);
        rq.number_of_bytes = 1025;
        ASSERT_ERR(aws_kms_random_request_build(&rq, &body, &len, &e), -EINVAL);
        ASSERT_TRUE(strstr(e.msg, "NumberOfBytes"));
        ASSERT_EQ(body, NULL);
}

static void test_kms_response(void) {
        const char *ok = "{\"KeyId\":\"arn:aws:kms:us-east-1:123:key/abc\",\"EncryptionAlgorithm\":"
                         "\"SYMMETRIC_DEFAULT\",\"CiphertextForRecipient\":\"MIAGCSqGSIb3DQEHA6CA\","
                         "\"Extra\":[1,{}]}";
        struct aws_kms_decrypt_resp res;
        uint8_t cfr[AWS_KMS_BLOB_MAX];
        struct aws_err e = {};

        ASSERT_OK(aws_kms_decrypt_response_parse(ok, strlen(ok), cfr, sizeof(cfr), &res, &e));
        ASSERT_STREQ(res.key_id, "arn:aws:kms:us-east-1:123:key/abc");
        ASSERT_STREQ(res.encryption_algorithm, "SYMMETRIC_DEFAULT");
        ASSERT_EQ(res.cfr_len, 15);
        ASSERT_MEMEQ(cfr, "\x30\x80\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x03\xa0\x80", 15);
        ASSERT_EQ(aws_kms_random_response_parse("{\"CiphertextForRecipient\":\"AAEC\"}", 33, cfr,
                                                sizeof(cfr), &e),
                  3);
        /* too small a caller buffer */
        ASSERT_ERR(aws_kms_random_response_parse("{\"CiphertextForRecipient\":\"AAEC\"}", 33, cfr, 2, &e),
                   -ENOBUFS);
}

static void test_kms_response_negative(void) {
        static const struct {
                const char *body, *field;
                int r;
        } bad[] = {
                { "{\"KeyId\":\"k\",\"CiphertextForRecipient\":\"AAE\"}", "CiphertextForRecipient",
                  -EBADMSG },
                { "{\"KeyId\":\"k\",\"CiphertextForRecipient\":\"AA E=\"}", "CiphertextForRecipient",
                  -EBADMSG },
                { "{\"KeyId\":\"k\",\"CiphertextForRecipient\":\"AAE=\\n\"}", "CiphertextForRecipient",
                  -EBADMSG },
                { "{\"KeyId\":\"k\",\"CiphertextForRecipient\":\"\"}", "CiphertextForRecipient", -EBADMSG },
                { "{\"KeyId\":\"k\",\"CiphertextForRecipient\":7}", "CiphertextForRecipient", -EBADMSG },
                { "{\"KeyId\":\"k\"}", "CiphertextForRecipient", -EBADMSG },
                { "{\"CiphertextForRecipient\":\"AAE=\"}", "KeyId", -EBADMSG },
                { "{\"KeyId\":5,\"CiphertextForRecipient\":\"AAE=\"}", "KeyId", -EBADMSG },
                { "{\"KeyId\":\"k\",\"CiphertextForRecipient\":\"AAE=\",\"Plaintext\":\"AAE=\"}",
                  "Plaintext", -EBADMSG },
                { "{\"KeyId\":\"k\",\"KeyId\":\"j\",\"CiphertextForRecipient\":\"AAE=\"}", "KeyId",
                  -ENOTUNIQ },
                { "{\"KeyId\":\"k\",\"EncryptionAlgorithm\":\"x y\",\"CiphertextForRecipient\":\"AAE=\"}",
                  "EncryptionAlgorithm", -EBADMSG },
                { "{\"KeyId\":\"k\",\"CiphertextForRecipient\":\"AAE=\"} x", "", -EBADMSG },
                { "<html>Service Unavailable</html>", "", -EBADMSG },
                { "[]", "", -EBADMSG },
                { "", "", -EBADMSG },
        };
        _cleanup_free_ char *big = NULL, *b64 = NULL;
        struct aws_kms_decrypt_resp res;
        static uint8_t blob[AWS_KMS_BLOB_MAX + 3];
        uint8_t cfr[AWS_KMS_BLOB_MAX];
        struct aws_err e = {};

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                e.msg[0] = '\0';
                ASSERT_ERR(aws_kms_decrypt_response_parse(bad[i].body, strlen(bad[i].body), cfr, sizeof(cfr),
                                                          &res, &e),
                           bad[i].r);
                if (!strstr(e.msg, bad[i].field))
                        TAP_FAIL_("case %zu: '%s' does not name %s", i, e.msg, bad[i].field);
        }
        /* 6145 bytes: over the KMS limit even with a larger caller buffer */
        b64 = malloc(base64_encoded_len(sizeof(blob)) + 1);
        ASSERT_TRUE(b64);
        ASSERT_OK(base64_encode(blob, AWS_KMS_BLOB_MAX + 1, b64, base64_encoded_len(sizeof(blob)) + 1));
        ASSERT_TRUE(asprintf(&big, "{\"KeyId\":\"k\",\"CiphertextForRecipient\":\"%s\"}", b64) > 0);
        ASSERT_ERR(aws_kms_decrypt_response_parse(big, strlen(big), blob, sizeof(blob), &res, &e), -E2BIG);
        ASSERT_TRUE(strstr(e.msg, "CiphertextForRecipient"));
}

static void test_kms_error(void) {
        struct aws_kms_error_info info;
        struct aws_err e = {};
        char body[1024], longmsg[600];

        const char *b1 =
                "{\"__type\":\"com.amazonaws.kms#AccessDeniedException\",\"message\":\"User: arn is not "
                "authorized\"}";
        ASSERT_OK(aws_kms_error_parse(b1, strlen(b1), &info, &e));
        ASSERT_EQ(info.type, AWS_KMS_ERR_ACCESS_DENIED);
        ASSERT_STREQ(info.type_name, "AccessDeniedException");
        ASSERT_STREQ(info.message, "User: arn is not authorized");
        ASSERT_FALSE(aws_kms_error_retryable(info.type));

        const char *b2 = "{\"Message\":\"slow \\u0007down\\n\",\"__type\":\"ThrottlingException:http://x\"}";
        ASSERT_OK(aws_kms_error_parse(b2, strlen(b2), &info, &e));
        ASSERT_EQ(info.type, AWS_KMS_ERR_THROTTLING);
        ASSERT_STREQ(info.message, "slow ?down?");
        ASSERT_TRUE(aws_kms_error_retryable(info.type));

        memset(longmsg, 'a', sizeof(longmsg) - 1);
        longmsg[sizeof(longmsg) - 1] = '\0';
        snprintf(body, sizeof(body), "{\"__type\":\"SomethingNewException\",\"message\":\"%s\"}", longmsg);
        ASSERT_OK(aws_kms_error_parse(body, strlen(body), &info, &e));
        ASSERT_EQ(info.type, AWS_KMS_ERR_OTHER);
        ASSERT_STREQ(info.type_name, "SomethingNewException");
        ASSERT_EQ(strlen(info.message), AWS_KMS_MESSAGE_MAX + 3);
        ASSERT_TRUE(strcmp(info.message + AWS_KMS_MESSAGE_MAX, "...") == 0);

        {
                /* a message longer than any string cap of the other readers is still only cut */
                _cleanup_free_ char *huge = malloc(20000), *hb = NULL;
                ASSERT_TRUE(huge);
                memset(huge, 'b', 19999);
                huge[19999] = '\0';
                ASSERT_TRUE(asprintf(&hb, "{\"__type\":\"KMSInternalException\",\"message\":\"%s\"}", huge) >
                            0);
                ASSERT_OK(aws_kms_error_parse(hb, strlen(hb), &info, &e));
                ASSERT_EQ(info.type, AWS_KMS_ERR_INTERNAL);
                ASSERT_EQ(strlen(info.message), AWS_KMS_MESSAGE_MAX + 3);
        }
        ASSERT_ERR(aws_kms_error_parse("{\"message\":\"x\"}", 15, &info, &e), -EBADMSG);
        ASSERT_TRUE(strstr(e.msg, "__type"));
        ASSERT_ERR(aws_kms_error_parse("{\"__type\":1}", 12, &info, &e), -EBADMSG);
        ASSERT_ERR(aws_kms_error_parse("not json", 8, &info, &e), -EBADMSG);

        for (int t = 0; t < AWS_KMS_ERR_OTHER; t++) {
                _cleanup_free_ char *out = NULL;
                size_t len;
                ASSERT_OK(aws_kms_error_build((enum aws_kms_error) t, "m", &out, &len));
                ASSERT_OK(aws_kms_error_parse(out, len, &info, &e));
                ASSERT_EQ(info.type, t);
        }
        ASSERT_TRUE(aws_kms_error_retryable(AWS_KMS_ERR_INTERNAL));
        ASSERT_TRUE(aws_kms_error_retryable(AWS_KMS_ERR_DEPENDENCY_TIMEOUT));
        ASSERT_TRUE(aws_kms_error_retryable(AWS_KMS_ERR_KEY_UNAVAILABLE));
        ASSERT_FALSE(aws_kms_error_retryable(AWS_KMS_ERR_INVALID_CIPHERTEXT));
        ASSERT_FALSE(aws_kms_error_retryable(_AWS_KMS_ERR_INVALID));
        ASSERT_STREQ(aws_kms_error_to_string(AWS_KMS_ERR_INVALID_STATE), "KMSInvalidStateException");
        ASSERT_ERR(aws_kms_error_build(AWS_KMS_ERR_OTHER, "m", (char **) &b1, NULL), -EINVAL);
}

static void test_kms_server(void) {
        const struct aws_kms_context_pair ctx[] = { { "purpose", "tls" } };
        struct aws_kms_decrypt_req q = { ct, sizeof(ct), "alias/acm", ctx, 1, doc, sizeof(doc) };
        struct aws_kms_random_req rq = { 1024, doc, sizeof(doc) };
        _cleanup_(aws_kms_request_done) struct aws_kms_request p = {}, p2 = {};
        _cleanup_free_ char *body = NULL, *body2 = NULL, *resp = NULL;
        struct aws_kms_decrypt_resp res;
        uint8_t cfr[16];
        size_t len, len2, rlen;
        struct aws_err e = {};

        ASSERT_OK(aws_kms_decrypt_request_build(&q, &body, &len, &e));
        ASSERT_OK(aws_kms_request_parse(AWS_KMS_DECRYPT, body, len, &p, &e));
        ASSERT_EQ(p.ciphertext_len, 3);
        ASSERT_MEMEQ(p.ciphertext, ct, 3);
        ASSERT_STREQ(p.key_id, "alias/acm");
        ASSERT_EQ(p.n_context, 1);
        ASSERT_STREQ(p.context_keys[0], "purpose");
        ASSERT_STREQ(p.context_values[0], "tls");
        ASSERT_EQ(p.attestation_doc_len, 2);
        ASSERT_MEMEQ(p.attestation_doc, doc, 2);
        ASSERT_OK(aws_kms_random_request_build(&rq, &body2, &len2, &e));
        ASSERT_OK(aws_kms_request_parse(AWS_KMS_GENERATE_RANDOM, body2, len2, &p2, &e));
        ASSERT_EQ(p2.number_of_bytes, 1024);
        /* the same body is not a GenerateRandom request */
        ASSERT_ERR(aws_kms_request_parse(AWS_KMS_GENERATE_RANDOM, body, len, &p2, &e), -EBADMSG);

        ASSERT_OK(aws_kms_decrypt_response_build("arn:k", "SYMMETRIC_DEFAULT", ct, 3, &resp, &rlen));
        ASSERT_STREQ(resp, "{\"KeyId\":\"arn:k\",\"EncryptionAlgorithm\":\"SYMMETRIC_DEFAULT\","
                           "\"CiphertextForRecipient\":\"AQID\"}");
        ASSERT_OK(aws_kms_decrypt_response_parse(resp, rlen, cfr, sizeof(cfr), &res, &e));
        ASSERT_EQ(res.cfr_len, 3);
}

static void test_kms_server_negative(void) {
        static const struct {
                enum aws_kms_op op;
                const char *body, *field;
        } bad[] = {
                { AWS_KMS_DECRYPT, "{\"CiphertextBlob\":\"AQID\"}", "Recipient" },
                { AWS_KMS_DECRYPT,
                  "{\"Recipient\":{\"KeyEncryptionAlgorithm\":\"RSAES_OAEP_SHA_256\","
                  "\"AttestationDocument\":\"BAU=\"}}",
                  "CiphertextBlob" },
                { AWS_KMS_DECRYPT,
                  "{\"CiphertextBlob\":\"AQID\",\"Recipient\":{\"KeyEncryptionAlgorithm\":\"RSAES_OAEP_SHA_"
                  "1\","
                  "\"AttestationDocument\":\"BAU=\"}}",
                  "KeyEncryptionAlgorithm" },
                { AWS_KMS_DECRYPT,
                  "{\"CiphertextBlob\":\"AQID\",\"Recipient\":{\"KeyEncryptionAlgorithm\":\"RSAES_OAEP_SHA_"
                  "256\"}}",
                  "AttestationDocument" },
                { AWS_KMS_DECRYPT,
                  "{\"CiphertextBlob\":\"AQI\",\"Recipient\":{\"KeyEncryptionAlgorithm\":\"RSAES_OAEP_SHA_"
                  "256\","
                  "\"AttestationDocument\":\"BAU=\"}}",
                  "CiphertextBlob" },
                { AWS_KMS_DECRYPT,
                  "{\"CiphertextBlob\":\"AQID\",\"Plaintext\":\"AQID\",\"Recipient\":{"
                  "\"KeyEncryptionAlgorithm\":"
                  "\"RSAES_OAEP_SHA_256\",\"AttestationDocument\":\"BAU=\"}}",
                  "unknown member" },
                { AWS_KMS_DECRYPT,
                  "{\"CiphertextBlob\":\"AQID\",\"GrantTokens\":[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\","
                  "\"8\","
                  "\"9\",\"10\",\"11\"],\"Recipient\":{\"KeyEncryptionAlgorithm\":\"RSAES_OAEP_SHA_256\","
                  "\"AttestationDocument\":\"BAU=\"}}",
                  "GrantTokens" },
                { AWS_KMS_GENERATE_RANDOM,
                  "{\"NumberOfBytes\":0,\"Recipient\":{\"KeyEncryptionAlgorithm\":\"RSAES_OAEP_SHA_256\","
                  "\"AttestationDocument\":\"BAU=\"}}",
                  "NumberOfBytes" },
                { AWS_KMS_GENERATE_RANDOM,
                  "{\"NumberOfBytes\":1025,\"Recipient\":{\"KeyEncryptionAlgorithm\":\"RSAES_OAEP_SHA_256\","
                  "\"AttestationDocument\":\"BAU=\"}}",
                  "NumberOfBytes" },
                { AWS_KMS_GENERATE_RANDOM,
                  "{\"NumberOfBytes\":\"32\",\"Recipient\":{\"KeyEncryptionAlgorithm\":\"RSAES_OAEP_SHA_"
                  "256\","
                  "\"AttestationDocument\":\"BAU=\"}}",
                  "NumberOfBytes" },
                { AWS_KMS_GENERATE_RANDOM, "{\"NumberOfBytes\":32,\"NumberOfBytes\":32}", "NumberOfBytes" },
                { AWS_KMS_GENERATE_RANDOM, "{\"NumberOfBytes\":32", "" },
        };
        struct aws_kms_request p = {};
        struct aws_err e = {};

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                e.msg[0] = '\0';
                ASSERT_FAIL(aws_kms_request_parse(bad[i].op, bad[i].body, strlen(bad[i].body), &p, &e));
                if (!strstr(e.msg, bad[i].field))
                        TAP_FAIL_("case %zu: '%s' does not name %s", i, e.msg, bad[i].field);
                ASSERT_EQ(p.attestation_doc, NULL);
        }
}

/* Every single-byte change of valid bodies: each parser fails cleanly or succeeds. */
static void test_kms_mutations(void) {
        struct aws_kms_decrypt_req q = { ct, sizeof(ct), "alias/acm", NULL, 0, doc, sizeof(doc) };
        _cleanup_free_ char *req = NULL, *resp = NULL;
        size_t rlen, plen;
        uint8_t cfr[AWS_KMS_BLOB_MAX];
        static const uint8_t vals[] = { 0x00, 0xff, '"', '{', '=' };
        size_t changed = 0;

        ASSERT_OK(aws_kms_decrypt_request_build(&q, &req, &rlen, NULL));
        ASSERT_OK(aws_kms_decrypt_response_build("arn:k", "SYMMETRIC_DEFAULT", ct, 3, &resp, &plen));
        for (size_t i = 0; i < rlen; i++)
                for (size_t v = 0; v < ELEMENTSOF(vals); v++) {
                        struct aws_kms_request p = {};
                        char saved = req[i];
                        req[i] = (char) vals[v];
                        if (aws_kms_request_parse(AWS_KMS_DECRYPT, req, rlen, &p, NULL) < 0)
                                changed++;
                        aws_kms_request_done(&p);
                        req[i] = saved;
                        ASSERT_OK(aws_kms_request_parse(AWS_KMS_DECRYPT, req, i, &p, NULL) < 0 ? 0 : -1);
                }
        for (size_t i = 0; i < plen; i++)
                for (size_t v = 0; v < ELEMENTSOF(vals); v++) {
                        struct aws_kms_decrypt_resp res;
                        struct aws_kms_error_info info;
                        char saved = resp[i];
                        resp[i] = (char) vals[v];
                        if (aws_kms_decrypt_response_parse(resp, plen, cfr, sizeof(cfr), &res, NULL) < 0)
                                changed++;
                        if (aws_kms_error_parse(resp, plen, &info, NULL) >= 0)
                                ASSERT_TRUE(info.type_name[0] != 0);
                        resp[i] = saved;
                }
        ASSERT_TRUE(changed > rlen); /* most mutations must be refused */
}

TAP_MAIN(TEST("/aws/sigv4/uri-encode", test_uri_encode), TEST("/aws/sigv4/normalize", test_normalize),
         TEST("/aws/sigv4/dates", test_dates), TEST("/aws/sigv4/post-vanilla", test_post_vanilla),
         TEST("/aws/sigv4/post-vanilla-file", test_post_vanilla_file),
         TEST("/aws/sigv4/sign-negative", test_sign_negative), TEST("/aws/sigv4/verify", test_verify),
         TEST("/aws/endpoint", test_endpoint), TEST("/common/base64", test_base64),
         TEST("/aws/kms/request-bytes", test_kms_request_bytes),
         TEST("/aws/kms/request-build-negative", test_kms_request_build_negative),
         TEST("/aws/kms/response", test_kms_response),
         TEST("/aws/kms/response-negative", test_kms_response_negative),
         TEST("/aws/kms/error", test_kms_error), TEST("/aws/kms/server", test_kms_server),
         TEST("/aws/kms/server-negative", test_kms_server_negative),
         TEST("/aws/kms/mutations", test_kms_mutations))
