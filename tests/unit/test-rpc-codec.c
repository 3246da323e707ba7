/* CBOR codec: writer and reader primitives, every message both ways, and everything a decoder must refuse.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/rpc-calls.h"
#include "common/rpc-codec.h"
#include "tests/lib/rpc-reencode.h"
#include "tests/lib/rpc-samples.h"
#include "tests/lib/tap.h"

#define BUF_SIZE 8192

static size_t sample(size_t i, uint8_t *buf, size_t size, struct rpc_sample *s) {
        struct rpc_writer w;

        rpc_writer_init(&w, buf, size);
        if (rpc_sample_encode(i, &w, s) < 0)
                return 0;
        if (rpc_writer_finish(&w) < 0) {
                printf("# sample %zu does not encode: %d\n", i, w.err);
                return 0;
        }
        return w.len;
}

/* The decoder for a sample, by call and direction: re-encodes what it decoded. */
static int reencode(const struct rpc_sample *s, const uint8_t *b, size_t n, struct rpc_writer *w) {
        int r = s->request ? rpc_sample_reencode_request(s->call, b, n, w)
                           : rpc_sample_reencode_response(s->call, b, n, w);

        if (r < 0)
                return r;
        return rpc_writer_finish(w);
}

static int check(const struct rpc_sample *s, const uint8_t *b, size_t n) {
        const struct rpc_call_info *c = rpc_call_lookup(s->call);
        return s->request ? rpc_msg_check(c->request, b, n) : rpc_msg_check(c->response, b, n);
}

/* ---- writer and reader ---- */

static void test_writer_basic(void) {
        uint8_t buf[64];
        struct rpc_writer w;
        static const uint8_t want[] = { 0xa3, 0x01, 0x18, 0x64, 0x02, 0x43, 'a',
                                        'b',  'c',  0x03, 0x62, 'h',  'i' };

        rpc_writer_init(&w, buf, sizeof(buf));
        rpc_put_map(&w, 3);
        rpc_put_kv_uint(&w, 1, 100);
        rpc_put_kv_bytes(&w, 2, "abc", 3);
        rpc_put_kv_text(&w, 3, "hi", 2);
        ASSERT_OK(rpc_writer_finish(&w));
        ASSERT_EQ(w.len, sizeof(want));
        ASSERT_MEMEQ(buf, want, sizeof(want));
}

static void test_writer_full(void) {
        uint8_t buf[BUF_SIZE], small[BUF_SIZE];
        struct rpc_sample s;

        /* Every sample fails with -EMSGSIZE in any smaller buffer, and never writes past it. */
        for (size_t i = 0;; i++) {
                size_t n = sample(i, buf, sizeof(buf), &s);
                if (n == 0)
                        break;
                for (size_t size = 0; size < n; size++) {
                        struct rpc_writer w;
                        struct rpc_sample s2;

                        memset(small, 0xee, sizeof(small));
                        rpc_writer_init(&w, size ? small : NULL, size);
                        ASSERT_OK(rpc_sample_encode(i, &w, &s2));
                        ASSERT_ERR(rpc_writer_finish(&w), -EMSGSIZE);
                        ASSERT_TRUE(w.len <= size);
                        for (size_t j = size; j < sizeof(small); j++)
                                ASSERT_EQ(small[j], 0xee);
                }
        }
}

static void test_writer_invalid(void) {
        uint8_t buf[256];
        struct rpc_writer w;
        struct rpc_token_add_req add = { .label = RPC_SLICE_STR("x"), .pin = RPC_SLICE_STR("1234") };

        rpc_writer_init(&w, buf, sizeof(buf));
        rpc_put_text(&w, "a\0b", 3);
        ASSERT_ERR(rpc_writer_finish(&w), -EINVAL);

        rpc_writer_init(&w, buf, sizeof(buf));
        rpc_put_text(&w, "\xc0\x80", 2);
        ASSERT_ERR(rpc_writer_finish(&w), -EINVAL);

        rpc_writer_init(&w, buf, sizeof(buf));
        rpc_put_bytes(&w, NULL, 1);
        ASSERT_ERR(rpc_writer_finish(&w), -EINVAL);

        rpc_writer_init(&w, buf, sizeof(buf));
        rpc_put_bytes(&w, NULL, 0);
        ASSERT_OK(rpc_writer_finish(&w));
        ASSERT_EQ(w.len, 1);
        ASSERT_EQ(buf[0], 0x40);

        /* Out of the schema: the encoder refuses instead of sending what the peer rejects. */
        rpc_writer_init(&w, buf, sizeof(buf));
        rpc_login_req_encode(&w, &(struct rpc_login_req){ .slot = 1, .pin = RPC_SLICE_STR("123") });
        ASSERT_ERR(rpc_writer_finish(&w), -EINVAL);

        rpc_writer_init(&w, buf, sizeof(buf));
        rpc_token_add_req_encode(&w, &add); /* no keys */
        ASSERT_ERR(rpc_writer_finish(&w), -EINVAL);

        rpc_writer_init(&w, buf, sizeof(buf));
        rpc_crypto_req_encode(&w, &(struct rpc_crypto_req){ .key_id = RPC_KEY_ID_MAX + 1 });
        ASSERT_ERR(rpc_writer_finish(&w), -EINVAL);

        rpc_writer_init(&w, buf, sizeof(buf));
        rpc_page_resp_encode(&w, &(struct rpc_page_resp){ .n_tokens = 1 }); /* tokens NULL */
        ASSERT_ERR(rpc_writer_finish(&w), -EINVAL);

        rpc_writer_init(&w, buf, sizeof(buf));
        rpc_slot_req_encode(&w, &(struct rpc_slot_req){ 1 });
        w.err = -EMSGSIZE; /* sticky: nothing more is written */
        rpc_put_uint(&w, 1);
        ASSERT_EQ(w.len, 3);
}

static void test_reader_basic(void) {
        static const uint8_t b[] = { 0xa2, 0x01, 0x19, 0x01, 0x00, 0x02, 0x82, 0x41, 0x00, 0x60 };
        struct rpc_reader r;
        struct rpc_slice s;
        uint64_t v;
        size_t n;

        rpc_reader_init(&r, b, sizeof(b));
        ASSERT_OK(rpc_get_map(&r, 2, &n));
        ASSERT_EQ(n, 2);
        ASSERT_OK(rpc_get_uint(&r, 1, &v));
        ASSERT_EQ(v, 1);
        ASSERT_OK(rpc_get_uint(&r, 256, &v));
        ASSERT_EQ(v, 256);
        ASSERT_OK(rpc_get_uint(&r, 2, &v));
        ASSERT_OK(rpc_get_array(&r, 2, &n));
        ASSERT_EQ(n, 2);
        ASSERT_ERR(rpc_reader_end(&r), -EBADMSG); /* not everything consumed yet */
        ASSERT_OK(rpc_get_bytes(&r, 1, 1, &s));
        ASSERT_EQ(s.len, 1);
        ASSERT_TRUE(s.ptr == b + 8);
        ASSERT_OK(rpc_get_text(&r, 0, 0, &s));
        ASSERT_EQ(s.len, 0);
        ASSERT_OK(rpc_reader_end(&r));
        ASSERT_ERR(rpc_get_uint(&r, 10, &v), -EBADMSG); /* nothing left */
        ASSERT_ERR(rpc_reader_end(&r), -EBADMSG);       /* and the error sticks */
}

