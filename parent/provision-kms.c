/* The parent's side of the KMS key path (protocol version 3): ciphertext files, ATTEST, KMS_BEGIN /
 * KMS_END and TOKEN_REFRESH. Library code: nothing here logs. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/errmsg.h"
#include "common/rpc-codec.h"
#include "parent/provision.h"

static int b64_value(uint8_t ch) {
        if (ch >= 'A' && ch <= 'Z')
                return ch - 'A';
        if (ch >= 'a' && ch <= 'z')
                return ch - 'a' + 26;
        if (ch >= '0' && ch <= '9')
                return ch - '0' + 52;
        if (ch == '+')
                return 62;
        if (ch == '/')
                return 63;
        return -1;
}

static bool b64_char(uint8_t ch) {
        return b64_value(ch) >= 0 || ch == '=' || ch == '\n' || ch == '\r';
}

int provision_ciphertext_decode(const uint8_t *data, size_t len, uint8_t **ret, size_t *ret_len) {
        _cleanup_free_ uint8_t *out = NULL;
        size_t n = 0, digits = 0, pad = 0;
        uint32_t acc = 0;

        for (size_t i = 0; i < len; i++)
                if (!b64_char(data[i]))
                        return 0; /* raw binary */
        out = malloc(len / 4 * 3 + 3);
        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < len; i++) {
                uint8_t ch = data[i];
                int v;

                if (ch == '\r') {
                        if (i + 1 >= len || data[i + 1] != '\n')
                                return -EBADMSG;
                        continue;
                }
                if (ch == '\n')
                        continue;
                if (ch == '=') {
                        /* padding only at the end of the last group: "xx==" or "xxx=" */
                        if (digits % 4 < 2 || ++pad > 2)
                                return -EBADMSG;
                        digits++;
                        continue;
                }
                if (pad > 0)
                        return -EBADMSG;
                v = b64_value(ch);
                acc = acc << 6 | (uint32_t) v;
                digits++;
                if (digits % 4 == 0) {
                        out[n++] = (uint8_t) (acc >> 16);
                        out[n++] = (uint8_t) (acc >> 8);
                        out[n++] = (uint8_t) acc;
                        acc = 0;
                }
        }
        if (digits == 0 || digits % 4 != 0)
                return -EBADMSG;
        if (pad > 0) {
                /* the last group had 4 - pad digits: acc holds them, shifted as if the rest were zero */
                unsigned have = 4 - (unsigned) pad;

                acc <<= 6 * pad;
                /* non-canonical: bits below the last byte must be zero */
                if ((have == 2 && (acc & 0xffff)) || (have == 3 && (acc & 0xff)))
                        return -EBADMSG;
                out[n++] = (uint8_t) (acc >> 16);
                if (have == 3)
                        out[n++] = (uint8_t) (acc >> 8);
        }
        *ret = TAKE_PTR(out);
        *ret_len = n;
        return 1;
}

int provision_read_ciphertext(const char *path, uint8_t **ret, size_t *ret_len, char **ret_error) {
        _cleanup_secret_ struct secret_buf *file = NULL;
        _cleanup_free_ uint8_t *decoded = NULL;
        size_t len = 0;
        int r;

        /* base64 of the largest blob, with line breaks */
        r = provision_read_file(path, 2 * RPC_CIPHERTEXT_MAX + 1024, "encrypted key", &file, ret_error);
        if (r < 0)
                return r;
        r = provision_ciphertext_decode(file->data, file->len, &decoded, &len);
        if (r == -ENOMEM)
                return errmsg_set(ret_error, r, "Out of memory");
        if (r < 0)
                return errmsg_set(
                        ret_error, r,
                        "The encrypted key file '%s' holds only base64 characters but is not valid "
                        "base64 (bad padding, length or line breaks)",
                        path);
        if (r == 0) {
                decoded = malloc(file->len);
                if (!decoded)
                        return errmsg_set(ret_error, -ENOMEM, "Out of memory");
                memcpy(decoded, file->data, file->len);
                len = file->len;
        }
        if (len == 0 || len > RPC_CIPHERTEXT_MAX)
                return errmsg_set(ret_error, -EFBIG,
                                  "The encrypted key in '%s' is %zu bytes; a KMS ciphertext is 1 to %d",
                                  path, len, RPC_CIPHERTEXT_MAX);
        *ret = TAKE_PTR(decoded);
        *ret_len = len;
        return 0;
}

int provision_attest(struct rpc_client *c, const uint8_t *nonce, size_t nonce_len, uint8_t **ret_doc,
                     size_t *ret_len) {
        struct rpc_attest_resp resp = {};
        uint8_t *doc;
        int r;

        r = rpc_client_call_msg(c, RPC_CALL_ATTEST,
                                &(struct rpc_attest_req){ .nonce = { nonce, nonce_len } }, &resp);
        if (r < 0)
                return r;
        if (resp.document.len == 0)
                return -EBADMSG;
        doc = malloc(resp.document.len);
        if (!doc)
                return -ENOMEM;
        memcpy(doc, resp.document.ptr, resp.document.len);
        *ret_doc = doc;
        *ret_len = resp.document.len;
        return 0;
}

int provision_kms_begin(struct rpc_client *c, const struct provision_kms_creds *creds, uint64_t time_ms,
                        struct rpc_kms_begin_resp *ret_resp) {
        struct rpc_kms_begin_resp resp = {};
        struct rpc_kms_begin_req req = {
                .region = { (const uint8_t *) creds->region, strlen(creds->region) },
                .access_key_id = { (const uint8_t *) creds->access_key_id, strlen(creds->access_key_id) },
                .secret_access_key = { creds->secret_access_key->data, creds->secret_access_key->len },
                .session_token = { creds->session_token ? creds->session_token->data : NULL,
                                   creds->session_token ? creds->session_token->len : 0 },
                .time = time_ms,
        };
        int r;

        r = rpc_client_call_msg(c, RPC_CALL_KMS_BEGIN, &req, &resp);
        if (r < 0)
                return r;
        if (ret_resp)
                *ret_resp = resp;
        return 0;
}

int provision_kms_end(struct rpc_client *c) {
        return rpc_client_call_msg(c, RPC_CALL_KMS_END, NULL, NULL);
}

int provision_token_refresh(struct rpc_client *c, const char *label, const struct secret_buf *pin,
                            uint32_t ttl, const struct provision_refresh_key *keys, size_t n_keys,
                            uint64_t *ret_expires) {
        struct rpc_token_refresh_resp resp = {};
        struct rpc_token_refresh_req req = {
                .label = { (const uint8_t *) label, strlen(label) },
                .pin = { pin->data, pin->len },
                .n_keys = n_keys,
                .ttl = ttl,
        };
        int r;

        if (n_keys == 0 || n_keys > RPC_MAX_KEYS)
                return -EINVAL;
        for (size_t i = 0; i < n_keys; i++)
                req.keys[i] = (struct rpc_refresh_key){
                        .id = keys[i].id,
                        .ciphertext = { keys[i].ciphertext, keys[i].ciphertext_len },
                };
        r = rpc_client_call_msg(c, RPC_CALL_TOKEN_REFRESH, &req, &resp);
        if (r < 0)
                return r;
        if (ret_expires)
                *ret_expires = resp.expires;
        return 0;
}
