/* KMS's CiphertextForRecipient: the sdk-c vector's structure, envelopes OpenSSL makes at test time
 * (DER and streamed BER) opened with their key, and every refusal: wrong key, truncation, other
 * ciphers and key transports, oversized plaintext, trailing bytes. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/buffer.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/cleanup-ssl.h"
#include "enclave-token/cms.h"
#include "tests/lib/data.h"
#include "tests/lib/tap.h"

static size_t unhex(const char *hex, uint8_t *out, size_t size) {
        size_t n = 0;

        for (; hex[0] && hex[1] && n < size; hex += 2) {
                unsigned v;

                if (sscanf(hex, "%2x", &v) != 1)
                        break;
                out[n++] = (uint8_t) v;
        }
        return n;
}

static void sha256(const uint8_t *p, size_t n, uint8_t out[32]) {
        unsigned len = 32;

        if (EVP_Digest(p, n, out, &len, EVP_sha256(), NULL) <= 0)
                memset(out, 0, 32);
}

/* ---- the sdk-c vector (no key: structure only) ---- */

static void test_vector(void) {
        _cleanup_free_ uint8_t *ber = NULL;
        struct cms_envelope_info info;
        uint8_t want[64], digest[32];
        const uint8_t *p;
        CMS_ContentInfo *cms;
        size_t len = 0;
        char *error = NULL;

        ber = (uint8_t *) test_data_load("nitro/kms_cms_envelopeddata_sdkc_vec1.ber", &len);
        ASSERT_TRUE(ber != NULL); /* missing test data fails, it does not skip */
        ASSERT_EQ(len, 493);
        sha256(ber, len, digest);
        unhex("755b9cddf708f37db12124de6b030aa0a9ca64639cfb6126f95045b41e1a431a", want, sizeof(want));
        ASSERT_MEMEQ(digest, want, 32);

        ASSERT_OK(cms_envelope_parse(ber, len, &info, &error));
        ASSERT_TRUE(error == NULL);
        ASSERT_EQ(info.version, 2);
        ASSERT_EQ(info.ktri_version, 2);
        ASSERT_EQ(info.rid_len, 32);
        ASSERT_EQ(info.rid - ber, 33);
        unhex("7087b55df94ba3255cdf3c01840a2aa3ec93620625d601cf56f97bde7a3d2eb1", want, sizeof(want));
        ASSERT_MEMEQ(info.rid, want, 32);
        ASSERT_EQ(info.encrypted_key_len, 256);
        ASSERT_EQ(info.encrypted_key - ber, 131);
        sha256(info.encrypted_key, 256, digest);
        unhex("856e1ee8b2147c9746ad24dc334dad50ff32cf45cccf30c75366b05980f8a092", want, sizeof(want));
        ASSERT_MEMEQ(digest, want, 32);
        unhex("688c6d5f7f31b0fecedf09f2e7c99ac9", want, sizeof(want));
        ASSERT_MEMEQ(info.iv, want, 16);
        ASSERT_EQ(info.ciphertext_len, 48);
        ASSERT_TRUE(info.ciphertext_constructed);
        ASSERT_EQ(info.ciphertext_chunks, 1);
        ASSERT_EQ(info.ciphertext_offset, 435);
        unhex("70e5caaffd49ad24efe15bf903be9d19895b777d269b57b025f6f67e7ef93f94464515f2ebe034ea0b7621a1ff192"
              "92e",
              want, sizeof(want));
        ASSERT_MEMEQ(ber + info.ciphertext_offset, want, 48);

        /* OpenSSL's view of it agrees: envelopedData, one key transport recipient under rsaesOaep. */
        p = ber;
        cms = d2i_CMS_ContentInfo(NULL, &p, (long) len);
        ASSERT_TRUE(cms != NULL);
        ASSERT_EQ(p - ber, (long) len);
        ASSERT_EQ(OBJ_obj2nid(CMS_get0_type(cms)), NID_pkcs7_enveloped);
        ASSERT_EQ(sk_CMS_RecipientInfo_num(CMS_get0_RecipientInfos(cms)), 1);
        {
                CMS_RecipientInfo *ri = sk_CMS_RecipientInfo_value(CMS_get0_RecipientInfos(cms), 0);
                X509_ALGOR *alg = NULL;
                ASN1_OCTET_STRING **content = CMS_get0_content(cms);

                ASSERT_EQ(CMS_RecipientInfo_type(ri), CMS_RECIPINFO_TRANS);
                ASSERT_TRUE(CMS_RecipientInfo_ktri_get0_algs(ri, NULL, NULL, &alg) > 0);
                ASSERT_EQ(OBJ_obj2nid(alg->algorithm), NID_rsaesOaep);
                ASSERT_TRUE(content && *content);
                ASSERT_EQ(ASN1_STRING_length(*content), 48);
        }
        CMS_ContentInfo_free(cms);
}

