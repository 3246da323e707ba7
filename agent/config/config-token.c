/* acm.yaml tokens[]: label, pin, source (Acm, S3, File), target (Conf / NginxStanza), refresh interval. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "agent/config/config-internal.h"
#include "common/secret.h"

enum {
        TOKEN_LABEL,
        TOKEN_PIN,
        TOKEN_SOURCE,
        TOKEN_TARGET,
        TOKEN_REFRESH,
        TOKEN_TTL,
        _TOKEN_SLOT_MAX,
};

void config_token_done(struct agent_config_token *t) {
        if (!t)
                return;
        free(t->label);
        t->pin = secret_buf_free(t->pin);
        free(t->source.certificate_arn);
        free(t->source.bucket);
        free(t->source.uri);
        free(t->source.key);
        free(t->source.encrypted_key);
        free(t->source.certificate);
        free(t->target.path);
        free(t->target.user);
        free(t->target.group);
        *t = (struct agent_config_token){};
}

/* The value of the first key of a mapping, or NULL. */
static const struct ynode *ynode_get(const struct ynode *map, const char *key) {
        for (size_t i = 0; map && map->type == YNODE_MAPPING && i + 1 < map->n_items; i += 2)
                if (strcmp(map->items[i]->value, key) == 0)
                        return map->items[i + 1];
        return NULL;
}

/* Only a-z, 0-9 and the characters of extra (ASCII, whatever the locale). */
static bool all_chars(const char *s, size_t n, const char *extra) {
        for (size_t i = 0; i < n; i++)
                if (!(s[i] >= 'a' && s[i] <= 'z') && !(s[i] >= '0' && s[i] <= '9') &&
                    !(s[i] && strchr(extra, s[i])))
                        return false;
        return true;
}

/* arn:<partition>:acm:<region>:<12-digit account>:certificate/<id> */
static bool acm_arn_valid(const char *s) {
        const char *f[6], *p = s;
        size_t len[6];

        for (size_t i = 0; i < 6; i++) {
                const char *end = i < 5 ? strchr(p, ':') : p + strlen(p);

                if (!end)
                        return false;
                f[i] = p;
                len[i] = (size_t) (end - p);
                p = *end ? end + 1 : end;
        }
        return len[0] == 3 && strncmp(f[0], "arn", 3) == 0 && len[1] > 0 && all_chars(f[1], len[1], "-") &&
               len[2] == 3 && strncmp(f[2], "acm", 3) == 0 && len[3] > 0 && all_chars(f[3], len[3], "-") &&
               len[4] == 12 && strspn(f[4], "0123456789") >= 12 && len[5] > strlen("certificate/") &&
               strncmp(f[5], "certificate/", 12) == 0 &&
               strspn(f[5] + 12, "0123456789abcdefABCDEF-") == len[5] - 12;
}

static int set_string(char **p, const struct ynode *v) {
        char *s = strdup(v->value);

        if (!s)
                return -ENOMEM;
        free(*p);
        *p = s;
        return 0;
}

static int parse_arn(struct config_ctx *c, const struct config_field *f, const struct ynode *v,
                     const char *path, void *obj) {
        struct agent_config_source *src = obj;
        int r;

        r = config_check_string(c, v, path, false);
        if (r <= 0)
                return r;
        if (v->len == 0) {
                /* ACM's own examples ship "" for the user to fill in: valid YAML, not provisionable. */
                r = config_warning(c, v, path,
                                   "empty: this token cannot be provisioned until the ARN of an "
                                   "ACM certificate is filled in");
                if (r < 0)
                        return r;
        } else if (!acm_arn_valid(v->value))
                return config_error(c, v, path,
                                    "'%.*s%s' is not an ACM certificate ARN "
                                    "(arn:<partition>:acm:<region>:<account>:certificate/<id>)",
                                    CONFIG_VALUE(v->value, v->len));
        return set_string(&src->certificate_arn, v);
}

/* The suffix of ACM's bucket name, <partition>-ec2-enclave-certificate-<region>-<bucket>. */
static int parse_bucket(struct config_ctx *c, const struct config_field *f, const struct ynode *v,
                        const char *path, void *obj) {
        struct agent_config_source *src = obj;
        int r;

        r = config_check_string(c, v, path, false);
        if (r <= 0)
                return r;
        if (v->len == 0 || v->len > 63 || !all_chars(v->value, v->len, ".-"))
                return config_error(c, v, path,
                                    "'%.*s%s' is not a bucket name suffix (1 to 63 of a-z 0-9 . -)",
                                    CONFIG_VALUE(v->value, v->len));
        return set_string(&src->bucket, v);
}

