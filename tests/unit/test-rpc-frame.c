/* Frame header: byte layout, every check rpc_header_decode() makes, and every truncation. */
#include <errno.h>
#include <string.h>

#include "common/rpc-frame.h"
#include "tests/lib/tap.h"

static const uint8_t golden[RPC_HEADER_SIZE] = {
        'E', 'A', 'C', '1', 0x01, 0x01, 0x05, 0x07, 0xde, 0xad, 0xbe, 0xef, 0x00, 0x01, 0x00, 0x00,
};

static void test_encode_layout(void) {
        struct rpc_header h = {
                .magic = RPC_MAGIC,
                .version = 1,
                .kind = RPC_KIND_RESPONSE,
                .call = 5,
                .status = 7,
                .request_id = 0xdeadbeef,
                .body_len = 0x10000,
        };
        uint8_t out[RPC_HEADER_SIZE];

        rpc_header_encode(&h, out);
        ASSERT_MEMEQ(out, golden, sizeof(golden));
}

static void test_decode_roundtrip(void) {
        struct rpc_header h;

        ASSERT_OK(rpc_header_decode(golden, RPC_CHANNEL_DATA, &h));
        ASSERT_EQ(h.magic, RPC_MAGIC);
        ASSERT_EQ(h.version, 1);
        ASSERT_EQ(h.kind, RPC_KIND_RESPONSE);
        ASSERT_EQ(h.call, 5);
        ASSERT_EQ(h.status, 7);
        ASSERT_EQ(h.request_id, 0xdeadbeef);
        ASSERT_EQ(h.body_len, RPC_MAX_BODY_DATA);

        for (uint32_t len = 0; len < 70000; len += 997) {
                struct rpc_header in = { RPC_MAGIC, 1, RPC_KIND_REQUEST, 9, 0, len * 31u, len }, out;
                uint8_t b[RPC_HEADER_SIZE];

                rpc_header_encode(&in, b);
                ASSERT_OK(rpc_header_decode(b, RPC_CHANNEL_CONTROL, &out));
                ASSERT_MEMEQ(&in, &out, sizeof(in));
        }
}

static int decode_with(size_t off, uint8_t v, enum rpc_channel ch, struct rpc_header *h) {
        uint8_t b[RPC_HEADER_SIZE];

        memcpy(b, golden, sizeof(b));
        b[off] = v;
        return rpc_header_decode(b, ch, h);
}

static void test_decode_negative(void) {
        struct rpc_header h = { .request_id = 42 };
        uint8_t b[RPC_HEADER_SIZE];

        ASSERT_ERR(decode_with(0, 'e', RPC_CHANNEL_DATA, &h), -EBADMSG);
        ASSERT_ERR(decode_with(3, '2', RPC_CHANNEL_DATA, &h), -EBADMSG);
        ASSERT_ERR(decode_with(4, 0, RPC_CHANNEL_DATA, &h), -EPROTONOSUPPORT);
        ASSERT_ERR(decode_with(4, RPC_VERSION_MAX + 1, RPC_CHANNEL_DATA, &h), -EPROTONOSUPPORT);
        ASSERT_ERR(decode_with(4, 0xff, RPC_CHANNEL_DATA, &h), -EPROTONOSUPPORT);
        ASSERT_ERR(decode_with(5, 2, RPC_CHANNEL_DATA, &h), -EBADMSG);
        ASSERT_ERR(decode_with(5, 0xff, RPC_CHANNEL_DATA, &h), -EBADMSG);
        /* responses: a status we do not know */
        ASSERT_ERR(decode_with(7, _RPC_STATUS_MAX, RPC_CHANNEL_DATA, &h), -EBADMSG);
        ASSERT_OK(decode_with(7, _RPC_STATUS_MAX - 1, RPC_CHANNEL_DATA, &h));
        h.request_id = 42;
        /* requests carry no status */
        memcpy(b, golden, sizeof(b));
        b[5] = RPC_KIND_REQUEST;
        ASSERT_ERR(rpc_header_decode(b, RPC_CHANNEL_DATA, &h), -EBADMSG);
        b[7] = 0;
        ASSERT_OK(rpc_header_decode(b, RPC_CHANNEL_DATA, &h));
        h.request_id = 42;

        /* lengths: data 64 KiB, control 1 MiB */
        ASSERT_ERR(decode_with(15, 1, RPC_CHANNEL_DATA, &h), -EMSGSIZE);
        ASSERT_OK(decode_with(15, 1, RPC_CHANNEL_CONTROL, &h));
        h.request_id = 42;
        ASSERT_ERR(decode_with(12, 0xff, RPC_CHANNEL_CONTROL, &h), -EMSGSIZE);
        memcpy(b, golden, sizeof(b));
        b[13] = 0x10; /* 0x00100000 = 1 MiB */
        b[14] = 0;
        b[15] = 0;
        ASSERT_OK(rpc_header_decode(b, RPC_CHANNEL_CONTROL, &h));
        h.request_id = 42;
        b[15] = 1;
        ASSERT_ERR(rpc_header_decode(b, RPC_CHANNEL_CONTROL, &h), -EMSGSIZE);

        ASSERT_ERR(rpc_header_decode(golden, _RPC_CHANNEL_MAX, &h), -EINVAL);
        ASSERT_ERR(rpc_header_decode(golden, _RPC_CHANNEL_INVALID, &h), -EINVAL);
        ASSERT_ERR(rpc_header_decode(golden, RPC_CHANNEL_DATA, NULL), -EINVAL);
        /* ret is written only on success */
        ASSERT_EQ(h.request_id, 42);
}

