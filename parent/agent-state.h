/* The agent's state file, <runtime_dir>/status: what `enclave-acm status` shows about the agent.
 *
 * Text, one record per line: a kind ("agent", "token"), then " key=value" fields. Keys are [a-z_]+;
 * values are percent-encoded where they hold '%', a byte <= 0x20 or 0x7f, so a record stays one line
 * and splits on spaces. The agent rewrites the whole file atomically when something changed. It holds
 * no secret: labels, paths, times (Unix seconds), states and error messages with PINs masked.
 * Readers ignore kinds and keys they do not know, so fields can be added. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <errno.h>

#include "common/cleanup.h"

#define AGENT_STATE_FILE       "status"
#define AGENT_STATE_MAX_FILE   (1024u * 1024u)
#define AGENT_STATE_MAX_LINE   8192u
#define AGENT_STATE_MAX_FIELDS 32u

struct agent_state_field {
        const char *key;
        const char *value; /* decoded, NUL-terminated */
};

struct agent_state_record {
        char *buf; /* owns kind, keys and values */
        const char *kind;
        size_t n_fields;
        struct agent_state_field fields[AGENT_STATE_MAX_FIELDS];
};

/* Writing: the kind starts a line (agent_state_begin), fields follow, agent_state_end() ends it.
 * A NULL value writes nothing. Errors stick to f (check ferror() once at the end). */
void agent_state_begin(FILE *f, const char *kind);
void agent_state_put(FILE *f, const char *key, const char *value);
void agent_state_put_u64(FILE *f, const char *key, uint64_t value);
void agent_state_end(FILE *f);

/* Parse one line (without its '\n'). -EBADMSG for anything but the format above (an empty value is
 * fine; "%00", a bad escape, a repeated key, a byte <= 0x20 are not), -E2BIG for more than
 * AGENT_STATE_MAX_FIELDS fields or a line over AGENT_STATE_MAX_LINE, -ENOMEM. *ret is filled only
 * on success; release it with agent_state_record_done(). Pure. */
_must_check_ int agent_state_parse_line(const char *line, size_t len, struct agent_state_record *ret);
void agent_state_record_done(struct agent_state_record *r);

/* The value of key, or NULL. */
const char *agent_state_get(const struct agent_state_record *r, const char *key);
/* A decimal uint64 value: 0, -ENOENT when absent, -EBADMSG when not a number. */
_must_check_ int agent_state_get_u64(const struct agent_state_record *r, const char *key, uint64_t *ret);

/* Health facts (agent/health.c writes them, `enclave-acm health` and `status` read them): one "health"
 * record, then one "problem" record per problem:
 *
 *   health level=degraded updated=UNIX stale_after=SECS interval=SECS timeout_ms=MS max_misses=N misses=N
 *          ping=ok|missed|none ping_at=UNIX ping_usec=USEC relaunches=N expiry_warning_days=N
 *   problem level=degraded|down subject=enclave|agent|token label=L text=...
 *
 * updated is rewritten at least every stale_after / 3 seconds while the agent's loop runs: a reader
 * that finds it older than stale_after takes the agent for stuck. */
enum agent_state_level {
        AGENT_STATE_HEALTHY,
        AGENT_STATE_DEGRADED,
        AGENT_STATE_DOWN,
        _AGENT_STATE_LEVEL_MAX,
        _AGENT_STATE_LEVEL_INVALID = -EINVAL,
};

#define AGENT_STATE_MAX_PROBLEMS 64u

struct agent_state_health {
        enum agent_state_level level;
        uint64_t updated, stale_after; /* Unix seconds; seconds */
        uint64_t interval, timeout_ms; /* 0 interval: in-band pings are off */
        uint64_t max_misses, misses, relaunches, expiry_warning_days;
        const char *ping; /* "ok", "missed", "none"; borrowed from the record */
        uint64_t ping_at, ping_usec;
};

struct agent_state_problem {
        enum agent_state_level level; /* DEGRADED or DOWN */
        const char *subject;          /* "enclave", "agent", "token" */
        const char *label;            /* token problems: the token; else NULL */
        const char *text;
};

const char *agent_state_level_to_string(enum agent_state_level l);
enum agent_state_level agent_state_level_from_string(const char *s);

/* A "health" record into *ret (strings borrowed from rec). -EBADMSG naming nothing more: a missing or
 * malformed level, updated or stale_after, a ping that is not ok/missed/none, a number that does not
 * parse; optional numbers left out are 0. Pure. */
_must_check_ int agent_state_health_from_record(const struct agent_state_record *rec,
                                                struct agent_state_health *ret);
/* A "problem" record: level degraded or down, a subject and a text are required; "token" needs a
 * label. -EBADMSG otherwise. Pure. */
_must_check_ int agent_state_problem_from_record(const struct agent_state_record *rec,
                                                 struct agent_state_problem *ret);
/* Is the health record too old at now (Unix seconds)? A record from the future by more than
 * stale_after counts as stale as well (the clock was set back, or the file is not ours). Pure. */
bool agent_state_health_stale(const struct agent_state_health *h, uint64_t now);
