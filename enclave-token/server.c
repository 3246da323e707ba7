/* The serving loop: worker threads sharing one epoll set over the data socket, and a small pool of
 * its own with its own epoll set over the control socket: control calls that wait on the network (a
 * KMS round of 1024 tokens) never take a data worker, so signing goes on meanwhile.
 *
 * Every connection is registered with EPOLLONESHOT, so exactly one worker owns it from the event
 * until it re-arms it: no per-connection lock. Listening sockets are one-shot too and re-armed
 * after accepting. A level-triggered eventfd wakes every worker at shutdown.
 *
 * Every resource a client controls is bounded: connections per peer (uid or CID) and in total,
 * checked at accept, where the stalled or oldest idle connection of the peer that holds the most is
 * closed to make room; the time from connect to HELLO, from a frame's first byte to its last and
 * without any request (etok_server_sweep()); and buffer memory. A connection lives in one page with
 * a buffer for ordinary frames; a larger frame or an answer the socket did not take gets a mapping of
 * its own from a budget shared by all connections. Both are unmapped once done, so a burst of
 * connections leaves nothing resident behind. Closing a connection another worker may own is done
 * with shutdown(): its owner then reads EOF and closes it. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <linux/vm_sockets.h>
#include <openssl/crypto.h>

#include "common/busy-poll.h"
#include "common/log.h"
#include "common/rpc-frame.h"
#include "common/secret.h"
#include "common/time-util.h"
#include "enclave-token/server.h"

#define LISTEN_BACKLOG 512
#define CONN_SIZE      4096 /* one page: the connection and its buffer for ordinary frames */
/* Larger data frames and answers the socket did not take, over all connections: 256 of the largest.
 * A uid on a unix socket may hold a quarter of it, so one local user cannot take it all from the
 * others. On vsock every connection is the parent's: there a connection's share is what it can hold
 * at once, one frame and one unsent answer. */
#define BIG_BUDGET    (RPC_MAX_BODY_DATA * 256u)
#define BIG_UID_SHARE (BIG_BUDGET / 4u)
/* In HELLO or in a frame for this long: a connection that may be closed to make room for another. */
#define STALLED_MS 1000

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

enum conn_phase {
        PHASE_NEW,     /* HELLO not done */
        PHASE_IDLE,    /* nothing half-read, nothing unsent */
        PHASE_PARTIAL, /* part of a frame read */
        PHASE_SENDING, /* part of an answer unsent: the client does not read */
};

/* Whoever is at the other end: a uid on a unix socket, the CID on vsock. */
struct peer {
        uint64_t key;    /* channel << 32 | uid or CID */
        unsigned n_live; /* connections not doomed: what the limits count */
        unsigned n_all;
        bool uid;         /* a uid on a unix socket: its connections share BIG_UID_SHARE */
        size_t big_bytes; /* atomic: what its connections hold of the large-frame budget */
        struct conn *conns;
        struct peer *next;
};

struct conn {
        struct source src;
        int fd;
        struct etok_session session;

        struct rpc_header hdr; /* valid when have_hdr */
        bool have_hdr;
        /* Data channel: whole frames, read in bulk into small, or into a mapping of exactly one frame
         * that does not fit. Control channel: the header only; the body, which may carry PINs and
         * private keys, goes to a secret_buf sized from the header. */
        uint8_t *rbuf;
        size_t rcap, rlen;
        struct secret_buf *body;
        size_t body_have;

        /* An answer the socket did not take at once (a mapping from the budget). */
        uint8_t *out;
        size_t out_len, out_off;
        bool out_secret;
        bool close_after_send;
        size_t big_held; /* of the large-frame budget: rbuf when not small, and out */

        /* Written by the owning worker before it re-arms, read by admission and the sweeper, which do
         * not own the connection: relaxed atomics. since_ms: when the phase began (IDLE: the last
         * answer; PARTIAL: the frame's first read; NEW: connect). */
        unsigned phase;
        uint64_t since_ms;

