/* What a reload does to each token, decided from the running config and the new one. Pure: no I/O. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "agent/reconcile.h"

void *(*agent_reconcile_calloc)(size_t n, size_t size) = calloc;

static const char *const action_names[_AGENT_RECONCILE_ACTION_MAX] = {
        [AGENT_RECONCILE_KEEP] = "keep",
        [AGENT_RECONCILE_REBUILD] = "rebuild",
        [AGENT_RECONCILE_ADD] = "add",
};

const char *agent_reconcile_action_to_string(enum agent_reconcile_action a) {
        return a >= 0 && a < _AGENT_RECONCILE_ACTION_MAX ? action_names[a] : NULL;
}

static bool streq_null(const char *a, const char *b) {
        return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool pin_equal(const struct secret_buf *a, const struct secret_buf *b) {
        if (!a || !b)
                return !a && !b;
        return a->len == b->len && CRYPTO_memcmp(a->data, b->data, a->len) == 0;
}

bool agent_config_token_equal(const struct agent_config_token *a, const struct agent_config_token *b) {
        const struct agent_config_source *x = &a->source, *y = &b->source;
        const struct agent_config_target *u = &a->target, *v = &b->target;

        return strcmp(a->label, b->label) == 0 && pin_equal(a->pin, b->pin) && x->kind == y->kind &&
               streq_null(x->key, y->key) && streq_null(x->encrypted_key, y->encrypted_key) &&
               streq_null(x->certificate, y->certificate) && a->ttl_secs == b->ttl_secs &&
               streq_null(x->uri, y->uri) && streq_null(x->certificate_arn, y->certificate_arn) &&
               streq_null(x->bucket, y->bucket) && u->present == v->present && u->kind == v->kind &&
               streq_null(u->path, v->path) && streq_null(u->user, v->user) &&
               streq_null(u->group, v->group) && a->refresh_interval_secs == b->refresh_interval_secs;
}

/* The options a running token holds state from: its PIN and key id (state_dir), its PIN and chain
 * files (runtime_dir), the server its target was applied for. */
static bool token_options_equal(const struct agent_config_options *a, const struct agent_config_options *b) {
        return streq_null(a->state_dir, b->state_dir) && streq_null(a->runtime_dir, b->runtime_dir) &&
               a->service == b->service && a->server_control == b->server_control &&
               streq_null(a->server_config, b->server_config);
}

/* The first index before n in tokens with that label, or SIZE_MAX. */
static size_t find_label(const struct agent_config_token *tokens, size_t n, const char *label) {
        for (size_t i = 0; i < n; i++)
                if (strcmp(tokens[i].label, label) == 0)
                        return i;
        return SIZE_MAX;
}

/* SIZE_MAX when every label is unique, else the index of the first repeated one. */
static size_t first_duplicate(const struct agent_config_token *tokens, size_t n) {
        for (size_t i = 1; i < n; i++)
                if (find_label(tokens, i, tokens[i].label) != SIZE_MAX)
                        return i;
        return SIZE_MAX;
}

void agent_reconcile_plan_done(struct agent_reconcile_plan *p) {
        free(p->entries);
        free(p->dropped);
        *p = (struct agent_reconcile_plan){};
}

int agent_reconcile(const struct agent_config *cur, const struct agent_config *next,
                    struct agent_reconcile_plan *ret, size_t *ret_duplicate) {
        _cleanup_(agent_reconcile_plan_done) struct agent_reconcile_plan p = {};
        const struct agent_config_token *old = cur ? cur->tokens : NULL;
        size_t n_old = cur ? cur->n_tokens : 0, dup;
        bool options_same = cur && token_options_equal(&cur->options, &next->options);

        dup = first_duplicate(next->tokens, next->n_tokens);
        if (dup != SIZE_MAX) {
                if (ret_duplicate)
                        *ret_duplicate = dup;
                return -ENOTUNIQ;
        }
        if (first_duplicate(old, n_old) != SIZE_MAX)
                return -EINVAL;
        /* One element at least each: calloc(0) may return NULL. */
        p.entries = agent_reconcile_calloc(next->n_tokens ?: 1, sizeof(*p.entries));
        p.dropped = agent_reconcile_calloc(n_old ?: 1, sizeof(*p.dropped));
        if (!p.entries || !p.dropped)
                return -ENOMEM;
        p.n_entries = next->n_tokens;
        for (size_t i = 0; i < next->n_tokens; i++) {
                size_t j = find_label(old, n_old, next->tokens[i].label);
                struct agent_reconcile_entry *e = &p.entries[i];

                e->old_index = j;
                if (j == SIZE_MAX) {
                        e->action = AGENT_RECONCILE_ADD;
                        p.n_add++;
                } else if (options_same && agent_config_token_equal(&old[j], &next->tokens[i])) {
                        e->action = AGENT_RECONCILE_KEEP;
                        p.n_keep++;
                } else {
                        e->action = AGENT_RECONCILE_REBUILD;
                        p.n_rebuild++;
                }
        }
        for (size_t j = 0; j < n_old; j++)
                if (find_label(next->tokens, next->n_tokens, old[j].label) == SIZE_MAX)
                        p.dropped[p.n_dropped++] = j;
        *ret = p;
        p = (struct agent_reconcile_plan){};
        return 0;
}
