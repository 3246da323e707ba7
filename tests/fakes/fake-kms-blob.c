/* The fake KMS's CiphertextBlob format: AES-256-GCM with the header as associated data. */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "tests/fakes/fake-kms-blob.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_CIPHER_CTX *, EVP_CIPHER_CTX_free);

int fkms_key_id_validate(const char *id) {
        size_t n;

        if (!id)
                return -EINVAL;
        n = strlen(id);
        if (n < 1 || n > FKMS_KEY_ID_MAX)
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                char c = id[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '.' || c == '_' || c == '-'))
                        return -EINVAL;
        }
        return 0;
}

/* One AES-256-GCM pass over in (encrypt) or in (decrypt, tag checked) into out. */
static int gcm(bool enc, const uint8_t *key, const uint8_t *nonce, const uint8_t *aad, size_t aad_len,
               const uint8_t *in, size_t len, uint8_t *out, uint8_t tag[static FKMS_TAG_LEN]) {
        _cleanup_(EVP_CIPHER_CTX_freep) EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
        int n = 0, fin = 0;

        if (!ctx)
                return -ENOMEM;
        if (EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) <= 0 ||
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, FKMS_NONCE_LEN, NULL) <= 0 ||
            EVP_CipherInit_ex(ctx, NULL, NULL, key, nonce, enc) <= 0 ||
            EVP_CipherUpdate(ctx, NULL, &n, aad, (int) aad_len) <= 0 ||
            EVP_CipherUpdate(ctx, out, &n, in, (int) len) <= 0)
                return -EIO;
        if (!enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, FKMS_TAG_LEN, tag) <= 0)
                return -EIO;
        if (EVP_CipherFinal_ex(ctx, out + n, &fin) <= 0)
                return enc ? -EIO : -EKEYREJECTED;
        if (enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, FKMS_TAG_LEN, tag) <= 0)
                return -EIO;
        return 0;
}

int fkms_blob_seal(const uint8_t key[static FKMS_MASTER_KEY_LEN], const char *key_id, const uint8_t *pt,
                   size_t pt_len, uint8_t **ret, size_t *ret_len) {
        _cleanup_free_ uint8_t *b = NULL;
        size_t idl, hdr, total;
        int r;

        if (fkms_key_id_validate(key_id) < 0 || !pt || pt_len < 1 || pt_len > FKMS_PLAINTEXT_MAX)
                return -EINVAL;
        idl = strlen(key_id);
        hdr = FKMS_MAGIC_LEN + 1 + idl;
        total = hdr + FKMS_NONCE_LEN + pt_len + FKMS_TAG_LEN;
        b = malloc(total);
        if (!b)
                return -ENOMEM;
        memcpy(b, FKMS_MAGIC, FKMS_MAGIC_LEN);
        b[FKMS_MAGIC_LEN] = (uint8_t) idl;
        memcpy(b + FKMS_MAGIC_LEN + 1, key_id, idl);
        if (RAND_bytes(b + hdr, FKMS_NONCE_LEN) <= 0)
                return -EIO;
        r = gcm(true, key, b + hdr, b, hdr, pt, pt_len, b + hdr + FKMS_NONCE_LEN,
                b + hdr + FKMS_NONCE_LEN + pt_len);
        if (r < 0)
                return r;
        *ret_len = total;
        *ret = TAKE_PTR(b);
        return 0;
}

static int refuse(const char **ret_why, const char *why) {
        if (ret_why)
                *ret_why = why;
        return -EBADMSG;
}

int fkms_blob_open(const uint8_t key[static FKMS_MASTER_KEY_LEN], const uint8_t *blob, size_t len,
                   char ret_key_id[static FKMS_KEY_ID_MAX + 1], struct secret_buf **ret_pt,
                   const char **ret_why) {
        _cleanup_secret_ struct secret_buf *pt = NULL;
        char id[FKMS_KEY_ID_MAX + 1];
        uint8_t tag[FKMS_TAG_LEN];
        size_t idl, hdr, ct_len;
        int r;

        if (!blob || len < FKMS_MAGIC_LEN + 1 || memcmp(blob, FKMS_MAGIC, FKMS_MAGIC_LEN) != 0)
                return refuse(ret_why, "magic (byte 0): not an FKMS1 blob");
        if (len > FKMS_BLOB_MAX)
                return refuse(ret_why, "length: over the largest blob");
        idl = blob[FKMS_MAGIC_LEN];
        hdr = FKMS_MAGIC_LEN + 1 + idl;
        if (idl < 1 || idl > FKMS_KEY_ID_MAX || len < hdr + FKMS_NONCE_LEN + 1 + FKMS_TAG_LEN)
                return refuse(ret_why, "key id length (byte 5) or blob too short");
        memcpy(id, blob + FKMS_MAGIC_LEN + 1, idl);
        id[idl] = '\0';
        if (fkms_key_id_validate(id) < 0)
                return refuse(ret_why, "key id (byte 6): not [A-Za-z0-9._-]");
        ct_len = len - hdr - FKMS_NONCE_LEN - FKMS_TAG_LEN;
        if (ct_len > FKMS_PLAINTEXT_MAX)
                return refuse(ret_why, "ciphertext: over the plaintext limit");
        r = secret_buf_new(ct_len, &pt);
        if (r < 0)
                return r;
        memcpy(tag, blob + len - FKMS_TAG_LEN, FKMS_TAG_LEN);
        r = gcm(false, key, blob + hdr, blob, hdr, blob + hdr + FKMS_NONCE_LEN, ct_len, pt->data, tag);
        if (r < 0) {
                secret_wipe(pt->data, ct_len); /* GCM wrote unverified plaintext */
                if (r == -EKEYREJECTED && ret_why)
                        *ret_why = "tag: does not verify under the master key";
                return r;
        }
        pt->len = ct_len;
        memcpy(ret_key_id, id, idl + 1);
        *ret_pt = TAKE_PTR(pt);
        return 0;
}
