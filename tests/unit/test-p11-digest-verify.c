/* p11module local crypto without a daemon: C_Digest* through the entry points (sessions open with the
 * daemon unreachable), the per-slot mechanism lists, and the public-key verification behind C_Verify*
 * with the keys of tests/data (signed here with OpenSSL, verified by the module's code; then broken). */
#include <stdlib.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "common/cleanup-ssl.h"
#include "p11module/interface.h"
#include "p11module/mech.h"
#include "p11module/pubkey.h"
#include "tests/lib/data.h"
#include "tests/lib/tap.h"

static void no_daemon(void) {
        (void) setenv("ENCLAVE_ACM_ADDRESS", "unix:path=/nonexistent/enclave-acm-test.sock", 1);
        (void) unsetenv("ENCLAVE_ACM_DEBUG");
}

/* FIPS 180-2 "abc" */
static const uint8_t sha1_abc[20] = { 0xa9, 0x99, 0x3e, 0x36, 0x47, 0x06, 0x81, 0x6a, 0xba, 0x3e,
                                      0x25, 0x71, 0x78, 0x50, 0xc2, 0x6c, 0x9c, 0xd0, 0xd8, 0x9d };
static const uint8_t sha256_abc[32] = { 0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
                                        0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
                                        0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad };

static void test_digest(void) {
        CK_MECHANISM sha256 = { CKM_SHA256, NULL, 0 }, sha1 = { CKM_SHA_1, NULL, 0 };
        CK_MECHANISM md5 = { CKM_MD5, NULL, 0 }, with_param = { CKM_SHA256, (CK_BYTE[1]){}, 1 };
        CK_BYTE out[64], data[] = "abc", big[3000];
        CK_SESSION_HANDLE h;
        CK_ULONG n;

        no_daemon();
        ASSERT_EQ(C_Initialize(NULL), CKR_OK);
        ASSERT_EQ(C_OpenSession(5, CKF_SERIAL_SESSION, NULL, NULL, &h), CKR_OK);

        /* not started */
        n = sizeof(out);
        ASSERT_EQ(C_Digest(h, data, 3, out, &n), CKR_OPERATION_NOT_INITIALIZED);
        ASSERT_EQ(C_DigestUpdate(h, data, 3), CKR_OPERATION_NOT_INITIALIZED);
        ASSERT_EQ(C_DigestFinal(h, out, &n), CKR_OPERATION_NOT_INITIALIZED);
        ASSERT_EQ(C_DigestKey(h, 1), CKR_OPERATION_NOT_INITIALIZED);
        ASSERT_EQ(C_DigestInit(h + 1000, &sha256), CKR_SESSION_HANDLE_INVALID);
        ASSERT_EQ(C_DigestInit(h, NULL), CKR_ARGUMENTS_BAD);
        ASSERT_EQ(C_DigestInit(h, &md5), CKR_MECHANISM_INVALID);
        ASSERT_EQ(C_DigestInit(h, &with_param), CKR_MECHANISM_PARAM_INVALID);
        n = sizeof(out);
        ASSERT_EQ(C_Digest(h, data, 3, out, &n), CKR_OPERATION_NOT_INITIALIZED);

        /* single part, the two-call convention */
        ASSERT_EQ(C_DigestInit(h, &sha256), CKR_OK);
        ASSERT_EQ(C_DigestInit(h, &sha1), CKR_OPERATION_ACTIVE);
        ASSERT_EQ(C_Digest(h, data, 3, NULL, &n), CKR_OK);
        ASSERT_EQ(n, 32);
        n = 31;
        ASSERT_EQ(C_Digest(h, data, 3, out, &n), CKR_BUFFER_TOO_SMALL);
        ASSERT_EQ(n, 32);
        n = sizeof(out);
        ASSERT_EQ(C_Digest(h, data, 3, out, &n), CKR_OK); /* still active after both */
        ASSERT_EQ(n, 32);
        ASSERT_MEMEQ(out, sha256_abc, 32);
        ASSERT_EQ(C_Digest(h, data, 3, out, &n), CKR_OPERATION_NOT_INITIALIZED); /* ended */

        /* multi part */
        ASSERT_EQ(C_DigestInit(h, &sha1), CKR_OK);
        ASSERT_EQ(C_DigestUpdate(h, data, 1), CKR_OK);
        ASSERT_EQ(C_DigestUpdate(h, NULL, 0), CKR_OK);
        ASSERT_EQ(C_DigestUpdate(h, data + 1, 2), CKR_OK);
        n = sizeof(out);
        ASSERT_EQ(C_Digest(h, data, 3, out, &n), CKR_OPERATION_ACTIVE); /* and that ends it */
        ASSERT_EQ(C_DigestFinal(h, out, &n), CKR_OPERATION_NOT_INITIALIZED);
        ASSERT_EQ(C_DigestInit(h, &sha1), CKR_OK);
        ASSERT_EQ(C_DigestUpdate(h, data, 3), CKR_OK);
        ASSERT_EQ(C_DigestFinal(h, NULL, NULL), CKR_ARGUMENTS_BAD); /* ends it */
        ASSERT_EQ(C_DigestUpdate(h, data, 3), CKR_OPERATION_NOT_INITIALIZED);
        ASSERT_EQ(C_DigestInit(h, &sha1), CKR_OK);
        ASSERT_EQ(C_DigestUpdate(h, data, 3), CKR_OK);
        ASSERT_EQ(C_DigestFinal(h, NULL, &n), CKR_OK);
        ASSERT_EQ(n, 20);
        n = 4;
        ASSERT_EQ(C_DigestFinal(h, out, &n), CKR_BUFFER_TOO_SMALL);
        ASSERT_EQ(n, 20);
        ASSERT_EQ(C_DigestFinal(h, out, &n), CKR_OK);
        ASSERT_EQ(n, 20);
        ASSERT_MEMEQ(out, sha1_abc, 20);

        /* every hash against OpenSSL, over more than one block, in odd parts */
        for (size_t i = 0; i < sizeof(big); i++)
                big[i] = (CK_BYTE) (i * 7 + 3);
        static const CK_MECHANISM_TYPE all[] = { CKM_SHA_1, CKM_SHA224, CKM_SHA256, CKM_SHA384, CKM_SHA512 };
        static const char *names[] = { "SHA1", "SHA224", "SHA256", "SHA384", "SHA512" };
        for (size_t i = 0; i < ELEMENTSOF(all); i++) {
                CK_MECHANISM m = { all[i], NULL, 0 };
                uint8_t want[EVP_MAX_MD_SIZE];
                unsigned want_len = 0;

                ASSERT_TRUE(
                        EVP_Digest(big, sizeof(big), want, &want_len, EVP_get_digestbyname(names[i]), NULL));
                ASSERT_EQ(C_DigestInit(h, &m), CKR_OK);
                ASSERT_EQ(C_DigestUpdate(h, big, 1), CKR_OK);
                ASSERT_EQ(C_DigestUpdate(h, big + 1, 1000), CKR_OK);
                ASSERT_EQ(C_DigestUpdate(h, big + 1001, sizeof(big) - 1001), CKR_OK);
                n = sizeof(out);
                ASSERT_EQ(C_DigestFinal(h, out, &n), CKR_OK);
                ASSERT_EQ(n, want_len);
                ASSERT_MEMEQ(out, want, want_len);
                ASSERT_EQ(C_DigestInit(h, &m), CKR_OK);
                n = sizeof(out);
                ASSERT_EQ(C_Digest(h, big, sizeof(big), out, &n), CKR_OK);
                ASSERT_MEMEQ(out, want, want_len);
        }

        /* C_SessionCancel ends a digest; a closed session has none */
        ASSERT_EQ(C_DigestInit(h, &sha256), CKR_OK);
        ASSERT_EQ(C_SessionCancel(h, CKF_DIGEST), CKR_OK);
        ASSERT_EQ(C_DigestUpdate(h, data, 3), CKR_OPERATION_NOT_INITIALIZED);
        ASSERT_EQ(C_DigestInit(h, &sha256), CKR_OK);
        ASSERT_EQ(C_CloseSession(h), CKR_OK);
        ASSERT_EQ(C_DigestUpdate(h, data, 3), CKR_SESSION_HANDLE_INVALID);
        ASSERT_EQ(C_Finalize(NULL), CKR_OK);
}