        /* Under conns_lock. fd stays open while the connection is listed. */
        struct peer *peer;
        bool doomed; /* shut down to make room or timed out; its owner closes it */
        struct conn *prev, *next, *peer_prev, *peer_next;

        uint8_t small[]; /* the rest of the page */
};

#define SMALL_CAP (CONN_SIZE - offsetof(struct conn, small))
_Static_assert(SMALL_CAP >= RPC_HEADER_SIZE + 2048, "a page holds an ordinary data frame");

struct conn_count {
        unsigned n_live, n_all;
};

struct conn_stats {
        unsigned refused, evicted, timed_out[4]; /* by enum conn_phase */
};

struct worker {
        struct etok_server *server;
        int epfd; /* the data or the control set */
        pthread_t thread;
        bool started;
        uint8_t *out;        /* header + the largest body: answers are encoded here, then sent */
        struct busy_poll bp; /* see conn_poll() */
};

struct etok_server {
        const struct etok_dispatch *dispatch;
        int epfd;     /* the data listener and data connections */
        int ctl_epfd; /* the control listener and control connections */
        int stop_fd;
        struct source stop_src;
        struct listener listeners[_RPC_CHANNEL_MAX];
        unsigned n_workers; /* data workers, then ETOK_CONTROL_WORKERS control workers */
        struct worker *workers;
        bool running;
        unsigned busy_poll_usec;
        unsigned polling; /* a worker is in conn_poll() */

        struct etok_server_limits limits;
        size_t big_bytes; /* atomic: mapped for large frames and unsent answers */

        pthread_mutex_t conns_lock;
        struct conn *conns;
        struct peer *peers;
        struct conn_count count[_RPC_CHANNEL_MAX];
        struct conn_stats stats; /* since the last sweep */
};

#define OUT_SIZE (RPC_HEADER_SIZE + RPC_MAX_BODY_CONTROL)

static bool is_control(const struct conn *c) {
        return c->session.channel == RPC_CHANNEL_CONTROL;
}

static int channel_epfd(const struct etok_server *s, enum rpc_channel ch) {
        return ch == RPC_CHANNEL_CONTROL ? s->ctl_epfd : s->epfd;
}

/* ---- memory ---- */

/* CLOCK_MONOTONIC_COARSE: from the vDSO in a few nanoseconds, precise enough for timeouts in seconds. */
static uint64_t coarse_msec(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
        return (uint64_t) ts.tv_sec * 1000u + (uint64_t) ts.tv_nsec / 1000000u;
}

/* Zeroed pages of their own, so that freeing them returns them to the system whatever else the heap
 * holds. They receive frames (LOGIN carries a PIN) and hold answers (tickets): locked and excluded
 * from core dumps as a secret_buf is (secret_pages_protect(): under strict mlock, as enclave-token
 * runs, a page that cannot be locked is not used). NULL with errno set on failure. */
static void *pages_alloc(size_t n) {
        void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        int r;

        if (p == MAP_FAILED)
                return NULL;
        r = secret_pages_protect(p, n);
        if (r < 0) {
                (void) munmap(p, n);
                errno = -r;
                return NULL;
        }
        return p;
}

/* Only the first used bytes were ever written: wiping the rest would make them resident. */
static void pages_free(void *p, size_t n, size_t used) {
        if (!p)
                return;
        secret_wipe(p, used);
        (void) munmap(p, n);
}

/* The uid's share, counted while the connection is listed (conn_unlink() hands its part back). */
static struct peer *big_share_of(const struct conn *c) {
        return c->peer && c->peer->uid ? c->peer : NULL;
}

