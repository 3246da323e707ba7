/* Unit tests for agent/reconcile (keep, rebuild, add, drop per token) and agent/reload (the new token set
 * built beside the running one, all or nothing, then swapped in). */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/config/config.h"
#include "agent/reconcile.h"
#include "agent/reload.h"
#include "common/cleanup.h"
#include "tests/lib/tap.h"

#define HEAD "enclave: {launcher: local}\noptions: {state_dir: %s, runtime_dir: %s/run}\ntokens:\n"
#define A    "  - {label: a, pin: '1234', source: {File: {key: /k/a.key, certificate: /k/a.crt}}}\n"
#define B    "  - {label: b, pin: '5678', source: {File: {key: /k/b.key, certificate: /k/b.crt}}}\n"
#define C    "  - {label: c, source: {File: {key: /k/c.key, certificate: /k/c.crt}}}\n"

/* A config of HEAD (state_dir dir) and the tokens given; NULL (and the test failed) when it is not valid. */
static struct agent_config *config_in(const char *dir, const char *tokens) {
        _cleanup_(agent_config_diag_done) struct agent_config_diag d = {};
        _cleanup_free_ char *text = NULL;
        struct agent_config *c = NULL;

        if (asprintf(&text, HEAD "%s", dir, dir, tokens) < 0)
                return NULL;
        if (agent_config_parse(text, strlen(text), "test.yaml", &c, &d) < 0) {
                for (size_t i = 0; i < d.n_entries; i++)
                        printf("# %s: %s\n", d.entries[i].key, d.entries[i].message);
                tap_failed_current = true;
                return NULL;
        }
        return c;
}

static struct agent_config *config(const char *tokens) {
        return config_in("/nonexistent/state", tokens);
}

/* The plan from tokens cur to tokens next. */
static int plan_of(const char *cur, const char *next, struct agent_reconcile_plan *ret, size_t *ret_dup) {
        _cleanup_(agent_config_freep) struct agent_config *c = config(cur), *n = config(next);

        if (!c || !n)
                return -EINVAL;
        return agent_reconcile(c, n, ret, ret_dup);
}

static void check_entry(const struct agent_reconcile_plan *p, size_t i, enum agent_reconcile_action want,
                        size_t old_index) {
        ASSERT_TRUE(i < p->n_entries);
        ASSERT_STREQ(agent_reconcile_action_to_string(p->entries[i].action),
                     agent_reconcile_action_to_string(want));
        ASSERT_EQ(p->entries[i].old_index, old_index);
}

/* One token's change from A: the plan of {a, b} -> {a', b} rebuilds a and keeps b. */
static void check_rebuilds(const char *a2) {
        _cleanup_(agent_reconcile_plan_done) struct agent_reconcile_plan p = {};
        _cleanup_free_ char *next = NULL;

        ASSERT_TRUE(asprintf(&next, "%s" B, a2) >= 0);
        ASSERT_OK(plan_of(A B, next, &p, NULL));
        ASSERT_EQ(p.n_entries, 2);
        check_entry(&p, 0, AGENT_RECONCILE_REBUILD, 0);
        check_entry(&p, 1, AGENT_RECONCILE_KEEP, 1);
        ASSERT_EQ(p.n_dropped, 0);
        ASSERT_EQ(p.n_rebuild, 1);
        ASSERT_EQ(p.n_keep, 1);
        ASSERT_EQ(p.n_add, 0);
}

static void test_unchanged(void) {
        _cleanup_(agent_reconcile_plan_done) struct agent_reconcile_plan p = {};

        ASSERT_OK(plan_of(A B, A B, &p, NULL));
        ASSERT_EQ(p.n_entries, 2);
        check_entry(&p, 0, AGENT_RECONCILE_KEEP, 0);
        check_entry(&p, 1, AGENT_RECONCILE_KEEP, 1);
        ASSERT_EQ(p.n_keep, 2);
        ASSERT_EQ(p.n_dropped, 0);
        agent_reconcile_plan_done(&p);
        /* Order does not matter: matched by label. */
        ASSERT_OK(plan_of(A B, B A, &p, NULL));
        check_entry(&p, 0, AGENT_RECONCILE_KEEP, 1);
        check_entry(&p, 1, AGENT_RECONCILE_KEEP, 0);
        ASSERT_EQ(p.n_dropped, 0);
}

