/* Enclave Image Files (EIF, version 4): strict reader and checker, layout writer, PCRs, metadata JSON.
 * Pure: no I/O. NITRO-FORMATS.md section 7.
 *
 * File layout: a 548-byte big-endian header (magic ".eif", version, flags, default_mem, default_cpus,
 * reserved, section_cnt, 32 section offsets, 32 section sizes, unused, CRC-32), then section_cnt
 * sections, each a 12-byte header (type, flags, size) and its data.
 *
 * eif_parse() accepts a file only if every rule below holds (7.7 and 7.8); the first rule broken is
 * reported with the byte offset where it was found:
 * - the whole header is present; magic ".eif"; version 4; no flag but bit 0 (arm64); reserved and
 *   unused fields zero;
 * - 2..32 sections; table entries past section_cnt zero;
 * - the first section right after the header, each next one right after the previous one's data (no
 *   gap, no overlap), every offset and size inside the file, nothing after the last section;
 * - each section header's size equals the table's size, its flags are 0, its type 1..5;
 * - exactly one kernel, one cmdline and one metadata section, at least one ramdisk, at most one
 *   signature; no ramdisk before the kernel; the kernel not empty; a signature at most 32768 bytes;
 * - the cmdline has no NUL byte and no trailing newline;
 * - the metadata is a JSON object with every key nitro-cli reads (eif_metadata_parse());
 * - the stored CRC-32 equals the CRC of the header's first 544 bytes and every section.
 * The signature section's contents are checked by eif_signature_parse() (eif-sign.h). */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/cleanup.h"

#define EIF_MAGIC            ".eif"
#define EIF_VERSION          4
#define EIF_HEADER_SIZE      548
#define EIF_CRC_OFFSET       544
#define EIF_SECTION_HDR_SIZE 12
#define EIF_MAX_SECTIONS     32
#define EIF_MIN_SECTIONS     2
#define EIF_SIGNATURE_MAX    32768
#define EIF_FLAG_ARM64       0x1
#define EIF_DEFAULT_MEM      UINT64_C(1073741824) /* the builder's default: 1 GiB */
#define EIF_DEFAULT_CPUS     2
#define EIF_PCR_LEN          48   /* SHA-384 */
#define EIF_METADATA_STR_MAX 1024 /* bytes of one metadata string, with its NUL */

enum eif_section_type {
        EIF_SECTION_INVALID = 0,
        EIF_SECTION_KERNEL = 1,
        EIF_SECTION_CMDLINE = 2,
        EIF_SECTION_RAMDISK = 3,
        EIF_SECTION_SIGNATURE = 4,
        EIF_SECTION_METADATA = 5,
        _EIF_SECTION_TYPE_MAX,
        _EIF_SECTION_TYPE_INVALID = -EINVAL,
};

/* "kernel", "cmdline", "ramdisk", "signature", "metadata"; NULL for anything else. */
const char *eif_section_type_to_string(int type);

/* Where and why a file was refused. rule is static text naming the rule ("magic", "version",
 * "section gap", ...); detail says more (never file contents beyond numbers and type names). */
struct eif_error {
        size_t offset;
        const char *rule;
        char detail[160];
};

/* "section gap at byte 1024: section 2 starts at 1040, expected 1024" into buf. */
const char *eif_error_string(const struct eif_error *err, char *buf, size_t size);

struct eif_section {
        enum eif_section_type type;
        uint64_t offset;     /* of the section header in the file */
        const uint8_t *data; /* into the buffer given to eif_parse() */
        size_t size;
};

struct eif_image {
        uint16_t version;
        uint16_t flags;
        uint64_t default_mem;
        uint64_t default_cpus;
        uint32_t crc; /* stored (and, after eif_parse() succeeded, computed) CRC-32 */
        size_t n_sections;
        struct eif_section sections[EIF_MAX_SECTIONS]; /* in file order */
        /* Indices into sections[]; -1 when absent. */
        int kernel, cmdline, metadata, signature;
        size_t n_ramdisks;
        int ramdisks[EIF_MAX_SECTIONS]; /* in file order */
};

/* Checks buf (the whole file) against every rule above. 0 and *ret filled (slices into buf), or
 * -EBADMSG with *err saying which rule failed and where. err may be NULL. */
_must_check_ int eif_parse(const uint8_t *buf, size_t len, struct eif_image *ret, struct eif_error *err);

/* CRC-32/ISO-HDLC (zlib's crc32()), continued from crc (0 to start). */
uint32_t eif_crc32(uint32_t crc, const void *data, size_t len);

/* ---- PCRs (7.3) ------------------------------------------------------------------------------- */

struct eif_blob {
        const uint8_t *ptr;
        size_t len;
};

