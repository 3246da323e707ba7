/* Reading sample files from tests/data for the unit tests. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "tests/lib/data.h"

/* tests/data: $TEST_DATA, else next to this file (meson runs tests from the build root and
 * compiles this file as "../tests/lib/data.c"). */
char *test_data_load(const char *rel, size_t *ret_len) {
        const char *env = getenv("TEST_DATA"), *slash = strrchr(__FILE__, '/');
        _cleanup_free_ char *path = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        char *buf;
        long n;

        if (env ? asprintf(&path, "%s/%s", env, rel) < 0
                : asprintf(&path, "%.*s/../data/%s", slash ? (int) (slash - __FILE__) : 1,
                           slash ? __FILE__ : ".", rel) < 0)
                return NULL;
        f = fopen(path, "rbe");
        if (!f || fseek(f, 0, SEEK_END) < 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) < 0) {
                printf("# cannot read '%s' (set TEST_DATA to tests/data)\n", path);
                return NULL;
        }
        buf = malloc((size_t) n + 1);
        if (!buf || fread(buf, 1, (size_t) n, f) != (size_t) n) {
                free(buf);
                return NULL;
        }
        buf[n] = '\0';
        *ret_len = (size_t) n;
        return buf;
}
