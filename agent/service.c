/* The service loop: launch the enclave, provision the tokens, keep them synced, refreshed and served.
 * One thread; signals arrive on a signalfd; every wait is bounded (the loop ticks at least once a second).
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "agent/health.h"
#include "agent/launcher/launcher.h"
#include "agent/metrics-service.h"
#include "agent/notify.h"
#include "agent/token.h"
#include "agent/pinstore.h"
#include "agent/reload.h"
#include "agent/service.h"
#include "agent/status.h"
#include "agent/target.h"
#include "parent/agent-state.h"
#include "common/log.h"
#include "common/time-util.h"
#include "common/transport.h"

#define TICK_USEC                (1000u * 1000u)
#define ENCLAVE_BACKOFF_MAX_USEC (60u * 1000000u)
#define ENCLAVE_STABLE_USEC      (60u * 1000000u)

struct service {
        const char *config_path;
        struct agent_config *cfg;
        struct launcher *launcher;
        struct agent_token **tokens;
        size_t n_tokens;
        struct rpc_client *client;
        uint64_t enclave_retry_at;
        uint64_t enclave_up_since;
        unsigned enclave_failures; /* reset once an enclave stayed up ENCLAVE_STABLE_USEC */
        bool main_done;            /* target_ensure_main() succeeded for this config */
        bool ready_sent;
        char *status; /* last STATUS= sent */
        uint64_t watchdog_usec, next_watchdog;
        uint64_t started;  /* Unix seconds, for the state file */
        char *state_text;  /* the state file as last written */
        bool state_warned; /* a failure to write it was logged */
        struct agent_health health;
        bool watchdog_starved; /* WATCHDOG=1 is being held back (logged once) */
        /* After an upgrade: the old enclave, stopped once its data channel had no connection for
         * upgrade_drain_secs, at the latest at drain_deadline (monotonic usec). */
        struct launcher *draining;
        uint64_t drain_quiet_since, drain_deadline;
        struct agent_metrics_endpoint metrics; /* options.metrics_listen */
        bool enclave_died;                     /* the next launch is a relaunch */
};

/* The state file's health record is rewritten at least this often (Unix seconds) while the loop runs,
 * and a reader takes it for stale after stale_after(). */
static uint64_t heartbeat_secs(const struct agent_config *cfg) {
        return cfg->options.health_interval_secs ?: 30;
}

/* Three heartbeats, plus what one pass may legitimately block for: a relaunch (stop, boot) and a ping. */
static uint64_t stale_after_secs(const struct agent_config *cfg) {
        return 3 * heartbeat_secs(cfg) + 2 * (cfg->enclave.boot_timeout_ms / 1000u) +
               cfg->options.health_timeout_ms / 1000u + 30;
}

static void health_config(const struct agent_config *cfg, struct agent_health_config *ret) {
        *ret = (struct agent_health_config){
                .interval_usec = cfg->options.health_interval_secs * 1000000u,
                .timeout_usec = cfg->options.health_timeout_ms * 1000u,
                .max_misses = (unsigned) cfg->options.health_misses,
                .expiry_warning_sec = cfg->options.expiry_warning_days * 86400u,
        };
}

static void notify(const char *what) {
        int r = notify_send(what);
        if (r < 0)
                log_warning_errno(r, "Cannot notify systemd (%s), ignoring: %m", what);
}

/* Build the token set of next beside the running one of cur (NULL at the start). Logs its failure in
 * one line naming the token and the cause. */
static int tokens_prepare(const struct agent_config *cur, const struct agent_config *next,
                          struct agent_reload *ret) {
        const char *pre = cur ? "Reload failed: " : "",
                   *post = cur ? ". Keeping the running configuration." : "";
        _cleanup_free_ char *error = NULL;
        size_t failed;
        int r;

        r = agent_reload_prepare(cur, next, ret, &failed, &error);
        if (r >= 0)
                return 0;
        if (failed == SIZE_MAX)
                return log_error_errno(r, "%s%m%s", pre, post);
        if (r == -ENOTUNIQ)
                return log_error_errno(r, "%s%s '%s' is listed twice%s", pre, cur ? "token" : "Token",
                                       next->tokens[failed].label, post);
        return log_error_errno(r, "%s%s '%s': %s%s", pre, cur ? "token" : "Token",
                               next->tokens[failed].label, error ?: strerror(-r), post);
}

