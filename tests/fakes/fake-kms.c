/* fake-kms: a KMS stand-in for tests, the demo and the benchmark (loopback and unix sockets only).
 *   fake-kms serve --listen unix:path=P --ca-out F --credentials AKID:SECRET[:TOKEN] --region R
 *                  --attestation-root PEM --master-key F [--policy-pcr N=HEX]... [--fault-file F]
 *                  [--stats F]
 *   fake-kms encrypt --master-key F --key-id ID [-i IN] [-o OUT] [--base64]
 *   fake-kms keygen --master-key F */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "attest/attest.h"
#include "aws/endpoint.h"
#include "common/base64.h"
#include "common/log.h"
#include "common/parse-util.h"
#include "common/secret.h"
#include "common/transport.h"
#include "tests/fakes/fake-kms-blob.h"
#include "tests/fakes/fake-kms-server.h"
#include "tests/fakes/fake-kms-util.h"

#define PCR_HEX_MAX 128

static const char *arg_listen, *arg_ca_out, *arg_region = "us-east-1", *arg_attestation_root;
static const char *arg_master_key, *arg_fault_file, *arg_stats, *arg_key_id, *arg_in, *arg_out;
static char *arg_access_key_id;
static struct secret_buf *arg_secret, *arg_token;
static struct attest_pcr_expect arg_policy[ATTEST_PCR_COUNT];
static uint8_t arg_policy_bytes[ATTEST_PCR_COUNT][PCR_HEX_MAX / 2];
static size_t arg_n_policy;
static bool arg_base64;
static long arg_clock_offset;
static unsigned long arg_idle_timeout = 60, arg_io_timeout = 10, arg_max_connections = 256;

static void help(void) {
        printf("fake-kms serve --listen unix:path=PATH|tcp:127.0.0.1:PORT --ca-out FILE\n"
               "               --credentials AKID:SECRET[:SESSION_TOKEN] | --credentials @FILE\n"
               "               --region REGION --attestation-root PEM --master-key FILE\n"
               "               [--policy-pcr N=HEX]... [--fault-file FILE] [--stats FILE]\n"
               "               [--clock-offset SECONDS] [--idle-timeout S] [--io-timeout S]\n"
               "               [--max-connections N]\n"
               "fake-kms encrypt --master-key FILE --key-id ID [-i IN] [-o OUT] [--base64]\n"
               "fake-kms keygen --master-key FILE\n"
               "\n"
               "A KMS stand-in for tests (never for production): Decrypt and GenerateRandom with a\n"
               "Recipient, SigV4 checked, attestation documents verified against --attestation-root\n"
               "(re-read at each request), PCR policy, CMS EnvelopedData answers. See "
               "tests/fakes/README.\n");
}

/* "N=HEX": PCR N (0..31) must hold HEX (any case), kms:RecipientAttestation:PCR<N>. */
static int parse_policy(const char *s) {
        const char *eq = strchr(s, '=');
        unsigned long idx;
        char num[8];
        size_t hl;
        int r;

        if (!eq || (size_t) (eq - s) >= sizeof(num) || arg_n_policy >= ATTEST_PCR_COUNT)
                return -EINVAL;
        memcpy(num, s, (size_t) (eq - s));
        num[eq - s] = '\0';
        r = parse_unsigned(num, 10, 0, ATTEST_PCR_COUNT - 1, &idx);
        if (r < 0)
                return r;
        hl = strlen(eq + 1);
        if (hl == 0 || hl % 2 || hl > PCR_HEX_MAX)
                return -EINVAL;
        for (size_t i = 0; i < hl / 2; i++) {
                int hi = unhexchar(eq[1 + 2 * i]), lo = unhexchar(eq[2 + 2 * i]);
                if (hi < 0 || lo < 0)
                        return -EINVAL;
                arg_policy_bytes[arg_n_policy][i] = (uint8_t) (hi << 4 | lo);
        }
        for (size_t i = 0; i < arg_n_policy; i++)
                if (arg_policy[i].index == idx)
                        return -EEXIST;
        arg_policy[arg_n_policy] =
                (struct attest_pcr_expect){ (unsigned) idx, arg_policy_bytes[arg_n_policy], hl / 2 };
        arg_n_policy++;
        return 0;
}

