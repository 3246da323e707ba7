/* attest/: the ten real Nitro documents (tests/data/nitro, copied from ../shared/test-vectors/nitro)
 * verify as of their timestamp with the values EXPECTED.md lists, fail with the right reason when
 * mutated, and documents made with the builder pass or fail as the rules say. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/pem.h>
#include <openssl/sha.h>

#include "attest/attest-build.h"
#include "attest/attest.h"
#include "common/cbor-write.h"
#include "common/cleanup-ssl.h"
#include "tests/lib/data.h"
#include "tests/lib/tap.h"

/* EXPECTED.md, one row per file. opt lengths: -1 null. */
struct vector {
        const char *file;
        size_t size;
        uint64_t timestamp;
        const char *module_id;
        const char *pcr0; /* hex */
        uint32_t nonzero; /* bitmask of non-zero PCRs */
        int public_key, user_data, nonce;
        const char *leaf_from, *leaf_to; /* UTC */
};

#define ZERO48 \
        "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"

static const struct vector vectors[] = {
        { "blocky_nitrite_2024-09-07_debug.cose", 7538, UINT64_C(1725719886508),
          "i-0a22e5c5f24d22174-enc0191ccebaf8feaba", ZERO48, 1u << 4, 1024, 1024, 1024,
          "2024-09-07T14:38:03Z", "2024-09-07T17:38:06Z" },
        { "blocky_nitrite_2024-09-07_prod.cose", 7539, UINT64_C(1725719859545),
          "i-0a22e5c5f24d22174-enc0191cceb4289903f",
          "e72a46ca80a260fb044a125442f0c7e331813bcbaf9724d9f3857758992766f2d65710a27aa94ae3949dd54e7c9fe86a",
          0x17, 1024, 1024, 1024, "2024-09-07T14:37:36Z", "2024-09-07T17:37:39Z" },
        { "capejs_isomorphic_2022-07-14_debug.cose", 4432, UINT64_C(1657831567740),
          "i-029e0eacb65267caa-enc0181fe7484f74a24", ZERO48, 1u << 4, 32, -1, 6, "2022-07-14T20:46:04Z",
          "2022-07-14T23:46:07Z" },
        { "capejs_spec_2022-09-15_prod.cose", 4690, UINT64_C(1663263808848),
          "i-0697c9729fa547b20-enc0183422ede9a5dc8",
          "ea4212ee889ba1b4dbfe744aadecca8b1930de60a3a1ce3b0c79f42b231700fc561c3d9b34f0565ed9eb6f460996624c",
          0x11f, 32, 250, 12, "2022-09-15T17:43:24Z", "2022-09-15T20:43:27Z" },
        { "evervault_2023-09-18_debug.cose", 4748, UINT64_C(1695049410860),
          "i-0918f6c55e3b61d89-enc018aa8b8e2285d13", ZERO48, 0x18, -1, 91, 256, "2023-09-18T14:37:09Z",
          "2023-09-18T17:37:12Z" },
        { "evervault_beta_2022-10-12_debug.cose", 4426, UINT64_C(1665582606081),
          "i-03ad7cdb817437eeb-enc0183cc7569b3f6e1", ZERO48, 0x18, 19, 13, -1, "2022-10-12T13:49:51Z",
          "2022-10-12T16:49:54Z" },
        { "marlin_risczero_2024-12-13_prod.cose", 4535, UINT64_C(1734075478960),
          "i-0f1cd77d37fd8bcc9-enc018e7aa61e2040ff",
          "189038eccf28a3a098949e402f3b3d86a876f4915c5b02d546abb5d8c507ceb1755b8192d8cfca66e8f226160ca4c7a6",
          0x17, 64, -1, -1, "2024-12-13T05:57:42Z", "2024-12-13T08:57:45Z" },
        { "marlin_verifier_2024-08-07_prod.cose", 4532, UINT64_C(1723012689640),
          "i-084e1dd2f1b2c529b-enc0190fecc5b166251",
          "5fec1b73727425848d725d68f4a062c634061a035067bd0b9a6dc73e25ed5013dfe7ccbf8a7e9857eceb0841c4cb6ae6",
          0x17, 64, -1, -1, "2024-08-07T06:38:06Z", "2024-08-07T09:38:09Z" },
        { "sparsity_1_2024-08-16_debug.cose", 4620, UINT64_C(1723799509167),
          "i-07fd4cc4df935eab0-enc01915a74e6ed4aa6", ZERO48, 0x18, 139, 17, 4, "2024-08-16T09:11:46Z",
          "2024-08-16T12:11:49Z" },
        { "sparsity_2_2023-09-28_prod.cose", 4766, UINT64_C(1695899307117),
          "i-015531f954c54297c-enc018adb700a324d32",
          "ca78fbe0b97bbfe1895dd713639dffcbdd21da5c7e05b8d90fe57a4e122414edc0f677d673df31fee1c16a7b34c16f36",
          0x1f, -1, 290, 32, "2023-09-28T11:08:24Z", "2023-09-28T14:08:27Z" },
};

static uint8_t *load_vector(const char *name, size_t *ret_len) {
        char rel[256];

        (void) snprintf(rel, sizeof(rel), "nitro/%s", name);
        return (uint8_t *) test_data_load(rel, ret_len);
}

static int unhex(const char *s, uint8_t *out, size_t size) {
        size_t n = strlen(s);

        if (n % 2 || n / 2 > size)
                return -EINVAL;
        for (size_t i = 0; i < n / 2; i++) {
                unsigned v;

                if (sscanf(s + 2 * i, "%2x", &v) != 1)
                        return -EINVAL;
                out[i] = (uint8_t) v;
        }
        return (int) (n / 2);
}

static uint64_t utc_ms(const char *iso) {
        struct tm tm = {};

        if (!strptime(iso, "%Y-%m-%dT%H:%M:%SZ", &tm))
                return 0;
        return (uint64_t) timegm(&tm) * 1000;
}

