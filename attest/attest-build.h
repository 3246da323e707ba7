/* Building attestation documents, for the NSM simulator, the fake KMS and tests: the payload in real
 * hardware's key order and shapes, COSE_Sign1 signed ES384, and an in-memory test CA whose chains never
 * verify against the AWS root. Pure: OpenSSL keys in memory only. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>

#include "attest/attest.h"
#include "common/cleanup.h"

struct attest_build {
        const char *module_id;
        uint64_t timestamp_ms;
        const struct attest_pcr_value *pcrs; /* digest is "SHA384" */
        size_t n_pcrs;
        struct attest_blob certificate;     /* DER leaf */
        const struct attest_blob *cabundle; /* DER, root first */
        size_t n_cabundle;
        struct attest_opt public_key, user_data, nonce;
        bool untagged; /* default: tag 18 */
};

/* The payload map alone (definite, nine keys minus the absent optional ones, in the hardware's order:
 * module_id, digest, timestamp, pcrs, certificate, cabundle, public_key, user_data, nonce). No checks
 * beyond what the encoding needs, so tests can build documents the verifier must reject.
 * *ret is malloc'ed. */
_must_check_ int attest_payload_encode(const struct attest_build *b, uint8_t **ret, size_t *ret_len);

/* COSE_Sign1 around any protected header and payload bytes, unprotected {}, signed ES384 with key
 * (P-384). Tag 18 unless untagged. *ret is malloc'ed. */
_must_check_ int attest_cose_sign1(struct attest_blob protected_hdr, struct attest_blob payload,
                                   bool untagged, EVP_PKEY *key, uint8_t **ret, size_t *ret_len);

/* Signs ES384 with leaf_key (the private key of `certificate`); *ret is malloc'ed. */
_must_check_ int attest_doc_sign(const struct attest_build *b, EVP_PKEY *leaf_key, uint8_t **ret,
                                 size_t *ret_len);

/* A test CA in memory: root (self-signed P-384, CA), intermediate (CA), leaf (P-384, digitalSignature),
 * valid [not_before, not_after]; DER of each and the leaf's key. For the simulator and tests only:
 * a chain it makes never verifies against the AWS root. */
struct attest_test_ca {
        uint8_t *root_der, *inter_der, *leaf_der;
        size_t root_len, inter_len, leaf_len;
        EVP_PKEY *leaf_key;
        EVP_PKEY *inter_key;
        EVP_PKEY *root_key;
};

_must_check_ int attest_test_ca_new(time_t not_before, time_t not_after, struct attest_test_ca **ret);
struct attest_test_ca *attest_test_ca_free(struct attest_test_ca *ca);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct attest_test_ca *, attest_test_ca_free);
