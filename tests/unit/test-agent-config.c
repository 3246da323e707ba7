/* Unit tests for agent/config: ACM's files unchanged, every key, every error and warning, bounds, mutations.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "agent/config/config.h"
#include "common/cleanup.h"
#include "tests/lib/tap.h"

#define ENC   "enclave: {cpu_count: 2, memory_mib: 256}\n"
#define TOK   "tokens: [{label: t, source: {S3: {uri: s3://bucket/key}}}]\n"
#define LOCAL "enclave: {launcher: local}\n"
#define SIM   "enclave: {launcher: local, nsm_simulator: true}\n"
/* 120 bytes: longer than sun_path */
#define LONG_PATH                                                                                 \
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" \
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define PCR_A \
        "3a4b5c6d7e8f9a0b1c2d3e4f5061728394a5b6c7d8e9fa0b1c2d3e4f5061728394a5b6c7d8e9fa0b1c2d3e4f50617283"
#define PCR_B \
        "9F00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEE"
#define PCR_X \
        "3a4b5c6d7e8f9a0b1c2d3e4f5061728394a5b6c7d8e9fa0b1c2d3e4f5061728394a5b6c7d8e9fa0b1c2d3e4f5061728x"

/* tests/data: $TEST_DATA, else next to this file (meson compiles it as ../tests/unit/...). */
static char *data_path(const char *rel) {
        const char *env = getenv("TEST_DATA"), *slash = strrchr(__FILE__, '/');
        char *path;

        if (env ? asprintf(&path, "%s/%s", env, rel) < 0
                : asprintf(&path, "%.*s/../data/%s", slash ? (int) (slash - __FILE__) : 1,
                           slash ? __FILE__ : ".", rel) < 0)
                return NULL;
        return path;
}

static char *load_text(const char *rel, size_t *ret_len) {
        _cleanup_free_ char *path = data_path(rel);
        _cleanup_fclose_ FILE *f = NULL;
        char *buf;
        long n;

        f = path ? fopen(path, "rbe") : NULL;
        if (!f || fseek(f, 0, SEEK_END) < 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) < 0) {
                printf("# cannot read '%s' (set TEST_DATA to tests/data)\n", path ? path : rel);
                return NULL;
        }
        buf = malloc((size_t) n + 1);
        if (!buf || fread(buf, 1, (size_t) n, f) != (size_t) n) {
                free(buf);
                return NULL;
        }
        buf[n] = '\0';
        *ret_len = (size_t) n;
        return buf;
}

static int parse(const char *yaml, struct agent_config **ret, struct agent_config_diag *d) {
        return agent_config_parse(yaml, strlen(yaml), "test.yaml", ret, d);
}

static void dump_diag(const struct agent_config_diag *d) {
        for (size_t i = 0; i < d->n_entries; i++) {
                _cleanup_free_ char *s = NULL;

                if (agent_config_diag_format(d, &d->entries[i], &s) >= 0)
                        printf("#   %s\n", s);
        }
}

static const struct agent_config_diag_entry *find_entry(const struct agent_config_diag *d,
                                                        enum agent_config_severity sev, const char *key) {
        for (size_t i = 0; i < d->n_entries; i++)
                if (d->entries[i].severity == sev && strcmp(d->entries[i].key, key) == 0)
                        return &d->entries[i];
        return NULL;
}

/* ---- ACM's own files ---- */

static void check_acm_common(const struct agent_config *c, const struct agent_config_diag *d) {
        const struct agent_config_diag_entry *e;

        ASSERT_EQ(d->n_errors, 0);
        ASSERT_EQ(d->n_warnings, 1);
        e = find_entry(d, AGENT_CONFIG_WARNING, "tokens[0].source.Acm.certificate_arn");
        ASSERT_TRUE(e);
        ASSERT_EQ(e->line, 45);
        ASSERT_EQ(e->column, 26);
        ASSERT_EQ(c->enclave.launcher, AGENT_LAUNCHER_NITRO_CLI);
        ASSERT_EQ(c->enclave.cpu_count, 2);
        ASSERT_EQ(c->enclave.memory_mib, 256);
        ASSERT_STREQ(c->enclave.image_path, AGENT_CONFIG_DEFAULT_IMAGE_PATH);
        ASSERT_EQ(c->enclave.boot_timeout_ms, 5000);
        ASSERT_EQ(c->enclave.p11kit_port, 9999);
        ASSERT_EQ(c->enclave.rpc_port, 10000);
        ASSERT_EQ(c->enclave.attestation_retry_count, 5);
        ASSERT_EQ(c->options.force_start, true);
        ASSERT_EQ(c->options.sync_interval_secs, 600);
        ASSERT_EQ(c->log.level, LOG_INFO);
        ASSERT_EQ(c->n_tokens, 1);
        ASSERT_TRUE(c->tokens[0].pin == NULL);
        ASSERT_EQ(c->tokens[0].source.kind, AGENT_SOURCE_ACM);
        ASSERT_STREQ(c->tokens[0].source.certificate_arn, "");
        ASSERT_STREQ(c->tokens[0].source.bucket, "prod");
        ASSERT_TRUE(c->tokens[0].target.present);
        ASSERT_TRUE(c->tokens[0].target.group == NULL);
        ASSERT_EQ(c->tokens[0].refresh_interval_secs, 43200);
}

static void test_acm_nginx(void) {
        _cleanup_(agent_config_diag_done) struct agent_config_diag d = {};
        _cleanup_(agent_config_freep) struct agent_config *c = NULL;
        _cleanup_free_ char *text = NULL;
        size_t len;

        text = load_text("agent/acm-nginx.example.yaml", &len);
        ASSERT_TRUE(text);
        ASSERT_OK(agent_config_parse(text, len, "acm.yaml", &c, &d));
        check_acm_common(c, &d);
        if (tap_failed_current)
                return;
        ASSERT_EQ(c->options.service, AGENT_SERVICE_NGINX);
        ASSERT_EQ(c->options.reload_wait_ms, 1000); /* nginx_reload_wait_ms */
        ASSERT_STREQ(c->tokens[0].label, "nginx-acm-token");
        ASSERT_EQ(c->tokens[0].target.kind, AGENT_TARGET_NGINX_STANZA);
        ASSERT_STREQ(c->tokens[0].target.path, "/etc/pki/nginx/nginx-acm.conf");
        ASSERT_STREQ(c->tokens[0].target.user, "nginx");
}

static void test_acm_httpd(void) {
        _cleanup_(agent_config_diag_done) struct agent_config_diag d = {};
        _cleanup_(agent_config_freep) struct agent_config *c = NULL;
        _cleanup_free_ char *text = NULL;
        size_t len;

        text = load_text("agent/acm-httpd.example.yaml", &len);
        ASSERT_TRUE(text);
        ASSERT_OK(agent_config_parse(text, len, "acm.yaml", &c, &d));
        check_acm_common(c, &d);
        if (tap_failed_current)
                return;
        ASSERT_EQ(c->options.service, AGENT_SERVICE_HTTPD);
        ASSERT_EQ(c->options.reload_wait_ms, 0);
        ASSERT_STREQ(c->tokens[0].label, "httpd-acm-token");
        ASSERT_EQ(c->tokens[0].target.kind, AGENT_TARGET_CONF);
        ASSERT_STREQ(c->tokens[0].target.path, "/etc/httpd/conf.d/httpd-acm.conf");
        ASSERT_STREQ(c->tokens[0].target.user, "apache");
}

/* Our own samples and the example at the root, with the number of warnings each must give. */
static void test_samples(void) {
        static const struct {
                const char *file;
                size_t n_tokens, n_warnings;
        } samples[] = {
                { "agent/local-file.yaml", 1, 0 },
                { "agent/httpd-s3.yaml", 2, 0 },
                { "agent/every-key.yaml", 3, 1 },
                { "../../acm.example.yaml", 1, 1 },
        };

        for (size_t i = 0; i < ELEMENTSOF(samples); i++) {
                _cleanup_(agent_config_diag_done) struct agent_config_diag d = {};
                _cleanup_(agent_config_freep) struct agent_config *c = NULL;
                _cleanup_free_ char *text = NULL;
                size_t len;
                int r;

                text = load_text(samples[i].file, &len);
                ASSERT_TRUE(text);
                r = agent_config_parse(text, len, samples[i].file, &c, &d);
                if (r < 0 || d.n_warnings != samples[i].n_warnings)
                        dump_diag(&d);
                ASSERT_OK(r);
                ASSERT_EQ(c->n_tokens, samples[i].n_tokens);
                ASSERT_EQ(d.n_warnings, samples[i].n_warnings);
        }
}

static void test_every_key_file(void) {
        _cleanup_(agent_config_diag_done) struct agent_config_diag d = {};
        _cleanup_(agent_config_freep) struct agent_config *c = NULL;
        _cleanup_free_ char *text = NULL;
        const struct agent_config_token *t;
        size_t len;

        text = load_text("agent/every-key.yaml", &len);
        ASSERT_TRUE(text);
        ASSERT_OK(agent_config_parse(text, len, NULL, &c, &d));
        ASSERT_STREQ(d.filename, "acm.yaml");
        ASSERT_EQ(c->enclave.launcher, AGENT_LAUNCHER_LOCAL);
        ASSERT_EQ(c->enclave.cpu_count, 8);
        ASSERT_EQ(c->enclave.memory_mib, 2048);
        ASSERT_STREQ(c->enclave.image_path, "/opt/enclave-acm/test.eif");
        ASSERT_EQ(c->enclave.boot_timeout_ms, 15000);
        ASSERT_EQ(c->enclave.p11kit_port, 19999);
        ASSERT_EQ(c->enclave.rpc_port, 20000);
        ASSERT_EQ(c->enclave.attestation_retry_count, 7);
        ASSERT_EQ(c->enclave.cid, 42);
        ASSERT_STREQ(c->enclave.token_binary, "/opt/enclave-acm/bin/enclave-token");
        ASSERT_EQ(c->options.service, AGENT_SERVICE_HTTPD);
        ASSERT_EQ(c->options.force_start, false);
        ASSERT_EQ(c->options.reload_wait_ms, 2500);
        ASSERT_EQ(c->options.sync_interval_secs, 30);
        ASSERT_STREQ(c->options.runtime_dir, "/run/acm-test");
        ASSERT_STREQ(c->options.state_dir, "/var/lib/acm-test");
        ASSERT_EQ(c->options.server_control, AGENT_SERVER_CONTROL_DIRECT);
        ASSERT_STREQ(c->options.server_config, "/etc/apache2/apache2.conf");
        ASSERT_EQ(c->log.level, LOG_DEBUG);
        ASSERT_EQ(c->log.enable_timestamp, true);

        t = &c->tokens[0];
        ASSERT_STREQ(t->label, "acm");
        ASSERT_TRUE(t->pin);
        ASSERT_EQ(t->pin->len, 12);
        ASSERT_MEMEQ(t->pin->data, "acm-pin-0001", 12);
        ASSERT_EQ(t->source.kind, AGENT_SOURCE_ACM);
        ASSERT_STREQ(
                t->source.certificate_arn,
                "arn:aws-cn:acm:cn-north-1:210987654321:certificate/deadbeef-0000-1111-2222-333344445555");
        ASSERT_STREQ(t->source.bucket, "gamma");
        ASSERT_EQ(t->target.kind, AGENT_TARGET_NGINX_STANZA);
        ASSERT_STREQ(t->target.user, "www-data");
        ASSERT_STREQ(t->target.group, "www-data");
        ASSERT_EQ(t->refresh_interval_secs, 1800);
        ASSERT_EQ(t->line, 25);
        ASSERT_EQ(t->column, 5);
        t = &c->tokens[1];
        ASSERT_EQ(t->source.kind, AGENT_SOURCE_S3);
        ASSERT_STREQ(t->source.uri, "s3://test-bucket.example/key/material.json");
        ASSERT_TRUE(t->source.bucket == NULL);
        ASSERT_EQ(t->target.kind, AGENT_TARGET_CONF);
        ASSERT_EQ(t->refresh_interval_secs, 1);
        t = &c->tokens[2];
        ASSERT_TRUE(t->pin == NULL);
        ASSERT_EQ(t->source.kind, AGENT_SOURCE_FILE);
        ASSERT_STREQ(t->source.key, "/etc/enclave-acm/file.key.pem");
        ASSERT_STREQ(t->source.certificate, "/etc/enclave-acm/file.chain.pem");
        ASSERT_FALSE(t->target.present);
        ASSERT_EQ(t->target.kind, _AGENT_TARGET_INVALID);
}

