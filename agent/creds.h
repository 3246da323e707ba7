/* AWS credentials and region for the KMS round and the S3 sources: from the environment when
 * AWS_ACCESS_KEY_ID is set (AWS's standard environment provider), else from the instance role through
 * IMDSv2, re-read at every sync and fetched again when they are close to their Expiration. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "common/cleanup.h"
#include "common/secret.h"

typedef char *(*agent_getenv_fn)(const char *name);

struct agent_creds {
        char *region;
        char *access_key_id;                  /* not secret, never logged in full */
        struct secret_buf *secret_access_key; /* secret */
        struct secret_buf *session_token;     /* secret; NULL for long-term credentials */
        int64_t expiration;                   /* UNIX seconds; 0: unknown (environment) */
        bool from_imds;
        /* IMDS only, and only what was asked for (agent_creds_acquire()'s want_arn) */
        char *partition; /* "aws", "aws-cn" ... */
        char *domain;    /* DNS suffix; NULL when IMDS has none */
        char *role;      /* the instance role's name */
        char *role_arn;  /* want_arn: its ARN (the InstanceRoleArn tag, else derived from iam/info) */
        bool role_arn_maybe_wrong; /* derived, and the instance profile has a path: warn */
};

/* Credentials close to their end are fetched again: IMDS rotates them at least 5 minutes before. */
#define AGENT_CREDS_REFRESH_MARGIN_SECS 300

struct agent_creds_opts {
        agent_getenv_fn getenv_fn; /* NULL: secure_getenv */
        const char *region;        /* options.region; NULL: the environment's, else IMDS's */
        const char *imds_endpoint; /* NULL: AWS_IMDS_DEFAULT_ENDPOINT */
        int imds_timeout_ms;       /* 0: AWS_IMDS_DEFAULT_TIMEOUT_MS */
        bool want_arn;             /* also the role ARN and partition (Acm sources) */
        /* agent_creds_cache_get() only: fetch the ARN too when it can (an Acm source comes later in the
         * pass), falling back to credentials without it; agent_creds_acquire() ignores it */
        bool prefer_arn;
        int64_t now; /* UNIX seconds; 0: time(NULL) */
};

/* AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN (optional); the region from cfg_region
 * (options.region), else AWS_REGION, else AWS_DEFAULT_REGION. getenv_fn NULL: secure_getenv. The secret
 * values go straight into secret_bufs. 0, or -ENOKEY (a variable is missing) / -EINVAL (a value out of
 * KMS's bounds) with *ret_error naming the variable (never its value), or -ENOMEM. */
_must_check_ int agent_creds_load(agent_getenv_fn getenv_fn, const char *cfg_region, struct agent_creds *ret,
                                  char **ret_error);
/* The environment when AWS_ACCESS_KEY_ID is set, else the instance role from IMDS (one round: token,
 * placement, role, credentials, and with want_arn the role ARN). Credentials from IMDS that expire
 * within AGENT_CREDS_REFRESH_MARGIN_SECS are fetched once more; if they still do, -EKEYEXPIRED. Errors
 * as agent_creds_load(), plus IMDS's (-EHOSTUNREACH: not on EC2; -ENOENT: no instance role ...), with
 * *ret_error one line naming what and the fix. */
_must_check_ int agent_creds_acquire(const struct agent_creds_opts *o, struct agent_creds *ret,
                                     char **ret_error);
/* Wipes and frees; the struct is zeroed. Usable as _cleanup_(agent_creds_done). */
void agent_creds_done(struct agent_creds *c);

/* The credentials of one sync pass, shared by every Acm/S3 source and the KMS round of that pass, so
 * IMDS is asked once per pass, not once per token. A pass starts with an empty cache (credentials are
 * re-read every pass); within it, credentials are fetched again only when they come within
 * AGENT_CREDS_REFRESH_MARGIN_SECS of their Expiration or when more is wanted (the role ARN, for an Acm
 * source, after credentials fetched without it; prefer_arn fetches it ahead). A failure is kept for the
 * rest of the pass too: an agent off EC2 waits for IMDS's timeout once per pass, not once per token. The
 * secrets stay in their locked buffers until agent_creds_cache_done() at the pass's end. */
typedef int (*agent_creds_acquire_fn)(const struct agent_creds_opts *o, struct agent_creds *ret,
                                      char **ret_error);

struct agent_creds_cache {
        agent_creds_acquire_fn acquire; /* NULL: agent_creds_acquire (tests: a stand-in); kept by done */
        struct agent_creds creds;
        bool valid;   /* creds holds a result */
        bool has_arn; /* ... fetched with want_arn */
        /* < 0: the pass's acquisition failed with it (and its message): error without the ARN (then
         * with it too), error_arn with the ARN (credentials without it may still be had: the environment's)
         */
        int error, error_arn;
        char *error_msg, *error_arn_msg;
        unsigned acquisitions; /* agent_creds_acquire() calls made (tests) */
};

/* The pass's credentials for o (o->now, o->want_arn and o->prefer_arn are honoured; o's other fields must
 * be the same for the whole pass): borrowed in *ret until agent_creds_cache_done(). Errors as
 * agent_creds_acquire(), *ret_error a copy of the message. */
_must_check_ int agent_creds_cache_get(struct agent_creds_cache *cache, const struct agent_creds_opts *o,
                                       const struct agent_creds **ret, char **ret_error);
/* Wipes the credentials; the cache is empty again (the next pass). */
void agent_creds_cache_done(struct agent_creds_cache *cache);
