/* Adaptive busy polling, shared by the module's client and enclave-token's workers.
 *
 * Polling for a few microseconds before sleeping saves the wake-up of an idle vCPU (tens of
 * microseconds on a VM) when the awaited event comes soon. When it does not (the machine is busy,
 * replies queue, the peer is idle), polling only takes CPU from others: after a miss the next calls
 * skip polling, 1, 2, 4, ... up to BUSY_POLL_SKIP_MAX of them; a hit halves the next skip, so polling
 * comes back fully only after a run of hits and stays rare where hits and misses alternate. */
#pragma once

#include <stdbool.h>

#define BUSY_POLL_SKIP_MAX 64u

struct busy_poll {
        unsigned skip;    /* calls left that do not poll */
        unsigned backoff; /* skip length after the next miss */
};

/* Should this wait poll first? (Counts the skipped ones down.) */
static inline bool busy_poll_begin(struct busy_poll *bp) {
        if (bp->skip == 0)
                return true;
        bp->skip--;
        return false;
}

/* The poll found the event (hit) or ran out of time (miss). */
static inline void busy_poll_end(struct busy_poll *bp, bool hit) {
        if (hit) {
                bp->backoff /= 2;
                return;
        }
        bp->backoff = bp->backoff
                              ? (bp->backoff * 2 > BUSY_POLL_SKIP_MAX ? BUSY_POLL_SKIP_MAX : bp->backoff * 2)
                              : 1;
        bp->skip = bp->backoff;
}
