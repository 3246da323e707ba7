/* eif/: the reader refuses every malformation with the rule and offset, the writer's images round trip,
 * the PCRs equal the known answers and the formula recomputed here with OpenSSL's one-shot
 * digests, signed images verify and stop verifying when a measured byte changes, and the cpio writer
 * is byte-exact and order independent. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

#include "common/cleanup-ssl.h"
#include "eif/cpio.h"
#include "eif/eif-sign.h"
#include "eif/eif.h"
#include "tests/lib/data.h"
#include "tests/lib/tap.h"

#define KA_PCR0 \
        "7d2bfb6d7c3d301485045ddbed03e21a0304d6f540a23a4522c8ca9133813c0b3b2956ef72606e06559ce0608a156fdc"
#define KA_PCR1 \
        "127d41e69be20fad8308b1d1ab8bf017a2f3b925c1f17ea8edb72c2b83406cbe1309775eebd94ad635ffa19ed7e9fbcd"
#define KA_PCR2 \
        "695029c2c04573eb1daf702d94e399b1c92ea53256b3f6683606ddbbb368c9c3b6f0a5059b95c334d8f9dca2d1bcf6b4"
#define EMPTY_PCR \
        "21b9efbc184807662e966d34f390821309eeac6802309798826296bf3e8bec7c10edb30948c90ba67310f7b964fc500a"

#define BLOB(s) ((struct eif_blob){ (const uint8_t *) (s), strlen(s) })

static const char metadata_json[] = "{\"ImageName\":\"toy\",\"ImageVersion\":\"1\",\"BuildMetadata\":{"
                                    "\"BuildTime\":\"1970-01-01T00:00:00+00:00\","
                                    "\"BuildTool\":\"test\",\"BuildToolVersion\":\"0\",\"OperatingSystem\":"
                                    "\"Linux\",\"KernelVersion\":\"6.1\"},"
                                    "\"DockerInfo\":null,\"CustomMetadata\":{\"a\":[1,2.5,\"x\"]}}";

static void hex(const uint8_t *p, size_t n, char *out) {
        for (size_t i = 0; i < n; i++)
                sprintf(out + 2 * i, "%02x", p[i]);
}

/* The formula of NITRO-FORMATS.md 7.3 with one-shot digests: SHA384(0^48 || SHA384(data)). */
static void formula(const uint8_t *data, size_t len, uint8_t out[48]) {
        uint8_t buf[96] = {};

        SHA384(data, len, buf + 48);
        SHA384(buf, sizeof(buf), out);
}

/* The toy image of the issue: kernel, console=ttyS0, rd0, rd1 (plus the mandatory metadata). */
static const struct eif_blob toy_ramdisks[] = { { (const uint8_t *) "rd0", 3 },
                                                { (const uint8_t *) "rd1", 3 } };

static struct eif_build toy_build(void) {
        return (struct eif_build){
                .kernel = BLOB("kernel"),
                .cmdline = BLOB("console=ttyS0"),
                .metadata = BLOB(metadata_json),
                .ramdisks = toy_ramdisks,
                .n_ramdisks = 2,
        };
}

static uint8_t *toy_image(size_t *ret_len) {
        struct eif_build b = toy_build();
        uint8_t *img = NULL;

        if (eif_write(&b, &img, ret_len, NULL) < 0)
                return NULL;
        return img;
}

static uint16_t be16(const uint8_t *p) {
        return (uint16_t) (p[0] << 8 | p[1]);
}
static uint64_t be64(const uint8_t *p) {
        uint64_t v = 0;

        for (int i = 0; i < 8; i++)
                v = v << 8 | p[i];
        return v;
}
static void put_be16(uint8_t *p, uint16_t v) {
        p[0] = (uint8_t) (v >> 8);
        p[1] = (uint8_t) v;
}
static void put_be64(uint8_t *p, uint64_t v) {
        for (int i = 0; i < 8; i++)
                p[i] = (uint8_t) (v >> (56 - 8 * i));
}

/* The CRC over bytes 0..543 and 548..len, written back (so a test reaches the rule it aims at). */
static void fix_crc(uint8_t *img, size_t len) {
        uint32_t crc = eif_crc32(eif_crc32(0, img, 544), img + 548, len - 548);

        img[544] = (uint8_t) (crc >> 24);
        img[545] = (uint8_t) (crc >> 16);
        img[546] = (uint8_t) (crc >> 8);
        img[547] = (uint8_t) crc;
}

/* Parses img and expects the given rule at the given offset (SIZE_MAX: any offset). */
static int expect_rule(const uint8_t *img, size_t len, const char *rule, size_t offset) {
        struct eif_image parsed;
        struct eif_error err = {};
        char msg[256];
        int r;

        r = eif_parse(img, len, &parsed, &err);
        if (r != -EBADMSG) {
                printf("# expected '%s', eif_parse returned %d\n", rule, r);
                return -1;
        }
        if (!err.rule || strcmp(err.rule, rule) != 0 || (offset != SIZE_MAX && err.offset != offset)) {
                printf("# expected '%s' at %zu, got: %s\n", rule, offset,
                       eif_error_string(&err, msg, sizeof(msg)));
                return -1;
        }
        return 0;
}

static void test_crc32(void) {
        ASSERT_EQ(eif_crc32(0, "123456789", 9), 0xCBF43926u);
        ASSERT_EQ(eif_crc32(eif_crc32(0, "1234", 4), "56789", 5), 0xCBF43926u);
        ASSERT_EQ(eif_crc32(0, "", 0), 0u);
}

