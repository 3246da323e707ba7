/* Unit tests for the agent's KMS key path: the image's measurements, credentials from the environment,
 * ciphertext files, the local launcher's command line, which tokens a pass sends, and the attestation
 * check before credentials leave (documents built by attest/'s builder and test CA). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/attestation.h"
#include "agent/config/config.h"
#include "agent/creds.h"
#include "agent/kms-round.h"
#include "agent/launcher/launcher.h"
#include "agent/reconcile.h"
#include "agent/token.h"
#include "attest/attest-build.h"
#include <openssl/pem.h>
#include <openssl/x509.h>
#include "common/cleanup.h"
#include "common/p11-errmap.h"
#include "parent/provision.h"
#include "tests/lib/tap.h"

#define HEX48_A \
        "3a4b5c6d7e8f9a0b1c2d3e4f5061728394a5b6c7d8e9fa0b1c2d3e4f5061728394a5b6c7d8e9fa0b1c2d3e4f50617283"
#define HEX48_B \
        "9f00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff00112233445566778899aabbccddee"
#define HEX48_C \
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f"

/* ---- image-measurements.json ---- */

#define MEAS(body) "{\n  \"Measurements\": {\n" body "\n  }\n}\n"
#define ALGO       "    \"HashAlgorithm\": \"Sha384 { ... }\",\n"
#define PCRS012 \
        "    \"PCR0\": \"" HEX48_A "\",\n    \"PCR1\": \"" HEX48_B "\",\n    \"PCR2\": \"" HEX48_C "\""

static int meas(const char *text, struct agent_pcr_set *set, char **error) {
        return agent_image_measurements_parse(text, strlen(text), set, error);
}

static void test_measurements_ok(void) {
        struct agent_pcr_set set;
        uint8_t a[48];

        ASSERT_OK(agent_pcr_from_hex(HEX48_A, 96, a));
        ASSERT_EQ(a[0], 0x3a);
        ASSERT_EQ(a[47], 0x83);
        /* build-enclave's output */
        ASSERT_OK(meas(MEAS(ALGO PCRS012), &set, NULL));
        ASSERT_EQ(set.mask, 0x7u);
        ASSERT_MEMEQ(set.value[0], a, 48);
        ASSERT_EQ(set.value[1][0], 0x9f);
        ASSERT_EQ(set.value[2][47], 0x2f);
        /* a signed image: PCR8, any key order, upper-case hex */
        ASSERT_OK(meas(
                "{\"Measurements\":{\"PCR8\":\"" HEX48_B "\",\"PCR2\":\"" HEX48_C "\",\"PCR1\":\"" HEX48_B
                "\",\"PCR0\":\"3A4B5C6D7E8F9A0B1C2D3E4F5061728394A5B6C7D8E9FA0B1C2D3E4F5061728394A5B6C7D8"
                "E9FA0B1C2D3E4F50617283\",\"HashAlgorithm\":\"Sha384 { ... }\"}}",
                &set, NULL));
        ASSERT_EQ(set.mask, 0x107u);
        ASSERT_MEMEQ(set.value[0], a, 48);
        /* describe-eif's output: other top-level keys are skipped */
        ASSERT_OK(meas("{\"EifVersion\": 4, \"Measurements\": {" ALGO PCRS012 "}, \"IsSigned\": false, "
                       "\"CheckCRC\": true, \"Metadata\": {\"BuildTime\": \"x\", \"DockerInfo\": [1, {}]}}",
                       &set, NULL));
        ASSERT_EQ(set.mask, 0x7u);
}

struct meas_case {
        const char *text;
        const char *message; /* substring of the error */
};

