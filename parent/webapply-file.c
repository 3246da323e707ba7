/* The file side of webapply: read the current file, replace it atomically, remove it. */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "parent/webapply-internal.h"
#include "parent/webapply.h"

void webapply_current_done(struct webapply_current *c) {
        c->fd = safe_close(c->fd);
        if (c->text)
                explicit_bzero(c->text, c->len);
        free(c->text);
        c->text = NULL;
        c->len = 0;
}

void webapply_target_done(struct webapply_target *t) {
        free(t->path);
        free(t->dir);
        free(t->base);
        *t = (struct webapply_target){};
}

/* Grow buf to twice its size without leaving a copy of its bytes behind (they may be a PIN). */
static int grow_wiped(char **buf, size_t n, size_t *cap) {
        char *grown = malloc(*cap * 2);

        if (!grown)
                return -ENOMEM;
        memcpy(grown, *buf, n);
        explicit_bzero(*buf, n);
        free(*buf);
        *buf = grown;
        *cap *= 2;
        return 0;
}

/* The whole file plus a NUL (not counted), bounded by max. */
static int read_all(int fd, size_t max, char **ret, size_t *ret_len) {
        size_t cap = 4096, n = 0;
        char *buf = malloc(cap);
        int r = 0;

        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t k;

                if (n + 1 >= cap && (r = n > max ? -EFBIG : grow_wiped(&buf, n, &cap)) < 0)
                        break;
                k = read(fd, buf + n, cap - n - 1);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0) {
                        r = k < 0 ? -errno : n > max ? -EFBIG : 0;
                        break;
                }
                n += (size_t) k;
        }
        if (r < 0) {
                explicit_bzero(buf, n);
                free(buf);
                return r;
        }
        buf[n] = '\0';
        *ret_len = n;
        *ret = buf;
        return 0;
}

static int split_path(struct webapply_target *t) {
        _cleanup_free_ char *copy = strdup(t->path);
        char *slash;

        if (!copy)
                return -ENOMEM;
        slash = strrchr(copy, '/');
        t->base = strdup(slash ? slash + 1 : copy);
        if (slash)
                *slash = '\0';
        t->dir = strdup(!slash ? "." : slash == copy ? "/" : copy);
        if (!t->base || !t->dir)
                return -ENOMEM;
        return t->base[0] ? 0 : -EISDIR;
}

int webapply_target_resolve(const char *path, struct webapply_target *t) {
        struct stat st;

        t->path = realpath(path, NULL);
        if (!t->path) {
                if (errno != ENOENT)
                        return -errno;
                if (lstat(path, &st) == 0)
                        return -ENOENT; /* a dangling symlink: refuse rather than replace the link */
                t->path = strdup(path);
                if (!t->path)
                        return -ENOMEM;
        }
        return split_path(t);
}

int webapply_current_read(const char *path, struct webapply_current *c) {
        c->fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (c->fd < 0)
                return errno == ENOENT ? 0 : -errno;
        if (fstat(c->fd, &c->st) < 0)
                return -errno;
        if (!S_ISREG(c->st.st_mode))
                return -EINVAL;
        if ((uint64_t) c->st.st_size > WEBAPPLY_MAX_FILE)
                return -EFBIG;
        return read_all(c->fd, WEBAPPLY_MAX_FILE, &c->text, &c->len);
}

int webapply_read_file(const char *path, char **ret_text, size_t *ret_len) {
        _cleanup_(webapply_current_done) struct webapply_current c = { .fd = -1 };
        _cleanup_(webapply_target_done) struct webapply_target t = {};
        int r;

        if (!path || !ret_text || !ret_len)
                return -EINVAL;
        if ((r = webapply_target_resolve(path, &t)) < 0 || (r = webapply_current_read(t.path, &c)) < 0)
                return r;
        if (c.fd < 0)
                return -ENOENT;
        *ret_len = c.len;
        *ret_text = TAKE_PTR(c.text);
        c.len = 0;
        return 0;
}

static int write_all(int fd, const char *p, size_t n) {
        while (n > 0) {
                ssize_t k = write(fd, p, n);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

static int fsync_dir(const char *dir) {
        _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        if (fd < 0 || fsync(fd) < 0)
                return -errno;
        return 0;
}

/* Content, owner, mode, then fsync: the file is complete before anyone can see it under its name. */
static int fill_temp(int fd, const char *text, size_t len, mode_t mode, uid_t uid, gid_t gid) {
        struct stat st;
        int r;

        r = write_all(fd, text, len);
        if (r < 0)
                return r;
        if (fstat(fd, &st) < 0)
                return -errno;
        /* Only when it differs: an unprivileged caller may not chown, even to itself. */
        if ((st.st_uid != uid || st.st_gid != gid) && fchown(fd, uid, gid) < 0)
                return -errno;
        if (fchmod(fd, mode) < 0 || fsync(fd) < 0)
                return -errno;
        return 0;
}

int webapply_replace(const struct webapply_target *t, const char *text, size_t len, mode_t mode, uid_t uid,
                     gid_t gid) {
        _cleanup_free_ char *tmp = NULL;
        int fd, r;

        /* A dot file: neither nginx's "include *.conf"/"*" nor Apache's IncludeOptional picks it up. */
        if (asprintf(&tmp, "%s/.%s.enclave-acm.XXXXXX", t->dir, t->base) < 0)
                return -ENOMEM;
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return -errno;
        r = fill_temp(fd, text, len, mode, uid, gid);
        if (close(fd) < 0 && r >= 0)
                r = -errno;
        if (r >= 0 && rename(tmp, t->path) < 0)
                r = -errno;
        if (r < 0) {
                (void) unlink(tmp);
                return r;
        }
        return fsync_dir(t->dir);
}

int webapply_probe_write(const char *path, const char *text, size_t len) {
        _cleanup_(webapply_target_done) struct webapply_target t = {};
        _cleanup_free_ char *tmp = NULL;
        int fd, r;

        r = webapply_target_resolve(path, &t);
        if (r < 0)
                return r;
        if (asprintf(&tmp, "%s/.%s.enclave-acm.XXXXXX", t.dir, t.base) < 0)
                return -ENOMEM;
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return -errno;
        r = write_all(fd, text, len);
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        if (close(fd) < 0 && r >= 0)
                r = -errno;
        (void) unlink(tmp);
        return r;
}

int webapply_remove(const struct webapply_target *t) {
        if (unlink(t->path) < 0 && errno != ENOENT)
                return -errno;
        return fsync_dir(t->dir);
}
