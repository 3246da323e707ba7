/* `enclave-acm token add` and `enclave-acm token remove`: provisioning over the control channel. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "common/p11-uri.h"
#include "common/parse-util.h"
#include "common/rpc-codec.h"
#include "common/secret.h"
#include "tools/cli-input.h"
#include "tools/cli.h"

static void help_add(void) {
        printf("Usage: enclave-acm [--control ADDRESS] token add --label LABEL (--pin-file FILE | --pin "
               "PIN)\n"
               "                   --key KEY.pem --cert CHAIN.pem [--id N] [--key-label KEY_LABEL] "
               "[--replace]\n"
               "\n"
               "Provisions a token holding one private key and its certificate chain. Plaintext keys are\n"
               "accepted only by an enclave-token running with --dev.\n"
               "\n"
               "  --label LABEL         token label, 1-32 bytes (PKCS#11 token=...)\n"
               "  --pin-file FILE       read the user PIN (4-64 bytes) from FILE; a trailing newline is "
               "dropped\n"
               "  --pin PIN             the user PIN on the command line (visible in ps: prefer "
               "--pin-file)\n"
               "  --key KEY.pem         unencrypted PEM private key: RSA 2048-4096, EC P-256/P-384/P-521, "
               "Ed25519\n"
               "  --cert CHAIN.pem      PEM certificates, leaf first, then intermediates (at most %d)\n"
               "  --id N                key id, 0-65535, default 1 (CKA_ID; id 1 is %%01 in a PKCS#11 URI)\n"
               "  --key-label KEY_LABEL key label (PKCS#11 object=...), default: the token label\n"
               "  --replace             replace an existing token with this label (needs its current PIN)\n",
               RPC_MAX_CERTS);
}

static void help_remove(void) {
        printf("Usage: enclave-acm [--control ADDRESS] token remove --label LABEL (--pin-file FILE | --pin "
               "PIN)\n"
               "\n"
               "Removes a token; enclave-token wipes its keys.\n");
}

/* Labels travel as CBOR text and end up blank-padded in CK_TOKEN_INFO: printable UTF-8 without
 * leading or trailing blanks. */
static bool label_ok(const char *s, size_t max) {
        size_t len = strlen(s);
        const unsigned char *p = (const unsigned char *) s;

        if (len == 0 || len > max || s[0] == ' ' || s[len - 1] == ' ')
                return false;
        for (size_t i = 0; i < len;) {
                unsigned c = p[i];
                size_t n = c < 0x80             ? 1
                           : (c & 0xe0) == 0xc0 ? 2
                           : (c & 0xf0) == 0xe0 ? 3
                           : (c & 0xf8) == 0xf0 ? 4
                                                : 0;
                if (n == 0 || i + n > len || c < 0x20 || c == 0x7f || (n == 2 && c < 0xc2))
                        return false;
                for (size_t k = 1; k < n; k++)
                        if ((p[i + k] & 0xc0) != 0x80)
                                return false;
                i += n;
        }
        return true;
}

static int parse_key_id(const char *s, uint32_t *ret) {
        unsigned long v;
        int r;

        r = parse_unsigned(s, 0, 0, RPC_KEY_ID_MAX, &v);
        if (r < 0)
                return r;
        *ret = (uint32_t) v;
        return 0;
}

struct pin_args {
        char *pin; /* argv string, wiped once read */
        const char *pin_file;
};

static int pin_load(struct pin_args *a, struct secret_buf **ret) {
        if (a->pin_file)
                return cli_pin_from_file(a->pin_file, ret);
        return cli_pin_from_arg(a->pin, ret);
}

/* 0, or -EINVAL after logging what is wrong. */
static int check_pin_args(const struct pin_args *a, const char *verb) {
        if (!a->pin && !a->pin_file)
                return log_error_errno(-EINVAL, "token %s: --pin-file FILE (or --pin PIN) is required",
                                       verb);
        if (a->pin && a->pin_file)
                return log_error_errno(-EINVAL, "token %s: give either --pin or --pin-file, not both", verb);
        return 0;
}

static int check_label_arg(const char *label, const char *verb) {
        if (!label)
                return log_error_errno(-EINVAL, "token %s: --label LABEL is required", verb);
        if (!label_ok(label, RPC_LABEL_MAX))
                return log_error_errno(-EINVAL,
                                       "token %s: label '%s' is not 1-%d bytes of printable UTF-8 without "
                                       "leading or trailing blanks",
                                       verb, label, RPC_LABEL_MAX);
        return 0;
}

