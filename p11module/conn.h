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

/* A free connection, a new one (up to P11_POOL_MAX), or waits for one up to the call timeout.
 * Connection errors: -ECONNREFUSED (nothing listening), -ETIMEDOUT, -EPROTO, -ENOMEM. */
_must_check_ int p11_conn_acquire(struct p11_conn **ret);
/* Back to the pool; a broken one is closed, and then the idle ones too (they are likely stale). */
void p11_conn_release(struct p11_conn *c);
struct rpc_client *p11_conn_rpc(struct p11_conn *c);
