/* Opening KMS's CiphertextForRecipient (CMS EnvelopedData, BER) with the ephemeral RSA key. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/buffer.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "common/cleanup-ssl.h"
#include "common/errmsg.h"
#include "enclave-token/cms.h"

#define CIPHERTEXT_MAX    (CMS_KMS_PLAINTEXT_MAX + 16) /* PKCS#7 padding adds 1..16 bytes */
#define CHUNK_DEPTH_MAX   4
#define RID_MAX           1024
#define ENCRYPTED_KEY_MAX 512 /* RSA-4096 */

/* DER contents of the object identifiers we accept. */
static const uint8_t oid_enveloped_data[] = { 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x03 };
static const uint8_t oid_data[] = { 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01 };
static const uint8_t oid_rsaes_oaep[] = { 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x07 };
static const uint8_t oid_mgf1[] = { 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08 };
static const uint8_t oid_pspecified[] = { 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x09 };
static const uint8_t oid_sha256[] = { 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01 };
static const uint8_t oid_aes256_cbc[] = { 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2a };

enum {
        TAG_INTEGER = 0x02,
        TAG_OCTET_STRING = 0x04,
        TAG_NULL = 0x05,
        TAG_OID = 0x06,
        TAG_SEQUENCE = 0x30,
        TAG_SET = 0x31,
        TAG_CTX0_PRIM = 0x80,
        TAG_CTX0 = 0xa0,
        TAG_CTX1 = 0xa1,
        TAG_CTX2 = 0xa2,
        TAG_OCTET_STRING_CONS = 0x24,
};

/* A bounded BER cursor: a definite item's contents, or an indefinite one's up to its end-of-contents. */
struct ber {
        const uint8_t *buf; /* the whole input, for offsets */
        size_t pos;
        size_t end;
        bool indefinite;
        char **error;
};

static int ber_fail(struct ber *b, int err, const char *what, const char *expected) {
        return errmsg_set(b->error, err, "CMS envelope: %s at byte %zu: expected %s", what, b->pos,
                          expected);
}

static bool ber_at_end(const struct ber *b) {
        if (b->indefinite)
                return b->end - b->pos >= 2 && b->buf[b->pos] == 0 && b->buf[b->pos + 1] == 0;
        return b->pos == b->end;
}

/* The next tag, or -1 when nothing is left: an indefinite item can be cut short before its end. */
static int ber_peek(const struct ber *b) {
        return b->pos < b->end ? b->buf[b->pos] : -1;
}

/* One header: a single-byte tag, a length in short or long form (at most 4 bytes), or, for a
 * constructed item, indefinite. The contents must fit in what is left. */
static int ber_header(struct ber *b, const char *what, uint8_t *ret_tag, bool *ret_indef, size_t *ret_len) {
        size_t p = b->pos, len = 0;
        uint8_t tag, l;

        if (b->end - p < 2 || (b->buf[p] & 0x1f) == 0x1f)
                return ber_fail(b, -EBADMSG, what, "a tag and a length");
        tag = b->buf[p++];
        l = b->buf[p++];
        if (l == 0x80) {
                if (!(tag & 0x20))
                        return ber_fail(b, -EBADMSG, what, "a definite length for a primitive item");
                *ret_tag = tag;
                *ret_indef = true;
                *ret_len = 0;
                b->pos = p;
                return 0;
        }
        if (l & 0x80) {
                unsigned n = l & 0x7f;

                if (n > 4 || b->end - p < n)
                        return ber_fail(b, -EBADMSG, what, "a length of at most 4 bytes");
                while (n--)
                        len = (len << 8) | b->buf[p++];
        } else
                len = l;
        if (len > b->end - p)
                return ber_fail(b, -EBADMSG, what, "contents within the input");
        *ret_tag = tag;
        *ret_indef = false;
        *ret_len = len;
        b->pos = p;
        return 0;
}

/* Enters a constructed item with the given tag: child covers its contents. */
static int ber_enter(struct ber *b, uint8_t want, const char *what, struct ber *child) {
        size_t start = b->pos, len = 0;
        bool indef = false;
        uint8_t tag = 0;
        int r;

        r = ber_header(b, what, &tag, &indef, &len);
        if (r < 0)
                return r;
        if (tag != want) {
                b->pos = start;
                return ber_fail(b, -EBADMSG, what, "another tag");
        }
        *child = (struct ber){ .buf = b->buf,
                               .pos = b->pos,
                               .end = indef ? b->end : b->pos + len,
                               .indefinite = indef,
                               .error = b->error };
        return 0;
}

