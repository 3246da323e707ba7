/* Drives the IMDS and S3 clients (aws/imds-client.h, aws/s3-client.h) from the shell tests:
 *   aws-fetch imds IMDS_ENDPOINT
 *   aws-fetch s3 IMDS_ENDPOINT S3_ENDPOINT s3://bucket/key [ETAG]
 *   aws-fetch acm IMDS_ENDPOINT S3_ENDPOINT CERTIFICATE_ARN [BUCKET]
 * Prints key=value lines (never a secret); exit 0, or 1 with the client's one-line error on stderr.
 * AWS_FETCH_S3_CA (environment): the CA bundle for S3's TLS certificate (aws_s3_opts.ca_file). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/imds-client.h"
#include "aws/s3-client.h"
#include "common/secret.h"

static int get(const char *imds_ep, const char *s3_ep, const struct aws_s3_uri *u, const char *etag,
               const struct aws_imds_info *i) {
        _cleanup_(aws_s3_get_result_done) struct aws_s3_get_result res = {};
        _cleanup_(aws_s3_object_done) struct aws_s3_object obj = {};
        struct aws_credentials c = { i->creds.access_key_id, i->creds.secret_access_key,
                                     i->creds.session_token };
        struct aws_s3_opts o = { .endpoint = s3_ep,
                                 .timeout_ms = 2000,
                                 .ca_file = getenv("AWS_FETCH_S3_CA") };
        struct aws_err e = {};
        int r;

        r = aws_s3_get_object(&o, &c, i->region, u, etag, &res, &e);
        if (r < 0) {
                fprintf(stderr, "error: %s\n", e.msg);
                printf("errno=%d\n", -r);
                return 1;
        }
        if (res.not_modified) {
                printf("status=304\netag=%s\n", res.etag);
                return 0;
        }
        printf("status=200\netag=%s\nbytes=%zu\n", res.etag, res.body_len);
        r = aws_s3_object_parse(res.body, res.body_len, &obj, &e);
        if (r < 0) {
                fprintf(stderr, "error: %s\n", e.msg);
                printf("object=invalid\n");
                return 1;
        }
        printf("object=ok\nciphertext=%zu\nmethod=%s\n", obj.ciphertext_len, obj.encryption_method);
        return 0;
}

int main(int argc, char **argv) {
        _cleanup_(aws_imds_info_done) struct aws_imds_info i = {};
        struct aws_imds_opts io = {};
        struct aws_s3_uri u;
        struct aws_err e = {};
        unsigned want = AWS_IMDS_WANT_PLACE | AWS_IMDS_WANT_CREDS;
        int r;

        if (argc < 3)
                return 2;
        io.endpoint = argv[2];
        if (strcmp(argv[1], "imds") == 0 || strcmp(argv[1], "acm") == 0)
                want |= AWS_IMDS_WANT_ARN;
        r = aws_imds_fetch(&io, want, &i, &e);
        if (r < 0) {
                fprintf(stderr, "error: %s\n", e.msg);
                printf("errno=%d\n", -r);
                return 1;
        }
        if (strcmp(argv[1], "imds") == 0) {
                printf("partition=%s\ndomain=%s\nregion=%s\nrole=%s\nrole_arn=%s\nfrom_tag=%d\nmaybe_wrong=%"
                       "d\n"
                       "akid=%s\nexpiration=%" PRId64 "\nsecret_len=%zu\ntoken_len=%zu\n",
                       i.partition, i.domain, i.region, i.role, i.role_arn, i.role_arn_from_tag,
                       i.role_arn_maybe_wrong, i.creds.access_key_id, i.creds.expiration,
                       i.creds.secret_access_key->len, i.creds.session_token->len);
                return 0;
        }
        if (argc < 5)
                return 2;
        if (strcmp(argv[1], "s3") == 0)
                r = aws_s3_uri_parse(argv[4], &u, &e);
        else
                r = aws_s3_acm_uri(i.partition, i.region, argc > 5 ? argv[5] : "prod", i.role_arn, argv[4],
                                   &u, &e);
        if (r < 0) {
                fprintf(stderr, "error: %s\n", e.msg);
                return 1;
        }
        printf("uri=s3://%s/%s\n", u.bucket, u.key);
        return get(argv[2], argv[3], &u, strcmp(argv[1], "s3") == 0 && argc > 5 ? argv[5] : NULL, &i);
}
