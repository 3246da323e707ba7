/* The /metrics endpoint: a thread of its own serving GET /metrics on options.metrics_listen. */
#pragma once

#include "agent/metrics.h"

#define METRICS_HTTP_MAX_SCRAPES       4    /* concurrent; the next connection gets 503 at once */
#define METRICS_HTTP_READ_TIMEOUT_MS   5000 /* for the whole request head (slow-loris) */
#define METRICS_HTTP_WRITE_TIMEOUT_MS  5000 /* for the whole answer */
#define METRICS_HTTP_SCRAPE_TIMEOUT_MS 2000 /* the control-channel round trip */
#define METRICS_HTTP_REQUEST_MAX       8192 /* request head bytes */

struct metrics_http;

/* Binds (a unix socket: an old socket file at the path is replaced; mode 0666) and starts the thread.
 * Does not log: -EADDRINUSE and friends go to the caller. */
_must_check_ int metrics_http_start(const struct metrics_listen *l, struct metrics_http **ret);
/* Stops the thread, waits for the scrapes in progress (each bounded by the timeouts above, woken at
 * once where they wait on their client), closes and removes the socket. NULL is fine; returns NULL. */
struct metrics_http *metrics_http_stop(struct metrics_http *h);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct metrics_http *, metrics_http_stop);

/* The answer to one request head (pure): status 200 with the body of scrape(), 404 another path, 405
 * another method (Allow: GET), 400 a malformed head. The head and body are malloc'ed into *ret. */
typedef int (*metrics_http_scrape_fn)(char **ret, size_t *ret_len);
_must_check_ int metrics_http_answer(const char *head, size_t len, metrics_http_scrape_fn scrape, char **ret,
                                     size_t *ret_len, int *ret_status);