/* Leaves a child: all of a definite one consumed, an indefinite one's end-of-contents read. */
static int ber_leave(struct ber *b, struct ber *child, const char *what) {
        if (!ber_at_end(child))
                return ber_fail(child, -EBADMSG, what, "the end of the item");
        b->pos = child->indefinite ? child->pos + 2 : child->end;
        return 0;
}

/* A primitive item with the given tag. */
static int ber_prim(struct ber *b, uint8_t want, const char *what, const uint8_t **ret, size_t *ret_len) {
        size_t start = b->pos, len = 0;
        bool indef = false;
        uint8_t tag = 0;
        int r;

        r = ber_header(b, what, &tag, &indef, &len);
        if (r < 0)
                return r;
        if (tag != want) {
                b->pos = start;
                return ber_fail(b, -EBADMSG, what, "another tag");
        }
        *ret = b->buf + b->pos;
        *ret_len = len;
        b->pos += len;
        return 0;
}

static bool bytes_eq(const uint8_t *p, size_t n, const uint8_t *q, size_t m) {
        return n == m && memcmp(p, q, n) == 0;
}

/* The name OpenSSL knows for an OID's contents, for error messages. */
static const char *oid_name(const uint8_t *p, size_t n, char *buf, size_t size) {
        uint8_t der[64];
        const uint8_t *q = der;
        ASN1_OBJECT *o;

        if (n == 0 || n > sizeof(der) - 2)
                return "an unknown OID";
        der[0] = TAG_OID;
        der[1] = (uint8_t) n;
        memcpy(der + 2, p, n);
        o = d2i_ASN1_OBJECT(NULL, &q, (long) n + 2);
        if (!o || OBJ_obj2txt(buf, (int) size, o, 0) <= 0)
                (void) snprintf(buf, size, "an unknown OID");
        ASN1_OBJECT_free(o);
        return buf;
}

static int expect_oid(struct ber *b, const char *what, const uint8_t *want, size_t want_len, int err) {
        const uint8_t *p = NULL;
        size_t start = b->pos, n = 0;
        char name[80], msg[160];
        int r;

        r = ber_prim(b, TAG_OID, what, &p, &n);
        if (r < 0)
                return r;
        if (bytes_eq(p, n, want, want_len))
                return 0;
        b->pos = start;
        {
                char got[80];

                (void) snprintf(msg, sizeof(msg), "%s (found %s)",
                                oid_name(want, want_len, name, sizeof(name)),
                                oid_name(p, n, got, sizeof(got)));
        }
        return ber_fail(b, err, what, msg);
}

static int small_int(struct ber *b, const char *what, unsigned *ret) {
        const uint8_t *p = NULL;
        size_t n = 0;
        int r;

        r = ber_prim(b, TAG_INTEGER, what, &p, &n);
        if (r < 0)
                return r;
        if (n != 1 || p[0] > 4)
                return ber_fail(b, -EBADMSG, what, "a version of 0..4");
        *ret = p[0];
        return 0;
}

/* AlgorithmIdentifier { sha256, NULL or absent } */
static int expect_sha256(struct ber *b, const char *what) {
        struct ber alg;
        const uint8_t *p = NULL;
        size_t n = 0;
        int r;

        if ((r = ber_enter(b, TAG_SEQUENCE, what, &alg)) < 0 ||
            (r = expect_oid(&alg, what, oid_sha256, sizeof(oid_sha256), -EOPNOTSUPP)) < 0)
                return r;
        if (!ber_at_end(&alg)) {
                r = ber_prim(&alg, TAG_NULL, what, &p, &n);
                if (r < 0)
                        return r;
                if (n != 0)
                        return ber_fail(&alg, -EBADMSG, what, "an empty NULL");
        }
        return ber_leave(b, &alg, what);
}

/* RSAES-OAEP-params: hashFunc [0] SHA-256 (absent means SHA-1: refused), maskGenFunc [1] MGF1 with
 * SHA-256, pSourceFunc [2] absent or pSpecified with an empty label. */