static void test_defaults(void) {
        _cleanup_(agent_config_diag_done) struct agent_config_diag d = {};
        _cleanup_(agent_config_freep) struct agent_config *c = NULL;

        ASSERT_OK(parse(ENC TOK, &c, &d));
        ASSERT_EQ(d.n_entries, 0);
        ASSERT_EQ(c->enclave.launcher, AGENT_LAUNCHER_NITRO_CLI);
        ASSERT_STREQ(c->enclave.image_path, "/usr/share/enclave-acm/enclave-acm.eif");
        ASSERT_EQ(c->enclave.boot_timeout_ms, 5000);
        ASSERT_EQ(c->enclave.p11kit_port, 9999);
        ASSERT_EQ(c->enclave.rpc_port, 10000);
        ASSERT_EQ(c->enclave.attestation_retry_count, 5);
        ASSERT_EQ(c->enclave.cid, 0);
        ASSERT_TRUE(c->enclave.token_binary == NULL);
        ASSERT_EQ(c->options.service, AGENT_SERVICE_NGINX);
        ASSERT_EQ(c->options.force_start, true);
        ASSERT_EQ(c->options.reload_wait_ms, 1000);
        ASSERT_EQ(c->options.sync_interval_secs, 600);
        ASSERT_STREQ(c->options.runtime_dir, "/run/enclave-acm");
        ASSERT_STREQ(c->options.state_dir, "/var/lib/enclave-acm");
        ASSERT_EQ(c->options.server_control, AGENT_SERVER_CONTROL_SYSTEMD);
        ASSERT_TRUE(c->options.server_config == NULL);
        ASSERT_TRUE(c->options.server_pid_file == NULL);
        ASSERT_EQ(c->log.level, LOG_INFO);
        ASSERT_EQ(c->log.enable_timestamp, false);
        ASSERT_EQ(c->tokens[0].refresh_interval_secs, 43200);
        ASSERT_FALSE(c->tokens[0].target.present);
        ASSERT_TRUE(c->tokens[0].pin == NULL);
        ASSERT_EQ(c->tokens[0].line, 2);
        ASSERT_EQ(c->tokens[0].column, 10);
}

/* ---- every key, one document each ---- */

enum kind { K_U64, K_U32, K_BOOL, K_INT, K_STR };

struct key_case {
        const char *yaml;
        bool token; /* offset into tokens[0], else into struct agent_config */
        size_t offset;
        enum kind kind;
        uint64_t num;
        const char *str; /* K_STR; NULL: expect NULL */
};

#define C(field) false, offsetof(struct agent_config, field)
#define T(field) true, offsetof(struct agent_config_token, field)

static const struct key_case key_cases[] = {
        /* enclave */
        { "enclave: {launcher: local}\n" TOK, C(enclave.launcher), K_INT, AGENT_LAUNCHER_LOCAL },
        { "enclave: {launcher: nitro-cli, cpu_count: 2, memory_mib: 1}\n" TOK, C(enclave.launcher), K_INT,
          AGENT_LAUNCHER_NITRO_CLI },
        { "enclave: {cpu_count: 4, memory_mib: 256}\n" TOK, C(enclave.cpu_count), K_U64, 4 },
        { "enclave: {cpu_count: 0x10, memory_mib: 256}\n" TOK, C(enclave.cpu_count), K_U64, 16 },
        { "enclave: {cpu_count: 0o10, memory_mib: 256}\n" TOK, C(enclave.cpu_count), K_U64, 8 },
        { "enclave: {cpu_count: +3, memory_mib: 256}\n" TOK, C(enclave.cpu_count), K_U64, 3 },
        { "enclave: {cpu_count: 4096, memory_mib: 256}\n" TOK, C(enclave.cpu_count), K_U64, 4096 },
        { "enclave: {cpu_count: 2, memory_mib: 4294967295}\n" TOK, C(enclave.memory_mib), K_U64,
          4294967295u },
        { "enclave: {cpu_count: 2, memory_mib: 1}\n" TOK, C(enclave.memory_mib), K_U64, 1 },
        { "enclave: {launcher: local, cpu_count: 2}\n" TOK, C(enclave.memory_mib), K_U64, 0 },
        { "enclave: {cpu_count: 2, memory_mib: 1, image_path: /x/y.eif}\n" TOK, C(enclave.image_path), K_STR,
          0, "/x/y.eif" },
        { "enclave: {cpu_count: 2, memory_mib: 1, boot_timeout_ms: 1}\n" TOK, C(enclave.boot_timeout_ms),
          K_U64, 1 },
        { "enclave: {cpu_count: 2, memory_mib: 1, p11kit_port: 1}\n" TOK, C(enclave.p11kit_port), K_U32, 1 },
        { "enclave: {cpu_count: 2, memory_mib: 1, rpc_port: 4294967294}\n" TOK, C(enclave.rpc_port), K_U32,
          4294967294u },
        { "enclave: {cpu_count: 2, memory_mib: 1, attestation_retry_count: 1}\n" TOK,
          C(enclave.attestation_retry_count), K_U64, 1 },
        { "enclave: {cpu_count: 2, memory_mib: 1, attestation_retry_count: 1000}\n" TOK,
          C(enclave.attestation_retry_count), K_U64, 1000 },
        { "enclave: {cpu_count: 2, memory_mib: 1, cid: 4}\n" TOK, C(enclave.cid), K_U32, 4 },
        { "enclave: {cpu_count: 2, memory_mib: 1, cid: 4294967294}\n" TOK, C(enclave.cid), K_U32,
          4294967294u },
        { "enclave: {launcher: local, token_binary: /usr/bin/enclave-token}\n" TOK, C(enclave.token_binary),
          K_STR, 0, "/usr/bin/enclave-token" },
        /* options */
        { ENC TOK "options: {service: httpd}\n", C(options.service), K_INT, AGENT_SERVICE_HTTPD },
        { ENC TOK "options: {service: \"nginx\"}\n", C(options.service), K_INT, AGENT_SERVICE_NGINX },
        { ENC TOK "options: {service: }\n", C(options.service), K_INT, AGENT_SERVICE_NGINX },
        { ENC TOK "options:\n", C(options.sync_interval_secs), K_U64, 600 },
        { ENC TOK "options: {force_start: false}\n", C(options.force_start), K_BOOL, false },
        { ENC TOK "options: {nginx_force_start: False}\n", C(options.force_start), K_BOOL, false },
        { ENC TOK "options: {force_start: TRUE}\n", C(options.force_start), K_BOOL, true },
        { ENC TOK "options: {reload_wait_ms: 0}\n", C(options.reload_wait_ms), K_U64, 0 },
        { ENC TOK "options: {nginx_reload_wait_ms: 20000}\n", C(options.reload_wait_ms), K_U64, 20000 },
        { ENC TOK "options: {sync_interval_secs: 1}\n", C(options.sync_interval_secs), K_U64, 1 },
        { ENC TOK "options: {sync_interval_secs: 4294967295}\n", C(options.sync_interval_secs), K_U64,
          4294967295u },
        { ENC TOK "options: {runtime_dir: /tmp/r}\n", C(options.runtime_dir), K_STR, 0, "/tmp/r" },
        { ENC TOK "options: {state_dir: /tmp/s}\n", C(options.state_dir), K_STR, 0, "/tmp/s" },
        { ENC TOK "options: {server_control: direct}\n", C(options.server_control), K_INT,
          AGENT_SERVER_CONTROL_DIRECT },
        { ENC TOK "options: {server_control: systemd}\n", C(options.server_control), K_INT,
          AGENT_SERVER_CONTROL_SYSTEMD },
        { ENC TOK "options: {server_control: direct, server_config: /etc/nginx/nginx.conf}\n",
          C(options.server_config), K_STR, 0, "/etc/nginx/nginx.conf" },
        { ENC TOK "options: {server_control: direct, server_pid_file: /run/nginx.pid}\n",
          C(options.server_pid_file), K_STR, 0, "/run/nginx.pid" },
        /* log */
        { ENC TOK "log: {level: Error}\n", C(log.level), K_INT, LOG_ERR },
        { ENC TOK "log: {level: Warn}\n", C(log.level), K_INT, LOG_WARNING },
        { ENC TOK "log: {level: Info}\n", C(log.level), K_INT, LOG_INFO },
        { ENC TOK "log: {level: Debug}\n", C(log.level), K_INT, LOG_DEBUG },
        { ENC TOK "log: {level: Trace}\n", C(log.level), K_INT, LOG_DEBUG },
        { ENC TOK "log: {level: notice}\n", C(log.level), K_INT, LOG_NOTICE },
        { ENC TOK "log: {level: warning}\n", C(log.level), K_INT, LOG_WARNING },
        { ENC TOK "log: {enable_timestamp: true}\n", C(log.enable_timestamp), K_BOOL, true },
        { ENC TOK "log:\n", C(log.level), K_INT, LOG_INFO },
        /* tokens[] */
        { ENC "tokens: [{label: web, source: {S3: {uri: s3://bucket/key}}}]\n", T(label), K_STR, 0, "web" },
        { ENC "tokens: [{label: 123, source: {S3: {uri: s3://bucket/key}}}]\n", T(label), K_STR, 0, "123" },
        { ENC "tokens: [{label: !!str 1.5, source: {S3: {uri: s3://bucket/key}}}]\n", T(label), K_STR, 0,
          "1.5" },
        { ENC "tokens: [{label: 'a b', source: {S3: {uri: s3://bucket/key}}}]\n", T(label), K_STR, 0,
          "a b" },
        { ENC "tokens: [{label: x, source: {S3: {uri: s3://bucket/key}}}]\n", T(label), K_STR, 0, "x" },
        { ENC "tokens: [{label: 12345678901234567890123456789012, source: {S3: {uri: s3://bucket/key}}}]\n",
          T(label), K_STR, 0, "12345678901234567890123456789012" },
        { ENC "tokens: [{label: t, pin: ~, source: {S3: {uri: s3://bucket/key}}}]\n", T(pin), K_STR, 0,
          NULL },
        { ENC "tokens: [{label: t, source: {S3: {uri: s3://b-1.x/k/e/y.json}}}]\n", T(source.uri), K_STR, 0,
          "s3://b-1.x/k/e/y.json" },
        { ENC "tokens: [{label: t, source: {S3: {uri: s3://bucket/key}}}]\n", T(source.kind), K_INT,
          AGENT_SOURCE_S3 },
        { ENC
          "tokens: [{label: t, source: {Acm: {certificate_arn: "
          "\"arn:aws:acm:us-east-1:123456789012:certificate/12345678-1234-1234-1234-123456789012\"}}}]\n",
          T(source.certificate_arn), K_STR, 0,
          "arn:aws:acm:us-east-1:123456789012:certificate/12345678-1234-1234-1234-123456789012" },
        { ENC "tokens: [{label: t, source: {Acm: {certificate_arn: "
              "arn:aws-us-gov:acm:us-gov-west-1:123456789012:certificate/abc}}}]\n",
          T(source.kind), K_INT, AGENT_SOURCE_ACM },
        { ENC "tokens: [{label: t, source: {Acm: {certificate_arn: '', bucket: beta}}}]\n", T(source.bucket),
          K_STR, 0, "beta" },
        { ENC "tokens: [{label: t, source: {Acm: {certificate_arn: ''}}}]\n", T(source.bucket), K_STR, 0,
          "prod" },
        { LOCAL "tokens: [{label: t, source: {File: {key: /k.pem, certificate: /c.pem}}}]\n", T(source.key),
          K_STR, 0, "/k.pem" },
        { LOCAL "tokens: [{label: t, source: {File: {key: /k.pem, certificate: /c.pem}}}]\n",
          T(source.certificate), K_STR, 0, "/c.pem" },
        { LOCAL "tokens: [{label: t, source: {File: {key: /k.pem, certificate: /c.pem}}}]\n", T(source.kind),
          K_INT, AGENT_SOURCE_FILE },
        { ENC "tokens: [{label: t, source: {S3: {uri: s3://bucket/key}}, target: {Conf: {path: /a}}}]\n",
          T(target.path), K_STR, 0, "/a" },
        { ENC "tokens: [{label: t, source: {S3: {uri: s3://bucket/key}}, target: {Conf: {path: /a}}}]\n",
          T(target.kind), K_INT, AGENT_TARGET_CONF },
        { ENC
          "tokens: [{label: t, source: {S3: {uri: s3://bucket/key}}, target: {NginxStanza: {path: /a}}}]\n",
          T(target.kind), K_INT, AGENT_TARGET_NGINX_STANZA },
        { ENC "tokens: [{label: t, source: {S3: {uri: s3://bucket/key}}, target: {Conf: {path: /a}}}]\n",
          T(target.present), K_BOOL, true },
        { ENC "tokens: [{label: t, source: {S3: {uri: s3://bucket/key}}, target: }]\n", T(target.present),
          K_BOOL, false },
        { ENC "tokens: [{label: t, source: {S3: {uri: s3://bucket/key}}, target: {Conf: {path: /a, user: "
              "nginx}}}]\n",
          T(target.user), K_STR, 0, "nginx" },
        { ENC "tokens: [{label: t, source: {S3: {uri: s3://bucket/key}}, target: {Conf: {path: /a, user: "
              "33}}}]\n",
          T(target.user), K_STR, 0, "33" },
        { ENC "tokens: [{label: t, source: {S3: {uri: s3://bucket/key}}, target: {Conf: {path: /a, group: "
              "www-data}}}]\n",
          T(target.group), K_STR, 0, "www-data" },
        { ENC "tokens: [{label: t, source: {S3: {uri: s3://bucket/key}}, refresh_interval_secs: 1}]\n",
          T(refresh_interval_secs), K_U64, 1 },
        { ENC "tokens: [{label: t, source: {S3: {uri: s3://bucket/key}}, refresh_interval_secs: 86400}]\n",
          T(refresh_interval_secs), K_U64, 86400 },
        { ENC "tokens: [{label: t, source: {S3: {uri: s3://bucket/key}}, refresh_interval_secs: ~}]\n",
          T(refresh_interval_secs), K_U64, 43200 },
        /* the KMS key path */
        { SIM TOK, C(enclave.nsm_simulator), K_BOOL, true },
        { LOCAL TOK, C(enclave.nsm_simulator), K_BOOL, false },
        { "enclave: {cpu_count: 2, memory_mib: 1, nsm_simulator: false}\n" TOK, C(enclave.nsm_simulator),
          K_BOOL, false },
        { "enclave: {launcher: local, kms_proxy: 'unix:path=/tmp/kms.sock'}\n" TOK, C(enclave.kms_proxy),
          K_STR, 0, "unix:path=/tmp/kms.sock" },
        { "enclave: {launcher: local, kms_proxy: 'vsock:cid=3;port=8000'}\n" TOK, C(enclave.kms_proxy),
          K_STR, 0, "vsock:cid=3;port=8000" },
        { LOCAL TOK, C(enclave.kms_proxy), K_STR, 0, NULL },
        { "enclave: {launcher: local, kms_ca_file: /etc/ca.pem}\n" TOK, C(enclave.kms_ca_file), K_STR, 0,
          "/etc/ca.pem" },
        { ENC TOK "options: {region: us-gov-west-1}\n", C(options.region), K_STR, 0, "us-gov-west-1" },
        { ENC TOK, C(options.metrics_listen), K_STR, 0, NULL },
        { ENC TOK "options: {metrics_listen: '127.0.0.1:9464'}\n", C(options.metrics_listen), K_STR, 0,
          "127.0.0.1:9464" },
        { ENC TOK "options: {metrics_listen: '127.8.9.10:1'}\n", C(options.metrics_listen), K_STR, 0,
          "127.8.9.10:1" },
        { ENC TOK "options: {metrics_listen: '[::1]:65535'}\n", C(options.metrics_listen), K_STR, 0,
          "[::1]:65535" },
        { ENC TOK "options: {metrics_listen: /run/enclave-acm/metrics.sock}\n", C(options.metrics_listen),
          K_STR, 0, "/run/enclave-acm/metrics.sock" },
        { ENC TOK, C(options.region), K_STR, 0, NULL },
        { SIM "tokens: [{label: t, source: {File: {encrypted_key: /k.bin, certificate: /c.pem}}}]\n",
          T(source.encrypted_key), K_STR, 0, "/k.bin" },
        { SIM "tokens: [{label: t, source: {File: {encrypted_key: /k.bin, certificate: /c.pem}}}]\n",
          T(source.key), K_STR, 0, NULL },
        { ENC "tokens: [{label: t, source: {File: {encrypted_key: /k.bin, certificate: /c.pem}}}]\n",
          T(source.kind), K_INT, AGENT_SOURCE_FILE },
        { SIM "tokens: [{label: t, source: {File: {encrypted_key: /k.bin, certificate: /c.pem}}, ttl_secs: "
              "86400}]\n",
          T(ttl_secs), K_U64, 86400 },
        { SIM "tokens: [{label: t, source: {File: {encrypted_key: /k.bin, certificate: /c.pem}}, "
              "refresh_interval_secs: 200000, ttl_secs: 31622400}]\n",
          T(ttl_secs), K_U64, 31622400 },
        { SIM "tokens: [{label: t, source: {File: {encrypted_key: /k.bin, certificate: /c.pem}}}]\n",
          T(ttl_secs), K_U64, 0 },
};