/* ---- envelopes made at test time ---- */

static EVP_PKEY *key_a, *key_b;
static X509 *cert_a;

static X509 *make_cert(EVP_PKEY *key) {
        X509 *x = X509_new();
        X509_NAME *name;
        ASN1_OCTET_STRING *ski = ASN1_OCTET_STRING_new();
        unsigned char *der = NULL;
        uint8_t digest[32];
        int n;

        if (!x || !ski)
                return NULL;
        n = i2d_PUBKEY(key, &der);
        if (n <= 0)
                return NULL;
        sha256(der, (size_t) n, digest); /* a 32-byte SKI, as KMS emits */
        OPENSSL_free(der);
        name = X509_get_subject_name(x);
        if (X509_set_version(x, 2) <= 0 || ASN1_INTEGER_set(X509_get_serialNumber(x), 7) <= 0 ||
            X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *) "cms test", -1, -1,
                                       0) <= 0 ||
            X509_set_issuer_name(x, name) <= 0 || !X509_gmtime_adj(X509_getm_notBefore(x), 0) ||
            !X509_gmtime_adj(X509_getm_notAfter(x), 3600) || X509_set_pubkey(x, key) <= 0 ||
            ASN1_OCTET_STRING_set(ski, digest, 32) <= 0 ||
            X509_add1_ext_i2d(x, NID_subject_key_identifier, ski, 0, 0) <= 0 ||
            X509_sign(x, key, EVP_sha256()) <= 0)
                return NULL;
        ASN1_OCTET_STRING_free(ski);
        return x;
}

static bool setup_keys(void) {
        if (key_a)
                return true;
        key_a = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) 2048);
        key_b = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) 2048);
        cert_a = key_a ? make_cert(key_a) : NULL;
        return key_a && key_b && cert_a;
}

enum kt { KT_OAEP_SHA256, KT_OAEP_SHA1, KT_PKCS1 };

