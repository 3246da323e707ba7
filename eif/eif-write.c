/* The EIF writer: header, section headers and CRC for parts the caller holds (no copies, no I/O). */
#include <stdlib.h>
#include <string.h>

#include "eif/eif-internal.h"
#include "eif/eif.h"

static int check_parts(const struct eif_build *b, struct eif_error *err) {
        struct eif_metadata md;
        int r;

        if (b->flags & ~EIF_FLAG_ARM64)
                return eif_fail(err, EIF_OFF_FLAGS, "unknown header flags", "flags 0x%04x", b->flags);
        if (!b->kernel.ptr || b->kernel.len == 0)
                return eif_fail(err, 0, "empty kernel section", NULL);
        if (b->n_ramdisks < 1 || !b->ramdisks)
                return eif_fail(err, 0, "missing ramdisk section", NULL);
        /* kernel, cmdline, metadata, the ramdisks and maybe a signature. */
        if (b->n_ramdisks > EIF_MAX_SECTIONS - 3 - (b->signature.len > 0))
                return eif_fail(err, EIF_OFF_COUNT, "section count out of range", "%zu ramdisks, at most %d",
                                b->n_ramdisks, EIF_MAX_SECTIONS - 3 - (b->signature.len > 0));
        if (b->signature.len > EIF_SIGNATURE_MAX)
                return eif_fail(err, 0, "signature section too large", "%zu bytes, at most %d",
                                b->signature.len, EIF_SIGNATURE_MAX);
        r = eif_cmdline_check(b->cmdline.ptr, b->cmdline.len, 0, err);
        if (r < 0)
                return r;
        return eif_metadata_parse(b->metadata.ptr, b->metadata.len, &md, err);
}

static void add_section(struct eif_layout *l, uint16_t type, struct eif_blob data) {
        size_t i = l->n_sections++;

        eif_put_be64(l->header + EIF_OFF_OFFSETS + 8 * i, l->total);
        eif_put_be64(l->header + EIF_OFF_SIZES + 8 * i, data.len);
        eif_put_be16(l->section_hdrs[i], type);
        eif_put_be16(l->section_hdrs[i] + 2, 0);
        eif_put_be64(l->section_hdrs[i] + 4, data.len);
        l->data[i] = data;
        l->total += EIF_SECTION_HDR_SIZE + data.len;
}

int eif_layout_build(const struct eif_build *b, struct eif_layout *ret, struct eif_error *err) {
        struct eif_layout *l = ret;
        uint32_t crc;
        int r;

        r = check_parts(b, err);
        if (r < 0)
                return r;
        memset(l, 0, sizeof(*l));
        memcpy(l->header, EIF_MAGIC, 4);
        eif_put_be16(l->header + EIF_OFF_VERSION, EIF_VERSION);
        eif_put_be16(l->header + EIF_OFF_FLAGS, b->flags);
        eif_put_be64(l->header + EIF_OFF_MEM, b->default_mem ? b->default_mem : EIF_DEFAULT_MEM);
        eif_put_be64(l->header + EIF_OFF_CPUS, b->default_cpus ? b->default_cpus : EIF_DEFAULT_CPUS);
        l->total = EIF_HEADER_SIZE;
        add_section(l, EIF_SECTION_KERNEL, b->kernel);
        add_section(l, EIF_SECTION_CMDLINE, b->cmdline);
        add_section(l, EIF_SECTION_METADATA, b->metadata);
        for (size_t i = 0; i < b->n_ramdisks; i++)
                add_section(l, EIF_SECTION_RAMDISK, b->ramdisks[i]);
        if (b->signature.len > 0)
                add_section(l, EIF_SECTION_SIGNATURE, b->signature);
        eif_put_be16(l->header + EIF_OFF_COUNT, (uint16_t) l->n_sections);

        crc = eif_crc32(0, l->header, EIF_CRC_OFFSET);
        for (size_t i = 0; i < l->n_sections; i++) {
                crc = eif_crc32(crc, l->section_hdrs[i], EIF_SECTION_HDR_SIZE);
                if (l->data[i].len > 0)
                        crc = eif_crc32(crc, l->data[i].ptr, l->data[i].len);
        }
        eif_put_be32(l->header + EIF_CRC_OFFSET, crc);
        return 0;
}

int eif_write(const struct eif_build *b, uint8_t **ret, size_t *ret_len, struct eif_error *err) {
        _cleanup_free_ struct eif_layout *l = NULL;
        _cleanup_free_ uint8_t *buf = NULL;
        size_t pos;
        int r;

        l = malloc(sizeof(*l));
        if (!l)
                return -ENOMEM;
        r = eif_layout_build(b, l, err);
        if (r < 0)
                return r;
        if (l->total > SIZE_MAX)
                return -EFBIG;
        buf = malloc((size_t) l->total);
        if (!buf)
                return -ENOMEM;
        memcpy(buf, l->header, EIF_HEADER_SIZE);
        pos = EIF_HEADER_SIZE;
        for (size_t i = 0; i < l->n_sections; i++) {
                memcpy(buf + pos, l->section_hdrs[i], EIF_SECTION_HDR_SIZE);
                pos += EIF_SECTION_HDR_SIZE;
                if (l->data[i].len > 0)
                        memcpy(buf + pos, l->data[i].ptr, l->data[i].len);
                pos += l->data[i].len;
        }
        *ret_len = pos;
        *ret = TAKE_PTR(buf);
        return 0;
}
