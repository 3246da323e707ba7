/* fake-aws's connections: plain TCP or TLS (a test CA made at start), blocking with timeouts. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>

#include "common/time-util.h"
#include "tests/fakes/fake-aws-tls.h"
#include "tests/fakes/fake-kms-util.h"

int faws_tls_ctx_new(const char *const *names, SSL_CTX **ret_ctx, char **ret_ca_pem, size_t *ret_ca_len) {
        _cleanup_(fkms_tls_identity_done) struct fkms_tls_identity id = {};
        _cleanup_free_ char *pem = NULL;
        SSL_CTX *ctx;
        size_t len = 0;
        int r;

        r = fkms_tls_identity_new(names, &id);
        if (r < 0)
                return r;
        r = fkms_tls_ca_pem(&id, &pem, &len);
        if (r < 0)
                return r;
        ctx = SSL_CTX_new(TLS_server_method());
        if (!ctx || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
            SSL_CTX_use_certificate(ctx, id.leaf) != 1 || SSL_CTX_use_PrivateKey(ctx, id.leaf_key) != 1 ||
            SSL_CTX_check_private_key(ctx) != 1) {
                SSL_CTX_free(ctx);
                return -EIO;
        }
        *ret_ctx = ctx;
        *ret_ca_pem = TAKE_PTR(pem);
        *ret_ca_len = len;
        return 0;
}

int faws_conn_open(int fd, SSL_CTX *ctx, int timeout_ms, struct faws_conn *ret, const char **ret_why) {
        struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };
        SSL *ssl = NULL;
        unsigned long err;

        *ret_why = NULL;
        if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0) {
                int r = negative_errno();

                *ret_why = "setsockopt";
                safe_close(fd);
                return r;
        }
        if (ctx) {
                ssl = SSL_new(ctx);
                if (!ssl || SSL_set_fd(ssl, fd) != 1) {
                        SSL_free(ssl);
                        safe_close(fd);
                        *ret_why = "out of memory";
                        return -ENOMEM;
                }
                ERR_clear_error();
                if (SSL_accept(ssl) != 1) {
                        err = ERR_peek_error();
                        *ret_why = err ? ERR_reason_error_string(err) : "the client closed or timed out";
                        if (!*ret_why)
                                *ret_why = "TLS error";
                        SSL_free(ssl);
                        safe_close(fd);
                        return -EPROTO;
                }
        }
        *ret = (struct faws_conn){ .fd = fd, .ssl = ssl };
        return 0;
}

ssize_t faws_conn_recv(struct faws_conn *c, void *buf, size_t len) {
        ssize_t n;
        int k;

        if (len == 0)
                return -ENOBUFS;
        if (!c->ssl) {
                do
                        n = recv(c->fd, buf, len, 0);
                while (n < 0 && errno == EINTR);
                return n < 0 ? -errno : n;
        }
        ERR_clear_error();
        k = SSL_read(c->ssl, buf, (int) MIN(len, (size_t) INT32_MAX));
        if (k > 0)
                return k;
        switch (SSL_get_error(c->ssl, k)) {
        case SSL_ERROR_ZERO_RETURN: return 0;
        case SSL_ERROR_SYSCALL: return errno ? -errno : 0;
        default: return -EPROTO;
        }
}

int faws_conn_send_all(struct faws_conn *c, const void *buf, size_t len) {
        const char *p = buf;

        while (len > 0) {
                ssize_t w;

                if (c->ssl) {
                        ERR_clear_error();
                        w = SSL_write(c->ssl, p, (int) MIN(len, (size_t) 16384));
                        if (w <= 0)
                                return -EPROTO;
                } else {
                        w = send(c->fd, p, len, MSG_NOSIGNAL);
                        if (w < 0 && errno == EINTR)
                                continue;
                        if (w <= 0)
                                return w < 0 ? -errno : -EIO;
                }
                p += w;
                len -= (size_t) w;
        }
        return 0;
}

void faws_conn_close(struct faws_conn *c) {
        uint64_t deadline = mono_msec() + 2000;
        size_t drained = 0;
        char buf[4096];

        if (c->fd < 0)
                return;
        if (c->ssl)
                (void) SSL_shutdown(c->ssl);
        if (shutdown(c->fd, SHUT_WR) == 0)
                while (drained < 1024 * 1024) {
                        uint64_t now = mono_msec();
                        struct pollfd p = { .fd = c->fd, .events = POLLIN };
                        ssize_t n;

                        if (now >= deadline || poll(&p, 1, (int) (deadline - now)) <= 0)
                                break;
                        n = read(c->fd, buf, sizeof(buf));
                        if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
                                break;
                        if (n > 0)
                                drained += (size_t) n;
                }
        SSL_free(c->ssl);
        c->ssl = NULL;
        c->fd = safe_close(c->fd);
}
