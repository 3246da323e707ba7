/* Rendering the agent's state file: one "agent" record, then one "token" record per token. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "agent/status.h"
#include "parent/agent-state.h"

static void put_time(FILE *f, const char *key, uint64_t t) {
        if (t > 0)
                agent_state_put_u64(f, key, t);
}

static void render_agent(FILE *f, const struct agent_status_info *i) {
        const struct launcher *l = i->launcher;

        agent_state_begin(f, "agent");
        agent_state_put(f, "version", ENCLAVE_ACM_VERSION);
        agent_state_put_u64(f, "pid", (uint64_t) i->pid);
        put_time(f, "started", i->started);
        agent_state_put(f, "config", i->config_path);
        agent_state_put(f, "service", agent_service_to_string(i->cfg->options.service));
        agent_state_put(f, "server_control", agent_server_control_to_string(i->cfg->options.server_control));
        agent_state_put(f, "launcher", agent_launcher_to_string(i->cfg->enclave.launcher));
        agent_state_put(f, "enclave", i->stopped ? "stopped" : l && l->running ? "running" : "down");
        if (l && l->running && !i->stopped) {
                agent_state_put_u64(f, "launches", l->launches);
                agent_state_put(f, "enclave_id", l->enclave_id);
                if (l->pid > 0)
                        agent_state_put_u64(f, "enclave_pid", (uint64_t) l->pid);
                agent_state_put(f, "control", l->control_address);
                agent_state_put(f, "data", l->data_address);
        }
        if (i->draining && i->draining->running && !i->stopped) {
                agent_state_put_u64(f, "draining_launch", i->draining->launches);
                if (i->draining->pid > 0)
                        agent_state_put_u64(f, "draining_pid", (uint64_t) i->draining->pid);
        }
        agent_state_put_u64(f, "enclave_failures", i->enclave_failures);
        agent_state_put_u64(f, "sync_interval", i->cfg->options.sync_interval_secs);
        agent_state_put(f, "status", i->status);
        agent_state_end(f);
}

static void render_token(FILE *f, const struct agent_token *t) {
        const struct agent_config_token *c = t->cfg;

        agent_state_begin(f, "token");
        agent_state_put(f, "label", t->label);
        agent_state_put(f, "state", agent_token_state_to_string(t->state));
        agent_state_put(f, "source", agent_source_kind_to_string(c->source.kind));
        if (t->provisioned_at > 0)
                agent_state_put_u64(f, "key_id", t->cur.key_id);
        put_time(f, "not_after", t->cur.not_after);
        put_time(f, "provisioned", t->provisioned_at);
        put_time(f, "synced", t->synced_at);
        put_time(f, "refreshed", t->refreshed_at);
        if (agent_config_token_encrypted(c)) {
                agent_state_put(f, "key_source", "kms"); /* decrypted by the enclave */
                put_time(f, "expires", t->expires);
        }
        agent_state_put_u64(f, "refresh_interval", c->refresh_interval_secs);
        if (c->target.present) {
                agent_state_put(f, "target_kind", agent_target_kind_to_string(c->target.kind));
                agent_state_put(f, "target", c->target.path);
                agent_state_put(f, "target_applied", t->target_done ? "yes" : "no");
        }
        agent_state_put_u64(f, "failures", t->failures);
        agent_state_put(f, "error", t->error);
        put_time(f, "error_at", t->error ? t->failed_at : 0);
        agent_state_end(f);
}

int agent_status_health(const struct agent_status_info *i, uint64_t now, struct agent_health_report *ret) {
        _cleanup_free_ struct agent_health_token *tokens = calloc(i->n_tokens + 1, sizeof(*tokens));
        struct agent_health_input in = { .agent_stopped = i->stopped,
                                         .enclave_running =
                                                 !i->stopped && i->launcher && i->launcher->running,
                                         .now = now,
                                         .tokens = tokens,
                                         .n_tokens = i->n_tokens };

        if (!tokens)
                return -ENOMEM;
        for (size_t k = 0; k < i->n_tokens; k++) {
                const struct agent_token *t = i->tokens[k];

                tokens[k] = (struct agent_health_token){
                        .label = t->label,
                        .failing = t->state == AGENT_TOKEN_FAILED || t->state == AGENT_TOKEN_UNSUPPORTED,
                        .error = t->error,
                        .not_after = t->cur.not_after,
                };
        }
        return agent_health_evaluate(i->health, &in, ret);
}

static int render_health(FILE *f, const struct agent_status_info *i) {
        _cleanup_(agent_health_report_done) struct agent_health_report rep = {};
        int r;

        if (!i->health)
                return 0;
        r = agent_status_health(i, i->health_updated, &rep);
        if (r < 0)
                return r;
        agent_health_render(i->health, &rep, i->health_updated, i->health_stale_after, f);
        return 0;
}

int agent_status_render(const struct agent_status_info *i, char **ret_text, size_t *ret_len) {
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        int r;

        if (!f)
                return -ENOMEM;
        (void) fputs("# enclave-acm-agent state; read it with 'enclave-acm status'\n", f);
        render_agent(f, i);
        for (size_t k = 0; k < i->n_tokens; k++)
                render_token(f, i->tokens[k]);
        r = render_health(f, i);
        if ((ferror(f) | fclose(f)) || r < 0) {
                free(text);
                return -ENOMEM;
        }
        *ret_text = text;
        *ret_len = len;
        return 0;
}
