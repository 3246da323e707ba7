/* The mechanism table and the pure helpers around it: parameters, input checks, DigestInfo. */
#include <errno.h>
#include <string.h>

#include "common/rpc-crypto.h"
#include "p11module/mech.h"

#define SIGN CKF_SIGN
#define DEC  CKF_DECRYPT

static const struct p11_mech mechs[] = {
        { CKM_RSA_PKCS, RPC_KEY_RSA, RPC_MECH_RSA_PKCS, RPC_HASH_NONE, SIGN | DEC },
        { CKM_RSA_PKCS_PSS, RPC_KEY_RSA, RPC_MECH_RSA_PSS, RPC_HASH_NONE, SIGN },
        { CKM_RSA_PKCS_OAEP, RPC_KEY_RSA, RPC_MECH_RSA_OAEP, RPC_HASH_NONE, DEC },
        { CKM_SHA1_RSA_PKCS, RPC_KEY_RSA, RPC_MECH_RSA_PKCS, RPC_HASH_SHA1, SIGN },
        { CKM_SHA224_RSA_PKCS, RPC_KEY_RSA, RPC_MECH_RSA_PKCS, RPC_HASH_SHA224, SIGN },
        { CKM_SHA256_RSA_PKCS, RPC_KEY_RSA, RPC_MECH_RSA_PKCS, RPC_HASH_SHA256, SIGN },
        { CKM_SHA384_RSA_PKCS, RPC_KEY_RSA, RPC_MECH_RSA_PKCS, RPC_HASH_SHA384, SIGN },
        { CKM_SHA512_RSA_PKCS, RPC_KEY_RSA, RPC_MECH_RSA_PKCS, RPC_HASH_SHA512, SIGN },
        { CKM_SHA1_RSA_PKCS_PSS, RPC_KEY_RSA, RPC_MECH_RSA_PSS, RPC_HASH_SHA1, SIGN },
        { CKM_SHA224_RSA_PKCS_PSS, RPC_KEY_RSA, RPC_MECH_RSA_PSS, RPC_HASH_SHA224, SIGN },
        { CKM_SHA256_RSA_PKCS_PSS, RPC_KEY_RSA, RPC_MECH_RSA_PSS, RPC_HASH_SHA256, SIGN },
        { CKM_SHA384_RSA_PKCS_PSS, RPC_KEY_RSA, RPC_MECH_RSA_PSS, RPC_HASH_SHA384, SIGN },
        { CKM_SHA512_RSA_PKCS_PSS, RPC_KEY_RSA, RPC_MECH_RSA_PSS, RPC_HASH_SHA512, SIGN },
        { CKM_ECDSA, RPC_KEY_EC, RPC_MECH_ECDSA, RPC_HASH_NONE, SIGN },
        { CKM_ECDSA_SHA1, RPC_KEY_EC, RPC_MECH_ECDSA, RPC_HASH_SHA1, SIGN },
        { CKM_ECDSA_SHA224, RPC_KEY_EC, RPC_MECH_ECDSA, RPC_HASH_SHA224, SIGN },
        { CKM_ECDSA_SHA256, RPC_KEY_EC, RPC_MECH_ECDSA, RPC_HASH_SHA256, SIGN },
        { CKM_ECDSA_SHA384, RPC_KEY_EC, RPC_MECH_ECDSA, RPC_HASH_SHA384, SIGN },
        { CKM_ECDSA_SHA512, RPC_KEY_EC, RPC_MECH_ECDSA, RPC_HASH_SHA512, SIGN },
        { CKM_EDDSA, RPC_KEY_ED25519, RPC_MECH_EDDSA, RPC_HASH_NONE, SIGN },
};

/* Key sizes in bits, as C_GetMechanismInfo reports them. */
static const struct {
        CK_ULONG min, max;
} key_sizes[_RPC_KEY_MAX] = {
        [RPC_KEY_RSA] = { 2048, 4096 },
        [RPC_KEY_EC] = { 256, 521 },
        [RPC_KEY_ED25519] = { 255, 255 },
};

