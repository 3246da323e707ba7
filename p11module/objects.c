/* Object handles and attribute answers over the cached public objects (pure: no locks, no I/O). */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "p11module/mech.h"
#include "p11module/objects.h"

/*
 * Handle layout (64-bit CK_ULONG): bits 0-3 certificate index, 4-7 kind, 8-23 key id, 24-54 slot id.
 * Slot ids are 31-bit, so a handle is never 0 (CK_INVALID_HANDLE) and never has the top bit set.
 */
#if ULONG_MAX > 0xffffffffUL
#define HANDLE_HAS_SLOT 1
#else
#define HANDLE_HAS_SLOT 0
#endif

CK_OBJECT_HANDLE p11_handle_make(uint32_t slot, uint32_t key_id, enum p11_obj_kind kind, unsigned cert) {
        CK_OBJECT_HANDLE h =
                ((CK_OBJECT_HANDLE) (key_id & 0xffff) << 8) | ((CK_OBJECT_HANDLE) kind << 4) | (cert & 0xf);
#if HANDLE_HAS_SLOT
        h |= (CK_OBJECT_HANDLE) (slot & 0x7fffffff) << 24;
#endif
        return h;
}

int p11_handle_parse(CK_OBJECT_HANDLE h, struct p11_handle *ret) {
        struct p11_handle p = {
                .key_id = (uint32_t) ((h >> 8) & 0xffff),
                .kind = (enum p11_obj_kind)((h >> 4) & 0xf),
                .cert = (unsigned) (h & 0xf),
        };

#if HANDLE_HAS_SLOT
        if (h >> 55)
                return -EINVAL;
        p.slot = (uint32_t) (h >> 24);
#else
        if (h >> 24)
                return -EINVAL;
#endif
        if (p.kind < P11_OBJ_PRIVATE || p.kind > P11_OBJ_CERT || p.cert >= RPC_MAX_CERTS ||
            (p.kind != P11_OBJ_CERT && p.cert != 0))
                return -EINVAL;
        *ret = p;
        return 0;
}

bool p11_handle_in_slot(const struct p11_handle *p, uint32_t slot) {
        return !HANDLE_HAS_SLOT || p->slot == (slot & 0x7fffffff);
}

int p11_obj_resolve(const struct p11_objects *o, uint32_t slot, CK_OBJECT_HANDLE h, bool logged_in,
                    struct p11_obj *ret) {
        struct p11_handle p;
        const struct p11_key *k;

        if (p11_handle_parse(h, &p) < 0)
                return -ENOENT;
        if (!p11_handle_in_slot(&p, slot))
                return -ENOENT;
        k = p11_objects_find_key(o, p.key_id);
        if (!k)
                return -ENOENT;
        if (p.kind == P11_OBJ_PRIVATE && !logged_in)
                return -ENOENT;
        if (p.kind == P11_OBJ_CERT && p.cert >= k->n_certs)
                return -ENOENT;
        *ret = (struct p11_obj){ k, p.kind, p.cert };
        return 0;
}

static int attr_ul(struct p11_attr *a, CK_ULONG v) {
        a->ul = v;
        a->ptr = &a->ul;
        a->len = sizeof(a->ul);
        return 0;
}

static int attr_bool(struct p11_attr *a, bool v) {
        a->b = v ? CK_TRUE : CK_FALSE;
        a->ptr = &a->b;
        a->len = sizeof(a->b);
        return 0;
}

static int attr_bytes(struct p11_attr *a, const void *p, size_t len) {
        a->ptr = p;
        a->len = len;
        return 0;
}

static int attr_blob(struct p11_attr *a, const struct p11_blob *b) {
        return attr_bytes(a, b->ptr, b->len);
}

static CK_KEY_TYPE ck_key_type(enum rpc_key_type t) {
        switch (t) {
        case RPC_KEY_RSA: return CKK_RSA;
        case RPC_KEY_EC: return CKK_EC;
        default: return CKK_EC_EDWARDS;
        }
}

static CK_OBJECT_CLASS ck_class(enum p11_obj_kind kind) {
        return kind == P11_OBJ_PRIVATE  ? CKO_PRIVATE_KEY
               : kind == P11_OBJ_PUBLIC ? CKO_PUBLIC_KEY
                                        : CKO_CERTIFICATE;
}

static int common_attr(const struct p11_obj *o, CK_ATTRIBUTE_TYPE t, struct p11_attr *a) {
        const struct p11_key *k = o->key;

        switch (t) {
        case CKA_CLASS: return attr_ul(a, ck_class(o->kind));
        case CKA_TOKEN: return attr_bool(a, true);
        case CKA_PRIVATE: return attr_bool(a, o->kind == P11_OBJ_PRIVATE);
        case CKA_MODIFIABLE:
        case CKA_COPYABLE:
        case CKA_DESTROYABLE: return attr_bool(a, false);
        case CKA_LABEL:
                if (o->kind == P11_OBJ_CERT)
                        return attr_bytes(a, k->certs[o->cert].label, k->certs[o->cert].label_len);
                return attr_bytes(a, k->label, k->label_len);
        default: return -ENOENT;
        }
}