/* PCR(data) = SHA384(48 zero bytes || SHA384(parts[0] || parts[1] || ...)). */
_must_check_ int eif_pcr(const struct eif_blob *parts, size_t n, uint8_t ret[EIF_PCR_LEN]);

struct eif_pcrs {
        uint8_t pcr0[EIF_PCR_LEN]; /* kernel || cmdline || every ramdisk */
        uint8_t pcr1[EIF_PCR_LEN]; /* kernel || cmdline || ramdisk 0 */
        uint8_t pcr2[EIF_PCR_LEN]; /* ramdisks 1..n */
};

/* The three measurements from the parts themselves (what a builder computes before writing). */
_must_check_ int eif_pcrs_compute(struct eif_blob kernel, struct eif_blob cmdline,
                                  const struct eif_blob *ramdisks, size_t n_ramdisks, struct eif_pcrs *ret);
/* The same for a parsed image. */
_must_check_ int eif_image_pcrs(const struct eif_image *img, struct eif_pcrs *ret);

/* ---- Metadata (7.2, 7.8) ---------------------------------------------------------------------- */

struct eif_metadata {
        char image_name[EIF_METADATA_STR_MAX];
        char image_version[EIF_METADATA_STR_MAX];
        char build_time[EIF_METADATA_STR_MAX];
        char build_tool[EIF_METADATA_STR_MAX];
        char build_tool_version[EIF_METADATA_STR_MAX];
        char operating_system[EIF_METADATA_STR_MAX];
        char kernel_version[EIF_METADATA_STR_MAX];
        /* DockerInfo and CustomMetadata: the raw JSON value (any type, null included), a slice of the
         * buffer given to eif_metadata_parse(). */
        struct eif_blob docker_info, custom_metadata;
};

/* The metadata section: a JSON object (at most 1 MiB) with ImageName, ImageVersion (strings),
 * BuildMetadata {BuildTime, BuildTool, BuildToolVersion, OperatingSystem, KernelVersion} (strings),
 * DockerInfo and CustomMetadata (any value, null too). Other keys are allowed and ignored (nitro-cli
 * ignores them); a duplicate key is refused. 0, or -EBADMSG with *err (offset into the section). */
_must_check_ int eif_metadata_parse(const uint8_t *buf, size_t len, struct eif_metadata *ret,
                                    struct eif_error *err);

/* The fields to write; NULL strings are written as "". DockerInfo and CustomMetadata are written as
 * null. */
struct eif_metadata_in {
        const char *image_name, *image_version;
        const char *build_time, *build_tool, *build_tool_version, *operating_system, *kernel_version;
};

/* Compact JSON in nitro-cli's key order; *ret malloc'ed and NUL-terminated. */
_must_check_ int eif_metadata_write(const struct eif_metadata_in *m, char **ret, size_t *ret_len);

/* The kernel version string of an x86 bzImage (setup header "HdrS", kernel_version pointer), up to
 * its first space, into buf; -ENOENT if data is not a bzImage with one. Bounded reads only. */
_must_check_ int eif_bzimage_version(const uint8_t *data, size_t len, char *buf, size_t size);

/* ---- Writer ----------------------------------------------------------------------------------- */

/* What goes into a file, in builder order: kernel, cmdline, metadata, ramdisks, signature. */
struct eif_build {
        struct eif_blob kernel;
        struct eif_blob cmdline; /* without a trailing NUL or newline */
        struct eif_blob metadata;
        const struct eif_blob *ramdisks;
        size_t n_ramdisks;
        struct eif_blob signature; /* len 0: unsigned */
        uint16_t flags;            /* 0 (x86_64) or EIF_FLAG_ARM64 */
        uint64_t default_mem, default_cpus;
};

/* Everything a writer emits besides the parts' own bytes: the file is header, then for each
 * section its 12-byte section_hdrs[i] followed by that part's data. */
struct eif_layout {
        uint8_t header[EIF_HEADER_SIZE];
        uint8_t section_hdrs[EIF_MAX_SECTIONS][EIF_SECTION_HDR_SIZE];
        struct eif_blob data[EIF_MAX_SECTIONS]; /* the parts, in file order */
        size_t n_sections;
        uint64_t total; /* file size */
};

/* Checks the parts against the builder rules (sizes, counts, cmdline, signature size; metadata
 * parses) and computes the layout and CRC. 0, or -EINVAL / -EMSGSIZE / -EBADMSG with *err. */
_must_check_ int eif_layout_build(const struct eif_build *b, struct eif_layout *ret, struct eif_error *err);

/* The whole file in one malloc'ed buffer (tests and small images). */
_must_check_ int eif_write(const struct eif_build *b, uint8_t **ret, size_t *ret_len, struct eif_error *err);
