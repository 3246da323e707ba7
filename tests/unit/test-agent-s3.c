/* agent/: the credentials provider (environment first, else IMDS) and its once-per-pass cache, the
 * Acm/S3 sources' chain cleaning, and the imds_endpoint / s3_endpoint / s3_ca_file keys, with negatives. No
 * request leaves loopback: the IMDS endpoint is a closed port on 127.0.0.1. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/config/config.h"
#include "agent/creds.h"
#include "agent/source-s3.h"
#include "tests/lib/data.h"
#include "tests/lib/tap.h"

#define DEAD_IMDS "http://127.0.0.1:9"

static char *env_full(const char *name) {
        if (strcmp(name, "AWS_ACCESS_KEY_ID") == 0)
                return (char *) "AKIAIOSFODNN7EXAMPLE";
        if (strcmp(name, "AWS_SECRET_ACCESS_KEY") == 0)
                return (char *) "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
        if (strcmp(name, "AWS_REGION") == 0)
                return (char *) "eu-west-1";
        return NULL;
}

static char *env_empty(const char *name) {
        return NULL;
}

static char *env_secret_only(const char *name) {
        return strcmp(name, "AWS_SECRET_ACCESS_KEY") == 0
                       ? (char *) "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
                       : NULL;
}

/* A half-set environment is the operator's mistake to report, not a reason to ask IMDS; without any
 * endpoint configured the process-wide ENCLAVE_ACM_IMDS_ENDPOINT (the test runner's dead port) is used. */
static void test_creds_partial_env_and_default(void) {
        struct agent_creds c = {};
        char *error = NULL;
        int r;

        ASSERT_ERR(agent_creds_acquire(
                           &(struct agent_creds_opts){ .getenv_fn = env_secret_only, .region = "eu-west-1" },
                           &c, &error),
                   -ENOKEY);
        ASSERT_TRUE(error && strstr(error, "AWS_ACCESS_KEY_ID is not set"));
        free(error);
        error = NULL;
        ASSERT_OK(setenv("ENCLAVE_ACM_IMDS_ENDPOINT", DEAD_IMDS, 1));
        r = agent_creds_acquire(&(struct agent_creds_opts){ .getenv_fn = env_empty, .imds_timeout_ms = 500 },
                                &c, &error);
        ASSERT_TRUE(r == -EHOSTUNREACH || r == -ETIMEDOUT);
        ASSERT_TRUE(error && strstr(error, "no instance metadata service at " DEAD_IMDS));
        free(error);
        error = NULL;
        ASSERT_OK(setenv("ENCLAVE_ACM_IMDS_ENDPOINT", "https://nope", 1));
        ASSERT_ERR(agent_creds_acquire(&(struct agent_creds_opts){ .getenv_fn = env_empty }, &c, &error),
                   -EINVAL);
        free(error);
        ASSERT_OK(setenv("ENCLAVE_ACM_IMDS_ENDPOINT", DEAD_IMDS, 1));
}

static void test_creds_env_first(void) {
        _cleanup_(agent_creds_done) struct agent_creds c = {};
        _cleanup_free_ char *error = NULL;

        /* the environment's credentials: IMDS (dead here) is not asked */
        ASSERT_OK(agent_creds_acquire(
                &(struct agent_creds_opts){ .getenv_fn = env_full, .imds_endpoint = DEAD_IMDS }, &c,
                &error));
        ASSERT_STREQ(c.access_key_id, "AKIAIOSFODNN7EXAMPLE");
        ASSERT_STREQ(c.region, "eu-west-1");
        ASSERT_FALSE(c.from_imds);
        ASSERT_TRUE(c.role_arn == NULL);
}

static void test_creds_imds_unreachable(void) {
        struct agent_creds c = {};
        char *error = NULL;
        int r;

        /* no environment: IMDS, which is not there: one line saying so, quickly */
        r = agent_creds_acquire(&(struct agent_creds_opts){ .getenv_fn = env_empty,
                                                            .imds_endpoint = DEAD_IMDS,
                                                            .imds_timeout_ms = 500 },
                                &c, &error);
        ASSERT_TRUE(r == -EHOSTUNREACH || r == -ETIMEDOUT);
        ASSERT_TRUE(error && strstr(error, "no instance metadata service at " DEAD_IMDS));
        ASSERT_TRUE(c.access_key_id == NULL && c.secret_access_key == NULL);
        free(error);
        error = NULL;
        /* an Acm source needs the role ARN even with environment credentials: IMDS is asked */
        r = agent_creds_acquire(&(struct agent_creds_opts){ .getenv_fn = env_full,
                                                            .imds_endpoint = DEAD_IMDS,
                                                            .imds_timeout_ms = 500,
                                                            .want_arn = true },
                                &c, &error);
        ASSERT_TRUE(r == -EHOSTUNREACH || r == -ETIMEDOUT);
        ASSERT_TRUE(error && strstr(error, "no instance metadata service"));
        ASSERT_TRUE(strstr(error, "wJalr") == NULL);
        free(error);
}

