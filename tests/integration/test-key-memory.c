/* Private-key bytes in enclave-token's memory: after parsing and signing, no copy of a key's secret
 * numbers may sit in a mapping that is not both locked and excluded from core dumps (OpenSSL's
 * caches, its scratch numbers and our own buffers included), and none anywhere once the key is freed. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "common/cleanup-ssl.h"
#include "common/secret.h"
#include "enclave-token/key.h"
#include "common/ssl-heap.h"
#include "tests/lib/data.h"
#include "tests/lib/tap.h"

#define NEEDLE_LEN   32 /* a slice this long of a secret number is found by chance never */
#define NEEDLES_MAX  16
#define HUGE_MAPPING ((uintptr_t) 1 << 30)

struct needle {
        char name[24];
        uint8_t bytes[NEEDLE_LEN];
};

/* Shared with the child that parses the key files, so this process never holds a key byte that the
 * code under test did not put there. Excluded from dumps and skipped by the scan. */
struct fixture {
        size_t key_len, chain_len;
        char key[8192];
        char chain[16384];
        size_t n_needles;
        struct needle needles[NEEDLES_MAX];
};

static struct fixture *fx;
static bool require_locked; /* the process may lock memory: every safe mapping must be locked too */

static void needle_add(const char *name, const uint8_t *p, size_t len) {
        struct needle *n;

        if (len < NEEDLE_LEN || fx->n_needles >= NEEDLES_MAX)
                return;
        n = &fx->needles[fx->n_needles++];
        snprintf(n->name, sizeof(n->name), "%s", name);
        memcpy(n->bytes, p + (len - NEEDLE_LEN) / 2, NEEDLE_LEN); /* the middle: no leading zeros */
}

/* A bignum as stored in memory (little-endian limbs on the hosts we run on) and as in DER. */
static void needle_add_bn(EVP_PKEY *pkey, const char *param, const char *name) {
        uint8_t buf[1024];
        BIGNUM *bn = NULL;
        char nm[24];
        int n;

        if (EVP_PKEY_get_bn_param(pkey, param, &bn) != 1)
                return;
        n = BN_num_bytes(bn);
        if (n > 0 && (size_t) n <= sizeof(buf) && BN_bn2lebinpad(bn, buf, n) == n) {
                snprintf(nm, sizeof(nm), "%s (LE)", name);
                needle_add(nm, buf, (size_t) n);
                (void) BN_bn2bin(bn, buf);
                snprintf(nm, sizeof(nm), "%s (BE)", name);
                needle_add(nm, buf, (size_t) n);
        }
        BN_clear_free(bn);
}

/* Runs in the child: loads the PEM files into the shared fixture and derives the needles. */
static int fixture_load_child(const char *name) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pkey = NULL;
        _cleanup_(BIO_free_allp) BIO *bio = NULL;
        _cleanup_free_ char *key = NULL, *chain = NULL;
        size_t key_len = 0, chain_len = 0;
        char rel[64];

        snprintf(rel, sizeof(rel), "%s.key.pem", name);
        key = test_data_load(rel, &key_len);
        snprintf(rel, sizeof(rel), "%s.crt.pem", name);
        chain = test_data_load(rel, &chain_len);
        if (!key || !chain || key_len > sizeof(fx->key) || chain_len > sizeof(fx->chain))
                return 1;
        memcpy(fx->key, key, key_len);
        fx->key_len = key_len;
        memcpy(fx->chain, chain, chain_len);
        fx->chain_len = chain_len;

        bio = BIO_new_mem_buf(key, (int) key_len);
        pkey = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
        if (!pkey)
                return 1;
        switch (EVP_PKEY_get_base_id(pkey)) {
        case EVP_PKEY_RSA:
                needle_add_bn(pkey, OSSL_PKEY_PARAM_RSA_D, "d");
                needle_add_bn(pkey, OSSL_PKEY_PARAM_RSA_FACTOR1, "p");
                needle_add_bn(pkey, OSSL_PKEY_PARAM_RSA_FACTOR2, "q");
                needle_add_bn(pkey, OSSL_PKEY_PARAM_RSA_EXPONENT1, "dmp1");
                needle_add_bn(pkey, OSSL_PKEY_PARAM_RSA_EXPONENT2, "dmq1");
                needle_add_bn(pkey, OSSL_PKEY_PARAM_RSA_COEFFICIENT1, "iqmp");
                break;
        case EVP_PKEY_EC: needle_add_bn(pkey, OSSL_PKEY_PARAM_PRIV_KEY, "EC scalar"); break;
        case EVP_PKEY_ED25519: {
                uint8_t raw[32];
                size_t raw_len = sizeof(raw);

                if (EVP_PKEY_get_raw_private_key(pkey, raw, &raw_len) == 1)
                        needle_add("Ed25519 key", raw, raw_len);
                break;
        }
        default: return 1;
        }
        /* The PEM text itself: a slice from the middle of its base64 body. */
        needle_add("PEM text", (const uint8_t *) key, key_len);
        return fx->n_needles >= 2 ? 0 : 1;
}