static void test_pcr_known_answers(void) {
        struct eif_pcrs p;
        uint8_t want[48], cat[64];
        char h[97];

        ASSERT_OK(eif_pcrs_compute(BLOB("kernel"), BLOB("console=ttyS0"), toy_ramdisks, 2, &p));
        hex(p.pcr0, 48, h);
        ASSERT_STREQ(h, KA_PCR0);
        hex(p.pcr1, 48, h);
        ASSERT_STREQ(h, KA_PCR1);
        hex(p.pcr2, 48, h);
        ASSERT_STREQ(h, KA_PCR2);

        /* The formula again, independently, on the concatenations. */
        memcpy(cat, "kernelconsole=ttyS0rd0rd1", 25);
        formula(cat, 25, want);
        ASSERT_MEMEQ(p.pcr0, want, 48);
        formula(cat, 22, want);
        ASSERT_MEMEQ(p.pcr1, want, 48);
        formula((const uint8_t *) "rd1", 3, want);
        ASSERT_MEMEQ(p.pcr2, want, 48);

        /* One ramdisk: PCR2 is PCR(""). */
        ASSERT_OK(eif_pcrs_compute(BLOB("kernel"), BLOB("console=ttyS0"), toy_ramdisks, 1, &p));
        hex(p.pcr2, 48, h);
        ASSERT_STREQ(h, EMPTY_PCR);
        ASSERT_FAIL(eif_pcrs_compute(BLOB("kernel"), BLOB("x"), toy_ramdisks, 0, &p));
}

/* Synthetic images of several shapes: the measurements equal the formula over their sections. */
static void test_pcr_synthetic(void) {
        static uint8_t big[70000];
        struct eif_blob rd[5];
        struct eif_pcrs p;
        uint8_t want[48];
        _cleanup_free_ uint8_t *cat = malloc(6 * sizeof(big));

        ASSERT_TRUE(cat);
        for (size_t i = 0; i < sizeof(big); i++)
                big[i] = (uint8_t) (i * 7 + 3);
        for (size_t n = 1; n <= 5; n++) {
                size_t len = 0;

                for (size_t i = 0; i < n; i++)
                        rd[i] = (struct eif_blob){ big + i * 1000, sizeof(big) - i * 1000 };
                ASSERT_OK(eif_pcrs_compute((struct eif_blob){ big, 12345 }, BLOB("a b c"), rd, n, &p));
                memcpy(cat, big, 12345);
                memcpy(cat + 12345, "a b c", 5);
                len = 12350;
                for (size_t i = 0; i < n; i++) {
                        memcpy(cat + len, rd[i].ptr, rd[i].len);
                        len += rd[i].len;
                }
                formula(cat, len, want);
                ASSERT_MEMEQ(p.pcr0, want, 48);
                formula(cat, 12350 + rd[0].len, want);
                ASSERT_MEMEQ(p.pcr1, want, 48);
                formula(cat + 12350 + rd[0].len, len - 12350 - rd[0].len, want);
                ASSERT_MEMEQ(p.pcr2, want, 48);
        }
}

static void test_roundtrip(void) {
        _cleanup_free_ uint8_t *img = NULL;
        struct eif_image e;
        struct eif_error err = {};
        struct eif_pcrs p;
        struct eif_metadata md;
        size_t len;
        char h[97];

        img = toy_image(&len);
        ASSERT_TRUE(img);
        /* 548 + 5 x 12 + 6 + 13 + metadata + 3 + 3 */
        ASSERT_EQ(len, 548 + 60 + 6 + 13 + strlen(metadata_json) + 6);
        ASSERT_MEMEQ(img, ".eif\0\x04\0\0", 8);
        ASSERT_EQ(be64(img + 8), EIF_DEFAULT_MEM);
        ASSERT_EQ(be64(img + 16), 2);
        ASSERT_EQ(be16(img + 26), 5);
        ASSERT_EQ(be64(img + 28), 548);
        ASSERT_OK(eif_parse(img, len, &e, &err));
        ASSERT_EQ(e.version, 4);
        ASSERT_EQ(e.flags, 0);
        ASSERT_EQ(e.n_sections, 5);
        ASSERT_EQ(e.kernel, 0);
        ASSERT_EQ(e.cmdline, 1);
        ASSERT_EQ(e.metadata, 2);
        ASSERT_EQ(e.signature, -1);
        ASSERT_EQ(e.n_ramdisks, 2);
        ASSERT_EQ(e.sections[e.ramdisks[1]].size, 3);
        ASSERT_MEMEQ(e.sections[e.ramdisks[1]].data, "rd1", 3);
        ASSERT_MEMEQ(e.sections[e.cmdline].data, "console=ttyS0", 13);
        ASSERT_EQ(e.sections[e.cmdline].size, 13);
        ASSERT_OK(eif_image_pcrs(&e, &p));
        hex(p.pcr0, 48, h);
        ASSERT_STREQ(h, KA_PCR0);
        hex(p.pcr2, 48, h);
        ASSERT_STREQ(h, KA_PCR2);
        ASSERT_OK(eif_metadata_parse(e.sections[e.metadata].data, e.sections[e.metadata].size, &md, &err));
        ASSERT_STREQ(md.image_name, "toy");
        ASSERT_STREQ(md.kernel_version, "6.1");
        ASSERT_EQ(md.docker_info.len, 4);
        ASSERT_MEMEQ(md.docker_info.ptr, "null", 4);
        ASSERT_EQ(md.custom_metadata.len, strlen("{\"a\":[1,2.5,\"x\"]}"));
        ASSERT_MEMEQ(md.custom_metadata.ptr, "{\"a\":[1,2.5,\"x\"]}", md.custom_metadata.len);
}

