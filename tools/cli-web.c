/* `enclave-acm web apply`: point nginx or Apache httpd at a token's key, safely, by hand. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parent/webapply.h"
#include "common/log.h"
#include "common/p11-uri.h"
#include "common/parse-util.h"
#include "common/rpc-codec.h"
#include "tools/cli-web.h"
#include "tools/cli.h"

static void help(void) {
        printf("Usage: enclave-acm web apply --server nginx --cert CHAIN.pem KEY --stanza FILE\n"
               "                             [--main-conf NGINX.CONF] [--conf SITE.CONF] [OPTIONS]\n"
               "       enclave-acm web apply --server httpd --cert CHAIN.pem KEY --conf FILE [OPTIONS]\n"
               "\n"
               "Points the web server at a token's key and certificate chain: each file is written to a\n"
               "temp file, fsync'ed and renamed into place, the server's own config test runs, and the\n"
               "server is reloaded gracefully; a file that fails the test is put back as it was.\n"
               "After the reload the server is watched (--reload-wait-ms): Apache's config test does not\n"
               "load keys, so a key the token lacks makes its parent exit at the reload; then the previous\n"
               "file is put back and the server started again, and the apply fails. A server that was not\n"
               "running is started with the new file (unless --no-start) instead of reloaded.\n"
               "Files that already say what they should are left alone (no reload).\n"
               "\n"
               "KEY is the token's key, as a PKCS#11 URI built from:\n"
               "  --token LABEL           token label (PKCS#11 token=...)\n"
               "  --key-id N              key id, 0-65535, default 1 (id=%%01)\n"
               "  --key-label LABEL       key label (object=...), default: the token label\n"
               "  --pin-file FILE         absolute path of a file holding the bare PIN (no newline, mode\n"
               "                          0400/0440), for ?pin-source=file:\n"
               "or given as is:\n"
               "  --key-uri URI           a pkcs11: URI (httpd: also an absolute key file path)\n"
               "\n"
               "Files (absolute paths):\n"
               "  --cert CHAIN.pem        certificate chain, leaf first\n"
               "  --stanza FILE           nginx: the file holding ssl_certificate / ssl_certificate_key\n"
               "  --main-conf FILE        nginx: nginx.conf gets 'ssl_engine' and 'env' lines; also passed\n"
               "                          to nginx as -c FILE\n"
               "  --conf FILE             nginx: the site file whose server {} includes the stanza;\n"
               "                          httpd: the file whose SSLCertificate* lines are rewritten\n"
               "\n"
               "Which server block / virtual host (default: every one with TLS):\n"
               "  --server-name NAME      only those with this server_name / ServerName / ServerAlias\n"
               "  --port N                only those listening on port N\n"
               "\n"
               "nginx / httpd details:\n"
               "  --env NAME              nginx: also keep NAME for the workers (env NAME;), repeatable;\n"
               "                          ENCLAVE_ACM_ADDRESS and OPENSSL_CONF always are\n"
               "  --disable-include ARG   nginx: comment out 'include ARG;' in the block (e.g.\n"
               "                          snippets/snakeoil.conf), repeatable\n"
               "  --engine ID             OpenSSL engine, default pkcs11\n"
               "  --no-crypto-device      httpd: leave SSLCryptoDevice alone (set elsewhere)\n"
               "\n"
               "Testing and reloading:\n"
               "  --control direct|systemd  direct (default): run the server's own commands;\n"
               "                          systemd: the config test, then 'systemctl reload UNIT'\n"
               "  --binary PROGRAM        nginx: default nginx; httpd: default apachectl (or apache2ctl,\n"
               "                          or apache2 with --httpd-config)\n"
               "  --httpd-config FILE     httpd: run 'PROGRAM -t -f FILE' and 'PROGRAM -k graceful -f "
               "FILE'\n"
               "  --pid-file FILE         the server's pid file: reload by a signal to its pid (nginx\n"
               "                          SIGHUP, httpd SIGUSR1) instead of a command, and tell from it\n"
               "                          whether the server runs. Default (direct): found as the server\n"
               "                          finds it (nginx: the pid directive of --main-conf, else\n"
               "                          'nginx -V'; httpd: 'PROGRAM -t -D DUMP_RUN_CFG'), used only\n"
               "                          for that check\n"
               "  --service UNIT          with --control systemd, default nginx / apache2; whether it runs\n"
               "                          is 'systemctl is-active UNIT'\n"
               "  --reload-wait-ms MS     watch the server that long after a reload or a start for\n"
               "                          staying up (same pid; systemd: active), default 1000;\n"
               "                          0: look once\n"
               "  --no-start              a server that is not running is left stopped (the tested file\n"
               "                          stays); default: start it ('nginx [-c FILE]', 'PROGRAM -k start\n"
               "                          [-f FILE]', 'systemctl start UNIT') instead of reloading\n"
               "  --timeout SECONDS       for each command, and for a started server to come up;\n"
               "                          default 30\n"
               "  --dry-run               only say which files would change\n"
               "\n"
               "Exit status: 0 done (or nothing to do), 1 a file was refused or a command failed, 2 "
               "usage.\n");
}

static int list_add(const char **list, size_t *n, const char *v, const char *opt) {
        for (size_t i = 0; i < *n; i++)
                if (strcmp(list[i], v) == 0)
                        return 0;
        if (*n >= WEB_MAX_LIST)
                return log_error_errno(-EINVAL, "web apply: at most %d %s options", WEB_MAX_LIST, opt);
        list[(*n)++] = v;
        return 0;
}

enum {
        ARG_SERVER = 0x100,
        ARG_CERT,
        ARG_TOKEN,
        ARG_KEY_ID,
        ARG_KEY_LABEL,
        ARG_PIN_FILE,
        ARG_KEY_URI,
        ARG_STANZA,
        ARG_MAIN_CONF,
        ARG_CONF,
        ARG_SERVER_NAME,
        ARG_PORT,
        ARG_ENV,
        ARG_DISABLE_INCLUDE,
        ARG_ENGINE,
        ARG_NO_CRYPTO_DEVICE,
        ARG_CONTROL,
        ARG_BINARY,
        ARG_HTTPD_CONFIG,
        ARG_PID_FILE,
        ARG_SERVICE,
        ARG_TIMEOUT,
        ARG_DRY_RUN,
        ARG_RELOAD_WAIT_MS,
        ARG_NO_START,
};

static const struct option web_options[] = {
        { "help", no_argument, NULL, 'h' },
        { "server", required_argument, NULL, ARG_SERVER },
        { "cert", required_argument, NULL, ARG_CERT },
        { "token", required_argument, NULL, ARG_TOKEN },
        { "key-id", required_argument, NULL, ARG_KEY_ID },
        { "key-label", required_argument, NULL, ARG_KEY_LABEL },
        { "pin-file", required_argument, NULL, ARG_PIN_FILE },
        { "key-uri", required_argument, NULL, ARG_KEY_URI },
        { "stanza", required_argument, NULL, ARG_STANZA },
        { "main-conf", required_argument, NULL, ARG_MAIN_CONF },
        { "conf", required_argument, NULL, ARG_CONF },
        { "server-name", required_argument, NULL, ARG_SERVER_NAME },
        { "port", required_argument, NULL, ARG_PORT },
        { "env", required_argument, NULL, ARG_ENV },
        { "disable-include", required_argument, NULL, ARG_DISABLE_INCLUDE },
        { "engine", required_argument, NULL, ARG_ENGINE },
        { "no-crypto-device", no_argument, NULL, ARG_NO_CRYPTO_DEVICE },
        { "control", required_argument, NULL, ARG_CONTROL },
        { "binary", required_argument, NULL, ARG_BINARY },
        { "httpd-config", required_argument, NULL, ARG_HTTPD_CONFIG },
        { "pid-file", required_argument, NULL, ARG_PID_FILE },
        { "service", required_argument, NULL, ARG_SERVICE },
        { "timeout", required_argument, NULL, ARG_TIMEOUT },
        { "dry-run", no_argument, NULL, ARG_DRY_RUN },
        { "reload-wait-ms", required_argument, NULL, ARG_RELOAD_WAIT_MS },
        { "no-start", no_argument, NULL, ARG_NO_START },
        {},
};

static int bad_value(const char *opt, const char *v, const char *want) {
        return log_error_errno(-EINVAL, "web apply: %s '%s': %s", opt, v, want);
}

/* One option; returns 0, or -EINVAL after logging what is wrong with it. */
static int parse_one(int c, const char *v, struct web_args *a) {
        switch (c) {
        case ARG_SERVER:
                a->server = webapply_server_from_string(v);
                return a->server < 0 ? bad_value("--server", v, "expected nginx or httpd") : 0;
        case ARG_CONTROL:
                a->control = webapply_control_from_string(v);
                return a->control < 0 ? bad_value("--control", v, "expected direct or systemd") : 0;
        case ARG_KEY_ID:
                return parse_unsigned(v, 10, 0, RPC_KEY_ID_MAX, &a->key_id) < 0
                               ? bad_value("--key-id", v, "not a key id")
                               : 0;
        case ARG_PORT:
                return parse_unsigned(v, 10, 0, 65535, &a->port) < 0 ? bad_value("--port", v, "not a port")
                                                                     : 0;
        case ARG_TIMEOUT:
                return parse_unsigned(v, 10, 1, 3600, &a->timeout_s) < 0
                               ? bad_value("--timeout", v, "expected 1-3600 seconds")
                               : 0;
        case ARG_RELOAD_WAIT_MS:
                return parse_unsigned(v, 10, 0, 3600000, &a->reload_wait_ms) < 0
                               ? bad_value("--reload-wait-ms", v, "expected 0-3600000 milliseconds")
                               : 0;
        case ARG_ENV: return list_add(a->env, &a->n_env, v, "--env");
        case ARG_DISABLE_INCLUDE: return list_add(a->disable, &a->n_disable, v, "--disable-include");
        case ARG_NO_CRYPTO_DEVICE: a->no_crypto_device = true; return 0;
        case ARG_DRY_RUN: a->dry_run = true; return 0;
        case ARG_NO_START: a->no_start = true; return 0;
        }
        return log_error_errno(-EINVAL, "Try 'enclave-acm web apply --help'.");
}

