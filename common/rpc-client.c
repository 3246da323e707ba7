/* Blocking request/response client over one connection; no allocation after rpc_client_open(). */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/busy-poll.h"
#include "common/p11-errmap.h"
#include "common/rpc-client.h"
#include "common/secret.h"
#include "common/time-util.h"

struct rpc_client {
        int fd;
        enum rpc_channel channel;
        int timeout_ms;
        uint64_t deadline_ms; /* rpc_client_set_deadline(); 0: none */
        uint32_t next_id;
        uint8_t version; /* negotiated; 0 until HELLO succeeded */
        bool broken;
        size_t max_body;
        /* Both frames are secret_bufs, as any call may carry a secret. A request the call table marks
         * secret is wiped right after sending, a secret response at the start of the next call. */
        struct secret_buf *sbuf;
        struct secret_buf *rbuf;
        size_t rlen;
        bool rsecret;        /* the response in rbuf is secret */
        struct rpc_writer w; /* writes after RPC_HEADER_SIZE bytes of headroom in sbuf */
        struct rpc_hello_resp hello;
        char server[RPC_TEXT_MAX + 1];
        unsigned busy_poll_usec;
        struct busy_poll bp;
        uint32_t expect_usec[_RPC_CALL_MAX]; /* recent round trips per call (EWMA), for reply_wait() */
};

struct rpc_client *rpc_client_free(struct rpc_client *c) {
        if (!c)
                return NULL;
        safe_close(c->fd);
        secret_buf_free(c->sbuf);
        secret_buf_free(c->rbuf);
        free(c);
        return NULL;
}

const struct rpc_hello_resp *rpc_client_hello(const struct rpc_client *c) {
        return c && c->version ? &c->hello : NULL;
}

bool rpc_client_is_broken(const struct rpc_client *c) {
        return !c || c->broken;
}

/* Resets the request writer; wipes what was written unless the call is known to carry no secret. */
static void reset_request(struct rpc_client *c, bool wipe) {
        if (wipe)
                secret_wipe(c->sbuf->data, RPC_HEADER_SIZE + c->w.len);
        rpc_writer_init(&c->w, c->sbuf->data + RPC_HEADER_SIZE, c->max_body);
}

static void wipe_request(struct rpc_client *c) {
        reset_request(c, true);
}

struct rpc_writer *rpc_client_begin(struct rpc_client *c) {
        if (!c)
                return NULL;
        wipe_request(c);
        return &c->w;
}

static int client_fail(struct rpc_client *c, int r) {
        c->broken = true;
        return r;
}

void rpc_client_set_busy_poll(struct rpc_client *c, unsigned usec) {
        if (c)
                c->busy_poll_usec = usec;
}

/* How much earlier than busy_poll_usec before the reply a long call's sleep ends: a thread's default
 * timer slack (50 us: a sleep of t ends up to that much later) plus the wake-up of a halted vCPU
 * (40-100 us on the VMs measured in bench/README.md). */
#define WAKE_LEAD_USEC 150u

/* Threads of this process waiting for a reply now, polling or asleep. A child forked while another
 * thread waited inherits a count that never drops: it then just never polls, as with busy polling off. */
static unsigned waiting;

static bool others_wait(void) {
        return __atomic_load_n(&waiting, __ATOMIC_RELAXED) > 1;
}

static void reply_poll(struct rpc_client *c, uint64_t expect, uint64_t sent) {
        struct pollfd p = { .fd = c->fd, .events = POLLIN };
        uint64_t spin = c->busy_poll_usec, until;

        if (expect > 2 * spin + WAKE_LEAD_USEC) {
                uint64_t wake = sent + expect - spin - WAKE_LEAD_USEC, now = mono_usec();

                if (wake > now) {
                        struct timespec ts = { .tv_sec = (time_t) ((wake - now) / 1000000u),
                                               .tv_nsec = (long) ((wake - now) % 1000000u) * 1000 };
                        if (ppoll(&p, 1, &ts, NULL) != 0)
                                return; /* earlier than expected: neither a hit nor a miss */
                }
                until = sent + expect + spin;
        } else
                until = sent + spin;
        /* sched_yield(): a runnable thread on this CPU goes first; on an idle CPU it returns at once. */
        while (poll(&p, 1, 0) == 0) {
                if (mono_usec() >= until) {
                        busy_poll_end(&c->bp, false);
                        return;
                }
                if (others_wait())
                        return; /* the process has parallel work now: neither a hit nor a miss */
                (void) sched_yield();
        }
        busy_poll_end(&c->bp, true);
}

/* Involuntary context switches of the calling thread at its last reply_wait(). */
static __thread long last_nivcsw;

