/* The serving loop: worker threads sharing one epoll set over the data and control sockets.
 *
 * Every connection is registered with EPOLLONESHOT, so exactly one worker owns it from the event
 * until it re-arms it: no per-connection lock. Listening sockets are one-shot too and re-armed
 * after accepting. A level-triggered eventfd wakes every worker at shutdown. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "common/busy-poll.h"
#include "common/log.h"
#include "common/rpc-frame.h"
#include "common/secret.h"
#include "common/time-util.h"
#include "enclave-token/server.h"

#define LISTEN_BACKLOG 512

enum source_type {
        SOURCE_STOP,
        SOURCE_LISTENER,
        SOURCE_CONN,
};

/* First member of everything registered with epoll: the event's data.ptr. */
struct source {
        enum source_type type;
        /* Release before re-arming, acquire after epoll_wait(): the kernel already orders the hand
         * over from one worker to the next, this spells it out for the C memory model (and TSan). */
        unsigned handoff;
};

static void source_release(struct source *src) {
        (void) __atomic_fetch_add(&src->handoff, 1, __ATOMIC_RELEASE);
}

static void source_acquire(struct source *src) {
        (void) __atomic_load_n(&src->handoff, __ATOMIC_ACQUIRE);
}

struct listener {
        struct source src;
        int fd;
        enum rpc_channel channel;
        struct transport_addr addr;
};

struct conn {
        struct source src;
        int fd;
        struct etok_session session;

        struct rpc_header hdr; /* valid when have_hdr */
        bool have_hdr;
        /* Data channel: whole frames, read in bulk. Control channel: the header only; the body,
         * which may carry PINs and private keys, goes to a secret_buf sized from the header. */
        uint8_t *rbuf;
        size_t rcap, rlen;
        struct secret_buf *body;
        size_t body_have;

        /* An answer the socket did not take at once. */
        uint8_t *out;
        size_t out_len, out_off;
        bool out_secret;
        bool close_after_send;

        struct conn *prev, *next;
};

struct worker {
        struct etok_server *server;
        pthread_t thread;
        bool started;
        uint8_t *out;        /* header + the largest body: answers are encoded here, then sent */
        struct busy_poll bp; /* see conn_poll() */
};

struct etok_server {
        const struct etok_dispatch *dispatch;
        int epfd;
        int stop_fd;
        struct source stop_src;
        struct listener listeners[_RPC_CHANNEL_MAX];
        unsigned n_workers;
        struct worker *workers;
        bool running;
        unsigned busy_poll_usec;
        unsigned polling; /* a worker is in conn_poll() */

        pthread_mutex_t conns_lock;
        struct conn *conns;
        size_t n_conns;
};

#define OUT_SIZE (RPC_HEADER_SIZE + RPC_MAX_BODY_CONTROL)

static bool is_control(const struct conn *c) {
        return c->session.channel == RPC_CHANNEL_CONTROL;
}

/* ---- connections ---- */

static struct conn *conn_free(struct conn *c) {
        if (!c)
                return NULL;
        safe_close(c->fd);
        if (c->rbuf) {
                secret_wipe(c->rbuf, c->rcap);
                free(c->rbuf);
        }
        secret_buf_free(c->body);
        if (c->out) {
                if (c->out_secret)
                        secret_wipe(c->out, c->out_len);
                free(c->out);
        }
        free(c);
        return NULL;
}

static void conn_unlink(struct etok_server *s, struct conn *c) {
        (void) pthread_mutex_lock(&s->conns_lock);
        if (c->prev)
                c->prev->next = c->next;
        else
                s->conns = c->next;
        if (c->next)
                c->next->prev = c->prev;
        s->n_conns--;
        (void) pthread_mutex_unlock(&s->conns_lock);
}

static void conn_close(struct etok_server *s, struct conn *c, int reason) {
        log_debug_errno(reason, "Closing %s connection %d: %m", rpc_channel_to_string(c->session.channel),
                        c->fd);
        conn_unlink(s, c);
        conn_free(c);
}

static int conn_new(enum rpc_channel ch, int fd, struct conn **ret) {
        struct conn *c;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->src.type = SOURCE_CONN;
        c->fd = fd;
        etok_session_init(&c->session, ch);
        c->rcap = RPC_HEADER_SIZE + (ch == RPC_CHANNEL_DATA ? RPC_MAX_BODY_DATA : 0);
        c->rbuf = malloc(c->rcap);
        if (!c->rbuf) {
                c->fd = -1;
                conn_free(c);
                return -ENOMEM;
        }
        *ret = c;
        return 0;
}

