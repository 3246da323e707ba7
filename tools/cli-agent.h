/* `enclave-acm status`, the agent's side: its state file (<runtime_dir>/status) read and shown. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "parent/agent-state.h"
#include "common/json.h"

#define CLI_DEFAULT_RUNTIME_DIR "/run/enclave-acm"

struct cli_agent {
        char *path;
        bool running; /* the pid in the file is an enclave-acm-agent process */
        struct agent_state_record agent;
        struct agent_state_record *tokens;
        size_t n_tokens;
        struct agent_state_record health; /* kind NULL: the agent wrote none (older agent) */
        struct agent_state_record *problems;
        size_t n_problems;
};

/* Read <runtime_dir>/status. 0 and *ret filled; -ENOENT when there is none (no agent ran here);
 * another negative errno after logging what is wrong with the file (path:line). */
_must_check_ int cli_agent_load(const char *runtime_dir, struct cli_agent *ret);
void cli_agent_done(struct cli_agent *a);

/* The agent's record of token label, or NULL. */
const struct agent_state_record *cli_agent_token(const struct cli_agent *a, const char *label);
/* The enclave's control address the agent uses while the enclave runs, or NULL. */
const char *cli_agent_control(const struct cli_agent *a);

/* Human output: the agent block; a token's agent lines (indent: leading spaces). */
void cli_agent_print(const struct cli_agent *a);
void cli_agent_print_token(const struct agent_state_record *t, const char *indent);
/* JSON: the "agent" member. */
void cli_agent_json(const struct cli_agent *a, struct json_writer *j);
