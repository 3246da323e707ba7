/* A small pool of data-channel connections to enclave-token, shared by the host's threads. */
#pragma once

#include "common/rpc-client.h"
#include "p11module/config.h"

#define P11_POOL_MAX 8

struct p11_conn;

/* Called with the module initialised; the config must outlive the pool. */
void p11_pool_init(const struct p11_config *cfg);
/* C_Finalize: closes idle connections; busy ones are freed when their thread returns them. */
void p11_pool_done(void);
/* In a forked child: closes every inherited connection without writing to it and resets the locks. */
void p11_pool_forked(void);

/* A free connection, a new one (up to P11_POOL_MAX), or waits for one, all by deadline_ms (mono_msec():
 * the PKCS#11 call's budget). While enclave-token looks frozen (a call or a connect timed out and no call
 * succeeded since) a call that needs a new connection fails at once with -ETIMEDOUT, except one thread
 * at a time, once a second, that tries. Connection errors: -ECONNREFUSED (nothing listening),
 * -ETIMEDOUT, -EPROTO, -ENOMEM. */
_must_check_ int p11_conn_acquire(uint64_t deadline_ms, struct p11_conn **ret);
/* Back to the pool with what the call on it returned. A broken one is closed, and then the idle ones too
 * (they are likely stale); a timeout marks enclave-token frozen, a success not any more. */
void p11_conn_release(struct p11_conn *c, int r);
struct rpc_client *p11_conn_rpc(struct p11_conn *c);

/* Tests: how many connections other threads acquired while this thread's last p11_conn_acquire() ran
 * (from when it first held the pool's lock). With the FIFO hand-off at most the number of threads that
 * were waiting before it. */
unsigned long p11_pool_last_wait(void);
/* Tests: at most n connections (1 .. P11_POOL_MAX; 0: P11_POOL_MAX again). */
void p11_pool_set_max(size_t n);
