/* Starting, watching and stopping the enclave: nitro-cli on an EC2 host, enclave-token as a child process
 * (launcher: local) for development, the demo and the tests. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "agent/config/config.h"
#include "common/rpc-client.h"

#define LAUNCHER_DEFAULT_TOKEN_BINARY "/usr/bin/enclave-token"
#define LAUNCHER_CONNECT_TIMEOUT_MS   5000
/* A KMS round's calls: each TOKEN_ADD / TOKEN_REFRESH the agent sends carries one key, whose Decrypt the
 * enclave bounds to about 10 s, retries included (docs/protocol.md, "Retries"); a margin on top, so a
 * slow KMS ends in the enclave's KMS_UNAVAILABLE, not in a timeout that breaks the round's connection. */
#define LAUNCHER_KMS_CALL_TIMEOUT_MS 15000
#define LAUNCHER_NITRO_CLI           "nitro-cli"
#define LAUNCHER_NITRO_ID_MAX        128
#define LAUNCHER_NSM_SIM_ROOT_FILE   "nsm-sim-root.pem" /* in runtime_dir: the simulator's root CA */

struct launcher {
        enum agent_launcher kind;
        /* from the config */
        char *token_binary; /* local */
        char *runtime_dir;
        char *image_path; /* nitro */
        uint64_t cpu_count, memory_mib, boot_timeout_ms;
        uint32_t p11kit_port, rpc_port, want_cid;
        bool nsm_simulator;            /* local: --nsm-simulator, --nsm-sim-pcr N=HEX, --nsm-sim-root */
        struct agent_pcr_set sim_pcrs; /* local + simulator: what the simulated NSM reports */
        char *kms_proxy, *kms_ca_file; /* local: --kms-proxy, --kms-ca */
        /* while running */
        bool running;
        pid_t pid;             /* local: our child; nitro: the enclave's ProcessID (not our child) */
        char *enclave_id;      /* nitro */
        uint32_t cid;          /* nitro: EnclaveCID */
        char *data_address;    /* what the module connects to */
        char *control_address; /* what the agent provisions through */
        unsigned launches;     /* number of the current launch, unique in the process; 0: never */
        /* local: which socket pair it serves, so an upgrade can run a second enclave next to the first:
         * 0 data.sock + control.sock, 1 data.1.sock + control.1.sock */
        unsigned slot;
};

/* What `nitro-cli run-enclave` prints (its JSON on stdout). */
struct launcher_nitro_info {
        char enclave_id[LAUNCHER_NITRO_ID_MAX + 1];
        int64_t process_id;
        uint32_t cid;
};

_must_check_ int launcher_new(const struct agent_config *cfg, struct launcher **ret);
/* Stops it first when running. Accepts NULL; returns NULL. */
struct launcher *launcher_free(struct launcher *l);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct launcher *, launcher_free);

/* Launch and wait (bounded by boot_timeout_ms) until the control channel answers HELLO, then write
 * <runtime_dir>/address. Logs its failures; on failure nothing is left running. */
_must_check_ int launcher_start(struct launcher *l);
/* The same without the address file: an upgrade provisions the new enclave before the module is pointed
 * at it with launcher_publish(). */
_must_check_ int launcher_start_unpublished(struct launcher *l);
_must_check_ int launcher_publish(const struct launcher *l);

/* For an upgrade: a launcher for cfg that can run next to old (the other socket pair for the local
 * launcher; for nitro-cli a CID of nitro-cli's choosing when old runs on the configured one). */
_must_check_ int launcher_new_next(const struct agent_config *cfg, const struct launcher *old,
                                   struct launcher **ret);
/* Can next run while old runs? 1 yes, 0 no (*ret_why says why: the allocator's size and what runs),
 * negative errno when that cannot be told (*ret_why says why). Logs nothing. The local launcher always
 * has room; nitro-cli: the allocator's memory_mib and CPUs against the enclaves nitro-cli describes. */
_must_check_ int launcher_room_for_two(const struct launcher *old, const struct launcher *next,
                                       char **ret_why);
/* Connections a client holds open to its data channel now (the local launcher: accepted unix sockets
 * of its data.sock, from /proc/net/unix); -EOPNOTSUPP where that cannot be seen (vsock). */
_must_check_ int launcher_data_connections(const struct launcher *l);

/* The allocator's reservation from /etc/nitro_enclaves/allocator.yaml's text: memory_mib and cpu_count,
 * or cpu_pool ("1,3", "2-5,7") counted. -EBADMSG when either is missing or malformed. Pure. */
_must_check_ int launcher_allocator_parse(const char *text, size_t len, uint64_t *ret_memory_mib,
                                          uint64_t *ret_cpus);
/* `nitro-cli describe-enclaves` JSON: the sums of MemoryMiB and NumberOfCPUs of its enclaves. -EBADMSG
 * when it is not an array of objects with both. Pure, bounded. */
_must_check_ int launcher_nitro_describe_parse(const char *text, size_t len, uint64_t *ret_memory_mib,
                                               uint64_t *ret_cpus, unsigned *ret_count);
/* Is it still alive? true yes, false it died (logged; the launcher is then stopped and can be started
 * again). Cheap: call it on every loop tick. */
bool launcher_check(struct launcher *l);
/* Terminate the enclave (SIGTERM, then SIGKILL after a bounded wait / nitro-cli terminate-enclave). */
void launcher_stop(struct launcher *l);

/* A control-channel client; its calls bounded by LAUNCHER_CONNECT_TIMEOUT_MS, or by timeout_ms. */
_must_check_ int launcher_connect(const struct launcher *l, struct rpc_client **ret);
_must_check_ int launcher_connect_timeout(const struct launcher *l, int timeout_ms, struct rpc_client **ret);

/* Parse `nitro-cli run-enclave` output: text before the JSON object is skipped; EnclaveID,
 * ProcessID and EnclaveCID are required. -EBADMSG on anything else. Pure, bounded. */
_must_check_ int launcher_nitro_parse(const char *text, size_t len, struct launcher_nitro_info *ret);

/* The local launcher's enclave-token command line (argv[0] is the binary), NULL-terminated, every string
 * malloc'ed: free it with launcher_argv_free(). debug adds --log-level debug. Pure. */
_must_check_ int launcher_local_argv(const struct launcher *l, bool debug, char ***ret_argv);
char **launcher_argv_free(char **argv);
DEFINE_TRIVIAL_CLEANUP_FUNC(char **, launcher_argv_free);
/* <runtime_dir>/nsm-sim-root.pem, or NULL without the simulator / on ENOMEM (check nsm_simulator). */
char *launcher_sim_root_path(const struct launcher *l);

/* Internal: the two launchers. */
_must_check_ int launcher_local_start(struct launcher *l);
bool launcher_local_check(struct launcher *l);
void launcher_local_stop(struct launcher *l);
_must_check_ int launcher_nitro_start(struct launcher *l);
bool launcher_nitro_check(struct launcher *l);
void launcher_nitro_stop(struct launcher *l);
int launcher_local_data_connections(const struct launcher *l);
_must_check_ int launcher_nitro_room(const struct launcher *old, const struct launcher *next,
                                     char **ret_why);
/* Wait until HELLO answers on the control address or the time is up (or the process is gone). */
_must_check_ int launcher_wait_boot(struct launcher *l);
