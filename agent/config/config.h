/* acm.yaml: ACM for Nitro Enclaves' schema plus our extensions, parsed into struct agent_config. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/cleanup.h"
#include "common/secret.h"

#define AGENT_CONFIG_DEFAULT_PATH "/etc/enclave-acm/acm.yaml"

/* Defaults. ACM's, except the image: ACM's p11ne.eif does not speak our protocol. */
#define AGENT_CONFIG_DEFAULT_IMAGE_PATH              "/usr/share/enclave-acm/enclave-acm.eif"
#define AGENT_CONFIG_DEFAULT_BOOT_TIMEOUT_MS         5000
#define AGENT_CONFIG_DEFAULT_P11KIT_PORT             9999  /* the data channel */
#define AGENT_CONFIG_DEFAULT_RPC_PORT                10000 /* the control channel */
#define AGENT_CONFIG_DEFAULT_ATTESTATION_RETRY_COUNT 5
#define AGENT_CONFIG_DEFAULT_FORCE_START             true
#define AGENT_CONFIG_DEFAULT_RELOAD_WAIT_MS          1000
#define AGENT_CONFIG_DEFAULT_SYNC_INTERVAL_SECS      600
#define AGENT_CONFIG_DEFAULT_REFRESH_INTERVAL_SECS   43200
#define AGENT_CONFIG_DEFAULT_RUNTIME_DIR             "/run/enclave-acm"
#define AGENT_CONFIG_DEFAULT_STATE_DIR               "/var/lib/enclave-acm"
#define AGENT_CONFIG_DEFAULT_ACM_BUCKET              "prod"
#define AGENT_CONFIG_DEFAULT_HEALTH_INTERVAL_SECS    10
#define AGENT_CONFIG_DEFAULT_HEALTH_TIMEOUT_MS       3000
#define AGENT_CONFIG_DEFAULT_HEALTH_MISSES           3
#define AGENT_CONFIG_DEFAULT_EXPIRY_WARNING_DAYS     30
#define AGENT_CONFIG_DEFAULT_UPGRADE_DRAIN_SECS      5
#define AGENT_CONFIG_DEFAULT_UPGRADE_DRAIN_MAX_SECS  60

/* Bounds on untrusted input. */
#define AGENT_CONFIG_MAX_FILE_SIZE (1024u * 1024u)
#define AGENT_CONFIG_MAX_TOKENS    1024
#define AGENT_CONFIG_MAX_STRING    4096  /* bytes in any scalar, keys included */
#define AGENT_CONFIG_MAX_DEPTH     16    /* nested mappings and sequences */
#define AGENT_CONFIG_MAX_NODES     65536 /* scalars, mappings and sequences in the document */
#define AGENT_CONFIG_MAX_DIAGS     100   /* entries kept; the counters go on counting */
#define AGENT_CONFIG_LABEL_MIN     1
#define AGENT_CONFIG_LABEL_MAX     32
#define AGENT_CONFIG_PIN_MIN       4
#define AGENT_CONFIG_PIN_MAX       64
#define AGENT_CONFIG_REGION_MAX    32 /* us-east-1, ap-southeast-5, us-gov-west-1, cn-northwest-1 */
#define AGENT_CONFIG_TTL_MAX       (366u * 24 * 3600) /* the enclave's bound on a token's TTL */
#define AGENT_CONFIG_DEFAULT_TTL   (48u * 3600)       /* the enclave's TTL for KMS tokens when 0 is sent */

/* Expected PCR values of the enclave image (SHA-384). */
#define AGENT_PCR_COUNT               32
#define AGENT_PCR_LEN                 48
#define AGENT_IMAGE_MEASUREMENTS_FILE "image-measurements.json"
#define AGENT_IMAGE_MEASUREMENTS_MAX  (64u * 1024u)

enum agent_launcher {
        AGENT_LAUNCHER_NITRO_CLI, /* "nitro-cli" */
        AGENT_LAUNCHER_LOCAL,     /* "local": enclave-token as a child on unix sockets */
        _AGENT_LAUNCHER_MAX,
        _AGENT_LAUNCHER_INVALID = -EINVAL,
};

enum agent_service {
        AGENT_SERVICE_NGINX,
        AGENT_SERVICE_HTTPD,
        _AGENT_SERVICE_MAX,
        _AGENT_SERVICE_INVALID = -EINVAL,
};

enum agent_server_control {
        AGENT_SERVER_CONTROL_SYSTEMD, /* systemctl reload <service> */
        AGENT_SERVER_CONTROL_DIRECT,  /* the server binary itself (demo, tests) */
        _AGENT_SERVER_CONTROL_MAX,
        _AGENT_SERVER_CONTROL_INVALID = -EINVAL,
};

enum agent_source_kind {
        AGENT_SOURCE_ACM,  /* Acm: {certificate_arn, bucket} */
        AGENT_SOURCE_S3,   /* S3: {uri} */
        AGENT_SOURCE_FILE, /* File: {key | encrypted_key, certificate} */
        _AGENT_SOURCE_MAX,
        _AGENT_SOURCE_INVALID = -EINVAL,
};

