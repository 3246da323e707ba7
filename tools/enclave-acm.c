/* enclave-acm: the operator CLI. Provisions tokens in enclave-token and shows their state. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/ssl-heap.h"
#include "common/transport.h"
#include "tools/cli.h"

static const char *arg_control;

static void help(void) {
        printf("Usage: enclave-acm [--control ADDRESS] COMMAND [OPTIONS]\n"
               "\n"
               "Operator tool for enclave-acm: TLS private keys held in a Nitro Enclave (enclave-token),\n"
               "used by web servers through the enclave-acm-pkcs11.so PKCS#11 module.\n"
               "\n"
               "Commands:\n"
               "  token add --label L (--pin-file F | --pin P) --key KEY.pem --cert CHAIN.pem\n"
               "            [--id N] [--key-label KL] [--replace]\n"
               "                          provision a token (plaintext keys: enclave-token --dev only)\n"
               "  token remove --label L (--pin-file F | --pin P)\n"
               "                          remove a token and wipe its keys\n"
               "  status [--json]         the daemon, its tokens, keys, certificates and PKCS#11 URIs\n"
               "  health [--json]         healthy / degraded / down from the agent's in-band pings, tokens\n"
               "                          and certificate expiry (exit 0 / 1 / 2), one line per problem\n"
               "  web apply --server nginx|httpd --cert CHAIN.pem --token L ...\n"
               "                          point nginx / httpd at a token's key: write, test, reload\n"
               "  attestation verify FILE [--root PEM] [--at now|doc|UNIX_MS] [--pcr N=HEX]... [--json]\n"
               "                          check a Nitro attestation document offline (exit 3..8 say\n"
               "                          why it failed: see 'enclave-acm attestation verify --help')\n"
               "  attestation get [--nonce HEX] [-o FILE]\n"
               "                          a fresh attestation document from the running enclave (raw CBOR)\n"
               "  eif describe|pcr|build ...   (describe FILE [--json], pcr --input FILE, build ...)\n"
               "                          Enclave Image Files: check, measure, build ('eif --help')\n"
               "  object create --key KEY.pem --cert CHAIN.pem --kms-key-id ID [--region R] [-o FILE]\n"
               "                          the S3 object of an S3 source, the key encrypted by KMS\n"
               "\n"
               "Options:\n"
               "  --control ADDRESS       enclave-token's control channel, e.g. unix:path=/run/x.sock or\n"
               "                          vsock:cid=16;port=10000 (default: $ENCLAVE_ACM_CONTROL, else\n"
               "                          %s)\n"
               "  -h, --help              this text; 'enclave-acm COMMAND --help' for a command\n"
               "  --version               print the version\n"
               "\n"
               "Exit status: 0 done, 1 the operation failed or was refused, 2 invalid command line.\n",
               CLI_DEFAULT_CONTROL);
}

/* 1 to go on with the command at argv[optind], 0 after --help/--version, -EINVAL on a bad command line
 * (logged). */
static int parse_argv(int argc, char **argv) {
        enum { ARG_VERSION = 0x100, ARG_CONTROL };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "control", required_argument, NULL, ARG_CONTROL },
                {},
        };
        int c;

        /* "+": stop at the command; its options are parsed by the command. */
        while ((c = getopt_long(argc, argv, "+h", options, NULL)) >= 0) {
                switch (c) {
                case 'h': help(); return 0;
                case ARG_VERSION: printf("enclave-acm %s\n", ENCLAVE_ACM_VERSION); return 0;
                case ARG_CONTROL: arg_control = optarg; break;
                default: return log_error_errno(-EINVAL, "Try 'enclave-acm --help'.");
                }
        }
        if (optind >= argc)
                return log_error_errno(-EINVAL, "Missing command. Try 'enclave-acm --help'.");
        return 1;
}

static int dispatch(int argc, char **argv, const struct cli_ctx *ctx) {
        const char *verb = argv[0];

        if (strcmp(verb, "status") == 0)
                return cli_verb_status(argc, argv, ctx);
        if (strcmp(verb, "health") == 0)
                return cli_verb_health(argc, argv, ctx);
        if (strcmp(verb, "token") == 0) {
                if (argc < 2) {
                        log_error("token: missing sub-command (add or remove). Try 'enclave-acm --help'.");
                        return CLI_EXIT_USAGE;
                }
                if (strcmp(argv[1], "add") == 0)
                        return cli_verb_token_add(argc - 1, argv + 1, ctx);
                if (strcmp(argv[1], "remove") == 0)
                        return cli_verb_token_remove(argc - 1, argv + 1, ctx);
                log_error("token: unknown sub-command '%s' (expected add or remove)", argv[1]);
                return CLI_EXIT_USAGE;
        }
        if (strcmp(verb, "web") == 0)
                return cli_verb_web(argc, argv, ctx);
        if (strcmp(verb, "attestation") == 0)
                return cli_verb_attestation(argc, argv, ctx);
        if (strcmp(verb, "eif") == 0)
                return cli_verb_eif(argc, argv, ctx);
        if (strcmp(verb, "object") == 0)
                return cli_verb_object(argc, argv, ctx);
        if (strcmp(verb, "help") == 0) {
                help();
                return CLI_EXIT_OK;
        }
        log_error("Unknown command '%s'. Try 'enclave-acm --help'.", verb);
        return CLI_EXIT_USAGE;
}

int main(int argc, char **argv) {
        struct cli_ctx ctx = {};
        int r;

        log_set_prefix(false);
        /* `token add` reads key files through OpenSSL: its buffers are wiped when freed. */
        r = ssl_heap_install();
        if (r < 0) {
                log_error_errno(r, "Failed to route OpenSSL's allocations to wiped memory: %m");
                return EXIT_FAILURE;
        }
        r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? CLI_EXIT_USAGE : CLI_EXIT_OK;

        if (!arg_control)
                arg_control = secure_getenv("ENCLAVE_ACM_CONTROL");
        ctx.control_explicit = arg_control && arg_control[0];
        if (!ctx.control_explicit)
                arg_control = CLI_DEFAULT_CONTROL;
        ctx.control = arg_control;
        r = transport_addr_parse(arg_control, &ctx.addr);
        if (r < 0) {
                log_error("Invalid control address '%s': expected unix:path=/absolute/path or "
                          "vsock:cid=N;port=P",
                          arg_control);
                return CLI_EXIT_USAGE;
        }

        return dispatch(argc - optind, argv + optind, &ctx);
}