static int oaep_params(struct ber *b) {
        struct ber params, e, mgf, src;
        const uint8_t *p = NULL;
        size_t n = 0;
        int r;

        if ((r = ber_enter(b, TAG_SEQUENCE, "RSAES-OAEP-params", &params)) < 0)
                return r;
        if (ber_at_end(&params) || ber_peek(&params) != TAG_CTX0)
                return ber_fail(&params, -EOPNOTSUPP, "OAEP hashFunc", "SHA-256 (absent means SHA-1)");
        if ((r = ber_enter(&params, TAG_CTX0, "OAEP hashFunc", &e)) < 0 ||
            (r = expect_sha256(&e, "OAEP hashFunc")) < 0 ||
            (r = ber_leave(&params, &e, "OAEP hashFunc")) < 0)
                return r;
        if (ber_at_end(&params) || ber_peek(&params) != TAG_CTX1)
                return ber_fail(&params, -EOPNOTSUPP, "OAEP maskGenFunc",
                                "MGF1 with SHA-256 (absent means SHA-1)");
        if ((r = ber_enter(&params, TAG_CTX1, "OAEP maskGenFunc", &e)) < 0 ||
            (r = ber_enter(&e, TAG_SEQUENCE, "OAEP maskGenFunc", &mgf)) < 0 ||
            (r = expect_oid(&mgf, "OAEP maskGenFunc", oid_mgf1, sizeof(oid_mgf1), -EOPNOTSUPP)) < 0 ||
            (r = expect_sha256(&mgf, "OAEP MGF1 hash")) < 0 ||
            (r = ber_leave(&e, &mgf, "OAEP maskGenFunc")) < 0 ||
            (r = ber_leave(&params, &e, "OAEP maskGenFunc")) < 0)
                return r;
        if (!ber_at_end(&params)) {
                if ((r = ber_enter(&params, TAG_CTX2, "OAEP pSourceFunc", &e)) < 0 ||
                    (r = ber_enter(&e, TAG_SEQUENCE, "OAEP pSourceFunc", &src)) < 0 ||
                    (r = expect_oid(&src, "OAEP pSourceFunc", oid_pspecified, sizeof(oid_pspecified),
                                    -EOPNOTSUPP)) < 0 ||
                    (r = ber_prim(&src, TAG_OCTET_STRING, "OAEP label", &p, &n)) < 0)
                        return r;
                if (n != 0)
                        return ber_fail(&src, -EOPNOTSUPP, "OAEP label", "an empty label");
                if ((r = ber_leave(&e, &src, "OAEP pSourceFunc")) < 0 ||
                    (r = ber_leave(&params, &e, "OAEP pSourceFunc")) < 0)
                        return r;
        }
        return ber_leave(b, &params, "RSAES-OAEP-params");
}

/* The one KeyTransRecipientInfo. */
static int ktri(struct ber *b, struct cms_envelope_info *info) {
        struct ber ri, alg, rid;
        int r;

        if (ber_at_end(b) || ber_peek(b) != TAG_SEQUENCE)
                return ber_fail(b, -EOPNOTSUPP, "RecipientInfo", "a KeyTransRecipientInfo");
        if ((r = ber_enter(b, TAG_SEQUENCE, "KeyTransRecipientInfo", &ri)) < 0 ||
            (r = small_int(&ri, "KeyTransRecipientInfo version", &info->ktri_version)) < 0)
                return r;
        if (info->ktri_version == 2) {
                r = ber_prim(&ri, TAG_CTX0_PRIM, "rid subjectKeyIdentifier", &info->rid, &info->rid_len);
                if (r < 0)
                        return r;
        } else if (info->ktri_version == 0) {
                if ((r = ber_enter(&ri, TAG_SEQUENCE, "rid issuerAndSerialNumber", &rid)) < 0)
                        return r;
                if (rid.indefinite)
                        return ber_fail(&ri, -EBADMSG, "rid issuerAndSerialNumber", "a definite length");
                info->rid = rid.buf + rid.pos;
                info->rid_len = rid.end - rid.pos;
                ri.pos = rid.end;
        } else
                return ber_fail(&ri, -EBADMSG, "KeyTransRecipientInfo version", "0 or 2");
        if (info->rid_len == 0 || info->rid_len > RID_MAX)
                return ber_fail(&ri, -EBADMSG, "rid", "1..1024 bytes");
        if ((r = ber_enter(&ri, TAG_SEQUENCE, "keyEncryptionAlgorithm", &alg)) < 0 ||
            (r = expect_oid(&alg, "keyEncryptionAlgorithm", oid_rsaes_oaep, sizeof(oid_rsaes_oaep),
                            -EOPNOTSUPP)) < 0 ||
            (r = oaep_params(&alg)) < 0 || (r = ber_leave(&ri, &alg, "keyEncryptionAlgorithm")) < 0 ||
            (r = ber_prim(&ri, TAG_OCTET_STRING, "encryptedKey", &info->encrypted_key,
                          &info->encrypted_key_len)) < 0)
                return r;
        if (info->encrypted_key_len == 0 || info->encrypted_key_len > ENCRYPTED_KEY_MAX)
                return ber_fail(&ri, -EBADMSG, "encryptedKey", "1..512 bytes");
        return ber_leave(b, &ri, "KeyTransRecipientInfo");
}

