/* acm.yaml: the top level (enclave, options, log), defaults, and reading the file. */
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include "agent/config/config-internal.h"
#include "agent/metrics.h"
#include "aws/endpoint.h"
#include "aws/imds-client.h"
#include "aws/s3.h"
#include "common/log.h"
#include "common/secret.h"
#include "common/transport.h"

/* <runtime_dir>/control.1.sock (an upgrade's second enclave) must fit a unix socket address. */
#define RUNTIME_DIR_MAX (sizeof(((struct sockaddr_un *) 0)->sun_path) - 1 - strlen("/control.1.sock"))

enum { ROOT_ENCLAVE, ROOT_OPTIONS, ROOT_LOG, ROOT_TOKENS, _ROOT_SLOT_MAX };
enum {
        ENCLAVE_LAUNCHER,
        ENCLAVE_CPU_COUNT,
        ENCLAVE_MEMORY_MIB,
        ENCLAVE_IMAGE_PATH,
        ENCLAVE_BOOT_TIMEOUT_MS,
        ENCLAVE_P11KIT_PORT,
        ENCLAVE_RPC_PORT,
        ENCLAVE_ATTESTATION_RETRY_COUNT,
        ENCLAVE_CID,
        ENCLAVE_TOKEN_BINARY,
        ENCLAVE_EXPECTED_PCRS,
        ENCLAVE_NSM_SIMULATOR,
        ENCLAVE_KMS_PROXY,
        ENCLAVE_KMS_CA_FILE,
        _ENCLAVE_SLOT_MAX,
};
enum {
        OPTIONS_SERVICE,
        OPTIONS_FORCE_START,
        OPTIONS_RELOAD_WAIT_MS,
        OPTIONS_SYNC_INTERVAL_SECS,
        OPTIONS_RUNTIME_DIR,
        OPTIONS_STATE_DIR,
        OPTIONS_SERVER_CONTROL,
        OPTIONS_SERVER_CONFIG,
        OPTIONS_SERVER_PID_FILE,
        OPTIONS_S3_CA_FILE,
        OPTIONS_REGION,
        OPTIONS_IMDS_ENDPOINT,
        OPTIONS_S3_ENDPOINT,
        OPTIONS_HEALTH_INTERVAL_SECS,
        OPTIONS_HEALTH_TIMEOUT_MS,
        OPTIONS_HEALTH_MISSES,
        OPTIONS_EXPIRY_WARNING_DAYS,
        OPTIONS_UPGRADE_DRAIN_SECS,
        OPTIONS_UPGRADE_DRAIN_MAX_SECS,
        OPTIONS_METRICS_LISTEN,
        _OPTIONS_SLOT_MAX,
};
enum { LOG_SLOT_LEVEL, LOG_SLOT_ENABLE_TIMESTAMP, _LOG_SLOT_MAX };

static const char *const launcher_names[_AGENT_LAUNCHER_MAX] = {
        [AGENT_LAUNCHER_NITRO_CLI] = "nitro-cli",
        [AGENT_LAUNCHER_LOCAL] = "local",
};
static const char *const service_names[_AGENT_SERVICE_MAX] = {
        [AGENT_SERVICE_NGINX] = "nginx",
        [AGENT_SERVICE_HTTPD] = "httpd",
};
static const char *const server_control_names[_AGENT_SERVER_CONTROL_MAX] = {
        [AGENT_SERVER_CONTROL_SYSTEMD] = "systemd",
        [AGENT_SERVER_CONTROL_DIRECT] = "direct",
};
static const char *const source_kind_names[_AGENT_SOURCE_MAX] = {
        [AGENT_SOURCE_ACM] = "Acm",
        [AGENT_SOURCE_S3] = "S3",
        [AGENT_SOURCE_FILE] = "File",
};
static const char *const target_kind_names[_AGENT_TARGET_MAX] = {
        [AGENT_TARGET_CONF] = "Conf",
        [AGENT_TARGET_NGINX_STANZA] = "NginxStanza",
};

#define TO_STRING(names, v) ((int) (v) >= 0 && (size_t) (v) < ELEMENTSOF(names) ? names[v] : NULL)

const char *agent_launcher_to_string(enum agent_launcher l) {
        return TO_STRING(launcher_names, l);
}
const char *agent_service_to_string(enum agent_service s) {
        return TO_STRING(service_names, s);
}
const char *agent_server_control_to_string(enum agent_server_control s) {
        return TO_STRING(server_control_names, s);
}
const char *agent_source_kind_to_string(enum agent_source_kind k) {
        return TO_STRING(source_kind_names, k);
}
const char *agent_target_kind_to_string(enum agent_target_kind k) {
        return TO_STRING(target_kind_names, k);
}

static const char *const pcrs_origin_names[_AGENT_PCRS_ORIGIN_MAX] = {
        [AGENT_PCRS_NONE] = "none",
        [AGENT_PCRS_YAML] = "enclave.expected_pcrs",
        [AGENT_PCRS_IMAGE] = AGENT_IMAGE_MEASUREMENTS_FILE,
};

const char *agent_pcrs_origin_to_string(enum agent_pcrs_origin o) {
        return TO_STRING(pcrs_origin_names, o);
}

