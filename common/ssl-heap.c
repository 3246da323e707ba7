/* Every OpenSSL allocation in enclave-token in locked, non-dumpable memory that is wiped when freed.
 *
 * OpenSSL's secure heap covers only BIGNUMs flagged BN_FLG_SECURE. A private key leaves copies of its
 * secrets elsewhere: the Montgomery contexts of p and q that RSA keys cache after the first signature,
 * blinding values, the scratch numbers of every signature, and decoder buffers (d2i_ECPrivateKey
 * frees the scalar's octet string without wiping it). Routing all of OpenSSL's allocations here puts
 * every such copy in locked, MADV_DONTDUMP pages and wipes each block when OpenSSL frees it.
 *
 * Small blocks (up to SMALL_MAX) come from size classes carved out of 1 MiB chunks, with a per-thread
 * cache in front of one mutex so signing threads rarely meet; larger blocks get a mapping each. Memory
 * is never returned to the system, only reused: the peak of OpenSSL's use stays locked. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "common/secret.h"
#include "common/ssl-heap.h"

#define HDR         16u /* keeps blocks 16-byte aligned, as malloc's are */
#define SMALL_MAX   32768u
#define NCLASS      40 /* 16..64 by 16, then four classes per power of two up to SMALL_MAX */
#define CHUNK       (1u << 20)
#define CACHE_MAX   32 /* blocks per class a thread keeps before giving half back */
#define REFILL      16 /* blocks a thread takes at once from the shared lists */
#define CLASS_LARGE UINT32_MAX

struct hdr {
        uint32_t cls;      /* size class, or CLASS_LARGE */
        uint32_t unlocked; /* large blocks: mlock() was refused or skipped */
        size_t map_len;    /* large blocks: the whole mapping */
};

struct blk {
        struct blk *next;
};

struct tcache {
        struct blk *head[NCLASS];
        unsigned n[NCLASS];
};

static pthread_mutex_t heap_lock = PTHREAD_MUTEX_INITIALIZER;
static struct blk *shared_head[NCLASS]; /* under heap_lock, as is everything below */
static uint8_t *carve_pos, *carve_end;
static struct ssl_heap_stats stats;

static pthread_key_t cache_key;
static __thread struct tcache cache;
static __thread bool cache_registered;

static size_t class_size(unsigned c) {
        unsigned b, k;

        if (c < 4)
                return 16u * (c + 1);
        b = 6 + (c - 4) / 4;
        k = (c - 4) % 4;
        return ((size_t) 1 << b) + (k + 1) * ((size_t) 1 << (b - 2));
}

static unsigned class_of(size_t size) {
        unsigned b;

        if (size <= 64)
                return size == 0 ? 0 : (unsigned) ((size + 15) / 16 - 1);
        b = 63u - (unsigned) __builtin_clzll((unsigned long long) (size - 1)); /* 2^b < size <= 2^(b+1) */
        return 4 + (b - 6) * 4 + (unsigned) ((size - 1 - ((size_t) 1 << b)) >> (b - 2));
}

/* A fresh mapping, excluded from dumps and locked (else *ret_unlocked). */
static void *map_protected(size_t len, bool *ret_unlocked) {
        void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        int r;

        if (p == MAP_FAILED)
                return NULL;
        r = secret_pages_protect(p, len);
        if (r < 0) {
                (void) munmap(p, len);
                return NULL;
        }
        __atomic_add_fetch(&stats.mapped, len, __ATOMIC_RELAXED);
        if (r == 0)
                __atomic_add_fetch(&stats.unlocked, len, __ATOMIC_RELAXED);
        *ret_unlocked = r == 0;
        return p;
}

/* Under heap_lock: up to n blocks of class c from the shared list, else carved from the chunk. */
static struct blk *take_shared_locked(unsigned c, unsigned n, unsigned *ret_n) {
        size_t stride = HDR + class_size(c);
        struct blk *head = NULL;
        unsigned got = 0;

        while (got < n && shared_head[c]) {
                struct blk *b = shared_head[c];

                shared_head[c] = b->next;
                b->next = head;
                head = b;
                got++;
        }
        while (got < n) {
                struct hdr *h;
                struct blk *b;

                if ((size_t) (carve_end - carve_pos) < stride) {
                        /* The chunk's tail (less than one block) is left unused. */
                        bool unlocked;
                        uint8_t *p = map_protected(CHUNK, &unlocked);

                        if (!p)
                                break;
                        carve_pos = p;
                        carve_end = p + CHUNK;
                }
                h = (struct hdr *) carve_pos;
                *h = (struct hdr){ .cls = c };
                b = (struct blk *) (carve_pos + HDR);
                carve_pos += stride;
                b->next = head;
                head = b;
                got++;
        }
        *ret_n = got;
        return head;
}