static bool fixture_load(const char *name) {
        int status;
        pid_t pid;

        memset(fx, 0, sizeof(*fx));
        fflush(stdout);
        pid = fork();
        if (pid < 0)
                return false;
        if (pid == 0)
                _exit(fixture_load_child(name));
        return waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* A mapping that may hold secrets: dontdump, and locked when this process can lock memory. */
static bool mapping_safe(const char *vmflags) {
        return strstr(vmflags, " dd") && (!require_locked || strstr(vmflags, " lo"));
}

static bool overlaps(uintptr_t start, uintptr_t end, const void *p) {
        return (uintptr_t) p >= start && (uintptr_t) p < end;
}

/* Scans every readable mapping that is not safe (everywhere: every mapping but the fixture and the
 * scan's own buffer) for the fixture's needles. Returns the number of hits; names each on a TAP
 * comment line (never the bytes). */
static int scan(const char *when, bool everywhere) {
        _cleanup_secret_ struct secret_buf *buf = NULL;
        _cleanup_fclose_ FILE *maps = NULL;
        _cleanup_close_ int mem = -1;
        char line[512], path[256] = "";
        uintptr_t start = 0, end = 0;
        bool readable = false, resident = false;
        unsigned long kb;
        int hits = 0;

        if (secret_buf_new(1u << 20, &buf) < 0)
                return -1;
        maps = fopen("/proc/self/smaps", "re");
        mem = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
        if (!maps || mem < 0)
                return -1;
        while (fgets(line, sizeof(line), maps)) {
                uintptr_t s, e;
                char perms[8];
                int n = 0;

                /* Only a mapping's header line has all three ("AnonHugePages:" would match a hex digit). */
                if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %7s %*s %*s %*s %n", &s, &e, perms, &n) >= 3) {
                        start = s;
                        end = e;
                        readable = perms[0] == 'r';
                        resident = false;
                        snprintf(path, sizeof(path), "%s", line + n);
                        path[strcspn(path, "\n")] = '\0';
                        continue;
                }
                /* A mapping with nothing in memory or swap holds zero pages only: no copy to find. */
                if (sscanf(line, "Rss: %lu kB", &kb) == 1 || sscanf(line, "Swap: %lu kB", &kb) == 1)
                        resident = resident || kb > 0;
                if (strncmp(line, "VmFlags:", 8) != 0 || !readable || !resident ||
                    overlaps(start, end, fx) || overlaps(start, end, buf->data) ||
                    (!everywhere && mapping_safe(line + 8)) || strcmp(path, "[vvar]") == 0 ||
                    strcmp(path, "[vsyscall]") == 0)
                        continue;
                if (end - start > HUGE_MAPPING) {
                        /* A sanitizer's shadow memory (terabytes, reserved): it holds no data. */
                        printf("# %s: not scanning the %zu GiB mapping at %#" PRIxPTR "\n", when,
                               (size_t) ((end - start) >> 30), start);
                        continue;
                }
                /* Chunks overlap by a needle's length, so a copy across a chunk boundary is found. */
                for (uintptr_t a = start; a < end;) {
                        size_t want = MIN(buf->cap, (size_t) (end - a));
                        ssize_t got = pread(mem, buf->data, want, (off_t) a);

                        if (got < NEEDLE_LEN)
                                break;
                        for (size_t i = 0; i < fx->n_needles; i++) {
                                const uint8_t *hit =
                                        memmem(buf->data, (size_t) got, fx->needles[i].bytes, NEEDLE_LEN);

                                if (hit) {
                                        printf("# %s: %s at %#" PRIxPTR " in %#" PRIxPTR "-%#" PRIxPTR
                                               " '%s', VmFlags:%s",
                                               when, fx->needles[i].name, a + (uintptr_t) (hit - buf->data),
                                               start, end, path, line + 8);
                                        hits++;
                                }
                        }
                        if ((size_t) got < want || a + (size_t) got >= end)
                                break;
                        a += (size_t) got - (NEEDLE_LEN - 1);
                }
        }
        secret_wipe(buf->data, buf->cap);
        return hits;
}

