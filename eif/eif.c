/* The EIF reader and strict checker: every offset and size is bounded before it is used. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "eif/eif-internal.h"
#include "eif/eif.h"

static const char *const section_names[_EIF_SECTION_TYPE_MAX] = {
        [EIF_SECTION_KERNEL] = "kernel",     [EIF_SECTION_CMDLINE] = "cmdline",
        [EIF_SECTION_RAMDISK] = "ramdisk",   [EIF_SECTION_SIGNATURE] = "signature",
        [EIF_SECTION_METADATA] = "metadata",
};

const char *eif_section_type_to_string(int type) {
        if (type <= 0 || type >= _EIF_SECTION_TYPE_MAX)
                return NULL;
        return section_names[type];
}

int eif_fail(struct eif_error *err, size_t offset, const char *rule, const char *fmt, ...) {
        if (err) {
                va_list ap;

                err->offset = offset;
                err->rule = rule;
                err->detail[0] = '\0';
                if (fmt) {
                        va_start(ap, fmt);
                        (void) vsnprintf(err->detail, sizeof(err->detail), fmt, ap);
                        va_end(ap);
                }
        }
        return -EBADMSG;
}

const char *eif_error_string(const struct eif_error *err, char *buf, size_t size) {
        if (!err || !err->rule)
                (void) snprintf(buf, size, "unknown error");
        else
                (void) snprintf(buf, size, "%s at byte %zu%s%s", err->rule, err->offset,
                                err->detail[0] ? ": " : "", err->detail);
        return buf;
}

/* CRC-32/ISO-HDLC, reflected polynomial 0xEDB88320, table built once (the table is pure data). */
static uint32_t crc_table[256];
static bool crc_table_ready;

static void crc_table_init(void) {
        for (uint32_t i = 0; i < 256; i++) {
                uint32_t c = i;

                for (int k = 0; k < 8; k++)
                        c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
                crc_table[i] = c;
        }
        __atomic_store_n(&crc_table_ready, true, __ATOMIC_RELEASE);
}

uint32_t eif_crc32(uint32_t crc, const void *data, size_t len) {
        const uint8_t *p = data;

        /* Two threads racing here both compute the same table: harmless. */
        if (!__atomic_load_n(&crc_table_ready, __ATOMIC_ACQUIRE))
                crc_table_init();
        crc = ~crc;
        for (size_t i = 0; i < len; i++)
                crc = crc_table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
        return ~crc;
}

uint16_t eif_get_be16(const uint8_t *p) {
        return (uint16_t) (p[0] << 8 | p[1]);
}
uint32_t eif_get_be32(const uint8_t *p) {
        return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}
uint64_t eif_get_be64(const uint8_t *p) {
        return (uint64_t) eif_get_be32(p) << 32 | eif_get_be32(p + 4);
}
void eif_put_be16(uint8_t *p, uint16_t v) {
        p[0] = (uint8_t) (v >> 8);
        p[1] = (uint8_t) v;
}
void eif_put_be32(uint8_t *p, uint32_t v) {
        for (int i = 0; i < 4; i++)
                p[i] = (uint8_t) (v >> (24 - 8 * i));
}
void eif_put_be64(uint8_t *p, uint64_t v) {
        eif_put_be32(p, (uint32_t) (v >> 32));
        eif_put_be32(p + 4, (uint32_t) v);
}

