/* Slots, tokens and mechanisms: answered from the cached token list, refreshed on C_GetSlotList. */
#include <stdio.h>
#include <string.h>

#include "common/rpc-codec.h"
#include "common/rpc-frame.h"
#include "p11module/mech.h"
#include "p11module/module.h"
#include "p11module/sessions.h"
#include "p11module/tokens.h"

#define MANUFACTURER "enclave-acm"

static bool tokens_known(void) {
        bool known;

        p11_state_lock();
        known = p11_tokens_count() > 0;
        p11_state_unlock();
        return known;
}

/* What every query about one slot checks first: the module is initialised, there is somewhere to
 * write the answer, and the slot is one we listed. */
static CK_RV slot_enter(CK_SLOT_ID slotID, const void *ret) {
        CK_RV rv = p11_enter();

        if (rv != CKR_OK)
                return rv;
        if (!ret)
                return CKR_ARGUMENTS_BAD;
        return p11_tokens_check_slot(slotID);
}

CK_RV C_GetSlotList(CK_BBOOL tokenPresent, CK_SLOT_ID_PTR pSlotList, CK_ULONG_PTR pulCount) {
        CK_RV rv = p11_enter();
        size_t n;

        if (rv != CKR_OK)
                return rv;
        if (!pulCount)
                return CKR_ARGUMENTS_BAD;
        /* The list changes only on the sizing call, so the second call finds what the first counted.
         * An unreachable daemon leaves the last known list (or none) in place. */
        if (!pSlotList || !tokens_known())
                (void) p11_tokens_refresh();
        p11_state_lock();
        n = p11_tokens_count();
        if (pSlotList && *pulCount < n)
                rv = CKR_BUFFER_TOO_SMALL;
        else if (pSlotList)
                for (size_t i = 0; i < n; i++)
                        pSlotList[i] = p11_tokens_at(i)->slot;
        *pulCount = n;
        p11_state_unlock();
        return rv;
}

CK_RV C_GetSlotInfo(CK_SLOT_ID slotID, CK_SLOT_INFO_PTR pInfo) {
        CK_RV rv = slot_enter(slotID, pInfo);

        if (rv != CKR_OK)
                return rv;
        *pInfo = (CK_SLOT_INFO){
                .flags = CKF_TOKEN_PRESENT | CKF_HW_SLOT,
                .hardwareVersion = { 1, 0 },
                .firmwareVersion = { RPC_VERSION_MAX, 0 },
        };
        p11_pad(pInfo->slotDescription, sizeof(pInfo->slotDescription), "enclave-acm slot",
                strlen("enclave-acm slot"));
        p11_pad(pInfo->manufacturerID, sizeof(pInfo->manufacturerID), MANUFACTURER, strlen(MANUFACTURER));
        return CKR_OK;
}

/* Local, like every slot and token query: the PIN status is the one the token's objects came with (read
 * at the first object search or key use) or a failed login of this process saw (tokens.h). */
static void token_info_fill(const struct p11_token *t, CK_TOKEN_INFO *info) {
        char serial[17];

        *info = (CK_TOKEN_INFO){
                /* Never CKF_WRITE_PROTECTED: test suites open RW sessions, which that flag forbids.
                 * Writes are refused per call instead. */
                .flags = CKF_RNG | CKF_LOGIN_REQUIRED | CKF_USER_PIN_INITIALIZED | CKF_TOKEN_INITIALIZED,
                .ulMaxSessionCount = P11_MAX_SESSIONS,
                .ulMaxRwSessionCount = P11_MAX_SESSIONS,
                .ulMaxPinLen = RPC_PIN_MAX,
                .ulMinPinLen = RPC_PIN_MIN,
                .ulTotalPublicMemory = CK_UNAVAILABLE_INFORMATION,
                .ulFreePublicMemory = CK_UNAVAILABLE_INFORMATION,
                .ulTotalPrivateMemory = CK_UNAVAILABLE_INFORMATION,
                .ulFreePrivateMemory = CK_UNAVAILABLE_INFORMATION,
                .hardwareVersion = { 1, 0 },
                .firmwareVersion = { RPC_VERSION_MAX, 0 },
        };
        if (t->pin_status & RPC_PIN_COUNT_LOW)
                info->flags |= CKF_USER_PIN_COUNT_LOW;
        if (t->pin_status & RPC_PIN_FINAL_TRY)
                info->flags |= CKF_USER_PIN_FINAL_TRY;
        if (t->pin_status & RPC_PIN_LOCKED)
                info->flags |= CKF_USER_PIN_LOCKED;
        p11_sessions_count(t->slot, &info->ulSessionCount, &info->ulRwSessionCount);
        (void) snprintf(serial, sizeof(serial), "%016X", t->slot);
        p11_pad(info->label, sizeof(info->label), t->label, t->label_len);
        p11_pad(info->manufacturerID, sizeof(info->manufacturerID), MANUFACTURER, strlen(MANUFACTURER));
        p11_pad(info->model, sizeof(info->model), "enclave-token", strlen("enclave-token"));
        p11_pad(info->serialNumber, sizeof(info->serialNumber), serial, strlen(serial));
        p11_pad(info->utcTime, sizeof(info->utcTime), "", 0);
}

