/* Reading the operator's PIN, private key and certificate chain for `enclave-acm token add/remove`. */
#pragma once

#include <stddef.h>

#include "common/cleanup.h"
#include "parent/provision.h"
#include "common/secret.h"

/* Each function logs its own failure (naming the file and what is wrong) and returns a
 * negative errno. */

/* The PIN from --pin (the argv string is wiped in place afterwards so ps no longer shows it)
 * or from --pin-file (trailing newlines stripped). Length must be RPC_PIN_MIN..RPC_PIN_MAX. */
_must_check_ int cli_pin_from_arg(char *arg, struct secret_buf **ret);
_must_check_ int cli_pin_from_file(const char *path, struct secret_buf **ret);

/* Parses the PEM private key in key_path (PKCS#8, PKCS#1 or SEC1, unencrypted) and the PEM
 * certificates in chain_path (leaf first), checks the key type is one enclave-token serves and
 * that it matches the leaf, and returns the key re-encoded as PKCS#8 PEM in a secret_buf and the
 * certificates re-encoded as a clean PEM chain (nothing but certificates). */
_must_check_ int cli_load_key_and_chain(const char *key_path, const char *chain_path,
                                        struct secret_buf **ret_key, char **ret_chain, size_t *ret_chain_len,
                                        struct provision_key_summary *ret_summary);
