/* What a reload does to each token: keep, rebuild, add or drop, decided from the two configs alone. Pure. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>

#include "agent/config/config.h"
#include "common/cleanup.h"

enum agent_reconcile_action {
        AGENT_RECONCILE_KEEP,    /* same label, same settings: the running token carries over as it is */
        AGENT_RECONCILE_REBUILD, /* same label, other settings: a new token takes the running one's place */
        AGENT_RECONCILE_ADD,     /* a label the running set does not have */
        _AGENT_RECONCILE_ACTION_MAX,
        _AGENT_RECONCILE_ACTION_INVALID = -EINVAL,
};

struct agent_reconcile_entry {
        enum agent_reconcile_action action;
        size_t old_index; /* KEEP, REBUILD: the running token with the same label; ADD: SIZE_MAX */
};

struct agent_reconcile_plan {
        struct agent_reconcile_entry *entries; /* one per token of the new config, in its order */
        size_t n_entries;
        size_t *dropped; /* running tokens whose label the new config no longer has, in the old order */
        size_t n_dropped;
        size_t n_keep, n_rebuild, n_add;
};

/* Match the tokens of next against those of cur by label. A token is kept when its own settings and
 * the options it depends on (state_dir, runtime_dir, service, server_control, server_config) are
 * unchanged, else rebuilt. cur may be NULL (nothing runs yet: every token is added). Returns
 * -ENOTUNIQ when a label appears twice in next (*ret_duplicate, when not NULL, is then the index of
 * its second use), -EINVAL when it does in cur, -ENOMEM. */
_must_check_ int agent_reconcile(const struct agent_config *cur, const struct agent_config *next,
                                 struct agent_reconcile_plan *ret, size_t *ret_duplicate);
/* Frees the arrays; the plan is zeroed. Accepts a zeroed plan. */
void agent_reconcile_plan_done(struct agent_reconcile_plan *p);

/* Same label, PIN, source, target and refresh interval. Pure. */
bool agent_config_token_equal(const struct agent_config_token *a, const struct agent_config_token *b);

const char *agent_reconcile_action_to_string(enum agent_reconcile_action a);

/* Tests only: the allocator of agent_reconcile() and agent_reload_prepare() (calloc by default), to drive
 * their failure paths. */
extern void *(*agent_reconcile_calloc)(size_t n, size_t size);
