/* Target: aws_kms_request_parse (the fake KMS's reader of Decrypt and GenerateRandom bodies)
 *
 * Input: a request body. It is parsed as both operations. Invariants: errors are the documented ones
 * and name a field; what parses is within the limits, and a Decrypt request written back with
 * aws_kms_decrypt_request_build() (when its strings fit the builder's caps) parses to the same blobs. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "aws/kms.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool documented(int r) {
        return r == -EBADMSG || r == -E2BIG || r == -ERANGE || r == -ENOTUNIQ;
}

static void roundtrip(const struct aws_kms_request *p) {
        struct aws_kms_context_pair ctx[AWS_KMS_CONTEXT_MAX];
        struct aws_kms_decrypt_req q = {
                p->ciphertext,      p->ciphertext_len,     p->key_id, ctx, p->n_context,
                p->attestation_doc, p->attestation_doc_len
        };
        _cleanup_(aws_kms_request_done) struct aws_kms_request p2 = {};
        _cleanup_free_ char *body = NULL;
        size_t len;

        for (size_t i = 0; i < p->n_context; i++)
                ctx[i] = (struct aws_kms_context_pair){ p->context_keys[i], p->context_values[i] };
        if (aws_kms_decrypt_request_build(&q, &body, &len, NULL) < 0)
                return; /* e.g. a context value over the builder's cap */
        if (aws_kms_request_parse(AWS_KMS_DECRYPT, body, len, &p2, NULL) < 0 ||
            p2.ciphertext_len != p->ciphertext_len ||
            memcmp(p2.ciphertext, p->ciphertext, p->ciphertext_len) != 0 ||
            p2.attestation_doc_len != p->attestation_doc_len ||
            memcmp(p2.attestation_doc, p->attestation_doc, p->attestation_doc_len) != 0 ||
            p2.n_context != p->n_context)
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        for (int op = 0; op < _AWS_KMS_OP_MAX; op++) {
                _cleanup_(aws_kms_request_done) struct aws_kms_request p = {};
                struct aws_err e = {};
                int r;

                r = aws_kms_request_parse((enum aws_kms_op) op, data, size, &p, &e);
                if (r < 0) {
                        if (!documented(r) || !e.msg[0])
                                abort();
                        continue;
                }
                if (!p.attestation_doc || p.attestation_doc_len < 1 ||
                    p.attestation_doc_len > AWS_KMS_ATTESTATION_MAX)
                        abort();
                if (op == AWS_KMS_DECRYPT) {
                        if (!p.ciphertext || p.ciphertext_len < 1 || p.ciphertext_len > AWS_KMS_BLOB_MAX)
                                abort();
                        roundtrip(&p);
                } else if (p.number_of_bytes < 1 || p.number_of_bytes > AWS_KMS_RANDOM_MAX)
                        abort();
        }
        return 0;
}
