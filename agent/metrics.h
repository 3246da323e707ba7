/* The agent's metrics: a Prometheus text exposition writer (pure), the listen address of
 * options.metrics_listen (pure), and the registry the service loop and the health code feed
 * (a mutex-guarded copy: a scrape never waits on the loop, the loop never waits on a scrape). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/un.h>

#include "common/cleanup.h"

/* ---- the exposition writer (pure) ---- */

/* A scrape's size cap: a larger exposition is refused (-EMSGSIZE), not cut short. */
#define METRICS_MAX_BYTES_DEFAULT (4u * 1024u * 1024u)
#define METRICS_FAMILIES_MAX      256

enum metrics_type {
        METRICS_COUNTER,
        METRICS_GAUGE,
        METRICS_HISTOGRAM,
        _METRICS_TYPE_MAX,
        _METRICS_TYPE_INVALID = -EINVAL,
};

struct metrics_label {
        const char *name;  /* [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__" */
        const char *value; /* any UTF-8; \, " and newline are escaped */
};

struct metrics_set;

_must_check_ int metrics_set_new(size_t max_bytes, struct metrics_set **ret);
struct metrics_set *metrics_set_free(struct metrics_set *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct metrics_set *, metrics_set_free);

/* Declares a family (name [a-zA-Z_:][a-zA-Z0-9_:]*; a counter's ends in _total). Declaring it again with
 * the same type is a no-op; another type is -EEXIST. -EINVAL for a bad name, -E2BIG past
 * METRICS_FAMILIES_MAX. */
_must_check_ int metrics_family(struct metrics_set *m, const char *name, enum metrics_type type,
                                const char *help);
/* One sample of a declared counter or gauge. -ENOENT undeclared, -EINVAL a bad label name or a
 * histogram family, -EMSGSIZE over the size cap (sticky: the set is then unusable). */
_must_check_ int metrics_add(struct metrics_set *m, const char *name, const struct metrics_label *labels,
                             size_t n_labels, double value);
/* One histogram series: counts[] per bucket (not cumulative), n_bounds finite upper bounds (strictly
 * increasing, in the family's base unit) and one more count for +Inf; the writer emits the cumulative
 * _bucket{le=…} lines, _sum and _count. */
_must_check_ int metrics_add_histogram(struct metrics_set *m, const char *name,
                                       const struct metrics_label *labels, size_t n_labels,
                                       const double *bounds, size_t n_bounds, const uint64_t *counts,
                                       double sum);
/* The exposition, families sorted by name, each with its HELP and TYPE lines; NUL-terminated, malloc'ed.
 * The sticky error of an earlier add, if any. */
_must_check_ int metrics_render(const struct metrics_set *m, char **ret, size_t *ret_len);

bool metrics_name_valid(const char *name);
bool metrics_label_name_valid(const char *name);

/* ---- options.metrics_listen (pure) ---- */

enum metrics_listen_kind {
        METRICS_LISTEN_UNIX,
        METRICS_LISTEN_INET,
        METRICS_LISTEN_INET6,
        _METRICS_LISTEN_KIND_MAX,
        _METRICS_LISTEN_KIND_INVALID = -EINVAL,
};

struct metrics_listen {
        enum metrics_listen_kind kind;
        char path[sizeof(((struct sockaddr_un *) 0)->sun_path)]; /* UNIX */
        uint8_t addr[16];                                        /* INET (4 bytes) / INET6, network order */
        uint16_t port;
};

/* An absolute unix socket path, 127.x.y.z:PORT or [::1]:PORT (PORT 1..65535). -EINVAL malformed,
 * -EADDRNOTAVAIL a well-formed address that is not loopback; *ret_error (may be NULL) says which in
 * one line. */
_must_check_ int metrics_listen_parse(const char *s, struct metrics_listen *ret, const char **ret_error);

/* ---- the registry ---- */

enum agent_metrics_counter {
        AGENT_METRICS_LAUNCHES,   /* the enclave started */
        AGENT_METRICS_RELAUNCHES, /* it started again after it died */
        AGENT_METRICS_RELOADS,    /* the web server reloaded (or started) with a new target file */
        AGENT_METRICS_ROLLBACKS,  /* a target change was rolled back (config test, reload, server died) */
        _AGENT_METRICS_COUNTER_MAX,
        _AGENT_METRICS_COUNTER_INVALID = -EINVAL,
};

/* One token as the loop last saw it: Unix seconds, 0 unknown / never. */
struct agent_metrics_token {
        char label[33];
        uint64_t not_after;
        uint64_t synced_at;
        uint64_t refreshed_at;
        uint64_t attested_at; /* encrypted keys: the last refresh or provisioning through a KMS round */
        uint64_t expires;
        bool ready;
};

void agent_metrics_count(enum agent_metrics_counter c);
/* Errors by kind: source reads by source ("acm", "s3", "file": an enum agent_source_kind) and KMS by
 * the enclave's status ("kms-denied", "no-attestation", …) or "round" (no round: credentials, attestation)
 * and "connection". Kinds are static strings; at most AGENT_METRICS_KINDS_MAX different ones are kept. */
#define AGENT_METRICS_KINDS_MAX 32
void agent_metrics_source_error(int source_kind);
void agent_metrics_kms_error(const char *kind);
/* The enclave's answer time to an in-band PING, and whether it answered (for the health code). Until it
 * is called, a scrape pings the enclave itself. */
void agent_metrics_set_ping(double seconds, bool ok);
/* A copy of the token set and the enclave's control address (NULL: the enclave is not running). */
_must_check_ int agent_metrics_publish(const struct agent_metrics_token *tokens, size_t n,
                                       const char *control_address);
/* Forgets everything (tests). */
void agent_metrics_reset(void);

/* A whole scrape: the agent's metrics and the enclave's STATS (one control connection, timeout_ms), as
 * exposition text. */
_must_check_ int agent_metrics_scrape(int timeout_ms, char **ret, size_t *ret_len);
