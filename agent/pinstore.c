/* Files the agent keeps: generated PINs and key ids under state_dir, pin-source files under runtime_dir. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/pinstore.h"
#include "common/p11-uri.h"
#include "common/parse-util.h"
#include "common/rpc-messages.h"

static const char pin_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

int pinstore_label_filename(const char *label, char **ret) {
        static const char hex[] = "0123456789ABCDEF";
        size_t len = strlen(label);
        char *s, *p;

        if (len == 0)
                return -EINVAL;
        s = p = malloc(len * 3 + 1);
        if (!s)
                return -ENOMEM;
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char) label[i];
                if (p11uri_is_unreserved(c) && !(i == 0 && c == '.')) {
                        *p++ = (char) c;
                        continue;
                }
                *p++ = '%';
                *p++ = hex[c >> 4];
                *p++ = hex[c & 15];
        }
        *p = 0;
        *ret = s;
        return 0;
}

bool pinstore_pin_source_ok(const uint8_t *pin, size_t len) {
        if (len == 0 || len > PINSTORE_PIN_SOURCE_MAX)
                return false;
        for (size_t i = 0; i < len; i++)
                if (pin[i] == 0 || pin[i] == '\n' || pin[i] == '\r')
                        return false;
        return true;
}

size_t pinstore_pin_from_random(const uint8_t *rnd, size_t rnd_len, char *buf, size_t len) {
        const size_t n = sizeof(pin_alphabet) - 1; /* 62; 248 = 4 * 62 keeps the draw uniform */
        size_t out = 0;

        for (size_t i = 0; i < rnd_len && out < len; i++)
                if (rnd[i] < 4 * n)
                        buf[out++] = pin_alphabet[rnd[i] % n];
        return out;
}

int pinstore_generate(struct secret_buf **ret) {
        _cleanup_secret_ struct secret_buf *pin = NULL;
        uint8_t rnd[64];
        int r;

        r = secret_buf_new(PINSTORE_GENERATED_LEN, &pin);
        if (r < 0)
                return r;
        while (pin->len < PINSTORE_GENERATED_LEN) {
                ssize_t n = getrandom(rnd, sizeof(rnd), 0);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        r = negative_errno();
                        secret_wipe(rnd, sizeof(rnd));
                        return r;
                }
                pin->len += pinstore_pin_from_random(rnd, (size_t) n, (char *) pin->data + pin->len,
                                                     PINSTORE_GENERATED_LEN - pin->len);
        }
        secret_wipe(rnd, sizeof(rnd));
        *ret = TAKE_PTR(pin);
        return 0;
}

int pinstore_mkdir_p(const char *path, mode_t mode) {
        _cleanup_free_ char *copy = strdup(path);
        int r;

        if (!copy)
                return -ENOMEM;
        for (char *p = copy + 1; *p; p++) {
                if (*p != '/')
                        continue;
                *p = 0;
                if (mkdir(copy, mode) < 0) {
                        if (errno != EEXIST)
                                return negative_errno();
                } else if (chmod(copy, mode) < 0)
                        return negative_errno();
                *p = '/';
        }
        if (mkdir(copy, mode) < 0) {
                if (errno != EEXIST)
                        return negative_errno();
                r = access(copy, F_OK);
                return r < 0 ? negative_errno() : 0;
        }
        /* Each directory created here: exactly mode, whatever the umask (000 must not widen the state
         * side, 077 would keep the web server out of runtime_dir). An existing one keeps its mode. */
        r = chmod(copy, mode);
        return r < 0 ? negative_errno() : 0;
}

/* A directory the agent alone may use (state_dir/pins): exactly mode, owned by us, created or tightened. */
static int private_dir(const char *path, mode_t mode) {
        struct stat st;
        int r;

        r = pinstore_mkdir_p(path, mode);
        if (r < 0)
                return r;
        if (lstat(path, &st) < 0)
                return negative_errno();
        if (!S_ISDIR(st.st_mode))
                return -ENOTDIR;
        if (st.st_uid != geteuid())
                return -EPERM;
        if ((st.st_mode & 07777) != mode && chmod(path, mode) < 0)
                return negative_errno();
        return 0;
}