static const struct meas_case meas_bad[] = {
        { "", "line 1 column 1" },
        { "[]", "expected a JSON object" },
        { "{}", "no \"Measurements\" object" },
        { "{\"Measurements\": []}", "\"Measurements\" must be an object" },
        { MEAS(PCRS012), "has no HashAlgorithm" },
        { MEAS(ALGO "    \"PCR1\": \"" HEX48_B "\",\n    \"PCR2\": \"" HEX48_C "\""), "has no PCR0" },
        { MEAS(ALGO "    \"PCR0\": \"" HEX48_A "\",\n    \"PCR2\": \"" HEX48_C "\""), "has no PCR1" },
        { MEAS(ALGO "    \"PCR0\": \"" HEX48_A "\",\n    \"PCR1\": \"" HEX48_C "\""), "has no PCR2" },
        { MEAS("    \"HashAlgorithm\": \"Sha256 { ... }\",\n" PCRS012),
          "line 3 column 22: HashAlgorithm is not Sha384" },
        { MEAS("    \"HashAlgorithm\": \"Sha3840\",\n" PCRS012), "HashAlgorithm is not Sha384" },
        { MEAS("    \"HashAlgorithm\": 384,\n" PCRS012), "HashAlgorithm must be a string" },
        /* 95 digits, 97 digits, a non-hex digit, a number */
        { MEAS(ALGO "    \"PCR0\": \"" HEX48_A "\",\n    \"PCR1\": \"" HEX48_B "\",\n    \"PCR2\": \"0\""),
          "line 6 column 13: a PCR value must be 96 hex digits" },
        { MEAS(ALGO PCRS012 ",\n    \"PCR8\": \"" HEX48_A "0\""),
          "line 7 column 13: a PCR value must be 96 hex digits" },
        { MEAS(ALGO PCRS012 ",\n    \"PCR8\": \"g" HEX48_A "\""), "a PCR value must be 96 hex digits" },
        { MEAS(ALGO PCRS012 ",\n    \"PCR8\": 12"), "a PCR value must be a string" },
        { MEAS(ALGO PCRS012 ",\n    \"PCR32\": \"" HEX48_A "\""), "unknown key in \"Measurements\"" },
        { MEAS(ALGO PCRS012 ",\n    \"PCR08\": \"" HEX48_A "\""), "unknown key in \"Measurements\"" },
        { MEAS(ALGO PCRS012 ",\n    \"Pcr3\": \"" HEX48_A "\""), "unknown key in \"Measurements\"" },
        { MEAS(ALGO PCRS012 ",\n    \"PCR0\": \"" HEX48_A "\""), "duplicate" },
        { MEAS(ALGO PCRS012) "{}", "trailing bytes" },
        { MEAS(ALGO PCRS012) "x", "trailing bytes" },
        { "{\"Measurements\": {" ALGO PCRS012, "unexpected end of input" },
        { "{\"Measurements\": {" ALGO PCRS012 "}, \"Measurements\": {}}", "duplicate" },
};

static void test_measurements_bad(void) {
        size_t failed = 0;

        for (size_t i = 0; i < ELEMENTSOF(meas_bad); i++) {
                struct agent_pcr_set set = { .mask = 0xdead };
                _cleanup_free_ char *error = NULL;
                int r = meas(meas_bad[i].text, &set, &error);

                if (r >= 0 || !error || !strstr(error, meas_bad[i].message) || set.mask != 0xdead) {
                        printf("# case %zu: r=%d error '%s', expected '...%s...'\n", i, r, error ?: "(null)",
                               meas_bad[i].message);
                        failed++;
                }
        }
        ASSERT_EQ(failed, 0);
}

static void test_measurements_bounds(void) {
        _cleanup_free_ char *big = NULL, *error = NULL;
        struct agent_pcr_set set;
        size_t n = AGENT_IMAGE_MEASUREMENTS_MAX + 1;
        const char *good = MEAS(ALGO PCRS012);

        big = malloc(n);
        ASSERT_TRUE(big);
        memset(big, ' ', n);
        ASSERT_ERR(agent_image_measurements_parse(big, n, &set, &error), -E2BIG);
        /* every truncation of a valid file fails cleanly */
        for (size_t i = 0; i < strlen(good) - 2; i++) {
                _cleanup_free_ char *e = NULL;
                ASSERT_FAIL(agent_image_measurements_parse(good, i, &set, &e));
        }
        ASSERT_FAIL(agent_pcr_from_hex(HEX48_A, 95, set.value[0]));
        {
                char hex[] = HEX48_A;

                hex[40] = 'g';
                ASSERT_FAIL(agent_pcr_from_hex(hex, 96, set.value[0]));
        }
}

/* ---- region, credentials ---- */

static void test_region(void) {
        ASSERT_TRUE(agent_region_valid("us-east-1"));
        ASSERT_TRUE(agent_region_valid("us-gov-west-1"));
        ASSERT_TRUE(agent_region_valid("cn-northwest-1"));
        ASSERT_FALSE(agent_region_valid(""));
        ASSERT_FALSE(agent_region_valid(NULL));
        ASSERT_FALSE(agent_region_valid("US-EAST-1"));
        ASSERT_FALSE(agent_region_valid("us-east-1-"));
        ASSERT_FALSE(agent_region_valid("1us-east"));
        ASSERT_FALSE(agent_region_valid("us_east_1"));
        ASSERT_FALSE(agent_region_valid("us-east-1.evil.example"));
        ASSERT_FALSE(agent_region_valid("useast1"));    /* no part */
        ASSERT_FALSE(agent_region_valid("us--east-1")); /* an empty part */
        ASSERT_FALSE(agent_region_valid("a-very-long-region-name-that-is-too-long"));
}

/* A fake environment for agent_creds_load(). */
static const char *const *fake_env;

