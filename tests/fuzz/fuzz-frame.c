/* Target: rpc_header_decode(), then rpc_call_check() and the call table's body checkers on what follows.
 *
 * Input: byte 0 picks the channel (bit 0) and the connection state (bit 1); then a 16-byte header;
 * then the body. */
#include <stdlib.h>
#include <string.h>

#include "common/rpc-calls.h"
#include "common/rpc-frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        enum rpc_channel ch;
        enum rpc_conn_state state;
        const struct rpc_call_info *info;
        struct rpc_header h;
        uint8_t again[RPC_HEADER_SIZE];
        size_t body_len;
        int r;

        if (size < 1 + RPC_HEADER_SIZE)
                return 0;
        ch = (data[0] & 1) ? RPC_CHANNEL_CONTROL : RPC_CHANNEL_DATA;
        state = (data[0] & 2) ? RPC_STATE_READY : RPC_STATE_NEW;
        r = rpc_header_decode(data + 1, ch, &h);
        if (r < 0)
                return 0;
        /* what decodes re-encodes to the same bytes */
        rpc_header_encode(&h, again);
        if (memcmp(again, data + 1, RPC_HEADER_SIZE) != 0)
                abort();
        if (h.body_len > rpc_channel_max_body(ch))
                abort();

        if (rpc_call_check(h.call, ch, state, &info) < 0)
                return 0;
        body_len = size - 1 - RPC_HEADER_SIZE;
        if (body_len > h.body_len)
                body_len = h.body_len; /* a short body is what a reader would not get past */
        r = h.kind == RPC_KIND_REQUEST ? rpc_msg_check(info->request, data + 1 + RPC_HEADER_SIZE, body_len)
                                       : rpc_msg_check(info->response, data + 1 + RPC_HEADER_SIZE, body_len);
        if (r > 0)
                abort();
        return 0;
}