static bool check_key_case(const struct key_case *k) {
        _cleanup_(agent_config_diag_done) struct agent_config_diag d = {};
        _cleanup_(agent_config_freep) struct agent_config *c = NULL;
        const char *base;
        int r;

        r = parse(k->yaml, &c, &d);
        if (r < 0 || d.n_errors > 0) {
                printf("# parse failed: %d\n", r);
                dump_diag(&d);
                return false;
        }
        if (k->token && c->n_tokens < 1)
                return false;
        base = k->token ? (const char *) &c->tokens[0] : (const char *) c;
        base += k->offset;
        switch (k->kind) {
        case K_U64:
                if (*(const uint64_t *) base == k->num)
                        return true;
                printf("# got %llu\n", (unsigned long long) *(const uint64_t *) base);
                return false;
        case K_U32: return *(const uint32_t *) base == k->num;
        case K_BOOL: return *(const bool *) base == (bool) k->num;
        case K_INT:
                if (*(const int *) base == (int) k->num)
                        return true;
                printf("# got %d\n", *(const int *) base);
                return false;
        case K_STR: {
                const char *s = *(char *const *) base;
                if ((!s && !k->str) || (s && k->str && strcmp(s, k->str) == 0))
                        return true;
                printf("# got '%s'\n", s ? s : "(null)");
                return false;
        }
        }
        return false;
}

static void test_every_key(void) {
        size_t failed = 0;

        for (size_t i = 0; i < ELEMENTSOF(key_cases); i++)
                if (!check_key_case(&key_cases[i])) {
                        printf("# key case %zu: %s", i, key_cases[i].yaml);
                        failed++;
                }
        ASSERT_EQ(failed, 0);
}

static void test_pin(void) {
        _cleanup_(agent_config_diag_done) struct agent_config_diag d = {};
        _cleanup_(agent_config_freep) struct agent_config *c = NULL;

        /* a plain 0000 is the string "0000", not the number 0 */
        ASSERT_OK(parse(
                ENC "tokens:\n- {label: a, pin: 0000, source: {S3: {uri: s3://bucket/key}}}\n"
                    "- {label: b, pin: \"0123456789012345678901234567890123456789012345678901234567890123\","
                    " source: {S3: {uri: s3://bucket/key}}}\n",
                &c, &d));
        ASSERT_EQ(c->n_tokens, 2);
        ASSERT_TRUE(c->tokens[0].pin);
        ASSERT_EQ(c->tokens[0].pin->len, 4);
        ASSERT_MEMEQ(c->tokens[0].pin->data, "0000", 4);
        ASSERT_EQ(c->tokens[1].pin->len, 64);
        ASSERT_MEMEQ(c->tokens[1].pin->data,
                     "0123456789012345678901234567890123456789012345678901234567890123", 64);
}

/* ---- errors: every path, with its place and key ---- */

struct error_case {
        const char *yaml;
        unsigned line, column;
        const char *key;
        const char *message; /* a substring */
};

