/* A small pool of data-channel connections to enclave-token, shared by the host's threads. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/time-util.h"
#include "p11module/conn.h"
#include "p11module/debug.h"

#define CLIENT_NAME "enclave-acm-pkcs11 " ENCLAVE_ACM_VERSION

struct p11_conn {
        struct rpc_client *rpc;
        unsigned long epoch;
        unsigned long addr_gen; /* pool.addr_gen when it was opened */
        size_t slot;            /* index in pool.all */
};

/* A thread waiting for a connection, in the pool's FIFO queue (on its stack). A released connection is
 * handed to the first waiter directly, and a thread that finds others waiting queues behind them even
 * if something is free: without that, the releasing thread (or any newcomer) takes the connection
 * back before the waiter it woke runs, and a waiter can lose it over and over. */
struct pool_waiter {
        pthread_cond_t cond;
        struct p11_conn *conn; /* handed over by p11_conn_release() */
        bool queued;
        struct pool_waiter *next;
};

static struct {
        pthread_mutex_t lock;
        struct pool_waiter *wait_head, *wait_tail;
        unsigned long acquisitions; /* connections handed out so far: see p11_pool_last_wait() */
        const struct p11_config *cfg;
        unsigned long epoch; /* bumped by p11_pool_done(): older connections are freed on release */
        struct p11_conn *all[P11_POOL_MAX]; /* open connections, busy or idle */
        struct p11_conn *idle[P11_POOL_MAX];
        size_t n_idle;
        size_t max; /* connections at most: 0 is P11_POOL_MAX (p11_pool_set_max()) */
        /* enclave-token looks frozen: a call or a connect timed out, and no call succeeded since */
        bool frozen;
        bool probing;             /* a thread is opening a connection to see whether it answers again */
        uint64_t timed_out_at_ms; /* the last of those timeouts */
        /* Where connections go (see addr_check_locked()): the address the last connection was opened
         * to, bumped addr_gen when it changed, and when the address file was last looked at. */
        struct transport_addr addr;
        bool have_addr;
        unsigned long addr_gen;
        uint64_t addr_checked_ms;
} pool = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* Marks an all[] entry whose connection is being opened. */
static struct p11_conn reserved_marker;

static void cond_init_monotonic(pthread_cond_t *c) {
        pthread_condattr_t a;

        (void) pthread_condattr_init(&a);
        (void) pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
        (void) pthread_cond_init(c, &a);
        (void) pthread_condattr_destroy(&a);
}

static void waiter_dequeue_locked(struct pool_waiter *w) {
        struct pool_waiter **pp, *prev = NULL;

        for (pp = &pool.wait_head; *pp; prev = *pp, pp = &(*pp)->next)
                if (*pp == w) {
                        *pp = w->next;
                        if (pool.wait_tail == w)
                                pool.wait_tail = prev;
                        break;
                }
        w->next = NULL;
        w->queued = false;
}

/* The first waiter re-checks the pool: a slot came free, or the one before it left the queue. */
static void wake_first_locked(void) {
        if (pool.wait_head)
                pthread_cond_signal(&pool.wait_head->cond);
}

/* Every waiter re-checks: finalised, or enclave-token looks frozen. */
static void wake_all_locked(void) {
        for (struct pool_waiter *w = pool.wait_head; w; w = w->next)
                pthread_cond_signal(&w->cond);
}

void p11_pool_init(const struct p11_config *cfg) {
        pthread_mutex_lock(&pool.lock);
        pool.cfg = cfg;
        pthread_mutex_unlock(&pool.lock);
}

static void conn_free(struct p11_conn *c) {
        if (!c)
                return;
        rpc_client_free(c->rpc); /* close() only: nothing is sent */
        free(c);
}

static void drop_idle_locked(void) {
        for (size_t i = 0; i < pool.n_idle; i++) {
                struct p11_conn *c = pool.idle[i];

                pool.all[c->slot] = NULL;
                conn_free(c);
        }
        pool.n_idle = 0;
}

