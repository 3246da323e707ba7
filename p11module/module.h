/* Module-wide state: initialisation, the fork check and the state lock. */
#pragma once

#include <pthread.h>
#include <stdbool.h>

#include "p11module/config.h"
#include "p11module/pkcs11-3.h"

/*
 * Locks, always taken in this order and never held across a round trip except the session's own:
 *   session lock (struct p11_session)  ->  state lock (tokens, session table, login)  ->  pool lock.
 */
struct p11_module {
        pthread_mutex_t lock; /* the state lock */
        bool initialized;     /* under the lock */
        struct p11_config cfg;
};

extern struct p11_module p11_mod;

/* CKR_OK when C_Initialize ran in this process. In a forked child the inherited state is dropped
 * (without a byte written to the parent's connections) and CKR_CRYPTOKI_NOT_INITIALIZED returned. */
CK_RV p11_enter(void);
/* For the calls the token refuses: p11_enter()'s error, or else why. */
CK_RV p11_enter_refuse(CK_RV why);

void p11_state_lock(void);
void p11_state_unlock(void);

/* A negative errno as a CK_RV (p11-errmap). */
CK_RV p11_ckr(int r);

/* Fill a fixed-width, blank-padded PKCS#11 text field. */
void p11_pad(CK_UTF8CHAR *dst, size_t size, const char *src, size_t len);
