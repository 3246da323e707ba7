/* Checks that fuzz-rpc-request really reaches the keys: its seeds, replayed through the same code as
 * the fuzzer runs them (run_input() of fuzz-rpc-request.c, compiled in), get the answers a real
 * enclave gives. A fixture that stopped logging in, or a ticket marker that stopped matching, would
 * leave the fuzzer stuck in front of the ticket check while its replay still passed; this fails.
 *
 * Argument: the seed directory (tests/fuzz/corpus/fuzz-rpc-request). */
#include <errno.h>
#include <stdio.h>

#include "tests/fuzz/fuzz-rpc-request.c"
#include "tests/lib/tap.h"

static const char *seed_dir;

static int replay(const char *name, enum rpc_status *ret) {
        char path[4096];
        uint8_t buf[RPC_MAX_BODY_CONTROL + 2];
        size_t n;
        FILE *f;

        (void) snprintf(path, sizeof(path), "%s/%s", seed_dir, name);
        f = fopen(path, "rbe");
        if (!f) {
                printf("# %s: %s\n", path, strerror(errno));
                return -errno;
        }
        n = fread(buf, 1, sizeof(buf), f);
        fclose(f);
        *ret = _RPC_STATUS_MAX;
        return run_input(buf, n, ret);
}

#define EXPECT(name, status)                                                                      \
        do {                                                                                      \
                enum rpc_status st_;                                                              \
                ASSERT_OK(replay(name, &st_));                                                    \
                if (st_ != (status))                                                              \
                        TAP_FAIL_("%s: status %d, expected %d", name, (int) st_, (int) (status)); \
        } while (0)

/* SIGN and DECRYPT with each key type, past the ticket check. */
static void test_keys_reached(void) {
        EXPECT("sign-eddsa", RPC_STATUS_OK);
        EXPECT("sign-ecdsa", RPC_STATUS_OK);
        EXPECT("sign-rsa-pkcs", RPC_STATUS_OK);
        EXPECT("sign-rsa-pss", RPC_STATUS_OK);
        EXPECT("decrypt-pkcs", RPC_STATUS_OK);
        EXPECT("decrypt-oaep", RPC_STATUS_OK);
}

/* The refusals are the ticket and PIN checks, not a broken fixture. */
static void test_refusals(void) {
        enum rpc_status st;

        ASSERT_OK(replay("sign-no-ticket", &st));
        ASSERT_TRUE(st != RPC_STATUS_OK && st != _RPC_STATUS_MAX);
        ASSERT_OK(replay("login-wrong-pin", &st));
        ASSERT_TRUE(st != RPC_STATUS_OK && st != _RPC_STATUS_MAX);
}

static void test_token_calls(void) {
        EXPECT("login", RPC_STATUS_OK);
        EXPECT("token-objects", RPC_STATUS_OK);
        EXPECT("token-list", RPC_STATUS_OK);
        EXPECT("describe", RPC_STATUS_OK);
        EXPECT("token-add-dev", RPC_STATUS_OK);
        EXPECT("token-remove", RPC_STATUS_OK);
        EXPECT("token-objects-v3", RPC_STATUS_OK);
        EXPECT("describe-v3", RPC_STATUS_OK);
        EXPECT("token-list-v3", RPC_STATUS_OK);
}

#if ENCLAVE_ACM_NSM_SIMULATOR
/* With flag bit 3, ATTEST reaches the NSM simulator and comes back with a document. */
static void test_attest(void) {
        EXPECT("attest-nsm-sim", RPC_STATUS_OK);
        EXPECT("attest-empty-nsm-sim", RPC_STATUS_OK);
}
#endif

int main(int argc, char *argv[]) {
        if (argc != 2) {
                fprintf(stderr, "usage: %s SEED-DIR\n", argv[0]);
                return EXIT_FAILURE;
        }
        seed_dir = argv[1];
        {
                static const struct tap_test tests[] = {
                        TEST("/fuzz/rpc-request/keys-reached", test_keys_reached),
                        TEST("/fuzz/rpc-request/refusals", test_refusals),
                        TEST("/fuzz/rpc-request/token-calls", test_token_calls),
#if ENCLAVE_ACM_NSM_SIMULATOR /* the build without it has no ATTEST to reach */
                        TEST("/fuzz/rpc-request/attest", test_attest),
#endif
                };
                return tap_run(tests, sizeof(tests) / sizeof(tests[0]));
        }
}