/* Was this thread preempted (or did its sched_yield() hand the CPU over) since its last call? Then
 * others want its CPU: polling would take from them what it saves in wake-ups. */
static bool cpu_contended(void) {
        struct rusage ru;
        bool contended;

        if (getrusage(RUSAGE_THREAD, &ru) < 0)
                return true;
        contended = ru.ru_nivcsw != last_nivcsw;
        last_nivcsw = ru.ru_nivcsw;
        return contended;
}

/* Before the blocking read of a reply. A thread that sleeps on the socket pays the wake-up of its
 * idle vCPU when the reply comes (tens of microseconds on a VM: more than a whole PING). So a short
 * call polls for up to busy_poll_usec; a long one (an RSA signature) sleeps until shortly before
 * its reply is due, by the recent round trips of the same call, and polls from there. Only where
 * the CPU would otherwise idle: not while another thread of the process waits too (the process has
 * parallel work), not after the thread was preempted, and misses back off (common/busy-poll.h). */
static void reply_wait(struct rpc_client *c, enum rpc_call call, uint64_t sent) {
        if (c->busy_poll_usec == 0 || !busy_poll_begin(&c->bp))
                return;
        if (cpu_contended()) {
                busy_poll_end(&c->bp, false);
                return;
        }
        if (!others_wait())
                reply_poll(c, c->expect_usec[call], sent);
}

static void expect_update(struct rpc_client *c, enum rpc_call call, uint64_t sent) {
        uint64_t rtt = MIN(mono_usec() - sent, (uint64_t) UINT32_MAX), e = c->expect_usec[call];

        c->expect_usec[call] = (uint32_t) (e ? (3 * e + rtt) / 4 : rtt);
}

void rpc_client_set_deadline(struct rpc_client *c, uint64_t deadline_ms) {
        if (c)
                c->deadline_ms = deadline_ms;
}

/* When a call started at now must be over (mono_msec()): its timeout or the deadline, whichever comes
 * first. UINT64_MAX: never (a negative timeout and no deadline). */
static uint64_t call_end(const struct rpc_client *c, uint64_t now) {
        uint64_t end = c->timeout_ms < 0 ? UINT64_MAX : now + (uint64_t) c->timeout_ms;

        return c->deadline_ms != 0 && c->deadline_ms < end ? c->deadline_ms : end;
}

/* Milliseconds from now to end, as the transport counts them: -1 for never, 0 once it has passed. */
static int ms_until(uint64_t end, uint64_t now) {
        if (end == UINT64_MAX)
                return -1;
        if (end <= now)
                return 0;
        return end - now > INT_MAX ? INT_MAX : (int) (end - now);
}

static int time_left(uint64_t end) {
        return ms_until(end, end == UINT64_MAX ? 0 : mono_msec());
}

int rpc_client_call(struct rpc_client *c, enum rpc_call call, const uint8_t **ret_body, size_t *ret_len) {
        const struct rpc_call_info *info;
        struct rpc_header h;
        uint8_t *rb;
        uint32_t id;
        uint64_t now, end, sent;
        int r;

        if (!c)
                return -EINVAL;
        if (c->broken) {
                wipe_request(c);
                return -ECONNRESET;
        }
        r = rpc_call_check((unsigned) call, c->channel, c->version ? RPC_STATE_READY : RPC_STATE_NEW, &info);
        if (r < 0) {
                wipe_request(c);
                return -EINVAL;
        }
        r = rpc_writer_finish(&c->w);
        if (r < 0) {
                wipe_request(c);
                return r;
        }
        now = mono_msec();
        end = call_end(c, now);
        if (end <= now) {
                /* The caller's budget is spent: nothing is sent, and the connection stays usable. */
                wipe_request(c);
                return -ETIMEDOUT;
        }

        if (c->rsecret)
                secret_wipe(c->rbuf->data, c->rlen);
        c->rlen = 0;
        c->rsecret = rpc_call_secret_response(info);

        id = c->next_id++;
        h = (struct rpc_header){
                .magic = RPC_MAGIC,
                /* HELLO goes out with the oldest version so any server can read it. */
                .version = c->version ? c->version : RPC_VERSION_MIN,
                .kind = RPC_KIND_REQUEST,
                .call = (uint8_t) call,
                .request_id = id,
                .body_len = (uint32_t) c->w.len,
        };
        rpc_header_encode(&h, c->sbuf->data);
        r = transport_send_all(c->fd, c->sbuf->data, RPC_HEADER_SIZE + c->w.len, ms_until(end, now));
        reset_request(c, rpc_call_secret_request(info));
        if (r < 0)
                return client_fail(c, r);

        sent = mono_usec();
        (void) __atomic_add_fetch(&waiting, 1, __ATOMIC_RELAXED);
        reply_wait(c, call, sent);
        rb = c->rbuf->data;
        r = transport_recv_all(c->fd, rb, RPC_HEADER_SIZE, time_left(end));
        (void) __atomic_sub_fetch(&waiting, 1, __ATOMIC_RELAXED);
        if (r < 0)
                return client_fail(c, r);
        r = rpc_header_decode(rb, c->channel, &h);
        if (r < 0)
                return client_fail(c, -EPROTO);
        if (h.kind != RPC_KIND_RESPONSE || h.call != (uint8_t) call || h.request_id != id ||
            (c->version && h.version != c->version))
                return client_fail(c, -EPROTO);
        c->rlen = RPC_HEADER_SIZE + h.body_len;
        r = transport_recv_all(c->fd, rb + RPC_HEADER_SIZE, h.body_len, time_left(end));
        if (r < 0)
                return client_fail(c, r);
        expect_update(c, call, sent);

        if (h.status != RPC_STATUS_OK)
                return errmap_errno_from_status(h.status);
        if (ret_body)
                *ret_body = rb + RPC_HEADER_SIZE;
        if (ret_len)
                *ret_len = h.body_len;
        return 0;
}

