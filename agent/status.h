/* The agent's state file, <runtime_dir>/status: what `enclave-acm status` shows about the agent
 * (format: parent/agent-state.h). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "agent/config/config.h"
#include "agent/health.h"
#include "agent/launcher/launcher.h"
#include "agent/token.h"

struct agent_status_info {
        const char *config_path;
        const struct agent_config *cfg;
        const struct launcher *launcher;
        struct agent_token *const *tokens;
        size_t n_tokens;
        pid_t pid;
        uint64_t started; /* Unix seconds */
        unsigned enclave_failures;
        const char *status;                /* the STATUS= line */
        bool stopped;                      /* the agent has stopped (the last write) */
        const struct agent_health *health; /* NULL: no health records */
        const struct launcher *draining;   /* an upgrade's old enclave, still running */
        uint64_t health_updated;           /* Unix seconds, for the health record */
        uint64_t health_stale_after;       /* seconds */
};

/* The health verdict the state file shows: from i->health, the launcher and the tokens; a stopped agent
 * is down. Pure. */
_must_check_ int agent_status_health(const struct agent_status_info *i, uint64_t now,
                                     struct agent_health_report *ret);
/* The whole file text. Pure. */
_must_check_ int agent_status_render(const struct agent_status_info *i, char **ret_text, size_t *ret_len);