/* A stand-in for agent_creds_acquire(): IMDS-like credentials expiring at fake_expiration, or
 * fake_error; counts its calls. */
static unsigned fake_calls;
static int64_t fake_expiration;
static int fake_error, fake_arn_error; /* the latter only when the ARN is asked for */

static int fake_acquire(const struct agent_creds_opts *o, struct agent_creds *ret, char **ret_error) {
        struct agent_creds c = { .from_imds = true, .expiration = fake_expiration };

        fake_calls++;
        if (fake_error < 0 || (o->want_arn && fake_arn_error < 0)) {
                *ret_error = strdup("no instance metadata service at " DEAD_IMDS);
                return fake_error < 0 ? fake_error : fake_arn_error;
        }
        c.region = strdup("eu-west-1");
        c.access_key_id = strdup("ASIAFAKECACHE0001");
        c.role_arn = o->want_arn ? strdup("arn:aws:iam::123456789012:role/r") : NULL;
        if (!c.region || !c.access_key_id || (o->want_arn && !c.role_arn) ||
            secret_buf_dup("secret", 6, &c.secret_access_key) < 0) {
                agent_creds_done(&c);
                return -ENOMEM;
        }
        *ret = c;
        return 0;
}

#define NOW 1800000000

/* One acquisition per pass for any number of sources and the KMS round; the role ARN asked once more
 * when an Acm source comes after; a failure kept for the pass; the next pass asks again. */
static void test_creds_cache_pass(void) {
        _cleanup_(agent_creds_cache_done) struct agent_creds_cache cache = { .acquire = fake_acquire };
        const struct agent_creds *c1 = NULL, *c2 = NULL;
        struct agent_creds_opts o = { .getenv_fn = env_empty, .now = NOW };
        _cleanup_free_ char *error = NULL;

        fake_calls = 0;
        fake_error = 0;
        fake_expiration = NOW + 3600;
        for (int i = 0; i < 5; i++) {
                ASSERT_OK(agent_creds_cache_get(&cache, &o, &c1, &error));
                ASSERT_STREQ(c1->access_key_id, "ASIAFAKECACHE0001");
        }
        ASSERT_EQ(fake_calls, 1u);
        ASSERT_EQ(cache.acquisitions, 1u);
        /* an Acm source needs the ARN: asked once more, then served to both kinds */
        o.want_arn = true;
        ASSERT_OK(agent_creds_cache_get(&cache, &o, &c2, &error));
        ASSERT_STREQ(c2->role_arn, "arn:aws:iam::123456789012:role/r");
        ASSERT_OK(agent_creds_cache_get(&cache, &o, &c2, &error));
        o.want_arn = false;
        ASSERT_OK(agent_creds_cache_get(&cache, &o, &c1, &error));
        ASSERT_TRUE(c1 == c2);
        ASSERT_EQ(fake_calls, 2u);
        /* the next pass: read again */
        agent_creds_cache_done(&cache);
        ASSERT_TRUE(cache.acquire == fake_acquire && !cache.valid && cache.creds.access_key_id == NULL);
        ASSERT_OK(agent_creds_cache_get(&cache, &o, &c1, &error));
        ASSERT_EQ(fake_calls, 3u);
        agent_creds_cache_done(&cache);
        /* a failure is kept for the pass: IMDS's timeout paid once, every source told the same line */
        fake_error = -EHOSTUNREACH;
        ASSERT_ERR(agent_creds_cache_get(&cache, &o, &c1, &error), -EHOSTUNREACH);
        ASSERT_TRUE(error && strstr(error, "no instance metadata service"));
        free(error);
        error = NULL;
        ASSERT_ERR(agent_creds_cache_get(&cache, &o, &c1, &error), -EHOSTUNREACH);
        ASSERT_TRUE(error && strstr(error, "no instance metadata service"));
        ASSERT_EQ(fake_calls, 4u);
        agent_creds_cache_done(&cache);
        fake_error = 0;
        ASSERT_OK(agent_creds_cache_get(&cache, &o, &c1, &error));
        ASSERT_EQ(fake_calls, 5u);
}

