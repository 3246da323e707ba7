/* Reproducible newc cpio writer: sorted names, fixed owners, mtime and inode numbers. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eif/cpio.h"

#define NEWC_HDR 110

static int cmp_entry(const void *a, const void *b) {
        return strcmp(((const struct eif_cpio_entry *) a)->name, ((const struct eif_cpio_entry *) b)->name);
}

static bool name_ok(const char *name) {
        size_t n = strlen(name);
        const char *p = name;

        if (n == 0 || n > EIF_CPIO_NAME_MAX || name[0] == '/' || name[n - 1] == '/')
                return false;
        for (;;) {
                const char *slash = strchr(p, '/');
                size_t len = slash ? (size_t) (slash - p) : strlen(p);

                if (len == 0 || (len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
                        return false;
                if (!slash)
                        return true;
                p = slash + 1;
        }
}

static bool mode_ok(const struct eif_cpio_entry *e) {
        switch (e->mode & S_IFMT) {
        case S_IFREG: return e->len == 0 || e->data;
        case S_IFLNK: return e->len > 0 && e->data;
        case S_IFDIR:
        case S_IFCHR: return e->len == 0;
        default: return false;
        }
}

static size_t pad4(size_t n) {
        return (4 - (n & 3)) & 3;
}

static size_t entry_size(const char *name, size_t len) {
        size_t h = NEWC_HDR + strlen(name) + 1;

        return h + pad4(h) + len + pad4(len);
}

static size_t put_entry(uint8_t *out, uint32_t ino, uint32_t mode, uint32_t nlink, uint32_t mtime,
                        const struct eif_cpio_entry *e, const char *name) {
        size_t name_size = strlen(name) + 1, len = e ? e->len : 0, pos;
        char hdr[NEWC_HDR + 32];

        (void) snprintf(hdr, sizeof(hdr), "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X", ino,
                        mode, 0u, 0u, nlink, mtime, (unsigned) len, 0u, 0u, e ? e->rdev_major : 0u,
                        e ? e->rdev_minor : 0u, (unsigned) name_size, 0u);
        memcpy(out, hdr, NEWC_HDR);
        pos = NEWC_HDR;
        memcpy(out + pos, name, name_size);
        pos += name_size;
        memset(out + pos, 0, pad4(pos));
        pos += pad4(pos);
        if (len > 0) {
                memcpy(out + pos, e->data, len);
                pos += len;
                memset(out + pos, 0, pad4(len));
                pos += pad4(len);
        }
        return pos;
}

int eif_cpio_write(struct eif_cpio_entry *entries, size_t n, uint32_t mtime, uint8_t **ret,
                   size_t *ret_len) {
        _cleanup_free_ uint8_t *buf = NULL;
        size_t total = 0, pos = 0;

        if (n > UINT32_MAX - 1 || (n > 0 && !entries))
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                if (!entries[i].name || !name_ok(entries[i].name) || !mode_ok(&entries[i]))
                        return -EINVAL;
                if (entries[i].len >= UINT32_MAX)
                        return -EFBIG;
                if (entries[i].len > SIZE_MAX / 2 - total - NEWC_HDR - EIF_CPIO_NAME_MAX)
                        return -EFBIG;
                total += entry_size(entries[i].name, entries[i].len);
        }
        total += entry_size("TRAILER!!!", 0);
        if (n > 0)
                qsort(entries, n, sizeof(*entries), cmp_entry);
        for (size_t i = 1; i < n; i++)
                if (strcmp(entries[i - 1].name, entries[i].name) == 0)
                        return -EINVAL;
        buf = malloc(total);
        if (!buf)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                const struct eif_cpio_entry *e = &entries[i];

                pos += put_entry(buf + pos, (uint32_t) i + 1, e->mode, S_ISDIR(e->mode) ? 2 : 1, mtime, e,
                                 e->name);
        }
        pos += put_entry(buf + pos, 0, 0, 1, 0, NULL, "TRAILER!!!");
        if (pos != total)
                return -EIO;
        *ret_len = pos;
        *ret = TAKE_PTR(buf);
        return 0;
}
