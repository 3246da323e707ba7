/* The fake KMS's statistics file: connections, handshakes, requests by operation and outcome, distinct
 * attestation documents; rewritten atomically after every change so tests and bench/ can read it. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "common/cleanup.h"

enum fkms_op {
        FKMS_OP_DECRYPT,
        FKMS_OP_RANDOM,
        FKMS_OP_OTHER,
        _FKMS_OP_MAX,
        _FKMS_OP_INVALID = -EINVAL,
};

enum fkms_conn_event {
        FKMS_CONN_ACCEPTED,
        FKMS_CONN_HANDSHAKE,
        FKMS_CONN_HANDSHAKE_FAILED,
        FKMS_CONN_CLOSED,
        FKMS_CONN_REFUSED, /* over --max-connections: accepted and closed at once */
        _FKMS_CONN_EVENT_MAX,
        _FKMS_CONN_EVENT_INVALID = -EINVAL,
};

/* "Decrypt", "GenerateRandom", "other". */
const char *fkms_op_to_string(enum fkms_op op);

/* Where the statistics go (NULL: nowhere); writes the first (empty) version. Call before any thread. */
void fkms_stats_init(const char *path);
void fkms_stats_connection(enum fkms_conn_event ev);
/* outcome is a static string ("ok", an exception name, "fault-close", ...); doc, when not NULL, is
 * remembered by its SHA-256 to count distinct documents. */
void fkms_stats_request(enum fkms_op op, const char *outcome, const uint8_t *doc, size_t doc_len);
/* Connections open now. */
unsigned fkms_stats_active(void);
