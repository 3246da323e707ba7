/* C_VerifyInit, C_Verify, C_VerifyUpdate, C_VerifyFinal: local, with the public half of a token's key
 * (the SPKI the module caches), for every signing mechanism. No round trip, no login needed for a
 * public-key handle; a private-key handle (what pkcs11-tool --verify may pass) verifies with its
 * public half, and is visible only after C_Login like any private key. */
#include <stdlib.h>
#include <string.h>

#include "p11module/crypto.h"
#include "p11module/debug.h"
#include "p11module/module.h"
#include "p11module/pubkey.h"
#include "p11module/tokens.h"

struct verify_key {
        enum rpc_key_type type;
        uint32_t key_id;
        size_t key_bytes;
        size_t sig_len;
        size_t spki_len;
        uint8_t spki[RPC_SPKI_MAX];
};

struct verify_key_args {
        CK_OBJECT_HANDLE h;
        struct verify_key *ret;
};

static CK_RV verify_key_locked(const struct p11_token *t, void *userdata) {
        struct verify_key_args *a = userdata;
        struct verify_key *ret = a->ret;
        struct p11_obj o;

        if (p11_obj_resolve(t->objects, t->slot, a->h, t->logged_in, &o) < 0 || o.kind == P11_OBJ_CERT ||
            o.key->spki.len > sizeof(ret->spki))
                return CKR_KEY_HANDLE_INVALID;
        ret->type = o.key->type;
        ret->key_id = o.key->id;
        ret->key_bytes = o.key->key_bytes;
        ret->sig_len = o.key->sig_len;
        ret->spki_len = o.key->spki.len;
        memcpy(ret->spki, o.key->spki.ptr, o.key->spki.len);
        return CKR_OK;
}

static CK_RV verify_key_find(uint32_t slot, CK_OBJECT_HANDLE h, struct verify_key *ret) {
        struct p11_handle p;

        if (p11_handle_parse(h, &p) < 0 || p.kind == P11_OBJ_CERT || !p11_handle_in_slot(&p, slot))
                return CKR_KEY_HANDLE_INVALID;
        return p11_tokens_with_objects(slot, verify_key_locked, &(struct verify_key_args){ h, ret },
                                       CKR_KEY_HANDLE_INVALID);
}

static CK_RV verify_init(struct p11_session *s, const CK_MECHANISM *mech, CK_OBJECT_HANDLE h) {
        struct p11_op *o = &s->verify;
        const struct p11_mech *m = p11_mech_find(mech->mechanism);
        struct verify_key k;
        CK_RV rv;

        if (!m || !(m->flags & CKF_SIGN))
                return CKR_MECHANISM_INVALID;
        rv = verify_key_find(s->slot, h, &k);
        if (rv != CKR_OK)
                return rv;
        if (k.type != m->key_type)
                return CKR_KEY_TYPE_INCONSISTENT;
        rv = p11_mech_params_check(m, mech, CKF_SIGN, k.key_bytes, &o->params);
        if (rv == CKR_OK)
                rv = p11_md_start(&s->verify_md, m->hash);
        if (rv == CKR_OK)
                rv = p11_pubkey_parse(k.spki, k.spki_len, &s->verify_key);
        if (rv != CKR_OK) {
                p11_verify_end(s);
                return rv;
        }
        o->mech = m;
        o->op = CKF_VERIFY;
        o->key_id = k.key_id;
        o->key_bytes = k.key_bytes;
        o->out_len = k.sig_len;
        p11_debug(P11_DEBUG_SIGN, "session %lu: verify init, mechanism 0x%lx, key %u", s->handle, m->type,
                  o->key_id);
        return CKR_OK;
}

CK_RV C_VerifyInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey) {
        struct p11_session *s;
        CK_RV rv = p11_session_acquire(hSession, &s);

        if (rv != CKR_OK)
                return rv;
        if (s->verify.mech)
                rv = CKR_OPERATION_ACTIVE;
        else if (!pMechanism)
                rv = CKR_ARGUMENTS_BAD;
        else
                rv = verify_init(s, pMechanism, hKey);
        p11_session_release(s);
        return rv;
}

