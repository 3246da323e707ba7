/* Error messages handed back to a caller that decides whether and how to log them. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/errmsg.h"

int errmsg_set(char **ret_error, int error, const char *fmt, ...) {
        va_list ap;

        if (ret_error) {
                free(*ret_error);
                *ret_error = NULL;
                va_start(ap, fmt);
                if (vasprintf(ret_error, fmt, ap) < 0)
                        *ret_error = NULL;
                va_end(ap);
        }
        return error > 0 ? -error : error;
}
