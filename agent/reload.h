/* A reload's next token set, built completely beside the running one; nothing running changes until
 * the commit, which cannot fail. The agent's start is the same step from an empty set. */
#pragma once

#include <stddef.h>

#include "agent/config/config.h"
#include "agent/reconcile.h"
#include "agent/token.h"

struct agent_reload {
        struct agent_reconcile_plan plan;
        struct agent_token **tokens; /* one per plan entry: built for ADD and REBUILD, NULL for KEEP */
        /* Filled by the commit from the running set (room for all of it is made before): */
        struct agent_token **removed; /* dropped, or rebuilt into a token that is not provisioned: the
                                       * caller sends TOKEN_REMOVE for each */
        size_t n_removed;
        struct agent_token **replaced; /* rebuilt: the new token's TOKEN_ADD replace takes its slot */
        size_t n_replaced;
};

/* Plan the reload from cur (NULL: nothing runs yet) to next and build every new and rebuilt token
 * (PINs read, or generated and persisted). Nothing of the running set is touched. All or nothing: on
 * failure every token built so far is freed, *ret is not written, *ret_failed is the index in
 * next->tokens of the token that failed (SIZE_MAX when no single one did) and *ret_error (NULL on
 * entry) may say why. Does not log its failure. */
_must_check_ int agent_reload_prepare(const struct agent_config *cur, const struct agent_config *next,
                                      struct agent_reload *ret, size_t *ret_failed, char **ret_error);

/* Swap in the prepared set: kept tokens move over (their cfg now points into next), the running
 * tokens that leave go to r->removed and r->replaced, *tokens and *n_tokens become the new set and
 * the old array is freed. *tokens must be the set r was prepared against (NULL, 0 for none). */
void agent_reload_commit(struct agent_reload *r, const struct agent_config *next,
                         struct agent_token ***tokens, size_t *n_tokens);

/* Frees the n tokens and the array. Accepts NULL. */
void agent_token_set_free(struct agent_token **tokens, size_t n);

/* Frees the plan, the tokens not committed and those that left. Accepts a zeroed struct. */
void agent_reload_done(struct agent_reload *r);
