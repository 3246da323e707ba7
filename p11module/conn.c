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
        size_t slot; /* index in pool.all */
};

static struct {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        bool cond_ready;
        const struct p11_config *cfg;
        unsigned long epoch; /* bumped by p11_pool_done(): older connections are freed on release */
        struct p11_conn *all[P11_POOL_MAX]; /* open connections, busy or idle */
        struct p11_conn *idle[P11_POOL_MAX];
        size_t n_idle;
        /* enclave-token looks frozen: a call or a connect timed out, and no call succeeded since */
        bool frozen;
        bool probing;             /* a thread is opening a connection to see whether it answers again */
        uint64_t timed_out_at_ms; /* the last of those timeouts */
} pool = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* Marks an all[] entry whose connection is being opened. */
static struct p11_conn reserved_marker;

static void pool_cond_init(void) {
        pthread_condattr_t a;

        (void) pthread_condattr_init(&a);
        (void) pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
        (void) pthread_cond_init(&pool.cond, &a);
        (void) pthread_condattr_destroy(&a);
        pool.cond_ready = true;
}

void p11_pool_init(const struct p11_config *cfg) {
        pthread_mutex_lock(&pool.lock);
        if (!pool.cond_ready)
                pool_cond_init();
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
        pthread_cond_broadcast(&pool.cond);
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
        (void) pthread_mutex_init(&pool.lock, NULL);
        pool_cond_init();
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
        pthread_cond_broadcast(&pool.cond); /* the threads waiting for a slot stop waiting */
}

static bool frozen_may_connect_locked(void) {
        return !pool.probing && mono_msec() - pool.timed_out_at_ms >= FROZEN_RETRY_MS;
}

static size_t free_slot_locked(void) {
        for (size_t i = 0; i < P11_POOL_MAX; i++)
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

static int conn_open(const struct p11_config *cfg, uint64_t deadline_ms, struct p11_conn **ret) {
        struct transport_addr addr;
        struct p11_conn *c;
        int r;

        r = p11_config_address(cfg, &addr);
        if (r < 0)
                return -ECONNREFUSED;
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

/* With the lock held and a free slot: opens a connection without the lock, by the call's deadline. */
static int acquire_new_locked(size_t slot, uint64_t deadline_ms, struct p11_conn **ret) {
        const struct p11_config *cfg = pool.cfg;
        unsigned long epoch = pool.epoch;
        bool probe = pool.frozen;
        struct p11_conn *c = NULL;
        int r;

        if (mono_msec() >= deadline_ms)
                return -ETIMEDOUT; /* the call's budget is spent: this says nothing about enclave-token */
        pool.all[slot] = &reserved_marker;
        if (probe)
                pool.probing = true;
        pthread_mutex_unlock(&pool.lock);
        r = conn_open(cfg, deadline_ms, &c);
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
                pthread_cond_signal(&pool.cond);
                return r;
        }
        pool.frozen = false; /* it answered HELLO */
        c->epoch = epoch;
        c->slot = slot;
        pool.all[slot] = c;
        *ret = c;
        return 0;
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
        int r = 0;

        pthread_mutex_lock(&pool.lock);
        for (;;) {
                size_t slot;

                if (!pool.cfg) {
                        r = -ECONNREFUSED;
                        break;
                }
                if (pool.n_idle > 0) {
                        *ret = take_idle_locked();
                        break;
                }
                slot = free_slot_locked();
                if (pool.frozen && (slot == P11_POOL_MAX || !frozen_may_connect_locked())) {
                        r = -ETIMEDOUT; /* the busy connections are likely stuck as well */
                        break;
                }
                if (slot < P11_POOL_MAX) {
                        r = acquire_new_locked(slot, deadline_ms, ret);
                        break;
                }
                if (pthread_cond_timedwait(&pool.cond, &pool.lock, &deadline) == ETIMEDOUT) {
                        r = -ETIMEDOUT;
                        break;
                }
        }
        pthread_mutex_unlock(&pool.lock);
        return r;
}

void p11_conn_release(struct p11_conn *c, int r) {
        if (!c)
                return;
        pthread_mutex_lock(&pool.lock);
        if (c->epoch != pool.epoch) {
                conn_free(c);
        } else if (rpc_client_is_broken(c->rpc)) {
                pool.all[c->slot] = NULL;
                conn_free(c);
                drop_idle_locked();
                p11_debug(P11_DEBUG_RPC, "dropped a broken connection and the idle ones");
                if (r == -ETIMEDOUT)
                        frozen_set_locked();
                pthread_cond_broadcast(&pool.cond); /* several slots came free */
        } else {
                if (r >= 0)
                        pool.frozen = false;
                pool.idle[pool.n_idle++] = c;
                pthread_cond_signal(&pool.cond);
        }
        pthread_mutex_unlock(&pool.lock);
}

struct rpc_client *p11_conn_rpc(struct p11_conn *c) {
        return c->rpc;
}
