/* Reproducible newc ("070701") cpio archives in memory, for EIF ramdisks. Pure: no I/O.
 *
 * Entries are written sorted by name (byte order), with inode numbers 1, 2, ... in that order, uid and
 * gid 0, one fixed mtime, nlink 2 for directories and 1 otherwise, no device of origin and check 0,
 * then the "TRAILER!!!" entry: the same entries always give the same bytes. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "common/cleanup.h"

#define EIF_CPIO_NAME_MAX 4095

struct eif_cpio_entry {
        const char *name;    /* relative: no leading "/", no "." or ".." component, no "//" */
        uint32_t mode;       /* S_IFREG, S_IFDIR, S_IFLNK or S_IFCHR, with permission bits */
        const uint8_t *data; /* S_IFREG: the contents; S_IFLNK: the target (no NUL) */
        size_t len;
        uint32_t rdev_major, rdev_minor; /* S_IFCHR */
};

/* The archive of entries[0..n) into a malloc'ed buffer. entries is sorted in place. -EINVAL for a bad
 * name, a duplicate or an unsupported mode, -EFBIG for a member of 4 GiB or more, -ENOMEM. */
_must_check_ int eif_cpio_write(struct eif_cpio_entry *entries, size_t n, uint32_t mtime, uint8_t **ret,
                                size_t *ret_len);
