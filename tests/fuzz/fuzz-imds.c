/* Target: aws_imds_credentials_parse, aws_imds_info_role_arn, aws_imds_role_name_parse,
 * aws_imds_partition_parse, aws_imds_role_tag_parse, aws_imds_token_validate
 *
 * Input: a body as IMDS (or anything answering on its address) might send. Invariants: errors are
 * the documented ones with a message; parsed credentials are within their bounds; a role name and
 * a derived role ARN are what aws_role_arn_validate() accepts. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "aws/imds.h"
#include "common/secret.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool documented(int r) {
        return r == -EBADMSG || r == -E2BIG || r == -ERANGE || r == -ENOTUNIQ || r == -EINVAL ||
               r == -EKEYEXPIRED || r == -ENOENT;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct aws_imds_credentials c = {};
        char role[AWS_IMDS_ROLE_MAX + 1], arn[AWS_IMDS_ARN_MAX + 1], part[AWS_IMDS_PARTITION_MAX + 1];
        struct aws_err e = {};
        bool path;
        int r;

        r = aws_imds_credentials_parse(data, size, &c, &e);
        if (r < 0 && (!documented(r) || !e.msg[0] || c.secret_access_key || c.session_token))
                abort();
        if (r >= 0) {
                size_t n = strlen(c.access_key_id);
                if (n < AWS_IMDS_AKID_MIN || n > AWS_IMDS_AKID_MAX || !c.secret_access_key ||
                    c.secret_access_key->len < 1 || c.secret_access_key->len > AWS_IMDS_SECRET_MAX ||
                    !c.session_token || c.session_token->len < 1 ||
                    c.session_token->len > AWS_IMDS_SESSION_MAX)
                        abort();
                aws_imds_credentials_done(&c);
        }

        e.msg[0] = '\0';
        r = aws_imds_role_name_parse(data, size, role, sizeof(role), &e);
        if (r < 0 && (!documented(r) || !e.msg[0]))
                abort();
        if (r >= 0) {
                if (strlen(role) < 1 || strlen(role) > AWS_IMDS_ROLE_MAX)
                        abort();
                r = aws_imds_info_role_arn(data, size, role, arn, sizeof(arn), &path, &e);
                if (r < 0 && !documented(r))
                        abort();
                if (r >= 0 && aws_role_arn_validate(arn, NULL) < 0)
                        abort();
        }
        r = aws_imds_info_role_arn(data, size, "web-role", arn, sizeof(arn), &path, &e);
        if (r < 0 && !documented(r))
                abort();
        if (r >= 0 && aws_role_arn_validate(arn, NULL) < 0)
                abort();

        r = aws_imds_partition_parse(data, size, part, sizeof(part), &e);
        if (r < 0 ? !documented(r) : (strncmp(part, "aws", 3) != 0))
                abort();
        r = aws_imds_role_tag_parse(data, size, arn, sizeof(arn), &e);
        if (r < 0 ? !documented(r) : aws_role_arn_validate(arn, NULL) < 0)
                abort();
        r = aws_imds_token_validate(data, size, &e);
        if (r < 0 && !documented(r))
                abort();
        return 0;
}
