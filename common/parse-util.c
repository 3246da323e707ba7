/* Numbers from the command line and the environment: strict, bounded, one set of rules everywhere. */
#include <errno.h>
#include <stdlib.h>

#include "common/parse-util.h"

int parse_unsigned(const char *s, int base, unsigned long min, unsigned long max, unsigned long *ret) {
        unsigned long v;
        char *end;

        /* strtoul() would skip blanks and take "-1" as ULONG_MAX. */
        if (!s || *s < '0' || *s > '9')
                return -EINVAL;
        errno = 0;
        v = strtoul(s, &end, base);
        if (end == s || *end != '\0')
                return -EINVAL;
        if (errno != 0 || v < min || v > max)
                return -ERANGE;
        *ret = v;
        return 0;
}

int unhexchar(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -EINVAL;
}
