/* CiphertextForRecipient as KMS makes it: CMS EnvelopedData, RSA-OAEP-SHA256 key transport, AES-256-CBC. */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include <openssl/buffer.h>
#include <openssl/cms.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "common/cleanup-ssl.h"
#include "tests/fakes/fake-kms-cms.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(CMS_ContentInfo *, CMS_ContentInfo_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(ASN1_OCTET_STRING *, ASN1_OCTET_STRING_free);

int fkms_recipient_key(const uint8_t *spki, size_t len, EVP_PKEY **ret, const char **ret_why) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *k = NULL;
        const unsigned char *p = spki;

        if (!spki || len == 0 || len > 16384) {
                *ret_why = "public_key: absent, empty or too long";
                return -EBADMSG;
        }
        k = d2i_PUBKEY(NULL, &p, (long) len);
        if (!k || p != spki + len) {
                *ret_why = "public_key: not a DER SubjectPublicKeyInfo";
                return -EBADMSG;
        }
        if (EVP_PKEY_get_base_id(k) != EVP_PKEY_RSA) {
                *ret_why = "public_key: not an RSA key";
                return -EKEYREJECTED;
        }
        if (EVP_PKEY_get_bits(k) < FKMS_RSA_MIN_BITS) {
                *ret_why = "public_key: RSA key under 2048 bits";
                return -EKEYREJECTED;
        }
        *ret = TAKE_PTR(k);
        return 0;
}

/* A certificate carrying only what CMS_add1_recipient_cert() reads: the key and its SKI. */
static X509 *recipient_cert(EVP_PKEY *key, EVP_PKEY *signer) {
        _cleanup_(X509_freep) X509 *x = X509_new();
        _cleanup_(ASN1_OCTET_STRING_freep) ASN1_OCTET_STRING *ski = ASN1_OCTET_STRING_new();
        unsigned char *der = NULL, md[32];
        X509_NAME *name;
        int n;

        if (!x || !ski)
                return NULL;
        n = i2d_PUBKEY(key, &der);
        if (n <= 0)
                return NULL;
        if (EVP_Digest(der, (size_t) n, md, NULL, EVP_sha256(), NULL) <= 0) {
                OPENSSL_free(der);
                return NULL;
        }
        OPENSSL_free(der);
        name = X509_get_subject_name(x);
        if (X509_set_version(x, 2) <= 0 || ASN1_INTEGER_set(X509_get_serialNumber(x), 1) <= 0 ||
            X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *) "recipient", -1, -1,
                                       0) <= 0 ||
            X509_set_issuer_name(x, name) <= 0 || !X509_gmtime_adj(X509_getm_notBefore(x), -60) ||
            !X509_gmtime_adj(X509_getm_notAfter(x), 3600) || X509_set_pubkey(x, key) <= 0 ||
            ASN1_OCTET_STRING_set(ski, md, sizeof(md)) <= 0 ||
            X509_add1_ext_i2d(x, NID_subject_key_identifier, ski, 0, 0) <= 0 ||
            X509_sign(x, signer, EVP_sha256()) <= 0)
                return NULL;
        return TAKE_PTR(x);
}

int fkms_cms_envelope(EVP_PKEY *recipient, EVP_PKEY *signer, const uint8_t *pt, size_t len, uint8_t **ret,
                      size_t *ret_len) {
        _cleanup_(CMS_ContentInfo_freep) CMS_ContentInfo *cms = NULL;
        _cleanup_(X509_freep) X509 *cert = NULL;
        _cleanup_(BIO_free_allp) BIO *in = NULL, *out = NULL;
        CMS_RecipientInfo *ri;
        EVP_PKEY_CTX *pctx;
        BUF_MEM *bm = NULL;
        uint8_t *buf;

        if (!recipient || !signer || !pt || len == 0 || len > INT_MAX)
                return -EINVAL;
        cert = recipient_cert(recipient, signer);
        if (!cert)
                return -EIO;
        cms = CMS_encrypt(NULL, NULL, EVP_aes_256_cbc(), CMS_BINARY | CMS_PARTIAL | CMS_STREAM);
        if (!cms)
                return -EIO;
        ri = CMS_add1_recipient_cert(cms, cert, CMS_KEY_PARAM | CMS_USE_KEYID);
        pctx = ri ? CMS_RecipientInfo_get0_pkey_ctx(ri) : NULL;
        if (!pctx || EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_OAEP_PADDING) <= 0 ||
            EVP_PKEY_CTX_set_rsa_oaep_md(pctx, EVP_sha256()) <= 0 ||
            EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) <= 0)
                return -EIO;
        in = BIO_new_mem_buf(pt, (int) len);
        out = BIO_new(BIO_s_mem());
        if (!in || !out)
                return -ENOMEM;
        /* streamed: indefinite lengths and a constructed encryptedContent, as KMS answers */
        if (i2d_CMS_bio_stream(out, cms, in, CMS_STREAM | CMS_BINARY) <= 0 ||
            BIO_get_mem_ptr(out, &bm) <= 0 || !bm || bm->length == 0)
                return -EIO;
        buf = malloc(bm->length);
        if (!buf)
                return -ENOMEM;
        memcpy(buf, bm->data, bm->length);
        *ret_len = bm->length;
        *ret = buf;
        return 0;
}