static void test_added(void) {
        _cleanup_(agent_reconcile_plan_done) struct agent_reconcile_plan p = {};

        ASSERT_OK(plan_of(A B, A B C, &p, NULL));
        ASSERT_EQ(p.n_entries, 3);
        check_entry(&p, 0, AGENT_RECONCILE_KEEP, 0);
        check_entry(&p, 1, AGENT_RECONCILE_KEEP, 1);
        check_entry(&p, 2, AGENT_RECONCILE_ADD, SIZE_MAX);
        ASSERT_EQ(p.n_add, 1);
        ASSERT_EQ(p.n_dropped, 0);
}

static void test_removed(void) {
        _cleanup_(agent_reconcile_plan_done) struct agent_reconcile_plan p = {};

        ASSERT_OK(plan_of(A B C, A C, &p, NULL));
        ASSERT_EQ(p.n_entries, 2);
        check_entry(&p, 0, AGENT_RECONCILE_KEEP, 0);
        check_entry(&p, 1, AGENT_RECONCILE_KEEP, 2);
        ASSERT_EQ(p.n_dropped, 1);
        ASSERT_EQ(p.dropped[0], 1);
}

static void test_renamed(void) {
        _cleanup_(agent_reconcile_plan_done) struct agent_reconcile_plan p = {};

        /* The same source under another label is another token: the old label leaves the enclave. */
        ASSERT_OK(plan_of(
                A B,
                "  - {label: a2, pin: '1234', source: {File: {key: /k/a.key, certificate: /k/a.crt}}}\n" B,
                &p, NULL));
        check_entry(&p, 0, AGENT_RECONCILE_ADD, SIZE_MAX);
        check_entry(&p, 1, AGENT_RECONCILE_KEEP, 1);
        ASSERT_EQ(p.n_dropped, 1);
        ASSERT_EQ(p.dropped[0], 0);
}

static void test_source_changed(void) {
        check_rebuilds(
                "  - {label: a, pin: '1234', source: {File: {key: /k/a2.key, certificate: /k/a.crt}}}\n");
        check_rebuilds(
                "  - {label: a, pin: '1234', source: {File: {key: /k/a.key, certificate: /k/a2.crt}}}\n");
        check_rebuilds("  - {label: a, pin: '1234', source: {S3: {uri: s3://bucket/a.json}}}\n");
}

static void test_target_changed(void) {
        _cleanup_(agent_reconcile_plan_done) struct agent_reconcile_plan p = {};
#define FILE_A "source: {File: {key: /k/a.key, certificate: /k/a.crt}}"
        const char *with_target =
                "  - {label: a, pin: '1234', " FILE_A ", target: {NginxStanza: {path: /t/a}}}\n";

        check_rebuilds(with_target); /* a target added */
        check_rebuilds("  - {label: a, pin: '1234', " FILE_A ", target: {Conf: {path: /t/a}}}\n");
        ASSERT_OK(plan_of(with_target,
                          "  - {label: a, pin: '1234', " FILE_A ", target: {NginxStanza: {path: /t/b}}}\n",
                          &p, NULL));
        check_entry(&p, 0, AGENT_RECONCILE_REBUILD, 0);
        agent_reconcile_plan_done(&p);
        ASSERT_OK(plan_of(with_target,
                          "  - {label: a, pin: '1234', " FILE_A
                          ", target: {NginxStanza: {path: /t/a, user: root, group: root}}}\n",
                          &p, NULL));
        check_entry(&p, 0, AGENT_RECONCILE_REBUILD, 0);
        agent_reconcile_plan_done(&p);
        ASSERT_OK(plan_of(with_target, A, &p, NULL)); /* the target removed */
        check_entry(&p, 0, AGENT_RECONCILE_REBUILD, 0);
}

static void test_pin_changed(void) {
        check_rebuilds("  - {label: a, pin: '12345', " FILE_A "}\n");
        check_rebuilds("  - {label: a, pin: '1235', " FILE_A "}\n");
        check_rebuilds("  - {label: a, " FILE_A "}\n"); /* from the yaml to a generated one */
        check_rebuilds("  - {label: a, pin: '1234', " FILE_A ", refresh_interval_secs: 60}\n");
}

