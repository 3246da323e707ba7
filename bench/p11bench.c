/* Signing throughput and latency through enclave-acm-pkcs11.so next to in-process OpenSSL, plus the null
 * round trip. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <p11-kit/pkcs11.h>

#include "bench/bench-p11.h"
#include "common/cleanup-ssl.h"
#include "common/rpc-client.h"
#include "p11module/config.h"

#define MAX_THREADS 8
#define MAX_ROUNDS  15

enum kind { KIND_RSA_PSS, KIND_ECDSA, KIND_EDDSA };

struct bench_case {
        const char *token;
        const char *key_file;
        enum kind kind;
        EVP_PKEY *pkey;
};

struct result {
        double ops_per_sec;
        double p50_us;
        double p99_us;
        unsigned long errors;
        double cpu_client_us; /* CPU time per operation: this process (all threads) */
        double cpu_server_us; /* and enclave-token (--server-pid), -1 when not known */
};

struct worker {
        pthread_t thread;
        const struct bench_case *bc;
        bool in_process;
        CK_SLOT_ID slot;
        double *lat; /* microseconds */
        size_t n_lat;
        size_t cap;
        unsigned long errors;
};

static CK_FUNCTION_LIST_PTR p11;
static const char *arg_pin;
static double arg_seconds = 2.0;
static int arg_rounds = 1;
static int arg_server_pid;
static atomic_bool stop_flag;
static pthread_barrier_t start_barrier;
static const uint8_t digest32[32] = { 1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
                                      17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32 };

static double now_us(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return x < y ? -1 : x > y;
}

static int lat_push(struct worker *w, double us) {
        if (w->n_lat == w->cap) {
                size_t cap = w->cap ? w->cap * 2 : 65536;
                double *n = realloc(w->lat, cap * sizeof(double));
                if (!n)
                        return -ENOMEM;
                w->lat = n;
                w->cap = cap;
        }
        w->lat[w->n_lat++] = us;
        return 0;
}

/* ---- PKCS#11 side ---- */

static int p11_session(CK_SLOT_ID slot, CK_SESSION_HANDLE *ret_s, CK_OBJECT_HANDLE *ret_key) {
        CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
        CK_ATTRIBUTE tmpl[] = { { CKA_CLASS, &cls, sizeof(cls) } };
        CK_SESSION_HANDLE s;
        CK_ULONG found = 0;
        CK_RV rv;

        if (p11->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s) != CKR_OK)
                return -EIO;
        rv = p11->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR) arg_pin, strlen(arg_pin));
        if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN)
                return -EACCES;
        if (p11->C_FindObjectsInit(s, tmpl, 1) != CKR_OK ||
            p11->C_FindObjects(s, ret_key, 1, &found) != CKR_OK || p11->C_FindObjectsFinal(s) != CKR_OK ||
            found != 1)
                return -ENOKEY;
        *ret_s = s;
        return 0;
}

static CK_RV p11_sign_once(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, enum kind kind) {
        CK_RSA_PKCS_PSS_PARAMS pss = { CKM_SHA256, CKG_MGF1_SHA256, 32 };
        CK_MECHANISM mech = { CKM_RSA_PKCS_PSS, &pss, sizeof(pss) };
        uint8_t sig[1024];
        CK_ULONG sig_len = sizeof(sig);
        CK_ULONG data_len = 32;
        CK_RV rv;

        if (kind == KIND_ECDSA)
                mech = (CK_MECHANISM){ CKM_ECDSA, NULL, 0 };
        else if (kind == KIND_EDDSA)
                mech = (CK_MECHANISM){ CKM_EDDSA, NULL, 0 };
        rv = p11->C_SignInit(s, &mech, key);
        if (rv != CKR_OK)
                return rv;
        return p11->C_Sign(s, (CK_BYTE_PTR) digest32, data_len, sig, &sig_len);
}

/* ---- in-process OpenSSL side: the same operation on the same key ---- */

static int ossl_sign_once(EVP_PKEY *pkey, enum kind kind) {
        uint8_t sig[1024];
        size_t sig_len = sizeof(sig);
        int ok;

        if (kind == KIND_EDDSA) {
                _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *md = EVP_MD_CTX_new();
                if (!md || EVP_DigestSignInit(md, NULL, NULL, NULL, pkey) <= 0)
                        return -EIO;
                ok = EVP_DigestSign(md, sig, &sig_len, digest32, sizeof(digest32));
        } else {
                _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pkey, NULL);
                if (!ctx || EVP_PKEY_sign_init(ctx) <= 0)
                        return -EIO;
                if (kind == KIND_RSA_PSS && (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) <= 0 ||
                                             EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) <= 0 ||
                                             EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()) <= 0 ||
                                             EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, 32) <= 0))
                        return -EIO;
                ok = EVP_PKEY_sign(ctx, sig, &sig_len, digest32, sizeof(digest32));
        }
        return ok > 0 ? 0 : -EIO;
}