static int verify_at(const uint8_t *doc, size_t len, enum attest_time_mode mode, uint64_t ms,
                     struct attest_result *res) {
        const struct attest_opts o = { .time_mode = mode, .time_ms = ms };
        int r;

        r = attest_verify(doc, len, &o, res);
        if (r < 0)
                printf("# -> %s: %s (field %s, offset %zu, x509 error %d at depth %d)\n",
                       attest_reason_to_string(res->reason), res->detail ?: "-", res->field ?: "-",
                       res->offset, res->x509_error, res->x509_depth);
        return r;
}

static bool opt_is(const struct attest_opt *o, int expected) {
        if (expected < 0)
                return o->kind == ATTEST_OPT_NULL && o->ptr == NULL && o->len == 0;
        return o->kind == ATTEST_OPT_BYTES && o->len == (size_t) expected;
}

/* ---- the pinned root ---- */

static void test_pinned_root(void) {
        static const char fingerprint[] = "641A0321A3E244EFE456463195D606317ED7CDCC3C1756E09893F3C68F79BB5B";
        _cleanup_free_ char *pem = NULL;
        _cleanup_(BIO_free_allp) BIO *bio = NULL;
        _cleanup_(X509_freep) X509 *x = NULL;
        uint8_t *der = NULL, md[SHA256_DIGEST_LENGTH], want[SHA256_DIGEST_LENGTH];
        size_t n;
        int der_len;

        pem = test_data_load("nitro/AWS_NitroEnclaves_Root-G1.pem", &n);
        ASSERT_TRUE(pem != NULL);
        bio = BIO_new_mem_buf(pem, (int) n);
        ASSERT_TRUE(bio != NULL);
        x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        ASSERT_TRUE(x != NULL);
        der_len = i2d_X509(x, &der);
        ASSERT_TRUE(der_len > 0);
        ASSERT_EQ(der_len, attest_aws_root_len);
        ASSERT_TRUE(memcmp(der, attest_aws_root_der, attest_aws_root_len) == 0);
        OPENSSL_free(der);
        SHA256(attest_aws_root_der, attest_aws_root_len, md);
        ASSERT_EQ(unhex(fingerprint, want, sizeof(want)), (int) sizeof(want));
        ASSERT_MEMEQ(md, want, sizeof(md));
}

static void test_reason_names(void) {
        ASSERT_STREQ(attest_reason_to_string(ATTEST_OK), "ok");
        ASSERT_STREQ(attest_reason_to_string(ATTEST_ERR_MALFORMED), "malformed");
        ASSERT_STREQ(attest_reason_to_string(ATTEST_ERR_SIGNATURE), "signature");
        ASSERT_STREQ(attest_reason_to_string(ATTEST_ERR_CHAIN), "chain");
        ASSERT_STREQ(attest_reason_to_string(ATTEST_ERR_EXPIRED), "expired");
        ASSERT_STREQ(attest_reason_to_string(ATTEST_ERR_ROOT), "root");
        ASSERT_STREQ(attest_reason_to_string(ATTEST_ERR_PCR), "pcr");
        ASSERT_TRUE(attest_reason_to_string(_ATTEST_REASON_MAX) == NULL);
        ASSERT_TRUE(attest_reason_to_string(_ATTEST_REASON_INVALID) == NULL);
}

static void test_empty_and_oversize(void) {
        static uint8_t big[ATTEST_DOC_MAX + 1];
        struct attest_result res;

        ASSERT_ERR(attest_parse(NULL, 0, &res), -EBADMSG);
        ASSERT_EQ(res.reason, ATTEST_ERR_MALFORMED);
        ASSERT_ERR(attest_verify(NULL, 0, NULL, &res), -EBADMSG);
        big[0] = 0x84;
        ASSERT_ERR(attest_parse(big, sizeof(big), &res), -EBADMSG);
        ASSERT_STREQ(res.field, "document (larger than 16384 bytes)");
        ASSERT_ERR(attest_parse(NULL, 1, &res), -EINVAL);
        ASSERT_EQ(res.reason, ATTEST_ERR_INTERNAL);
}

/* ---- the real documents ---- */

static void test_vectors_verify(void) {
        for (size_t i = 0; i < ELEMENTSOF(vectors); i++) {
                const struct vector *v = &vectors[i];
                _cleanup_free_ uint8_t *doc = NULL;
                struct attest_result res;
                uint8_t pcr0[48];
                uint32_t nonzero = 0;
                size_t n;

                printf("# %s\n", v->file);
                doc = load_vector(v->file, &n);
                ASSERT_TRUE(doc != NULL);
                ASSERT_EQ(n, v->size);
                ASSERT_OK(verify_at(doc, n, ATTEST_TIME_DOC, 0, &res));
                ASSERT_EQ(res.reason, ATTEST_OK);
                ASSERT_FALSE(res.doc.tagged);
                ASSERT_FALSE(res.doc.payload_indefinite);
                ASSERT_EQ(res.doc.timestamp_ms, v->timestamp);
                ASSERT_EQ(res.verify_time_ms, v->timestamp);
                ASSERT_EQ(res.doc.module_id.len, strlen(v->module_id));
                ASSERT_MEMEQ(res.doc.module_id.ptr, v->module_id, strlen(v->module_id));
                ASSERT_EQ(res.doc.digest.len, 6);
                ASSERT_MEMEQ(res.doc.digest.ptr, "SHA384", 6);
                ASSERT_EQ(res.doc.n_pcrs, 16);
                ASSERT_EQ(res.doc.n_cabundle, 4);
                ASSERT_EQ(res.doc.signature.len, 96);
                ASSERT_EQ(res.doc.protected_hdr.len, 4);
                ASSERT_EQ(unhex(v->pcr0, pcr0, sizeof(pcr0)), 48);
                for (size_t j = 0; j < res.doc.n_pcrs; j++) {
                        static const uint8_t zero[48];

                        ASSERT_EQ(res.doc.pcrs[j].index, j); /* contiguous from 0, in order */
                        ASSERT_EQ(res.doc.pcrs[j].len, 48);
                        if (memcmp(res.doc.pcrs[j].ptr, zero, 48) != 0)
                                nonzero |= 1u << j;
                }
                ASSERT_EQ(nonzero, v->nonzero);
                ASSERT_MEMEQ(res.doc.pcrs[0].ptr, pcr0, 48);
                ASSERT_TRUE(opt_is(&res.doc.public_key, v->public_key));
                ASSERT_TRUE(opt_is(&res.doc.user_data, v->user_data));
                ASSERT_TRUE(opt_is(&res.doc.nonce, v->nonce));
                ASSERT_EQ(res.doc.cabundle[0].len, attest_aws_root_len);
                ASSERT_MEMEQ(res.doc.cabundle[0].ptr, attest_aws_root_der, attest_aws_root_len);
        }
}

