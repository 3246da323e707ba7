/* Writes the seeds of fuzz-p11-objects: the enclave dispatcher's TOKEN_OBJECTS answer for each test
 * token of fuzz-rpc-request (Ed25519, P-256, RSA-2048, each with its self-signed certificate), so
 * the seeds hold real SPKIs and certificates. Run by hand: gen-objects-corpus tests/fuzz/corpus.
 * Built from fuzz-rpc-request.c itself (its fixture), so both targets share one set of test keys. */
#include <errno.h>
#include <stdio.h>

#include "tests/fuzz/fuzz-rpc-request.c"

static int write_file(const char *path, const uint8_t *b, size_t n) {
        FILE *f = fopen(path, "wbe");

        if (!f)
                return -errno;
        if (fwrite(b, 1, n, f) != n) {
                fclose(f);
                return -EIO;
        }
        return fclose(f) == 0 ? 0 : -errno;
}

static uint8_t resp_buf[RPC_MAX_BODY_CONTROL];

int main(int argc, char *argv[]) {
        static const char *const names[N_TOKENS] = { "token-ed25519", "token-p256", "token-rsa2048" };
        char path[4096];

        if (argc != 2) {
                fprintf(stderr, "usage: %s CORPUS-DIR\n", argv[0]);
                return EXIT_FAILURE;
        }
        log_set_max_level(LOG_CRIT);
        if (fixture_setup() < 0) {
                fprintf(stderr, "the test tokens could not be set up\n");
                return EXIT_FAILURE;
        }
        for (size_t i = 0; i < N_TOKENS; i++) {
                uint32_t slot = etok_slot_hash(fixture[i].label, strlen(fixture[i].label));
                /* {1: slot}: struct rpc_slot_req */
                uint8_t req[] = { 0xa1,
                                  0x01,
                                  0x1a,
                                  (uint8_t) (slot >> 24),
                                  (uint8_t) (slot >> 16),
                                  (uint8_t) (slot >> 8),
                                  (uint8_t) slot };
                struct etok_dispatch d = { .keystore = ks };
                struct etok_session s;
                struct etok_reply reply;
                struct rpc_writer w;
                int r;

                etok_session_init(&s, RPC_CHANNEL_DATA);
                s.state = RPC_STATE_READY;
                s.version = RPC_VERSION_MAX;
                rpc_writer_init(&w, resp_buf, sizeof(resp_buf));
                etok_dispatch_request(&d, &s, RPC_CALL_TOKEN_OBJECTS, req, sizeof(req), &w, &reply);
                if (reply.status != RPC_STATUS_OK) {
                        fprintf(stderr, "%s: TOKEN_OBJECTS failed (status %u)\n", names[i],
                                (unsigned) reply.status);
                        return EXIT_FAILURE;
                }
                (void) snprintf(path, sizeof(path), "%s/fuzz-p11-objects/%s", argv[1], names[i]);
                r = write_file(path, resp_buf, w.len);
                if (r < 0) {
                        fprintf(stderr, "%s: %s\n", path, strerror(-r));
                        return EXIT_FAILURE;
                }
        }
        return EXIT_SUCCESS;
}