/* The first token set: every token of the config is new. */
static int tokens_start(struct service *s) {
        _cleanup_(agent_reload_done) struct agent_reload rl = {};
        int r;

        r = tokens_prepare(NULL, s->cfg, &rl);
        if (r < 0)
                return r;
        agent_reload_commit(&rl, s->cfg, &s->tokens, &s->n_tokens);
        return 0;
}

static int signals_open(void) {
        sigset_t mask;
        int fd;

        (void) sigemptyset(&mask);
        (void) sigaddset(&mask, SIGTERM);
        (void) sigaddset(&mask, SIGINT);
        (void) sigaddset(&mask, SIGHUP);
        (void) sigaddset(&mask, SIGCHLD);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return negative_errno();
        fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
        return fd < 0 ? negative_errno() : fd;
}

/* The one-line state for STATUS=; also decides READY=1: every token settled (provisioned and its
 * target applied, or failed for a reason retrying alone will not fix, or not provisionable yet). */
static bool status_compute(const struct service *s, char **ret) {
        size_t ready = 0, pending = 0;
        bool settled = s->launcher->running;
        _cleanup_free_ char *problems = NULL;
        char *p = NULL;

        for (size_t i = 0; i < s->n_tokens; i++) {
                const struct agent_token *t = s->tokens[i];
                if (t->state == AGENT_TOKEN_READY)
                        ready++;
                else if (t->state == AGENT_TOKEN_UNSUPPORTED || t->state == AGENT_TOKEN_FAILED) {
                        if (asprintf(&p, "%s%s'%s' %s%s%s", problems ?: "", problems ? "; " : "", t->label,
                                     agent_token_state_to_string(t->state), t->error ? ": " : "",
                                     t->error ?: "") >= 0) {
                                free(problems);
                                problems = p;
                        }
                } else
                        pending++;
                if (!t->settled)
                        settled = false;
        }
        if (!s->launcher->running)
                p = strdup("Waiting for the enclave");
        else if (asprintf(&p, "%zu of %zu token%s served%s%s%s", ready, s->n_tokens,
                          s->n_tokens == 1 ? "" : "s", pending ? ", provisioning" : "", problems ? "; " : "",
                          problems ?: "") < 0)
                p = NULL;
        if (p) {
                /* one line, bounded: STATUS= is for systemctl status */
                for (char *c = p; *c; c++)
                        if (*c == '\n' || *c == '\r')
                                *c = ' ';
                if (strlen(p) > 900)
                        strcpy(p + 896, "...");
        }
        *ret = p;
        return settled;
}

/* <runtime_dir>/status for `enclave-acm status`, rewritten when its text changes. */
static void state_write(struct service *s, bool stopped) {
        _cleanup_free_ char *text = NULL, *path = NULL;
        uint64_t now = (uint64_t) MAX(time(NULL), (time_t) 0), updated = now - now % heartbeat_secs(s->cfg);
        size_t len;
        int r;

        r = agent_status_render(
                &(struct agent_status_info){ .config_path = s->config_path,
                                             .cfg = s->cfg,
                                             .launcher = s->launcher,
                                             .tokens = s->tokens,
                                             .n_tokens = s->n_tokens,
                                             .pid = getpid(),
                                             .started = s->started,
                                             .enclave_failures = s->enclave_failures,
                                             .status = s->status,
                                             .stopped = stopped,
                                             .health = &s->health,
                                             .draining = s->draining,
                                             .health_updated = updated,
                                             .health_stale_after = stale_after_secs(s->cfg) },
                &text, &len);
        if (r >= 0 && s->state_text && strcmp(text, s->state_text) == 0)
                return;
        if (r >= 0 && asprintf(&path, "%s/%s", s->cfg->options.runtime_dir, AGENT_STATE_FILE) < 0)
                r = -ENOMEM;
        if (r >= 0) {
                r = pinstore_mkdir_p(s->cfg->options.runtime_dir, 0755);
                if (r >= 0)
                        r = pinstore_write_atomic(path, text, len, 0644, (uid_t) -1, (gid_t) -1);
        }
        if (r < 0) {
                if (!s->state_warned)
                        log_warning_errno(r,
                                          "Cannot write the state file in '%s' (enclave-acm status will not "
                                          "show the agent), ignoring: %m",
                                          s->cfg->options.runtime_dir);
                s->state_warned = true;
                return;
        }
        s->state_warned = false;
        free(s->state_text);
        s->state_text = TAKE_PTR(text);
}