/* An envelope for cert_a: streamed (BER, indefinite lengths, constructed encryptedContent) or DER. */
static uint8_t *make_envelope(const uint8_t *pt, size_t pt_len, const EVP_CIPHER *cipher, enum kt kt,
                              bool stream, bool keyid, size_t *ret_len) {
        unsigned flags = CMS_BINARY | CMS_PARTIAL | (stream ? CMS_STREAM : 0) | (keyid ? CMS_USE_KEYID : 0);
        CMS_ContentInfo *cms = CMS_encrypt(NULL, NULL, cipher, flags);
        CMS_RecipientInfo *ri;
        EVP_PKEY_CTX *pctx;
        BIO *in = NULL, *out = NULL;
        BUF_MEM *bm = NULL;
        uint8_t *ret = NULL;
        bool ok;

        if (!cms)
                return NULL;
        ri = CMS_add1_recipient_cert(cms, cert_a, CMS_KEY_PARAM | (keyid ? CMS_USE_KEYID : 0));
        pctx = ri ? CMS_RecipientInfo_get0_pkey_ctx(ri) : NULL;
        ok = pctx != NULL;
        if (ok && kt != KT_PKCS1)
                ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_OAEP_PADDING) > 0;
        if (ok && kt == KT_OAEP_SHA256)
                ok = EVP_PKEY_CTX_set_rsa_oaep_md(pctx, EVP_sha256()) > 0 &&
                     EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) > 0;
        in = BIO_new_mem_buf(pt_len ? pt : (const uint8_t *) "", (int) pt_len);
        out = BIO_new(BIO_s_mem());
        ok = ok && in && out;
        if (ok && stream)
                ok = i2d_CMS_bio_stream(out, cms, in, CMS_STREAM | CMS_BINARY) > 0;
        else if (ok)
                ok = CMS_final(cms, in, NULL, CMS_BINARY) > 0 && i2d_CMS_bio(out, cms) > 0;
        if (ok && BIO_get_mem_ptr(out, &bm) > 0 && bm && (ret = malloc(bm->length))) {
                memcpy(ret, bm->data, bm->length);
                *ret_len = bm->length;
        }
        BIO_free(in);
        BIO_free(out);
        CMS_ContentInfo_free(cms);
        return ret;
}

static uint8_t pt_buf[CMS_KMS_PLAINTEXT_MAX + 64];

static void test_round_trip(void) {
        static const size_t sizes[] = { 1, 15, 16, 48, 1000, CMS_KMS_PLAINTEXT_MAX };

        ASSERT_TRUE(setup_keys());
        for (size_t i = 0; i < sizeof(pt_buf); i++)
                pt_buf[i] = (uint8_t) (i * 31 + 7);
        for (size_t s = 0; s < ELEMENTSOF(sizes); s++)
                for (int form = 0; form < 4; form++) {
                        bool stream = form & 1, keyid = form & 2;
                        _cleanup_free_ uint8_t *env = NULL;
                        _cleanup_secret_ struct secret_buf *pt = NULL;
                        struct cms_envelope_info info;
                        size_t len = 0;
                        char *error = NULL;
                        int r;

                        env = make_envelope(pt_buf, sizes[s], EVP_aes_256_cbc(), KT_OAEP_SHA256, stream,
                                            keyid, &len);
                        ASSERT_TRUE(env != NULL);
                        ASSERT_OK(cms_envelope_parse(env, len, &info, NULL));
                        ASSERT_EQ(info.ciphertext_constructed, stream);
                        ASSERT_EQ(info.ktri_version, keyid ? 2 : 0);
                        ASSERT_EQ(info.ciphertext_len, (sizes[s] / 16 + 1) * 16);
                        if (stream) /* BER: the first byte after the ContentInfo tag says indefinite */
                                ASSERT_EQ(env[1], 0x80);
                        r = cms_envelope_open(env, len, key_a, &pt, &error);
                        if (r < 0)
                                printf("# size %zu form %d: %s\n", sizes[s], form, error ? error : "?");
                        free(error);
                        ASSERT_OK(r);
                        ASSERT_EQ(pt->len, sizes[s]);
                        ASSERT_MEMEQ(pt->data, pt_buf, sizes[s]);
                }
}

static void test_wrong_key(void) {
        _cleanup_free_ uint8_t *env = NULL;
        struct secret_buf *pt = NULL;
        size_t len = 0;
        char *error = NULL;

        ASSERT_TRUE(setup_keys());
        env = make_envelope((const uint8_t *) "secret", 6, EVP_aes_256_cbc(), KT_OAEP_SHA256, true, true,
                            &len);
        ASSERT_TRUE(env != NULL);
        ASSERT_ERR(cms_envelope_open(env, len, key_b, &pt, &error), -EKEYREJECTED);
        ASSERT_TRUE(pt == NULL);
        ASSERT_TRUE(error && strstr(error, "key"));
        free(error);
}

