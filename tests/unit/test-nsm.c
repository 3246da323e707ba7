/* The NSM client: exact request bytes (NITRO-FORMATS.md 1.2), response decoding in any key order and
 * length encoding, the error table, negatives, and the simulator's PCR rules and caps through the
 * same codec the real device uses. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "common/cbor-write.h"
#include "enclave-token/nsm.h"
#if ENCLAVE_ACM_NSM_SIMULATOR
#include "enclave-token/nsm-sim.h"
#endif
#include "tests/lib/tap.h"

static size_t unhex(const char *hex, uint8_t *out, size_t size) {
        size_t n = 0;

        for (; hex[0] && hex[1] && n < size; hex += 2) {
                unsigned v;

                if (sscanf(hex, "%2x", &v) != 1)
                        break;
                out[n++] = (uint8_t) v;
        }
        return n;
}

static int encode(const struct nsm_request *req, uint8_t *buf, size_t *len) {
        return nsm_request_encode(req, buf, NSM_REQUEST_MAX, len);
}

/* ---- exact request bytes ---- */

static void check_request_hex(const struct nsm_request *req, const char *hex) {
        uint8_t buf[NSM_REQUEST_MAX], want[256];
        size_t len = 0, n = unhex(hex, want, sizeof(want));

        if (encode(req, buf, &len) < 0 || len != n || memcmp(buf, want, n) != 0) {
                printf("# request %s: encoded %zu bytes, expected %zu (%s)\n",
                       nsm_request_kind_to_name(req->kind), len, n, hex);
                tap_failed_current = true;
        }
}

static void test_request_bytes(void) {
        static const uint8_t abc[] = "abc";

        check_request_hex(&(struct nsm_request){ .kind = NSM_REQUEST_DESCRIBE_PCR, .index = 16 },
                          "a16b4465736372696265504352a165696e64657810");
        check_request_hex(&(struct nsm_request){ .kind = NSM_REQUEST_EXTEND_PCR,
                                                 .index = 16,
                                                 .data = NSM_OPT(abc, 3) },
                          "a169457874656e64504352a265696e64657810646461746143616263");
        check_request_hex(&(struct nsm_request){ .kind = NSM_REQUEST_LOCK_PCR, .index = 16 },
                          "a1674c6f636b504352a165696e64657810");
        check_request_hex(&(struct nsm_request){ .kind = NSM_REQUEST_LOCK_PCRS, .range = 32 },
                          "a1684c6f636b50435273a16572616e67651820");
        check_request_hex(&(struct nsm_request){ .kind = NSM_REQUEST_DESCRIBE_NSM },
                          "6b44657363726962654e534d");
        check_request_hex(&(struct nsm_request){ .kind = NSM_REQUEST_GET_RANDOM }, "6947657452616e646f6d");
        /* Attestation with no fields at all: three nulls. */
        check_request_hex(
                &(struct nsm_request){ .kind = NSM_REQUEST_ATTESTATION },
                "a16b4174746573746174696f6ea369757365725f64617461f6656e6f6e6365f66a7075626c69635f6b6579f6");
}

/* 1.2: only an RSA-2048 SPKI (294 bytes): 340 bytes, a 46-byte prefix then the SPKI. */
static void test_request_attestation_spki(void) {
        static const char prefix[] =
                "a16b4174746573746174696f6ea369757365725f64617461f6656e6f6e6365f66a7075626c69635f6b657959"
                "0126";
        uint8_t spki[294], buf[NSM_REQUEST_MAX], want[64];
        struct nsm_request req = { .kind = NSM_REQUEST_ATTESTATION, .pk = NSM_OPT(spki, sizeof(spki)) };
        size_t len = 0, n = unhex(prefix, want, sizeof(want));

        for (size_t i = 0; i < sizeof(spki); i++)
                spki[i] = (uint8_t) (i * 7);
        ASSERT_OK(encode(&req, buf, &len));
        ASSERT_EQ(len, 340);
        ASSERT_EQ(n, 46);
        ASSERT_MEMEQ(buf, want, n);
        ASSERT_MEMEQ(buf + n, spki, sizeof(spki));
}

static void test_request_round_trip(void) {
        static const uint8_t d[] = { 1, 2, 3, 4, 5 };
        const struct nsm_request reqs[] = {
                { .kind = NSM_REQUEST_DESCRIBE_PCR, .index = 31 },
                { .kind = NSM_REQUEST_EXTEND_PCR, .index = 65535, .data = NSM_OPT(d, sizeof(d)) },
                { .kind = NSM_REQUEST_EXTEND_PCR, .index = 17, .data = NSM_OPT(d, 0) },
                { .kind = NSM_REQUEST_LOCK_PCR, .index = 0 },
                { .kind = NSM_REQUEST_LOCK_PCRS, .range = 300 },
                { .kind = NSM_REQUEST_DESCRIBE_NSM },
                { .kind = NSM_REQUEST_GET_RANDOM },
                { .kind = NSM_REQUEST_ATTESTATION,
                  .user_data = NSM_OPT(d, 2),
                  .nonce = NSM_OPT(d, 0),
                  .pk = NSM_OPT(d, 5) },
        };

        for (size_t i = 0; i < ELEMENTSOF(reqs); i++) {
                uint8_t buf[NSM_REQUEST_MAX];
                struct nsm_request out;
                size_t len = 0;

                ASSERT_OK(encode(&reqs[i], buf, &len));
                ASSERT_OK(nsm_request_decode(buf, len, &out, NULL));
                ASSERT_EQ(out.kind, reqs[i].kind);
                ASSERT_EQ(out.index, reqs[i].index);
                ASSERT_EQ(out.range, reqs[i].range);
                ASSERT_EQ(out.data.present, reqs[i].data.present);
                ASSERT_EQ(out.data.len, reqs[i].data.len);
                ASSERT_EQ(out.user_data.present, reqs[i].user_data.present);
                ASSERT_EQ(out.user_data.len, reqs[i].user_data.len);
                ASSERT_EQ(out.nonce.present, reqs[i].nonce.present);
                ASSERT_EQ(out.nonce.len, reqs[i].nonce.len);
                ASSERT_EQ(out.pk.present, reqs[i].pk.present);
                ASSERT_EQ(out.pk.len, reqs[i].pk.len);
                if (out.data.len)
                        ASSERT_MEMEQ(out.data.ptr, d, out.data.len);
                if (out.pk.len)
                        ASSERT_MEMEQ(out.pk.ptr, d, out.pk.len);
        }
}

