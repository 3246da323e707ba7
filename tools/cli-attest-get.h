/* `enclave-acm attestation get` (tools/cli-attest-get.c). */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "common/cleanup.h"
#include "tools/cli.h"

/* argv[0] is "get". Exit status: 0 written, 1 failed (daemon unreachable, NO_ATTESTATION, a write
 * error), 2 bad command line (also: standard output is a terminal and no -o FILE). */
int cli_verb_attestation_get(int argc, char **argv, const struct cli_ctx *ctx);

/* Hex (either case, even length) into out: 1..max bytes. -EINVAL otherwise. Pure. */
_must_check_ int cli_hex_decode(const char *s, uint8_t *out, size_t max, size_t *ret_len);