static void test_bad_header(void) {
        _cleanup_free_ uint8_t *img = NULL;
        size_t len;

        img = toy_image(&len);
        ASSERT_TRUE(img);

        img[1] = 'E';
        fix_crc(img, len);
        ASSERT_OK(expect_rule(img, len, "bad magic", 0));
        img[1] = 'e';

        for (uint16_t v = 0; v < 8; v++) {
                if (v == 4)
                        continue;
                put_be16(img + 4, v);
                fix_crc(img, len);
                ASSERT_OK(expect_rule(img, len, "unsupported version", 4));
        }
        put_be16(img + 4, 4);

        put_be16(img + 6, 2);
        fix_crc(img, len);
        ASSERT_OK(expect_rule(img, len, "unknown header flags", 6));
        put_be16(img + 6, 0x8000);
        fix_crc(img, len);
        ASSERT_OK(expect_rule(img, len, "unknown header flags", 6));
        put_be16(img + 6, 0);

        img[25] = 1;
        fix_crc(img, len);
        ASSERT_OK(expect_rule(img, len, "reserved field not zero", 24));
        img[25] = 0;
        img[543] = 1;
        fix_crc(img, len);
        ASSERT_OK(expect_rule(img, len, "unused field not zero", 540));
        img[543] = 0;

        /* Counts: 0, 1, 33, 0xffff (the table has 32 entries). */
        static const uint16_t counts[] = { 0, 1, 33, 64, 0xffff };
        for (size_t i = 0; i < ELEMENTSOF(counts); i++) {
                put_be16(img + 26, counts[i]);
                fix_crc(img, len);
                ASSERT_OK(expect_rule(img, len, "section count out of range", 26));
        }
        put_be16(img + 26, 5);

        /* A table entry past section_cnt. */
        put_be64(img + 284 + 8 * 31, 1);
        fix_crc(img, len);
        ASSERT_OK(expect_rule(img, len, "unused table entry not zero", 284 + 8 * 31));
        put_be64(img + 284 + 8 * 31, 0);

        /* The stored CRC itself. */
        fix_crc(img, len);
        img[547] ^= 1;
        ASSERT_OK(expect_rule(img, len, "CRC mismatch", 544));
        img[547] ^= 1;
        img[len - 1] ^= 0x20; /* a byte of the last ramdisk */
        ASSERT_OK(expect_rule(img, len, "CRC mismatch", 544));
        img[len - 1] ^= 0x20;
        ASSERT_OK(eif_parse(img, len, &(struct eif_image){}, NULL));
}

/* Section offsets of the toy image: 548, kernel 548+12+6, ... */
static void test_bad_sections(void) {
        _cleanup_free_ uint8_t *img = NULL, *copy = NULL;
        size_t len, off1, off2;

        img = toy_image(&len);
        ASSERT_TRUE(img);
        copy = malloc(len + 8);
        ASSERT_TRUE(copy);
        off1 = (size_t) be64(img + 28 + 8);
        off2 = (size_t) be64(img + 28 + 16);
        ASSERT_EQ(off1, 548 + 12 + 6);

        /* Section types 0, 6 and 0xffff. */
        static const uint16_t types[] = { 0, 6, 7, 0xffff };
        for (size_t i = 0; i < ELEMENTSOF(types); i++) {
                memcpy(copy, img, len);
                put_be16(copy + off1, types[i]);
                fix_crc(copy, len);
                ASSERT_OK(expect_rule(copy, len, "bad section type", off1));
        }

        /* Section flags. */
        memcpy(copy, img, len);
        put_be16(copy + off1 + 2, 1);
        fix_crc(copy, len);
        ASSERT_OK(expect_rule(copy, len, "section flags not zero", off1 + 2));

        /* Header size differs from the table's. */
        memcpy(copy, img, len);
        put_be64(copy + off1 + 4, 12);
        fix_crc(copy, len);
        ASSERT_OK(expect_rule(copy, len, "section size mismatch", off1 + 4));

        /* A gap: 4 bytes inserted before section 1, its offset and the later ones moved. */
        memcpy(copy, img, off1);
        memset(copy + off1, 0, 4);
        memcpy(copy + off1 + 4, img + off1, len - off1);
        for (size_t i = 1; i < 5; i++)
                put_be64(copy + 28 + 8 * i, be64(img + 28 + 8 * i) + 4);
        fix_crc(copy, len + 4);
        ASSERT_OK(expect_rule(copy, len + 4, "section gap", 28 + 8));

        /* Overlap: section 2 starts 4 bytes early. */
        memcpy(copy, img, len);
        put_be64(copy + 28 + 16, off2 - 4);
        fix_crc(copy, len);
        ASSERT_OK(expect_rule(copy, len, "section overlap", 28 + 16));

        /* Outside the file: the last ramdisk claims more bytes than there are. */
        memcpy(copy, img, len);
        put_be64(copy + 284 + 8 * 4, 4);
        put_be64(copy + len - 3 - 8, 4);
        fix_crc(copy, len);
        ASSERT_OK(expect_rule(copy, len, "section outside the file", len - 3));
        /* An offset far outside the file (wraps if added carelessly). */
        memcpy(copy, img, len);
        put_be64(copy + 28 + 8 * 4, UINT64_MAX - 5);
        fix_crc(copy, len);
        ASSERT_OK(expect_rule(copy, len, "section gap", 28 + 8 * 4));
        memcpy(copy, img, len);
        put_be64(copy + 284 + 8 * 4, UINT64_MAX);
        put_be64(copy + len - 3 - 8, UINT64_MAX);
        fix_crc(copy, len);
        ASSERT_OK(expect_rule(copy, len, "section outside the file", len - 3));

        /* Trailing bytes after the last section. */
        memcpy(copy, img, len);
        copy[len] = 0;
        fix_crc(copy, len + 1);
        ASSERT_OK(expect_rule(copy, len + 1, "trailing bytes", len));
}