/* Inside the leaf's window it verifies; a second outside it, and today, it is EXPIRED. */
static void test_vectors_time(void) {
        for (size_t i = 0; i < ELEMENTSOF(vectors); i++) {
                const struct vector *v = &vectors[i];
                _cleanup_free_ uint8_t *doc = NULL;
                uint64_t from = utc_ms(v->leaf_from), to = utc_ms(v->leaf_to);
                struct attest_result res;
                size_t n;

                printf("# %s\n", v->file);
                ASSERT_TRUE(from > 0 && to > from);
                doc = load_vector(v->file, &n);
                ASSERT_TRUE(doc != NULL);
                ASSERT_OK(verify_at(doc, n, ATTEST_TIME_GIVEN, from, &res));
                /* OpenSSL treats notAfter as the first instant that is no longer valid */
                ASSERT_OK(verify_at(doc, n, ATTEST_TIME_GIVEN, to - 1000, &res));
                ASSERT_ERR(verify_at(doc, n, ATTEST_TIME_GIVEN, to + 1000, &res), -EKEYEXPIRED);
                ASSERT_EQ(res.reason, ATTEST_ERR_EXPIRED);
                ASSERT_EQ(res.x509_depth, 0); /* the leaf */
                ASSERT_ERR(verify_at(doc, n, ATTEST_TIME_GIVEN, from - 1000, &res), -EKEYEXPIRED);
                ASSERT_EQ(res.reason, ATTEST_ERR_EXPIRED);
                ASSERT_ERR(verify_at(doc, n, ATTEST_TIME_NOW, 0, &res), -EKEYEXPIRED);
                ASSERT_EQ(res.reason, ATTEST_ERR_EXPIRED);
                /* opts NULL: the pinned root, now */
                ASSERT_ERR(attest_verify(doc, n, NULL, &res), -EKEYEXPIRED);
                ASSERT_EQ(res.reason, ATTEST_ERR_EXPIRED);
        }
}

static void test_vectors_other_root(void) {
        _cleanup_(attest_test_ca_freep) struct attest_test_ca *ca = NULL;

        ASSERT_OK(attest_test_ca_new(0, INT32_MAX, &ca));
        for (size_t i = 0; i < ELEMENTSOF(vectors); i++) {
                _cleanup_free_ uint8_t *doc = NULL;
                struct attest_opts o = { .root_der = ca->root_der,
                                         .root_len = ca->root_len,
                                         .time_mode = ATTEST_TIME_DOC };
                struct attest_result res;
                size_t n;

                doc = load_vector(vectors[i].file, &n);
                ASSERT_TRUE(doc != NULL);
                ASSERT_ERR(attest_verify(doc, n, &o, &res), -EKEYREJECTED);
                ASSERT_EQ(res.reason, ATTEST_ERR_ROOT);
        }
}

static void flip(uint8_t *p, unsigned bit) {
        *p ^= (uint8_t) (1u << bit);
}

static void test_vectors_flips(void) {
        for (size_t i = 0; i < ELEMENTSOF(vectors); i++) {
                _cleanup_free_ uint8_t *doc = NULL;
                struct attest_result res, good;
                size_t n, off;

                printf("# %s\n", vectors[i].file);
                doc = load_vector(vectors[i].file, &n);
                ASSERT_TRUE(doc != NULL);
                ASSERT_OK(verify_at(doc, n, ATTEST_TIME_DOC, 0, &good));

                /* signature: first bit of r, last bit of s */
                off = (size_t) (good.doc.signature.ptr - doc);
                flip(doc + off, 7);
                ASSERT_ERR(verify_at(doc, n, ATTEST_TIME_DOC, 0, &res), -EKEYREJECTED);
                ASSERT_EQ(res.reason, ATTEST_ERR_SIGNATURE);
                flip(doc + off, 7);
                flip(doc + n - 1, 0);
                ASSERT_EQ(verify_at(doc, n, ATTEST_TIME_DOC, 0, &res), -EKEYREJECTED);
                ASSERT_EQ(res.reason, ATTEST_ERR_SIGNATURE);
                flip(doc + n - 1, 0);

                /* payload, in a PCR value: still well formed, no longer what was signed */
                off = (size_t) (good.doc.pcrs[5].ptr - doc) + 17;
                flip(doc + off, 3);
                ASSERT_EQ(verify_at(doc, n, ATTEST_TIME_DOC, 0, &res), -EKEYREJECTED);
                ASSERT_EQ(res.reason, ATTEST_ERR_SIGNATURE);
                flip(doc + off, 3);
                /* payload, in the module_id text: a byte that stays ASCII */
                off = (size_t) (good.doc.module_id.ptr - doc);
                flip(doc + off, 0);
                ASSERT_EQ(verify_at(doc, n, ATTEST_TIME_DOC, 0, &res), -EKEYREJECTED);
                ASSERT_EQ(res.reason, ATTEST_ERR_SIGNATURE);
                flip(doc + off, 0);
                /* payload, its map head: a9 -> a8 (8 pairs, then a stray key) */
                off = (size_t) (good.doc.payload.ptr - doc);
                ASSERT_EQ(doc[off], 0xa9);
                flip(doc + off, 0);
                ASSERT_EQ(verify_at(doc, n, ATTEST_TIME_DOC, 0, &res), -EBADMSG);
                ASSERT_EQ(res.reason, ATTEST_ERR_MALFORMED);
                ASSERT_TRUE(res.field != NULL);
                flip(doc + off, 0);

                /* each certificate: the last bit of its signature, then its first (SEQUENCE) byte */
                for (size_t c = 0; c <= good.doc.n_cabundle; c++) {
                        struct attest_blob b = c == 0 ? good.doc.certificate : good.doc.cabundle[c - 1];
                        enum attest_reason want = c == 1 ? ATTEST_ERR_ROOT : ATTEST_ERR_CHAIN;

                        printf("# certificate %zu\n", c);
                        off = (size_t) (b.ptr - doc) + b.len - 1;
                        flip(doc + off, 0);
                        ASSERT_EQ(verify_at(doc, n, ATTEST_TIME_DOC, 0, &res), -EKEYREJECTED);
                        ASSERT_EQ(res.reason, want);
                        flip(doc + off, 0);

                        off = (size_t) (b.ptr - doc);
                        flip(doc + off, 0); /* 0x30 -> 0x31 */
                        ASSERT_FAIL(verify_at(doc, n, ATTEST_TIME_DOC, 0, &res));
                        ASSERT_EQ(res.reason, c == 1 ? ATTEST_ERR_ROOT : ATTEST_ERR_MALFORMED);
                        if (c != 1)
                                ASSERT_EQ(res.offset, off);
                        flip(doc + off, 0);
                }
                ASSERT_OK(verify_at(doc, n, ATTEST_TIME_DOC, 0, &res));
        }
}

