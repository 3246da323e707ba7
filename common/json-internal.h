/* What the JSON reader and writer share: one UTF-8 decoder. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* The length (1-4) of the well-formed UTF-8 sequence at p (n bytes available) and its code point;
 * 0 for a byte that does not start one: overlong forms, surrogates, > U+10FFFF, truncation. */
size_t json_utf8_char(const uint8_t *p, size_t n, uint32_t *ret_cp);
