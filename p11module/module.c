/* C_Initialize, C_Finalize, C_GetInfo and the fork check every entry point starts with. */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "common/p11-errmap.h"
#include "p11module/conn.h"
#include "p11module/debug.h"
#include "p11module/module.h"
#include "p11module/remote.h"
#include "p11module/sessions.h"
#include "p11module/tokens.h"

struct p11_module p11_mod = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* The pid C_Initialize ran in; 0 when not initialised. Read without the lock on every call. */
static pid_t init_pid;
/* A forked child dropped the inherited state and has not initialised yet: its first C_Finalize
 * (pkcs11-provider's re-initialisation) is answered CKR_OK. */
static bool forked_pending;

void p11_state_lock(void) {
        (void) pthread_mutex_lock(&p11_mod.lock);
}

void p11_state_unlock(void) {
        (void) pthread_mutex_unlock(&p11_mod.lock);
}

CK_RV p11_ckr(int r) {
        return errmap_ckr_from_errno(r);
}

void p11_pad(CK_UTF8CHAR *dst, size_t size, const char *src, size_t len) {
        memset(dst, ' ', size);
        memcpy(dst, src, MIN(len, size));
}

/* In a child of the process that initialised us. Only one thread resets (the CAS winner); another
 * thread of the parent may have held any of our locks at fork(), so locks are re-created, not taken.
 * Inherited sockets are closed without a byte written: the parent still uses them. */
static void module_forked(pid_t parent) {
        if (!__atomic_compare_exchange_n(&init_pid, &parent, 0, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
                return;
        (void) pthread_mutex_init(&p11_mod.lock, NULL);
        p11_pool_forked();
        p11_sessions_forked();
        p11_tokens_forked();
        p11_config_done(&p11_mod.cfg);
        p11_mod.initialized = false;
        forked_pending = true;
        p11_debug(P11_DEBUG_INIT, "forked child: inherited state dropped");
}

/* 0 if initialised here, -ENXIO if not, -ECHILD if we are a forked child (state now dropped). */
static int check_process(void) {
        pid_t pid = __atomic_load_n(&init_pid, __ATOMIC_ACQUIRE);

        if (pid == 0)
                return -ENXIO;
        if (_likely_(pid == getpid()))
                return 0;
        module_forked(pid);
        return -ECHILD;
}

CK_RV p11_enter(void) {
        p11_remote_budget_reset();
        return check_process() == 0 ? CKR_OK : CKR_CRYPTOKI_NOT_INITIALIZED;
}

CK_RV p11_enter_refuse(CK_RV why) {
        CK_RV rv = p11_enter();

        return rv != CKR_OK ? rv : why;
}

static CK_RV check_init_args(const CK_C_INITIALIZE_ARGS *a) {
        bool some, all;

        if (!a)
                return CKR_OK;
        if (a->pReserved)
                return CKR_ARGUMENTS_BAD;
        some = a->CreateMutex || a->DestroyMutex || a->LockMutex || a->UnlockMutex;
        all = a->CreateMutex && a->DestroyMutex && a->LockMutex && a->UnlockMutex;
        if (some && !all)
                return CKR_ARGUMENTS_BAD;
        /* The application's own mutexes only, no OS locking: we cannot honour that. */
        if (all && !(a->flags & CKF_OS_LOCKING_OK))
                return CKR_CANT_LOCK;
        /* CKF_LIBRARY_CANT_CREATE_OS_THREADS is fine: we never create threads. */
        return CKR_OK;
}

CK_RV C_Initialize(CK_VOID_PTR pInitArgs) {
        struct p11_config cfg;
        CK_RV rv;
        int r;

        rv = check_init_args(pInitArgs);
        if (rv != CKR_OK)
                return rv;
        (void) check_process(); /* a forked child starts fresh */
        p11_state_lock();
        if (p11_mod.initialized) {
                p11_state_unlock();
                return CKR_CRYPTOKI_ALREADY_INITIALIZED;
        }
        r = p11_config_load(&cfg);
        if (r < 0) {
                p11_state_unlock();
                return CKR_HOST_MEMORY;
        }
        p11_mod.cfg = cfg;
        p11_debug_mask = cfg.debug;
        p11_pool_init(&p11_mod.cfg);
        p11_mod.initialized = true;
        forked_pending = false;
        __atomic_store_n(&init_pid, getpid(), __ATOMIC_RELEASE);
        p11_state_unlock();
        p11_debug(P11_DEBUG_INIT, "initialised (timeout %d ms)", cfg.timeout_ms);
        return CKR_OK;
}

CK_RV C_Finalize(CK_VOID_PTR pReserved) {
        int r;

        if (pReserved)
                return CKR_ARGUMENTS_BAD;
        r = check_process();
        if (r < 0) {
                p11_state_lock();
                r = forked_pending ? 0 : -ENXIO; /* pkcs11-provider finalises in the child: local only */
                forked_pending = false;
                p11_state_unlock();
                return r == 0 ? CKR_OK : CKR_CRYPTOKI_NOT_INITIALIZED;
        }
        p11_state_lock();
        if (!p11_mod.initialized) {
                p11_state_unlock();
                return CKR_CRYPTOKI_NOT_INITIALIZED;
        }
        __atomic_store_n(&init_pid, 0, __ATOMIC_RELEASE);
        p11_mod.initialized = false;
        p11_sessions_done();
        p11_tokens_done();
        p11_pool_done();
        p11_config_done(&p11_mod.cfg);
        p11_state_unlock();
        p11_debug(P11_DEBUG_INIT, "finalised");
        p11_debug_mask = 0;
        return CKR_OK;
}

static CK_RV get_info(CK_INFO_PTR pInfo, CK_BYTE major, CK_BYTE minor) {
        CK_RV rv = p11_enter();

        if (rv != CKR_OK)
                return rv;
        if (!pInfo)
                return CKR_ARGUMENTS_BAD;
        *pInfo = (CK_INFO){
                .cryptokiVersion = { major, minor },
                .flags = 0,
                .libraryVersion = { P11_LIB_VERSION_MAJOR, P11_LIB_VERSION_MINOR },
        };
        p11_pad(pInfo->manufacturerID, sizeof(pInfo->manufacturerID), "enclave-acm", strlen("enclave-acm"));
        p11_pad(pInfo->libraryDescription, sizeof(pInfo->libraryDescription), "enclave-acm PKCS#11 module",
                strlen("enclave-acm PKCS#11 module"));
        return CKR_OK;
}

/* Reached through the 2.40 function list (C_GetFunctionList). */
CK_RV C_GetInfo(CK_INFO_PTR pInfo) {
        return get_info(pInfo, 2, 40);
}

/* Reached through the 3.0 interface. */
CK_RV p11_get_info_v3(CK_INFO_PTR pInfo);
CK_RV p11_get_info_v3(CK_INFO_PTR pInfo) {
        return get_info(pInfo, 3, 0);
}