int pinstore_group_gid(const char *name, gid_t *ret) {
        _cleanup_free_ char *buf = NULL;
        struct group grp, *res = NULL;
        long size = sysconf(_SC_GETGR_R_SIZE_MAX);
        int r;

        if (size <= 0)
                size = 16384;
        buf = malloc((size_t) size);
        if (!buf)
                return -ENOMEM;
        r = getgrnam_r(name, &grp, buf, (size_t) size, &res);
        if (r != 0)
                return -r;
        if (!res)
                return -ESRCH;
        *ret = res->gr_gid;
        return 0;
}

/* 1 when path holds exactly data with that mode and owner. */
static int same_file(const char *path, const void *data, size_t len, mode_t mode, uid_t uid, gid_t gid) {
        _cleanup_close_ int fd = -1;
        _cleanup_free_ uint8_t *buf = NULL;
        struct stat st;
        size_t got = 0;
        int same;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (size_t) st.st_size != len ||
            (st.st_mode & 07777) != mode || st.st_uid != uid || st.st_gid != gid)
                return 0;
        buf = malloc(len + 1);
        if (!buf)
                return 0;
        while (got <= len) {
                ssize_t n = read(fd, buf + got, len + 1 - got);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                got += (size_t) n;
        }
        same = got == len && memcmp(buf, data, len) == 0;
        secret_wipe(buf, len + 1); /* may be a PIN */
        return same;
}

static int write_all(int fd, const void *data, size_t len) {
        const uint8_t *p = data;

        while (len > 0) {
                ssize_t n = write(fd, p, len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return negative_errno();
                p += n;
                len -= (size_t) n;
        }
        return 0;
}

static int fsync_dir_of(const char *path) {
        _cleanup_free_ char *copy = strdup(path);
        _cleanup_close_ int fd = -1;

        if (!copy)
                return -ENOMEM;
        fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 || fsync(fd) < 0)
                return negative_errno();
        return 0;
}

int pinstore_write_atomic(const char *path, const void *data, size_t len, mode_t mode, uid_t uid,
                          gid_t gid) {
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = -1;
        int r;

        if (uid == (uid_t) -1)
                uid = geteuid();
        if (gid == (gid_t) -1)
                gid = getegid();
        if (same_file(path, data, len, mode, uid, gid))
                return 0;
        if (asprintf(&tmp, "%s.XXXXXX", path) < 0)
                return -ENOMEM;
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        if (fchmod(fd, mode) < 0 || fchown(fd, uid, gid) < 0) {
                r = negative_errno();
                goto fail;
        }
        if ((r = write_all(fd, data, len)) < 0)
                goto fail;
        if (fsync(fd) < 0 || rename(tmp, path) < 0) {
                r = negative_errno();
                goto fail;
        }
        (void) fsync_dir_of(path);
        return 1;
fail:
        (void) unlink(tmp);
        return r;
}

static int state_path(const char *state_dir, const char *sub, const char *label, char **ret) {
        _cleanup_free_ char *name = NULL, *dir = NULL;
        int r;

        r = pinstore_label_filename(label, &name);
        if (r < 0)
                return r;
        if (asprintf(&dir, "%s/%s", state_dir, sub) < 0)
                return -ENOMEM;
        r = pinstore_mkdir_p(state_dir, 0700);
        if (r < 0)
                return r;
        r = private_dir(dir, 0700);
        if (r < 0)
                return r;
        if (asprintf(ret, "%s/%s", dir, name) < 0)
                return -ENOMEM;
        return 0;
}

