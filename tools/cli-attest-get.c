/* `enclave-acm attestation get`: a fresh attestation document from the running enclave (ATTEST). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/transport.h"
#include "parent/provision.h"
#include "tools/cli-agent.h"
#include "tools/cli-attest-get.h"
#include "tools/cli.h"

static void help_get(void) {
        printf("Usage: enclave-acm [--control ADDRESS] attestation get [--nonce HEX] [-o FILE]\n"
               "                   [--control ADDRESS] [--runtime-dir DIR]\n"
               "\n"
               "Asks the running enclave (enclave-token's control channel) for a fresh attestation "
               "document\n"
               "from its NSM and writes it, raw CBOR (COSE_Sign1), to FILE or to standard output (never to "
               "a\n"
               "terminal). Check it with 'enclave-acm attestation verify'.\n"
               "\n"
               "  --nonce HEX          a nonce for the document, 1-%d bytes in hex (default: none)\n"
               "  -o, --output FILE    write the document to FILE (mode 0644) instead of standard output\n"
               "  --control ADDRESS    the control channel (default: --control before the command,\n"
               "                       $ENCLAVE_ACM_CONTROL, the agent's, else %s)\n"
               "  --runtime-dir DIR    the agent's runtime directory, where its state names the control\n"
               "                       channel (default %s)\n"
               "  -h, --help           this text\n",
               RPC_NONCE_MAX, CLI_DEFAULT_CONTROL, CLI_DEFAULT_RUNTIME_DIR);
}

struct get_args {
        uint8_t nonce[RPC_NONCE_MAX];
        size_t nonce_len;
        const char *output;
        const char *control;
        const char *runtime_dir;
};

int cli_hex_decode(const char *s, uint8_t *out, size_t max, size_t *ret_len) {
        size_t n = strlen(s);

        if (n == 0 || n % 2 != 0 || n / 2 > max)
                return -EINVAL;
        for (size_t i = 0; i < n; i += 2) {
                unsigned v = 0;

                for (size_t k = 0; k < 2; k++) {
                        char ch = s[i + k];
                        unsigned d;

                        if (ch >= '0' && ch <= '9')
                                d = (unsigned) (ch - '0');
                        else if (ch >= 'a' && ch <= 'f')
                                d = (unsigned) (ch - 'a' + 10);
                        else if (ch >= 'A' && ch <= 'F')
                                d = (unsigned) (ch - 'A' + 10);
                        else
                                return -EINVAL;
                        v = v << 4 | d;
                }
                out[i / 2] = (uint8_t) v;
        }
        *ret_len = n / 2;
        return 0;
}

/* 1 to go on, 0 after --help, -EINVAL after logging a bad command line. */
static int parse_get(int argc, char **argv, struct get_args *a) {
        enum { ARG_NONCE = 0x100, ARG_CONTROL, ARG_RUNTIME_DIR };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "nonce", required_argument, NULL, ARG_NONCE },
                { "output", required_argument, NULL, 'o' },
                { "control", required_argument, NULL, ARG_CONTROL },
                { "runtime-dir", required_argument, NULL, ARG_RUNTIME_DIR },
                {},
        };
        int c;

        optind = 0;
        while ((c = getopt_long(argc, argv, "ho:", options, NULL)) >= 0) {
                switch (c) {
                case 'h': help_get(); return 0;
                case ARG_NONCE:
                        if (cli_hex_decode(optarg, a->nonce, sizeof(a->nonce), &a->nonce_len) < 0)
                                return log_error_errno(-EINVAL,
                                                       "attestation get: --nonce takes 1 to %d bytes in hex "
                                                       "(an even number of 0-9 a-f)",
                                                       RPC_NONCE_MAX);
                        break;
                case 'o': a->output = optarg; break;
                case ARG_CONTROL: a->control = optarg; break;
                case ARG_RUNTIME_DIR: a->runtime_dir = optarg; break;
                default: return log_error_errno(-EINVAL, "Try 'enclave-acm attestation get --help'.");
                }
        }
        if (optind < argc)
                return log_error_errno(-EINVAL, "attestation get: unexpected argument '%s'", argv[optind]);
        return 1;
}