/* n bytes of the large-frame budget for c: its uid's share first, then the total. */
static int big_alloc(struct etok_server *s, struct conn *c, size_t n, uint8_t **ret) {
        struct peer *share = big_share_of(c);
        uint8_t *p;
        int r = -ENOBUFS;

        if (share && __atomic_add_fetch(&share->big_bytes, n, __ATOMIC_RELAXED) > BIG_UID_SHARE)
                goto undo_share;
        if (__atomic_add_fetch(&s->big_bytes, n, __ATOMIC_RELAXED) > BIG_BUDGET)
                goto undo;
        p = pages_alloc(n);
        if (!p) {
                r = errno > 0 ? -errno : -ENOMEM;
                goto undo;
        }
        c->big_held += n;
        *ret = p;
        return 0;

undo:
        (void) __atomic_sub_fetch(&s->big_bytes, n, __ATOMIC_RELAXED);
undo_share:
        if (share)
                (void) __atomic_sub_fetch(&share->big_bytes, n, __ATOMIC_RELAXED);
        return r;
}

static void big_free(struct etok_server *s, struct conn *c, void *p, size_t n, size_t used) {
        struct peer *share = big_share_of(c);

        if (!p)
                return;
        pages_free(p, n, used);
        (void) __atomic_sub_fetch(&s->big_bytes, n, __ATOMIC_RELAXED);
        if (share)
                (void) __atomic_sub_fetch(&share->big_bytes, n, __ATOMIC_RELAXED);
        c->big_held -= n;
}

/* ---- connections ---- */

static struct conn *conn_free(struct etok_server *s, struct conn *c) {
        if (!c)
                return NULL;
        etok_session_done(&c->session); /* ends its KMS round: credentials and key wiped */
        safe_close(c->fd);
        /* Consumed frames were wiped already (conn_consume()): what is left is the unconsumed part. */
        if (c->rbuf != c->small)
                big_free(s, c, c->rbuf, c->rcap, c->rlen);
        secret_buf_free(c->body);
        big_free(s, c, c->out, c->out_len, c->out_secret ? c->out_len : 0);
        pages_free(c, CONN_SIZE, CONN_SIZE);
        return NULL;
}

static unsigned limit_total(const struct etok_server *s, enum rpc_channel ch) {
        return ch == RPC_CHANNEL_DATA ? s->limits.max_conns : s->limits.max_control_conns;
}

static unsigned limit_peer(const struct etok_server *s, enum rpc_channel ch) {
        return ch == RPC_CHANNEL_DATA ? s->limits.max_conns_per_peer : s->limits.max_control_conns;
}

static struct peer *peer_get_locked(struct etok_server *s, uint64_t key) {
        struct peer *p;

        for (p = s->peers; p; p = p->next)
                if (p->key == key)
                        return p;
        p = calloc(1, sizeof(*p));
        if (!p)
                return NULL;
        p->key = key;
        p->next = s->peers;
        s->peers = p;
        return p;
}

static void peer_put_locked(struct etok_server *s, struct peer *p) {
        if (p->n_all > 0)
                return;
        for (struct peer **pp = &s->peers; *pp; pp = &(*pp)->next)
                if (*pp == p) {
                        *pp = p->next;
                        break;
                }
        free(p);
}

/* Shuts the socket down: whichever worker owns the connection, or gets its next event, reads EOF
 * and closes it. It no longer counts against the limits. */
static void conn_doom_locked(struct etok_server *s, struct conn *c) {
        c->doomed = true;
        c->peer->n_live--;
        s->count[c->session.channel].n_live--;
        (void) shutdown(c->fd, SHUT_RDWR);
}

static void conn_unlink(struct etok_server *s, struct conn *c) {
        struct conn_count *n = &s->count[c->session.channel];
        struct peer *p = c->peer;

        (void) pthread_mutex_lock(&s->conns_lock);
        if (c->prev)
                c->prev->next = c->next;
        else
                s->conns = c->next;
        if (c->next)
                c->next->prev = c->prev;
        if (c->peer_prev)
                c->peer_prev->peer_next = c->peer_next;
        else
                p->conns = c->peer_next;
        if (c->peer_next)
                c->peer_next->peer_prev = c->peer_prev;
        if (!c->doomed) {
                n->n_live--;
                p->n_live--;
        }
        n->n_all--;
        p->n_all--;
        /* What the connection still holds leaves its uid's share now: the peer may go here. */
        if (p->uid && c->big_held > 0)
                (void) __atomic_sub_fetch(&p->big_bytes, c->big_held, __ATOMIC_RELAXED);
        c->peer = NULL;
        peer_put_locked(s, p);
        (void) pthread_mutex_unlock(&s->conns_lock);
}