static int read_small(const char *path, size_t max, struct secret_buf **ret) {
        _cleanup_secret_ struct secret_buf *s = NULL;
        _cleanup_close_ int fd = -1;
        struct stat st;
        int r;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        if (fd < 0)
                return negative_errno();
        /* Written 0600 by us: a file others could read or write, or another user's, is refused, not
         * repaired (its PIN may have been read or planted); the admin deletes it for a new PIN. */
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077) != 0)
                return -EPERM;
        r = secret_buf_new(max + 1, &s);
        if (r < 0)
                return r;
        while (s->len < s->cap) {
                ssize_t n = read(fd, s->data + s->len, s->cap - s->len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return negative_errno();
                if (n == 0)
                        break;
                s->len += (size_t) n;
        }
        if (s->len > max)
                return -EFBIG;
        *ret = TAKE_PTR(s);
        return 0;
}

int pinstore_load_or_create(const char *state_dir, const char *label, struct secret_buf **ret,
                            bool *ret_created) {
        _cleanup_secret_ struct secret_buf *pin = NULL;
        _cleanup_free_ char *path = NULL;
        int r;

        r = state_path(state_dir, "pins", label, &path);
        if (r < 0)
                return r;
        r = read_small(path, 64, &pin);
        if (r >= 0) {
                if (pin->len < 4 || !pinstore_pin_source_ok(pin->data, pin->len))
                        return -EBADMSG;
                *ret = TAKE_PTR(pin);
                *ret_created = false;
                return 0;
        }
        if (r != -ENOENT)
                return r;
        r = pinstore_generate(&pin);
        if (r < 0)
                return r;
        r = pinstore_write_atomic(path, pin->data, pin->len, 0600, (uid_t) -1, (gid_t) -1);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(pin);
        *ret_created = true;
        return 0;
}

int pinstore_parse_key_id(const char *text, size_t len, uint32_t *ret) {
        char buf[8];
        unsigned long v;

        /* "N" or "N\n", N in 1..65535 */
        if (len > 0 && text[len - 1] == '\n')
                len--;
        if (len == 0 || len >= sizeof(buf) || memchr(text, '\0', len))
                return -EBADMSG;
        memcpy(buf, text, len);
        buf[len] = '\0';
        if (parse_unsigned(buf, 10, 1, RPC_KEY_ID_MAX, &v) < 0)
                return -EBADMSG;
        *ret = (uint32_t) v;
        return 0;
}

int pinstore_load_key_id(const char *state_dir, const char *label, uint32_t *ret) {
        _cleanup_secret_ struct secret_buf *s = NULL;
        _cleanup_free_ char *path = NULL;
        int r;

        r = state_path(state_dir, "keys", label, &path);
        if (r < 0)
                return r;
        r = read_small(path, 16, &s);
        if (r == -ENOENT) {
                *ret = 1;
                return 0;
        }
        if (r < 0)
                return r;
        return pinstore_parse_key_id((const char *) s->data, s->len, ret);
}

int pinstore_save_key_id(const char *state_dir, const char *label, uint32_t id) {
        _cleanup_free_ char *path = NULL;
        char text[16];
        int r, n;

        r = state_path(state_dir, "keys", label, &path);
        if (r < 0)
                return r;
        n = snprintf(text, sizeof(text), "%u\n", id);
        r = pinstore_write_atomic(path, text, (size_t) n, 0600, (uid_t) -1, (gid_t) -1);
        return r < 0 ? r : 0;
}

int pinstore_write_runtime(const char *runtime_dir, const char *label, const struct secret_buf *pin,
                           const char *group, char **ret_path) {
        _cleanup_free_ char *name = NULL, *path = NULL;
        gid_t gid = (gid_t) -1;
        int r;

        if (!pinstore_pin_source_ok(pin->data, pin->len))
                return -EINVAL;
        if (group) {
                r = pinstore_group_gid(group, &gid);
                if (r < 0)
                        return r;
        }
        r = pinstore_label_filename(label, &name);
        if (r < 0)
                return r;
        if (asprintf(&path, "%s/%s.pin", runtime_dir, name) < 0)
                return -ENOMEM;
        r = pinstore_write_atomic(path, pin->data, pin->len, group ? 0440 : 0400, (uid_t) -1, gid);
        if (r < 0)
                return r;
        *ret_path = TAKE_PTR(path);
        return 0;
}
