/* enclave-token: the in-enclave daemon holding decrypted private keys, serving the data and control
 * channels. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "common/log.h"
#include "common/parse-util.h"
#include "common/secret.h"
#include "common/transport.h"
#include "enclave-token/dispatch.h"
#include "enclave-token/keystore.h"
#include "enclave-token/kms.h"
#include "enclave-token/nsm.h"
#include "enclave-token/server.h"
#if ENCLAVE_ACM_NSM_SIMULATOR
#include "enclave-token/nsm-sim-doc.h"
#include "enclave-token/nsm-sim.h"
#endif
#include "common/ssl-heap.h"

#define WORKERS_MAX           256
#define ROTATION_GRACE_MAX    86400 /* a day: old workers of a web server never take longer */
#define SECURE_HEAP_PER_TOKEN 4096  /* one RSA-4096 key needs ~2.3 KiB, EC and Ed25519 64 B */
#define SECURE_HEAP_MAX_MIB   4096
/* On vsock (in an enclave, whose vCPUs serve nothing else) a worker polls this long for the next
 * request; on a unix socket the token shares the CPUs with its clients and does not poll unless told. */
#define BUSY_POLL_DEFAULT_USEC 50
#define BUSY_POLL_MAX_USEC     10000
#define CONNECTIONS_MAX        65536
#define TIMEOUT_MAX_SEC        86400

static bool arg_dev;
static const char *arg_data;
static const char *arg_control;
static unsigned arg_workers;
static mode_t arg_socket_mode = 0666; /* the data socket: web-server workers connect as another user */
static gid_t arg_socket_gid = (gid_t) -1;
static unsigned arg_max_conns = ETOK_MAX_CONNECTIONS_DEFAULT;
static unsigned arg_max_conns_per_peer; /* 0: a quarter of --max-connections */
static unsigned arg_max_control_conns = ETOK_MAX_CONTROL_CONNECTIONS_DEFAULT;
static unsigned arg_hello_timeout = ETOK_HELLO_TIMEOUT_DEFAULT_SEC;
static unsigned arg_frame_timeout = ETOK_FRAME_TIMEOUT_DEFAULT_SEC;
static unsigned arg_idle_timeout = ETOK_IDLE_TIMEOUT_DEFAULT_SEC;
static size_t arg_max_tokens = ETOK_MAX_TOKENS_DEFAULT;
static size_t arg_secure_heap_mib; /* 0: from --max-tokens */
static uint64_t arg_rotation_grace = ETOK_ROTATION_GRACE_DEFAULT_SEC;
static int arg_busy_poll_usec = -1; /* -1: by the data channel's transport */
static const char *arg_kms_proxy;   /* NULL: ETOK_KMS_PROXY_DEFAULT */
static const char *arg_kms_ca;
#if ENCLAVE_ACM_NSM_SIMULATOR
static bool arg_nsm_simulator;
/* --nsm-sim-pcr: the measurements the simulator reports (the image's PCRs); the rest stay zero. */
static uint8_t arg_sim_pcr[NSM_PCR_COUNT][NSM_PCR_LEN];
static bool arg_sim_pcr_set[NSM_PCR_COUNT];
static const char *arg_sim_root;
#endif