static void test_reader_limits(void) {
        static const uint8_t big_uint[] = { 0x19, 0x01, 0x00 };
        static const uint8_t map3[] = { 0xa3, 0, 0, 0, 0, 0, 0 };
        static const uint8_t map_huge[] = { 0xbb, 0, 0, 0, 1, 0, 0, 0, 0 };
        static const uint8_t arr_bytes_left[] = { 0x84, 0, 0, 0 };
        static const uint8_t bytes_short[] = { 0x5a, 0xff, 0xff, 0xff, 0xff, 0 };
        static const uint8_t bytes_huge[] = { 0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0 };
        static const uint8_t text3[] = { 0x63, 'a', 'b', 'c' };
        struct rpc_reader r;
        struct rpc_slice s = { (const uint8_t *) "x", 99 };
        uint64_t v = 7;
        size_t n = 7;

        rpc_reader_init(&r, big_uint, sizeof(big_uint));
        ASSERT_ERR(rpc_get_uint(&r, 255, &v), -EBADMSG);
        ASSERT_EQ(v, 7); /* untouched */
        ASSERT_ERR(r.err, -EBADMSG);

        rpc_reader_init(&r, map3, sizeof(map3));
        ASSERT_ERR(rpc_get_map(&r, 2, &n), -EBADMSG);
        rpc_reader_init(&r, map3, sizeof(map3));
        ASSERT_OK(rpc_get_map(&r, 3, &n));
        rpc_reader_init(&r, map3, 6); /* 3 entries need 6 more bytes */
        ASSERT_ERR(rpc_get_map(&r, 3, &n), -EBADMSG);
        rpc_reader_init(&r, map_huge, sizeof(map_huge));
        ASSERT_ERR(rpc_get_map(&r, SIZE_MAX, &n), -EBADMSG);
        n = 7;
        rpc_reader_init(&r, arr_bytes_left, sizeof(arr_bytes_left));
        ASSERT_ERR(rpc_get_array(&r, 100, &n), -EBADMSG);
        ASSERT_EQ(n, 7);

        rpc_reader_init(&r, bytes_short, sizeof(bytes_short));
        ASSERT_ERR(rpc_get_bytes(&r, 0, SIZE_MAX, &s), -EBADMSG);
        rpc_reader_init(&r, bytes_huge, sizeof(bytes_huge));
        ASSERT_ERR(rpc_get_bytes(&r, 0, SIZE_MAX, &s), -EBADMSG);
        ASSERT_EQ(s.len, 99);

        rpc_reader_init(&r, text3, sizeof(text3));
        ASSERT_ERR(rpc_get_text(&r, 4, 10, &s), -EBADMSG);
        rpc_reader_init(&r, text3, sizeof(text3));
        ASSERT_ERR(rpc_get_text(&r, 0, 2, &s), -EBADMSG);
        rpc_reader_init(&r, text3, sizeof(text3));
        ASSERT_ERR(rpc_get_bytes(&r, 0, 10, &s), -EBADMSG); /* text is not bytes */
        rpc_reader_init(&r, text3, sizeof(text3));
        ASSERT_OK(rpc_get_text(&r, 3, 3, &s));

        rpc_reader_init(&r, NULL, 0);
        ASSERT_ERR(rpc_get_uint(&r, 1, &v), -EBADMSG);
}

static void test_reader_types(void) {
        /* Each of these is a single item that is not an unsigned integer. */
        static const uint8_t items[][9] = {
                { 0x20 },             /* -1 */
                { 0x38, 0x10 },       /* -17 */
                { 0x40 },             /* bytes */
                { 0x60 },             /* text */
                { 0x80 },             /* array */
                { 0xa0 },             /* map */
                { 0xc1, 0x01 },       /* tag 1 */
                { 0xf4 },             /* false */
                { 0xf6 },             /* null */
                { 0xf7 },             /* undefined */
                { 0xf9, 0x3c, 0x00 }, /* 1.0 half */
                { 0xfa, 0x3f, 0x80, 0, 0 },
                { 0xfb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0 },
                { 0xff },       /* stray break */
                { 0x1c },       /* reserved */
                { 0xe0 },       /* unassigned simple */
                { 0xf8, 0x20 }, /* 1-byte simple */
                { 0x9f },       /* indefinite array */
                { 0xbf },       /* indefinite map */
                { 0x5f },       /* indefinite bytes */
                { 0x7f },       /* indefinite text */
        };
        static const size_t lens[] = { 1, 2, 1, 1, 1, 1, 2, 1, 1, 1, 3, 5, 9, 1, 1, 1, 2, 1, 1, 1, 1 };

        ASSERT_EQ(ELEMENTSOF(items), ELEMENTSOF(lens));
        for (size_t i = 0; i < ELEMENTSOF(items); i++) {
                struct rpc_reader r;
                uint64_t v;
                size_t n;
                struct rpc_slice s;

                rpc_reader_init(&r, items[i], lens[i]);
                ASSERT_ERR(rpc_get_uint(&r, UINT64_MAX, &v), -EBADMSG);
                if (i >= 17) {
                        /* Indefinite lengths are refused whatever type was asked for. */
                        rpc_reader_init(&r, items[i], lens[i]);
                        ASSERT_ERR(rpc_get_map(&r, 10, &n), -EBADMSG);
                        rpc_reader_init(&r, items[i], lens[i]);
                        ASSERT_ERR(rpc_get_array(&r, 10, &n), -EBADMSG);
                        rpc_reader_init(&r, items[i], lens[i]);
                        ASSERT_ERR(rpc_get_bytes(&r, 0, 10, &s), -EBADMSG);
                        rpc_reader_init(&r, items[i], lens[i]);
                        ASSERT_ERR(rpc_get_text(&r, 0, 10, &s), -EBADMSG);
                }
        }
}