static void status_update(struct service *s) {
        _cleanup_free_ char *st = NULL;
        bool settled = status_compute(s, &st);

        if (st && (!s->status || strcmp(st, s->status) != 0)) {
                if (notify_sendf("STATUS=%s", st) < 0)
                        log_debug("Cannot send STATUS= to systemd, ignoring");
                free(s->status);
                s->status = TAKE_PTR(st);
        }
        if (settled && !s->ready_sent) {
                notify("READY=1");
                s->ready_sent = true;
                log_info("Ready: %s", s->status ?: "");
        }
        state_write(s, false);
        if (s->metrics.http)
                agent_metrics_publish_service(s->tokens, s->n_tokens, s->launcher);
}

/* The enclave died, or stopped answering and was stopped: launch another (at once the first time, then
 * with back-off). The module reconnects by itself once the new one answers: no server restart. */
static void enclave_lost(struct service *s, uint64_t now) {
        s->client = rpc_client_free(s->client);
        s->enclave_died = true; /* the next launch is a relaunch (metrics) */
        s->enclave_failures++;
        s->enclave_retry_at = now + (s->enclave_failures > 1 ? agent_backoff_usec(s->enclave_failures - 1,
                                                                                  ENCLAVE_BACKOFF_MAX_USEC)
                                                             : 0);
        for (size_t i = 0; i < s->n_tokens; i++)
                s->tokens[i]->retry_at_usec = 0;
}

/* PING on a fresh connection to address, by deadline_ms (mono_msec()): a frozen enclave-token still
 * completes the connect through its listen backlog, then never answers HELLO. */
static int ping_channel(const char *address, enum rpc_channel ch, uint64_t deadline_ms) {
        _cleanup_(rpc_client_freep) struct rpc_client *c = NULL;
        struct transport_addr a;
        uint64_t now = mono_msec();
        int r;

        if (!address)
                return -ENOTCONN;
        r = transport_addr_parse(address, &a);
        if (r < 0)
                return r;
        if (now >= deadline_ms)
                return -ETIMEDOUT;
        r = rpc_client_open_until(&a, ch, (int) MIN(deadline_ms - now, (uint64_t) INT32_MAX), deadline_ms,
                                  "enclave-acm-agent health", &c);
        if (r < 0)
                return r;
        return rpc_client_call_msg(c, RPC_CALL_PING, NULL, NULL);
}

/* Both channels within one health_timeout_ms: the loop waits for the ping at most that long. */
static void health_step(struct service *s, uint64_t now) {
        uint64_t deadline_ms = now / 1000u + s->cfg->options.health_timeout_ms, took;
        const char *where = "data channel";
        char error[96];
        int r;

        if (!s->launcher->running || !agent_health_ping_due(&s->health, now))
                return;
        r = ping_channel(s->launcher->data_address, RPC_CHANNEL_DATA, deadline_ms);
        if (r >= 0) {
                where = "control channel";
                r = ping_channel(s->launcher->control_address, RPC_CHANNEL_CONTROL, deadline_ms);
        }
        took = mono_usec() - now;
        (void) snprintf(error, sizeof(error), "%s: %s", where,
                        r == -ETIMEDOUT ? "no answer within health_timeout_ms" : strerror(-r));
        if (r < 0)
                log_warning("The enclave missed an in-band ping (%s, %u of %" PRIu64 " before a relaunch)",
                            error, s->health.misses + 1, s->cfg->options.health_misses);
        else
                log_debug("In-band ping answered in %" PRIu64 " us", took);
        agent_metrics_set_ping((double) took / 1e6, r >= 0);
        if (!agent_health_ping_done(&s->health, mono_usec(), (uint64_t) MAX(time(NULL), (time_t) 0), r, took,
                                    error))
                return;
        log_error("The enclave missed %" PRIu64 " in-band pings in a row: stopping it and launching another",
                  s->cfg->options.health_misses);
        s->client = rpc_client_free(s->client);
        launcher_stop(s->launcher); /* SIGTERM, SIGKILL after a bounded wait: a stopped process goes too */
        enclave_lost(s, mono_usec());
}