/* Options that only store their string. */
static bool parse_string(int c, const char *v, struct web_args *a) {
        const char **slot = c == ARG_CERT           ? &a->cert
                            : c == ARG_TOKEN        ? &a->token
                            : c == ARG_KEY_LABEL    ? &a->key_label
                            : c == ARG_PIN_FILE     ? &a->pin_file
                            : c == ARG_KEY_URI      ? &a->key_uri
                            : c == ARG_STANZA       ? &a->stanza
                            : c == ARG_MAIN_CONF    ? &a->main_conf
                            : c == ARG_CONF         ? &a->conf
                            : c == ARG_SERVER_NAME  ? &a->server_name
                            : c == ARG_ENGINE       ? &a->engine
                            : c == ARG_BINARY       ? &a->binary
                            : c == ARG_HTTPD_CONFIG ? &a->httpd_config
                            : c == ARG_PID_FILE     ? &a->pid_file
                            : c == ARG_SERVICE      ? &a->service
                                                    : NULL;

        if (slot)
                *slot = v;
        return slot != NULL;
}

static bool absolute(const char *path) {
        return !path || path[0] == '/';
}

/* Returns 0, or -EINVAL after logging what is missing or wrong. */
static int check_args(struct web_args *a) {
        const char *missing = a->server < 0              ? "--server nginx|httpd"
                              : !a->cert                 ? "--cert CHAIN.pem"
                              : !a->token && !a->key_uri ? "--token LABEL (or --key-uri URI)"
                              : a->server == WEBAPPLY_NGINX && !a->stanza ? "--stanza FILE"
                              : a->server == WEBAPPLY_HTTPD && !a->conf   ? "--conf FILE"
                                                                          : NULL;

        if (missing)
                return log_error_errno(
                        -EINVAL, "web apply: %s is required. Try 'enclave-acm web apply --help'.", missing);
        if (!absolute(a->cert) || !absolute(a->stanza) || !absolute(a->pin_file))
                return log_error_errno(-EINVAL,
                                       "web apply: --cert, --stanza and --pin-file take absolute paths (the "
                                       "server reads them from its own working directory)");
        if (a->token && a->key_uri)
                return log_error_errno(-EINVAL, "web apply: give either --token (and --key-id, --key-label, "
                                                "--pin-file) or --key-uri, not both");
        if (!a->key_label)
                a->key_label = a->token;
        return 0;
}