static void help(void) {
        printf("Usage: enclave-token [OPTIONS] --data ADDRESS --control ADDRESS\n"
               "\n"
               "Holds decrypted private keys and serves PKCS#11 tokens over two channels.\n"
               "\n"
               "  --data ADDRESS          data channel (vsock:port=9999, unix:path=/run/x/data.sock)\n"
               "  --control ADDRESS       control channel (provisioning)\n"
               "  --dev                   accept plaintext private keys on TOKEN_ADD (development only)\n"
#if ENCLAVE_ACM_NSM_SIMULATOR
               "  --nsm-simulator         a software NSM instead of /dev/nsm (development and tests only:\n"
               "                          its attestation documents never verify against the AWS root)\n"
               "  --nsm-sim-pcr N=HEX     the simulator's PCR N (0, 1, 2, 3, 4 or 8; 48 bytes in hex);\n"
               "                          repeatable; PCRs not given read zero, as in a debug enclave\n"
               "  --nsm-sim-root FILE     write the simulator's test root certificate (PEM) to FILE\n"
#endif
               "  --kms-proxy ADDRESS     where KMS is reached: the parent's vsock-proxy\n"
               "                          (default %s)\n"
               "  --kms-ca FILE           PEM bundle trusted for KMS's TLS certificate instead of the\n"
               "                          system store (tests)\n"
               "  --workers N             data-channel worker threads (default: online CPUs); the control\n"
               "                          channel has two threads of its own\n"
               "  --socket-mode OCTAL     mode of a unix data socket (default 0666: web-server workers\n"
               "                          run as another user; 0660 with --socket-group to narrow it).\n"
               "                          A unix control socket is always 0600: its owner provisions\n"
               "  --socket-group NAME|GID group of a unix data socket\n"
               "  --max-connections N     data connections in total (default %d); at the limit the\n"
               "                          peer holding the most gives up its stalled or oldest idle one\n"
               "  --max-connections-per-peer N\n"
               "                          data connections per peer: a uid on a unix socket, the CID on\n"
               "                          vsock, where it is the total (default a quarter of the total\n"
               "                          on a unix socket)\n"
               "  --max-control-connections N\n"
               "                          control connections (default %d)\n"
               "  --hello-timeout SECS    from connect to the end of HELLO (default %d)\n"
               "  --frame-timeout SECS    for a request's bytes to arrive, and for the client to take an\n"
               "                          answer (default %d)\n"
               "  --idle-timeout SECS     a data connection without a request is closed (default %d;\n"
               "                          0: never; the module reconnects transparently)\n"
               "  --max-tokens N          token limit (default %d, at most %d)\n"
               "  --rotation-grace SECS   how long a replaced token version still signs for the holders\n"
               "                          of its login ticket (default %d, 0: not at all)\n"
               "  --busy-poll USEC        after an answer, its worker polls the connection this long for\n"
               "                          the client's next request, unless others wait (at most %d;\n"
               "                          0: never; default %d on vsock, where the enclave's vCPUs\n"
               "                          serve nothing else, 0 on a unix socket)\n"
               "  --secure-heap MIB       OpenSSL secure heap for private keys, a power of two\n"
               "                          (default: 8 KiB per token, room for one retired version,\n"
               "                          rounded up)\n"
               "  --log-level LEVEL       error, warning, notice, info, debug\n"
               "  --help, --version\n",
               ETOK_KMS_PROXY_DEFAULT, ETOK_MAX_CONNECTIONS_DEFAULT, ETOK_MAX_CONTROL_CONNECTIONS_DEFAULT,
               ETOK_HELLO_TIMEOUT_DEFAULT_SEC, ETOK_FRAME_TIMEOUT_DEFAULT_SEC, ETOK_IDLE_TIMEOUT_DEFAULT_SEC,
               ETOK_MAX_TOKENS_DEFAULT, RPC_MAX_TOKENS, ETOK_ROTATION_GRACE_DEFAULT_SEC, BUSY_POLL_MAX_USEC,
               BUSY_POLL_DEFAULT_USEC);
}

static int parse_group(const char *s, gid_t *ret) {
        _cleanup_free_ char *buf = NULL;
        struct group grp, *res = NULL;
        unsigned long v;
        long size;
        int r;

        if (parse_unsigned(s, 10, 0, (gid_t) -2, &v) >= 0) {
                *ret = (gid_t) v;
                return 0;
        }
        size = sysconf(_SC_GETGR_R_SIZE_MAX);
        if (size <= 0)
                size = 16384;
        buf = malloc((size_t) size);
        if (!buf)
                return -ENOMEM;
        r = getgrnam_r(s, &grp, buf, (size_t) size, &res);
        if (r != 0)
                return -r;
        if (!res)
                return -ESRCH;
        *ret = res->gr_gid;
        return 0;
}

/* A decimal count in min..max for the option whose getopt value is val, or a logged -EINVAL. */
static int parse_count(const struct option *options, int val, const char *s, unsigned min, unsigned max) {
        const char *name = "?";
        unsigned long v;

        for (; options->name; options++)
                if (options->val == val)
                        name = options->name;
        if (parse_unsigned(s, 10, min, max, &v) < 0)
                return log_error_errno(-EINVAL, "Invalid --%s '%s' (%u..%u)", name, s, min, max);
        return (int) v;
}