static struct etok_key *key_load(void) {
        struct rpc_add_key in = {
                .id = 1,
                .label = { (const uint8_t *) "key", 3 },
                .key_pem = { (const uint8_t *) fx->key, fx->key_len },
                .chain_pem = { (const uint8_t *) fx->chain, fx->chain_len },
        };
        struct etok_key *k = NULL;

        return etok_key_new(&in, &k) < 0 ? NULL : k;
}

static int sign_some(const struct etok_key *k) {
        uint8_t dg[32] = { 1, 2, 3 }, out[RPC_SIG_MAX];
        struct rpc_crypto_req req = { .data = { dg, sizeof(dg) } };
        size_t n;
        int r = 0;

        for (int i = 0; i < 4 && r >= 0; i++) {
                dg[31] = (uint8_t) i;
                switch (k->type) {
                case RPC_KEY_RSA:
                        req.mech = i % 2 ? RPC_MECH_RSA_PSS : RPC_MECH_RSA_PKCS;
                        req.hash = RPC_HASH_SHA256;
                        req.salt_len = 32;
                        break;
                case RPC_KEY_EC: req.mech = RPC_MECH_ECDSA; break;
                default: req.mech = RPC_MECH_EDDSA; break;
                }
                r = etok_key_sign(k, &req, out, sizeof(out), &n);
        }
        return r;
}

/* enclave-token signs on worker threads, whose allocations land in malloc's per-thread arenas. */
static void *sign_thread(void *k) {
        return (void *) (intptr_t) sign_some(k);
}

static void check_key(const char *name) {
        _cleanup_(etok_key_freep) struct etok_key *k = NULL;
        pthread_t th;
        void *tr;

        ASSERT_TRUE(fixture_load(name));
        ASSERT_EQ(scan("before loading", false), 0);
        k = key_load();
        ASSERT_TRUE(k != NULL);
        ASSERT_OK(sign_some(k));
        ASSERT_EQ(pthread_create(&th, NULL, sign_thread, k), 0);
        ASSERT_EQ(pthread_join(th, &tr), 0);
        ASSERT_OK((intptr_t) tr);
        ASSERT_EQ(scan("after signing", false), 0);
        k = etok_key_free(k);
        /* Wiped on free: not even locked memory keeps a copy. */
        ASSERT_EQ(scan("after freeing", true), 0);
}

static void test_rsa(void) {
        check_key("rsa2048");
}
static void test_rsa4096(void) {
        check_key("rsa4096");
}
static void test_ec(void) {
        check_key("ec-p256");
}
static void test_ec521(void) {
        check_key("ec-p521");
}
static void test_ed25519(void) {
        check_key("ed25519");
}

/* The scan finds what it looks for: a needle copied into ordinary heap is reported, and not once wiped.
 *
 * The copy goes byte by byte through a volatile pointer, never through vector registers: memcpy() (under
 * ASan, glibc's AVX one) leaves all 32 bytes in a ymm register, and the first call of a lazily bound
 * function afterwards (the scan's own fopen(), pread(), memmem()) has _dl_runtime_resolve_xsavec() save
 * that register on the stack, a second copy the wipe cannot reach (seen in 4 of 12 ASan runs, none with
 * LD_BIND_NOW=1). A first scan before planting also binds everything the scan calls, and proves the
 * needle is nowhere to begin with. */
static void test_scan_finds(void) {
        volatile uint8_t *copy;

        ASSERT_TRUE(fixture_load("ec-p256"));
        ASSERT_EQ(scan("before planting", false), 0);
        copy = malloc(NEEDLE_LEN);
        ASSERT_TRUE(copy != NULL);
        for (size_t i = 0; i < NEEDLE_LEN; i++)
                copy[i] = fx->needles[0].bytes[i];
        ASSERT_TRUE(scan("planted copy (expected)", false) >= 1);
        secret_wipe((uint8_t *) copy, NEEDLE_LEN);
        free((uint8_t *) copy);
        ASSERT_EQ(scan("planted copy wiped", false), 0);
}

