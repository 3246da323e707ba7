/* Signatures per second of etok_key_sign() in-process, with or without enclave-token's OpenSSL arena
 * (common/ssl-heap.c): what the arena costs, without the socket and the module around it. --stats adds
 * what the keystore does around each signature for the STATS counters (two monotonic clock reads and
 * etok_stats_op() on one counter set all threads share, as on one token): what the counters cost.
 * --hooks times those hooks alone (no signature), per call, on --threads threads sharing the counters.
 * usage: keybench [--arena] [--stats] [--seconds S] [--threads N] KEY.pem CERT.pem MECH...
 *        keybench --hooks [--threads N]
 * MECH: rsa-pss, ecdsa or eddsa, one per key/cert pair, e.g.
 *   keybench --arena tests/data/rsa2048.key.pem tests/data/rsa2048.crt.pem rsa-pss */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "enclave-token/key.h"
#include "enclave-token/stats.h"
#include "common/ssl-heap.h"

static double arg_seconds = 2;
static unsigned arg_threads = 1;
static struct etok_stats *arg_stats; /* --stats */

struct run {
        const struct etok_key *key;
        struct rpc_crypto_req req;
        double stop;
        unsigned long ops;
        double cpu; /* the thread's CPU seconds: less sensitive than ops/s to a shared machine's load */
        int r;
};

static double now(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static double cpu_now(void) {
        struct timespec ts;

        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static void *worker(void *p) {
        struct run *run = p;
        uint8_t out[RPC_SIG_MAX];
        double cpu0 = cpu_now();
        size_t n;

        while (now() < run->stop) {
                for (int i = 0; i < 16; i++) {
                        /* as crypt_locked() in enclave-token/keystore.c */
                        uint64_t t0 = arg_stats ? etok_stats_now_ns() : 0;

                        run->r = etok_key_sign(run->key, &run->req, out, sizeof(out), &n);
                        if (run->r < 0)
                                return NULL;
                        if (arg_stats)
                                etok_stats_op(arg_stats, 1, (enum rpc_mech) run->req.mech,
                                              etok_stats_now_ns() - t0);
                }
                run->ops += 16;
        }
        run->cpu = cpu_now() - cpu0;
        return NULL;
}

/* The counter hooks alone: what a signature pays for them, with all threads on one counter set. */
static void *hooks_worker(void *p) {
        unsigned long *ret_ps = p, n = 2000000;
        double cpu0 = cpu_now(); /* the thread's CPU time: a loaded machine's preemptions do not count */

        for (unsigned long i = 0; i < n; i++) {
                uint64_t t0 = etok_stats_now_ns();
                etok_stats_op(arg_stats, 1, RPC_MECH_ECDSA, etok_stats_now_ns() - t0);
        }
        *ret_ps = (unsigned long) ((cpu_now() - cpu0) * 1e12 / (double) n);
        return NULL;
}

static int bench_hooks(void) {
        unsigned long ps[64] = {};
        pthread_t th[64];

        if (!arg_stats && etok_stats_new(&arg_stats) < 0)
                return 1;
        for (unsigned i = 0; i < arg_threads; i++)
                if (pthread_create(&th[i], NULL, hooks_worker, &ps[i]) != 0)
                        return 1;
        for (unsigned i = 0; i < arg_threads; i++) {
                (void) pthread_join(th[i], NULL);
                printf("hooks    thread %u of %u: %.1f CPU ns per signature (2 clock reads + "
                       "etok_stats_op)\n",
                       i + 1, arg_threads, (double) ps[i] / 1000.0);
        }
        return 0;
}

static char *slurp(const char *path, size_t *ret_len) {
        FILE *f = fopen(path, "re");
        char *buf = NULL;
        size_t len = 0;

        if (!f)
                return NULL;
        buf = malloc(65536);
        if (buf)
                len = fread(buf, 1, 65536, f);
        fclose(f);
        *ret_len = len;
        return buf;
}

static int bench_one(const char *key_path, const char *cert_path, const char *mech, bool arena) {
        _cleanup_(etok_key_freep) struct etok_key *k = NULL;
        static uint8_t digest[32] = { 42 };
        struct run runs[64] = {};
        pthread_t th[64];
        size_t key_len = 0, cert_len = 0;
        char *key = slurp(key_path, &key_len), *cert = slurp(cert_path, &cert_len);
        struct rpc_add_key in = {
                .id = 1,
                .label = { (const uint8_t *) "bench", 5 },
                .key_pem = { (const uint8_t *) key, key_len },
                .chain_pem = { (const uint8_t *) cert, cert_len },
        };
        unsigned long total = 0;
        double start, cpu = 0;
        int r;

        if (!key || !cert)
                return -ENOENT;
        r = etok_key_new(&in, &k);
        OPENSSL_cleanse(key, key_len);
        free(key);
        free(cert);
        if (r < 0)
                return r;
        start = now();
        for (unsigned i = 0; i < arg_threads; i++) {
                runs[i] = (struct run){ .key = k, .stop = start + arg_seconds, .req.data = { digest, 32 } };
                runs[i].req.mech = strcmp(mech, "rsa-pss") == 0 ? RPC_MECH_RSA_PSS
                                   : strcmp(mech, "ecdsa") == 0 ? RPC_MECH_ECDSA
                                                                : RPC_MECH_EDDSA;
                runs[i].req.hash = RPC_HASH_SHA256;
                runs[i].req.salt_len = 32;
                if (pthread_create(&th[i], NULL, worker, &runs[i]) != 0)
                        return -EAGAIN;
        }
        for (unsigned i = 0; i < arg_threads; i++) {
                (void) pthread_join(th[i], NULL);
                if (runs[i].r < 0)
                        return runs[i].r;
                total += runs[i].ops;
                cpu += runs[i].cpu;
        }
        printf("%-8s %-6s %-8s threads %u  %9.0f sign/s  %8.2f CPU us/sign\n", mech,
               arena ? "arena" : "malloc", arg_stats ? "counters" : "none", arg_threads,
               (double) total / (now() - start), total ? cpu * 1e6 / (double) total : 0);
        return 0;
}

int main(int argc, char *argv[]) {
        bool arena = false, hooks = false;
        int i = 1, r;

        for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
                if (strcmp(argv[i], "--arena") == 0)
                        arena = true;
                else if (strcmp(argv[i], "--hooks") == 0)
                        hooks = true;
                else if (strcmp(argv[i], "--stats") == 0) {
                        if (!arg_stats && etok_stats_new(&arg_stats) < 0)
                                return 1;
                } else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
                        arg_seconds = strtod(argv[++i], NULL);
                else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
                        unsigned long n = strtoul(argv[++i], NULL, 10); /* MIN/MAX evaluate twice */

                        arg_threads = (unsigned) MIN(MAX(n, 1ul), 64ul);
                } else {
                        fprintf(stderr, "keybench: unknown option '%s'\n", argv[i]);
                        return 2;
                }
        }
        if (hooks)
                return bench_hooks();
        if ((argc - i) % 3 != 0 || argc == i) {
                fprintf(stderr, "usage: keybench [--arena] [--stats] [--seconds S] [--threads N] KEY CERT "
                                "MECH...\n");
                return 2;
        }
        if (arena && ssl_heap_install() < 0)
                return 1;
        if (CRYPTO_secure_malloc_init(1u << 20, 64) == 0)
                return 1;
        for (; i < argc; i += 3) {
                r = bench_one(argv[i], argv[i + 1], argv[i + 2], arena);
                if (r < 0) {
                        fprintf(stderr, "keybench: %s: %s\n", argv[i], strerror(-r));
                        return 1;
                }
        }
        return 0;
}