int rpc_client_call_msg(struct rpc_client *c, enum rpc_call call, const void *req, void *ret_resp) {
        const struct rpc_call_info *info = rpc_call_lookup((unsigned) call);
        const uint8_t *body;
        size_t len;
        int r;

        if (!c || !info || (!req && info->request->size > 0) || (!ret_resp && info->response->size > 0))
                return -EINVAL;
        rpc_msg_write(info->request, rpc_client_begin(c), req);
        r = rpc_client_call(c, call, &body, &len);
        if (r < 0)
                return r;
        r = rpc_msg_decode(info->response, body, len, ret_resp);
        return r == -EBADMSG ? -EPROTO : r;
}

static int client_hello(struct rpc_client *c, const char *client_name) {
        struct rpc_hello_req req = {
                .min_version = RPC_VERSION_MIN,
                .max_version = RPC_VERSION_MAX,
        };
        struct rpc_hello_resp resp;
        int r;

        if (client_name)
                req.client = (struct rpc_slice){ (const uint8_t *) client_name, strlen(client_name) };
        r = rpc_client_call_msg(c, RPC_CALL_HELLO, &req, &resp);
        if (r < 0)
                return r;
        if (resp.version < RPC_VERSION_MIN || resp.version > RPC_VERSION_MAX)
                return -EPROTONOSUPPORT;

        memcpy(c->server, resp.server.ptr ? (const char *) resp.server.ptr : "", resp.server.len);
        c->server[resp.server.len] = '\0';
        resp.server.ptr = (const uint8_t *) c->server;
        c->hello = resp;
        c->version = (uint8_t) resp.version;
        return 0;
}

int rpc_client_open_until(const struct transport_addr *a, enum rpc_channel ch, int timeout_ms,
                          uint64_t deadline_ms, const char *client_name, struct rpc_client **ret) {
        _cleanup_(rpc_client_freep) struct rpc_client *c = NULL;
        uint64_t now;
        int r;

        if (!a || !ret || ch < 0 || ch >= _RPC_CHANNEL_MAX)
                return -EINVAL;
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->fd = -1;
        c->channel = ch;
        c->timeout_ms = timeout_ms;
        c->next_id = 1;
        c->max_body = rpc_channel_max_body(ch);
        r = secret_buf_new(RPC_HEADER_SIZE + c->max_body, &c->sbuf);
        if (r < 0)
                return r;
        r = secret_buf_new(RPC_HEADER_SIZE + c->max_body, &c->rbuf);
        if (r < 0)
                return r;
        rpc_writer_init(&c->w, c->sbuf->data + RPC_HEADER_SIZE, c->max_body);

        /* Connect and HELLO share one budget: HELLO gets what the connect left. */
        now = mono_msec();
        c->deadline_ms = call_end(c, now);
        if (deadline_ms != 0 && deadline_ms < c->deadline_ms)
                c->deadline_ms = deadline_ms;
        if (c->deadline_ms <= now)
                return -ETIMEDOUT;
        c->fd = transport_connect(a, ms_until(c->deadline_ms, now));
        if (c->fd < 0)
                return c->fd;
        r = client_hello(c, client_name);
        if (r < 0)
                return r;
        c->deadline_ms = deadline_ms;
        *ret = TAKE_PTR(c);
        return 0;
}

int rpc_client_open(const struct transport_addr *a, enum rpc_channel ch, int timeout_ms,
                    const char *client_name, struct rpc_client **ret) {
        return rpc_client_open_until(a, ch, timeout_ms, 0, client_name, ret);
}
