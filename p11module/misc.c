/* The rest of the function list: local randomness, and clean refusals for what a key-only token lacks. */
#include <limits.h>

#include <openssl/err.h>
#include <openssl/rand.h>

#include "p11module/module.h"
#include "p11module/sessions.h"

static CK_RV session_valid(CK_SESSION_HANDLE h) {
        struct p11_session *s;
        CK_RV rv = p11_session_acquire(h, &s);

        if (rv == CKR_OK)
                p11_session_release(s);
        return rv;
}

/* ---- randomness: OpenSSL's DRBG (fork-safe), so CKF_RNG is set ---- */

CK_RV C_GenerateRandom(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pRandomData, CK_ULONG ulRandomLen) {
        CK_RV rv = session_valid(hSession);
        int ok = 1;

        if (rv != CKR_OK)
                return rv;
        if (!pRandomData && ulRandomLen > 0)
                return CKR_ARGUMENTS_BAD;
        ERR_set_mark();
        for (CK_ULONG done = 0; ok && done < ulRandomLen;) {
                int n = (int) MIN(ulRandomLen - done, (CK_ULONG) INT_MAX);

                ok = RAND_bytes(pRandomData + done, n) > 0;
                done += (CK_ULONG) n;
        }
        ERR_pop_to_mark();
        return ok ? CKR_OK : CKR_FUNCTION_FAILED;
}

CK_RV C_SeedRandom(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSeed, CK_ULONG ulSeedLen) {
        CK_RV rv = session_valid(hSession);

        return rv != CKR_OK ? rv : CKR_RANDOM_SEED_NOT_SUPPORTED;
}

/* ---- legacy parallel functions ---- */

CK_RV C_GetFunctionStatus(CK_SESSION_HANDLE hSession) {
        return p11_enter_refuse(CKR_FUNCTION_NOT_PARALLEL);
}

CK_RV C_CancelFunction(CK_SESSION_HANDLE hSession) {
        return p11_enter_refuse(CKR_FUNCTION_NOT_PARALLEL);
}

/* ---- 3.0 ---- */

CK_RV C_SessionCancel(CK_SESSION_HANDLE hSession, CK_FLAGS flags) {
        struct p11_session *s;
        CK_RV rv = p11_session_acquire(hSession, &s);

        if (rv != CKR_OK)
                return rv;
        if (flags & CKF_SIGN)
                p11_op_end(&s->sign);
        if (flags & CKF_DECRYPT)
                p11_op_end(&s->decrypt);
        if (flags & CKF_VERIFY)
                p11_verify_end(s);
        if (flags & CKF_DIGEST)
                p11_digest_end(s);
        p11_session_release(s);
        return CKR_OK;
}

/* ---- not offered: operation state, encryption, verify-recover, key management ---- */

CK_RV C_GetOperationState(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pOperationState,
                          CK_ULONG_PTR pulOperationStateLen) {
        return p11_enter_refuse(CKR_FUNCTION_NOT_SUPPORTED);
}

CK_RV C_SetOperationState(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pOperationState,
                          CK_ULONG ulOperationStateLen, CK_OBJECT_HANDLE hEncryptionKey,
                          CK_OBJECT_HANDLE hAuthenticationKey) {
        return p11_enter_refuse(CKR_FUNCTION_NOT_SUPPORTED);
}

CK_RV C_EncryptInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey) {
        return p11_enter_refuse(CKR_FUNCTION_NOT_SUPPORTED);
}

CK_RV C_Encrypt(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
                CK_BYTE_PTR pEncryptedData, CK_ULONG_PTR pulEncryptedDataLen) {
        return p11_enter_refuse(CKR_FUNCTION_NOT_SUPPORTED);
}

CK_RV C_EncryptUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen,
                      CK_BYTE_PTR pEncryptedPart, CK_ULONG_PTR pulEncryptedPartLen) {
        return p11_enter_refuse(CKR_FUNCTION_NOT_SUPPORTED);
}

CK_RV C_EncryptFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pLastEncryptedPart,
                     CK_ULONG_PTR pulLastEncryptedPartLen) {
        return p11_enter_refuse(CKR_FUNCTION_NOT_SUPPORTED);
}

