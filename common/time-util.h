/* The monotonic clock in the units callers count in: one definition for every daemon and the module. */
#pragma once

#include <stdint.h>
#include <time.h>

static inline uint64_t mono_nsec(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

static inline uint64_t mono_usec(void) {
        return mono_nsec() / 1000u;
}

static inline uint64_t mono_msec(void) {
        return mono_nsec() / 1000000u;
}
