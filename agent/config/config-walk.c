/* The acm.yaml schema walker: mappings against field tables, typed scalars, located diagnostics. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/config/config-internal.h"

#define SUGGEST_MAX_LEN 64

/* Locale-independent, whatever setlocale() the program may have called. */
static bool ascii_alnum(char ch) {
        return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
}

static char ascii_lower(char ch) {
        return ch >= 'A' && ch <= 'Z' ? (char) (ch - 'A' + 'a') : ch;
}

int config_report(struct config_ctx *c, enum agent_config_severity severity, const struct ynode *at,
                  const char *path, const char *fmt, ...) {
        _cleanup_free_ char *msg = NULL;
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&msg, fmt, ap);
        va_end(ap);
        if (r < 0) {
                msg = NULL;
                return -ENOMEM;
        }
        return config_diag_add(c->diag, severity, at ? at->line : 0, at ? at->column : 0, path, "%s", msg);
}

char *config_path_join(const char *prefix, const char *key) {
        char *s;

        if (asprintf(&s, "%s%s%s", prefix ? prefix : "", prefix && prefix[0] ? "." : "", key) < 0)
                return NULL;
        return s;
}

char *config_path_index(const char *prefix, size_t i) {
        char *s;

        if (asprintf(&s, "%s[%zu]", prefix ? prefix : "", i) < 0)
                return NULL;
        return s;
}

const char *config_node_kind(const struct ynode *n) {
        if (!n)
                return "nothing";
        switch (n->type) {
        case YNODE_MAPPING: return "a mapping";
        case YNODE_SEQUENCE: return "a list";
        default: return ynode_is_null(n) ? "no value" : "a single value";
        }
}

int config_check_mapping(struct config_ctx *c, const struct ynode *v, const char *path) {
        if (v->type == YNODE_MAPPING || ynode_is_null(v))
                return 1;
        return CONFIG_REPORTED(config_error(c, v, path, "expected a mapping, got %s", config_node_kind(v)));
}

int config_check_string(struct config_ctx *c, const struct ynode *v, const char *path, bool secret) {
        if (v->type != YNODE_SCALAR)
                return CONFIG_REPORTED(
                        config_error(c, v, path, "expected a single value, got %s", config_node_kind(v)));
        for (size_t i = 0; i < v->len; i++)
                if ((unsigned char) v->value[i] < 0x20 || (unsigned char) v->value[i] == 0x7f)
                        return CONFIG_REPORTED(config_error(c, v, path,
                                                            "%s contains a control character (byte %zu)",
                                                            secret ? "the secret value" : "value", i + 1));
        return 1;
}

/* Case-insensitive edit distance, for "did you mean". Both strings at most SUGGEST_MAX_LEN bytes. */
static size_t edit_distance(const char *a, const char *b) {
        size_t la = strlen(a), lb = strlen(b), row[SUGGEST_MAX_LEN + 1];

        for (size_t j = 0; j <= lb; j++)
                row[j] = j;
        for (size_t i = 1; i <= la; i++) {
                size_t diag = row[0];

                row[0] = i;
                for (size_t j = 1; j <= lb; j++) {
                        size_t up = row[j];
                        size_t cost = ascii_lower(a[i - 1]) != ascii_lower(b[j - 1]);

                        row[j] = MIN(MIN(row[j] + 1, row[j - 1] + 1), diag + cost);
                        diag = up;
                }
        }
        return row[lb];
}

static const char *suggest(const char *key, const struct config_field *fields, size_t n_fields) {
        const char *best = NULL;
        size_t best_d = 3; /* at most two edits */

        if (strlen(key) > SUGGEST_MAX_LEN)
                return NULL;
        for (size_t i = 0; i < n_fields; i++) {
                size_t d;

                if (strlen(fields[i].name) > SUGGEST_MAX_LEN)
                        continue;
                d = edit_distance(key, fields[i].name);
                if (d < best_d) {
                        best = fields[i].name;
                        best_d = d;
                }
        }
        return best;
}

/* "pin 1234" or "pin:1234" in a flow mapping is one plain key, with the PIN in it. */
static const char *secret_prefix(const char *key, const struct config_field *fields, size_t n_fields) {
        for (size_t i = 0; i < n_fields; i++) {
                size_t n = strlen(fields[i].name);

                if ((fields[i].flags & CONFIG_SECRET) && strncmp(key, fields[i].name, n) == 0 &&
                    !ascii_alnum(key[n]) && key[n] != '_')
                        return fields[i].name;
        }
        return NULL;
}