/* Every single-bit flip of a valid header decodes or fails with one of the documented errors. */
static void test_decode_bitflips(void) {
        for (size_t i = 0; i < RPC_HEADER_SIZE * 8; i++) {
                uint8_t b[RPC_HEADER_SIZE];
                struct rpc_header h;
                int r;

                memcpy(b, golden, sizeof(b));
                b[i / 8] ^= (uint8_t) (1u << (i % 8));
                r = rpc_header_decode(b, RPC_CHANNEL_DATA, &h);
                if (i / 8 == 4 && b[4] >= RPC_VERSION_MIN && b[4] <= RPC_VERSION_MAX) {
                        /* version 1 -> another version we speak (3) */
                        if (r != 0)
                                TAP_FAIL_("bit %zu: %d", i, r);
                } else if (i / 8 < 6 || i / 8 == 12 || (i / 8 == 13 && i % 8 != 0)) {
                        /* magic, version, kind and high length bits: always refused (0x00010000 -> 0 is
                         * fine) */
                        if (r != -EBADMSG && r != -EPROTONOSUPPORT && r != -EMSGSIZE)
                                TAP_FAIL_("bit %zu: %d", i, r);
                } else if (r != 0 && r != -EBADMSG && r != -EMSGSIZE)
                        TAP_FAIL_("bit %zu: %d", i, r);
        }
}

static void test_channels(void) {
        ASSERT_EQ(rpc_channel_max_body(RPC_CHANNEL_DATA), 65536);
        ASSERT_EQ(rpc_channel_max_body(RPC_CHANNEL_CONTROL), 1048576);
        ASSERT_EQ(rpc_channel_max_body(_RPC_CHANNEL_MAX), 0);
        ASSERT_EQ(rpc_channel_max_body(_RPC_CHANNEL_INVALID), 0);
        ASSERT_STREQ(rpc_channel_to_string(RPC_CHANNEL_DATA), "data");
        ASSERT_STREQ(rpc_channel_to_string(RPC_CHANNEL_CONTROL), "control");
        ASSERT_TRUE(rpc_channel_to_string(_RPC_CHANNEL_MAX) == NULL);
}

TAP_MAIN(TEST("/rpc/frame/encode-layout", test_encode_layout),
         TEST("/rpc/frame/decode-roundtrip", test_decode_roundtrip),
         TEST("/rpc/frame/decode-negative", test_decode_negative),
         TEST("/rpc/frame/decode-bitflips", test_decode_bitflips),
         TEST("/rpc/frame/channels", test_channels))