/* Images with other sections: written by hand through eif_layout's parts. */
struct sec {
        uint16_t type;
        const char *data;
        size_t len; /* 0: strlen */
};

static uint8_t *raw_image(const struct sec *s, size_t n, size_t *ret_len) {
        size_t total = 548, pos;
        uint8_t *img;

        for (size_t i = 0; i < n; i++)
                total += 12 + (s[i].len ? s[i].len : strlen(s[i].data));
        img = calloc(1, total);
        if (!img)
                return NULL;
        memcpy(img, ".eif", 4);
        put_be16(img + 4, 4);
        put_be64(img + 8, EIF_DEFAULT_MEM);
        put_be64(img + 16, 2);
        put_be16(img + 26, (uint16_t) n);
        pos = 548;
        for (size_t i = 0; i < n; i++) {
                size_t l = s[i].len ? s[i].len : strlen(s[i].data);

                put_be64(img + 28 + 8 * i, pos);
                put_be64(img + 284 + 8 * i, l);
                put_be16(img + pos, s[i].type);
                put_be64(img + pos + 4, l);
                memcpy(img + pos + 12, s[i].data, l);
                pos += 12 + l;
        }
        fix_crc(img, total);
        *ret_len = total;
        return img;
}

#define RAW(rule, ...)                                                                       \
        do {                                                                                 \
                static const struct sec s_[] = { __VA_ARGS__ };                              \
                _cleanup_free_ uint8_t *img_ = NULL;                                         \
                size_t len_;                                                                 \
                img_ = raw_image(s_, ELEMENTSOF(s_), &len_);                                 \
                ASSERT_TRUE(img_);                                                           \
                if (rule)                                                                    \
                        ASSERT_OK(expect_rule(img_, len_, (const char *) (rule), SIZE_MAX)); \
                else                                                                         \
                        ASSERT_OK(eif_parse(img_, len_, &(struct eif_image){}, NULL));       \
        } while (0)

#define K \
        { 1, "kernel", 0 }
#define C \
        { 2, "console=ttyS0", 0 }
#define M \
        { 5, metadata_json, 0 }
#define R(x) \
        { 3, x, 0 }

static void test_section_rules(void) {
        static char big_sig[EIF_SIGNATURE_MAX + 2];

        memset(big_sig, 'x', sizeof(big_sig) - 1);
        RAW(NULL, K, C, M, R("rd0"));
        RAW(NULL, K, C, R("rd0"), M, R("rd1")); /* metadata anywhere */
        RAW("missing metadata section", K, C, R("rd0"), R("rd1"));
        RAW("missing cmdline section", K, M, R("rd0"));
        RAW("missing kernel section", C, M);
        RAW("missing ramdisk section", K, C, M);
        RAW("ramdisk before the kernel", R("rd0"), K, C, M);
        RAW("duplicate section", K, C, M, R("rd0"), K);
        RAW("duplicate section", K, C, C, M, R("rd0"));
        RAW("duplicate section", K, C, M, M, R("rd0"));
        RAW("empty kernel section", { 1, "", 0 }, C, M, R("rd0"));
        RAW("trailing newline in cmdline", K, { 2, "console=ttyS0\n", 0 }, M, R("rd0"));
        RAW("NUL in cmdline", K, { 2, "console\0ttyS0", 13 }, M, R("rd0"));
        RAW("signature section too large", K, C, M, R("rd0"), { 4, big_sig, 0 });
        RAW("malformed metadata JSON", K, C, { 5, "{\"ImageName\":", 0 }, R("rd0"));
        RAW("malformed metadata JSON", K, C, { 5, "[]", 0 }, R("rd0"));
        RAW("metadata key missing", K, C, { 5, "{}", 0 }, R("rd0"));
        RAW("metadata key missing", K, C,
            { 5,
              "{\"ImageName\":\"a\",\"ImageVersion\":\"1\",\"BuildMetadata\":{\"BuildTime\":\"t\","
              "\"BuildTool\":"
              "\"b\",\"BuildToolVersion\":\"1\",\"OperatingSystem\":\"Linux\"},\"DockerInfo\":null,"
              "\"CustomMetadata\":null}",
              0 },
            R("rd0"));
        RAW("malformed metadata JSON", K, C, { 5, "{\"ImageName\":\"a\",\"ImageName\":\"b\"}", 0 },
            R("rd0"));
        RAW("malformed metadata JSON", K, C, { 5, "{\"ImageName\":1}", 0 }, R("rd0"));
        /* 32 sections are fine. */
        RAW(NULL, K, C, M, R("1"), R("2"), R("3"), R("4"), R("5"), R("6"), R("7"), R("8"), R("9"), R("10"),
            R("11"), R("12"), R("13"), R("14"), R("15"), R("16"), R("17"), R("18"), R("19"), R("20"),
            R("21"), R("22"), R("23"), R("24"), R("25"), R("26"), R("27"), R("28"), R("29"));
}

