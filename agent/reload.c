/* A reload's next token set: built beside the running one, then swapped in by a commit that cannot fail. */
#include <stdint.h>
#include <stdlib.h>

#include "agent/reload.h"

void agent_token_set_free(struct agent_token **tokens, size_t n) {
        if (!tokens)
                return;
        for (size_t i = 0; i < n; i++)
                agent_token_free(tokens[i]);
        free(tokens);
}

void agent_reload_done(struct agent_reload *r) {
        agent_token_set_free(r->tokens, r->plan.n_entries);
        agent_token_set_free(r->removed, r->n_removed);
        agent_token_set_free(r->replaced, r->n_replaced);
        agent_reconcile_plan_done(&r->plan);
        *r = (struct agent_reload){};
}

int agent_reload_prepare(const struct agent_config *cur, const struct agent_config *next,
                         struct agent_reload *ret, size_t *ret_failed, char **ret_error) {
        _cleanup_(agent_reload_done) struct agent_reload rl = {};
        size_t n_old = cur ? cur->n_tokens : 0;
        int r;

        *ret_failed = SIZE_MAX;
        r = agent_reconcile(cur, next, &rl.plan, ret_failed);
        if (r < 0)
                return r;
        /* Everything the commit needs is allocated here, so that the commit cannot fail. */
        rl.tokens = agent_reconcile_calloc(next->n_tokens ?: 1, sizeof(*rl.tokens));
        rl.removed = agent_reconcile_calloc(n_old ?: 1, sizeof(*rl.removed));
        rl.replaced = agent_reconcile_calloc(n_old ?: 1, sizeof(*rl.replaced));
        if (!rl.tokens || !rl.removed || !rl.replaced)
                return -ENOMEM;
        for (size_t i = 0; i < rl.plan.n_entries; i++) {
                if (rl.plan.entries[i].action == AGENT_RECONCILE_KEEP)
                        continue;
                r = agent_token_new(next, &next->tokens[i], &rl.tokens[i], ret_error);
                if (r < 0) {
                        *ret_failed = i;
                        return r;
                }
        }
        *ret = rl;
        rl = (struct agent_reload){};
        return 0;
}

void agent_reload_commit(struct agent_reload *r, const struct agent_config *next,
                         struct agent_token ***tokens, size_t *n_tokens) {
        struct agent_token **old = *tokens;

        for (size_t i = 0; i < r->plan.n_entries; i++) {
                const struct agent_reconcile_entry *e = &r->plan.entries[i];

                if (e->action == AGENT_RECONCILE_KEEP) {
                        r->tokens[i] = TAKE_PTR(old[e->old_index]);
                        r->tokens[i]->cfg = &next->tokens[i];
                } else if (e->action == AGENT_RECONCILE_REBUILD) {
                        /* Only a token the loop will provision sends the TOKEN_ADD that replaces the
                         * old one in the enclave; any other leaves it there unless it is removed. */
                        if (r->tokens[i]->state == AGENT_TOKEN_PENDING)
                                r->replaced[r->n_replaced++] = TAKE_PTR(old[e->old_index]);
                        else
                                r->removed[r->n_removed++] = TAKE_PTR(old[e->old_index]);
                }
        }
        for (size_t k = 0; k < r->plan.n_dropped; k++)
                r->removed[r->n_removed++] = TAKE_PTR(old[r->plan.dropped[k]]);
        free(old);
        *tokens = TAKE_PTR(r->tokens);
        *n_tokens = r->plan.n_entries;
}