static char *fake_getenv(const char *name) {
        size_t n = strlen(name);

        for (size_t i = 0; fake_env && fake_env[i]; i++)
                if (strncmp(fake_env[i], name, n) == 0 && fake_env[i][n] == '=')
                        return (char *) fake_env[i] + n + 1;
        return NULL;
}

#define SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define TOKEN  "IQoJb3JpZ2luX2VjEXAMPLETOKEN/+="

static int creds(const char *const *env, const char *cfg_region, struct agent_creds *c, char **error) {
        fake_env = env;
        return agent_creds_load(fake_getenv, cfg_region, c, error);
}

static void test_creds_ok(void) {
        static const char *const full[] = { "AWS_ACCESS_KEY_ID=ASIAIOSFODNN7EXAMPLE",
                                            "AWS_SECRET_ACCESS_KEY=" SECRET,
                                            "AWS_SESSION_TOKEN=" TOKEN,
                                            "AWS_REGION=eu-west-1",
                                            "AWS_DEFAULT_REGION=us-west-2",
                                            NULL };
        static const char *const plain[] = { "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE",
                                             "AWS_SECRET_ACCESS_KEY=" SECRET, "AWS_DEFAULT_REGION=us-west-2",
                                             NULL };
        _cleanup_(agent_creds_done) struct agent_creds c = {};

        ASSERT_OK(creds(full, NULL, &c, NULL));
        ASSERT_STREQ(c.region, "eu-west-1");
        ASSERT_STREQ(c.access_key_id, "ASIAIOSFODNN7EXAMPLE");
        ASSERT_EQ(c.secret_access_key->len, strlen(SECRET));
        ASSERT_MEMEQ(c.secret_access_key->data, SECRET, strlen(SECRET));
        ASSERT_TRUE(c.session_token);
        ASSERT_MEMEQ(c.session_token->data, TOKEN, strlen(TOKEN));
        agent_creds_done(&c);
        ASSERT_TRUE(c.secret_access_key == NULL);
        /* options.region wins over the environment */
        ASSERT_OK(creds(full, "ap-south-1", &c, NULL));
        ASSERT_STREQ(c.region, "ap-south-1");
        agent_creds_done(&c);
        /* AWS_DEFAULT_REGION when AWS_REGION is absent; no session token: long-term credentials */
        ASSERT_OK(creds(plain, NULL, &c, NULL));
        ASSERT_STREQ(c.region, "us-west-2");
        ASSERT_TRUE(c.session_token == NULL);
}

static void test_creds_missing(void) {
        static const struct {
                const char *env[5];
                int r;
                const char *message;
        } cases[] = {
                { { NULL }, -ENOKEY, "no AWS region" },
                { { "AWS_REGION=us-east-1", NULL }, -ENOKEY, "AWS_ACCESS_KEY_ID is not set" },
                { { "AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=", NULL },
                  -ENOKEY,
                  "AWS_ACCESS_KEY_ID is not set" },
                { { "AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE", NULL },
                  -ENOKEY,
                  "AWS_SECRET_ACCESS_KEY is not set" },
                { { "AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=akia-lower", "AWS_SECRET_ACCESS_KEY=" SECRET,
                    NULL },
                  -EINVAL,
                  "AWS_ACCESS_KEY_ID is not an access key id" },
                { { "AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=AKIA", "AWS_SECRET_ACCESS_KEY=" SECRET,
                    NULL },
                  -EINVAL,
                  "AWS_ACCESS_KEY_ID is not an access key id" },
                { { "AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE",
                    "AWS_SECRET_ACCESS_KEY=wJalrXUtn FEMI", NULL },
                  -EINVAL,
                  "AWS_SECRET_ACCESS_KEY is not a valid value" },
                { { "AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE",
                    "AWS_SECRET_ACCESS_KEY=" SECRET, "AWS_SESSION_TOKEN=a\tb", NULL },
                  -EINVAL,
                  "AWS_SESSION_TOKEN is not a valid value" },
                { { "AWS_REGION=US-EAST-1", NULL }, -EINVAL, "AWS_REGION 'US-EAST-1' is not an AWS region" },
        };
        size_t failed = 0;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(agent_creds_done) struct agent_creds c = {};
                _cleanup_free_ char *error = NULL;
                int r = creds(cases[i].env, NULL, &c, &error);

                /* never the secret in a message */
                if (r != cases[i].r || !error || !strstr(error, cases[i].message) ||
                    strstr(error, "wJalr") || c.secret_access_key) {
                        printf("# case %zu: r=%d error '%s'\n", i, r, error ?: "(null)");
                        failed++;
                }
        }
        ASSERT_EQ(failed, 0);
}

/* ---- ciphertext files ---- */

