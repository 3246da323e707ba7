/* Local verification with a key's public half (pure: OpenSSL only, no locks, no I/O). */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "p11module/mech.h"
#include "p11module/pkcs11-3.h"

/* The public key of a DER SubjectPublicKeyInfo: CKR_OK, CKR_HOST_MEMORY, or CKR_KEY_HANDLE_INVALID
 * when the bytes are no key we can use (the cache holds only parsed keys, so that is a bug). */
CK_RV p11_pubkey_parse(const uint8_t *spki, size_t len, EVP_PKEY **ret);

/* Verifies sig over in, where in is what the enclave signs for the wire mechanism: a DigestInfo (or
 * any data up to k - 11 bytes) for RSA PKCS#1 v1.5, the digest for PSS (with p's hash, MGF1 hash and
 * salt length) and ECDSA, the message for EdDSA. sig_len must be the key's exact signature size
 * (want_len): RSA k, ECDSA r || s (twice the field size), EdDSA 64.
 * CKR_OK, CKR_SIGNATURE_INVALID, CKR_SIGNATURE_LEN_RANGE, CKR_HOST_MEMORY, CKR_FUNCTION_FAILED.
 * Leaves the OpenSSL error queue as it found it. */
CK_RV p11_pubkey_verify(EVP_PKEY *pkey, enum rpc_mech wire, const struct p11_mech_params *p, size_t want_len,
                        const uint8_t *in, size_t in_len, const uint8_t *sig, size_t sig_len);