/* The chunks of a constructed [0] encryptedContent: OCTET STRINGs, primitive or (nested, bounded)
 * constructed. */
static int chunks(struct ber *b, struct cms_envelope_info *info, unsigned depth) {
        while (!ber_at_end(b)) {
                const uint8_t *p = NULL;
                size_t n = 0;
                int r;

                if (ber_peek(b) == TAG_OCTET_STRING_CONS) {
                        struct ber c;

                        if (depth >= CHUNK_DEPTH_MAX)
                                return ber_fail(b, -EBADMSG, "encryptedContent",
                                                "at most 4 levels of chunks");
                        if ((r = ber_enter(b, TAG_OCTET_STRING_CONS, "encryptedContent chunk", &c)) < 0 ||
                            (r = chunks(&c, info, depth + 1)) < 0 ||
                            (r = ber_leave(b, &c, "encryptedContent chunk")) < 0)
                                return r;
                        continue;
                }
                r = ber_prim(b, TAG_OCTET_STRING, "encryptedContent chunk", &p, &n);
                if (r < 0)
                        return r;
                if (n > CIPHERTEXT_MAX - info->ciphertext_len)
                        return ber_fail(b, -EMSGSIZE, "encryptedContent", "at most 4112 bytes");
                if (info->ciphertext_chunks == 0)
                        info->ciphertext_offset = (size_t) (p - b->buf);
                info->ciphertext_len += n;
                info->ciphertext_chunks++;
        }
        return 0;
}

static int encrypted_content_info(struct ber *b, struct cms_envelope_info *info) {
        struct ber eci, alg, c;
        const uint8_t *iv = NULL, *p = NULL;
        size_t n = 0;
        int r;

        if ((r = ber_enter(b, TAG_SEQUENCE, "EncryptedContentInfo", &eci)) < 0 ||
            (r = expect_oid(&eci, "EncryptedContentInfo contentType", oid_data, sizeof(oid_data),
                            -EOPNOTSUPP)) < 0 ||
            (r = ber_enter(&eci, TAG_SEQUENCE, "contentEncryptionAlgorithm", &alg)) < 0 ||
            (r = expect_oid(&alg, "contentEncryptionAlgorithm", oid_aes256_cbc, sizeof(oid_aes256_cbc),
                            -EOPNOTSUPP)) < 0 ||
            (r = ber_prim(&alg, TAG_OCTET_STRING, "AES-CBC IV", &iv, &n)) < 0)
                return r;
        if (n != CMS_AES_IV_LEN)
                return ber_fail(&alg, -EBADMSG, "AES-CBC IV", "16 bytes");
        memcpy(info->iv, iv, CMS_AES_IV_LEN);
        if ((r = ber_leave(&eci, &alg, "contentEncryptionAlgorithm")) < 0)
                return r;
        if (ber_at_end(&eci))
                return ber_fail(&eci, -EOPNOTSUPP, "encryptedContent", "the content (not detached)");
        if (ber_peek(&eci) == TAG_CTX0_PRIM) {
                r = ber_prim(&eci, TAG_CTX0_PRIM, "encryptedContent", &p, &n);
                if (r < 0)
                        return r;
                if (n > CIPHERTEXT_MAX)
                        return ber_fail(&eci, -EMSGSIZE, "encryptedContent", "at most 4112 bytes");
                info->ciphertext_offset = (size_t) (p - eci.buf);
                info->ciphertext_len = n;
                info->ciphertext_chunks = 1;
        } else {
                info->ciphertext_constructed = true;
                if ((r = ber_enter(&eci, TAG_CTX0, "encryptedContent", &c)) < 0 ||
                    (r = chunks(&c, info, 0)) < 0 || (r = ber_leave(&eci, &c, "encryptedContent")) < 0)
                        return r;
        }
        if (info->ciphertext_len == 0 || info->ciphertext_len % 16 != 0)
                return ber_fail(&eci, -EBADMSG, "encryptedContent", "a non-zero multiple of 16 bytes");
        return ber_leave(b, &eci, "EncryptedContentInfo");
}