/* The options a token holds state from rebuild every token; the others keep them. */
static void test_options_changed(void) {
        _cleanup_(agent_reconcile_plan_done) struct agent_reconcile_plan p = {};
        _cleanup_(agent_config_freep) struct agent_config *cur = config(A B), *next = config(A B);

        ASSERT_TRUE(cur && next);
        next->options.sync_interval_secs = 5;
        next->log.level = 7;
        ASSERT_OK(agent_reconcile(cur, next, &p, NULL));
        ASSERT_EQ(p.n_keep, 2);
        agent_reconcile_plan_done(&p);

        free(next->options.state_dir);
        ASSERT_TRUE((next->options.state_dir = strdup("/elsewhere")));
        ASSERT_OK(agent_reconcile(cur, next, &p, NULL));
        ASSERT_EQ(p.n_rebuild, 2);
        check_entry(&p, 1, AGENT_RECONCILE_REBUILD, 1);
        agent_reconcile_plan_done(&p);
        next = agent_config_free(next);

        ASSERT_TRUE((next = config(A B)));
        next->options.service = AGENT_SERVICE_HTTPD;
        ASSERT_OK(agent_reconcile(cur, next, &p, NULL));
        ASSERT_EQ(p.n_rebuild, 2);
}

static void test_empty(void) {
        _cleanup_(agent_reconcile_plan_done) struct agent_reconcile_plan p = {};
        _cleanup_(agent_config_freep) struct agent_config *cur = config(A B), *next = config(A B);

        ASSERT_TRUE(cur && next);
        next->n_tokens = 0; /* every token leaves (freed by its count: keep it for the free) */
        ASSERT_OK(agent_reconcile(cur, next, &p, NULL));
        ASSERT_EQ(p.n_entries, 0);
        ASSERT_EQ(p.n_dropped, 2);
        ASSERT_EQ(p.dropped[0], 0);
        ASSERT_EQ(p.dropped[1], 1);
        next->n_tokens = 2;
        agent_reconcile_plan_done(&p);

        ASSERT_OK(agent_reconcile(NULL, next, &p, NULL)); /* the start: every token is new */
        ASSERT_EQ(p.n_add, 2);
        check_entry(&p, 1, AGENT_RECONCILE_ADD, SIZE_MAX);
        ASSERT_EQ(p.n_dropped, 0);
}

static void test_duplicates(void) {
        struct agent_reconcile_plan p = {};
        _cleanup_(agent_config_freep) struct agent_config *cur = config(A B), *next = config(A B C);
        size_t dup = 0;

        ASSERT_TRUE(cur && next);
        /* The parser refuses repeated labels; the plan does not rely on it. */
        free(next->tokens[2].label);
        ASSERT_TRUE((next->tokens[2].label = strdup("a")));
        ASSERT_ERR(agent_reconcile(cur, next, &p, &dup), -ENOTUNIQ);
        ASSERT_EQ(dup, 2);
        ASSERT_TRUE(p.entries == NULL && p.dropped == NULL && p.n_entries == 0);
        ASSERT_ERR(agent_reconcile(cur, next, &p, NULL), -ENOTUNIQ);

        free(next->tokens[2].label);
        ASSERT_TRUE((next->tokens[2].label = strdup("c")));
        free(cur->tokens[1].label);
        ASSERT_TRUE((cur->tokens[1].label = strdup("a")));
        ASSERT_ERR(agent_reconcile(cur, next, &p, &dup), -EINVAL);
        ASSERT_TRUE(p.entries == NULL && p.n_entries == 0);
}

static void test_token_equal(void) {
        _cleanup_(agent_config_freep) struct agent_config *c =
                config(A "  - {label: a2, pin: '1234', " FILE_A "}\n");

        ASSERT_TRUE(c);
        ASSERT_TRUE(agent_config_token_equal(&c->tokens[0], &c->tokens[0]));
        ASSERT_FALSE(agent_config_token_equal(&c->tokens[0], &c->tokens[1])); /* only the label differs */
        ASSERT_STREQ(agent_reconcile_action_to_string(AGENT_RECONCILE_KEEP), "keep");
        ASSERT_STREQ(agent_reconcile_action_to_string(AGENT_RECONCILE_REBUILD), "rebuild");
        ASSERT_STREQ(agent_reconcile_action_to_string(AGENT_RECONCILE_ADD), "add");
        ASSERT_TRUE(agent_reconcile_action_to_string(_AGENT_RECONCILE_ACTION_MAX) == NULL);
        ASSERT_TRUE(agent_reconcile_action_to_string(_AGENT_RECONCILE_ACTION_INVALID) == NULL);
}

