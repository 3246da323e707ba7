/* Blocking request/response client over one connection: used by the module, the CLI and the agent. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "common/rpc-calls.h"
#include "common/rpc-codec.h"
#include "common/transport.h"

struct rpc_client;

/* Connects, sends HELLO, checks the version, all within timeout_ms (a negative one: no bound).
 * timeout_ms bounds every later call too. */
_must_check_ int rpc_client_open(const struct transport_addr *a, enum rpc_channel ch, int timeout_ms,
                                 const char *client_name, struct rpc_client **ret);
/* The same, over by deadline_ms too (mono_msec(); 0: none), which then bounds every later call as
 * rpc_client_set_deadline() does. -ETIMEDOUT without connecting when it has passed. */
_must_check_ int rpc_client_open_until(const struct transport_addr *a, enum rpc_channel ch, int timeout_ms,
                                       uint64_t deadline_ms, const char *client_name,
                                       struct rpc_client **ret);
struct rpc_client *rpc_client_free(struct rpc_client *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct rpc_client *, rpc_client_free);

const struct rpc_hello_resp *rpc_client_hello(const struct rpc_client *c);

/* The low-level path (tests, the junk client): the writer for the next request body, reset on each
 * call. The buffer is a secret_buf; a request the call table marks secret is wiped after sending. */
struct rpc_writer *rpc_client_begin(struct rpc_client *c);

/* Frames the body written since rpc_client_begin(), sends it, reads the response.
 * Returns 0 with *ret_body and *ret_len pointing into the client's buffer (valid until the next
 * call), the negative errno of a non-OK status (see p11-errmap), or a transport error
 * (-ECONNRESET, -ETIMEDOUT, -EPROTO for a broken/mismatched frame). After a transport or
 * framing error the client is dead: free it and open a new one. */
_must_check_ int rpc_client_call(struct rpc_client *c, enum rpc_call call, const uint8_t **ret_body,
                                 size_t *ret_len);

/* One whole call through the call table: encodes *req with the call's request schema, sends it,
 * and decodes the answer into *ret_resp with its response schema (either may be NULL for an empty
 * message). Returns 0; -EINVAL or -EMSGSIZE for a request outside its schema or too large for a
 * frame (nothing was sent; no wire status maps to these); -EPROTO with the client not broken for
 * an answer that does not decode; else what rpc_client_call() returns.
 *
 * Lifetime: slices in *ret_resp point into the client's reply buffer and stay valid until the next
 * call on this client or rpc_client_free(); copy what must live longer. Responses that allocate
 * (the TOKEN_LIST / DESCRIBE page) are freed with rpc_msg_done() (rpc_page_resp_done()), also
 * after a failure, which leaves *ret_resp zeroed. A secret response is wiped at the next call. */
_must_check_ int rpc_client_call_msg(struct rpc_client *c, enum rpc_call call, const void *req,
                                     void *ret_resp);

/* A caller whose one operation spans several calls (and connections) gives them one budget: each
 * call from now on is over at deadline_ms (mono_msec()) or after its timeout, whichever comes first.
 * A call started after the deadline returns -ETIMEDOUT without sending, and the client stays usable.
 * 0 removes the deadline. */
void rpc_client_set_deadline(struct rpc_client *c, uint64_t deadline_ms);

/* Poll for a reply up to usec before sleeping on it (0, the default: never). A sleeping vCPU takes
 * tens of microseconds to wake on a VM; see rpc-client.c. For the module's latency-bound calls. */
void rpc_client_set_busy_poll(struct rpc_client *c, unsigned usec);

/* true once a transport/framing error happened. */
bool rpc_client_is_broken(const struct rpc_client *c);
