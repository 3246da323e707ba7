/* The schema engine on its own: a local message with nested and allocated arrays, secret flags,
 * range checks both ways, outputs written only on success, nothing leaked on failure. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/rpc-schema.h"
#include "tests/lib/tap.h"

struct inner {
        uint32_t id;
        struct rpc_slice secret;
        size_t n_tags;
        struct rpc_slice tags[2];
};

struct outer {
        uint64_t serial;
        bool flag;
        struct rpc_slice name;
        size_t n_items;
        struct inner *items; /* allocated */
};

static const struct rpc_field tag_elem = RPC_E_BYTES(1, 4);
static const struct rpc_field inner_fields[] = {
        RPC_F_U32(1, struct inner, id, true, 1, 9),
        RPC_F_SECRET(2, struct inner, secret, false, 2, 8),
        RPC_F_ARRAY(3, struct inner, tags, n_tags, false, 0, 2, tag_elem, 1, false),
};
static const struct rpc_schema inner_schema = RPC_SCHEMA("inner", struct inner, inner_fields, true);
static const struct rpc_field inner_elem = RPC_E_MAP(inner_schema);
static const struct rpc_field outer_fields[] = {
        RPC_F_U64(1, struct outer, serial, true),
        RPC_F_BOOL(2, struct outer, flag, false),
        RPC_F_TEXT(3, struct outer, name, false, 1, 16),
        RPC_F_ARRAY(4, struct outer, items, n_items, true, 1, 3, inner_elem, 3, true),
};
static const struct rpc_schema outer_schema = RPC_SCHEMA("outer", struct outer, outer_fields, true);

#define S(s) ((struct rpc_slice){ (const uint8_t *) (s), sizeof(s) - 1 })

static size_t encode(const struct outer *m, uint8_t *buf, size_t size, int *ret_err) {
        struct rpc_writer w;

        rpc_writer_init(&w, buf, size);
        rpc_msg_write(&outer_schema, &w, m);
        *ret_err = rpc_writer_finish(&w);
        return w.len;
}

static void test_round_trip(void) {
        struct inner items[2] = {
                { .id = 1, .secret = S("pin!"), .n_tags = 2, .tags = { S("a"), S("bcd") } },
                { .id = 9 },
        };
        struct outer m = {
                .serial = UINT64_MAX, .flag = true, .name = S("n\xc3\xa4me"), .n_items = 2, .items = items
        };
        struct outer d;
        uint8_t buf[128];
        size_t n;
        int err;

        n = encode(&m, buf, sizeof(buf), &err);
        ASSERT_OK(err);
        /* {1: 2^64-1, 2: true, 3: "näme", 4: [{1: 1, 2: h'70696e21', 3: [h'61', h'626364']}, {1: 9}]} */
        ASSERT_EQ(buf[0], 0xa4);
        ASSERT_EQ(buf[1], 0x01);
        ASSERT_EQ(buf[2], 0x1b);
        ASSERT_OK(rpc_msg_decode(&outer_schema, buf, n, &d));
        ASSERT_TRUE(d.serial == UINT64_MAX);
        ASSERT_TRUE(d.flag);
        ASSERT_EQ(d.n_items, 2);
        ASSERT_TRUE(d.items != NULL && d.items != items);
        ASSERT_EQ(d.items[0].n_tags, 2);
        ASSERT_MEMEQ(d.items[0].tags[1].ptr, "bcd", 3);
        ASSERT_TRUE(d.items[0].secret.ptr >= buf && d.items[0].secret.ptr < buf + n); /* zero-copy */
        ASSERT_EQ(d.items[1].id, 9);
        ASSERT_EQ(d.items[1].secret.len, 0);
        ASSERT_OK(rpc_msg_check(&outer_schema, buf, n));
        rpc_msg_done(&outer_schema, &d);
        ASSERT_TRUE(d.items == NULL);
        ASSERT_EQ(d.n_items, 0);
        rpc_msg_done(&outer_schema, NULL);

        ASSERT_TRUE(rpc_schema_has_secret(&outer_schema)); /* through the nested map */
        ASSERT_TRUE(rpc_schema_has_secret(&inner_schema));
}

