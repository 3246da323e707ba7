/* Target: agent_image_measurements_parse
 *
 * Input: an image-measurements.json (nitro-cli build-enclave / describe-eif output). Whatever it holds,
 * the parser fails cleanly (-EBADMSG or -E2BIG, with a message, the output untouched) or returns a set
 * with PCR0, PCR1 and PCR2 in it and nothing beyond PCR31. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agent/config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct agent_pcr_set set, before;
        char *error = NULL;
        int r;

        memset(&set, 0xa5, sizeof(set));
        before = set;
        r = agent_image_measurements_parse((const char *) data, size, &set, &error);
        if (r < 0) {
                if ((r != -EBADMSG && r != -E2BIG) || !error || memcmp(&set, &before, sizeof(set)) != 0)
                        abort();
                free(error);
                return 0;
        }
        if (error || (set.mask & 0x7u) != 0x7u)
                abort();
        return 0;
}