static void test_verify_no_daemon(void) {
        CK_MECHANISM m = { CKM_SHA256_RSA_PKCS, NULL, 0 };
        CK_BYTE sig[256] = {}, data[] = "abc";
        CK_SESSION_HANDLE h;

        no_daemon();
        ASSERT_EQ(C_Initialize(NULL), CKR_OK);
        ASSERT_EQ(C_OpenSession(5, CKF_SERIAL_SESSION, NULL, NULL, &h), CKR_OK);
        ASSERT_EQ(C_Verify(h, data, 3, sig, sizeof(sig)), CKR_OPERATION_NOT_INITIALIZED);
        ASSERT_EQ(C_VerifyUpdate(h, data, 3), CKR_OPERATION_NOT_INITIALIZED);
        ASSERT_EQ(C_VerifyFinal(h, sig, sizeof(sig)), CKR_OPERATION_NOT_INITIALIZED);
        ASSERT_EQ(C_VerifyInit(h, NULL, 1), CKR_ARGUMENTS_BAD);
        m.mechanism = CKM_RSA_PKCS_OAEP; /* decrypt only */
        ASSERT_EQ(C_VerifyInit(h, &m, 1), CKR_MECHANISM_INVALID);
        m.mechanism = CKM_SHA256;
        ASSERT_EQ(C_VerifyInit(h, &m, 1), CKR_MECHANISM_INVALID);
        m.mechanism = CKM_SHA256_RSA_PKCS;
        ASSERT_EQ(C_VerifyInit(h, &m, 0), CKR_KEY_HANDLE_INVALID);
        ASSERT_EQ(C_CloseSession(h), CKR_OK);
        ASSERT_EQ(C_Finalize(NULL), CKR_OK);
}