static void *worker_main(void *p) {
        struct worker *w = p;
        CK_SESSION_HANDLE s = 0;
        CK_OBJECT_HANDLE key = 0;

        if (!w->in_process && p11_session(w->slot, &s, &key) < 0) {
                w->errors++;
                pthread_barrier_wait(&start_barrier);
                return NULL;
        }
        pthread_barrier_wait(&start_barrier);
        while (!atomic_load_explicit(&stop_flag, memory_order_relaxed)) {
                double t0 = now_us();
                int r = w->in_process ? ossl_sign_once(w->bc->pkey, w->bc->kind)
                                      : (p11_sign_once(s, key, w->bc->kind) == CKR_OK ? 0 : -EIO);
                if (r < 0)
                        w->errors++;
                else if (lat_push(w, now_us() - t0) < 0)
                        break;
        }
        if (!w->in_process)
                (void) p11->C_CloseSession(s);
        return NULL;
}

/* CPU time (user + system) of this process, all threads, in microseconds. */
static double cpu_self_us(void) {
        struct rusage ru;

        if (getrusage(RUSAGE_SELF, &ru) < 0)
                return 0;
        return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 + ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}

/* CPU time of another process, all threads, in microseconds (clock-tick resolution); -1 unknown. */
static double cpu_pid_us(int pid) {
        char path[64], buf[1024], *p;
        unsigned long long utime, stime;
        FILE *f;
        size_t n;

        if (pid <= 0)
                return -1;
        snprintf(path, sizeof(path), "/proc/%d/stat", pid);
        f = fopen(path, "re");
        if (!f)
                return -1;
        n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        p = strrchr(buf, ')'); /* the command name may hold spaces */
        /* after ") ": state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime stime
         */
        if (!p ||
            sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2)
                return -1;
        return (double) (utime + stime) * 1e6 / (double) sysconf(_SC_CLK_TCK);
}

static void summarize(double *all, size_t n, double secs, struct result *res) {
        qsort(all, n, sizeof(double), cmp_double);
        res->ops_per_sec = n / secs;
        res->p50_us = n ? all[n / 2] : 0;
        res->p99_us = n ? all[(size_t) (n * 0.99)] : 0;
}

static int run(const struct bench_case *bc, CK_SLOT_ID slot, bool in_process, int threads,
               struct result *res) {
        struct worker w[MAX_THREADS] = {};
        struct timespec pause = { (time_t) arg_seconds,
                                  (long) ((arg_seconds - (time_t) arg_seconds) * 1e9) };
        double t0, secs, *all, cpu0, srv0, srv1;
        size_t total = 0;

        atomic_store(&stop_flag, false);
        pthread_barrier_init(&start_barrier, NULL, threads + 1);
        for (int i = 0; i < threads; i++) {
                w[i] = (struct worker){ .bc = bc, .in_process = in_process, .slot = slot };
                if (pthread_create(&w[i].thread, NULL, worker_main, &w[i]) != 0)
                        return -errno;
        }
        pthread_barrier_wait(&start_barrier);
        t0 = now_us();
        cpu0 = cpu_self_us();
        srv0 = in_process ? -1 : cpu_pid_us(arg_server_pid);
        nanosleep(&pause, NULL);
        atomic_store(&stop_flag, true);
        for (int i = 0; i < threads; i++)
                pthread_join(w[i].thread, NULL);
        secs = (now_us() - t0) / 1e6;
        cpu0 = cpu_self_us() - cpu0;
        srv1 = srv0 < 0 ? -1 : cpu_pid_us(arg_server_pid);
        pthread_barrier_destroy(&start_barrier);

        for (int i = 0; i < threads; i++)
                total += w[i].n_lat;
        all = malloc((total ? total : 1) * sizeof(double));
        if (!all)
                return -ENOMEM;
        total = 0;
        res->errors = 0;
        for (int i = 0; i < threads; i++) {
                memcpy(all + total, w[i].lat, w[i].n_lat * sizeof(double));
                total += w[i].n_lat;
                res->errors += w[i].errors;
                free(w[i].lat);
        }
        summarize(all, total, secs, res);
        res->cpu_client_us = total ? cpu0 / (double) total : 0;
        res->cpu_server_us = srv0 >= 0 && srv1 >= 0 && total ? (srv1 - srv0) / (double) total : -1;
        free(all);
        return 0;
}

static int cmp_result(const void *a, const void *b) {
        double x = ((const struct result *) a)->ops_per_sec, y = ((const struct result *) b)->ops_per_sec;
        return (x > y) - (x < y);
}

