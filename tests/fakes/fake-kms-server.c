/* The fake KMS's HTTPS/1.1 server: one thread per connection, keep-alive, bounded requests and
 * timeouts; each complete request goes to fkms_handle(). */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rand.h>

#include "common/log.h"
#include "common/time-util.h"
#include "tests/fakes/fake-kms-handler.h"
#include "tests/fakes/fake-kms-http.h"
#include "tests/fakes/fake-kms-server.h"
#include "tests/fakes/fake-kms-stats.h"

/* ---- connections ------------------------------------------------------------------------------ */

struct conn {
        const struct fkms_config *cfg;
        SSL_CTX *ctx;
        SSL *ssl;
        int fd;
        uint64_t id;
        uint8_t *buf; /* FKMS_HTTP_HEAD_MAX + FKMS_HTTP_BODY_MAX */
        size_t have;
};

/* Waits for what SSL asked for until deadline (monotonic ms). */
static int tls_wait(struct conn *c, int ret, uint64_t deadline) {
        int err = SSL_get_error(c->ssl, ret);
        struct pollfd p = { .fd = c->fd };
        uint64_t now = mono_msec();
        int n;

        if (err == SSL_ERROR_WANT_READ)
                p.events = POLLIN;
        else if (err == SSL_ERROR_WANT_WRITE)
                p.events = POLLOUT;
        else if (err == SSL_ERROR_ZERO_RETURN || err == SSL_ERROR_SYSCALL ||
                 (err == SSL_ERROR_SSL &&
                  ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING))
                return -ECONNRESET; /* close_notify, or the peer closed the socket without it */
        else
                return -EPROTO;
        if (now >= deadline)
                return -ETIMEDOUT;
        n = poll(&p, 1, (int) MIN(deadline - now, (uint64_t) INT32_MAX));
        if (n < 0)
                return errno == EINTR ? 0 : negative_errno();
        return n == 0 ? -ETIMEDOUT : 0;
}

static int tls_read(struct conn *c, size_t cap, uint64_t deadline) {
        for (;;) {
                int n, r;

                ERR_clear_error();
                n = SSL_read(c->ssl, c->buf + c->have, (int) (cap - c->have));
                if (n > 0) {
                        c->have += (size_t) n;
                        return n;
                }
                r = tls_wait(c, n, deadline);
                if (r < 0)
                        return r;
        }
}

static int tls_write_all(struct conn *c, const void *data, size_t len, uint64_t deadline) {
        const uint8_t *p = data;

        while (len > 0) {
                int n, r;

                ERR_clear_error();
                n = SSL_write(c->ssl, p, (int) MIN(len, (size_t) 16384));
                if (n > 0) {
                        p += n;
                        len -= (size_t) n;
                        continue;
                }
                r = tls_wait(c, n, deadline);
                if (r < 0)
                        return r;
        }
        return 0;
}

static const char *reason_phrase(int status) {
        switch (status) {
        case 100: return "Continue";
        case 200: return "OK";
        case 400: return "Bad Request";
        case 404: return "Not Found";
        case 408: return "Request Timeout";
        case 411: return "Length Required";
        case 413: return "Content Too Large";
        case 414: return "URI Too Long";
        case 417: return "Expectation Failed";
        case 431: return "Request Header Fields Too Large";
        case 500: return "Internal Server Error";
        case 501: return "Not Implemented";
        case 503: return "Service Unavailable";
        case 505: return "HTTP Version Not Supported";
        default: return "Status";
        }
}

static int send_reply(struct conn *c, const struct fkms_reply *rp, bool keep_alive) {
        char head[512], reqid[33];
        uint8_t rnd[16];
        int n, r;

        if (RAND_bytes(rnd, sizeof(rnd)) <= 0)
                memset(rnd, 0, sizeof(rnd));
        for (size_t i = 0; i < sizeof(rnd); i++)
                (void) snprintf(reqid + 2 * i, 3, "%02x", rnd[i]);
        n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nx-amzn-RequestId: %s\r\nContent-Type: %s\r\nContent-Length: "
                     "%zu\r\n%s\r\n",
                     rp->status, reason_phrase(rp->status), reqid,
                     rp->content_type ? rp->content_type : "text/plain", rp->len,
                     keep_alive ? "" : "Connection: close\r\n");
        if (n < 0 || (size_t) n >= sizeof(head))
                return -ENOBUFS;
        r = tls_write_all(c, head, (size_t) n, mono_msec() + (uint64_t) c->cfg->io_timeout_ms);
        if (r >= 0 && rp->len > 0)
                r = tls_write_all(c, rp->body, rp->len, mono_msec() + (uint64_t) c->cfg->io_timeout_ms);
        return r;
}

