/* Soak load through enclave-acm-pkcs11.so (bench/soak.sh): THREADS threads sign for TIME seconds with
 * every token named, in turn, with two mechanisms per key type (RSA: PSS over a SHA-256 digest and
 * CKM_SHA256_RSA_PKCS; EC: raw ECDSA over a digest and CKM_ECDSA_SHA256; Ed25519: CKM_EDDSA), over
 * random data of 1..512 bytes, and verify every signature in-process against the public key of the
 * token's certificate. A thread reopens its sessions every --reopen seconds (so it follows key
 * rotations, as a reloaded web server worker does) and after any failed call.
 *
 * Figures: --stats FILE is rewritten once a second ("ops= errors= badsig= reopens= heap_kB="), --events FILE
 * gets one line per failed call ("UNIX_MS label what CKR") for bench/soak.sh to set against the faults
 * it injected. A wrong signature (badsig) is never expected. PINs come from --pin-dir DIR/LABEL
 * (never from the command line, which other users can read) and are never printed. */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <p11-kit/pkcs11.h>

#include "bench/bench-p11.h"
#include "common/cleanup-ssl.h"
#include "common/cleanup.h"

#define MAX_TOKENS  8
#define MAX_THREADS 32
#define PIN_MAX     128
#define MAX_DATA    512
#define EVENTS_MAX  20000 /* lines per process; further failures are only counted */
#define SIG_MAX     1024
#define CERT_MAX    16384

enum kind { KIND_RSA, KIND_EC, KIND_ED25519 };

struct soak_token {
        char label[33];
        char pin[PIN_MAX];
        size_t pin_len;
        atomic_ulong ops, errors, badsig;
};

/* One thread's session on one token. */
struct soak_session {
        bool open;
        CK_SESSION_HANDLE s;
        CK_OBJECT_HANDLE key;
        enum kind kind;
        EVP_PKEY *pub; /* from the certificate with the key's CKA_ID */
};

static CK_FUNCTION_LIST_PTR p11;
static struct soak_token tokens[MAX_TOKENS];
static size_t n_tokens;
static double arg_seconds = 60;
static double arg_rate; /* per thread, 0: unpaced */
static double arg_reopen = 10;
static const char *arg_stats, *arg_events;
static atomic_bool stop_flag;
static atomic_ulong reopens;
static pthread_mutex_t events_lock = PTHREAD_MUTEX_INITIALIZER;
static FILE *events;
static unsigned long n_events;

static double now_mono(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec + ts.tv_nsec / 1e9;
}