static int key_public_attr(const struct p11_key *k, CK_ATTRIBUTE_TYPE t, struct p11_attr *a) {
        if (k->type == RPC_KEY_RSA) {
                switch (t) {
                case CKA_MODULUS: return attr_blob(a, &k->modulus);
                case CKA_PUBLIC_EXPONENT: return attr_blob(a, &k->exponent);
                case CKA_MODULUS_BITS: return attr_ul(a, k->bits);
                }
                return -ENOENT;
        }
        switch (t) {
        case CKA_EC_PARAMS: return attr_blob(a, &k->ec_params);
        case CKA_EC_POINT: return attr_blob(a, &k->ec_point);
        }
        return -ENOENT;
}

static int key_attr(const struct p11_obj *o, CK_ATTRIBUTE_TYPE t, struct p11_attr *a) {
        const struct p11_key *k = o->key;
        const CK_FLAGS op = CKF_SIGN | CKF_DECRYPT;

        switch (t) {
        case CKA_KEY_TYPE: return attr_ul(a, ck_key_type(k->type));
        case CKA_ID: return attr_bytes(a, k->ckid, k->ckid_len);
        case CKA_START_DATE:
        case CKA_END_DATE: return attr_bytes(a, "", 0);
        case CKA_DERIVE:
        case CKA_LOCAL: return attr_bool(a, false);
        case CKA_KEY_GEN_MECHANISM: return attr_ul(a, CK_UNAVAILABLE_INFORMATION);
        case CKA_ALLOWED_MECHANISMS:
                return attr_bytes(a, a->mechs,
                                  p11_mech_for_key(k->type, op, a->mechs, ELEMENTSOF(a->mechs)) *
                                          sizeof(a->mechs[0]));
        case CKA_SUBJECT:
                if (k->n_certs == 0)
                        return attr_bytes(a, "", 0);
                return attr_blob(a, &k->certs[0].subject);
        case CKA_PUBLIC_KEY_INFO: return attr_blob(a, &k->spki);
        }
        return key_public_attr(k, t, a);
}

static int private_attr(const struct p11_key *k, CK_ATTRIBUTE_TYPE t, struct p11_attr *a) {
        switch (t) {
        case CKA_SENSITIVE:
        case CKA_SIGN:
        case CKA_ALWAYS_SENSITIVE:
        case CKA_NEVER_EXTRACTABLE: return attr_bool(a, true);
        case CKA_DECRYPT: return attr_bool(a, k->type == RPC_KEY_RSA);
        case CKA_SIGN_RECOVER:
        case CKA_UNWRAP:
        case CKA_EXTRACTABLE:
        case CKA_WRAP_WITH_TRUSTED:
        case CKA_ALWAYS_AUTHENTICATE: return attr_bool(a, false);
        case CKA_PRIVATE_EXPONENT:
        case CKA_PRIME_1:
        case CKA_PRIME_2:
        case CKA_EXPONENT_1:
        case CKA_EXPONENT_2:
        case CKA_COEFFICIENT: return k->type == RPC_KEY_RSA ? -EPERM : -ENOENT;
        case CKA_VALUE: return k->type != RPC_KEY_RSA ? -EPERM : -ENOENT;
        }
        return -ENOENT;
}

static int public_attr(const struct p11_key *k, CK_ATTRIBUTE_TYPE t, struct p11_attr *a) {
        switch (t) {
        case CKA_ENCRYPT: return attr_bool(a, k->type == RPC_KEY_RSA);
        case CKA_VERIFY: return attr_bool(a, true);
        case CKA_VERIFY_RECOVER:
        case CKA_WRAP:
        case CKA_TRUSTED: return attr_bool(a, false);
        }
        return -ENOENT;
}