static void conn_link_locked(struct etok_server *s, struct conn *c, struct peer *p) {
        c->next = s->conns;
        if (s->conns)
                s->conns->prev = c;
        s->conns = c;
        c->peer = p;
        c->peer_next = p->conns;
        if (p->conns)
                p->conns->peer_prev = c;
        p->conns = c;
        s->count[c->session.channel].n_live++;
        s->count[c->session.channel].n_all++;
        p->n_live++;
        p->n_all++;
}

static void conn_close(struct etok_server *s, struct conn *c, int reason) {
        log_debug_errno(reason, "Closing %s connection %d: %m", rpc_channel_to_string(c->session.channel),
                        c->fd);
        conn_unlink(s, c);
        conn_free(s, c);
}

/* The connection of p to close for a new one: the longest stalled in HELLO, in a frame or in an
 * answer (no well-behaved client stays there), else the longest idle. NULL if every one is busy. */
static struct conn *peer_victim_locked(struct peer *p, uint64_t now) {
        struct conn *stalled = NULL, *idle = NULL;
        uint64_t stalled_since = UINT64_MAX, idle_since = UINT64_MAX;

        for (struct conn *c = p->conns; c; c = c->peer_next) {
                unsigned phase = __atomic_load_n(&c->phase, __ATOMIC_RELAXED);
                uint64_t since = __atomic_load_n(&c->since_ms, __ATOMIC_RELAXED);

                if (c->doomed)
                        continue;
                if (phase == PHASE_IDLE && since < idle_since) {
                        idle = c;
                        idle_since = since;
                } else if (phase != PHASE_IDLE && since + STALLED_MS <= now && since < stalled_since) {
                        stalled = c;
                        stalled_since = since;
                }
        }
        return stalled ? stalled : idle;
}

/* Room for one more connection of p: 0 there is; 1 once *ret_victim is closed; -EBUSY none. A peer at
 * its own bound makes room among its own connections; at the total bound the peer that holds the most
 * gives one up. */
static int conn_admit_locked(struct etok_server *s, enum rpc_channel ch, struct peer *p, uint64_t now,
                             struct conn **ret_victim) {
        struct peer *big = NULL;
        struct conn *v = NULL;

        if (s->count[ch].n_all >= 2 * limit_total(s, ch))
                return -EBUSY; /* as many doomed as live: wait until their owners closed them */
        if (p->n_live >= limit_peer(s, ch))
                v = peer_victim_locked(p, now);
        else if (s->count[ch].n_live >= limit_total(s, ch)) {
                for (struct peer *q = s->peers; q; q = q->next)
                        if ((q->key >> 32) == (uint64_t) ch && (!big || q->n_live > big->n_live))
                                big = q;
                v = big ? peer_victim_locked(big, now) : NULL;
                for (struct peer *q = s->peers; q && !v; q = q->next)
                        if ((q->key >> 32) == (uint64_t) ch)
                                v = peer_victim_locked(q, now);
        } else
                return 0;
        if (!v)
                return -EBUSY;
        *ret_victim = v;
        return 1;
}

static int conn_new(enum rpc_channel ch, int fd, uint64_t now, struct conn **ret) {
        struct conn *c = pages_alloc(CONN_SIZE);

        if (!c)
                return errno > 0 ? -errno : -ENOMEM;
        c->src.type = SOURCE_CONN;
        c->fd = fd;
        etok_session_init(&c->session, ch);
        c->rbuf = c->small;
        c->rcap = ch == RPC_CHANNEL_DATA ? SMALL_CAP : RPC_HEADER_SIZE;
        c->phase = PHASE_NEW;
        c->since_ms = now;
        *ret = c;
        return 0;
}

/* Takes fd. The peer's identity also goes to the connection's PIN guard: wrong PINs are charged to
 * its peer's budget (keystore.h). */