/* prefer_arn (an Acm source later in the pass): the ARN fetched with the first credentials, so one
 * acquisition serves all; when only the ARN cannot be had (environment credentials, no IMDS), the others
 * still get credentials and the Acm source gets the error, without asking again. */
static void test_creds_cache_prefer_arn(void) {
        _cleanup_(agent_creds_cache_done) struct agent_creds_cache cache = { .acquire = fake_acquire };
        const struct agent_creds *c = NULL;
        struct agent_creds_opts s3 = { .getenv_fn = env_empty, .now = NOW, .prefer_arn = true };
        struct agent_creds_opts acm = { .getenv_fn = env_empty, .now = NOW, .want_arn = true };
        struct agent_creds_opts round = { .getenv_fn = env_empty, .now = NOW };
        _cleanup_free_ char *error = NULL;

        fake_calls = 0;
        fake_error = fake_arn_error = 0;
        fake_expiration = NOW + 3600;
        ASSERT_OK(agent_creds_cache_get(&cache, &s3, &c, &error));
        ASSERT_STREQ(c->role_arn, "arn:aws:iam::123456789012:role/r");
        ASSERT_OK(agent_creds_cache_get(&cache, &acm, &c, &error));
        ASSERT_OK(agent_creds_cache_get(&cache, &round, &c, &error));
        ASSERT_EQ(fake_calls, 1u);
        agent_creds_cache_done(&cache);

        fake_arn_error = -EHOSTUNREACH;
        ASSERT_OK(agent_creds_cache_get(&cache, &s3, &c, &error));
        ASSERT_TRUE(c->role_arn == NULL);
        ASSERT_EQ(fake_calls, 3u); /* with the ARN (refused), then without */
        ASSERT_ERR(agent_creds_cache_get(&cache, &acm, &c, &error), -EHOSTUNREACH);
        ASSERT_TRUE(error && strstr(error, "no instance metadata service"));
        ASSERT_OK(agent_creds_cache_get(&cache, &round, &c, &error));
        ASSERT_OK(agent_creds_cache_get(&cache, &s3, &c, &error));
        ASSERT_EQ(fake_calls, 3u);
        agent_creds_cache_done(&cache);

        /* an Acm source first: its failure does not keep the round from the environment's credentials */
        ASSERT_ERR(agent_creds_cache_get(&cache, &acm, &c, &error), -EHOSTUNREACH);
        ASSERT_OK(agent_creds_cache_get(&cache, &round, &c, &error));
        ASSERT_OK(agent_creds_cache_get(&cache, &s3, &c, &error));
        ASSERT_EQ(fake_calls, 5u);
        fake_arn_error = 0;
}

/* Credentials within the refresh margin of their Expiration are fetched again, even within a pass. */
static void test_creds_cache_expiring(void) {
        _cleanup_(agent_creds_cache_done) struct agent_creds_cache cache = { .acquire = fake_acquire };
        const struct agent_creds *c = NULL;
        struct agent_creds_opts o = { .getenv_fn = env_empty, .now = NOW };
        _cleanup_free_ char *error = NULL;

        fake_calls = 0;
        fake_error = 0;
        fake_expiration = NOW + AGENT_CREDS_REFRESH_MARGIN_SECS - 1;
        ASSERT_OK(agent_creds_cache_get(&cache, &o, &c, &error));
        ASSERT_OK(agent_creds_cache_get(&cache, &o, &c, &error));
        ASSERT_EQ(fake_calls, 2u);
        fake_expiration = NOW + AGENT_CREDS_REFRESH_MARGIN_SECS;
        ASSERT_OK(agent_creds_cache_get(&cache, &o, &c, &error));
        ASSERT_OK(agent_creds_cache_get(&cache, &o, &c, &error));
        ASSERT_EQ(fake_calls, 3u);
        /* later in the same pass the clock has moved into the margin */
        o.now = NOW + 1;
        ASSERT_OK(agent_creds_cache_get(&cache, &o, &c, &error));
        ASSERT_EQ(fake_calls, 4u);
}

