/* The fake KMS's own CiphertextBlob: "FKMS1", the key id, a nonce and AES-256-GCM under a master key.
 * Pure: no I/O. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "common/cleanup.h"
#include "common/secret.h"

#define FKMS_MASTER_KEY_LEN 32u
#define FKMS_KEY_ID_MAX     128u
#define FKMS_PLAINTEXT_MAX  4096u /* KMS: Plaintext 1..4096 bytes */
#define FKMS_NONCE_LEN      12u
#define FKMS_TAG_LEN        16u
#define FKMS_MAGIC          "FKMS1"
#define FKMS_MAGIC_LEN      5u
/* magic | u8 key id length | key id | nonce | ciphertext | tag; the bytes before the nonce are the
 * associated data. */
#define FKMS_BLOB_MAX \
        (FKMS_MAGIC_LEN + 1u + FKMS_KEY_ID_MAX + FKMS_NONCE_LEN + FKMS_PLAINTEXT_MAX + FKMS_TAG_LEN)

/* A key id: 1..FKMS_KEY_ID_MAX of [A-Za-z0-9._-] (KMS key ids are UUIDs). 0 or -EINVAL. */
_must_check_ int fkms_key_id_validate(const char *id);

/* Seals pt (1..FKMS_PLAINTEXT_MAX bytes) with a fresh random nonce; *ret is malloc()ed. -EINVAL for a
 * bad key id or length, -ENOMEM, -EIO (OpenSSL). */
_must_check_ int fkms_blob_seal(const uint8_t key[static FKMS_MASTER_KEY_LEN], const char *key_id,
                                const uint8_t *pt, size_t pt_len, uint8_t **ret, size_t *ret_len);

/* Opens a blob: the key id into ret_key_id and the plaintext into a new secret_buf. -EBADMSG with
 * *ret_why naming the part for a malformed blob, -EKEYREJECTED when the tag does not verify (another
 * master key, a changed byte). */
_must_check_ int fkms_blob_open(const uint8_t key[static FKMS_MASTER_KEY_LEN], const uint8_t *blob,
                                size_t len, char ret_key_id[static FKMS_KEY_ID_MAX + 1],
                                struct secret_buf **ret_pt, const char **ret_why);
