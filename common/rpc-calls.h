/* The call table: every call's id, name, channel, states and codec, shared by client and dispatcher. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/rpc-frame.h"

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
        unsigned channels;   /* RPC_CHANNEL_BIT() mask */
        unsigned states;     /* RPC_STATE_BIT() mask */
        bool secret_request; /* request body carries a PIN or key: frame lives in a secret_buf */
        /* Decode-and-discard validators (fuzzing, mutation tests): 0 or negative errno. */
        int (*check_request)(const uint8_t *body, size_t len);
        int (*check_response)(const uint8_t *body, size_t len);
};

/* NULL for an unknown id. */
const struct rpc_call_info *rpc_call_lookup(unsigned id);
/* Unknown id, or a call not allowed on that channel / in that state: -EBADR / -EPERM / -EPROTO. */
_must_check_ int rpc_call_check(unsigned id, enum rpc_channel ch, enum rpc_conn_state state,
                                const struct rpc_call_info **ret);
const char *rpc_call_to_string(unsigned id);