/* Checks sig over the operation's input: data for raw mechanisms, the digest state for hashed ones. */
static CK_RV verify_check(struct p11_session *s, const uint8_t *data, size_t len, const uint8_t *sig,
                          size_t sig_len) {
        const struct p11_op *op = &s->verify;
        uint8_t buf[P11_DIGESTINFO_MAX];
        size_t buf_len = 0;
        CK_RV rv;

        if (sig_len != op->out_len)
                return CKR_SIGNATURE_LEN_RANGE;
        if (op->mech->hash == RPC_HASH_NONE) {
                rv = p11_mech_check_input(op->mech, &op->params, op->key_bytes, len);
                if (rv != CKR_OK)
                        return rv;
                return p11_pubkey_verify(s->verify_key, op->mech->wire, &op->params, op->out_len, data, len,
                                         sig, sig_len);
        }
        rv = p11_md_update(s->verify_md, data, len);
        if (rv == CKR_OK)
                rv = p11_hashed_input(s->verify_md, op->mech, buf, &buf_len);
        if (rv != CKR_OK)
                return rv;
        return p11_pubkey_verify(s->verify_key, op->mech->wire, &op->params, op->out_len, buf, buf_len, sig,
                                 sig_len);
}

CK_RV C_Verify(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature,
               CK_ULONG ulSignatureLen) {
        struct p11_session *s;
        CK_RV rv = p11_session_acquire_op(hSession, CKF_VERIFY, &s);

        if (rv != CKR_OK)
                return rv;
        if ((!pData && ulDataLen > 0) || !pSignature)
                rv = CKR_ARGUMENTS_BAD;
        else if (s->verify.multipart)
                rv = CKR_OPERATION_ACTIVE; /* C_VerifyUpdate started a multi-part operation */
        else
                rv = verify_check(s, pData, ulDataLen, pSignature, ulSignatureLen);
        p11_debug(P11_DEBUG_SIGN, "session %lu: verify: 0x%lx", s->handle, rv);
        p11_verify_end(s); /* C_Verify always ends the operation */
        p11_session_release(s);
        return rv;
}

static CK_RV verify_collect(struct p11_session *s, const uint8_t *part, size_t len) {
        struct p11_op *op = &s->verify;

        if (op->mech->hash != RPC_HASH_NONE)
                return p11_md_update(s->verify_md, part, len);
        if (len > RPC_DATA_MAX - op->buf_len)
                return CKR_DATA_LEN_RANGE;
        if (!s->verify_buf)
                s->verify_buf = malloc(RPC_DATA_MAX);
        if (!s->verify_buf)
                return CKR_HOST_MEMORY;
        if (len)
                memcpy(s->verify_buf + op->buf_len, part, len);
        op->buf_len += len;
        return CKR_OK;
}

CK_RV C_VerifyUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen) {
        struct p11_session *s;
        CK_RV rv = p11_session_acquire_op(hSession, CKF_VERIFY, &s);

        if (rv != CKR_OK)
                return rv;
        rv = !pPart && ulPartLen > 0 ? CKR_ARGUMENTS_BAD : verify_collect(s, pPart, ulPartLen);
        if (rv == CKR_OK)
                s->verify.multipart = true;
        else
                p11_verify_end(s);
        p11_session_release(s);
        return rv;
}

CK_RV C_VerifyFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen) {
        struct p11_session *s;
        CK_RV rv = p11_session_acquire_op(hSession, CKF_VERIFY, &s);

        if (rv != CKR_OK)
                return rv;
        if (!pSignature)
                rv = CKR_ARGUMENTS_BAD;
        else
                rv = verify_check(s, s->verify_buf, s->verify.buf_len, pSignature, ulSignatureLen);
        p11_debug(P11_DEBUG_SIGN, "session %lu: verify final: 0x%lx", s->handle, rv);
        p11_verify_end(s);
        p11_session_release(s);
        return rv;
}