/* s3://<bucket>/<key>, bucket 3..63 of a-z 0-9 . -, key not empty. */
static int parse_s3_uri(struct config_ctx *c, const struct config_field *f, const struct ynode *v,
                        const char *path, void *obj) {
        struct agent_config_source *src = obj;
        const char *bucket, *slash;
        int r;

        r = config_check_string(c, v, path, false);
        if (r <= 0)
                return r;
        bucket = strncmp(v->value, "s3://", 5) == 0 ? v->value + 5 : NULL;
        slash = bucket ? strchr(bucket, '/') : NULL;
        if (!slash || slash - bucket < 3 || slash - bucket > 63 ||
            !all_chars(bucket, (size_t) (slash - bucket), ".-") || slash[1] == '\0')
                return config_error(c, v, path, "'%.*s%s' is not an S3 URI (s3://<bucket>/<key>)",
                                    CONFIG_VALUE(v->value, v->len));
        return set_string(&src->uri, v);
}

static const struct config_field acm_fields[] = {
        { "certificate_arn", 0, parse_arn, .flags = CONFIG_REQUIRED },
        { "bucket", 1, parse_bucket },
};
static const struct config_field s3_fields[] = {
        { "uri", 0, parse_s3_uri, .flags = CONFIG_REQUIRED },
};
enum { FILE_KEY, FILE_CERTIFICATE, FILE_ENCRYPTED_KEY, _FILE_SLOT_MAX };
static const struct config_field file_fields[] = {
        { "key", FILE_KEY, config_parse_string, offsetof(struct agent_config_source, key),
          .flags = CONFIG_ABSOLUTE },
        { "certificate", FILE_CERTIFICATE, config_parse_string,
          offsetof(struct agent_config_source, certificate), .flags = CONFIG_REQUIRED | CONFIG_ABSOLUTE },
        { "encrypted_key", FILE_ENCRYPTED_KEY, config_parse_string,
          offsetof(struct agent_config_source, encrypted_key), .flags = CONFIG_ABSOLUTE },
};
static const struct config_field target_fields[] = {
        { "path", 0, config_parse_string, offsetof(struct agent_config_target, path),
          .flags = CONFIG_REQUIRED | CONFIG_ABSOLUTE },
        { "user", 1, config_parse_string, offsetof(struct agent_config_target, user), .flags = CONFIG_NAME },
        { "group", 2, config_parse_string, offsetof(struct agent_config_target, group),
          .flags = CONFIG_NAME },
};

struct variant {
        const char *name;
        int kind;
        const struct config_field *fields;
        size_t n_fields;
};

static const struct variant source_variants[] = {
        { "Acm", AGENT_SOURCE_ACM, acm_fields, ELEMENTSOF(acm_fields) },
        { "S3", AGENT_SOURCE_S3, s3_fields, ELEMENTSOF(s3_fields) },
        { "File", AGENT_SOURCE_FILE, file_fields, ELEMENTSOF(file_fields) },
};
static const struct variant target_variants[] = {
        { "Conf", AGENT_TARGET_CONF, target_fields, ELEMENTSOF(target_fields) },
        { "NginxStanza", AGENT_TARGET_NGINX_STANZA, target_fields, ELEMENTSOF(target_fields) },
};

/* An externally tagged enum, as serde spells it: a mapping with exactly one key naming the variant.
 * Returns the variant (and its key) in *ret, or NULL after reporting. */