static void test_vectors_truncated(void) {
        for (size_t i = 0; i < ELEMENTSOF(vectors); i++) {
                _cleanup_free_ uint8_t *doc = NULL, *longer = NULL;
                struct attest_result res;
                size_t n;

                doc = load_vector(vectors[i].file, &n);
                ASSERT_TRUE(doc != NULL);
                for (size_t cut = 0; cut < n; cut++) {
                        /* a copy of exactly cut bytes, so ASan sees any read past the end */
                        _cleanup_free_ uint8_t *p = malloc(cut ? cut : 1);

                        ASSERT_TRUE(p != NULL);
                        memcpy(p, doc, cut);
                        const struct attest_opts o = { .time_mode = ATTEST_TIME_DOC };

                        if (attest_verify(p, cut, &o, &res) != -EBADMSG ||
                            res.reason != ATTEST_ERR_MALFORMED || !res.field)
                                TAP_FAIL_("%s truncated to %zu bytes: reason %d", vectors[i].file, cut,
                                          (int) res.reason);
                }
                longer = malloc(n + 1);
                ASSERT_TRUE(longer != NULL);
                memcpy(longer, doc, n);
                longer[n] = 0x00;
                ASSERT_ERR(verify_at(longer, n + 1, ATTEST_TIME_DOC, 0, &res), -EBADMSG);
                ASSERT_EQ(res.reason, ATTEST_ERR_MALFORMED);
                ASSERT_EQ(res.offset, n);
        }
}

/* One bit flipped at every byte: never accepted, always a known reason. Each byte set to 0x00 and
 * 0xff: the parser succeeds or says MALFORMED, never anything else. */
static void test_vectors_every_byte(void) {
        _cleanup_free_ uint8_t *doc = NULL;
        const struct attest_opts o = { .time_mode = ATTEST_TIME_DOC };
        size_t n, counts[_ATTEST_REASON_MAX] = {};
        struct attest_result res;

        doc = load_vector("evervault_beta_2022-10-12_debug.cose", &n);
        ASSERT_TRUE(doc != NULL);
        for (size_t i = 0; i < n; i++) {
                uint8_t saved = doc[i];
                int r;

                doc[i] ^= (uint8_t) (1u << (i % 8));
                r = attest_verify(doc, n, &o, &res);
                if (r >= 0 || res.reason == ATTEST_OK || !attest_reason_to_string(res.reason))
                        TAP_FAIL_("bit %zu of byte %zu flipped: r=%d reason %d", i % 8, i, r,
                                  (int) res.reason);
                counts[res.reason]++;
                for (int v = 0; v <= 0xff; v += 0xff) {
                        doc[i] = (uint8_t) v;
                        r = attest_parse(doc, n, &res);
                        if (r != 0 && (r != -EBADMSG || res.reason != ATTEST_ERR_MALFORMED || !res.field))
                                TAP_FAIL_("byte %zu set to 0x%02x: r=%d", i, v, r);
                }
                doc[i] = saved;
        }
        for (int k = 0; k < _ATTEST_REASON_MAX; k++)
                printf("# %s: %zu\n", attest_reason_to_string((enum attest_reason) k), counts[k]);
        /* the signature covers the payload, the root pin the first cabundle entry */
        ASSERT_TRUE(counts[ATTEST_ERR_MALFORMED] > 0);
        ASSERT_TRUE(counts[ATTEST_ERR_SIGNATURE] > 0);
        ASSERT_TRUE(counts[ATTEST_ERR_ROOT] > 0);
        ASSERT_TRUE(counts[ATTEST_ERR_CHAIN] > 0);
        ASSERT_OK(attest_verify(doc, n, &o, &res));
}