CK_RV C_VerifyRecoverInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey) {
        return p11_enter_refuse(CKR_FUNCTION_NOT_SUPPORTED);
}

CK_RV C_VerifyRecover(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen,
                      CK_BYTE_PTR pData, CK_ULONG_PTR pulDataLen) {
        return p11_enter_refuse(CKR_FUNCTION_NOT_SUPPORTED);
}

CK_RV C_DigestEncryptUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen,
                            CK_BYTE_PTR pEncryptedPart, CK_ULONG_PTR pulEncryptedPartLen) {
        return p11_enter_refuse(CKR_FUNCTION_NOT_SUPPORTED);
}

CK_RV C_DecryptDigestUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedPart,
                            CK_ULONG ulEncryptedPartLen, CK_BYTE_PTR pPart, CK_ULONG_PTR pulPartLen) {
        return p11_enter_refuse(CKR_FUNCTION_NOT_SUPPORTED);
}

CK_RV C_SignEncryptUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen,
                          CK_BYTE_PTR pEncryptedPart, CK_ULONG_PTR pulEncryptedPartLen) {
        return p11_enter_refuse(CKR_FUNCTION_NOT_SUPPORTED);
}

CK_RV C_DecryptVerifyUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedPart,
                            CK_ULONG ulEncryptedPartLen, CK_BYTE_PTR pPart, CK_ULONG_PTR pulPartLen) {
        return p11_enter_refuse(CKR_FUNCTION_NOT_SUPPORTED);
}

CK_RV C_GenerateKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_ATTRIBUTE_PTR pTemplate,
                    CK_ULONG ulCount, CK_OBJECT_HANDLE_PTR phKey) {
        return p11_enter_refuse(CKR_FUNCTION_NOT_SUPPORTED);
}

CK_RV C_GenerateKeyPair(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                        CK_ATTRIBUTE_PTR pPublicKeyTemplate, CK_ULONG ulPublicKeyAttributeCount,
                        CK_ATTRIBUTE_PTR pPrivateKeyTemplate, CK_ULONG ulPrivateKeyAttributeCount,
                        CK_OBJECT_HANDLE_PTR phPublicKey, CK_OBJECT_HANDLE_PTR phPrivateKey) {
        return p11_enter_refuse(CKR_FUNCTION_NOT_SUPPORTED);
}

CK_RV C_WrapKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hWrappingKey,
                CK_OBJECT_HANDLE hKey, CK_BYTE_PTR pWrappedKey, CK_ULONG_PTR pulWrappedKeyLen) {
        return p11_enter_refuse(CKR_FUNCTION_NOT_SUPPORTED);
}

CK_RV C_UnwrapKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hUnwrappingKey,
                  CK_BYTE_PTR pWrappedKey, CK_ULONG ulWrappedKeyLen, CK_ATTRIBUTE_PTR pTemplate,
                  CK_ULONG ulAttributeCount, CK_OBJECT_HANDLE_PTR phKey) {
        return p11_enter_refuse(CKR_FUNCTION_NOT_SUPPORTED);
}

CK_RV C_DeriveKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hBaseKey,
                  CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulAttributeCount, CK_OBJECT_HANDLE_PTR phKey) {
        return p11_enter_refuse(CKR_FUNCTION_NOT_SUPPORTED);
}

/* ---- 3.0 message-based functions ---- */

CK_RV C_MessageEncryptInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey) {
        return p11_enter_refuse(CKR_FUNCTION_NOT_SUPPORTED);
}

CK_RV C_EncryptMessage(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen,
                       CK_BYTE_PTR pAssociatedData, CK_ULONG ulAssociatedDataLen, CK_BYTE_PTR pPlaintext,
                       CK_ULONG ulPlaintextLen, CK_BYTE_PTR pCiphertext, CK_ULONG_PTR pulCiphertextLen) {
        return p11_enter_refuse(CKR_FUNCTION_NOT_SUPPORTED);
}

