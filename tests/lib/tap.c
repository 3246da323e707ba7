/* A tiny TAP harness: named tests, ASSERT_* printing file:line and both values. */
#include <stdio.h>

#include "tests/lib/tap.h"

bool tap_failed_current;

int tap_run(const struct tap_test *tests, size_t n) {
        size_t failed = 0;

        setvbuf(stdout, NULL, _IOLBF, 0);
        printf("1..%zu\n", n);
        for (size_t i = 0; i < n; i++) {
                tap_failed_current = false;
                tests[i].fn();
                printf("%s %zu %s\n", tap_failed_current ? "not ok" : "ok", i + 1, tests[i].name);
                if (tap_failed_current)
                        failed++;
        }
        return failed ? 1 : 0;
}