CK_RV C_GetTokenInfo(CK_SLOT_ID slotID, CK_TOKEN_INFO_PTR pInfo) {
        const struct p11_token *t;
        CK_RV rv = slot_enter(slotID, pInfo);

        if (rv != CKR_OK)
                return rv;
        p11_state_lock();
        t = p11_tokens_find((uint32_t) slotID);
        if (t)
                token_info_fill(t, pInfo);
        p11_state_unlock();
        return t ? CKR_OK : CKR_TOKEN_NOT_PRESENT;
}

/* The key types and sizes of a slot's token, from its objects (read once per key change). */
static CK_RV slot_keys_locked(const struct p11_token *t, void *userdata) {
        struct p11_mech_keys *ret = userdata;

        *ret = (struct p11_mech_keys){};
        for (size_t i = 0; i < t->objects->n_keys; i++)
                p11_mech_keys_add(ret, t->objects->keys[i].type, t->objects->keys[i].bits);
        return CKR_OK;
}

static CK_RV slot_keys(CK_SLOT_ID slot, struct p11_mech_keys *ret) {
        return p11_tokens_with_objects((uint32_t) slot, slot_keys_locked, ret, CKR_TOKEN_NOT_PRESENT);
}

CK_RV C_GetMechanismList(CK_SLOT_ID slotID, CK_MECHANISM_TYPE_PTR pMechanismList, CK_ULONG_PTR pulCount) {
        struct p11_mech_keys k;
        CK_RV rv = slot_enter(slotID, pulCount);
        size_t n;

        if (rv == CKR_OK)
                rv = slot_keys(slotID, &k);
        if (rv != CKR_OK)
                return rv;
        n = p11_mech_list(&k, NULL, 0);
        if (pMechanismList && *pulCount < n)
                rv = CKR_BUFFER_TOO_SMALL;
        else if (pMechanismList)
                (void) p11_mech_list(&k, pMechanismList, n);
        *pulCount = n;
        return rv;
}

CK_RV C_GetMechanismInfo(CK_SLOT_ID slotID, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO_PTR pInfo) {
        struct p11_mech_keys k;
        CK_RV rv = slot_enter(slotID, pInfo);

        if (rv == CKR_OK)
                rv = slot_keys(slotID, &k);
        return rv != CKR_OK ? rv : p11_mech_info_keys(&k, type, pInfo);
}

CK_RV C_WaitForSlotEvent(CK_FLAGS flags, CK_SLOT_ID_PTR pSlot, CK_VOID_PTR pReserved) {
        return p11_enter_refuse(CKR_FUNCTION_NOT_SUPPORTED);
}

/* Tokens are created and changed only through the control channel. */
CK_RV C_InitToken(CK_SLOT_ID slotID, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen, CK_UTF8CHAR_PTR pLabel) {
        return p11_enter_refuse(CKR_FUNCTION_NOT_SUPPORTED);
}

CK_RV C_InitPIN(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen) {
        return p11_enter_refuse(CKR_FUNCTION_NOT_SUPPORTED);
}

CK_RV C_SetPIN(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pOldPin, CK_ULONG ulOldLen,
               CK_UTF8CHAR_PTR pNewPin, CK_ULONG ulNewLen) {
        return p11_enter_refuse(CKR_FUNCTION_NOT_SUPPORTED);
}