/* 1 to go on, 0 after --help, -EINVAL on a bad command line (logged). */
static int parse_argv(int argc, char **argv, struct web_args *a) {
        int c, r;

        *a = (struct web_args){
                .server = _WEBAPPLY_SERVER_INVALID,
                .key_id = 1,
                .timeout_s = 30,
                .reload_wait_ms = WEBAPPLY_DEFAULT_RELOAD_WAIT_MS,
                .env = { "ENCLAVE_ACM_ADDRESS", "OPENSSL_CONF" },
                .n_env = 2,
        };
        optind = 0;
        while ((c = getopt_long(argc, argv, "h", web_options, NULL)) >= 0) {
                if (c == 'h') {
                        help();
                        return 0;
                }
                if (parse_string(c, optarg, a))
                        continue;
                r = parse_one(c, optarg, a);
                if (r < 0)
                        return r;
        }
        if (optind < argc)
                return log_error_errno(-EINVAL, "web apply: unexpected argument '%s'", argv[optind]);
        r = check_args(a);
        if (r < 0)
                return r;
        return 1;
}

static int build_uri(const struct web_args *a, char **ret) {
        uint8_t id[P11URI_U32_ID_MAX];
        const struct p11uri_key k = {
                .token = a->token,
                .id = id,
                .id_len = p11uri_id_from_u32((uint32_t) a->key_id, id),
                .object = a->key_label,
                .pin_file = a->pin_file,
        };
        size_t len;
        int r;

        if (a->key_uri) {
                *ret = strdup(a->key_uri);
                return *ret ? 0 : log_error_errno(-ENOMEM, "Out of memory");
        }
        r = p11uri_build(&k, ret, &len);
        if (r == -EINVAL)
                return log_error_errno(r,
                                       "web apply: the key URI cannot be built: the token label must be "
                                       "1-32 bytes, the key label at most 255, the PIN file path absolute");
        if (r < 0)
                return log_error_errno(r, "web apply: the key URI cannot be built: %m");
        return 0;
}