/* enclave.expected_pcrs: {0: HEX, 1: HEX, 2: HEX, 8: HEX}; indexes 0..31, 96 hex digits each. */
static int parse_expected_pcrs(struct config_ctx *c, const struct config_field *f, const struct ynode *v,
                               const char *path, void *obj) {
        struct agent_pcr_set set = {};
        int r;

        if (v->type != YNODE_MAPPING)
                return config_error(c, v, path, "expected a mapping of PCR index to hex value, got %s",
                                    config_node_kind(v));
        for (size_t i = 0; i + 1 < v->n_items; i += 2) {
                const struct ynode *key = v->items[i], *val = v->items[i + 1];
                _cleanup_free_ char *kpath = config_path_join(path, key->value);
                unsigned long idx = 0;
                char *end = NULL;

                if (!kpath)
                        return -ENOMEM;
                errno = 0;
                if (key->len > 0 && key->len <= 2 && key->value[0] >= '0' && key->value[0] <= '9' &&
                    (key->len == 1 || key->value[0] != '0'))
                        idx = strtoul(key->value, &end, 10);
                if (!end || *end || errno || idx >= AGENT_PCR_COUNT) {
                        r = config_error(c, key, kpath, "'%.*s%s' is not a PCR index (0 to %d)",
                                         CONFIG_VALUE(key->value, key->len), AGENT_PCR_COUNT - 1);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (set.mask & (1u << idx)) {
                        r = config_error(c, key, kpath, "PCR%lu is given twice", idx);
                        if (r < 0)
                                return r;
                        continue;
                }
                r = config_check_string(c, val, kpath, false);
                if (r < 0)
                        return r;
                if (r == 0)
                        continue;
                if (agent_pcr_from_hex(val->value, val->len, set.value[idx]) < 0) {
                        r = config_error(c, val, kpath,
                                         "expected %d hex digits (a SHA-384 measurement), got %zu "
                                         "characters%s",
                                         2 * AGENT_PCR_LEN, val->len,
                                         val->len == 2 * AGENT_PCR_LEN ? " that are not all hex digits"
                                                                       : "");
                        if (r < 0)
                                return r;
                        continue;
                }
                set.mask |= 1u << idx;
        }
        if (v->n_items > 0 && set.mask != 0 && !(set.mask & 1u)) {
                r = config_error(c, v, path, "PCR0 (the image's measurement) must be among them");
                if (r < 0)
                        return r;
        }
        ((struct agent_config_enclave *) obj)->expected_pcrs = set;
        ((struct agent_config_enclave *) obj)->pcrs_origin = set.mask ? AGENT_PCRS_YAML : AGENT_PCRS_NONE;
        return 0;
}

/* enclave.kms_proxy: an address enclave-token connects to for KMS (common/transport.h syntax). */
static int parse_address(struct config_ctx *c, const struct config_field *f, const struct ynode *v,
                         const char *path, void *obj) {
        struct transport_addr a;
        int r;

        r = config_check_string(c, v, path, false);
        if (r <= 0)
                return r;
        if (transport_addr_parse(v->value, &a) < 0)
                return config_error(c, v, path,
                                    "'%.*s%s' is not an address (unix:path=/absolute/path or "
                                    "vsock:cid=N;port=P)",
                                    CONFIG_VALUE(v->value, v->len));
        return config_parse_string(c, f, v, path, obj);
}

/* The rule of aws/ (the enclave checks the region it is sent with it too), within KMS_BEGIN's bound. */
bool agent_region_valid(const char *s) {
        return s && strlen(s) <= AGENT_CONFIG_REGION_MAX && aws_region_validate(s, NULL) >= 0;
}

/* options.region: an AWS region name (us-east-1, us-gov-west-1, cn-north-1). */
static int parse_region(struct config_ctx *c, const struct config_field *f, const struct ynode *v,
                        const char *path, void *obj) {
        int r;

        r = config_check_string(c, v, path, false);
        if (r <= 0)
                return r;
        if (!agent_region_valid(v->value))
                return config_error(c, v, path, "'%.*s%s' is not an AWS region (like us-east-1)",
                                    CONFIG_VALUE(v->value, v->len));
        return config_parse_string(c, f, v, path, obj);
}

/* options.imds_endpoint: http://host[:port], for tests and the demo (a loopback fake). */
static int parse_imds_endpoint(struct config_ctx *c, const struct config_field *f, const struct ynode *v,
                               const char *path, void *obj) {
        int r;

        r = config_check_string(c, v, path, false);
        if (r <= 0)
                return r;
        if (aws_imds_endpoint_validate(v->value, NULL) < 0)
                return config_error(c, v, path, "'%.*s%s' is not http://host[:port] (no path)",
                                    CONFIG_VALUE(v->value, v->len));
        return config_parse_string(c, f, v, path, obj);
}

/* options.s3_endpoint: https://host[:port] (or http:// to a loopback fake), path-style requests. */
static int parse_s3_endpoint(struct config_ctx *c, const struct config_field *f, const struct ynode *v,
                             const char *path, void *obj) {
        int r;

        r = config_check_string(c, v, path, false);
        if (r <= 0)
                return r;
        if (aws_s3_endpoint_validate(v->value, NULL) < 0)
                return config_error(c, v, path,
                                    "'%.*s%s' is not https://host[:port] (http:// only to 127.0.0.1 or "
                                    "localhost; no path)",
                                    CONFIG_VALUE(v->value, v->len));
        return config_parse_string(c, f, v, path, obj);
}

/* options.metrics_listen: an absolute unix socket path, 127.x.y.z:PORT or [::1]:PORT (no authentication:
 * loopback only). */
static int parse_metrics_listen(struct config_ctx *c, const struct config_field *f, const struct ynode *v,
                                const char *path, void *obj) {
        struct metrics_listen l;
        const char *why = NULL;
        int r;

        r = config_check_string(c, v, path, false);
        if (r <= 0)
                return r;
        if (metrics_listen_parse(v->value, &l, &why) < 0)
                return config_error(c, v, path,
                                    "'%.*s%s' %s (expected an absolute unix socket path, 127.0.0.1:PORT or "
                                    "[::1]:PORT)",
                                    CONFIG_VALUE(v->value, v->len), why);
        return config_parse_string(c, f, v, path, obj);
}

static int parse_nothing(struct config_ctx *c, const struct config_field *f, const struct ynode *v,
                         const char *path, void *obj) {
        return 0; /* the sections are parsed in a fixed order afterwards */
}

static int parse_log_level(struct config_ctx *c, const struct config_field *f, const struct ynode *v,
                           const char *path, void *obj) {
        int r;

        r = config_check_string(c, v, path, false);
        if (r <= 0)
                return r;
        r = log_level_from_string(v->value);
        if (r < 0)
                return config_error(c, v, path,
                                    "'%.*s%s' is not a log level (Error, Warn, Info, Debug or Trace)",
                                    CONFIG_VALUE(v->value, v->len));
        ((struct agent_config_log *) obj)->level = r;
        return 0;
}

#define ENUM(table) .names = (table), .n_names = ELEMENTSOF(table)

static const struct config_field root_fields[] = {
        { "enclave", ROOT_ENCLAVE, parse_nothing, .flags = CONFIG_REQUIRED },
        { "options", ROOT_OPTIONS, parse_nothing },
        { "log", ROOT_LOG, parse_nothing },
        { "tokens", ROOT_TOKENS, parse_nothing, .flags = CONFIG_REQUIRED },
};

#define E(field) offsetof(struct agent_config_enclave, field)
static const struct config_field enclave_fields[] = {
        { "launcher", ENCLAVE_LAUNCHER, config_parse_enum, E(launcher), ENUM(launcher_names) },
        { "cpu_count", ENCLAVE_CPU_COUNT, config_parse_u64, E(cpu_count), 1, 4096 },
        { "memory_mib", ENCLAVE_MEMORY_MIB, config_parse_u64, E(memory_mib), 1, UINT32_MAX },
        { "image_path", ENCLAVE_IMAGE_PATH, config_parse_string, E(image_path), .flags = CONFIG_ABSOLUTE },
        { "boot_timeout_ms", ENCLAVE_BOOT_TIMEOUT_MS, config_parse_u64, E(boot_timeout_ms), 1, UINT32_MAX },
        { "p11kit_port", ENCLAVE_P11KIT_PORT, config_parse_u32, E(p11kit_port), 1, UINT32_MAX - 1 },
        { "rpc_port", ENCLAVE_RPC_PORT, config_parse_u32, E(rpc_port), 1, UINT32_MAX - 1 },
        { "attestation_retry_count", ENCLAVE_ATTESTATION_RETRY_COUNT, config_parse_u64,
          E(attestation_retry_count), 1, 1000 },
        /* 0..2 are reserved and 3 is the parent; UINT32_MAX is VMADDR_CID_ANY */
        { "cid", ENCLAVE_CID, config_parse_u32, E(cid), 4, UINT32_MAX - 1 },
        { "token_binary", ENCLAVE_TOKEN_BINARY, config_parse_string, E(token_binary),
          .flags = CONFIG_ABSOLUTE },
        { "expected_pcrs", ENCLAVE_EXPECTED_PCRS, parse_expected_pcrs },
        { "nsm_simulator", ENCLAVE_NSM_SIMULATOR, config_parse_bool, E(nsm_simulator) },
        { "kms_proxy", ENCLAVE_KMS_PROXY, parse_address, E(kms_proxy) },
        { "kms_ca_file", ENCLAVE_KMS_CA_FILE, config_parse_string, E(kms_ca_file),
          .flags = CONFIG_ABSOLUTE },
};
#undef E

#define O(field) offsetof(struct agent_config_options, field)
static const struct config_field options_fields[] = {
        { "service", OPTIONS_SERVICE, config_parse_enum, O(service), ENUM(service_names) },
        { "force_start", OPTIONS_FORCE_START, config_parse_bool, O(force_start) },
        { "nginx_force_start", OPTIONS_FORCE_START, config_parse_bool, O(force_start) },
        { "reload_wait_ms", OPTIONS_RELOAD_WAIT_MS, config_parse_u64, O(reload_wait_ms), 0, UINT32_MAX },
        { "nginx_reload_wait_ms", OPTIONS_RELOAD_WAIT_MS, config_parse_u64, O(reload_wait_ms), 0,
          UINT32_MAX },
        { "sync_interval_secs", OPTIONS_SYNC_INTERVAL_SECS, config_parse_u64, O(sync_interval_secs), 1,
          UINT32_MAX },
        { "runtime_dir", OPTIONS_RUNTIME_DIR, config_parse_string, O(runtime_dir),
          .flags = CONFIG_ABSOLUTE },
        { "state_dir", OPTIONS_STATE_DIR, config_parse_string, O(state_dir), .flags = CONFIG_ABSOLUTE },
        { "server_control", OPTIONS_SERVER_CONTROL, config_parse_enum, O(server_control),
          ENUM(server_control_names) },
        { "server_config", OPTIONS_SERVER_CONFIG, config_parse_string, O(server_config),
          .flags = CONFIG_ABSOLUTE },
        { "server_pid_file", OPTIONS_SERVER_PID_FILE, config_parse_string, O(server_pid_file),
          .flags = CONFIG_ABSOLUTE },
        { "s3_ca_file", OPTIONS_S3_CA_FILE, config_parse_string, O(s3_ca_file), .flags = CONFIG_ABSOLUTE },
        { "region", OPTIONS_REGION, parse_region, O(region) },
        { "imds_endpoint", OPTIONS_IMDS_ENDPOINT, parse_imds_endpoint, O(imds_endpoint) },
        { "s3_endpoint", OPTIONS_S3_ENDPOINT, parse_s3_endpoint, O(s3_endpoint) },
        { "health_interval_secs", OPTIONS_HEALTH_INTERVAL_SECS, config_parse_u64, O(health_interval_secs), 0,
          86400 },
        { "health_timeout_ms", OPTIONS_HEALTH_TIMEOUT_MS, config_parse_u64, O(health_timeout_ms), 100,
          600000 },
        { "health_misses", OPTIONS_HEALTH_MISSES, config_parse_u64, O(health_misses), 1, 1000 },
        { "expiry_warning_days", OPTIONS_EXPIRY_WARNING_DAYS, config_parse_u64, O(expiry_warning_days), 0,
          100000 },
        { "upgrade_drain_secs", OPTIONS_UPGRADE_DRAIN_SECS, config_parse_u64, O(upgrade_drain_secs), 0,
          3600 },
        { "upgrade_drain_max_secs", OPTIONS_UPGRADE_DRAIN_MAX_SECS, config_parse_u64,
          O(upgrade_drain_max_secs), 0, 86400 },
        { "metrics_listen", OPTIONS_METRICS_LISTEN, parse_metrics_listen, O(metrics_listen) },
};
#undef O

static const struct config_field log_fields[] = {
        { "level", LOG_SLOT_LEVEL, parse_log_level },
        { "enable_timestamp", LOG_SLOT_ENABLE_TIMESTAMP, config_parse_bool,
          offsetof(struct agent_config_log, enable_timestamp) },
};

/* cpu_count and memory_mib are what nitro-cli needs; the local launcher ignores them. */
static int check_enclave_sizes(struct config_ctx *c, const struct ynode *v, const struct config_seen *seen) {
        static const unsigned slots[] = { ENCLAVE_CPU_COUNT, ENCLAVE_MEMORY_MIB };
        int r = 0;

        if (c->cfg->enclave.launcher != AGENT_LAUNCHER_NITRO_CLI)
                return 0;
        for (size_t i = 0; i < ELEMENTSOF(slots) && r >= 0; i++) {
                const char *name = enclave_fields[slots[i]].name;
                _cleanup_free_ char *path = config_path_join("enclave", name);

                if (!path)
                        return -ENOMEM;
                if (!seen[slots[i]].key)
                        r = config_error(c, v, "enclave",
                                         "missing required key '%s' (the nitro-cli launcher needs it)",
                                         name);
                else if (!seen[slots[i]].value)
                        r = config_error(c, seen[slots[i]].key, path, "needs a value");
        }
        return r;
}

/* Development and test switches of enclave-token: an EIF run by nitro-cli takes no command line, and a
 * simulated NSM there would make attestation meaningless. */
static int check_local_only(struct config_ctx *c, const struct config_seen *seen) {
        static const struct {
                unsigned slot;
                const char *path, *why;
        } keys[] = {
                { ENCLAVE_NSM_SIMULATOR, "enclave.nsm_simulator",
                  "a simulated NSM makes attestation prove nothing: it is for development and tests with "
                  "enclave.launcher: local only" },
                { ENCLAVE_KMS_PROXY, "enclave.kms_proxy",
                  "only the local launcher passes it to enclave-token (an enclave image reaches KMS "
                  "through the parent's vsock-proxy, vsock:cid=3;port=8000)" },
                { ENCLAVE_KMS_CA_FILE, "enclave.kms_ca_file",
                  "only the local launcher passes it to enclave-token (an enclave image uses the CAs "
                  "built into it)" },
        };
        const struct agent_config_enclave *e = &c->cfg->enclave;
        int r;

        if (e->launcher == AGENT_LAUNCHER_LOCAL)
                return 0;
        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                if (!seen[keys[i].slot].value)
                        continue;
                if (keys[i].slot == ENCLAVE_NSM_SIMULATOR && !e->nsm_simulator)
                        continue; /* nsm_simulator: false is harmless */
                r = config_error(c, seen[keys[i].slot].key, keys[i].path,
                                 "not allowed with enclave.launcher: "
                                 "%s: %s",
                                 agent_launcher_to_string(e->launcher), keys[i].why);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* enclave-token's simulator reports PCR0-4 and PCR8 (--nsm-sim-pcr takes only those), the rest zero. */
#define SIMULATED_PCRS ((1u << 0) | (1u << 1) | (1u << 2) | (1u << 3) | (1u << 4) | (1u << 8))

static int check_simulated_pcrs(struct config_ctx *c, const struct config_seen *seen) {
        const struct agent_config_enclave *e = &c->cfg->enclave;
        uint32_t extra = e->expected_pcrs.mask & ~SIMULATED_PCRS;

        if (e->launcher != AGENT_LAUNCHER_LOCAL || !e->nsm_simulator || extra == 0)
                return 0;
        return config_error(c, seen[ENCLAVE_EXPECTED_PCRS].value, "enclave.expected_pcrs",
                            "the NSM simulator reports PCR0-4 and PCR8 only, so PCR%d cannot be expected "
                            "with enclave.nsm_simulator",
                            __builtin_ctz(extra));
}

static int parse_enclave(struct config_ctx *c, const struct ynode *v) {
        struct agent_config_enclave *e = &c->cfg->enclave;
        struct config_seen seen[_ENCLAVE_SLOT_MAX] = {};
        const struct ynode *at;
        int r;

        r = config_walk_mapping(c, v, "enclave", enclave_fields, ELEMENTSOF(enclave_fields), e, seen,
                                ELEMENTSOF(seen));
        if (r < 0)
                return r;
        r = check_enclave_sizes(c, v, seen);
        if (r < 0)
                return r;
        if (e->p11kit_port == e->rpc_port) {
                at = seen[ENCLAVE_RPC_PORT].value ?: seen[ENCLAVE_P11KIT_PORT].value;
                r = config_error(c, at, "enclave.rpc_port",
                                 "the data channel (p11kit_port) and the control channel (rpc_port) need "
                                 "different ports, both are %" PRIu32,
                                 e->rpc_port);
                if (r < 0)
                        return r;
        }
        if (seen[ENCLAVE_CID].value && e->launcher != AGENT_LAUNCHER_NITRO_CLI) {
                r = config_warning(c, seen[ENCLAVE_CID].key, "enclave.cid",
                                   "only used by the nitro-cli launcher, ignoring");
                if (r < 0)
                        return r;
        }
        if (seen[ENCLAVE_TOKEN_BINARY].value && e->launcher != AGENT_LAUNCHER_LOCAL) {
                r = config_warning(c, seen[ENCLAVE_TOKEN_BINARY].key, "enclave.token_binary",
                                   "only used by the local launcher, ignoring");
                if (r < 0)
                        return r;
        }
        r = check_local_only(c, seen);
        if (r < 0)
                return r;
        return check_simulated_pcrs(c, seen);
}

/* The server's own files are only read in direct mode. */
static int check_direct_only(struct config_ctx *c, const struct config_seen *seen) {
        static const struct {
                unsigned slot;
                const char *path;
        } keys[] = {
                { OPTIONS_SERVER_CONFIG, "options.server_config" },
                { OPTIONS_SERVER_PID_FILE, "options.server_pid_file" },
        };
        int r;

        if (c->cfg->options.server_control == AGENT_SERVER_CONTROL_DIRECT)
                return 0;
        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                if (!seen[keys[i].slot].value)
                        continue;
                r = config_warning(c, seen[keys[i].slot].key, keys[i].path,
                                   "only used with server_control: direct, ignoring");
                if (r < 0)
                        return r;
        }
        return 0;
}

/* A ping must end before the next one is due; a drain bound below the quiet period would never wait
 * for quiet. */
static int check_health(struct config_ctx *c, const struct config_seen *seen) {
        const struct agent_config_options *o = &c->cfg->options;
        int r = 0;

        if (o->health_interval_secs > 0 && o->health_timeout_ms > o->health_interval_secs * 1000u)
                r = config_error(
                        c, seen[OPTIONS_HEALTH_TIMEOUT_MS].value ?: seen[OPTIONS_HEALTH_INTERVAL_SECS].value,
                        "options.health_timeout_ms",
                        "%" PRIu64 " ms is longer than health_interval_secs (%" PRIu64 " s)",
                        o->health_timeout_ms, o->health_interval_secs);
        if (r >= 0 && o->upgrade_drain_max_secs < o->upgrade_drain_secs)
                r = config_error(c,
                                 seen[OPTIONS_UPGRADE_DRAIN_MAX_SECS].value
                                         ?: seen[OPTIONS_UPGRADE_DRAIN_SECS].value,
                                 "options.upgrade_drain_max_secs",
                                 "%" PRIu64 " s is shorter than upgrade_drain_secs (%" PRIu64 " s)",
                                 o->upgrade_drain_max_secs, o->upgrade_drain_secs);
        return r;
}

static int parse_options(struct config_ctx *c, const struct ynode *v) {
        struct agent_config_options *o = &c->cfg->options;
        struct config_seen seen[_OPTIONS_SLOT_MAX] = {};
        int r;

        r = config_walk_mapping(c, v, "options", options_fields, ELEMENTSOF(options_fields), o, seen,
                                ELEMENTSOF(seen));
        if (r < 0)
                return r;
        if (strlen(o->runtime_dir) > RUNTIME_DIR_MAX) {
                r = config_error(c, seen[OPTIONS_RUNTIME_DIR].value, "options.runtime_dir",
                                 "too long for the unix sockets placed in it (at most %zu bytes)",
                                 RUNTIME_DIR_MAX);
                if (r < 0)
                        return r;
        }
        r = check_health(c, seen);
        if (r < 0)
                return r;
        return check_direct_only(c, seen);
}

static int parse_root(struct config_ctx *c, const struct ynode *root) {
        struct config_seen seen[_ROOT_SLOT_MAX] = {};
        int r;

        if (!root || ynode_is_null(root))
                return config_error(c, root, NULL, "the configuration is empty");
        if (root->type != YNODE_MAPPING)
                return config_error(c, root, NULL,
                                    "expected a mapping of enclave, options, log and tokens, got %s",
                                    config_node_kind(root));
        r = config_walk_mapping(c, root, "", root_fields, ELEMENTSOF(root_fields), NULL, seen,
                                ELEMENTSOF(seen));
        if (r < 0)
                return r;

        /* enclave first: the launcher decides what the other sections may contain */
        if (seen[ROOT_ENCLAVE].value && (r = parse_enclave(c, seen[ROOT_ENCLAVE].value)) < 0)
                return r;
        if (seen[ROOT_OPTIONS].value && (r = parse_options(c, seen[ROOT_OPTIONS].value)) < 0)
                return r;
        if (seen[ROOT_LOG].value &&
            (r = config_walk_mapping(c, seen[ROOT_LOG].value, "log", log_fields, ELEMENTSOF(log_fields),
                                     &c->cfg->log, NULL, 0)) < 0)
                return r;
        if (seen[ROOT_TOKENS].value)
                return config_parse_tokens(c, seen[ROOT_TOKENS].value, "tokens");
        return 0;
}

struct agent_config *agent_config_free(struct agent_config *c) {
        if (!c)
                return NULL;
        for (size_t i = 0; i < c->n_tokens; i++)
                config_token_done(&c->tokens[i]);
        free(c->tokens);
        free(c->enclave.image_path);
        free(c->enclave.token_binary);
        free(c->enclave.measurements_path);
        free(c->enclave.measurements_ignored);
        free(c->enclave.kms_proxy);
        free(c->enclave.kms_ca_file);
        free(c->options.region);
        free(c->options.s3_ca_file);
        free(c->options.imds_endpoint);
        free(c->options.s3_endpoint);
        free(c->options.metrics_listen);
        free(c->options.runtime_dir);
        free(c->options.state_dir);
        free(c->options.server_config);
        free(c->options.server_pid_file);
        free(c);
        return NULL;
}

static int config_new(struct agent_config **ret) {
        _cleanup_(agent_config_freep) struct agent_config *c = calloc(1, sizeof(*c));

        if (!c)
                return -ENOMEM;
        c->enclave = (struct agent_config_enclave){
                .launcher = AGENT_LAUNCHER_NITRO_CLI,
                .image_path = strdup(AGENT_CONFIG_DEFAULT_IMAGE_PATH),
                .boot_timeout_ms = AGENT_CONFIG_DEFAULT_BOOT_TIMEOUT_MS,
                .p11kit_port = AGENT_CONFIG_DEFAULT_P11KIT_PORT,
                .rpc_port = AGENT_CONFIG_DEFAULT_RPC_PORT,
                .attestation_retry_count = AGENT_CONFIG_DEFAULT_ATTESTATION_RETRY_COUNT,
        };
        c->options = (struct agent_config_options){
                .service = AGENT_SERVICE_NGINX,
                .force_start = AGENT_CONFIG_DEFAULT_FORCE_START,
                .reload_wait_ms = AGENT_CONFIG_DEFAULT_RELOAD_WAIT_MS,
                .sync_interval_secs = AGENT_CONFIG_DEFAULT_SYNC_INTERVAL_SECS,
                .runtime_dir = strdup(AGENT_CONFIG_DEFAULT_RUNTIME_DIR),
                .state_dir = strdup(AGENT_CONFIG_DEFAULT_STATE_DIR),
                .server_control = AGENT_SERVER_CONTROL_SYSTEMD,
                .health_interval_secs = AGENT_CONFIG_DEFAULT_HEALTH_INTERVAL_SECS,
                .health_timeout_ms = AGENT_CONFIG_DEFAULT_HEALTH_TIMEOUT_MS,
                .health_misses = AGENT_CONFIG_DEFAULT_HEALTH_MISSES,
                .expiry_warning_days = AGENT_CONFIG_DEFAULT_EXPIRY_WARNING_DAYS,
                .upgrade_drain_secs = AGENT_CONFIG_DEFAULT_UPGRADE_DRAIN_SECS,
                .upgrade_drain_max_secs = AGENT_CONFIG_DEFAULT_UPGRADE_DRAIN_MAX_SECS,
        };
        c->log = (struct agent_config_log){ .level = LOG_INFO };
        if (!c->enclave.image_path || !c->options.runtime_dir || !c->options.state_dir)
                return -ENOMEM;
        *ret = TAKE_PTR(c);
        return 0;
}

static int diag_reset(struct agent_config_diag *d, const char *filename) {
        agent_config_diag_done(d);
        d->filename = strdup(filename ? filename : "acm.yaml");
        return d->filename ? 0 : -ENOMEM;
}

static int parse_text(const char *text, size_t len, struct agent_config_diag *diag,
                      struct agent_config **ret) {
        _cleanup_(agent_config_freep) struct agent_config *cfg = NULL;
        _cleanup_(ynode_freep) struct ynode *root = NULL;
        struct config_ctx c = { .diag = diag };
        int r;

        if (len > AGENT_CONFIG_MAX_FILE_SIZE) {
                r = config_diag_add(diag, AGENT_CONFIG_ERROR, 0, 0, NULL, "larger than %u bytes",
                                    AGENT_CONFIG_MAX_FILE_SIZE);
                return r < 0 ? r : -EMSGSIZE;
        }
        r = config_new(&cfg);
        if (r < 0)
                return r;
        r = config_yaml_parse(text, len, diag, &root);
        if (r < 0)
                return r;
        c.cfg = cfg;
        r = parse_root(&c, root);
        if (r < 0)
                return r;
        if (diag->n_errors > 0)
                return -EINVAL;
        *ret = TAKE_PTR(cfg);
        return 0;
}

int agent_config_parse(const char *text, size_t len, const char *filename, struct agent_config **ret,
                       struct agent_config_diag *diag) {
        _cleanup_(agent_config_diag_done) struct agent_config_diag local = {};
        int r;

        if (!ret || (!text && len > 0))
                return -EINVAL;
        if (!diag)
                diag = &local;
        r = diag_reset(diag, filename);
        if (r < 0)
                return r;
        return parse_text(text ? text : "", len, diag, ret);
}

static int file_error(struct agent_config_diag *d, int error, const char *what) {
        int r = config_diag_add(d, AGENT_CONFIG_ERROR, 0, 0, NULL, "%s: %s", what, strerror(-error));

        return r < 0 ? r : error;
}

/* Up to AGENT_CONFIG_MAX_FILE_SIZE + 1 bytes, so that a file growing after fstat() is still caught. */
static int read_bounded(int fd, char **ret, size_t *ret_len) {
        size_t cap = AGENT_CONFIG_MAX_FILE_SIZE + 1, n = 0;
        char *buf = malloc(cap);

        if (!buf)
                return -ENOMEM;
        while (n < cap) {
                ssize_t k = read(fd, buf + n, cap - n);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        int r = negative_errno();

                        secret_wipe(buf, n);
                        free(buf);
                        return r;
                }
                if (k == 0)
                        break;
                n += (size_t) k;
        }
        *ret = buf;
        *ret_len = n;
        return 0;
}