static void test_mech_lists(void) {
        struct p11_mech_keys none = {}, rsa = {}, ec = {}, ed = {}, mixed = {};
        CK_MECHANISM_TYPE v[64];
        CK_MECHANISM_INFO mi;
        size_t n;

        /* no keys: only the digests */
        ASSERT_EQ(p11_mech_list(&none, v, ELEMENTSOF(v)), 5);
        ASSERT_EQ(v[0], CKM_SHA_1);
        ASSERT_EQ(v[4], CKM_SHA512);
        ASSERT_EQ(p11_mech_info_keys(&none, CKM_SHA384, &mi), CKR_OK);
        ASSERT_EQ(mi.flags, CKF_DIGEST);
        ASSERT_EQ(p11_mech_info_keys(&none, CKM_RSA_PKCS, &mi), CKR_MECHANISM_INVALID);

        p11_mech_keys_add(&rsa, RPC_KEY_RSA, 3072);
        n = p11_mech_list(&rsa, v, ELEMENTSOF(v));
        ASSERT_EQ(n, 5 + 13); /* 12 signing mechanisms, OAEP */
        ASSERT_EQ(p11_mech_list(&rsa, NULL, 0), n);
        for (size_t i = 5; i < n; i++)
                ASSERT_EQ(p11_mech_find(v[i])->key_type, RPC_KEY_RSA);
        ASSERT_EQ(p11_mech_info_keys(&rsa, CKM_SHA256_RSA_PKCS_PSS, &mi), CKR_OK);
        ASSERT_EQ(mi.ulMinKeySize, 3072);
        ASSERT_EQ(mi.ulMaxKeySize, 3072);
        ASSERT_EQ(mi.flags, CKF_HW | CKF_SIGN | CKF_VERIFY);
        ASSERT_EQ(p11_mech_info_keys(&rsa, CKM_ECDSA, &mi), CKR_MECHANISM_INVALID);
        ASSERT_EQ(p11_mech_info_keys(&rsa, CKM_EDDSA, &mi), CKR_MECHANISM_INVALID);
        ASSERT_EQ(p11_mech_info_keys(&rsa, 0x80001234, &mi), CKR_MECHANISM_INVALID);

        p11_mech_keys_add(&ec, RPC_KEY_EC, 384);
        p11_mech_keys_add(&ec, RPC_KEY_EC, 256);
        ASSERT_EQ(p11_mech_list(&ec, v, ELEMENTSOF(v)), 5 + 6);
        ASSERT_EQ(p11_mech_info_keys(&ec, CKM_ECDSA_SHA256, &mi), CKR_OK);
        ASSERT_EQ(mi.ulMinKeySize, 256);
        ASSERT_EQ(mi.ulMaxKeySize, 384);
        ASSERT_TRUE(mi.flags & CKF_EC_NAMEDCURVE);
        ASSERT_EQ(p11_mech_info_keys(&ec, CKM_RSA_PKCS, &mi), CKR_MECHANISM_INVALID);

        p11_mech_keys_add(&ed, RPC_KEY_ED25519, 255);
        ASSERT_EQ(p11_mech_list(&ed, v, ELEMENTSOF(v)), 6);
        ASSERT_EQ(v[5], CKM_EDDSA);
        ASSERT_EQ(p11_mech_info_keys(&ed, CKM_SHA256_RSA_PKCS, &mi), CKR_MECHANISM_INVALID);

        p11_mech_keys_add(&mixed, RPC_KEY_RSA, 2048);
        p11_mech_keys_add(&mixed, RPC_KEY_RSA, 4096);
        p11_mech_keys_add(&mixed, RPC_KEY_ED25519, 255);
        p11_mech_keys_add(&mixed, RPC_KEY_NONE, 1); /* ignored */
        p11_mech_keys_add(&mixed, _RPC_KEY_MAX, 1); /* ignored */
        p11_mech_keys_add(&mixed, RPC_KEY_EC, 0);   /* ignored */
        ASSERT_EQ(p11_mech_list(&mixed, v, ELEMENTSOF(v)), 5 + 13 + 1);
        ASSERT_EQ(p11_mech_list(&mixed, v, 3), 5 + 13 + 1); /* the count, whatever fits */
        ASSERT_EQ(p11_mech_info_keys(&mixed, CKM_RSA_PKCS, &mi), CKR_OK);
        ASSERT_EQ(mi.ulMinKeySize, 2048);
        ASSERT_EQ(mi.ulMaxKeySize, 4096);
        ASSERT_EQ(mi.flags, CKF_HW | CKF_SIGN | CKF_VERIFY | CKF_DECRYPT);
        ASSERT_EQ(p11_mech_info_keys(&mixed, CKM_ECDSA, &mi), CKR_MECHANISM_INVALID);
}