static void enclave_step(struct service *s, uint64_t now) {
        int r;

        if (s->launcher->running) {
                if (launcher_check(s->launcher)) {
                        if (s->enclave_failures > 0 && now - s->enclave_up_since >= ENCLAVE_STABLE_USEC)
                                s->enclave_failures = 0;
                        return;
                }
                enclave_lost(s, now);
        }
        if (now < s->enclave_retry_at)
                return;
        r = launcher_start(s->launcher);
        if (r < 0) {
                s->enclave_failures++;
                s->enclave_retry_at =
                        now + agent_backoff_usec(s->enclave_failures, ENCLAVE_BACKOFF_MAX_USEC);
                log_warning("Launching the enclave failed (attempt %u), retrying in %" PRIu64 " s",
                            s->enclave_failures, (s->enclave_retry_at - now + 999999u) / 1000000u);
                return;
        }
        s->enclave_up_since = now;
        agent_health_launched(&s->health, mono_usec());
        agent_metrics_count(AGENT_METRICS_LAUNCHES);
        if (s->enclave_died)
                agent_metrics_count(AGENT_METRICS_RELAUNCHES);
        s->enclave_died = false;
}

/* The old enclave of an upgrade: the module's pooled connections to it move to the new one within about
 * a second of their process's next call (p11module/conn.c, addr_check_locked()), so it is stopped once
 * it has had no connection for upgrade_drain_secs, or at upgrade_drain_max_secs (a process that made
 * no call since keeps its idle connection); a call in flight then breaks and the module repeats it on
 * the new enclave (data-channel calls are idempotent). Where connections cannot be counted (vsock) it is
 * stopped after upgrade_drain_secs. */
static void drain_step(struct service *s, uint64_t now) {
        const struct agent_config_options *o = &s->cfg->options;
        int n;

        if (!s->draining)
                return;
        if (!launcher_check(s->draining)) {
                s->draining = launcher_free(s->draining);
                return;
        }
        n = launcher_data_connections(s->draining);
        if (n > 0)
                s->drain_quiet_since = now;
        if (now - s->drain_quiet_since < o->upgrade_drain_secs * 1000000u && now < s->drain_deadline)
                return;
        if (n > 0)
                log_info("Enclave upgrade: the old enclave (launch %u) still has %d connection%s after "
                         "upgrade_drain_max_secs (%" PRIu64 " s): stopping it; the module repeats calls in "
                         "flight on the new enclave",
                         s->draining->launches, n, n == 1 ? "" : "s", o->upgrade_drain_max_secs);
        else
                log_info("Enclave upgrade: the old enclave (launch %u) had %s for %" PRIu64
                         " s: stopping it",
                         s->draining->launches,
                         n == 0 ? "no connection" : "time to drain (vsock: not counted)",
                         o->upgrade_drain_secs);
        s->draining = launcher_free(s->draining); /* terminates it; enclave-token wipes its keys */
        log_info("Enclave upgrade done: launch %u serves", s->launcher->launches);
}

static void main_step(struct service *s) {
        _cleanup_free_ char *error = NULL;
        int r;

        if (s->main_done)
                return;
        r = target_ensure_main(s->cfg, &error);
        if (r < 0) {
                log_error_errno(r, "Cannot prepare '%s' for the token keys: %s",
                                s->cfg->options.server_config, error ?: "failed");
                return;
        }
        if (r > TARGET_UNCHANGED)
                log_info("'%s': added ssl_engine and env lines; nginx %s", s->cfg->options.server_config,
                         target_outcome_to_string(r));
        s->main_done = true;
}

/* One pass: enclave, then each due token. Returns when the loop should wake next. */
static uint64_t service_step(struct service *s) {
        uint64_t now = mono_usec(), next = now + TICK_USEC;

        enclave_step(s, now);
        drain_step(s, now);
        health_step(s, mono_usec());
        next = MIN(next, MAX(agent_health_next_ping(&s->health), now));
        if (s->launcher->running) {
                /* One KMS round for every token of the pass whose encrypted key must be sent. */
                struct agent_round round;

                agent_round_init(&round, s->cfg, s->launcher);
                for (size_t i = 0; i < s->n_tokens; i++) {
                        struct agent_token *t = s->tokens[i];
                        if (agent_token_next_usec(t, s->launcher) <= now)
                                (void) agent_token_step_round(t, s->cfg, s->launcher, &s->client, &round,
                                                              now);
                        next = MIN(next, agent_token_next_usec(t, s->launcher));
                }
                agent_round_end(&round);
                main_step(s);
        } else
                next = MIN(next, MAX(s->enclave_retry_at, now + 100000u));
        status_update(s);
        return MAX(next, now + 10000u);
}

