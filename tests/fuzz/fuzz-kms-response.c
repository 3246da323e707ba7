/* Target: aws_kms_decrypt_response_parse, aws_kms_random_response_parse, aws_kms_error_parse
 *
 * Input: a response body as KMS (or anything on the path to it) might send. Invariants: errors are
 * the documented ones; a parsed Decrypt response written back with aws_kms_decrypt_response_build()
 * parses to the same fields; an error's type name and message are printable ASCII within their caps. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "aws/kms.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool documented(int r) {
        return r == -EBADMSG || r == -E2BIG || r == -ERANGE || r == -ENOTUNIQ;
}

static void check_printable(const char *s, size_t max) {
        size_t n = strlen(s);

        if (n > max)
                abort();
        for (size_t i = 0; i < n; i++)
                if (s[i] < 0x20 || s[i] > 0x7e)
                        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static uint8_t cfr[AWS_KMS_BLOB_MAX], cfr2[AWS_KMS_BLOB_MAX];
        struct aws_kms_decrypt_resp res, res2;
        struct aws_kms_error_info info;
        struct aws_err e = {};
        int r;

        r = aws_kms_decrypt_response_parse(data, size, cfr, sizeof(cfr), &res, &e);
        if (r < 0 && (!documented(r) || !e.msg[0]))
                abort();
        if (r >= 0) {
                _cleanup_free_ char *body = NULL;
                size_t len;

                if (res.cfr_len < 1 || res.cfr_len > AWS_KMS_BLOB_MAX || !res.key_id[0])
                        abort();
                if (aws_kms_decrypt_response_build(
                            res.key_id, res.encryption_algorithm[0] ? res.encryption_algorithm : NULL, cfr,
                            res.cfr_len, &body, &len) < 0)
                        abort();
                if (aws_kms_decrypt_response_parse(body, len, cfr2, sizeof(cfr2), &res2, NULL) < 0 ||
                    strcmp(res.key_id, res2.key_id) != 0 ||
                    strcmp(res.encryption_algorithm, res2.encryption_algorithm) != 0 ||
                    res.cfr_len != res2.cfr_len || memcmp(cfr, cfr2, res.cfr_len) != 0)
                        abort();
        }

        r = aws_kms_random_response_parse(data, size, cfr, sizeof(cfr), NULL);
        if (r < 0 ? !documented(r) : (r < 1 || r > (int) AWS_KMS_BLOB_MAX))
                abort();

        r = aws_kms_error_parse(data, size, &info, NULL);
        if (r < 0 && !documented(r))
                abort();
        if (r >= 0) {
                if ((int) info.type < 0 || info.type >= _AWS_KMS_ERR_MAX)
                        abort();
                check_printable(info.type_name, AWS_KMS_TYPE_MAX);
                check_printable(info.message, AWS_KMS_MESSAGE_MAX + 3);
        }
        return 0;
}
