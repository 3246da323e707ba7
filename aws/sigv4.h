/* AWS Signature Version 4: canonical request, string to sign, signature, the headers or presigned
 * query to add, and the verifier a fake service uses. Pure: no I/O. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aws/err.h"
#include "common/cleanup.h"

struct secret_buf;

#define AWS_SIGV4_MAX_METHOD     16u
#define AWS_SIGV4_MAX_PATH       4096u
#define AWS_SIGV4_MAX_HEADERS    64u
#define AWS_SIGV4_MAX_NAME       128u  /* header name, query key */
#define AWS_SIGV4_MAX_VALUE      8192u /* header value, query value */
#define AWS_SIGV4_MAX_QUERY      64u   /* parameters */
#define AWS_SIGV4_MAX_SCOPE_PART 64u   /* region, service */
#define AWS_SIGV4_MAX_AKID       128u
#define AWS_SIGV4_MAX_SECRET     128u
#define AWS_SIGV4_MAX_TOKEN      8192u
#define AWS_SIGV4_MAX_CANONICAL  (128u * 1024u)
#define AWS_SIGV4_MAX_EXPIRES    604800u /* presigned URLs: 7 days */

struct aws_header {
        const char *name;
        const char *value;
};

/* Raw (not percent-encoded) key and value; value "" for a key without '='. */
struct aws_query_param {
        const char *key;
        const char *value;
};

/* The secret and the token stay in the caller's secret_bufs; the signer copies neither except
 * into the outputs that must carry the token (wiped by aws_sigv4_result_done()). */
struct aws_credentials {
        const char *access_key_id;
        const struct secret_buf *secret_access_key;
        const struct secret_buf *session_token; /* NULL or empty: long-term credentials */
};

enum {
        AWS_SIGV4_NORMALIZE_PATH = 1u << 0,     /* every service but S3 */
        AWS_SIGV4_SIGN_BODY = 1u << 1,          /* add and sign x-amz-content-sha256 */
        AWS_SIGV4_OMIT_SESSION_TOKEN = 1u << 2, /* add the token after signing, unsigned */
};

struct aws_sigv4_req {
        const char *method;
        const char *path; /* raw, e.g. "/" or "/my key" */
        const struct aws_query_param *query;
        size_t n_query;
        const struct aws_header *headers; /* must include Host; never Authorization or X-Amz-Date */
        size_t n_headers;
        const void *body;
        size_t body_len;
        const struct aws_credentials *creds;
        const char *region;
        const char *service;
        int64_t time;     /* UNIX seconds */
        unsigned flags;   /* AWS_SIGV4_* */
        uint32_t expires; /* presigned only: X-Amz-Expires, 1..AWS_SIGV4_MAX_EXPIRES */
};

#define AWS_SIGV4_MAX_ADD 4u

struct aws_sigv4_result {
        char *canonical_request;
        char *string_to_sign;
        char *signed_headers; /* "host;x-amz-date" */
        char signature[65];
        char amz_date[17];    /* 20150830T123600Z */
        char body_sha256[65]; /* hex */
        char *authorization;  /* header variant: the Authorization value */
        char *query;          /* presigned variant: the whole query string to send, signature last */
        /* Header variant: the headers to add to the request (X-Amz-Date, X-Amz-Security-Token,
         * X-Amz-Content-Sha256, Authorization); values point into this struct. */
        struct aws_header add[AWS_SIGV4_MAX_ADD];
        size_t n_add;
        char *token; /* copy of the session token for add[]/query; wiped */
};

/* Signs with the Authorization header. On failure (-EINVAL bad input, -E2BIG a cap, -ENOMEM) e
 * names the field; ret is written only on success. */
_must_check_ int aws_sigv4_sign(const struct aws_sigv4_req *req, struct aws_sigv4_result *ret,
                                struct aws_err *e);
/* The presigned-URL variant: X-Amz-* go into the query, only the request's own headers are signed. */
_must_check_ int aws_sigv4_presign(const struct aws_sigv4_req *req, struct aws_sigv4_result *ret,
                                   struct aws_err *e);
/* Wipes (the canonical request may hold the session token) and frees; safe on a zeroed struct. */
void aws_sigv4_result_done(struct aws_sigv4_result *r);

/* Pieces, exposed for tests. Each returns the length written (without the NUL) or -E2BIG. */
_must_check_ int aws_sigv4_uri_encode(const char *s, size_t len, bool keep_slash, char *buf, size_t size);
_must_check_ int aws_sigv4_normalize_path(const char *path, char *buf, size_t size);
/* "20150830T123600Z" from UNIX seconds (years 1970..9999), and back (strict). */
_must_check_ int aws_sigv4_format_date(int64_t t, char buf[static 17]);
_must_check_ int aws_sigv4_parse_date(const char *s, int64_t *ret);

/* ---- Verifier (the fake KMS) ----------------------------------------------------------------- */

struct aws_sigv4_received {
        const char *method;
        const char *target;               /* request-target as received: "/path?query", percent-encoded */
        const struct aws_header *headers; /* as received, any case, repeats allowed */
        size_t n_headers;
        const void *body;
        size_t body_len;
};

/* Looks up the credentials of an access key id: 0 and the secret (and the expected session token,
 * or NULL), owned by the caller of aws_sigv4_verify() through userdata; -ENOKEY if unknown. */
typedef int (*aws_sigv4_lookup_fn)(void *userdata, const char *access_key_id,
                                   const struct secret_buf **ret_secret,
                                   const struct secret_buf **ret_token);

struct aws_sigv4_verify_params {
        const char *region;
        const char *service;
        int64_t now;
        int64_t max_skew; /* seconds either way; AWS allows 300 */
        unsigned flags;   /* AWS_SIGV4_NORMALIZE_PATH as the service signs */
        aws_sigv4_lookup_fn lookup;
        void *userdata;
};

enum aws_sigv4_verdict {
        AWS_SIGV4_OK,
        AWS_SIGV4_MISSING_HEADER,     /* Authorization, X-Amz-Date or a signed header */
        AWS_SIGV4_MALFORMED,          /* Authorization, date, target or a header unreadable */
        AWS_SIGV4_BAD_SCOPE,          /* credential scope: region, service or terminator */
        AWS_SIGV4_WRONG_DATE,         /* scope date is not X-Amz-Date's day */
        AWS_SIGV4_SKEWED,             /* X-Amz-Date too far from now */
        AWS_SIGV4_UNKNOWN_KEY,        /* access key id */
        AWS_SIGV4_BAD_TOKEN,          /* session token missing, unsigned or different */
        AWS_SIGV4_BODY_HASH_MISMATCH, /* x-amz-content-sha256 is not the body's */
        AWS_SIGV4_SIGNATURE_MISMATCH,
        _AWS_SIGV4_VERDICT_MAX,
        _AWS_SIGV4_VERDICT_INVALID = -EINVAL,
};

const char *aws_sigv4_verdict_to_string(enum aws_sigv4_verdict v);

/* 0 when the request was judged (*ret_verdict says how; e says why for anything but OK), negative
 * errno when it could not be (-ENOMEM, -EINVAL for bad params). The signature is compared in
 * constant time; the derived keys are wiped. */
_must_check_ int aws_sigv4_verify(const struct aws_sigv4_received *rq,
                                  const struct aws_sigv4_verify_params *p,
                                  enum aws_sigv4_verdict *ret_verdict, struct aws_err *e);
