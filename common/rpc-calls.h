/* The call table: every call's id, name, channels, states and message schemas, shared by the client
 * and the dispatcher. Adding a call is one row in rpc-calls.c (and its messages in rpc-messages.c)
 * plus its handler in enclave-token/dispatch.c: see docs/protocol.md. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/rpc-frame.h"
#include "common/rpc-schema.h"

enum rpc_call {
        RPC_CALL_HELLO,         /* both: version negotiation; must come first */
        RPC_CALL_PING,          /* both: null round trip */
        RPC_CALL_TOKEN_LIST,    /* data: page of token summaries (slot, label, generation) */
        RPC_CALL_TOKEN_OBJECTS, /* data: one token's public objects (SPKI, certificates) */
        RPC_CALL_LOGIN,         /* data: PIN -> login ticket */
        RPC_CALL_SIGN,          /* data */
        RPC_CALL_DECRYPT,       /* data */
        RPC_CALL_TOKEN_ADD,     /* control: provision a token (plaintext keys only with --dev) */
        RPC_CALL_TOKEN_REMOVE,  /* control */
        RPC_CALL_DESCRIBE,      /* control: device info and a page of tokens with key details */
        RPC_CALL_TOKEN_RELEASE, /* control: held retired versions run out the grace period from now */
        RPC_CALL_KMS_BEGIN,     /* control: credentials for this connection's KMS round (version 3) */
        RPC_CALL_KMS_END,       /* control: the round's key and credentials are wiped */
        RPC_CALL_TOKEN_REFRESH, /* control: re-decrypt a token's keys, extend its expiry */
        RPC_CALL_ATTEST,        /* control: a fresh attestation document */
        RPC_CALL_STATS,         /* control: counters per token and key (metrics) */
        _RPC_CALL_MAX,
        _RPC_CALL_INVALID = -EINVAL,
};

/* Connection states the dispatcher checks before a handler runs. */
enum rpc_conn_state {
        RPC_STATE_NEW,   /* only HELLO allowed */
        RPC_STATE_READY, /* after a successful HELLO */
        _RPC_STATE_MAX,
        _RPC_STATE_INVALID = -EINVAL,
};

#define RPC_CHANNEL_BIT(c) (1u << (c))
#define RPC_STATE_BIT(s)   (1u << (s))

struct rpc_call_info {
        enum rpc_call id;
        const char *name;
        unsigned channels; /* RPC_CHANNEL_BIT() mask */
        unsigned states;   /* RPC_STATE_BIT() mask */
        const struct rpc_schema *request;
        const struct rpc_schema *response;
};

/* The body carries a PIN, key, ticket or plaintext (a field marked secret in its schema): both ends
 * keep such frames in wiped memory and wipe them once used. */
static inline bool rpc_call_secret_request(const struct rpc_call_info *c) {
        return c->request->secret;
}
static inline bool rpc_call_secret_response(const struct rpc_call_info *c) {
        return c->response->secret;
}

/* NULL for an unknown id. */
const struct rpc_call_info *rpc_call_lookup(unsigned id);
/* Unknown id, or a call not allowed on that channel / in that state: -EBADR / -EPERM / -EPROTO. */
_must_check_ int rpc_call_check(unsigned id, enum rpc_channel ch, enum rpc_conn_state state,
                                const struct rpc_call_info **ret);
const char *rpc_call_to_string(unsigned id);