/* ---- public-key verification with the keys of tests/data ---- */

static EVP_PKEY *load_key(const char *name, EVP_PKEY **ret_pub) {
        _cleanup_free_ char *pem = NULL;
        _cleanup_(BIO_free_allp) BIO *b = NULL;
        EVP_PKEY *k;
        unsigned char *der = NULL;
        size_t len = 0;
        int n;

        pem = test_data_load(name, &len);
        if (!pem)
                return NULL;
        b = BIO_new_mem_buf(pem, (int) len);
        k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
        if (!k)
                return NULL;
        n = i2d_PUBKEY(k, &der);
        if (n <= 0 || p11_pubkey_parse(der, (size_t) n, ret_pub) != CKR_OK) {
                OPENSSL_free(der);
                EVP_PKEY_free(k);
                return NULL;
        }
        OPENSSL_free(der);
        return k;
}

static size_t sign_raw(EVP_PKEY *k, int padding, const EVP_MD *md, int salt, const uint8_t *in,
                       size_t in_len, uint8_t *sig, size_t size) {
        _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, k, NULL);
        size_t n = size;

        if (!c || EVP_PKEY_sign_init(c) <= 0)
                return 0;
        if (padding && EVP_PKEY_CTX_set_rsa_padding(c, padding) <= 0)
                return 0;
        if (md && (EVP_PKEY_CTX_set_signature_md(c, md) <= 0 ||
                   (padding == RSA_PKCS1_PSS_PADDING && (EVP_PKEY_CTX_set_rsa_mgf1_md(c, md) <= 0 ||
                                                         EVP_PKEY_CTX_set_rsa_pss_saltlen(c, salt) <= 0))))
                return 0;
        return EVP_PKEY_sign(c, sig, &n, in, in_len) > 0 ? n : 0;
}

