/* The request dispatcher: call table check, then one small handler per call. No sockets here. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/rpc-calls.h"
#include "common/rpc-codec.h"
#include "enclave-token/keystore.h"
#include "enclave-token/kms.h"
#include "enclave-token/nsm.h"

/* A token whose keys came from KMS expires after this unless refreshed (TOKEN_ADD / TOKEN_REFRESH ttl 0). */
#define ETOK_KMS_TTL_DEFAULT_SEC (48u * 3600u)

/* What every handler may read; shared by all workers. */
struct etok_dispatch {
        struct etok_keystore *keystore;
        bool dev;                          /* --dev: TOKEN_ADD accepts plaintext private keys */
        struct nsm_dev *nsm;               /* NULL: no attestation (NO_ATTESTATION) */
        const struct etok_kms_config *kms; /* the KMS rounds' settings; nsm again in kms->nsm */
};

/* One connection's protocol state. */
struct etok_session {
        enum rpc_channel channel;
        enum rpc_conn_state state;
        uint8_t version;                  /* negotiated by HELLO; 0 before */
        struct etok_pin_guard pin_guard;  /* this connection's wrong PINs */
        struct etok_kms_round *kms_round; /* KMS_BEGIN .. KMS_END (control channel) */
};

struct etok_reply {
        enum rpc_status status;
        bool close;  /* send the answer, then close the connection */
        bool secret; /* the body carries a ticket or a plaintext: wipe it once sent */
};

void etok_session_init(struct etok_session *s, enum rpc_channel ch);
/* The connection is closing: ends its KMS round (credentials, key and document wiped). */
void etok_session_done(struct etok_session *s);

/* Runs one request: checks the call against the channel and the session state, decodes the
 * body, runs the handler and writes the response body to w (nothing for a non-OK status).
 * Never fails as a function: every outcome is a status in ret. */
void etok_dispatch_request(const struct etok_dispatch *d, struct etok_session *s, unsigned call,
                           const uint8_t *body, size_t len, struct rpc_writer *w, struct etok_reply *ret);
