/* KMS's CiphertextForRecipient: a BER CMS EnvelopedData (RSAES-OAEP-SHA256 key transport, AES-256-CBC
 * content; NITRO-FORMATS.md 4), checked shape by shape and opened with OpenSSL's CMS API into locked
 * memory; and the ephemeral RSA-2048 key pair whose SPKI goes into the attestation document. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "common/cleanup.h"
#include "common/secret.h"

#define CMS_KMS_INPUT_MAX     6144 /* CiphertextForRecipient 1..6144 bytes (3.4) */
#define CMS_KMS_PLAINTEXT_MAX 4096 /* KMS plaintext 1..4096 bytes */
#define CMS_AES_IV_LEN        16

/* What the shape check found; pointers are into the caller's input. */
struct cms_envelope_info {
        unsigned version;      /* EnvelopedData: 0 or 2 (KMS: 2) */
        unsigned ktri_version; /* 2: rid is a [0] subjectKeyIdentifier (KMS); 0: issuerAndSerialNumber */
        const uint8_t *rid;    /* the SKI bytes, or the issuerAndSerialNumber's content */
        size_t rid_len;
        const uint8_t *encrypted_key;
        size_t encrypted_key_len;
        uint8_t iv[CMS_AES_IV_LEN];
        size_t ciphertext_len;       /* all chunks together, a non-zero multiple of 16 */
        bool ciphertext_constructed; /* [0] constructed (chunks) rather than [0] primitive */
        size_t ciphertext_chunks;
        size_t ciphertext_offset; /* where the first chunk's bytes start */
};

/* The bounded walk over the exact shape of section 4: ContentInfo(envelopedData) > EnvelopedData with
 * one KeyTransRecipientInfo, rsaesOaep with hashFunc SHA-256 and MGF1-SHA-256 and an empty label,
 * id-data content under aes256-CBC with a 16-byte IV, encryptedContent in either form, no
 * originatorInfo or unprotectedAttrs, nothing after the end. -EBADMSG for malformed input,
 * -EOPNOTSUPP for another algorithm or structure, -EMSGSIZE over the caps; ret_error names the field
 * and byte offset. */
_must_check_ int cms_envelope_parse(const uint8_t *ber, size_t len, struct cms_envelope_info *ret,
                                    char **ret_error);

/* The check above, then OpenSSL's CMS_decrypt() with key: the plaintext (1..CMS_KMS_PLAINTEXT_MAX
 * bytes) lands in a new secret_buf; OpenSSL's copy is wiped. -EKEYREJECTED when the key does not
 * open it (wrong key, corrupted key or padding). */
_must_check_ int cms_envelope_open(const uint8_t *ber, size_t len, EVP_PKEY *key,
                                   struct secret_buf **ret_plaintext, char **ret_error);

/* A fresh RSA-2048 (e = 65537) key and its DER SubjectPublicKeyInfo (malloc()ed) for the attestation
 * document's public_key. EVP_PKEY_free() wipes the key. */
_must_check_ int nsm_kms_keypair_new(EVP_PKEY **ret_key, uint8_t **ret_spki, size_t *ret_spki_len);
