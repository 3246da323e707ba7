/* The bounded CBOR reader: both modes, real Nitro attestation documents walked through it, and
 * hand-made indefinite items, chunked strings, nesting past the cap, missing breaks. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/cbor-read.h"
#include "tests/lib/doc-walk.h"
#include "tests/lib/data.h"
#include "tests/lib/tap.h"

/* Generous for an attestation document (certificates ~700 B, user data up to 1 KiB), small enough
 * that nothing a peer declares can make us walk or copy far. */
static const struct rpc_reader_limits doc_limits = { .depth = 8, .count = 64, .len = 16384 };

static uint8_t walk_buf[16384];

/* The copies in the fuzz corpus of the ten public documents from real hardware
 * (../shared/test-vectors/nitro, see PROVENANCE.md there). */
static const char *const nitro_docs[] = {
        "blocky_nitrite_2024-09-07_debug.cose",    "blocky_nitrite_2024-09-07_prod.cose",
        "capejs_isomorphic_2022-07-14_debug.cose", "capejs_spec_2022-09-15_prod.cose",
        "evervault_2023-09-18_debug.cose",         "evervault_beta_2022-10-12_debug.cose",
        "marlin_risczero_2024-12-13_prod.cose",    "marlin_verifier_2024-08-07_prod.cose",
        "sparsity_1_2024-08-16_debug.cose",        "sparsity_2_2023-09-28_prod.cose",
};

static uint8_t *load_doc(const char *name, size_t *ret_len) {
        char rel[256];

        (void) snprintf(rel, sizeof(rel), "../fuzz/corpus/fuzz-cbor-doc/%s", name);
        return (uint8_t *) test_data_load(rel, ret_len);
}

#define DOC(r, bytes) rpc_reader_init_doc(r, bytes, sizeof(bytes), &doc_limits)

/* ---- the attestation document, field by field (NITRO-FORMATS.md 2.1, 2.2) ---- */

struct att {
        char module_id[128];
        char digest[16];
        uint64_t timestamp;
        size_t n_pcrs;
        size_t cert_len;
        size_t n_cabundle;
        int public_key, user_data, nonce; /* -1 null, else the length */
        unsigned seen;
};

/* An optional bstr: null or bytes. */
static int opt_bytes(struct rpc_reader *r, int *ret) {
        enum rpc_item_type t;
        struct rpc_slice s;
        int k;

        k = rpc_peek(r, &t);
        if (k < 0)
                return k;
        if (t == RPC_ITEM_NULL) {
                *ret = -1;
                return rpc_get_null(r);
        }
        k = rpc_get_bytes(r, 0, 1024, &s);
        if (k >= 0)
                *ret = (int) s.len;
        return k;
}

/* Text into a NUL-terminated buffer of size bytes. */
static int text_value(struct rpc_reader *r, char *buf, size_t size) {
        size_t n = 0;
        int k;

        k = rpc_get_text_copy(r, 1, size - 1, buf, &n);
        if (k >= 0)
                buf[n] = '\0';
        return k;
}

static int att_value(struct rpc_reader *r, const struct rpc_slice *key, struct att *a) {
        struct rpc_container c;
        struct rpc_slice s;
        int k;

        if (rpc_slice_eq_str(key, "module_id")) {
                a->seen |= 1;
                return text_value(r, a->module_id, sizeof(a->module_id));
        }
        if (rpc_slice_eq_str(key, "digest")) {
                a->seen |= 2;
                return text_value(r, a->digest, sizeof(a->digest));
        }
        if (rpc_slice_eq_str(key, "timestamp")) {
                a->seen |= 4;
                return rpc_get_uint(r, UINT64_MAX, &a->timestamp);
        }
        if (rpc_slice_eq_str(key, "pcrs")) {
                a->seen |= 8;
                k = rpc_get_map_begin(r, 32, &c);
                while (k >= 0 && (k = rpc_container_next(r, &c)) > 0) {
                        uint64_t idx;

                        if ((k = rpc_get_uint(r, 31, &idx)) < 0 || (k = rpc_get_bytes(r, 48, 48, &s)) < 0)
                                return k;
                        a->n_pcrs++;
                }
                return k;
        }
        if (rpc_slice_eq_str(key, "certificate")) {
                a->seen |= 16;
                k = rpc_get_bytes(r, 1, 4096, &s);
                a->cert_len = s.len;
                return k;
        }
        if (rpc_slice_eq_str(key, "cabundle")) {
                a->seen |= 32;
                k = rpc_get_array_begin(r, 16, &c);
                while (k >= 0 && (k = rpc_container_next(r, &c)) > 0) {
                        if ((k = rpc_get_bytes(r, 1, 1024, &s)) < 0)
                                return k;
                        a->n_cabundle++;
                }
                return k;
        }
        if (rpc_slice_eq_str(key, "public_key"))
                return opt_bytes(r, &a->public_key);
        if (rpc_slice_eq_str(key, "user_data"))
                return opt_bytes(r, &a->user_data);
        if (rpc_slice_eq_str(key, "nonce"))
                return opt_bytes(r, &a->nonce);
        return rpc_skip(r); /* unknown keys: skipped whole, within the caps */
}