static void test_ciphertext_decode(void) {
        static const uint8_t raw[] = { 0x01, 0x02, 0x02, 0x00, 0x78, 0xff, 0x10 };
        static const struct {
                const char *text;
                int r;
                const char *want;
                size_t want_len;
        } cases[] = {
                { "AQICAHg=", 1, "\x01\x02\x02\x00\x78", 5 },
                { "AQICAHg=\n", 1, "\x01\x02\x02\x00\x78", 5 },
                { "AQIC\nAHg=\r\n", 1, "\x01\x02\x02\x00\x78", 5 },
                { "AQICAA==", 1, "\x01\x02\x02\x00", 4 },
                { "AQIC", 1, "\x01\x02\x02", 3 },
                { "AQICAHg", -EBADMSG, NULL },    /* length */
                { "AQICAH==", -EBADMSG, NULL },   /* non-canonical: bits after the last byte */
                { "AQICA===", -EBADMSG, NULL },   /* three pads */
                { "AQ==AHg=", -EBADMSG, NULL },   /* padding in the middle */
                { "AQICAHg=\r", -EBADMSG, NULL }, /* a lone CR */
                { "\n", -EBADMSG, NULL },
                { "AQIC AHg=", 0, NULL }, /* a blank: not base64 text, so raw */
        };
        size_t failed = 0;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ uint8_t *out = NULL;
                size_t len = 0;
                int r = provision_ciphertext_decode((const uint8_t *) cases[i].text, strlen(cases[i].text),
                                                    &out, &len);

                if (r != cases[i].r ||
                    (cases[i].want && (len != cases[i].want_len || memcmp(out, cases[i].want, len) != 0))) {
                        printf("# case %zu '%s': r=%d len=%zu\n", i, cases[i].text, r, len);
                        failed++;
                }
        }
        ASSERT_EQ(failed, 0);
        {
                _cleanup_free_ uint8_t *out = NULL;
                size_t len = 0;
                ASSERT_EQ(provision_ciphertext_decode(raw, sizeof(raw), &out, &len), 0);
                ASSERT_TRUE(out == NULL);
        }
}

/* ---- the local launcher's command line ---- */

static bool argv_has(char **argv, const char *a, const char *b) {
        for (size_t i = 0; argv[i]; i++)
                if (strcmp(argv[i], a) == 0 && (!b || (argv[i + 1] && strcmp(argv[i + 1], b) == 0)))
                        return true;
        return false;
}

static void test_local_argv(void) {
        struct launcher l = { .kind = AGENT_LAUNCHER_LOCAL,
                              .token_binary = (char *) "/usr/bin/enclave-token",
                              .runtime_dir = (char *) "/run/x" };
        _cleanup_(launcher_argv_freep) char **plain = NULL, **sim = NULL;

        ASSERT_OK(launcher_local_argv(&l, false, &plain));
        ASSERT_STREQ(plain[0], "/usr/bin/enclave-token");
        ASSERT_TRUE(argv_has(plain, "--dev", NULL));
        ASSERT_TRUE(argv_has(plain, "--control", "unix:path=/run/x/control.sock"));
        ASSERT_TRUE(argv_has(plain, "--data", "unix:path=/run/x/data.sock"));
        ASSERT_FALSE(argv_has(plain, "--nsm-simulator", NULL));
        ASSERT_FALSE(argv_has(plain, "--kms-proxy", NULL));
        ASSERT_FALSE(argv_has(plain, "--log-level", NULL));

        l.nsm_simulator = true;
        l.kms_proxy = (char *) "unix:path=/tmp/kms.sock";
        l.kms_ca_file = (char *) "/tmp/ca.pem";
        ASSERT_OK(agent_pcr_from_hex(HEX48_A, 96, l.sim_pcrs.value[0]));
        ASSERT_OK(agent_pcr_from_hex(HEX48_B, 96, l.sim_pcrs.value[8]));
        l.sim_pcrs.mask = 1u | 1u << 8;
        ASSERT_OK(launcher_local_argv(&l, true, &sim));
        ASSERT_TRUE(argv_has(sim, "--nsm-simulator", NULL));
        ASSERT_TRUE(argv_has(sim, "--nsm-sim-root", "/run/x/nsm-sim-root.pem"));
        ASSERT_TRUE(argv_has(sim, "--nsm-sim-pcr", "0=" HEX48_A));
        ASSERT_TRUE(argv_has(sim, "--nsm-sim-pcr", "8=" HEX48_B));
        ASSERT_FALSE(argv_has(sim, "--nsm-sim-pcr", "1=" HEX48_B));
        ASSERT_TRUE(argv_has(sim, "--kms-proxy", "unix:path=/tmp/kms.sock"));
        ASSERT_TRUE(argv_has(sim, "--kms-ca", "/tmp/ca.pem"));
        ASSERT_TRUE(argv_has(sim, "--log-level", "debug"));
}