void p11_pool_done(void) {
        pthread_mutex_lock(&pool.lock);
        drop_idle_locked();
        /* Busy connections stay counted until released; a new epoch makes release free them. */
        for (size_t i = 0; i < P11_POOL_MAX; i++)
                pool.all[i] = NULL;
        pool.frozen = pool.probing = false;
        pool.epoch++;
        pool.cfg = NULL;
        wake_all_locked();
        pthread_mutex_unlock(&pool.lock);
}

void p11_pool_forked(void) {
        /* Another thread of the parent may have held the lock at fork(): never take it here. */
        for (size_t i = 0; i < P11_POOL_MAX; i++)
                if (pool.all[i] != &reserved_marker)
                        conn_free(pool.all[i]);
        memset(pool.all, 0, sizeof(pool.all));
        pool.n_idle = 0;
        pool.frozen = pool.probing = false;
        pool.epoch++;
        pool.cfg = NULL;
        pool.wait_head = pool.wait_tail = NULL; /* their threads are not in the child */
        (void) pthread_mutex_init(&pool.lock, NULL);
}

/* A frozen enclave-token (SIGSTOPped, a stalled enclave) still completes connects, through its listen
 * backlog, and then never answers; a dead vsock CID does not complete them. Either way each call would
 * wait its whole timeout, the threads of a process one after another. So once a call or a connect timed
 * out, calls that need a new connection fail at once, except that one thread at a time, at most once per
 * FROZEN_RETRY_MS, tries one within its call's budget: the call that finds enclave-token answering
 * again carries on, and with it every later one. Refused connects are instant and always retried. */
#define FROZEN_RETRY_MS 1000

static void frozen_set_locked(void) {
        pool.frozen = true;
        pool.timed_out_at_ms = mono_msec();
        wake_all_locked(); /* the threads waiting for a slot stop waiting */
}

static bool frozen_may_connect_locked(void) {
        return !pool.probing && mono_msec() - pool.timed_out_at_ms >= FROZEN_RETRY_MS;
}

void p11_pool_set_max(size_t n) {
        pthread_mutex_lock(&pool.lock);
        pool.max = n > P11_POOL_MAX ? P11_POOL_MAX : n;
        pthread_mutex_unlock(&pool.lock);
}

static size_t free_slot_locked(void) {
        for (size_t i = 0; i < (pool.max ? pool.max : P11_POOL_MAX); i++)
                if (!pool.all[i])
                        return i;
        return P11_POOL_MAX;
}

/* Normalise what connect/HELLO can fail with to the few errors p11-errmap knows. */
static int connect_error(int r) {
        switch (r) {
        case -ETIMEDOUT:
        case -ENOMEM: return r;
        case -EPROTO:
        case -EBADMSG:
        case -EPROTONOSUPPORT:
        case -EMSGSIZE: return -EPROTO;
        default: return -ECONNREFUSED;
        }
}

static int conn_open(const struct p11_config *cfg, uint64_t deadline_ms, struct transport_addr *ret_addr,
                     struct p11_conn **ret) {
        struct transport_addr addr;
        struct p11_conn *c;
        int r;

        r = p11_config_address(cfg, &addr);
        if (r < 0)
                return -ECONNREFUSED;
        *ret_addr = addr;
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        r = rpc_client_open_until(&addr, RPC_CHANNEL_DATA, cfg->timeout_ms, deadline_ms, CLIENT_NAME,
                                  &c->rpc);
        if (r < 0) {
                p11_debug(P11_DEBUG_RPC, "connect failed: %s", strerror(-r));
                free(c);
                return connect_error(r);
        }
        rpc_client_set_busy_poll(c->rpc, cfg->busy_poll_usec);
        p11_debug(P11_DEBUG_RPC, "connected");
        *ret = c;
        return 0;
}

/* Connections go where the address was when they were opened: the idle ones to an old address are
 * closed now, the busy ones when released. */