static const struct error_case error_cases[] = {
        /* the document */
        { "", 0, 0, "", "the configuration is empty" },
        { "---\n", 2, 1, "", "the configuration is empty" },
        { "# only a comment\n", 0, 0, "", "the configuration is empty" },
        { "- a\n- b\n", 1, 1, "", "expected a mapping of enclave, options, log and tokens, got a list" },
        { "hello\n", 1, 1, "", "got a single value" },
        { "enclave: {cpu_count: 2\n", 2, 1, "enclave", "invalid YAML: did not find expected ',' or '}'" },
        { "enclave:\n  cpu_count: 2\n memory_mib: 3\n", 3, 2, "", "invalid YAML" },
        { "enclave: \"unterminated\n", 2, 1, "enclave", "invalid YAML" },
        { "enclave: {a: \xff}\n", 1, 14, "", "invalid input: invalid leading UTF-8 octet" },
        { "enclave: {cpu_count: \x01}\n", 1, 22, "", "invalid input: control characters are not allowed" },
        { ENC TOK "---\nx: 1\n", 3, 1, "", "only one YAML document is allowed" },
        { ENC TOK "x: &anchor 1\n", 3, 4, "x", "anchors (&) are not supported" },
        { ENC TOK "x: &anchor [1]\n", 3, 4, "x", "anchors (&) are not supported" },
        { "a: [1]\nb: *a\n", 2, 4, "b", "aliases (*) are not supported" },
        { ENC TOK "x: !!int 1\n", 3, 4, "x", "YAML tag 'tag:yaml.org,2002:int' is not supported" },
        { ENC TOK "x: !custom {}\n", 3, 4, "x", "YAML tag '!custom' is not supported" },
        { ENC TOK "x: !!set [1]\n", 3, 4, "x", "YAML tag 'tag:yaml.org,2002:set' is not supported" },
        { ENC TOK "? [a]\n: 1\n", 3, 3, "", "a mapping key must be a plain string, not a sequence" },
        { ENC TOK "{a: 1}: 1\n", 3, 1, "", "a mapping key must be a plain string, not a mapping" },
        { ENC TOK "x: \"a\\0b\"\n", 3, 4, "x", "value contains a NUL character" },
        /* sections */
        { TOK, 1, 1, "", "missing required key 'enclave'" },
        { ENC, 1, 1, "", "missing required key 'tokens'" },
        { "enclave:\n" TOK, 1, 9, "enclave", "needs a value" },
        { ENC "tokens:\n", 2, 8, "tokens", "needs a value" },
        { "enclave: [1]\n" TOK, 1, 10, "enclave", "expected a mapping, got a list" },
        { ENC TOK "options: 5\n", 3, 10, "options", "expected a mapping, got a single value" },
        { ENC TOK "log: [a]\n", 3, 6, "log", "expected a mapping, got a list" },
        { ENC "tokens: {label: a}\n", 2, 9, "tokens", "expected a list of tokens, got a mapping" },
        { ENC TOK "enclave: {cpu_count: 2, memory_mib: 1}\n", 3, 1, "enclave",
          "duplicate key (first given at line 1)" },
        /* enclave */
        { "enclave: {memory_mib: 256}\n" TOK, 1, 10, "enclave", "missing required key 'cpu_count'" },
        { "enclave: {cpu_count: 2}\n" TOK, 1, 10, "enclave", "missing required key 'memory_mib'" },
        { "enclave: {cpu_count: , memory_mib: 2}\n" TOK, 1, 11, "enclave.cpu_count", "needs a value" },
        { "enclave: {launcher: nitro}\n" TOK, 1, 21, "enclave.launcher",
          "'nitro' is not nitro-cli or local" },
        { "enclave: {launcher: [local]}\n" TOK, 1, 21, "enclave.launcher",
          "expected a single value, got a list" },
        { "enclave: {cpu_count: 0, memory_mib: 256}\n" TOK, 1, 22, "enclave.cpu_count",
          "must be greater than zero" },
        { "enclave: {cpu_count: -2, memory_mib: 256}\n" TOK, 1, 22, "enclave.cpu_count",
          "must not be negative" },
        { "enclave: {cpu_count: 4097, memory_mib: 256}\n" TOK, 1, 22, "enclave.cpu_count",
          "must be between 1 and 4096, got 4097" },
        { "enclave: {cpu_count: \"2\", memory_mib: 256}\n" TOK, 1, 22, "enclave.cpu_count",
          "expected an integer, got a quoted string" },
        { "enclave: {cpu_count: two, memory_mib: 256}\n" TOK, 1, 22, "enclave.cpu_count",
          "expected an integer, got 'two'" },
        { "enclave: {cpu_count: 2.0, memory_mib: 256}\n" TOK, 1, 22, "enclave.cpu_count",
          "expected an integer" },
        { "enclave: {cpu_count: 0x, memory_mib: 256}\n" TOK, 1, 22, "enclave.cpu_count",
          "expected an integer" },
        { "enclave: {cpu_count: 0o8, memory_mib: 256}\n" TOK, 1, 22, "enclave.cpu_count",
          "expected an integer" },
        { "enclave: {cpu_count: -0x1, memory_mib: 256}\n" TOK, 1, 22, "enclave.cpu_count",
          "expected an integer" },
        { "enclave: {cpu_count: 1_000, memory_mib: 256}\n" TOK, 1, 22, "enclave.cpu_count",
          "expected an integer" },
        { "enclave: {cpu_count: {a: 1}, memory_mib: 256}\n" TOK, 1, 22, "enclave.cpu_count",
          "expected an integer, got a mapping" },
        { "enclave: {cpu_count: 2, memory_mib: 4294967296}\n" TOK, 1, 37, "enclave.memory_mib",
          "must be between 1 and 4294967295" },
        { "enclave: {cpu_count: 2, memory_mib: 99999999999999999999999}\n" TOK, 1, 37, "enclave.memory_mib",
          "must be between" },
        { "enclave: {cpu_count: 2, memory_mib: 1, image_path: x.eif}\n" TOK, 1, 52, "enclave.image_path",
          "must be an absolute path, got 'x.eif'" },
        { "enclave: {cpu_count: 2, memory_mib: 1, image_path: ''}\n" TOK, 1, 52, "enclave.image_path",
          "must not be empty" },
        { "enclave: {cpu_count: 2, memory_mib: 1, boot_timeout_ms: 0}\n" TOK, 1, 57,
          "enclave.boot_timeout_ms", "must be greater than zero" },
        { "enclave: {cpu_count: 2, memory_mib: 1, p11kit_port: 0}\n" TOK, 1, 53, "enclave.p11kit_port",
          "must be greater than zero" },
        { "enclave: {cpu_count: 2, memory_mib: 1, rpc_port: 4294967295}\n" TOK, 1, 50, "enclave.rpc_port",
          "must be between 1 and 4294967294" },
        { "enclave: {cpu_count: 2, memory_mib: 1, rpc_port: 9999}\n" TOK, 1, 50, "enclave.rpc_port",
          "need different ports, both are 9999" },
        { "enclave: {cpu_count: 2, memory_mib: 1, p11kit_port: 10000}\n" TOK, 1, 53, "enclave.rpc_port",
          "need different ports" },
        { "enclave: {cpu_count: 2, memory_mib: 1, attestation_retry_count: 0}\n" TOK, 1, 65,
          "enclave.attestation_retry_count", "must be greater than zero" },
        { "enclave: {cpu_count: 2, memory_mib: 1, attestation_retry_count: 1001}\n" TOK, 1, 65,
          "enclave.attestation_retry_count", "must be between 1 and 1000" },
        { "enclave: {cpu_count: 2, memory_mib: 1, cid: 3}\n" TOK, 1, 45, "enclave.cid",
          "must be between 4 and" },
        { "enclave: {launcher: local, token_binary: bin/enclave-token}\n" TOK, 1, 42, "enclave.token_binary",
          "must be an absolute path" },
        /* options */
        { ENC TOK "options: {service: apache2}\n", 3, 20, "options.service",
          "'apache2' is not nginx or httpd" },
        { ENC TOK "options: {service: Nginx}\n", 3, 20, "options.service", "is not nginx or httpd" },
        { ENC TOK "options: {force_start: yes}\n", 3, 24, "options.force_start",
          "expected true or false, got 'yes'" },
        { ENC TOK "options: {force_start: 'true'}\n", 3, 24, "options.force_start",
          "expected true or false, got a quoted string" },
        { ENC TOK "options: {force_start: [true]}\n", 3, 24, "options.force_start", "got a list" },
        { ENC TOK "options: {force_start: true, nginx_force_start: true}\n", 3, 30,
          "options.nginx_force_start", "duplicate key: 'force_start' at line 3 is the same setting" },
        { ENC TOK "options: {nginx_reload_wait_ms: 1, reload_wait_ms: 2}\n", 3, 36, "options.reload_wait_ms",
          "duplicate key: 'nginx_reload_wait_ms' at line 3 is the same setting" },
        { ENC TOK "options: {reload_wait_ms: -1}\n", 3, 27, "options.reload_wait_ms",
          "must not be negative" },
        { ENC TOK "options: {sync_interval_secs: 0}\n", 3, 31, "options.sync_interval_secs",
          "must be greater than zero" },
        { ENC TOK "options: {sync_interval_secs: -600}\n", 3, 31, "options.sync_interval_secs",
          "must not be negative, got -600" },
        { ENC TOK "options: {sync_interval_secs: 4294967296}\n", 3, 31, "options.sync_interval_secs",
          "must be between 1 and 4294967295" },
        { ENC TOK "options: {runtime_dir: run}\n", 3, 24, "options.runtime_dir",
          "must be an absolute path" },
        { ENC TOK "options: {runtime_dir: "
                  "/a/very/long/runtime/directory/name/that/does/not/fit/into/a/unix/socket/address/at/all/"
                  "not/at/all}\n",
          3, 24, "options.runtime_dir", "too long for the unix sockets" },
        { ENC TOK "options: {state_dir: ''}\n", 3, 22, "options.state_dir", "must not be empty" },
        { ENC TOK "options: {server_control: manual}\n", 3, 27, "options.server_control",
          "'manual' is not systemd or direct" },
        { ENC TOK "options: {server_control: direct, server_config: nginx.conf}\n", 3, 50,
          "options.server_config", "must be an absolute path" },
        { ENC TOK "options: {server_control: direct, server_pid_file: run/nginx.pid}\n", 3, 52,
          "options.server_pid_file", "must be an absolute path" },
        { ENC TOK "options: {service: \"ng\\tinx\"}\n", 3, 20, "options.service",
          "value contains a control character (byte 3)" },
        /* log */
        { ENC TOK "log: {level: Loud}\n", 3, 14, "log.level",
          "'Loud' is not a log level (Error, Warn, Info, Debug or Trace)" },
        { ENC TOK "log: {level: {a: b}}\n", 3, 14, "log.level", "expected a single value, got a mapping" },
        { ENC TOK "log: {enable_timestamp: 1}\n", 3, 25, "log.enable_timestamp",
          "expected true or false, got '1'" },
        /* tokens */
        { ENC "tokens: [a]\n", 2, 10, "tokens[0]", "expected a mapping, got a single value" },
        { ENC "tokens: [[a]]\n", 2, 10, "tokens[0]", "expected a mapping, got a list" },
        { ENC "tokens: [{source: {S3: {uri: s3://bucket/key}}}]\n", 2, 10, "tokens[0]",
          "missing required key 'label'" },
        { ENC "tokens: [{label: t}]\n", 2, 10, "tokens[0]", "missing required key 'source'" },
        { ENC "tokens:\n-\n", 3, 2, "tokens[0]", "missing required key 'label'" },
        { ENC "tokens: [{label: '', source: {S3: {uri: s3://bucket/key}}}]\n", 2, 18, "tokens[0].label",
          "must be 1 to 32 bytes long, got 0" },
        { ENC "tokens: [{label: 123456789012345678901234567890123, source: {S3: {uri: s3://bucket/key}}}]\n",
          2, 18, "tokens[0].label", "must be 1 to 32 bytes long, got 33" },
        { ENC "tokens: [{label: [a], source: {S3: {uri: s3://bucket/key}}}]\n", 2, 18, "tokens[0].label",
          "expected a single value, got a list" },
        { ENC "tokens: [{label: \"a\\nb\", source: {S3: {uri: s3://bucket/key}}}]\n", 2, 18,
          "tokens[0].label", "contains a control character" },
        { ENC "tokens: [{label: a, source: {S3: {uri: s3://bucket/key}}}, {label: b, source: {S3: {uri: "
              "s3://bucket/key}}},"
              " {label: a, source: {S3: {uri: s3://bucket/key}}}]\n",
          2, 118, "tokens[2].label", "label 'a' is already used by tokens[0] (line 2)" },
        { ENC "tokens: [{label: a, pin: '123', source: {S3: {uri: s3://bucket/key}}}]\n", 2, 26,
          "tokens[0].pin", "must be 4 to 64 bytes long, got 3" },
        { ENC "tokens: [{label: a, pin: '', source: {S3: {uri: s3://bucket/key}}}]\n", 2, 26,
          "tokens[0].pin", "must be 4 to 64 bytes long, got 0" },
        { ENC "tokens: [{label: a, pin: {x: 1}, source: {S3: {uri: s3://bucket/key}}}]\n", 2, 26,
          "tokens[0].pin", "expected a single value, got a mapping" },
        { ENC "tokens:\n- label: a\n  pin: |\n    1234\n  source: {S3: {uri: s3://bucket/key}}\n", 4, 8,
          "tokens[0].pin", "the secret value contains a control character (byte 5)" },
        { ENC "tokens: [{label: a, source: }]\n", 2, 29, "tokens[0].source", "needs a value" },
        { ENC "tokens: [{label: a, source: {}}]\n", 2, 29, "tokens[0].source",
          "no source given: expected one of Acm, S3 or File" },
        { ENC "tokens: [{label: a, source: s3://bucket/key}]\n", 2, 29, "tokens[0].source",
          "expected a mapping, got a single value" },
        { ENC "tokens: [{label: a, source: {Acm: {certificate_arn: ''}, S3: {uri: s3://bucket/key}}}]\n", 2,
          58, "tokens[0].source.S3", "a token has exactly one source, but 'Acm' is given too" },
        { ENC "tokens: [{label: a, source: {S3: {uri: s3://bucket/key}, S3: {uri: s3://bucket/key}}}]\n", 2,
          58, "tokens[0].source.S3", "duplicate key (first given at line 2)" },
        { ENC "tokens: [{label: a, source: {Acme: {certificate_arn: ''}}}]\n", 2, 30,
          "tokens[0].source.Acme", "unknown source (expected Acm, S3 or File)" },
        { ENC "tokens: [{label: a, source: {FileDb: {path: /db.json}}}]\n", 2, 30, "tokens[0].source.FileDb",
          "ACM's FileDb source is not supported" },
        { ENC "tokens: [{label: a, source: {Acm: }}]\n", 2, 35, "tokens[0].source.Acm",
          "missing required key 'certificate_arn'" },
        { ENC "tokens: [{label: a, source: {Acm: [x]}}]\n", 2, 35, "tokens[0].source.Acm",
          "expected a mapping, got a list" },
        { ENC "tokens: [{label: a, source: {Acm: {certificate_arn: "
              "arn:aws:acm:us-east-1:1234:certificate/x}}}]\n",
          2, 53, "tokens[0].source.Acm.certificate_arn", "is not an ACM certificate ARN" },
        { ENC "tokens: [{label: a, source: {Acm: {certificate_arn: "
              "arn:aws:s3:us-east-1:123456789012:certificate/x}}}]\n",
          2, 53, "tokens[0].source.Acm.certificate_arn", "is not an ACM certificate ARN" },
        { ENC "tokens: [{label: a, source: {Acm: {certificate_arn: "
              "arn:aws:acm:us-east-1:123456789012:cert/x}}}]\n",
          2, 53, "tokens[0].source.Acm.certificate_arn", "is not an ACM certificate ARN" },
        { ENC "tokens: [{label: a, source: {Acm: {certificate_arn: "
              "arn:aws:acm:us-east-1:123456789012:certificate/}}}]\n",
          2, 53, "tokens[0].source.Acm.certificate_arn", "is not an ACM certificate ARN" },
        { ENC "tokens: [{label: a, source: {Acm: {certificate_arn: "
              "'arn:aws:acm:us-east-1:123456789012:certificate/a:b'}}}]\n",
          2, 53, "tokens[0].source.Acm.certificate_arn", "is not an ACM certificate ARN" },
        { ENC "tokens: [{label: a, source: {Acm: {certificate_arn: '', bucket: Prod}}}]\n", 2, 65,
          "tokens[0].source.Acm.bucket", "'Prod' is not a bucket name suffix" },
        { ENC "tokens: [{label: a, source: {Acm: {certificate_arn: '', bucket: ''}}}]\n", 2, 65,
          "tokens[0].source.Acm.bucket", "is not a bucket name suffix" },
        { ENC "tokens: [{label: a, source: {S3: {}}}]\n", 2, 34, "tokens[0].source.S3",
          "missing required key 'uri'" },
        { ENC "tokens: [{label: a, source: {S3: {uri: https://bucket/key}}}]\n", 2, 40,
          "tokens[0].source.S3.uri", "'https://bucket/key' is not an S3 URI (s3://<bucket>/<key>)" },
        { ENC "tokens: [{label: a, source: {S3: {uri: s3://bucket}}}]\n", 2, 40, "tokens[0].source.S3.uri",
          "is not an S3 URI" },
        { ENC "tokens: [{label: a, source: {S3: {uri: s3://bucket/}}}]\n", 2, 40, "tokens[0].source.S3.uri",
          "is not an S3 URI" },
        { ENC "tokens: [{label: a, source: {S3: {uri: s3://ab/key}}}]\n", 2, 40, "tokens[0].source.S3.uri",
          "is not an S3 URI" },
        { ENC "tokens: [{label: a, source: {S3: {uri: s3://Bucket/key}}}]\n", 2, 40,
          "tokens[0].source.S3.uri", "is not an S3 URI" },
        { ENC "tokens: [{label: a, source: {S3: {uri: ''}}}]\n", 2, 40, "tokens[0].source.S3.uri",
          "is not an S3 URI" },
        { LOCAL "tokens: [{label: a, source: {File: {key: /k.pem}}}]\n", 2, 36, "tokens[0].source.File",
          "missing required key 'certificate'" },
        { LOCAL "tokens: [{label: a, source: {File: {certificate: /c.pem}}}]\n", 2, 36,
          "tokens[0].source.File", "missing required key 'key'" },
        { LOCAL "tokens: [{label: a, source: {File: {key: k.pem, certificate: /c.pem}}}]\n", 2, 42,
          "tokens[0].source.File.key", "must be an absolute path" },
        { ENC "tokens: [{label: a, source: {File: {key: /k.pem, certificate: /c.pem}}}]\n", 2, 30,
          "tokens[0].source.File", "only allowed with enclave.launcher: local" },
        { ENC "tokens: [{label: a, source: {S3: {uri: s3://bucket/key}}, target: {}}]\n", 2, 67,
          "tokens[0].target", "no target given: expected one of Conf or NginxStanza" },
        { ENC "tokens: [{label: a, source: {S3: {uri: s3://bucket/key}}, target: /etc/x.conf}]\n", 2, 67,
          "tokens[0].target", "expected a mapping, got a single value" },
        { ENC "tokens: [{label: a, source: {S3: {uri: s3://bucket/key}}, target: {Stanza: {path: /x}}}]\n",
          2, 68, "tokens[0].target.Stanza", "unknown target (expected Conf or NginxStanza)" },
        { ENC "tokens: [{label: a, source: {S3: {uri: s3://bucket/key}}, target: {Conf: {path: /x}, "
              "NginxStanza: {path: /y}}}]\n",
          2, 86, "tokens[0].target.NginxStanza", "a token has exactly one target, but 'Conf' is given too" },
        { ENC "tokens: [{label: a, source: {S3: {uri: s3://bucket/key}}, target: {Conf: {user: nginx}}}]\n",
          2, 74, "tokens[0].target.Conf", "missing required key 'path'" },
        { ENC "tokens: [{label: a, source: {S3: {uri: s3://bucket/key}}, target: {Conf: {path: x.conf}}}]\n",
          2, 81, "tokens[0].target.Conf.path", "must be an absolute path, got 'x.conf'" },
        { ENC "tokens: [{label: a, source: {S3: {uri: s3://bucket/key}}, target: {Conf: {path: /x, user: "
              "-x}}}]\n",
          2, 91, "tokens[0].target.Conf.user", "'-x' is not a valid user or group name" },
        { ENC "tokens: [{label: a, source: {S3: {uri: s3://bucket/key}}, target: {Conf: {path: /x, group: "
              "'a:b'}}}]\n",
          2, 92, "tokens[0].target.Conf.group", "'a:b' is not a valid user or group name" },
        { ENC "tokens: [{label: a, source: {S3: {uri: s3://bucket/key}}, target: {Conf: {path: /x, user: "
              "''}}}]\n",
          2, 91, "tokens[0].target.Conf.user", "must not be empty" },
        { ENC "tokens:\n- {label: a, source: {S3: {uri: s3://bucket/key}}, target: {Conf: {path: /x}}}\n"
              "- {label: b, source: {S3: {uri: s3://bucket/key}}, target: {NginxStanza: {path: /x}}}\n",
          4, 60, "tokens[1].target", "'/x' is already the target of tokens[0] (line 3)" },
        { ENC "tokens: [{label: a, source: {S3: {uri: s3://bucket/key}}, refresh_interval_secs: 0}]\n", 2,
          82, "tokens[0].refresh_interval_secs", "must be greater than zero" },
        { ENC "tokens: [{label: a, source: {S3: {uri: s3://bucket/key}}, refresh_interval_secs: -43200}]\n",
          2, 82, "tokens[0].refresh_interval_secs", "must not be negative" },
        { ENC "tokens: [{label: a, source: {S3: {uri: s3://bucket/key}}, refresh_interval_secs: '60'}]\n", 2,
          82, "tokens[0].refresh_interval_secs", "expected an integer, got a quoted string" },
        { ENC "tokens: [{label: a, label: b, source: {S3: {uri: s3://bucket/key}}}]\n", 2, 21,
          "tokens[0].label", "duplicate key (first given at line 2)" },
        /* the KMS key path */
        { "enclave: {cpu_count: 2, memory_mib: 1, nsm_simulator: true}\n" TOK, 1, 40,
          "enclave.nsm_simulator",
          "not allowed with enclave.launcher: nitro-cli: a simulated NSM makes attestation prove nothing" },
        { "enclave: {cpu_count: 2, memory_mib: 1, kms_proxy: 'unix:path=/k.sock'}\n" TOK, 1, 40,
          "enclave.kms_proxy", "not allowed with enclave.launcher: nitro-cli" },
        { "enclave: {cpu_count: 2, memory_mib: 1, kms_ca_file: /ca.pem}\n" TOK, 1, 40, "enclave.kms_ca_file",
          "not allowed with enclave.launcher: nitro-cli" },
        { "enclave: {launcher: local, kms_proxy: 'tcp:127.0.0.1:443'}\n" TOK, 1, 39, "enclave.kms_proxy",
          "'tcp:127.0.0.1:443' is not an address" },
        { "enclave: {launcher: local, kms_ca_file: ca.pem}\n" TOK, 1, 41, "enclave.kms_ca_file",
          "must be an absolute path" },
        { "enclave: {launcher: local, nsm_simulator: yes}\n" TOK, 1, 43, "enclave.nsm_simulator",
          "expected true or false, got 'yes'" },
        { "enclave: {launcher: local, expected_pcrs: [" PCR_A "]}\n" TOK, 1, 43, "enclave.expected_pcrs",
          "expected a mapping of PCR index to hex value, got a list" },
        { "enclave: {launcher: local, expected_pcrs: {0: " PCR_A ", 32: " PCR_A "}}\n" TOK, 1, 145,
          "enclave.expected_pcrs.32", "'32' is not a PCR index (0 to 31)" },
        { "enclave: {launcher: local, expected_pcrs: {0: " PCR_A ", PCR1: " PCR_A "}}\n" TOK, 1, 145,
          "enclave.expected_pcrs.PCR1", "'PCR1' is not a PCR index" },
        { "enclave: {launcher: local, expected_pcrs: {0: " PCR_A ", 01: " PCR_A "}}\n" TOK, 1, 145,
          "enclave.expected_pcrs.01", "'01' is not a PCR index" },
        { "enclave: {launcher: local, expected_pcrs: {0: " PCR_A ", -1: " PCR_A "}}\n" TOK, 1, 145,
          "enclave.expected_pcrs.-1", "'-1' is not a PCR index" },
        { "enclave: {launcher: local, expected_pcrs: {0: " PCR_A ", 0: " PCR_A "}}\n" TOK, 1, 145,
          "enclave.expected_pcrs.0", "PCR0 is given twice" },
        { "enclave: {launcher: local, expected_pcrs: {0: abcd}}\n" TOK, 1, 47, "enclave.expected_pcrs.0",
          "expected 96 hex digits (a SHA-384 measurement), got 4 characters" },
        { "enclave: {launcher: local, expected_pcrs: {0: " PCR_X "}}\n" TOK, 1, 47,
          "enclave.expected_pcrs.0", "got 96 characters that are not all hex digits" },
        { "enclave: {launcher: local, expected_pcrs: {0: [a]}}\n" TOK, 1, 47, "enclave.expected_pcrs.0",
          "expected a single value, got a list" },
        { "enclave: {launcher: local, expected_pcrs: {1: " PCR_A "}}\n" TOK, 1, 43, "enclave.expected_pcrs",
          "PCR0 (the image's measurement) must be among them" },
        { SIM "tokens: [{label: a, source: {File: {key: /k.pem, encrypted_key: /k.bin, certificate: "
              "/c.pem}}}]\n",
          2, 50, "tokens[0].source.File.encrypted_key",
          "give either key (a plaintext PEM key) or encrypted_key" },
        { SIM "tokens: [{label: a, source: {File: {certificate: /c.pem}}}]\n", 2, 36,
          "tokens[0].source.File", "missing required key 'key' or 'encrypted_key'" },
        { LOCAL "tokens: [{label: a, source: {File: {encrypted_key: /k.bin, certificate: /c.pem}}}]\n", 2,
          37, "tokens[0].source.File.encrypted_key",
          "a KMS ciphertext needs an attested enclave: with enclave.launcher: local set "
          "enclave.nsm_simulator: "
          "true" },
        { SIM "tokens: [{label: a, source: {File: {encrypted_key: k.bin, certificate: /c.pem}}}]\n", 2, 52,
          "tokens[0].source.File.encrypted_key", "must be an absolute path" },
        { ENC "tokens: [{label: a, source: {File: {key: /k.pem, certificate: /c.pem}}}]\n", 2, 30,
          "tokens[0].source.File",
          "plaintext private key and is only allowed with enclave.launcher: local" },
        { SIM "tokens: [{label: a, source: {File: {encrypted_key: /k.bin, certificate: /c.pem}}, "
              "refresh_interval_secs: 3600, ttl_secs: 3600}]\n",
          2, 122, "tokens[0].ttl_secs", "must be greater than refresh_interval_secs (3600)" },
        { SIM "tokens: [{label: a, source: {File: {encrypted_key: /k.bin, certificate: /c.pem}}, "
              "ttl_secs: 100}]\n",
          2, 93, "tokens[0].ttl_secs", "must be greater than refresh_interval_secs (43200)" },
        { SIM "tokens: [{label: a, source: {File: {encrypted_key: /k.bin, certificate: /c.pem}}, "
              "ttl_secs: 31622401}]\n",
          2, 93, "tokens[0].ttl_secs", "must be between 1 and 31622400" },
        { SIM "tokens: [{label: a, source: {File: {encrypted_key: /k.bin, certificate: /c.pem}}, "
              "refresh_interval_secs: 172800}]\n",
          2, 106, "tokens[0].refresh_interval_secs", "is not below the enclave's default TTL of 172800 s" },
        { "enclave: {launcher: local, nsm_simulator: true, expected_pcrs: {0: " PCR_A ", 16: " PCR_A
          "}}\n" TOK,
          1, 64, "enclave.expected_pcrs",
          "the NSM simulator reports PCR0-4 and PCR8 only, so PCR16 cannot be expected" },
        { ENC TOK "options: {region: US-East-1}\n", 3, 19, "options.region",
          "'US-East-1' is not an AWS region" },
        { ENC TOK "options: {region: ''}\n", 3, 19, "options.region", "is not an AWS region" },
        { ENC TOK "options: {metrics_listen: '0.0.0.0:9464'}\n", 3, 27, "options.metrics_listen",
          "'0.0.0.0:9464' is not a loopback address" },
        { ENC TOK "options: {metrics_listen: '10.1.2.3:9464'}\n", 3, 27, "options.metrics_listen",
          "is not a loopback address" },
        { ENC TOK "options: {metrics_listen: '[::]:9464'}\n", 3, 27, "options.metrics_listen",
          "is not a loopback address" },
        { ENC TOK "options: {metrics_listen: 'localhost:9464'}\n", 3, 27, "options.metrics_listen",
          "has a malformed address" },
        { ENC TOK "options: {metrics_listen: '127.0.0.1'}\n", 3, 27, "options.metrics_listen",
          "is neither an absolute path nor an address with a :PORT" },
        { ENC TOK "options: {metrics_listen: '127.0.0.1:0'}\n", 3, 27, "options.metrics_listen",
          "has no port 1..65535" },
        { ENC TOK "options: {metrics_listen: '127.0.0.1:65536'}\n", 3, 27, "options.metrics_listen",
          "has no port 1..65535" },
        { ENC TOK "options: {metrics_listen: '127.0.0.1:+80'}\n", 3, 27, "options.metrics_listen",
          "has no port 1..65535" },
        { ENC TOK "options: {metrics_listen: '[::1]9464'}\n", 3, 27, "options.metrics_listen",
          "is not [::1]:PORT" },
        { ENC TOK "options: {metrics_listen: metrics.sock}\n", 3, 27, "options.metrics_listen",
          "is neither an absolute path nor an address with a :PORT" },
        { ENC TOK "options: {metrics_listen: ''}\n", 3, 27, "options.metrics_listen", "is empty" },
        { ENC TOK "options: {metrics_listen: /" LONG_PATH "}\n", 3, 27, "options.metrics_listen",
          "is too long for a unix socket path" },
};