static int pick_variant(struct config_ctx *c, const struct ynode *v, const char *path, const char *what,
                        const char *expected, const struct variant *variants, size_t n,
                        const struct variant **ret, const struct ynode **ret_key) {
        const struct variant *found = NULL;
        int r;

        *ret = NULL;
        r = config_check_mapping(c, v, path);
        if (r <= 0)
                return r;
        if (v->n_items == 0)
                return config_error(c, v, path, "no %s given: expected one of %s", what, expected);
        for (size_t i = 0; i + 1 < v->n_items; i += 2) {
                const struct ynode *key = v->items[i];
                _cleanup_free_ char *kpath = config_path_join(path, key->value);

                if (!kpath)
                        return -ENOMEM;
                if (i > 0 && strcmp(key->value, v->items[0]->value) == 0)
                        r = config_error(c, key, kpath, "duplicate key (first given at line %u)",
                                         v->items[0]->line);
                else if (i > 0)
                        r = config_error(c, key, kpath, "a token has exactly one %s, but '%s' is given too",
                                         what, v->items[0]->value);
                else {
                        for (size_t j = 0; j < n && !found; j++)
                                if (strcmp(key->value, variants[j].name) == 0)
                                        found = &variants[j];
                        if (found)
                                continue;
                        if (strcmp(key->value, "FileDb") == 0)
                                r = config_error(c, key, kpath,
                                                 "ACM's FileDb source is not supported, "
                                                 "use File: {key, certificate}");
                        else
                                r = config_error(c, key, kpath, "unknown %s (expected %s)", what, expected);
                }
                if (r < 0)
                        return r;
        }
        *ret = found;
        *ret_key = found ? v->items[0] : NULL;
        return 0;
}

/* A one-key mapping naming a variant (source: {File: {...}}): picks it and walks its fields into obj.
 * *ret_var is NULL (and 0 returned) when nothing was picked; the error is already reported. */
static int walk_variant(struct config_ctx *c, const struct ynode *v, const char *path, const char *what,
                        const char *expected, const struct variant *variants, size_t n, void *obj,
                        struct config_seen *seen, size_t n_seen, const struct variant **ret_var,
                        const struct ynode **ret_key, char **ret_kpath) {
        _cleanup_free_ char *kpath = NULL;
        const struct variant *var;
        const struct ynode *key;
        int r;

        r = pick_variant(c, v, path, what, expected, variants, n, &var, &key);
        if (r < 0 || !var) {
                *ret_var = NULL;
                return r;
        }
        kpath = config_path_join(path, var->name);
        if (!kpath)
                return -ENOMEM;
        r = config_walk_mapping(c, v->items[1], kpath, var->fields, var->n_fields, obj,
                                n_seen >= var->n_fields ? seen : NULL, n_seen >= var->n_fields ? n_seen : 0);
        if (r < 0)
                return r;
        *ret_var = var;
        *ret_key = key;
        *ret_kpath = TAKE_PTR(kpath);
        return 0;
}

/* File: exactly one of key (plaintext: the local launcher's --dev enclave-token only) and encrypted_key (a
 * KMS ciphertext the enclave decrypts itself: needs an attested enclave). */
static int check_file_source(struct config_ctx *c, struct agent_config_token *t, const struct ynode *map,
                             const char *kpath, const struct ynode *key, const struct config_seen *seen) {
        const struct agent_config_enclave *e = &c->cfg->enclave;
        _cleanup_free_ char *epath = config_path_join(kpath, "encrypted_key");

        if (!epath)
                return -ENOMEM;
        if (seen[FILE_KEY].key && seen[FILE_ENCRYPTED_KEY].key)
                return config_error(c, seen[FILE_ENCRYPTED_KEY].key, epath,
                                    "give either key (a plaintext PEM key) or encrypted_key (a KMS "
                                    "ciphertext), not both");
        if (!seen[FILE_KEY].key && !seen[FILE_ENCRYPTED_KEY].key)
                return config_error(c, map, kpath, "missing required key 'key' or 'encrypted_key'");
        if (t->source.key && e->launcher != AGENT_LAUNCHER_LOCAL)
                return config_error(c, key, kpath,
                                    "a File source with 'key' holds a plaintext private key and is only "
                                    "allowed with enclave.launcher: local (use encrypted_key)");
        if (t->source.encrypted_key && e->launcher == AGENT_LAUNCHER_LOCAL && !e->nsm_simulator)
                return config_error(c, seen[FILE_ENCRYPTED_KEY].key, epath,
                                    "a KMS ciphertext needs an attested enclave: with enclave.launcher: "
                                    "local set enclave.nsm_simulator: true (development and tests only)");
        return 0;
}

