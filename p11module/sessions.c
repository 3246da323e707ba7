/* Module-local sessions: no round trip to open, close or inspect one. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/secret.h"
#include "p11module/debug.h"
#include "p11module/module.h"
#include "p11module/sessions.h"
#include "p11module/tokens.h"

static struct {
        struct p11_session **v; /* sorted by handle: handles only grow */
        size_t n;
        size_t cap;
        CK_SESSION_HANDLE next;
} sessions = { .next = 1 };

static void session_free(struct p11_session *s, bool forked) {
        EVP_MD_CTX_free(s->md);
        EVP_MD_CTX_free(s->verify_md);
        EVP_MD_CTX_free(s->digest.md);
        EVP_PKEY_free(s->verify_key);
        free(s->verify_buf); /* public data only */
        if (!forked)         /* a child may hold a copy locked by a parent thread: never touch it */
                (void) pthread_mutex_destroy(&s->lock);
        if (s->buf)
                secret_wipe(s->buf, RPC_DATA_MAX);
        free(s->buf);
        free(s);
}

static void session_unref(struct p11_session *s) {
        if (__atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) == 0)
                session_free(s, false);
}

static bool session_closed(struct p11_session *s) {
        return __atomic_load_n(&s->handle, __ATOMIC_ACQUIRE) == CK_INVALID_HANDLE;
}

static ssize_t session_index(CK_SESSION_HANDLE h) {
        size_t lo = 0, hi = sessions.n;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;

                if (sessions.v[mid]->handle == h)
                        return (ssize_t) mid;
                if (sessions.v[mid]->handle < h)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return -1;
}

/* Takes a session out of the table (state lock held); the caller drops the table's reference. */
static struct p11_session *session_remove(size_t i) {
        struct p11_session *s = sessions.v[i];

        memmove(&sessions.v[i], &sessions.v[i + 1], (sessions.n - i - 1) * sizeof(*sessions.v));
        sessions.n--;
        __atomic_store_n(&s->handle, CK_INVALID_HANDLE, __ATOMIC_RELEASE);
        return s;
}

static int table_reserve(void) {
        struct p11_session **v;
        size_t cap;

        if (sessions.n < sessions.cap)
                return 0;
        if (sessions.n >= P11_MAX_SESSIONS)
                return -ENOSPC;
        cap = sessions.cap ? sessions.cap * 2 : 16;
        v = realloc(sessions.v, cap * sizeof(*v));
        if (!v)
                return -ENOMEM;
        sessions.v = v;
        sessions.cap = cap;
        return 0;
}

static CK_RV session_new(CK_SLOT_ID slot, CK_FLAGS flags, CK_SESSION_HANDLE *ret) {
        struct p11_session *s;
        int r;

        s = calloc(1, sizeof(*s));
        if (!s)
                return CKR_HOST_MEMORY;
        (void) pthread_mutex_init(&s->lock, NULL);
        s->slot = (uint32_t) slot;
        s->flags = flags;
        s->refs = 1;
        p11_state_lock();
        r = p11_mod.initialized ? table_reserve() : -ENXIO;
        if (r < 0) {
                p11_state_unlock();
                session_free(s, false);
                return r == -ENOSPC  ? CKR_SESSION_COUNT
                       : r == -ENXIO ? CKR_CRYPTOKI_NOT_INITIALIZED
                                     : CKR_HOST_MEMORY;
        }
        s->handle = sessions.next++;
        if (sessions.next == CK_INVALID_HANDLE)
                sessions.next = 1;
        sessions.v[sessions.n++] = s;
        *ret = s->handle;
        p11_state_unlock();
        p11_debug(P11_DEBUG_SESSION, "slot %lu: session %lu opened (%s)", slot, *ret,
                  flags & CKF_RW_SESSION ? "rw" : "ro");
        return CKR_OK;
}