static int cert_attr(const struct p11_obj *o, CK_ATTRIBUTE_TYPE t, struct p11_attr *a) {
        const struct p11_cert *c = &o->key->certs[o->cert];

        switch (t) {
        case CKA_CERTIFICATE_TYPE: return attr_ul(a, CKC_X_509);
        case CKA_TRUSTED: return attr_bool(a, false);
        case CKA_CERTIFICATE_CATEGORY:
                return attr_ul(a, o->cert == 0 ? 1 /* token user */ : 2 /* authority */);
        case CKA_CHECK_VALUE: return attr_bytes(a, c->check_value, sizeof(c->check_value));
        case CKA_START_DATE:
        case CKA_END_DATE:
        case CKA_URL:
        case CKA_HASH_OF_SUBJECT_PUBLIC_KEY:
        case CKA_HASH_OF_ISSUER_PUBLIC_KEY: return attr_bytes(a, "", 0);
        case CKA_SUBJECT: return attr_blob(a, &c->subject);
        case CKA_ID: return attr_blob(a, &c->id);
        case CKA_ISSUER: return attr_blob(a, &c->issuer);
        case CKA_SERIAL_NUMBER: return attr_blob(a, &c->serial);
        case CKA_VALUE: return attr_blob(a, &c->der);
        case CKA_PUBLIC_KEY_INFO: return attr_blob(a, &c->spki);
        case CKA_JAVA_MIDP_SECURITY_DOMAIN: return attr_ul(a, 0);
        case CKA_NAME_HASH_ALGORITHM: return attr_ul(a, CKM_SHA_1);
        }
        return -ENOENT;
}

int p11_obj_attr(const struct p11_obj *o, CK_ATTRIBUTE_TYPE t, struct p11_attr *ret) {
        int r;

        if (!o || !o->key || !ret)
                return -EINVAL;
        r = common_attr(o, t, ret);
        if (r != -ENOENT)
                return r;
        if (o->kind == P11_OBJ_CERT)
                return cert_attr(o, t, ret);
        r = o->kind == P11_OBJ_PRIVATE ? private_attr(o->key, t, ret) : public_attr(o->key, t, ret);
        if (r != -ENOENT)
                return r;
        return key_attr(o, t, ret);
}

static CK_RV get_one(const struct p11_obj *o, CK_ATTRIBUTE *t) {
        struct p11_attr a = {};
        int r;

        r = p11_obj_attr(o, t->type, &a);
        if (r < 0) {
                t->ulValueLen = CK_UNAVAILABLE_INFORMATION;
                return r == -EPERM ? CKR_ATTRIBUTE_SENSITIVE : CKR_ATTRIBUTE_TYPE_INVALID;
        }
        if (!t->pValue) {
                t->ulValueLen = a.len;
                return CKR_OK;
        }
        if (t->ulValueLen < a.len) {
                t->ulValueLen = CK_UNAVAILABLE_INFORMATION;
                return CKR_BUFFER_TOO_SMALL;
        }
        if (a.len)
                memcpy(t->pValue, a.ptr, a.len);
        t->ulValueLen = a.len;
        return CKR_OK;
}

CK_RV p11_obj_get_attributes(const struct p11_obj *o, CK_ATTRIBUTE *tmpl, CK_ULONG n) {
        CK_RV rv = CKR_OK;

        for (CK_ULONG i = 0; i < n; i++) {
                CK_RV one = get_one(o, &tmpl[i]);

                /* Every attribute is processed; the first problem is what the call returns. */
                if (one != CKR_OK && rv == CKR_OK)
                        rv = one;
        }
        return rv;
}

bool p11_obj_match(const struct p11_obj *o, const CK_ATTRIBUTE *tmpl, CK_ULONG n) {
        for (CK_ULONG i = 0; i < n; i++) {
                struct p11_attr a = {};

                if (p11_obj_attr(o, tmpl[i].type, &a) < 0 || tmpl[i].ulValueLen != a.len)
                        return false;
                if (a.len && memcmp(tmpl[i].pValue, a.ptr, a.len) != 0)
                        return false;
        }
        return true;
}

static void find_add(const struct p11_obj *o, uint32_t slot, const CK_ATTRIBUTE *tmpl, CK_ULONG n,
                     CK_OBJECT_HANDLE *out, size_t max, size_t *count) {
        if (*count < max && p11_obj_match(o, tmpl, n))
                out[(*count)++] = p11_handle_make(slot, o->key->id, o->kind, o->cert);
}

size_t p11_objects_find(const struct p11_objects *o, uint32_t slot, bool logged_in, const CK_ATTRIBUTE *tmpl,
                        CK_ULONG n, CK_OBJECT_HANDLE *out, size_t max) {
        size_t count = 0;

        for (size_t i = 0; o && i < o->n_keys; i++) {
                const struct p11_key *k = &o->keys[i];

                if (logged_in)
                        find_add(&(struct p11_obj){ k, P11_OBJ_PRIVATE, 0 }, slot, tmpl, n, out, max,
                                 &count);
                find_add(&(struct p11_obj){ k, P11_OBJ_PUBLIC, 0 }, slot, tmpl, n, out, max, &count);
                for (unsigned c = 0; c < k->n_certs; c++)
                        find_add(&(struct p11_obj){ k, P11_OBJ_CERT, c }, slot, tmpl, n, out, max, &count);
        }
        return count;
}

CK_ULONG p11_obj_size(const struct p11_obj *o) {
        if (o->kind == P11_OBJ_CERT)
                return o->key->certs[o->cert].der.len;
        return o->key->spki.len + o->key->label_len;
}
