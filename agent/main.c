/* enclave-acm-agent: the systemd service (--check-config validates acm.yaml and exits). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>

#include "agent/config/config.h"
#include "agent/service.h"
#include "common/log.h"
#include "common/ssl-heap.h"

static const char *arg_config = AGENT_CONFIG_DEFAULT_PATH;
static bool arg_check_config;

static void help(void) {
        printf("Usage: enclave-acm-agent [--config FILE] [--check-config]\n"
               "\n"
               "The enclave-acm service: launches the enclave, provisions the tokens of acm.yaml,\n"
               "keeps them refreshed and keeps nginx or httpd pointed at them.\n"
               "\n"
               "  --config FILE    the configuration (default %s)\n"
               "  --check-config   validate the configuration, print its warnings and errors, and exit:\n"
               "                   0 when it is valid, 1 when it is not\n"
               "  -h, --help       this text\n"
               "  --version        print the version\n"
               "\n"
               "Without --check-config it runs in the foreground, as systemd runs it: SIGTERM stops it\n"
               "(the enclave is terminated, certificate files are kept), SIGHUP re-reads the "
               "configuration.\n",
               AGENT_CONFIG_DEFAULT_PATH);
}

/* 1 to go on, 0 after --help/--version, negative errno on a bad command line. */
static int parse_argv(int argc, char *argv[]) {
        enum { ARG_VERSION = 0x100, ARG_CONFIG, ARG_CHECK_CONFIG };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "config", required_argument, NULL, ARG_CONFIG },
                { "check-config", no_argument, NULL, ARG_CHECK_CONFIG },
                {},
        };
        int c;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h': help(); return 0;
                case ARG_VERSION: printf("enclave-acm-agent %s\n", ENCLAVE_ACM_VERSION); return 0;
                case ARG_CONFIG: arg_config = optarg; break;
                case ARG_CHECK_CONFIG: arg_check_config = true; break;
                default: return log_error_errno(-EINVAL, "Try 'enclave-acm-agent --help'.");
                }
        if (optind < argc)
                return log_error_errno(-EINVAL, "Unexpected argument '%s'", argv[optind]);
        return 1;
}

/* plain: "file:line:col: error: key: message" lines for a person at a terminal (--check-config);
 * otherwise through the logger, with priorities for the journal. */
static int print_diag(const struct agent_config_diag *d, bool plain) {
        for (size_t i = 0; i < d->n_entries; i++) {
                const struct agent_config_diag_entry *e = &d->entries[i];
                _cleanup_free_ char *s = NULL;
                int r;

                r = agent_config_diag_format(d, e, &s);
                if (r < 0)
                        return log_error_errno(r, "Failed to format a configuration message: %m");
                if (plain)
                        fprintf(stderr, "%s\n", s);
                else
                        log_full(e->severity == AGENT_CONFIG_ERROR ? LOG_ERR : LOG_WARNING, "%s", s);
        }
        if (d->truncated && plain)
                fprintf(stderr, "%s: ... and %zu more\n", d->filename,
                        d->n_errors + d->n_warnings - d->n_entries);
        else if (d->truncated)
                log_warning("%s: ... and %zu more", d->filename, d->n_errors + d->n_warnings - d->n_entries);
        return 0;
}

static int check_config(void) {
        _cleanup_(agent_config_diag_done) struct agent_config_diag diag = {};
        _cleanup_(agent_config_freep) struct agent_config *cfg = NULL;
        int r;

        r = agent_config_load(arg_config, &cfg, &diag);
        if (r == -ENOMEM)
                return log_error_errno(r, "Failed to load '%s': %m", arg_config);
        (void) print_diag(&diag, true);
        if (r < 0) {
                fprintf(stderr, "%s: invalid configuration: %zu error%s, %zu warning%s\n", arg_config,
                        diag.n_errors, diag.n_errors == 1 ? "" : "s", diag.n_warnings,
                        diag.n_warnings == 1 ? "" : "s");
                return r;
        }
        printf("%s: valid configuration: %zu token%s, %zu warning%s\n", arg_config, cfg->n_tokens,
               cfg->n_tokens == 1 ? "" : "s", diag.n_warnings, diag.n_warnings == 1 ? "" : "s");
        return 0;
}

static int run(void) {
        _cleanup_(agent_config_diag_done) struct agent_config_diag diag = {};
        _cleanup_(agent_config_freep) struct agent_config *cfg = NULL;
        int r;

        r = agent_config_load(arg_config, &cfg, &diag);
        if (r >= 0) {
                log_set_max_level(cfg->log.level);
                log_set_timestamp(cfg->log.enable_timestamp);
        }
        (void) print_diag(&diag, false);
        if (r < 0)
                return log_error_errno(r, "Failed to load the configuration '%s': %m", arg_config);

        return agent_service_run(arg_config, &cfg);
}

int main(int argc, char *argv[]) {
        int r;

        /* acm.yaml may hold PINs: no core dumps, no ptrace by other users. */
        if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
                log_error_errno(negative_errno(), "Failed to make the process non-dumpable: %m");
                return EXIT_FAILURE;
        }
        /* Key files pass through OpenSSL on their way to the enclave: every buffer it makes is wiped
         * when freed and kept out of core dumps (locked where RLIMIT_MEMLOCK allows). */
        r = ssl_heap_install();
        if (r < 0) {
                log_error_errno(r, "Failed to route OpenSSL's allocations to wiped memory: %m");
                return EXIT_FAILURE;
        }
        r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;

        r = arg_check_config ? check_config() : run();
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