/* The pin-value= of a URI given with --key-uri, percent-decoded, so that webapply masks it (in both
 * forms) in what the servers print. NULL when there is none. */
static int uri_pin_value(const char *uri, char **ret) {
        const char *p = uri ? strstr(uri, "pin-value=") : NULL;
        size_t n, o = 0;
        char *pin;

        *ret = NULL;
        if (!p)
                return 0;
        p += strlen("pin-value=");
        n = strcspn(p, ";&?#");
        pin = malloc(n + 1);
        if (!pin)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                int hi = p[i] == '%' && i + 2 < n ? unhexchar(p[i + 1]) : -1;
                int lo = hi >= 0 ? unhexchar(p[i + 2]) : -1;

                if (lo < 0) {
                        pin[o++] = p[i];
                        continue;
                }
                pin[o++] = (char) (hi << 4 | lo);
                i += 2;
        }
        pin[o] = '\0';
        *ret = pin;
        return 0;
}

int cli_verb_web(int argc, char **argv, const struct cli_ctx *ctx) {
        _cleanup_(wipe_freep) char *uri = NULL, *pin = NULL;
        struct web_args a;
        int r;

        if (argc < 2 || strcmp(argv[1], "apply") != 0) {
                log_error("web: expected the sub-command 'apply'. Try 'enclave-acm web apply --help'.");
                return CLI_EXIT_USAGE;
        }
        r = parse_argv(argc - 1, argv + 1, &a);
        if (r <= 0)
                return r < 0 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
        if (build_uri(&a, &uri) < 0)
                return CLI_EXIT_FAILED;
        if (uri_pin_value(a.key_uri, &pin) < 0) {
                log_error_errno(-ENOMEM, "Out of memory");
                return CLI_EXIT_FAILED;
        }
        a.pin_mask = pin;
        a.uri = uri;
        r = cli_web_apply(&a);
        return r < 0 ? CLI_EXIT_FAILED : CLI_EXIT_OK;
}
