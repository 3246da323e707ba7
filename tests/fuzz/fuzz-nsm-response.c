/* Target: nsm_response_decode() (the NSM client's decoder of /dev/nsm answers), and
 * nsm_request_decode() (the simulator's side) on the same bytes.
 *
 * Input: one response as the device would write it into the 12288-byte buffer. What decodes must
 * re-encode (serde shape, definite lengths), and the re-encoding must decode to the same kind again. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "enclave-token/nsm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t out[NSM_RESPONSE_MAX];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct nsm_response resp = {}, again = {};
        struct nsm_request req;
        size_t len = 0;
        int r;

        r = nsm_request_decode(data, size, &req, NULL);
        if (r < 0 && r != -EBADMSG && r != -EINVAL && r != -EOPNOTSUPP && r != -EMSGSIZE)
                abort();
        r = nsm_response_decode(data, size, &resp, NULL);
        if (r < 0) {
                if (r != -EBADMSG && r != -ENOMEM)
                        abort();
                return 0;
        }
        if (resp.kind < 0 || resp.kind >= _NSM_RESPONSE_MAX || resp.pcr.len > NSM_PCR_LEN_MAX ||
            resp.random_len > NSM_RANDOM_MAX || resp.document_len > size ||
            resp.description.n_locked_pcrs > NSM_LOCKED_PCRS_MAX)
                abort();
        r = nsm_response_encode(&resp, out, sizeof(out), &len);
        if (r >= 0) {
                if (nsm_response_decode(out, len, &again, NULL) < 0 || again.kind != resp.kind ||
                    again.document_len != resp.document_len || again.random_len != resp.random_len ||
                    memcmp(again.random, resp.random, resp.random_len) != 0)
                        abort();
        } else if (r != -EMSGSIZE)
                abort();
        nsm_response_done(&again);
        nsm_response_done(&resp);
        return 0;
}