static void test_request_too_large(void) {
        static uint8_t big[NSM_REQUEST_MAX];
        uint8_t buf[NSM_REQUEST_MAX];
        size_t len = 0;
        /* 4096 bytes of data cannot fit with the headers; 4096 - 27 bytes do (27 bytes of framing). */
        struct nsm_request req = { .kind = NSM_REQUEST_EXTEND_PCR,
                                   .index = 16,
                                   .data = NSM_OPT(big, sizeof(big)) };

        ASSERT_ERR(encode(&req, buf, &len), -EMSGSIZE);
        req.data.len = NSM_REQUEST_MAX - 27;
        ASSERT_OK(encode(&req, buf, &len));
        ASSERT_EQ(len, NSM_REQUEST_MAX);
        req.data.len++;
        ASSERT_ERR(encode(&req, buf, &len), -EMSGSIZE);
        /* The decoder on the simulator's side refuses more than 4096 bytes too. */
        {
                static uint8_t huge[NSM_REQUEST_MAX + 1];
                struct nsm_request out;

                ASSERT_ERR(nsm_request_decode(huge, sizeof(huge), &out, NULL), -EMSGSIZE);
        }
        req.kind = (enum nsm_request_kind) 99;
        ASSERT_ERR(encode(&req, buf, &len), -EINVAL);
}

static void test_request_decode_negative(void) {
        static const char *const bad[] = {
                "",                                                   /* nothing */
                "6146",                                               /* text "F": no such request */
                "6b4465736372696265504352",                           /* "DescribePCR" as a unit variant */
                "a1644661696ca0",                                     /* {"Fail": {}} */
                "a26b4465736372696265504352a0a0",                     /* two entries at the top */
                "a16b4465736372696265504352a0",                       /* DescribePCR without index */
                "a16b4465736372696265504352a165696e6465786130",       /* index as text */
                "a16b4465736372696265504352a165696e6465781a00010000", /* index 65536 */
                "a169457874656e64504352a165696e64657810",             /* ExtendPCR without data */
                "a16b4465736372696265504352a165696e646578",           /* index without a value */
                "6947657452616e646f6d00",                             /* trailing byte */
        };
        static const int expected[] = {
                -EBADMSG, -EOPNOTSUPP, -EOPNOTSUPP, -EOPNOTSUPP, -EOPNOTSUPP, -EINVAL,
                -EINVAL,  -EINVAL,     -EINVAL,     -EINVAL,     -EBADMSG,
        };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                uint8_t buf[64];
                struct nsm_request out;
                char *error = NULL;
                size_t n = unhex(bad[i], buf, sizeof(buf));
                int r = nsm_request_decode(buf, n, &out, &error);

                if (r != expected[i]) {
                        printf("# request %zu (%s): %d, expected %d (%s)\n", i, bad[i], r, expected[i],
                               error ? error : "");
                        tap_failed_current = true;
                }
                free(error);
        }
}

/* ---- responses ---- */

static void fill(uint8_t *p, size_t n, uint8_t seed) {
        for (size_t i = 0; i < n; i++)
                p[i] = (uint8_t) (seed + i * 13);
}

static void test_response_round_trip(void) {
        static uint8_t doc[5000];
        struct nsm_response resps[8] = {
                { .kind = NSM_RESPONSE_DESCRIBE_PCR, .pcr = { .len = 48, .locked = true } },
                { .kind = NSM_RESPONSE_EXTEND_PCR, .pcr = { .len = 48 } },
                { .kind = NSM_RESPONSE_LOCK_PCR },
                { .kind = NSM_RESPONSE_LOCK_PCRS },
                { .kind = NSM_RESPONSE_DESCRIBE_NSM,
                  .description = { .version_major = 1,
                                   .version_minor = 2,
                                   .version_patch = 3,
                                   .module_id = "i-0a22e5c5f24d22174-enc0191cceb4289903f",
                                   .max_pcrs = 32,
                                   .locked_pcrs = { 0, 1, 2, 15, 16 },
                                   .n_locked_pcrs = 5,
                                   .digest = NSM_DIGEST_SHA384 } },
                { .kind = NSM_RESPONSE_ATTESTATION, .document = doc, .document_len = sizeof(doc) },
                { .kind = NSM_RESPONSE_GET_RANDOM, .random_len = 256 },
                { .kind = NSM_RESPONSE_ERROR, .error = NSM_ERROR_READ_ONLY_INDEX },
        };

        fill(doc, sizeof(doc), 3);
        fill(resps[0].pcr.data, 48, 1);
        fill(resps[1].pcr.data, 48, 2);
        fill(resps[6].random, 256, 7);
        for (size_t i = 0; i < ELEMENTSOF(resps); i++) {
                uint8_t buf[NSM_RESPONSE_MAX];
                struct nsm_response out = {};
                size_t len = 0;
                int r;

                ASSERT_OK(nsm_response_encode(&resps[i], buf, sizeof(buf), &len));
                r = nsm_response_decode(buf, len, &out, NULL);
                ASSERT_OK(r);
                ASSERT_EQ(out.kind, resps[i].kind);
                ASSERT_EQ(out.pcr.len, resps[i].pcr.len);
                ASSERT_EQ(out.pcr.locked, resps[i].pcr.locked);
                ASSERT_MEMEQ(out.pcr.data, resps[i].pcr.data, out.pcr.len);
                ASSERT_EQ(out.document_len, resps[i].document_len);
                if (out.document_len)
                        ASSERT_MEMEQ(out.document, doc, sizeof(doc));
                ASSERT_EQ(out.random_len, resps[i].random_len);
                ASSERT_MEMEQ(out.random, resps[i].random, out.random_len);
                if (out.kind == NSM_RESPONSE_ERROR)
                        ASSERT_EQ(out.error, resps[i].error);
                if (out.kind == NSM_RESPONSE_DESCRIBE_NSM) {
                        ASSERT_EQ(out.description.version_major, 1);
                        ASSERT_EQ(out.description.version_minor, 2);
                        ASSERT_EQ(out.description.version_patch, 3);
                        ASSERT_STREQ(out.description.module_id, resps[i].description.module_id);
                        ASSERT_EQ(out.description.max_pcrs, 32);
                        ASSERT_EQ(out.description.n_locked_pcrs, 5);
                        ASSERT_EQ(out.description.locked_pcrs[4], 16);
                        ASSERT_EQ(out.description.digest, NSM_DIGEST_SHA384);
                }
                nsm_response_done(&out);
        }
}

