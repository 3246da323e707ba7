/* The fake KMS's HTTPS server: connections, the request handler, faults and statistics. */
#pragma once

#include <stdint.h>

#include <openssl/ssl.h>

#include "attest/attest.h"
#include "common/cleanup.h"
#include "common/secret.h"

struct fkms_config {
        const char *region;
        const char *partition; /* "aws", "aws-cn", ... for the key ARN */
        const char *access_key_id;
        const struct secret_buf *secret_access_key;
        const struct secret_buf *session_token; /* NULL: long-term credentials */
        const char *attestation_root;           /* PEM file, re-read at each request */
        const struct attest_pcr_expect *policy; /* kms:RecipientAttestation:PCR<n> */
        size_t n_policy;
        const struct secret_buf *master_key;
        const char *fault_file; /* NULL: none */
        const char *stats_file; /* NULL: none */
        int64_t clock_offset;   /* seconds added to the clock */
        int idle_timeout_ms;    /* keep-alive connection without a request */
        int io_timeout_ms;      /* handshake, one request, one response */
        unsigned max_connections;
        EVP_PKEY *cert_signer; /* signs the throwaway recipient certificates */
};

/* Serves on the listening socket lfd until SIGTERM or SIGINT (blocked in the caller, taken through
 * sigfd). Returns 0 then, or a negative errno for a failure of the listening socket. */
_must_check_ int fkms_serve(const struct fkms_config *cfg, SSL_CTX *ctx, int lfd, int sigfd);
