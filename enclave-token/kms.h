/* The KMS round of a control connection: the parent's credentials, one ephemeral RSA-2048 key, one
 * attestation document carrying its public key and one kept-alive TLS connection, used for every KMS
 * Decrypt of the round (docs/protocol.md, "The KMS key path"). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/cleanup.h"
#include "common/rpc-messages.h"
#include "common/secret.h"
#include "enclave-token/nsm.h"

#define ETOK_KMS_PROXY_DEFAULT "vsock:cid=3;port=8000" /* the parent's vsock-proxy */
#define ETOK_KMS_CLOCK_SKEW_MS (4 * 60 * 1000)         /* beyond this the parent's clock signs */
#define ETOK_KMS_ATTEMPTS      3
#define ETOK_KMS_BACKOFF_MS    200 /* before the 2nd attempt; doubled before each further one */
#define ETOK_KMS_CONNECT_MS    3000
#define ETOK_KMS_ATTEMPT_MS    3000  /* one request, connecting included */
#define ETOK_KMS_DECRYPT_MS    10000 /* one Decrypt, all attempts and back-offs together */

/* What every round of the daemon shares (--kms-proxy, --kms-ca). Zero timeouts: the defaults above. */
struct etok_kms_config {
        struct nsm_dev *nsm;
        const char *proxy;   /* NULL: ETOK_KMS_PROXY_DEFAULT */
        const char *ca_file; /* NULL: the system CA store */
        int connect_ms, attempt_ms, decrypt_ms, backoff_ms;
};

/* What a round did: for tests and the benchmark. */
struct etok_kms_stats {
        unsigned documents;   /* attestation documents asked of the NSM */
        unsigned connections; /* TLS connections opened by requests that got an HTTP answer (libcurl
                               * does not say how many a failed attempt opened) */
        unsigned decrypts;    /* Decrypt requests sent (retries included) */
};

struct etok_kms_round;

/* Keeps the credentials (secret memory), validates region and domain (MALFORMED), picks the clock
 * (the enclave's, or the parent's with the offset kept when they differ by more than
 * ETOK_KMS_CLOCK_SKEW_MS), makes the key pair and asks the NSM for one document with public_key = its
 * SPKI (unless per_key). No NSM: NO_ATTESTATION. ret_resp: the answer for the parent. */
_must_check_ int etok_kms_round_begin(const struct etok_kms_config *cfg, const struct rpc_kms_begin_req *req,
                                      struct etok_kms_round **ret, struct rpc_kms_begin_resp *ret_resp);

/* KMS Decrypt of one CiphertextBlob with the round's Recipient; the plaintext (the CMS envelope
 * opened with the round's key) in a new secret_buf. Retries connection failures, time-outs, 5xx and
 * throttling (ETOK_KMS_ATTEMPTS, back-off with jitter, ETOK_KMS_DECRYPT_MS in all). Errors: KMS_DENIED,
 * KMS_CIPHERTEXT, KMS_UNAVAILABLE, KMS_ERROR, each logged once with the AWS error type and message. */
_must_check_ int etok_kms_decrypt(struct etok_kms_round *round, const uint8_t *ciphertext, size_t len,
                                  struct secret_buf **ret_plaintext);

/* Wipes the key pair, the document and the credentials and closes the connection; NULL is fine. */
struct etok_kms_round *etok_kms_round_end(struct etok_kms_round *round);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct etok_kms_round *, etok_kms_round_end);

void etok_kms_round_stats(const struct etok_kms_round *round, struct etok_kms_stats *ret);

/* The test hook: the statistics of the last round ended in this process. */
void etok_kms_last_stats(struct etok_kms_stats *ret);