/* A request the parser refused: a short answer, then the connection closes. */
static void send_http_error(struct conn *c, const struct fkms_http_error *err) {
        struct fkms_reply rp = { .status = err->status, .content_type = "text/plain" };
        char text[160];

        rp.len = (size_t) snprintf(text, sizeof(text), "%s (byte %zu)\n", err->what, err->offset);
        rp.body = text;
        (void) send_reply(c, &rp, false);
        fkms_stats_request(FKMS_OP_OTHER, "http-refused", NULL, 0);
        log_info("conn=%" PRIu64 " refused a request head: %s at byte %zu, answered %d", c->id, err->what,
                 err->offset, err->status);
}

/* Reads one request into c->buf: the head's length, 0 at a clean end of the connection, or a negative
 * errno (the connection ends). */
static int read_request(struct conn *c, struct fkms_http_head *h, size_t *ret_total) {
        const size_t cap = FKMS_HTTP_HEAD_MAX + FKMS_HTTP_BODY_MAX;
        struct fkms_http_error err = {};
        uint64_t deadline = mono_msec() + (uint64_t) c->cfg->idle_timeout_ms;
        bool started = c->have > 0;
        int head_len, r;

        if (started)
                deadline = mono_msec() + (uint64_t) c->cfg->io_timeout_ms;
        while ((head_len = fkms_http_head_end((const char *) c->buf, c->have)) == 0) {
                r = tls_read(c, FKMS_HTTP_HEAD_MAX, deadline);
                if (r < 0)
                        return started || r != -ECONNRESET ? r : 0;
                if (!started) {
                        started = true;
                        deadline = mono_msec() + (uint64_t) c->cfg->io_timeout_ms;
                }
        }
        if (head_len < 0) {
                send_http_error(
                        c, &(struct fkms_http_error){ "request head too long", FKMS_HTTP_HEAD_MAX, 431 });
                return -E2BIG;
        }
        r = fkms_http_head_parse((char *) c->buf, (size_t) head_len, h, &err);
        if (r < 0) {
                send_http_error(c, &err);
                return r;
        }
        if (!h->has_content_length && strcmp(h->method, "POST") == 0) {
                send_http_error(c, &(struct fkms_http_error){ "Content-Length required", 0, 411 });
                return -EBADMSG;
        }
        if (h->expect_continue && c->have < (size_t) head_len + h->content_length) {
                static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
                r = tls_write_all(c, cont, sizeof(cont) - 1, mono_msec() + (uint64_t) c->cfg->io_timeout_ms);
                if (r < 0)
                        return r;
        }
        while (c->have < (size_t) head_len + h->content_length) {
                r = tls_read(c, cap, deadline);
                if (r < 0)
                        return r;
        }
        *ret_total = (size_t) head_len + h->content_length;
        return head_len;
}

static void serve_requests(struct conn *c) {
        for (;;) {
                _cleanup_(aws_kms_request_done) struct aws_kms_request q = {};
                _cleanup_(fkms_reply_done) struct fkms_reply rp = {};
                struct fkms_http_head h;
                size_t total = 0;
                int head_len, op;

                head_len = read_request(c, &h, &total);
                if (head_len <= 0) {
                        /* a refused head was logged where it was answered */
                        if (head_len < 0 && head_len != -ECONNRESET && head_len != -EBADMSG &&
                            head_len != -E2BIG && head_len != -EOPNOTSUPP)
                                log_info_errno(head_len, "conn=%" PRIu64 " ends: %m", c->id);
                        return;
                }
                op = fkms_op_from_target(h.amz_target);
                fkms_handle(c->cfg, &h, c->buf + head_len, h.content_length, &rp, &q);
                fkms_stats_request(op, rp.outcome ? rp.outcome : "none", q.attestation_doc,
                                   q.attestation_doc_len);
                log_info("conn=%" PRIu64 " %s %s status=%d key=%s", c->id, fkms_op_to_string(op),
                         rp.outcome ? rp.outcome : "none", rp.close_without_answer ? 0 : rp.status,
                         rp.key_id[0] ? rp.key_id : "-");
                if (rp.close_without_answer)
                        return;
                if (send_reply(c, &rp, h.keep_alive) < 0 || !h.keep_alive)
                        return;
                memmove(c->buf, c->buf + total, c->have - total);
                c->have -= total;
        }
}

/* A lingering close, as web servers do: after the last answer, stop writing and read away what the
 * client still sends (bounded in bytes and time), so that closing with unread input does not reset
 * the connection and destroy the answer before the client has read it. */