/* The sdk-c vector cannot be opened by any key of ours, and says so instead of returning garbage. */
static void test_vector_wrong_key(void) {
        _cleanup_free_ uint8_t *ber = NULL;
        struct secret_buf *pt = NULL;
        size_t len = 0;

        ASSERT_TRUE(setup_keys());
        ber = (uint8_t *) test_data_load("nitro/kms_cms_envelopeddata_sdkc_vec1.ber", &len);
        ASSERT_TRUE(ber != NULL);
        ASSERT_ERR(cms_envelope_open(ber, len, key_a, &pt, NULL), -EKEYREJECTED);
        ASSERT_TRUE(pt == NULL);
}

static void test_truncated(void) {
        ASSERT_TRUE(setup_keys());
        for (int stream = 0; stream < 2; stream++) {
                _cleanup_free_ uint8_t *env = NULL;
                size_t len = 0;

                env = make_envelope((const uint8_t *) "0123456789abcdefXYZ", 19, EVP_aes_256_cbc(),
                                    KT_OAEP_SHA256, stream, true, &len);
                ASSERT_TRUE(env != NULL);
                for (size_t cut = 0; cut < len; cut++) {
                        struct cms_envelope_info info;
                        struct secret_buf *pt = NULL;
                        uint8_t *copy = malloc(cut ? cut : 1);

                        memcpy(copy, env, cut);
                        ASSERT_FAIL(cms_envelope_parse(copy, cut, &info, NULL));
                        ASSERT_FAIL(cms_envelope_open(copy, cut, key_a, &pt, NULL));
                        ASSERT_TRUE(pt == NULL);
                        free(copy);
                }
        }
        {
                _cleanup_free_ uint8_t *ber = NULL;
                size_t len = 0;

                ber = (uint8_t *) test_data_load("nitro/kms_cms_envelopeddata_sdkc_vec1.ber", &len);
                ASSERT_TRUE(ber != NULL);
                for (size_t cut = 0; cut < len; cut++) {
                        struct cms_envelope_info info;

                        ASSERT_FAIL(cms_envelope_parse(ber, cut, &info, NULL));
                }
        }
}

static void check_refused(const uint8_t *env, size_t len, int expected, const char *needle) {
        struct secret_buf *pt = NULL;
        char *error = NULL;
        int r;

        r = cms_envelope_open(env, len, key_a, &pt, &error);
        if (r != expected || !error || !strstr(error, needle)) {
                printf("# got %d (%s), expected %d mentioning '%s'\n", r, error ? error : "no message",
                       expected, needle);
                tap_failed_current = true;
        }
        free(error);
        secret_buf_free(pt);
}

static void test_other_algorithms(void) {
        _cleanup_free_ uint8_t *aes128 = NULL, *pkcs1 = NULL, *sha1 = NULL;
        size_t l1 = 0, l2 = 0, l3 = 0;

        ASSERT_TRUE(setup_keys());
        aes128 = make_envelope((const uint8_t *) "x", 1, EVP_aes_128_cbc(), KT_OAEP_SHA256, true, true, &l1);
        pkcs1 = make_envelope((const uint8_t *) "x", 1, EVP_aes_256_cbc(), KT_PKCS1, true, true, &l2);
        sha1 = make_envelope((const uint8_t *) "x", 1, EVP_aes_256_cbc(), KT_OAEP_SHA1, false, true, &l3);
        ASSERT_TRUE(aes128 && pkcs1 && sha1);
        check_refused(aes128, l1, -EOPNOTSUPP, "contentEncryptionAlgorithm");
        check_refused(pkcs1, l2, -EOPNOTSUPP, "keyEncryptionAlgorithm");
        check_refused(sha1, l3, -EOPNOTSUPP, "OAEP hashFunc");
}

