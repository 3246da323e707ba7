/* The agent's metrics registry (a mutex-guarded copy of what the loop publishes) and a scrape: the
 * registry plus one control connection to the enclave (PING, STATS), rendered as exposition text. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/config/config.h"
#include "agent/metrics.h"
#include "common/p11-errmap.h"
#include "common/rpc-client.h"
#include "common/rpc-messages.h"
#include "common/time-util.h"
#include "common/transport.h"

#define STATS_PAGES_MAX (RPC_MAX_TOKENS / RPC_PAGE_MAX + 1)

struct kind_count {
        const char *kind; /* a string literal of ours */
        uint64_t n;
};

struct registry {
        uint64_t counters[_AGENT_METRICS_COUNTER_MAX];
        struct kind_count source_errors[AGENT_METRICS_KINDS_MAX];
        struct kind_count kms_errors[AGENT_METRICS_KINDS_MAX];
        struct agent_metrics_token *tokens;
        size_t n_tokens;
        char *control_address;
        bool ping_set, ping_ok;
        double ping_seconds;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct registry reg;

void agent_metrics_count(enum agent_metrics_counter c) {
        if (c < 0 || c >= _AGENT_METRICS_COUNTER_MAX)
                return;
        (void) pthread_mutex_lock(&lock);
        reg.counters[c]++;
        (void) pthread_mutex_unlock(&lock);
}

static void kind_bump(struct kind_count *k, const char *kind) {
        for (size_t i = 0; i < AGENT_METRICS_KINDS_MAX; i++) {
                if (!k[i].kind)
                        k[i].kind = kind;
                if (strcmp(k[i].kind, kind) == 0) {
                        k[i].n++;
                        return;
                }
        }
}

void agent_metrics_source_error(int source_kind) {
        static const char *const names[_AGENT_SOURCE_MAX] = {
                [AGENT_SOURCE_ACM] = "acm",
                [AGENT_SOURCE_S3] = "s3",
                [AGENT_SOURCE_FILE] = "file",
        };
        const char *kind =
                source_kind >= 0 && source_kind < _AGENT_SOURCE_MAX ? names[source_kind] : "other";

        (void) pthread_mutex_lock(&lock);
        kind_bump(reg.source_errors, kind);
        (void) pthread_mutex_unlock(&lock);
}

void agent_metrics_kms_error(const char *kind) {
        (void) pthread_mutex_lock(&lock);
        kind_bump(reg.kms_errors, kind ?: "other");
        (void) pthread_mutex_unlock(&lock);
}

void agent_metrics_set_ping(double seconds, bool ok) {
        (void) pthread_mutex_lock(&lock);
        reg.ping_set = true;
        reg.ping_ok = ok;
        reg.ping_seconds = seconds;
        (void) pthread_mutex_unlock(&lock);
}

int agent_metrics_publish(const struct agent_metrics_token *tokens, size_t n, const char *control_address) {
        struct agent_metrics_token *copy = NULL;
        char *addr = NULL;

        if (n > 0) {
                copy = calloc(n, sizeof(*copy));
                if (!copy)
                        return -ENOMEM;
                memcpy(copy, tokens, n * sizeof(*copy));
        }
        if (control_address && !(addr = strdup(control_address))) {
                free(copy);
                return -ENOMEM;
        }
        (void) pthread_mutex_lock(&lock);
        free(reg.tokens);
        free(reg.control_address);
        reg.tokens = copy;
        reg.n_tokens = n;
        reg.control_address = addr;
        (void) pthread_mutex_unlock(&lock);
        return 0;
}

void agent_metrics_reset(void) {
        (void) pthread_mutex_lock(&lock);
        free(reg.tokens);
        free(reg.control_address);
        reg = (struct registry){};
        (void) pthread_mutex_unlock(&lock);
}

/* The registry, copied under the lock: the rest of a scrape runs without it. */
static int registry_copy(struct registry *ret) {
        int r = 0;

        (void) pthread_mutex_lock(&lock);
        *ret = reg;
        ret->tokens = NULL;
        ret->control_address = NULL;
        if (reg.n_tokens > 0 && !(ret->tokens = calloc(reg.n_tokens, sizeof(*ret->tokens))))
                r = -ENOMEM;
        else if (reg.n_tokens > 0)
                memcpy(ret->tokens, reg.tokens, reg.n_tokens * sizeof(*ret->tokens));
        if (r >= 0 && reg.control_address && !(ret->control_address = strdup(reg.control_address)))
                r = -ENOMEM;
        (void) pthread_mutex_unlock(&lock);
        return r;
}

static void registry_done(struct registry *r) {
        free(r->tokens);
        free(r->control_address);
        *r = (struct registry){};
}

/* ---- families ---- */

static const struct {
        const char *name;
        enum metrics_type type;
        const char *help;
} families[] = {
        { "enclave_acm_agent_enclave_launches_total", METRICS_COUNTER, "Enclave launches by the agent." },
        { "enclave_acm_agent_enclave_relaunches_total", METRICS_COUNTER,
          "Enclave launches after the running enclave died." },
        { "enclave_acm_agent_server_reloads_total", METRICS_COUNTER,
          "Web-server reloads (or starts) with a changed target file." },
        { "enclave_acm_agent_server_rollbacks_total", METRICS_COUNTER,
          "Target file changes rolled back (config test, reload or server failure)." },
        { "enclave_acm_agent_source_errors_total", METRICS_COUNTER, "Key source fetch errors by kind." },
        { "enclave_acm_agent_kms_errors_total", METRICS_COUNTER, "KMS round and KMS call errors by kind." },
        { "enclave_acm_certificate_not_after_timestamp_seconds", METRICS_GAUGE,
          "notAfter of the token's leaf certificate, Unix time." },
        { "enclave_acm_token_last_sync_timestamp_seconds", METRICS_GAUGE,
          "Last successful sync of the token's source, Unix time." },
        { "enclave_acm_token_last_refresh_timestamp_seconds", METRICS_GAUGE,
          "Last successful refresh (or provisioning) of the token, Unix time." },
        { "enclave_acm_token_last_attestation_timestamp_seconds", METRICS_GAUGE,
          "Last provisioning or refresh of an encrypted key through an attested KMS round, Unix time." },
        { "enclave_acm_token_ready", METRICS_GAUGE,
          "1 when the token is provisioned and its web-server target applied." },
        { "enclave_acm_enclave_up", METRICS_GAUGE,
          "1 when the enclave answered this scrape on the control channel." },
        { "enclave_acm_enclave_ping_seconds", METRICS_GAUGE,
          "The enclave's answer time to an in-band PING." },
        { "enclave_acm_enclave_ping_ok", METRICS_GAUGE, "1 when the last in-band PING was answered." },
        { "enclave_acm_enclave_tokens", METRICS_GAUGE, "Tokens held by the enclave." },
        { "enclave_acm_enclave_keys", METRICS_GAUGE, "Keys of the tokens held by the enclave." },
        { "enclave_acm_enclave_retired_versions", METRICS_GAUGE,
          "Replaced token versions the enclave still holds (rotation grace period or held)." },
        { "enclave_acm_enclave_errors_total", METRICS_COUNTER,
          "Failed SIGN, DECRYPT and LOGIN requests naming no token, by wire status." },
        { "enclave_acm_token_signatures_total", METRICS_COUNTER, "Signatures by token, key and mechanism." },
        { "enclave_acm_token_decryptions_total", METRICS_COUNTER,
          "Decryptions by token, key and mechanism." },
        { "enclave_acm_token_errors_total", METRICS_COUNTER,
          "Failed SIGN and DECRYPT requests by token and wire status." },
        { "enclave_acm_token_login_failures_total", METRICS_COUNTER, "Wrong PINs by token." },
        { "enclave_acm_token_login_lockouts_total", METRICS_COUNTER,
          "PIN attempts refused by the back-off (PIN_LOCKED) by token." },
        { "enclave_acm_token_keys", METRICS_GAUGE, "Keys of the token's current version." },
        { "enclave_acm_token_expiry_timestamp_seconds", METRICS_GAUGE,
          "When the enclave drops the token unless refreshed, Unix time." },
        { "enclave_acm_token_operation_duration_seconds", METRICS_HISTOGRAM,
          "Time of the private-key operation inside the enclave." },
};

static int declare_all(struct metrics_set *m) {
        int r;

        for (size_t i = 0; i < ELEMENTSOF(families); i++) {
                r = metrics_family(m, families[i].name, families[i].type, families[i].help);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ---- the agent's part ---- */

static int add_kinds(struct metrics_set *m, const char *name, const struct kind_count *k) {
        int r = 0;

        for (size_t i = 0; i < AGENT_METRICS_KINDS_MAX && k[i].kind && r >= 0; i++)
                r = metrics_add(m, name, &(struct metrics_label){ "kind", k[i].kind }, 1, (double) k[i].n);
        return r;
}

static int add_agent(struct metrics_set *m, const struct registry *g) {
        static const char *const counter_names[_AGENT_METRICS_COUNTER_MAX] = {
                [AGENT_METRICS_LAUNCHES] = "enclave_acm_agent_enclave_launches_total",
                [AGENT_METRICS_RELAUNCHES] = "enclave_acm_agent_enclave_relaunches_total",
                [AGENT_METRICS_RELOADS] = "enclave_acm_agent_server_reloads_total",
                [AGENT_METRICS_ROLLBACKS] = "enclave_acm_agent_server_rollbacks_total",
        };
        int r = 0;

        for (size_t i = 0; i < _AGENT_METRICS_COUNTER_MAX && r >= 0; i++)
                r = metrics_add(m, counter_names[i], NULL, 0, (double) g->counters[i]);
        if (r >= 0)
                r = add_kinds(m, "enclave_acm_agent_source_errors_total", g->source_errors);
        if (r >= 0)
                r = add_kinds(m, "enclave_acm_agent_kms_errors_total", g->kms_errors);
        for (size_t i = 0; i < g->n_tokens && r >= 0; i++) {
                const struct agent_metrics_token *t = &g->tokens[i];
                const struct metrics_label l = { "token", t->label };

                r = metrics_add(m, "enclave_acm_token_ready", &l, 1, t->ready);
                if (r >= 0 && t->not_after)
                        r = metrics_add(m, "enclave_acm_certificate_not_after_timestamp_seconds", &l, 1,
                                        (double) t->not_after);
                if (r >= 0 && t->synced_at)
                        r = metrics_add(m, "enclave_acm_token_last_sync_timestamp_seconds", &l, 1,
                                        (double) t->synced_at);
                if (r >= 0 && t->refreshed_at)
                        r = metrics_add(m, "enclave_acm_token_last_refresh_timestamp_seconds", &l, 1,
                                        (double) t->refreshed_at);
                if (r >= 0 && t->attested_at)
                        r = metrics_add(m, "enclave_acm_token_last_attestation_timestamp_seconds", &l, 1,
                                        (double) t->attested_at);
        }
        return r;
}

/* ---- the enclave's part ---- */

static const char *mech_family(enum rpc_mech mech, bool *ret_decrypt) {
        *ret_decrypt = mech == RPC_MECH_RSA_PKCS_DEC || mech == RPC_MECH_RSA_OAEP;
        switch (mech) {
        case RPC_MECH_RSA_PKCS:
        case RPC_MECH_RSA_PKCS_DEC: return "rsa-pkcs1";
        case RPC_MECH_RSA_PSS: return "rsa-pss";
        case RPC_MECH_RSA_OAEP: return "rsa-oaep";
        case RPC_MECH_ECDSA: return "ecdsa";
        case RPC_MECH_EDDSA: return "eddsa";
        default: return NULL;
        }
}

/* A wire status by name; a status this agent does not know (a newer enclave) by number. */
static const char *status_name(size_t st, char buf[static 24]) {
        const char *s = st < _RPC_STATUS_MAX ? rpc_status_to_string((enum rpc_status) st) : NULL;

        if (s)
                return s;
        (void) snprintf(buf, 24, "%zu", st);
        return buf;
}

static int add_errors(struct metrics_set *m, const char *name, const char *token, const uint64_t *errors,
                      size_t n) {
        int r = 0;

        for (size_t i = 1; i < n && r >= 0; i++) {
                char buf[24];
                struct metrics_label l[2] = { { "code", status_name(i, buf) }, { "token", token } };

                if (errors[i])
                        r = metrics_add(m, name, l, token ? 2 : 1, (double) errors[i]);
        }
        return r;
}

static int add_key_ops(struct metrics_set *m, const char *token, const struct rpc_key_stats *k) {
        char id[16];
        int r = 0;

        (void) snprintf(id, sizeof(id), "%" PRIu32, k->id);
        for (size_t i = 0; i < k->n_ops && r >= 0; i++) {
                bool decrypt;
                const char *fam = mech_family((enum rpc_mech) i, &decrypt);
                const struct metrics_label l[3] = { { "token", token },
                                                    { "key_id", id },
                                                    { "mechanism", fam } };

                if (fam)
                        r = metrics_add(m,
                                        decrypt ? "enclave_acm_token_decryptions_total"
                                                : "enclave_acm_token_signatures_total",
                                        l, 3, (double) k->ops[i]);
        }
        return r;
}

static int add_token_stats(struct metrics_set *m, const struct rpc_stats_resp *s,
                           const struct rpc_token_stats *t) {
        char label[RPC_LABEL_MAX + 1];
        double bounds[RPC_STATS_BUCKETS_MAX];
        const struct metrics_label l = { "token", label };
        int r = 0;

        memcpy(label, t->label.ptr, t->label.len);
        label[t->label.len] = '\0';
        for (size_t i = 0; i < t->n_keys && r >= 0; i++)
                r = add_key_ops(m, label, &t->keys[i]);
        if (r >= 0)
                r = add_errors(m, "enclave_acm_token_errors_total", label, t->errors, t->n_errors);
        if (r >= 0)
                r = metrics_add(m, "enclave_acm_token_login_failures_total", &l, 1,
                                (double) t->login_failures);
        if (r >= 0)
                r = metrics_add(m, "enclave_acm_token_login_lockouts_total", &l, 1,
                                (double) t->login_locked);
        if (r >= 0)
                r = metrics_add(m, "enclave_acm_token_keys", &l, 1, t->n_keys_held);
        if (r >= 0 && t->expires)
                r = metrics_add(m, "enclave_acm_token_expiry_timestamp_seconds", &l, 1, (double) t->expires);
        /* The histogram only when its buckets match the bounds (n_bounds + 1, +Inf last). */
        if (r >= 0 && t->n_latency == s->n_bounds + 1) {
                for (size_t i = 0; i < s->n_bounds; i++)
                        bounds[i] = (double) s->bounds_ns[i] / 1e9;
                r = metrics_add_histogram(m, "enclave_acm_token_operation_duration_seconds", &l, 1, bounds,
                                          s->n_bounds, t->latency, (double) t->latency_sum_ns / 1e9);
                if (r == -EINVAL) /* bounds not increasing: a broken answer, the histogram is left out */
                        r = 0;
        }
        return r;
}

static int add_stats_page(struct metrics_set *m, const struct rpc_stats_resp *s, bool first) {
        int r = 0;

        if (first) {
                r = metrics_add(m, "enclave_acm_enclave_tokens", NULL, 0, s->n_tokens_total);
                if (r >= 0)
                        r = metrics_add(m, "enclave_acm_enclave_keys", NULL, 0, (double) s->keys_held);
                if (r >= 0)
                        r = metrics_add(m, "enclave_acm_enclave_retired_versions", NULL, 0,
                                        (double) s->retired);
                if (r >= 0)
                        r = add_errors(m, "enclave_acm_enclave_errors_total", NULL, s->errors, s->n_errors);
        }
        for (size_t i = 0; i < s->n_tokens && r >= 0; i++)
                r = add_token_stats(m, s, &s->tokens[i]);
        return r;
}

/* PING (unless the health code measures it) and every STATS page over one connection. 1: the enclave
 * answered HELLO and STATS (or refused STATS as an unknown call: an older image); 0: it did not answer
 * (its part is left out); < 0: the exposition failed. */
static int add_enclave(struct metrics_set *m, const struct registry *g, int timeout_ms, double *ret_ping,
                       bool *ret_ping_ok) {
        _cleanup_(rpc_client_freep) struct rpc_client *c = NULL;
        struct transport_addr a;
        uint32_t cursor = 0;
        uint64_t start;
        int r;

        if (!g->control_address || transport_addr_parse(g->control_address, &a) < 0)
                return 0;
        start = mono_nsec();
        if (rpc_client_open_until(&a, RPC_CHANNEL_CONTROL, timeout_ms, mono_msec() + (uint64_t) timeout_ms,
                                  "enclave-acm-agent metrics", &c) < 0)
                return 0;
        if (!g->ping_set) {
                start = mono_nsec();
                *ret_ping_ok = rpc_client_call_msg(c, RPC_CALL_PING, NULL, NULL) >= 0;
                *ret_ping = (double) (mono_nsec() - start) / 1e9;
        }
        for (size_t page = 0; page < STATS_PAGES_MAX; page++) {
                struct rpc_stats_resp s = {};

                r = rpc_client_call_msg(c, RPC_CALL_STATS, &(struct rpc_page_req){ .cursor = cursor }, &s);
                if (r < 0) /* an older enclave answers MALFORMED: up, without its counters */
                        return page == 0 && rpc_client_is_broken(c) && r != -EBADMSG ? 0 : 1;
                r = add_stats_page(m, &s, page == 0);
                cursor = s.next;
                rpc_stats_resp_done(&s);
                if (r < 0)
                        return r;
                if (cursor == 0)
                        break;
        }
        return 1;
}

int agent_metrics_scrape(int timeout_ms, char **ret, size_t *ret_len) {
        _cleanup_(metrics_set_freep) struct metrics_set *m = NULL;
        struct registry g = {};
        double ping = 0;
        bool ping_ok = false;
        int r, up;

        r = registry_copy(&g);
        if (r >= 0)
                r = metrics_set_new(METRICS_MAX_BYTES_DEFAULT, &m);
        if (r >= 0)
                r = declare_all(m);
        if (r >= 0)
                r = add_agent(m, &g);
        up = r >= 0 ? add_enclave(m, &g, timeout_ms, &ping, &ping_ok) : 0;
        if (up < 0)
                r = up;
        if (g.ping_set) {
                ping = g.ping_seconds;
                ping_ok = g.ping_ok;
        }
        if (r >= 0)
                r = metrics_add(m, "enclave_acm_enclave_up", NULL, 0, up > 0);
        if (r >= 0)
                r = metrics_add(m, "enclave_acm_enclave_ping_ok", NULL, 0, ping_ok);
        if (r >= 0 && ping_ok)
                r = metrics_add(m, "enclave_acm_enclave_ping_seconds", NULL, 0, ping);
        registry_done(&g);
        if (r < 0)
                return r;
        return metrics_render(m, ret, ret_len);
}