/* ---- which tokens a pass sends ---- */

static void test_token_due(void) {
        struct agent_token t = { .state = AGENT_TOKEN_READY,
                                 .provisioned_in = 3,
                                 .next_sync_usec = 1000,
                                 .next_refresh_usec = 500 };
        uint8_t d1[32] = { 1 }, d2[32] = { 2 };

        /* a restarted enclave (another launch): everything is sent again */
        ASSERT_EQ(agent_token_due(&t, 4, 0), AGENT_TOKEN_DUE_SYNC);
        ASSERT_EQ(agent_token_due(&t, 3, 100), AGENT_TOKEN_DUE_NOTHING);
        ASSERT_EQ(agent_token_due(&t, 3, 500), AGENT_TOKEN_DUE_REFRESH);
        ASSERT_EQ(agent_token_due(&t, 3, 1000), AGENT_TOKEN_DUE_SYNC); /* a sync covers the refresh */
        t.next_refresh_usec = 0;                                       /* not provisioned by us yet */
        ASSERT_EQ(agent_token_due(&t, 3, 999), AGENT_TOKEN_DUE_NOTHING);
        t.state = AGENT_TOKEN_FAILED;
        ASSERT_EQ(agent_token_due(&t, 3, 100), AGENT_TOKEN_DUE_SYNC);
        t.retry_at_usec = 200;
        ASSERT_EQ(agent_token_due(&t, 3, 100), AGENT_TOKEN_DUE_NOTHING);
        t.state = AGENT_TOKEN_UNSUPPORTED;
        ASSERT_EQ(agent_token_due(&t, 4, 300), AGENT_TOKEN_DUE_NOTHING);

        /* after reading the source: send when fresh, when the key id or the digest differ */
        t.sent_key_id = 1;
        memcpy(t.sent_digest, d1, 32);
        ASSERT_FALSE(agent_token_needs_send(&t, false, 1, d1));
        ASSERT_TRUE(agent_token_needs_send(&t, true, 1, d1));
        ASSERT_TRUE(agent_token_needs_send(&t, false, 2, d1));
        ASSERT_TRUE(agent_token_needs_send(&t, false, 1, d2));
}

static void test_kms_errors(void) {
        static const enum rpc_status statuses[] = { RPC_STATUS_KMS_DENIED,   RPC_STATUS_KMS_CIPHERTEXT,
                                                    RPC_STATUS_KMS_ERROR,    RPC_STATUS_NO_ATTESTATION,
                                                    RPC_STATUS_NO_KMS_ROUND, RPC_STATUS_KEY_INVALID };
        int unavailable = errmap_errno_from_status(RPC_STATUS_KMS_UNAVAILABLE);

        /* every status of the KMS path has words, and only KMS_UNAVAILABLE backs off */
        ASSERT_TRUE(agent_kms_status_text(unavailable));
        ASSERT_EQ(agent_kms_retry_kind(unavailable, false), AGENT_KMS_RETRY_BACKOFF);
        for (size_t i = 0; i < ELEMENTSOF(statuses); i++) {
                int r = errmap_errno_from_status(statuses[i]);

                ASSERT_TRUE(agent_kms_status_text(r));
                ASSERT_EQ(agent_kms_retry_kind(r, false), AGENT_KMS_RETRY_NEXT_SYNC);
                /* a broken connection is transient whatever the errno */
                ASSERT_EQ(agent_kms_retry_kind(r, true), AGENT_KMS_RETRY_BACKOFF);
        }
        ASSERT_TRUE(strstr(agent_kms_status_text(errmap_errno_from_status(RPC_STATUS_KMS_DENIED)),
                           "AccessDenied"));
        ASSERT_TRUE(strstr(agent_kms_status_text(errmap_errno_from_status(RPC_STATUS_KEY_INVALID)),
                           "certificate"));
        ASSERT_TRUE(agent_kms_status_text(-ENOENT) == NULL);
        ASSERT_EQ(agent_kms_retry_kind(-ENOKEY, false), AGENT_KMS_RETRY_BACKOFF); /* missing credentials */
        ASSERT_EQ(agent_kms_retry_kind(-ECONNRESET, false), AGENT_KMS_RETRY_BACKOFF);
}

