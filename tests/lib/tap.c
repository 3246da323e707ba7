/* A tiny TAP harness: named tests, ASSERT_* printing file:line and both values. */
#include <stdio.h>

#include "tests/lib/tap.h"

bool tap_failed_current;
const char *tap_skip_reason;

int tap_run(const struct tap_test *tests, size_t n) {
        size_t failed = 0;

        setvbuf(stdout, NULL, _IOLBF, 0);
        printf("1..%zu\n", n);
        for (size_t i = 0; i < n; i++) {
                tap_failed_current = false;
                tap_skip_reason = NULL;
                tests[i].fn();
                if (tap_failed_current) {
                        /* A failed assertion before a TAP_SKIP() still fails the test. */
                        printf("not ok %zu %s\n", i + 1, tests[i].name);
                        failed++;
                } else if (tap_skip_reason)
                        printf("ok %zu %s # SKIP %s\n", i + 1, tests[i].name, tap_skip_reason);
                else
                        printf("ok %zu %s\n", i + 1, tests[i].name);
        }
        return failed ? 1 : 0;
}

int tap_skip_all(const char *reason) {
        printf("1..0 # SKIP %s\n", reason);
        return 0;
}
