/* Target: the CBOR reader's document mode (rpc_reader_init_doc()), as attestation documents use it.
 *
 * Input: one CBOR item, e.g. a COSE_Sign1 Nitro attestation document (the real ones are seeds).
 * rpc_skip() and a walk through the typed calls (tests/lib/doc-walk.h) must agree: the walk never
 * succeeds where the skip fails, and both stop at the same byte; whatever the strict mode accepts
 * the document mode accepts too. A COSE-shaped input has its payload walked as well. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/cbor-read.h"
#include "tests/lib/doc-walk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct rpc_reader_limits lim = { .depth = 8, .count = 64, .len = 16384 };
/* The strict mode's own limits, for comparing the two modes on equal terms. */
static const struct rpc_reader_limits strict_lim = { .depth = RPC_READER_DEPTH_MAX,
                                                     .count = SIZE_MAX,
                                                     .len = SIZE_MAX };
static uint8_t buf[16384];

static void check(int k) {
        if (k < 0 && k != -EBADMSG)
                abort();
}

/* One item both ways; returns the skip's result. */
static int both_ways(const uint8_t *p, size_t n) {
        struct doc_walk_stats st = {};
        struct rpc_reader a, b, c, d;
        int ks, kw, kc, kd;

        rpc_reader_init_doc(&a, p, n, &lim);
        ks = rpc_skip(&a);
        rpc_reader_init_doc(&b, p, n, &lim);
        kw = doc_walk(&b, buf, &st);
        rpc_reader_init(&c, p, n);
        kc = rpc_skip(&c);
        rpc_reader_init_doc(&d, p, n, &strict_lim);
        kd = rpc_skip(&d);
        check(ks);
        check(kw);
        check(kc);
        check(kd);
        if (kw >= 0 && (ks < 0 || a.pos != b.pos || b.depth != 0))
                abort();
        if (kc >= 0 && (kd < 0 || d.pos != c.pos))
                abort();
        if (ks >= 0 && a.pos > n)
                abort();
        return ks;
}

/* [protected, unprotected, payload bstr, signature], tag 18 optional: the payload is CBOR too. */
static void cose_payload(const uint8_t *p, size_t n) {
        struct rpc_container c;
        struct rpc_slice payload;
        struct rpc_reader r;
        enum rpc_item_type t;
        uint64_t tag;

        rpc_reader_init_doc(&r, p, n, &lim);
        if (rpc_peek(&r, &t) < 0 || (t == RPC_ITEM_TAG && rpc_get_tag(&r, &tag) < 0))
                return;
        if (rpc_get_array_begin(&r, 4, &c) < 0 || rpc_container_next(&r, &c) != 1 || rpc_skip(&r) < 0 ||
            rpc_container_next(&r, &c) != 1 || rpc_skip(&r) < 0 || rpc_container_next(&r, &c) != 1 ||
            rpc_get_bytes(&r, 1, lim.len, &payload) < 0)
                return;
        if (payload.ptr < p || payload.ptr + payload.len > p + n)
                abort();
        (void) both_ways(payload.ptr, payload.len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        uint8_t *copy;

        /* An exact-size copy, so that a read past the input is caught. */
        copy = malloc(size ? size : 1);
        if (!copy)
                return 0;
        if (size > 0)
                memcpy(copy, data, size);
        if (both_ways(copy, size) >= 0)
                cose_payload(copy, size);
        free(copy);
        return 0;
}
