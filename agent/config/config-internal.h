/* Internal to agent/config*.c: the diagnostics list and the bounded YAML tree the schema walker reads. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "agent/config/config.h"
#include "common/cleanup.h"

/* Append an entry (kept up to AGENT_CONFIG_MAX_DIAGS, always counted). key may be NULL.
 * Control characters in key and message become '?'. 0 or -ENOMEM. */
_must_check_ int config_diag_add(struct agent_config_diag *d, enum agent_config_severity severity,
                                 unsigned line, unsigned column, const char *key, const char *fmt, ...)
        _printf_(6, 7);

/* Printing a value from the file: "%.*s%s" with CONFIG_VALUE(s, len), cut at 64 bytes. */
#define CONFIG_VALUE_SHOWN 64
#define CONFIG_VALUE(s, len)                                         \
        (int) MIN((size_t) (len), (size_t) CONFIG_VALUE_SHOWN), (s), \
                (size_t) (len) > CONFIG_VALUE_SHOWN ? "..." : ""

enum ynode_type {
        YNODE_SCALAR,
        YNODE_MAPPING,
        YNODE_SEQUENCE,
};

struct ynode {
        enum ynode_type type;
        unsigned line, column; /* 1-based */
        /* scalar */
        char *value; /* NUL-terminated, no NUL inside; wiped on free (it may be a PIN) */
        size_t len;
        bool plain; /* unquoted and untagged: may be null, a number or a boolean */
        /* mapping (key, value, key, value, ...) or sequence */
        struct ynode **items;
        size_t n_items;
        size_t n_alloc;
};

struct ynode *ynode_free(struct ynode *n);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct ynode *, ynode_free);

/* Plain "", "~", "null", "Null", "NULL": a key with no value. */
bool ynode_is_null(const struct ynode *n);

/* One YAML document into a tree, with the bounds of config.h; anchors, aliases, tags other than
 * !!str/!!map/!!seq, complex keys and further documents are errors. An empty stream gives a NULL
 * tree. 0, -EINVAL (with a diag entry) or -ENOMEM. */
_must_check_ int config_yaml_parse(const char *text, size_t len, struct agent_config_diag *diag,
                                   struct ynode **ret);

/* The schema walker. Its helpers return a negative errno only for what stops the parse (-ENOMEM);
 * a problem in the document is reported to the diag list and the walk goes on, so one run shows
 * every error. Checkers return 1 when the value was accepted, 0 when a problem was reported. */
struct config_ctx {
        struct agent_config_diag *diag;
        struct agent_config *cfg;
};

enum {
        CONFIG_REQUIRED = 1u << 0, /* missing or null: error */
        CONFIG_NONEMPTY = 1u << 1, /* strings: "" is an error */
        CONFIG_ABSOLUTE = 1u << 2, /* strings: an absolute path */
        CONFIG_NAME = 1u << 3,     /* strings: a user or group name */
        CONFIG_SECRET = 1u << 4,   /* never shown; an unknown key starting with its name is hidden too */
};

struct config_field;
typedef int (*config_parse_fn)(struct config_ctx *c, const struct config_field *f, const struct ynode *v,
                               const char *path, void *obj);

/* One key of a mapping. Aliases share a slot; the value goes to obj + offset. A null value means
 * the key is absent (ACM's Option<>), so parse is not called for it. */
struct config_field {
        const char *name;
        unsigned slot;
        config_parse_fn parse;
        size_t offset;
        uint64_t min, max;        /* integers */
        const char *const *names; /* enums, indexed by value */
        size_t n_names;
        unsigned flags;
};

/* Where each slot was given, for duplicate keys and for later checks. */
struct config_seen {
        const struct ynode *key;
        const struct ynode *value; /* NULL when the value was null */
};

_must_check_ int config_report(struct config_ctx *c, enum agent_config_severity severity,
                               const struct ynode *at, const char *path, const char *fmt, ...)
        _printf_(5, 6);
/* The result of config_report() for a checker: 0 once reported, or the fatal error. */
#define CONFIG_REPORTED(expr)    \
        ({                       \
                int _r = (expr); \
                _r < 0 ? _r : 0; \
        })
#define config_error(c, at, path, ...)   config_report(c, AGENT_CONFIG_ERROR, at, path, __VA_ARGS__)
#define config_warning(c, at, path, ...) config_report(c, AGENT_CONFIG_WARNING, at, path, __VA_ARGS__)

/* "prefix.key" / "prefix[i]"; NULL on ENOMEM. */
char *config_path_join(const char *prefix, const char *key);
char *config_path_index(const char *prefix, size_t i);

/* "a mapping", "a list", "a string" ... for messages. */
const char *config_node_kind(const struct ynode *n);

/* Checkers (1 accepted, 0 reported, <0 fatal). A null node counts as an empty mapping. */
_must_check_ int config_check_mapping(struct config_ctx *c, const struct ynode *v, const char *path);
/* A scalar without control characters; when secret, its value never appears in a message. */
_must_check_ int config_check_string(struct config_ctx *c, const struct ynode *v, const char *path,
                                     bool secret);

/* Walks a mapping (or null) against a table: unknown keys are warnings, repeated slots and missing
 * CONFIG_REQUIRED keys errors. seen has one entry per slot and may be NULL. */
_must_check_ int config_walk_mapping(struct config_ctx *c, const struct ynode *map, const char *path,
                                     const struct config_field *fields, size_t n_fields, void *obj,
                                     struct config_seen *seen, size_t n_seen);

/* Field parsers for the tables. */
int config_parse_u64(struct config_ctx *c, const struct config_field *f, const struct ynode *v,
                     const char *path, void *obj);
int config_parse_u32(struct config_ctx *c, const struct config_field *f, const struct ynode *v,
                     const char *path, void *obj);
int config_parse_bool(struct config_ctx *c, const struct config_field *f, const struct ynode *v,
                      const char *path, void *obj);
int config_parse_string(struct config_ctx *c, const struct config_field *f, const struct ynode *v,
                        const char *path, void *obj);
/* Stores an int: the index of the value in f->names. */
int config_parse_enum(struct config_ctx *c, const struct config_field *f, const struct ynode *v,
                      const char *path, void *obj);

/* tokens[] (config-token.c), after enclave and options have been parsed. */
_must_check_ int config_parse_tokens(struct config_ctx *c, const struct ynode *v, const char *path);
void config_token_done(struct agent_config_token *t);