/* One thread count: arg_rounds rounds of in-process then module, back to back, so a load that drifts
 * meets both alike. The rows show each path's median round; the ratio is the median of the rounds'
 * own ratios. */
static int run_rounds(const struct bench_case *bc, CK_SLOT_ID slot, int threads, struct result *ret_ossl,
                      struct result *ret_mod, double *ret_ratio) {
        struct result ossl[MAX_ROUNDS], mod[MAX_ROUNDS];
        double ratio[MAX_ROUNDS];

        for (int r = 0; r < arg_rounds; r++) {
                if (run(bc, slot, true, threads, &ossl[r]) < 0 || run(bc, slot, false, threads, &mod[r]) < 0)
                        return -1;
                ratio[r] = ossl[r].ops_per_sec > 0 ? mod[r].ops_per_sec / ossl[r].ops_per_sec : 0;
        }
        qsort(ossl, arg_rounds, sizeof(ossl[0]), cmp_result);
        qsort(mod, arg_rounds, sizeof(mod[0]), cmp_result);
        qsort(ratio, arg_rounds, sizeof(ratio[0]), cmp_double);
        *ret_ossl = ossl[arg_rounds / 2];
        *ret_mod = mod[arg_rounds / 2];
        for (int r = 0; r < arg_rounds; r++)
                if (ossl[r].errors || mod[r].errors)
                        ret_mod->errors = 1;
        *ret_ratio = ratio[arg_rounds / 2];
        return 0;
}

/* ENCLAVE_ACM_BUSY_POLL_USEC as the module reads it (p11module/config.c). */
static unsigned busy_poll_usec(void) {
        struct p11_config cfg;
        unsigned usec;

        if (p11_config_load(&cfg) < 0)
                return P11_DEFAULT_BUSY_POLL_USEC;
        usec = cfg.busy_poll_usec;
        p11_config_done(&cfg);
        return usec;
}

static int bench_ping(const char *address, int count) {
        _cleanup_(rpc_client_freep) struct rpc_client *c = NULL;
        struct transport_addr a;
        struct result res;
        double *lat = calloc(count, sizeof(double));
        double t0, cpu0, srv0;
        char cpu[32];
        int r;

        if (!lat)
                return -ENOMEM;
        r = transport_addr_parse(address, &a);
        if (r >= 0)
                r = rpc_client_open(&a, RPC_CHANNEL_DATA, 5000, "p11bench", &c);
        if (r < 0) {
                fprintf(stderr, "p11bench: cannot reach '%s': %s\n", address, strerror(-r));
                free(lat);
                return r;
        }
        /* The module's client, polled as the module polls it. */
        rpc_client_set_busy_poll(c, busy_poll_usec());
        t0 = now_us();
        cpu0 = cpu_self_us();
        srv0 = cpu_pid_us(arg_server_pid);
        for (int i = 0; i < count; i++) {
                double t = now_us();
                r = rpc_client_call_msg(c, RPC_CALL_PING, NULL, NULL);
                if (r < 0) {
                        free(lat);
                        return r;
                }
                lat[i] = now_us() - t;
        }
        summarize(lat, count, (now_us() - t0) / 1e6, &res);
        cpu0 = (cpu_self_us() - cpu0) / count;
        if (srv0 >= 0)
                snprintf(cpu, sizeof(cpu), "%.1f+%.1f", cpu0, (cpu_pid_us(arg_server_pid) - srv0) / count);
        else
                snprintf(cpu, sizeof(cpu), "%.1f", cpu0);
        printf("%-10s %-12s %7s %10.0f %9.1f %9.1f %-13s\n", "ping", "round-trip", "1", res.ops_per_sec,
               res.p50_us, res.p99_us, cpu);
        free(lat);
        return 0;
}

static int parse_case(char *spec, struct bench_case *bc) {
        char *kind = strrchr(spec, ':'), *file;
        _cleanup_fclose_ FILE *f = NULL;

        if (!kind)
                return -EINVAL;
        *kind++ = '\0';
        file = strchr(spec, ':');
        if (!file)
                return -EINVAL;
        *file++ = '\0';
        bc->token = spec;
        bc->key_file = file;
        if (strcmp(kind, "rsa-pss") == 0)
                bc->kind = KIND_RSA_PSS;
        else if (strcmp(kind, "ecdsa") == 0)
                bc->kind = KIND_ECDSA;
        else if (strcmp(kind, "eddsa") == 0)
                bc->kind = KIND_EDDSA;
        else
                return -EINVAL;
        f = fopen(file, "re");
        if (!f)
                return -errno;
        bc->pkey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
        return bc->pkey ? 0 : -EBADMSG;
}

