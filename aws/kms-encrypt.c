/* KMS Encrypt request and response. The plaintext never goes through a growing buffer. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/kms-encrypt.h"
#include "common/base64.h"
#include "common/json.h"
#include "common/secret.h"

int aws_kms_key_id_validate(const char *k, struct aws_err *e) {
        size_t n = k ? strlen(k) : 0;

        if (n == 0 || n > AWS_KMS_KEY_ID_MAX)
                return aws_err(e, -EINVAL, "KeyId: not 1..%u characters", AWS_KMS_KEY_ID_MAX);
        for (size_t i = 0; i < n; i++)
                if (!((k[i] >= 'a' && k[i] <= 'z') || (k[i] >= 'A' && k[i] <= 'Z') ||
                      (k[i] >= '0' && k[i] <= '9') || strchr(":/_.-", k[i])))
                        return aws_err(e, -EINVAL, "KeyId: invalid character at byte %zu", i);
        return 0;
}

int aws_kms_encrypt_request_build(const char *key_id, const uint8_t *pt, size_t len, struct secret_buf **ret,
                                  struct aws_err *e) {
        static const char a[] = "{\"KeyId\":\"", b[] = "\",\"Plaintext\":\"",
                          c[] = "\",\"EncryptionAlgorithm\":\"" AWS_KMS_SYMMETRIC_DEFAULT "\"}";
        _cleanup_secret_ struct secret_buf *s = NULL;
        size_t kl, cap;
        int r;

        if ((r = aws_kms_key_id_validate(key_id, e)) < 0)
                return r;
        if (!pt || len == 0 || len > AWS_KMS_PLAINTEXT_MAX)
                return aws_err(e, len > AWS_KMS_PLAINTEXT_MAX ? -E2BIG : -EINVAL,
                               "Plaintext: %zu bytes, not 1..%u", len, AWS_KMS_PLAINTEXT_MAX);
        kl = strlen(key_id);
        cap = sizeof(a) - 1 + kl + sizeof(b) - 1 + base64_encoded_len(len) + sizeof(c);
        if ((r = secret_buf_new(cap, &s)) < 0)
                return r;
        memcpy(s->data, a, sizeof(a) - 1);
        s->len = sizeof(a) - 1;
        memcpy(s->data + s->len, key_id, kl);
        s->len += kl;
        memcpy(s->data + s->len, b, sizeof(b) - 1);
        s->len += sizeof(b) - 1;
        r = base64_encode(pt, len, (char *) s->data + s->len, cap - s->len);
        if (r < 0)
                return r;
        s->len += (size_t) r;
        memcpy(s->data + s->len, c, sizeof(c) - 1);
        s->len += sizeof(c) - 1;
        *ret = TAKE_PTR(s);
        return 0;
}

static int json_fail(int r, const struct json_error *je, struct aws_err *e) {
        char buf[160];

        return aws_err(e, r, "%s", je->what ? json_error_string(je, buf, sizeof(buf)) : "JSON: invalid");
}

int aws_kms_encrypt_request_parse(const void *body, size_t len, char *key_id, size_t key_id_size,
                                  struct secret_buf **ret_plaintext, struct aws_err *e) {
        const struct json_limits lim = { .max_depth = 2,
                                         .max_string = base64_encoded_len(AWS_KMS_PLAINTEXT_MAX),
                                         .max_input = AWS_KMS_BODY_MAX,
                                         .reject_duplicates = true };
        _cleanup_(json_reader_done) struct json_reader rd = {};
        _cleanup_secret_ struct secret_buf *b64 = NULL, *pt = NULL;
        struct json_error je = {};
        const char *key;
        bool have_key = false;
        size_t off = 0;
        int r;

        if (!body)
                return aws_err(e, -EBADMSG, "body: missing");
        if ((r = json_reader_init(&rd, body, len, &lim, &je)) < 0 || (r = json_object_begin(&rd)) < 0)
                return json_fail(r, &je, e);
        while ((r = json_object_next(&rd, &key)) > 0) {
                if (!strcmp(key, "KeyId")) {
                        r = json_read_string_buf(&rd, key_id, key_id_size);
                        if (r < 0)
                                return r == -E2BIG ? aws_err(e, r, "KeyId: too long") : json_fail(r, &je, e);
                        if (aws_kms_key_id_validate(key_id, e) < 0)
                                return aws_err(e, -EBADMSG, "KeyId: not a key id, ARN or alias");
                        have_key = true;
                } else if (!strcmp(key, "Plaintext")) {
                        if ((r = json_read_secret(&rd, &b64)) < 0)
                                return json_fail(r, &je, e);
                } else if (!strcmp(key, "EncryptionAlgorithm")) {
                        char alg[32];
                        if ((r = json_read_string_buf(&rd, alg, sizeof(alg))) < 0 ||
                            strcmp(alg, AWS_KMS_SYMMETRIC_DEFAULT) != 0)
                                return aws_err(e, -EBADMSG,
                                               "EncryptionAlgorithm: not " AWS_KMS_SYMMETRIC_DEFAULT);
                } else
                        return aws_err(e, -EBADMSG,
                                       "unexpected member (only KeyId, Plaintext, EncryptionAlgorithm)");
        }
        if (r < 0 || (r = json_reader_end(&rd)) < 0)
                return json_fail(r, &je, e);
        if (!have_key)
                return aws_err(e, -EBADMSG, "KeyId: missing");
        if (!b64 || b64->len == 0)
                return aws_err(e, -EBADMSG, "Plaintext: missing");
        if ((r = secret_buf_new(base64_decoded_max(b64->len) + 1, &pt)) < 0)
                return r;
        r = base64_decode((const char *) b64->data, b64->len, pt->data, pt->cap, &off);
        if (r < 0)
                return aws_err(e, -EBADMSG, "Plaintext: invalid base64 at character %zu", off);
        if (r == 0 || r > (int) AWS_KMS_PLAINTEXT_MAX)
                return aws_err(e, r ? -E2BIG : -EBADMSG, "Plaintext: not 1..%u bytes",
                               AWS_KMS_PLAINTEXT_MAX);
        pt->len = (size_t) r;
        *ret_plaintext = TAKE_PTR(pt);
        return 0;
}

int aws_kms_encrypt_response_build(const char *key_id, const uint8_t *blob, size_t blob_len, char **ret_body,
                                   size_t *ret_len) {
        _cleanup_(json_writer_done) struct json_writer w;
        _cleanup_free_ char *b64 = NULL;
        int r;

        json_writer_init(&w, true);
        if (aws_kms_key_id_validate(key_id, NULL) < 0 || !blob || blob_len == 0 ||
            blob_len > AWS_KMS_BLOB_MAX)
                return -EINVAL;
        b64 = malloc(base64_encoded_len(blob_len) + 1);
        if (!b64)
                return -ENOMEM;
        if ((r = base64_encode(blob, blob_len, b64, base64_encoded_len(blob_len) + 1)) < 0)
                return r;
        json_begin_object(&w, NULL);
        json_string(&w, "CiphertextBlob", b64);
        json_string(&w, "KeyId", key_id);
        json_string(&w, "EncryptionAlgorithm", AWS_KMS_SYMMETRIC_DEFAULT);
        json_end_object(&w);
        return json_writer_finish(&w, ret_body, ret_len);
}

int aws_kms_encrypt_response_parse(const void *body, size_t len, uint8_t *blob, size_t blob_size,
                                   struct aws_err *e) {
        const struct json_limits lim = { .max_depth = 2,
                                         .max_string = base64_encoded_len(AWS_KMS_BLOB_MAX),
                                         .max_input = AWS_KMS_BODY_MAX,
                                         .reject_duplicates = true };
        _cleanup_(json_reader_done) struct json_reader rd = {};
        _cleanup_free_ char *b64 = NULL;
        struct json_error je = {};
        const char *key;
        size_t off = 0, n;
        int r;

        if (!body)
                return aws_err(e, -EBADMSG, "body: missing");
        if ((r = json_reader_init(&rd, body, len, &lim, &je)) < 0 || (r = json_object_begin(&rd)) < 0)
                return json_fail(r, &je, e);
        while ((r = json_object_next(&rd, &key)) > 0) {
                if (!strcmp(key, "CiphertextBlob")) {
                        if ((r = json_read_string(&rd, &b64)) < 0)
                                return json_fail(r, &je, e);
                } else if ((r = json_skip(&rd)) < 0)
                        return json_fail(r, &je, e);
        }
        if (r < 0 || (r = json_reader_end(&rd)) < 0)
                return json_fail(r, &je, e);
        if (!b64)
                return aws_err(e, -EBADMSG, "CiphertextBlob: missing");
        n = strlen(b64);
        r = base64_decode(b64, n, blob, MIN(blob_size, (size_t) AWS_KMS_BLOB_MAX), &off);
        if (r == -ENOBUFS)
                return aws_err(e, -E2BIG, "CiphertextBlob: over %zu bytes",
                               MIN(blob_size, (size_t) AWS_KMS_BLOB_MAX));
        if (r < 0)
                return aws_err(e, -EBADMSG, "CiphertextBlob: invalid base64 at character %zu", off);
        if (r == 0)
                return aws_err(e, -EBADMSG, "CiphertextBlob: empty");
        return r;
}
