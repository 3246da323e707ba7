/* Target: launcher_allocator_parse, launcher_nitro_describe_parse
 *
 * Input: the first byte picks the parser (even: /etc/nitro_enclaves/allocator.yaml, odd: the output of
 * `nitro-cli describe-enclaves`), the rest is its text. Whatever it holds, the parsers fail cleanly
 * (-EBADMSG) or return sizes within their bounds. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "agent/launcher/launcher.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        uint64_t mem = 0, cpus = 0;
        unsigned count = 0;
        int r;

        if (size == 0)
                return 0;
        if (data[0] % 2 == 0) {
                r = launcher_allocator_parse((const char *) data + 1, size - 1, &mem, &cpus);
                if (r >= 0 && (mem == 0 || mem > UINT32_MAX || cpus == 0))
                        abort();
        } else {
                r = launcher_nitro_describe_parse((const char *) data + 1, size - 1, &mem, &cpus, &count);
                if (r >= 0 &&
                    (count > 64 || mem > (uint64_t) count * UINT32_MAX || cpus > (uint64_t) count * 4096))
                        abort();
        }
        if (r < 0 && r != -EBADMSG)
                abort();
        return 0;
}
