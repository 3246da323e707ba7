/* Helpers shared by the verifier and the builder; not part of the public API. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "attest/attest.h"

/* The COSE Sig_structure ["Signature1", protected, h'', payload] (definite lengths), malloc'ed. */
_must_check_ int attest_sig_structure(struct attest_blob prot, struct attest_blob payload, uint8_t **ret,
                                      size_t *ret_len);
/* An EC key on P-384. */
bool attest_key_is_p384(EVP_PKEY *key);