/* The unit responses and the serde shape of the others, byte for byte. */
static void test_response_bytes(void) {
        uint8_t buf[NSM_RESPONSE_MAX], want[128];
        struct nsm_response resp = { .kind = NSM_RESPONSE_LOCK_PCRS };
        size_t len = 0, n;

        ASSERT_OK(nsm_response_encode(&resp, buf, sizeof(buf), &len));
        n = unhex("684c6f636b50435273", want, sizeof(want));
        ASSERT_EQ(len, n);
        ASSERT_MEMEQ(buf, want, n);
        resp = (struct nsm_response){ .kind = NSM_RESPONSE_ERROR, .error = NSM_ERROR_INVALID_INDEX };
        ASSERT_OK(nsm_response_encode(&resp, buf, sizeof(buf), &len));
        n = unhex("a1654572726f726c496e76616c6964496e646578", want, sizeof(want));
        ASSERT_EQ(len, n);
        ASSERT_MEMEQ(buf, want, n);
        /* GetRandom: prefix exactly a1 69"GetRandom" a1 66"random" (Linux parse_resp_get_random). */
        resp = (struct nsm_response){ .kind = NSM_RESPONSE_GET_RANDOM, .random_len = 4 };
        ASSERT_OK(nsm_response_encode(&resp, buf, sizeof(buf), &len));
        n = unhex("a16947657452616e646f6da16672616e646f6d4400000000", want, sizeof(want));
        ASSERT_EQ(len, n);
        ASSERT_MEMEQ(buf, want, n);
}

/* DescribeNSM keys in QEMU's order (digest, max_pcrs, module_id, locked_pcrs, version_*), with an
 * unknown key in between, then the same with indefinite-length maps and a chunked module_id. */
static const char qemu_describe[] = "a16b44657363726962654e534d"
                                    "a8"
                                    "666469676573746653484133383"
                                    "4"
                                    "686d61785f706372731820"
                                    "696d6f64756c655f69646d692d3233342d656e6335363738"
                                    "6b6c6f636b65645f70637273820001"
                                    "67756e6b6e6f776e82f6a0"
                                    "6d76657273696f6e5f6d616a6f7201"
                                    "6d76657273696f6e5f6d696e6f7200"
                                    "6d76657273696f6e5f706174636800";
static const char indefinite_describe[] = "bf6b44657363726962654e534d"
                                          "bf"
                                          "6d76657273696f6e5f706174636803"
                                          "696d6f64756c655f69647f66692d3233342d67656e6335363738ff"
                                          "6b6c6f636b65645f706372739f0001ff"
                                          "666469676573746653484133383"
                                          "4"
                                          "686d61785f706372731820"
                                          "6d76657273696f6e5f6d616a6f7201"
                                          "6d76657273696f6e5f6d696e6f7202"
                                          "ff"
                                          "ff";

static void test_response_key_order(void) {
        const char *const cases[] = { qemu_describe, indefinite_describe };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                uint8_t buf[512];
                struct nsm_response out = {};
                char *error = NULL;
                size_t n = unhex(cases[i], buf, sizeof(buf));
                int r = nsm_response_decode(buf, n, &out, &error);

                if (r < 0)
                        printf("# case %zu: %s\n", i, error ? error : "?");
                free(error);
                ASSERT_OK(r);
                ASSERT_EQ(out.kind, NSM_RESPONSE_DESCRIBE_NSM);
                ASSERT_STREQ(out.description.module_id, "i-234-enc5678");
                ASSERT_EQ(out.description.max_pcrs, 32);
                ASSERT_EQ(out.description.n_locked_pcrs, 2);
                ASSERT_EQ(out.description.locked_pcrs[1], 1);
                ASSERT_EQ(out.description.version_major, 1);
                ASSERT_EQ(out.description.version_minor, i == 0 ? 0 : 2);
                ASSERT_EQ(out.description.version_patch, i == 0 ? 0 : 3);
                ASSERT_EQ(out.description.digest, NSM_DIGEST_SHA384);
        }
}

/* DescribePCR as QEMU writes it (data before lock), and with a chunked data string. */
static void test_response_describe_pcr_forms(void) {
        char hex[512];
        uint8_t buf[256];
        struct nsm_response out = {};
        size_t n;

        /* {"DescribePCR": {"data": h'00'x48, "lock": true}} */
        strcpy(hex, "a16b4465736372696265504352a2646461746158300");
        for (int i = 0; i < 47; i++)
                strcat(hex, "00");
        strcat(hex, "0646c6f636bf5");
        n = unhex(hex, buf, sizeof(buf));
        ASSERT_OK(nsm_response_decode(buf, n, &out, NULL));
        ASSERT_EQ(out.kind, NSM_RESPONSE_DESCRIBE_PCR);
        ASSERT_EQ(out.pcr.len, 48);
        ASSERT_TRUE(out.pcr.locked);
        /* {"ExtendPCR": {_ "data": (_ h'11'x16, h'22'x32)}} */
        strcpy(hex, "a169457874656e64504352bf64646174615f50");
        for (int i = 0; i < 16; i++)
                strcat(hex, "11");
        strcat(hex, "5820");
        for (int i = 0; i < 32; i++)
                strcat(hex, "22");
        strcat(hex, "ffff");
        n = unhex(hex, buf, sizeof(buf));
        ASSERT_OK(nsm_response_decode(buf, n, &out, NULL));
        ASSERT_EQ(out.kind, NSM_RESPONSE_EXTEND_PCR);
        ASSERT_EQ(out.pcr.len, 48);
        ASSERT_EQ(out.pcr.data[15], 0x11);
        ASSERT_EQ(out.pcr.data[16], 0x22);
}

static void test_error_table(void) {
        static const char *const names[] = { "InvalidArgument", "InvalidIndex",     "InvalidResponse",
                                             "ReadOnlyIndex",   "InvalidOperation", "BufferTooSmall",
                                             "InputTooLarge",   "InternalError" };
        int errnos[_NSM_ERROR_MAX];

        ASSERT_EQ(ELEMENTSOF(names), _NSM_ERROR_MAX);
        for (int e = 0; e < _NSM_ERROR_MAX; e++) {
                uint8_t buf[64];
                struct nsm_response in = { .kind = NSM_RESPONSE_ERROR, .error = e }, out = {};
                size_t len = 0;

                ASSERT_STREQ(nsm_error_to_name(e), names[e]);
                ASSERT_EQ(nsm_error_from_name((const uint8_t *) names[e], strlen(names[e])), e);
                errnos[e] = nsm_error_to_errno(e);
                ASSERT_TRUE(errnos[e] < 0);
                ASSERT_EQ(nsm_error_from_errno(errnos[e]), e);
                for (int j = 0; j < e; j++)
                        ASSERT_NE(errnos[j], errnos[e]); /* one errno per error: the table is a bijection */
                ASSERT_TRUE(nsm_error_to_string(e) && strlen(nsm_error_to_string(e)) > 0);
                ASSERT_OK(nsm_response_encode(&in, buf, sizeof(buf), &len));
                ASSERT_OK(nsm_response_decode(buf, len, &out, NULL));
                ASSERT_EQ(out.kind, NSM_RESPONSE_ERROR);
                ASSERT_EQ(out.error, e);
        }
        ASSERT_EQ(nsm_error_to_errno((enum nsm_error) _NSM_ERROR_MAX), -EINVAL);
        ASSERT_TRUE(nsm_error_to_name(_NSM_ERROR_MAX) == NULL);
        ASSERT_EQ(nsm_error_from_name((const uint8_t *) "Success", 7), _NSM_ERROR_INVALID);
        ASSERT_EQ(nsm_error_from_errno(-ENOENT), _NSM_ERROR_INVALID);
}