struct add_args {
        const char *label, *key_path, *cert_path, *key_label;
        struct pin_args pin;
        uint32_t id;
        bool replace;
};

/* 1 to go on, 0 after --help, -EINVAL on a bad command line (logged). */
static int parse_add(int argc, char **argv, struct add_args *a) {
        enum { ARG_PIN_FILE = 0x100, ARG_KEY_LABEL, ARG_REPLACE, ARG_ID };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "label", required_argument, NULL, 'l' },
                { "pin", required_argument, NULL, 'p' },
                { "pin-file", required_argument, NULL, ARG_PIN_FILE },
                { "key", required_argument, NULL, 'k' },
                { "cert", required_argument, NULL, 'c' },
                { "id", required_argument, NULL, ARG_ID },
                { "key-label", required_argument, NULL, ARG_KEY_LABEL },
                { "replace", no_argument, NULL, ARG_REPLACE },
                {},
        };
        int c, r;

        *a = (struct add_args){ .id = 1 };
        optind = 0;
        while ((c = getopt_long(argc, argv, "hl:p:k:c:", options, NULL)) >= 0) {
                switch (c) {
                case 'h': help_add(); return 0;
                case 'l': a->label = optarg; break;
                case 'p': a->pin.pin = optarg; break;
                case ARG_PIN_FILE: a->pin.pin_file = optarg; break;
                case 'k': a->key_path = optarg; break;
                case 'c': a->cert_path = optarg; break;
                case ARG_ID:
                        if (parse_key_id(optarg, &a->id) < 0)
                                return log_error_errno(-EINVAL,
                                                       "token add: --id '%s' is not a number from 0 to %d",
                                                       optarg, RPC_KEY_ID_MAX);
                        break;
                case ARG_KEY_LABEL: a->key_label = optarg; break;
                case ARG_REPLACE: a->replace = true; break;
                default: return log_error_errno(-EINVAL, "Try 'enclave-acm token add --help'.");
                }
        }
        if (optind < argc)
                return log_error_errno(-EINVAL, "token add: unexpected argument '%s'", argv[optind]);
        if ((r = check_label_arg(a->label, "add")) < 0 || (r = check_pin_args(&a->pin, "add")) < 0)
                return r;
        if (!a->key_path || !a->cert_path)
                return log_error_errno(-EINVAL,
                                       "token add: --key KEY.pem and --cert CHAIN.pem are required");
        if (!a->key_label)
                a->key_label = a->label;
        if (!label_ok(a->key_label, RPC_KEY_LABEL_MAX))
                return log_error_errno(
                        -EINVAL,
                        "token add: key label '%s' is not 1-%d bytes of printable UTF-8 without "
                        "leading or trailing blanks",
                        a->key_label, RPC_KEY_LABEL_MAX);
        return 1;
}

/* Logs its own failures. */
static int send_add(struct rpc_client *client, const struct add_args *a, const struct secret_buf *pin,
                    const struct secret_buf *key_pem, const char *chain, size_t chain_len,
                    uint32_t *ret_slot) {
        char what[128];
        struct rpc_token_add_req req = {
                .label = { (const uint8_t *) a->label, strlen(a->label) },
                .pin = { pin->data, pin->len },
                .replace = a->replace,
                .n_keys = 1,
                .keys[0] = {
                        .id = a->id,
                        .label = { (const uint8_t *) a->key_label, strlen(a->key_label) },
                        .key_pem = { key_pem->data, key_pem->len },
                        .chain_pem = { (const uint8_t *) chain, chain_len },
                },
        };
        struct rpc_token_add_resp resp;
        int r;

        r = rpc_client_call_msg(client, RPC_CALL_TOKEN_ADD, &req, &resp);
        if (r == -EINVAL || r == -EMSGSIZE)
                return log_error_errno(r, "Cannot encode the request: %m (key and chain too large?)");
        if (r == -EPROTO && !rpc_client_is_broken(client))
                return log_error_errno(r, "The daemon's answer to TOKEN_ADD cannot be decoded: %m");
        if (r < 0) {
                (void) snprintf(what, sizeof(what), "Cannot %s token '%s'", a->replace ? "replace" : "add",
                                a->label);
                (void) cli_report_call_error(client, r, what);
                return r;
        }
        *ret_slot = resp.slot;
        return 0;
}