static bool enclave_cfg_equal(const struct agent_config *a, const struct agent_config *b) {
        const struct agent_config_enclave *x = &a->enclave, *y = &b->enclave;

        return x->launcher == y->launcher && x->cpu_count == y->cpu_count &&
               x->memory_mib == y->memory_mib && strcmp(x->image_path ?: "", y->image_path ?: "") == 0 &&
               x->p11kit_port == y->p11kit_port && x->rpc_port == y->rpc_port && x->cid == y->cid &&
               strcmp(x->token_binary ?: "", y->token_binary ?: "") == 0 &&
               strcmp(a->options.runtime_dir, b->options.runtime_dir) == 0 &&
               x->nsm_simulator == y->nsm_simulator &&
               (!x->nsm_simulator ||
                memcmp(&x->expected_pcrs, &y->expected_pcrs, sizeof(x->expected_pcrs)) == 0) &&
               strcmp(x->kms_proxy ?: "", y->kms_proxy ?: "") == 0 &&
               strcmp(x->kms_ca_file ?: "", y->kms_ca_file ?: "") == 0;
}

static void warn_simulator(const struct agent_config *cfg) {
        const struct agent_config_enclave *e = &cfg->enclave;

        if (e->launcher == AGENT_LAUNCHER_LOCAL && e->nsm_simulator)
                log_warning("NSM simulator: attestation proves nothing; for development and tests only "
                            "(enclave.nsm_simulator: true)");
        if (e->measurements_ignored)
                log_debug("enclave.expected_pcrs in the configuration win over '%s'",
                          e->measurements_ignored);
        else if (e->measurements_path)
                log_debug("Expected PCRs from '%s'", e->measurements_path);
}

/* Reload with changed enclave settings: a launcher for the new ones. An upgrade (*ret_upgrade) when the
 * running enclave can stay up next to the new one (same launcher kind and runtime directory, the
 * allocator has room): then the new enclave is booted here, unpublished; else the caller restarts. On
 * failure (logged) the reload is abandoned and the running enclave stays. */
static int enclave_restart_prepare(const struct agent_config *ncfg, struct launcher **ret) {
        int r = launcher_new(ncfg, ret);

        if (r < 0)
                return log_error_errno(r,
                                       "Reload failed: cannot set up the new enclave settings: %m. Keeping "
                                       "the running configuration.");
        return 0;
}

static int enclave_prepare(struct service *s, const struct agent_config *ncfg, struct launcher **ret,
                           bool *ret_upgrade) {
        _cleanup_(launcher_freep) struct launcher *nl = NULL;
        _cleanup_free_ char *why = NULL;
        int r;

        *ret_upgrade = false;
        if (!s->launcher->running || s->launcher->kind != ncfg->enclave.launcher ||
            strcmp(s->cfg->options.runtime_dir, ncfg->options.runtime_dir) != 0)
                return enclave_restart_prepare(ncfg, ret);
        if (s->draining) {
                log_info("Enclave upgrade: stopping the enclave still draining from the previous upgrade");
                s->draining = launcher_free(s->draining);
        }
        r = launcher_new_next(ncfg, s->launcher, &nl);
        if (r < 0)
                return log_error_errno(r,
                                       "Reload failed: out of memory. Keeping the running configuration.");
        r = launcher_room_for_two(s->launcher, nl, &why);
        if (r <= 0) {
                log_warning("Enclave upgrade: no room for a second enclave (%s): restarting the enclave "
                            "instead; signing fails until the new one is provisioned",
                            why ?: strerror(-r));
                return enclave_restart_prepare(ncfg, ret);
        }
        log_info("Enclave upgrade: starting the new enclave next to the running one (launch %u)",
                 s->launcher->launches);
        r = launcher_start_unpublished(nl);
        if (r < 0)
                return log_error_errno(r,
                                       "Reload failed: the new enclave did not start. Keeping the running "
                                       "configuration and enclave.");
        *ret = TAKE_PTR(nl);
        *ret_upgrade = true;
        return 0;
}

/* What an upgrade changes in a token it provisions in the new enclave, put back when it is abandoned. */
struct token_snapshot {
        bool taken;
        unsigned provisioned_in, failures;
        enum agent_token_state state;
        uint64_t failed_at, retry_at_usec;
        char *error;
};

static void snapshots_free(struct token_snapshot *v, size_t n) {
        for (size_t i = 0; v && i < n; i++)
                free(v[i].error);
        free(v);
}