/* The two spellings ACM accepts for the same target; kept so messages can use the user's word. */
enum agent_target_kind {
        AGENT_TARGET_CONF,
        AGENT_TARGET_NGINX_STANZA,
        _AGENT_TARGET_MAX,
        _AGENT_TARGET_INVALID = -EINVAL,
};

struct agent_pcr_set {
        uint32_t mask; /* bit i: PCR i is expected to hold value[i] */
        uint8_t value[AGENT_PCR_COUNT][AGENT_PCR_LEN];
};

/* Where the expected PCRs came from, for messages. */
enum agent_pcrs_origin {
        AGENT_PCRS_NONE,
        AGENT_PCRS_YAML,  /* enclave.expected_pcrs */
        AGENT_PCRS_IMAGE, /* image-measurements.json next to enclave.image_path */
        _AGENT_PCRS_ORIGIN_MAX,
        _AGENT_PCRS_ORIGIN_INVALID = -EINVAL,
};

struct agent_config_enclave {
        enum agent_launcher launcher;
        uint64_t cpu_count;  /* 0 when not given (allowed with the local launcher only) */
        uint64_t memory_mib; /* likewise */
        char *image_path;
        uint64_t boot_timeout_ms;
        uint32_t p11kit_port;
        uint32_t rpc_port;
        uint64_t attestation_retry_count; /* total attempts */
        uint32_t cid;                     /* 0: let nitro-cli choose */
        char *token_binary;               /* local launcher; NULL: the installed enclave-token */
        /* What the enclave's attestation document must show before credentials are sent. */
        struct agent_pcr_set expected_pcrs;
        enum agent_pcrs_origin pcrs_origin;
        char *measurements_path;    /* AGENT_PCRS_IMAGE: the file they were read from */
        char *measurements_ignored; /* AGENT_PCRS_YAML and a measurements file exists: its path */
        bool nsm_simulator; /* local launcher: enclave-token --nsm-simulator (attestation proves nothing) */
        char *kms_proxy;    /* local launcher: enclave-token --kms-proxy ADDRESS; NULL: its default */
        char *kms_ca_file;  /* local launcher: enclave-token --kms-ca FILE; NULL: the system's CAs */
};

struct agent_config_options {
        enum agent_service service;
        bool force_start;
        uint64_t reload_wait_ms;
        uint64_t sync_interval_secs;
        char *runtime_dir;
        char *state_dir;
        /* PEM bundle trusted for S3's certificate instead of the system's; NULL: the system's */
        char *s3_ca_file;
        enum agent_server_control server_control;
        char *server_config; /* direct mode; NULL: the server's built-in default */
        /* direct mode: the pid file that tells whether the server runs; NULL: found from server_config
         * (webapply_pid_file_find()) */
        char *server_pid_file;
        char *region;        /* the KMS region; NULL: $AWS_REGION, else $AWS_DEFAULT_REGION, else IMDS */
        char *imds_endpoint; /* NULL: AWS_IMDS_DEFAULT_ENDPOINT; tests point it at a loopback fake */
        char *s3_endpoint;   /* NULL: https://s3.<region>.<suffix>; tests: a loopback fake */
        /* Health (agent/health.h): in-band pings every health_interval_secs (0: off), each answered
         * within health_timeout_ms on both channels; health_misses in a row relaunch the enclave. */
        uint64_t health_interval_secs;
        uint64_t health_timeout_ms;
        uint64_t health_misses;
        uint64_t expiry_warning_days; /* a certificate expiring within this makes health "degraded" */
        /* Enclave upgrade: the old enclave is stopped once it served nothing for upgrade_drain_secs, at
         * the latest after upgrade_drain_max_secs. */
        uint64_t upgrade_drain_secs;
        uint64_t upgrade_drain_max_secs;
        char *metrics_listen; /* NULL: no /metrics endpoint; else a unix socket path or a loopback address */
};

struct agent_config_log {
        int level; /* syslog priority, LOG_INFO by default */
        bool enable_timestamp;
};

struct agent_config_source {
        enum agent_source_kind kind;
        char *certificate_arn; /* Acm; may be "" (ACM's examples ship it empty; warned) */
        char *bucket;          /* Acm; the default filled in */
        char *uri;             /* S3: s3://bucket/key */
        char *key;             /* File: PEM private key (plaintext; local launcher only) */
        char *encrypted_key;   /* File: a KMS CiphertextBlob of the PEM key (raw or base64); or key */
        char *certificate;     /* File: PEM leaf followed by its chain */
};

struct agent_config_target {
        bool present; /* false: no web-server file is touched */
        enum agent_target_kind kind;
        char *path;
        char *user;  /* NULL: owner unchanged */
        char *group; /* NULL: group unchanged */
};