static void usage(void) {
        fprintf(stderr,
                "usage: p11bench --module SO --data ADDRESS --pin PIN [--seconds S] [--threads 1,2,4,8]\n"
                "                [--rounds N] [--pings N] [--server-pid PID]\n"
                "                TOKEN:KEY.pem:{rsa-pss|ecdsa|eddsa}...\n");
}

int main(int argc, char **argv) {
        static const struct option opts[] = { { "module", required_argument, NULL, 'm' },
                                              { "data", required_argument, NULL, 'd' },
                                              { "pin", required_argument, NULL, 'p' },
                                              { "seconds", required_argument, NULL, 's' },
                                              { "threads", required_argument, NULL, 't' },
                                              { "pings", required_argument, NULL, 'n' },
                                              { "rounds", required_argument, NULL, 'r' },
                                              { "server-pid", required_argument, NULL, 'P' },
                                              {} };
        const char *module = NULL, *data = NULL;
        int thread_counts[MAX_THREADS] = { 1, 2, 4, 8 }, n_counts = 4, pings = 20000, c;

        while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0) {
                switch (c) {
                case 'm': module = optarg; break;
                case 'd': data = optarg; break;
                case 'p': arg_pin = optarg; break;
                case 's': arg_seconds = strtod(optarg, NULL); break;
                case 'n': pings = atoi(optarg); break;
                case 'r': arg_rounds = atoi(optarg); break;
                case 'P': arg_server_pid = atoi(optarg); break;
                case 't': {
                        char *tok, *save = NULL;
                        n_counts = 0;
                        for (tok = strtok_r(optarg, ",", &save); tok && n_counts < MAX_THREADS;
                             tok = strtok_r(NULL, ",", &save)) {
                                int t = atoi(tok);
                                if (t < 1 || t > MAX_THREADS)
                                        return usage(), 2;
                                thread_counts[n_counts++] = t;
                        }
                        break;
                }
                default: return usage(), 2;
                }
        }
        if (!module || !data || !arg_pin || optind >= argc || arg_seconds <= 0 || pings < 1 ||
            arg_rounds < 1 || arg_rounds > MAX_ROUNDS)
                return usage(), 2;

        if (arg_rounds > 1)
                printf("# each row: the median of %d rounds of %g s, in-process and module alternating;"
                       " vs in-process: the median of the rounds' ratios\n",
                       arg_rounds, arg_seconds);
        printf("# cpu/op: CPU microseconds per operation, this process (all threads)%s\n",
               arg_server_pid > 0 ? " + enclave-token" : "");
        printf("%-10s %-12s %7s %10s %9s %9s %-13s %s\n", "key", "path", "threads", "ops/s", "p50(us)",
               "p99(us)", "cpu/op(us)", "vs in-process, vs first row");
        if (bench_ping(data, pings) < 0)
                return 1;
        if (setenv("ENCLAVE_ACM_ADDRESS", data, 1) < 0 || bench_p11_load("p11bench", module, &p11) < 0)
                return 1;
        for (int i = optind; i < argc; i++) {
                struct bench_case bc = {};
                CK_SLOT_ID slot;
                if (parse_case(argv[i], &bc) < 0 || bench_p11_find_slot(p11, bc.token, &slot) < 0) {
                        fprintf(stderr, "p11bench: bad case or token not found: '%s'\n", argv[i]);
                        return 1;
                }
                double mod_one = 0;
                for (int k = 0; k < n_counts; k++) {
                        struct result mod, ossl;
                        double ratio;
                        if (run_rounds(&bc, slot, thread_counts[k], &ossl, &mod, &ratio) < 0)
                                return 1;
                        char cpu[32];
                        printf("%-10s %-12s %7d %10.0f %9.1f %9.1f %-13.1f\n", bc.token, "openssl",
                               thread_counts[k], ossl.ops_per_sec, ossl.p50_us, ossl.p99_us,
                               ossl.cpu_client_us);
                        if (mod.cpu_server_us >= 0)
                                snprintf(cpu, sizeof(cpu), "%.1f+%.1f", mod.cpu_client_us,
                                         mod.cpu_server_us);
                        else
                                snprintf(cpu, sizeof(cpu), "%.1f", mod.cpu_client_us);
                        if (k == 0)
                                mod_one = mod.ops_per_sec;
                        printf("%-10s %-12s %7d %10.0f %9.1f %9.1f %-13s %.2fx   %.2fx%s\n", bc.token,
                               "module", thread_counts[k], mod.ops_per_sec, mod.p50_us, mod.p99_us, cpu,
                               ratio, mod_one > 0 ? mod.ops_per_sec / mod_one : 0,
                               mod.errors ? "  (errors!)" : "");
                }
                EVP_PKEY_free(bc.pkey);
        }
        (void) p11->C_Finalize(NULL);
        return 0;
}