CK_RV C_EncryptMessageBegin(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen,
                            CK_BYTE_PTR pAssociatedData, CK_ULONG ulAssociatedDataLen) {
        return p11_enter_refuse(CKR_FUNCTION_NOT_SUPPORTED);
}

CK_RV C_EncryptMessageNext(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen,
                           CK_BYTE_PTR pPlaintextPart, CK_ULONG ulPlaintextPartLen,
                           CK_BYTE_PTR pCiphertextPart, CK_ULONG_PTR pulCiphertextPartLen, CK_FLAGS flags) {
        return p11_enter_refuse(CKR_FUNCTION_NOT_SUPPORTED);
}

CK_RV C_MessageEncryptFinal(CK_SESSION_HANDLE hSession) {
        return p11_enter_refuse(CKR_FUNCTION_NOT_SUPPORTED);
}

CK_RV C_MessageDecryptInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey) {
        return p11_enter_refuse(CKR_FUNCTION_NOT_SUPPORTED);
}

CK_RV C_DecryptMessage(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen,
                       CK_BYTE_PTR pAssociatedData, CK_ULONG ulAssociatedDataLen, CK_BYTE_PTR pCiphertext,
                       CK_ULONG ulCiphertextLen, CK_BYTE_PTR pPlaintext, CK_ULONG_PTR pulPlaintextLen) {
        return p11_enter_refuse(CKR_FUNCTION_NOT_SUPPORTED);
}

CK_RV C_DecryptMessageBegin(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen,
                            CK_BYTE_PTR pAssociatedData, CK_ULONG ulAssociatedDataLen) {
        return p11_enter_refuse(CKR_FUNCTION_NOT_SUPPORTED);
}

CK_RV C_DecryptMessageNext(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen,
                           CK_BYTE_PTR pCiphertextPart, CK_ULONG ulCiphertextPartLen,
                           CK_BYTE_PTR pPlaintextPart, CK_ULONG_PTR pulPlaintextPartLen, CK_FLAGS flags) {
        return p11_enter_refuse(CKR_FUNCTION_NOT_SUPPORTED);
}

CK_RV C_MessageDecryptFinal(CK_SESSION_HANDLE hSession) {
        return p11_enter_refuse(CKR_FUNCTION_NOT_SUPPORTED);
}

CK_RV C_MessageSignInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey) {
        return p11_enter_refuse(CKR_FUNCTION_NOT_SUPPORTED);
}

CK_RV C_SignMessage(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen,
                    CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature,
                    CK_ULONG_PTR pulSignatureLen) {
        return p11_enter_refuse(CKR_FUNCTION_NOT_SUPPORTED);
}

CK_RV C_SignMessageBegin(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen) {
        return p11_enter_refuse(CKR_FUNCTION_NOT_SUPPORTED);
}

CK_RV C_SignMessageNext(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen,
                        CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature,
                        CK_ULONG_PTR pulSignatureLen) {
        return p11_enter_refuse(CKR_FUNCTION_NOT_SUPPORTED);
}

CK_RV C_MessageSignFinal(CK_SESSION_HANDLE hSession) {
        return p11_enter_refuse(CKR_FUNCTION_NOT_SUPPORTED);
}

CK_RV C_MessageVerifyInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey) {
        return p11_enter_refuse(CKR_FUNCTION_NOT_SUPPORTED);
}

CK_RV C_VerifyMessage(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen,
                      CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature,
                      CK_ULONG ulSignatureLen) {
        return p11_enter_refuse(CKR_FUNCTION_NOT_SUPPORTED);
}

CK_RV C_VerifyMessageBegin(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen) {
        return p11_enter_refuse(CKR_FUNCTION_NOT_SUPPORTED);
}

CK_RV C_VerifyMessageNext(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen,
                          CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature,
                          CK_ULONG ulSignatureLen) {
        return p11_enter_refuse(CKR_FUNCTION_NOT_SUPPORTED);
}

CK_RV C_MessageVerifyFinal(CK_SESSION_HANDLE hSession) {
        return p11_enter_refuse(CKR_FUNCTION_NOT_SUPPORTED);
}
