/* A tiny TAP harness: named tests, ASSERT_* printing file:line and both values. */
#pragma once

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*tap_fn)(void);

struct tap_test {
        const char *name;
        tap_fn fn;
};

extern bool tap_failed_current;
/* Set by TAP_SKIP(): why the current test could not run (NULL: it ran). */
extern const char *tap_skip_reason;

#define TAP_FAIL_(fmt, ...)                                                    \
        do {                                                                   \
                printf("# %s:%d: " fmt "\n", __FILE__, __LINE__, __VA_ARGS__); \
                tap_failed_current = true;                                     \
                return;                                                        \
        } while (0)

/* Marks the current test skipped ("ok N name # SKIP reason") and returns from it. Only for what the
 * test cannot control (a tool or a kernel feature that is missing), never to hide a failure. */
#define TAP_SKIP(reason)                    \
        do {                                \
                tap_skip_reason = (reason); \
                return;                     \
        } while (0)

#define ASSERT_TRUE(x)                                         \
        do {                                                   \
                if (!(x))                                      \
                        TAP_FAIL_("assertion failed: %s", #x); \
        } while (0)
#define ASSERT_FALSE(x) ASSERT_TRUE(!(x))
#define ASSERT_EQ(a, b)                                                      \
        do {                                                                 \
                long long _a = (long long) (a), _b = (long long) (b);        \
                if (_a != _b)                                                \
                        TAP_FAIL_("%s == %s: %lld != %lld", #a, #b, _a, _b); \
        } while (0)
#define ASSERT_NE(a, b)                                               \
        do {                                                          \
                long long _a = (long long) (a), _b = (long long) (b); \
                if (_a == _b)                                         \
                        TAP_FAIL_("%s != %s: both %lld", #a, #b, _a); \
        } while (0)
#define ASSERT_OK(r)                                                                    \
        do {                                                                            \
                long long _r = (long long) (r);                                         \
                if (_r < 0)                                                             \
                        TAP_FAIL_("%s failed: %lld (%s)", #r, _r, strerror((int) -_r)); \
        } while (0)
#define ASSERT_ERR(r, e)                                                                            \
        do {                                                                                        \
                long long _r = (long long) (r);                                                     \
                if (_r != (long long) (e))                                                          \
                        TAP_FAIL_("%s: got %lld, expected %s (%lld)", #r, _r, #e, (long long) (e)); \
        } while (0)
#define ASSERT_FAIL(r)                                                              \
        do {                                                                        \
                long long _r = (long long) (r);                                     \
                if (_r >= 0)                                                        \
                        TAP_FAIL_("%s succeeded (%lld), expected failure", #r, _r); \
        } while (0)
#define ASSERT_STREQ(a, b)                                                                  \
        do {                                                                                \
                const char *_a = (a), *_b = (b);                                            \
                if (!_a || !_b || strcmp(_a, _b) != 0)                                      \
                        TAP_FAIL_("%s == %s: \"%s\" != \"%s\"", #a, #b, _a ? _a : "(null)", \
                                  _b ? _b : "(null)");                                      \
        } while (0)
#define ASSERT_MEMEQ(a, b, n)                                                                         \
        do {                                                                                          \
                if (memcmp((a), (b), (n)) != 0)                                                       \
                        TAP_FAIL_("%s and %s differ in their first %zu bytes", #a, #b, (size_t) (n)); \
        } while (0)

/* Run a list of tests; prints TAP and returns the exit code. */
int tap_run(const struct tap_test *tests, size_t n);
/* For a test executable with nothing it can run: prints the plan "1..0 # SKIP reason", returns 0. */
int tap_skip_all(const char *reason);

#define TAP_MAIN(...)                                                       \
        int main(void) {                                                    \
                static const struct tap_test tests_[] = { __VA_ARGS__ };    \
                return tap_run(tests_, sizeof(tests_) / sizeof(tests_[0])); \
        }
#define TEST(path, fn) \
        { path, fn }