/* The real provider behind the cache: the environment's credentials, read once per pass. */
static void test_creds_cache_env(void) {
        _cleanup_(agent_creds_cache_done) struct agent_creds_cache cache = {};
        const struct agent_creds *c1 = NULL, *c2 = NULL;
        _cleanup_free_ char *error = NULL;
        struct agent_creds_opts o = { .getenv_fn = env_full, .imds_endpoint = DEAD_IMDS };

        ASSERT_OK(agent_creds_cache_get(&cache, &o, &c1, &error));
        ASSERT_OK(agent_creds_cache_get(&cache, &o, &c2, &error));
        ASSERT_TRUE(c1 == c2);
        ASSERT_STREQ(c2->access_key_id, "AKIAIOSFODNN7EXAMPLE");
        ASSERT_EQ(cache.acquisitions, 1u);
        ASSERT_ERR(agent_creds_cache_get(NULL, &o, &c1, &error), -EINVAL);

        /* the environment's credentials and an Acm source in the config, IMDS dead: the S3 sources and
         * the round still get the environment's, the Acm source IMDS's error, IMDS asked once */
        agent_creds_cache_done(&cache);
        o.prefer_arn = true;
        o.imds_timeout_ms = 500;
        ASSERT_OK(agent_creds_cache_get(&cache, &o, &c1, &error));
        ASSERT_STREQ(c1->access_key_id, "AKIAIOSFODNN7EXAMPLE");
        ASSERT_TRUE(c1->role_arn == NULL);
        ASSERT_EQ(cache.acquisitions, 3u);
        o.prefer_arn = false;
        o.want_arn = true;
        ASSERT_TRUE(agent_creds_cache_get(&cache, &o, &c1, &error) < 0);
        ASSERT_TRUE(error && strstr(error, "no instance metadata service"));
        ASSERT_EQ(cache.acquisitions, 3u);
}

static void test_chain_clean(void) {
        size_t pem_len = 0;
        _cleanup_free_ char *pem = test_data_load("rsa2048.crt.pem", &pem_len);
        _cleanup_free_ char *two = NULL, *out = NULL, *out2 = NULL;
        size_t len = 0, len2 = 0;
        uint64_t na = 0;

        ASSERT_TRUE(pem != NULL);
        ASSERT_OK(agent_pem_chain_clean(pem, strlen(pem), &out, &len, &na));
        ASSERT_TRUE(na > 1500000000u);
        ASSERT_TRUE(strncmp(out, "-----BEGIN CERTIFICATE-----", 27) == 0);
        ASSERT_EQ(strlen(out), len);
        /* leaf + "\n" + chain (how the object's two fields are joined), text around ignored */
        ASSERT_TRUE(asprintf(&two, "%s\n%s", pem, pem) > 0);
        ASSERT_OK(agent_pem_chain_clean(two, strlen(two), &out2, &len2, &na));
        ASSERT_EQ(len2, 2 * len);
        {
                char *x = NULL;
                size_t xl;
                ASSERT_ERR(agent_pem_chain_clean("no pem here", 11, &x, &xl, &na), -EBADMSG);
                ASSERT_ERR(agent_pem_chain_clean(
                                   "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", 58, &x,
                                   &xl, &na),
                           -EBADMSG);
                ASSERT_TRUE(x == NULL);
        }
}

static int parse(const char *options) {
        _cleanup_(agent_config_freep) struct agent_config *c = NULL;
        _cleanup_free_ char *doc = NULL;

        if (asprintf(&doc,
                     "enclave: {launcher: local}\noptions: {%s}\n"
                     "tokens: [{label: t, source: {S3: {uri: s3://bucket/key}}}]\n",
                     options) < 0)
                return -ENOMEM;
        return agent_config_parse(doc, strlen(doc), NULL, &c, NULL);
}

static void test_config_keys(void) {
        ASSERT_OK(parse("imds_endpoint: 'http://127.0.0.1:8080'"));
        ASSERT_OK(parse("imds_endpoint: 'http://169.254.169.254'"));
        ASSERT_OK(parse("s3_endpoint: 'https://s3.eu-west-1.amazonaws.com'"));
        ASSERT_OK(parse("s3_endpoint: 'http://127.0.0.1:9000'"));
        ASSERT_ERR(parse("imds_endpoint: 'https://169.254.169.254'"), -EINVAL);
        ASSERT_ERR(parse("imds_endpoint: 'http://169.254.169.254/latest'"), -EINVAL);
        ASSERT_ERR(parse("imds_endpoint: ''"), -EINVAL);
        ASSERT_ERR(parse("s3_endpoint: 'http://s3.example.com'"), -EINVAL);
        ASSERT_ERR(parse("s3_endpoint: 'https://s3.example.com/bucket'"), -EINVAL);
        ASSERT_ERR(parse("s3_endpoint: 'ftp://127.0.0.1'"), -EINVAL);
        ASSERT_OK(parse("s3_ca_file: /etc/enclave-acm/s3-ca.pem"));
        ASSERT_ERR(parse("s3_ca_file: s3-ca.pem"), -EINVAL);
        ASSERT_ERR(parse("s3_ca_file: ''"), -EINVAL);
        ASSERT_ERR(parse("s3_ca_file: [a]"), -EINVAL);
}

