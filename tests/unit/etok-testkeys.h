/* Test keys for the enclave-token tests: generated in-process, with a self-signed leaf certificate. */
#pragma once

#include <stdbool.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "common/rpc-codec.h"

struct test_key {
        EVP_PKEY *pkey;
        X509 *cert;
        char *key_pem; /* PEM private key */
        size_t key_pem_len;
        char *chain_pem; /* leaf, then any extra certificates */
        size_t chain_pem_len;
};

static inline char *test_bio_to_string(BIO *bio, size_t *ret_len) {
        char *p = NULL, *s;
        long n = BIO_get_mem_data(bio, &p);

        s = malloc((size_t) n + 1);
        if (!s)
                return NULL;
        memcpy(s, p, (size_t) n);
        s[n] = '\0';
        *ret_len = (size_t) n;
        return s;
}

static inline X509 *test_cert_make(EVP_PKEY *pkey, EVP_PKEY *signer, const char *cn) {
        X509 *x = X509_new();
        X509_NAME *name;

        if (!x)
                return NULL;
        name = X509_get_subject_name(x);
        if (X509_set_version(x, 2) != 1 || ASN1_INTEGER_set(X509_get_serialNumber(x), 1) != 1 ||
            ASN1_TIME_set_string(X509_getm_notBefore(x), "20240101000000Z") != 1 ||
            ASN1_TIME_set_string(X509_getm_notAfter(x), "20340101000000Z") != 1 ||
            X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *) "enclave-acm tests",
                                       -1, -1, 0) != 1 ||
            X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *) cn, -1, -1, 0) !=
                    1 ||
            X509_set_issuer_name(x, name) != 1 || X509_set_pubkey(x, pkey) != 1 ||
            X509_sign(x, signer, EVP_PKEY_get_base_id(signer) == EVP_PKEY_ED25519 ? NULL : EVP_sha256()) <=
                    0) {
                X509_free(x);
                return NULL;
        }
        return x;
}

static inline EVP_PKEY *test_pkey_generate(const char *type) {
        if (strcmp(type, "rsa2048") == 0)
                return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) 2048);
        if (strcmp(type, "rsa1024") == 0)
                return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) 1024);
        if (strcmp(type, "ec256") == 0)
                return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        if (strcmp(type, "ec384") == 0)
                return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
        if (strcmp(type, "ec521") == 0)
                return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521");
        if (strcmp(type, "secp256k1") == 0)
                return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp256k1");
        if (strcmp(type, "ed25519") == 0)
                return EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        if (strcmp(type, "x25519") == 0)
                return EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
        return NULL;
}

static inline void test_key_done(struct test_key *k) {
        EVP_PKEY_free(k->pkey);
        X509_free(k->cert);
        free(k->key_pem);
        free(k->chain_pem);
        memset(k, 0, sizeof(*k));
}

/* A key of the given type (see test_pkey_generate()) with a self-signed certificate. */
static inline bool test_key_make(const char *type, const char *cn, struct test_key *ret) {
        BIO *kb = BIO_new(BIO_s_mem()), *cb = BIO_new(BIO_s_mem());
        EVP_PKEY *signer;
        bool ok = false;

        memset(ret, 0, sizeof(*ret));
        ret->pkey = test_pkey_generate(type);
        if (!ret->pkey || !kb || !cb)
                goto out;
        /* X25519 cannot sign: certify it with a throwaway Ed25519 key. */
        signer = strcmp(type, "x25519") == 0 ? test_pkey_generate("ed25519") : ret->pkey;
        ret->cert = test_cert_make(ret->pkey, signer, cn);
        if (signer != ret->pkey)
                EVP_PKEY_free(signer);
        if (!ret->cert || PEM_write_bio_PrivateKey(kb, ret->pkey, NULL, NULL, 0, NULL, NULL) != 1 ||
            PEM_write_bio_X509(cb, ret->cert) != 1)
                goto out;
        ret->key_pem = test_bio_to_string(kb, &ret->key_pem_len);
        ret->chain_pem = test_bio_to_string(cb, &ret->chain_pem_len);
        ok = ret->key_pem && ret->chain_pem;
out:
        BIO_free(kb);
        BIO_free(cb);
        if (!ok)
                test_key_done(ret);
        return ok;
}

/* Appends another certificate to k's chain PEM. */
static inline bool test_key_append_cert(struct test_key *k, X509 *extra) {
        BIO *b = BIO_new(BIO_s_mem());
        char *s;
        size_t n;
        bool ok = false;

        if (b && BIO_write(b, k->chain_pem, (int) k->chain_pem_len) > 0 &&
            PEM_write_bio_X509(b, extra) == 1 && (s = test_bio_to_string(b, &n))) {
                free(k->chain_pem);
                k->chain_pem = s;
                k->chain_pem_len = n;
                ok = true;
        }
        BIO_free(b);
        return ok;
}