#if ENCLAVE_ACM_NSM_SIMULATOR
/* N=HEX: N one of the PCRs an image or boot measures (0, 1, 2, 3, 4, 8), HEX 48 bytes. */
static int parse_sim_pcr(const char *s) {
        const char *eq = strchr(s, '='), *hex;
        char idx[4] = {};
        unsigned long n;

        if (!eq || eq == s || (size_t) (eq - s) >= sizeof(idx))
                return log_error_errno(-EINVAL, "Invalid --nsm-sim-pcr '%s': expected N=HEX", s);
        memcpy(idx, s, (size_t) (eq - s));
        if (parse_unsigned(idx, 10, 0, 8, &n) < 0 || (n > 4 && n != 8))
                return log_error_errno(-EINVAL, "Invalid --nsm-sim-pcr index '%s': 0, 1, 2, 3, 4 or 8", idx);
        hex = eq + 1;
        if (strlen(hex) != 2 * NSM_PCR_LEN)
                return log_error_errno(-EINVAL, "Invalid --nsm-sim-pcr %lu: %zu hex digits, expected %d", n,
                                       strlen(hex), 2 * NSM_PCR_LEN);
        for (size_t i = 0; i < NSM_PCR_LEN; i++) {
                int hi = unhexchar(hex[2 * i]), lo = unhexchar(hex[2 * i + 1]);

                if (hi < 0 || lo < 0)
                        return log_error_errno(-EINVAL, "Invalid --nsm-sim-pcr %lu: not hex at digit %zu", n,
                                               2 * i + (hi < 0 ? 0 : 1));
                arg_sim_pcr[n][i] = (uint8_t) (hi << 4 | lo);
        }
        arg_sim_pcr_set[n] = true;
        return 0;
}
#endif

static int parse_argv(int argc, char *argv[]) {
        enum {
                ARG_DEV = 0x100,
                ARG_DATA,
                ARG_CONTROL,
                ARG_WORKERS,
                ARG_SOCKET_MODE,
                ARG_SOCKET_GROUP,
                ARG_MAX_TOKENS,
                ARG_SECURE_HEAP,
                ARG_ROTATION_GRACE,
                ARG_BUSY_POLL,
                ARG_MAX_CONNS,
                ARG_MAX_CONNS_PER_PEER,
                ARG_MAX_CONTROL_CONNS,
                ARG_HELLO_TIMEOUT,
                ARG_FRAME_TIMEOUT,
                ARG_IDLE_TIMEOUT,
                ARG_LOG_LEVEL,
                ARG_VERSION,
                ARG_NSM_SIMULATOR,
                ARG_NSM_SIM_PCR,
                ARG_NSM_SIM_ROOT,
                ARG_KMS_PROXY,
                ARG_KMS_CA,
        };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "dev", no_argument, NULL, ARG_DEV },
                { "data", required_argument, NULL, ARG_DATA },
                { "control", required_argument, NULL, ARG_CONTROL },
                { "workers", required_argument, NULL, ARG_WORKERS },
                { "socket-mode", required_argument, NULL, ARG_SOCKET_MODE },
                { "socket-group", required_argument, NULL, ARG_SOCKET_GROUP },
                { "max-tokens", required_argument, NULL, ARG_MAX_TOKENS },
                { "secure-heap", required_argument, NULL, ARG_SECURE_HEAP },
                { "rotation-grace", required_argument, NULL, ARG_ROTATION_GRACE },
                { "busy-poll", required_argument, NULL, ARG_BUSY_POLL },
                { "max-connections", required_argument, NULL, ARG_MAX_CONNS },
                { "max-connections-per-peer", required_argument, NULL, ARG_MAX_CONNS_PER_PEER },
                { "max-control-connections", required_argument, NULL, ARG_MAX_CONTROL_CONNS },
                { "hello-timeout", required_argument, NULL, ARG_HELLO_TIMEOUT },
                { "frame-timeout", required_argument, NULL, ARG_FRAME_TIMEOUT },
                { "idle-timeout", required_argument, NULL, ARG_IDLE_TIMEOUT },
                { "log-level", required_argument, NULL, ARG_LOG_LEVEL },
#if ENCLAVE_ACM_NSM_SIMULATOR
                { "nsm-simulator", no_argument, NULL, ARG_NSM_SIMULATOR },
                { "nsm-sim-pcr", required_argument, NULL, ARG_NSM_SIM_PCR },
                { "nsm-sim-root", required_argument, NULL, ARG_NSM_SIM_ROOT },