/* "AKID:SECRET[:TOKEN]" or "@FILE" holding it; the secret parts go to secret_bufs, the text is wiped. */
static int parse_credentials(char *arg) {
        _cleanup_free_ char *file = NULL;
        char *text = arg, *c1, *c2;
        size_t len;
        int r;

        if (arg[0] == '@') {
                r = fkms_read_file(arg + 1, 16384, &file, &len);
                if (r < 0)
                        return log_error_errno(r, "Failed to read the credentials file '%s': %m", arg + 1);
                text = file;
                text[strcspn(text, "\r\n")] = '\0';
        }
        len = strlen(text);
        c1 = strchr(text, ':');
        c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c1 || c1 == text || c1[1] == '\0' || c1[1] == ':' || (c2 && c2[1] == '\0')) {
                secret_wipe(text, len);
                return log_error_errno(-EINVAL, "--credentials: expected AKID:SECRET[:SESSION_TOKEN]");
        }
        free(arg_access_key_id);
        arg_access_key_id = strndup(text, (size_t) (c1 - text));
        arg_secret = secret_buf_free(arg_secret);
        arg_token = secret_buf_free(arg_token);
        r = arg_access_key_id ? 0 : -ENOMEM;
        if (r >= 0)
                r = secret_buf_dup(c1 + 1, c2 ? (size_t) (c2 - c1 - 1) : strlen(c1 + 1), &arg_secret);
        if (r >= 0 && c2)
                r = secret_buf_dup(c2 + 1, strlen(c2 + 1), &arg_token);
        secret_wipe(text, len);
        return r < 0 ? log_error_errno(r, "--credentials: %m") : 0;
}

static int parse_argv(int argc, char *argv[]) {
        enum {
                ARG_LISTEN = 0x100,
                ARG_CA_OUT,
                ARG_CREDENTIALS,
                ARG_REGION,
                ARG_ROOT,
                ARG_MASTER_KEY,
                ARG_POLICY,
                ARG_FAULT,
                ARG_STATS,
                ARG_CLOCK,
                ARG_IDLE,
                ARG_IO,
                ARG_MAXCONN,
                ARG_KEY_ID,
                ARG_BASE64,
        };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "listen", required_argument, NULL, ARG_LISTEN },
                { "ca-out", required_argument, NULL, ARG_CA_OUT },
                { "credentials", required_argument, NULL, ARG_CREDENTIALS },
                { "region", required_argument, NULL, ARG_REGION },
                { "attestation-root", required_argument, NULL, ARG_ROOT },
                { "master-key", required_argument, NULL, ARG_MASTER_KEY },
                { "policy-pcr", required_argument, NULL, ARG_POLICY },
                { "fault-file", required_argument, NULL, ARG_FAULT },
                { "stats", required_argument, NULL, ARG_STATS },
                { "clock-offset", required_argument, NULL, ARG_CLOCK },
                { "idle-timeout", required_argument, NULL, ARG_IDLE },
                { "io-timeout", required_argument, NULL, ARG_IO },
                { "max-connections", required_argument, NULL, ARG_MAXCONN },
                { "key-id", required_argument, NULL, ARG_KEY_ID },
                { "base64", no_argument, NULL, ARG_BASE64 },
                {},
        };
        int c, r;

        while ((c = getopt_long(argc, argv, "hi:o:", options, NULL)) >= 0) {
                switch (c) {
                case 'h': help(); exit(EXIT_SUCCESS);
                case ARG_LISTEN: arg_listen = optarg; break;
                case ARG_CA_OUT: arg_ca_out = optarg; break;
                case ARG_CREDENTIALS:
                        r = parse_credentials(optarg);
                        if (r < 0)
                                return r;
                        break;
                case ARG_REGION: arg_region = optarg; break;
                case ARG_ROOT: arg_attestation_root = optarg; break;
                case ARG_MASTER_KEY: arg_master_key = optarg; break;
                case ARG_POLICY:
                        r = parse_policy(optarg);
                        if (r < 0)
                                return log_error_errno(
                                        r,
                                        "--policy-pcr '%s': expected N=HEX, N 0..31 once each, "
                                        "an even number of hex digits: %m",
                                        optarg);
                        break;
                case ARG_FAULT: arg_fault_file = optarg; break;
                case ARG_STATS: arg_stats = optarg; break;
                case ARG_CLOCK: {
                        unsigned long v;
                        bool neg = optarg[0] == '-';
                        r = parse_unsigned(optarg + neg, 10, 0, 366UL * 86400, &v);
                        if (r < 0)
                                return log_error_errno(r, "--clock-offset '%s': %m", optarg);
                        arg_clock_offset = neg ? -(long) v : (long) v;
                        break;
                }
                case ARG_IDLE:
                case ARG_IO:
                case ARG_MAXCONN: {
                        unsigned long v;
                        r = parse_unsigned(optarg, 10, 1, c == ARG_MAXCONN ? 4096 : 86400, &v);
                        if (r < 0)
                                return log_error_errno(r, "%s '%s': %m", argv[optind - 1], optarg);
                        *(c == ARG_IDLE ? &arg_idle_timeout
                          : c == ARG_IO ? &arg_io_timeout
                                        : &arg_max_connections) = v;
                        break;
                }
                case ARG_KEY_ID: arg_key_id = optarg; break;
                case ARG_BASE64: arg_base64 = true; break;
                case 'i': arg_in = optarg; break;
                case 'o': arg_out = optarg; break;
                default: return -EINVAL;
                }
        }
        if (optind < argc)
                return log_error_errno(-EINVAL, "Unexpected argument '%s'", argv[optind]);
        return 0;
}

