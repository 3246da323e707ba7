/* Test keys for the enclave-token tests: the committed keys and certificates in tests/data. */
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
#include "tests/lib/data.h"

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

static inline void test_key_done(struct test_key *k) {
        EVP_PKEY_free(k->pkey);
        X509_free(k->cert);
        free(k->key_pem);
        free(k->chain_pem);
        memset(k, 0, sizeof(*k));
}

/* The committed key tests/data/<name>.key.pem with its certificate <name>.crt.pem (see
 * tests/data/README): "rsa2048", "ec-p256", "chain-leaf", "x25519", ... Nothing is generated. */
static inline bool test_key_load(const char *name, struct test_key *ret) {
        char key_rel[64], crt_rel[64];
        BIO *kb = NULL, *cb = NULL;
        bool ok = false;

        memset(ret, 0, sizeof(*ret));
        if (snprintf(key_rel, sizeof(key_rel), "%s.key.pem", name) >= (int) sizeof(key_rel) ||
            snprintf(crt_rel, sizeof(crt_rel), "%s.crt.pem", name) >= (int) sizeof(crt_rel))
                return false;
        ret->key_pem = test_data_load(key_rel, &ret->key_pem_len);
        ret->chain_pem = test_data_load(crt_rel, &ret->chain_pem_len);
        if (!ret->key_pem || !ret->chain_pem)
                goto out;
        kb = BIO_new_mem_buf(ret->key_pem, (int) ret->key_pem_len);
        cb = BIO_new_mem_buf(ret->chain_pem, (int) ret->chain_pem_len);
        if (!kb || !cb)
                goto out;
        ret->pkey = PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL);
        ret->cert = PEM_read_bio_X509(cb, NULL, NULL, NULL);
        ok = ret->pkey && ret->cert;
out:
        BIO_free(kb);
        BIO_free(cb);
        if (!ok) {
                printf("# cannot load the test key '%s'\n", name);
                test_key_done(ret);
        }
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
