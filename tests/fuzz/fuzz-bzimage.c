/* Target: eif_bzimage_version() (eif/eif-meta.c: the kernel version read from the bzImage that
 * `enclave-acm eif build` is given, for the EIF's metadata).
 *
 * Input: byte 0 is the size of the output buffer (0..255); the rest is the kernel image. Invariants:
 * -EINVAL only for a zero-size buffer, -ENOENT otherwise on failure; on success the version is 1 to
 * size-1 printable, non-space bytes, NUL-terminated, copied from the image at 0x200 + the setup
 * header's kernel_version, and the image carries the "HdrS" magic of boot protocol >= 2.00. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "eif/eif.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *buf;
        size_t bufsize, len, off;
        int r;

        if (size < 1)
                return 0;
        bufsize = data[0];
        data++;
        size--;
        buf = malloc(bufsize ? bufsize : 1); /* exact size: a write past it is caught */
        if (!buf)
                abort();
        r = eif_bzimage_version(data, size, buf, bufsize);
        if (r < 0) {
                if (r != (bufsize == 0 ? -EINVAL : -ENOENT))
                        abort();
                free(buf);
                return 0;
        }
        len = strnlen(buf, bufsize);
        if (len == 0 || len >= bufsize || size < 0x210 || memcmp(data + 0x202, "HdrS", 4) != 0)
                abort();
        off = (size_t) (data[0x20e] | data[0x20f] << 8) + 0x200;
        if (off + len > size || memcmp(data + off, buf, len) != 0)
                abort();
        for (size_t i = 0; i < len; i++)
                if ((unsigned char) buf[i] < 0x21 || (unsigned char) buf[i] > 0x7e)
                        abort();
        free(buf);
        return 0;
}