/* A reload rebuilds a token whose ciphertext file or TTL changed. */
static void test_token_equal_kms(void) {
        static const char *const docs[] = {
                "enclave: {launcher: local, nsm_simulator: true}\n"
                "tokens: [{label: t, source: {File: {encrypted_key: /a.kms, certificate: /c.pem}}}]\n",
                "enclave: {launcher: local, nsm_simulator: true}\n"
                "tokens: [{label: t, source: {File: {encrypted_key: /b.kms, certificate: /c.pem}}}]\n",
                "enclave: {launcher: local, nsm_simulator: true}\n"
                "tokens: [{label: t, source: {File: {encrypted_key: /a.kms, certificate: /c.pem}}, "
                "ttl_secs: 90000}]\n",
                "enclave: {launcher: local, nsm_simulator: true}\n"
                "tokens: [{label: t, source: {File: {key: /a.kms, certificate: /c.pem}}}]\n",
        };
        struct agent_config *c[ELEMENTSOF(docs)] = {};
        size_t failed = 0;

        for (size_t i = 0; i < ELEMENTSOF(docs); i++)
                if (agent_config_parse(docs[i], strlen(docs[i]), "t.yaml", &c[i], NULL) < 0)
                        failed++;
        for (size_t i = 0; failed == 0 && i < ELEMENTSOF(docs); i++)
                for (size_t j = 0; j < ELEMENTSOF(docs); j++)
                        if (agent_config_token_equal(&c[i]->tokens[0], &c[j]->tokens[0]) != (i == j)) {
                                printf("# %zu vs %zu\n", i, j);
                                failed++;
                        }
        for (size_t i = 0; i < ELEMENTSOF(docs); i++)
                agent_config_free(c[i]);
        ASSERT_EQ(failed, 0);
}

/* ---- the attestation check (documents from attest/'s builder) ---- */

#define T0 ((time_t) 1765000000) /* 2025-12-06 */

struct doc_fixture {
        struct attest_test_ca *ca;
        uint8_t pcr_bytes[16][48];
        struct attest_pcr_value pcrs[16];
        struct attest_blob bundle[2];
        struct attest_build b;
        uint8_t nonce[32];
        struct agent_pcr_set expect;
};

static void doc_fixture_done(struct doc_fixture *f) {
        f->ca = attest_test_ca_free(f->ca);
}

static int doc_fixture_init(struct doc_fixture *f) {
        int r;

        *f = (struct doc_fixture){};
        r = attest_test_ca_new(T0 - 3600, T0 + 3600, &f->ca);
        if (r < 0)
                return r;
        for (unsigned i = 0; i < 16; i++) {
                memset(f->pcr_bytes[i], (int) (0x10 + i), sizeof(f->pcr_bytes[i]));
                f->pcrs[i] = (struct attest_pcr_value){ i, f->pcr_bytes[i], 48 };
        }
        for (size_t i = 0; i < sizeof(f->nonce); i++)
                f->nonce[i] = (uint8_t) (0xa0 + i);
        f->bundle[0] = (struct attest_blob){ f->ca->root_der, f->ca->root_len };
        f->bundle[1] = (struct attest_blob){ f->ca->inter_der, f->ca->inter_len };
        f->b = (struct attest_build){
                .module_id = "i-00000000000000000-enc0000000000000000",
                .timestamp_ms = (uint64_t) T0 * 1000,
                .pcrs = f->pcrs,
                .n_pcrs = 16,
                .certificate = { f->ca->leaf_der, f->ca->leaf_len },
                .cabundle = f->bundle,
                .n_cabundle = 2,
                .user_data = { ATTEST_OPT_NULL },
                .nonce = { ATTEST_OPT_BYTES, f->nonce, sizeof(f->nonce) },
        };
        /* expect PCR0, 1, 2 and 8 as the document has them */
        for (unsigned i = 0; i <= 8; i++)
                if (i <= 2 || i == 8) {
                        memcpy(f->expect.value[i], f->pcr_bytes[i], 48);
                        f->expect.mask |= 1u << i;
                }
        return 0;
}

static int check_doc(struct doc_fixture *f, const struct agent_attest_policy *p, char **error) {
        _cleanup_free_ uint8_t *doc = NULL;
        size_t n = 0;
        int r;

        r = attest_doc_sign(&f->b, f->ca->leaf_key, &doc, &n);
        if (r < 0)
                return r == -EINVAL ? -EUCLEAN : r; /* a builder failure is not a check failure */
        return agent_attest_check(doc, n, f->nonce, sizeof(f->nonce), p, error);
}

static struct agent_attest_policy policy(const struct doc_fixture *f) {
        return (struct agent_attest_policy){ .pcrs = &f->expect,
                                             .origin = AGENT_PCRS_YAML,
                                             .root_der = f->ca->root_der,
                                             .root_len = f->ca->root_len,
                                             .time_ms = (uint64_t) T0 * 1000 };
}

static void test_attest_ok(void) {
        _cleanup_(doc_fixture_done) struct doc_fixture f = {};
        _cleanup_free_ char *error = NULL;
        struct agent_attest_policy p;

        ASSERT_OK(doc_fixture_init(&f));
        p = policy(&f);
        ASSERT_OK(check_doc(&f, &p, &error));
        ASSERT_TRUE(error == NULL);
        /* the simulator without expectations: chain and nonce only */
        p.pcrs = NULL;
        ASSERT_OK(check_doc(&f, &p, &error));
}

