/* Local verification with a key's public half: C_Verify* needs no round trip. */
#include <limits.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "common/cleanup-ssl.h"
#include "p11module/pubkey.h"

CK_RV p11_pubkey_parse(const uint8_t *spki, size_t len, EVP_PKEY **ret) {
        const unsigned char *p = spki;
        EVP_PKEY *k;

        if (!spki || len == 0 || len > LONG_MAX)
                return CKR_KEY_HANDLE_INVALID;
        ERR_set_mark();
        k = d2i_PUBKEY(NULL, &p, (long) len);
        ERR_pop_to_mark();
        if (!k)
                return CKR_KEY_HANDLE_INVALID;
        if (p != spki + len) { /* trailing bytes: not the SPKI we cached */
                EVP_PKEY_free(k);
                return CKR_KEY_HANDLE_INVALID;
        }
        *ret = k;
        return CKR_OK;
}

/* PKCS#1 v1.5: recover the signed block and compare it with what should have been signed. */
static CK_RV verify_rsa_pkcs(EVP_PKEY_CTX *ctx, size_t k, const uint8_t *in, size_t in_len,
                             const uint8_t *sig, size_t sig_len) {
        uint8_t out[RPC_SIG_MAX];
        size_t out_len = sizeof(out);

        if (k > sizeof(out))
                return CKR_FUNCTION_FAILED;
        if (EVP_PKEY_verify_recover_init(ctx) <= 0 ||
            EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) <= 0)
                return CKR_FUNCTION_FAILED;
        if (EVP_PKEY_verify_recover(ctx, out, &out_len, sig, sig_len) <= 0)
                return CKR_SIGNATURE_INVALID; /* bad padding */
        if (out_len != in_len || CRYPTO_memcmp(out, in, in_len) != 0)
                return CKR_SIGNATURE_INVALID;
        return CKR_OK;
}

static CK_RV verify_rsa_pss(EVP_PKEY_CTX *ctx, const struct p11_mech_params *p, const uint8_t *in,
                            size_t in_len, const uint8_t *sig, size_t sig_len) {
        const EVP_MD *md = p11_hash_md(p->hash), *mgf = p11_hash_md(p->mgf_hash);

        if (!md || !mgf || in_len != p11_hash_len(p->hash))
                return CKR_FUNCTION_FAILED;
        if (EVP_PKEY_verify_init(ctx) <= 0 ||
            EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) <= 0 ||
            EVP_PKEY_CTX_set_signature_md(ctx, md) <= 0 || EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, mgf) <= 0 ||
            EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, (int) p->salt_len) <= 0)
                return CKR_FUNCTION_FAILED;
        return EVP_PKEY_verify(ctx, sig, sig_len, in, in_len) == 1 ? CKR_OK : CKR_SIGNATURE_INVALID;
}

/* ECDSA: PKCS#11 signatures are r || s; OpenSSL verifies DER. */
static CK_RV verify_ecdsa(EVP_PKEY_CTX *ctx, const uint8_t *in, size_t in_len, const uint8_t *sig,
                          size_t sig_len) {
        _cleanup_(ECDSA_SIG_freep) ECDSA_SIG *es = ECDSA_SIG_new();
        _cleanup_(BN_freep) BIGNUM *r = NULL;
        _cleanup_(BN_freep) BIGNUM *s = NULL;
        unsigned char *der = NULL;
        size_t half = sig_len / 2;
        CK_RV rv;
        int der_len;

        if (!es)
                return CKR_HOST_MEMORY;
        r = BN_bin2bn(sig, (int) half, NULL);
        s = BN_bin2bn(sig + half, (int) half, NULL);
        if (!r || !s || ECDSA_SIG_set0(es, r, s) != 1)
                return CKR_HOST_MEMORY;
        r = s = NULL; /* owned by es now */
        der_len = i2d_ECDSA_SIG(es, &der);
        if (der_len <= 0)
                return CKR_HOST_MEMORY;
        if (EVP_PKEY_verify_init(ctx) <= 0)
                rv = CKR_FUNCTION_FAILED;
        else
                rv = EVP_PKEY_verify(ctx, der, (size_t) der_len, in, in_len) == 1 ? CKR_OK
                                                                                  : CKR_SIGNATURE_INVALID;
        OPENSSL_free(der);
        return rv;
}

static CK_RV verify_eddsa(EVP_PKEY *pkey, const uint8_t *in, size_t in_len, const uint8_t *sig,
                          size_t sig_len) {
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *md = EVP_MD_CTX_new();

        if (!md)
                return CKR_HOST_MEMORY;
        if (EVP_DigestVerifyInit(md, NULL, NULL, NULL, pkey) <= 0)
                return CKR_FUNCTION_FAILED;
        return EVP_DigestVerify(md, sig, sig_len, in, in_len) == 1 ? CKR_OK : CKR_SIGNATURE_INVALID;
}

static CK_RV verify(EVP_PKEY *pkey, enum rpc_mech wire, const struct p11_mech_params *p, size_t want_len,
                    const uint8_t *in, size_t in_len, const uint8_t *sig) {
        _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = NULL;

        if (wire == RPC_MECH_EDDSA)
                return verify_eddsa(pkey, in, in_len, sig, want_len);
        ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
        if (!ctx)
                return CKR_HOST_MEMORY;
        switch (wire) {
        case RPC_MECH_RSA_PKCS: return verify_rsa_pkcs(ctx, want_len, in, in_len, sig, want_len);
        case RPC_MECH_RSA_PSS: return verify_rsa_pss(ctx, p, in, in_len, sig, want_len);
        case RPC_MECH_ECDSA: return verify_ecdsa(ctx, in, in_len, sig, want_len);
        default: return CKR_FUNCTION_FAILED;
        }
}

CK_RV p11_pubkey_verify(EVP_PKEY *pkey, enum rpc_mech wire, const struct p11_mech_params *p, size_t want_len,
                        const uint8_t *in, size_t in_len, const uint8_t *sig, size_t sig_len) {
        CK_RV rv;

        if (!pkey || !p || (!in && in_len > 0) || want_len == 0 || want_len > RPC_SIG_MAX ||
            (wire == RPC_MECH_ECDSA && want_len % 2 != 0))
                return CKR_FUNCTION_FAILED;
        if (!sig || sig_len != want_len)
                return CKR_SIGNATURE_LEN_RANGE;
        ERR_set_mark();
        rv = verify(pkey, wire, p, want_len, in ? in : (const uint8_t *) "", in_len, sig);
        ERR_pop_to_mark();
        return rv;
}