static void linger_close(int fd) {
        uint64_t deadline = mono_msec() + 2000;
        size_t drained = 0;
        char buf[4096];

        if (shutdown(fd, SHUT_WR) < 0)
                return;
        while (drained < 1024 * 1024) {
                uint64_t now = mono_msec();
                struct pollfd p = { .fd = fd, .events = POLLIN };
                ssize_t n;

                if (now >= deadline || poll(&p, 1, (int) (deadline - now)) <= 0)
                        return;
                n = read(fd, buf, sizeof(buf));
                if (n <= 0 && !(n < 0 && (errno == EAGAIN || errno == EINTR)))
                        return;
                if (n > 0)
                        drained += (size_t) n;
        }
}

static void *conn_main(void *userdata) {
        struct conn *c = userdata;
        uint64_t deadline = mono_msec() + (uint64_t) c->cfg->io_timeout_ms;
        int n, r = 0;

        c->ssl = SSL_new(c->ctx);
        c->buf = malloc(FKMS_HTTP_HEAD_MAX + FKMS_HTTP_BODY_MAX);
        if (!c->ssl || !c->buf || SSL_set_fd(c->ssl, c->fd) != 1)
                r = -ENOMEM;
        while (r >= 0) {
                ERR_clear_error();
                n = SSL_accept(c->ssl);
                if (n == 1)
                        break;
                r = tls_wait(c, n, deadline);
        }
        if (r < 0) {
                fkms_stats_connection(FKMS_CONN_HANDSHAKE_FAILED);
                log_info_errno(r, "conn=%" PRIu64 " TLS handshake failed: %m", c->id);
        } else {
                fkms_stats_connection(FKMS_CONN_HANDSHAKE);
                serve_requests(c);
                (void) SSL_shutdown(c->ssl);
                linger_close(c->fd);
        }
        SSL_free(c->ssl);
        SSL_CTX_free(c->ctx);
        free(c->buf);
        safe_close(c->fd);
        /* Free this thread's OpenSSL state (error queue, DRBGs) now, not in the thread's exit handlers:
         * once the connection counts as closed the server may exit while this thread still runs, and
         * state that only thread-local storage points at would then look leaked (the asan setup runs
         * LeakSanitizer with use_tls=0). */
        OPENSSL_thread_stop();
        fkms_stats_connection(FKMS_CONN_CLOSED);
        free(c);
        return NULL;
}

static void accept_one(const struct fkms_config *cfg, SSL_CTX *ctx, int lfd, uint64_t *next_id) {
        pthread_attr_t attr;
        pthread_t t;
        struct conn *c;
        unsigned active;
        int fd;

        fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0)
                return;
        active = fkms_stats_active();
        if (active >= cfg->max_connections) {
                log_warning("Refusing a connection: %u open, the limit", active);
                fkms_stats_connection(FKMS_CONN_REFUSED);
                safe_close(fd);
                return;
        }
        c = calloc(1, sizeof(*c));
        if (!c) {
                safe_close(fd);
                return;
        }
        *c = (struct conn){ .cfg = cfg, .ctx = ctx, .fd = fd, .id = ++*next_id };
        SSL_CTX_up_ref(ctx); /* the thread's reference: the server may free ctx while it runs */
        fkms_stats_connection(FKMS_CONN_ACCEPTED);
        if (pthread_attr_init(&attr) != 0 ||
            pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED) != 0 ||
            pthread_create(&t, &attr, conn_main, c) != 0) {
                log_error("Failed to start a connection thread");
                SSL_CTX_free(ctx);
                safe_close(fd);
                free(c);
                fkms_stats_connection(FKMS_CONN_CLOSED);
        }
        (void) pthread_attr_destroy(&attr);
}

/* Gives open connections a moment to end: 0 when none is left, else the number still open (their
 * threads use the configuration, so the caller must not free it). */
static int drain(void) {
        unsigned active = 0;

        for (int i = 0; i < 100; i++) {
                active = fkms_stats_active();
                if (active == 0)
                        return 0;
                (void) usleep(10000);
        }
        return (int) active;
}

int fkms_serve(const struct fkms_config *cfg, const char *stats_file, SSL_CTX *ctx, int lfd, int sigfd) {
        uint64_t next_id = 0;

        fkms_stats_init(stats_file);
        for (;;) {
                struct pollfd p[2] = { { .fd = lfd, .events = POLLIN }, { .fd = sigfd, .events = POLLIN } };

                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (p[1].revents & POLLIN) {
                        struct signalfd_siginfo si;
                        if (read(sigfd, &si, sizeof(si)) == sizeof(si)) {
                                log_info("Signal %u: stopping", si.ssi_signo);
                                return drain();
                        }
                }
                if (p[0].revents & (POLLERR | POLLNVAL))
                        return -EIO;
                if (p[0].revents & POLLIN)
                        accept_one(cfg, ctx, lfd, &next_id);
        }
}