/* Takes fd. */
static void conn_add(struct etok_server *s, enum rpc_channel ch, int fd) {
        struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT };
        struct conn *c = NULL;
        bool full;
        int r;

        (void) pthread_mutex_lock(&s->conns_lock);
        full = s->n_conns >= ETOK_MAX_CONNECTIONS;
        (void) pthread_mutex_unlock(&s->conns_lock);
        if (full) {
                log_warning("Too many connections (%d), refusing a %s connection", ETOK_MAX_CONNECTIONS,
                            rpc_channel_to_string(ch));
                safe_close(fd);
                return;
        }
        r = conn_new(ch, fd, &c);
        if (r < 0) {
                log_error_errno(r, "Failed to set up a %s connection: %m", rpc_channel_to_string(ch));
                safe_close(fd);
                return;
        }
        /* Listed before it is armed: from then on another worker may already own it. */
        (void) pthread_mutex_lock(&s->conns_lock);
        c->next = s->conns;
        if (s->conns)
                s->conns->prev = c;
        s->conns = c;
        s->n_conns++;
        (void) pthread_mutex_unlock(&s->conns_lock);

        log_debug("New %s connection %d", rpc_channel_to_string(ch), fd);
        ev.data.ptr = c;
        source_release(&c->src);
        if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
                conn_close(s, c, log_error_errno(negative_errno(), "Failed to watch a connection: %m"));
}

/* >0 bytes read; 0 nothing to read now (*drained set); <0 close. */
static ssize_t conn_recv(struct conn *c, uint8_t *p, size_t n, bool *drained) {
        for (;;) {
                ssize_t k = recv(c->fd, p, n, MSG_DONTWAIT);

                if (k > 0) {
                        /* A short read almost always means the socket is empty: re-arming checks. */
                        if ((size_t) k < n)
                                *drained = true;
                        return k;
                }
                if (k == 0)
                        return -ECONNRESET;
                if (errno == EINTR)
                        continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK) {
                        *drained = true;
                        return 0;
                }
                return -errno;
        }
}

static int conn_check_header(struct conn *c) {
        int r;

        if (c->have_hdr)
                return 0;
        /* A bad header closes the connection without an answer. */
        r = rpc_header_decode(c->rbuf, c->session.channel, &c->hdr);
        if (r < 0)
                return r;
        if (c->hdr.kind != RPC_KIND_REQUEST)
                return -EBADMSG;
        if (c->session.state == RPC_STATE_READY && c->hdr.version != c->session.version)
                return -EPROTONOSUPPORT;
        if (is_control(c) && c->hdr.body_len > 0) {
                /* The length was checked against the channel maximum before this allocation. */
                r = secret_buf_new(c->hdr.body_len, &c->body);
                if (r < 0)
                        return log_error_errno(r, "Failed to allocate a %" PRIu32 " byte frame: %m",
                                               c->hdr.body_len);
                c->body->len = c->hdr.body_len;
        }
        c->have_hdr = true;
        return 0;
}

/* 1 with *ret_body once a whole frame is in; 0 to wait for more input; <0 to close. */
static int conn_next_frame(struct conn *c, bool *drained, const uint8_t **ret_body) {
        static const uint8_t empty[1];

        for (;;) {
                bool in_body = c->rlen >= RPC_HEADER_SIZE;
                uint8_t *dst;
                size_t want;
                ssize_t k;
                int r;

                if (in_body) {
                        r = conn_check_header(c);
                        if (r < 0)
                                return r;
                        if (is_control(c) && c->body_have == c->hdr.body_len) {
                                *ret_body = c->body ? c->body->data : empty;
                                return 1;
                        }
                        if (!is_control(c) && c->rlen - RPC_HEADER_SIZE >= c->hdr.body_len) {
                                *ret_body = c->rbuf + RPC_HEADER_SIZE;
                                return 1;
                        }
                }
                if (*drained)
                        return 0;
                if (is_control(c) && in_body) {
                        dst = c->body->data + c->body_have;
                        want = c->hdr.body_len - c->body_have;
                } else {
                        dst = c->rbuf + c->rlen;
                        want = c->rcap - c->rlen;
                }
                k = conn_recv(c, dst, want, drained);
                if (k < 0)
                        return (int) k;
                if (is_control(c) && in_body)
                        c->body_have += (size_t) k;
                else
                        c->rlen += (size_t) k;
        }
}