/* An allocator that fails its fail_at-th call (counting from 0) and counts the calls. */
static unsigned alloc_calls, fail_at = UINT32_MAX;
static void *failing_calloc(size_t n, size_t size) {
        return alloc_calls++ == fail_at ? NULL : calloc(n, size);
}

static void test_alloc_failure(void) {
        _cleanup_(agent_config_freep) struct agent_config *cur = config(A B), *next = config(A C);
        struct agent_reconcile_plan p = {};
        unsigned k;

        ASSERT_TRUE(cur && next);
        agent_reconcile_calloc = failing_calloc;
        for (k = 0;; k++) {
                alloc_calls = 0;
                fail_at = k;
                int r = agent_reconcile(cur, next, &p, NULL);
                if (r >= 0)
                        break;
                ASSERT_ERR(r, -ENOMEM);
                ASSERT_TRUE(p.entries == NULL && p.dropped == NULL);
        }
        agent_reconcile_calloc = calloc;
        ASSERT_EQ(k, 2); /* both allocations failed once each */
        check_entry(&p, 1, AGENT_RECONCILE_ADD, SIZE_MAX);
        agent_reconcile_plan_done(&p);
}

/* A temp dir for the state the tokens keep, removed at the end. */
static char *state_dir_new(void) {
        const char *tmp = getenv("TMPDIR");
        char *dir = NULL;

        if (asprintf(&dir, "%s/test-reconcile-XXXXXX", tmp && *tmp ? tmp : "/tmp") < 0)
                return NULL;
        if (!mkdtemp(dir)) {
                free(dir);
                return NULL;
        }
        return dir;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) st;
        (void) flag;
        (void) ftw;
        return remove(path) < 0 ? -1 : 0;
}