int cms_envelope_parse(const uint8_t *ber, size_t len, struct cms_envelope_info *ret, char **ret_error) {
        struct cms_envelope_info info = {};
        struct ber top = { .buf = ber, .end = len, .error = ret_error }, ci, x0, env, ris;
        int r;

        if (!ber || !ret)
                return -EINVAL;
        if (len == 0 || len > CMS_KMS_INPUT_MAX)
                return errmsg_set(ret_error, -EMSGSIZE, "CMS envelope of %zu bytes, expected 1..%d", len,
                                  CMS_KMS_INPUT_MAX);
        if ((r = ber_enter(&top, TAG_SEQUENCE, "ContentInfo", &ci)) < 0 ||
            (r = expect_oid(&ci, "ContentInfo contentType", oid_enveloped_data, sizeof(oid_enveloped_data),
                            -EOPNOTSUPP)) < 0 ||
            (r = ber_enter(&ci, TAG_CTX0, "ContentInfo content", &x0)) < 0 ||
            (r = ber_enter(&x0, TAG_SEQUENCE, "EnvelopedData", &env)) < 0 ||
            (r = small_int(&env, "EnvelopedData version", &info.version)) < 0)
                return r;
        if (info.version != 0 && info.version != 2)
                return ber_fail(&env, -EOPNOTSUPP, "EnvelopedData version", "0 or 2");
        if ((r = ber_enter(&env, TAG_SET, "recipientInfos", &ris)) < 0 || (r = ktri(&ris, &info)) < 0)
                return r;
        if (!ber_at_end(&ris))
                return ber_fail(&ris, -EOPNOTSUPP, "recipientInfos", "exactly one recipient");
        if ((r = ber_leave(&env, &ris, "recipientInfos")) < 0 ||
            (r = encrypted_content_info(&env, &info)) < 0)
                return r;
        if (!ber_at_end(&env))
                return ber_fail(&env, -EOPNOTSUPP, "EnvelopedData", "no unprotectedAttrs");
        if ((r = ber_leave(&x0, &env, "EnvelopedData")) < 0 ||
            (r = ber_leave(&ci, &x0, "ContentInfo content")) < 0 ||
            (r = ber_leave(&top, &ci, "ContentInfo")) < 0)
                return r;
        if (top.pos != len)
                return ber_fail(&top, -EBADMSG, "end of input", "no trailing bytes");
        *ret = info;
        return 0;
}

/* ---- opening ---- */

DEFINE_TRIVIAL_CLEANUP_FUNC(CMS_ContentInfo *, CMS_ContentInfo_free);

