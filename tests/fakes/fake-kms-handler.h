/* The fake KMS's request handler: one complete HTTP request in, one answer out. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "attest/attest.h"
#include "aws/kms.h"
#include "common/cleanup.h"
#include "common/secret.h"
#include "tests/fakes/fake-kms-blob.h"
#include "tests/fakes/fake-kms-http.h"
#include "tests/fakes/fake-kms-stats.h"

struct fkms_config {
        const char *region;
        const char *const *hosts; /* NULL-terminated: the names the TLS certificate is for */
        const char *partition;    /* "aws", "aws-cn", ... for the key ARN */
        const char *access_key_id;
        const struct secret_buf *secret_access_key;
        const struct secret_buf *session_token; /* NULL: long-term credentials */
        const char *attestation_root;           /* PEM file, re-read at each request */
        const struct attest_pcr_expect *policy; /* kms:RecipientAttestation:PCR<n> */
        size_t n_policy;
        const struct secret_buf *master_key;
        const char *fault_file; /* NULL: none */
        int64_t clock_offset;   /* seconds added to the clock */
        int idle_timeout_ms;    /* keep-alive connection without a request */
        int io_timeout_ms;      /* handshake, one request, one response */
        unsigned max_connections;
        EVP_PKEY *cert_signer; /* signs the throwaway recipient certificates */
};

struct fkms_reply {
        int status;
        char *body; /* malloc()ed */
        size_t len;
        const char *content_type;
        const char *outcome; /* static: "ok", the exception name, "fault-close", "fault-garbage" */
        char key_id[FKMS_KEY_ID_MAX + 1]; /* the blob's, once it opened: for the log line */
        bool close_without_answer;
};

void fkms_reply_done(struct fkms_reply *r);

/* From an X-Amz-Target value (NULL: absent). */
enum fkms_op fkms_op_from_target(const char *target);

/* Answers one request (head h, body of len bytes) into out; q receives the parsed KMS request (its
 * AttestationDocument feeds the statistics) and is released by the caller with aws_kms_request_done(). */
void fkms_handle(const struct fkms_config *cfg, const struct fkms_http_head *h, const uint8_t *body,
                 size_t len, struct fkms_reply *out, struct aws_kms_request *q);
