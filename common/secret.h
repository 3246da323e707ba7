/* Locked, non-dumpable, wiped-on-free buffers for PINs, private keys and frames carrying them. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/cleanup.h"

struct secret_buf {
        uint8_t *data; /* page-aligned mapping of map_size bytes */
        size_t len;    /* bytes in use */
        size_t cap;    /* usable capacity requested by the caller */
        size_t map_size;
        bool locked; /* mlock() succeeded */
};

/* When strict, an mlock() failure makes secret_buf_new() fail (enclave-token);
 * otherwise it is tolerated. ENCLAVE_ACM_NO_MLOCK=1 disables mlock() entirely (tests, CI). */
void secret_set_strict(bool strict);

/* Excludes the page-aligned range from core dumps and mlock()s it by the same rules as a secret_buf:
 * 1 locked, 0 not locked (tolerated, or ENCLAVE_ACM_NO_MLOCK=1), negative errno when strict. */
_must_check_ int secret_pages_protect(void *p, size_t len);

_must_check_ int secret_buf_new(size_t cap, struct secret_buf **ret);
/* Wipes and unmaps; accepts NULL; returns NULL. */
struct secret_buf *secret_buf_free(struct secret_buf *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct secret_buf *, secret_buf_free);
#define _cleanup_secret_ _cleanup_(secret_buf_freep)

/* Replace the contents (-EMSGSIZE if len > cap). */
_must_check_ int secret_buf_set(struct secret_buf *s, const void *p, size_t len);
/* New buffer holding a copy of p. */
_must_check_ int secret_buf_dup(const void *p, size_t len, struct secret_buf **ret);
/* Wipe the bytes in use and set len to 0. */
void secret_buf_clear(struct secret_buf *s);

/* explicit_bzero() that the compiler cannot drop. */
void secret_wipe(void *p, size_t n);