/* Every prefix and every single-bit flip of a valid image is refused, cleanly. */
static void test_truncation_and_flips(void) {
        _cleanup_free_ uint8_t *img = NULL;
        struct eif_error err;
        size_t len;

        img = toy_image(&len);
        ASSERT_TRUE(img);
        for (size_t n = 0; n < len; n++) {
                err = (struct eif_error){};
                if (eif_parse(img, n, &(struct eif_image){}, &err) != -EBADMSG || !err.rule ||
                    err.offset > n)
                        TAP_FAIL_("prefix of %zu bytes not refused cleanly", n);
        }
        for (size_t i = 0; i < len * 8; i++) {
                img[i / 8] ^= (uint8_t) (1u << (i % 8));
                if (eif_parse(img, len, &(struct eif_image){}, NULL) != -EBADMSG)
                        TAP_FAIL_("bit %zu flipped, still accepted", i);
                img[i / 8] ^= (uint8_t) (1u << (i % 8));
        }
        ASSERT_OK(eif_parse(img, len, &(struct eif_image){}, NULL));
}

static void test_writer_rules(void) {
        struct eif_build b = toy_build();
        _cleanup_free_ struct eif_layout *l = malloc(sizeof(*l));
        struct eif_error err = {};
        static struct eif_blob many[32];

        ASSERT_TRUE(l);
        ASSERT_OK(eif_layout_build(&b, l, &err));
        ASSERT_EQ(l->n_sections, 5);
        b.cmdline = BLOB("a\n");
        ASSERT_ERR(eif_layout_build(&b, l, &err), -EBADMSG);
        ASSERT_STREQ(err.rule, "trailing newline in cmdline");
        b = toy_build();
        b.metadata = BLOB("{}");
        ASSERT_ERR(eif_layout_build(&b, l, &err), -EBADMSG);
        b = toy_build();
        b.kernel = BLOB("");
        ASSERT_ERR(eif_layout_build(&b, l, &err), -EBADMSG);
        b = toy_build();
        b.n_ramdisks = 0;
        ASSERT_ERR(eif_layout_build(&b, l, &err), -EBADMSG);
        b = toy_build();
        for (size_t i = 0; i < 32; i++)
                many[i] = BLOB("r");
        b.ramdisks = many;
        b.n_ramdisks = 29;
        ASSERT_OK(eif_layout_build(&b, l, &err));
        ASSERT_EQ(l->n_sections, 32);
        b.n_ramdisks = 30;
        ASSERT_ERR(eif_layout_build(&b, l, &err), -EBADMSG);
        ASSERT_STREQ(err.rule, "section count out of range");
        b = toy_build();
        b.flags = 4;
        ASSERT_ERR(eif_layout_build(&b, l, &err), -EBADMSG);
        b.flags = EIF_FLAG_ARM64;
        ASSERT_OK(eif_layout_build(&b, l, &err));
        ASSERT_EQ(be16(l->header + 6), 1);
}

static void test_metadata_write(void) {
        const struct eif_metadata_in in = {
                .image_name = "enclave-acm",
                .image_version = "0.1.0",
                .build_time = "1970-01-01T00:00:00+00:00",
                .build_tool = "enclave-acm",
                .build_tool_version = "0.1.0",
                .operating_system = "Linux",
                .kernel_version = "6.1.0-28-amd64",
        };
        _cleanup_free_ char *json = NULL;
        struct eif_metadata md;
        size_t len;

        ASSERT_OK(eif_metadata_write(&in, &json, &len));
        ASSERT_STREQ(
                json,
                "{\"ImageName\":\"enclave-acm\",\"ImageVersion\":\"0.1.0\",\"BuildMetadata\":{\"BuildTime\":"
                "\"1970-01-01T00:00:00+00:00\",\"BuildTool\":\"enclave-acm\",\"BuildToolVersion\":\"0.1.0\","
                "\"OperatingSystem\":\"Linux\",\"KernelVersion\":\"6.1.0-28-amd64\"},\"DockerInfo\":null,"
                "\"CustomMetadata\":null}");
        ASSERT_OK(eif_metadata_parse((const uint8_t *) json, len, &md, NULL));
        ASSERT_STREQ(md.build_time, "1970-01-01T00:00:00+00:00");
        ASSERT_STREQ(md.operating_system, "Linux");
}

static void test_bzimage_version(void) {
        static uint8_t k[0x1000];
        char v[64];

        ASSERT_ERR(eif_bzimage_version(k, sizeof(k), v, sizeof(v)), -ENOENT);
        memcpy(k + 0x202, "HdrS", 4);
        k[0x206] = 0x0f;
        k[0x207] = 0x02;
        k[0x20e] = 0x00;
        k[0x20f] = 0x0a; /* 0xa00 + 0x200 */
        memcpy(k + 0xc00, "6.1.0-28-amd64 (debian-kernel@lists.debian.org) #1", 51);
        ASSERT_OK(eif_bzimage_version(k, sizeof(k), v, sizeof(v)));
        ASSERT_STREQ(v, "6.1.0-28-amd64");
        ASSERT_ERR(eif_bzimage_version(k, 0xc00, v, sizeof(v)), -ENOENT); /* points past the end */
        k[0x20f] = 0x7f;
        ASSERT_ERR(eif_bzimage_version(k, sizeof(k), v, sizeof(v)), -ENOENT);
}

/* ---- signatures ---- */