static int snapshot_take(const struct agent_token *t, struct token_snapshot *ret) {
        *ret = (struct token_snapshot){ .taken = true,
                                        .provisioned_in = t->provisioned_in,
                                        .failures = t->failures,
                                        .state = t->state,
                                        .failed_at = t->failed_at,
                                        .retry_at_usec = t->retry_at_usec };
        if (t->error && !(ret->error = strdup(t->error)))
                return -ENOMEM;
        return 0;
}

static void snapshot_restore(struct agent_token *t, struct token_snapshot *sn) {
        t->provisioned_in = sn->provisioned_in;
        t->failures = sn->failures;
        t->state = sn->state;
        t->failed_at = sn->failed_at;
        t->retry_at_usec = sn->retry_at_usec;
        free(t->error);
        t->error = TAKE_PTR(sn->error);
}

/* Each token the running enclave serves into nl. NULL when all of them made it, else the label of the
 * first that did not (a snapshot that cannot be taken counts as that); snap[i] holds what each touched
 * token was. */
static const char *upgrade_provision(struct service *s, struct launcher *nl, struct rpc_client **client,
                                     struct token_snapshot *snap) {
        struct agent_round round;
        const char *failed = NULL;
        unsigned old = s->launcher->launches;
        uint64_t now = mono_usec();

        agent_round_init(&round, s->cfg, nl);
        for (size_t i = 0; i < s->n_tokens && !failed; i++) {
                struct agent_token *t = s->tokens[i];

                if (t->provisioned_in != old)
                        continue; /* not served now: the loop provisions it in the new enclave later */
                if (snapshot_take(t, &snap[i]) < 0) {
                        failed = t->label;
                        break;
                }
                t->retry_at_usec = 0;
                (void) agent_token_step_round(t, s->cfg, nl, client, &round, now);
                if (t->provisioned_in != nl->launches)
                        failed = t->label;
        }
        agent_round_end(&round);
        return failed;
}

/* Provision every token the running enclave serves into the booted, unpublished nl, then point the
 * module's address file at it and let the old one drain. A token that cannot be provisioned there
 * abandons the upgrade: nl is stopped, the tokens are put back as they were and the running enclave
 * keeps serving (with its old image). */
static bool upgrade_switch(struct service *s, struct launcher *nl) {
        _cleanup_(rpc_client_freep) struct rpc_client *client = NULL;
        struct token_snapshot *snap = calloc(s->n_tokens + 1, sizeof(*snap));
        struct launcher *old = s->launcher;
        uint64_t now = mono_usec();
        const char *failed;
        int r = 0;

        if (!snap) {
                log_error("Enclave upgrade failed: out of memory. Keeping the running enclave.");
                launcher_free(nl);
                return false;
        }
        failed = upgrade_provision(s, nl, &client, snap);
        if (!failed)
                r = launcher_publish(nl);
        if (failed || r < 0) {
                if (failed)
                        log_error(
                                "Enclave upgrade failed: token '%s' could not be provisioned in the new "
                                "enclave. Keeping the running enclave (launch %u) and its settings; SIGHUP "
                                "tries again.",
                                failed, old->launches);
                for (size_t i = 0; i < s->n_tokens; i++)
                        if (snap[i].taken)
                                snapshot_restore(s->tokens[i], &snap[i]);
                snapshots_free(snap, s->n_tokens);
                launcher_free(nl);
                return false;
        }
        snapshots_free(snap, s->n_tokens);
        log_info("Enclave upgrade: every token is provisioned in the new enclave (launch %u) and the "
                 "module's "
                 "address file points at it; the old one (launch %u) drains for at most %" PRIu64 " s",
                 nl->launches, old->launches, s->cfg->options.upgrade_drain_max_secs);
        rpc_client_free(s->client);
        s->client = TAKE_PTR(client);
        s->draining = old;
        s->launcher = nl;
        s->drain_quiet_since = now;
        s->drain_deadline = now + s->cfg->options.upgrade_drain_max_secs * 1000000u;
        s->enclave_up_since = now;
        agent_health_launched(&s->health, now);
        return true;
}

/* The prepared set, and the launcher when the enclave settings changed, replace the running ones;
 * what left the set is removed from the enclave. Cannot fail. */