#endif
                { "kms-proxy", required_argument, NULL, ARG_KMS_PROXY },
                { "kms-ca", required_argument, NULL, ARG_KMS_CA },
                {}
        };
        unsigned long v;
        int c, r;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h': help(); return 0;
                case ARG_VERSION: printf("enclave-token %s\n", ENCLAVE_ACM_VERSION); return 0;
                case ARG_DEV: arg_dev = true; break;
#if ENCLAVE_ACM_NSM_SIMULATOR
                case ARG_NSM_SIMULATOR: arg_nsm_simulator = true; break;
                case ARG_NSM_SIM_PCR:
                        r = parse_sim_pcr(optarg);
                        if (r < 0)
                                return r;
                        break;
                case ARG_NSM_SIM_ROOT: arg_sim_root = optarg; break;
#endif
                case ARG_KMS_PROXY:
                        r = transport_addr_parse(optarg, &(struct transport_addr){});
                        if (r < 0)
                                return log_error_errno(r, "Invalid --kms-proxy address '%s'", optarg);
                        arg_kms_proxy = optarg;
                        break;
                case ARG_KMS_CA: arg_kms_ca = optarg; break;
                case ARG_DATA: arg_data = optarg; break;
                case ARG_CONTROL: arg_control = optarg; break;
                case ARG_WORKERS:
                        if (parse_unsigned(optarg, 10, 1, WORKERS_MAX, &v) < 0)
                                return log_error_errno(-EINVAL, "Invalid --workers '%s' (1..%d)", optarg,
                                                       WORKERS_MAX);
                        arg_workers = (unsigned) v;
                        break;
                case ARG_SOCKET_MODE:
                        if (parse_unsigned(optarg, 8, 0, 0777, &v) < 0)
                                return log_error_errno(-EINVAL, "Invalid --socket-mode '%s'", optarg);
                        arg_socket_mode = (mode_t) v;
                        break;
                case ARG_SOCKET_GROUP:
                        r = parse_group(optarg, &arg_socket_gid);
                        if (r < 0)
                                return log_error_errno(r, "Invalid --socket-group '%s': %m", optarg);
                        break;
                case ARG_MAX_TOKENS:
                        if (parse_unsigned(optarg, 10, 1, RPC_MAX_TOKENS, &v) < 0)
                                return log_error_errno(-EINVAL, "Invalid --max-tokens '%s' (1..%d)", optarg,
                                                       RPC_MAX_TOKENS);
                        arg_max_tokens = v;
                        break;
                case ARG_SECURE_HEAP:
                        if (parse_unsigned(optarg, 10, 1, SECURE_HEAP_MAX_MIB, &v) < 0 || (v & (v - 1)) != 0)
                                return log_error_errno(
                                        -EINVAL, "Invalid --secure-heap '%s' (a power of two, MiB)", optarg);
                        arg_secure_heap_mib = v;
                        break;
                case ARG_ROTATION_GRACE:
                        if (parse_unsigned(optarg, 10, 0, ROTATION_GRACE_MAX, &v) < 0)
                                return log_error_errno(-EINVAL,
                                                       "Invalid --rotation-grace '%s' (0..%d seconds)",
                                                       optarg, ROTATION_GRACE_MAX);
                        arg_rotation_grace = v;
                        break;
                case ARG_BUSY_POLL:
                        if (parse_unsigned(optarg, 10, 0, BUSY_POLL_MAX_USEC, &v) < 0)
                                return log_error_errno(-EINVAL,
                                                       "Invalid --busy-poll '%s' (0..%d microseconds)",
                                                       optarg, BUSY_POLL_MAX_USEC);
                        arg_busy_poll_usec = (int) v;
                        break;
                case ARG_MAX_CONNS:
                case ARG_MAX_CONNS_PER_PEER:
                case ARG_MAX_CONTROL_CONNS:
                        r = parse_count(options, c, optarg, 1, CONNECTIONS_MAX);
                        if (r < 0)
                                return r;
                        *(c == ARG_MAX_CONNS            ? &arg_max_conns
                          : c == ARG_MAX_CONNS_PER_PEER ? &arg_max_conns_per_peer
                                                        : &arg_max_control_conns) = (unsigned) r;
                        break;
                case ARG_HELLO_TIMEOUT:
                case ARG_FRAME_TIMEOUT:
                case ARG_IDLE_TIMEOUT:
                        r = parse_count(options, c, optarg, c == ARG_IDLE_TIMEOUT ? 0 : 1, TIMEOUT_MAX_SEC);
                        if (r < 0)
                                return r;
                        *(c == ARG_HELLO_TIMEOUT   ? &arg_hello_timeout
                          : c == ARG_FRAME_TIMEOUT ? &arg_frame_timeout
                                                   : &arg_idle_timeout) = (unsigned) r;
                        break;
                case ARG_LOG_LEVEL:
                        r = log_level_from_string(optarg);
                        if (r < 0)
                                return log_error_errno(r, "Invalid --log-level '%s'", optarg);
                        log_set_max_level(r);
                        break;
                default: return log_error_errno(-EINVAL, "Try 'enclave-token --help'.");
                }
        if (optind < argc)
                return log_error_errno(-EINVAL, "Unexpected argument '%s'", argv[optind]);