static void test_verify_rsa(void) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pub = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *k = load_key("rsa2048.key.pem", &pub);
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *other_pub = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *other = load_key("rsa3072.key.pem", &other_pub);
        struct p11_mech_params p = { .hash = RPC_HASH_SHA256, .mgf_hash = RPC_HASH_SHA256, .salt_len = 32 };
        uint8_t digest[32], di[P11_DIGESTINFO_MAX], sig[512];
        size_t sig_len;
        int di_len;

        ASSERT_TRUE(k && pub && other && other_pub);
        ASSERT_TRUE(EVP_Digest("abc", 3, digest, NULL, EVP_sha256(), NULL));
        di_len = p11_digestinfo_build(RPC_HASH_SHA256, digest, 32, di, sizeof(di));
        ASSERT_EQ(di_len, 51);

        /* PKCS#1 v1.5 over a DigestInfo */
        sig_len = sign_raw(k, RSA_PKCS1_PADDING, NULL, 0, di, (size_t) di_len, sig, sizeof(sig));
        ASSERT_EQ(sig_len, 256);
        ASSERT_EQ(p11_pubkey_verify(pub, RPC_MECH_RSA_PKCS, &p, 256, di, (size_t) di_len, sig, 256), CKR_OK);
        ASSERT_EQ(p11_pubkey_verify(pub, RPC_MECH_RSA_PKCS, &p, 256, di, (size_t) di_len - 1, sig, 256),
                  CKR_SIGNATURE_INVALID);
        di[40] ^= 1;
        ASSERT_EQ(p11_pubkey_verify(pub, RPC_MECH_RSA_PKCS, &p, 256, di, (size_t) di_len, sig, 256),
                  CKR_SIGNATURE_INVALID);
        di[40] ^= 1;
        ASSERT_EQ(p11_pubkey_verify(pub, RPC_MECH_RSA_PKCS, &p, 256, di, (size_t) di_len, sig, 255),
                  CKR_SIGNATURE_LEN_RANGE);
        ASSERT_EQ(p11_pubkey_verify(pub, RPC_MECH_RSA_PKCS, &p, 256, di, (size_t) di_len, sig, 257),
                  CKR_SIGNATURE_LEN_RANGE);
        ASSERT_EQ(p11_pubkey_verify(pub, RPC_MECH_RSA_PKCS, &p, 256, di, (size_t) di_len, NULL, 256),
                  CKR_SIGNATURE_LEN_RANGE);
        ASSERT_EQ(p11_pubkey_verify(other_pub, RPC_MECH_RSA_PKCS, &p, 384, di, (size_t) di_len, sig, 256),
                  CKR_SIGNATURE_LEN_RANGE);
        sig[100] ^= 0x40;
        ASSERT_EQ(p11_pubkey_verify(pub, RPC_MECH_RSA_PKCS, &p, 256, di, (size_t) di_len, sig, 256),
                  CKR_SIGNATURE_INVALID);
        memset(sig, 0xff, 256); /* larger than the modulus */
        ASSERT_EQ(p11_pubkey_verify(pub, RPC_MECH_RSA_PKCS, &p, 256, di, (size_t) di_len, sig, 256),
                  CKR_SIGNATURE_INVALID);

        /* PSS over the digest, salt 32 */
        sig_len = sign_raw(k, RSA_PKCS1_PSS_PADDING, EVP_sha256(), 32, digest, 32, sig, sizeof(sig));
        ASSERT_EQ(sig_len, 256);
        ASSERT_EQ(p11_pubkey_verify(pub, RPC_MECH_RSA_PSS, &p, 256, digest, 32, sig, 256), CKR_OK);
        p.salt_len = 20; /* another salt length than the signer's */
        ASSERT_EQ(p11_pubkey_verify(pub, RPC_MECH_RSA_PSS, &p, 256, digest, 32, sig, 256),
                  CKR_SIGNATURE_INVALID);
        p.salt_len = 32;
        p.mgf_hash = RPC_HASH_SHA1;
        ASSERT_EQ(p11_pubkey_verify(pub, RPC_MECH_RSA_PSS, &p, 256, digest, 32, sig, 256),
                  CKR_SIGNATURE_INVALID);
        p.mgf_hash = RPC_HASH_SHA256;
        digest[0] ^= 1;
        ASSERT_EQ(p11_pubkey_verify(pub, RPC_MECH_RSA_PSS, &p, 256, digest, 32, sig, 256),
                  CKR_SIGNATURE_INVALID);
        digest[0] ^= 1;
        ASSERT_EQ(p11_pubkey_verify(other_pub, RPC_MECH_RSA_PSS, &p, 256, digest, 32, sig, 256),
                  CKR_SIGNATURE_INVALID);
        /* the wrong kind of signature */
        ASSERT_EQ(p11_pubkey_verify(pub, RPC_MECH_RSA_PKCS, &p, 256, di, (size_t) di_len, sig, 256),
                  CKR_SIGNATURE_INVALID);
}

