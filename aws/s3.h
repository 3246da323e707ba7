/* S3 for the certificate sources: s3:// URIs, ACM's object name, GetObject URLs (virtual-hosted and
 * path style), S3's XML error code, and the object JSON {certificate, certificateChain,
 * encryptedPrivateKey, encryptionMethod}. Pure: no I/O; aws/s3-client.c does the request. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aws/err.h"
#include "common/cleanup.h"

#define AWS_S3_OBJECT_MAX     (1024u * 1024u) /* refused above: a certificate object is a few KiB */
#define AWS_S3_BUCKET_MIN     3u
#define AWS_S3_BUCKET_MAX     63u
#define AWS_S3_KEY_MAX        1024u
#define AWS_S3_PEM_MAX        (256u * 1024u) /* certificate or chain */
#define AWS_S3_METHOD_MAX     64u
#define AWS_S3_CODE_MAX       64u
#define AWS_S3_ACM_BUCKET_MAX 63u

struct aws_s3_uri {
        char bucket[AWS_S3_BUCKET_MAX + 1];
        char key[AWS_S3_KEY_MAX + 1];
};

/* Bucket names: 3..63 of [a-z0-9.-], starting and ending with a letter or digit, no "..", not an IPv4
 * address. Keys: 1..1024 bytes of printable ASCII, space included (UTF-8 keys are not needed for our
 * objects). */
_must_check_ int aws_s3_bucket_validate(const char *bucket, struct aws_err *e);
_must_check_ int aws_s3_key_validate(const char *key, struct aws_err *e);

/* "s3://bucket/key" (key non-empty). -EINVAL with e naming the part. */
_must_check_ int aws_s3_uri_parse(const char *uri, struct aws_s3_uri *ret, struct aws_err *e);

/* ACM's object for a certificate associated with a role (ACM-FOR-NITRO-ENCLAVES.md §5.2):
 * bucket <partition>-ec2-enclave-certificate-<region>-<bucket_suffix>, key <role_arn>/<certificate_arn>. */
_must_check_ int aws_s3_acm_uri(const char *partition, const char *region, const char *bucket_suffix,
                                const char *role_arn, const char *certificate_arn, struct aws_s3_uri *ret,
                                struct aws_err *e);

/* Where a GetObject goes. endpoint NULL: https://s3.<region>.<suffix> (suffix: dns_suffix, else the
 * region's partition's), virtual-hosted (bucket.s3...) unless path_style or the bucket has a '.'.
 * endpoint "https://host[:port]" (or "http://" for a loopback host only, for tests): path style. */
struct aws_s3_target {
        char *url;  /* scheme://host[:port]/path, the path percent-encoded as signed */
        char *host; /* the Host header value: host[:port] when the port is not the scheme's */
        char *path; /* raw (not encoded) path, as aws_sigv4_sign() takes it */
};

/* An endpoint override: "https://host[:port]", or "http://" with a loopback host (tests); no path. */
_must_check_ int aws_s3_endpoint_validate(const char *endpoint, struct aws_err *e);

_must_check_ int aws_s3_target_make(const char *endpoint, const char *region, const char *dns_suffix,
                                    bool path_style, const struct aws_s3_uri *obj, struct aws_s3_target *ret,
                                    struct aws_err *e);
void aws_s3_target_done(struct aws_s3_target *t);

/* <Error><Code>AccessDenied</Code>...: the code ([A-Za-z0-9.]{1,64}) into buf; -ENOENT without one. */
_must_check_ int aws_s3_error_code(const void *body, size_t len, char *buf, size_t size);

struct aws_s3_object {
        char *certificate;           /* PEM, starts with -----BEGIN CERTIFICATE----- */
        char *certificate_chain;     /* PEM, may be empty */
        char *encrypted_private_key; /* base64 of a KMS CiphertextBlob, as in the object */
        uint8_t *ciphertext;         /* decoded: 1..AWS_KMS_BLOB_MAX bytes */
        size_t ciphertext_len;
        char *encryption_method; /* e.g. SYMMETRIC_DEFAULT; only compared, never interpreted */
};

/* Strict: one JSON object with the four string members, each exactly once (unknown members refused),
 * at most AWS_S3_OBJECT_MAX bytes. -EBADMSG/-E2BIG/-ENOTUNIQ (not such JSON), -EINVAL (a member
 * missing or out of shape), -ENOMEM; e names the member, never a value. */
_must_check_ int aws_s3_object_parse(const void *body, size_t len, struct aws_s3_object *ret,
                                     struct aws_err *e);
void aws_s3_object_done(struct aws_s3_object *o);

/* The object JSON, as `enclave-acm object create` writes it and the fake S3 serves it. */
_must_check_ int aws_s3_object_build(const char *certificate, const char *chain, const uint8_t *ciphertext,
                                     size_t ciphertext_len, const char *encryption_method, char **ret,
                                     size_t *ret_len);