static void test_reader_utf8(void) {
        static const struct {
                const char *s;
                size_t len;
                bool ok;
        } cases[] = {
                { "", 0, true },
                { "plain ascii", 11, true },
                { "\xc3\xa9", 2, true },
                { "\xe2\x82\xac", 3, true },
                { "\xf0\x9d\x84\x9e", 4, true },
                { "\xf4\x8f\xbf\xbf", 4, true }, /* U+10FFFF */
                { "\xed\x9f\xbf", 3, true },     /* U+D7FF */
                { "\xee\x80\x80", 3, true },     /* U+E000 */
                { "a\0b", 3, false },            /* NUL */
                { "\x80", 1, false },            /* stray continuation */
                { "\xc3", 1, false },            /* truncated */
                { "\xe2\x82", 2, false },
                { "\xf0\x9d\x84", 3, false },
                { "\xc0\x80", 2, false },         /* overlong NUL */
                { "\xc1\xbf", 2, false },         /* overlong */
                { "\xe0\x80\xaf", 3, false },     /* overlong */
                { "\xf0\x80\x80\xaf", 4, false }, /* overlong */
                { "\xed\xa0\x80", 3, false },     /* surrogate */
                { "\xed\xbf\xbf", 3, false },     /* surrogate */
                { "\xf4\x90\x80\x80", 4, false }, /* above U+10FFFF */
                { "\xf5\x80\x80\x80", 4, false },
                { "\xff", 1, false },
                { "\xc3\x28", 2, false }, /* bad continuation */
                { "\xe2\x28\xa1", 3, false },
                { "\xe2\x82\x28", 3, false },
                { "\xf0\x9d\x84\x28", 4, false },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                uint8_t buf[16];
                struct rpc_reader r;
                struct rpc_slice s;

                buf[0] = (uint8_t) (0x60 + cases[i].len);
                memcpy(buf + 1, cases[i].s, cases[i].len);
                rpc_reader_init(&r, buf, cases[i].len + 1);
                if (cases[i].ok) {
                        ASSERT_OK(rpc_get_text(&r, 0, 16, &s));
                        ASSERT_OK(rpc_reader_end(&r));
                } else {
                        if (rpc_get_text(&r, 0, 16, &s) != -EBADMSG)
                                TAP_FAIL_("case %zu accepted", i);
                }
        }
}

/* ---- messages ---- */

static void test_roundtrip_all(void) {
        uint8_t buf[BUF_SIZE], again[BUF_SIZE];
        struct rpc_sample s;
        size_t i, n;

        /* decode(encode(m)) re-encodes to the very same bytes, and the table's checker agrees. */
        for (i = 0; (n = sample(i, buf, sizeof(buf), &s)) > 0; i++) {
                struct rpc_writer w;

                rpc_writer_init(&w, again, sizeof(again));
                if (reencode(&s, buf, n, &w) < 0)
                        TAP_FAIL_("%s does not decode", s.name);
                ASSERT_EQ(w.len, n);
                ASSERT_MEMEQ(again, buf, n);
                ASSERT_OK(check(&s, buf, n));
        }
        ASSERT_EQ(i, 37);
}

static void test_roundtrip_fields(void) {
        uint8_t buf[BUF_SIZE];
        struct rpc_sample s;
        size_t n;

        n = sample(0, buf, sizeof(buf), &s);
        {
                struct rpc_hello_req m;
                ASSERT_OK(rpc_hello_req_decode(buf, n, &m));
                ASSERT_EQ(m.min_version, 1);
                ASSERT_EQ(m.max_version, 1);
                ASSERT_EQ(m.client.len, strlen("test-client 0.1.0"));
                ASSERT_MEMEQ(m.client.ptr, "test-client 0.1.0", m.client.len);
                ASSERT_TRUE(m.client.ptr > buf && m.client.ptr < buf + n); /* zero-copy */
        }
        n = sample(1, buf, sizeof(buf), &s);
        {
                struct rpc_hello_req m;
                ASSERT_OK(rpc_hello_req_decode(buf, n, &m));
                ASSERT_EQ(m.max_version, 3);
                ASSERT_EQ(m.client.len, 0); /* optional: empty */
        }
        n = sample(2, buf, sizeof(buf), &s);
        {
                struct rpc_hello_resp m;
                ASSERT_OK(rpc_hello_resp_decode(buf, n, &m));
                ASSERT_EQ(m.version, 1);
                ASSERT_TRUE(m.generation == UINT64_C(0xfedcba9876543210));
                ASSERT_EQ(m.max_tokens, 1024);
                ASSERT_TRUE(m.dev);
        }
        n = sample(7, buf, sizeof(buf), &s);
        {
                struct rpc_page_resp m = {};
                ASSERT_OK(rpc_page_resp_decode(buf, n, &m));
                ASSERT_EQ(m.generation, 99);
                ASSERT_EQ(m.next, 2);
                ASSERT_EQ(m.n_tokens_total, 5);
                ASSERT_EQ(m.n_tokens, 2);
                ASSERT_EQ(m.tokens[0].slot, 0x2345678);
                ASSERT_EQ(m.tokens[0].n_keys_total, 2);
                ASSERT_EQ(m.tokens[0].n_keys, 0);
                ASSERT_EQ(m.tokens[1].label.len, 1);
                rpc_page_resp_done(&m);
                ASSERT_TRUE(m.tokens == NULL);
                ASSERT_EQ(m.n_tokens, 0);
                rpc_page_resp_done(&m); /* twice is fine */
                rpc_page_resp_done(NULL);
        }
        n = sample(9, buf, sizeof(buf), &s);
        {
                struct rpc_page_resp m = {};
                ASSERT_OK(rpc_page_resp_decode(buf, n, &m));
                ASSERT_EQ(m.n_tokens, 0);
                ASSERT_TRUE(m.tokens == NULL);
                rpc_page_resp_done(&m);
        }
        n = sample(11, buf, sizeof(buf), &s);
        {
                struct rpc_token_info *m = calloc(1, sizeof(*m));
                ASSERT_TRUE(m);
                if (rpc_token_info_decode(buf, n, m) < 0) {
                        free(m);
                        TAP_FAIL_("%s", "token info does not decode");
                }
                ASSERT_EQ(m->n_keys, 2);
                ASSERT_EQ(m->keys[0].n_certs, 2);
                ASSERT_EQ(m->keys[1].n_certs, 1);
                ASSERT_EQ(m->keys[1].id, RPC_KEY_ID_MAX);
                ASSERT_EQ(m->keys[1].bits, 4096);
                ASSERT_EQ(m->keys[0].certs[1].len, sizeof(rpc_sample_cert2));
                ASSERT_MEMEQ(m->keys[0].certs[1].ptr, rpc_sample_cert2, sizeof(rpc_sample_cert2));
                ASSERT_EQ(m->keys[0].spki.len, sizeof(rpc_sample_spki));
                ASSERT_EQ(m->label.len, 15);
                free(m);
        }
        n = sample(15, buf, sizeof(buf), &s);
        {
                struct rpc_crypto_req m;
                ASSERT_OK(rpc_crypto_req_decode(buf, n, &m));
                ASSERT_EQ(m.slot, 3);
                ASSERT_EQ(m.key_id, 2);
                ASSERT_EQ(m.mech, RPC_MECH_RSA_PSS);
                ASSERT_EQ(m.hash, RPC_HASH_SHA256);
                ASSERT_EQ(m.mgf_hash, RPC_HASH_SHA256);
                ASSERT_EQ(m.salt_len, 32);
                ASSERT_EQ(m.ticket.len, RPC_TICKET_LEN);
                ASSERT_EQ(m.oaep_label.len, 0);
        }
        n = sample(16, buf, sizeof(buf), &s);
        {
                struct rpc_crypto_req m;
                ASSERT_OK(rpc_crypto_req_decode(buf, n, &m));
                ASSERT_EQ(m.ticket.len, 0); /* missing ticket decodes; the handler says NOT_LOGGED_IN */
                ASSERT_EQ(m.data.len, 0);
                ASSERT_EQ(m.mech, RPC_MECH_EDDSA);
        }
        n = sample(20, buf, sizeof(buf), &s);
        {
                struct rpc_token_add_req m;
                ASSERT_OK(rpc_token_add_req_decode(buf, n, &m));
                ASSERT_TRUE(m.replace);
                ASSERT_EQ(m.n_keys, 2);
                ASSERT_EQ(m.keys[1].id, 65535);
                ASSERT_EQ(m.pin.len, 11);
                ASSERT_MEMEQ(m.pin.ptr, "0000-secret", 11);
                /* Secrets are not copied: they point into the (secret) frame. */
                ASSERT_TRUE(m.pin.ptr > buf && m.pin.ptr < buf + n);
                ASSERT_TRUE(m.keys[0].key_pem.ptr > buf && m.keys[0].key_pem.ptr < buf + n);
        }
}

