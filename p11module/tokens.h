/* The cached token list (one slot per token) with each token's objects and login state. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "common/rpc-codec.h"
#include "common/secret.h"
#include "p11module/keys.h"
#include "p11module/pkcs11-3.h"

struct p11_token {
        uint32_t slot;
        char label[RPC_LABEL_MAX + 1];
        size_t label_len;
        uint64_t generation;
        struct p11_objects *objects; /* NULL until first needed, dropped when the generation changes */
        /* Login is token-wide: every session of the token shares it. */
        bool logged_in;
        uint64_t login_seq; /* bumped on every login and logout */
        struct secret_buf *pin;
        uint8_t ticket[RPC_TICKET_LEN];
        /* enum rpc_pin_status as enclave-token last told it (TOKEN_OBJECTS) or a LOGIN showed it: the
         * count and the back-off live in the enclave, the module only reports them. */
        uint32_t pin_status;
        /* The version before the last key change, as this process knew it: its objects and the
         * ticket of its login. A handle to one of its keys keeps signing while enclave-token still
         * answers for that version (its grace period), although searches show only the new keys. */
        struct p11_objects *prev_objects;
        uint8_t prev_ticket[RPC_TICKET_LEN];
        bool prev_logged_in;
        bool keep; /* scratch for the list merge */
};

/* ---- with the state lock held ---- */
/* A listed token, or one that left the list while sessions were open on it (see tokens.c). */
struct p11_token *p11_tokens_find(uint32_t slot);
/* Listed tokens only (C_GetSlotList). */
size_t p11_tokens_count(void);
struct p11_token *p11_tokens_at(size_t i);
void p11_token_logout(struct p11_token *t);
/* Frees the token if it is no longer listed (call after its last session closed). */
void p11_tokens_release_gone(uint32_t slot);
void p11_tokens_done(void);
/* Forked child: frees everything without taking locks. */
void p11_tokens_forked(void);

/* ---- without the state lock ---- */

/* Drops a token's cached objects (the daemon no longer knows a key we have). */
void p11_tokens_forget_objects(uint32_t slot);
/* Drops the previous version (the daemon no longer answers for it). */
void p11_tokens_forget_prev(uint32_t slot);
/* The previous version's ticket: 0, or -EPERM when there is none to sign with. */
int p11_tokens_prev_ticket(uint32_t slot, uint8_t ret_ticket[static RPC_TICKET_LEN]);

/* Re-reads TOKEN_LIST and merges it. For a second after a failure it fails at once with the same
 * error, so an unreachable daemon does not cost a timeout on every C_GetSlotList. */
int p11_tokens_refresh(void);
/* true if this slot id was listed at some point since C_Initialize (a removed token's slot too). */
bool p11_tokens_seen(CK_SLOT_ID slot);
/* After a wrong or refused PIN: reads the token's objects again for the enclave's PIN status, adding
 * COUNT_LOW (and LOCKED when the LOGIN was refused) whatever that read gives. */
void p11_tokens_pin_failed(uint32_t slot, bool refused);
/* Fetches a token's objects if they are not cached. */
_must_check_ int p11_tokens_load_objects(uint32_t slot);
/* Calls fn with the state lock held on the slot's token once its objects are cached, fetching them
 * when they are not (at most twice: a key change may drop them again between the fetch and the
 * lock). Returns fn's answer, `absent` when the slot has no token or the objects keep being dropped,
 * or the fetch's error. */
typedef CK_RV (*p11_token_fn)(const struct p11_token *t, void *userdata);
CK_RV p11_tokens_with_objects(uint32_t slot, p11_token_fn fn, void *userdata, CK_RV absent);
/* CKR_OK if the slot exists (refreshing the list once when it is unknown), CKR_SLOT_ID_INVALID if
 * the daemon says it does not, or the refresh's error (CKR_DEVICE_REMOVED, CKR_DEVICE_ERROR). */
CK_RV p11_tokens_check_slot(CK_SLOT_ID slot);
