/* `enclave-acm health`: the agent's health facts from its state file, judged here (is the agent alive, is
 * the file fresh), and shown by `enclave-acm status` too. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "common/json.h"
#include "parent/agent-state.h"
#include "tools/cli-agent.h"

/* Exit codes of `enclave-acm health` (Nagios-style); a bad command line is 3 ("unknown"). */
#define CLI_HEALTH_EXIT_USAGE 3

/* One problem line; the text is owned by the verdict or borrowed from the agent's records. */
struct cli_health_problem {
        enum agent_state_level level;
        const char *subject, *label, *text;
};

struct cli_health {
        enum agent_state_level level;
        bool have_facts;                 /* the agent's health record was read */
        struct agent_state_health facts; /* valid with have_facts */
        bool stale;
        char local[4][256]; /* problems found here (agent gone, stale file, bad records) */
        size_t n_local;
        struct cli_health_problem problems[AGENT_STATE_MAX_PROBLEMS + 2];
        size_t n_problems;
};

/* The verdict at now (Unix seconds) from the loaded state (a NULL agent: no state file, load_error its
 * errno: -ENOENT none). Never fails: what cannot be read is itself a "down" problem. */
void cli_health_judge(const struct cli_agent *a, int load_error, const char *runtime_dir, uint64_t now,
                      struct cli_health *ret);
/* Human: "Health:    <level>" then one line per problem, each prefixed by indent. */
void cli_health_print(const struct cli_health *h, const char *indent);
/* JSON: the members of the health object (the caller opens and closes it). */
void cli_health_json(const struct cli_health *h, struct json_writer *j);
