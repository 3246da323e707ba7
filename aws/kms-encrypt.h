/* KMS Encrypt (what `enclave-acm object create` asks, and the fake KMS answers): the request carries
 * the plaintext, so it is built into and parsed from secret_bufs only. Pure: no I/O. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "aws/err.h"
#include "aws/kms.h"
#include "common/cleanup.h"

struct secret_buf;

#define AWS_KMS_ENCRYPT_TARGET    "TrentService.Encrypt"
#define AWS_KMS_PLAINTEXT_MAX     4096u /* KMS Encrypt's limit */
#define AWS_KMS_SYMMETRIC_DEFAULT "SYMMETRIC_DEFAULT"

/* Key ids as KMS takes them: a key id, a key ARN, an alias name or alias ARN: 1..AWS_KMS_KEY_ID_MAX of
 * [A-Za-z0-9:/_.-]. */
_must_check_ int aws_kms_key_id_validate(const char *key_id, struct aws_err *e);

/* {"KeyId":..,"Plaintext":base64,"EncryptionAlgorithm":"SYMMETRIC_DEFAULT"} into a new secret_buf.
 * plaintext 1..AWS_KMS_PLAINTEXT_MAX bytes. -EINVAL / -E2BIG with e naming the field, -ENOMEM. */
_must_check_ int aws_kms_encrypt_request_build(const char *key_id, const uint8_t *plaintext, size_t len,
                                               struct secret_buf **ret_body, struct aws_err *e);

/* The fake KMS's side: KeyId (required, copied into key_id) and Plaintext (decoded straight into a
 * new secret_buf); EncryptionAlgorithm, if present, must be SYMMETRIC_DEFAULT; EncryptionContext and
 * GrantTokens are refused (not used by us). -EBADMSG/-E2BIG/-ENOTUNIQ, -ENOMEM. */
_must_check_ int aws_kms_encrypt_request_parse(const void *body, size_t len, char *key_id,
                                               size_t key_id_size, struct secret_buf **ret_plaintext,
                                               struct aws_err *e);

/* {"CiphertextBlob":base64,"KeyId":..,"EncryptionAlgorithm":"SYMMETRIC_DEFAULT"} (compact; free()). */
_must_check_ int aws_kms_encrypt_response_build(const char *key_id, const uint8_t *blob, size_t blob_len,
                                                char **ret_body, size_t *ret_len);
/* The CiphertextBlob (1..AWS_KMS_BLOB_MAX bytes) into blob; its length, or -EBADMSG/-E2BIG/-ENOBUFS. */
_must_check_ int aws_kms_encrypt_response_parse(const void *body, size_t len, uint8_t *blob,
                                                size_t blob_size, struct aws_err *e);