static int parse_header(const uint8_t *buf, size_t len, struct eif_image *img, struct eif_error *err) {
        uint16_t cnt;

        if (len < EIF_HEADER_SIZE)
                return eif_fail(err, len, "truncated header", "the file has %zu bytes, the header needs %d",
                                len, EIF_HEADER_SIZE);
        if (memcmp(buf, EIF_MAGIC, 4) != 0)
                return eif_fail(err, 0, "bad magic", "expected \".eif\" (2e 65 69 66)");
        img->version = eif_get_be16(buf + EIF_OFF_VERSION);
        if (img->version != EIF_VERSION)
                return eif_fail(err, EIF_OFF_VERSION, "unsupported version", "version %u, only %d is read",
                                img->version, EIF_VERSION);
        img->flags = eif_get_be16(buf + EIF_OFF_FLAGS);
        if (img->flags & ~EIF_FLAG_ARM64)
                return eif_fail(err, EIF_OFF_FLAGS, "unknown header flags",
                                "flags 0x%04x, only bit 0 (arm64) is defined", img->flags);
        img->default_mem = eif_get_be64(buf + EIF_OFF_MEM);
        img->default_cpus = eif_get_be64(buf + EIF_OFF_CPUS);
        if (eif_get_be16(buf + EIF_OFF_RESERVED) != 0)
                return eif_fail(err, EIF_OFF_RESERVED, "reserved field not zero", NULL);
        if (eif_get_be32(buf + EIF_OFF_UNUSED) != 0)
                return eif_fail(err, EIF_OFF_UNUSED, "unused field not zero", NULL);
        cnt = eif_get_be16(buf + EIF_OFF_COUNT);
        if (cnt < EIF_MIN_SECTIONS || cnt > EIF_MAX_SECTIONS)
                return eif_fail(err, EIF_OFF_COUNT, "section count out of range",
                                "%u sections, expected %d..%d", cnt, EIF_MIN_SECTIONS, EIF_MAX_SECTIONS);
        for (size_t i = cnt; i < EIF_MAX_SECTIONS; i++) {
                if (eif_get_be64(buf + EIF_OFF_OFFSETS + 8 * i) != 0)
                        return eif_fail(err, EIF_OFF_OFFSETS + 8 * i, "unused table entry not zero",
                                        "section_offsets[%zu] past section_cnt %u", i, cnt);
                if (eif_get_be64(buf + EIF_OFF_SIZES + 8 * i) != 0)
                        return eif_fail(err, EIF_OFF_SIZES + 8 * i, "unused table entry not zero",
                                        "section_sizes[%zu] past section_cnt %u", i, cnt);
        }
        img->n_sections = cnt;
        img->crc = eif_get_be32(buf + EIF_CRC_OFFSET);
        return 0;
}

/* Section i of the table: where the previous one ended (pos), inside the file, header as declared. */
static int parse_section(const uint8_t *buf, size_t len, size_t i, size_t *pos, struct eif_image *img,
                         struct eif_error *err) {
        uint64_t off = eif_get_be64(buf + EIF_OFF_OFFSETS + 8 * i);
        uint64_t size = eif_get_be64(buf + EIF_OFF_SIZES + 8 * i);
        const uint8_t *h;
        uint16_t type, flags;

        if (off > *pos)
                return eif_fail(err, EIF_OFF_OFFSETS + 8 * i, "section gap",
                                "section %zu starts at %" PRIu64 ", the previous data ends at %zu", i, off,
                                *pos);
        if (off < *pos)
                return eif_fail(err, EIF_OFF_OFFSETS + 8 * i, "section overlap",
                                "section %zu starts at %" PRIu64 ", before the previous data ends at %zu", i,
                                off, *pos);
        if (len - *pos < EIF_SECTION_HDR_SIZE)
                return eif_fail(err, *pos, "section outside the file",
                                "section %zu header needs %d bytes, %zu left", i, EIF_SECTION_HDR_SIZE,
                                len - *pos);
        h = buf + *pos;
        type = eif_get_be16(h);
        flags = eif_get_be16(h + 2);
        if (type == EIF_SECTION_INVALID || type >= _EIF_SECTION_TYPE_MAX)
                return eif_fail(err, *pos, "bad section type", "section %zu has type %u (1..5 are defined)",
                                i, type);
        if (flags != 0)
                return eif_fail(err, *pos + 2, "section flags not zero", "section %zu flags 0x%04x", i,
                                flags);
        if (eif_get_be64(h + 4) != size)
                return eif_fail(err, *pos + 4, "section size mismatch",
                                "section %zu header says %" PRIu64 ", the table says %" PRIu64, i,
                                eif_get_be64(h + 4), size);
        if (size > len - *pos - EIF_SECTION_HDR_SIZE)
                return eif_fail(err, *pos + EIF_SECTION_HDR_SIZE, "section outside the file",
                                "section %zu (%s) has %" PRIu64 " bytes, %zu left", i,
                                eif_section_type_to_string(type), size, len - *pos - EIF_SECTION_HDR_SIZE);
        img->sections[i] = (struct eif_section){
                .type = type,
                .offset = off,
                .data = h + EIF_SECTION_HDR_SIZE,
                .size = (size_t) size,
        };
        *pos += EIF_SECTION_HDR_SIZE + (size_t) size;
        return 0;
}

/* At most one of a kind: *slot is -1 until the first. */
static int set_unique(int *slot, size_t i, const struct eif_section *s, struct eif_error *err) {
        if (*slot >= 0)
                return eif_fail(err, s->offset, "duplicate section", "section %zu is a second %s section", i,
                                eif_section_type_to_string(s->type));
        *slot = (int) i;
        return 0;
}

