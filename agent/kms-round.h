/* One KMS round per sync pass: when a token needs its encrypted key sent (add, replace, refresh,
 * re-provision after an enclave restart), the agent opens ONE control connection, checks the enclave's
 * attestation document, hands it the credentials (KMS_BEGIN), sends every due token's TOKEN_ADD /
 * TOKEN_REFRESH on it, and ends the round (KMS_END). The round is opened lazily by the first token that
 * needs it, so a pass with nothing encrypted to send opens nothing. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "agent/config/config.h"
#include "agent/creds.h"
#include "agent/launcher/launcher.h"
#include "common/rpc-client.h"

enum agent_kms_retry {
        AGENT_KMS_RETRY_BACKOFF,   /* transient (KMS unavailable, connection, credentials): back-off */
        AGENT_KMS_RETRY_NEXT_SYNC, /* retrying at once will not help: at the next sync */
        _AGENT_KMS_RETRY_MAX,
        _AGENT_KMS_RETRY_INVALID = -EINVAL,
};

struct agent_round {
        const struct agent_config *cfg;
        struct launcher *launcher;
        struct rpc_client *client; /* the round's connection, NULL until opened */
        bool begun;                /* KMS_BEGIN succeeded */
        int error;                 /* opening failed (sticky for the pass): the errno */
        enum agent_kms_retry retry;
        char *error_msg; /* what failed, one line (logged once by the round) */
        unsigned sent;   /* TOKEN_ADD / TOKEN_REFRESH calls made in it */
        /* the pass's AWS credentials, for its Acm/S3 sources and the round: IMDS once per pass */
        struct agent_creds_cache creds;
};

void agent_round_init(struct agent_round *rd, const struct agent_config *cfg, struct launcher *l);
/* After a call of the round found KMS unreachable or throttling: the pass's other tokens get the same
 * error at once instead of each waiting for the enclave's KMS timeout. */
void agent_round_stop(struct agent_round *rd, int r);
/* The round's client, opening the round on first use (credentials, HELLO version, ATTEST and its
 * check, KMS_BEGIN). Logs an opening failure once; later calls in the same pass return the same error
 * and message (*ret_error, borrowed, may be NULL). */
_must_check_ int agent_round_client(struct agent_round *rd, struct rpc_client **ret, const char **ret_error);
/* KMS_END and close (also when the round broke). The struct can be used for the next pass after
 * agent_round_init(). */
void agent_round_end(struct agent_round *rd);

/* What an enclave status (as errno, from a TOKEN_ADD / TOKEN_REFRESH in a round) means, for the log
 * line naming the token; NULL for an errno that is not one of the KMS path's statuses. Pure. */
const char *agent_kms_status_text(int r);
/* When to retry after r (broken: the connection died). Pure. */
enum agent_kms_retry agent_kms_retry_kind(int r, bool broken);