/* agent_config_load() of text in a temporary file: the result, and the diagnostics in *d. */
static int load(const char *text, struct agent_config_diag *d) {
        _cleanup_(agent_config_freep) struct agent_config *c = NULL;
        char path[] = "/tmp/test-agent-s3.XXXXXX";
        int fd, r;

        fd = mkstemp(path);
        if (fd < 0)
                return -errno;
        r = write(fd, text, strlen(text)) == (ssize_t) strlen(text) ? 0 : -EIO;
        close(fd);
        if (r >= 0)
                r = agent_config_load(path, &c, d);
        (void) unlink(path);
        return r;
}

/* nitro-cli without expected PCRs: an Acm or S3 token loads (an ACM acm.yaml must) with one warning
 * naming it, where a File encrypted_key is an error; with expected_pcrs, no warning. */
static void test_config_pcr_policy(void) {
#define NITRO "enclave: {cpu_count: 2, memory_mib: 256, image_path: /nonexistent/x.eif"
#define PCR0   \
        "{0: " \
        "3a4b5c6d7e8f9a0b3a4b5c6d7e8f9a0b3a4b5c6d7e8f9a0b3a4b5c6d7e8f9a0b3a4b5c6d7e8f9a0b3a4b5c6d7e8f9a0b}"
        static const struct {
                const char *yaml;
                int r;
                size_t warnings;
                const char *what;
        } cases[] = {
                { NITRO "}\ntokens: [{label: a, source: {Acm: {certificate_arn: "
                        "'arn:aws:acm:us-east-1:123456789012:certificate/0a1b'}}}]\n",
                  0, 1, "token 'a' (Acm source) will not be provisioned: nothing says which enclave image" },
                { NITRO "}\ntokens: [{label: s, source: {S3: {uri: s3://bucket/key}}}]\n", 0, 1,
                  "token 's' (S3 source) will not be provisioned" },
                { NITRO "}\ntokens: [{label: f, source: {File: {encrypted_key: /k, certificate: /c}}}, "
                        "{label: s, source: {S3: {uri: s3://bucket/key}}}]\n",
                  -EINVAL, 0, "token 'f' has an encrypted_key" },
                { NITRO ", expected_pcrs: " PCR0
                        "}\ntokens: [{label: s, source: {S3: {uri: s3://bucket/key}}}]\n",
                  0, 0, NULL },
                { "enclave: {launcher: local}\ntokens: [{label: s, source: {S3: {uri: s3://bucket/key}}}]\n",
                  0, 0, NULL },
        };
#undef NITRO
#undef PCR0

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(agent_config_diag_done) struct agent_config_diag d = {};
                int r = load(cases[i].yaml, &d);

                printf("# case %zu\n", i);
                ASSERT_EQ(r, cases[i].r);
                ASSERT_EQ(d.n_warnings, cases[i].warnings);
                if (cases[i].what) {
                        ASSERT_TRUE(d.n_entries >= 1);
                        ASSERT_STREQ(d.entries[d.n_entries - 1].key, "enclave.expected_pcrs");
                        ASSERT_TRUE(strstr(d.entries[d.n_entries - 1].message, cases[i].what) != NULL);
                }
        }
}

TAP_MAIN(TEST("/agent/creds/env-first", test_creds_env_first),
         TEST("/agent/creds/partial-env-and-default", test_creds_partial_env_and_default),
         TEST("/agent/creds/imds-unreachable", test_creds_imds_unreachable),
         TEST("/agent/creds/cache/pass", test_creds_cache_pass),
         TEST("/agent/creds/cache/expiring", test_creds_cache_expiring),
         TEST("/agent/creds/cache/prefer-arn", test_creds_cache_prefer_arn),
         TEST("/agent/creds/cache/env", test_creds_cache_env),
         TEST("/agent/s3/chain-clean", test_chain_clean),
         TEST("/agent/config/aws-endpoints", test_config_keys),
         TEST("/agent/config/pcr-policy-acm-s3", test_config_pcr_policy))