static void state_dir_free(char **dir) {
        if (*dir)
                (void) nftw(*dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        free(*dir);
}

/* A running set as the agent's start makes it. */
struct running {
        struct agent_config *cfg;
        struct agent_token **tokens;
        size_t n;
};

static void running_done(struct running *s) {
        agent_token_set_free(s->tokens, s->n);
        agent_config_free(s->cfg);
}

static int running_start(const char *dir, const char *tokens, struct running *ret) {
        struct agent_reload rl = {};
        char *error = NULL;
        size_t failed;
        int r;

        ret->cfg = config_in(dir, tokens);
        if (!ret->cfg)
                return -EINVAL;
        r = agent_reload_prepare(NULL, ret->cfg, &rl, &failed, &error);
        free(error);
        if (r < 0)
                return r;
        agent_reload_commit(&rl, ret->cfg, &ret->tokens, &ret->n);
        agent_reload_done(&rl);
        return 0;
}

/* The running set is exactly as it was: same array, same tokens, each still borrowing from its config. */
static bool running_same(const struct running *s, struct agent_token **tokens,
                         struct agent_token *const *was, size_t n) {
        if (s->tokens != tokens || s->n != n)
                return false;
        for (size_t i = 0; i < n; i++)
                if (s->tokens[i] != was[i] || s->tokens[i]->cfg != &s->cfg->tokens[i])
                        return false;
        return true;
}

static int write_file(const char *dir, const char *name) {
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int fd = -1;

        if (asprintf(&path, "%s/%s", dir, name) < 0)
                return -ENOMEM;
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        return fd < 0 ? -errno : 0;
}

/* <state_dir>/pins is a regular file: the new token that needs a generated PIN fails, and with it
 * the whole reload; the token built before it is freed; nothing running changes. */
static void test_prepare_fails(void) {
        _cleanup_(state_dir_free) char *dir = state_dir_new();
        _cleanup_(running_done) struct running s = {};
        _cleanup_(agent_config_freep) struct agent_config *next = NULL, *next2 = NULL, *next3 = NULL;
        _cleanup_free_ char *pins = NULL, *error = NULL;
        struct agent_reload rl = {};
        struct agent_token *was[2];
        struct agent_token **tokens;
        size_t failed = 0;

        ASSERT_TRUE(dir);
        ASSERT_OK(running_start(dir, A B, &s));
        ASSERT_EQ(s.n, 2);
        tokens = s.tokens;
        memcpy(was, s.tokens, sizeof(was));
        ASSERT_OK(write_file(dir, "pins"));

        ASSERT_TRUE((next = config_in(dir, A B C)));
        ASSERT_ERR(agent_reload_prepare(s.cfg, next, &rl, &failed, &error), -ENOTDIR);
        ASSERT_EQ(failed, 2);
        ASSERT_TRUE(asprintf(&pins, "cannot read or create its PIN in '%s/pins': Not a directory", dir) >=
                    0);
        ASSERT_STREQ(error, pins);
        ASSERT_TRUE(rl.tokens == NULL && rl.plan.entries == NULL);
        ASSERT_TRUE(running_same(&s, tokens, was, 2));

        /* A new token with its PIN in the yaml is built first, then freed with the failure. */
        free(error);
        error = NULL;
        ASSERT_TRUE((next2 = config_in(dir, A "  - {label: d, pin: '9999', " FILE_A "}\n" C B)));
        ASSERT_ERR(agent_reload_prepare(s.cfg, next2, &rl, &failed, &error), -ENOTDIR);
        ASSERT_EQ(failed, 2);
        ASSERT_TRUE(running_same(&s, tokens, was, 2));

        /* A changed token that fails to build leaves the running one as it was. */
        free(error);
        error = NULL;
        ASSERT_TRUE((next3 = config_in(dir, B "  - {label: a, " FILE_A "}\n")));
        ASSERT_ERR(agent_reload_prepare(s.cfg, next3, &rl, &failed, &error), -ENOTDIR);
        ASSERT_EQ(failed, 1);
        ASSERT_TRUE(running_same(&s, tokens, was, 2));
}

static void test_prepare_alloc_failure(void) {
        _cleanup_(state_dir_free) char *dir = state_dir_new();
        _cleanup_(running_done) struct running s = {};
        _cleanup_(agent_config_freep) struct agent_config *next = NULL;
        struct agent_reload rl = {};
        struct agent_token *was[2];
        struct agent_token **tokens;
        size_t failed;
        unsigned k;

        ASSERT_TRUE(dir);
        ASSERT_OK(running_start(dir, A B, &s));
        tokens = s.tokens;
        memcpy(was, s.tokens, sizeof(was));
        ASSERT_TRUE((next = config_in(dir, A "  - {label: d, pin: '9999', " FILE_A "}\n")));
        agent_reconcile_calloc = failing_calloc;
        for (k = 0;; k++) {
                char *error = NULL;
                int r;

                alloc_calls = 0;
                fail_at = k;
                r = agent_reload_prepare(s.cfg, next, &rl, &failed, &error);
                free(error);
                if (r >= 0)
                        break;
                ASSERT_ERR(r, -ENOMEM);
                ASSERT_EQ(failed, SIZE_MAX);
                ASSERT_TRUE(rl.tokens == NULL);
                ASSERT_TRUE(running_same(&s, tokens, was, 2));
        }
        agent_reconcile_calloc = calloc;
        ASSERT_EQ(k, 5); /* the plan's two arrays, the commit's three */
        agent_reload_done(&rl);
        ASSERT_TRUE(running_same(&s, tokens, was, 2));
}

/* Once the cause is gone the same reload succeeds: kept tokens move over untouched, the new one is built. */
static void test_commit_add(void) {
        _cleanup_(state_dir_free) char *dir = state_dir_new();
        _cleanup_(running_done) struct running s = {};
        struct agent_config *next = NULL;
        _cleanup_free_ char *pin = NULL;
        struct agent_reload rl = {};
        struct agent_token *was[2];
        size_t failed;
        char *error = NULL;
        struct stat st;

        ASSERT_TRUE(dir);
        ASSERT_OK(running_start(dir, A B, &s));
        memcpy(was, s.tokens, sizeof(was));
        was[0]->state = AGENT_TOKEN_READY; /* what the loop did meanwhile is carried over */
        ASSERT_TRUE((next = config_in(dir, B A C)));
        ASSERT_OK(agent_reload_prepare(s.cfg, next, &rl, &failed, &error));
        ASSERT_TRUE(error == NULL);
        ASSERT_TRUE(rl.tokens[0] == NULL && rl.tokens[1] == NULL && rl.tokens[2] != NULL);
        ASSERT_STREQ(rl.tokens[2]->label, "c");
        ASSERT_TRUE(asprintf(&pin, "%s/pins/c", dir) >= 0);
        ASSERT_OK(stat(pin, &st) < 0 ? -errno : 0);
        ASSERT_EQ(st.st_mode & 0777, 0600);

        agent_reload_commit(&rl, next, &s.tokens, &s.n);
        agent_config_free(s.cfg);
        s.cfg = next;
        ASSERT_EQ(s.n, 3);
        ASSERT_TRUE(s.tokens[0] == was[1] && s.tokens[1] == was[0]);
        ASSERT_TRUE(s.tokens[0]->cfg == &next->tokens[0] && s.tokens[1]->cfg == &next->tokens[1]);
        ASSERT_EQ(s.tokens[1]->state, AGENT_TOKEN_READY);
        ASSERT_STREQ(s.tokens[2]->label, "c");
        ASSERT_TRUE(s.tokens[2]->cfg == &next->tokens[2]);
        ASSERT_EQ(s.tokens[2]->state, AGENT_TOKEN_PENDING);
        ASSERT_EQ(rl.n_removed, 0);
        ASSERT_EQ(rl.n_replaced, 0);
        agent_reload_done(&rl);
}

/* A dropped token and a token rebuilt into one that is not provisioned are removed from the enclave;
 * a token rebuilt into one the loop provisions is replaced by its TOKEN_ADD. */
static void test_commit_drop_rebuild(void) {
        _cleanup_(state_dir_free) char *dir = state_dir_new();
        _cleanup_(running_done) struct running s = {};
        struct agent_config *next = NULL;
        struct agent_reload rl = {};
        struct agent_token *was[3];
        size_t failed;
        char *error = NULL;

        ASSERT_TRUE(dir);
        ASSERT_OK(running_start(dir, A B "  - {label: c, pin: '4321', " FILE_A "}\n", &s));
        memcpy(was, s.tokens, sizeof(was));
        ASSERT_TRUE((
                next = config_in(dir,
                                 "  - {label: a, pin: '1111', " FILE_A "}\n"
                                 "  - {label: c, pin: '4321', source: {S3: {uri: s3://bucket/c.json}}}\n")));
        ASSERT_OK(agent_reload_prepare(s.cfg, next, &rl, &failed, &error));
        check_entry(&rl.plan, 0, AGENT_RECONCILE_REBUILD, 0);
        check_entry(&rl.plan, 1, AGENT_RECONCILE_REBUILD, 2);
        agent_reload_commit(&rl, next, &s.tokens, &s.n);
        agent_config_free(s.cfg);
        s.cfg = next;
        ASSERT_EQ(s.n, 2);
        ASSERT_TRUE(s.tokens[0] != was[0] && s.tokens[1] != was[2]);
        ASSERT_EQ(s.tokens[0]->state, AGENT_TOKEN_PENDING);
        ASSERT_EQ(s.tokens[1]->state, AGENT_TOKEN_PENDING);
        /* both rebuilt tokens are provisioned by the loop (S3 sources are, since issue 14) */
        ASSERT_EQ(rl.n_replaced, 2);
        ASSERT_TRUE(rl.replaced[0] == was[0]);
        ASSERT_TRUE(rl.replaced[1] == was[2]);
        ASSERT_EQ(rl.n_removed, 1);
        ASSERT_TRUE(rl.removed[0] == was[1]); /* dropped */
        agent_reload_done(&rl);
}

TAP_MAIN(TEST("/agent/reconcile/unchanged", test_unchanged), TEST("/agent/reconcile/added", test_added),
         TEST("/agent/reconcile/removed", test_removed), TEST("/agent/reconcile/renamed", test_renamed),
         TEST("/agent/reconcile/source-changed", test_source_changed),
         TEST("/agent/reconcile/target-changed", test_target_changed),
         TEST("/agent/reconcile/pin-changed", test_pin_changed),
         TEST("/agent/reconcile/options-changed", test_options_changed),
         TEST("/agent/reconcile/empty", test_empty), TEST("/agent/reconcile/duplicates", test_duplicates),
         TEST("/agent/reconcile/token-equal", test_token_equal),
         TEST("/agent/reconcile/alloc-failure", test_alloc_failure),
         TEST("/agent/reload/prepare-fails", test_prepare_fails),
         TEST("/agent/reload/prepare-alloc-failure", test_prepare_alloc_failure),
         TEST("/agent/reload/commit-add", test_commit_add),
         TEST("/agent/reload/commit-drop-rebuild", test_commit_drop_rebuild))
