/* C_SignInit, C_Sign, C_SignUpdate, C_SignFinal: one round trip per signature, hashing done here. */
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "p11module/crypto.h"
#include "p11module/module.h"

CK_RV C_SignInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey) {
        struct p11_session *s;
        CK_RV rv = p11_session_acquire(hSession, &s);

        if (rv != CKR_OK)
                return rv;
        rv = p11_op_init(s, CKF_SIGN, pMechanism, hKey);
        p11_session_release(s);
        return rv;
}

/* Length query or short buffer: answered locally, and the operation stays active. */
static bool sign_length_only(const struct p11_op *op, CK_BYTE_PTR sig, CK_ULONG_PTR sig_len, CK_RV *rv) {
        if (!sig) {
                *sig_len = op->out_len;
                *rv = CKR_OK;
                return true;
        }
        if (*sig_len < op->out_len) {
                *sig_len = op->out_len;
                *rv = CKR_BUFFER_TOO_SMALL;
                return true;
        }
        return false;
}

/* Sends what the operation signs and ends with the signature in sig. */
static CK_RV sign_send(struct p11_session *s, const uint8_t *in, size_t in_len, CK_BYTE_PTR sig,
                       CK_ULONG_PTR sig_len) {
        size_t len = 0;
        CK_RV rv;

        rv = p11_op_call(s, &s->sign, RPC_CALL_SIGN, in, in_len, sig, *sig_len, &len);
        if (rv != CKR_OK)
                return rv;
        if (len != s->sign.out_len)
                return CKR_DEVICE_ERROR; /* a signature of the wrong size is no signature */
        *sig_len = len;
        return CKR_OK;
}

static CK_RV sign_one(struct p11_session *s, const uint8_t *data, size_t len, CK_BYTE_PTR sig,
                      CK_ULONG_PTR sig_len) {
        const struct p11_op *op = &s->sign;
        uint8_t buf[P11_DIGESTINFO_MAX];
        size_t buf_len;
        CK_RV rv;

        if (op->mech->hash == RPC_HASH_NONE) {
                rv = p11_mech_check_input(op->mech, &op->params, op->key_bytes, len);
                return rv != CKR_OK ? rv : sign_send(s, data, len, sig, sig_len);
        }
        rv = p11_md_update(s->md, data, len);
        if (rv == CKR_OK)
                rv = p11_hashed_input(s->md, op->mech, buf, &buf_len);
        return rv != CKR_OK ? rv : sign_send(s, buf, buf_len, sig, sig_len);
}

CK_RV C_Sign(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature,
             CK_ULONG_PTR pulSignatureLen) {
        struct p11_session *s;
        CK_RV rv = p11_session_acquire(hSession, &s);

        if (rv != CKR_OK)
                return rv;
        if (!s->sign.mech)
                rv = CKR_OPERATION_NOT_INITIALIZED;
        else if (!pulSignatureLen || (!pData && ulDataLen > 0))
                rv = CKR_ARGUMENTS_BAD;
        else if (s->sign.multipart)
                rv = CKR_OPERATION_ACTIVE; /* C_SignUpdate started a multi-part operation */
        else if (sign_length_only(&s->sign, pSignature, pulSignatureLen, &rv)) {
                p11_session_release(s);
                return rv;
        } else
                rv = sign_one(s, pData, ulDataLen, pSignature, pulSignatureLen);
        if (rv != CKR_OPERATION_NOT_INITIALIZED)
                p11_op_end(&s->sign);
        p11_session_release(s);
        return rv;
}

static CK_RV sign_collect(struct p11_session *s, const uint8_t *part, size_t len) {
        struct p11_op *op = &s->sign;

        if (op->mech->hash != RPC_HASH_NONE)
                return p11_md_update(s->md, part, len);
        if (len > RPC_DATA_MAX - op->buf_len)
                return CKR_DATA_LEN_RANGE;
        if (!s->buf)
                s->buf = malloc(RPC_DATA_MAX);
        if (!s->buf)
                return CKR_HOST_MEMORY;
        if (len)
                memcpy(s->buf + op->buf_len, part, len);
        op->buf_len += len;
        return CKR_OK;
}

CK_RV C_SignUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen) {
        struct p11_session *s;
        CK_RV rv = p11_session_acquire_op(hSession, CKF_SIGN, &s);

        if (rv != CKR_OK)
                return rv;
        rv = !pPart && ulPartLen > 0 ? CKR_ARGUMENTS_BAD : sign_collect(s, pPart, ulPartLen);
        if (rv == CKR_OK)
                s->sign.multipart = true;
        else
                p11_op_end(&s->sign);
        p11_session_release(s);
        return rv;
}

static CK_RV sign_final(struct p11_session *s, CK_BYTE_PTR sig, CK_ULONG_PTR sig_len) {
        const struct p11_op *op = &s->sign;
        uint8_t buf[P11_DIGESTINFO_MAX];
        size_t buf_len;
        CK_RV rv;

        if (op->mech->hash == RPC_HASH_NONE) {
                rv = p11_mech_check_input(op->mech, &op->params, op->key_bytes, op->buf_len);
                return rv != CKR_OK ? rv : sign_send(s, s->buf, op->buf_len, sig, sig_len);
        }
        rv = p11_hashed_input(s->md, op->mech, buf, &buf_len);
        return rv != CKR_OK ? rv : sign_send(s, buf, buf_len, sig, sig_len);
}

CK_RV C_SignFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen) {
        struct p11_session *s;
        CK_RV rv = p11_session_acquire_op(hSession, CKF_SIGN, &s);

        if (rv != CKR_OK)
                return rv;
        if (!pulSignatureLen)
                rv = CKR_ARGUMENTS_BAD;
        else if (sign_length_only(&s->sign, pSignature, pulSignatureLen, &rv)) {
                p11_session_release(s);
                return rv;
        } else
                rv = sign_final(s, pSignature, pulSignatureLen);
        p11_op_end(&s->sign);
        p11_session_release(s);
        return rv;
}

CK_RV C_SignRecoverInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey) {
        return p11_enter_refuse(CKR_FUNCTION_NOT_SUPPORTED);
}

CK_RV C_SignRecover(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
                    CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen) {
        return p11_enter_refuse(CKR_FUNCTION_NOT_SUPPORTED);
}
