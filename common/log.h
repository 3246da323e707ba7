/* The daemons' logger: stderr with <N> syslog priority prefixes (dropped on a terminal). */
#pragma once

#include <stdbool.h>
#include <syslog.h>

#include "common/cleanup.h"

/* Messages above this level are dropped. Default LOG_INFO. */
void log_set_max_level(int level);
int log_get_max_level(void);
/* "error", "warning", "notice", "info", "debug" (also ACM's "warn", "trace"); -EINVAL if unknown. */
int log_level_from_string(const char *s);
/* Prefix each line with a wall-clock timestamp (acm.yaml log.enable_timestamp). */
void log_set_timestamp(bool on);
/* Force or suppress the <N> prefix; by default it is used unless stderr is a tty. */
void log_set_prefix(bool on);

/* The log_*_errno() calls take a negative errno, as every function here returns it: pass r as it came
 * back, -errno after a libc call that sets errno (or negative_errno()), -r after one that returns a
 * positive code (pthread_*(), getgrnam_r()), and -EINVAL, -ENOMEM for our own. They log, set errno to
 * -error so %m prints its text, and return error, so `return log_error_errno(r, ...);` passes it on.
 * 0 logs without touching errno and returns 0. A positive error is a bug at the call site: it is
 * treated as its negative, and the line says so (naming the call site) instead of hiding it. */
int log_internal(int level, int error, const char *file, int line, const char *fmt, ...) _printf_(5, 6);

/* A positive constant (log_error_errno(ENOMEM, ...)) does not even build: the call below is only left
 * in for one, and the error attribute makes the compiler refuse it. */
int log_errno_positive_constant(void)
        __attribute__((error("log_*_errno() takes a negative errno: -EINVAL, negative_errno(), -r")));
#define LOG_ERRNO_ARG(e) (__builtin_constant_p(e) && (e) > 0 ? log_errno_positive_constant() : (e))

#define log_full_errno(level, error, ...) \
        log_internal(level, LOG_ERRNO_ARG(error), __FILE__, __LINE__, __VA_ARGS__)
#define log_full(level, ...)      (void) log_internal(level, 0, __FILE__, __LINE__, __VA_ARGS__)

#define log_debug(...)            log_full(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)             log_full(LOG_INFO, __VA_ARGS__)
#define log_notice(...)           log_full(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...)          log_full(LOG_WARNING, __VA_ARGS__)
#define log_error(...)            log_full(LOG_ERR, __VA_ARGS__)

#define log_debug_errno(e, ...)   log_full_errno(LOG_DEBUG, e, __VA_ARGS__)
#define log_info_errno(e, ...)    log_full_errno(LOG_INFO, e, __VA_ARGS__)
#define log_warning_errno(e, ...) log_full_errno(LOG_WARNING, e, __VA_ARGS__)
#define log_error_errno(e, ...)   log_full_errno(LOG_ERR, e, __VA_ARGS__)
