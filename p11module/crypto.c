/* What C_SignInit/C_DecryptInit and C_Sign/C_Decrypt share: key checks, operation set-up, the round trip. */
#include <errno.h>
#include <string.h>

#include <openssl/err.h>

#include "common/secret.h"
#include "p11module/crypto.h"
#include "p11module/debug.h"
#include "p11module/login.h"
#include "p11module/module.h"
#include "p11module/remote.h"
#include "p11module/tokens.h"

struct key_facts {
        uint32_t key_id;
        enum rpc_key_type type;
        size_t key_bytes;
        size_t sig_len;
        bool prev;
};

struct key_facts_args {
        uint32_t key_id;
        struct key_facts *ret;
};

static CK_RV key_facts_locked(const struct p11_token *t, void *userdata) {
        struct key_facts_args *a = userdata;
        const struct p11_key *k;

        if (!t->logged_in)
                return CKR_USER_NOT_LOGGED_IN;
        k = p11_objects_find_key(t->objects, a->key_id);
        if (k) {
                *a->ret = (struct key_facts){ k->id, k->type, k->key_bytes, k->sig_len, false };
                return CKR_OK;
        }
        /* a handle found before the last key change, of a key the new version does not have */
        k = t->prev_objects && t->prev_logged_in ? p11_objects_find_key(t->prev_objects, a->key_id) : NULL;
        if (!k)
                return CKR_KEY_HANDLE_INVALID;
        *a->ret = (struct key_facts){ k->id, k->type, k->key_bytes, k->sig_len, true };
        return CKR_OK;
}

static CK_RV key_facts(uint32_t slot, CK_OBJECT_HANDLE h, struct key_facts *ret) {
        struct p11_handle p;
        CK_RV rv;

        if (p11_handle_parse(h, &p) < 0 || p.kind == P11_OBJ_CERT || !p11_handle_in_slot(&p, slot))
                return CKR_KEY_HANDLE_INVALID;
        rv = p11_tokens_with_objects(slot, key_facts_locked, &(struct key_facts_args){ p.key_id, ret },
                                     CKR_KEY_HANDLE_INVALID);
        if (rv == CKR_OK && p.kind == P11_OBJ_PUBLIC)
                return CKR_KEY_FUNCTION_NOT_PERMITTED;
        return rv;
}

CK_RV p11_md_start(EVP_MD_CTX **md, enum rpc_hash h) {
        int ok;

        if (h == RPC_HASH_NONE)
                return CKR_OK;
        ERR_set_mark();
        if (!*md)
                *md = EVP_MD_CTX_new();
        ok = *md && EVP_DigestInit_ex(*md, p11_hash_md(h), NULL) > 0;
        ERR_pop_to_mark();
        return ok ? CKR_OK : CKR_HOST_MEMORY;
}

CK_RV p11_md_update(EVP_MD_CTX *md, const uint8_t *data, size_t len) {
        int ok;

        if (len == 0)
                return CKR_OK;
        ERR_set_mark();
        ok = EVP_DigestUpdate(md, data, len) > 0;
        ERR_pop_to_mark();
        return ok ? CKR_OK : CKR_FUNCTION_FAILED;
}

CK_RV p11_md_final(EVP_MD_CTX *md, uint8_t out[static EVP_MAX_MD_SIZE], size_t *ret_len) {
        unsigned len = 0;
        int ok;

        ERR_set_mark();
        ok = EVP_DigestFinal_ex(md, out, &len) > 0;
        ERR_pop_to_mark();
        if (!ok)
                return CKR_FUNCTION_FAILED;
        *ret_len = len;
        return CKR_OK;
}

CK_RV p11_hashed_input(EVP_MD_CTX *md, const struct p11_mech *m, uint8_t buf[static P11_DIGESTINFO_MAX],
                       size_t *ret_len) {
        uint8_t d[EVP_MAX_MD_SIZE];
        size_t d_len = 0;
        CK_RV rv;
        int r;

        rv = p11_md_final(md, d, &d_len);
        if (rv != CKR_OK)
                return rv;
        if (m->wire != RPC_MECH_RSA_PKCS) {
                memcpy(buf, d, d_len);
                *ret_len = d_len;
                return CKR_OK;
        }
        r = p11_digestinfo_build(m->hash, d, d_len, buf, P11_DIGESTINFO_MAX);
        if (r < 0)
                return CKR_FUNCTION_FAILED;
        *ret_len = (size_t) r;
        return CKR_OK;
}

