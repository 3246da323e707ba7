/* The 2.40 function list and the 3.0 interfaces behind the three exported entry points. */
#include <stdbool.h>
#include <string.h>

#include "common/cleanup.h"
#include "p11module/interface.h"

#define LIST_2_40_FUNCTIONS(get_info)                                                                       \
        .C_Initialize = C_Initialize, .C_Finalize = C_Finalize, .C_GetInfo = get_info,                      \
        .C_GetFunctionList = p11_get_function_list, .C_GetSlotList = C_GetSlotList,                         \
        .C_GetSlotInfo = C_GetSlotInfo, .C_GetTokenInfo = C_GetTokenInfo,                                   \
        .C_GetMechanismList = C_GetMechanismList, .C_GetMechanismInfo = C_GetMechanismInfo,                 \
        .C_InitToken = C_InitToken, .C_InitPIN = C_InitPIN, .C_SetPIN = C_SetPIN,                           \
        .C_OpenSession = C_OpenSession, .C_CloseSession = C_CloseSession,                                   \
        .C_CloseAllSessions = C_CloseAllSessions, .C_GetSessionInfo = C_GetSessionInfo,                     \
        .C_GetOperationState = C_GetOperationState, .C_SetOperationState = C_SetOperationState,             \
        .C_Login = C_Login, .C_Logout = C_Logout, .C_CreateObject = C_CreateObject,                         \
        .C_CopyObject = C_CopyObject, .C_DestroyObject = C_DestroyObject,                                   \
        .C_GetObjectSize = C_GetObjectSize, .C_GetAttributeValue = C_GetAttributeValue,                     \
        .C_SetAttributeValue = C_SetAttributeValue, .C_FindObjectsInit = C_FindObjectsInit,                 \
        .C_FindObjects = C_FindObjects, .C_FindObjectsFinal = C_FindObjectsFinal,                           \
        .C_EncryptInit = C_EncryptInit, .C_Encrypt = C_Encrypt, .C_EncryptUpdate = C_EncryptUpdate,         \
        .C_EncryptFinal = C_EncryptFinal, .C_DecryptInit = C_DecryptInit, .C_Decrypt = C_Decrypt,           \
        .C_DecryptUpdate = C_DecryptUpdate, .C_DecryptFinal = C_DecryptFinal, .C_DigestInit = C_DigestInit, \
        .C_Digest = C_Digest, .C_DigestUpdate = C_DigestUpdate, .C_DigestKey = C_DigestKey,                 \
        .C_DigestFinal = C_DigestFinal, .C_SignInit = C_SignInit, .C_Sign = C_Sign,                         \
        .C_SignUpdate = C_SignUpdate, .C_SignFinal = C_SignFinal, .C_SignRecoverInit = C_SignRecoverInit,   \
        .C_SignRecover = C_SignRecover, .C_VerifyInit = C_VerifyInit, .C_Verify = C_Verify,                 \
        .C_VerifyUpdate = C_VerifyUpdate, .C_VerifyFinal = C_VerifyFinal,                                   \
        .C_VerifyRecoverInit = C_VerifyRecoverInit, .C_VerifyRecover = C_VerifyRecover,                     \
        .C_DigestEncryptUpdate = C_DigestEncryptUpdate, .C_DecryptDigestUpdate = C_DecryptDigestUpdate,     \
        .C_SignEncryptUpdate = C_SignEncryptUpdate, .C_DecryptVerifyUpdate = C_DecryptVerifyUpdate,         \
        .C_GenerateKey = C_GenerateKey, .C_GenerateKeyPair = C_GenerateKeyPair, .C_WrapKey = C_WrapKey,     \
        .C_UnwrapKey = C_UnwrapKey, .C_DeriveKey = C_DeriveKey, .C_SeedRandom = C_SeedRandom,               \
        .C_GenerateRandom = C_GenerateRandom, .C_GetFunctionStatus = C_GetFunctionStatus,                   \
        .C_CancelFunction = C_CancelFunction, .C_WaitForSlotEvent = C_WaitForSlotEvent