static void test_verify_ecdsa(void) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pub = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *k = load_key("ec-p384.key.pem", &pub);
        struct p11_mech_params p = {};
        uint8_t digest[48], der[160], rs[96];
        const uint8_t *q = der;
        _cleanup_(ECDSA_SIG_freep) ECDSA_SIG *es = NULL;
        size_t der_len;

        ASSERT_TRUE(k && pub);
        ASSERT_TRUE(EVP_Digest("abc", 3, digest, NULL, EVP_sha384(), NULL));
        der_len = sign_raw(k, 0, NULL, 0, digest, sizeof(digest), der, sizeof(der));
        ASSERT_TRUE(der_len > 0);
        es = d2i_ECDSA_SIG(NULL, &q, (long) der_len);
        ASSERT_TRUE(es);
        ASSERT_EQ(BN_bn2binpad(ECDSA_SIG_get0_r(es), rs, 48), 48);
        ASSERT_EQ(BN_bn2binpad(ECDSA_SIG_get0_s(es), rs + 48, 48), 48);

        ASSERT_EQ(p11_pubkey_verify(pub, RPC_MECH_ECDSA, &p, 96, digest, 48, rs, 96), CKR_OK);
        ASSERT_EQ(p11_pubkey_verify(pub, RPC_MECH_ECDSA, &p, 96, digest, 47, rs, 96), CKR_SIGNATURE_INVALID);
        ASSERT_EQ(p11_pubkey_verify(pub, RPC_MECH_ECDSA, &p, 96, digest, 48, rs, 95),
                  CKR_SIGNATURE_LEN_RANGE);
        ASSERT_EQ(p11_pubkey_verify(pub, RPC_MECH_ECDSA, &p, 96, digest, 48, der, der_len),
                  CKR_SIGNATURE_LEN_RANGE); /* DER is not the PKCS#11 form */
        rs[50] ^= 2;
        ASSERT_EQ(p11_pubkey_verify(pub, RPC_MECH_ECDSA, &p, 96, digest, 48, rs, 96), CKR_SIGNATURE_INVALID);
        memset(rs, 0, sizeof(rs)); /* r = s = 0 */
        ASSERT_EQ(p11_pubkey_verify(pub, RPC_MECH_ECDSA, &p, 96, digest, 48, rs, 96), CKR_SIGNATURE_INVALID);
        memset(rs, 0xff, sizeof(rs)); /* beyond the order */
        ASSERT_EQ(p11_pubkey_verify(pub, RPC_MECH_ECDSA, &p, 96, digest, 48, rs, 96), CKR_SIGNATURE_INVALID);
}