static int unknown_key(struct config_ctx *c, const struct ynode *key, const char *path, const char *kpath,
                       const struct config_field *fields, size_t n_fields) {
        const char *s = secret_prefix(key->value, fields, n_fields);

        if (s) {
                _cleanup_free_ char *hidden = config_path_join(path, "(hidden)");

                if (!hidden)
                        return -ENOMEM;
                return config_warning(c, key, hidden,
                                      "unknown key starting with '%s', ignoring (not shown: it "
                                      "may hold a secret; is a ': ' missing?)",
                                      s);
        }
        s = suggest(key->value, fields, n_fields);
        if (s)
                return config_warning(c, key, kpath, "unknown key, ignoring (did you mean '%s'?)", s);
        return config_warning(c, key, kpath, "unknown key, ignoring");
}

static int walk_pair(struct config_ctx *c, const struct ynode *key, const struct ynode *value,
                     const char *path, const struct config_field *fields, size_t n_fields, void *obj,
                     struct config_seen *seen) {
        _cleanup_free_ char *kpath = config_path_join(path, key->value);
        const struct config_field *f = NULL;
        const struct ynode *first;

        if (!kpath)
                return -ENOMEM;
        for (size_t i = 0; i < n_fields && !f; i++)
                if (strcmp(fields[i].name, key->value) == 0)
                        f = &fields[i];
        if (!f)
                return unknown_key(c, key, path, kpath, fields, n_fields);

        first = seen[f->slot].key;
        if (first && strcmp(first->value, key->value) == 0)
                return config_error(c, key, kpath, "duplicate key (first given at line %u)", first->line);
        if (first)
                return config_error(c, key, kpath, "duplicate key: '%s' at line %u is the same setting",
                                    first->value, first->line);
        seen[f->slot] = (struct config_seen){ .key = key, .value = ynode_is_null(value) ? NULL : value };
        if (ynode_is_null(value))
                return (f->flags & CONFIG_REQUIRED) ? config_error(c, value, kpath, "needs a value") : 0;
        return f->parse(c, f, value, kpath, obj);
}