static void test_vectors_tagged(void) {
        _cleanup_free_ uint8_t *doc = NULL, *tagged = NULL;
        struct attest_result res;
        size_t n;

        doc = load_vector(vectors[0].file, &n);
        ASSERT_TRUE(doc != NULL);
        tagged = malloc(n + 1);
        ASSERT_TRUE(tagged != NULL);
        tagged[0] = 0xd2;
        memcpy(tagged + 1, doc, n);
        ASSERT_OK(verify_at(tagged, n + 1, ATTEST_TIME_DOC, 0, &res));
        ASSERT_TRUE(res.doc.tagged);
        tagged[0] = 0xd1; /* tag 17: COSE_Mac0 */
        ASSERT_ERR(verify_at(tagged, n + 1, ATTEST_TIME_DOC, 0, &res), -EBADMSG);
        ASSERT_STREQ(res.field, "tag (not 18 = COSE_Sign1)");
}

static void test_vectors_pcr_policy(void) {
        _cleanup_free_ uint8_t *doc = NULL;
        struct attest_pcr_expect e[17];
        uint8_t wrong[48];
        struct attest_result res, good;
        size_t n;

        doc = load_vector("capejs_spec_2022-09-15_prod.cose", &n);
        ASSERT_TRUE(doc != NULL);
        ASSERT_OK(verify_at(doc, n, ATTEST_TIME_DOC, 0, &good));
        for (size_t i = 0; i < 16; i++)
                e[i] = (struct attest_pcr_expect){ good.doc.pcrs[i].index, good.doc.pcrs[i].ptr, 48 };
        struct attest_opts o = { .time_mode = ATTEST_TIME_DOC, .pcrs = e, .n_pcrs = 16 };
        ASSERT_OK(attest_verify(doc, n, &o, &res));
        ASSERT_EQ(res.reason, ATTEST_OK);

        /* PCR8 as EXPECTED.md gives it, then one bit off */
        ASSERT_EQ(unhex("6f1ff0f2a7a0b1c4e02a3a544eb0ff2dffb8b2922b8908d46365c0f0120934092149ec35814c8d944ef"
                        "1b8fb564b4"
                        "6c7",
                        wrong, sizeof(wrong)),
                  48);
        e[0] = (struct attest_pcr_expect){ 8, wrong, 48 };
        o.n_pcrs = 1;
        ASSERT_OK(attest_verify(doc, n, &o, &res));
        wrong[47] ^= 1;
        ASSERT_ERR(attest_verify(doc, n, &o, &res), -EPERM);
        ASSERT_EQ(res.reason, ATTEST_ERR_PCR);
        ASSERT_EQ(res.pcr_index, 8);
        ASSERT_TRUE(res.pcr_expected.ptr == wrong);
        ASSERT_TRUE(res.pcr_actual.ptr == good.doc.pcrs[8].ptr);
        ASSERT_EQ(res.pcr_actual.len, 48);

        /* PCR16 is not in the document */
        e[0] = (struct attest_pcr_expect){ 16, wrong, 48 };
        ASSERT_ERR(attest_verify(doc, n, &o, &res), -EPERM);
        ASSERT_EQ(res.pcr_index, 16);
        ASSERT_TRUE(res.pcr_actual.ptr == NULL);
        /* a wrong length never matches */
        e[0] = (struct attest_pcr_expect){ 8, good.doc.pcrs[8].ptr, 32 };
        ASSERT_ERR(attest_verify(doc, n, &o, &res), -EPERM);
        /* an expectation out of range is the caller's error */
        e[0] = (struct attest_pcr_expect){ 32, wrong, 48 };
        ASSERT_ERR(attest_verify(doc, n, &o, &res), -EINVAL);
}

/* ---- built documents ---- */

#define T0 INT64_C(1765000000) /* 2025-12-06 */

struct fixture {
        struct attest_test_ca *ca;
        uint8_t pcr_bytes[32][64];
        struct attest_pcr_value pcrs[32];
        struct attest_blob bundle[2];
        struct attest_build b;
};

static void fixture_done(struct fixture *f) {
        f->ca = attest_test_ca_free(f->ca);
}

static int fixture_init(struct fixture *f) {
        int r;

        *f = (struct fixture){};
        r = attest_test_ca_new(T0 - 3600, T0 + 3600, &f->ca);
        if (r < 0)
                return r;
        for (unsigned i = 0; i < 32; i++) {
                memset(f->pcr_bytes[i], (int) i, sizeof(f->pcr_bytes[i]));
                f->pcrs[i] = (struct attest_pcr_value){ i, f->pcr_bytes[i], 48 };
        }
        f->bundle[0] = (struct attest_blob){ f->ca->root_der, f->ca->root_len };
        f->bundle[1] = (struct attest_blob){ f->ca->inter_der, f->ca->inter_len };
        f->b = (struct attest_build){
                .module_id = "i-00000000000000000-enc0000000000000000",
                .timestamp_ms = (uint64_t) T0 * 1000 + 123,
                .pcrs = f->pcrs,
                .n_pcrs = 16,
                .certificate = { f->ca->leaf_der, f->ca->leaf_len },
                .cabundle = f->bundle,
                .n_cabundle = 2,
                .public_key = { ATTEST_OPT_BYTES, (const uint8_t *) "spki", 4 },
                .user_data = { ATTEST_OPT_NULL },
                .nonce = { ATTEST_OPT_BYTES, (const uint8_t *) "", 0 },
        };
        return 0;
}

static int verify_built(const struct fixture *f, const uint8_t *doc, size_t n, struct attest_result *res) {
        const struct attest_opts o = { .root_der = f->ca->root_der,
                                       .root_len = f->ca->root_len,
                                       .time_mode = ATTEST_TIME_DOC };

        return attest_verify(doc, n, &o, res);
}