static int att_payload(const uint8_t *p, size_t n, struct att *a) {
        struct rpc_container m;
        struct rpc_reader r;
        int k;

        rpc_reader_init_doc(&r, p, n, &doc_limits);
        k = rpc_get_map_begin(&r, 16, &m);
        while (k >= 0 && (k = rpc_container_next(&r, &m)) > 0) {
                struct rpc_slice key;

                if ((k = rpc_get_text(&r, 1, 32, &key)) < 0 || (k = att_value(&r, &key, a)) < 0)
                        return k;
        }
        return k < 0 ? k : rpc_reader_end(&r);
}

/* COSE_Sign1: [protected bstr {1: -35}, unprotected {}, payload bstr, signature bstr(96)], tag 18
 * optional. ret_payload points into doc. */
static int cose_sign1(const uint8_t *doc, size_t n, struct rpc_slice *ret_payload) {
        struct rpc_slice prot, sig, payload;
        struct rpc_container c, u, pm;
        struct rpc_reader r, pr;
        enum rpc_item_type t;
        uint64_t tag, key;
        int64_t alg;
        int k;

        rpc_reader_init_doc(&r, doc, n, &doc_limits);
        if ((k = rpc_peek(&r, &t)) < 0)
                return k;
        if (t == RPC_ITEM_TAG && ((k = rpc_get_tag(&r, &tag)) < 0 || tag != 18))
                return k < 0 ? k : -EBADMSG;
        if ((k = rpc_get_array_begin(&r, 4, &c)) < 0 || c.indefinite || c.n != 4)
                return k < 0 ? k : -EBADMSG;
        if ((k = rpc_container_next(&r, &c)) < 0 || (k = rpc_get_bytes(&r, 1, 64, &prot)) < 0 ||
            (k = rpc_container_next(&r, &c)) < 0 || (k = rpc_get_map_begin(&r, 8, &u)) < 0 ||
            (k = rpc_container_next(&r, &u)) != 0 || (k = rpc_container_next(&r, &c)) < 0 ||
            (k = rpc_get_bytes(&r, 1, 65536, &payload)) < 0 || (k = rpc_container_next(&r, &c)) < 0 ||
            (k = rpc_get_bytes(&r, 96, 96, &sig)) < 0 || (k = rpc_container_next(&r, &c)) != 0 ||
            (k = rpc_reader_end(&r)) < 0)
                return k < 0 ? k : -EBADMSG;

        rpc_reader_init_doc(&pr, prot.ptr, prot.len, &doc_limits);
        if ((k = rpc_get_map_begin(&pr, 4, &pm)) < 0 || (k = rpc_container_next(&pr, &pm)) != 1 ||
            (k = rpc_get_uint(&pr, 255, &key)) < 0 ||
            (k = rpc_get_int(&pr, INT64_MIN, INT64_MAX, &alg)) < 0 ||
            (k = rpc_container_next(&pr, &pm)) != 0 || (k = rpc_reader_end(&pr)) < 0)
                return k < 0 ? k : -EBADMSG;
        if (key != 1 || alg != -35)
                return -EBADMSG;
        *ret_payload = payload;
        return 0;
}

static void check_att(const struct att *a) {
        ASSERT_EQ(a->seen, 63u);
        ASSERT_STREQ(a->digest, "SHA384");
        ASSERT_TRUE(strncmp(a->module_id, "i-", 2) == 0);
        ASSERT_TRUE(a->timestamp > UINT64_C(1600000000000));
        ASSERT_EQ(a->n_pcrs, 16);
        ASSERT_EQ(a->n_cabundle, 4);
        ASSERT_TRUE(a->cert_len > 300);
}

