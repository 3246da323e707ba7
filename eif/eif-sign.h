/* The EIF signature section (NITRO-FORMATS.md 7.6): PCR8 and the COSE_Sign1 over PCR0. Pure: no I/O.
 *
 * The section is serde_cbor of [ {"signing_certificate": [u8...], "signature": [u8...]} ]: both fields
 * arrays of small unsigned integers, the certificate as PEM text, the signature an untagged COSE_Sign1
 * (protected {1: alg}, unprotected {}, payload {"register_index": 0, "register_value": [48 u8]}) made
 * with ES256, ES384 or ES512 as the key's curve (P-256, P-384, P-521) says. We read and write exactly one
 * entry, as nitro-cli does. */
#pragma once

#include <openssl/evp.h>

#include "eif/eif.h"

#define EIF_COSE_ES256 (-7)
#define EIF_COSE_ES384 (-35)
#define EIF_COSE_ES512 (-36)

struct eif_signature {
        uint8_t *cert_pem; /* malloc'ed: decoded from the integer array */
        size_t cert_pem_len;
        uint8_t *cose; /* malloc'ed: the COSE_Sign1 bytes */
        size_t cose_len;
        int64_t alg;
        struct eif_blob protected_hdr, payload, sig; /* slices of cose */
        uint64_t register_index;
        uint8_t register_value[EIF_PCR_LEN];
};

/* Frees what eif_signature_parse() allocated; safe on a zeroed struct. */
void eif_signature_done(struct eif_signature *s);

/* Decodes a signature section (strict CBOR: definite lengths, no trailing bytes, known keys only).
 * 0, or -EBADMSG with *err (offset into the section), -ENOMEM. On failure *ret is left empty. */
_must_check_ int eif_signature_parse(const uint8_t *buf, size_t len, struct eif_signature *ret,
                                     struct eif_error *err);

/* PCR8: the PCR of the certificate's DER. -EBADMSG if the PEM holds no certificate. */
_must_check_ int eif_signature_pcr8(const struct eif_signature *s, uint8_t ret[EIF_PCR_LEN]);

/* 0 if register 0 holds pcr0 and the COSE signature verifies with the certificate's key under the
 * algorithm its curve requires; -EKEYREJECTED (with *err saying which) otherwise, -EBADMSG for a
 * certificate that does not parse, -ENOMEM. The certificate's validity dates are not checked here. */
_must_check_ int eif_signature_verify(const struct eif_signature *s, const uint8_t pcr0[EIF_PCR_LEN],
                                      struct eif_error *err);

/* Builds the section for pcr0, signed with key (EC P-256, P-384 or P-521) whose certificate is cert_pem
 * (checked: it must parse and hold key's public key). *ret malloc'ed. -EINVAL for another key type or a
 * certificate that does not match, -EMSGSIZE if the section would exceed EIF_SIGNATURE_MAX. */
_must_check_ int eif_signature_build(const uint8_t pcr0[EIF_PCR_LEN], const uint8_t *cert_pem,
                                     size_t cert_pem_len, EVP_PKEY *key, uint8_t **ret, size_t *ret_len);