static void addr_moved_locked(const struct transport_addr *a) {
        bool had = pool.have_addr;

        pool.addr = *a;
        pool.have_addr = true;
        pool.addr_gen++;
        if (had && pool.n_idle > 0) {
                p11_debug(P11_DEBUG_RPC, "the address changed: closing %zu idle connection%s to the old one",
                          pool.n_idle, pool.n_idle == 1 ? "" : "s");
                drop_idle_locked();
                wake_first_locked(); /* slots came free */
        }
}

/* An enclave upgrade moves the address file to the new enclave while the old one still serves
 * (agent/service.c): connections kept in the pool would stay with the old one until it is stopped,
 * and the agent would have to stop it under them. So at most once per ADDR_CHECK_MS, on taking a
 * connection, the address is read again (the address file: one small read), and a change moves the
 * pool at once. Not with the address in the environment, which cannot change. */
#define ADDR_CHECK_MS 1000

static void addr_check_locked(void) {
        struct transport_addr a;
        uint64_t now;

        if (!pool.have_addr || pool.cfg->address)
                return;
        now = mono_msec();
        if (now - pool.addr_checked_ms < ADDR_CHECK_MS)
                return;
        pool.addr_checked_ms = now;
        if (p11_config_address(pool.cfg, &a) == 0 && !transport_addr_equal(&a, &pool.addr))
                addr_moved_locked(&a);
}

/* With the lock held and a free slot: opens a connection without the lock, by the call's deadline. */
static int acquire_new_locked(size_t slot, uint64_t deadline_ms, struct p11_conn **ret) {
        const struct p11_config *cfg = pool.cfg;
        unsigned long epoch = pool.epoch;
        bool probe = pool.frozen;
        struct transport_addr addr;
        struct p11_conn *c = NULL;
        int r;

        if (mono_msec() >= deadline_ms)
                return -ETIMEDOUT; /* the call's budget is spent: this says nothing about enclave-token */
        pool.all[slot] = &reserved_marker;
        if (probe)
                pool.probing = true;
        pthread_mutex_unlock(&pool.lock);
        r = conn_open(cfg, deadline_ms, &addr, &c);
        pthread_mutex_lock(&pool.lock);
        if (epoch != pool.epoch) {
                /* Finalised (or forked) meanwhile: the reservation is gone already. */
                conn_free(c);
                return -ECONNREFUSED;
        }
        if (probe)
                pool.probing = false;
        if (r < 0) {
                pool.all[slot] = NULL;
                if (r == -ETIMEDOUT)
                        frozen_set_locked();
                wake_first_locked(); /* the slot is free again */
                return r;
        }
        pool.frozen = false; /* it answered HELLO */
        if (!pool.have_addr || !transport_addr_equal(&addr, &pool.addr))
                addr_moved_locked(&addr);
        c->addr_gen = pool.addr_gen;
        c->epoch = epoch;
        c->slot = slot;
        pool.all[slot] = c;
        *ret = c;
        return 0;
}

/* Other threads' acquisitions while this thread's last p11_conn_acquire() was in progress. */
static __thread unsigned long thread_last_wait;

unsigned long p11_pool_last_wait(void) {
        return thread_last_wait;
}

/* The connection this thread used last. Only compared with the idle ones, never dereferenced: it
 * may have been freed since. */
static __thread const struct p11_conn *thread_conn;

/* A thread gets the connection it used last if that one is idle: its next request then arrives
 * where enclave-token's worker is still polling for it (enclave-token/server.c, conn_poll()), and
 * the connection's reply-time estimate (common/rpc-client.c) follows one thread's calls. */
static struct p11_conn *take_idle_locked(void) {
        size_t i = pool.n_idle - 1;
        struct p11_conn *c;

        for (size_t j = 0; j < pool.n_idle; j++)
                if (pool.idle[j] == thread_conn) {
                        i = j;
                        break;
                }
        c = pool.idle[i];
        pool.idle[i] = pool.idle[--pool.n_idle];
        thread_conn = c;
        return c;
}