static unsigned long long now_unix_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (unsigned long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void event(const struct soak_token *t, const char *what, CK_RV rv) {
        pthread_mutex_lock(&events_lock);
        if (events && n_events < EVENTS_MAX) {
                fprintf(events, "%llu %s %s 0x%lx\n", now_unix_ms(), t->label, what, (unsigned long) rv);
                fflush(events);
        }
        n_events++;
        pthread_mutex_unlock(&events_lock);
}

static uint64_t xorshift(uint64_t *s) {
        uint64_t x = *s;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        return *s = x;
}

/* ---- PKCS#11 ---- */

static CK_RV find_one(CK_SESSION_HANDLE s, CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_OBJECT_HANDLE *ret) {
        CK_ULONG found = 0;
        CK_RV rv;

        rv = p11->C_FindObjectsInit(s, tmpl, n);
        if (rv != CKR_OK)
                return rv;
        rv = p11->C_FindObjects(s, ret, 1, &found);
        CK_RV rv2 = p11->C_FindObjectsFinal(s);
        if (rv == CKR_OK)
                rv = rv2;
        return rv == CKR_OK && found != 1 ? CKR_OBJECT_HANDLE_INVALID : rv;
}

static void session_close(struct soak_session *ss) {
        if (ss->open)
                (void) p11->C_CloseSession(ss->s);
        EVP_PKEY_free(ss->pub);
        *ss = (struct soak_session){};
}

/* The certificate's public key, from its DER. */
static EVP_PKEY *cert_pubkey(const uint8_t *der, size_t len) {
        const unsigned char *p = der;
        _cleanup_(X509_freep) X509 *x = d2i_X509(NULL, &p, (long) len);

        return x ? X509_get_pubkey(x) : NULL;
}

static CK_RV session_setup(const struct soak_token *t, struct soak_session *ss, const char **ret_what) {
        CK_OBJECT_CLASS priv = CKO_PRIVATE_KEY, cert = CKO_CERTIFICATE;
        CK_ATTRIBUTE tpriv[] = { { CKA_CLASS, &priv, sizeof(priv) } };
        uint8_t id[64], der[CERT_MAX];
        CK_KEY_TYPE kt = CKK_VENDOR_DEFINED;
        CK_ATTRIBUTE kattrs[] = { { CKA_ID, id, sizeof(id) }, { CKA_KEY_TYPE, &kt, sizeof(kt) } };
        CK_ATTRIBUTE cattr = { CKA_VALUE, der, sizeof(der) };
        CK_ATTRIBUTE tcert[] = { { CKA_CLASS, &cert, sizeof(cert) }, { CKA_ID, id, 0 } };
        CK_OBJECT_HANDLE c;
        CK_SLOT_ID slot;
        CK_RV rv;

        *ret_what = "slot";
        if (bench_p11_find_slot(p11, t->label, &slot) < 0)
                return CKR_TOKEN_NOT_PRESENT;
        *ret_what = "open";
        rv = p11->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &ss->s);
        if (rv != CKR_OK)
                return rv;
        ss->open = true;
        *ret_what = "login";
        rv = p11->C_Login(ss->s, CKU_USER, (CK_UTF8CHAR_PTR) t->pin, t->pin_len);
        if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN)
                return rv;
        *ret_what = "find-key";
        rv = find_one(ss->s, tpriv, ELEMENTSOF(tpriv), &ss->key);
        if (rv == CKR_OK)
                rv = p11->C_GetAttributeValue(ss->s, ss->key, kattrs, ELEMENTSOF(kattrs));
        if (rv != CKR_OK)
                return rv;
        if (kt == CKK_RSA)
                ss->kind = KIND_RSA;
        else if (kt == CKK_EC)
                ss->kind = KIND_EC;
        else if (kt == CKK_EC_EDWARDS)
                ss->kind = KIND_ED25519;
        else
                return CKR_KEY_TYPE_INCONSISTENT;
        *ret_what = "find-cert";
        tcert[1].ulValueLen = kattrs[0].ulValueLen;
        rv = find_one(ss->s, tcert, ELEMENTSOF(tcert), &c);
        if (rv == CKR_OK)
                rv = p11->C_GetAttributeValue(ss->s, c, &cattr, 1);
        if (rv != CKR_OK)
                return rv;
        ss->pub = cert_pubkey(der, cattr.ulValueLen);
        return ss->pub ? CKR_OK : CKR_DATA_INVALID;
}

/* Opens a session on the token, logs in, finds its private key and the certificate with the same
 * CKA_ID. On failure *ret_what says which step. */
static CK_RV session_open(const struct soak_token *t, struct soak_session *ss, const char **ret_what) {
        CK_RV rv;

        session_close(ss);
        rv = session_setup(t, ss, ret_what);
        if (rv != CKR_OK)
                session_close(ss);
        return rv;
}

/* ---- verification, in-process ---- */

static bool verify_digest(EVP_PKEY *pub, bool pss, const uint8_t *sig, size_t sig_len, const uint8_t *dgst) {
        _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pub, NULL);

        if (!ctx || EVP_PKEY_verify_init(ctx) <= 0 || EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) <= 0)
                return false;
        if (pss && (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) <= 0 ||
                    EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()) <= 0 ||
                    EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, 32) <= 0))
                return false;
        return EVP_PKEY_verify(ctx, sig, sig_len, dgst, 32) == 1;
}

static bool verify_data(EVP_PKEY *pub, const EVP_MD *md, const uint8_t *sig, size_t sig_len,
                        const uint8_t *data, size_t len) {
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = EVP_MD_CTX_new();

        return ctx && EVP_DigestVerifyInit(ctx, NULL, md, NULL, pub) > 0 &&
               EVP_DigestVerify(ctx, sig, sig_len, data, len) == 1;
}

