/* The agent's check of the enclave before it sends AWS credentials: the attestation document of ATTEST
 * against the nonce the agent chose, the root (AWS's, or the NSM simulator's) and the expected PCRs. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "agent/config/config.h"
#include "common/cleanup.h"

struct agent_attest_policy {
        const struct agent_pcr_set *pcrs; /* NULL or empty: no PCR is checked (simulator only) */
        enum agent_pcrs_origin origin;    /* named in a mismatch */
        const uint8_t *root_der;          /* NULL: the pinned AWS Nitro Enclaves root */
        size_t root_len;
        uint64_t time_ms; /* when to check the chain; 0: now */
};

/* 0 when the document verifies (signature, chain to the root, validity at the time), carries exactly our
 * nonce and shows every expected PCR. Otherwise a negative errno (-EBADMSG malformed, -EKEYREJECTED
 * signature / chain / root / nonce, -EKEYEXPIRED, -EPERM a PCR, -ENOMEM) and *ret_error, one line
 * starting "attestation: " and ending "; not sending credentials", e.g. "attestation: PCR0 is
 * 3a4b5c6d7e8f9a0b…, expected 9f00112233445566… (enclave.expected_pcrs); not sending credentials".
 * Pure. */
_must_check_ int agent_attest_check(const uint8_t *doc, size_t len, const uint8_t *nonce, size_t nonce_len,
                                    const struct agent_attest_policy *p, char **ret_error);
