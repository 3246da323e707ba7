/* parse_unsigned(): the one number parser of the command lines and the module's environment. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>

#include "common/parse-util.h"
#include "tests/lib/tap.h"

static void test_accepts(void) {
        static const struct {
                const char *s;
                int base;
                unsigned long min, max, want;
        } rows[] = {
                { "0", 10, 0, 10, 0 },        { "10", 10, 0, 10, 10 },       { "007", 10, 0, 10, 7 },
                { "0777", 8, 0, 0777, 0777 }, { "0x1f", 0, 0, 65535, 0x1f }, { "010", 0, 0, 65535, 8 },
                { "5", 10, 5, 5, 5 },
        };

        for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                unsigned long v = 0;

                ASSERT_OK(parse_unsigned(rows[i].s, rows[i].base, rows[i].min, rows[i].max, &v));
                ASSERT_EQ(v, rows[i].want);
        }
}

static void test_not_a_number(void) {
        static const char *const bad[] = { "",    "-1",  "+1",  " 1",  "1 ", "1x",  "x1", "0x10",
                                           "1.5", "1e3", "\t1", "1\n", "-0", "--1", "٣" };
        unsigned long v = 42;

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                int r = parse_unsigned(bad[i], 10, 0, ULONG_MAX, &v);

                if (r != -EINVAL)
                        printf("# bad[%zu]\n", i);
                ASSERT_ERR(r, -EINVAL);
        }
        ASSERT_ERR(parse_unsigned(NULL, 10, 0, ULONG_MAX, &v), -EINVAL);
        ASSERT_ERR(parse_unsigned("8", 8, 0, ULONG_MAX, &v), -EINVAL);
        ASSERT_ERR(parse_unsigned("0x", 0, 0, ULONG_MAX, &v), -EINVAL);
        ASSERT_EQ(v, 42); /* untouched on failure */
}

static void test_out_of_range(void) {
        unsigned long v = 42;
        char big[64];

        ASSERT_ERR(parse_unsigned("0", 10, 1, 10, &v), -ERANGE);
        ASSERT_ERR(parse_unsigned("11", 10, 1, 10, &v), -ERANGE);
        ASSERT_ERR(parse_unsigned("99999999999999999999999999", 10, 0, ULONG_MAX, &v), -ERANGE);
        (void) snprintf(big, sizeof(big), "%lu0", ULONG_MAX);
        ASSERT_ERR(parse_unsigned(big, 10, 0, ULONG_MAX, &v), -ERANGE);
        ASSERT_ERR(parse_unsigned("01000", 8, 0, 0777, &v), -ERANGE);
        ASSERT_EQ(v, 42);
        (void) snprintf(big, sizeof(big), "%lu", ULONG_MAX);
        ASSERT_OK(parse_unsigned(big, 10, 0, ULONG_MAX, &v));
        ASSERT_TRUE(v == ULONG_MAX);
}

TAP_MAIN(TEST("/parse-util/accepts", test_accepts), TEST("/parse-util/not-a-number", test_not_a_number),
         TEST("/parse-util/out-of-range", test_out_of_range))
