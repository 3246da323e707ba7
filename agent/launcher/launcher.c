/* Starting, watching and stopping the enclave: what both launchers share. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent/launcher/launcher.h"
#include "agent/notify.h"
#include "agent/pinstore.h"
#include "common/log.h"
#include "common/time-util.h"
#include "common/transport.h"

static unsigned launch_counter;

static int dup_or_null(const char *s, char **ret) {
        *ret = NULL;
        if (!s)
                return 0;
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

int launcher_new(const struct agent_config *cfg, struct launcher **ret) {
        _cleanup_(launcher_freep) struct launcher *l = NULL;
        const struct agent_config_enclave *e = &cfg->enclave;

        l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        l->kind = e->launcher;
        l->cpu_count = e->cpu_count;
        l->memory_mib = e->memory_mib;
        l->boot_timeout_ms = e->boot_timeout_ms;
        l->p11kit_port = e->p11kit_port;
        l->rpc_port = e->rpc_port;
        l->want_cid = e->cid;
        l->nsm_simulator = e->launcher == AGENT_LAUNCHER_LOCAL && e->nsm_simulator;
        l->sim_pcrs = e->expected_pcrs;
        if (dup_or_null(e->kms_proxy, &l->kms_proxy) < 0 ||
            dup_or_null(e->kms_ca_file, &l->kms_ca_file) < 0 ||
            dup_or_null(e->token_binary ?: LAUNCHER_DEFAULT_TOKEN_BINARY, &l->token_binary) < 0 ||
            dup_or_null(cfg->options.runtime_dir, &l->runtime_dir) < 0 ||
            dup_or_null(e->image_path, &l->image_path) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(l);
        return 0;
}

struct launcher *launcher_free(struct launcher *l) {
        if (!l)
                return NULL;
        launcher_stop(l);
        free(l->token_binary);
        free(l->runtime_dir);
        free(l->image_path);
        free(l->kms_proxy);
        free(l->kms_ca_file);
        free(l->enclave_id);
        free(l->data_address);
        free(l->control_address);
        free(l);
        return NULL;
}

int launcher_connect(const struct launcher *l, struct rpc_client **ret) {
        return launcher_connect_timeout(l, LAUNCHER_CONNECT_TIMEOUT_MS, ret);
}

int launcher_connect_timeout(const struct launcher *l, int timeout_ms, struct rpc_client **ret) {
        struct transport_addr a;
        int r;

        if (!l->running || !l->control_address)
                return -ENOTCONN;
        r = transport_addr_parse(l->control_address, &a);
        if (r < 0)
                return r;
        return rpc_client_open(&a, RPC_CHANNEL_CONTROL, timeout_ms, "enclave-acm-agent", ret);
}

int launcher_wait_boot(struct launcher *l) {
        uint64_t deadline = mono_usec() + l->boot_timeout_ms * 1000u;
        int r = -ETIMEDOUT;

        for (;;) {
                _cleanup_(rpc_client_freep) struct rpc_client *c = NULL;
                uint64_t now = mono_usec();
                int left_ms = now >= deadline ? 0 : (int) MIN((deadline - now) / 1000u, 1000u);

                if (left_ms <= 0)
                        return r;
                r = launcher_connect(l, &c);
                if (r >= 0)
                        return 0;
                if (!launcher_check(l))
                        return -ECHILD;
                (void) usleep(100 * 1000); /* ACM polls every 100 ms too */
        }
}

static int write_address_file(const struct launcher *l) {
        _cleanup_free_ char *path = NULL, *line = NULL;
        int r;

        if (asprintf(&path, "%s/address", l->runtime_dir) < 0 ||
            asprintf(&line, "%s\n", l->data_address) < 0)
                return log_error_errno(-ENOMEM, "Out of memory");
        /* 0644: every web-server worker reads it. */
        r = pinstore_write_atomic(path, line, strlen(line), 0644, (uid_t) -1, (gid_t) -1);
        if (r < 0)
                return log_error_errno(r, "Cannot write the module's address file '%s': %m", path);
        log_debug("Address file '%s': %s", path, l->data_address);
        return 0;
}

int launcher_publish(const struct launcher *l) {
        return write_address_file(l);
}

int launcher_start(struct launcher *l) {
        int r;

        if (l->running)
                return 0;
        r = launcher_start_unpublished(l);
        if (r < 0)
                return r;
        r = write_address_file(l);
        if (r < 0) {
                launcher_stop(l);
                return r;
        }
        return 0;
}

int launcher_start_unpublished(struct launcher *l) {
        int r;

        if (l->running)
                return 0;
        r = pinstore_mkdir_p(l->runtime_dir, 0755);
        if (r < 0)
                return log_error_errno(r, "Cannot create the runtime directory '%s': %m", l->runtime_dir);
        r = l->kind == AGENT_LAUNCHER_LOCAL ? launcher_local_start(l) : launcher_nitro_start(l);
        if (r < 0)
                return r;
        r = launcher_wait_boot(l);
        if (r < 0) {
                if (r == -ECHILD)
                        log_error("The enclave (%s) ended while booting", agent_launcher_to_string(l->kind));
                else
                        log_error_errno(r,
                                        "The enclave's control channel '%s' did not answer within %" PRIu64
                                        " ms (boot_timeout_ms): %m",
                                        l->control_address, l->boot_timeout_ms);
                launcher_stop(l);
                return r == -ECHILD ? -ECHILD : -ETIMEDOUT;
        }
        /* Unique over all launchers of this process: tokens compare it to know they must be re-provisioned.
         */
        l->launches = ++launch_counter;
        log_info("Enclave up (%s launcher, launch %u): data channel %s, control channel %s",
                 agent_launcher_to_string(l->kind), l->launches, l->data_address, l->control_address);
        return 0;
}

bool launcher_check(struct launcher *l) {
        if (!l->running)
                return false;
        return l->kind == AGENT_LAUNCHER_LOCAL ? launcher_local_check(l) : launcher_nitro_check(l);
}

void launcher_stop(struct launcher *l) {
        if (!l->running)
                return;
        if (l->kind == AGENT_LAUNCHER_LOCAL)
                launcher_local_stop(l);
        else
                launcher_nitro_stop(l);
        l->running = false;
}

int launcher_new_next(const struct agent_config *cfg, const struct launcher *old, struct launcher **ret) {
        struct launcher *l;
        int r;

        r = launcher_new(cfg, &l);
        if (r < 0)
                return r;
        l->slot = old->slot ? 0 : 1;
        /* Two enclaves cannot share a CID: the configured one is the old enclave's. */
        if (l->kind == AGENT_LAUNCHER_NITRO_CLI && l->want_cid != 0 && l->want_cid == old->cid)
                l->want_cid = 0;
        *ret = l;
        return 0;
}

int launcher_room_for_two(const struct launcher *old, const struct launcher *next, char **ret_why) {
        *ret_why = NULL;
        if (old->kind != next->kind)
                return asprintf(ret_why, "the launcher changes (%s to %s)",
                                agent_launcher_to_string(old->kind),
                                agent_launcher_to_string(next->kind)) < 0
                               ? -ENOMEM
                               : 0;
        if (next->kind == AGENT_LAUNCHER_LOCAL)
                return 1; /* processes on unix sockets: no allocator */
        return launcher_nitro_room(old, next, ret_why);
}

int launcher_data_connections(const struct launcher *l) {
        return l->kind == AGENT_LAUNCHER_LOCAL ? launcher_local_data_connections(l) : -EOPNOTSUPP;
}