static void test_response_negative(void) {
        static const char *const bad[] = {
                "",                                                     /* nothing */
                "a1654572726f72675375636365737",                        /* truncated */
                "a1654572726f72675375636365737373",                     /* {"Error": "Success"} */
                "a1654572726f7263466f6f",                               /* unknown error name */
                "a1654572726f7201",                                     /* error as a number */
                "a163466f6fa0",                                         /* {"Foo": {}} */
                "6b44657363726962654e534d",                             /* "DescribeNSM" as a unit */
                "a1674c6f636b504352a0",                                 /* LockPCR as a struct */
                "a169457874656e64504352a0",                             /* ExtendPCR without data */
                "a169457874656e64504352a16464617461410",                /* truncated inside */
                "a169457874656e64504352a164646174614100",               /* data of 1 byte */
                "a169457874656e64504352a164646174616100",               /* data as text */
                "a169457874656e64504352a2646461746141006464617461",     /* duplicate key, short */
                "a16b4465736372696265504352a1646c6f636b01",             /* lock as a number */
                "a16b4174746573746174696f6ea168646f63756d656e7440",     /* empty document */
                "684c6f636b50435273ff",                                 /* trailing byte */
                "a0",                                                   /* empty map */
                "a2654572726f726c496e76616c6964496e646578654572726f72", /* two entries */
                "f6",                                                   /* null */
                "bf654572726f726c496e76616c6964496e646578",             /* indefinite, no break */
        };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                uint8_t buf[128];
                struct nsm_response out = {};
                char *error = NULL;
                size_t n = unhex(bad[i], buf, sizeof(buf));
                int r = nsm_response_decode(buf, n, &out, &error);

                if (r != -EBADMSG || !error) {
                        printf("# response %zu (%s): %d, expected -EBADMSG with a message\n", i, bad[i], r);
                        tap_failed_current = true;
                }
                free(error);
        }
}

/* Caps: PCR data of 65 bytes, random of 1025, module_id of 129, 65 locked PCRs, a response over
 * 12288 bytes. */
static void test_response_oversized(void) {
        static uint8_t big[NSM_RESPONSE_MAX + 16], src[NSM_RESPONSE_MAX];
        struct nsm_response out = {};
        struct rpc_writer w;
        size_t len;

        rpc_writer_init(&w, big, sizeof(big));
        rpc_put_map(&w, 1);
        rpc_put_text(&w, "ExtendPCR", 9);
        rpc_put_map(&w, 1);
        rpc_put_text(&w, "data", 4);
        rpc_put_bytes(&w, src, 65);
        ASSERT_OK(rpc_writer_finish(&w));
        ASSERT_ERR(nsm_response_decode(big, w.len, &out, NULL), -EBADMSG);

        rpc_writer_init(&w, big, sizeof(big));
        rpc_put_map(&w, 1);
        rpc_put_text(&w, "GetRandom", 9);
        rpc_put_map(&w, 1);
        rpc_put_text(&w, "random", 6);
        rpc_put_bytes(&w, src, NSM_RANDOM_MAX + 1);
        ASSERT_OK(rpc_writer_finish(&w));
        ASSERT_ERR(nsm_response_decode(big, w.len, &out, NULL), -EBADMSG);

        rpc_writer_init(&w, big, sizeof(big));
        rpc_put_map(&w, 1);
        rpc_put_text(&w, "DescribeNSM", 11);
        rpc_put_map(&w, 1);
        rpc_put_text(&w, "locked_pcrs", 11);
        rpc_put_array(&w, NSM_LOCKED_PCRS_MAX + 1);
        for (int i = 0; i <= NSM_LOCKED_PCRS_MAX; i++)
                rpc_put_uint(&w, 1);
        ASSERT_OK(rpc_writer_finish(&w));
        ASSERT_ERR(nsm_response_decode(big, w.len, &out, NULL), -EBADMSG);

        {
                char id[NSM_MODULE_ID_MAX + 2];

                memset(id, 'a', sizeof(id) - 1);
                rpc_writer_init(&w, big, sizeof(big));
                rpc_put_map(&w, 1);
                rpc_put_text(&w, "DescribeNSM", 11);
                rpc_put_map(&w, 1);
                rpc_put_text(&w, "module_id", 9);
                rpc_put_text(&w, id, NSM_MODULE_ID_MAX + 1);
                ASSERT_OK(rpc_writer_finish(&w));
                ASSERT_ERR(nsm_response_decode(big, w.len, &out, NULL), -EBADMSG);
        }

        /* An attestation response that fills the buffer exactly decodes; one byte more is refused. */
        len = NSM_RESPONSE_MAX - 1 - 12 - 1 - 9 - 3;
        rpc_writer_init(&w, big, sizeof(big));
        rpc_put_map(&w, 1);
        rpc_put_text(&w, "Attestation", 11);
        rpc_put_map(&w, 1);
        rpc_put_text(&w, "document", 8);
        rpc_put_bytes(&w, src, len);
        ASSERT_OK(rpc_writer_finish(&w));
        ASSERT_EQ(w.len, NSM_RESPONSE_MAX);
        ASSERT_OK(nsm_response_decode(big, w.len, &out, NULL));
        ASSERT_EQ(out.document_len, len);
        nsm_response_done(&out);
        ASSERT_TRUE(out.document == NULL);
        ASSERT_ERR(nsm_response_decode(big, NSM_RESPONSE_MAX + 1, &out, NULL), -EBADMSG);
}