static void test_nitro_documents(void) {
        for (size_t i = 0; i < ELEMENTSOF(nitro_docs); i++) {
                _cleanup_free_ uint8_t *doc = NULL;
                struct doc_walk_stats st = {};
                struct rpc_slice payload;
                struct rpc_reader r;
                struct att a = {};
                size_t n = 0;

                doc = load_doc(nitro_docs[i], &n);
                ASSERT_TRUE(doc != NULL);
                printf("# %s\n", nitro_docs[i]);

                /* field by field */
                ASSERT_OK(cose_sign1(doc, n, &payload));
                ASSERT_OK(att_payload(payload.ptr, payload.len, &a));
                check_att(&a);

                /* every item through the typed calls, then skipped whole, in both modes (real
                 * documents up to now are definite throughout) */
                rpc_reader_init_doc(&r, doc, n, &doc_limits);
                ASSERT_OK(doc_walk(&r, walk_buf, &st));
                ASSERT_OK(rpc_reader_end(&r));
                ASSERT_EQ(st.items, 1 + 4); /* the array and its 4 elements... */
                ASSERT_EQ(st.strings, 3);   /* ...3 of them bytes */
                rpc_reader_init_doc(&r, doc, n, &doc_limits);
                ASSERT_OK(rpc_skip(&r));
                ASSERT_OK(rpc_reader_end(&r));
                rpc_reader_init(&r, doc, n);
                ASSERT_OK(rpc_skip(&r));
                ASSERT_OK(rpc_reader_end(&r));

                /* the payload walked item by item: 9 keys, 16 PCRs, 4 CA certificates */
                st = (struct doc_walk_stats){};
                rpc_reader_init_doc(&r, payload.ptr, payload.len, &doc_limits);
                ASSERT_OK(doc_walk(&r, walk_buf, &st));
                ASSERT_OK(rpc_reader_end(&r));
                ASSERT_EQ(st.items, 1 + 9 + 3 + 1 + 2 * 16 + 1 + 1 + 4 + 3);

                /* every truncation fails, never reads past the end */
                for (size_t cut = 0; cut < n; cut += 97) {
                        rpc_reader_init_doc(&r, doc, cut, &doc_limits);
                        ASSERT_ERR(rpc_skip(&r), -EBADMSG);
                        ASSERT_TRUE(cose_sign1(doc, cut, &payload) < 0);
                }
        }
}

static void test_nitro_values(void) {
        _cleanup_free_ uint8_t *doc = NULL;
        struct rpc_slice payload;
        struct att a = {};
        size_t n = 0;

        /* ../shared/test-vectors/nitro/EXPECTED.md */
        doc = load_doc("blocky_nitrite_2024-09-07_prod.cose", &n);
        ASSERT_TRUE(doc != NULL);
        ASSERT_EQ(n, 7539);
        ASSERT_OK(cose_sign1(doc, n, &payload));
        ASSERT_OK(att_payload(payload.ptr, payload.len, &a));
        ASSERT_STREQ(a.module_id, "i-0a22e5c5f24d22174-enc0191cceb4289903f");
        ASSERT_EQ(a.timestamp, UINT64_C(1725719859545));
        ASSERT_EQ(a.public_key, 1024);
        ASSERT_EQ(a.user_data, 1024);
        ASSERT_EQ(a.nonce, 1024);

        free(doc);
        doc = load_doc("evervault_2023-09-18_debug.cose", &n);
        ASSERT_TRUE(doc != NULL);
        a = (struct att){};
        ASSERT_OK(cose_sign1(doc, n, &payload));
        ASSERT_OK(att_payload(payload.ptr, payload.len, &a));
        ASSERT_EQ(a.timestamp, UINT64_C(1695049410860));
        ASSERT_EQ(a.public_key, -1); /* null */
        ASSERT_EQ(a.user_data, 91);
        ASSERT_EQ(a.nonce, 256);
}

/* The same document as 2026 hardware sends it: the payload map indefinite (bf ... ff), and the
 * whole COSE array tagged 18. Accepted by the document mode only. */
