/* fake-aws's connections: plain TCP (IMDS) or TLS (S3) with a test CA, blocking with timeouts, one
 * request per connection and a lingering close. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <openssl/ssl.h>

#include "common/cleanup.h"

struct faws_conn {
        int fd;
        SSL *ssl; /* NULL: plain TCP */
};

/* A TLS server context with a fresh P-256 test CA and a certificate for the DNS names (NULL-terminated);
 * the CA's PEM into *ret_ca_pem (malloc()ed). */
_must_check_ int faws_tls_ctx_new(const char *const *names, SSL_CTX **ret_ctx, char **ret_ca_pem,
                                  size_t *ret_ca_len);

/* Takes over fd (accepted, blocking): sets its send and receive timeouts and, with ctx, runs the TLS
 * handshake. On failure fd is closed and *ret_why (static text or OpenSSL's reason) says why. */
_must_check_ int faws_conn_open(int fd, SSL_CTX *ctx, int timeout_ms, struct faws_conn *ret,
                                const char **ret_why);
/* Bytes read (> 0), 0 at the end of the stream, or a negative errno (timeout, reset, TLS error). */
_must_check_ ssize_t faws_conn_recv(struct faws_conn *c, void *buf, size_t len);
_must_check_ int faws_conn_send_all(struct faws_conn *c, const void *buf, size_t len);
/* close_notify, then a lingering close: stop writing, read away what the client still sends (bounded
 * in bytes and time) so closing with unread input does not reset the connection under the answer. */
void faws_conn_close(struct faws_conn *c);
