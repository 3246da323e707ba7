/* The wire frame: a fixed 16-byte header followed by a CBOR body of bounded length. */
#pragma once

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "common/cleanup.h"

/*
 * Header, all integers big-endian:
 *   0  u32 magic        "EAC1"
 *   4  u8  version      protocol version (1)
 *   5  u8  kind         0 request, 1 response
 *   6  u8  call         enum rpc_call
 *   7  u8  status       enum rpc_status (responses; 0 in requests)
 *   8  u32 request_id   echoed in the response
 *  12  u32 body_len     checked against the channel's maximum before anything is read
 */
#define RPC_MAGIC            UINT32_C(0x45414331)
#define RPC_HEADER_SIZE      16
#define RPC_VERSION_MIN      1
#define RPC_VERSION_MAX      3 /* 2: TOKEN_ADD hold (RPC_VERSION_HOLD); 3: the KMS key path (RPC_VERSION_KMS) */
#define RPC_MAX_BODY_DATA    (64u * 1024u)
#define RPC_MAX_BODY_CONTROL (1024u * 1024u)

enum rpc_channel {
        RPC_CHANNEL_DATA,
        RPC_CHANNEL_CONTROL,
        _RPC_CHANNEL_MAX,
        _RPC_CHANNEL_INVALID = -EINVAL,
};

enum rpc_kind {
        RPC_KIND_REQUEST = 0,
        RPC_KIND_RESPONSE = 1,
};

/* The small error vocabulary of the wire. Never free-form strings. */
enum rpc_status {
        RPC_STATUS_OK = 0,
        RPC_STATUS_MALFORMED,   /* undecodable body, unknown field, bad state */
        RPC_STATUS_UNSUPPORTED, /* mechanism or parameter not supported */
        RPC_STATUS_NO_SUCH_TOKEN,
        RPC_STATUS_NO_SUCH_KEY,
        RPC_STATUS_PIN_INCORRECT,
        RPC_STATUS_PIN_LOCKED,    /* too many wrong PINs: back-off in force */
        RPC_STATUS_NOT_LOGGED_IN, /* missing or stale login ticket */
        RPC_STATUS_EXISTS,        /* token label in use */
        RPC_STATUS_LIMIT,         /* too many tokens / keys */
        RPC_STATUS_DENIED,        /* refused by policy (plaintext keys without --dev) */
        RPC_STATUS_DATA_INVALID,  /* input rejected by the operation */
        RPC_STATUS_DATA_LEN,      /* input length out of range */
        RPC_STATUS_KEY_INVALID,   /* unparsable key or certificate, key/cert mismatch */
        RPC_STATUS_BAD_VERSION,   /* no common protocol version */
        RPC_STATUS_INTERNAL,
        /* version 3: the KMS key path */
        RPC_STATUS_NO_ATTESTATION, /* no NSM (and no simulator): keys cannot be decrypted here */
        RPC_STATUS_NO_KMS_ROUND,   /* a KMS ciphertext without KMS_BEGIN on this connection */
        RPC_STATUS_KMS_DENIED,     /* KMS refused: AccessDenied (key policy, attestation), bad credentials */
        RPC_STATUS_KMS_CIPHERTEXT, /* KMS: invalid ciphertext, wrong / disabled / unknown key */
        RPC_STATUS_KMS_UNAVAILABLE, /* KMS unreachable, timed out, throttled or failing: retry later */
        RPC_STATUS_KMS_ERROR,       /* any other KMS error, or an answer the enclave could not open */
        _RPC_STATUS_MAX,
        _RPC_STATUS_INVALID = -EINVAL,
};

struct rpc_header {
        uint32_t magic;
        uint8_t version;
        uint8_t kind;
        uint8_t call;
        uint8_t status;
        uint32_t request_id;
        uint32_t body_len;
};

size_t rpc_channel_max_body(enum rpc_channel ch);
const char *rpc_channel_to_string(enum rpc_channel ch);

void rpc_header_encode(const struct rpc_header *h, uint8_t out[static RPC_HEADER_SIZE]);

/* Checks magic, version range, kind and body_len against the channel maximum.
 * -EBADMSG bad magic/kind, -EPROTONOSUPPORT version, -EMSGSIZE length. */
_must_check_ int rpc_header_decode(const uint8_t in[static RPC_HEADER_SIZE], enum rpc_channel ch,
                                   struct rpc_header *ret);
