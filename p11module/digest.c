/* C_DigestInit, C_Digest, C_DigestUpdate, C_DigestKey, C_DigestFinal: SHA-1 and SHA-2 in the module with
 * OpenSSL EVP, no round trip and no login (SunPKCS11 offers RSASSA-PSS only when the token lists the
 * digest of the PSS hash).
 *
 * C_DigestKey digests the value of a secret key (PKCS#11 3.0, 5.12). A token here holds no secret keys:
 * its private keys never leave the enclave and its public keys and certificates are not secret-key
 * objects, so any of our objects answers CKR_KEY_INDIGESTIBLE, which the standard names for a key the
 * token cannot digest, and the operation ends as after any failed digest call. */
#include <string.h>

#include "p11module/crypto.h"
#include "p11module/module.h"
#include "p11module/tokens.h"

CK_RV C_DigestInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism) {
        struct p11_session *s;
        enum rpc_hash h;
        CK_RV rv = p11_session_acquire(hSession, &s);

        if (rv != CKR_OK)
                return rv;
        if (s->digest.hash != RPC_HASH_NONE)
                rv = CKR_OPERATION_ACTIVE;
        else if (!pMechanism)
                rv = CKR_ARGUMENTS_BAD;
        else if ((h = p11_digest_mech_hash(pMechanism->mechanism)) == RPC_HASH_NONE)
                rv = CKR_MECHANISM_INVALID;
        else if (pMechanism->ulParameterLen != 0)
                rv = CKR_MECHANISM_PARAM_INVALID;
        else {
                rv = p11_md_start(&s->digest.md, h);
                if (rv == CKR_OK)
                        s->digest = (struct p11_digest_op){ .hash = h, .md = s->digest.md };
        }
        p11_session_release(s);
        return rv;
}

/* The two-call convention (PKCS#11 5.2): a NULL buffer asks for the length, a short one gets
 * CKR_BUFFER_TOO_SMALL; both leave the operation active. */
static bool digest_length_only(const struct p11_session *s, CK_BYTE_PTR out, CK_ULONG_PTR out_len,
                               CK_RV *rv) {
        CK_ULONG n = p11_hash_len(s->digest.hash);

        if (!out) {
                *out_len = n;
                *rv = CKR_OK;
                return true;
        }
        if (*out_len < n) {
                *out_len = n;
                *rv = CKR_BUFFER_TOO_SMALL;
                return true;
        }
        return false;
}

static CK_RV digest_finish(struct p11_session *s, CK_BYTE_PTR out, CK_ULONG_PTR out_len) {
        uint8_t d[EVP_MAX_MD_SIZE];
        size_t n = 0;
        CK_RV rv = p11_md_final(s->digest.md, d, &n);

        if (rv != CKR_OK)
                return rv;
        memcpy(out, d, n);
        *out_len = n;
        return CKR_OK;
}

CK_RV C_Digest(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pDigest,
               CK_ULONG_PTR pulDigestLen) {
        struct p11_session *s;
        CK_RV rv = p11_session_acquire_op(hSession, CKF_DIGEST, &s);

        if (rv != CKR_OK)
                return rv;
        if (!pulDigestLen || (!pData && ulDataLen > 0))
                rv = CKR_ARGUMENTS_BAD;
        else if (s->digest.multipart)
                rv = CKR_OPERATION_ACTIVE; /* C_DigestUpdate started a multi-part operation */
        else if (digest_length_only(s, pDigest, pulDigestLen, &rv)) {
                p11_session_release(s);
                return rv;
        } else {
                rv = p11_md_update(s->digest.md, pData, ulDataLen);
                if (rv == CKR_OK)
                        rv = digest_finish(s, pDigest, pulDigestLen);
        }
        p11_digest_end(s);
        p11_session_release(s);
        return rv;
}

CK_RV C_DigestUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen) {
        struct p11_session *s;
        CK_RV rv = p11_session_acquire_op(hSession, CKF_DIGEST, &s);

        if (rv != CKR_OK)
                return rv;
        rv = !pPart && ulPartLen > 0 ? CKR_ARGUMENTS_BAD : p11_md_update(s->digest.md, pPart, ulPartLen);
        if (rv == CKR_OK)
                s->digest.multipart = true;
        else
                p11_digest_end(s);
        p11_session_release(s);
        return rv;
}

/* CKR_KEY_INDIGESTIBLE for any object of the session's token that is a key, CKR_KEY_HANDLE_INVALID for
 * anything else (a certificate, a handle of another token, a private key before login). */
static CK_RV digest_key_locked(const struct p11_token *t, void *userdata) {
        CK_OBJECT_HANDLE h = *(const CK_OBJECT_HANDLE *) userdata;
        struct p11_obj o;

        if (p11_obj_resolve(t->objects, t->slot, h, t->logged_in, &o) == 0 && o.kind != P11_OBJ_CERT)
                return CKR_KEY_INDIGESTIBLE;
        return CKR_KEY_HANDLE_INVALID;
}

static CK_RV digest_key_check(const struct p11_session *s, CK_OBJECT_HANDLE h) {
        return p11_tokens_with_objects(s->slot, digest_key_locked, &h, CKR_KEY_HANDLE_INVALID);
}

CK_RV C_DigestKey(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hKey) {
        struct p11_session *s;
        CK_RV rv = p11_session_acquire_op(hSession, CKF_DIGEST, &s);

        if (rv != CKR_OK)
                return rv;
        rv = digest_key_check(s, hKey);
        p11_digest_end(s);
        p11_session_release(s);
        return rv;
}

CK_RV C_DigestFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pDigest, CK_ULONG_PTR pulDigestLen) {
        struct p11_session *s;
        CK_RV rv = p11_session_acquire_op(hSession, CKF_DIGEST, &s);

        if (rv != CKR_OK)
                return rv;
        if (!pulDigestLen)
                rv = CKR_ARGUMENTS_BAD;
        else if (digest_length_only(s, pDigest, pulDigestLen, &rv)) {
                p11_session_release(s);
                return rv;
        } else
                rv = digest_finish(s, pDigest, pulDigestLen);
        p11_digest_end(s);
        p11_session_release(s);
        return rv;
}
