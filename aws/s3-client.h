/* S3 GetObject with SigV4 (x-amz-content-sha256, the session token), If-None-Match, a 1 MiB cap,
 * over aws_url_fetch() (aws/http-curl.c); S3's refusals turned into errors an operator can act on. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "aws/http.h"
#include "aws/s3.h"
#include "aws/sigv4.h"

struct aws_s3_opts {
        const char *endpoint;   /* NULL: https://s3.<region>.<suffix>; tests: http://127.0.0.1:PORT */
        const char *dns_suffix; /* NULL: the region's partition's (IMDS services/domain) */
        const char *ca_file;    /* NULL: the system store */
        bool path_style;
        int timeout_ms; /* the whole request; 0: AWS_HTTP_DEFAULT_TOTAL_MS */
        int64_t now;    /* UNIX seconds for the signature; 0: time(NULL) */
};

struct aws_s3_get_result {
        bool not_modified; /* 304: If-None-Match matched; body empty */
        uint8_t *body;     /* the object (200), NUL-terminated */
        size_t body_len;
        char etag[AWS_URL_ETAG_MAX + 1];
};

void aws_s3_get_result_done(struct aws_s3_get_result *r);

/* 0 for 200 (body, etag) and 304 (not_modified). Otherwise a negative errno, e one line naming the
 * object and the fix: -EACCES (403 AccessDenied: the role may not read it, for ACM the role is not
 * associated with the certificate), -ENOENT (404 NoSuchKey / NoSuchBucket), -EKEYEXPIRED (ExpiredToken,
 * InvalidToken), -ETIME (RequestTimeTooSkewed: the clock), -EKEYREJECTED (InvalidAccessKeyId,
 * SignatureDoesNotMatch), -EMSGSIZE (object over AWS_S3_OBJECT_MAX), -EPROTO (another status), and
 * the transport's errors. */
_must_check_ int aws_s3_get_object(const struct aws_s3_opts *o, const struct aws_credentials *creds,
                                   const char *region, const struct aws_s3_uri *obj,
                                   const char *if_none_match, struct aws_s3_get_result *ret,
                                   struct aws_err *e);

/* S3 PutObject of body (1..AWS_S3_OBJECT_MAX bytes, Content-Type application/json), signed as GetObject
 * is. 0 for 200; a negative errno with e naming the object and the fix as aws_s3_get_object(). */
_must_check_ int aws_s3_put_object(const struct aws_s3_opts *o, const struct aws_credentials *creds,
                                   const char *region, const struct aws_s3_uri *obj, const void *body,
                                   size_t len, struct aws_err *e);