static void test_plaintext_cap(void) {
        _cleanup_free_ uint8_t *over = NULL, *far = NULL;
        size_t l1 = 0, l2 = 0;

        ASSERT_TRUE(setup_keys());
        /* 4097 bytes pad to 4112: the shape passes, the plaintext is refused after decryption. */
        over = make_envelope(pt_buf, CMS_KMS_PLAINTEXT_MAX + 1, EVP_aes_256_cbc(), KT_OAEP_SHA256, false,
                             true, &l1);
        ASSERT_TRUE(over != NULL);
        check_refused(over, l1, -EMSGSIZE, "plaintext");
        /* 4112 bytes pad to 4128: refused before any decryption. */
        far = make_envelope(pt_buf, CMS_KMS_PLAINTEXT_MAX + 16, EVP_aes_256_cbc(), KT_OAEP_SHA256, true,
                            true, &l2);
        ASSERT_TRUE(far != NULL);
        check_refused(far, l2, -EMSGSIZE, "encryptedContent");
}

static void test_trailing_and_size(void) {
        _cleanup_free_ uint8_t *env = NULL;
        uint8_t *longer;
        size_t len = 0;

        ASSERT_TRUE(setup_keys());
        env = make_envelope((const uint8_t *) "abc", 3, EVP_aes_256_cbc(), KT_OAEP_SHA256, true, true, &len);
        ASSERT_TRUE(env != NULL);
        longer = calloc(1, CMS_KMS_INPUT_MAX + 1);
        ASSERT_TRUE(longer != NULL);
        memcpy(longer, env, len);
        check_refused(longer, len + 1, -EBADMSG, "trailing");
        longer[len] = 0x30;
        check_refused(longer, len + 1, -EBADMSG, "trailing");
        check_refused(longer, CMS_KMS_INPUT_MAX + 1, -EMSGSIZE, "6144");
        free(longer);
}

/* Every byte flipped: an error, or the right plaintext where the byte does not matter. AES-CBC without
 * a MAC is malleable (KMS's format has no integrity of its own; TLS to KMS protects it in transit): a
 * flipped IV bit flips the same plaintext bit, and a flipped ciphertext byte garbles its block, which
 * passes the padding check now and then (about 1 in 256), so there only the length cap is checked. */
static void test_mutations(void) {
        _cleanup_free_ uint8_t *env = NULL;
        struct cms_envelope_info info;
        const uint8_t *iv;
        size_t len = 0, iv_off;

        ASSERT_TRUE(setup_keys());
        env = make_envelope((const uint8_t *) "mutate me", 9, EVP_aes_256_cbc(), KT_OAEP_SHA256, true, true,
                            &len);
        ASSERT_TRUE(env != NULL);
        ASSERT_OK(cms_envelope_parse(env, len, &info, NULL));
        ASSERT_EQ(info.ciphertext_len, 16);
        iv = memmem(env, len, info.iv, CMS_AES_IV_LEN);
        ASSERT_TRUE(iv != NULL);
        iv_off = (size_t) (iv - env);
        for (size_t i = 0; i < len; i++) {
                bool in_ct = i >= info.ciphertext_offset && i < info.ciphertext_offset + 16;
                struct secret_buf *pt = NULL;
                uint8_t want[9];

                memcpy(want, "mutate me", 9);
                if (i >= iv_off && i < iv_off + 9)
                        want[i - iv_off] ^= 0x01;
                env[i] ^= 0x01;
                if (cms_envelope_open(env, len, key_a, &pt, NULL) >= 0) {
                        if (in_ct)
                                ASSERT_TRUE(pt->len >= 1 && pt->len <= 16);
                        else if (pt->len != 9 || memcmp(pt->data, want, 9) != 0) {
                                printf("# flipping byte %zu (IV at %zu) gave another plaintext\n", i,
                                       iv_off);
                                tap_failed_current = true;
                        }
                }
                secret_buf_free(pt);
                env[i] ^= 0x01;
                if (tap_failed_current)
                        return;
        }
}

/* The fuzz seeds (tests/fuzz/gen-cms-corpus.sh, openssl cms) open with the key fuzz-cms embeds, or
 * are refused for the reason their name gives: the corpus exercises both sides. */