static bool check_error_case(const struct error_case *k) {
        _cleanup_(agent_config_diag_done) struct agent_config_diag d = {};
        struct agent_config *c = NULL;
        const struct agent_config_diag_entry *e;
        int r;

        r = parse(k->yaml, &c, &d);
        if (r != -EINVAL || c || d.n_errors == 0) {
                printf("# expected -EINVAL and errors, got %d, %zu errors\n", r, d.n_errors);
                agent_config_free(c);
                return false;
        }
        e = find_entry(&d, AGENT_CONFIG_ERROR, k->key);
        if (!e || e->line != k->line || e->column != k->column || !strstr(e->message, k->message)) {
                printf("# expected %u:%u '%s': ...%s...\n", k->line, k->column, k->key, k->message);
                dump_diag(&d);
                return false;
        }
        return true;
}

static void test_errors(void) {
        size_t failed = 0;

        for (size_t i = 0; i < ELEMENTSOF(error_cases); i++)
                if (!check_error_case(&error_cases[i])) {
                        printf("# error case %zu: %s\n", i, error_cases[i].yaml);
                        failed++;
                }
        ASSERT_EQ(failed, 0);
}

/* One run reports every problem, not only the first. */
static void test_many_errors(void) {
        _cleanup_(agent_config_diag_done) struct agent_config_diag d = {};
        _cleanup_(agent_config_freep) struct agent_config *c = NULL;
        _cleanup_free_ char *path = data_path("agent/many-errors.yaml");

        ASSERT_TRUE(path);
        ASSERT_ERR(agent_config_load(path, &c, &d), -EINVAL);
        ASSERT_TRUE(c == NULL);
        ASSERT_EQ(d.n_errors, 20);
        ASSERT_EQ(d.n_warnings, 1);
        ASSERT_EQ(d.n_entries, 21);
        ASSERT_FALSE(d.truncated);
        ASSERT_STREQ(d.filename, path);
}

