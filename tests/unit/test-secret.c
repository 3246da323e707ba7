/* secret_buf: sizes, set/clear/dup, and that freeing takes NULL. */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/secret.h"
#include "tests/lib/tap.h"

static void test_new_free(void) {
        _cleanup_secret_ struct secret_buf *s = NULL;
        long page = sysconf(_SC_PAGESIZE);

        ASSERT_OK(secret_buf_new(100, &s));
        ASSERT_EQ(s->cap, 100);
        ASSERT_EQ(s->len, 0);
        ASSERT_EQ(s->map_size % (size_t) page, 0);
        ASSERT_TRUE(s->map_size >= 100);
        ASSERT_EQ(((uintptr_t) s->data) % (uintptr_t) page, 0);
        for (size_t i = 0; i < s->cap; i++)
                ASSERT_EQ(s->data[i], 0);
        ASSERT_TRUE(secret_buf_free(NULL) == NULL);
}

static void test_invalid(void) {
        struct secret_buf *s = NULL;

        ASSERT_ERR(secret_buf_new(0, &s), -EINVAL);
        ASSERT_ERR(secret_buf_new(16, NULL), -EINVAL);
        ASSERT_ERR(secret_buf_new((size_t) 1 << 29, &s), -EINVAL);
        ASSERT_TRUE(s == NULL);
}

static void test_set_clear(void) {
        _cleanup_secret_ struct secret_buf *s = NULL;

        ASSERT_OK(secret_buf_new(8, &s));
        ASSERT_OK(secret_buf_set(s, "12345678", 8));
        ASSERT_EQ(s->len, 8);
        ASSERT_MEMEQ(s->data, "12345678", 8);
        ASSERT_ERR(secret_buf_set(s, "123456789", 9), -EMSGSIZE);
        ASSERT_MEMEQ(s->data, "12345678", 8); /* unchanged on failure */
        ASSERT_OK(secret_buf_set(s, "ab", 2));
        ASSERT_EQ(s->len, 2);
        ASSERT_EQ(s->data[2], 0); /* the longer old value was wiped */
        ASSERT_ERR(secret_buf_set(s, NULL, 1), -EINVAL);
        ASSERT_ERR(secret_buf_set(NULL, "a", 1), -EINVAL);
        /* from its own bytes: trimming in place */
        ASSERT_OK(secret_buf_set(s, "abcdef", 6));
        ASSERT_OK(secret_buf_set(s, s->data + 2, 3));
        ASSERT_EQ(s->len, 3);
        ASSERT_MEMEQ(s->data, "cde", 3);
        ASSERT_EQ(s->data[3], 0);
        ASSERT_EQ(s->data[5], 0);
        secret_buf_clear(s);
        ASSERT_EQ(s->len, 0);
        ASSERT_EQ(s->data[0], 0);
        ASSERT_EQ(s->data[1], 0);
        secret_buf_clear(NULL);
}

static void test_dup(void) {
        _cleanup_secret_ struct secret_buf *a = NULL, *b = NULL;

        ASSERT_OK(secret_buf_dup("pin!", 4, &a));
        ASSERT_EQ(a->len, 4);
        ASSERT_MEMEQ(a->data, "pin!", 4);
        ASSERT_OK(secret_buf_dup(NULL, 0, &b));
        ASSERT_EQ(b->len, 0);
}

static void test_wipe(void) {
        char buf[16];

        memset(buf, 'x', sizeof(buf));
        secret_wipe(buf, 8);
        ASSERT_EQ(buf[0], 0);
        ASSERT_EQ(buf[7], 0);
        ASSERT_EQ(buf[8], 'x');
        secret_wipe(NULL, 10);
        secret_wipe(buf, 0);
}

TAP_MAIN(TEST("/secret/new-free", test_new_free), TEST("/secret/invalid", test_invalid),
         TEST("/secret/set-clear", test_set_clear), TEST("/secret/dup", test_dup),
         TEST("/secret/wipe", test_wipe))