static void test_build_roundtrip(void) {
        _cleanup_(fixture_done) struct fixture f = {};
        struct attest_result res;

        ASSERT_OK(fixture_init(&f));
        for (int untagged = 0; untagged <= 1; untagged++) {
                _cleanup_free_ uint8_t *doc = NULL;
                size_t n;

                f.b.untagged = untagged;
                ASSERT_OK(attest_doc_sign(&f.b, f.ca->leaf_key, &doc, &n));
                ASSERT_EQ(doc[0], untagged ? 0x84 : 0xd2);
                ASSERT_OK(verify_built(&f, doc, n, &res));
                ASSERT_EQ(res.doc.tagged, !untagged);
                ASSERT_EQ(res.doc.timestamp_ms, f.b.timestamp_ms);
                ASSERT_EQ(res.doc.module_id.len, strlen(f.b.module_id));
                ASSERT_EQ(res.doc.n_pcrs, 16);
                ASSERT_MEMEQ(res.doc.pcrs[7].ptr, f.pcr_bytes[7], 48);
                ASSERT_EQ(res.doc.n_cabundle, 2);
                ASSERT_EQ(res.doc.certificate.len, f.ca->leaf_len);
                ASSERT_EQ(res.doc.public_key.kind, ATTEST_OPT_BYTES);
                ASSERT_EQ(res.doc.public_key.len, 4);
                ASSERT_MEMEQ(res.doc.public_key.ptr, "spki", 4);
                ASSERT_EQ(res.doc.user_data.kind, ATTEST_OPT_NULL);
                ASSERT_EQ(res.doc.nonce.kind, ATTEST_OPT_BYTES);
                ASSERT_EQ(res.doc.nonce.len, 0);
                /* the AWS root is not the test CA's */
                ASSERT_ERR(verify_at(doc, n, ATTEST_TIME_DOC, 0, &res), -EKEYREJECTED);
                ASSERT_EQ(res.reason, ATTEST_ERR_ROOT);
        }
        /* the hardware's key order and shapes */
        {
                _cleanup_free_ uint8_t *p = NULL;
                size_t pn;
                static const uint8_t head[] = { 0xa9, 0x69, 'm', 'o', 'd', 'u', 'l', 'e', '_', 'i', 'd' };

                ASSERT_OK(attest_payload_encode(&f.b, &p, &pn));
                ASSERT_MEMEQ(p, head, sizeof(head));
        }
}

static void test_build_times_and_keys(void) {
        _cleanup_(fixture_done) struct fixture f = {};
        _cleanup_(attest_test_ca_freep) struct attest_test_ca *other = NULL;
        _cleanup_free_ uint8_t *doc = NULL, *doc2 = NULL, *doc3 = NULL;
        struct attest_opts o;
        struct attest_result res;
        size_t n, n2, n3;

        ASSERT_OK(fixture_init(&f));
        ASSERT_OK(attest_doc_sign(&f.b, f.ca->leaf_key, &doc, &n));
        o = (struct attest_opts){ .root_der = f.ca->root_der,
                                  .root_len = f.ca->root_len,
                                  .time_mode = ATTEST_TIME_GIVEN,
                                  .time_ms = (uint64_t) (T0 + 3601) * 1000 };
        ASSERT_ERR(attest_verify(doc, n, &o, &res), -EKEYEXPIRED);
        ASSERT_EQ(res.reason, ATTEST_ERR_EXPIRED);
        o.time_ms = (uint64_t) (T0 - 3601) * 1000;
        ASSERT_ERR(attest_verify(doc, n, &o, &res), -EKEYEXPIRED);
        o.time_ms = (uint64_t) (T0 + 3599) * 1000;
        ASSERT_OK(attest_verify(doc, n, &o, &res));

        /* signed with the intermediate's key instead of the leaf's */
        ASSERT_OK(attest_doc_sign(&f.b, f.ca->inter_key, &doc2, &n2));
        ASSERT_ERR(verify_built(&f, doc2, n2, &res), -EKEYREJECTED);
        ASSERT_EQ(res.reason, ATTEST_ERR_SIGNATURE);

        /* an intermediate from another CA: no path from the leaf to the root */
        ASSERT_OK(attest_test_ca_new(T0 - 3600, T0 + 3600, &other));
        f.bundle[1] = (struct attest_blob){ other->inter_der, other->inter_len };
        ASSERT_OK(attest_doc_sign(&f.b, f.ca->leaf_key, &doc3, &n3));
        ASSERT_ERR(verify_built(&f, doc3, n3, &res), -EKEYREJECTED);
        ASSERT_EQ(res.reason, ATTEST_ERR_CHAIN);
        ASSERT_TRUE(res.detail != NULL);

        /* a P-256 key cannot sign ES384 */
        {
                _cleanup_(EVP_PKEY_freep) EVP_PKEY *p256 = EVP_EC_gen("P-256");
                _cleanup_free_ uint8_t *d = NULL;
                size_t dn;

                ASSERT_TRUE(p256 != NULL);
                ASSERT_ERR(attest_doc_sign(&f.b, p256, &d, &dn), -EINVAL);
        }
}

static void test_build_optional_kinds(void) {
        static const enum attest_opt_kind kinds[] = { ATTEST_OPT_ABSENT, ATTEST_OPT_NULL, ATTEST_OPT_BYTES };
        _cleanup_(fixture_done) struct fixture f = {};

        ASSERT_OK(fixture_init(&f));
        for (size_t i = 0; i < ELEMENTSOF(kinds); i++) {
                _cleanup_free_ uint8_t *doc = NULL;
                struct attest_result res;
                size_t n;

                f.b.public_key = (struct attest_opt){ kinds[i], (const uint8_t *) "", 0 };
                f.b.user_data = (struct attest_opt){ kinds[(i + 1) % 3], (const uint8_t *) "", 0 };
                f.b.nonce = (struct attest_opt){ kinds[(i + 2) % 3], (const uint8_t *) "", 0 };
                ASSERT_OK(attest_doc_sign(&f.b, f.ca->leaf_key, &doc, &n));
                ASSERT_OK(verify_built(&f, doc, n, &res));
                ASSERT_EQ(res.doc.public_key.kind, kinds[i]);
                ASSERT_EQ(res.doc.user_data.kind, kinds[(i + 1) % 3]);
                ASSERT_EQ(res.doc.nonce.kind, kinds[(i + 2) % 3]);
                ASSERT_EQ(res.doc.public_key.len, 0);
        }
        /* 1024 bytes accepted, 1025 not */
        {
                static uint8_t big[1025];
                _cleanup_free_ uint8_t *doc = NULL, *doc2 = NULL;
                struct attest_result res;
                size_t n, n2;

                f.b.user_data = (struct attest_opt){ ATTEST_OPT_BYTES, big, 1024 };
                ASSERT_OK(attest_doc_sign(&f.b, f.ca->leaf_key, &doc, &n));
                ASSERT_OK(verify_built(&f, doc, n, &res));
                f.b.user_data.len = 1025;
                ASSERT_OK(attest_doc_sign(&f.b, f.ca->leaf_key, &doc2, &n2));
                ASSERT_ERR(verify_built(&f, doc2, n2, &res), -EBADMSG);
                ASSERT_STREQ(res.field, "user_data (not null or 0..1024 bytes)");
        }
}