/* Drops the handled frame; bytes of the next one (data channel) move to the front. Every byte
 * the frame occupied is wiped: requests carry tickets and PINs. */
static void conn_consume(struct conn *c) {
        if (is_control(c)) {
                c->body = secret_buf_free(c->body);
                c->body_have = 0;
                c->rlen = 0;
        } else {
                size_t frame = RPC_HEADER_SIZE + c->hdr.body_len, rest = c->rlen - frame;

                if (rest > 0)
                        memmove(c->rbuf, c->rbuf + frame, rest);
                secret_wipe(c->rbuf + rest, frame);
                c->rlen = rest;
        }
        c->have_hdr = false;
}

/* 0 sent; 1 the rest is pending (wait for EPOLLOUT); <0 close. */
static int conn_send(struct conn *c, const uint8_t *p, size_t len, bool secret) {
        ssize_t k;

        do
                k = send(c->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        while (k < 0 && errno == EINTR);
        if (k == (ssize_t) len)
                return 0;
        if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
                return -errno;
        if (k < 0)
                k = 0;
        /* Rare (a slow reader or a large DESCRIBE page): keep a copy of what is left. */
        c->out = malloc(len - (size_t) k);
        if (!c->out)
                return -ENOMEM;
        memcpy(c->out, p + k, len - (size_t) k);
        c->out_len = len - (size_t) k;
        c->out_off = 0;
        c->out_secret = secret;
        return 1;
}

static int conn_flush(struct conn *c) {
        while (c->out_off < c->out_len) {
                ssize_t k = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
                                 MSG_NOSIGNAL | MSG_DONTWAIT);

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN || errno == EWOULDBLOCK)
                                return 1;
                        return -errno;
                }
                c->out_off += (size_t) k;
        }
        if (c->out_secret)
                secret_wipe(c->out, c->out_len);
        free(c->out);
        c->out = NULL;
        c->out_len = c->out_off = 0;
        return 0;
}

static int conn_process(struct worker *wk, struct conn *c, const uint8_t *body) {
        const struct etok_dispatch *d = wk->server->dispatch;
        struct etok_reply rep;
        struct rpc_writer w;
        int r;

        rpc_writer_init(&w, wk->out + RPC_HEADER_SIZE, rpc_channel_max_body(c->session.channel));
        etok_dispatch_request(d, &c->session, c->hdr.call, body, c->hdr.body_len, &w, &rep);
        rpc_header_encode(
                &(struct rpc_header){
                        .magic = RPC_MAGIC,
                        .version = c->session.version ? c->session.version : c->hdr.version,
                        .kind = RPC_KIND_RESPONSE,
                        .call = c->hdr.call,
                        .status = (uint8_t) rep.status,
                        .request_id = c->hdr.request_id,
                        .body_len = (uint32_t) w.len,
                },
                wk->out);
        r = conn_send(c, wk->out, RPC_HEADER_SIZE + w.len, rep.secret);
        if (rep.secret)
                secret_wipe(wk->out + RPC_HEADER_SIZE, w.len);
        if (rep.close)
                c->close_after_send = true;
        return r;
}

/* <0 close; 0 wait for input; 1 wait until the socket takes more output. */
static int conn_serve(struct worker *wk, struct conn *c) {
        bool drained = false;
        int r;

        if (c->out) {
                r = conn_flush(c);
                if (r != 0)
                        return r;
        }
        for (;;) {
                const uint8_t *body;

                if (c->close_after_send)
                        return -EPROTO;
                r = conn_next_frame(c, &drained, &body);
                if (r <= 0)
                        return r;
                r = conn_process(wk, c, body);
                conn_consume(c);
                if (r != 0)
                        return r; /* error, or output pending: no reading until it is out */
        }
}

/* After an answer the same client's next request often follows within microseconds (its next
 * signature). The worker that answered polls the connection for busy_poll_usec before giving it back
 * to epoll, so that request is served at once: no wake-up of an idle vCPU (tens of microseconds on a
 * VM) on either side. The connection stays disarmed while it is polled, so its request wakes no
 * other worker: a worker woken for nothing is placed on the client's CPU and preempts it. Polling
 * stops as soon as another connection has something for epoll (the epoll fd turns readable), so a
 * polled client never makes others wait. One worker polls at a time (the others' CPUs stay free for
 * whatever shares them: the clients, when the token runs on the parent in dev and tests), and misses
 * back off (common/busy-poll.h). */
