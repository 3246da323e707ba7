/* `enclave-acm status [--json]`: the daemon's HELLO facts plus every token and key from DESCRIBE pages. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/p11-uri.h"
#include "common/rpc-codec.h"
#include "common/transport.h"
#include "tools/cli-agent.h"
#include "tools/cli-health.h"
#include "tools/cli.h"

#define DESCRIBE_RESTARTS_MAX 10

struct status_key {
        uint32_t id, type, bits;
        uint64_t not_after;
        char *label, *subject, *uri;
};

struct status_token {
        uint32_t slot;
        uint64_t generation;
        uint64_t expires; /* Unix time without a refresh (KMS keys); 0: never */
        uint32_t n_keys_total;
        char *label;
        size_t n_keys;
        struct status_key *keys;
};

struct status {
        char *server;
        uint32_t version, max_tokens;
        uint64_t generation;
        bool dev;
        uint32_t n_tokens_total;
        size_t n_tokens;
        struct status_token *tokens;
};

static void status_clear_tokens(struct status *st) {
        for (size_t i = 0; i < st->n_tokens; i++) {
                struct status_token *t = &st->tokens[i];
                for (size_t k = 0; k < t->n_keys; k++) {
                        free(t->keys[k].label);
                        free(t->keys[k].subject);
                        free(t->keys[k].uri);
                }
                free(t->keys);
                free(t->label);
        }
        free(st->tokens);
        st->tokens = NULL;
        st->n_tokens = 0;
}

static void status_done(struct status *st) {
        status_clear_tokens(st);
        free(st->server);
        st->server = NULL;
}

static char *slice_strdup(const struct rpc_slice *s) {
        return strndup(s->len > 0 ? (const char *) s->ptr : "", s->len);
}

static int copy_key(const char *token_label, const struct rpc_key_info *ki, struct status_key *k) {
        uint8_t id[P11URI_U32_ID_MAX];
        struct p11uri_key uri = { .token = token_label, .id = id };
        size_t uri_len;

        *k = (struct status_key){
                .id = ki->id,
                .type = ki->type,
                .bits = ki->bits,
                .not_after = ki->not_after,
                .label = slice_strdup(&ki->label),
                .subject = slice_strdup(&ki->subject),
        };
        if (!k->label || !k->subject)
                return -ENOMEM;
        uri.id_len = p11uri_id_from_u32(ki->id, id);
        uri.object = k->label;
        return p11uri_build(&uri, &k->uri, &uri_len);
}