static void test_nitro_indefinite_payload(void) {
        _cleanup_free_ uint8_t *doc = NULL, *ind = NULL, *cose = NULL;
        struct rpc_slice payload;
        struct rpc_reader r;
        struct att a = {};
        size_t n = 0, pn, cn;

        doc = load_doc("capejs_spec_2022-09-15_prod.cose", &n);
        ASSERT_TRUE(doc != NULL);
        ASSERT_OK(cose_sign1(doc, n, &payload));
        ASSERT_EQ(payload.ptr[0], 0xa9);

        pn = payload.len + 1;
        ind = malloc(pn);
        ASSERT_TRUE(ind != NULL);
        memcpy(ind, payload.ptr, payload.len);
        ind[0] = 0xbf;
        ind[pn - 1] = 0xff;
        ASSERT_OK(att_payload(ind, pn, &a));
        check_att(&a);
        rpc_reader_init(&r, ind, pn);
        ASSERT_ERR(rpc_skip(&r), -EBADMSG); /* our protocol's mode refuses */
        ind[pn - 1] = 0x00;                 /* no break: a tenth key 0 without a value */
        ASSERT_TRUE(att_payload(ind, pn, &a) < 0);
        ASSERT_TRUE(att_payload(ind, pn - 1, &a) < 0); /* no break at all */
        ind[pn - 1] = 0xff;

        /* d2 84 44 a1013822 a0 59 LLLL <payload> 58 60 <sig> */
        cn = 1 + 1 + 5 + 1 + 3 + pn + 2 + 96;
        cose = malloc(cn);
        ASSERT_TRUE(cose != NULL);
        memcpy(cose, (const uint8_t[]){ 0xd2, 0x84, 0x44, 0xa1, 0x01, 0x38, 0x22, 0xa0, 0x59 }, 9);
        cose[9] = (uint8_t) (pn >> 8);
        cose[10] = (uint8_t) pn;
        memcpy(cose + 11, ind, pn);
        memcpy(cose + 11 + pn, doc + n - 98, 98);
        ASSERT_OK(cose_sign1(cose, cn, &payload));
        ASSERT_EQ(payload.len, pn);
        a = (struct att){};
        ASSERT_OK(att_payload(payload.ptr, payload.len, &a));
        check_att(&a);
        cose[0] = 0xd1; /* tag 17: not COSE_Sign1 */
        ASSERT_ERR(cose_sign1(cose, cn, &payload), -EBADMSG);
}

/* ---- hand-made items ---- */

static void test_chunked_strings(void) {
        static const uint8_t bytes[] = { 0x5f, 0x42, 0x01, 0x02, 0x40, 0x41, 0x03, 0xff };
        static const uint8_t text[] = { 0x7f, 0x62, 'a', 'b', 0x61, 'c', 0xff };
        static const uint8_t empty[] = { 0x5f, 0xff };
        static const uint8_t mixed[] = { 0x5f, 0x61, 'a', 0xff };               /* a text chunk in bytes */
        static const uint8_t nested[] = { 0x5f, 0x5f, 0x41, 0x01, 0xff, 0xff }; /* chunks are definite */
        static const uint8_t unbroken[] = { 0x5f, 0x41, 0x01 };
        static const uint8_t bad_utf8[] = { 0x7f, 0x61, 0xc3, 0x61, 0xa4, 0xff }; /* a split sequence */
        uint8_t buf[8];
        struct rpc_slice s;
        struct rpc_reader r;
        size_t n = 0;

        DOC(&r, bytes);
        ASSERT_OK(rpc_get_bytes_copy(&r, 3, 8, buf, &n));
        ASSERT_EQ(n, 3);
        ASSERT_MEMEQ(buf, "\x01\x02\x03", 3);
        ASSERT_OK(rpc_reader_end(&r));
        DOC(&r, bytes);
        ASSERT_ERR(rpc_get_bytes_copy(&r, 0, 2, buf, &n), -EBADMSG); /* longer than max */
        DOC(&r, bytes);
        ASSERT_ERR(rpc_get_bytes_copy(&r, 4, 8, buf, &n), -EBADMSG); /* shorter than min */
        DOC(&r, bytes);
        ASSERT_ERR(rpc_get_bytes(&r, 0, 8, &s), -EBADMSG); /* no single slice */
        rpc_reader_init(&r, bytes, sizeof(bytes));
        ASSERT_ERR(rpc_get_bytes_copy(&r, 0, 8, buf, &n), -EBADMSG); /* our protocol refuses */
        DOC(&r, bytes);
        ASSERT_OK(rpc_skip(&r));
        ASSERT_OK(rpc_reader_end(&r));

        DOC(&r, text);
        ASSERT_OK(rpc_get_text_copy(&r, 0, 8, (char *) buf, &n));
        ASSERT_EQ(n, 3);
        ASSERT_MEMEQ(buf, "abc", 3);
        DOC(&r, text);
        ASSERT_ERR(rpc_get_bytes_copy(&r, 0, 8, buf, &n), -EBADMSG); /* wrong type */

        DOC(&r, empty);
        ASSERT_OK(rpc_get_bytes_copy(&r, 0, 8, buf, &n));
        ASSERT_EQ(n, 0);

        DOC(&r, mixed);
        ASSERT_ERR(rpc_get_bytes_copy(&r, 0, 8, buf, &n), -EBADMSG);
        DOC(&r, mixed);
        ASSERT_ERR(rpc_skip(&r), -EBADMSG);
        DOC(&r, nested);
        ASSERT_ERR(rpc_get_bytes_copy(&r, 0, 8, buf, &n), -EBADMSG);
        DOC(&r, nested);
        ASSERT_ERR(rpc_skip(&r), -EBADMSG);
        DOC(&r, unbroken);
        ASSERT_ERR(rpc_get_bytes_copy(&r, 0, 8, buf, &n), -EBADMSG);
        DOC(&r, unbroken);
        ASSERT_ERR(rpc_skip(&r), -EBADMSG);
        DOC(&r, bad_utf8);
        ASSERT_ERR(rpc_get_text_copy(&r, 0, 8, (char *) buf, &n), -EBADMSG);
}