static void test_verify_eddsa(void) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pub = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *k = load_key("ed25519.key.pem", &pub);
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *md = EVP_MD_CTX_new();
        struct p11_mech_params p = {};
        const uint8_t msg[] = "a message of some length, signed whole";
        uint8_t sig[64];
        size_t sig_len = sizeof(sig);

        ASSERT_TRUE(k && pub && md);
        ASSERT_TRUE(EVP_DigestSignInit(md, NULL, NULL, NULL, k) > 0);
        ASSERT_TRUE(EVP_DigestSign(md, sig, &sig_len, msg, sizeof(msg)) > 0);
        ASSERT_EQ(sig_len, 64);
        ASSERT_EQ(p11_pubkey_verify(pub, RPC_MECH_EDDSA, &p, 64, msg, sizeof(msg), sig, 64), CKR_OK);
        ASSERT_EQ(p11_pubkey_verify(pub, RPC_MECH_EDDSA, &p, 64, msg, sizeof(msg) - 1, sig, 64),
                  CKR_SIGNATURE_INVALID);
        ASSERT_EQ(p11_pubkey_verify(pub, RPC_MECH_EDDSA, &p, 64, msg, sizeof(msg), sig, 63),
                  CKR_SIGNATURE_LEN_RANGE);
        sig[63] ^= 0x80;
        ASSERT_EQ(p11_pubkey_verify(pub, RPC_MECH_EDDSA, &p, 64, msg, sizeof(msg), sig, 64),
                  CKR_SIGNATURE_INVALID);
        ASSERT_EQ(p11_pubkey_verify(NULL, RPC_MECH_EDDSA, &p, 64, msg, sizeof(msg), sig, 64),
                  CKR_FUNCTION_FAILED);
        ASSERT_EQ(p11_pubkey_verify(pub, RPC_MECH_RSA_PKCS_DEC, &p, 64, msg, sizeof(msg), sig, 64),
                  CKR_FUNCTION_FAILED);
}

static void test_pubkey_parse(void) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pub = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *k = load_key("ec-p256.key.pem", &pub);
        unsigned char *der = NULL;
        uint8_t buf[200];
        EVP_PKEY *x = NULL;
        int n;

        ASSERT_TRUE(k && pub);
        n = i2d_PUBKEY(pub, &der);
        ASSERT_TRUE(n > 0 && (size_t) n < sizeof(buf));
        memcpy(buf, der, (size_t) n);
        OPENSSL_free(der);
        ASSERT_EQ(p11_pubkey_parse(buf, (size_t) n - 1, &x), CKR_KEY_HANDLE_INVALID); /* truncated */
        buf[n] = 0;
        ASSERT_EQ(p11_pubkey_parse(buf, (size_t) n + 1, &x), CKR_KEY_HANDLE_INVALID); /* trailing byte */
        ASSERT_EQ(p11_pubkey_parse(buf, 0, &x), CKR_KEY_HANDLE_INVALID);
        ASSERT_EQ(p11_pubkey_parse(NULL, 10, &x), CKR_KEY_HANDLE_INVALID);
        ASSERT_TRUE(x == NULL);
        ASSERT_EQ(p11_pubkey_parse(buf, (size_t) n, &x), CKR_OK);
        ASSERT_TRUE(x && EVP_PKEY_eq(x, pub) == 1);
        EVP_PKEY_free(x);
}

TAP_MAIN(TEST("/p11/digest/entry-points", test_digest), TEST("/p11/verify/no-daemon", test_verify_no_daemon),
         TEST("/p11/mech/per-slot", test_mech_lists), TEST("/p11/pubkey/rsa", test_verify_rsa),
         TEST("/p11/pubkey/ecdsa", test_verify_ecdsa), TEST("/p11/pubkey/eddsa", test_verify_eddsa),
         TEST("/p11/pubkey/parse", test_pubkey_parse))