/* <dir of image_path>/image-measurements.json: the image's PCRs, unless acm.yaml gives them. A missing
 * file is fine; one that cannot be read or parsed is an error (the operator put it there). */
static int load_measurements(struct agent_config *cfg, struct agent_config_diag *diag) {
        _cleanup_free_ char *path = NULL, *error = NULL, *dir = NULL;
        _cleanup_close_ int fd = -1;
        const char *slash;
        char buf[AGENT_IMAGE_MEASUREMENTS_MAX + 1];
        size_t n = 0;
        struct agent_pcr_set set;
        int r;

        if (!cfg->enclave.image_path || !(slash = strrchr(cfg->enclave.image_path, '/')))
                return 0;
        dir = strndup(cfg->enclave.image_path, (size_t) (slash - cfg->enclave.image_path));
        if (!dir || asprintf(&path, "%s/%s", dir, AGENT_IMAGE_MEASUREMENTS_FILE) < 0) {
                path = NULL;
                return -ENOMEM;
        }
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0 && errno == ENOENT)
                return 0;
        if (fd >= 0 && cfg->enclave.pcrs_origin == AGENT_PCRS_YAML) {
                cfg->enclave.measurements_ignored = TAKE_PTR(path); /* the agent says so at debug level */
                return 0;
        }
        if (fd < 0) {
                r = negative_errno();
                return config_diag_add(diag, AGENT_CONFIG_ERROR, 0, 0, "enclave.image_path",
                                       "cannot open the image's measurements '%s': %s", path, strerror(-r));
        }
        for (;;) {
                ssize_t k = read(fd, buf + n, sizeof(buf) - n);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return config_diag_add(diag, AGENT_CONFIG_ERROR, 0, 0, "enclave.image_path",
                                               "cannot read the image's measurements '%s': %s", path,
                                               strerror(errno));
                if (k == 0 || (n += (size_t) k) == sizeof(buf))
                        break;
        }
        r = agent_image_measurements_parse(buf, n, &set, &error);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return config_diag_add(diag, AGENT_CONFIG_ERROR, 0, 0, "enclave.image_path",
                                       "the image's measurements '%s': %s", path, error ?: strerror(-r));
        cfg->enclave.expected_pcrs = set;
        cfg->enclave.pcrs_origin = AGENT_PCRS_IMAGE;
        cfg->enclave.measurements_path = TAKE_PTR(path);
        return 0;
}

