/* The /metrics endpoint: one accept thread, one short-lived thread per scrape (at most
 * METRICS_HTTP_MAX_SCRAPES), every wait bounded and woken by stop. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/metrics-http.h"
#include "common/log.h"
#include "common/time-util.h"

struct metrics_http {
        int listen_fd;
        int stop_fd; /* eventfd: readable once stopping */
        char *unix_path;
        pthread_t thread;
        bool thread_started;
        pthread_mutex_t lock;
        pthread_cond_t idle;
        unsigned active;
};

struct conn {
        struct metrics_http *h;
        int fd;
};

static const char *reason(int status) {
        switch (status) {
        case 200: return "OK";
        case 400: return "Bad Request";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 408: return "Request Timeout";
        case 431: return "Request Header Fields Too Large";
        case 500: return "Internal Server Error";
        default: return "Service Unavailable";
        }
}

static int simple_answer(int status, const char *extra, char **ret, size_t *ret_len) {
        char *s = NULL;
        int n;

        n = asprintf(&s,
                     "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n%s\r\n%s\n",
                     status, reason(status), strlen(reason(status)) + 1, extra ?: "", reason(status));
        if (n < 0)
                return -ENOMEM;
        *ret = s;
        *ret_len = (size_t) n;
        return 0;
}

int metrics_http_answer(const char *head, size_t len, metrics_http_scrape_fn scrape, char **ret,
                        size_t *ret_len, int *ret_status) {
        _cleanup_free_ char *body = NULL;
        const char *sp1, *sp2, *eol, *q;
        size_t body_len = 0, path_len;
        char *s = NULL;
        int n, r;

        eol = memmem(head, len, "\r\n", 2);
        sp1 = eol ? memchr(head, ' ', (size_t) (eol - head)) : NULL;
        sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t) (eol - sp1 - 1)) : NULL;
        if (!sp2 || sp1 == head || sp2 == sp1 + 1 || (size_t) (eol - sp2 - 1) != 8 ||
            memcmp(sp2 + 1, "HTTP/1.", 7) != 0) {
                *ret_status = 400;
                return simple_answer(400, NULL, ret, ret_len);
        }
        if ((size_t) (sp1 - head) != 3 || memcmp(head, "GET", 3) != 0) {
                *ret_status = 405;
                return simple_answer(405, "Allow: GET\r\n", ret, ret_len);
        }
        q = memchr(sp1 + 1, '?', (size_t) (sp2 - sp1 - 1));
        path_len = (size_t) ((q ?: sp2) - sp1 - 1);
        if (path_len != 8 || memcmp(sp1 + 1, "/metrics", 8) != 0) {
                *ret_status = 404;
                return simple_answer(404, NULL, ret, ret_len);
        }
        r = scrape(&body, &body_len);
        if (r < 0) {
                *ret_status = r == -ENOMEM || r == -EMSGSIZE ? 500 : 503;
                return simple_answer(*ret_status, NULL, ret, ret_len);
        }
        n = asprintf(&s,
                     "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                     body_len);
        if (n < 0)
                return -ENOMEM;
        {
                char *all = realloc(s, (size_t) n + body_len + 1);

                if (!all) {
                        free(s);
                        return -ENOMEM;
                }
                memcpy(all + n, body, body_len + 1);
                *ret = all;
        }
        *ret_len = (size_t) n + body_len;
        *ret_status = 200;
        return 0;
}

/* Waits until fd is ready for events, stop or the deadline (mono_msec()): 1 ready, 0 timed out or
 * stopping. */
static int wait_fd(const struct metrics_http *h, int fd, short events, uint64_t deadline) {
        for (;;) {
                struct pollfd p[2] = { { .fd = fd, .events = events },
                                       { .fd = h->stop_fd, .events = POLLIN } };
                uint64_t now = mono_msec();
                int n;

                if (now >= deadline)
                        return 0;
                n = poll(p, 2, (int) MIN(deadline - now, (uint64_t) 1000));
                if (n < 0 && errno != EINTR)
                        return 0;
                if (n > 0 && p[1].revents)
                        return 0;
                if (n > 0 && p[0].revents)
                        return 1;
        }
}