struct agent_config_token {
        char *label;
        struct secret_buf *pin; /* NULL: generated once and persisted under state_dir */
        struct agent_config_source source;
        struct agent_config_target target;
        uint64_t refresh_interval_secs;
        uint64_t ttl_secs;     /* TOKEN_ADD / TOKEN_REFRESH ttl; 0: the enclave's default (48 h) */
        unsigned line, column; /* where the token's entry starts, for later messages */
};

struct agent_config {
        struct agent_config_enclave enclave;
        struct agent_config_options options;
        struct agent_config_log log;
        struct agent_config_token *tokens;
        size_t n_tokens;
};

enum agent_config_severity {
        AGENT_CONFIG_WARNING,
        AGENT_CONFIG_ERROR,
        _AGENT_CONFIG_SEVERITY_MAX,
        _AGENT_CONFIG_SEVERITY_INVALID = -EINVAL,
};

struct agent_config_diag_entry {
        enum agent_config_severity severity;
        unsigned line, column; /* 1-based; 0 when the problem has no place in the text */
        char *key;             /* "tokens[0].source.Acm.certificate_arn", "" for the whole file */
        char *message;         /* never contains a PIN; control characters replaced by '?' */
};

/* What one parse found. Zero-initialise; parse/load reset it before use. */
struct agent_config_diag {
        char *filename;
        struct agent_config_diag_entry *entries; /* at most AGENT_CONFIG_MAX_DIAGS, in file order-ish */
        size_t n_entries;
        size_t n_errors; /* all of them, also those past the cap */
        size_t n_warnings;
        bool truncated; /* some entries were not kept */
};

/* Parse a document. filename is only used in messages (NULL: "acm.yaml").
 * 0 and *ret on success (warnings possible); -EINVAL when the document has errors (see diag);
 * -EMSGSIZE when len > AGENT_CONFIG_MAX_FILE_SIZE; -ENOMEM. diag may be NULL. */
_must_check_ int agent_config_parse(const char *text, size_t len, const char *filename,
                                    struct agent_config **ret, struct agent_config_diag *diag);
/* Read and parse a file (a regular file of at most AGENT_CONFIG_MAX_FILE_SIZE bytes). Also the
 * errors of open()/read() as negative errno, -EFBIG for a larger file, each with a diag entry.
 * Warns when the file holds PINs and is readable by others. */
_must_check_ int agent_config_load(const char *path, struct agent_config **ret,
                                   struct agent_config_diag *diag);

/* Wipes the PINs; accepts NULL; returns NULL. */
struct agent_config *agent_config_free(struct agent_config *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct agent_config *, agent_config_free);

/* Frees the entries; the struct is zeroed and can be reused. Usable as _cleanup_(agent_config_diag_done). */
void agent_config_diag_done(struct agent_config_diag *d);
/* "file:line:column: error: key: message" (the place and key left out when unknown). */
_must_check_ int agent_config_diag_format(const struct agent_config_diag *d,
                                          const struct agent_config_diag_entry *e, char **ret);

const char *agent_launcher_to_string(enum agent_launcher l);
const char *agent_service_to_string(enum agent_service s);
const char *agent_server_control_to_string(enum agent_server_control s);
const char *agent_source_kind_to_string(enum agent_source_kind k);
const char *agent_target_kind_to_string(enum agent_target_kind k);
const char *agent_config_severity_to_string(enum agent_config_severity s);
const char *agent_pcrs_origin_to_string(enum agent_pcrs_origin o);

/* Does this token's key reach the enclave as a KMS ciphertext (File encrypted_key, Acm, S3)? */
static inline bool agent_config_token_encrypted(const struct agent_config_token *t) {
        return t->source.kind == AGENT_SOURCE_ACM || t->source.kind == AGENT_SOURCE_S3 ||
               (t->source.kind == AGENT_SOURCE_FILE && t->source.encrypted_key);
}

/* nitro-cli's measurements, `{"Measurements": {"HashAlgorithm": "Sha384 { ... }", "PCR0": "hex", "PCR1":
 * "hex", "PCR2": "hex", "PCR8"?: "hex"}}` (build-enclave and describe-eif print it; other top-level keys
 * of describe-eif are skipped). PCR0..2 are required; HashAlgorithm must be Sha384; each value 96 hex
 * digits; duplicates, other keys inside Measurements, trailing bytes refused. Pure and bounded
 * (AGENT_IMAGE_MEASUREMENTS_MAX). 0 and *ret, or -EBADMSG / -E2BIG / -ENOMEM with *ret_error (may be
 * NULL) saying where: "line 3 column 12: ...". */
_must_check_ int agent_image_measurements_parse(const char *text, size_t len, struct agent_pcr_set *ret,
                                                char **ret_error);

/* An AWS region name as aws_region_validate() takes it (a-z 0-9 and single '-' between parts, starting
 * with a letter), at most AGENT_CONFIG_REGION_MAX bytes. Pure. */
bool agent_region_valid(const char *s);

/* Parses 2*AGENT_PCR_LEN hex digits (either case) into out. -EINVAL otherwise. Pure. */
_must_check_ int agent_pcr_from_hex(const char *s, size_t len, uint8_t out[static AGENT_PCR_LEN]);
