/* Target: aws_s3_object_parse, aws_s3_error_code, aws_s3_uri_parse
 *
 * Input: an S3 response body (the certificate object, or an XML error), and the same bytes as an
 * s3:// URI. Invariants: errors are the documented ones with a message; a parsed object has a PEM
 * certificate and 1..AWS_KMS_BLOB_MAX bytes of ciphertext, and aws_s3_object_build() of its fields
 * parses back to the same fields; an error code is [A-Za-z0-9.]; a parsed URI's parts validate. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "aws/kms.h"
#include "aws/s3.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool documented(int r) {
        return r == -EBADMSG || r == -E2BIG || r == -ERANGE || r == -ENOTUNIQ || r == -EINVAL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct aws_s3_object o = {}, o2 = {};
        char code[AWS_S3_CODE_MAX + 1];
        struct aws_err e = {};
        int r;

        r = aws_s3_object_parse(data, size, &o, &e);
        if (r < 0 && (!documented(r) || !e.msg[0] || o.certificate))
                abort();
        if (r >= 0) {
                _cleanup_free_ char *doc = NULL;
                size_t len;

                if (strncmp(o.certificate, "-----BEGIN CERTIFICATE-----", 27) != 0 || o.ciphertext_len < 1 ||
                    o.ciphertext_len > AWS_KMS_BLOB_MAX || !o.encryption_method[0])
                        abort();
                if (aws_s3_object_build(o.certificate, o.certificate_chain, o.ciphertext, o.ciphertext_len,
                                        o.encryption_method, &doc, &len) < 0)
                        abort();
                if (aws_s3_object_parse(doc, len, &o2, NULL) < 0 ||
                    strcmp(o.certificate, o2.certificate) != 0 ||
                    strcmp(o.certificate_chain, o2.certificate_chain) != 0 ||
                    strcmp(o.encrypted_private_key, o2.encrypted_private_key) != 0 ||
                    strcmp(o.encryption_method, o2.encryption_method) != 0 ||
                    o.ciphertext_len != o2.ciphertext_len ||
                    memcmp(o.ciphertext, o2.ciphertext, o.ciphertext_len) != 0)
                        abort();
                aws_s3_object_done(&o);
                aws_s3_object_done(&o2);
        }

        r = aws_s3_error_code(data, size, code, sizeof(code));
        if (r < 0 && r != -ENOENT)
                abort();
        if (r >= 0) {
                if (!code[0])
                        abort();
                for (size_t i = 0; code[i]; i++)
                        if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.",
                                    code[i]))
                                abort();
        }

        if (size < 2048) {
                char uri[2048];
                struct aws_s3_uri u;

                memcpy(uri, data, size);
                uri[size] = '\0';
                r = aws_s3_uri_parse(uri, &u, &e);
                if (r < 0 && r != -EINVAL)
                        abort();
                if (r >= 0 &&
                    (aws_s3_bucket_validate(u.bucket, NULL) < 0 || aws_s3_key_validate(u.key, NULL) < 0))
                        abort();
        }
        return 0;
}