CK_RV p11_op_init(struct p11_session *s, CK_FLAGS op, const CK_MECHANISM *mech, CK_OBJECT_HANDLE key) {
        struct p11_op *o = op == CKF_SIGN ? &s->sign : &s->decrypt;
        const struct p11_mech *m;
        struct key_facts k = {};
        CK_RV rv;

        if (o->mech)
                return CKR_OPERATION_ACTIVE;
        if (!mech)
                return CKR_ARGUMENTS_BAD;
        m = p11_mech_find(mech->mechanism);
        if (!m || !(m->flags & op))
                return CKR_MECHANISM_INVALID;
        rv = key_facts(s->slot, key, &k);
        if (rv != CKR_OK)
                return rv;
        if (k.type != m->key_type)
                return CKR_KEY_TYPE_INCONSISTENT;
        rv = p11_mech_params_check(m, mech, op, k.key_bytes, &o->params);
        if (rv == CKR_OK && op == CKF_SIGN)
                rv = p11_md_start(&s->md, m->hash);
        if (rv != CKR_OK) {
                p11_op_end(o);
                return rv;
        }
        o->mech = m;
        o->op = op;
        o->key_id = k.key_id;
        o->prev = k.prev;
        o->key_bytes = k.key_bytes;
        o->out_len = op == CKF_SIGN ? k.sig_len : k.key_bytes;
        p11_debug(P11_DEBUG_SIGN, "session %lu: %s init, mechanism 0x%lx, key %u", s->handle,
                  op == CKF_SIGN ? "sign" : "decrypt", m->type, o->key_id);
        return CKR_OK;
}

static void request_fill(const struct p11_session *s, const struct p11_op *op, const uint8_t *in,
                         size_t in_len, struct rpc_crypto_req *req) {
        enum rpc_mech wire = p11_mech_wire(op->mech, op->op);

        *req = (struct rpc_crypto_req){
                .slot = s->slot,
                .key_id = op->key_id,
                .mech = wire,
                .data = { in, in_len },
        };
        if (wire == RPC_MECH_RSA_PSS || wire == RPC_MECH_RSA_OAEP) {
                req->hash = op->params.hash;
                req->mgf_hash = op->params.mgf_hash;
                req->salt_len = op->params.salt_len;
                req->oaep_label = (struct rpc_slice){ op->params.label, op->params.label_len };
        }
}

/* Wire errors as the decrypt functions must name them. */
static CK_RV decrypt_rv(CK_RV rv) {
        if (rv == CKR_DATA_LEN_RANGE)
                return CKR_ENCRYPTED_DATA_LEN_RANGE;
        if (rv == CKR_DATA_INVALID)
                return CKR_ENCRYPTED_DATA_INVALID;
        return rv;
}

/* A key of the token's previous version answers with that version's ticket or not at all (no re-login:
 * a LOGIN reaches the current version). Once the version is gone, so is the handle: -ENOKEY
 * (CKR_KEY_HANDLE_INVALID). */
static int prev_call(const struct p11_session *s, const struct p11_op *op, enum rpc_call call,
                     struct rpc_crypto_req *req, uint8_t *out, size_t size) {
        uint8_t ticket[RPC_TICKET_LEN];
        int r = p11_tokens_prev_ticket(s->slot, ticket);

        if (r == 0) {
                req->ticket = (struct rpc_slice){ ticket, sizeof(ticket) };
                r = p11_remote_crypto(call, req, out, size);
                req->ticket = (struct rpc_slice){};
        }
        secret_wipe(ticket, sizeof(ticket));
        if (r == -EPERM || r == p11_remote_errno(RPC_STATUS_NOT_LOGGED_IN) ||
            r == p11_remote_errno(RPC_STATUS_NO_SUCH_KEY) ||
            r == p11_remote_errno(RPC_STATUS_NO_SUCH_TOKEN)) {
                p11_tokens_forget_prev(s->slot);
                p11_debug(P11_DEBUG_SIGN, "session %lu: key %u of the previous version is gone", s->handle,
                          op->key_id);
                return -ENOKEY;
        }
        return r;
}

CK_RV p11_op_call(const struct p11_session *s, const struct p11_op *op, enum rpc_call call,
                  const uint8_t *in, size_t in_len, uint8_t *out, size_t size, size_t *ret_len) {
        uint8_t ticket[RPC_TICKET_LEN];
        struct rpc_crypto_req req;
        uint64_t seq = 0;
        int r;

        request_fill(s, op, in, in_len, &req);
        if (op->prev)
                r = prev_call(s, op, call, &req, out, size);
        else
                r = p11_login_ticket(s->slot, ticket, &seq);
        if (r == 0 && !op->prev) {
                req.ticket = (struct rpc_slice){ ticket, sizeof(ticket) };
                r = p11_remote_crypto(call, &req, out, size);
                if (r == p11_remote_errno(RPC_STATUS_NOT_LOGGED_IN)) {
                        r = p11_login_renew(s->slot, seq, ticket);
                        if (r >= 0)
                                r = p11_remote_crypto(call, &req, out, size);
                }
        }
        secret_wipe(ticket, sizeof(ticket));
        if (!op->prev && r == p11_remote_errno(RPC_STATUS_NO_SUCH_KEY))
                p11_tokens_forget_objects(s->slot); /* keys replaced: read them again on next use */
        p11_debug(P11_DEBUG_SIGN, "session %lu: %s: %s", s->handle, rpc_call_to_string(call),
                  r < 0 ? strerror(-r) : "ok");
        if (r < 0)
                return call == RPC_CALL_DECRYPT ? decrypt_rv(p11_ckr(r)) : p11_ckr(r);
        *ret_len = (size_t) r;
        return CKR_OK;
}