static void conn_add(struct etok_server *s, enum rpc_channel ch, int fd, enum etok_peer_kind peer_kind,
                     uint32_t peer_id) {
        struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT };
        uint64_t now = coarse_msec();
        struct conn *c = NULL, *victim = NULL;
        struct peer *p;
        int r;

        r = conn_new(ch, fd, now, &c);
        if (r < 0) {
                log_error_errno(r, "Failed to set up a %s connection: %m", rpc_channel_to_string(ch));
                safe_close(fd);
                return;
        }
        c->session.pin_guard.peer_kind = peer_kind;
        c->session.pin_guard.peer_id = peer_id;
        /* Listed before it is armed: from then on another worker may already own it. */
        (void) pthread_mutex_lock(&s->conns_lock);
        p = peer_get_locked(s, (uint64_t) ch << 32 | peer_id);
        if (p)
                p->uid = peer_kind == ETOK_PEER_UID;
        r = p ? conn_admit_locked(s, ch, p, now, &victim) : -ENOMEM;
        if (r < 0) {
                s->stats.refused++;
                if (p)
                        peer_put_locked(s, p);
        } else {
                if (victim) {
                        conn_doom_locked(s, victim);
                        s->stats.evicted++;
                }
                conn_link_locked(s, c, p);
        }
        (void) pthread_mutex_unlock(&s->conns_lock);
        if (r < 0) {
                /* Counted and logged by the next sweep: one line a second, whatever a client does. */
                conn_free(s, c);
                return;
        }

        log_debug("New %s connection %d (peer %" PRIu32 ")", rpc_channel_to_string(ch), fd, peer_id);
        ev.data.ptr = c;
        source_release(&c->src);
        if (epoll_ctl(channel_epfd(s, ch), EPOLL_CTL_ADD, fd, &ev) < 0)
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

/* A data frame larger than the page's buffer gets a mapping of exactly its size. Everything read so
 * far belongs to it: the small buffer holds less than one such frame. */
static int conn_grow(struct etok_server *s, struct conn *c) {
        size_t need = RPC_HEADER_SIZE + c->hdr.body_len;
        uint8_t *big;
        int r;

        if (need <= c->rcap)
                return 0;
        r = big_alloc(s, c, need, &big);
        if (r < 0)
                return r;
        memcpy(big, c->rbuf, c->rlen);
        secret_wipe(c->rbuf, c->rlen);
        c->rbuf = big;
        c->rcap = need;
        return 0;
}

static int conn_check_header(struct etok_server *s, struct conn *c) {
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
        } else if (!is_control(c)) {
                r = conn_grow(s, c);
                if (r < 0)
                        return r;
        }
        c->have_hdr = true;
        return 0;
}

