/* enclave-token's counters: relaxed atomics on the signing path, read for the STATS call. */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "enclave-token/stats.h"

#define RELAXED memory_order_relaxed

const uint64_t etok_stats_bounds_ns[ETOK_STATS_BOUNDS] = {
        50000,    100000,   250000,   500000,    1000000,   2500000,   5000000,
        10000000, 25000000, 50000000, 100000000, 250000000, 500000000, 1000000000,
};

_Static_assert(ETOK_STATS_BOUNDS + 1 <= RPC_STATS_BUCKETS_MAX, "latency buckets exceed the wire's cap");
_Static_assert(_RPC_STATUS_MAX <= RPC_STATS_STATUS_MAX, "statuses exceed the wire's cap");
_Static_assert(_RPC_MECH_MAX <= RPC_STATS_MECH_MAX, "mechanisms exceed the wire's cap");

int etok_stats_new(struct etok_stats **ret) {
        struct etok_stats *s = calloc(1, sizeof(*s));

        if (!s)
                return -ENOMEM;
        atomic_init(&s->refs, 1);
        *ret = s;
        return 0;
}

struct etok_stats *etok_stats_ref(struct etok_stats *s) {
        if (s)
                atomic_fetch_add_explicit(&s->refs, 1, RELAXED);
        return s;
}

struct etok_stats *etok_stats_unref(struct etok_stats *s) {
        /* acq_rel: the last holder sees every other holder's writes before it frees. */
        if (s && atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1)
                free(s);
        return NULL;
}

uint64_t etok_stats_now_ns(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * UINT64_C(1000000000) + (uint64_t) ts.tv_nsec;
}

size_t etok_stats_bucket(uint64_t ns) {
        size_t i = 0;

        while (i < ETOK_STATS_BOUNDS && ns > etok_stats_bounds_ns[i])
                i++;
        return i;
}

/* The key's counters: found by id, else a free entry claimed (first come); NULL when all are taken. */
static struct etok_key_stats *key_stats(struct etok_stats *s, uint32_t key_id) {
        uint32_t want = key_id + 1;

        for (size_t i = 0; i < RPC_MAX_KEYS; i++) {
                struct etok_key_stats *k = &s->keys[i];
                uint32_t cur = atomic_load_explicit(&k->id_plus1, RELAXED);

                if (cur == want)
                        return k;
                if (cur == 0) {
                        uint32_t expected = 0;

                        if (atomic_compare_exchange_strong_explicit(&k->id_plus1, &expected, want, RELAXED,
                                                                    RELAXED) ||
                            expected == want)
                                return k;
                }
        }
        return NULL;
}

void etok_stats_op(struct etok_stats *s, uint32_t key_id, enum rpc_mech mech, uint64_t ns) {
        struct etok_key_stats *k;

        if (!s)
                return;
        k = key_stats(s, key_id);
        if (k && mech >= 0 && mech < _RPC_MECH_MAX)
                atomic_fetch_add_explicit(&k->ops[mech], 1, RELAXED);
        atomic_fetch_add_explicit(&s->latency[etok_stats_bucket(ns)], 1, RELAXED);
        atomic_fetch_add_explicit(&s->latency_sum_ns, ns, RELAXED);
}

void etok_stats_error(struct etok_stats *s, enum rpc_status status) {
        if (s && status > RPC_STATUS_OK && status < _RPC_STATUS_MAX)
                atomic_fetch_add_explicit(&s->errors[status], 1, RELAXED);
}

void etok_stats_login_failure(struct etok_stats *s) {
        if (s)
                atomic_fetch_add_explicit(&s->login_failures, 1, RELAXED);
}

void etok_stats_login_locked(struct etok_stats *s) {
        if (s)
                atomic_fetch_add_explicit(&s->login_locked, 1, RELAXED);
}

void etok_stats_read_errors(const struct etok_stats *s, uint64_t ret[static RPC_STATS_STATUS_MAX],
                            size_t *ret_n) {
        size_t n = 0;

        /* Trailing zeros are left out: the array is as long as the last status that happened. */
        for (size_t i = 0; i < _RPC_STATUS_MAX; i++) {
                ret[i] = atomic_load_explicit(&s->errors[i], RELAXED);
                if (ret[i])
                        n = i + 1;
        }
        *ret_n = n;
}

void etok_stats_read(const struct etok_stats *s, struct rpc_token_stats *ret) {
        ret->n_keys = 0;
        for (size_t i = 0; i < RPC_MAX_KEYS; i++) {
                const struct etok_key_stats *k = &s->keys[i];
                uint32_t id = atomic_load_explicit(&k->id_plus1, RELAXED);
                struct rpc_key_stats *o;

                if (id == 0)
                        continue;
                o = &ret->keys[ret->n_keys++];
                *o = (struct rpc_key_stats){ .id = id - 1, .n_ops = _RPC_MECH_MAX };
                for (size_t m = 0; m < _RPC_MECH_MAX; m++)
                        o->ops[m] = atomic_load_explicit(&k->ops[m], RELAXED);
        }
        etok_stats_read_errors(s, ret->errors, &ret->n_errors);
        ret->login_failures = atomic_load_explicit(&s->login_failures, RELAXED);
        ret->login_locked = atomic_load_explicit(&s->login_locked, RELAXED);
        ret->n_latency = ETOK_STATS_BOUNDS + 1;
        for (size_t i = 0; i <= ETOK_STATS_BOUNDS; i++)
                ret->latency[i] = atomic_load_explicit(&s->latency[i], RELAXED);
        ret->latency_sum_ns = atomic_load_explicit(&s->latency_sum_ns, RELAXED);
}