static int copy_page(struct status *st, const struct rpc_page_resp *p) {
        struct status_token *grown;

        grown = realloc(st->tokens, (st->n_tokens + p->n_tokens + 1) * sizeof(*grown));
        if (!grown)
                return -ENOMEM;
        st->tokens = grown;
        for (size_t i = 0; i < p->n_tokens; i++) {
                const struct rpc_token_info *ti = &p->tokens[i];
                struct status_token *t = &st->tokens[st->n_tokens];
                int r;

                *t = (struct status_token){
                        .slot = ti->slot,
                        .generation = ti->generation,
                        .expires = ti->expires,
                        .n_keys_total = ti->n_keys_total,
                        .label = slice_strdup(&ti->label),
                        .keys = calloc(ti->n_keys + 1, sizeof(struct status_key)),
                };
                st->n_tokens++;
                if (!t->label || !t->keys)
                        return -ENOMEM;
                for (size_t k = 0; k < ti->n_keys; k++) {
                        r = copy_key(t->label, &ti->keys[k], &t->keys[k]);
                        t->n_keys++;
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

/* One DESCRIBE round trip. Returns 1 if the token set changed under us (start over). */
static int describe_page(struct rpc_client *c, uint32_t *cursor, bool first, struct status *st) {
        _cleanup_(rpc_page_resp_done) struct rpc_page_resp p = {};
        int r;

        r = rpc_client_call_msg(c, RPC_CALL_DESCRIBE, &(struct rpc_page_req){ .cursor = *cursor }, &p);
        if (r == -EPROTO && !rpc_client_is_broken(c))
                return log_error_errno(r, "The daemon's answer to DESCRIBE cannot be decoded: %m");
        if (r < 0) {
                (void) cli_report_call_error(c, r, "Cannot list the tokens");
                return r;
        }
        if (first) {
                st->generation = p.generation;
                st->n_tokens_total = p.n_tokens_total;
        } else if (p.generation != st->generation)
                return 1;
        r = copy_page(st, &p);
        if (r < 0)
                return log_error_errno(r, "Out of memory");
        *cursor = p.next;
        return 0;
}

static int collect(struct rpc_client *c, struct status *st) {
        const struct rpc_hello_resp *h = rpc_client_hello(c);

        st->server = slice_strdup(&h->server);
        if (!st->server)
                return log_error_errno(-ENOMEM, "Out of memory");
        st->version = h->version;
        st->max_tokens = h->max_tokens;
        st->dev = h->dev;

        for (unsigned attempt = 0; attempt < DESCRIBE_RESTARTS_MAX; attempt++) {
                uint32_t cursor = 0;
                bool changed = false;

                status_clear_tokens(st);
                for (size_t page = 0;; page++) {
                        int r = describe_page(c, &cursor, page == 0, st);
                        if (r < 0)
                                return r;
                        if (r > 0) {
                                changed = true;
                                break;
                        }
                        if (cursor == 0)
                                break;
                        if (page > RPC_MAX_TOKENS)
                                return log_error_errno(-EPROTO, "The daemon's DESCRIBE pages do not end");
                }
                if (!changed)
                        return 0;
        }
        return log_error_errno(-EAGAIN, "The tokens kept changing while they were listed; try again");
}

static const char *key_type_name(uint32_t type) {
        switch (type) {
        case RPC_KEY_RSA: return "RSA";
        case RPC_KEY_EC: return "EC";
        case RPC_KEY_ED25519: return "Ed25519";
        default: return "unknown";
        }
}

static void key_type_long(const struct status_key *k, char *buf, size_t size) {
        if (k->type == RPC_KEY_EC)
                (void) snprintf(buf, size, "EC P-%" PRIu32, k->bits);
        else if (k->type == RPC_KEY_RSA)
                (void) snprintf(buf, size, "RSA %" PRIu32, k->bits);
        else
                (void) snprintf(buf, size, "%s", key_type_name(k->type));
}

static void print_token(const struct status_token *t, const struct cli_agent *agent) {
        const struct agent_state_record *at = agent ? cli_agent_token(agent, t->label) : NULL;

        printf("\nToken '%s' (slot %" PRIu32 ", %" PRIu32 " key%s)\n", t->label, t->slot, t->n_keys_total,
               t->n_keys_total == 1 ? "" : "s");
        if (t->expires) {
                char when[64];

                (void) cli_format_time(t->expires, false, when, sizeof(when));
                printf("  Expires:   %s unless refreshed\n", when);
        }
        if (at)
                cli_agent_print_token(at, "  ");
        for (size_t k = 0; k < t->n_keys; k++) {
                const struct status_key *key = &t->keys[k];
                char type[32], when[64];

                key_type_long(key, type, sizeof(type));
                (void) cli_format_time(key->not_after, false, when, sizeof(when));
                printf("  Key %" PRIu32 " '%s': %s\n", key->id, key->label, type);
                printf("    Subject:   %s\n", key->subject[0] ? key->subject : "(none)");
                printf("    Not after: %s\n", when);
                printf("    URI:       %s\n", key->uri);
        }
}

static bool status_has_token(const struct status *st, const char *label) {
        for (size_t i = 0; i < st->n_tokens; i++)
                if (strcmp(st->tokens[i].label, label) == 0)
                        return true;
        return false;
}

/* st NULL: the daemon could not be reached; agent NULL: no agent state. */
static void print_human(const struct status *st, const struct cli_agent *agent, const char *control) {
        if (agent) {
                struct cli_health h;

                cli_agent_print(agent);
                cli_health_judge(agent, 0, NULL, (uint64_t) MAX(time(NULL), (time_t) 0), &h);
                cli_health_print(&h, "");
                printf("\n");
        }
        if (!st)
                printf("Daemon:    not reachable at %s\n", control);
        else {
                printf("Daemon:    %s at %s (protocol %" PRIu32 ")\n", st->server, control, st->version);
                printf("Mode:      %s\n",
                       st->dev ? "development (--dev: plaintext keys accepted)" : "production");
                printf("Tokens:    %" PRIu32 " of at most %" PRIu32 "\n", st->n_tokens_total,
                       st->max_tokens);
                for (size_t i = 0; i < st->n_tokens; i++)
                        print_token(&st->tokens[i], agent);
                if (st->n_tokens == 0)
                        printf("\nNo tokens are provisioned.\n");
        }
        for (size_t i = 0; agent && i < agent->n_tokens; i++) {
                const char *label = agent_state_get(&agent->tokens[i], "label");

                if (st && status_has_token(st, label))
                        continue;
                printf("\nToken '%s' (%s)\n", label, st ? "not in the enclave" : "enclave not reachable");
                cli_agent_print_token(&agent->tokens[i], "  ");
        }
}

static int print_json(const struct status *st, const struct cli_agent *agent, const char *control) {
        _cleanup_(json_writer_done) struct json_writer j;
        char gen[32];

        json_writer_init(&j, false);
        json_begin_object(&j, NULL);
        json_string(&j, "address", control);
        json_bool(&j, "reachable", st != NULL);
        if (agent) {
                struct cli_health h;

                cli_agent_json(agent, &j);
                cli_health_judge(agent, 0, NULL, (uint64_t) MAX(time(NULL), (time_t) 0), &h);
                json_begin_object(&j, "health");
                cli_health_json(&h, &j);
                json_end_object(&j);
        }
        if (!st) {
                json_end_object(&j);
                return cli_json_print(&j);
        }
        json_string(&j, "server", st->server);
        json_uint(&j, "protocol_version", st->version);
        json_bool(&j, "dev_mode", st->dev);
        /* 64-bit: a string, so JavaScript-based tools do not round it. */
        (void) snprintf(gen, sizeof(gen), "%" PRIu64, st->generation);
        json_string(&j, "generation", gen);
        json_uint(&j, "token_count", st->n_tokens_total);
        json_uint(&j, "token_limit", st->max_tokens);
        json_begin_array(&j, "tokens");
        for (size_t i = 0; i < st->n_tokens; i++) {
                const struct status_token *t = &st->tokens[i];

                json_begin_object(&j, NULL);
                json_uint(&j, "slot", t->slot);
                json_string(&j, "label", t->label);
                (void) snprintf(gen, sizeof(gen), "%" PRIu64, t->generation);
                json_string(&j, "generation", gen);
                /* DESCRIBE's expiry (a KMS key's token leaves then unless refreshed); absent: never */
                if (t->expires) {
                        char when[64];

                        (void) cli_format_time(t->expires, true, when, sizeof(when));
                        json_uint(&j, "expires", t->expires);
                        json_string(&j, "expires_at", when);
                }
                json_uint(&j, "key_count", t->n_keys_total);
                json_begin_array(&j, "keys");
                for (size_t k = 0; k < t->n_keys; k++) {
                        const struct status_key *key = &t->keys[k];
                        char when[64];

                        (void) cli_format_time(key->not_after, true, when, sizeof(when));
                        json_begin_object(&j, NULL);
                        json_uint(&j, "id", key->id);
                        json_string(&j, "label", key->label);
                        json_string(&j, "type", key_type_name(key->type));
                        json_uint(&j, "bits", key->bits);
                        json_string(&j, "subject", key->subject);
                        json_string(&j, "not_after", when);
                        json_uint(&j, "not_after_unix", key->not_after);
                        json_string(&j, "uri", key->uri);
                        json_end_object(&j);
                }
                json_end_array(&j);
                json_end_object(&j);
        }
        json_end_array(&j);
        json_end_object(&j);
        return cli_json_print(&j);
}

static void help_status(void) {
        printf("Usage: enclave-acm [--control ADDRESS] status [--json] [--runtime-dir DIR]\n"
               "\n"
               "Shows the agent, when one runs or ran here (from its state file DIR/status: pid, config,\n"
               "enclave, its health as 'enclave-acm health' judges it, and per token its state, key id,\n"
               "last provisioning, sync and refresh, certificate expiry, web-server target and last\n"
               "error), and enclave-token's own view: the daemon\n"
               "(server, protocol, development mode, token count and limit) and every token with its\n"
               "slot, keys (id, label, type, size), leaf certificate subject and notAfter, and the PKCS#11\n"
               "URI of each private key. Without --control the daemon is reached where the agent says.\n"
               "\n"
               "  --json             machine-readable output\n"
               "  --runtime-dir DIR  the agent's runtime directory (default %s)\n"
               "\n"
               "Exit status: 0 when enclave-token answered (and the agent's file, if any, was read), else "
               "1.\n",
               CLI_DEFAULT_RUNTIME_DIR);
}

/* The control address: --control / $ENCLAVE_ACM_CONTROL, else the agent's, else the default. */
static int pick_control(const struct cli_ctx *ctx, const struct cli_agent *agent, struct cli_ctx *ret) {
        const char *a = agent && !ctx->control_explicit ? cli_agent_control(agent) : NULL;

        *ret = *ctx;
        if (!a)
                return 0;
        ret->control = a;
        if (transport_addr_parse(a, &ret->addr) < 0)
                return log_error_errno(-EBADMSG, "%s: the agent's control address '%s' is not valid",
                                       agent->path, a);
        return 0;
}

struct status_args {
        bool json;
        const char *runtime_dir;
};

/* 1 to go on, 0 after --help, -EINVAL on a bad command line (logged). */
static int parse_status(int argc, char **argv, struct status_args *a) {
        enum { ARG_RUNTIME_DIR = 0x100 };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "json", no_argument, NULL, 'j' },
                { "runtime-dir", required_argument, NULL, ARG_RUNTIME_DIR },
                {},
        };
        int c;

        *a = (struct status_args){ .runtime_dir = CLI_DEFAULT_RUNTIME_DIR };
        optind = 0;
        while ((c = getopt_long(argc, argv, "hj", options, NULL)) >= 0) {
                switch (c) {
                case 'h': help_status(); return 0;
                case 'j': a->json = true; break;
                case ARG_RUNTIME_DIR: a->runtime_dir = optarg; break;
                default: return log_error_errno(-EINVAL, "Try 'enclave-acm status --help'.");
                }
        }
        if (optind < argc)
                return log_error_errno(-EINVAL, "status: unexpected argument '%s'", argv[optind]);
        return 1;
}

int cli_verb_status(int argc, char **argv, const struct cli_ctx *ctx) {
        _cleanup_(rpc_client_freep) struct rpc_client *client = NULL;
        _cleanup_(status_done) struct status st = {};
        _cleanup_(cli_agent_done) struct cli_agent agent = {};
        struct status_args args;
        struct cli_ctx daemon;
        bool have_agent, reachable, ok = true;
        int r;

        r = parse_status(argc, argv, &args);
        if (r <= 0)
                return r < 0 ? CLI_EXIT_USAGE : CLI_EXIT_OK;

        r = cli_agent_load(args.runtime_dir, &agent);
        have_agent = r >= 0;
        if (r < 0 && r != -ENOENT)
                ok = false; /* logged; the daemon's view is still worth showing */
        if (pick_control(ctx, have_agent ? &agent : NULL, &daemon) < 0)
                return CLI_EXIT_FAILED;
        reachable = cli_connect(&daemon, &client) >= 0 && collect(client, &st) >= 0;
        if (!reachable && !have_agent)
                return CLI_EXIT_FAILED;
        if (args.json)
                r = print_json(reachable ? &st : NULL, have_agent ? &agent : NULL, daemon.control);
        else {
                print_human(reachable ? &st : NULL, have_agent ? &agent : NULL, daemon.control);
                r = fflush(stdout) == 0 && !ferror(stdout) ? 0 : -EIO;
        }
        if (r < 0) {
                log_error_errno(r, "Cannot write the status: %m");
                return CLI_EXIT_FAILED;
        }
        return reachable && ok ? CLI_EXIT_OK : CLI_EXIT_FAILED;
}