static void test_encode_out_of_schema(void) {
        struct inner items[4] = { { .id = 1 }, { .id = 1 }, { .id = 1 }, { .id = 1 } };
        struct outer m = { .serial = 1, .n_items = 1, .items = items };
        uint8_t buf[128];
        int err;

        (void) encode(&m, buf, sizeof(buf), &err);
        ASSERT_OK(err);
        m.n_items = 0; /* below the array's min */
        (void) encode(&m, buf, sizeof(buf), &err);
        ASSERT_ERR(err, -EINVAL);
        m.n_items = 4; /* above its max */
        (void) encode(&m, buf, sizeof(buf), &err);
        ASSERT_ERR(err, -EINVAL);
        m.n_items = 1;
        m.items = NULL;
        (void) encode(&m, buf, sizeof(buf), &err);
        ASSERT_ERR(err, -EINVAL);
        m.items = items;
        items[0].id = 10; /* above the u32's max */
        (void) encode(&m, buf, sizeof(buf), &err);
        ASSERT_ERR(err, -EINVAL);
        items[0] = (struct inner){ .id = 1, .secret = S("x") }; /* shorter than min */
        (void) encode(&m, buf, sizeof(buf), &err);
        ASSERT_ERR(err, -EINVAL);
        items[0] = (struct inner){ .id = 1, .n_tags = 1, .tags = { S("toolong") } }; /* element too long */
        (void) encode(&m, buf, sizeof(buf), &err);
        ASSERT_ERR(err, -EINVAL);
        items[0] = (struct inner){ .id = 1 };
        m.name = S("\xff"); /* not UTF-8 */
        (void) encode(&m, buf, sizeof(buf), &err);
        ASSERT_ERR(err, -EINVAL);
        m.name = S("ok");
        (void) encode(&m, buf, 8, &err); /* does not fit */
        ASSERT_ERR(err, -EMSGSIZE);
}

static void test_decode_failures(void) {
        struct inner items[3] = { { .id = 1, .secret = S("abcd") }, { .id = 2 }, { .id = 3 } };
        struct outer m = { .serial = 7, .n_items = 3, .items = items }, d;
        uint8_t buf[128], bad[128];
        size_t n;
        int err;

        n = encode(&m, buf, sizeof(buf), &err);
        ASSERT_OK(err);
        /* every one-byte change and every truncation: 0 or -EBADMSG, d untouched on failure, nothing
         * leaked (the items array is allocated before the third item fails; valgrind setup) */
        for (size_t i = 0; i < n; i++)
                for (unsigned v = 0; v < 256; v += 17) {
                        int r;

                        memcpy(bad, buf, n);
                        bad[i] = (uint8_t) v;
                        memset(&d, 0x5a, sizeof(d));
                        r = rpc_msg_decode(&outer_schema, bad, n, &d);
                        ASSERT_TRUE(r == 0 || r == -EBADMSG);
                        if (r == 0)
                                rpc_msg_done(&outer_schema, &d);
                        else
                                ASSERT_EQ(((uint8_t *) &d)[sizeof(d) - 1], 0x5a);
                }
        for (size_t cut = 0; cut < n; cut++)
                ASSERT_ERR(rpc_msg_decode(&outer_schema, buf, cut, &d), -EBADMSG);
        /* the last item's id out of range: fails after the array was allocated */
        memcpy(bad, buf, n);
        ASSERT_EQ(bad[n - 1], 0x03);
        bad[n - 1] = 0x0a;
        ASSERT_ERR(rpc_msg_decode(&outer_schema, bad, n, &d), -EBADMSG);
        ASSERT_ERR(rpc_msg_check(&outer_schema, bad, n), -EBADMSG);
        /* a missing required key ({1: 7} alone), an unknown one, a duplicate */
        ASSERT_ERR(rpc_msg_check(&outer_schema, (const uint8_t *) "\xa1\x01\x07", 3), -EBADMSG);
        ASSERT_ERR(rpc_msg_check(&outer_schema, (const uint8_t *) "\xa2\x01\x07\x05\x00", 5), -EBADMSG);
        ASSERT_ERR(rpc_msg_check(&outer_schema, (const uint8_t *) "\xa2\x01\x07\x01\x07", 5), -EBADMSG);
}

TAP_MAIN(TEST("/rpc/schema/round-trip", test_round_trip),
         TEST("/rpc/schema/encode-out-of-schema", test_encode_out_of_schema),
         TEST("/rpc/schema/decode-failures", test_decode_failures))