/* Build {keys...} by hand: pairs of (key, kind, value). */
enum { V_UINT, V_BYTES, V_TEXT, V_RAW };
struct kv {
        uint64_t key;
        int kind;
        uint64_t u;
        const char *p;
        size_t len;
};

static size_t build_map(uint8_t *buf, size_t size, const struct kv *kvs, size_t n) {
        struct rpc_writer w;

        rpc_writer_init(&w, buf, size);
        rpc_put_map(&w, n);
        for (size_t i = 0; i < n; i++) {
                rpc_put_uint(&w, kvs[i].key);
                switch (kvs[i].kind) {
                case V_UINT: rpc_put_uint(&w, kvs[i].u); break;
                case V_BYTES: rpc_put_bytes(&w, kvs[i].p, kvs[i].len); break;
                case V_TEXT:
                        /* bypass the writer's UTF-8 check: raw header + bytes */
                        if (w.len + 2 + kvs[i].len <= w.size && kvs[i].len < 24) {
                                buf[w.len++] = (uint8_t) (0x60 + kvs[i].len);
                                memcpy(buf + w.len, kvs[i].p, kvs[i].len);
                                w.len += kvs[i].len;
                        } else
                                rpc_put_text(&w, kvs[i].p, kvs[i].len);
                        break;
                case V_RAW:
                        memcpy(buf + w.len, kvs[i].p, kvs[i].len);
                        w.len += kvs[i].len;
                        break;
                }
        }
        return rpc_writer_finish(&w) < 0 ? 0 : w.len;
}

#define KV_U(k, v) \
        { k, V_UINT, v, NULL, 0 }
#define KV_B(k, s, n) \
        { k, V_BYTES, 0, s, n }
#define KV_T(k, s) \
        { k, V_TEXT, 0, s, sizeof(s) - 1 }
#define KV_R(k, s) \
        { k, V_RAW, 0, s, sizeof(s) - 1 }

static void test_login_negative(void) {
        static const char pin65[66] = "0123456789012345678901234567890123456789012345678901234567890123X";
        static const struct {
                const char *what;
                struct kv kvs[4];
                size_t n;
                int expect;
        } cases[] = {
                { "ok", { KV_U(1, 1), KV_B(2, "1234", 4) }, 2, 0 },
                { "ok reversed", { KV_B(2, "1234", 4), KV_U(1, 1) }, 2, 0 },
                { "pin max", { KV_U(1, 1), KV_B(2, pin65, 64) }, 2, 0 },
                { "missing pin", { KV_U(1, 1) }, 1, -EBADMSG },
                { "missing slot", { KV_B(2, "1234", 4) }, 1, -EBADMSG },
                { "empty", {}, 0, -EBADMSG },
                { "pin too short", { KV_U(1, 1), KV_B(2, "123", 3) }, 2, -EBADMSG },
                { "pin too long", { KV_U(1, 1), KV_B(2, pin65, 65) }, 2, -EBADMSG },
                { "unknown key", { KV_U(1, 1), KV_B(2, "1234", 4), KV_U(3, 0) }, 3, -EBADMSG },
                { "key 0", { KV_U(0, 1), KV_U(1, 1), KV_B(2, "1234", 4) }, 3, -EBADMSG },
                { "key 63", { KV_U(63, 1), KV_U(1, 1), KV_B(2, "1234", 4) }, 3, -EBADMSG },
                { "key 64", { KV_U(64, 1), KV_U(1, 1), KV_B(2, "1234", 4) }, 3, -EBADMSG },
                { "huge key", { KV_U(UINT64_MAX, 1), KV_U(1, 1) }, 2, -EBADMSG },
                { "duplicate slot", { KV_U(1, 1), KV_B(2, "1234", 4), KV_U(1, 2) }, 3, -EBADMSG },
                { "duplicate pin", { KV_B(2, "1234", 4), KV_U(1, 1), KV_B(2, "1234", 4) }, 3, -EBADMSG },
                { "slot > u32", { KV_U(1, UINT64_C(0x100000000)), KV_B(2, "1234", 4) }, 2, -EBADMSG },
                { "slot as bytes", { KV_B(1, "1", 1), KV_B(2, "1234", 4) }, 2, -EBADMSG },
                { "pin as text", { KV_U(1, 1), KV_T(2, "1234") }, 2, -EBADMSG },
                { "slot negative", { KV_R(1, "\x20"), KV_B(2, "1234", 4) }, 2, -EBADMSG },
                { "slot as bool", { KV_R(1, "\xf5"), KV_B(2, "1234", 4) }, 2, -EBADMSG },
                { "slot as null", { KV_R(1, "\xf6"), KV_B(2, "1234", 4) }, 2, -EBADMSG },
                { "slot tagged", { KV_R(1, "\xc1\x01"), KV_B(2, "1234", 4) }, 2, -EBADMSG },
                { "slot float", { KV_R(1, "\xf9\x3c\x00"), KV_B(2, "1234", 4) }, 2, -EBADMSG },
                { "pin indefinite",
                  { KV_U(1, 1), KV_R(2, "\x5f\x44"
                                        "1234"
                                        "\xff") },
                  2,
                  -EBADMSG },
                { "pin nested map", { KV_U(1, 1), KV_R(2, "\xa0") }, 2, -EBADMSG },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                uint8_t buf[256];
                struct rpc_login_req m = { .slot = 0xdead };
                size_t n = build_map(buf, sizeof(buf), cases[i].kvs, cases[i].n);
                int r;

                ASSERT_TRUE(n > 0);
                r = rpc_login_req_decode(buf, n, &m);
                if (r != cases[i].expect)
                        TAP_FAIL_("%s: got %d, expected %d", cases[i].what, r, cases[i].expect);
                if (r < 0 && m.slot != 0xdead)
                        TAP_FAIL_("%s: ret written on failure", cases[i].what);
        }
}

