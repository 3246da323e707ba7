/* PKCS#11 URIs (RFC 7512) for keys in an enclave-acm token, as the module exposes them. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "common/cleanup.h"

/* Appends s to a malloc'ed string with every byte outside RFC 3986 "unreserved" percent-encoded,
 * which every URI parser in the PKCS#11 world accepts. */
_must_check_ int p11uri_pct_encode(const char *s, size_t len, char **ret);

/* "pkcs11:model=enclave-token;manufacturer=enclave-acm;token=<label>;id=%XX;object=<key label>;type=private".
 * The id is the key id as CKA_ID bytes: big-endian, no leading zero bytes, at least one byte
 * (1 -> %01, 258 -> %01%02). */
_must_check_ int p11uri_private_key(const char *token_label, size_t token_label_len, uint32_t key_id,
                                    const char *key_label, size_t key_label_len, char **ret);
