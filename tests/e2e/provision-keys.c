/* Test helper: provisions one token holding several keys, which `enclave-acm token add` cannot do yet. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/parse-util.h"
#include "common/rpc-codec.h"
#include "common/transport.h"
#include "tools/cli-input.h"
#include "tools/cli.h"

/* Why this exists: the key-rotation e2e tests need the old and the new key in the same token at
 * once (old workers still sign with id 1 while new ones use id 2), and libp11 0.4.12 never sees a
 * slot that appeared after a server's first key load, so a second token label cannot stand in.
 * Drop this helper once `enclave-acm token add` takes several keys. */

struct loaded_key {
        struct secret_buf *key_pem;
        char *chain;
        size_t chain_len;
        char label[RPC_KEY_LABEL_MAX + 1]; /* "<token label>-<id>": key labels are unique in a token */
};

static void usage(void) {
        fprintf(stderr,
                "Usage: provision-keys CONTROL_ADDRESS LABEL PIN_FILE [--replace] ID KEY.pem CHAIN.pem "
                "[ID KEY.pem CHAIN.pem]...\n");
}

static int load_keys(char **argv, size_t n, struct rpc_token_add_req *req, struct loaded_key *loaded) {
        for (size_t i = 0; i < n; i++) {
                struct provision_key_summary sum;
                unsigned long id;

                if (parse_unsigned(argv[3 * i], 10, 0, RPC_KEY_ID_MAX, &id) < 0) {
                        fprintf(stderr, "provision-keys: bad key id '%s'\n", argv[3 * i]);
                        return -EINVAL;
                }
                if (cli_load_key_and_chain(argv[3 * i + 1], argv[3 * i + 2], &loaded[i].key_pem,
                                           &loaded[i].chain, &loaded[i].chain_len, &sum) < 0)
                        return -EINVAL;
                /* A token label has at most 32 bytes, so this fits in a key label's 64. */
                (void) snprintf(loaded[i].label, sizeof(loaded[i].label), "%.*s-%lu", (int) req->label.len,
                                (const char *) req->label.ptr, id);
                req->keys[i] = (struct rpc_add_key){
                        .id = (uint32_t) id,
                        .label = { (const uint8_t *) loaded[i].label, strlen(loaded[i].label) },
                        .key_pem = { loaded[i].key_pem->data, loaded[i].key_pem->len },
                        .chain_pem = { (const uint8_t *) loaded[i].chain, loaded[i].chain_len },
                };
        }
        req->n_keys = n;
        return 0;
}

static int send_add(const struct cli_ctx *ctx, const struct rpc_token_add_req *req) {
        _cleanup_(rpc_client_freep) struct rpc_client *client = NULL;
        struct rpc_token_add_resp resp = {};
        int r;

        if (cli_connect(ctx, &client) < 0)
                return -EIO;
        r = rpc_client_call_msg(client, RPC_CALL_TOKEN_ADD, req, &resp);
        if (r < 0) {
                (void) cli_report_call_error(client, r, "Cannot add the token");
                return r;
        }
        printf("Token '%.*s' in slot %u holds %zu key(s).\n", (int) req->label.len,
               (const char *) req->label.ptr, (unsigned) resp.slot, req->n_keys);
        return 0;
}

int main(int argc, char **argv) {
        _cleanup_secret_ struct secret_buf *pin = NULL;
        struct loaded_key loaded[RPC_MAX_KEYS] = {};
        struct rpc_token_add_req req = {};
        struct cli_ctx ctx = {};
        int first = 4, r = 1;
        size_t n;

        if (argc > 4 && strcmp(argv[4], "--replace") == 0) {
                req.replace = true;
                first = 5;
        }
        n = (size_t) (argc - first) / 3;
        if (argc < first + 3 || (argc - first) % 3 != 0 || n > RPC_MAX_KEYS) {
                usage();
                return 2;
        }
        ctx.control = argv[1];
        if (transport_addr_parse(argv[1], &ctx.addr) < 0) {
                fprintf(stderr, "provision-keys: bad address '%s'\n", argv[1]);
                return 2;
        }
        req.label = (struct rpc_slice){ (const uint8_t *) argv[2], strlen(argv[2]) };
        if (cli_pin_from_file(argv[3], &pin) < 0)
                return 1;
        req.pin = (struct rpc_slice){ pin->data, pin->len };
        if (load_keys(argv + first, n, &req, loaded) == 0 && send_add(&ctx, &req) == 0)
                r = 0;
        for (size_t i = 0; i < n; i++) {
                secret_buf_free(loaded[i].key_pem);
                free(loaded[i].chain);
        }
        return r;
}