/* PKCS#11 ECDSA signatures are r || s; OpenSSL verifies DER. */
static bool verify_ecdsa(EVP_PKEY *pub, const uint8_t *sig, size_t sig_len, const uint8_t *dgst) {
        _cleanup_(ECDSA_SIG_freep) ECDSA_SIG *es = ECDSA_SIG_new();
        unsigned char *der = NULL;
        BIGNUM *r, *s;
        int der_len;
        bool ok;

        if (!es || sig_len == 0 || sig_len % 2 != 0)
                return false;
        r = BN_bin2bn(sig, (int) (sig_len / 2), NULL);
        s = BN_bin2bn(sig + sig_len / 2, (int) (sig_len / 2), NULL);
        if (!r || !s || ECDSA_SIG_set0(es, r, s) != 1) {
                BN_free(r);
                BN_free(s);
                return false;
        }
        der_len = i2d_ECDSA_SIG(es, &der);
        if (der_len <= 0)
                return false;
        _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pub, NULL);
        ok = ctx && EVP_PKEY_verify_init(ctx) > 0 && EVP_PKEY_verify(ctx, der, der_len, dgst, 32) == 1;
        OPENSSL_free(der);
        return ok;
}

/* One signature with mechanism variant v (0 or 1) of the session's key type, then its check. Returns
 * CKR_OK, the failing CK_RV (*ret_what "sign"), or CKR_OK with *ret_bad set on a wrong signature. */
static CK_RV sign_one(struct soak_session *ss, unsigned v, uint64_t *rng, bool *ret_bad) {
        CK_RSA_PKCS_PSS_PARAMS pss = { CKM_SHA256, CKG_MGF1_SHA256, 32 };
        CK_MECHANISM mech;
        uint8_t data[MAX_DATA], dgst[32], sig[SIG_MAX];
        size_t len = 1 + xorshift(rng) % MAX_DATA;
        CK_ULONG sig_len = sizeof(sig);
        bool digest_in, ok;
        CK_RV rv;

        for (size_t i = 0; i < len; i += 8) {
                uint64_t x = xorshift(rng);
                memcpy(data + i, &x, MIN(8, len - i));
        }
        if (EVP_Digest(data, len, dgst, NULL, EVP_sha256(), NULL) != 1)
                return CKR_HOST_MEMORY;
        switch (ss->kind) {
        case KIND_RSA:
                mech = v ? (CK_MECHANISM){ CKM_SHA256_RSA_PKCS, NULL, 0 }
                         : (CK_MECHANISM){ CKM_RSA_PKCS_PSS, &pss, sizeof(pss) };
                digest_in = !v;
                break;
        case KIND_EC:
                mech = v ? (CK_MECHANISM){ CKM_ECDSA_SHA256, NULL, 0 }
                         : (CK_MECHANISM){ CKM_ECDSA, NULL, 0 };
                digest_in = !v;
                break;
        default:
                mech = (CK_MECHANISM){ CKM_EDDSA, NULL, 0 };
                digest_in = false;
                break;
        }
        rv = p11->C_SignInit(ss->s, &mech, ss->key);
        if (rv != CKR_OK)
                return rv;
        rv = p11->C_Sign(ss->s, digest_in ? dgst : data, digest_in ? 32 : len, sig, &sig_len);
        if (rv != CKR_OK)
                return rv;
        switch (ss->kind) {
        case KIND_RSA:
                ok = v ? verify_data(ss->pub, EVP_sha256(), sig, sig_len, data, len)
                       : verify_digest(ss->pub, true, sig, sig_len, dgst);
                break;
        case KIND_EC: ok = verify_ecdsa(ss->pub, sig, sig_len, dgst); break;
        default: ok = verify_data(ss->pub, NULL, sig, sig_len, data, len); break;
        }
        *ret_bad = !ok;
        return CKR_OK;
}

static void sleep_until(double t) {
        double d = t - now_mono();
        if (d > 0) {
                struct timespec ts = { (time_t) d, (long) ((d - (time_t) d) * 1e9) };
                nanosleep(&ts, NULL);
        }
}

