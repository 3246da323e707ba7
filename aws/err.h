/* One-line error text for the aws/ library: what failed and where (field, byte offset), never a value. */
#pragma once

#include <stddef.h>

#include "common/cleanup.h"

#define AWS_ERR_MAX 192

struct aws_err {
        char msg[AWS_ERR_MAX];
};

/* Formats into e (NULL: nothing) and returns r, so an error path reads `return aws_err(e, -EINVAL, ...)`. */
_printf_(3, 4) int aws_err(struct aws_err *e, int r, const char *fmt, ...);