int p11_conn_acquire(uint64_t deadline_ms, struct p11_conn **ret) {
        const struct timespec deadline = { .tv_sec = (time_t) (deadline_ms / 1000),
                                           .tv_nsec = (long) (deadline_ms % 1000) * 1000000L };
        struct pool_waiter w = {};
        bool cond_ready = false;
        unsigned long start;
        int r = 0;

        pthread_mutex_lock(&pool.lock);
        start = pool.acquisitions;
        for (;;) {
                size_t slot;
                bool first;

                if (w.conn) { /* handed over by a release: already out of the queue */
                        *ret = w.conn;
                        thread_conn = w.conn;
                        break;
                }
                if (!pool.cfg) {
                        r = -ECONNREFUSED;
                        break;
                }
                addr_check_locked();
                /* Nobody waits, or this thread waits first: it may take what is there. */
                first = !pool.wait_head || pool.wait_head == &w;
                if (first && pool.n_idle > 0) {
                        *ret = take_idle_locked();
                        break;
                }
                slot = free_slot_locked();
                if (pool.frozen && (slot == P11_POOL_MAX || !frozen_may_connect_locked())) {
                        r = -ETIMEDOUT; /* the busy connections are likely stuck as well */
                        break;
                }
                if (first && slot < P11_POOL_MAX) {
                        if (w.queued)
                                waiter_dequeue_locked(&w);
                        wake_first_locked(); /* the next one may find another slot */
                        r = acquire_new_locked(slot, deadline_ms, ret);
                        break;
                }
                if (!w.queued) {
                        if (!cond_ready) {
                                cond_init_monotonic(&w.cond);
                                cond_ready = true;
                        }
                        w.queued = true;
                        if (pool.wait_tail)
                                pool.wait_tail->next = &w;
                        else
                                pool.wait_head = &w;
                        pool.wait_tail = &w;
                }
                if (pthread_cond_timedwait(&w.cond, &pool.lock, &deadline) == ETIMEDOUT && !w.conn) {
                        r = -ETIMEDOUT;
                        break;
                }
        }
        if (r >= 0) {
                /* A hand-over was counted by the releasing thread already. */
                thread_last_wait = pool.acquisitions - start - (w.conn ? 1 : 0);
                if (!w.conn)
                        pool.acquisitions++;
        }
        if (w.queued) {
                bool was_first = pool.wait_head == &w;

                waiter_dequeue_locked(&w);
                if (was_first)
                        wake_first_locked(); /* what this one did not take is the next one's */
        }
        pthread_mutex_unlock(&pool.lock);
        if (cond_ready)
                (void) pthread_cond_destroy(&w.cond);
        return r;
}

void p11_conn_release(struct p11_conn *c, int r) {
        if (!c)
                return;
        pthread_mutex_lock(&pool.lock);
        if (c->epoch != pool.epoch) {
                conn_free(c);
        } else if (c->addr_gen != pool.addr_gen) {
                /* opened to an address the pool has left: not pooled again */
                pool.all[c->slot] = NULL;
                conn_free(c);
                wake_first_locked(); /* a slot came free */
        } else if (rpc_client_is_broken(c->rpc)) {
                pool.all[c->slot] = NULL;
                conn_free(c);
                drop_idle_locked();
                p11_debug(P11_DEBUG_RPC, "dropped a broken connection and the idle ones");
                if (r == -ETIMEDOUT)
                        frozen_set_locked();
                wake_first_locked(); /* a slot came free: the first waiter opens a connection */
        } else {
                if (r >= 0)
                        pool.frozen = false;
                if (pool.wait_head) {
                        /* Straight to the first waiter: nobody can take it in between. */
                        struct pool_waiter *w = pool.wait_head;

                        waiter_dequeue_locked(w);
                        w->conn = c;
                        pool.acquisitions++;
                        pthread_cond_signal(&w->cond);
                } else
                        pool.idle[pool.n_idle++] = c;
        }
        pthread_mutex_unlock(&pool.lock);
}

struct rpc_client *p11_conn_rpc(struct p11_conn *c) {
        return c->rpc;
}