static const struct {
        CK_MECHANISM_TYPE ckm;
        CK_RSA_PKCS_MGF_TYPE mgf;
        size_t len;
        uint8_t prefix[19];
        size_t prefix_len;
} hashes[_RPC_HASH_MAX] = {
        [RPC_HASH_SHA1] = { CKM_SHA_1,
                            CKG_MGF1_SHA1,
                            20,
                            { 0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00,
                              0x04, 0x14 },
                            15 },
        [RPC_HASH_SHA224] = { CKM_SHA224,
                              CKG_MGF1_SHA224,
                              28,
                              { 0x30, 0x2d, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04,
                                0x02, 0x04, 0x05, 0x00, 0x04, 0x1c },
                              19 },
        [RPC_HASH_SHA256] = { CKM_SHA256,
                              CKG_MGF1_SHA256,
                              32,
                              { 0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04,
                                0x02, 0x01, 0x05, 0x00, 0x04, 0x20 },
                              19 },
        [RPC_HASH_SHA384] = { CKM_SHA384,
                              CKG_MGF1_SHA384,
                              48,
                              { 0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04,
                                0x02, 0x02, 0x05, 0x00, 0x04, 0x30 },
                              19 },
        [RPC_HASH_SHA512] = { CKM_SHA512,
                              CKG_MGF1_SHA512,
                              64,
                              { 0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04,
                                0x02, 0x03, 0x05, 0x00, 0x04, 0x40 },
                              19 },
};

size_t p11_mech_count(void) {
        return ELEMENTSOF(mechs);
}

const struct p11_mech *p11_mech_at(size_t i) {
        return i < ELEMENTSOF(mechs) ? &mechs[i] : NULL;
}

const struct p11_mech *p11_mech_find(CK_MECHANISM_TYPE type) {
        for (size_t i = 0; i < ELEMENTSOF(mechs); i++)
                if (mechs[i].type == type)
                        return &mechs[i];
        return NULL;
}

enum rpc_hash p11_digest_mech_hash(CK_MECHANISM_TYPE type) {
        return p11_hash_from_ckm(type);
}

static void mech_info_fill(const struct p11_mech *m, CK_ULONG min, CK_ULONG max, CK_MECHANISM_INFO *ret) {
        *ret = (CK_MECHANISM_INFO){
                .ulMinKeySize = min,
                .ulMaxKeySize = max,
                .flags = CKF_HW | m->flags | (m->flags & CKF_SIGN ? CKF_VERIFY : 0),
        };
        if (m->key_type == RPC_KEY_EC)
                ret->flags |= CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS;
}

/* Digests run in the module, in software: no CKF_HW, no key. */
static bool digest_info(CK_MECHANISM_TYPE type, CK_MECHANISM_INFO *ret) {
        if (p11_digest_mech_hash(type) == RPC_HASH_NONE)
                return false;
        *ret = (CK_MECHANISM_INFO){ .flags = CKF_DIGEST };
        return true;
}

CK_RV p11_mech_info(CK_MECHANISM_TYPE type, CK_MECHANISM_INFO *ret) {
        const struct p11_mech *m = p11_mech_find(type);

        if (digest_info(type, ret))
                return CKR_OK;
        if (!m)
                return CKR_MECHANISM_INVALID;
        mech_info_fill(m, key_sizes[m->key_type].min, key_sizes[m->key_type].max, ret);
        return CKR_OK;
}

void p11_mech_keys_add(struct p11_mech_keys *k, enum rpc_key_type t, uint32_t bits) {
        if (t <= RPC_KEY_NONE || t >= _RPC_KEY_MAX || bits == 0)
                return;
        if (k->min_bits[t] == 0 || bits < k->min_bits[t])
                k->min_bits[t] = bits;
        if (bits > k->max_bits[t])
                k->max_bits[t] = bits;
}