static CK_FUNCTION_LIST list_2_40 = {
        .version = { 2, 40 },
        LIST_2_40_FUNCTIONS(C_GetInfo),
};

static CK_FUNCTION_LIST_3_0 list_3_0 = {
        .version = { 3, 0 },
        LIST_2_40_FUNCTIONS(p11_get_info_v3),
        .C_GetInterfaceList = p11_get_interface_list,
        .C_GetInterface = p11_get_interface,
        .C_LoginUser = C_LoginUser,
        .C_SessionCancel = C_SessionCancel,
        .C_MessageEncryptInit = C_MessageEncryptInit,
        .C_EncryptMessage = C_EncryptMessage,
        .C_EncryptMessageBegin = C_EncryptMessageBegin,
        .C_EncryptMessageNext = C_EncryptMessageNext,
        .C_MessageEncryptFinal = C_MessageEncryptFinal,
        .C_MessageDecryptInit = C_MessageDecryptInit,
        .C_DecryptMessage = C_DecryptMessage,
        .C_DecryptMessageBegin = C_DecryptMessageBegin,
        .C_DecryptMessageNext = C_DecryptMessageNext,
        .C_MessageDecryptFinal = C_MessageDecryptFinal,
        .C_MessageSignInit = C_MessageSignInit,
        .C_SignMessage = C_SignMessage,
        .C_SignMessageBegin = C_SignMessageBegin,
        .C_SignMessageNext = C_SignMessageNext,
        .C_MessageSignFinal = C_MessageSignFinal,
        .C_MessageVerifyInit = C_MessageVerifyInit,
        .C_VerifyMessage = C_VerifyMessage,
        .C_VerifyMessageBegin = C_VerifyMessageBegin,
        .C_VerifyMessageNext = C_VerifyMessageNext,
        .C_MessageVerifyFinal = C_MessageVerifyFinal,
};

static CK_UTF8CHAR interface_name[] = "PKCS 11";

/* The first one is the default C_GetInterface(NULL, NULL, …) hands out. */
static CK_INTERFACE interfaces[] = {
        { interface_name, &list_3_0, 0 },
        { interface_name, &list_2_40, 0 },
};

CK_RV p11_get_function_list(CK_FUNCTION_LIST_PTR_PTR ppFunctionList) {
        if (!ppFunctionList)
                return CKR_ARGUMENTS_BAD;
        *ppFunctionList = &list_2_40;
        return CKR_OK;
}

CK_RV p11_get_interface_list(CK_INTERFACE_PTR pInterfacesList, CK_ULONG_PTR pulCount) {
        CK_ULONG n = ELEMENTSOF(interfaces);

        if (!pulCount)
                return CKR_ARGUMENTS_BAD;
        if (pInterfacesList && *pulCount < n) {
                *pulCount = n;
                return CKR_BUFFER_TOO_SMALL;
        }
        if (pInterfacesList)
                memcpy(pInterfacesList, interfaces, sizeof(interfaces));
        *pulCount = n;
        return CKR_OK;
}

static bool interface_matches(const CK_INTERFACE *i, const CK_UTF8CHAR *name, const CK_VERSION *version,
                              CK_FLAGS flags) {
        const CK_VERSION *v = i->pFunctionList; /* every function list starts with its version */

        if (name && strcmp((const char *) name, (const char *) i->pInterfaceName) != 0)
                return false;
        if (version && (version->major != v->major || version->minor != v->minor))
                return false;
        return (i->flags & flags) == flags;
}

CK_RV p11_get_interface(CK_UTF8CHAR_PTR pInterfaceName, CK_VERSION_PTR pVersion,
                        CK_INTERFACE_PTR_PTR ppInterface, CK_FLAGS flags) {
        if (!ppInterface)
                return CKR_ARGUMENTS_BAD;
        for (size_t i = 0; i < ELEMENTSOF(interfaces); i++)
                if (interface_matches(&interfaces[i], pInterfaceName, pVersion, flags)) {
                        *ppInterface = &interfaces[i];
                        return CKR_OK;
                }
        return CKR_ARGUMENTS_BAD;
}