#if ENCLAVE_ACM_NSM_SIMULATOR
        if (!arg_nsm_simulator && arg_sim_root)
                return log_error_errno(-EINVAL, "--nsm-sim-root needs --nsm-simulator");
        for (unsigned i = 0; i < NSM_PCR_COUNT; i++)
                if (!arg_nsm_simulator && arg_sim_pcr_set[i])
                        return log_error_errno(-EINVAL, "--nsm-sim-pcr needs --nsm-simulator");
#endif
        if (!arg_data || !arg_control)
                return log_error_errno(-EINVAL, "--data and --control are required (see --help)");
        if (arg_max_conns_per_peer > arg_max_conns)
                return log_error_errno(-EINVAL,
                                       "--max-connections-per-peer %u is above --max-connections %u",
                                       arg_max_conns_per_peer, arg_max_conns);
        return 1;
}

static bool mlock_disabled(void) {
        const char *e = secure_getenv("ENCLAVE_ACM_NO_MLOCK");
        return e && strcmp(e, "1") == 0;
}

/* OpenSSL keeps private key bignums in its secure heap (locked, never swapped, wiped on free). */
static int secure_heap_init(void) {
        size_t size = arg_secure_heap_mib << 20;
        int r;

        if (size == 0)
                for (size = 1u << 20; size < arg_max_tokens * 2 * SECURE_HEAP_PER_TOKEN; size <<= 1)
                        ;
        r = CRYPTO_secure_malloc_init(size, 64);
        if (r == 1) {
                log_debug("OpenSSL secure heap: %zu KiB, locked", size >> 10);
                return 0;
        }
        if (mlock_disabled()) {
                log_warning("OpenSSL secure heap %s (ENCLAVE_ACM_NO_MLOCK=1), continuing",
                            r == 0 ? "unavailable" : "not locked");
                return 0;
        }
        return log_error_errno(-ENOMEM,
                               "Failed to set up a locked %zu KiB OpenSSL secure heap (RLIMIT_MEMLOCK?)",
                               size >> 10);
}

static int resolve(const char *s, const char *what, struct transport_addr *ret) {
        int r = transport_addr_parse(s, ret);

        if (r < 0)
                return log_error_errno(r, "Invalid --%s address '%s'", what, s);
        return 0;
}

#if ENCLAVE_ACM_NSM_SIMULATOR
/* The simulator's root certificate for the parent and the fake KMS: written to a temporary file next to
 * path, then renamed, so a reader never sees half a certificate. */
static int write_sim_root(const struct etok_sim_doc *doc, const char *path) {
        _cleanup_free_ char *pem = NULL, *tmp = NULL;
        _cleanup_close_ int fd = -1;
        size_t len = 0, done = 0;
        int r;

        r = etok_sim_doc_root_pem(doc, &pem, &len);
        if (r < 0)
                return log_error_errno(r, "Failed to encode the simulator's root certificate: %m");
        if (asprintf(&tmp, "%s.XXXXXX", path) < 0)
                return log_error_errno(-ENOMEM, "Out of memory");
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return log_error_errno(negative_errno(), "Failed to create a temporary file for '%s': %m",
                                       path);
        while (done < len) {
                ssize_t n = write(fd, pem + done, len - done);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        r = n < 0 ? negative_errno() : -EIO;
                        (void) unlink(tmp);
                        return log_error_errno(r, "Failed to write '%s': %m", tmp);
                }
                done += (size_t) n;
        }
        if (fchmod(fd, 0644) < 0 || fsync(fd) < 0 || rename(tmp, path) < 0) {
                r = negative_errno();
                (void) unlink(tmp);
                return log_error_errno(r, "Failed to write '%s': %m", path);
        }
        log_info("NSM simulator: its test root certificate is in '%s'", path);
        return 0;
}