size_t p11_mech_list(const struct p11_mech_keys *k, CK_MECHANISM_TYPE *out, size_t max) {
        size_t n = 0;

        for (int h = RPC_HASH_SHA1; h < _RPC_HASH_MAX; h++, n++)
                if (n < max)
                        out[n] = hashes[h].ckm;
        for (size_t i = 0; i < ELEMENTSOF(mechs); i++)
                if (k->min_bits[mechs[i].key_type] > 0) {
                        if (n < max)
                                out[n] = mechs[i].type;
                        n++;
                }
        return n;
}

CK_RV p11_mech_info_keys(const struct p11_mech_keys *k, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO *ret) {
        const struct p11_mech *m = p11_mech_find(type);

        if (digest_info(type, ret))
                return CKR_OK;
        if (!m || k->min_bits[m->key_type] == 0)
                return CKR_MECHANISM_INVALID;
        mech_info_fill(m, k->min_bits[m->key_type], k->max_bits[m->key_type], ret);
        return CKR_OK;
}

size_t p11_mech_for_key(enum rpc_key_type t, CK_FLAGS op, CK_MECHANISM_TYPE *out, size_t max) {
        size_t n = 0;

        for (size_t i = 0; i < ELEMENTSOF(mechs); i++)
                if (mechs[i].key_type == t && (mechs[i].flags & op) && n < max)
                        out[n++] = mechs[i].type;
        return n;
}

enum rpc_mech p11_mech_wire(const struct p11_mech *m, CK_FLAGS op) {
        if (op == CKF_DECRYPT && m->type == CKM_RSA_PKCS)
                return RPC_MECH_RSA_PKCS_DEC;
        return m->wire;
}

const EVP_MD *p11_hash_md(enum rpc_hash h) {
        return rpc_hash_md(h);
}

size_t p11_hash_len(enum rpc_hash h) {
        return h > RPC_HASH_NONE && h < _RPC_HASH_MAX ? hashes[h].len : 0;
}

enum rpc_hash p11_hash_from_ckm(CK_MECHANISM_TYPE ckm) {
        for (int h = RPC_HASH_SHA1; h < _RPC_HASH_MAX; h++)
                if (hashes[h].ckm == ckm)
                        return (enum rpc_hash) h;
        return RPC_HASH_NONE;
}

enum rpc_hash p11_hash_from_mgf(CK_RSA_PKCS_MGF_TYPE mgf) {
        for (int h = RPC_HASH_SHA1; h < _RPC_HASH_MAX; h++)
                if (hashes[h].mgf == mgf)
                        return (enum rpc_hash) h;
        return RPC_HASH_NONE;
}

int p11_digestinfo_build(enum rpc_hash h, const uint8_t *digest, size_t len, uint8_t *out, size_t size) {
        size_t n;

        if (h <= RPC_HASH_NONE || h >= _RPC_HASH_MAX || !digest || len != hashes[h].len)
                return -EINVAL;
        n = hashes[h].prefix_len + len;
        if (n > size)
                return -ENOBUFS;
        memcpy(out, hashes[h].prefix, hashes[h].prefix_len);
        memcpy(out + hashes[h].prefix_len, digest, len);
        return (int) n;
}

static bool params_empty(const CK_MECHANISM *mech) {
        return mech->ulParameterLen == 0;
}

static CK_RV pss_params(const struct p11_mech *m, const CK_MECHANISM *mech, size_t key_bytes,
                        struct p11_mech_params *p) {
        const CK_RSA_PKCS_PSS_PARAMS *pss = mech->pParameter;
        size_t hlen;

        if (!pss || mech->ulParameterLen != sizeof(*pss))
                return CKR_MECHANISM_PARAM_INVALID;
        p->hash = p11_hash_from_ckm(pss->hashAlg);
        p->mgf_hash = p11_hash_from_mgf(pss->mgf);
        if (p->hash == RPC_HASH_NONE || p->mgf_hash == RPC_HASH_NONE)
                return CKR_MECHANISM_PARAM_INVALID;
        if (m->hash != RPC_HASH_NONE && m->hash != p->hash)
                return CKR_MECHANISM_PARAM_INVALID;
        hlen = p11_hash_len(p->hash);
        /* emLen >= hLen + sLen + 2, with emLen = k for the key sizes we support */
        if (key_bytes < hlen + 2 || pss->sLen > key_bytes - hlen - 2)
                return CKR_MECHANISM_PARAM_INVALID;
        p->salt_len = (uint32_t) pss->sLen;
        return CKR_OK;
}