static void test_chunk_caps(void) {
        static const struct rpc_reader_limits lim = { .depth = 4, .count = 3, .len = 4 };
        static const uint8_t four_chunks[] = { 0x5f, 0x40, 0x40, 0x40, 0x40, 0xff };
        static const uint8_t three_chunks[] = { 0x5f, 0x41, 0x01, 0x40, 0x41, 0x02, 0xff };
        static const uint8_t five_bytes[] = { 0x5f, 0x43, 1, 2, 3, 0x42, 4, 5, 0xff };
        static const uint8_t long_definite[] = { 0x45, 1, 2, 3, 4, 5 };
        uint8_t buf[16];
        struct rpc_reader r;
        size_t n;

        rpc_reader_init_doc(&r, four_chunks, sizeof(four_chunks), &lim);
        ASSERT_ERR(rpc_get_bytes_copy(&r, 0, 16, buf, &n), -EBADMSG);
        rpc_reader_init_doc(&r, four_chunks, sizeof(four_chunks), &lim);
        ASSERT_ERR(rpc_skip(&r), -EBADMSG);
        rpc_reader_init_doc(&r, three_chunks, sizeof(three_chunks), &lim);
        ASSERT_OK(rpc_skip(&r));
        rpc_reader_init_doc(&r, five_bytes, sizeof(five_bytes), &lim);
        ASSERT_ERR(rpc_skip(&r), -EBADMSG); /* 5 bytes in all > lim.len */
        rpc_reader_init_doc(&r, five_bytes, sizeof(five_bytes), &lim);
        ASSERT_ERR(rpc_get_bytes_copy(&r, 0, 16, buf, &n), -EBADMSG);
        rpc_reader_init_doc(&r, long_definite, sizeof(long_definite), &lim);
        ASSERT_ERR(rpc_skip(&r), -EBADMSG);
}

