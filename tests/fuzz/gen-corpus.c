/* Writes the seed corpora from the codec's own encoders: gen-corpus <tests/fuzz/corpus>.
 * The seeds are committed; rerun this after a protocol change. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/rpc-frame.h"
#include "tests/lib/rpc-samples.h"

static uint8_t body[RPC_MAX_BODY_DATA];

static int write_seed(const char *dir, const char *target, const char *name, const uint8_t *pre,
                      size_t pre_len, const uint8_t *b, size_t n) {
        char path[4096];
        FILE *f;

        (void) snprintf(path, sizeof(path), "%s/%s", dir, target);
        if (mkdir(path, 0755) < 0 && errno != EEXIST)
                return -errno;
        (void) snprintf(path, sizeof(path), "%s/%s/%s", dir, target, name);
        f = fopen(path, "wbe");
        if (!f)
                return -errno;
        if (fwrite(pre, 1, pre_len, f) != pre_len || fwrite(b, 1, n, f) != n) {
                fclose(f);
                return -EIO;
        }
        return fclose(f) == 0 ? 0 : -errno;
}

static int frame_seed(const char *dir, const char *name, const struct rpc_sample *s, const uint8_t *b,
                      size_t n) {
        const struct rpc_call_info *c = rpc_call_lookup(s->call);
        uint8_t pre[1 + RPC_HEADER_SIZE];
        struct rpc_header h = {
                .magic = RPC_MAGIC,
                .version = 1,
                .kind = s->request ? RPC_KIND_REQUEST : RPC_KIND_RESPONSE,
                .call = (uint8_t) s->call,
                .request_id = 1,
                .body_len = (uint32_t) n,
        };

        /* bit 0: control channel for control-only calls; bit 1: READY after HELLO */
        pre[0] = (uint8_t) (((c->channels & RPC_CHANNEL_BIT(RPC_CHANNEL_DATA)) ? 0 : 1) |
                            (s->call == RPC_CALL_HELLO ? 0 : 2));
        rpc_header_encode(&h, pre + 1);
        return write_seed(dir, "fuzz-frame", name, pre, sizeof(pre), b, n);
}

int main(int argc, char *argv[]) {
        struct rpc_sample s;
        int r;

        if (argc != 2) {
                fprintf(stderr, "usage: %s CORPUS-DIR\n", argv[0]);
                return EXIT_FAILURE;
        }
        for (size_t i = 0;; i++) {
                struct rpc_writer w;
                char name[64];

                rpc_writer_init(&w, body, sizeof(body));
                if (rpc_sample_encode(i, &w, &s) < 0)
                        break;
                if (rpc_writer_finish(&w) < 0) {
                        fprintf(stderr, "sample %s does not encode\n", s.name);
                        return EXIT_FAILURE;
                }
                (void) snprintf(name, sizeof(name), "%02zu-%s", i, s.name);
                r = frame_seed(argv[1], name, &s, body, w.len);
                if (r >= 0 && !s.request) {
                        uint8_t pre = (uint8_t) s.call;
                        r = write_seed(argv[1], "fuzz-rpc-response", name, &pre, 1, body, w.len);
                }
                if (r < 0) {
                        fprintf(stderr, "%s: %s\n", name, strerror(-r));
                        return EXIT_FAILURE;
                }
        }
        /* A few refusals, so the replay covers the error paths too. */
        {
                static const uint8_t bad_magic[] = { 0, 'E', 'A', 'C', '2', 1, 0, 1, 0,
                                                     0, 0,   0,   1,   0,   0, 0, 1, 0xa0 };
                static const uint8_t too_long[] = {
                        0, 'E', 'A', 'C', '1', 1, 1, 1, 0, 0, 0, 0, 1, 0, 1, 0, 1
                };
                static const uint8_t bad_version[] = { 2, 'E', 'A', 'C', '1', 9, 0, 1, 0,
                                                       0, 0,   0,   1,   0,   0, 0, 1, 0xa0 };
                static const uint8_t wrong_channel[] = { 2, 'E', 'A', 'C', '1', 1, 0, RPC_CALL_TOKEN_ADD,
                                                         0, 0,   0,   0,   1,   0, 0, 0,
                                                         1, 0xa0 };
                static const uint8_t indefinite[] = { 0x06, 0xbf, 0x01, 0x58, 0x20, 0xff };
                static const uint8_t huge_page[] = { 0x02, 0xa2, 0x01, 0x00, 0x04, 0x9b, 0x7f,
                                                     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

                if ((r = write_seed(argv[1], "fuzz-frame", "90-bad-magic", bad_magic, sizeof(bad_magic),
                                    NULL, 0)) < 0 ||
                    (r = write_seed(argv[1], "fuzz-frame", "91-too-long", too_long, sizeof(too_long), NULL,
                                    0)) < 0 ||
                    (r = write_seed(argv[1], "fuzz-frame", "92-bad-version", bad_version,
                                    sizeof(bad_version), NULL, 0)) < 0 ||
                    (r = write_seed(argv[1], "fuzz-frame", "93-wrong-channel", wrong_channel,
                                    sizeof(wrong_channel), NULL, 0)) < 0 ||
                    (r = write_seed(argv[1], "fuzz-rpc-response", "90-indefinite", indefinite,
                                    sizeof(indefinite), NULL, 0)) < 0 ||
                    (r = write_seed(argv[1], "fuzz-rpc-response", "91-huge-page", huge_page,
                                    sizeof(huge_page), NULL, 0)) < 0) {
                        fprintf(stderr, "%s\n", strerror(-r));
                        return EXIT_FAILURE;
                }
        }
        return EXIT_SUCCESS;
}