/* Unknown keys inside a variant are skipped, as serde does. */
static void test_response_unknown_key(void) {
        uint8_t buf[128];
        struct nsm_response out = {};
        /* {"GetRandom": {"extra": [1, {"x": null}], "random": h'0102'}} */
        size_t n = unhex("a16947657452616e646f6da26565787472618201a16178f66672616e646f6d420102", buf,
                         sizeof(buf));

        ASSERT_OK(nsm_response_decode(buf, n, &out, NULL));
        ASSERT_EQ(out.kind, NSM_RESPONSE_GET_RANDOM);
        ASSERT_EQ(out.random_len, 2);
        ASSERT_EQ(out.random[1], 2);
        nsm_response_done(&out);
        ASSERT_EQ(out.random_len, 0);
        ASSERT_EQ(out.random[1], 0);
}

/* Every truncation, bit flip, 0x00 and 0xff of valid responses: fail cleanly or succeed. */
static void test_response_mutations(void) {
        const char *const samples[] = {
                qemu_describe, indefinite_describe, "a1654572726f726c496e76616c6964496e646578",
                "a16947657452616e646f6da26565787472618201a16178f66672616e646f6d420102"
        };

        for (size_t s = 0; s < ELEMENTSOF(samples); s++) {
                uint8_t orig[512], buf[512];
                size_t n = unhex(samples[s], orig, sizeof(orig));

                for (size_t cut = 0; cut < n; cut++) {
                        struct nsm_response out = {};
                        uint8_t *copy = malloc(cut ? cut : 1);

                        memcpy(copy, orig, cut);
                        ASSERT_FAIL(nsm_response_decode(copy, cut, &out, NULL));
                        free(copy);
                }
                for (size_t i = 0; i < n; i++)
                        for (int m = 0; m < 10; m++) {
                                struct nsm_response out = {};

                                memcpy(buf, orig, n);
                                buf[i] = m < 8 ? (uint8_t) (buf[i] ^ (1u << m)) : m == 8 ? 0x00 : 0xff;
                                if (nsm_response_decode(buf, n, &out, NULL) >= 0)
                                        nsm_response_done(&out);
                        }
        }
}

/* ---- the device ---- */

struct counting {
        unsigned calls;
        uint8_t answer[64];
        size_t answer_len;
};

static int counting_transact(void *userdata, const uint8_t *req, size_t req_len, uint8_t *resp,
                             size_t *ret_len) {
        struct counting *c = userdata;

        c->calls++;
        memcpy(resp, c->answer, c->answer_len);
        *ret_len = c->answer_len;
        return 0;
}

static const struct nsm_dev_ops counting_ops = { .name = "counting", .transact = counting_transact };

static void test_dev_refuses_before_sending(void) {
        static uint8_t big[NSM_REQUEST_MAX];
        struct counting c = {};
        _cleanup_(nsm_dev_freep) struct nsm_dev *d = NULL;
        uint8_t doc_buf[8];
        uint8_t *doc = NULL;
        size_t doc_len = 0;
        char *error = NULL;

        ASSERT_OK(nsm_dev_new(&counting_ops, &c, &d));
        ASSERT_ERR(nsm_extend_pcr(d, 16, big, sizeof(big), NULL, &error), -EMSGSIZE);
        ASSERT_TRUE(error && strstr(error, "ExtendPCR"));
        free(error);
        error = NULL;
        /* Our own generation rule: user_data and nonce at most 512 bytes, public_key at most 1024. */
        ASSERT_ERR(nsm_get_attestation(d, NULL, &NSM_OPT(big, 513), NULL, &doc, &doc_len, NULL), -EMSGSIZE);
        ASSERT_ERR(nsm_get_attestation(d, &NSM_OPT(big, 513), NULL, NULL, &doc, &doc_len, NULL), -EMSGSIZE);
        ASSERT_ERR(nsm_get_attestation(d, NULL, NULL, &NSM_OPT(big, 1025), &doc, &doc_len, NULL), -EMSGSIZE);
        ASSERT_EQ(c.calls, 0);
        (void) doc_buf;

        /* A device answering the wrong variant, or garbage. */
        c.answer_len = unhex("684c6f636b50435273", c.answer, sizeof(c.answer));
        ASSERT_ERR(nsm_lock_pcr(d, 16, &error), -EBADMSG);
        ASSERT_TRUE(error && strstr(error, "LockPCRs"));
        free(error);
        error = NULL;
        ASSERT_OK(nsm_lock_pcrs(d, 16, NULL));
        c.answer_len = unhex("a1654572726f726d5265616448f6", c.answer, sizeof(c.answer));
        ASSERT_ERR(nsm_lock_pcrs(d, 16, NULL), -EBADMSG);
        /* An Error answer comes back as its errno with its name. */
        c.answer_len = unhex("a1654572726f726d526561644f6e6c79496e646578", c.answer, sizeof(c.answer));
        ASSERT_ERR(nsm_lock_pcr(d, 16, &error), -EROFS);
        ASSERT_TRUE(error && strstr(error, "ReadOnlyIndex"));
        free(error);
        /* GetRandom answering no bytes must not loop forever. */
        c.answer_len = unhex("a16947657452616e646f6da16672616e646f6d40", c.answer, sizeof(c.answer));
        c.calls = 0;
        ASSERT_ERR(nsm_get_random(d, doc_buf, sizeof(doc_buf), NULL), -EIO);
        ASSERT_EQ(c.calls, 1);
        ASSERT_STREQ(nsm_dev_name(d), "counting");
}

/* The real backend: no device is -ENOENT; an fd that is not the NSM fails the ioctl with its errno. */
static void test_dev_real(void) {
        _cleanup_(nsm_dev_freep) struct nsm_dev *d = NULL;
        struct nsm_description desc;
        char *error = NULL;

        ASSERT_ERR(nsm_dev_open("/nonexistent/nsm", &d), -ENOENT);
        ASSERT_TRUE(d == NULL);
        ASSERT_OK(nsm_dev_open("/dev/null", &d));
        ASSERT_STREQ(nsm_dev_name(d), NSM_DEV_PATH);
        ASSERT_ERR(nsm_describe(d, &desc, &error), -ENOTTY);
        ASSERT_TRUE(error && strstr(error, "DescribeNSM"));
        free(error);
}

#if ENCLAVE_ACM_NSM_SIMULATOR

/* ---- the simulator ---- */

static uint8_t boot_pcr0[NSM_PCR_LEN], boot_pcr4[NSM_PCR_LEN], boot_pcr8[NSM_PCR_LEN];

struct doc_maker {
        unsigned calls;
        int fail;
        size_t pad; /* bytes of filler, to test a document too large for the response */
};

/* A recognisable document: ["sim-doc", pcr0, pcr16, user_data|null, nonce|null, public_key|null, filler]. */
static void put_opt(struct rpc_writer *w, const struct nsm_opt *o) {
        if (o->present)
                rpc_put_bytes(w, o->len ? o->ptr : (const uint8_t *) "", o->len);
        else
                rpc_put_text(w, "null", 4);
}