static void test_indefinite_containers(void) {
        static const uint8_t arr[] = { 0x9f, 0x01, 0x9f, 0xff, 0x03, 0xff };
        static const uint8_t map[] = { 0xbf, 0x61, 'a', 0x01, 0x61, 'b', 0x9f, 0xff, 0xff };
        static const uint8_t odd_map[] = { 0xbf, 0x01, 0xff };
        static const uint8_t unbroken[] = { 0xbf, 0x01, 0x02 };
        static const uint8_t stray_break[] = { 0x82, 0x01, 0xff };
        static const uint8_t lone_break[] = { 0xff };
        struct rpc_container c;
        struct rpc_reader r;
        uint64_t v;
        size_t n = 0;

        DOC(&r, arr);
        ASSERT_OK(rpc_get_array_begin(&r, 3, &c));
        ASSERT_TRUE(c.indefinite);
        ASSERT_EQ(rpc_container_next(&r, &c), 1);
        ASSERT_OK(rpc_get_uint(&r, 10, &v));
        ASSERT_EQ(rpc_container_next(&r, &c), 1);
        ASSERT_OK(rpc_skip(&r));
        ASSERT_EQ(rpc_container_next(&r, &c), 1);
        ASSERT_OK(rpc_get_uint(&r, 10, &v));
        ASSERT_EQ(v, 3);
        ASSERT_EQ(rpc_container_next(&r, &c), 0);
        ASSERT_OK(rpc_reader_end(&r));

        DOC(&r, arr); /* more elements than max */
        ASSERT_OK(rpc_get_array_begin(&r, 2, &c));
        ASSERT_EQ(rpc_container_next(&r, &c), 1);
        ASSERT_OK(rpc_get_uint(&r, 10, &v));
        ASSERT_EQ(rpc_container_next(&r, &c), 1);
        ASSERT_OK(rpc_skip(&r));
        ASSERT_ERR(rpc_container_next(&r, &c), -EBADMSG);

        DOC(&r, arr); /* a container left open */
        ASSERT_OK(rpc_get_array_begin(&r, 3, &c));
        ASSERT_ERR(rpc_reader_end(&r), -EBADMSG);

        rpc_reader_init(&r, arr, sizeof(arr)); /* our protocol refuses */
        ASSERT_ERR(rpc_get_array(&r, 3, &n), -EBADMSG);
        rpc_reader_init(&r, arr, sizeof(arr));
        ASSERT_ERR(rpc_get_array_begin(&r, 3, &c), -EBADMSG);
        DOC(&r, arr); /* rpc_get_array() is for definite counts in any mode */
        ASSERT_ERR(rpc_get_array(&r, 3, &n), -EBADMSG);

        DOC(&r, map);
        ASSERT_OK(rpc_skip(&r));
        ASSERT_OK(rpc_reader_end(&r));
        DOC(&r, odd_map);
        ASSERT_ERR(rpc_skip(&r), -EBADMSG);
        DOC(&r, unbroken);
        ASSERT_ERR(rpc_skip(&r), -EBADMSG);
        DOC(&r, unbroken);
        ASSERT_OK(rpc_get_map_begin(&r, 4, &c));
        ASSERT_EQ(rpc_container_next(&r, &c), 1);
        ASSERT_OK(rpc_get_uint(&r, 10, &v));
        ASSERT_OK(rpc_get_uint(&r, 10, &v));
        ASSERT_ERR(rpc_container_next(&r, &c), -EBADMSG); /* the end instead of a break */

        DOC(&r, stray_break);
        ASSERT_ERR(rpc_skip(&r), -EBADMSG);
        DOC(&r, lone_break);
        ASSERT_ERR(rpc_skip(&r), -EBADMSG);
}

