/* The EIF metadata section (nitro-cli's EifIdentityInfo as JSON) and the bzImage version string. */
#include <stdio.h>
#include <string.h>

#include "common/json.h"
#include "eif/eif-internal.h"
#include "eif/eif.h"

#define METADATA_MAX (1024u * 1024u)

enum {
        HAVE_NAME = 1 << 0,
        HAVE_VERSION = 1 << 1,
        HAVE_BUILD = 1 << 2,
        HAVE_DOCKER = 1 << 3,
        HAVE_CUSTOM = 1 << 4,
        HAVE_ALL = (1 << 5) - 1,
};

static const char *const build_keys[] = { "BuildTime", "BuildTool", "BuildToolVersion", "OperatingSystem",
                                          "KernelVersion" };

static int json_fail(struct json_reader *rd, const struct json_error *je, struct eif_error *err) {
        char buf[160];

        (void) json_error_string(je, buf, sizeof(buf));
        return eif_fail(err, je->offset, "malformed metadata JSON", "%s", buf);
}

/* Any value, recorded as the slice of the document it takes. */
static int read_raw(struct json_reader *rd, struct eif_blob *ret) {
        size_t start;
        int r;

        r = json_peek(rd);
        if (r < 0)
                return r;
        start = rd->pos;
        r = json_skip(rd);
        if (r < 0)
                return r;
        *ret = (struct eif_blob){ rd->data + start, rd->pos - start };
        return 0;
}

static int read_build(struct json_reader *rd, struct eif_metadata *m, unsigned *ret_have) {
        char *fields[] = { m->build_time, m->build_tool, m->build_tool_version, m->operating_system,
                           m->kernel_version };
        unsigned have = 0;
        const char *key;
        int r;

        r = json_object_begin(rd);
        while (r >= 0 && (r = json_object_next(rd, &key)) > 0) {
                size_t i;

                for (i = 0; i < ELEMENTSOF(build_keys); i++)
                        if (strcmp(key, build_keys[i]) == 0)
                                break;
                if (i == ELEMENTSOF(build_keys)) {
                        r = json_skip(rd);
                        continue;
                }
                r = json_read_string_buf(rd, fields[i], EIF_METADATA_STR_MAX);
                have |= 1u << i;
        }
        *ret_have = have;
        return r;
}

int eif_metadata_parse(const uint8_t *buf, size_t len, struct eif_metadata *ret, struct eif_error *err) {
        const struct json_limits lim = { .max_input = METADATA_MAX, .reject_duplicates = true };
        struct json_reader rd = {};
        struct json_error je = {};
        struct eif_metadata m = {};
        unsigned have = 0, build = 0;
        const char *key;
        int r;

        r = json_reader_init(&rd, buf, len, &lim, &je);
        if (r < 0)
                return eif_fail(err, 0, "metadata too large", "%zu bytes, at most %u", len, METADATA_MAX);
        r = json_object_begin(&rd);
        while (r >= 0 && (r = json_object_next(&rd, &key)) > 0) {
                if (strcmp(key, "ImageName") == 0) {
                        r = json_read_string_buf(&rd, m.image_name, sizeof(m.image_name));
                        have |= HAVE_NAME;
                } else if (strcmp(key, "ImageVersion") == 0) {
                        r = json_read_string_buf(&rd, m.image_version, sizeof(m.image_version));
                        have |= HAVE_VERSION;
                } else if (strcmp(key, "BuildMetadata") == 0) {
                        r = read_build(&rd, &m, &build);
                        have |= HAVE_BUILD;
                } else if (strcmp(key, "DockerInfo") == 0) {
                        r = read_raw(&rd, &m.docker_info);
                        have |= HAVE_DOCKER;
                } else if (strcmp(key, "CustomMetadata") == 0) {
                        r = read_raw(&rd, &m.custom_metadata);
                        have |= HAVE_CUSTOM;
                } else
                        r = json_skip(&rd);
        }
        if (r >= 0)
                r = json_reader_end(&rd);
        json_reader_done(&rd);
        if (r < 0)
                return json_fail(&rd, &je, err);
        if (have != HAVE_ALL) {
                static const char *const names[] = { "ImageName", "ImageVersion", "BuildMetadata",
                                                     "DockerInfo", "CustomMetadata" };
                for (size_t i = 0; i < ELEMENTSOF(names); i++)
                        if (!(have & (1u << i)))
                                return eif_fail(err, 0, "metadata key missing", "$.%s", names[i]);
        }
        for (size_t i = 0; i < ELEMENTSOF(build_keys); i++)
                if (!(build & (1u << i)))
                        return eif_fail(err, 0, "metadata key missing", "$.BuildMetadata.%s", build_keys[i]);
        *ret = m;
        return 0;
}

int eif_metadata_write(const struct eif_metadata_in *m, char **ret, size_t *ret_len) {
        struct json_writer j;
        int r;

#define S(x) ((x) ? (x) : "")
        json_writer_init(&j, true);
        json_begin_object(&j, NULL);
        json_string(&j, "ImageName", S(m->image_name));
        json_string(&j, "ImageVersion", S(m->image_version));
        json_begin_object(&j, "BuildMetadata");
        json_string(&j, "BuildTime", S(m->build_time));
        json_string(&j, "BuildTool", S(m->build_tool));
        json_string(&j, "BuildToolVersion", S(m->build_tool_version));
        json_string(&j, "OperatingSystem", S(m->operating_system));
        json_string(&j, "KernelVersion", S(m->kernel_version));
        json_end_object(&j);
        json_null(&j, "DockerInfo");
        json_null(&j, "CustomMetadata");
        json_end_object(&j);
#undef S
        r = json_writer_finish(&j, ret, ret_len);
        json_writer_done(&j);
        return r;
}

/* Linux's boot protocol: "HdrS" at 0x202, protocol version at 0x206, kernel_version (u16 LE) at 0x20e
 * pointing at a NUL-terminated string 0x200 bytes later (protocol >= 2.00). */
int eif_bzimage_version(const uint8_t *data, size_t len, char *buf, size_t size) {
        size_t off, n = 0;

        if (size == 0)
                return -EINVAL;
        if (len < 0x210 || memcmp(data + 0x202, "HdrS", 4) != 0 || (data[0x206] | data[0x207] << 8) < 0x200)
                return -ENOENT;
        off = (size_t) (data[0x20e] | data[0x20f] << 8) + 0x200;
        if (off == 0x200 || off >= len)
                return -ENOENT;
        while (off + n < len && n + 1 < size) {
                uint8_t c = data[off + n];

                if (c == 0 || c == ' ')
                        break;
                if (c < 0x21 || c > 0x7e)
                        return -ENOENT;
                buf[n++] = (char) c;
        }
        if (n == 0)
                return -ENOENT;
        buf[n] = '\0';
        return 0;
}
