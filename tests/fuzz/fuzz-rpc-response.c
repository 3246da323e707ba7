/* Target: every response schema the client side decodes with (rpc_msg_decode() through the call
 * table, as rpc_client_call_msg() does) and every call's rpc_msg_check() of its response.
 *
 * Input: byte 0 is a call id (modulo the number of calls) whose response decoder runs on the rest.
 * What decodes must re-encode, and the re-encoding must decode to the same bytes again. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/rpc-calls.h"
#include "common/rpc-codec.h"
#include "tests/lib/rpc-reencode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t out1[1u << 20], out2[1u << 20];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct rpc_writer w1, w2;
        enum rpc_call call;
        int r;

        if (size < 1)
                return 0;
        call = data[0] % _RPC_CALL_MAX;
        data++;
        size--;

        /* every call's checker sees every input */
        for (unsigned c = 0; c < _RPC_CALL_MAX; c++) {
                r = rpc_msg_check(rpc_call_lookup(c)->response, data, size);
                if (r != 0 && r != -EBADMSG && r != -ENOMEM)
                        abort();
        }

        rpc_writer_init(&w1, out1, sizeof(out1));
        r = rpc_sample_reencode_response(call, data, size, &w1);
        if (r < 0) {
                if (r != -EBADMSG && r != -ENOMEM)
                        abort();
                return 0;
        }
        /* Accepted input re-encodes within the schema ... */
        if (rpc_writer_finish(&w1) < 0)
                abort();
        /* ... and the canonical form is a fixed point. */
        rpc_writer_init(&w2, out2, sizeof(out2));
        if (rpc_sample_reencode_response(call, out1, w1.len, &w2) < 0 || rpc_writer_finish(&w2) < 0)
                abort();
        if (w1.len != w2.len || memcmp(out1, out2, w1.len) != 0)
                abort();
        return 0;
}