static int parse_source(struct config_ctx *c, const struct config_field *f, const struct ynode *v,
                        const char *path, void *obj) {
        struct agent_config_token *t = obj;
        _cleanup_free_ char *kpath = NULL;
        const struct variant *var;
        const struct ynode *key;
        int r;

        struct config_seen seen[_FILE_SLOT_MAX] = {};

        r = walk_variant(c, v, path, "source", "Acm, S3 or File", source_variants,
                         ELEMENTSOF(source_variants), &t->source, seen, ELEMENTSOF(seen), &var, &key,
                         &kpath);
        if (r < 0 || !var)
                return r;
        t->source.kind = var->kind;
        if (var->kind == AGENT_SOURCE_ACM && !t->source.bucket) {
                t->source.bucket = strdup(AGENT_CONFIG_DEFAULT_ACM_BUCKET);
                if (!t->source.bucket)
                        return -ENOMEM;
        }
        if (var->kind == AGENT_SOURCE_FILE)
                return check_file_source(c, t, v->items[1], kpath, key, seen);
        return 0;
}

static int parse_target(struct config_ctx *c, const struct config_field *f, const struct ynode *v,
                        const char *path, void *obj) {
        struct agent_config_token *t = obj;
        _cleanup_free_ char *kpath = NULL;
        const struct variant *var;
        const struct ynode *key;
        int r;

        r = walk_variant(c, v, path, "target", "Conf or NginxStanza", target_variants,
                         ELEMENTSOF(target_variants), &t->target, NULL, 0, &var, &key, &kpath);
        if (r < 0 || !var)
                return r;
        t->target.present = true;
        t->target.kind = var->kind;
        return 0;
}

static int parse_label(struct config_ctx *c, const struct config_field *f, const struct ynode *v,
                       const char *path, void *obj) {
        struct agent_config_token *t = obj;
        int r;

        r = config_check_string(c, v, path, false);
        if (r <= 0)
                return r;
        if (v->len < AGENT_CONFIG_LABEL_MIN || v->len > AGENT_CONFIG_LABEL_MAX)
                return config_error(c, v, path, "must be %d to %d bytes long, got %zu",
                                    AGENT_CONFIG_LABEL_MIN, AGENT_CONFIG_LABEL_MAX, v->len);
        return set_string(&t->label, v);
}

/* Never put the value in a message: only the key path and the length. */
static int parse_pin(struct config_ctx *c, const struct config_field *f, const struct ynode *v,
                     const char *path, void *obj) {
        struct agent_config_token *t = obj;
        int r;

        r = config_check_string(c, v, path, true);
        if (r <= 0)
                return r;
        if (v->len < AGENT_CONFIG_PIN_MIN || v->len > AGENT_CONFIG_PIN_MAX)
                return config_error(c, v, path, "must be %d to %d bytes long, got %zu", AGENT_CONFIG_PIN_MIN,
                                    AGENT_CONFIG_PIN_MAX, v->len);
        t->pin = secret_buf_free(t->pin);
        return secret_buf_dup(v->value, v->len, &t->pin);
}

static const struct config_field token_fields[] = {
        { "label", TOKEN_LABEL, parse_label, .flags = CONFIG_REQUIRED },
        { "pin", TOKEN_PIN, parse_pin, .flags = CONFIG_SECRET },
        { "source", TOKEN_SOURCE, parse_source, .flags = CONFIG_REQUIRED },
        { "target", TOKEN_TARGET, parse_target },
        { "refresh_interval_secs", TOKEN_REFRESH, config_parse_u64,
          offsetof(struct agent_config_token, refresh_interval_secs), 1, UINT32_MAX },
        { "ttl_secs", TOKEN_TTL, config_parse_u64, offsetof(struct agent_config_token, ttl_secs), 1,
          AGENT_CONFIG_TTL_MAX },
};

/* ttl_secs against the refresh interval: a token must be refreshed before it expires. */
static int check_ttl(struct config_ctx *c, const struct agent_config_token *t, const char *ipath,
                     const struct config_seen *seen) {
        _cleanup_free_ char *kpath = config_path_join(ipath, "ttl_secs");

        if (!kpath)
                return -ENOMEM;
        if (seen[TOKEN_TTL].value && t->source.kind == AGENT_SOURCE_FILE && !t->source.encrypted_key &&
            t->source.key)
                return config_warning(c, seen[TOKEN_TTL].key, kpath,
                                      "only used with an encrypted key (a plaintext key never expires), "
                                      "ignoring");
        if (seen[TOKEN_TTL].value && t->ttl_secs > 0 && t->ttl_secs <= t->refresh_interval_secs)
                return config_error(c, seen[TOKEN_TTL].value, kpath,
                                    "must be greater than refresh_interval_secs (%llu), or the token "
                                    "expires before it is refreshed",
                                    (unsigned long long) t->refresh_interval_secs);
        if (!seen[TOKEN_TTL].value && agent_config_token_encrypted(t) &&
            t->refresh_interval_secs >= AGENT_CONFIG_DEFAULT_TTL) {
                _cleanup_free_ char *rpath = config_path_join(ipath, "refresh_interval_secs");

                if (!rpath)
                        return -ENOMEM;
                return config_error(c, seen[TOKEN_REFRESH].value, rpath,
                                    "refresh_interval_secs (%llu) is not below the enclave's default TTL "
                                    "of %u s: set ttl_secs above it, or the token expires before it is "
                                    "refreshed",
                                    (unsigned long long) t->refresh_interval_secs, AGENT_CONFIG_DEFAULT_TTL);
        }
        return 0;
}