/* Wipes what a memory BIO holds (its whole allocation) and frees it. */
static void mem_bio_wipe_free(BIO *b) {
        BUF_MEM *bm = NULL;

        if (!b)
                return;
        if (BIO_get_mem_ptr(b, &bm) > 0 && bm && bm->data)
                OPENSSL_cleanse(bm->data, bm->max);
        BIO_free(b);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(BIO *, mem_bio_wipe_free);

/* CMS_decrypt() copies the plaintext through a 4096-byte stack buffer (cms_copy_content() in
 * crypto/cms/cms_smime.c) that it does not cleanse. Its frames were below ours, so overwriting that
 * much stack from here, right after the call, wipes it (libgcrypt's "burn stack"); best effort, as the
 * exact depth is OpenSSL's business, hence the margin. */
#define BURN_STACK_BYTES (32 * 1024)

static __attribute__((noinline)) void burn_stack(void) {
        volatile uint8_t area[BURN_STACK_BYTES];

        secret_wipe((void *) area, sizeof(area));
        __asm__ __volatile__("" : : "r"(area) : "memory");
}

/* OpenSSL's view agrees with ours: an EnvelopedData with one rsaesOaep key transport recipient. */
static int check_cms(CMS_ContentInfo *cms, char **ret_error) {
        STACK_OF(CMS_RecipientInfo) * ris;
        CMS_RecipientInfo *ri;
        X509_ALGOR *alg = NULL;

        if (OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_enveloped)
                return errmsg_set(ret_error, -EOPNOTSUPP, "CMS content type is not envelopedData");
        ris = CMS_get0_RecipientInfos(cms);
        if (!ris || sk_CMS_RecipientInfo_num(ris) != 1)
                return errmsg_set(ret_error, -EOPNOTSUPP, "CMS envelope: expected exactly one recipient");
        ri = sk_CMS_RecipientInfo_value(ris, 0);
        if (CMS_RecipientInfo_type(ri) != CMS_RECIPINFO_TRANS ||
            CMS_RecipientInfo_ktri_get0_algs(ri, NULL, NULL, &alg) <= 0 || !alg ||
            OBJ_obj2nid(alg->algorithm) != NID_rsaesOaep)
                return errmsg_set(ret_error, -EOPNOTSUPP, "CMS envelope: expected RSAES-OAEP key transport");
        return 0;
}

int cms_envelope_open(const uint8_t *ber, size_t len, EVP_PKEY *key, struct secret_buf **ret_plaintext,
                      char **ret_error) {
        _cleanup_(CMS_ContentInfo_freep) CMS_ContentInfo *cms = NULL;
        _cleanup_(mem_bio_wipe_freep) BIO *out = NULL;
        struct cms_envelope_info info;
        const uint8_t *p = ber;
        BUF_MEM *bm = NULL;
        int r;

        if (!ber || !key || !ret_plaintext)
                return -EINVAL;
        r = cms_envelope_parse(ber, len, &info, ret_error);
        if (r < 0)
                return r;
        if (!EVP_PKEY_is_a(key, "RSA"))
                return errmsg_set(ret_error, -EINVAL, "CMS envelope: the recipient key is not RSA");
        cms = d2i_CMS_ContentInfo(NULL, &p, (long) len);
        if (!cms || p != ber + len) {
                ERR_clear_error();
                return errmsg_set(ret_error, -EBADMSG, "CMS envelope: OpenSSL cannot parse it%s",
                                  cms ? " to its end" : "");
        }
        r = check_cms(cms, ret_error);
        if (r < 0)
                return r;
        out = BIO_new(BIO_s_mem());
        if (!out)
                return -ENOMEM;
        /* CMS_DEBUG_DECRYPT: a key that does not open the envelope is an error, not a random content key
         * (the countermeasure against padding oracles on PKCS#1 v1.5, which we refuse anyway). */
        r = CMS_decrypt(cms, key, NULL, NULL, out, CMS_BINARY | CMS_DEBUG_DECRYPT);
        burn_stack();
        if (r <= 0) {
                ERR_clear_error();
                return errmsg_set(
                        ret_error, -EKEYREJECTED,
                        "CMS envelope: the key does not open it (wrong key, or corrupted key or padding)");
        }
        if (BIO_get_mem_ptr(out, &bm) <= 0 || !bm)
                return -ENOMEM;
        if (bm->length == 0 || bm->length > CMS_KMS_PLAINTEXT_MAX)
                return errmsg_set(ret_error, -EMSGSIZE,
                                  "CMS envelope: plaintext of %zu bytes, expected 1..%d", bm->length,
                                  CMS_KMS_PLAINTEXT_MAX);
        return secret_buf_dup(bm->data, bm->length, ret_plaintext);
}

int nsm_kms_keypair_new(EVP_PKEY **ret_key, uint8_t **ret_spki, size_t *ret_spki_len) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        unsigned char *der = NULL;
        uint8_t *copy;
        int n;

        if (!ret_key || !ret_spki || !ret_spki_len)
                return -EINVAL;
        key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) 2048); /* e = 65537 */
        if (!key) {
                ERR_clear_error();
                return -EIO;
        }
        n = i2d_PUBKEY(key, &der);
        if (n <= 0) {
                ERR_clear_error();
                return -EIO;
        }
        copy = malloc((size_t) n);
        if (!copy) {
                OPENSSL_free(der);
                return -ENOMEM;
        }
        memcpy(copy, der, (size_t) n);
        OPENSSL_free(der);
        *ret_key = TAKE_PTR(key);
        *ret_spki = copy;
        *ret_spki_len = (size_t) n;
        return 0;
}