/* A payload with deliberate faults, written by hand. */
struct variant {
        const char *digest;
        size_t n_pcrs, pcr_len;
        int omit;        /* key index to leave out, -1 none */
        bool dup;        /* module_id twice */
        bool unknown;    /* an extra key "extra" */
        bool indefinite; /* bf ... ff */
        bool pcr_dup;    /* PCR 0 twice */
};

static void put_raw(struct rpc_writer *w, uint8_t b) {
        if (w->len < w->size)
                w->buf[w->len++] = b;
        else
                rpc_writer_fail(w, -EMSGSIZE);
}

static int variant_payload(const struct fixture *f, const struct variant *v, uint8_t *buf, size_t size,
                           size_t *ret_len) {
        static const char *const keys[] = { "module_id", "digest",      "timestamp",
                                            "pcrs",      "certificate", "cabundle" };
        struct rpc_writer w;
        size_t n = 6 - (v->omit >= 0) + v->dup + v->unknown;

        rpc_writer_init(&w, buf, size);
        if (v->indefinite)
                put_raw(&w, 0xbf);
        else
                rpc_put_map(&w, n);
        for (int k = 0; k < 6; k++) {
                if (k == v->omit)
                        continue;
                rpc_put_text(&w, keys[k], strlen(keys[k]));
                switch (k) {
                case 0: rpc_put_text(&w, f->b.module_id, strlen(f->b.module_id)); break;
                case 1: rpc_put_text(&w, v->digest, strlen(v->digest)); break;
                case 2: rpc_put_uint(&w, f->b.timestamp_ms); break;
                case 3:
                        rpc_put_map(&w, v->n_pcrs);
                        for (size_t i = 0; i < v->n_pcrs; i++) {
                                rpc_put_uint(&w, v->pcr_dup && i == 1 ? 0 : i);
                                rpc_put_bytes(&w, f->pcr_bytes[i], v->pcr_len);
                        }
                        break;
                case 4: rpc_put_bytes(&w, f->b.certificate.ptr, f->b.certificate.len); break;
                case 5:
                        rpc_put_array(&w, f->b.n_cabundle);
                        for (size_t i = 0; i < f->b.n_cabundle; i++)
                                rpc_put_bytes(&w, f->b.cabundle[i].ptr, f->b.cabundle[i].len);
                        break;
                }
        }
        if (v->dup) {
                rpc_put_text(&w, "module_id", 9);
                rpc_put_text(&w, "again", 5);
        }
        if (v->unknown) {
                rpc_put_text(&w, "extra", 5);
                rpc_put_uint(&w, 1);
        }
        if (v->indefinite)
                put_raw(&w, 0xff);
        *ret_len = w.len;
        return rpc_writer_finish(&w);
}

static int variant_verify(const struct fixture *f, const struct variant *v, struct attest_result *res) {
        static const uint8_t es384[] = { 0xa1, 0x01, 0x38, 0x22 };
        _cleanup_free_ uint8_t *doc = NULL;
        uint8_t payload[8192];
        size_t pn, n;
        int r;

        r = variant_payload(f, v, payload, sizeof(payload), &pn);
        if (r < 0)
                return r;
        r = attest_cose_sign1((struct attest_blob){ es384, 4 }, (struct attest_blob){ payload, pn }, true,
                              f->ca->leaf_key, &doc, &n);
        if (r < 0)
                return r;
        return verify_built(f, doc, n, res);
}

#define GOOD \
        { .digest = "SHA384", .n_pcrs = 16, .pcr_len = 48, .omit = -1 }