static size_t build_doc(uint8_t *buf, size_t size, const uint8_t (*pcrs)[NSM_PCR_LEN],
                        const struct nsm_opt *u, const struct nsm_opt *n, const struct nsm_opt *pk,
                        size_t pad) {
        static uint8_t filler[NSM_RESPONSE_MAX];
        struct rpc_writer w;

        rpc_writer_init(&w, buf, size);
        rpc_put_array(&w, 7);
        rpc_put_text(&w, "sim-doc", 7);
        rpc_put_bytes(&w, pcrs[0], NSM_PCR_LEN);
        rpc_put_bytes(&w, pcrs[16], NSM_PCR_LEN);
        put_opt(&w, u);
        put_opt(&w, n);
        put_opt(&w, pk);
        rpc_put_bytes(&w, filler, pad);
        return rpc_writer_finish(&w) < 0 ? 0 : w.len;
}

static int doc_fn(void *userdata, const uint8_t (*pcrs)[NSM_PCR_LEN], unsigned n_pcrs,
                  const struct nsm_opt *u, const struct nsm_opt *n, const struct nsm_opt *pk,
                  uint8_t **ret_doc, size_t *ret_len) {
        struct doc_maker *m = userdata;
        size_t size = 3 * NSM_OPT_MAX + 256 + m->pad + 16, len;
        uint8_t *buf;

        m->calls++;
        if (m->fail)
                return m->fail;
        if (n_pcrs != NSM_PCR_COUNT)
                return -EINVAL;
        buf = malloc(size);
        if (!buf)
                return -ENOMEM;
        len = build_doc(buf, size, pcrs, u, n, pk, m->pad);
        if (len == 0) {
                free(buf);
                return -EMSGSIZE;
        }
        *ret_doc = buf;
        *ret_len = len;
        return 0;
}

static struct doc_maker maker;

static struct nsm_dev *sim_dev(void) {
        struct nsm_sim *s = NULL;
        struct nsm_dev *d = NULL;

        fill(boot_pcr0, NSM_PCR_LEN, 0x40);
        fill(boot_pcr4, NSM_PCR_LEN, 0x44);
        fill(boot_pcr8, NSM_PCR_LEN, 0x48);
        maker = (struct doc_maker){};
        if (nsm_sim_new(&(struct nsm_sim_config){ .pcr0 = boot_pcr0,
                                                  .pcr4 = boot_pcr4,
                                                  .pcr8 = boot_pcr8,
                                                  .doc_fn = doc_fn,
                                                  .doc_userdata = &maker },
                        &s) < 0)
                return NULL;
        if (nsm_dev_new_sim(s, &d) < 0)
                return NULL;
        return d;
}

static void sha384_cat(const uint8_t *a, size_t an, const uint8_t *b, size_t bn, uint8_t *out) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        unsigned n = 0;

        if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha384(), NULL) <= 0 || EVP_DigestUpdate(ctx, a, an) <= 0 ||
            EVP_DigestUpdate(ctx, b, bn) <= 0 || EVP_DigestFinal_ex(ctx, out, &n) <= 0)
                memset(out, 0, 48);
        EVP_MD_CTX_free(ctx);
}

static void test_sim_boot_pcrs(void) {
        _cleanup_(nsm_dev_freep) struct nsm_dev *d = sim_dev();
        static const uint8_t zero[NSM_PCR_LEN];
        struct nsm_pcr pcr;

        ASSERT_TRUE(d != NULL);
        ASSERT_STREQ(nsm_dev_name(d), "NSM simulator");
        for (uint16_t i = 0; i < NSM_PCR_COUNT; i++) {
                const uint8_t *want = i == 0 ? boot_pcr0 : i == 4 ? boot_pcr4 : i == 8 ? boot_pcr8 : zero;

                ASSERT_OK(nsm_describe_pcr(d, i, &pcr, NULL));
                ASSERT_EQ(pcr.len, NSM_PCR_LEN);
                ASSERT_MEMEQ(pcr.data, want, NSM_PCR_LEN);
                ASSERT_EQ(pcr.locked, i < 16);
        }
        ASSERT_ERR(nsm_describe_pcr(d, 32, &pcr, NULL), -ERANGE);
        ASSERT_ERR(nsm_describe_pcr(d, 65535, &pcr, NULL), -ERANGE);
}

static void test_sim_extend(void) {
        _cleanup_(nsm_dev_freep) struct nsm_dev *d = sim_dev();
        static const uint8_t zero[NSM_PCR_LEN];
        uint8_t want[NSM_PCR_LEN], known[NSM_PCR_LEN];
        struct nsm_pcr pcr, desc;
        char *error = NULL;

        ASSERT_TRUE(d != NULL);
        /* NITRO-FORMATS.md 7.5: a zero PCR16 extended with "abc". */
        unhex("b1c16eb7634112b7c9d5ebd27e62a2d4528bbfcfd68b62d3afd9ecf98e0f413a84314acce78317fb69fd895155343"
              "e09",
              known, sizeof(known));
        ASSERT_OK(nsm_extend_pcr(d, 16, (const uint8_t *) "abc", 3, &pcr, NULL));
        ASSERT_EQ(pcr.len, NSM_PCR_LEN);
        ASSERT_MEMEQ(pcr.data, known, NSM_PCR_LEN);
        sha384_cat(zero, NSM_PCR_LEN, (const uint8_t *) "abc", 3, want);
        ASSERT_MEMEQ(want, known, NSM_PCR_LEN);
        /* A second extend: SHA384(old || data), the old value being the first result. */
        sha384_cat(known, NSM_PCR_LEN, (const uint8_t *) "defg", 4, want);
        ASSERT_OK(nsm_extend_pcr(d, 16, (const uint8_t *) "defg", 4, &pcr, NULL));
        ASSERT_MEMEQ(pcr.data, want, NSM_PCR_LEN);
        ASSERT_OK(nsm_describe_pcr(d, 16, &desc, NULL));
        ASSERT_MEMEQ(desc.data, want, NSM_PCR_LEN);
        ASSERT_FALSE(desc.locked);
        /* Empty data extends too. */
        sha384_cat(zero, NSM_PCR_LEN, NULL, 0, want);
        ASSERT_OK(nsm_extend_pcr(d, 31, NULL, 0, &pcr, NULL));
        ASSERT_MEMEQ(pcr.data, want, NSM_PCR_LEN);
        /* 0-15 are read-only, 32 is out of range. */
        for (uint16_t i = 0; i < 16; i++)
                ASSERT_ERR(nsm_extend_pcr(d, i, (const uint8_t *) "x", 1, NULL, NULL), -EROFS);
        ASSERT_ERR(nsm_extend_pcr(d, 32, (const uint8_t *) "x", 1, NULL, &error), -ERANGE);
        ASSERT_TRUE(error && strstr(error, "InvalidIndex"));
        free(error);
        ASSERT_OK(nsm_describe_pcr(d, 0, &desc, NULL));
        ASSERT_MEMEQ(desc.data, boot_pcr0, NSM_PCR_LEN);
}