static void *worker_main(void *arg) {
        struct soak_session ss[MAX_TOKENS] = {};
        uint64_t rng = 0x9e3779b97f4a7c15ULL ^ ((uint64_t) (uintptr_t) arg * 0x2545F4914F6CDD1DULL) ^
                       (uint64_t) getpid() << 32;
        double reopen_at = now_mono() + arg_reopen, next = now_mono();
        unsigned long n = 0;

        while (!atomic_load_explicit(&stop_flag, memory_order_relaxed)) {
                size_t i = n % n_tokens;
                struct soak_token *t = &tokens[i];
                const char *what = "sign";
                bool bad = false;
                CK_RV rv = CKR_OK;

                if (now_mono() >= reopen_at) {
                        for (size_t k = 0; k < n_tokens; k++)
                                session_close(&ss[k]);
                        atomic_fetch_add(&reopens, 1);
                        reopen_at = now_mono() + arg_reopen;
                }
                if (!ss[i].open)
                        rv = session_open(t, &ss[i], &what);
                if (rv == CKR_OK) {
                        what = "sign";
                        rv = sign_one(&ss[i], (unsigned) (n / n_tokens) % 2, &rng, &bad);
                }
                if (rv != CKR_OK) {
                        atomic_fetch_add(&t->errors, 1);
                        event(t, what, rv);
                        session_close(&ss[i]);
                        /* A failed call was bounded by the module's timeout; do not spin on errors. */
                        sleep_until(now_mono() + 0.05);
                } else if (bad) {
                        atomic_fetch_add(&t->badsig, 1);
                        event(t, "verify", CKR_SIGNATURE_INVALID);
                } else
                        atomic_fetch_add(&t->ops, 1);
                n++;
                if (arg_rate > 0) {
                        double now = now_mono();
                        next += 1.0 / arg_rate;
                        if (next < now - 1.0) /* fell far behind (a fault): do not burst to catch up */
                                next = now;
                        sleep_until(next);
                }
        }
        for (size_t k = 0; k < n_tokens; k++)
                session_close(&ss[k]);
        return NULL;
}

static void totals(unsigned long *ops, unsigned long *errors, unsigned long *badsig) {
        *ops = *errors = *badsig = 0;
        for (size_t i = 0; i < n_tokens; i++) {
                *ops += atomic_load(&tokens[i].ops);
                *errors += atomic_load(&tokens[i].errors);
                *badsig += atomic_load(&tokens[i].badsig);
        }
}

static void write_stats(void) {
        _cleanup_free_ char *tmp = NULL;
        unsigned long ops, errors, badsig;
        FILE *f;

        if (!arg_stats || asprintf(&tmp, "%s.tmp", arg_stats) < 0)
                return;
        f = fopen(tmp, "we");
        if (!f)
                return;
        totals(&ops, &errors, &badsig);
        /* heap_kB: what malloc has handed out and not got back (every arena, mmap()ed blocks too), to
         * tell a growing RSS made of live allocations from one made of freed but unreturned memory */
        struct mallinfo2 mi = mallinfo2();
        fprintf(f, "unix_ms=%llu ops=%lu errors=%lu badsig=%lu reopens=%lu heap_kB=%zu\n", now_unix_ms(),
                ops, errors, badsig, atomic_load(&reopens), (mi.uordblks + mi.hblkhd) / 1024);
        for (size_t i = 0; i < n_tokens; i++)
                fprintf(f, "token=%s ops=%lu errors=%lu badsig=%lu\n", tokens[i].label,
                        atomic_load(&tokens[i].ops), atomic_load(&tokens[i].errors),
                        atomic_load(&tokens[i].badsig));
        if (fclose(f) == 0)
                (void) rename(tmp, arg_stats);
}

static int load_pin(const char *dir, struct soak_token *t) {
        _cleanup_free_ char *path = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        size_t n;

        if (asprintf(&path, "%s/%s", dir, t->label) < 0)
                return -ENOMEM;
        f = fopen(path, "re");
        if (!f)
                return -errno;
        n = fread(t->pin, 1, sizeof(t->pin) - 1, f);
        while (n > 0 && (t->pin[n - 1] == '\n' || t->pin[n - 1] == '\r'))
                n--;
        if (n == 0)
                return -EBADMSG;
        t->pin_len = n;
        return 0;
}

static void on_signal(int sig) {
        (void) sig;
        atomic_store(&stop_flag, true);
}