CK_RV C_OpenSession(CK_SLOT_ID slotID, CK_FLAGS flags, CK_VOID_PTR pApplication, CK_NOTIFY Notify,
                    CK_SESSION_HANDLE_PTR phSession) {
        CK_RV rv = p11_enter();

        if (rv != CKR_OK)
                return rv;
        if (!(flags & CKF_SERIAL_SESSION))
                return CKR_SESSION_PARALLEL_NOT_SUPPORTED;
        if (!phSession)
                return CKR_ARGUMENTS_BAD;
        /* libp11 0.4.12 waits forever when C_OpenSession fails, so this never fails for a remote
         * reason: a daemon we cannot reach, or a token removed since this process listed its slot,
         * is reported by the calls that need the token (login, sign). Only a slot id this process
         * has never seen, and the daemon does not know, is refused. */
        if (slotID > UINT32_MAX ||
            (!p11_tokens_seen(slotID) && p11_tokens_check_slot(slotID) == CKR_SLOT_ID_INVALID))
                return CKR_SLOT_ID_INVALID;
        return session_new(slotID, flags & (CKF_SERIAL_SESSION | CKF_RW_SESSION), phSession);
}

/* After the last session of a token closes, the user is logged out (PKCS#11 §5.6). */
static void logout_if_last(uint32_t slot) {
        CK_ULONG all, rw;

        p11_sessions_count(slot, &all, &rw);
        if (all == 0) {
                p11_token_logout(p11_tokens_find(slot));
                p11_tokens_release_gone(slot);
        }
}

CK_RV C_CloseSession(CK_SESSION_HANDLE hSession) {
        struct p11_session *s;
        CK_RV rv = p11_enter();
        ssize_t i;

        if (rv != CKR_OK)
                return rv;
        p11_state_lock();
        i = session_index(hSession);
        if (i < 0) {
                p11_state_unlock();
                return CKR_SESSION_HANDLE_INVALID;
        }
        s = session_remove((size_t) i);
        logout_if_last(s->slot);
        p11_state_unlock();
        p11_debug(P11_DEBUG_SESSION, "session %lu closed", hSession);
        session_unref(s);
        return CKR_OK;
}

/* Closes a slot's sessions; state lock held. Returns how many. */
static size_t close_slot_locked(uint32_t slot) {
        size_t closed = 0;

        for (size_t i = sessions.n; i > 0; i--)
                if (sessions.v[i - 1]->slot == slot) {
                        session_unref(session_remove(i - 1));
                        closed++;
                }
        return closed;
}

CK_RV C_CloseAllSessions(CK_SLOT_ID slotID) {
        CK_RV rv = p11_enter();
        bool known;

        if (rv != CKR_OK)
                return rv;
        if (slotID > UINT32_MAX)
                return CKR_SLOT_ID_INVALID;
        p11_state_lock();
        known = close_slot_locked((uint32_t) slotID) > 0 || p11_tokens_find((uint32_t) slotID);
        p11_token_logout(p11_tokens_find((uint32_t) slotID));
        p11_tokens_release_gone((uint32_t) slotID);
        p11_state_unlock();
        return known ? CKR_OK : CKR_SLOT_ID_INVALID;
}

static CK_STATE session_state(const struct p11_session *s) {
        const struct p11_token *t = p11_tokens_find(s->slot);
        bool rw = s->flags & CKF_RW_SESSION;

        if (t && t->logged_in)
                return rw ? CKS_RW_USER_FUNCTIONS : CKS_RO_USER_FUNCTIONS;
        return rw ? CKS_RW_PUBLIC_SESSION : CKS_RO_PUBLIC_SESSION;
}