static int check_kinds(struct eif_image *img, size_t len, struct eif_error *err) {
        int r;

        img->kernel = img->cmdline = img->metadata = img->signature = -1;
        img->n_ramdisks = 0;
        for (size_t i = 0; i < img->n_sections; i++) {
                const struct eif_section *s = &img->sections[i];

                switch (s->type) {
                case EIF_SECTION_KERNEL: r = set_unique(&img->kernel, i, s, err); break;
                case EIF_SECTION_CMDLINE: r = set_unique(&img->cmdline, i, s, err); break;
                case EIF_SECTION_METADATA: r = set_unique(&img->metadata, i, s, err); break;
                case EIF_SECTION_SIGNATURE: r = set_unique(&img->signature, i, s, err); break;
                case EIF_SECTION_RAMDISK:
                        if (img->kernel < 0)
                                return eif_fail(err, s->offset, "ramdisk before the kernel",
                                                "section %zu is a ramdisk and no kernel precedes it", i);
                        img->ramdisks[img->n_ramdisks++] = (int) i;
                        r = 0;
                        break;
                default: return eif_fail(err, s->offset, "bad section type", "section %zu", i);
                }
                if (r < 0)
                        return r;
        }
        if (img->kernel < 0)
                return eif_fail(err, len, "missing kernel section", NULL);
        if (img->cmdline < 0)
                return eif_fail(err, len, "missing cmdline section", NULL);
        if (img->metadata < 0)
                return eif_fail(err, len, "missing metadata section", "mandatory from version 4");
        if (img->n_ramdisks == 0)
                return eif_fail(err, len, "missing ramdisk section", NULL);
        if (img->sections[img->kernel].size == 0)
                return eif_fail(err, img->sections[img->kernel].offset, "empty kernel section", NULL);
        if (img->signature >= 0 && img->sections[img->signature].size > EIF_SIGNATURE_MAX)
                return eif_fail(err, img->sections[img->signature].offset + 4, "signature section too large",
                                "%zu bytes, at most %d", img->sections[img->signature].size,
                                EIF_SIGNATURE_MAX);
        return 0;
}

int eif_cmdline_check(const uint8_t *p, size_t len, size_t base, struct eif_error *err) {
        const uint8_t *nul = len > 0 ? memchr(p, 0, len) : NULL;

        if (nul)
                return eif_fail(err, base + (size_t) (nul - p), "NUL in cmdline", NULL);
        if (len > 0 && (p[len - 1] == '\n' || p[len - 1] == '\r'))
                return eif_fail(err, base + len - 1, "trailing newline in cmdline", NULL);
        return 0;
}

static uint32_t image_crc(const uint8_t *buf, size_t end) {
        /* No gaps: the sections follow the header, so the CRC covers bytes 0..543 and 548..end. */
        uint32_t crc = eif_crc32(0, buf, EIF_CRC_OFFSET);

        return eif_crc32(crc, buf + EIF_HEADER_SIZE, end - EIF_HEADER_SIZE);
}

int eif_parse(const uint8_t *buf, size_t len, struct eif_image *ret, struct eif_error *err) {
        struct eif_image img = {};
        struct eif_metadata md;
        const struct eif_section *s;
        size_t pos = EIF_HEADER_SIZE;
        uint32_t crc;
        int r;

        if (!buf && len > 0)
                return -EINVAL;
        r = parse_header(buf, len, &img, err);
        if (r < 0)
                return r;
        for (size_t i = 0; i < img.n_sections; i++) {
                r = parse_section(buf, len, i, &pos, &img, err);
                if (r < 0)
                        return r;
        }
        if (pos != len)
                return eif_fail(err, pos, "trailing bytes", "%zu bytes after the last section", len - pos);
        r = check_kinds(&img, len, err);
        if (r < 0)
                return r;
        s = &img.sections[img.cmdline];
        r = eif_cmdline_check(s->data, s->size, s->offset + EIF_SECTION_HDR_SIZE, err);
        if (r < 0)
                return r;
        crc = image_crc(buf, len);
        if (crc != img.crc)
                return eif_fail(err, EIF_CRC_OFFSET, "CRC mismatch", "stored 0x%08x, computed 0x%08x",
                                img.crc, crc);
        s = &img.sections[img.metadata];
        r = eif_metadata_parse(s->data, s->size, &md, err);
        if (r < 0) {
                if (err)
                        err->offset += s->offset + EIF_SECTION_HDR_SIZE;
                return r;
        }
        *ret = img;
        return 0;
}