static void usage(void) {
        fprintf(stderr,
                "usage: p11soak --module SO --pin-dir DIR [--seconds S] [--threads N] [--rate OPS]\n"
                "               [--reopen SECS] [--stats FILE] [--events FILE] LABEL...\n"
                "  (the module finds the token through ENCLAVE_ACM_ADDRESS or ENCLAVE_ACM_ADDRESS_FILE)\n");
}

int main(int argc, char **argv) {
        static const struct option opts[] = { { "module", required_argument, NULL, 'm' },
                                              { "pin-dir", required_argument, NULL, 'p' },
                                              { "seconds", required_argument, NULL, 's' },
                                              { "threads", required_argument, NULL, 't' },
                                              { "rate", required_argument, NULL, 'r' },
                                              { "reopen", required_argument, NULL, 'o' },
                                              { "stats", required_argument, NULL, 'S' },
                                              { "events", required_argument, NULL, 'e' },
                                              {} };
        const char *module = NULL, *pin_dir = NULL;
        pthread_t th[MAX_THREADS];
        int n_threads = 2, c;
        unsigned long ops, errors, badsig;
        double t0, end;

        while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0) {
                switch (c) {
                case 'm': module = optarg; break;
                case 'p': pin_dir = optarg; break;
                case 's': arg_seconds = strtod(optarg, NULL); break;
                case 't': n_threads = atoi(optarg); break;
                case 'r': arg_rate = strtod(optarg, NULL); break;
                case 'o': arg_reopen = strtod(optarg, NULL); break;
                case 'S': arg_stats = optarg; break;
                case 'e': arg_events = optarg; break;
                default: return usage(), 2;
                }
        }
        if (!module || !pin_dir || optind >= argc || argc - optind > MAX_TOKENS || n_threads < 1 ||
            n_threads > MAX_THREADS || !(arg_seconds > 0) || arg_rate < 0 || !(arg_reopen > 0))
                return usage(), 2;
        for (int i = optind; i < argc; i++) {
                struct soak_token *t = &tokens[n_tokens++];
                if (strlen(argv[i]) >= sizeof(t->label)) {
                        fprintf(stderr, "p11soak: label too long: '%s'\n", argv[i]);
                        return 2;
                }
                strcpy(t->label, argv[i]);
                int r = load_pin(pin_dir, t);
                if (r < 0) {
                        fprintf(stderr, "p11soak: no PIN for '%s' in %s: %s\n", t->label, pin_dir,
                                strerror(-r));
                        return 1;
                }
        }
        if (arg_events) {
                events = fopen(arg_events, "ae");
                if (!events) {
                        fprintf(stderr, "p11soak: cannot open '%s': %m\n", arg_events);
                        return 1;
                }
        }
        signal(SIGTERM, on_signal);
        signal(SIGINT, on_signal);
        if (bench_p11_load("p11soak", module, &p11) < 0)
                return 1;

        t0 = now_mono();
        end = t0 + arg_seconds;
        for (int i = 0; i < n_threads; i++)
                if (pthread_create(&th[i], NULL, worker_main, (void *) (uintptr_t) (i + 1)) != 0) {
                        fprintf(stderr, "p11soak: cannot start thread %d\n", i);
                        atomic_store(&stop_flag, true);
                        n_threads = i;
                        break;
                }
        while (!atomic_load(&stop_flag) && now_mono() < end) {
                write_stats();
                sleep_until(MIN(end, now_mono() + 1.0));
        }
        atomic_store(&stop_flag, true);
        for (int i = 0; i < n_threads; i++)
                pthread_join(th[i], NULL);
        write_stats();
        totals(&ops, &errors, &badsig);
        printf("p11soak: %lu signatures verified, %lu failed calls, %lu wrong signatures, %lu reopens in "
               "%.1f s\n",
               ops, errors, badsig, atomic_load(&reopens), now_mono() - t0);
        (void) p11->C_Finalize(NULL);
        for (size_t i = 0; i < n_tokens; i++)
                OPENSSL_cleanse(tokens[i].pin, sizeof(tokens[i].pin));
        if (events)
                fclose(events);
        return badsig ? 3 : 0;
}