/* ---- warnings ---- */

struct warning_case {
        const char *yaml;
        unsigned line, column;
        const char *key;
        const char *message;
};

static const struct warning_case warning_cases[] = {
        { ENC TOK "extra: 1\n", 3, 1, "extra", "unknown key, ignoring" },
        { ENC TOK "token: []\n", 3, 1, "token", "unknown key, ignoring (did you mean 'tokens'?)" },
        { ENC TOK "Options: {}\n", 3, 1, "Options", "did you mean 'options'?" },
        { "enclave: {cpu_count: 2, memory_mib: 256, cpu_cont: 1}\n" TOK, 1, 42, "enclave.cpu_cont",
          "did you mean 'cpu_count'?" },
        { ENC TOK "options: {sync_interval: 60}\n", 3, 11, "options.sync_interval",
          "unknown key, ignoring" },
        { ENC TOK "log: {level: Info, colour: true}\n", 3, 20, "log.colour", "unknown key, ignoring" },
        { ENC "tokens: [{label: t, source: {S3: {uri: s3://bucket/key}}, lable: x}]\n", 2, 59,
          "tokens[0].lable", "did you mean 'label'?" },
        { ENC "tokens: [{label: t, source: {S3: {uri: s3://bucket/key}}, pins: x}]\n", 2, 59,
          "tokens[0].pins", "did you mean 'pin'?" },
        { ENC "tokens: [{label: t, source: {S3: {uri: s3://bucket/key, region: x}}}]\n", 2, 57,
          "tokens[0].source.S3.region", "unknown key, ignoring" },
        { ENC "tokens: [{label: t, source: {S3: {uri: s3://bucket/key}}, target: {Conf: {path: /x, owner: "
              "a}}}]\n",
          2, 85, "tokens[0].target.Conf.owner", "unknown key, ignoring" },
        { ENC TOK "x: {deeply: [nested, {unknown: [stuff]}]}\n", 3, 1, "x", "unknown key, ignoring" },
        { ENC "tokens: [{label: t, source: {Acm: {certificate_arn: ''}}}]\n", 2, 53,
          "tokens[0].source.Acm.certificate_arn", "empty: this token cannot be provisioned" },
        { ENC "tokens: []\n", 2, 9, "tokens", "no tokens: the agent has nothing to provision" },
        { "enclave: {launcher: local, cid: 16}\n" TOK, 1, 28, "enclave.cid",
          "only used by the nitro-cli launcher" },
        { "enclave: {cpu_count: 2, memory_mib: 1, token_binary: /bin/t}\n" TOK, 1, 40,
          "enclave.token_binary", "only used by the local launcher" },
        { LOCAL
          "tokens: [{label: t, source: {File: {key: /k.pem, certificate: /c.pem}}, ttl_secs: 99999}]\n",
          2, 73, "tokens[0].ttl_secs",
          "only used with an encrypted key (a plaintext key never expires), ignoring" },
        { ENC TOK "options: {server_config: /etc/nginx/nginx.conf}\n", 3, 11, "options.server_config",
          "only used with server_control: direct" },
        { ENC TOK "options: {server_control: systemd, server_pid_file: /run/nginx.pid}\n", 3, 36,
          "options.server_pid_file", "only used with server_control: direct" },
        { ENC TOK "\"\\e[31mred\": 1\n", 3, 1, "?[31mred", "unknown key" },
};

static bool check_warning_case(const struct warning_case *k) {
        _cleanup_(agent_config_diag_done) struct agent_config_diag d = {};
        _cleanup_(agent_config_freep) struct agent_config *c = NULL;
        const struct agent_config_diag_entry *e;
        int r;

        r = parse(k->yaml, &c, &d);
        e = find_entry(&d, AGENT_CONFIG_WARNING, k->key);
        if (r < 0 || !c || d.n_errors != 0 || d.n_warnings != 1 || !e || e->line != k->line ||
            e->column != k->column || !strstr(e->message, k->message)) {
                printf("# expected %u:%u '%s': ...%s...\n", k->line, k->column, k->key, k->message);
                dump_diag(&d);
                return false;
        }
        return true;
}

static void test_warnings(void) {
        size_t failed = 0;

        for (size_t i = 0; i < ELEMENTSOF(warning_cases); i++)
                if (!check_warning_case(&warning_cases[i])) {
                        printf("# warning case %zu: %s", i, warning_cases[i].yaml);
                        failed++;
                }
        ASSERT_EQ(failed, 0);
}

/* ---- secrets ---- */

static bool diag_mentions(const struct agent_config_diag *d, const char *s) {
        for (size_t i = 0; i < d->n_entries; i++)
                if (strstr(d->entries[i].message, s) || strstr(d->entries[i].key, s))
                        return true;
        return false;
}

static void test_pin_never_printed(void) {
        static const char *const docs[] = {
                ENC "tokens: [{label: a, pin: "
                    "SECRETPINSECRETPINSECRETPINSECRETPINSECRETPINSECRETPINSECRETPIN123, "
                    "source: {S3: {uri: s3://bucket/key}}}]\n",
                ENC "tokens: [{label: a, pin: \"SECRET\\tPIN\", source: {S3: {uri: s3://bucket/key}}}]\n",
                ENC "tokens: [{label: a, pin: \"SEC\", source: {S3: {uri: s3://bucket/key}}}]\n",
                ENC "tokens: [{label: a, pin: SECRETPIN, pin: SECRETPIN2, source: {S3: {uri: "
                    "s3://bucket/key}}}]\n",
                ENC "tokens: [{label: a, pin: !!binary SECRETPIN, source: {S3: {uri: s3://bucket/key}}}]\n",
                ENC
                "tokens: [{label: a, pin: &SECRETPIN SECRETPIN, source: {S3: {uri: s3://bucket/key}}}]\n",
                ENC "tokens: [{label: a, pin: \"SECRETPIN, source: {S3: {uri: s3://bucket/key}}}]\n",
        };

        for (size_t i = 0; i < ELEMENTSOF(docs); i++) {
                _cleanup_(agent_config_diag_done) struct agent_config_diag d = {};
                struct agent_config *c = NULL;

                int r = parse(docs[i], &c, &d);

                if (r != -EINVAL)
                        printf("# doc %zu\n", i);
                ASSERT_ERR(r, -EINVAL);
                ASSERT_TRUE(c == NULL);
                ASSERT_TRUE(d.n_errors > 0);
                if (diag_mentions(&d, "SEC"))
                        dump_diag(&d);
                ASSERT_FALSE(diag_mentions(&d, "SEC"));
        }
}

/* A missing ": " in a flow mapping makes "pin SECRET" one unknown key: not shown either. */
static void test_pin_typo_hidden(void) {
        static const char *const docs[] = {
                ENC "tokens: [{label: a, pin SECRETPIN, source: {S3: {uri: s3://bucket/key}}}]\n",
                ENC "tokens: [{label: a, pin:SECRETPIN, source: {S3: {uri: s3://bucket/key}}}]\n",
                ENC "tokens: [{label: a, \"pin\\tSECRETPIN\": x, source: {S3: {uri: s3://bucket/key}}}]\n",
        };

        for (size_t i = 0; i < ELEMENTSOF(docs); i++) {
                _cleanup_(agent_config_diag_done) struct agent_config_diag d = {};
                _cleanup_(agent_config_freep) struct agent_config *c = NULL;
                const struct agent_config_diag_entry *e;

                ASSERT_OK(parse(docs[i], &c, &d));
                ASSERT_EQ(d.n_warnings, 1);
                e = find_entry(&d, AGENT_CONFIG_WARNING, "tokens[0].(hidden)");
                ASSERT_TRUE(e);
                ASSERT_EQ(e->line, 2);
                ASSERT_EQ(e->column, 21);
                ASSERT_TRUE(strstr(e->message, "unknown key starting with 'pin'"));
                ASSERT_FALSE(diag_mentions(&d, "SEC"));
        }
}

/* ---- bounds ---- */

static char *repeat_doc(const char *head, const char *item, size_t n, const char *tail) {
        char *s = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&s, &len);

        if (!f)
                return NULL;
        fputs(head, f);
        for (size_t i = 0; i < n; i++)
                fprintf(f, item, i);
        fputs(tail, f);
        if (fclose(f) != 0) {
                free(s);
                return NULL;
        }
        return s;
}

static void test_token_count(void) {
        _cleanup_free_ char *ok = NULL, *over = NULL;
        _cleanup_(agent_config_diag_done) struct agent_config_diag d = {};
        _cleanup_(agent_config_freep) struct agent_config *c = NULL;
        const struct agent_config_diag_entry *e;

        ok = repeat_doc(ENC "tokens:\n", "- {label: t%zu, source: {S3: {uri: s3://bucket/key}}}\n", 1024,
                        "");
        over = repeat_doc(ENC "tokens:\n", "- {label: t%zu, source: {S3: {uri: s3://bucket/key}}}\n", 1025,
                          "");
        ASSERT_TRUE(ok && over);
        ASSERT_OK(parse(ok, &c, &d));
        ASSERT_EQ(c->n_tokens, 1024);
        ASSERT_STREQ(c->tokens[1023].label, "t1023");
        c = agent_config_free(c);
        ASSERT_ERR(parse(over, &c, &d), -EINVAL);
        e = find_entry(&d, AGENT_CONFIG_ERROR, "tokens");
        ASSERT_TRUE(e);
        ASSERT_STREQ(e->message, "1025 tokens, at most 1024 are supported");
        ASSERT_EQ(e->line, 3);
}