static void service_swap(struct service *s, struct agent_config **ncfg, struct agent_reload *rl,
                         struct launcher **nl, bool upgrade) {
        struct agent_health_config hc;
        struct agent_config *old;

        agent_reload_commit(rl, *ncfg, &s->tokens, &s->n_tokens);
        for (size_t i = 0; i < rl->plan.n_entries; i++)
                if (rl->plan.entries[i].action != AGENT_RECONCILE_KEEP)
                        log_info("Token '%s' is %s: provisioning it", s->tokens[i]->label,
                                 rl->plan.entries[i].action == AGENT_RECONCILE_ADD ? "new" : "changed");
        if (*nl && !upgrade) {
                log_info("The enclave settings changed: relaunching it");
                s->draining = launcher_free(s->draining);
                warn_simulator(*ncfg);
                s->client = rpc_client_free(s->client);
                launcher_free(s->launcher); /* terminates the enclave and with it every token */
                s->launcher = TAKE_PTR(*nl);
                s->enclave_retry_at = 0;
        }
        for (size_t i = 0; i < rl->n_removed; i++) {
                log_info("Token '%s' was removed or changed", rl->removed[i]->label);
                (void) agent_token_remove(rl->removed[i], s->launcher, &s->client);
        }
        log_set_max_level((*ncfg)->log.level);
        log_set_timestamp((*ncfg)->log.enable_timestamp);
        health_config(*ncfg, &hc);
        agent_health_reconfigure(&s->health, &hc, mono_usec());
        old = s->cfg;
        s->cfg = TAKE_PTR(*ncfg);
        s->main_done = false;
        if (*nl && upgrade) {
                warn_simulator(s->cfg);
                if (!upgrade_switch(s, TAKE_PTR(*nl))) {
                        /* The old enclave runs on: its settings are the running ones (expected PCRs, image),
                         * and the next SIGHUP tries the upgrade again. */
                        struct agent_config_enclave e = s->cfg->enclave;

                        s->cfg->enclave = old->enclave;
                        old->enclave = e;
                }
        }
        agent_config_free(old);
}

/* SIGHUP: load and check the new config, build its whole token set (new tokens created, unchanged ones
 * carried over, changed ones rebuilt) and a launcher when the enclave settings changed; only when all
 * of it succeeded swap it in. On any failure the running config, tokens and enclave stay as they are. */
static void service_reload(struct service *s) {
        _cleanup_(agent_config_diag_done) struct agent_config_diag diag = {};
        _cleanup_(agent_config_freep) struct agent_config *ncfg = NULL;
        _cleanup_(agent_reload_done) struct agent_reload rl = {};
        _cleanup_(launcher_freep) struct launcher *nl = NULL;
        bool upgrade = false;
        int r;

        if (notify_sendf("RELOADING=1\nMONOTONIC_USEC=%" PRIu64 "\nSTATUS=Reloading the configuration",
                         mono_usec()) < 0)
                log_warning("Cannot send RELOADING=1 to systemd, ignoring");
        log_info("Reloading the configuration '%s'", s->config_path);
        r = agent_config_load(s->config_path, &ncfg, &diag);
        for (size_t i = 0; i < diag.n_entries; i++) {
                _cleanup_free_ char *m = NULL;
                if (agent_config_diag_format(&diag, &diag.entries[i], &m) >= 0)
                        log_full(diag.entries[i].severity == AGENT_CONFIG_ERROR ? LOG_ERR : LOG_WARNING,
                                 "%s", m);
        }
        if (r < 0)
                log_error_errno(r, "The new configuration is not valid, keeping the running one: %m");
        else
                r = tokens_prepare(s->cfg, ncfg, &rl);
        if (r >= 0 && !enclave_cfg_equal(s->cfg, ncfg))
                r = enclave_prepare(s, ncfg, &nl, &upgrade);
        if (r >= 0) {
                service_swap(s, &ncfg, &rl, &nl, upgrade);
                agent_metrics_endpoint_apply(&s->metrics, s->cfg->options.metrics_listen);
        }
        free(s->status);
        s->status = NULL;
        s->ready_sent = false; /* READY=1 again once the new state settled: ends the reload for systemd */
}

/* From the loop only, and only while the in-band pings work (or the enclave was relaunched recently):
 * an enclave that stays unreachable although relaunched gets the agent restarted by systemd. */
static void watchdog_feed(struct service *s, uint64_t now) {
        if (!agent_health_watchdog_ok(&s->health, now)) {
                if (!s->watchdog_starved)
                        log_error("The enclave has not answered an in-band ping for too long: no longer "
                                  "feeding systemd's watchdog");
                s->watchdog_starved = true;
                return;
        }
        if (s->watchdog_starved)
                log_info("In-band pings answered again: feeding systemd's watchdog");
        s->watchdog_starved = false;
        notify("WATCHDOG=1");
}