static CK_RV oaep_params(const CK_MECHANISM *mech, size_t key_bytes, struct p11_mech_params *p) {
        const CK_RSA_PKCS_OAEP_PARAMS *oaep = mech->pParameter;

        if (!oaep || mech->ulParameterLen != sizeof(*oaep))
                return CKR_MECHANISM_PARAM_INVALID;
        p->hash = p11_hash_from_ckm(oaep->hashAlg);
        p->mgf_hash = p11_hash_from_mgf(oaep->mgf);
        if (p->hash == RPC_HASH_NONE || p->mgf_hash == RPC_HASH_NONE)
                return CKR_MECHANISM_PARAM_INVALID;
        if (key_bytes < 2 * p11_hash_len(p->hash) + 2)
                return CKR_MECHANISM_PARAM_INVALID;
        if (oaep->source != CKZ_DATA_SPECIFIED && !(oaep->source == 0 && oaep->ulSourceDataLen == 0))
                return CKR_MECHANISM_PARAM_INVALID;
        if (oaep->ulSourceDataLen > sizeof(p->label) || (oaep->ulSourceDataLen > 0 && !oaep->pSourceData))
                return CKR_MECHANISM_PARAM_INVALID;
        p->label_len = oaep->ulSourceDataLen;
        if (p->label_len)
                memcpy(p->label, oaep->pSourceData, p->label_len);
        return CKR_OK;
}

static CK_RV eddsa_params(const CK_MECHANISM *mech) {
        const CK_EDDSA_PARAMS *ed = mech->pParameter;

        if (params_empty(mech))
                return CKR_OK;
        /* Ed25519 pure only: no pre-hash, no context. */
        if (!ed || mech->ulParameterLen != sizeof(*ed) || ed->phFlag || ed->ulContextDataLen != 0)
                return CKR_MECHANISM_PARAM_INVALID;
        return CKR_OK;
}

CK_RV p11_mech_params_check(const struct p11_mech *m, const CK_MECHANISM *mech, CK_FLAGS op,
                            size_t key_bytes, struct p11_mech_params *ret) {
        if (!m || !mech || !ret)
                return CKR_ARGUMENTS_BAD;
        ret->hash = m->hash;
        ret->mgf_hash = RPC_HASH_NONE;
        ret->salt_len = 0;
        ret->label_len = 0;
        if (m->wire == RPC_MECH_RSA_PSS)
                return pss_params(m, mech, key_bytes, ret);
        if (m->wire == RPC_MECH_RSA_OAEP)
                return op == CKF_DECRYPT ? oaep_params(mech, key_bytes, ret) : CKR_MECHANISM_INVALID;
        if (m->wire == RPC_MECH_EDDSA)
                return eddsa_params(mech);
        return params_empty(mech) ? CKR_OK : CKR_MECHANISM_PARAM_INVALID;
}

CK_RV p11_mech_check_input(const struct p11_mech *m, const struct p11_mech_params *p, size_t key_bytes,
                           size_t len) {
        if (m->hash != RPC_HASH_NONE)
                return CKR_OK; /* hashed here: any length, any number of parts */
        switch (m->wire) {
        case RPC_MECH_RSA_PKCS:
                return key_bytes >= 11 && len <= key_bytes - 11 ? CKR_OK : CKR_DATA_LEN_RANGE;
        case RPC_MECH_RSA_PSS: return len == p11_hash_len(p->hash) ? CKR_OK : CKR_DATA_LEN_RANGE;
        case RPC_MECH_ECDSA: return len > 0 && len <= RPC_DATA_MAX ? CKR_OK : CKR_DATA_LEN_RANGE;
        case RPC_MECH_EDDSA: return len <= RPC_DATA_MAX ? CKR_OK : CKR_DATA_LEN_RANGE;
        default: return CKR_DATA_LEN_RANGE;
        }
}
