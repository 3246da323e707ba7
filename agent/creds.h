/* AWS credentials and region for the KMS round. Until the IMDS client lands (issue 14) they come from the
 * environment, as AWS's standard environment provider reads them. */
#pragma once

#include <stdbool.h>

#include "common/cleanup.h"
#include "common/secret.h"

struct agent_creds {
        char *region;
        char *access_key_id;                  /* not secret, never logged in full */
        struct secret_buf *secret_access_key; /* secret */
        struct secret_buf *session_token;     /* secret; NULL for long-term credentials */
};

typedef char *(*agent_getenv_fn)(const char *name);

/* AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN (optional); the region from cfg_region
 * (options.region), else AWS_REGION, else AWS_DEFAULT_REGION. getenv_fn NULL: secure_getenv. The secret
 * values go straight into secret_bufs. 0, or -ENOKEY (a variable is missing) / -EINVAL (a value out of
 * KMS's bounds) with *ret_error naming the variable (never its value), or -ENOMEM. */
_must_check_ int agent_creds_load(agent_getenv_fn getenv_fn, const char *cfg_region, struct agent_creds *ret,
                                  char **ret_error);
/* Wipes and frees; the struct is zeroed. Usable as _cleanup_(agent_creds_done). */
void agent_creds_done(struct agent_creds *c);