/* With nitro-cli, credentials go only to an enclave whose PCRs were checked: some must be expected. A File
 * encrypted_key without them is an error. An Acm or S3 token is only a warning: an ACM for Nitro Enclaves
 * acm.yaml (nitro-cli, Acm tokens, no PCRs: ACM has no such key) must still load unchanged; the KMS round
 * then refuses at every sync to send credentials (agent/kms-round.c), which is what keeps them safe. */
static int check_attestation_policy(const struct agent_config *cfg, struct agent_config_diag *diag) {
        if (cfg->enclave.launcher != AGENT_LAUNCHER_NITRO_CLI || cfg->enclave.pcrs_origin != AGENT_PCRS_NONE)
                return 0;
        for (size_t i = 0; i < cfg->n_tokens; i++)
                if (cfg->tokens[i].source.kind == AGENT_SOURCE_FILE &&
                    agent_config_token_encrypted(&cfg->tokens[i]))
                        return config_diag_add(
                                diag, AGENT_CONFIG_ERROR, cfg->tokens[i].line, cfg->tokens[i].column,
                                "enclave.expected_pcrs",
                                "token '%s' has an encrypted_key, but nothing says which enclave image may "
                                "receive the AWS credentials: set enclave.expected_pcrs (at least PCR0) or "
                                "put %s (nitro-cli build-enclave's output) next to enclave.image_path",
                                cfg->tokens[i].label, AGENT_IMAGE_MEASUREMENTS_FILE);
        for (size_t i = 0; i < cfg->n_tokens; i++)
                if (agent_config_token_encrypted(&cfg->tokens[i]))
                        return config_diag_add(
                                diag, AGENT_CONFIG_WARNING, cfg->tokens[i].line, cfg->tokens[i].column,
                                "enclave.expected_pcrs",
                                "token '%s' (%s source) will not be provisioned: nothing says which enclave "
                                "image may receive the AWS credentials; set enclave.expected_pcrs (at least "
                                "PCR0) or put %s (nitro-cli build-enclave's output) next to "
                                "enclave.image_path",
                                cfg->tokens[i].label,
                                agent_source_kind_to_string(cfg->tokens[i].source.kind),
                                AGENT_IMAGE_MEASUREMENTS_FILE);
        return 0;
}