/* SHA-256 of the key's DER SubjectPublicKeyInfo, as etok_slot_hash() takes it. */
static inline bool test_spki_digest(const struct test_key *k, uint8_t out[32]) {
        unsigned char *der = NULL;
        int len = i2d_PUBKEY(k->pkey, &der);
        bool ok = len > 0 && EVP_Digest(der, (size_t) len, out, NULL, EVP_sha256(), NULL) == 1;

        OPENSSL_free(der);
        return ok;
}

static inline struct rpc_add_key test_add_key(const struct test_key *k, uint32_t id, const char *label) {
        return (struct rpc_add_key){
                .id = id,
                .label = { (const uint8_t *) label, strlen(label) },
                .key_pem = { (const uint8_t *) k->key_pem, k->key_pem_len },
                .chain_pem = { (const uint8_t *) k->chain_pem, k->chain_pem_len },
        };
}

/* Verifies a wire signature (ECDSA r||s converted to DER first) with the certificate's key.
 * md: the digest the signed data was made with (NULL: raw / EdDSA). */
static inline bool test_verify(X509 *cert, uint32_t mech, const EVP_MD *md, uint32_t salt_len,
                               const uint8_t *data, size_t data_len, const uint8_t *sig, size_t sig_len) {
        EVP_PKEY *pub = X509_get0_pubkey(cert);
        EVP_PKEY_CTX *ctx = NULL;
        EVP_MD_CTX *mctx = NULL;
        uint8_t der[256], *p = der;
        bool ok = false;
        int n;

        if (mech == RPC_MECH_EDDSA) {
                mctx = EVP_MD_CTX_new();
                ok = mctx && EVP_DigestVerifyInit(mctx, NULL, NULL, NULL, pub) == 1 &&
                     EVP_DigestVerify(mctx, sig, sig_len, data, data_len) == 1;
                EVP_MD_CTX_free(mctx);
                if (!ok)
                        ERR_clear_error();
                return ok;
        }
        ctx = EVP_PKEY_CTX_new(pub, NULL);
        if (!ctx || EVP_PKEY_verify_init(ctx) != 1)
                goto out;
        if (mech == RPC_MECH_ECDSA) {
                ECDSA_SIG *es = ECDSA_SIG_new();
                BIGNUM *r = BN_bin2bn(sig, (int) sig_len / 2, NULL),
                       *s = BN_bin2bn(sig + sig_len / 2, (int) sig_len / 2, NULL);

                if (!es || !r || !s || ECDSA_SIG_set0(es, r, s) != 1) {
                        ECDSA_SIG_free(es);
                        BN_free(r);
                        BN_free(s);
                        goto out;
                }
                n = i2d_ECDSA_SIG(es, &p);
                ECDSA_SIG_free(es);
                ok = n > 0 && EVP_PKEY_verify(ctx, der, (size_t) n, data, data_len) == 1;
                goto out;
        }
        if (mech == RPC_MECH_RSA_PKCS) {
                ok = EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1 &&
                     EVP_PKEY_verify(ctx, sig, sig_len, data, data_len) == 1;
        } else if (mech == RPC_MECH_RSA_PSS) {
                ok = EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) == 1 &&
                     EVP_PKEY_CTX_set_signature_md(ctx, md) == 1 &&
                     EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md) == 1 &&
                     EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, (int) salt_len) == 1 &&
                     EVP_PKEY_verify(ctx, sig, sig_len, data, data_len) == 1;
        }
out:
        EVP_PKEY_CTX_free(ctx);
        if (!ok)
                ERR_clear_error(); /* a failed verification leaves its reasons in the queue */
        return ok;
}

/* Encrypts for an RSA certificate (PKCS#1 v1.5 when md is NULL, else OAEP with md/label). */
static inline bool test_encrypt(X509 *cert, const EVP_MD *md, const uint8_t *label, size_t label_len,
                                const uint8_t *msg, size_t msg_len, uint8_t *out, size_t *io_len) {
        EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(X509_get0_pubkey(cert), NULL);
        bool ok = ctx && EVP_PKEY_encrypt_init(ctx) == 1;

        if (ok && !md)
                ok = EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1;
        else if (ok) {
                ok = EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) == 1 &&
                     EVP_PKEY_CTX_set_rsa_oaep_md(ctx, md) == 1 &&
                     EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md) == 1;
                if (ok && label_len > 0)
                        ok = EVP_PKEY_CTX_set0_rsa_oaep_label(ctx, OPENSSL_memdup(label, label_len),
                                                              (int) label_len) == 1;
        }
        ok = ok && EVP_PKEY_encrypt(ctx, out, io_len, msg, msg_len) == 1;
        EVP_PKEY_CTX_free(ctx);
        return ok;
}