static int nsm_sim_setup(struct etok_sim_doc **ret_doc, struct nsm_dev **ret) {
        _cleanup_(etok_sim_doc_freep) struct etok_sim_doc *doc = NULL;
        _cleanup_(nsm_sim_freep) struct nsm_sim *sim = NULL;
        const uint8_t *p[NSM_PCR_COUNT] = {};
        int r;

        log_warning("NSM SIMULATOR: attestation documents are signed by a test CA and will not verify "
                    "against the AWS root; never use in production");
        for (unsigned i = 0; i < NSM_PCR_COUNT; i++)
                p[i] = arg_sim_pcr_set[i] ? arg_sim_pcr[i] : NULL;
        r = etok_sim_doc_new(time(NULL), NULL, &doc);
        if (r < 0)
                return log_error_errno(r, "Failed to create the simulator's test CA: %m");
        if (arg_sim_root) {
                r = write_sim_root(doc, arg_sim_root);
                if (r < 0)
                        return r;
        }
        r = nsm_sim_new(
                &(struct nsm_sim_config){
                        .pcr0 = p[0],
                        .pcr1 = p[1],
                        .pcr2 = p[2],
                        .pcr3 = p[3],
                        .pcr4 = p[4],
                        .pcr8 = p[8],
                        .doc_fn = etok_sim_doc_make,
                        .doc_userdata = doc,
                },
                &sim);
        if (r < 0)
                return log_error_errno(r, "Failed to create the NSM simulator: %m");
        r = nsm_dev_new_sim(TAKE_PTR(sim), ret);
        if (r < 0)
                return log_error_errno(r, "Failed to create the NSM simulator device: %m");
        *ret_doc = TAKE_PTR(doc); /* outlives the device: freed after it */
        return 0;
}
#endif

/* The NSM: /dev/nsm. Without it the daemon still serves --dev plaintext keys; attestation (and so KMS)
 * is unavailable. *ret stays NULL then. */
static int nsm_setup(struct nsm_dev **ret) {
        int r;

        r = nsm_dev_open(NULL, ret);
        if (r == -ENOENT || r == -ENODEV || r == -ENXIO) {
                log_info("No NSM device %s, attestation is unavailable", NSM_DEV_PATH);
                return 0;
        }
        if (r < 0)
                return log_error_errno(r, "Failed to open %s: %m", NSM_DEV_PATH);
        log_debug("NSM device %s opened", NSM_DEV_PATH);
        return 0;
}