/* Gives the n first blocks of the thread's list for class c back to the shared list. */
static void give_back(struct tcache *tc, unsigned c, unsigned n) {
        (void) pthread_mutex_lock(&heap_lock);
        while (n-- > 0 && tc->head[c]) {
                struct blk *b = tc->head[c];

                tc->head[c] = b->next;
                tc->n[c]--;
                b->next = shared_head[c];
                shared_head[c] = b;
        }
        (void) pthread_mutex_unlock(&heap_lock);
}

/* A thread that ends hands its cached blocks back (they are wiped already). A block freed by a later
 * destructor registers the thread again, and the next round of destructors hands that back too. */
static void cache_flush(void *unused) {
        cache_registered = false;
        for (unsigned c = 0; c < NCLASS; c++)
                give_back(&cache, c, cache.n[c]);
}

static void cache_register(void) {
        /* Any non-NULL value makes cache_flush() run when the thread ends. */
        if (!cache_registered)
                cache_registered = pthread_setspecific(cache_key, &cache) == 0;
}

static void *small_alloc(size_t size) {
        unsigned c = class_of(size), got;
        struct blk *b;

        cache_register();
        if (!cache.head[c]) {
                (void) pthread_mutex_lock(&heap_lock);
                cache.head[c] = take_shared_locked(c, REFILL, &got);
                (void) pthread_mutex_unlock(&heap_lock);
                cache.n[c] = got;
                if (!cache.head[c])
                        return NULL;
        }
        b = cache.head[c];
        cache.head[c] = b->next;
        cache.n[c]--;
        b->next = NULL; /* the caller sees a block without our link */
        return b;
}

static void *large_alloc(size_t size) {
        long page = sysconf(_SC_PAGESIZE);
        size_t len = (HDR + size + (size_t) page - 1) & ~((size_t) page - 1);
        bool unlocked;
        struct hdr *h;

        if (size > SIZE_MAX / 2)
                return NULL;
        h = map_protected(len, &unlocked);
        if (!h)
                return NULL;
        *h = (struct hdr){ .cls = CLASS_LARGE, .unlocked = unlocked, .map_len = len };
        __atomic_add_fetch(&stats.large, 1, __ATOMIC_RELAXED);
        return (uint8_t *) h + HDR;
}

static struct hdr *hdr_of(void *p) {
        return (struct hdr *) ((uint8_t *) p - HDR);
}

static size_t usable_size(void *p) {
        struct hdr *h = hdr_of(p);

        return h->cls == CLASS_LARGE ? h->map_len - HDR : class_size(h->cls);
}

static void *heap_malloc(size_t num, const char *file, int line) {
        if (num == 0)
                return NULL; /* as CRYPTO_malloc does */
        return num <= SMALL_MAX ? small_alloc(num) : large_alloc(num);
}

static void heap_free(void *p, const char *file, int line) {
        struct hdr *h;
        unsigned c;

        if (!p)
                return;
        h = hdr_of(p);
        if (h->cls == CLASS_LARGE) {
                size_t len = h->map_len;

                if (h->unlocked)
                        __atomic_sub_fetch(&stats.unlocked, len, __ATOMIC_RELAXED);
                secret_wipe(h, len);
                (void) munmap(h, len); /* unmapping unlocks */
                __atomic_sub_fetch(&stats.large, 1, __ATOMIC_RELAXED);
                __atomic_sub_fetch(&stats.mapped, len, __ATOMIC_RELAXED);
                return;
        }
        c = h->cls;
        secret_wipe(p, class_size(c));
        cache_register();
        ((struct blk *) p)->next = cache.head[c];
        cache.head[c] = p;
        if (++cache.n[c] > CACHE_MAX)
                give_back(&cache, c, CACHE_MAX / 2);
}

static void *heap_realloc(void *p, size_t num, const char *file, int line) {
        void *q;

        if (!p)
                return heap_malloc(num, file, line);
        if (num == 0) {
                heap_free(p, file, line);
                return NULL;
        }
        if (num <= usable_size(p) && (hdr_of(p)->cls == CLASS_LARGE || class_of(num) == hdr_of(p)->cls))
                return p;
        q = heap_malloc(num, file, line);
        if (!q)
                return NULL;
        memcpy(q, p, MIN(num, usable_size(p)));
        heap_free(p, file, line);
        return q;
}

int ssl_heap_install(void) {
        static bool installed;
        int r;

        if (installed)
                return 0;
        r = pthread_key_create(&cache_key, cache_flush);
        if (r != 0)
                return -r;
        if (CRYPTO_set_mem_functions(heap_malloc, heap_realloc, heap_free) != 1) {
                (void) pthread_key_delete(cache_key);
                return -EBUSY;
        }
        installed = true;
        return 0;
}

void ssl_heap_get_stats(struct ssl_heap_stats *ret) {
        *ret = (struct ssl_heap_stats){
                .mapped = __atomic_load_n(&stats.mapped, __ATOMIC_RELAXED),
                .large = __atomic_load_n(&stats.large, __ATOMIC_RELAXED),
                .unlocked = __atomic_load_n(&stats.unlocked, __ATOMIC_RELAXED),
        };
}
