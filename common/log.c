/* The daemons' logger: stderr with <N> syslog priority prefixes (dropped on a terminal). */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

static int max_level = LOG_INFO;
static int prefix_mode = -1; /* -1: decide from isatty() */
static bool with_timestamp;

void log_set_max_level(int level) {
        max_level = level;
}

int log_get_max_level(void) {
        return max_level;
}

void log_set_timestamp(bool on) {
        with_timestamp = on;
}

void log_set_prefix(bool on) {
        prefix_mode = on;
}

int log_level_from_string(const char *s) {
        static const struct {
                const char *name;
                int level;
        } table[] = {
                { "error", LOG_ERR },    { "err", LOG_ERR },       { "warning", LOG_WARNING },
                { "warn", LOG_WARNING }, { "notice", LOG_NOTICE }, { "info", LOG_INFO },
                { "debug", LOG_DEBUG },  { "trace", LOG_DEBUG },
        };
        for (size_t i = 0; s && i < ELEMENTSOF(table); i++)
                if (strcasecmp(s, table[i].name) == 0)
                        return table[i].level;
        return -EINVAL;
}

static void log_write(int level, const char *msg) {
        char ts[40] = "";

        if (prefix_mode < 0)
                prefix_mode = !isatty(STDERR_FILENO);
        if (with_timestamp) {
                struct timespec now;
                struct tm tm;
                (void) clock_gettime(CLOCK_REALTIME, &now);
                (void) gmtime_r(&now.tv_sec, &tm);
                (void) strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ ", &tm);
        }
        if (prefix_mode)
                (void) fprintf(stderr, "<%d>%s%s\n", level, ts, msg);
        else
                (void) fprintf(stderr, "%s%s\n", ts, msg);
}

int log_internal(int level, int error, const char *file, int line, const char *fmt, ...) {
        int saved = errno;
        char msg[2048];
        va_list ap;

        if (error > 0) {
                /* Not filtered by level: a wrong sign is a bug to fix, wherever it is. */
                (void) snprintf(msg, sizeof(msg),
                                "BUG: %s:%d passed the positive errno %d to log_*_errno(), treated as %d",
                                file, line, error, -error);
                log_write(LOG_ERR, msg);
                error = -error;
        }
        if (error == INT_MIN)
                error = -ERANGE; /* has no positive counterpart */
        if (level > max_level) {
                errno = saved;
                return error;
        }
        errno = -error;
        va_start(ap, fmt);
        (void) vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        log_write(level, msg);
        errno = error ? -error : saved;
        return error;
}
