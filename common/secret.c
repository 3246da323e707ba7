/* Locked, non-dumpable, wiped-on-free buffers for PINs, private keys and frames carrying them. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/secret.h"

static bool strict_mlock;

void secret_set_strict(bool strict) {
        strict_mlock = strict;
}

void secret_wipe(void *p, size_t n) {
        if (p && n > 0)
                explicit_bzero(p, n);
}

static bool mlock_disabled(void) {
        const char *e = secure_getenv("ENCLAVE_ACM_NO_MLOCK");
        return e && strcmp(e, "1") == 0;
}

int secret_pages_protect(void *p, size_t len) {
        (void) madvise(p, len, MADV_DONTDUMP);
        if (mlock_disabled())
                return 0;
        if (mlock(p, len) == 0)
                return 1;
        return strict_mlock ? negative_errno() : 0;
}

int secret_buf_new(size_t cap, struct secret_buf **ret) {
        long page = sysconf(_SC_PAGESIZE);
        struct secret_buf *s;
        size_t map_size;
        int r;

        if (!ret || cap == 0 || cap > (1u << 28))
                return -EINVAL;
        if (page <= 0)
                page = 4096;
        map_size = (cap + (size_t) page - 1) & ~((size_t) page - 1);

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->data = mmap(NULL, map_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (s->data == MAP_FAILED) {
                free(s);
                return -ENOMEM;
        }
        s->map_size = map_size;
        s->cap = cap;
        (void) madvise(s->data, map_size, MADV_WIPEONFORK);
        r = secret_pages_protect(s->data, map_size);
        if (r < 0) {
                (void) munmap(s->data, map_size);
                free(s);
                return r;
        }
        s->locked = r > 0;
        *ret = s;
        return 0;
}

struct secret_buf *secret_buf_free(struct secret_buf *s) {
        if (!s)
                return NULL;
        if (s->data) {
                secret_wipe(s->data, s->map_size);
                if (s->locked)
                        (void) munlock(s->data, s->map_size);
                (void) munmap(s->data, s->map_size);
        }
        free(s);
        return NULL;
}

int secret_buf_set(struct secret_buf *s, const void *p, size_t len) {
        if (!s || (!p && len > 0))
                return -EINVAL;
        if (len > s->cap)
                return -EMSGSIZE;
        /* memmove: p may point into s itself (trimming); then wipe what the old value left. */
        if (len > 0)
                memmove(s->data, p, len);
        if (s->len > len)
                secret_wipe(s->data + len, s->len - len);
        s->len = len;
        return 0;
}

int secret_buf_dup(const void *p, size_t len, struct secret_buf **ret) {
        _cleanup_secret_ struct secret_buf *s = NULL;
        int r;

        r = secret_buf_new(len > 0 ? len : 1, &s);
        if (r < 0)
                return r;
        r = secret_buf_set(s, p, len);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

void secret_buf_clear(struct secret_buf *s) {
        if (!s)
                return;
        secret_wipe(s->data, s->len);
        s->len = 0;
}
