/* EC2 instance metadata (IMDSv2): the paths, and readers for what it answers (role name, the role's
 * temporary credentials, iam/info, the InstanceRoleArn tag). Pure: no I/O; aws/imds-client.c asks. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aws/err.h"
#include "common/cleanup.h"

struct secret_buf;

/* The real service. Never contacted by tests: every test and the demo override the endpoint. */
#define AWS_IMDS_DEFAULT_ENDPOINT "http://169.254.169.254"
#define AWS_IMDS_TOKEN_TTL_HEADER "X-aws-ec2-metadata-token-ttl-seconds"
#define AWS_IMDS_TOKEN_HEADER     "X-aws-ec2-metadata-token"
#define AWS_IMDS_DEFAULT_TTL      600 /* seconds, as ACM asks */
#define AWS_IMDS_MAX_TTL          21600

#define AWS_IMDS_PATH_TOKEN       "/latest/api/token"
#define AWS_IMDS_PATH_PARTITION   "/latest/meta-data/services/partition"
#define AWS_IMDS_PATH_DOMAIN      "/latest/meta-data/services/domain"
#define AWS_IMDS_PATH_REGION      "/latest/meta-data/placement/region"
#define AWS_IMDS_PATH_ROLES       "/latest/meta-data/iam/security-credentials/"
#define AWS_IMDS_PATH_INFO        "/latest/meta-data/iam/info"
#define AWS_IMDS_PATH_ROLE_TAG    "/latest/meta-data/tags/instance/InstanceRoleArn"

#define AWS_IMDS_TOKEN_MAX        1024u /* the session token IMDS hands out (about 56 bytes today) */
#define AWS_IMDS_ROLE_MAX         64u   /* IAM role names */
#define AWS_IMDS_PARTITION_MAX    32u
#define AWS_IMDS_ARN_MAX          2048u /* IAM ARNs (path up to 512, name 64) */
#define AWS_IMDS_MAX_RESPONSE     (64u * 1024u)
#define AWS_IMDS_AKID_MIN         16u
#define AWS_IMDS_AKID_MAX         128u
#define AWS_IMDS_SECRET_MAX       128u
#define AWS_IMDS_SESSION_MAX      4096u

/* The role's temporary credentials. The secret and the token live in secret_bufs only. */
struct aws_imds_credentials {
        char access_key_id[AWS_IMDS_AKID_MAX + 1];
        struct secret_buf *secret_access_key;
        struct secret_buf *session_token;
        int64_t expiration; /* UNIX seconds */
};

/* Wipes and frees; safe on a zeroed struct; the struct is zeroed. */
void aws_imds_credentials_done(struct aws_imds_credentials *c);

/* "2026-12-07T05:00:00Z" (what IMDS writes, UTC only, no fraction) to UNIX seconds. -EINVAL otherwise. */
_must_check_ int aws_iso8601_parse(const char *s, size_t len, int64_t *ret);

/* The session token from PUT /latest/api/token: printable ASCII without blanks, 1..AWS_IMDS_TOKEN_MAX. */
_must_check_ int aws_imds_token_validate(const void *body, size_t len, struct aws_err *e);

/* iam/security-credentials/: one role name per line, the first is used; [A-Za-z0-9+=,.@_-]{1,64}.
 * -ENOENT (an empty list: no instance role), -EINVAL (not a role name). */
_must_check_ int aws_imds_role_name_parse(const void *body, size_t len, char *buf, size_t size,
                                          struct aws_err *e);

/* services/partition: "aws", "aws-cn", "aws-us-gov" ...: [a-z0-9-]{1,32} starting with "aws".
 * A trailing newline is allowed; out into buf. */
_must_check_ int aws_imds_partition_parse(const void *body, size_t len, char *buf, size_t size,
                                          struct aws_err *e);

/* A one-line text value (region, domain) with an optional trailing newline, copied into buf
 * (-E2BIG if it does not fit); the caller validates it (aws_region_validate, aws_dns_suffix_validate). */
_must_check_ int aws_imds_line_parse(const void *body, size_t len, char *buf, size_t size,
                                     struct aws_err *e);

/* The credentials JSON: Code (if present) must be "Success"; AccessKeyId, SecretAccessKey, Token and
 * Expiration are required; LastUpdated, Type and unknown members are skipped; duplicates refused.
 * -EBADMSG/-E2BIG/-ENOTUNIQ (not that JSON), -EKEYEXPIRED (Code not Success), -EINVAL (a field out of
 * bounds), -ENOMEM. e names the member, never a value. */
_must_check_ int aws_imds_credentials_parse(const void *body, size_t len, struct aws_imds_credentials *ret,
                                            struct aws_err *e);

/* arn:<partition>:iam::<12 digits>:role/[<path>/]<name>. */
_must_check_ int aws_role_arn_validate(const char *arn, struct aws_err *e);

/* The InstanceRoleArn tag's value (a role ARN, optional trailing newline) into buf. */
_must_check_ int aws_imds_role_tag_parse(const void *body, size_t len, char *buf, size_t size,
                                         struct aws_err *e);

/* iam/info: {"Code":"Success","InstanceProfileArn":"arn:aws:iam::123456789012:instance-profile/P",...}.
 * The role ARN derived as ACM does: "instance-profile/<...>" replaced by "role/<role>". That is wrong
 * when the role has a path, which IMDS does not say: *ret_guess_path is set when the profile itself
 * has a path (then the role likely has one too) so the caller warns. */
_must_check_ int aws_imds_info_role_arn(const void *body, size_t len, const char *role, char *buf,
                                        size_t size, bool *ret_profile_has_path, struct aws_err *e);