int config_walk_mapping(struct config_ctx *c, const struct ynode *map, const char *path,
                        const struct config_field *fields, size_t n_fields, void *obj,
                        struct config_seen *seen, size_t n_seen) {
        _cleanup_free_ struct config_seen *own = NULL;
        size_t n_slots = 0;
        int r;

        for (size_t i = 0; i < n_fields; i++)
                n_slots = MAX(n_slots, (size_t) fields[i].slot + 1);
        if (!seen) {
                seen = own = calloc(n_slots, sizeof(*seen));
                if (!own)
                        return -ENOMEM;
        } else if (n_seen < n_slots)
                return -EINVAL;

        r = config_check_mapping(c, map, path);
        if (r <= 0)
                return r;
        for (size_t i = 0; map->type == YNODE_MAPPING && i + 1 < map->n_items; i += 2) {
                r = walk_pair(c, map->items[i], map->items[i + 1], path, fields, n_fields, obj, seen);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < n_fields; i++) {
                bool alias = false;

                for (size_t j = 0; j < i; j++)
                        alias = alias || fields[j].slot == fields[i].slot;
                if (alias || !(fields[i].flags & CONFIG_REQUIRED) || seen[fields[i].slot].key)
                        continue;
                r = config_error(c, map, path, "missing required key '%s'", fields[i].name);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* YAML 1.2 core-schema integers: 42, +42, 0x2a, 0o52. -EINVAL not an integer, -EDOM negative,
 * -ERANGE above UINT64_MAX. */
static int scalar_to_u64(const char *s, uint64_t *ret) {
        unsigned base = 10;
        bool negative = false, sign = false;
        uint64_t v = 0;

        if (*s == '+' || *s == '-') {
                negative = *s == '-';
                sign = true;
                s++;
        }
        if (!sign && s[0] == '0' && (s[1] == 'x' || s[1] == 'o')) {
                base = s[1] == 'x' ? 16 : 8;
                s += 2;
        }
        if (!*s)
                return -EINVAL;
        for (; *s; s++) {
                unsigned d;

                if (*s >= '0' && *s <= '9')
                        d = (unsigned) (*s - '0');
                else if (base == 16 && ascii_lower(*s) >= 'a' && ascii_lower(*s) <= 'f')
                        d = (unsigned) (ascii_lower(*s) - 'a' + 10);
                else
                        return -EINVAL;
                if (d >= base)
                        return -EINVAL;
                if (v > (UINT64_MAX - d) / base)
                        return -ERANGE;
                v = v * base + d;
        }
        if (negative && v > 0)
                return -EDOM;
        *ret = v;
        return 0;
}

static int check_uint(struct config_ctx *c, const struct config_field *f, const struct ynode *v,
                      const char *path, uint64_t *ret) {
        uint64_t x = 0;
        int r;

        if (v->type != YNODE_SCALAR)
                return CONFIG_REPORTED(
                        config_error(c, v, path, "expected an integer, got %s", config_node_kind(v)));
        if (!v->plain)
                return CONFIG_REPORTED(config_error(c, v, path, "expected an integer, got a quoted string"));
        r = scalar_to_u64(v->value, &x);
        if (r == -EDOM)
                return CONFIG_REPORTED(config_error(c, v, path, "must not be negative, got %.*s%s",
                                                    CONFIG_VALUE(v->value, v->len)));
        if (r == -EINVAL)
                return CONFIG_REPORTED(config_error(c, v, path, "expected an integer, got '%.*s%s'",
                                                    CONFIG_VALUE(v->value, v->len)));
        if (r == 0 && x == 0 && f->min > 0)
                return CONFIG_REPORTED(config_error(c, v, path, "must be greater than zero"));
        if (r < 0 || x < f->min || x > f->max)
                return CONFIG_REPORTED(config_error(c, v, path, "must be between %llu and %llu, got %.*s%s",
                                                    (unsigned long long) f->min, (unsigned long long) f->max,
                                                    CONFIG_VALUE(v->value, v->len)));
        *ret = x;
        return 1;
}

int config_parse_u64(struct config_ctx *c, const struct config_field *f, const struct ynode *v,
                     const char *path, void *obj) {
        uint64_t x;
        int r = check_uint(c, f, v, path, &x);

        if (r > 0)
                *(uint64_t *) ((char *) obj + f->offset) = x;
        return MIN(r, 0);
}

int config_parse_u32(struct config_ctx *c, const struct config_field *f, const struct ynode *v,
                     const char *path, void *obj) {
        uint64_t x;
        int r = check_uint(c, f, v, path, &x);

        if (r > 0)
                *(uint32_t *) ((char *) obj + f->offset) = (uint32_t) MIN(x, UINT32_MAX);
        return MIN(r, 0);
}

int config_parse_bool(struct config_ctx *c, const struct config_field *f, const struct ynode *v,
                      const char *path, void *obj) {
        static const char *const yes[] = { "true", "True", "TRUE" }, *const no[] = { "false", "False",
                                                                                     "FALSE" };
        bool *b = (bool *) ((char *) obj + f->offset);

        if (v->type != YNODE_SCALAR)
                return config_error(c, v, path, "expected true or false, got %s", config_node_kind(v));
        if (!v->plain)
                return config_error(c, v, path, "expected true or false, got a quoted string");
        for (size_t i = 0; i < ELEMENTSOF(yes); i++)
                if (strcmp(v->value, yes[i]) == 0 || strcmp(v->value, no[i]) == 0) {
                        *b = strcmp(v->value, yes[i]) == 0;
                        return 0;
                }
        return config_error(c, v, path, "expected true or false, got '%.*s%s'",
                            CONFIG_VALUE(v->value, v->len));
}

/* User and group names as useradd takes them, or a numeric id. */
static bool name_valid(const char *s) {
        if (!*s || *s == '-' || strlen(s) > 256)
                return false;
        for (; *s; s++)
                if (!ascii_alnum(*s) && !strchr("._-$", *s) && !((unsigned char) *s & 0x80))
                        return false;
        return true;
}

int config_parse_string(struct config_ctx *c, const struct config_field *f, const struct ynode *v,
                        const char *path, void *obj) {
        char **p = (char **) ((char *) obj + f->offset), *s;
        int r;

        r = config_check_string(c, v, path, false);
        if (r <= 0)
                return r;
        if ((f->flags & (CONFIG_NONEMPTY | CONFIG_ABSOLUTE | CONFIG_NAME)) && v->len == 0)
                return config_error(c, v, path, "must not be empty");
        if ((f->flags & CONFIG_ABSOLUTE) && v->value[0] != '/')
                return config_error(c, v, path, "must be an absolute path, got '%.*s%s'",
                                    CONFIG_VALUE(v->value, v->len));
        if ((f->flags & CONFIG_NAME) && !name_valid(v->value))
                return config_error(c, v, path, "'%.*s%s' is not a valid user or group name",
                                    CONFIG_VALUE(v->value, v->len));
        s = strdup(v->value);
        if (!s)
                return -ENOMEM;
        free(*p);
        *p = s;
        return 0;
}

int config_parse_enum(struct config_ctx *c, const struct config_field *f, const struct ynode *v,
                      const char *path, void *obj) {
        _cleanup_free_ char *list = NULL;
        size_t n = 0;
        FILE *m;
        int r;

        r = config_check_string(c, v, path, false);
        if (r <= 0)
                return r;
        for (size_t i = 0; i < f->n_names; i++)
                if (strcmp(v->value, f->names[i]) == 0) {
                        *(int *) ((char *) obj + f->offset) = (int) i;
                        return 0;
                }

        m = open_memstream(&list, &n);
        if (!m)
                return -ENOMEM;
        for (size_t i = 0; i < f->n_names; i++)
                fprintf(m, "%s%s", i == 0 ? "" : i + 1 == f->n_names ? " or " : ", ", f->names[i]);
        if (fclose(m) != 0)
                return -ENOMEM;
        return config_error(c, v, path, "'%.*s%s' is not %s", CONFIG_VALUE(v->value, v->len), list);
}