static void test_attest_nonce(void) {
        _cleanup_(doc_fixture_done) struct doc_fixture f = {};
        struct agent_attest_policy p;
        uint8_t other[32];

        ASSERT_OK(doc_fixture_init(&f));
        p = policy(&f);
        memcpy(other, f.nonce, sizeof(other));
        other[31] ^= 1;
        {
                /* a document made for another nonce (a replay) */
                _cleanup_free_ char *error = NULL;
                f.b.nonce = (struct attest_opt){ ATTEST_OPT_BYTES, other, sizeof(other) };
                ASSERT_ERR(check_doc(&f, &p, &error), -EKEYREJECTED);
                ASSERT_TRUE(error && strstr(error, "nonce is not the one the agent sent"));
                ASSERT_TRUE(strncmp(error, "attestation: ", 13) == 0);
                ASSERT_TRUE(strstr(error, "; not sending credentials"));
        }
        {
                _cleanup_free_ char *error = NULL;
                f.b.nonce = (struct attest_opt){ ATTEST_OPT_BYTES, other, 31 }; /* a prefix */
                ASSERT_ERR(check_doc(&f, &p, &error), -EKEYREJECTED);
        }
        {
                _cleanup_free_ char *error = NULL;
                f.b.nonce = (struct attest_opt){ ATTEST_OPT_NULL };
                ASSERT_ERR(check_doc(&f, &p, &error), -EKEYREJECTED);
                ASSERT_TRUE(error && strstr(error, "carries no nonce"));
        }
        {
                _cleanup_free_ char *error = NULL;
                f.b.nonce = (struct attest_opt){ ATTEST_OPT_ABSENT };
                ASSERT_ERR(check_doc(&f, &p, &error), -EKEYREJECTED);
        }
}

static void test_attest_pcr(void) {
        _cleanup_(doc_fixture_done) struct doc_fixture f = {};
        struct agent_attest_policy p;

        ASSERT_OK(doc_fixture_init(&f));
        p = policy(&f);
        {
                _cleanup_free_ char *error = NULL;
                ASSERT_OK(agent_pcr_from_hex(HEX48_B, 96, f.expect.value[0]));
                memset(f.pcr_bytes[0], 0, 48);
                ASSERT_OK(agent_pcr_from_hex(HEX48_A, 96, f.pcr_bytes[0]));
                ASSERT_ERR(check_doc(&f, &p, &error), -EPERM);
                ASSERT_STREQ(
                        error,
                        "attestation: PCR0 is 3a4b5c6d7e8f9a0b\xe2\x80\xa6, expected "
                        "9f00112233445566\xe2\x80\xa6 (enclave.expected_pcrs); not sending credentials");
        }
        {
                /* PCR8 (a signed image) differs; the origin is the image's measurements file */
                _cleanup_free_ char *error = NULL;
                memcpy(f.expect.value[0], f.pcr_bytes[0], 48);
                f.expect.value[8][0] ^= 0xff;
                p.origin = AGENT_PCRS_IMAGE;
                ASSERT_ERR(check_doc(&f, &p, &error), -EPERM);
                ASSERT_TRUE(error && strstr(error, "PCR8 is 1818181818181818"));
                ASSERT_TRUE(strstr(error, "expected e718181818181818"));
                ASSERT_TRUE(strstr(error, "(image-measurements.json)"));
        }
}

static void test_attest_root_and_time(void) {
        _cleanup_(doc_fixture_done) struct doc_fixture f = {};
        _cleanup_(attest_test_ca_freep) struct attest_test_ca *other = NULL;
        struct agent_attest_policy p;

        ASSERT_OK(doc_fixture_init(&f));
        {
                /* no simulator root given: the pinned AWS root, which a test CA never chains to */
                _cleanup_free_ char *error = NULL;
                p = policy(&f);
                p.root_der = NULL;
                p.root_len = 0;
                ASSERT_ERR(check_doc(&f, &p, &error), -EKEYREJECTED);
                ASSERT_TRUE(error && strstr(error, "AWS Nitro Enclaves root"));
        }
        {
                /* another simulator's root */
                _cleanup_free_ char *error = NULL;
                ASSERT_OK(attest_test_ca_new(T0 - 3600, T0 + 3600, &other));
                p = policy(&f);
                p.root_der = other->root_der;
                p.root_len = other->root_len;
                ASSERT_FAIL(check_doc(&f, &p, &error));
                ASSERT_TRUE(error && strstr(error, "NSM simulator's root"));
        }
        {
                /* checked after the chain expired */
                _cleanup_free_ char *error = NULL;
                p = policy(&f);
                p.time_ms = (uint64_t) (T0 + 7200) * 1000;
                ASSERT_ERR(check_doc(&f, &p, &error), -EKEYEXPIRED);
                ASSERT_TRUE(error && strstr(error, "expired"));
        }
        {
                /* garbage */
                _cleanup_free_ char *error = NULL;
                p = policy(&f);
                ASSERT_ERR(agent_attest_check((const uint8_t *) "\xa0", 1, f.nonce, 32, &p, &error),
                           -EBADMSG);
                ASSERT_TRUE(error && strstr(error, "malformed at byte"));
        }
}

