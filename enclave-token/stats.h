/* enclave-token's counters for the STATS call: per token label (shared by its versions) and for requests
 * that name no token. Lock-free: relaxed C11 atomics, bumped by the worker threads on the signing path. */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/cleanup.h"
#include "common/rpc-frame.h"
#include "common/rpc-messages.h"

/* Upper bounds of the finite latency buckets, nanoseconds (50 us .. 1 s); one more bucket is +Inf. */
#define ETOK_STATS_BOUNDS 14
extern const uint64_t etok_stats_bounds_ns[ETOK_STATS_BOUNDS];

struct etok_key_stats {
        _Atomic uint32_t id_plus1; /* 0: unused; else the key id + 1, set once */
        _Atomic uint64_t ops[_RPC_MECH_MAX];
};

struct etok_stats {
        _Atomic unsigned refs;
        /* The first RPC_MAX_KEYS key ids of the label that signed or decrypted; later ones are counted in
         * the latency histogram only. */
        struct etok_key_stats keys[RPC_MAX_KEYS];
        _Atomic uint64_t errors[_RPC_STATUS_MAX];
        _Atomic uint64_t login_failures;
        _Atomic uint64_t login_locked;
        _Atomic uint64_t latency[ETOK_STATS_BOUNDS + 1];
        _Atomic uint64_t latency_sum_ns;
};

_must_check_ int etok_stats_new(struct etok_stats **ret);
/* Another holder (a token's new version keeps its label's counters). NULL is fine. */
struct etok_stats *etok_stats_ref(struct etok_stats *s);
/* Frees with the last holder. NULL is fine; returns NULL. */
struct etok_stats *etok_stats_unref(struct etok_stats *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct etok_stats *, etok_stats_unref);

/* Monotonic nanoseconds, for timing an operation. */
uint64_t etok_stats_now_ns(void);
/* The bucket (0..ETOK_STATS_BOUNDS) of a duration: the first bound >= ns, else +Inf. Pure. */
size_t etok_stats_bucket(uint64_t ns);

/* A private-key operation that succeeded, and how long it took. s NULL: nothing. */
void etok_stats_op(struct etok_stats *s, uint32_t key_id, enum rpc_mech mech, uint64_t ns);
/* A failed SIGN/DECRYPT (or, on the daemon-wide counters, a LOGIN naming no token). */
void etok_stats_error(struct etok_stats *s, enum rpc_status status);
void etok_stats_login_failure(struct etok_stats *s);
void etok_stats_login_locked(struct etok_stats *s);

/* The counters into the wire form (keys[], errors[], latency[]; the caller fills slot, label, expires and
 * n_keys_held). Each counter is read on its own: a snapshot is not atomic as a whole. */
void etok_stats_read(const struct etok_stats *s, struct rpc_token_stats *ret);
/* Only errors[] (for the daemon-wide counters). */
void etok_stats_read_errors(const struct etok_stats *s, uint64_t ret[static RPC_STATS_STATUS_MAX],
                            size_t *ret_n);