static int service_loop(struct service *s, int sigfd) {
        for (;;) {
                struct pollfd p = { .fd = sigfd, .events = POLLIN };
                struct signalfd_siginfo si;
                uint64_t next = service_step(s), now = mono_usec();
                int timeout;

                if (s->watchdog_usec) {
                        if (now >= s->next_watchdog) {
                                watchdog_feed(s, now);
                                s->next_watchdog = now + s->watchdog_usec / 2;
                        }
                        next = MIN(next, s->next_watchdog);
                }
                timeout = next <= now ? 0 : (int) MIN((next - now + 999u) / 1000u, 1000u);
                if (poll(&p, 1, timeout) < 0 && errno != EINTR)
                        return log_error_errno(negative_errno(), "poll() failed: %m");
                while (read(sigfd, &si, sizeof(si)) == (ssize_t) sizeof(si)) {
                        switch (si.ssi_signo) {
                        case SIGTERM:
                        case SIGINT:
                                log_info("Received %s, stopping", strsignal((int) si.ssi_signo));
                                return 0;
                        case SIGHUP: service_reload(s); break;
                        default: break; /* SIGCHLD: the next step reaps */
                        }
                }
        }
}

/* p11-kit consumers (p11tool, GnuTLS, pkcs11-provider through p11-kit-proxy) find the tokens only
 * through the module file; the package installs it (the libp11 engine loads the module by path). */
static void check_module_file(void) {
        static const char *const dirs[] = { "/etc/pkcs11/modules", P11_MODULE_CONFIGS };

        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                _cleanup_free_ char *p = NULL;

                if (asprintf(&p, "%s/enclave-acm.module", dirs[i]) >= 0 && access(p, F_OK) == 0)
                        return;
        }
        log_notice("No p11-kit module file 'enclave-acm.module' in /etc/pkcs11/modules or %s: p11-kit "
                   "consumers will not see the tokens (the libp11 engine, which loads the module by path, "
                   "is not affected); install packaging/enclave-acm.module there",
                   P11_MODULE_CONFIGS);
}

int agent_service_run(const char *config_path, struct agent_config **cfg) {
        struct service s = { .config_path = config_path, .cfg = TAKE_PTR(*cfg) };
        _cleanup_close_ int sigfd = -1;
        int r;

        sigfd = signals_open();
        if (sigfd < 0) {
                r = log_error_errno(sigfd, "Cannot set up signal handling: %m");
                agent_config_free(s.cfg);
                return r;
        }
        r = launcher_new(s.cfg, &s.launcher);
        if (r < 0)
                r = log_error_errno(r, "Out of memory");
        else
                r = tokens_start(&s);
        if (r < 0) {
                launcher_free(s.launcher);
                agent_config_free(s.cfg);
                return r;
        }
        s.watchdog_usec = notify_watchdog_usec();
        {
                struct agent_health_config hc;

                health_config(s.cfg, &hc);
                agent_health_init(&s.health, &hc, mono_usec());
        }
        s.started = (uint64_t) MAX(time(NULL), (time_t) 0);
        log_info("enclave-acm-agent %s starting: %zu token%s, %s launcher, %s via %s", ENCLAVE_ACM_VERSION,
                 s.n_tokens, s.n_tokens == 1 ? "" : "s", agent_launcher_to_string(s.cfg->enclave.launcher),
                 agent_service_to_string(s.cfg->options.service),
                 agent_server_control_to_string(s.cfg->options.server_control));
        check_module_file();
        warn_simulator(s.cfg);
        agent_metrics_endpoint_apply(&s.metrics, s.cfg->options.metrics_listen);
        notify("STATUS=Launching the enclave");

        r = service_loop(&s, sigfd);
        agent_metrics_endpoint_apply(&s.metrics, NULL);

        notify("STOPPING=1\nSTATUS=Stopping: terminating the enclave (certificate files are kept)");
        s.client = rpc_client_free(s.client);
        s.draining = launcher_free(s.draining);
        s.launcher = launcher_free(s.launcher); /* terminates the enclave */
        free(s.status);
        s.status = strdup("Stopped");
        state_write(&s, true);
        free(s.state_text);
        agent_token_set_free(s.tokens, s.n_tokens);
        free(s.status);
        agent_config_free(s.cfg);
        log_info("Stopped");
        return r;
}
