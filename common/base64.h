/* Strict RFC 4648 base64 (standard alphabet, '=' padding required, no whitespace). Pure. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "common/cleanup.h"

/* Characters base64_encode() writes for n bytes, without the NUL. */
static inline size_t base64_encoded_len(size_t n) {
        return (n + 2) / 3 * 4;
}

/* The most bytes len characters can decode to. */
static inline size_t base64_decoded_max(size_t len) {
        return len / 4 * 3;
}

/* Encodes into out (NUL-terminated); the length written, or -ENOBUFS if out is too small. */
_must_check_ int base64_encode(const void *in, size_t len, char *out, size_t size);

/* Decodes into out. Refuses (-EBADMSG, *ret_offset = the offending byte when not NULL) a length that is
 * not a multiple of 4, characters outside the alphabet (whitespace included), '=' anywhere but the
 * last one or two places, and non-zero bits in the unused tail (so each value has one encoding).
 * -ENOBUFS if out is too small. Returns the decoded length. */
_must_check_ int base64_decode(const char *in, size_t len, void *out, size_t size, size_t *ret_offset);