static void test_count_caps(void) {
        static const struct rpc_reader_limits lim = { .depth = 4, .count = 2, .len = 16 };
        static const uint8_t three[] = { 0x9f, 0x01, 0x02, 0x03, 0xff };
        static const uint8_t three_pairs[] = { 0xbf, 1, 1, 2, 2, 3, 3, 0xff };
        static const uint8_t def_three[] = { 0x83, 0x01, 0x02, 0x03 };
        static const uint8_t huge[] = { 0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
        static const uint8_t more_than_left[] = { 0x9a, 0x00, 0x01, 0x00, 0x00, 0x01 };
        struct rpc_container c;
        struct rpc_reader r;

        rpc_reader_init_doc(&r, three, sizeof(three), &lim);
        ASSERT_ERR(rpc_skip(&r), -EBADMSG);
        rpc_reader_init_doc(&r, three_pairs, sizeof(three_pairs), &lim);
        ASSERT_ERR(rpc_skip(&r), -EBADMSG);
        rpc_reader_init_doc(&r, def_three, sizeof(def_three), &lim);
        ASSERT_ERR(rpc_skip(&r), -EBADMSG);
        rpc_reader_init_doc(&r, def_three, sizeof(def_three), &lim);
        ASSERT_ERR(rpc_get_array_begin(&r, 10, &c), -EBADMSG);
        rpc_reader_init_doc(&r, three, sizeof(three), &lim);
        ASSERT_OK(rpc_get_array_begin(&r, 10, &c));
        ASSERT_EQ(rpc_container_next(&r, &c), 1);
        ASSERT_OK(rpc_skip(&r));
        ASSERT_EQ(rpc_container_next(&r, &c), 1);
        ASSERT_OK(rpc_skip(&r));
        ASSERT_ERR(rpc_container_next(&r, &c), -EBADMSG); /* lim.count */
        DOC(&r, huge);
        ASSERT_ERR(rpc_skip(&r), -EBADMSG);
        DOC(&r, more_than_left);
        ASSERT_ERR(rpc_skip(&r), -EBADMSG);
}

static void test_depth(void) {
        uint8_t deep[2 * RPC_READER_DEPTH_MAX + 2];
        struct rpc_reader_limits lim = { .depth = 3, .count = 8, .len = 8 };
        struct rpc_container c;
        struct rpc_reader r;

        /* [[[0]]] within 3, [[[[0]]]] past it */
        memset(deep, 0x81, sizeof(deep));
        deep[3] = 0x00;
        rpc_reader_init_doc(&r, deep, 4, &lim);
        ASSERT_OK(rpc_skip(&r));
        ASSERT_OK(rpc_reader_end(&r));
        deep[3] = 0x81;
        deep[4] = 0x00;
        rpc_reader_init_doc(&r, deep, 5, &lim);
        ASSERT_ERR(rpc_skip(&r), -EBADMSG);
        /* the same with indefinite arrays */
        memset(deep, 0x9f, 3);
        deep[3] = 0x00;
        memset(deep + 4, 0xff, 3);
        rpc_reader_init_doc(&r, deep, 7, &lim);
        ASSERT_OK(rpc_skip(&r));
        memset(deep, 0x9f, 4);
        deep[4] = 0x00;
        memset(deep + 5, 0xff, 4);
        rpc_reader_init_doc(&r, deep, 9, &lim);
        ASSERT_ERR(rpc_skip(&r), -EBADMSG);
        /* the walk's containers count too */
        memset(deep, 0x81, 4);
        deep[4] = 0x00;
        rpc_reader_init_doc(&r, deep, 5, &lim);
        ASSERT_OK(rpc_get_array_begin(&r, 1, &c));
        ASSERT_EQ(rpc_container_next(&r, &c), 1);
        ASSERT_ERR(rpc_skip(&r), -EBADMSG); /* 1 open + 3 more */
        /* the hard cap, whatever the caller asks */
        lim.depth = 1000;
        memset(deep, 0x81, sizeof(deep));
        deep[RPC_READER_DEPTH_MAX] = 0x00;
        rpc_reader_init_doc(&r, deep, RPC_READER_DEPTH_MAX + 1, &lim);
        ASSERT_OK(rpc_skip(&r));
        deep[RPC_READER_DEPTH_MAX] = 0x81;
        deep[RPC_READER_DEPTH_MAX + 1] = 0x00;
        rpc_reader_init_doc(&r, deep, RPC_READER_DEPTH_MAX + 2, &lim);
        ASSERT_ERR(rpc_skip(&r), -EBADMSG);
        rpc_reader_init(&r, deep, RPC_READER_DEPTH_MAX + 2);
        ASSERT_ERR(rpc_skip(&r), -EBADMSG);
}

static void test_ints_tags_null(void) {
        static const uint8_t alg[] = { 0x38, 0x22 };
        static const uint8_t min64[] = { 0x3b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
        static const uint8_t below64[] = { 0x3b, 0x80, 0, 0, 0, 0, 0, 0, 0 };
        static const uint8_t big_uint[] = { 0x1b, 0x80, 0, 0, 0, 0, 0, 0, 0 };
        static const uint8_t tagged[] = { 0xd8, 0x18, 0x41, 0xa0 }; /* 24(h'a0'): embedded CBOR */
        /* tags 6, 18 (COSE_Sign1), 20 and 21: libcbor 0.8 alone rejects the first three heads */
        static const uint8_t tags[] = { 0xc6, 0xd2, 0xd4, 0xd5, 0xf6 };
        static const uint8_t null[] = { 0xf6 };
        static const uint8_t floats[] = { 0x83, 0xf9, 0x3c, 0x00, 0xfa, 0, 0, 0, 0, 0xf7 };
        enum rpc_item_type t;
        struct rpc_slice s;
        struct rpc_reader r;
        uint64_t u;
        int64_t v;

        DOC(&r, alg);
        ASSERT_OK(rpc_peek(&r, &t));
        ASSERT_EQ(t, RPC_ITEM_NEGINT);
        ASSERT_OK(rpc_get_int(&r, INT64_MIN, INT64_MAX, &v));
        ASSERT_EQ(v, -35);
        DOC(&r, alg);
        ASSERT_ERR(rpc_get_int(&r, -34, 0, &v), -EBADMSG);
        DOC(&r, alg);
        ASSERT_ERR(rpc_get_uint(&r, UINT64_MAX, &u), -EBADMSG);
        DOC(&r, min64);
        ASSERT_OK(rpc_get_int(&r, INT64_MIN, 0, &v));
        ASSERT_TRUE(v == INT64_MIN);
        DOC(&r, below64);
        ASSERT_ERR(rpc_get_int(&r, INT64_MIN, 0, &v), -EBADMSG);
        DOC(&r, below64);
        ASSERT_OK(rpc_skip(&r)); /* well-formed, just not an int64 */
        DOC(&r, big_uint);
        ASSERT_ERR(rpc_get_int(&r, INT64_MIN, INT64_MAX, &v), -EBADMSG);
        DOC(&r, big_uint);
        ASSERT_OK(rpc_get_uint(&r, UINT64_MAX, &u));

        DOC(&r, tagged);
        ASSERT_OK(rpc_get_tag(&r, &u));
        ASSERT_EQ(u, 24);
        ASSERT_OK(rpc_get_bytes(&r, 1, 1, &s));
        ASSERT_OK(rpc_reader_end(&r));
        DOC(&r, tags);
        ASSERT_OK(rpc_skip(&r));
        ASSERT_OK(rpc_reader_end(&r));
        DOC(&r, tags);
        ASSERT_ERR(rpc_get_null(&r), -EBADMSG);
        DOC(&r, tags);
        for (size_t i = 0; i < 4; i++) {
                ASSERT_OK(rpc_get_tag(&r, &u));
                ASSERT_EQ(u, ((const uint64_t[]){ 6, 18, 20, 21 })[i]);
        }
        ASSERT_OK(rpc_get_null(&r));
        ASSERT_OK(rpc_reader_end(&r));

        DOC(&r, null);
        ASSERT_OK(rpc_peek(&r, &t));
        ASSERT_EQ(t, RPC_ITEM_NULL);
        ASSERT_OK(rpc_get_null(&r));
        ASSERT_OK(rpc_reader_end(&r));
        ASSERT_ERR(rpc_peek(&r, &t), -EBADMSG); /* at the end */

        DOC(&r, floats);
        ASSERT_OK(rpc_skip(&r));
        ASSERT_OK(rpc_reader_end(&r));
}

static void test_text_keys(void) {
        static const uint8_t m[] = { 0xa2, 0x66, 'd', 'i', 'g', 'e', 's', 't', 0x01, 0x60, 0x02 };
        struct rpc_container c;
        struct rpc_slice key;
        struct rpc_reader r;
        uint64_t v;

        DOC(&r, m);
        ASSERT_OK(rpc_get_map_begin(&r, 2, &c));
        ASSERT_EQ(rpc_container_next(&r, &c), 1);
        ASSERT_OK(rpc_get_text(&r, 0, 16, &key));
        ASSERT_TRUE(rpc_slice_eq_str(&key, "digest"));
        ASSERT_FALSE(rpc_slice_eq_str(&key, "diges"));
        ASSERT_FALSE(rpc_slice_eq_str(&key, "digests"));
        ASSERT_OK(rpc_get_uint(&r, 1, &v));
        ASSERT_EQ(rpc_container_next(&r, &c), 1);
        ASSERT_OK(rpc_get_text(&r, 0, 16, &key));
        ASSERT_TRUE(rpc_slice_eq_str(&key, ""));
        ASSERT_OK(rpc_get_uint(&r, 2, &v));
        ASSERT_EQ(rpc_container_next(&r, &c), 0);
        ASSERT_OK(rpc_reader_end(&r));
        DOC(&r, m);
        ASSERT_ERR(rpc_get_map_begin(&r, 1, &c), -EBADMSG); /* more pairs than max */
}

static void test_sticky_and_trailing(void) {
        static const uint8_t two[] = { 0x01, 0x02 };
        struct rpc_reader r;
        uint64_t v;

        DOC(&r, two);
        ASSERT_OK(rpc_skip(&r));
        ASSERT_ERR(rpc_reader_end(&r), -EBADMSG); /* trailing */
        ASSERT_ERR(rpc_get_null(&r), -EBADMSG);
        ASSERT_ERR(rpc_get_uint(&r, 10, &v), -EBADMSG); /* sticky, though 0x02 is a uint */
        ASSERT_ERR(rpc_skip(&r), -EBADMSG);
}

TAP_MAIN(TEST("/cbor/read/nitro-documents", test_nitro_documents),
         TEST("/cbor/read/nitro-values", test_nitro_values),
         TEST("/cbor/read/nitro-indefinite-payload", test_nitro_indefinite_payload),
         TEST("/cbor/read/chunked-strings", test_chunked_strings),
         TEST("/cbor/read/chunk-caps", test_chunk_caps),
         TEST("/cbor/read/indefinite-containers", test_indefinite_containers),
         TEST("/cbor/read/count-caps", test_count_caps), TEST("/cbor/read/depth", test_depth),
         TEST("/cbor/read/ints-tags-null", test_ints_tags_null),
         TEST("/cbor/read/text-keys", test_text_keys),
         TEST("/cbor/read/sticky-trailing", test_sticky_and_trailing))
