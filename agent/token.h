/* One token's life in the agent: its PIN, the key material from its source, the key id its web-server
 * target uses, provisioning over the control channel and key rotation without failed handshakes. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "agent/config/config.h"
#include "agent/kms-round.h"
#include "agent/launcher/launcher.h"
#include "agent/source-s3.h"
#include "common/rpc-client.h"
#include "common/secret.h"

enum agent_token_state {
        AGENT_TOKEN_PENDING,     /* not provisioned in the running enclave yet */
        AGENT_TOKEN_READY,       /* provisioned, target applied */
        AGENT_TOKEN_UNSUPPORTED, /* Acm/S3 source: fetching comes with a later version */
        AGENT_TOKEN_FAILED,      /* the last attempt failed; retried at retry_at */
        _AGENT_TOKEN_STATE_MAX,
        _AGENT_TOKEN_STATE_INVALID = -EINVAL,
};

/* The key material of one key id. The private key is not kept: it is read from the source when it is
 * sent and wiped right after (the digest tells a change). */
struct agent_material {
        char *chain;
        size_t chain_len;
        uint8_t digest[32]; /* SHA-256 over the key and the chain: a change means rotation */
        uint32_t key_id;
        uint64_t not_after; /* the leaf certificate's, Unix seconds (0: unknown) */
};

struct agent_token {
        const struct agent_config_token *cfg; /* borrowed from the current config */
        char *label;
        struct secret_buf *pin;
        char *pin_file;
        enum agent_token_state state;
        bool settled;              /* succeeded once, or failed for a reason that retrying will not fix */
        unsigned provisioned_in;   /* the launcher's launch number it was provisioned in (0: never) */
        bool target_done;          /* target applied for cur */
        bool cur_known;            /* cur.digest is valid (cur was provisioned by this process) */
        struct agent_material cur; /* what the target points at */
        /* What the current version in the enclave holds (valid when provisioned_in is the current
         * launch): after a rotation whose target failed, the new key while cur is still the old one.
         * A retry then applies the target only, it does not send the replace again. */
        uint32_t sent_key_id;
        uint8_t sent_digest[32];
        /* The enclave holds replaced versions of this token (the TOKEN_ADD answer said so): TOKEN_RELEASE
         * is due once the target is applied with a reload, never before (the server may still use one). */
        bool release_due;
        uint64_t next_sync_usec;
        uint64_t next_refresh_usec;
        uint64_t retry_at_usec;
        unsigned failures;
        /* Failed attempts of an encrypted key in a row that were retried with back-off (KMS or the
         * enclave unreachable, ...): at enclave.attestation_retry_count the next try waits for the
         * next sync. */
        unsigned backoff_failures;
        char *error;              /* the last failure, for STATUS= */
        struct agent_s3_cache s3; /* Acm and S3 sources: the last object and its ETag */
        /* For the state file (`enclave-acm status`): wall-clock Unix seconds, 0 never. */
        uint64_t provisioned_at; /* last TOKEN_ADD that the enclave accepted */
        uint64_t synced_at;      /* last time the source was read and the token found up to date */
        uint64_t refreshed_at;   /* last refresh (re-attestation; a provisioning counts as one) */
        uint64_t failed_at;      /* when error was set */
        uint64_t expires; /* encrypted keys: when the enclave drops the token unless refreshed (0: never) */
        bool retry_next_sync; /* the last failure is retried at the next sync, not with back-off */
};

/* PIN from the yaml, else the persisted one (generated on first use); the last key id. Logs what it
 * notices but not its failure: returns it, with *ret_error (NULL on entry) saying what failed when
 * errno alone does not (left NULL for -ENOMEM). */
_must_check_ int agent_token_new(const struct agent_config *cfg, const struct agent_config_token *t,
                                 struct agent_token **ret, char **ret_error);
struct agent_token *agent_token_free(struct agent_token *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct agent_token *, agent_token_free);

/* Whatever the token needs now: first provisioning, re-provisioning after an enclave restart, a
 * sync (source re-read, rotation when it changed: the chain file written and the target checked for
 * being writable, then one TOKEN_ADD replace that holds the replaced version, then the target, then
 * TOKEN_RELEASE; a failed target is retried without another replace, and the hold stays). *client is opened
 * on demand and freed when it broke. Logs. Returns 0 or a negative errno (then retried with back-off: see
 * retry_at_usec). */
int agent_token_step(struct agent_token *t, const struct agent_config *cfg, struct launcher *l,
                     struct rpc_client **client, uint64_t now);
/* The same, for a token whose key is a KMS ciphertext: what must reach the enclave goes through the
 * pass's KMS round (opened on first use), a refresh included: every refresh_interval_secs the ciphertext
 * is read again and sent with TOKEN_REFRESH (a TOKEN_ADD replace when it changed). A round error (no
 * credentials, an attestation mismatch) fails the token with the round's message; KMS_UNAVAILABLE and
 * lost connections back off, other KMS errors wait for the next sync. round may be NULL for plaintext
 * tokens. */
int agent_token_step_round(struct agent_token *t, const struct agent_config *cfg, struct launcher *l,
                           struct rpc_client **client, struct agent_round *round, uint64_t now);

/* What a token needs at now, without reading its source. Pure. */
enum agent_token_due {
        AGENT_TOKEN_DUE_NOTHING,
        AGENT_TOKEN_DUE_SYNC,    /* read the source; send it when the enclave holds something else */
        AGENT_TOKEN_DUE_REFRESH, /* an encrypted key's TOKEN_REFRESH (a plaintext key's refresh is a no-op)
                                  */
        _AGENT_TOKEN_DUE_MAX,
        _AGENT_TOKEN_DUE_INVALID = -EINVAL,
};
enum agent_token_due agent_token_due(const struct agent_token *t, unsigned launches, uint64_t now);
/* After a sync read the source into digest (for key_id): must it be sent (TOKEN_ADD)? A fresh enclave
 * (fresh) always needs it. Pure. */
bool agent_token_needs_send(const struct agent_token *t, bool fresh, uint32_t key_id,
                            const uint8_t digest[32]);

/* When agent_token_step() wants to run next (UINT64_MAX: never). */
uint64_t agent_token_next_usec(const struct agent_token *t, const struct launcher *l);

/* TOKEN_REMOVE (used when a reload drops the token). Logs. */
int agent_token_remove(struct agent_token *t, struct launcher *l, struct rpc_client **client);

/* The key id a rotation moves to: the next one, 1 after 65535 (each key id has its own chain file; a
 * reloading libp11 must never meet an id it cached for another key). Pure. */
uint32_t agent_rotation_next_id(uint32_t cur);

const char *agent_token_state_to_string(enum agent_token_state s);

/* Exponential back-off: 1 s, 2 s, 4 s, … capped at max_usec. Pure. */
uint64_t agent_backoff_usec(unsigned failures, uint64_t max_usec);
