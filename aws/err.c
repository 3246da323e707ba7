/* One-line error text for the aws/ library. */
#include <stdarg.h>
#include <stdio.h>

#include "aws/err.h"

int aws_err(struct aws_err *e, int r, const char *fmt, ...) {
        va_list ap;

        if (!e)
                return r;
        va_start(ap, fmt);
        (void) vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
        va_end(ap);
        return r;
}
