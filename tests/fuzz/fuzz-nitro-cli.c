/* Target: launcher_nitro_parse
 *
 * Input: what `nitro-cli run-enclave` printed (progress lines, then a JSON object). Whatever it
 * holds, the parser fails cleanly (-EBADMSG) or returns an id that fits and is NUL-terminated, a
 * positive process id and a CID above the reserved ones. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agent/launcher/launcher.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct launcher_nitro_info info;
        int r;

        memset(&info, 0xa5, sizeof(info));
        r = launcher_nitro_parse((const char *) data, size, &info);
        if (r < 0) {
                if (r != -EBADMSG)
                        abort();
                return 0;
        }
        if (memchr(info.enclave_id, '\0', sizeof(info.enclave_id)) == NULL || info.enclave_id[0] == '\0' ||
            info.process_id <= 0 || info.cid <= 3)
                abort();
        return 0;
}