static EVP_PKEY *load_key(const char *name) {
        _cleanup_free_ char *pem = NULL;
        _cleanup_(BIO_free_allp) BIO *bio = NULL;
        size_t len;

        pem = test_data_load(name, &len);
        if (!pem)
                return NULL;
        bio = BIO_new_mem_buf(pem, (int) len);
        return bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
}

/* PCR8 independently: the certificate's DER through the formula. */
static int cert_pcr8(const char *pem, size_t len, uint8_t out[48]) {
        _cleanup_(BIO_free_allp) BIO *bio = BIO_new_mem_buf(pem, (int) len);
        _cleanup_(X509_freep) X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
        unsigned char *der = NULL;
        int n;

        if (!x || (n = i2d_X509(x, &der)) <= 0)
                return -1;
        formula(der, (size_t) n, out);
        OPENSSL_free(der);
        return 0;
}

static void sign_one(const char *key_file, const char *cert_file, int64_t want_alg) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = load_key(key_file);
        _cleanup_free_ char *cert = NULL;
        _cleanup_free_ uint8_t *sig = NULL, *img = NULL;
        struct eif_signature s = {};
        struct eif_build b = toy_build();
        struct eif_image e;
        struct eif_pcrs p, p2;
        struct eif_error err = {};
        uint8_t pcr8[48], want8[48];
        size_t cert_len, sig_len, len;

        ASSERT_TRUE(key);
        cert = test_data_load(cert_file, &cert_len);
        ASSERT_TRUE(cert);
        ASSERT_OK(eif_pcrs_compute(b.kernel, b.cmdline, b.ramdisks, b.n_ramdisks, &p));
        ASSERT_OK(eif_signature_build(p.pcr0, (const uint8_t *) cert, cert_len, key, &sig, &sig_len));
        b.signature = (struct eif_blob){ sig, sig_len };
        ASSERT_OK(eif_write(&b, &img, &len, &err));
        ASSERT_OK(eif_parse(img, len, &e, &err));
        ASSERT_EQ(e.signature, 5);
        ASSERT_OK(eif_image_pcrs(&e, &p2));
        ASSERT_MEMEQ(p.pcr0, p2.pcr0, 48);
        ASSERT_OK(eif_signature_parse(e.sections[e.signature].data, e.sections[e.signature].size, &s, &err));
        ASSERT_EQ(s.alg, want_alg);
        ASSERT_EQ(s.cert_pem_len, cert_len);
        ASSERT_MEMEQ(s.cert_pem, cert, cert_len);
        ASSERT_OK(eif_signature_pcr8(&s, pcr8));
        ASSERT_OK(cert_pcr8(cert, cert_len, want8));
        ASSERT_MEMEQ(pcr8, want8, 48);
        ASSERT_OK(eif_signature_verify(&s, p2.pcr0, &err));

        /* A changed byte in each measured section changes PCR0: the signature no longer holds. */
        for (size_t i = 0; i < e.n_sections; i++) {
                struct eif_section *sec = &e.sections[i];
                struct eif_pcrs p3;

                if (sec->type == EIF_SECTION_METADATA || sec->type == EIF_SECTION_SIGNATURE)
                        continue;
                img[sec->offset + 12] ^= 1;
                ASSERT_OK(eif_image_pcrs(&e, &p3));
                ASSERT_ERR(eif_signature_verify(&s, p3.pcr0, &err), -EKEYREJECTED);
                ASSERT_STREQ(err.rule, "signed PCR0 differs");
                img[sec->offset + 12] ^= 1;
        }
        /* A flipped bit of the COSE signature, or of its payload. */
        uint8_t *sb = (uint8_t *) s.sig.ptr;
        sb[5] ^= 1;
        ASSERT_ERR(eif_signature_verify(&s, p2.pcr0, &err), -EKEYREJECTED);
        ASSERT_STREQ(err.rule, "bad signature");
        sb[5] ^= 1;
        ASSERT_OK(eif_signature_verify(&s, p2.pcr0, &err));
        eif_signature_done(&s);

        /* Every truncation of the section is refused. */
        for (size_t n = 0; n < sig_len; n++) {
                struct eif_signature t = {};

                if (eif_signature_parse(sig, n, &t, &err) >= 0)
                        TAP_FAIL_("signature section cut at %zu accepted", n);
        }
}

/* The section's bytes against NITRO-FORMATS.md 7.6, read here by hand (not with eif/'s reader): a
 * one-element array of {"signing_certificate": [PEM bytes as uints], "signature": [COSE bytes as
 * uints]}, the COSE_Sign1 untagged [h'A1 01 38 22', {}, payload, 96-byte signature] and the payload
 * {"register_index": 0, "register_value": [48 uints of PCR0]}. */
static size_t u8_array(const uint8_t *p, size_t *pos, uint8_t *out, size_t max) {
        size_t n;

        if (p[*pos] >= 0x80 && p[*pos] <= 0x97)
                n = p[(*pos)++] - 0x80u;
        else if (p[*pos] == 0x98)
                n = p[*pos + 1], *pos += 2;
        else if (p[*pos] == 0x99)
                n = (size_t) p[*pos + 1] << 8 | p[*pos + 2], *pos += 3;
        else
                return SIZE_MAX;
        if (n > max)
                return SIZE_MAX;
        for (size_t i = 0; i < n; i++) {
                if (p[*pos] < 0x18)
                        out[i] = p[(*pos)++];
                else if (p[*pos] == 0x18 && p[*pos + 1] >= 0x18)
                        out[i] = p[*pos + 1], *pos += 2;
                else
                        return SIZE_MAX;
        }
        return n;
}

