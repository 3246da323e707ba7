/* The IMDSv2 round: a session token, then the instance's partition, domain, region, role, role ARN
 * and the role's temporary credentials, over aws_url_fetch() (aws/http-curl.c). */
#pragma once

#include <stdbool.h>

#include "aws/endpoint.h"
#include "aws/err.h"
#include "aws/imds.h"

#define AWS_IMDS_DEFAULT_TIMEOUT_MS 1000 /* per request: off EC2 the agent says so quickly */

struct aws_imds_opts {
        const char *endpoint; /* "http://host[:port]"; NULL: AWS_IMDS_DEFAULT_ENDPOINT */
        int timeout_ms;       /* per request; 0: AWS_IMDS_DEFAULT_TIMEOUT_MS */
        unsigned token_ttl;   /* seconds; 0: AWS_IMDS_DEFAULT_TTL */
};

enum {
        AWS_IMDS_WANT_PLACE = 1u << 0, /* partition, domain, region */
        AWS_IMDS_WANT_CREDS = 1u << 1, /* role name and its credentials */
        AWS_IMDS_WANT_ARN = 1u << 2,   /* role ARN (tag, else iam/info); implies the role name */
};

struct aws_imds_info {
        char partition[AWS_IMDS_PARTITION_MAX + 1];
        char domain[AWS_DNS_SUFFIX_MAX + 1]; /* "" when IMDS has none (old instances) */
        char region[AWS_REGION_MAX + 1];
        char role[AWS_IMDS_ROLE_MAX + 1];
        char role_arn[AWS_IMDS_ARN_MAX + 1];
        bool role_arn_from_tag;
        bool role_arn_maybe_wrong; /* derived from iam/info, and the profile has a path: warn */
        struct aws_imds_credentials creds;
};

void aws_imds_info_done(struct aws_imds_info *i);

/* "http://host[:port]" with no path; -EINVAL otherwise. */
_must_check_ int aws_imds_endpoint_validate(const char *endpoint, struct aws_err *e);

/* want: AWS_IMDS_WANT_*. 0, or a negative errno with e saying what and the fix: -EHOSTUNREACH (no IMDS
 * at the endpoint: not on EC2, or the metadata service is off), -ETIMEDOUT, -ENOENT (no instance role),
 * -EKEYEXPIRED (IMDS reports the credentials unusable), -EPROTO/-EINVAL (an answer not as documented). */
_must_check_ int aws_imds_fetch(const struct aws_imds_opts *o, unsigned want, struct aws_imds_info *ret,
                                struct aws_err *e);
