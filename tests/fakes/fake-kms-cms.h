/* What the fake KMS answers in CiphertextForRecipient: a BER CMS EnvelopedData as KMS makes it
 * (NITRO-FORMATS.md 4), with OpenSSL's CMS API. Pure: no I/O. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "common/cleanup.h"

#define FKMS_RSA_MIN_BITS 2048

/* The recipient's key from the attestation document's public_key: a DER SubjectPublicKeyInfo of an
 * RSA key of FKMS_RSA_MIN_BITS or more, nothing after it. -EBADMSG (not an SPKI), -EKEYREJECTED (not
 * RSA, or too small); *ret_why says which. */
_must_check_ int fkms_recipient_key(const uint8_t *spki, size_t len, EVP_PKEY **ret, const char **ret_why);

/* EnvelopedData for recipient: version 2, one KeyTransRecipientInfo (version 2, rid = [0] 32-byte
 * subjectKeyIdentifier = SHA-256 of the recipient's SPKI, RSAES-OAEP with SHA-256 and MGF1-SHA-256),
 * id-data under AES-256-CBC, streamed BER with indefinite lengths. signer signs the throwaway
 * certificate CMS_add1_recipient_cert() wants (it is not in the output). *ret is malloc()ed. */
_must_check_ int fkms_cms_envelope(EVP_PKEY *recipient, EVP_PKEY *signer, const uint8_t *pt, size_t len,
                                   uint8_t **ret, size_t *ret_len);