/* 1 with *ret_body once a whole frame is in; 0 to wait for more input; <0 to close. */
static int conn_next_frame(struct etok_server *s, struct conn *c, bool *drained, const uint8_t **ret_body) {
        static const uint8_t empty[1];

        for (;;) {
                bool in_body = c->rlen >= RPC_HEADER_SIZE;
                uint8_t *dst;
                size_t want;
                ssize_t k;
                int r;

                if (in_body) {
                        r = conn_check_header(s, c);
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
 * the frame occupied is wiped: requests carry tickets and PINs. A large frame's mapping goes. */
static void conn_consume(struct etok_server *s, struct conn *c) {
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
                if (c->rbuf != c->small) {
                        /* It held exactly one frame: rest is 0. */
                        big_free(s, c, c->rbuf, c->rcap, 0);
                        c->rbuf = c->small;
                        c->rcap = SMALL_CAP;
                        c->rlen = 0;
                }
        }
        c->have_hdr = false;
}

/* 0 sent; 1 the rest is pending (wait for EPOLLOUT); <0 close. */
static int conn_send(struct etok_server *s, struct conn *c, const uint8_t *p, size_t len, bool secret) {
        ssize_t k;
        int r;

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
        r = big_alloc(s, c, len - (size_t) k, &c->out);
        if (r < 0)
                return r;
        memcpy(c->out, p + k, len - (size_t) k);
        c->out_len = len - (size_t) k;
        c->out_off = 0;
        c->out_secret = secret;
        return 1;
}

static int conn_flush(struct etok_server *s, struct conn *c) {
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
        big_free(s, c, c->out, c->out_len, c->out_secret ? c->out_len : 0);
        c->out = NULL;
        c->out_len = c->out_off = 0;
        return 0;
}

static int conn_process(struct worker *wk, struct conn *c, const uint8_t *body) {
        const struct etok_dispatch *d = wk->server->dispatch;
        struct etok_reply rep;
        struct rpc_writer w;
        int r;

        /* A control call may wait on KMS for many seconds: meanwhile the connection is not stalled in a
         * frame (its whole frame is here), and control connections never idle out. */
        if (is_control(c))
                __atomic_store_n(&c->phase, (unsigned) PHASE_IDLE, __ATOMIC_RELAXED);
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
        r = conn_send(wk->server, c, wk->out, RPC_HEADER_SIZE + w.len, rep.secret);
        if (rep.secret)
                secret_wipe(wk->out + RPC_HEADER_SIZE, w.len);
        if (rep.close)
                c->close_after_send = true;
        return r;
}

/* <0 close; 0 wait for input; 1 wait until the socket takes more output. *served counts frames. */
static int conn_serve(struct worker *wk, struct conn *c, unsigned *served) {
        bool drained = false;
        int r;

        if (c->out) {
                r = conn_flush(wk->server, c);
                if (r != 0)
                        return r;
        }
        for (;;) {
                const uint8_t *body;

                if (c->close_after_send)
                        return -EPROTO;
                r = conn_next_frame(wk->server, c, &drained, &body);
                if (r <= 0)
                        return r;
                r = conn_process(wk, c, body);
                conn_consume(wk->server, c);
                (*served)++;
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

/* What the sweeper and admission go by. A trickled frame or answer keeps the time of its start, so its
 * bound holds however slowly the bytes come; HELLO is timed from connect. */
static void conn_stamp(struct conn *c, int r, unsigned served) {
        unsigned old = __atomic_load_n(&c->phase, __ATOMIC_RELAXED), phase;

        if (r > 0)
                phase = PHASE_SENDING;
        else if (c->session.state != RPC_STATE_READY)
                phase = PHASE_NEW;
        else if (c->rlen > 0)
                phase = PHASE_PARTIAL;
        else
                phase = PHASE_IDLE;
        if (phase != PHASE_NEW && (phase != old || phase == PHASE_IDLE || served > 0))
                __atomic_store_n(&c->since_ms, coarse_msec(), __ATOMIC_RELAXED);
        __atomic_store_n(&c->phase, phase, __ATOMIC_RELAXED);
}

static void conn_event(struct worker *wk, struct conn *c) {
        struct etok_server *s = wk->server;
        struct epoll_event ev = { .events = EPOLLRDHUP | EPOLLONESHOT, .data.ptr = c };
        unsigned served = 0;
        int r, fd = c->fd;

        do
                r = conn_serve(wk, c, &served);
        while (r == 0 && conn_poll(wk, c));
        if (r < 0) {
                conn_close(s, c, r);
                return;
        }
        conn_stamp(c, r, served);
        /* Re-arming reports at once whatever is already readable. From here on c belongs to
         * whichever worker gets its next event: not one more access unless re-arming failed. */
        ev.events |= r > 0 ? EPOLLOUT : EPOLLIN;
        source_release(&c->src);
        if (epoll_ctl(wk->epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
                conn_close(s, c, log_error_errno(negative_errno(), "Failed to re-arm a connection: %m"));
}

/* ---- timeouts ---- */

static uint64_t phase_timeout_ms(const struct etok_server *s, const struct conn *c, unsigned phase) {
        switch (phase) {
        case PHASE_NEW: return s->limits.hello_timeout_sec * 1000ull;
        case PHASE_PARTIAL:
        case PHASE_SENDING: return s->limits.frame_timeout_sec * 1000ull;
        default:
                /* The agent keeps its control connection between syncs: only data connections idle out. */
                return is_control(c) ? 0 : s->limits.idle_timeout_sec * 1000ull;
        }
}

void etok_server_sweep(struct etok_server *s) {
        struct conn_stats st;
        uint64_t now = coarse_msec();

        (void) pthread_mutex_lock(&s->conns_lock);
        for (struct conn *c = s->conns; c; c = c->next) {
                unsigned phase = __atomic_load_n(&c->phase, __ATOMIC_RELAXED);
                uint64_t since = __atomic_load_n(&c->since_ms, __ATOMIC_RELAXED);
                uint64_t limit = phase_timeout_ms(s, c, phase);

                if (c->doomed || limit == 0 || since + limit > now)
                        continue;
                conn_doom_locked(s, c);
                s->stats.timed_out[phase]++;
        }
        st = s->stats;
        s->stats = (struct conn_stats){};
        (void) pthread_mutex_unlock(&s->conns_lock);

        if (st.refused + st.evicted + st.timed_out[PHASE_NEW] + st.timed_out[PHASE_IDLE] +
                    st.timed_out[PHASE_PARTIAL] + st.timed_out[PHASE_SENDING] ==
            0)
                return;
        log_notice("Connection limits: %u refused, %u closed to make room; timed out: %u before HELLO, "
                   "%u in a frame, %u not reading, %u idle",
                   st.refused, st.evicted, st.timed_out[PHASE_NEW], st.timed_out[PHASE_PARTIAL],
                   st.timed_out[PHASE_SENDING], st.timed_out[PHASE_IDLE]);
}

/* ---- listeners and workers ---- */

int etok_server_vsock_limit(int fd, enum rpc_channel ch) {
        return transport_vsock_set_buffer(fd, ch == RPC_CHANNEL_DATA ? ETOK_VSOCK_BUFFER_DATA
                                                                     : ETOK_VSOCK_BUFFER_CONTROL);
}

/* The peer the limits count by: the uid on a unix socket, the CID on vsock (always the parent's, from
 * inside an enclave). */
static int peer_id(const struct listener *l, int fd, const struct sockaddr_vm *vm, uint32_t *ret) {
        struct ucred cred;
        socklen_t len = sizeof(cred);

        if (l->addr.family == TRANSPORT_VSOCK) {
                *ret = vm->svm_cid;
                return 0;
        }
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
                return negative_errno();
        *ret = (uint32_t) cred.uid;
        return 0;
}

static void listener_event(struct etok_server *s, struct listener *l) {
        struct epoll_event ev = { .events = EPOLLIN | EPOLLONESHOT, .data.ptr = l };

        for (;;) {
                struct sockaddr_vm vm = {};
                socklen_t len = sizeof(vm);
                int fd = accept4(l->fd, (struct sockaddr *) &vm, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
                uint32_t peer;

                if (fd >= 0) {
                        int r = peer_id(l, fd, &vm, &peer);

                        if (r < 0) {
                                log_warning_errno(r, "Failed to identify a %s client, closing: %m",
                                                  rpc_channel_to_string(l->channel));
                                safe_close(fd);
                                continue;
                        }
                        /* Inherited from the listener already; set again so that a kernel which
                         * does not copy them still caps the connection. */
                        if (l->addr.family == TRANSPORT_VSOCK) {
                                r = etok_server_vsock_limit(fd, l->channel);
                                if (r < 0) {
                                        log_warning_errno(
                                                r,
                                                "Failed to cap a %s connection's vsock buffer, closing: %m",
                                                rpc_channel_to_string(l->channel));
                                        safe_close(fd);
                                        continue;
                                }
                        }
                        conn_add(s, l->channel, fd,
                                 l->addr.family == TRANSPORT_VSOCK ? ETOK_PEER_CID : ETOK_PEER_UID, peer);
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
        if (epoll_ctl(channel_epfd(s, l->channel), EPOLL_CTL_MOD, l->fd, &ev) < 0)
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

                n = epoll_wait(wk->epfd, &ev, 1, -1);
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
        /* The mode is set before listen(): nobody can ever connect to a socket with a wider one. */
        if (ch == RPC_CHANNEL_CONTROL)
                fd = transport_listen(a, ETOK_CONTROL_SOCKET_MODE, (gid_t) -1, LISTEN_BACKLOG);
        else
                fd = transport_listen(a, cfg->data_socket_mode, cfg->data_socket_gid, LISTEN_BACKLOG);
        if (fd < 0)
                return log_error_errno(fd, "Failed to listen on %s address '%s': %m",
                                       rpc_channel_to_string(ch), text);
        l->fd = fd;
        l->addr = *a;
        if (a->family == TRANSPORT_VSOCK) {
                int r = etok_server_vsock_limit(fd, ch);

                if (r < 0)
                        return log_error_errno(r, "Failed to cap the vsock buffer of %s listener '%s': %m",
                                               rpc_channel_to_string(ch), text);
        }
        if (epoll_ctl(channel_epfd(s, ch), EPOLL_CTL_ADD, fd, &ev) < 0)
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

        if (cfg->workers == 0 || cfg->limits.max_conns == 0 || cfg->limits.max_conns_per_peer == 0 ||
            cfg->limits.max_conns_per_peer > cfg->limits.max_conns || cfg->limits.max_control_conns == 0)
                return -EINVAL;
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->dispatch = d;
        s->epfd = s->ctl_epfd = s->stop_fd = -1;
        for (size_t i = 0; i < ELEMENTSOF(s->listeners); i++)
                s->listeners[i] = (struct listener){ .src.type = SOURCE_LISTENER, .fd = -1, .channel = i };
        s->stop_src.type = SOURCE_STOP;
        r = pthread_mutex_init(&s->conns_lock, NULL);
        if (r != 0)
                return -r;
        s->workers = calloc(cfg->workers + ETOK_CONTROL_WORKERS, sizeof(*s->workers));
        if (!s->workers)
                return -ENOMEM;
        s->n_workers = cfg->workers;
        s->busy_poll_usec = cfg->busy_poll_usec;
        s->limits = cfg->limits;

        s->epfd = epoll_create1(EPOLL_CLOEXEC);
        s->ctl_epfd = epoll_create1(EPOLL_CLOEXEC);
        if (s->epfd < 0 || s->ctl_epfd < 0)
                return log_error_errno(negative_errno(), "Failed to create the epoll sets: %m");
        s->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (s->stop_fd < 0)
                return log_error_errno(negative_errno(), "Failed to create the stop eventfd: %m");
        ev.data.ptr = &s->stop_src; /* level-triggered: wakes every worker */
        if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->stop_fd, &ev) < 0 ||
            epoll_ctl(s->ctl_epfd, EPOLL_CTL_ADD, s->stop_fd, &ev) < 0)
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
        for (unsigned i = 0; i < s->n_workers + ETOK_CONTROL_WORKERS; i++) {
                struct worker *wk = &s->workers[i];
                int r;

                wk->server = s;
                wk->epfd = i < s->n_workers ? s->epfd : s->ctl_epfd;
                wk->out = pages_alloc(OUT_SIZE);
                if (!wk->out)
                        return log_error_errno(errno > 0 ? -errno : -ENOMEM,
                                               "Failed to allocate a worker buffer: %m");
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
        for (unsigned i = 0; i < s->n_workers + ETOK_CONTROL_WORKERS; i++)
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
                conn_free(s, c);
        }
        while (s->peers) {
                struct peer *p = s->peers;

                s->peers = p->next;
                free(p);
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
        safe_close(s->ctl_epfd);
        safe_close(s->stop_fd);
        for (unsigned i = 0; s->workers && i < s->n_workers + ETOK_CONTROL_WORKERS; i++)
                pages_free(s->workers[i].out, OUT_SIZE, OUT_SIZE);
        free(s->workers);
        (void) pthread_mutex_destroy(&s->conns_lock);
        free(s);
        return NULL;
}
