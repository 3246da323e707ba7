/* The agent's state file, <runtime_dir>/status: what `enclave-acm status` shows about the agent.
 *
 * Text, one record per line: a kind ("agent", "token"), then " key=value" fields. Keys are [a-z_]+;
 * values are percent-encoded where they hold '%', a byte <= 0x20 or 0x7f, so a record stays one line
 * and splits on spaces. The agent rewrites the whole file atomically when something changed. It holds
 * no secret: labels, paths, times (Unix seconds), states and error messages with PINs masked.
 * Readers ignore kinds and keys they do not know, so fields can be added. */
#pragma once

#include <stdint.h>
#include <stdio.h>

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