static bool conn_poll(struct worker *wk, struct conn *c) {
        struct etok_server *s = wk->server;
        struct pollfd p[2] = { { .fd = c->fd, .events = POLLIN | POLLRDHUP },
                               { .fd = s->epfd, .events = POLLIN } };
        unsigned idle = 0;
        uint64_t until;
        int n;

        if (s->busy_poll_usec == 0 || is_control(c) || !busy_poll_begin(&wk->bp))
                return false;
        if (!__atomic_compare_exchange_n(&s->polling, &idle, 1u, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
                return false;
        until = mono_usec() + s->busy_poll_usec;
        /* sched_yield(): a runnable thread on this CPU (a client, in dev and tests) goes first; on an
         * idle CPU it returns at once. */
        while ((n = poll(p, 2, 0)) == 0 && mono_usec() < until)
                (void) sched_yield();
        __atomic_store_n(&s->polling, 0u, __ATOMIC_RELEASE);
        if (n > 0 && p[1].revents != 0)
                return false; /* others wait: neither a hit nor a miss, and they go first */
        busy_poll_end(&wk->bp, n > 0);
        return n > 0;
}

static void conn_event(struct worker *wk, struct conn *c) {
        struct etok_server *s = wk->server;
        struct epoll_event ev = { .events = EPOLLRDHUP | EPOLLONESHOT, .data.ptr = c };
        int r, fd = c->fd;

        do
                r = conn_serve(wk, c);
        while (r == 0 && conn_poll(wk, c));
        if (r < 0) {
                conn_close(s, c, r);
                return;
        }
        /* Re-arming reports at once whatever is already readable. From here on c belongs to
         * whichever worker gets its next event: not one more access unless re-arming failed. */
        ev.events |= r > 0 ? EPOLLOUT : EPOLLIN;
        source_release(&c->src);
        if (epoll_ctl(s->epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
                conn_close(s, c, log_error_errno(negative_errno(), "Failed to re-arm a connection: %m"));
}

/* ---- listeners and workers ---- */

static void listener_event(struct etok_server *s, struct listener *l) {
        struct epoll_event ev = { .events = EPOLLIN | EPOLLONESHOT, .data.ptr = l };

        for (;;) {
                int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

                if (fd >= 0) {
                        conn_add(s, l->channel, fd);
                        continue;
                }
                if (errno == EINTR || errno == ECONNABORTED)
                        continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK)
                        break;
                log_warning_errno(negative_errno(), "Failed to accept a %s connection: %m",
                                  rpc_channel_to_string(l->channel));
                if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                        /* Out of fds or memory: the backlog stays readable, do not spin on it. */
                        (void) nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000 * 1000 }, NULL);
                break;
        }
        source_release(&l->src);
        if (epoll_ctl(s->epfd, EPOLL_CTL_MOD, l->fd, &ev) < 0)
                log_error_errno(negative_errno(), "Failed to re-arm the %s listener: %m",
                                rpc_channel_to_string(l->channel));
}

static void *worker_main(void *p) {
        struct worker *wk = p;
        struct etok_server *s = wk->server;

        for (;;) {
                struct epoll_event ev;
                struct source *src;
                int n;

                n = epoll_wait(s->epfd, &ev, 1, -1);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        log_error_errno(negative_errno(), "epoll_wait() failed: %m");
                        break;
                }
                if (n == 0)
                        continue;
                src = ev.data.ptr;
                if (src->type == SOURCE_STOP)
                        break;
                source_acquire(src);
                if (src->type == SOURCE_LISTENER)
                        listener_event(s, (struct listener *) src);
                else
                        conn_event(wk, (struct conn *) src);
        }
        OPENSSL_thread_stop();
        return NULL;
}