static void test_sim_lock(void) {
        _cleanup_(nsm_dev_freep) struct nsm_dev *d = sim_dev();
        struct nsm_description desc;
        struct nsm_pcr before, after;

        ASSERT_TRUE(d != NULL);
        ASSERT_OK(nsm_extend_pcr(d, 20, (const uint8_t *) "a", 1, &before, NULL));
        ASSERT_OK(nsm_lock_pcr(d, 20, NULL));
        ASSERT_ERR(nsm_extend_pcr(d, 20, (const uint8_t *) "b", 1, NULL, NULL), -EROFS);
        ASSERT_ERR(nsm_lock_pcr(d, 20, NULL), -EROFS);
        ASSERT_OK(nsm_describe_pcr(d, 20, &after, NULL));
        ASSERT_TRUE(after.locked);
        ASSERT_MEMEQ(after.data, before.data, NSM_PCR_LEN);
        for (uint16_t i = 0; i < 16; i++)
                ASSERT_ERR(nsm_lock_pcr(d, i, NULL), -EROFS);
        ASSERT_ERR(nsm_lock_pcr(d, 32, NULL), -ERANGE);
        ASSERT_ERR(nsm_lock_pcrs(d, 33, NULL), -ERANGE);
        ASSERT_OK(nsm_describe(d, &desc, NULL));
        ASSERT_EQ(desc.n_locked_pcrs, 17);
        ASSERT_EQ(desc.locked_pcrs[16], 20);
        ASSERT_OK(nsm_lock_pcrs(d, 18, NULL));
        ASSERT_ERR(nsm_extend_pcr(d, 17, (const uint8_t *) "b", 1, NULL, NULL), -EROFS);
        ASSERT_OK(nsm_extend_pcr(d, 18, (const uint8_t *) "b", 1, NULL, NULL));
        ASSERT_OK(nsm_describe(d, &desc, NULL));
        ASSERT_EQ(desc.n_locked_pcrs, 19);
}

static void test_sim_describe(void) {
        _cleanup_(nsm_dev_freep) struct nsm_dev *d = sim_dev();
        struct nsm_description desc;

        ASSERT_TRUE(d != NULL);
        ASSERT_OK(nsm_describe(d, &desc, NULL));
        ASSERT_STREQ(desc.module_id, NSM_SIM_MODULE_ID);
        ASSERT_EQ(desc.max_pcrs, 32);
        ASSERT_EQ(desc.digest, NSM_DIGEST_SHA384);
        ASSERT_EQ(desc.version_major, 1);
        ASSERT_EQ(desc.n_locked_pcrs, 16);
        for (size_t i = 0; i < 16; i++)
                ASSERT_EQ(desc.locked_pcrs[i], i);
}

static void test_sim_random(void) {
        _cleanup_(nsm_dev_freep) struct nsm_dev *d = sim_dev();
        static const size_t sizes[] = { 0, 1, 255, 256, 257, 1000, 4096 };
        static uint8_t buf[4097];

        ASSERT_TRUE(d != NULL);
        for (size_t i = 0; i < ELEMENTSOF(sizes); i++) {
                size_t zeros = 0;

                memset(buf, 0, sizeof(buf));
                buf[sizes[i]] = 0xa5;
                ASSERT_OK(nsm_get_random(d, buf, sizes[i], NULL));
                ASSERT_EQ(buf[sizes[i]], 0xa5); /* not a byte past the end */
                for (size_t j = 0; j < sizes[i]; j++)
                        zeros += buf[j] == 0;
                /* 4096 random bytes hold about 16 zeros; all-zero output means nothing was written. */
                if (sizes[i] >= 256)
                        ASSERT_TRUE(zeros < sizes[i] / 8);
        }
}

static void test_sim_attestation(void) {
        _cleanup_(nsm_dev_freep) struct nsm_dev *d = sim_dev();
        static uint8_t want[4 * NSM_OPT_MAX], pk[294], nonce[32];
        static const uint8_t zero[NSM_PCR_LEN];
        uint8_t *doc = NULL;
        size_t len = 0, want_len;
        uint8_t pcrs[NSM_PCR_COUNT][NSM_PCR_LEN] = {};
        struct nsm_pcr p16;

        ASSERT_TRUE(d != NULL);
        fill(pk, sizeof(pk), 9);
        fill(nonce, sizeof(nonce), 5);
        ASSERT_OK(nsm_extend_pcr(d, 16, (const uint8_t *) "abc", 3, &p16, NULL));
        ASSERT_OK(nsm_get_attestation(d, &NSM_OPT(nonce, sizeof(nonce)), NULL, &NSM_OPT(pk, sizeof(pk)),
                                      &doc, &len, NULL));
        ASSERT_EQ(maker.calls, 1);
        memcpy(pcrs[0], boot_pcr0, NSM_PCR_LEN);
        memcpy(pcrs[16], p16.data, NSM_PCR_LEN);
        want_len = build_doc(want, sizeof(want), (const uint8_t(*)[NSM_PCR_LEN]) pcrs, &(struct nsm_opt){},
                             &NSM_OPT(nonce, sizeof(nonce)), &NSM_OPT(pk, sizeof(pk)), 0);
        ASSERT_TRUE(want_len > 0);
        ASSERT_EQ(len, want_len);
        ASSERT_MEMEQ(doc, want, len);
        free(doc);
        doc = NULL;
        (void) zero;

        /* An empty but present user_data stays present (40), not null. */
        ASSERT_OK(nsm_get_attestation(d, NULL, &NSM_OPT(nonce, 0), NULL, &doc, &len, NULL));
        want_len = build_doc(want, sizeof(want), (const uint8_t(*)[NSM_PCR_LEN]) pcrs, &NSM_OPT(nonce, 0),
                             &(struct nsm_opt){}, &(struct nsm_opt){}, 0);
        ASSERT_EQ(len, want_len);
        ASSERT_MEMEQ(doc, want, len);
        free(doc);
}

/* The simulator enforces the NSM's caps (1024 bytes each) whatever our client's own rule is, so these
 * requests go through nsm_dev_call() directly. */
