/* Target: aws_kms_encrypt_request_parse (the fake KMS's reader), aws_kms_encrypt_response_parse
 * (enclave-acm object create's reader)
 *
 * Input: an Encrypt request or response body. Invariants: errors are the documented ones with a
 * message; a parsed request's plaintext is 1..AWS_KMS_PLAINTEXT_MAX bytes and rebuilding the request
 * from it parses back to the same key id and plaintext; a parsed response is 1..AWS_KMS_BLOB_MAX
 * bytes and builds back to the same blob. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "aws/kms-encrypt.h"
#include "common/secret.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool documented(int r) {
        return r == -EBADMSG || r == -E2BIG || r == -ERANGE || r == -ENOTUNIQ || r == -ENOBUFS;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static uint8_t blob[AWS_KMS_BLOB_MAX], blob2[AWS_KMS_BLOB_MAX];
        char key_id[AWS_KMS_KEY_ID_MAX + 1], key_id2[AWS_KMS_KEY_ID_MAX + 1];
        struct secret_buf *pt = NULL, *body = NULL, *pt2 = NULL;
        struct aws_err e = {};
        int r;

        r = aws_kms_encrypt_request_parse(data, size, key_id, sizeof(key_id), &pt, &e);
        if (r < 0 && (!documented(r) || !e.msg[0] || pt))
                abort();
        if (r >= 0) {
                if (pt->len < 1 || pt->len > AWS_KMS_PLAINTEXT_MAX)
                        abort();
                if (aws_kms_encrypt_request_build(key_id, pt->data, pt->len, &body, NULL) < 0 ||
                    aws_kms_encrypt_request_parse(body->data, body->len, key_id2, sizeof(key_id2), &pt2,
                                                  NULL) < 0 ||
                    strcmp(key_id, key_id2) != 0 || pt2->len != pt->len ||
                    memcmp(pt->data, pt2->data, pt->len) != 0)
                        abort();
                secret_buf_free(pt);
                secret_buf_free(pt2);
                secret_buf_free(body);
        }

        e.msg[0] = '\0';
        r = aws_kms_encrypt_response_parse(data, size, blob, sizeof(blob), &e);
        if (r < 0 && (!documented(r) || !e.msg[0]))
                abort();
        if (r >= 0) {
                _cleanup_free_ char *resp = NULL;
                size_t len;

                if (r < 1 || r > (int) AWS_KMS_BLOB_MAX)
                        abort();
                if (aws_kms_encrypt_response_build("k", blob, (size_t) r, &resp, &len) < 0 ||
                    aws_kms_encrypt_response_parse(resp, len, blob2, sizeof(blob2), NULL) != r ||
                    memcmp(blob, blob2, (size_t) r) != 0)
                        abort();
        }
        return 0;
}