CK_RV C_GetSessionInfo(CK_SESSION_HANDLE hSession, CK_SESSION_INFO_PTR pInfo) {
        CK_RV rv = p11_enter();
        ssize_t i;

        if (rv != CKR_OK)
                return rv;
        if (!pInfo)
                return CKR_ARGUMENTS_BAD;
        p11_state_lock();
        i = session_index(hSession);
        if (i >= 0) {
                const struct p11_session *s = sessions.v[i];

                *pInfo = (CK_SESSION_INFO){
                        .slotID = s->slot,
                        .state = session_state(s),
                        .flags = s->flags,
                        .ulDeviceError = 0,
                };
        }
        p11_state_unlock();
        return i >= 0 ? CKR_OK : CKR_SESSION_HANDLE_INVALID;
}

CK_RV p11_session_acquire(CK_SESSION_HANDLE h, struct p11_session **ret) {
        struct p11_session *s = NULL;
        CK_RV rv = p11_enter();
        ssize_t i;

        if (rv != CKR_OK)
                return rv;
        p11_state_lock();
        i = session_index(h);
        if (i >= 0) {
                s = sessions.v[i];
                __atomic_add_fetch(&s->refs, 1, __ATOMIC_ACQ_REL);
        }
        p11_state_unlock();
        if (!s)
                return CKR_SESSION_HANDLE_INVALID;
        pthread_mutex_lock(&s->lock);
        if (session_closed(s)) {
                p11_session_release(s);
                return CKR_SESSION_HANDLE_INVALID;
        }
        *ret = s;
        return CKR_OK;
}

CK_RV p11_session_acquire_op(CK_SESSION_HANDLE h, CK_FLAGS op, struct p11_session **ret) {
        struct p11_session *s;
        CK_RV rv = p11_session_acquire(h, &s);

        if (rv != CKR_OK)
                return rv;
        if (!(op == CKF_SIGN     ? s->sign.mech != NULL
              : op == CKF_VERIFY ? s->verify.mech != NULL
              : op == CKF_DIGEST ? s->digest.hash != RPC_HASH_NONE
                                 : s->decrypt.mech != NULL)) {
                p11_session_release(s);
                return CKR_OPERATION_NOT_INITIALIZED;
        }
        *ret = s;
        return CKR_OK;
}

void p11_session_release(struct p11_session *s) {
        if (!s)
                return;
        pthread_mutex_unlock(&s->lock);
        session_unref(s);
}

void p11_op_end(struct p11_op *op) {
        secret_wipe(op->params.label, op->params.label_len);
        *op = (struct p11_op){};
}

void p11_verify_end(struct p11_session *s) {
        p11_op_end(&s->verify);
        EVP_PKEY_free(s->verify_key);
        s->verify_key = NULL;
}

void p11_digest_end(struct p11_session *s) {
        s->digest.hash = RPC_HASH_NONE;
        s->digest.multipart = false;
}

void p11_sessions_count(uint32_t slot, CK_ULONG *ret_all, CK_ULONG *ret_rw) {
        CK_ULONG all = 0, rw = 0;

        for (size_t i = 0; i < sessions.n; i++)
                if (sessions.v[i]->slot == slot) {
                        all++;
                        rw += !!(sessions.v[i]->flags & CKF_RW_SESSION);
                }
        *ret_all = all;
        *ret_rw = rw;
}

bool p11_sessions_ro_exists(uint32_t slot) {
        CK_ULONG all, rw;

        p11_sessions_count(slot, &all, &rw);
        return all > rw;
}

void p11_sessions_drop_slot(uint32_t slot) {
        (void) close_slot_locked(slot);
}

void p11_sessions_done(void) {
        for (size_t i = sessions.n; i > 0; i--)
                session_unref(session_remove(i - 1));
        free(sessions.v);
        sessions.v = NULL;
        sessions.n = sessions.cap = 0;
}

void p11_sessions_forked(void) {
        /* The parent's other threads do not exist here: their references and locks are moot. */
        for (size_t i = 0; i < sessions.n; i++)
                session_free(sessions.v[i], true);
        free(sessions.v);
        sessions.v = NULL;
        sessions.n = sessions.cap = 0;
}