static int build_uri(const struct add_args *a, char **ret_uri) {
        uint8_t id[P11URI_U32_ID_MAX];
        const struct p11uri_key k = {
                .token = a->label,
                .id = id,
                .id_len = p11uri_id_from_u32(a->id, id),
                .object = a->key_label,
        };
        size_t len;
        int r;

        r = p11uri_build(&k, ret_uri, &len);
        if (r < 0)
                return log_error_errno(r, "Cannot build the key's PKCS#11 URI: %m");
        return 0;
}

int cli_verb_token_add(int argc, char **argv, const struct cli_ctx *ctx) {
        _cleanup_(rpc_client_freep) struct rpc_client *client = NULL;
        _cleanup_secret_ struct secret_buf *pin = NULL, *key_pem = NULL;
        _cleanup_free_ char *chain = NULL, *uri = NULL;
        struct provision_key_summary sum = {};
        struct add_args a;
        size_t chain_len = 0;
        uint32_t slot = 0;
        int r;

        r = parse_add(argc, argv, &a);
        if (r <= 0)
                return r < 0 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
        if (pin_load(&a.pin, &pin) < 0 ||
            cli_load_key_and_chain(a.key_path, a.cert_path, &key_pem, &chain, &chain_len, &sum) < 0)
                return CLI_EXIT_FAILED;
        if (cli_connect(ctx, &client) < 0)
                return CLI_EXIT_FAILED;

        if (send_add(client, &a, pin, key_pem, chain, chain_len, &slot) < 0)
                return CLI_EXIT_FAILED;
        if (build_uri(&a, &uri) < 0)
                return CLI_EXIT_FAILED;
        printf("%s token '%s' in slot %" PRIu32 ": key %" PRIu32 " '%s' (%s, %zu certificate%s).\n",
               a.replace ? "Replaced" : "Added", a.label, slot, a.id, a.key_label, sum.type, sum.n_certs,
               sum.n_certs == 1 ? "" : "s");
        printf("PKCS#11 URI: %s\n", uri);
        return CLI_EXIT_OK;
}

/* 1 to go on, 0 after --help, -EINVAL on a bad command line (logged). */
static int parse_remove(int argc, char **argv, const char **ret_label, struct pin_args *pin) {
        enum { ARG_PIN_FILE = 0x100 };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "label", required_argument, NULL, 'l' },
                { "pin", required_argument, NULL, 'p' },
                { "pin-file", required_argument, NULL, ARG_PIN_FILE },
                {},
        };
        const char *label = NULL;
        int c, r;

        optind = 0;
        while ((c = getopt_long(argc, argv, "hl:p:", options, NULL)) >= 0) {
                switch (c) {
                case 'h': help_remove(); return 0;
                case 'l': label = optarg; break;
                case 'p': pin->pin = optarg; break;
                case ARG_PIN_FILE: pin->pin_file = optarg; break;
                default: return log_error_errno(-EINVAL, "Try 'enclave-acm token remove --help'.");
                }
        }
        if (optind < argc)
                return log_error_errno(-EINVAL, "token remove: unexpected argument '%s'", argv[optind]);
        if ((r = check_label_arg(label, "remove")) < 0 || (r = check_pin_args(pin, "remove")) < 0)
                return r;
        *ret_label = label;
        return 1;
}

int cli_verb_token_remove(int argc, char **argv, const struct cli_ctx *ctx) {
        _cleanup_(rpc_client_freep) struct rpc_client *client = NULL;
        _cleanup_secret_ struct secret_buf *pin = NULL;
        struct pin_args pa = {};
        char what[128];
        const char *label = NULL;
        int r;

        r = parse_remove(argc, argv, &label, &pa);
        if (r <= 0)
                return r < 0 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
        if (pin_load(&pa, &pin) < 0)
                return CLI_EXIT_FAILED;
        if (cli_connect(ctx, &client) < 0)
                return CLI_EXIT_FAILED;

        r = rpc_client_call_msg(client, RPC_CALL_TOKEN_REMOVE,
                                &(struct rpc_token_remove_req){
                                        .label = { (const uint8_t *) label, strlen(label) },
                                        .pin = { pin->data, pin->len },
                                },
                                NULL);
        if (r == -EINVAL) {
                log_error_errno(r, "Cannot encode the request: %m");
                return CLI_EXIT_FAILED;
        }
        if (r == -EPROTO && !rpc_client_is_broken(client)) {
                log_warning("The daemon's answer to TOKEN_REMOVE is not empty, ignoring");
                r = 0;
        }
        if (r < 0) {
                (void) snprintf(what, sizeof(what), "Cannot remove token '%s'", label);
                return cli_report_call_error(client, r, what);
        }
        printf("Removed token '%s'.\n", label);
        return CLI_EXIT_OK;
}
