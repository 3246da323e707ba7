/* C_DecryptInit, C_Decrypt: RSA PKCS#1 v1.5 and OAEP, single-part, one round trip. */
#include <string.h>

#include "common/secret.h"
#include "p11module/crypto.h"
#include "p11module/module.h"

CK_RV C_DecryptInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey) {
        struct p11_session *s;
        CK_RV rv = p11_session_acquire(hSession, &s);

        if (rv != CKR_OK)
                return rv;
        rv = p11_op_init(s, CKF_DECRYPT, pMechanism, hKey);
        p11_session_release(s);
        return rv;
}

/* The largest plaintext the padding allows: the answer to a length query. */
static size_t plaintext_max(const struct p11_op *op) {
        size_t overhead = op->mech->wire == RPC_MECH_RSA_OAEP ? 2 * p11_hash_len(op->params.hash) + 2 : 11;

        return op->key_bytes > overhead ? op->key_bytes - overhead : 0;
}

/* CKR_BUFFER_TOO_SMALL keeps the operation (the caller asks again with the size we give). */
static CK_RV decrypt_one(struct p11_session *s, const uint8_t *in, size_t in_len, CK_BYTE_PTR out,
                         CK_ULONG_PTR out_len) {
        uint8_t plain[RPC_SIG_MAX];
        size_t len = 0;
        CK_RV rv;

        rv = p11_op_call(s, &s->decrypt, RPC_CALL_DECRYPT, in, in_len, plain, sizeof(plain), &len);
        if (rv == CKR_OK && *out_len < len)
                rv = CKR_BUFFER_TOO_SMALL;
        else if (rv == CKR_OK && len)
                memcpy(out, plain, len);
        if (rv == CKR_OK || rv == CKR_BUFFER_TOO_SMALL)
                *out_len = len;
        secret_wipe(plain, sizeof(plain));
        return rv;
}

CK_RV C_Decrypt(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedData, CK_ULONG ulEncryptedDataLen,
                CK_BYTE_PTR pData, CK_ULONG_PTR pulDataLen) {
        struct p11_session *s;
        CK_RV rv = p11_session_acquire_op(hSession, CKF_DECRYPT, &s);

        if (rv != CKR_OK)
                return rv;
        if (!pulDataLen || (!pEncryptedData && ulEncryptedDataLen > 0))
                rv = CKR_ARGUMENTS_BAD;
        else if (ulEncryptedDataLen != s->decrypt.key_bytes)
                rv = CKR_ENCRYPTED_DATA_LEN_RANGE;
        else if (!pData) {
                *pulDataLen = plaintext_max(&s->decrypt);
                p11_session_release(s);
                return CKR_OK;
        } else
                rv = decrypt_one(s, pEncryptedData, ulEncryptedDataLen, pData, pulDataLen);
        if (rv != CKR_BUFFER_TOO_SMALL)
                p11_op_end(&s->decrypt);
        p11_session_release(s);
        return rv;
}

/* RSA decryption is single-part (PKCS#11 mechanism table). */
CK_RV C_DecryptUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedPart, CK_ULONG ulEncryptedPartLen,
                      CK_BYTE_PTR pPart, CK_ULONG_PTR pulPartLen) {
        return p11_enter_refuse(CKR_FUNCTION_NOT_SUPPORTED);
}

CK_RV C_DecryptFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pLastPart, CK_ULONG_PTR pulLastPartLen) {
        return p11_enter_refuse(CKR_FUNCTION_NOT_SUPPORTED);
}
