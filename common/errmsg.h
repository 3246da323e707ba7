/* Error messages handed back to a caller that decides whether and how to log them. */
#pragma once

#include "common/cleanup.h"

/* Replaces *ret_error (when ret_error is not NULL) with the formatted message, or NULL if it cannot
 * be allocated, and returns error: a negative errno, as log_*_errno() takes it (so that
 * `return errmsg_set(ret_error, -EBADMSG, ...);` passes it on). A positive one is a bug at the call
 * site; it still comes back negative, so that the failure is not taken for success. */
_printf_(3, 4) int errmsg_set(char **ret_error, int error, const char *fmt, ...);
