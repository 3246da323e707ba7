/* HTTPS POST to an AWS endpoint over a socket the caller's address gives (vsock to the parent's
 * vsock-proxy in production, a unix socket in tests), TLS end to end to the real host name. The only
 * file in aws/ that does I/O is its implementation, http-curl.c (libcurl). */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aws/err.h"
#include "aws/sigv4.h"
#include "common/cleanup.h"

#define AWS_HTTP_DEFAULT_MAX_RESPONSE (64u * 1024u)
#define AWS_HTTP_DEFAULT_CONNECT_MS   3000
#define AWS_HTTP_DEFAULT_TOTAL_MS     10000
#define AWS_HTTP_MAX_HEADERS          32u

/* How the socket reaches libcurl. libcurl 7.88 (Debian 12) ignores CURL_SOCKOPT_ALREADY_CONNECTED
 * (curl#10626, fixed in 8.0) and only connects to address families it can print (not AF_VSOCK). */
enum aws_http_socket_mode {
        AWS_HTTP_SOCKET_AUTO,    /* unix: REWRITE; vsock: PRECONNECTED with libcurl >= 8.0, else RELAY */
        AWS_HTTP_SOCKET_REWRITE, /* libcurl connects to the unix address itself (unix addresses only) */
        AWS_HTTP_SOCKET_PRECONNECTED, /* we connect, libcurl is told so; needs libcurl >= 8.0 */
        /* libcurl connects to a unix socket in a private 0700 directory; a thread relays the bytes
         * (TLS stays end to end) to the address */
        AWS_HTTP_SOCKET_RELAY,
        _AWS_HTTP_SOCKET_MAX,
        _AWS_HTTP_SOCKET_INVALID = -EINVAL,
};

struct aws_http_opts {
        const char *address; /* common/transport.h syntax: "vsock:cid=3;port=8000", "unix:path=/x" */
        const char *host;    /* the real host: TLS SNI, certificate name, Host header */
        /* In the URL only (the socket is the address's); 0: 443. Another port makes the Host header
         * "host:port", and that is what must be signed. */
        uint16_t port;
        const char *ca_file;    /* PEM bundle trusted instead of the system store; NULL: system store */
        int connect_timeout_ms; /* 0: AWS_HTTP_DEFAULT_CONNECT_MS */
        int total_timeout_ms;   /* per request; 0: AWS_HTTP_DEFAULT_TOTAL_MS */
        size_t max_response;    /* body bytes; 0: AWS_HTTP_DEFAULT_MAX_RESPONSE */
        enum aws_http_socket_mode socket_mode; /* AUTO unless a test wants one path */
};

/* One libcurl easy handle kept across the requests of a round, so its connection is reused. */
struct aws_http_conn;

/* -EOPNOTSUPP for a socket mode this libcurl or address cannot do. */
_must_check_ int aws_http_conn_new(const struct aws_http_opts *o, struct aws_http_conn **ret,
                                   struct aws_err *e);
struct aws_http_conn *aws_http_conn_free(struct aws_http_conn *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct aws_http_conn *, aws_http_conn_free);

struct aws_http_req {
        const char *path; /* "/" for KMS; printable ASCII without spaces */
        const struct aws_header
                *headers; /* Content-Type, X-Amz-*, Authorization ... (Host is set from opts) */
        size_t n_headers;
        const void *body;
        size_t body_len;
};

struct aws_http_resp {
        long status;
        uint8_t *body; /* NUL-terminated for convenience; body_len excludes the NUL */
        size_t body_len;
        long new_connections; /* connections this request opened: 0 when it reused one */
};

/* 0 and the response for any HTTP status; a negative errno with e saying what, for failures below
 * HTTP: -ETIMEDOUT, -ECONNREFUSED/-ENOENT (socket), -EKEYREJECTED (certificate not trusted or not for
 * the host), -EPROTO (TLS or HTTP broken), -ECONNRESET (peer closed mid-response), -EMSGSIZE (body over
 * max_response), -EINVAL (bad request fields), -ENOMEM. */
_must_check_ int aws_http_post(struct aws_http_conn *c, const struct aws_http_req *req,
                               struct aws_http_resp *ret, struct aws_err *e);
void aws_http_resp_done(struct aws_http_resp *r);

/* ---- Plain URLs: libcurl connects over TCP itself (IMDS on http://, S3 on https://, their loopback
 * fakes in tests). One connection per request; no proxy from the environment, no redirects. */

#define AWS_URL_ETAG_MAX 128u

struct aws_url_opts {
        const char *ca_file;    /* PEM bundle trusted instead of the system store; NULL: system store */
        int connect_timeout_ms; /* 0: AWS_HTTP_DEFAULT_CONNECT_MS */
        int total_timeout_ms;   /* 0: AWS_HTTP_DEFAULT_TOTAL_MS */
        size_t max_response;    /* body bytes; 0: AWS_HTTP_DEFAULT_MAX_RESPONSE */
        bool allow_http;        /* plain http:// (IMDS only); otherwise https:// only */
        /* Tests: "HOST:PORT:CONNECT_HOST:CONNECT_PORT" (libcurl's CONNECT_TO): the URL's host (TLS name,
         * Host header, signature) stays, the connection goes to a loopback fake. NULL: none. */
        const char *connect_to;
        /* What messages name the request by (e.g. "https://host:port", when the URL is long and the
         * caller names the object itself); NULL: the URL without its query, at most 120 bytes. */
        const char *label;
};

struct aws_url_req {
        const char *method; /* "GET", "PUT" or "POST" */
        const char *url;    /* http(s)://host[:port]/path?query, printable ASCII without spaces */
        const struct aws_header *headers;
        size_t n_headers;
        const void *body;
        size_t body_len;
};

struct aws_url_resp {
        long status;
        uint8_t *body; /* NUL-terminated; body_len excludes the NUL */
        size_t body_len;
        char etag[AWS_URL_ETAG_MAX + 1]; /* the ETag header as sent (quotes kept); "" if none or longer */
        int64_t date;                    /* the Date header in UNIX seconds; 0 if none */
};

/* 0 and the response for any HTTP status; negative errno as aws_http_post() for failures below HTTP
 * (-ETIMEDOUT, -ECONNREFUSED, -EHOSTUNREACH, -EKEYREJECTED, -EPROTO, -ECONNRESET, -EMSGSIZE, -EINVAL). */
_must_check_ int aws_url_fetch(const struct aws_url_opts *o, const struct aws_url_req *q,
                               struct aws_url_resp *ret, struct aws_err *e);
void aws_url_resp_done(struct aws_url_resp *r);