static void test_depth(void) {
        _cleanup_(agent_config_diag_done) struct agent_config_diag d = {};
        _cleanup_(agent_config_freep) struct agent_config *c = NULL;
        _cleanup_free_ char *ok = NULL, *over = NULL;
        const struct agent_config_diag_entry *e;

        /* the top-level mapping is the first level */
        ok = repeat_doc(ENC TOK "x: ", "[", 15, "]]]]]]]]]]]]]]]\n");
        over = repeat_doc(ENC TOK "x: ", "[", 16, "]]]]]]]]]]]]]]]]\n");
        ASSERT_TRUE(ok && over);
        ASSERT_OK(parse(ok, &c, &d));
        ASSERT_EQ(d.n_warnings, 1);
        ASSERT_ERR(parse(over, &c, &d), -EINVAL);
        e = find_entry(&d, AGENT_CONFIG_ERROR, "x[0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]");
        ASSERT_TRUE(e);
        ASSERT_STREQ(e->message, "nested deeper than 16 levels");
        ASSERT_EQ(e->column, 19);
}

static void test_string_size(void) {
        _cleanup_(agent_config_diag_done) struct agent_config_diag d = {};
        _cleanup_(agent_config_freep) struct agent_config *c = NULL;
        _cleanup_free_ char *ok = NULL, *over = NULL, *key = NULL;
        const struct agent_config_diag_entry *e;

        ok = repeat_doc(ENC TOK "x: ", "a", 4096, "\n");
        over = repeat_doc(ENC TOK "x: ", "a", 4097, "\n");
        key = repeat_doc(ENC TOK, "k", 4097, ": 1\n");
        ASSERT_TRUE(ok && over && key);
        ASSERT_OK(parse(ok, &c, &d));
        ASSERT_ERR(parse(over, &c, &d), -EINVAL);
        e = find_entry(&d, AGENT_CONFIG_ERROR, "x");
        ASSERT_TRUE(e);
        ASSERT_STREQ(e->message, "value is longer than 4096 bytes");
        ASSERT_ERR(parse(key, &c, &d), -EINVAL);
        ASSERT_EQ(d.n_errors, 1);
        ASSERT_EQ(d.entries[0].line, 3);
}

static void test_node_count(void) {
        _cleanup_(agent_config_diag_done) struct agent_config_diag d = {};
        _cleanup_(agent_config_freep) struct agent_config *c = NULL;
        _cleanup_free_ char *over = NULL;

        over = repeat_doc(ENC TOK "x: [", "0,", 70000, "0]\n");
        ASSERT_TRUE(over);
        ASSERT_ERR(parse(over, &c, &d), -EINVAL);
        ASSERT_EQ(d.n_errors, 1);
        ASSERT_TRUE(strstr(d.entries[0].message, "too many YAML nodes (more than 65536)"));
        ASSERT_STREQ(d.entries[0].key, "x[65516]");
}

static void test_file_size(void) {
        _cleanup_(agent_config_diag_done) struct agent_config_diag d = {};
        _cleanup_(agent_config_freep) struct agent_config *c = NULL;
        _cleanup_free_ char *big = malloc(AGENT_CONFIG_MAX_FILE_SIZE + 1);

        ASSERT_TRUE(big);
        memset(big, '#', AGENT_CONFIG_MAX_FILE_SIZE + 1);
        ASSERT_ERR(agent_config_parse(big, AGENT_CONFIG_MAX_FILE_SIZE + 1, "big", &c, &d), -EMSGSIZE);
        ASSERT_EQ(d.n_errors, 1);
        ASSERT_EQ(d.entries[0].line, 0);
        /* exactly the limit is read (and is an empty document here) */
        ASSERT_ERR(agent_config_parse(big, AGENT_CONFIG_MAX_FILE_SIZE, "big", &c, &d), -EINVAL);
        ASSERT_STREQ(d.entries[0].message, "the configuration is empty");
}

static void test_diag_cap(void) {
        _cleanup_(agent_config_diag_done) struct agent_config_diag d = {};
        _cleanup_(agent_config_freep) struct agent_config *c = NULL;
        _cleanup_free_ char *doc = repeat_doc(ENC TOK, "unknown%zu: 1\n", 150, "");

        ASSERT_TRUE(doc);
        ASSERT_OK(parse(doc, &c, &d));
        ASSERT_EQ(d.n_warnings, 150);
        ASSERT_EQ(d.n_entries, AGENT_CONFIG_MAX_DIAGS);
        ASSERT_TRUE(d.truncated);
        ASSERT_STREQ(d.entries[99].key, "unknown99");
}

/* ---- API ---- */

static void test_api(void) {
        _cleanup_(agent_config_diag_done) struct agent_config_diag d = {};
        struct agent_config *c = NULL;
        const struct agent_config_diag_entry e = { AGENT_CONFIG_ERROR, 3, 7, (char *) "tokens[0].pin",
                                                   (char *) "must be 4 to 64 bytes long, got 3" };
        const struct agent_config_diag_entry nokey = { AGENT_CONFIG_WARNING, 0, 0, (char *) "",
                                                       (char *) "msg" };
        const struct agent_config_diag_entry bad = { (enum agent_config_severity) 7, 0, 0, (char *) "",
                                                     (char *) "" };
        _cleanup_free_ char *s1 = NULL, *s2 = NULL;
        char *s3 = NULL;

        ASSERT_ERR(agent_config_parse("a", 1, NULL, NULL, NULL), -EINVAL);
        ASSERT_ERR(agent_config_parse(NULL, 1, NULL, &c, NULL), -EINVAL);
        ASSERT_ERR(agent_config_parse(NULL, 0, NULL, &c, NULL), -EINVAL); /* empty */
        ASSERT_ERR(agent_config_load(NULL, &c, NULL), -EINVAL);
        ASSERT_OK(agent_config_parse(ENC TOK, strlen(ENC TOK), NULL, &c, NULL));
        ASSERT_TRUE(c);
        c = agent_config_free(c);
        ASSERT_TRUE(agent_config_free(NULL) == NULL);
        agent_config_diag_done(NULL);

        ASSERT_ERR(agent_config_parse("x", 1, "/etc/enclave-acm/acm.yaml", &c, &d), -EINVAL);
        ASSERT_OK(agent_config_diag_format(&d, &e, &s1));
        ASSERT_STREQ(
                s1,
                "/etc/enclave-acm/acm.yaml:3:7: error: tokens[0].pin: must be 4 to 64 bytes long, got 3");
        ASSERT_OK(agent_config_diag_format(NULL, &nokey, &s2));
        ASSERT_STREQ(s2, "acm.yaml: warning: msg");
        ASSERT_ERR(agent_config_diag_format(&d, &bad, &s3), -EINVAL);
        ASSERT_ERR(agent_config_diag_format(&d, NULL, &s3), -EINVAL);

        ASSERT_STREQ(agent_launcher_to_string(AGENT_LAUNCHER_NITRO_CLI), "nitro-cli");
        ASSERT_STREQ(agent_launcher_to_string(AGENT_LAUNCHER_LOCAL), "local");
        ASSERT_TRUE(agent_launcher_to_string(_AGENT_LAUNCHER_INVALID) == NULL);
        ASSERT_TRUE(agent_launcher_to_string(_AGENT_LAUNCHER_MAX) == NULL);
        ASSERT_STREQ(agent_service_to_string(AGENT_SERVICE_HTTPD), "httpd");
        ASSERT_STREQ(agent_server_control_to_string(AGENT_SERVER_CONTROL_DIRECT), "direct");
        ASSERT_STREQ(agent_source_kind_to_string(AGENT_SOURCE_FILE), "File");
        ASSERT_TRUE(agent_source_kind_to_string(_AGENT_SOURCE_INVALID) == NULL);
        ASSERT_STREQ(agent_target_kind_to_string(AGENT_TARGET_NGINX_STANZA), "NginxStanza");
        ASSERT_STREQ(agent_config_severity_to_string(AGENT_CONFIG_ERROR), "error");
}

/* The same diag struct, reused: each run starts from scratch. */
static void test_diag_reuse(void) {
        _cleanup_(agent_config_diag_done) struct agent_config_diag d = {};
        _cleanup_(agent_config_freep) struct agent_config *c = NULL;

        ASSERT_ERR(parse("x: [", &c, &d), -EINVAL);
        ASSERT_EQ(d.n_errors, 1);
        ASSERT_OK(parse(ENC TOK, &c, &d));
        ASSERT_EQ(d.n_errors, 0);
        ASSERT_EQ(d.n_entries, 0);
        ASSERT_STREQ(d.filename, "test.yaml");
}

/* ---- files ---- */

static char *write_temp(const char *dir, const char *name, const char *text, mode_t mode) {
        _cleanup_close_ int fd = -1;
        char *path;

        if (asprintf(&path, "%s/%s", dir, name) < 0)
                return NULL;
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t) strlen(text) || fchmod(fd, mode) < 0) {
                free(path);
                return NULL;
        }
        return path;
}

static void test_expected_pcrs(void) {
        _cleanup_(agent_config_diag_done) struct agent_config_diag d = {};
        _cleanup_(agent_config_freep) struct agent_config *c = NULL;
        const char *yaml = "enclave:\n"
                           "  launcher: local\n"
                           "  expected_pcrs:\n"
                           "    0: " PCR_A "\n"
                           "    1: \"" PCR_B "\"\n"
                           "    2: " PCR_A "\n"
                           "    8: " PCR_B "\n"
                           "    31: " PCR_A "\n" TOK;

        ASSERT_OK(parse(yaml, &c, &d));
        ASSERT_EQ(d.n_entries, 0);
        ASSERT_EQ(c->enclave.pcrs_origin, AGENT_PCRS_YAML);
        ASSERT_EQ(c->enclave.expected_pcrs.mask, 0x80000107u);
        ASSERT_EQ(c->enclave.expected_pcrs.value[0][0], 0x3a);
        ASSERT_EQ(c->enclave.expected_pcrs.value[0][47], 0x83);
        ASSERT_EQ(c->enclave.expected_pcrs.value[1][0], 0x9f); /* upper case, quoted */
        ASSERT_EQ(c->enclave.expected_pcrs.value[8][47], 0xee);
        ASSERT_EQ(c->enclave.expected_pcrs.value[31][1], 0x4b);
        ASSERT_EQ(c->enclave.expected_pcrs.value[3][0], 0);
        c = agent_config_free(c);
        /* none given, or an empty mapping: nothing expected */
        ASSERT_OK(parse(LOCAL TOK, &c, &d));
        ASSERT_EQ(c->enclave.pcrs_origin, AGENT_PCRS_NONE);
        ASSERT_EQ(c->enclave.expected_pcrs.mask, 0);
        c = agent_config_free(c);
        ASSERT_OK(parse("enclave: {launcher: local, expected_pcrs: {}}\n" TOK, &c, &d));
        ASSERT_EQ(c->enclave.pcrs_origin, AGENT_PCRS_NONE);
        ASSERT_STREQ(agent_pcrs_origin_to_string(AGENT_PCRS_YAML), "enclave.expected_pcrs");
        ASSERT_STREQ(agent_pcrs_origin_to_string(AGENT_PCRS_IMAGE), "image-measurements.json");
        ASSERT_TRUE(agent_pcrs_origin_to_string(_AGENT_PCRS_ORIGIN_MAX) == NULL);
}

#define MEASUREMENTS                                                                                   \
        "{\n  \"Measurements\": {\n    \"HashAlgorithm\": \"Sha384 { ... }\",\n    \"PCR0\": \"" PCR_B \
        "\",\n    \"PCR1\": \"" PCR_A "\",\n    \"PCR2\": \"" PCR_A "\"\n  }\n}\n"

/* image-measurements.json next to enclave.image_path; acm.yaml's expected_pcrs win; nitro-cli with an
 * encrypted key and no PCRs at all is refused. */