static void test_sign_layout(void) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = load_key("ec-p384.key.pem");
        _cleanup_free_ char *cert = NULL;
        _cleanup_free_ uint8_t *sig = NULL, *pem = NULL, *cose = NULL;
        struct eif_build b = toy_build();
        struct eif_pcrs p;
        size_t cert_len, sig_len, pos = 0, n, c = 0, plen;

        ASSERT_TRUE(key);
        cert = test_data_load("ec-p384.crt.pem", &cert_len);
        ASSERT_TRUE(cert);
        pem = malloc(cert_len);
        cose = malloc(1024);
        ASSERT_TRUE(pem && cose);
        ASSERT_OK(eif_pcrs_compute(b.kernel, b.cmdline, b.ramdisks, b.n_ramdisks, &p));
        ASSERT_OK(eif_signature_build(p.pcr0, (const uint8_t *) cert, cert_len, key, &sig, &sig_len));
        ASSERT_MEMEQ(sig, "\x81\xa2\x73signing_certificate", 22);
        pos = 22;
        n = u8_array(sig, &pos, pem, cert_len);
        ASSERT_EQ(n, cert_len);
        ASSERT_MEMEQ(pem, cert, cert_len);
        ASSERT_MEMEQ(sig + pos, "\x69signature", 10);
        pos += 10;
        n = u8_array(sig, &pos, cose, 1024);
        ASSERT_TRUE(n != SIZE_MAX);
        ASSERT_EQ(pos, sig_len);
        /* COSE_Sign1: untagged array of 4, protected bstr {1: -35}, unprotected {}. */
        ASSERT_MEMEQ(cose, "\x84\x44\xa1\x01\x38\x22\xa0", 7);
        c = 7;
        /* payload bstr: 0x58 len, then the map */
        ASSERT_EQ(cose[c], 0x58);
        plen = 1 + 15 + 1 + 15 + 2;
        for (size_t i = 0; i < 48; i++)
                plen += p.pcr0[i] < 0x18 ? 1 : 2;
        ASSERT_EQ(cose[c + 1], plen);
        c += 2;
        ASSERT_MEMEQ(cose + c, "\xa2\x6eregister_index\x00\x6eregister_value\x98\x30", 34);
        c += 34;
        for (size_t i = 0; i < 48; i++) {
                if (p.pcr0[i] < 0x18)
                        ASSERT_EQ(cose[c++], p.pcr0[i]);
                else {
                        ASSERT_EQ(cose[c], 0x18);
                        ASSERT_EQ(cose[c + 1], p.pcr0[i]);
                        c += 2;
                }
        }
        /* signature bstr of 96 bytes (ES384: r || s), and nothing after it */
        ASSERT_EQ(cose[c], 0x58);
        ASSERT_EQ(cose[c + 1], 96);
        ASSERT_EQ(c + 2 + 96, n);
}

static void test_sign_p256(void) {
        sign_one("ec-p256.key.pem", "ec-p256.crt.pem", EIF_COSE_ES256);
}
static void test_sign_p384(void) {
        sign_one("ec-p384.key.pem", "ec-p384.crt.pem", EIF_COSE_ES384);
}
static void test_sign_p521(void) {
        sign_one("ec-p521.key.pem", "ec-p521.crt.pem", EIF_COSE_ES512);
}

static void test_sign_refused(void) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *p256 = load_key("ec-p256.key.pem");
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *rsa = load_key("rsa2048.key.pem");
        _cleanup_free_ char *c384 = NULL, *crsa = NULL;
        _cleanup_free_ uint8_t *sig = NULL;
        uint8_t pcr0[48] = {};
        size_t l384, lrsa, sig_len;

        ASSERT_TRUE(p256 && rsa);
        c384 = test_data_load("ec-p384.crt.pem", &l384);
        crsa = test_data_load("rsa2048.crt.pem", &lrsa);
        ASSERT_TRUE(c384 && crsa);
        /* The certificate is not the key's. */
        ASSERT_ERR(eif_signature_build(pcr0, (const uint8_t *) c384, l384, p256, &sig, &sig_len), -EINVAL);
        /* RSA is not a COSE algorithm nitro-cli uses. */
        ASSERT_ERR(eif_signature_build(pcr0, (const uint8_t *) crsa, lrsa, rsa, &sig, &sig_len), -EINVAL);
        /* Not a certificate. */
        ASSERT_ERR(eif_signature_build(pcr0, (const uint8_t *) "junk", 4, p256, &sig, &sig_len), -EINVAL);
}

static void test_signature_parse_bad(void) {
        struct eif_signature s = {};
        struct eif_error err = {};
        /* [ {"signing_certificate": [1], "signature": [1]} ]: the COSE bytes are not COSE. */
        static const uint8_t bad_cose[] = {
                0x81, 0xa2, 0x73, 's', 'i', 'g', 'n', 'i', 'n', 'g', '_',  'c',
                'e',  'r',  't',  'i', 'f', 'i', 'c', 'a', 't', 'e', 0x81, 0x01,
                0x69, 's',  'i',  'g', 'n', 'a', 't', 'u', 'r', 'e', 0x81, 0x01
        };
        static const uint8_t two[] = { 0x82, 0xa0, 0xa0 };
        static const uint8_t bytes_not_array[] = { 0x81, 0xa1, 0x69, 's', 'i', 'g',  'n',
                                                   'a',  't',  'u',  'r', 'e', 0x41, 0x01 };

        ASSERT_ERR(eif_signature_parse(bad_cose, sizeof(bad_cose), &s, &err), -EBADMSG);
        ASSERT_STREQ(err.rule, "malformed COSE_Sign1");
        ASSERT_ERR(eif_signature_parse(two, sizeof(two), &s, &err), -EBADMSG);
        ASSERT_ERR(eif_signature_parse(bytes_not_array, sizeof(bytes_not_array), &s, &err), -EBADMSG);
        ASSERT_ERR(eif_signature_parse((const uint8_t *) "", 0, &s, &err), -EBADMSG);
        ASSERT_TRUE(s.cert_pem == NULL && s.cose == NULL);
}

