/* Every OpenSSL allocation of a process in locked, non-dumpable memory that is wiped when freed:
 * enclave-token (keys), the agent and the CLI (key files they forward). */
#pragma once

#include <stddef.h>

#include "common/cleanup.h"

/* Routes OPENSSL_malloc/realloc/free (and so every BIGNUM, Montgomery context, blinding, EVP context,
 * decoder and ASN.1 buffer OpenSSL makes) into the arena. Call before OpenSSL allocates anything:
 * afterwards OpenSSL refuses the switch (-EBUSY). Pages are mlock()ed by the rules of
 * secret_pages_protect(): a failure to lock makes allocations fail under secret_set_strict(true). */
_must_check_ int ssl_heap_install(void);

struct ssl_heap_stats {
        size_t mapped;   /* bytes mapped for the arena (small-block chunks plus large blocks) */
        size_t large;    /* large blocks currently allocated */
        size_t unlocked; /* bytes mapped that mlock() refused or was told to skip */
};
void ssl_heap_get_stats(struct ssl_heap_stats *ret);