static int server_listen(struct etok_server *s, enum rpc_channel ch, const struct transport_addr *a,
                         const struct etok_server_config *cfg) {
        struct listener *l = &s->listeners[ch];
        struct epoll_event ev = { .events = EPOLLIN | EPOLLONESHOT, .data.ptr = l };
        char text[256];
        int fd;

        if (transport_addr_format(a, text, sizeof(text)) < 0)
                strcpy(text, "?");
        fd = transport_listen(a, cfg->socket_mode, cfg->socket_gid, LISTEN_BACKLOG);
        if (fd < 0)
                return log_error_errno(fd, "Failed to listen on %s address '%s': %m",
                                       rpc_channel_to_string(ch), text);
        l->fd = fd;
        l->addr = *a;
        if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
                return log_error_errno(negative_errno(), "Failed to watch the %s listener: %m",
                                       rpc_channel_to_string(ch));
        log_info("Listening on %s channel '%s'", rpc_channel_to_string(ch), text);
        return 0;
}

int etok_server_new(const struct etok_dispatch *d, const struct etok_server_config *cfg,
                    struct etok_server **ret) {
        _cleanup_(etok_server_freep) struct etok_server *s = NULL;
        struct epoll_event ev = { .events = EPOLLIN };
        int r;

        if (cfg->workers == 0)
                return -EINVAL;
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->dispatch = d;
        s->epfd = s->stop_fd = -1;
        for (size_t i = 0; i < ELEMENTSOF(s->listeners); i++)
                s->listeners[i] = (struct listener){ .src.type = SOURCE_LISTENER, .fd = -1, .channel = i };
        s->stop_src.type = SOURCE_STOP;
        r = pthread_mutex_init(&s->conns_lock, NULL);
        if (r != 0)
                return -r;
        s->workers = calloc(cfg->workers, sizeof(*s->workers));
        if (!s->workers)
                return -ENOMEM;
        s->n_workers = cfg->workers;
        s->busy_poll_usec = cfg->busy_poll_usec;

        s->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (s->epfd < 0)
                return log_error_errno(negative_errno(), "Failed to create the epoll set: %m");
        s->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (s->stop_fd < 0)
                return log_error_errno(negative_errno(), "Failed to create the stop eventfd: %m");
        ev.data.ptr = &s->stop_src; /* level-triggered: wakes every worker */
        if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->stop_fd, &ev) < 0)
                return log_error_errno(negative_errno(), "Failed to watch the stop eventfd: %m");

        r = server_listen(s, RPC_CHANNEL_DATA, &cfg->data, cfg);
        if (r < 0)
                return r;
        r = server_listen(s, RPC_CHANNEL_CONTROL, &cfg->control, cfg);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

int etok_server_start(struct etok_server *s) {
        for (unsigned i = 0; i < s->n_workers; i++) {
                struct worker *wk = &s->workers[i];
                int r;

                wk->server = s;
                wk->out = malloc(OUT_SIZE);
                if (!wk->out)
                        return log_error_errno(-ENOMEM, "Failed to allocate a worker buffer: %m");
                r = pthread_create(&wk->thread, NULL, worker_main, wk);
                if (r != 0)
                        return log_error_errno(-r, "Failed to start worker %u: %m", i);
                wk->started = true;
                s->running = true;
        }
        return 0;
}

void etok_server_stop(struct etok_server *s) {
        if (!s || !s->running)
                return;
        if (eventfd_write(s->stop_fd, 1) < 0)
                log_error_errno(negative_errno(), "Failed to signal the workers: %m");
        for (unsigned i = 0; i < s->n_workers; i++)
                if (s->workers[i].started) {
                        (void) pthread_join(s->workers[i].thread, NULL);
                        s->workers[i].started = false;
                }
        s->running = false;
}

struct etok_server *etok_server_free(struct etok_server *s) {
        if (!s)
                return NULL;
        etok_server_stop(s);
        /* The workers are gone: nobody else touches the connections now. */
        while (s->conns) {
                struct conn *c = s->conns;

                s->conns = c->next;
                conn_free(c);
        }
        for (size_t i = 0; i < ELEMENTSOF(s->listeners); i++) {
                struct listener *l = &s->listeners[i];

                if (l->fd < 0)
                        continue;
                safe_close(l->fd);
                if (l->addr.family == TRANSPORT_UNIX && l->addr.path[0] && unlink(l->addr.path) < 0 &&
                    errno != ENOENT)
                        log_warning_errno(negative_errno(), "Failed to remove socket '%s', ignoring: %m",
                                          l->addr.path);
        }
        safe_close(s->epfd);
        safe_close(s->stop_fd);
        for (unsigned i = 0; s->workers && i < s->n_workers; i++)
                free(s->workers[i].out);
        free(s->workers);
        (void) pthread_mutex_destroy(&s->conns_lock);
        free(s);
        return NULL;
}