static void test_load_measurements(void) {
        char dir[] = "/tmp/test-agent-config.XXXXXX";
        _cleanup_free_ char *meas = NULL, *yaml_image = NULL, *yaml_both = NULL, *yaml_none = NULL,
                            *bad = NULL, *text = NULL;
        _cleanup_(agent_config_diag_done) struct agent_config_diag d = {};
        _cleanup_(agent_config_freep) struct agent_config *c = NULL;

        ASSERT_TRUE(mkdtemp(dir));
        ASSERT_TRUE(asprintf(&text,
                             "enclave: {cpu_count: 2, memory_mib: 256, image_path: %s/enclave.eif}\n"
                             "tokens: [{label: t, source: {File: {encrypted_key: /k.bin, certificate: "
                             "/c.pem}}}]\n",
                             dir) > 0);
        yaml_image = write_temp(dir, "image.yaml", text, 0600);
        free(text);
        ASSERT_TRUE(asprintf(&text,
                             "enclave: {cpu_count: 2, memory_mib: 256, image_path: %s/enclave.eif, "
                             "expected_pcrs: "
                             "{0: " PCR_A "}}\n"
                             "tokens: [{label: t, source: {File: {encrypted_key: /k.bin, certificate: "
                             "/c.pem}}}]\n",
                             dir) > 0);
        yaml_both = write_temp(dir, "both.yaml", text, 0600);
        yaml_none = write_temp(
                dir, "none.yaml",
                "enclave: {cpu_count: 2, memory_mib: 256, image_path: /nonexistent/enclave.eif}\n"
                "tokens: [{label: t, source: {File: {encrypted_key: /k.bin, certificate: /c.pem}}}]\n",
                0600);
        if (yaml_image && yaml_both && yaml_none) {
                /* no measurements file: nitro-cli with an encrypted key has nothing to check */
                ASSERT_ERR(agent_config_load(yaml_image, &c, &d), -EINVAL);
                ASSERT_EQ(d.n_errors, 1);
                ASSERT_STREQ(d.entries[0].key, "enclave.expected_pcrs");
                ASSERT_TRUE(strstr(d.entries[0].message,
                                   "token 't' has an encrypted_key, but nothing says which "
                                   "enclave image may receive the AWS credentials"));
                ASSERT_EQ(d.entries[0].line, 2);
                ASSERT_ERR(agent_config_load(yaml_none, &c, &d), -EINVAL);

                meas = write_temp(dir, "image-measurements.json", MEASUREMENTS, 0644);
                ASSERT_TRUE(meas);
                ASSERT_OK(agent_config_load(yaml_image, &c, &d));
                ASSERT_EQ(d.n_entries, 0);
                ASSERT_EQ(c->enclave.pcrs_origin, AGENT_PCRS_IMAGE);
                ASSERT_STREQ(c->enclave.measurements_path, meas);
                ASSERT_EQ(c->enclave.expected_pcrs.mask, 0x7u);
                ASSERT_EQ(c->enclave.expected_pcrs.value[0][0], 0x9f);
                c = agent_config_free(c);

                /* acm.yaml wins */
                ASSERT_OK(agent_config_load(yaml_both, &c, &d));
                ASSERT_EQ(c->enclave.pcrs_origin, AGENT_PCRS_YAML);
                ASSERT_EQ(c->enclave.expected_pcrs.mask, 0x1u);
                ASSERT_EQ(c->enclave.expected_pcrs.value[0][0], 0x3a);
                ASSERT_TRUE(c->enclave.measurements_path == NULL);
                ASSERT_STREQ(c->enclave.measurements_ignored, meas);
                c = agent_config_free(c);

                /* a broken measurements file is an error naming it and the place */
                (void) unlink(meas);
                bad = write_temp(dir, "image-measurements.json", "{\"Measurements\": {\"PCR0\": \"00\"}}",
                                 0644);
                ASSERT_TRUE(bad);
                ASSERT_ERR(agent_config_load(yaml_image, &c, &d), -EINVAL);
                ASSERT_EQ(d.n_errors, 1);
                ASSERT_STREQ(d.entries[0].key, "enclave.image_path");
                ASSERT_TRUE(strstr(d.entries[0].message,
                                   "image-measurements.json': line 1 column 27: a PCR value "
                                   "must be 96 hex digits"));
        }
        if (meas)
                (void) unlink(meas);
        if (yaml_image)
                (void) unlink(yaml_image);
        if (yaml_both)
                (void) unlink(yaml_both);
        if (yaml_none)
                (void) unlink(yaml_none);
        (void) rmdir(dir);
        ASSERT_TRUE(yaml_image && yaml_both && yaml_none);
}

static void test_load(void) {
        char dir[] = "/tmp/test-agent-config.XXXXXX";
        _cleanup_free_ char *priv = NULL, *pub = NULL, *nopin = NULL, *big = NULL, *bigtext = NULL;
        _cleanup_(agent_config_diag_done) struct agent_config_diag d = {};
        _cleanup_(agent_config_freep) struct agent_config *c = NULL;
        /* the local launcher: with nitro-cli and no expected PCRs an S3 token adds a warning of its own */
        const char *pin_doc = "enclave: {launcher: local}\n"
                              "tokens: [{label: a, pin: '1234', source: {S3: {uri: s3://bucket/key}}}]\n";

        ASSERT_TRUE(mkdtemp(dir));
        priv = write_temp(dir, "priv.yaml", pin_doc, 0600);
        pub = write_temp(dir, "pub.yaml", pin_doc, 0644);
        nopin = write_temp(dir, "nopin.yaml", "enclave: {launcher: local}\n" TOK, 0644);
        bigtext = repeat_doc("", "#", AGENT_CONFIG_MAX_FILE_SIZE + 1, "");
        big = bigtext ? write_temp(dir, "big.yaml", bigtext, 0600) : NULL;

        if (priv && pub && nopin && big) {
                ASSERT_OK(agent_config_load(priv, &c, &d));
                ASSERT_EQ(d.n_entries, 0);
                ASSERT_STREQ(d.filename, priv);
                c = agent_config_free(c);

                ASSERT_OK(agent_config_load(pub, &c, &d));
                ASSERT_EQ(d.n_warnings, 1);
                ASSERT_TRUE(strstr(d.entries[0].message, "holds PINs and is readable by every user"));
                ASSERT_EQ(d.entries[0].line, 0);
                c = agent_config_free(c);

                ASSERT_OK(agent_config_load(nopin, &c, &d));
                ASSERT_EQ(d.n_entries, 0);
                c = agent_config_free(c);

                ASSERT_ERR(agent_config_load(big, &c, &d), -EFBIG);
                ASSERT_STREQ(d.entries[0].message, "larger than 1 MiB: File too large");
                ASSERT_ERR(agent_config_load(dir, &c, &d), -EISDIR);
                ASSERT_ERR(agent_config_load("/dev/null", &c, &d), -EINVAL);
                ASSERT_STREQ(d.entries[0].message, "not a regular file: Invalid argument");
        }
        if (priv)
                (void) unlink(priv);
        if (pub)
                (void) unlink(pub);
        if (nopin)
                (void) unlink(nopin);
        if (big)
                (void) unlink(big);
        {
                _cleanup_free_ char *missing = NULL;

                if (asprintf(&missing, "%s/missing.yaml", dir) >= 0) {
                        ASSERT_ERR(agent_config_load(missing, &c, &d), -ENOENT);
                        ASSERT_EQ(d.n_errors, 1);
                        ASSERT_STREQ(d.entries[0].message, "cannot open: No such file or directory");
                }
        }
        (void) rmdir(dir);
        ASSERT_TRUE(priv && pub && nopin && big);
}

/* ---- mutations: every bit flip, every byte to 0x00 and 0xff, every truncation ---- */

static const char mutation_sample[] =
        "enclave: {launcher: local, cpu_count: 2, memory_mib: 256}\n"
        "options: {service: httpd, reload_wait_ms: 0, sync_interval_secs: 60}\n"
        "log: {level: Debug, enable_timestamp: true}\n"
        "tokens:\n"
        "  - label: web\n"
        "    pin: \"1234\"\n"
        "    source:\n"
        "      File: {key: /k.pem, certificate: /c.pem}\n"
        "    target:\n"
        "      Conf: {path: /etc/httpd/conf.d/ssl.conf, user: apache}\n"
        "    refresh_interval_secs: 3600\n"
        "  - label: s3\n"
        "    source: {S3: {uri: \"s3://bucket/key\"}}\n";

static const char mutation_sample_kms[] =
        "enclave:\n"
        "  launcher: local\n"
        "  nsm_simulator: true\n"
        "  kms_proxy: 'unix:path=/tmp/k.sock'\n"
        "  kms_ca_file: /tmp/ca.pem\n"
        "  expected_pcrs: {0: " PCR_A ", 8: " PCR_B "}\n"
        "options: {region: eu-west-1}\n"
        "tokens:\n"
        "  - label: web\n"
        "    source: {File: {encrypted_key: /k.bin, certificate: /c.pem}}\n"
        "    refresh_interval_secs: 3600\n"
        "    ttl_secs: 7200\n";

static bool parse_mutant(const char *buf, size_t len) {
        _cleanup_(agent_config_diag_done) struct agent_config_diag d = {};
        _cleanup_(agent_config_freep) struct agent_config *c = NULL;
        char *copy = malloc(len ? len : 1); /* exact size, so that valgrind sees reads past the end */
        int r;

        if (!copy)
                return false;
        memcpy(copy, buf, len);
        r = agent_config_parse(copy, len, "mutant", &c, &d);
        free(copy);
        if (r == -ENOMEM)
                return false;
        /* fail cleanly or succeed: an error result exactly when there are errors */
        return (r == 0) == (d.n_errors == 0) && (r == 0) == (c != NULL) && (r == 0 || r == -EINVAL);
}

static void mutate(const char *sample, size_t len) {
        _cleanup_free_ char *buf = malloc(len);

        ASSERT_TRUE(buf);
        for (size_t i = 0; i < len; i++) {
                for (unsigned bit = 0; bit < 8; bit++) {
                        memcpy(buf, sample, len);
                        buf[i] ^= (char) (1u << bit);
                        ASSERT_TRUE(parse_mutant(buf, len));
                }
                memcpy(buf, sample, len);
                buf[i] = 0;
                ASSERT_TRUE(parse_mutant(buf, len));
                buf[i] = (char) 0xff;
                ASSERT_TRUE(parse_mutant(buf, len));
                ASSERT_TRUE(parse_mutant(sample, i));
        }
}

static void test_mutations(void) {
        mutate(mutation_sample, strlen(mutation_sample));
}

static void test_mutations_kms(void) {
        _cleanup_(agent_config_diag_done) struct agent_config_diag d = {};
        _cleanup_(agent_config_freep) struct agent_config *c = NULL;

        /* the sample itself is valid */
        ASSERT_OK(parse(mutation_sample_kms, &c, &d));
        ASSERT_EQ(d.n_entries, 0);
        mutate(mutation_sample_kms, strlen(mutation_sample_kms));
}

static void test_truncations_acm(void) {
        static const char *const files[] = { "agent/acm-nginx.example.yaml",
                                             "agent/acm-httpd.example.yaml" };

        for (size_t f = 0; f < ELEMENTSOF(files); f++) {
                _cleanup_free_ char *text = NULL;
                size_t len;

                text = load_text(files[f], &len);
                ASSERT_TRUE(text);
                for (size_t i = 0; i <= len; i++)
                        ASSERT_TRUE(parse_mutant(text, i));
        }
}

TAP_MAIN(TEST("/agent/config/acm-nginx", test_acm_nginx), TEST("/agent/config/acm-httpd", test_acm_httpd),
         TEST("/agent/config/samples", test_samples),
         TEST("/agent/config/every-key-file", test_every_key_file),
         TEST("/agent/config/defaults", test_defaults), TEST("/agent/config/every-key", test_every_key),
         TEST("/agent/config/pin", test_pin), TEST("/agent/config/errors", test_errors),
         TEST("/agent/config/many-errors", test_many_errors), TEST("/agent/config/warnings", test_warnings),
         TEST("/agent/config/pin-never-printed", test_pin_never_printed),
         TEST("/agent/config/pin-typo-hidden", test_pin_typo_hidden),
         TEST("/agent/config/bounds/tokens", test_token_count),
         TEST("/agent/config/bounds/depth", test_depth),
         TEST("/agent/config/bounds/string", test_string_size),
         TEST("/agent/config/bounds/nodes", test_node_count),
         TEST("/agent/config/bounds/file", test_file_size), TEST("/agent/config/bounds/diag", test_diag_cap),
         TEST("/agent/config/api", test_api), TEST("/agent/config/diag-reuse", test_diag_reuse),
         TEST("/agent/config/load", test_load), TEST("/agent/config/mutations", test_mutations),
         TEST("/agent/config/expected-pcrs", test_expected_pcrs),
         TEST("/agent/config/load-measurements", test_load_measurements),
         TEST("/agent/config/mutations-kms", test_mutations_kms),
         TEST("/agent/config/truncations-acm", test_truncations_acm))
