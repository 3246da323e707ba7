/* The fake KMS's HTTP/1.1 request-head parser: bounded, strict, in place. Pure: no I/O. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "aws/sigv4.h"
#include "common/cleanup.h"

#define FKMS_HTTP_HEAD_MAX    16384u /* request line and headers, blank line included */
#define FKMS_HTTP_HEADERS_MAX AWS_SIGV4_MAX_HEADERS
#define FKMS_HTTP_METHOD_MAX  16u
#define FKMS_HTTP_TARGET_MAX  AWS_SIGV4_MAX_PATH
#define FKMS_HTTP_NAME_MAX    AWS_SIGV4_MAX_NAME
#define FKMS_HTTP_VALUE_MAX   AWS_SIGV4_MAX_VALUE
#define FKMS_HTTP_BODY_MAX    (64u * 1024u)

struct fkms_http_head {
        const char *method;
        const char *target;                               /* request-target as received */
        unsigned minor;                                   /* HTTP/1.<minor>: 0 or 1 */
        struct aws_header headers[FKMS_HTTP_HEADERS_MAX]; /* as received, value trimmed */
        size_t n_headers;
        bool has_content_length;
        size_t content_length; /* 0..FKMS_HTTP_BODY_MAX */
        bool keep_alive;       /* HTTP/1.1 unless "Connection: close"; HTTP/1.0 only with keep-alive */
        bool expect_continue;  /* "Expect: 100-continue" */
        const char *host, *content_type, *amz_target; /* NULL when absent */
};

/* Why a head was refused: a static text, the byte offset in the head, the HTTP status to answer. */
struct fkms_http_error {
        const char *what;
        size_t offset;
        int status;
};

/* The length of the head in buf[0..len) up to and including its blank line ("\r\n\r\n"), 0 when it
 * is not complete yet, -E2BIG when FKMS_HTTP_HEAD_MAX bytes hold no end of head. */
_must_check_ int fkms_http_head_end(const char *buf, size_t len);

/* Parses a complete head of len bytes (as fkms_http_head_end() measured it), writing NULs into it:
 * ret's strings point into head. Strict: CRLF line ends only, a token method, a target of visible
 * ASCII, HTTP/1.0 or HTTP/1.1, token header names, values of printable ASCII and tabs, no folded
 * lines, at most FKMS_HTTP_HEADERS_MAX headers; Host exactly once for HTTP/1.1; Content-Length
 * decimal, once, at most FKMS_HTTP_BODY_MAX; Host, Content-Type, X-Amz-Target, Expect at most once.
 * 0, or -EBADMSG (malformed), -E2BIG (a cap: status 413 or 431), -EOPNOTSUPP (Transfer-Encoding:
 * 501; another HTTP version: 505) with err saying what and where. ret is written on success only. */
_must_check_ int fkms_http_head_parse(char *head, size_t len, struct fkms_http_head *ret,
                                      struct fkms_http_error *err);