/* The request head, up to the empty line: 1 got it, 0 timed out / closed / stopping, -E2BIG too long. */
static int read_head(const struct metrics_http *h, int fd, char *buf, size_t size, size_t *ret_len) {
        uint64_t deadline = mono_msec() + METRICS_HTTP_READ_TIMEOUT_MS;
        size_t len = 0;

        for (;;) {
                ssize_t n;

                if (len >= 4 && memmem(buf, len, "\r\n\r\n", 4)) {
                        *ret_len = len;
                        return 1;
                }
                if (len == size)
                        return -E2BIG;
                if (!wait_fd(h, fd, POLLIN, deadline))
                        return 0;
                n = recv(fd, buf + len, size - len, 0);
                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                        continue;
                if (n <= 0)
                        return 0;
                len += (size_t) n;
        }
}

static void send_all(const struct metrics_http *h, int fd, const char *s, size_t len) {
        uint64_t deadline = mono_msec() + METRICS_HTTP_WRITE_TIMEOUT_MS;

        while (len > 0) {
                ssize_t n = send(fd, s, len, MSG_NOSIGNAL);

                if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
                        if (!wait_fd(h, fd, POLLOUT, deadline))
                                return;
                        continue;
                }
                if (n <= 0)
                        return;
                s += n;
                len -= (size_t) n;
        }
}

static int scrape(char **ret, size_t *ret_len) {
        return agent_metrics_scrape(METRICS_HTTP_SCRAPE_TIMEOUT_MS, ret, ret_len);
}

static void *conn_main(void *arg) {
        struct conn *c = arg;
        struct metrics_http *h = c->h;
        char head[METRICS_HTTP_REQUEST_MAX];
        _cleanup_free_ char *out = NULL;
        size_t len = 0, out_len = 0;
        int r, status = 0;

        r = read_head(h, c->fd, head, sizeof(head), &len);
        if (r == -E2BIG)
                r = simple_answer(status = 431, NULL, &out, &out_len);
        else if (r == 0) {
                log_debug("metrics: a client sent no complete request within %u ms, closing",
                          METRICS_HTTP_READ_TIMEOUT_MS);
                r = simple_answer(status = 408, NULL, &out, &out_len);
        } else
                r = metrics_http_answer(head, len, scrape, &out, &out_len, &status);
        if (r >= 0)
                send_all(h, c->fd, out, out_len);
        if (status != 200)
                log_debug("metrics: answered %d", status);
        (void) close(c->fd);
        free(c);
        (void) pthread_mutex_lock(&h->lock);
        h->active--;
        (void) pthread_cond_broadcast(&h->idle);
        (void) pthread_mutex_unlock(&h->lock);
        return NULL;
}

/* Over the bound: one 503, sent without waiting (the socket buffer takes it), then closed. */
static void refuse(int fd) {
        static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; "
                                   "charset=utf-8\r\nContent-Length: 20\r\nConnection: close\r\n"
                                   "Retry-After: 1\r\n\r\nService Unavailable\n";

        (void) send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void) close(fd);
}

static void accept_one(struct metrics_http *h) {
        pthread_attr_t attr;
        struct conn *c;
        pthread_t t;
        int fd, r;

        fd = accept4(h->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0)
                return;
        (void) pthread_mutex_lock(&h->lock);
        if (h->active >= METRICS_HTTP_MAX_SCRAPES) {
                (void) pthread_mutex_unlock(&h->lock);
                log_debug("metrics: %u scrapes in progress, refusing one more with 503",
                          METRICS_HTTP_MAX_SCRAPES);
                refuse(fd);
                return;
        }
        h->active++;
        (void) pthread_mutex_unlock(&h->lock);
        c = malloc(sizeof(*c));
        r = c ? pthread_attr_init(&attr) : ENOMEM;
        if (r == 0) {
                (void) pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
                *c = (struct conn){ .h = h, .fd = fd };
                r = pthread_create(&t, &attr, conn_main, c);
                (void) pthread_attr_destroy(&attr);
        }
        if (r == 0)
                return;
        free(c);
        refuse(fd);
        (void) pthread_mutex_lock(&h->lock);
        h->active--;
        (void) pthread_cond_broadcast(&h->idle);
        (void) pthread_mutex_unlock(&h->lock);
}