/* ---- keygen, encrypt -------------------------------------------------------------------------- */

static int run_keygen(void) {
        _cleanup_secret_ struct secret_buf *key = NULL;
        bool created = false;
        int r;

        if (!arg_master_key)
                return log_error_errno(-EINVAL, "keygen needs --master-key FILE");
        r = fkms_master_key_load(arg_master_key, true, &key, &created);
        if (r < 0)
                return log_error_errno(r, "Failed to create or read the master key '%s' (32 bytes): %m",
                                       arg_master_key);
        log_info("%s master key '%s'", created ? "Created" : "Kept the existing", arg_master_key);
        return 0;
}

/* The plaintext (1..FKMS_PLAINTEXT_MAX bytes) from a file or stdin, straight into secret memory. */
static int read_plaintext(struct secret_buf **ret) {
        _cleanup_secret_ struct secret_buf *pt = NULL;
        _cleanup_close_ int fd = -1;
        int in = STDIN_FILENO, r;

        if (arg_in && strcmp(arg_in, "-") != 0) {
                fd = open(arg_in, O_RDONLY | O_CLOEXEC | O_NOCTTY);
                if (fd < 0)
                        return log_error_errno(negative_errno(), "Failed to open '%s': %m", arg_in);
                in = fd;
        }
        r = secret_buf_new(FKMS_PLAINTEXT_MAX + 1, &pt);
        if (r < 0)
                return log_error_errno(r, "Failed to allocate secret memory: %m");
        for (;;) {
                ssize_t n = read(in, pt->data + pt->len, pt->cap - pt->len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return log_error_errno(negative_errno(), "Failed to read the plaintext: %m");
                if (n == 0)
                        break;
                pt->len += (size_t) n;
                if (pt->len > FKMS_PLAINTEXT_MAX)
                        return log_error_errno(-EFBIG, "The plaintext is over %u bytes (KMS's limit)",
                                               FKMS_PLAINTEXT_MAX);
        }
        if (pt->len == 0)
                return log_error_errno(-EINVAL, "The plaintext is empty");
        *ret = TAKE_PTR(pt);
        return 0;
}

static int write_output(const void *data, size_t len) {
        const uint8_t *p = data;

        if (arg_out && strcmp(arg_out, "-") != 0) {
                int r = fkms_write_atomic(arg_out, data, len, 0644);
                return r < 0 ? log_error_errno(r, "Failed to write '%s': %m", arg_out) : 0;
        }
        while (len > 0) {
                ssize_t n = write(STDOUT_FILENO, p, len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return log_error_errno(n < 0 ? negative_errno() : -EIO,
                                               "Failed to write stdout: %m");
                p += n;
                len -= (size_t) n;
        }
        return 0;
}

static int run_encrypt(void) {
        _cleanup_secret_ struct secret_buf *key = NULL, *pt = NULL;
        _cleanup_free_ uint8_t *blob = NULL;
        _cleanup_free_ char *text = NULL;
        size_t len;
        int r;

        if (!arg_master_key || !arg_key_id)
                return log_error_errno(-EINVAL, "encrypt needs --master-key FILE and --key-id ID");
        if (fkms_key_id_validate(arg_key_id) < 0)
                return log_error_errno(-EINVAL, "--key-id '%s': 1..%u of [A-Za-z0-9._-]", arg_key_id,
                                       FKMS_KEY_ID_MAX);
        r = fkms_master_key_load(arg_master_key, true, &key, NULL);
        if (r < 0)
                return log_error_errno(r, "Failed to create or read the master key '%s' (32 bytes): %m",
                                       arg_master_key);
        r = read_plaintext(&pt);
        if (r < 0)
                return r;
        r = fkms_blob_seal(key->data, arg_key_id, pt->data, pt->len, &blob, &len);
        if (r < 0)
                return log_error_errno(r, "Failed to encrypt: %m");
        if (!arg_base64)
                return write_output(blob, len);
        text = malloc(base64_encoded_len(len) + 2);
        if (!text)
                return log_error_errno(-ENOMEM, "Out of memory");
        r = base64_encode(blob, len, text, base64_encoded_len(len) + 1);
        if (r < 0)
                return log_error_errno(r, "Failed to encode: %m");
        text[r] = '\n';
        return write_output(text, (size_t) r + 1);
}

/* ---- serve ------------------------------------------------------------------------------------ */

/* "tcp:127.0.0.1:PORT": loopback only. */
static int listen_tcp(const char *spec) {
        _cleanup_close_ int fd = -1;
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t sl = sizeof(sa);
        unsigned long port;
        int one = 1, r;

        if (strncmp(spec, "tcp:127.0.0.1:", 14) != 0)
                return -EINVAL;
        r = parse_unsigned(spec + 14, 10, 0, 65535, &port);
        if (r < 0)
                return r;
        sa.sin_port = htons((uint16_t) port);
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
            bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 || listen(fd, 128) < 0 ||
            getsockname(fd, (struct sockaddr *) &sa, &sl) < 0)
                return negative_errno();
        log_info("Listening on tcp:127.0.0.1:%u", ntohs(sa.sin_port));
        return TAKE_FD(fd);
}

static int make_ssl_ctx(const struct fkms_tls_identity *id, SSL_CTX **ret) {
        SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

        if (!ctx || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
            SSL_CTX_use_certificate(ctx, id->leaf) != 1 || SSL_CTX_use_PrivateKey(ctx, id->leaf_key) != 1 ||
            SSL_CTX_check_private_key(ctx) != 1) {
                SSL_CTX_free(ctx);
                return -EIO;
        }
        *ret = ctx;
        return 0;
}

static int run_serve(void) {
        _cleanup_(fkms_tls_identity_done) struct fkms_tls_identity id = {};
        _cleanup_secret_ struct secret_buf *master = NULL;
        _cleanup_close_ int lfd = -1, sigfd = -1;
        _cleanup_free_ char *ca_pem = NULL;
        struct transport_addr addr = {};
        char host[AWS_HOST_MAX], host_com[AWS_HOST_MAX];
        const char *names[3] = { host, NULL, NULL };
        enum aws_partition part;
        struct aws_err e = {};
        struct fkms_config cfg;
        SSL_CTX *ctx = NULL;
        size_t ca_len;
        sigset_t mask;
        int r;

        if (!arg_listen || !arg_ca_out || !arg_access_key_id || !arg_attestation_root || !arg_master_key)
                return log_error_errno(-EINVAL, "serve needs --listen, --ca-out, --credentials, "
                                                "--attestation-root and --master-key");
        if (aws_region_partition(arg_region, &part, &e) < 0 ||
            aws_kms_host(arg_region, NULL, host, sizeof(host), &e) < 0)
                return log_error_errno(-EINVAL, "--region '%s': %s", arg_region, e.msg);
        (void) snprintf(host_com, sizeof(host_com), "kms.%s.amazonaws.com", arg_region);
        if (strcmp(host, host_com) != 0)
                names[1] = host_com;
        r = fkms_master_key_load(arg_master_key, false, &master, NULL);
        if (r < 0)
                return log_error_errno(r,
                                       "Failed to read the master key '%s' (32 bytes; fake-kms keygen): %m",
                                       arg_master_key);
        r = fkms_tls_identity_new(names, &id);
        if (r >= 0)
                r = make_ssl_ctx(&id, &ctx);
        if (r >= 0)
                r = fkms_tls_ca_pem(&id, &ca_pem, &ca_len);
        if (r < 0)
                return log_error_errno(r, "Failed to make the TLS test CA and certificate: %m");

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0 || (sigfd = signalfd(-1, &mask, SFD_CLOEXEC)) < 0) {
                SSL_CTX_free(ctx);
                return log_error_errno(negative_errno(), "Failed to set up signals: %m");
        }
        (void) signal(SIGPIPE, SIG_IGN);
        if (strncmp(arg_listen, "tcp:", 4) == 0)
                lfd = listen_tcp(arg_listen);
        else if ((r = transport_addr_parse(arg_listen, &addr)) < 0 || addr.family != TRANSPORT_UNIX)
                lfd = r < 0 ? r : -EINVAL;
        else
                lfd = transport_listen(&addr, 0600, (gid_t) -1, 128);
        if (lfd < 0) {
                SSL_CTX_free(ctx);
                return log_error_errno(lfd,
                                       "Failed to listen on '%s' (unix:path=PATH or tcp:127.0.0.1:PORT): %m",
                                       arg_listen);
        }
        /* the CA file appears once the socket listens: tests wait for it */
        r = fkms_write_atomic(arg_ca_out, ca_pem, ca_len, 0644);
        if (r < 0) {
                SSL_CTX_free(ctx);
                return log_error_errno(r, "Failed to write the CA to '%s': %m", arg_ca_out);
        }
        cfg = (struct fkms_config){ .region = arg_region,
                                    .hosts = names,
                                    .partition = aws_partition_to_string(part),
                                    .access_key_id = arg_access_key_id,
                                    .secret_access_key = arg_secret,
                                    .session_token = arg_token,
                                    .attestation_root = arg_attestation_root,
                                    .policy = arg_policy,
                                    .n_policy = arg_n_policy,
                                    .master_key = master,
                                    .fault_file = arg_fault_file,
                                    .clock_offset = arg_clock_offset,
                                    .idle_timeout_ms = (int) arg_idle_timeout * 1000,
                                    .io_timeout_ms = (int) arg_io_timeout * 1000,
                                    .max_connections = (unsigned) arg_max_connections,
                                    .cert_signer = id.ca_key };
        log_info("fake-kms (tests only) serving %s for %s%s%s on %s, %zu PCR policy entries, credentials "
                 "%s%s",
                 host, arg_region, names[1] ? " and " : "", names[1] ? names[1] : "", arg_listen,
                 arg_n_policy, arg_access_key_id, arg_token ? " with a session token" : "");
        r = fkms_serve(&cfg, arg_stats, ctx, lfd, sigfd);
        if (addr.family == TRANSPORT_UNIX && addr.path[0])
                (void) unlink(addr.path);
        if (r > 0) {
                log_info("%d connections still open: exiting without waiting for them", r);
                _exit(EXIT_SUCCESS);
        }
        SSL_CTX_free(ctx); /* connection threads still running hold their own reference */
        return r < 0 ? log_error_errno(r, "The listening socket failed: %m") : 0;
}

int main(int argc, char *argv[]) {
        const char *verb = argc > 1 ? argv[1] : NULL;
        int r;

        log_set_max_level(LOG_INFO);
        if (!verb || !strcmp(verb, "--help") || !strcmp(verb, "-h")) {
                help();
                return verb ? EXIT_SUCCESS : 2;
        }
        r = parse_argv(argc - 1, argv + 1);
        if (r < 0)
                return 2;
        if (!strcmp(verb, "serve"))
                r = run_serve();
        else if (!strcmp(verb, "encrypt"))
                r = run_encrypt();
        else if (!strcmp(verb, "keygen"))
                r = run_keygen();
        else {
                log_error("Unknown command '%s' (serve, encrypt, keygen)", verb);
                return 2;
        }
        secret_buf_free(arg_secret);
        secret_buf_free(arg_token);
        free(arg_access_key_id);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