static bool has_pins(const struct agent_config *c) {
        for (size_t i = 0; i < c->n_tokens; i++)
                if (c->tokens[i].pin)
                        return true;
        return false;
}

int agent_config_load(const char *path, struct agent_config **ret, struct agent_config_diag *diag) {
        _cleanup_(agent_config_diag_done) struct agent_config_diag local = {};
        _cleanup_(agent_config_freep) struct agent_config *cfg = NULL;
        _cleanup_close_ int fd = -1;
        struct stat st;
        char *buf = NULL;
        size_t len = 0, n_errors;
        int r;

        if (!path || !ret)
                return -EINVAL;
        if (!diag)
                diag = &local;
        r = diag_reset(diag, path);
        if (r < 0)
                return r;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return file_error(diag, negative_errno(), "cannot open");
        if (fstat(fd, &st) < 0)
                return file_error(diag, negative_errno(), "cannot stat");
        if (S_ISDIR(st.st_mode))
                return file_error(diag, -EISDIR, "not a file");
        if (!S_ISREG(st.st_mode))
                return file_error(diag, -EINVAL, "not a regular file");
        if (st.st_size > (off_t) AGENT_CONFIG_MAX_FILE_SIZE)
                return file_error(diag, -EFBIG, "larger than 1 MiB");
        r = read_bounded(fd, &buf, &len);
        if (r < 0)
                return file_error(diag, r, "cannot read");
        if (len > AGENT_CONFIG_MAX_FILE_SIZE)
                r = file_error(diag, -EFBIG, "larger than 1 MiB");
        else
                r = parse_text(buf, len, diag, &cfg);
        secret_wipe(buf, len);
        free(buf);
        if (r < 0)
                return r;
        n_errors = diag->n_errors;
        r = load_measurements(cfg, diag);
        /* a broken measurements file is the one error to fix, not also "no PCRs" */
        if (r >= 0 && diag->n_errors == n_errors)
                r = check_attestation_policy(cfg, diag);
        if (r < 0)
                return r;
        if (diag->n_errors > 0)
                return -EINVAL;

        if ((st.st_mode & S_IROTH) && has_pins(cfg)) {
                r = config_diag_add(diag, AGENT_CONFIG_WARNING, 0, 0, NULL,
                                    "the file holds PINs and is readable by every user (chmod o-r)");
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(cfg);
        return 0;
}