/* The control address: --control here or before the command / $ENCLAVE_ACM_CONTROL, else the agent's
 * (its state file), else the default. */
static int pick_control(const struct cli_ctx *ctx, const struct get_args *a, struct cli_ctx *ret) {
        _cleanup_(cli_agent_done) struct cli_agent agent = {};
        const char *addr = NULL;

        if (a->control)
                addr = a->control;
        else if (ctx->control_explicit)
                addr = ctx->control;
        else if (cli_agent_load(a->runtime_dir ?: CLI_DEFAULT_RUNTIME_DIR, &agent) >= 0)
                addr = cli_agent_control(&agent);
        if (!addr) {
                *ret = *ctx;
                return 0;
        }
        if (transport_addr_parse(addr, &ret->addr) < 0)
                return log_error_errno(-EINVAL,
                                       "Invalid control address '%s': expected unix:path=/absolute/path or "
                                       "vsock:cid=N;port=P",
                                       addr);
        ret->control = strdup(addr);
        ret->control_explicit = true;
        return ret->control ? 0 : log_error_errno(-ENOMEM, "Out of memory");
}

static int write_all(int fd, const uint8_t *p, size_t n) {
        while (n > 0) {
                ssize_t k = write(fd, p, n);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return negative_errno();
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

static int output(const char *path, const uint8_t *doc, size_t len) {
        _cleanup_close_ int fd = -1;
        int r;

        if (!path || strcmp(path, "-") == 0) {
                r = write_all(STDOUT_FILENO, doc, len);
                if (r < 0)
                        return log_error_errno(r, "Cannot write the document to standard output: %m");
                return 0;
        }
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0644);
        if (fd < 0)
                return log_error_errno(negative_errno(), "Cannot open '%s': %m", path);
        r = write_all(fd, doc, len);
        if (r >= 0 && fsync(fd) < 0)
                r = negative_errno();
        if (r >= 0 && close(TAKE_FD(fd)) < 0)
                r = negative_errno();
        if (r < 0)
                return log_error_errno(r, "Cannot write '%s': %m", path);
        log_info("Wrote the attestation document (%zu bytes) to '%s'", len, path);
        return 0;
}

int cli_verb_attestation_get(int argc, char **argv, const struct cli_ctx *ctx) {
        _cleanup_(rpc_client_freep) struct rpc_client *c = NULL;
        _cleanup_free_ uint8_t *doc = NULL;
        _cleanup_free_ char *control = NULL;
        struct get_args args = {};
        struct cli_ctx daemon;
        size_t len = 0;
        uint32_t version;
        int r;

        r = parse_get(argc, argv, &args);
        if (r <= 0)
                return r < 0 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
        if ((!args.output || strcmp(args.output, "-") == 0) && isatty(STDOUT_FILENO)) {
                log_error("attestation get: refusing to write a binary document to a terminal: use -o FILE "
                          "or a pipe");
                return CLI_EXIT_USAGE;
        }
        r = pick_control(ctx, &args, &daemon);
        if (r < 0)
                return r == -EINVAL ? CLI_EXIT_USAGE : CLI_EXIT_FAILED;
        if (daemon.control != ctx->control)
                control = (char *) daemon.control;
        if (cli_connect(&daemon, &c) < 0)
                return CLI_EXIT_FAILED;
        version = rpc_client_hello(c)->version;
        if (version < RPC_VERSION_KMS) {
                log_error("enclave-token at '%s' speaks protocol version %" PRIu32
                          "; attestation needs version %d (update the enclave image)",
                          daemon.control, version, RPC_VERSION_KMS);
                return CLI_EXIT_FAILED;
        }
        r = provision_attest(c, args.nonce_len ? args.nonce : NULL, args.nonce_len, &doc, &len);
        if (r == -ENOMEDIUM && !rpc_client_is_broken(c)) {
                log_error("Cannot get an attestation document: the enclave has no NSM (enclave-token runs "
                          "without /dev/nsm and without --nsm-simulator) (NO_ATTESTATION).");
                return CLI_EXIT_FAILED;
        }
        if (r < 0)
                return cli_report_call_error(c, r, "Cannot get an attestation document");
        return output(args.output, doc, len) < 0 ? CLI_EXIT_FAILED : CLI_EXIT_OK;
}