static int check_duplicates(struct config_ctx *c, const struct ynode *list, const char *path) {
        struct agent_config *cfg = c->cfg;
        int r;

        for (size_t i = 1; i < cfg->n_tokens; i++) {
                const struct agent_config_token *t = &cfg->tokens[i];

                for (size_t j = 0; j < i; j++) {
                        const struct agent_config_token *u = &cfg->tokens[j];
                        _cleanup_free_ char *ipath = config_path_index(path, i);

                        if (!ipath)
                                return -ENOMEM;
                        if (t->label && u->label && strcmp(t->label, u->label) == 0) {
                                _cleanup_free_ char *kpath = config_path_join(ipath, "label");

                                if (!kpath)
                                        return -ENOMEM;
                                r = config_error(c, ynode_get(list->items[i], "label"), kpath,
                                                 "label '%s' is already used by %s[%zu] (line %u)", t->label,
                                                 path, j, u->line);
                                if (r < 0)
                                        return r;
                        }
                        if (t->target.path && u->target.path &&
                            strcmp(t->target.path, u->target.path) == 0) {
                                _cleanup_free_ char *kpath = config_path_join(ipath, "target");

                                if (!kpath)
                                        return -ENOMEM;
                                r = config_error(c, ynode_get(list->items[i], "target"), kpath,
                                                 "'%.*s%s' is already the target of %s[%zu] (line %u)",
                                                 CONFIG_VALUE(t->target.path, strlen(t->target.path)), path,
                                                 j, u->line);
                                if (r < 0)
                                        return r;
                        }
                }
        }
        return 0;
}

int config_parse_tokens(struct config_ctx *c, const struct ynode *v, const char *path) {
        struct agent_config *cfg = c->cfg;
        int r;

        if (v->type != YNODE_SEQUENCE)
                return CONFIG_REPORTED(
                        config_error(c, v, path, "expected a list of tokens, got %s", config_node_kind(v)));
        if (v->n_items > AGENT_CONFIG_MAX_TOKENS)
                return CONFIG_REPORTED(config_error(c, v, path, "%zu tokens, at most %d are supported",
                                                    v->n_items, AGENT_CONFIG_MAX_TOKENS));
        if (v->n_items == 0)
                return CONFIG_REPORTED(
                        config_warning(c, v, path, "no tokens: the agent has nothing to provision"));

        cfg->tokens = calloc(v->n_items, sizeof(*cfg->tokens));
        if (!cfg->tokens)
                return -ENOMEM;
        cfg->n_tokens = v->n_items;
        for (size_t i = 0; i < v->n_items; i++) {
                struct agent_config_token *t = &cfg->tokens[i];
                _cleanup_free_ char *ipath = config_path_index(path, i);

                if (!ipath)
                        return -ENOMEM;
                t->source.kind = _AGENT_SOURCE_INVALID;
                t->target.kind = _AGENT_TARGET_INVALID;
                t->refresh_interval_secs = AGENT_CONFIG_DEFAULT_REFRESH_INTERVAL_SECS;
                t->line = v->items[i]->line;
                t->column = v->items[i]->column;
                struct config_seen seen[_TOKEN_SLOT_MAX] = {};

                r = config_walk_mapping(c, v->items[i], ipath, token_fields, ELEMENTSOF(token_fields), t,
                                        seen, ELEMENTSOF(seen));
                if (r < 0)
                        return r;
                r = check_ttl(c, t, ipath, seen);
                if (r < 0)
                        return r;
        }
        return check_duplicates(c, v, path);
}