static void test_payload_variants(void) {
        _cleanup_(fixture_done) struct fixture f = {};
        struct attest_result res;
        struct variant v;

        ASSERT_OK(fixture_init(&f));
        v = (struct variant) GOOD;
        ASSERT_OK(variant_verify(&f, &v, &res));
        ASSERT_FALSE(res.doc.payload_indefinite);
        ASSERT_EQ(res.doc.public_key.kind, ATTEST_OPT_ABSENT);

        v = (struct variant) GOOD;
        v.indefinite = true;
        ASSERT_OK(variant_verify(&f, &v, &res));
        ASSERT_TRUE(res.doc.payload_indefinite);

        v = (struct variant) GOOD;
        v.n_pcrs = 32;
        ASSERT_OK(variant_verify(&f, &v, &res));
        ASSERT_EQ(res.doc.n_pcrs, 32);

        v = (struct variant) GOOD;
        v.dup = true;
        ASSERT_ERR(variant_verify(&f, &v, &res), -EBADMSG);
        ASSERT_STREQ(res.field, "payload key (duplicate)");

        v = (struct variant) GOOD;
        v.unknown = true;
        ASSERT_ERR(variant_verify(&f, &v, &res), -EBADMSG);
        ASSERT_STREQ(res.field, "payload key (unknown)");

        v = (struct variant) GOOD;
        v.pcr_len = 47;
        ASSERT_ERR(variant_verify(&f, &v, &res), -EBADMSG);
        ASSERT_STREQ(res.field, "pcrs (value not a byte string of 48 bytes)");
        v.pcr_len = 32; /* a SHA-256 length next to digest "SHA384" */
        ASSERT_ERR(variant_verify(&f, &v, &res), -EBADMSG);

        v = (struct variant) GOOD;
        v.n_pcrs = 15;
        ASSERT_ERR(variant_verify(&f, &v, &res), -EBADMSG);
        ASSERT_STREQ(res.field, "pcrs (PCRs 0..15 not all present)");

        v = (struct variant) GOOD;
        v.n_pcrs = 17;
        v.pcr_dup = true;
        ASSERT_ERR(variant_verify(&f, &v, &res), -EBADMSG);
        ASSERT_STREQ(res.field, "pcrs (duplicate index)");

        v = (struct variant) GOOD;
        v.digest = "SHA256";
        ASSERT_ERR(variant_verify(&f, &v, &res), -EBADMSG);
        ASSERT_STREQ(res.field, "digest (not \"SHA384\")");

        static const char *const missing[] = {
                "payload (module_id missing)",   "payload (digest missing)",
                "payload (timestamp missing)",   "payload (pcrs missing)",
                "payload (certificate missing)", "payload (cabundle missing)",
        };
        for (int k = 0; k < 6; k++) {
                v = (struct variant) GOOD;
                v.omit = k;
                ASSERT_ERR(variant_verify(&f, &v, &res), -EBADMSG);
                ASSERT_STREQ(res.field, missing[k]);
        }
}

static void test_protected_and_unprotected(void) {
        static const struct {
                uint8_t bytes[8];
                size_t len;
        } bad[] = {
                { { 0xa1, 0x01, 0x26 }, 3 },                         /* {1: -7} ES256 */
                { { 0xa1, 0x01, 0x20 }, 3 },                         /* {1: -1}, QEMU's */
                { { 0xa0 }, 1 },                                     /* {} */
                { { 0xa2, 0x01, 0x38, 0x22, 0x04, 0x40 }, 6 },       /* {1: -35, 4: h''} */
                { { 0xa1, 0x02, 0x38, 0x22 }, 4 },                   /* {2: -35} */
                { { 0xa1, 0x01, 0x38, 0x22, 0x00 }, 5 },             /* trailing byte */
                { { 0x81, 0x01 }, 2 },                               /* [1] */
                { { 0xbf, 0x01, 0x38, 0x22, 0x04, 0x40, 0xff }, 7 }, /* indefinite, 2 entries */
        };
        _cleanup_(fixture_done) struct fixture f = {};
        _cleanup_free_ uint8_t *payload = NULL, *doc = NULL, *spliced = NULL;
        struct attest_result res;
        size_t pn, n;

        ASSERT_OK(fixture_init(&f));
        ASSERT_OK(attest_payload_encode(&f.b, &payload, &pn));
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_free_ uint8_t *d = NULL;
                size_t dn;

                ASSERT_OK(attest_cose_sign1((struct attest_blob){ bad[i].bytes, bad[i].len },
                                            (struct attest_blob){ payload, pn }, true, f.ca->leaf_key, &d,
                                            &dn));
                ASSERT_ERR(verify_built(&f, d, dn, &res), -EBADMSG);
                ASSERT_TRUE(res.field && strncmp(res.field, "protected", 9) == 0);
        }
        /* {1: -35} with a non-minimal key head (18 01) still decodes to {1: -35}: signed as received */
        {
                static const uint8_t odd[] = { 0xa1, 0x18, 0x01, 0x38, 0x22 };
                _cleanup_free_ uint8_t *d = NULL;
                size_t dn;

                ASSERT_OK(attest_cose_sign1((struct attest_blob){ odd, sizeof(odd) },
                                            (struct attest_blob){ payload, pn }, true, f.ca->leaf_key, &d,
                                            &dn));
                ASSERT_OK(verify_built(&f, d, dn, &res));
        }

        /* unprotected {4: h''}: not signed, still refused */
        f.b.untagged = true;
        ASSERT_OK(attest_doc_sign(&f.b, f.ca->leaf_key, &doc, &n));
        ASSERT_OK(verify_built(&f, doc, n, &res));
        ASSERT_EQ(doc[6], 0xa0);
        spliced = malloc(n + 2);
        ASSERT_TRUE(spliced != NULL);
        memcpy(spliced, doc, 6);
        memcpy(spliced + 6, (const uint8_t[]){ 0xa1, 0x04, 0x40 }, 3);
        memcpy(spliced + 9, doc + 7, n - 7);
        ASSERT_ERR(verify_built(&f, spliced, n + 2, &res), -EBADMSG);
        ASSERT_STREQ(res.field, "unprotected (not an empty map)");
        ASSERT_EQ(res.offset, 6);
}

TAP_MAIN(TEST("/attest/root/pinned", test_pinned_root), TEST("/attest/reason-names", test_reason_names),
         TEST("/attest/empty-and-oversize", test_empty_and_oversize),
         TEST("/attest/vectors/verify", test_vectors_verify),
         TEST("/attest/vectors/time", test_vectors_time),
         TEST("/attest/vectors/other-root", test_vectors_other_root),
         TEST("/attest/vectors/flips", test_vectors_flips),
         TEST("/attest/vectors/truncated", test_vectors_truncated),
         TEST("/attest/vectors/every-byte", test_vectors_every_byte),
         TEST("/attest/vectors/tagged", test_vectors_tagged),
         TEST("/attest/vectors/pcr-policy", test_vectors_pcr_policy),
         TEST("/attest/build/roundtrip", test_build_roundtrip),
         TEST("/attest/build/times-and-keys", test_build_times_and_keys),
         TEST("/attest/build/optional-kinds", test_build_optional_kinds),
         TEST("/attest/build/payload-variants", test_payload_variants),
         TEST("/attest/build/protected-unprotected", test_protected_and_unprotected));
