/* The wire frame: encode and check the fixed 16-byte header. */
#include <errno.h>
#include <string.h>

#include "common/rpc-frame.h"

static void put_be32(uint8_t *p, uint32_t v) {
        p[0] = (uint8_t) (v >> 24);
        p[1] = (uint8_t) (v >> 16);
        p[2] = (uint8_t) (v >> 8);
        p[3] = (uint8_t) v;
}

static uint32_t get_be32(const uint8_t *p) {
        return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | (uint32_t) p[3];
}

size_t rpc_channel_max_body(enum rpc_channel ch) {
        switch (ch) {
        case RPC_CHANNEL_DATA: return RPC_MAX_BODY_DATA;
        case RPC_CHANNEL_CONTROL: return RPC_MAX_BODY_CONTROL;
        default: return 0;
        }
}

const char *rpc_channel_to_string(enum rpc_channel ch) {
        switch (ch) {
        case RPC_CHANNEL_DATA: return "data";
        case RPC_CHANNEL_CONTROL: return "control";
        default: return NULL;
        }
}

void rpc_header_encode(const struct rpc_header *h, uint8_t out[static RPC_HEADER_SIZE]) {
        put_be32(out, h->magic);
        out[4] = h->version;
        out[5] = h->kind;
        out[6] = h->call;
        out[7] = h->status;
        put_be32(out + 8, h->request_id);
        put_be32(out + 12, h->body_len);
}

int rpc_header_decode(const uint8_t in[static RPC_HEADER_SIZE], enum rpc_channel ch,
                      struct rpc_header *ret) {
        struct rpc_header h = {
                .magic = get_be32(in),
                .version = in[4],
                .kind = in[5],
                .call = in[6],
                .status = in[7],
                .request_id = get_be32(in + 8),
                .body_len = get_be32(in + 12),
        };

        if (ch < 0 || ch >= _RPC_CHANNEL_MAX || !ret)
                return -EINVAL;
        if (h.magic != RPC_MAGIC)
                return -EBADMSG;
        if (h.version < RPC_VERSION_MIN || h.version > RPC_VERSION_MAX)
                return -EPROTONOSUPPORT;
        /* Requests carry no status; a response's status is one we know (new ones come with a new
         * version). */
        if (h.kind == RPC_KIND_REQUEST) {
                if (h.status != RPC_STATUS_OK)
                        return -EBADMSG;
        } else if (h.kind == RPC_KIND_RESPONSE) {
                if (h.status >= _RPC_STATUS_MAX)
                        return -EBADMSG;
        } else
                return -EBADMSG;
        if (h.body_len > rpc_channel_max_body(ch))
                return -EMSGSIZE;

        *ret = h;
        return 0;
}
