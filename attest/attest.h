/* Nitro attestation documents: COSE_Sign1 (ES384), the AttestationDocument payload, the certificate
 * chain to the pinned AWS root and a PCR policy (NITRO-FORMATS.md section 2). Pure: no I/O.
 *
 * Parsing rules (NITRO-FORMATS.md 2.1-2.3, 1.5):
 * - COSE_Sign1 untagged or with tag 18; a definite array of 4; protected header exactly {1: -35};
 *   unprotected header an empty map; signature exactly 96 bytes (r || s).
 * - The payload map may be definite or indefinite. All nine keys of the AttestationDocument CDDL are
 *   known; an unknown key is MALFORMED (the CDDL is a closed map and the document is signed by the
 *   hardware, so an extra key means a format we have not reviewed), as is a duplicate key, a missing
 *   mandatory key (module_id, digest, timestamp, pcrs, certificate, cabundle) or trailing bytes.
 * - module_id text 1..ATTEST_MODULE_ID_MAX; digest exactly "SHA384"; timestamp a uint > 0 (ms);
 *   pcrs 16..32 entries with unique indices < 32, indices 0..15 all present (locked at boot, 1.4),
 *   each value 48 bytes (the length of the "SHA384" digest); certificate and every cabundle entry DER
 *   of 1..ATTEST_CERT_MAX bytes; cabundle 1..ATTEST_CABUNDLE_MAX entries; public_key, user_data and
 *   nonce each absent, null or a byte string of 0..ATTEST_OPT_MAX bytes.
 * Verification: cabundle[0] byte-equal to the root (pinned AWS root unless the caller gives one),
 * the path leaf <- cabundle[n-1] <- ... <- cabundle[0] with OpenSSL at the chosen time, CA
 * certificates with critical basicConstraints CA:TRUE and keyCertSign, the leaf CA:FALSE with
 * digitalSignature and a P-384 key that verifies the COSE signature; then the PCR expectations.
 * The order is that: root pin, path, signature, PCRs. So a changed certificate is reported as CHAIN
 * (ROOT for cabundle[0]) although it also breaks the signature, and a changed timestamp verified with
 * ATTEST_TIME_DOC may be reported as EXPIRED. Every change is rejected; the reason names the first
 * check that failed. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/cleanup.h"

#define ATTEST_DOC_MAX       16384 /* sdk-c's document buffer (NITRO-FORMATS.md 1.5) */
#define ATTEST_MODULE_ID_MAX 256
#define ATTEST_PCR_MIN       16
#define ATTEST_PCR_COUNT     32 /* max_pcrs: indices 0..31 */
#define ATTEST_PCR_LEN       48
#define ATTEST_CERT_MAX      1024
#define ATTEST_CABUNDLE_MAX  16
#define ATTEST_OPT_MAX       1024

/* A slice of bytes (into the caller's buffer unless said otherwise). */
struct attest_blob {
        const uint8_t *ptr;
        size_t len;
};

/* public_key / user_data / nonce: the key absent, present with null, or present with bytes (maybe
 * zero of them). */
enum attest_opt_kind {
        ATTEST_OPT_ABSENT,
        ATTEST_OPT_NULL,
        ATTEST_OPT_BYTES,
        _ATTEST_OPT_KIND_MAX,
        _ATTEST_OPT_KIND_INVALID = -EINVAL,
};

struct attest_opt {
        enum attest_opt_kind kind;
        const uint8_t *ptr;
        size_t len;
};

struct attest_pcr_value {
        unsigned index;
        const uint8_t *ptr;
        size_t len;
};

enum attest_reason {
        ATTEST_OK,
        ATTEST_ERR_MALFORMED, /* not a well-formed document: see offset and field */
        ATTEST_ERR_SIGNATURE, /* the COSE signature does not verify with the leaf's key */
        ATTEST_ERR_CHAIN,     /* the certificate path does not verify or breaks the profile */
        ATTEST_ERR_EXPIRED,   /* a certificate is not yet valid or expired at the time used */
        ATTEST_ERR_ROOT,      /* cabundle[0] is not the pinned (or given) root */
        ATTEST_ERR_PCR,       /* a PCR differs from its expectation: see pcr_index */
        ATTEST_ERR_INTERNAL,  /* out of memory or an OpenSSL failure unrelated to the input */
        _ATTEST_REASON_MAX,
        _ATTEST_REASON_INVALID = -EINVAL,
};