static void *accept_main(void *arg) {
        struct metrics_http *h = arg;

        for (;;) {
                struct pollfd p[2] = { { .fd = h->listen_fd, .events = POLLIN },
                                       { .fd = h->stop_fd, .events = POLLIN } };

                if (poll(p, 2, -1) < 0 && errno != EINTR)
                        break;
                if (p[1].revents)
                        break;
                if (p[0].revents)
                        accept_one(h);
        }
        return NULL;
}

static int listen_socket(const struct metrics_listen *l, char **ret_unix_path) {
        _cleanup_close_ int fd = -1;
        union {
                struct sockaddr sa;
                struct sockaddr_un un;
                struct sockaddr_in in;
                struct sockaddr_in6 in6;
        } sa = {};
        socklen_t sl;
        int one = 1;

        switch (l->kind) {
        case METRICS_LISTEN_UNIX: {
                struct stat st;

                sa.un.sun_family = AF_UNIX;
                memcpy(sa.un.sun_path, l->path, strlen(l->path) + 1);
                sl = sizeof(sa.un);
                /* An old socket of ours (the agent died): replaced. Anything else at the path: refused. */
                if (lstat(l->path, &st) == 0) {
                        if (!S_ISSOCK(st.st_mode))
                                return -EEXIST;
                        if (unlink(l->path) < 0)
                                return negative_errno();
                }
                break;
        }
        case METRICS_LISTEN_INET:
                sa.in.sin_family = AF_INET;
                memcpy(&sa.in.sin_addr, l->addr, 4);
                sa.in.sin_port = htons(l->port);
                sl = sizeof(sa.in);
                break;
        case METRICS_LISTEN_INET6:
                sa.in6.sin6_family = AF_INET6;
                memcpy(&sa.in6.sin6_addr, l->addr, 16);
                sa.in6.sin6_port = htons(l->port);
                sl = sizeof(sa.in6);
                break;
        default: return -EINVAL;
        }
        fd = socket(sa.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return negative_errno();
        if (l->kind != METRICS_LISTEN_UNIX)
                (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, &sa.sa, sl) < 0)
                return negative_errno();
        /* Prometheus (or its proxy) runs as another user; the metrics hold no secret. */
        if (l->kind == METRICS_LISTEN_UNIX && chmod(l->path, 0666) < 0) {
                int r = negative_errno();
                (void) unlink(l->path);
                return r;
        }
        if (listen(fd, 16) < 0) {
                int r = negative_errno();
                if (l->kind == METRICS_LISTEN_UNIX)
                        (void) unlink(l->path);
                return r;
        }
        if (l->kind == METRICS_LISTEN_UNIX && !(*ret_unix_path = strdup(l->path))) {
                (void) unlink(l->path);
                return -ENOMEM;
        }
        return TAKE_FD(fd);
}

int metrics_http_start(const struct metrics_listen *l, struct metrics_http **ret) {
        _cleanup_(metrics_http_stopp) struct metrics_http *h = NULL;
        int r;

        h = calloc(1, sizeof(*h));
        if (!h)
                return -ENOMEM;
        h->listen_fd = h->stop_fd = -1;
        (void) pthread_mutex_init(&h->lock, NULL);
        (void) pthread_cond_init(&h->idle, NULL);
        h->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (h->stop_fd < 0)
                return negative_errno();
        h->listen_fd = listen_socket(l, &h->unix_path);
        if (h->listen_fd < 0)
                return h->listen_fd;
        r = pthread_create(&h->thread, NULL, accept_main, h);
        if (r != 0)
                return -r;
        h->thread_started = true;
        *ret = TAKE_PTR(h);
        return 0;
}

struct metrics_http *metrics_http_stop(struct metrics_http *h) {
        if (!h)
                return NULL;
        if (h->stop_fd >= 0)
                (void) eventfd_write(h->stop_fd, 1);
        if (h->thread_started)
                (void) pthread_join(h->thread, NULL);
        (void) pthread_mutex_lock(&h->lock);
        while (h->active > 0)
                (void) pthread_cond_wait(&h->idle, &h->lock);
        (void) pthread_mutex_unlock(&h->lock);
        if (h->listen_fd >= 0)
                (void) close(h->listen_fd);
        if (h->unix_path)
                (void) unlink(h->unix_path);
        if (h->stop_fd >= 0)
                (void) close(h->stop_fd);
        free(h->unix_path);
        (void) pthread_cond_destroy(&h->idle);
        (void) pthread_mutex_destroy(&h->lock);
        free(h);
        return NULL;
}
