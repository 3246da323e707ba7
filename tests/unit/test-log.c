/* The daemons' logger: the negative-errno convention of log_*_errno() and what %m prints. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "tests/lib/capture.h"
#include "tests/lib/tap.h"

static void capture_start(void) {
        capture_stderr_begin();
        log_set_prefix(false);
        log_set_timestamp(false);
        log_set_max_level(LOG_INFO);
}

static void test_negative(void) {
        char want[256];
        int r, e;

        capture_start();
        r = log_error_errno(-ENOENT, "Cannot open '%s': %m", "x.pem");
        e = errno;
        (void) snprintf(want, sizeof(want), "Cannot open 'x.pem': %s\n", strerror(ENOENT));
        ASSERT_STREQ(capture_stderr_end(), want);
        ASSERT_EQ(r, -ENOENT);
        ASSERT_EQ(e, ENOENT);
}

static void test_return_passes_on(void) {
        int r;

        capture_start();
        r = log_warning_errno(-EPROTO, "w");
        (void) capture_stderr_end();
        ASSERT_EQ(r, -EPROTO);
        capture_start();
        r = log_info_errno(-EACCES, "i: %m");
        ASSERT_EQ(r, -EACCES);
        ASSERT_TRUE(strstr(capture_stderr_end(), strerror(EACCES)) != NULL);
}

/* A level that is filtered out prints nothing, leaves errno alone and still returns the code. */
static void test_filtered(void) {
        int r, e;

        capture_start();
        errno = EINTR;
        r = log_debug_errno(-ENOMEM, "d: %m");
        e = errno;
        ASSERT_STREQ(capture_stderr_end(), "");
        ASSERT_EQ(r, -ENOMEM);
        ASSERT_EQ(e, EINTR);
}

static void test_zero(void) {
        int r, e;

        capture_start();
        errno = EAGAIN;
        r = log_error_errno(0, "z");
        e = errno;
        ASSERT_STREQ(capture_stderr_end(), "z\n");
        ASSERT_EQ(r, 0);
        ASSERT_EQ(e, EAGAIN);
}

/* A positive code is a bug at the call site: the line still says the right thing, the code comes back
 * negative, and a BUG line names the call site, even when the level is filtered out. */
static void test_positive_is_reported(void) {
        volatile int positive_ebadmsg = EBADMSG, positive_enomem = ENOMEM;
        const char *o;
        char want[256];
        int r, line;

        /* A constant would not build (see log.h): the wrong sign arrives the way it can, in a variable. */
        capture_start();
        line = __LINE__ + 1;
        r = log_error_errno(positive_ebadmsg, "bad: %m");
        o = capture_stderr_end();
        ASSERT_EQ(r, -EBADMSG);
        (void) snprintf(want, sizeof(want), "bad: %s\n", strerror(EBADMSG));
        ASSERT_TRUE(strstr(o, want) != NULL);
        (void) snprintf(want, sizeof(want), "BUG: %s:%d passed the positive errno %d", __FILE__, line,
                        EBADMSG);
        ASSERT_TRUE(strstr(o, want) != NULL);

        capture_start();
        r = log_debug_errno(positive_enomem, "filtered");
        o = capture_stderr_end();
        ASSERT_EQ(r, -ENOMEM);
        ASSERT_TRUE(strstr(o, "BUG: ") != NULL);
        ASSERT_TRUE(strstr(o, "filtered") == NULL);
}

static void test_prefix(void) {
        capture_start();
        log_set_prefix(true);
        (void) log_error_errno(-EIO, "p");
        log_warning("w");
        ASSERT_STREQ(capture_stderr_end(), "<3>p\n<4>w\n");
        log_set_prefix(false);
}

static void test_level_names(void) {
        ASSERT_EQ(log_level_from_string("error"), LOG_ERR);
        ASSERT_EQ(log_level_from_string("WARN"), LOG_WARNING);
        ASSERT_EQ(log_level_from_string("trace"), LOG_DEBUG);
        ASSERT_EQ(log_level_from_string("loud"), -EINVAL);
        ASSERT_EQ(log_level_from_string(NULL), -EINVAL);
}

TAP_MAIN(TEST("/log/errno/negative", test_negative), TEST("/log/errno/return", test_return_passes_on),
         TEST("/log/errno/filtered", test_filtered), TEST("/log/errno/zero", test_zero),
         TEST("/log/errno/positive-is-reported", test_positive_is_reported),
         TEST("/log/prefix", test_prefix), TEST("/log/level-names", test_level_names))