/* "ok", "malformed", "signature", "chain", "expired", "root", "pcr", "internal"; NULL if invalid. */
const char *attest_reason_to_string(enum attest_reason r);

enum attest_time_mode {
        ATTEST_TIME_NOW,   /* the current time (the default) */
        ATTEST_TIME_DOC,   /* the document's own timestamp (recorded documents) */
        ATTEST_TIME_GIVEN, /* attest_opts.time_ms */
        _ATTEST_TIME_MAX,
        _ATTEST_TIME_INVALID = -EINVAL,
};

struct attest_pcr_expect {
        unsigned index;
        const uint8_t *ptr;
        size_t len;
};

struct attest_opts {
        const uint8_t *root_der; /* NULL: the pinned AWS Nitro Enclaves root */
        size_t root_len;
        enum attest_time_mode time_mode;
        uint64_t time_ms; /* ATTEST_TIME_GIVEN: UNIX time in milliseconds */
        const struct attest_pcr_expect *pcrs;
        size_t n_pcrs;
};

/* The parsed document: every slice points into the buffer given to attest_parse() / attest_verify(). */
struct attest_doc {
        bool tagged;             /* tag 18 present */
        bool payload_indefinite; /* payload map of indefinite length */
        struct attest_blob protected_hdr, payload, signature;
        struct attest_blob module_id; /* UTF-8 text, not NUL-terminated */
        struct attest_blob digest;
        uint64_t timestamp_ms;
        struct attest_pcr_value pcrs[ATTEST_PCR_COUNT]; /* in document order */
        size_t n_pcrs;
        struct attest_blob certificate;
        struct attest_blob cabundle[ATTEST_CABUNDLE_MAX]; /* root first */
        size_t n_cabundle;
        struct attest_opt public_key, user_data, nonce;
};

struct attest_result {
        enum attest_reason reason;
        struct attest_doc doc; /* filled as far as parsing got; complete unless MALFORMED */
        /* MALFORMED: byte offset into the document and the field being read ("payload.pcrs", ...). */
        size_t offset;
        const char *field;
        /* PCR: the first index that differs, the expected and the actual value (actual.ptr NULL
         * when the document has no such PCR). */
        unsigned pcr_index;
        struct attest_blob pcr_expected, pcr_actual;
        /* CHAIN / EXPIRED: OpenSSL's X509_V_ERR_* code (0 for a profile check) and the depth
         * (0 = leaf, n_cabundle = root). detail: a static text saying what failed. */
        int x509_error;
        int x509_depth;
        const char *detail;
        uint64_t verify_time_ms; /* the time the chain was checked at */
};

/* The compiled-in AWS_NitroEnclaves_Root-G1 (DER). */
extern const uint8_t attest_aws_root_der[];
extern const size_t attest_aws_root_len;

/* Parses (structure and field rules only, no cryptography). Returns 0, or -EBADMSG with
 * ret->reason = ATTEST_ERR_MALFORMED and offset / field set. ret is always written. */
_must_check_ int attest_parse(const uint8_t *buf, size_t len, struct attest_result *ret);

/* Parses and verifies; opts may be NULL (pinned root, now, no PCR policy). Returns 0 (reason OK), or
 * a negative errno with ret->reason saying why: -EBADMSG MALFORMED, -EKEYREJECTED SIGNATURE / CHAIN
 * / ROOT, -EKEYEXPIRED EXPIRED, -EPERM PCR, -EINVAL bad opts (INTERNAL), -ENOMEM INTERNAL. ret is
 * always written. */
_must_check_ int attest_verify(const uint8_t *buf, size_t len, const struct attest_opts *opts,
                               struct attest_result *ret);