/* The arena as an allocator: sizes across every class and large blocks, alignment, realloc keeping
 * the contents, large mappings returned, all pages dontdump. */
static void test_arena(void) {
        static const size_t sizes[] = { 1, 15, 16, 17, 64, 65, 100, 1000, 4096, 4097, 32768, 32769, 100000 };
        struct ssl_heap_stats st0, st;
        uint8_t *p[ELEMENTSOF(sizes)];

        ssl_heap_get_stats(&st0);
        ASSERT_TRUE(st0.mapped > 0); /* OpenSSL allocated through it already */
        ASSERT_TRUE(OPENSSL_malloc(0) == NULL);
        for (size_t i = 0; i < ELEMENTSOF(sizes); i++) {
                p[i] = OPENSSL_malloc(sizes[i]);
                ASSERT_TRUE(p[i] != NULL);
                ASSERT_EQ((uintptr_t) p[i] % 16, 0);
                memset(p[i], (int) i + 1, sizes[i]);
        }
        ssl_heap_get_stats(&st);
        ASSERT_EQ(st.large, st0.large + 2);
        for (size_t i = 0; i < ELEMENTSOF(sizes); i++) {
                size_t grown = sizes[i] * 3 + 1;
                uint8_t *q = OPENSSL_realloc(p[i], grown);

                ASSERT_TRUE(q != NULL);
                for (size_t j = 0; j < sizes[i]; j++)
                        if (q[j] != (uint8_t) (i + 1))
                                ASSERT_EQ(q[j], i + 1);
                q = OPENSSL_realloc(q, 1);
                ASSERT_TRUE(q != NULL);
                ASSERT_EQ(q[0], i + 1);
                OPENSSL_free(q);
        }
        ssl_heap_get_stats(&st);
        ASSERT_EQ(st.large, st0.large);
        ASSERT_EQ(st.unlocked, require_locked ? 0 : st.mapped);
        ASSERT_EQ(scan("arena", false), 0);
}

/* Where this process may lock enough memory (root, as in CI, or a limit of 8 MiB or more), lock as
 * enclave-token does and require it; elsewhere (ENCLAVE_ACM_NO_MLOCK=1 under a small RLIMIT_MEMLOCK)
 * require dontdump only. */
#define LOCK_NEEDED (8u << 20)
#if defined(__SANITIZE_ADDRESS__)
#define MLOCK_WORKS false /* AddressSanitizer turns mlock() into a no-op that succeeds */
#elif defined(__has_feature)
#define MLOCK_WORKS !__has_feature(address_sanitizer)
#else
#define MLOCK_WORKS true
#endif
static void setup_locking(void) {
        struct rlimit rl = { RLIM_INFINITY, RLIM_INFINITY };

        if (!MLOCK_WORKS)
                printf("# mlock() is a no-op under AddressSanitizer\n");
        else if (setrlimit(RLIMIT_MEMLOCK, &rl) == 0 ||
                 (getrlimit(RLIMIT_MEMLOCK, &rl) == 0 && rl.rlim_cur >= LOCK_NEEDED)) {
                (void) unsetenv("ENCLAVE_ACM_NO_MLOCK");
                secret_set_strict(true);
                require_locked = true;
        }
        printf("# safe mappings must be dontdump%s\n",
               require_locked ? " and locked" : " (cannot lock here)");
}

int main(void) {
        static const struct tap_test tests[] = {
                TEST("/key-memory/scan-finds", test_scan_finds),
                TEST("/key-memory/arena", test_arena),
                TEST("/key-memory/rsa2048", test_rsa),
                TEST("/key-memory/rsa4096", test_rsa4096),
                TEST("/key-memory/ec-p256", test_ec),
                TEST("/key-memory/ec-p521", test_ec521),
                TEST("/key-memory/ed25519", test_ed25519),
        };

        /* As enclave-token's main() does, before OpenSSL allocates anything. */
        if (ssl_heap_install() < 0)
                return 1;
        setup_locking();
        if (CRYPTO_secure_malloc_init(1u << 20, 64) == 0)
                return 1;
        fx = mmap(NULL, sizeof(*fx), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (fx == MAP_FAILED)
                return 1;
        (void) madvise(fx, sizeof(*fx), MADV_DONTDUMP);
        if (require_locked && mlock(fx, sizeof(*fx)) < 0)
                return 1;
        return tap_run(tests, ELEMENTSOF(tests));
}