static int run(void) {
#if ENCLAVE_ACM_NSM_SIMULATOR
        _cleanup_(etok_sim_doc_freep) struct etok_sim_doc *sim_doc = NULL; /* freed after nsm */
#endif
        _cleanup_(nsm_dev_freep) struct nsm_dev *nsm = NULL;
        _cleanup_(etok_keystore_freep) struct etok_keystore *ks = NULL;
        _cleanup_(etok_server_freep) struct etok_server *srv = NULL;
        struct etok_server_config cfg = {
                .data_socket_mode = arg_socket_mode,
                .data_socket_gid = arg_socket_gid,
                .limits = {
                        .max_conns = arg_max_conns,
                        .max_conns_per_peer = arg_max_conns_per_peer,
                        .max_control_conns = arg_max_control_conns,
                        .hello_timeout_sec = arg_hello_timeout,
                        .frame_timeout_sec = arg_frame_timeout,
                        .idle_timeout_sec = arg_idle_timeout,
                },
        };
        struct etok_kms_config kms = { .proxy = arg_kms_proxy, .ca_file = arg_kms_ca };
        struct etok_dispatch d = { .dev = arg_dev, .kms = &kms };
        sigset_t mask;
        long cpus;
        int r, sig;

        if ((r = resolve(arg_data, "data", &cfg.data)) < 0 ||
            (r = resolve(arg_control, "control", &cfg.control)) < 0)
                return r;
        cpus = sysconf(_SC_NPROCESSORS_ONLN);
        cfg.busy_poll_usec = arg_busy_poll_usec >= 0              ? (unsigned) arg_busy_poll_usec
                             : cfg.data.family == TRANSPORT_VSOCK ? BUSY_POLL_DEFAULT_USEC
                                                                  : 0;
        cfg.workers = arg_workers ? arg_workers : (unsigned) MIN(MAX(cpus, 1L), (long) WORKERS_MAX);
        /* Over vsock every client is the parent's CID: one peer, whose bound is the total. */
        if (cfg.limits.max_conns_per_peer == 0)
                cfg.limits.max_conns_per_peer =
                        cfg.data.family == TRANSPORT_VSOCK ? arg_max_conns : MAX(arg_max_conns / 4, 1u);

#if ENCLAVE_ACM_NSM_SIMULATOR
        if (arg_nsm_simulator)
                r = nsm_sim_setup(&sim_doc, &nsm);
        else
#endif
                r = nsm_setup(&nsm);
        if (r < 0)
                return r;
        kms.nsm = nsm;
        d.nsm = nsm;

        r = etok_keystore_new(arg_max_tokens, &ks);
        if (r < 0)
                return log_error_errno(r, "Failed to create the keystore: %m");
        etok_keystore_set_grace(ks, arg_rotation_grace);
        d.keystore = ks;

        /* Workers inherit the mask: only this thread takes SIGTERM/SIGINT (and SIGHUP, which would
         * otherwise kill us without wiping or removing the sockets), through sigwait(). */
        (void) sigemptyset(&mask);
        (void) sigaddset(&mask, SIGTERM);
        (void) sigaddset(&mask, SIGINT);
        (void) sigaddset(&mask, SIGHUP);
        r = pthread_sigmask(SIG_BLOCK, &mask, NULL);
        if (r != 0)
                return log_error_errno(-r, "Failed to block signals: %m");
        (void) signal(SIGPIPE, SIG_IGN);

        r = etok_server_new(&d, &cfg, &srv);
        if (r < 0)
                return r;
        r = etok_server_start(srv);
        if (r < 0)
                return r;
        log_info("enclave-token %s ready: %u workers (busy poll %u us), up to %zu tokens, %u connections "
                 "(%u per peer, %u control)%s",
                 ENCLAVE_ACM_VERSION, cfg.workers, cfg.busy_poll_usec, arg_max_tokens, arg_max_conns,
                 cfg.limits.max_conns_per_peer, arg_max_control_conns, arg_dev ? ", DEVELOPMENT MODE" : "");

        /* Once a second, between signals: wipe retired token versions whose grace period is over, close
         * connections past their timeouts. */
        for (;;) {
                sig = sigtimedwait(&mask, NULL, &(struct timespec){ .tv_sec = 1 });
                if (sig < 0 && errno != EAGAIN && errno != EINTR)
                        return log_error_errno(negative_errno(), "sigtimedwait() failed: %m");
                if (sig < 0) {
                        int n = etok_keystore_expire(ks);

                        if (n > 0)
                                log_info("%d token(s) expired, keys wiped", n);
                        etok_server_sweep(srv);
                } else if (sig == SIGHUP)
                        log_info("Received SIGHUP, nothing to reload, ignoring");
                else
                        break;
        }
        log_info("Received %s, stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
        etok_server_stop(srv);
        srv = etok_server_free(srv); /* closes connections, removes socket files */
        ks = etok_keystore_free(ks); /* wipes every key */
        log_info("Stopped, keys wiped");
        return 0;
}

int main(int argc, char *argv[]) {
        int r;

        /* Before anything else holds a secret: no core dumps, no ptrace by other users. */
        if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
                log_error_errno(negative_errno(), "Failed to make the process non-dumpable: %m");
                return EXIT_FAILURE;
        }
        /* Before OpenSSL allocates anything: all of it, key copies in its caches included, in locked,
         * non-dumpable memory wiped on free. */
        r = ssl_heap_install();
        if (r < 0) {
                log_error_errno(r, "Failed to route OpenSSL's allocations to locked memory: %m");
                return EXIT_FAILURE;
        }
        r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;

        secret_set_strict(true);
        if (arg_dev)
                log_warning("WARNING: --dev: plaintext private keys are accepted on the control channel. "
                            "Never use this in production.");
        r = secure_heap_init();
        if (r < 0)
                return EXIT_FAILURE;
        r = run();
        if (CRYPTO_secure_malloc_initialized())
                (void) CRYPTO_secure_malloc_done();
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
