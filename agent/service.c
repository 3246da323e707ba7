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
        uint64_t started;                      /* Unix seconds, for the state file */
        char *state_text;                      /* the state file as last written */
        bool state_warned;                     /* a failure to write it was logged */
        struct agent_metrics_endpoint metrics; /* options.metrics_listen */
        bool enclave_died;                     /* the next launch is a relaunch */
};

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
        size_t len;
        int r;

        r = agent_status_render(&(struct agent_status_info){ .config_path = s->config_path,
                                                             .cfg = s->cfg,
                                                             .launcher = s->launcher,
                                                             .tokens = s->tokens,
                                                             .n_tokens = s->n_tokens,
                                                             .pid = getpid(),
                                                             .started = s->started,
                                                             .enclave_failures = s->enclave_failures,
                                                             .status = s->status,
                                                             .stopped = stopped },
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

static void enclave_step(struct service *s, uint64_t now) {
        int r;

        if (s->launcher->running) {
                if (launcher_check(s->launcher)) {
                        if (s->enclave_failures > 0 && now - s->enclave_up_since >= ENCLAVE_STABLE_USEC)
                                s->enclave_failures = 0;
                        return;
                }
                /* It died. The module reconnects by itself once the new one answers: no server restart. */
                s->client = rpc_client_free(s->client);
                s->enclave_died = true;
                s->enclave_failures++;
                s->enclave_retry_at =
                        now + (s->enclave_failures > 1 ? agent_backoff_usec(s->enclave_failures - 1,
                                                                            ENCLAVE_BACKOFF_MAX_USEC)
                                                       : 0);
                for (size_t i = 0; i < s->n_tokens; i++)
                        s->tokens[i]->retry_at_usec = 0;
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
        agent_metrics_count(AGENT_METRICS_LAUNCHES);
        if (s->enclave_died)
                agent_metrics_count(AGENT_METRICS_RELAUNCHES);
        s->enclave_died = false;
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

/* The prepared set, and the launcher when the enclave settings changed, replace the running ones;
 * what left the set is removed from the enclave. Cannot fail. */
static void service_swap(struct service *s, struct agent_config **ncfg, struct agent_reload *rl,
                         struct launcher **nl) {
        agent_reload_commit(rl, *ncfg, &s->tokens, &s->n_tokens);
        for (size_t i = 0; i < rl->plan.n_entries; i++)
                if (rl->plan.entries[i].action != AGENT_RECONCILE_KEEP)
                        log_info("Token '%s' is %s: provisioning it", s->tokens[i]->label,
                                 rl->plan.entries[i].action == AGENT_RECONCILE_ADD ? "new" : "changed");
        if (*nl) {
                log_info("The enclave settings changed: relaunching it");
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
        agent_config_free(s->cfg);
        s->cfg = TAKE_PTR(*ncfg);
        s->main_done = false;
}

/* SIGHUP: load and check the new config, build its whole token set (new tokens created, unchanged ones
 * carried over, changed ones rebuilt) and a launcher when the enclave settings changed; only when all
 * of it succeeded swap it in. On any failure the running config, tokens and enclave stay as they are. */
static void service_reload(struct service *s) {
        _cleanup_(agent_config_diag_done) struct agent_config_diag diag = {};
        _cleanup_(agent_config_freep) struct agent_config *ncfg = NULL;
        _cleanup_(agent_reload_done) struct agent_reload rl = {};
        _cleanup_(launcher_freep) struct launcher *nl = NULL;
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
        if (r >= 0 && !enclave_cfg_equal(s->cfg, ncfg)) {
                r = launcher_new(ncfg, &nl);
                if (r < 0)
                        log_error_errno(r, "Reload failed: cannot set up the new enclave settings: %m. "
                                           "Keeping the running configuration.");
        }
        if (r >= 0) {
                service_swap(s, &ncfg, &rl, &nl);
                agent_metrics_endpoint_apply(&s->metrics, s->cfg->options.metrics_listen);
        }
        free(s->status);
        s->status = NULL;
        s->ready_sent = false; /* READY=1 again once the new state settled: ends the reload for systemd */
}

static int service_loop(struct service *s, int sigfd) {
        for (;;) {
                struct pollfd p = { .fd = sigfd, .events = POLLIN };
                struct signalfd_siginfo si;
                uint64_t next = service_step(s), now = mono_usec();
                int timeout;

                if (s->watchdog_usec) {
                        if (now >= s->next_watchdog) {
                                notify("WATCHDOG=1");
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
