/* Target: agent_config_parse
 *
 * Input: an acm.yaml document. Whatever it holds, the parser fails cleanly (-EINVAL with at least
 * one error) or returns a configuration that keeps every documented bound. */
#include <stdlib.h>
#include <string.h>

#include "agent/config/config.h"
#include "agent/pinstore.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_config(const struct agent_config *c) {
        if (c->n_tokens > AGENT_CONFIG_MAX_TOKENS || (c->n_tokens > 0 && !c->tokens))
                abort();
        if (!c->enclave.image_path || !c->options.runtime_dir || !c->options.state_dir)
                abort();
        if (c->options.sync_interval_secs == 0 || c->enclave.boot_timeout_ms == 0 ||
            c->enclave.attestation_retry_count == 0 || c->enclave.p11kit_port == c->enclave.rpc_port)
                abort();
        if (c->enclave.launcher == AGENT_LAUNCHER_NITRO_CLI &&
            (c->enclave.cpu_count == 0 || c->enclave.memory_mib == 0))
                abort();
        for (size_t i = 0; i < c->n_tokens; i++) {
                const struct agent_config_token *t = &c->tokens[i];
                size_t len = t->label ? strlen(t->label) : 0;

                if (len < AGENT_CONFIG_LABEL_MIN || len > AGENT_CONFIG_LABEL_MAX)
                        abort();
                if (t->pin && (t->pin->len < AGENT_CONFIG_PIN_MIN || t->pin->len > AGENT_CONFIG_PIN_MAX))
                        abort();
                if (!agent_source_kind_to_string(t->source.kind) || t->refresh_interval_secs == 0)
                        abort();
                if (t->source.kind == AGENT_SOURCE_FILE && c->enclave.launcher != AGENT_LAUNCHER_LOCAL)
                        abort();
                if (t->target.present && (!t->target.path || t->target.path[0] != '/'))
                        abort();
                for (size_t j = 0; j < i; j++)
                        if (strcmp(t->label, c->tokens[j].label) == 0)
                                abort();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct agent_config_diag diag = {};
        struct agent_config *c = NULL;
        int r;

        uint32_t key_id = 0;

        /* The same bytes as the state file of a token's last key id: 1..65535 or refused. */
        if (pinstore_parse_key_id((const char *) data, size, &key_id) == 0 && (key_id < 1 || key_id > 65535))
                abort();

        r = agent_config_parse((const char *) data, size, "fuzz.yaml", &c, &diag);
        if (r == 0) {
                if (!c || diag.n_errors != 0)
                        abort();
                check_config(c);
        } else if (r != -ENOMEM && (c || (r == -EINVAL && diag.n_errors == 0)))
                abort();
        if (diag.n_entries > AGENT_CONFIG_MAX_DIAGS || diag.n_entries > diag.n_errors + diag.n_warnings)
                abort();
        for (size_t i = 0; i < diag.n_entries; i++) {
                char *s = NULL;

                if (agent_config_diag_format(&diag, &diag.entries[i], &s) < 0)
                        abort();
                free(s);
        }
        agent_config_free(c);
        agent_config_diag_done(&diag);
        return 0;
}
