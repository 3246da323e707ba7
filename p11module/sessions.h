/* Module-local sessions: no round trip to open, close or inspect one. */
#pragma once

#include <pthread.h>
#include <stdbool.h>

#include <openssl/evp.h>

#include "p11module/mech.h"
#include "p11module/objects.h"
#include "p11module/pkcs11-3.h"

#define P11_MAX_SESSIONS 16384 /* all tokens together */

/* One active sign, verify or decrypt operation. */
struct p11_op {
        const struct p11_mech *mech; /* NULL: no operation */
        CK_FLAGS op;                 /* CKF_SIGN, CKF_VERIFY or CKF_DECRYPT */
        uint32_t key_id;
        bool prev; /* a key of the token's previous version (tokens.h): signed with its ticket */
        size_t key_bytes;
        size_t out_len; /* exact signature length; largest plaintext for decrypt */
        struct p11_mech_params params;
        bool multipart; /* C_SignUpdate seen */
        size_t buf_len; /* raw mechanisms: bytes collected by C_SignUpdate / C_VerifyUpdate */
};

/* One active C_Digest* operation: local, OpenSSL EVP. */
struct p11_digest_op {
        enum rpc_hash hash; /* RPC_HASH_NONE: no operation */
        bool multipart;     /* C_DigestUpdate seen */
        EVP_MD_CTX *md;     /* allocated once, reused */
};

struct p11_session {
        CK_SESSION_HANDLE handle;
        uint32_t slot;
        CK_FLAGS flags;
        int refs;             /* atomic: the table's reference plus one per caller inside */
        pthread_mutex_t lock; /* everything below */
        struct p11_op sign;
        struct p11_op decrypt;
        EVP_MD_CTX *md; /* hashed mechanisms; allocated once, reused */
        bool find_active;
        size_t find_n;
        size_t find_pos;
        CK_OBJECT_HANDLE find[P11_MAX_OBJECTS];
        uint8_t *buf; /* raw multi-part input, RPC_DATA_MAX bytes; allocated on first use, reused */
        /* Local verification with the key's public half (verify.c). */
        struct p11_op verify;
        EVP_MD_CTX *verify_md; /* hashed mechanisms; allocated once, reused */
        EVP_PKEY *verify_key;  /* the operation's public key, freed when it ends */
        uint8_t *verify_buf;   /* raw multi-part input, like buf */
        struct p11_digest_op digest;
};

/* The session, referenced and locked, or CKR_CRYPTOKI_NOT_INITIALIZED / CKR_SESSION_HANDLE_INVALID. */
CK_RV p11_session_acquire(CK_SESSION_HANDLE h, struct p11_session **ret);
/* The same for a call that continues an operation (CKF_SIGN, CKF_VERIFY, CKF_DIGEST or CKF_DECRYPT): also
 * CKR_OPERATION_NOT_INITIALIZED, with the session released, unless that operation was started. */
CK_RV p11_session_acquire_op(CK_SESSION_HANDLE h, CK_FLAGS op, struct p11_session **ret);
/* Unlocks and drops the reference (freeing a session closed meanwhile). */
void p11_session_release(struct p11_session *s);

void p11_op_end(struct p11_op *op);
/* Ends the session's verify / digest operation. */
void p11_verify_end(struct p11_session *s);
void p11_digest_end(struct p11_session *s);

/* ---- with the state lock held ---- */
void p11_sessions_count(uint32_t slot, CK_ULONG *ret_all, CK_ULONG *ret_rw);
bool p11_sessions_ro_exists(uint32_t slot);
/* The token is gone: its sessions are closed. */
void p11_sessions_drop_slot(uint32_t slot);
void p11_sessions_done(void);
/* Forked child: frees every session without taking any lock. */
void p11_sessions_forked(void);