static void test_structure_negative(void) {
        static const uint8_t ok_ping[] = { 0xa0 };
        static const uint8_t ping_trailing[] = { 0xa0, 0x00 };
        static const uint8_t ping_two_maps[] = { 0xa0, 0xa0 };
        static const uint8_t ping_indef[] = { 0xbf, 0xff };
        static const uint8_t ping_array[] = { 0x80 };
        static const uint8_t ping_nonempty[] = { 0xa1, 0x01, 0x00 };
        static const uint8_t hello_indef[] = { 0xbf, 0x01, 0x01, 0x02, 0x01, 0xff };
        static const uint8_t hello_big_map[] = { 0xba, 0xff, 0xff, 0xff, 0xff, 0x01, 0x01, 0x02, 0x01 };
        static const uint8_t hello_v0[] = { 0xa2, 0x01, 0x00, 0x02, 0x01 };
        static const uint8_t hello_v256[] = { 0xa2, 0x01, 0x01, 0x02, 0x19, 0x01, 0x00 };
        static const uint8_t hello_text_key[] = { 0xa2, 0x61, '1', 0x01, 0x02, 0x01 };
        static const uint8_t hello_client_nul[] = { 0xa3, 0x01, 0x01, 0x02, 0x01, 0x03, 0x62, 'a', 0x00 };
        static const uint8_t hello_client_indef[] = { 0xa3, 0x01, 0x01, 0x02, 0x01,
                                                      0x03, 0x7f, 0x61, 'a',  0xff };
        static const uint8_t hello_ok_noncanonical[] = { 0xa2, 0x18, 0x01, 0x01, 0x02, 0x1a, 0, 0, 0, 0x01 };
        static const uint8_t hresp_dev_uint[] = { 0xa3, 0x01, 0x01, 0x02, 0x00, 0x05, 0x01 };
        static const uint8_t hresp_dev_true[] = { 0xa3, 0x01, 0x01, 0x02, 0x00, 0x05, 0xf5 };
        static const uint8_t ticket31[] = { 0xa1, 0x01, 0x58, 31 };
        static const uint8_t add_no_keys[] = { 0xa3, 0x01, 0x61, 'x', 0x02, 0x44,
                                               '1',  '2',  '3',  '4', 0x04, 0x80 };
        static const uint8_t token_label_empty[] = { 0xa2, 0x01, 0x00, 0x02, 0x60 };
        static const uint8_t page_tokens_huge[] = { 0xa2, 0x01, 0x00, 0x04, 0x9b, 0x7f, 0xff,
                                                    0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
        static const uint8_t page_tokens_129[] = { 0xa2, 0x01, 0x00, 0x04, 0x98, 129 };
        static const uint8_t page_tokens_short[] = { 0xa2, 0x01, 0x00, 0x04, 0x82, 0xa2,
                                                     0x01, 0x00, 0x02, 0x61, 'a' };
        static const uint8_t page_tokens_indef[] = { 0xa2, 0x01, 0x00, 0x04, 0x9f, 0xff };
        static const uint8_t page_token_bad[] = { 0xa2, 0x01, 0x00, 0x04, 0x82, 0xa2, 0x01, 0x00, 0x02,
                                                  0x61, 'a',  0xa2, 0x01, 0x00, 0x02, 0x61, 0xff };
        struct rpc_hello_req hq;
        struct rpc_hello_resp hr;
        struct rpc_login_resp lr;
        struct rpc_token_add_req ar;
        struct rpc_page_resp pr = {};
        struct rpc_token_info *ti = calloc(1, sizeof(*ti));

        ASSERT_TRUE(ti);
        ASSERT_OK(rpc_empty_decode(ok_ping, sizeof(ok_ping)));
        ASSERT_ERR(rpc_empty_decode(ok_ping, 0), -EBADMSG);
        ASSERT_ERR(rpc_empty_decode(NULL, 0), -EBADMSG);
        ASSERT_ERR(rpc_empty_decode(ping_trailing, sizeof(ping_trailing)), -EBADMSG);
        ASSERT_ERR(rpc_empty_decode(ping_two_maps, sizeof(ping_two_maps)), -EBADMSG);
        ASSERT_ERR(rpc_empty_decode(ping_indef, sizeof(ping_indef)), -EBADMSG);
        ASSERT_ERR(rpc_empty_decode(ping_array, sizeof(ping_array)), -EBADMSG);
        ASSERT_ERR(rpc_empty_decode(ping_nonempty, sizeof(ping_nonempty)), -EBADMSG);

        ASSERT_ERR(rpc_hello_req_decode(hello_indef, sizeof(hello_indef), &hq), -EBADMSG);
        ASSERT_ERR(rpc_hello_req_decode(hello_big_map, sizeof(hello_big_map), &hq), -EBADMSG);
        ASSERT_ERR(rpc_hello_req_decode(hello_v0, sizeof(hello_v0), &hq), -EBADMSG);
        ASSERT_ERR(rpc_hello_req_decode(hello_v256, sizeof(hello_v256), &hq), -EBADMSG);
        ASSERT_ERR(rpc_hello_req_decode(hello_text_key, sizeof(hello_text_key), &hq), -EBADMSG);
        ASSERT_ERR(rpc_hello_req_decode(hello_client_nul, sizeof(hello_client_nul), &hq), -EBADMSG);
        ASSERT_ERR(rpc_hello_req_decode(hello_client_indef, sizeof(hello_client_indef), &hq), -EBADMSG);
        /* Non-minimal integer encodings are valid CBOR and accepted. */
        ASSERT_OK(rpc_hello_req_decode(hello_ok_noncanonical, sizeof(hello_ok_noncanonical), &hq));
        ASSERT_EQ(hq.min_version, 1);

        /* Booleans are CBOR true/false, not integers. */
        ASSERT_ERR(rpc_hello_resp_decode(hresp_dev_uint, sizeof(hresp_dev_uint), &hr), -EBADMSG);
        ASSERT_OK(rpc_hello_resp_decode(hresp_dev_true, sizeof(hresp_dev_true), &hr));
        ASSERT_TRUE(hr.dev);

        ASSERT_ERR(rpc_login_resp_decode(ticket31, sizeof(ticket31), &lr), -EBADMSG);
        ASSERT_ERR(rpc_token_add_req_decode(add_no_keys, sizeof(add_no_keys), &ar), -EBADMSG);
        ASSERT_ERR(rpc_token_info_decode(token_label_empty, sizeof(token_label_empty), ti), -EBADMSG);
        free(ti);

        /* Counts are bounded before the allocation, and nothing leaks on failure. */
        ASSERT_ERR(rpc_page_resp_decode(page_tokens_huge, sizeof(page_tokens_huge), &pr), -EBADMSG);
        ASSERT_ERR(rpc_page_resp_decode(page_tokens_129, sizeof(page_tokens_129), &pr), -EBADMSG);
        ASSERT_ERR(rpc_page_resp_decode(page_tokens_short, sizeof(page_tokens_short), &pr), -EBADMSG);
        ASSERT_ERR(rpc_page_resp_decode(page_tokens_indef, sizeof(page_tokens_indef), &pr), -EBADMSG);
        ASSERT_ERR(rpc_page_resp_decode(page_token_bad, sizeof(page_token_bad), &pr), -EBADMSG);
        ASSERT_TRUE(pr.tokens == NULL);
}

/* Arrays past their schema limit: RPC_MAX_KEYS, RPC_MAX_CERTS, RPC_PAGE_MAX. */
static void test_counts_over_limit(void) {
        static uint8_t buf[1 << 20];
        static struct rpc_token_info tokens[RPC_PAGE_MAX + 1];
        struct rpc_writer w;
        struct rpc_page_resp pr = {};
        struct rpc_token_info *ti = calloc(1, sizeof(*ti));
        struct rpc_token_add_req ar;
        int r;

        ASSERT_TRUE(ti);
        for (size_t i = 0; i < ELEMENTSOF(tokens); i++)
                tokens[i] = (struct rpc_token_info){ .slot = (uint32_t) i, .label = RPC_SLICE_STR("t") };

        /* exactly RPC_PAGE_MAX: fine */
        rpc_writer_init(&w, buf, sizeof(buf));
        rpc_page_resp_encode(
                &w, &(struct rpc_page_resp){ .generation = 1, .n_tokens = RPC_PAGE_MAX, .tokens = tokens });
        ASSERT_OK(rpc_writer_finish(&w));
        ASSERT_OK(rpc_page_resp_decode(buf, w.len, &pr));
        ASSERT_EQ(pr.n_tokens, RPC_PAGE_MAX);
        ASSERT_EQ(pr.tokens[RPC_PAGE_MAX - 1].slot, RPC_PAGE_MAX - 1);
        rpc_page_resp_done(&pr);

        /* one more, written by hand */
        rpc_writer_init(&w, buf, sizeof(buf));
        rpc_put_map(&w, 2);
        rpc_put_kv_uint(&w, 1, 1);
        rpc_put_uint(&w, 4);
        rpc_put_array(&w, RPC_PAGE_MAX + 1);
        for (size_t i = 0; i <= RPC_PAGE_MAX; i++) {
                rpc_put_map(&w, 2);
                rpc_put_kv_uint(&w, 1, i);
                rpc_put_kv_text(&w, 2, "t", 1);
        }
        ASSERT_OK(rpc_writer_finish(&w));
        ASSERT_ERR(rpc_page_resp_decode(buf, w.len, &pr), -EBADMSG);

        /* the encoder refuses it too */
        rpc_writer_init(&w, buf, sizeof(buf));
        rpc_page_resp_encode(&w, &(struct rpc_page_resp){
                                         .generation = 1, .n_tokens = RPC_PAGE_MAX + 1, .tokens = tokens });
        ASSERT_ERR(rpc_writer_finish(&w), -EINVAL);

        /* RPC_MAX_KEYS + 1 keys in a token */
        rpc_writer_init(&w, buf, sizeof(buf));
        rpc_put_map(&w, 3);
        rpc_put_kv_uint(&w, 1, 1);
        rpc_put_kv_text(&w, 2, "t", 1);
        rpc_put_uint(&w, 5);
        rpc_put_array(&w, RPC_MAX_KEYS + 1);
        for (size_t i = 0; i <= RPC_MAX_KEYS; i++) {
                rpc_put_map(&w, 1);
                rpc_put_kv_uint(&w, 1, i);
        }
        ASSERT_OK(rpc_writer_finish(&w));
        ASSERT_ERR(rpc_token_info_decode(buf, w.len, ti), -EBADMSG);
        /* ... and RPC_MAX_KEYS is fine */
        rpc_writer_init(&w, buf, sizeof(buf));
        rpc_put_map(&w, 3);
        rpc_put_kv_uint(&w, 1, 1);
        rpc_put_kv_text(&w, 2, "t", 1);
        rpc_put_uint(&w, 5);
        rpc_put_array(&w, RPC_MAX_KEYS);
        for (size_t i = 0; i < RPC_MAX_KEYS; i++) {
                rpc_put_map(&w, 1);
                rpc_put_kv_uint(&w, 1, i);
        }
        ASSERT_OK(rpc_writer_finish(&w));
        ASSERT_OK(rpc_token_info_decode(buf, w.len, ti));
        ASSERT_EQ(ti->n_keys, RPC_MAX_KEYS);

        /* RPC_MAX_CERTS + 1 certificates */
        rpc_writer_init(&w, buf, sizeof(buf));
        rpc_put_map(&w, 3);
        rpc_put_kv_uint(&w, 1, 1);
        rpc_put_kv_text(&w, 2, "t", 1);
        rpc_put_uint(&w, 5);
        rpc_put_array(&w, 1);
        rpc_put_map(&w, 2);
        rpc_put_kv_uint(&w, 1, 7);
        rpc_put_uint(&w, 6);
        rpc_put_array(&w, RPC_MAX_CERTS + 1);
        for (size_t i = 0; i <= RPC_MAX_CERTS; i++)
                rpc_put_bytes(&w, "c", 1);
        ASSERT_OK(rpc_writer_finish(&w));
        ASSERT_ERR(rpc_token_info_decode(buf, w.len, ti), -EBADMSG);
        free(ti);

        /* TOKEN_ADD with RPC_MAX_KEYS + 1 keys */
        rpc_writer_init(&w, buf, sizeof(buf));
        rpc_put_map(&w, 3);
        rpc_put_kv_text(&w, 1, "t", 1);
        rpc_put_kv_bytes(&w, 2, "1234", 4);
        rpc_put_uint(&w, 4);
        rpc_put_array(&w, RPC_MAX_KEYS + 1);
        for (size_t i = 0; i <= RPC_MAX_KEYS; i++) {
                rpc_put_map(&w, 4);
                rpc_put_kv_uint(&w, 1, i);
                rpc_put_kv_text(&w, 2, "k", 1);
                rpc_put_kv_bytes(&w, 3, "K", 1);
                rpc_put_kv_bytes(&w, 4, "C", 1);
        }
        ASSERT_OK(rpc_writer_finish(&w));
        r = rpc_token_add_req_decode(buf, w.len, &ar);
        ASSERT_ERR(r, -EBADMSG);
}

/* Lengths past their schema limit, one field at a time. */
static void test_lengths_over_limit(void) {
        static uint8_t big[RPC_CHAIN_PEM_MAX + 1];
        static uint8_t buf[1 << 18];
        struct rpc_writer w;
        struct rpc_crypto_req cq;
        struct rpc_crypto_resp cr;
        struct rpc_token_add_req ar;
        struct rpc_hello_resp hr;

        memset(big, 'a', sizeof(big));

#define CRYPTO_WITH(k_, l_, e_)                                         \
        do {                                                            \
                rpc_writer_init(&w, buf, sizeof(buf));                  \
                rpc_put_map(&w, (k_) == 8 ? 4 : 5);                     \
                rpc_put_kv_uint(&w, 1, 1);                              \
                rpc_put_kv_uint(&w, 2, 1);                              \
                rpc_put_kv_uint(&w, 4, 1);                              \
                if ((k_) != 8)                                          \
                        rpc_put_kv_bytes(&w, 8, "d", 1);                \
                rpc_put_kv_bytes(&w, k_, big, l_);                      \
                ASSERT_OK(rpc_writer_finish(&w));                       \
                ASSERT_ERR(rpc_crypto_req_decode(buf, w.len, &cq), e_); \
        } while (0)

        CRYPTO_WITH(8, RPC_DATA_MAX, 0);
        CRYPTO_WITH(8, RPC_DATA_MAX + 1, -EBADMSG);
        CRYPTO_WITH(9, RPC_OAEP_LABEL_MAX, 0);
        CRYPTO_WITH(9, RPC_OAEP_LABEL_MAX + 1, -EBADMSG);
        CRYPTO_WITH(3, RPC_TICKET_LEN, 0);
        CRYPTO_WITH(3, RPC_TICKET_LEN - 1, -EBADMSG);
        CRYPTO_WITH(3, RPC_TICKET_LEN + 1, -EBADMSG);
        CRYPTO_WITH(3, 0, -EBADMSG);

        rpc_writer_init(&w, buf, sizeof(buf));
        rpc_put_map(&w, 1);
        rpc_put_kv_bytes(&w, 1, big, RPC_SIG_MAX + 1);
        ASSERT_OK(rpc_writer_finish(&w));
        ASSERT_ERR(rpc_crypto_resp_decode(buf, w.len, &cr), -EBADMSG);

        rpc_writer_init(&w, buf, sizeof(buf));
        rpc_put_map(&w, 3);
        rpc_put_kv_uint(&w, 1, 1);
        rpc_put_kv_uint(&w, 2, 1);
        rpc_put_kv_text(&w, 3, (const char *) big, RPC_TEXT_MAX + 1);
        ASSERT_OK(rpc_writer_finish(&w));
        ASSERT_ERR(rpc_hello_resp_decode(buf, w.len, &hr), -EBADMSG);

#define ADD_WITH(ll_, pl_, cl_, e_)                                        \
        do {                                                               \
                rpc_writer_init(&w, buf, sizeof(buf));                     \
                rpc_put_map(&w, 3);                                        \
                rpc_put_kv_text(&w, 1, (const char *) big, ll_);           \
                rpc_put_kv_bytes(&w, 2, "1234", 4);                        \
                rpc_put_uint(&w, 4);                                       \
                rpc_put_array(&w, 1);                                      \
                rpc_put_map(&w, 4);                                        \
                rpc_put_kv_uint(&w, 1, 1);                                 \
                rpc_put_kv_text(&w, 2, "k", 1);                            \
                rpc_put_kv_bytes(&w, 3, big, pl_);                         \
                rpc_put_kv_bytes(&w, 4, big, cl_);                         \
                ASSERT_OK(rpc_writer_finish(&w));                          \
                ASSERT_ERR(rpc_token_add_req_decode(buf, w.len, &ar), e_); \
        } while (0)

        ADD_WITH(RPC_LABEL_MAX, RPC_KEY_PEM_MAX, RPC_CHAIN_PEM_MAX - 200, 0);
        ADD_WITH(RPC_LABEL_MAX + 1, 1, 1, -EBADMSG);
        ADD_WITH(0, 1, 1, -EBADMSG);
        ADD_WITH(1, RPC_KEY_PEM_MAX + 1, 1, -EBADMSG);
        ADD_WITH(1, 0, 1, -EBADMSG);
        ADD_WITH(1, 1, 0, -EBADMSG);
        ADD_WITH(1, 1, RPC_CHAIN_PEM_MAX - 200, 0);
}

/* Every prefix of a valid message is invalid, and so is every valid message with a byte added. */
static void test_truncated_and_trailing(void) {
        uint8_t buf[BUF_SIZE];
        struct rpc_sample s;
        size_t n;

        for (size_t i = 0; (n = sample(i, buf, sizeof(buf) - 1, &s)) > 0; i++) {
                for (size_t t = 0; t < n; t++) {
                        int r = check(&s, buf, t);
                        if (r != -EBADMSG)
                                TAP_FAIL_("%s truncated to %zu: %d", s.name, t, r);
                }
                buf[n] = 0;
                ASSERT_ERR(check(&s, buf, n + 1), -EBADMSG);
                ASSERT_OK(check(&s, buf, n));
        }
}

static void test_decoder_ret_untouched(void) {
        uint8_t buf[BUF_SIZE];
        struct rpc_sample s;
        size_t n = sample(7, buf, sizeof(buf), &s);
        struct rpc_page_resp pr;
        struct rpc_token_info *ti = malloc(sizeof(*ti)), *copy = malloc(sizeof(*copy));

        ASSERT_TRUE(ti && copy);
        memset(&pr, 0x5a, sizeof(pr));
        ASSERT_ERR(rpc_page_resp_decode(buf, n - 1, &pr), -EBADMSG);
        for (size_t i = 0; i < sizeof(pr); i++)
                ASSERT_EQ(((uint8_t *) &pr)[i], 0x5a);

        n = sample(11, buf, sizeof(buf), &s);
        memset(ti, 0xa5, sizeof(*ti));
        memcpy(copy, ti, sizeof(*ti));
        ASSERT_ERR(rpc_token_info_decode(buf, n - 1, ti), -EBADMSG);
        ASSERT_MEMEQ(ti, copy, sizeof(*ti));
        free(ti);
        free(copy);
}

/* Every single-bit flip, every byte set to 0x00 and 0xff, through the call table's checkers:
 * the decoder must succeed or fail with -EBADMSG, never crash, never leak (valgrind). */
static void test_mutations(void) {
        uint8_t orig[BUF_SIZE], m[BUF_SIZE];
        struct rpc_sample s;
        size_t n, total = 0, accepted = 0;

        for (size_t i = 0; (n = sample(i, orig, sizeof(orig), &s)) > 0; i++) {
                for (size_t pos = 0; pos < n; pos++) {
                        for (int v = 0; v < 10; v++) {
                                int r;

                                memcpy(m, orig, n);
                                if (v < 8)
                                        m[pos] ^= (uint8_t) (1u << v);
                                else
                                        m[pos] = v == 8 ? 0x00 : 0xff;
                                r = check(&s, m, n);
                                total++;
                                if (r == 0)
                                        accepted++;
                                else if (r != -EBADMSG)
                                        TAP_FAIL_("%s byte %zu variant %d: %d", s.name, pos, v, r);
                                /* the other direction's checker must not crash on it either */
                                {
                                        struct rpc_sample o = s;
                                        o.request = !s.request;
                                        r = check(&o, m, n);
                                        if (r != 0 && r != -EBADMSG)
                                                TAP_FAIL_("%s (other side) byte %zu: %d", s.name, pos, r);
                                }
                        }
                }
                for (size_t t = 0; t < n; t++)
                        if (check(&s, orig, t) != -EBADMSG)
                                TAP_FAIL_("%s truncated to %zu accepted", s.name, t);
        }
        printf("# %zu mutations, %zu still valid\n", total, accepted);
        ASSERT_TRUE(total > 5000);
}

/* Every sample decoded by every call's checkers: none may crash, leak or report anything but
 * 0 / -EBADMSG. */
static void test_cross_decode(void) {
        uint8_t buf[BUF_SIZE];
        struct rpc_sample s;
        size_t n;

        for (size_t i = 0; (n = sample(i, buf, sizeof(buf), &s)) > 0; i++)
                for (unsigned c = 0; c < _RPC_CALL_MAX; c++) {
                        const struct rpc_call_info *info = rpc_call_lookup(c);
                        int a = rpc_msg_check(info->request, buf, n),
                            b = rpc_msg_check(info->response, buf, n);
                        ASSERT_TRUE(a == 0 || a == -EBADMSG);
                        ASSERT_TRUE(b == 0 || b == -EBADMSG);
                }
}

/* STATS: every counter array capped by the schema, the page by RPC_PAGE_MAX, the token's label and slot
 * required. A STATS answer is built by hand around one token map whose field k carries an array of n
 * counters. */
static int stats_with_array(unsigned k, size_t n, uint64_t v) {
        static uint8_t buf[1 << 16];
        struct rpc_stats_resp m = {};
        struct rpc_writer w;
        int r;

        rpc_writer_init(&w, buf, sizeof(buf));
        rpc_put_map(&w, 2);
        rpc_put_kv_uint(&w, 1, 1);
        rpc_put_uint(&w, 4);
        rpc_put_array(&w, 1);
        rpc_put_map(&w, 3);
        rpc_put_kv_uint(&w, 1, 7);
        rpc_put_kv_text(&w, 2, "web", 3);
        rpc_put_uint(&w, k);
        rpc_put_array(&w, n);
        for (size_t i = 0; i < MIN(n, (size_t) 64); i++) /* a larger count declares more than follows */
                if (k == 5) {                            /* keys: maps {1: id, 2: [v]} */
                        rpc_put_map(&w, 2);
                        rpc_put_kv_uint(&w, 1, i);
                        rpc_put_uint(&w, 2);
                        rpc_put_array(&w, 1);
                        rpc_put_uint(&w, v);
                } else
                        rpc_put_uint(&w, v);
        if (rpc_writer_finish(&w) < 0)
                return -EIO;
        r = rpc_stats_resp_decode(buf, w.len, &m);
        if (r >= 0 && (m.n_tokens != 1 || m.tokens[0].slot != 7))
                r = -EIO;
        rpc_stats_resp_done(&m);
        return r;
}

static void test_stats_negative(void) {
        static const uint8_t no_slot[] = { 0xa2, 0x01, 0x01, 0x04, 0x81, 0xa1, 0x02, 0x61, 0x41 };
        static const uint8_t no_label[] = { 0xa2, 0x01, 0x01, 0x04, 0x81, 0xa1, 0x01, 0x07 };
        static const uint8_t long_label[] = { 0xa2, 0x01, 0x01, 0x04, 0x81, 0xa2, 0x01, 0x07, 0x02,
                                              0x78, 33,   'a',  'a',  'a',  'a',  'a',  'a',  'a',
                                              'a',  'a',  'a',  'a',  'a',  'a',  'a',  'a',  'a',
                                              'a',  'a',  'a',  'a',  'a',  'a',  'a',  'a',  'a',
                                              'a',  'a',  'a',  'a',  'a',  'a',  'a',  'a' };
        static const uint8_t bounds_text[] = { 0xa2, 0x01, 0x01, 0x05, 0x81, 0x61, 0x41 };
        static const uint8_t no_generation[] = { 0xa1, 0x02, 0x00 };
        struct rpc_stats_resp m = {};

        /* at the caps: fine; one more: refused */
        ASSERT_OK(stats_with_array(6, RPC_STATS_STATUS_MAX, UINT64_MAX));
        ASSERT_ERR(stats_with_array(6, RPC_STATS_STATUS_MAX + 1, 1), -EBADMSG);
        ASSERT_OK(stats_with_array(9, RPC_STATS_BUCKETS_MAX, 3));
        ASSERT_ERR(stats_with_array(9, RPC_STATS_BUCKETS_MAX + 1, 3), -EBADMSG);
        ASSERT_OK(stats_with_array(5, RPC_MAX_KEYS, 1));
        ASSERT_ERR(stats_with_array(5, RPC_MAX_KEYS + 1, 1), -EBADMSG);
        /* a count larger than the bytes left is refused before anything is allocated */
        ASSERT_ERR(stats_with_array(9, 0x7fffffff, 0), -EBADMSG);
        ASSERT_ERR(stats_with_array(6, 65, 0), -EBADMSG);
        /* required fields, lengths, types */
        ASSERT_ERR(rpc_stats_resp_decode(no_slot, sizeof(no_slot), &m), -EBADMSG);
        ASSERT_ERR(rpc_stats_resp_decode(no_label, sizeof(no_label), &m), -EBADMSG);
        ASSERT_ERR(rpc_stats_resp_decode(long_label, sizeof(long_label), &m), -EBADMSG);
        ASSERT_ERR(rpc_stats_resp_decode(bounds_text, sizeof(bounds_text), &m), -EBADMSG);
        ASSERT_ERR(rpc_stats_resp_decode(no_generation, sizeof(no_generation), &m), -EBADMSG);
        ASSERT_EQ(m.n_tokens, 0);
        ASSERT_TRUE(m.tokens == NULL);
}

static void test_names(void) {
        ASSERT_STREQ(rpc_key_type_to_string(RPC_KEY_RSA), "rsa");
        ASSERT_STREQ(rpc_key_type_to_string(RPC_KEY_ED25519), "ed25519");
        ASSERT_TRUE(rpc_key_type_to_string(_RPC_KEY_MAX) == NULL);
        ASSERT_TRUE(rpc_key_type_to_string(_RPC_KEY_INVALID) == NULL);
        for (int m = 0; m < _RPC_MECH_MAX; m++)
                ASSERT_TRUE(rpc_mech_to_string(m) != NULL);
        ASSERT_STREQ(rpc_mech_to_string(RPC_MECH_RSA_OAEP), "rsa-oaep");
        ASSERT_TRUE(rpc_mech_to_string(_RPC_MECH_MAX) == NULL);
        ASSERT_TRUE(rpc_mech_to_string(-1) == NULL);
}

TAP_MAIN(TEST("/rpc/codec/writer/basic", test_writer_basic),
         TEST("/rpc/codec/writer/full", test_writer_full),
         TEST("/rpc/codec/writer/invalid", test_writer_invalid),
         TEST("/rpc/codec/reader/basic", test_reader_basic),
         TEST("/rpc/codec/reader/limits", test_reader_limits),
         TEST("/rpc/codec/reader/types", test_reader_types),
         TEST("/rpc/codec/reader/utf8", test_reader_utf8),
         TEST("/rpc/codec/roundtrip/all", test_roundtrip_all),
         TEST("/rpc/codec/roundtrip/fields", test_roundtrip_fields),
         TEST("/rpc/codec/negative/login", test_login_negative),
         TEST("/rpc/codec/negative/structure", test_structure_negative),
         TEST("/rpc/codec/negative/counts", test_counts_over_limit),
         TEST("/rpc/codec/negative/lengths", test_lengths_over_limit),
         TEST("/rpc/codec/negative/stats", test_stats_negative),
         TEST("/rpc/codec/negative/truncated-trailing", test_truncated_and_trailing),
         TEST("/rpc/codec/negative/ret-untouched", test_decoder_ret_untouched),
         TEST("/rpc/codec/mutations", test_mutations), TEST("/rpc/codec/cross-decode", test_cross_decode),
         TEST("/rpc/codec/names", test_names))