static void test_sim_caps(void) {
        _cleanup_(nsm_dev_freep) struct nsm_dev *d = sim_dev();
        static uint8_t big[NSM_OPT_MAX + 1];
        struct nsm_request req = { .kind = NSM_REQUEST_ATTESTATION };
        struct nsm_response resp = {};
        char *error = NULL;

        ASSERT_TRUE(d != NULL);
        req.user_data = NSM_OPT(big, NSM_OPT_MAX);
        req.nonce = NSM_OPT(big, NSM_OPT_MAX);
        req.pk = NSM_OPT(big, NSM_OPT_MAX);
        ASSERT_OK(nsm_dev_call(d, &req, &resp, NULL));
        ASSERT_EQ(resp.kind, NSM_RESPONSE_ATTESTATION);
        ASSERT_TRUE(resp.document_len > 3 * NSM_OPT_MAX);
        nsm_response_done(&resp);
        for (int f = 0; f < 3; f++) {
                struct nsm_request r1 = { .kind = NSM_REQUEST_ATTESTATION };
                struct nsm_opt *o = f == 0 ? &r1.user_data : f == 1 ? &r1.nonce : &r1.pk;

                *o = NSM_OPT(big, NSM_OPT_MAX + 1);
                ASSERT_ERR(nsm_dev_call(d, &r1, &resp, &error), -EMSGSIZE);
                ASSERT_TRUE(error && strstr(error, "InputTooLarge"));
                free(error);
                error = NULL;
        }
        ASSERT_EQ(maker.calls, 1);

        /* A document that does not fit the response buffer: BufferTooSmall. */
        maker.pad = NSM_RESPONSE_MAX;
        ASSERT_ERR(nsm_dev_call(d, &(struct nsm_request){ .kind = NSM_REQUEST_ATTESTATION }, &resp, NULL),
                   -ENOBUFS);
        /* A failing document maker: InternalError. */
        maker.pad = 0;
        maker.fail = -EIO;
        ASSERT_ERR(nsm_dev_call(d, &(struct nsm_request){ .kind = NSM_REQUEST_ATTESTATION }, &resp, NULL),
                   -EIO);
}

/* Request bytes the client never sends, straight into the simulator. */
static void test_sim_raw_requests(void) {
        static const struct {
                const char *hex;
                enum nsm_error e;
        } cases[] = {
                { "6146", NSM_ERROR_INVALID_OPERATION },                                  /* "F" */
                { "ff", NSM_ERROR_INVALID_OPERATION },                                    /* not CBOR */
                { "a163466f6fa0", NSM_ERROR_INVALID_OPERATION },                          /* {"Foo": {}} */
                { "a16b4465736372696265504352a0", NSM_ERROR_INVALID_ARGUMENT },           /* no index */
                { "a169457874656e64504352a165696e64657810", NSM_ERROR_INVALID_ARGUMENT }, /* no data */
                { "a16b4465736372696265504352a165696e6465781920",
                  NSM_ERROR_INVALID_ARGUMENT },                                              /* truncated */
                { "a16b4465736372696265504352a165696e646578182a", NSM_ERROR_INVALID_INDEX }, /* index 42 */
        };
        struct nsm_sim *s = NULL;

        ASSERT_OK(nsm_sim_new(&(struct nsm_sim_config){}, &s));
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                uint8_t req[64], resp[NSM_RESPONSE_MAX];
                struct nsm_response out = {};
                size_t n = unhex(cases[i].hex, req, sizeof(req)), len = 0;

                ASSERT_OK(nsm_sim_transact(s, req, n, resp, &len));
                ASSERT_OK(nsm_response_decode(resp, len, &out, NULL));
                ASSERT_EQ(out.kind, NSM_RESPONSE_ERROR);
                if (out.error != cases[i].e) {
                        printf("# case %zu (%s): %s\n", i, cases[i].hex, nsm_error_to_name(out.error));
                        tap_failed_current = true;
                }
        }
        {
                static uint8_t huge[NSM_REQUEST_MAX + 1];
                uint8_t resp[NSM_RESPONSE_MAX];
                struct nsm_response out = {};
                size_t len = 0;

                ASSERT_OK(nsm_sim_transact(s, huge, sizeof(huge), resp, &len));
                ASSERT_OK(nsm_response_decode(resp, len, &out, NULL));
                ASSERT_EQ(out.error, NSM_ERROR_INPUT_TOO_LARGE);
        }
        /* No document maker: Attestation is an InternalError. */
        {
                _cleanup_(nsm_dev_freep) struct nsm_dev *d = NULL;
                uint8_t *doc = NULL;
                size_t len = 0;

                ASSERT_OK(nsm_dev_new_sim(s, &d));
                ASSERT_ERR(nsm_get_attestation(d, NULL, NULL, NULL, &doc, &len, NULL), -EIO);
                ASSERT_TRUE(doc == NULL);
        }
}

#define SIM_TESTS                                                                                         \
        TEST("/nsm/sim/boot-pcrs", test_sim_boot_pcrs), TEST("/nsm/sim/extend", test_sim_extend),         \
                TEST("/nsm/sim/lock", test_sim_lock), TEST("/nsm/sim/describe", test_sim_describe),       \
                TEST("/nsm/sim/random", test_sim_random),                                                 \
                TEST("/nsm/sim/attestation", test_sim_attestation), TEST("/nsm/sim/caps", test_sim_caps), \
                TEST("/nsm/sim/raw-requests", test_sim_raw_requests),
#else
#define SIM_TESTS
#endif

TAP_MAIN(TEST("/nsm/request/bytes", test_request_bytes),
         TEST("/nsm/request/attestation-spki", test_request_attestation_spki),
         TEST("/nsm/request/round-trip", test_request_round_trip),
         TEST("/nsm/request/too-large", test_request_too_large),
         TEST("/nsm/request/decode-negative", test_request_decode_negative),
         TEST("/nsm/response/round-trip", test_response_round_trip),
         TEST("/nsm/response/bytes", test_response_bytes),
         TEST("/nsm/response/key-order", test_response_key_order),
         TEST("/nsm/response/pcr-forms", test_response_describe_pcr_forms),
         TEST("/nsm/response/errors", test_error_table),
         TEST("/nsm/response/negative", test_response_negative),
         TEST("/nsm/response/oversized", test_response_oversized),
         TEST("/nsm/response/unknown-key", test_response_unknown_key),
         TEST("/nsm/response/mutations", test_response_mutations),
         TEST("/nsm/dev/refuses-before-sending", test_dev_refuses_before_sending),
         TEST("/nsm/dev/real", test_dev_real), SIM_TESTS)