static void test_fuzz_seeds(void) {
        static const struct {
                const char *name;
                int r;
        } seeds[] = {
                { "ber-keyid-oaep256", 0 },           { "der-keyid-oaep256", 0 },
                { "der-issuer-oaep256", 0 },          { "ber-keyid-oaep256-4096", 0 },
                { "refused-aes128", -EOPNOTSUPP },    { "refused-pkcs1", -EOPNOTSUPP },
                { "refused-oaep-sha1", -EOPNOTSUPP },
        };
        _cleanup_free_ char *pem = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_(BIO_free_allp) BIO *b = NULL;
        size_t len = 0;

        pem = test_data_load("rsa2048.key.pem", &len);
        ASSERT_TRUE(pem != NULL);
        b = BIO_new_mem_buf(pem, (int) len);
        ASSERT_TRUE(b != NULL);
        key = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
        ASSERT_TRUE(key != NULL);
        for (size_t i = 0; i < ELEMENTSOF(seeds); i++) {
                _cleanup_free_ uint8_t *env = NULL;
                struct secret_buf *pt = NULL;
                char rel[128];
                int r;

                (void) snprintf(rel, sizeof(rel), "../fuzz/corpus/fuzz-cms/%s", seeds[i].name);
                env = (uint8_t *) test_data_load(rel, &len);
                ASSERT_TRUE(env != NULL);
                r = cms_envelope_open(env, len, key, &pt, NULL);
                if (r != seeds[i].r) {
                        printf("# %s: %d, expected %d\n", seeds[i].name, r, seeds[i].r);
                        tap_failed_current = true;
                }
                if (r >= 0)
                        ASSERT_TRUE(pt->len == 4096 || (pt->len > 0 && memcmp(pt->data, "seed", 4) == 0) ||
                                    (pt->len == 1 && pt->data[0] == 'x'));
                secret_buf_free(pt);
        }
}

static void test_keypair(void) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *k1 = NULL, *k2 = NULL, *pub = NULL;
        _cleanup_(BN_freep) BIGNUM *e = NULL;
        _cleanup_free_ uint8_t *s1 = NULL, *s2 = NULL;
        size_t l1 = 0, l2 = 0;
        const uint8_t *p;

        ASSERT_OK(nsm_kms_keypair_new(&k1, &s1, &l1));
        ASSERT_OK(nsm_kms_keypair_new(&k2, &s2, &l2));
        ASSERT_TRUE(EVP_PKEY_is_a(k1, "RSA"));
        ASSERT_EQ(EVP_PKEY_get_bits(k1), 2048);
        ASSERT_TRUE(EVP_PKEY_get_bn_param(k1, "e", &e) > 0);
        ASSERT_EQ(BN_get_word(e), 65537);
        ASSERT_EQ(l1, 294); /* NITRO-FORMATS.md 1.2: an RSA-2048 SPKI */
        ASSERT_EQ(l2, 294);
        ASSERT_TRUE(memcmp(s1, s2, l1) != 0);
        p = s1;
        pub = d2i_PUBKEY(NULL, &p, (long) l1);
        ASSERT_TRUE(pub != NULL);
        ASSERT_EQ(EVP_PKEY_eq(pub, k1), 1);
}

TAP_MAIN(TEST("/cms/vector", test_vector), TEST("/cms/vector-wrong-key", test_vector_wrong_key),
         TEST("/cms/round-trip", test_round_trip), TEST("/cms/wrong-key", test_wrong_key),
         TEST("/cms/truncated", test_truncated), TEST("/cms/other-algorithms", test_other_algorithms),
         TEST("/cms/plaintext-cap", test_plaintext_cap),
         TEST("/cms/trailing-and-size", test_trailing_and_size), TEST("/cms/mutations", test_mutations),
         TEST("/cms/keypair", test_keypair), TEST("/cms/fuzz-seeds", test_fuzz_seeds))