/* tests/data/attest-sim: a simulator document made once and committed (no key generated here). */
static uint8_t *load_data(const char *rel, size_t *ret_len) {
        const char *env = getenv("TEST_DATA");
        _cleanup_free_ char *path = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        uint8_t *buf;
        long n;

        if (!env || asprintf(&path, "%s/%s", env, rel) < 0) {
                printf("# TEST_DATA is not set: cannot read %s\n", rel);
                return NULL;
        }
        f = fopen(path, "rbe");
        if (!f || fseek(f, 0, SEEK_END) < 0 || (n = ftell(f)) <= 0 || fseek(f, 0, SEEK_SET) < 0) {
                printf("# cannot read '%s'\n", path);
                return NULL;
        }
        buf = malloc((size_t) n);
        if (!buf || fread(buf, 1, (size_t) n, f) != (size_t) n) {
                free(buf);
                return NULL;
        }
        *ret_len = (size_t) n;
        return buf;
}

static void test_attest_committed(void) {
        _cleanup_free_ uint8_t *doc = NULL, *pem = NULL;
        _cleanup_free_ char *error = NULL, *error2 = NULL;
        struct agent_pcr_set expect = { .mask = 1 };
        unsigned char *der = NULL;
        uint8_t nonce[32] = { 1 };
        size_t len = 0, pem_len = 0;
        BIO *bio;
        X509 *root;
        int der_len;

        doc = load_data("attest-sim/sim.cose", &len);
        pem = load_data("attest-sim/root.pem", &pem_len);
        ASSERT_TRUE(doc && pem); /* missing test data fails, never skips */
        bio = BIO_new_mem_buf(pem, (int) pem_len);
        root = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
        BIO_free(bio);
        ASSERT_TRUE(root);
        der_len = i2d_X509(root, &der);
        X509_free(root);
        ASSERT_TRUE(der_len > 0);
        /* as of its own timestamp; PCR0 is 0x11 x 48 there */
        {
                struct agent_attest_policy p = { .pcrs = &expect,
                                                 .origin = AGENT_PCRS_IMAGE,
                                                 .root_der = der,
                                                 .root_len = (size_t) der_len,
                                                 .time_ms = 1780272000250 };
                int r1, r2;

                memset(expect.value[0], 0x12, 48);
                r1 = agent_attest_check(doc, len, nonce, sizeof(nonce), &p, &error);
                /* the right PCR0: now its empty nonce is what fails */
                memset(expect.value[0], 0x11, 48);
                r2 = agent_attest_check(doc, len, nonce, sizeof(nonce), &p, &error2);
                OPENSSL_free(der);
                ASSERT_ERR(r1, -EPERM);
                ASSERT_STREQ(error, "attestation: PCR0 is 1111111111111111\xe2\x80\xa6, expected "
                                    "1212121212121212\xe2\x80\xa6 (image-measurements.json); not sending "
                                    "credentials");
                ASSERT_ERR(r2, -EKEYREJECTED);
                ASSERT_TRUE(error2 && strstr(error2, "nonce is not the one the agent sent"));
        }
}

TAP_MAIN(TEST("/agent/kms/measurements/ok", test_measurements_ok),
         TEST("/agent/kms/measurements/bad", test_measurements_bad),
         TEST("/agent/kms/measurements/bounds", test_measurements_bounds),
         TEST("/agent/kms/region", test_region), TEST("/agent/kms/creds/ok", test_creds_ok),
         TEST("/agent/kms/creds/missing", test_creds_missing),
         TEST("/agent/kms/ciphertext/decode", test_ciphertext_decode),
         TEST("/agent/kms/launcher/argv", test_local_argv), TEST("/agent/kms/token/due", test_token_due),
         TEST("/agent/kms/errors", test_kms_errors), TEST("/agent/kms/token/equal", test_token_equal_kms),
         TEST("/agent/kms/attest/ok", test_attest_ok), TEST("/agent/kms/attest/nonce", test_attest_nonce),
         TEST("/agent/kms/attest/pcr", test_attest_pcr),
         TEST("/agent/kms/attest/root-time", test_attest_root_and_time),
         TEST("/agent/kms/attest/committed", test_attest_committed))