/* ---- cpio ---- */

static void test_cpio_bytes(void) {
        struct eif_cpio_entry e[] = {
                { .name = "init", .mode = S_IFREG | 0755, .data = (const uint8_t *) "hi\n", .len = 3 },
                { .name = "dev", .mode = S_IFDIR | 0755 },
        };
        _cleanup_free_ uint8_t *out = NULL;
        size_t len;
        /* dev (ino 1, dir, nlink 2), init (ino 2), the trailer; mtime 1. */
        static const char want[] = "07070100000001000041ED0000000000000000000000020000000100"
                                   "000000000000000000000000000000000000000000000400000000"
                                   "dev\0\0\0"
                                   "07070100000002000081ED0000000000000000000000010000000100"
                                   "000003000000000000000000000000000000000000000500000000"
                                   "init\0\0"
                                   "hi\n\0"
                                   "07070100000000000000000000000000000000000000010000000000"
                                   "000000000000000000000000000000000000000000000B00000000"
                                   "TRAILER!!!\0\0\0\0";

        ASSERT_OK(eif_cpio_write(e, ELEMENTSOF(e), 1, &out, &len));
        ASSERT_EQ(len, sizeof(want) - 1);
        ASSERT_EQ(len % 4, 0);
        ASSERT_MEMEQ(out, want, len);
}

static void test_cpio_order_and_errors(void) {
        struct eif_cpio_entry a[] = {
                { .name = "b", .mode = S_IFREG | 0644, .data = (const uint8_t *) "1", .len = 1 },
                { .name = "a/x", .mode = S_IFLNK | 0777, .data = (const uint8_t *) "../b", .len = 4 },
                { .name = "a", .mode = S_IFDIR | 0755 },
                { .name = "dev/console", .mode = S_IFCHR | 0600, .rdev_major = 5, .rdev_minor = 1 },
        };
        struct eif_cpio_entry b[] = { a[3], a[2], a[0], a[1] };
        _cleanup_free_ uint8_t *o1 = NULL, *o2 = NULL;
        uint8_t *o3 = NULL;
        size_t l1, l2, l3;

        ASSERT_OK(eif_cpio_write(a, ELEMENTSOF(a), 1, &o1, &l1));
        ASSERT_OK(eif_cpio_write(b, ELEMENTSOF(b), 1, &o2, &l2));
        ASSERT_EQ(l1, l2);
        ASSERT_MEMEQ(o1, o2, l1);
        ASSERT_TRUE(memmem(o1, l1,
                           "00000005"
                           "00000001",
                           16) != NULL); /* rdev of dev/console */

        static const char *const bad[] = { "", "/abs", "a/", "a//b", "./a", "a/../b", "..", "a/." };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                struct eif_cpio_entry x = { .name = bad[i], .mode = S_IFDIR | 0755 };

                ASSERT_ERR(eif_cpio_write(&x, 1, 1, &o3, &l3), -EINVAL);
        }
        struct eif_cpio_entry dup[] = { { .name = "a", .mode = S_IFDIR | 0755 },
                                        { .name = "a", .mode = S_IFDIR | 0755 } };
        ASSERT_ERR(eif_cpio_write(dup, 2, 1, &o3, &l3), -EINVAL);
        struct eif_cpio_entry fifo = { .name = "p", .mode = S_IFIFO | 0644 };
        ASSERT_ERR(eif_cpio_write(&fifo, 1, 1, &o3, &l3), -EINVAL);
        ASSERT_OK(eif_cpio_write(NULL, 0, 1, &o3, &l3)); /* just the trailer */
        ASSERT_EQ(l3, 124);
        free(o3);
}

TAP_MAIN(TEST("/eif/crc32", test_crc32), TEST("/eif/pcr/known-answers", test_pcr_known_answers),
         TEST("/eif/pcr/synthetic", test_pcr_synthetic), TEST("/eif/roundtrip", test_roundtrip),
         TEST("/eif/parse/header", test_bad_header), TEST("/eif/parse/sections", test_bad_sections),
         TEST("/eif/parse/section-rules", test_section_rules),
         TEST("/eif/parse/truncation-and-bit-flips", test_truncation_and_flips),
         TEST("/eif/write/rules", test_writer_rules), TEST("/eif/metadata/write", test_metadata_write),
         TEST("/eif/bzimage-version", test_bzimage_version), TEST("/eif/sign/p256", test_sign_p256),
         TEST("/eif/sign/p384", test_sign_p384), TEST("/eif/sign/layout", test_sign_layout),
         TEST("/eif/sign/p521", test_sign_p521), TEST("/eif/sign/refused", test_sign_refused),
         TEST("/eif/sign/parse-bad", test_signature_parse_bad), TEST("/cpio/bytes", test_cpio_bytes),
         TEST("/cpio/order-and-errors", test_cpio_order_and_errors))
