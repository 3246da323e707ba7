/* Error messages handed back to a caller that decides whether and how to log them. */
#pragma once

#include "common/cleanup.h"

/* Replaces *ret_error (when ret_error is not NULL) with the formatted message, or NULL if it cannot
 * be allocated, and returns -abs(error). */
_printf_(3, 4) int errmsg_set(char **ret_error, int error, const char *fmt, ...);
