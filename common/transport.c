/* Unix and vsock stream sockets behind p11-kit's address syntax; bounded connect, send and receive. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <linux/vm_sockets.h>

#include "common/time-util.h"
#include "common/transport.h"
#include "common/parse-util.h"

/* ---- addresses ---- */

/* p11-kit percent-decodes the path; %00 and stray '%' are refused. */
static int parse_unix_path(const char *s, struct transport_addr *a) {
        size_t n = 0;

        while (*s) {
                char c = *s++;

                if (c == '%') {
                        int hi = unhexchar(s[0]), lo = hi >= 0 ? unhexchar(s[1]) : -1;
                        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                                return -EINVAL;
                        c = (char) (hi << 4 | lo);
                        s += 2;
                }
                if (n + 1 >= sizeof(a->path))
                        return -EINVAL;
                a->path[n++] = c;
        }
        a->path[n] = '\0';
        if (a->path[0] != '/')
                return -EINVAL;
        return 0;
}

/* Decimal digits only: no sign, no blanks, no hex, nothing above UINT32_MAX. */
static int parse_u32(const char *s, size_t len, uint32_t *ret) {
        uint64_t v = 0;

        if (len == 0 || len > 10)
                return -EINVAL;
        for (size_t i = 0; i < len; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -EINVAL;
                v = v * 10 + (uint64_t) (s[i] - '0');
        }
        if (v > UINT32_MAX)
                return -EINVAL;
        *ret = (uint32_t) v;
        return 0;
}

/* "cid=N;port=P" in either order, cid optional. */
static int parse_vsock_params(const char *s, struct transport_addr *a) {
        bool have_cid = false, have_port = false;

        a->cid = TRANSPORT_VSOCK_CID_ANY;
        for (;;) {
                const char *end = strchrnul(s, ';');
                bool *seen;
                uint32_t *dst;
                size_t skip;
                int r;

                if (strncmp(s, "cid=", 4) == 0) {
                        seen = &have_cid, dst = &a->cid, skip = 4;
                } else if (strncmp(s, "port=", 5) == 0) {
                        seen = &have_port, dst = &a->port, skip = 5;
                } else
                        return -EINVAL;
                if (*seen || (size_t) (end - s) < skip)
                        return -EINVAL;
                r = parse_u32(s + skip, (size_t) (end - s) - skip, dst);
                if (r < 0)
                        return r;
                *seen = true;
                if (*end == '\0')
                        break;
                s = end + 1;
        }
        return have_port ? 0 : -EINVAL;
}

int transport_addr_parse(const char *s, struct transport_addr *ret) {
        struct transport_addr a = {};
        int r;

        if (!s || !ret)
                return -EINVAL;
        if (strncmp(s, "unix:path=", 10) == 0) {
                a.family = TRANSPORT_UNIX;
                r = parse_unix_path(s + 10, &a);
        } else if (strncmp(s, "vsock:", 6) == 0) {
                a.family = TRANSPORT_VSOCK;
                r = parse_vsock_params(s + 6, &a);
        } else
                r = -EINVAL;
        if (r < 0)
                return r;
        *ret = a;
        return 0;
}

static bool path_char_verbatim(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               strchr("/._-~+,@:", c);
}

bool transport_addr_equal(const struct transport_addr *a, const struct transport_addr *b) {
        if (a->family != b->family)
                return false;
        if (a->family == TRANSPORT_UNIX)
                return strcmp(a->path, b->path) == 0;
        return a->cid == b->cid && a->port == b->port;
}

int transport_addr_format(const struct transport_addr *a, char *buf, size_t size) {
        size_t n;
        int k;

        if (!a || !buf || size == 0)
                return -EINVAL;
        switch (a->family) {
        case TRANSPORT_UNIX:
                k = snprintf(buf, size, "unix:path=");
                n = (size_t) k;
                for (const char *p = a->path; *p; p++) {
                        if (path_char_verbatim(*p)) {
                                if (n + 1 >= size)
                                        return -ENOBUFS;
                                buf[n++] = *p;
                        } else {
                                if (n + 3 >= size)
                                        return -ENOBUFS;
                                (void) snprintf(buf + n, 4, "%%%02X", (unsigned char) *p);
                                n += 3;
                        }
                }
                if (n >= size)
                        return -ENOBUFS;
                buf[n] = '\0';
                return 0;
        case TRANSPORT_VSOCK:
                if (a->cid == TRANSPORT_VSOCK_CID_ANY)
                        k = snprintf(buf, size, "vsock:port=%" PRIu32, a->port);
                else
                        k = snprintf(buf, size, "vsock:cid=%" PRIu32 ";port=%" PRIu32, a->cid, a->port);
                if (k < 0)
                        return -EINVAL;
                return (size_t) k < size ? 0 : -ENOBUFS;
        default: return -EINVAL;
        }
}

/* ---- sockets ---- */

union sockaddr_any {
        struct sockaddr sa;
        struct sockaddr_un un;
        struct sockaddr_vm vm;
};

static int sockaddr_from(const struct transport_addr *a, union sockaddr_any *ret, socklen_t *ret_len) {
        union sockaddr_any sa = {};
        size_t n;

        switch (a->family) {
        case TRANSPORT_UNIX:
                n = strnlen(a->path, sizeof(a->path));
                if (n == 0 || n >= sizeof(sa.un.sun_path) || a->path[0] != '/')
                        return -EINVAL;
                sa.un.sun_family = AF_UNIX;
                memcpy(sa.un.sun_path, a->path, n);
                *ret_len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + n + 1);
                break;
        case TRANSPORT_VSOCK:
                sa.vm.svm_family = AF_VSOCK;
                sa.vm.svm_cid = a->cid;
                sa.vm.svm_port = a->port;
                *ret_len = sizeof(sa.vm);
                break;
        default: return -EINVAL;
        }
        *ret = sa;
        return 0;
}

static int family_of(const struct transport_addr *a) {
        return a->family == TRANSPORT_VSOCK ? AF_VSOCK : AF_UNIX;
}

static int64_t now_ms(void) {
        return (int64_t) mono_msec();
}

/* Milliseconds left before deadline for poll(): -1 means no deadline. */
static int remaining_ms(int64_t deadline) {
        int64_t left;

        if (deadline < 0)
                return -1;
        left = deadline - now_ms();
        if (left <= 0)
                return 0;
        return left > INT_MAX ? INT_MAX : (int) left;
}

static int64_t deadline_from(int timeout_ms) {
        return timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
}

/* Wait for events until the deadline: 0, -ETIMEDOUT or the poll error. */
static int wait_fd(int fd, short events, int64_t deadline) {
        for (;;) {
                struct pollfd p = { .fd = fd, .events = events };
                int t = remaining_ms(deadline), n;

                n = poll(&p, 1, t);
                if (n > 0)
                        return 0; /* ready, hung up or in error: the next call says which */
                if (n == 0)
                        return -ETIMEDOUT;
                if (errno != EINTR)
                        return negative_errno();
        }
}

static int set_blocking(int fd) {
        int flags = fcntl(fd, F_GETFL);

        if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0)
                return negative_errno();
        return 0;
}

int transport_connect(const struct transport_addr *a, int timeout_ms) {
        _cleanup_close_ int fd = -1;
        union sockaddr_any sa;
        socklen_t salen;
        int64_t deadline;
        int r, err;
        socklen_t errlen = sizeof(err);

        if (!a)
                return -EINVAL;
        r = sockaddr_from(a, &sa, &salen);
        if (r < 0)
                return r;
        deadline = deadline_from(timeout_ms);

        fd = socket(family_of(a), SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return negative_errno();

        for (;;) {
                if (connect(fd, &sa.sa, salen) == 0)
                        break;
                if (errno == EAGAIN && a->family == TRANSPORT_UNIX) {
                        /* A unix listener with a full backlog: retry until the deadline. */
                        int t = remaining_ms(deadline);
                        if (t == 0)
                                return -ETIMEDOUT;
                        (void) poll(NULL, 0, t < 0 || t > 10 ? 10 : t);
                        continue;
                }
                if (errno != EINPROGRESS && errno != EINTR)
                        return negative_errno();
                r = wait_fd(fd, POLLOUT, deadline);
                if (r < 0)
                        return r;
                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &errlen) < 0)
                        return negative_errno();
                if (err != 0)
                        return -err;
                break;
        }

        r = set_blocking(fd);
        if (r < 0)
                return r;
        return TAKE_FD(fd);
}

/* A socket file nobody answers on is stale; a live one, or any other file, stays. */
static int unix_remove_stale(const struct transport_addr *a) {
        struct stat st;
        int fd;

        if (lstat(a->path, &st) < 0)
                return errno == ENOENT ? 0 : negative_errno();
        if (!S_ISSOCK(st.st_mode))
                return -EEXIST;
        fd = transport_connect(a, 100);
        if (fd >= 0) {
                safe_close(fd);
                return -EADDRINUSE;
        }
        if (fd != -ECONNREFUSED && fd != -ENOENT)
                return fd;
        if (unlink(a->path) < 0 && errno != ENOENT)
                return negative_errno();
        return 0;
}

int transport_listen(const struct transport_addr *a, mode_t mode, gid_t gid, int backlog) {
        _cleanup_close_ int fd = -1;
        union sockaddr_any sa;
        socklen_t salen;
        int r;

        if (!a)
                return -EINVAL;
        r = sockaddr_from(a, &sa, &salen);
        if (r < 0)
                return r;
        if (a->family == TRANSPORT_UNIX) {
                r = unix_remove_stale(a);
                if (r < 0)
                        return r;
        }

        fd = socket(family_of(a), SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return negative_errno();
        if (bind(fd, &sa.sa, salen) < 0)
                return negative_errno();
        /* Until listen() nobody can connect, so the file is never reachable with the wrong mode. */
        if (a->family == TRANSPORT_UNIX) {
                if (mode != 0 && chmod(a->path, mode) < 0)
                        goto fail_unlink;
                if (gid != (gid_t) -1 && chown(a->path, (uid_t) -1, gid) < 0)
                        goto fail_unlink;
        }
        if (listen(fd, backlog > 0 ? backlog : SOMAXCONN) < 0)
                goto fail_unlink;
        return TAKE_FD(fd);

fail_unlink:
        r = negative_errno();
        if (a->family == TRANSPORT_UNIX)
                (void) unlink(a->path);
        return r;
}

static int vsock_opt(int fd, int name, uint64_t *ret) {
        unsigned long long v = 0;
        socklen_t len = sizeof(v);

        if (getsockopt(fd, AF_VSOCK, name, &v, &len) < 0)
                return negative_errno();
        if (len != sizeof(v))
                return -EIO;
        *ret = v;
        return 0;
}

int transport_vsock_set_buffer(int fd, uint64_t size) {
        unsigned long long v = size;
        uint64_t min, max, cur;
        int r;

        if (fd < 0 || size == 0)
                return -EINVAL;
        r = vsock_opt(fd, SO_VM_SOCKETS_BUFFER_MIN_SIZE, &min);
        if (r < 0)
                return r;
        if (min > size && setsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_BUFFER_MIN_SIZE, &v, sizeof(v)) < 0)
                return negative_errno();
        /* The maximum first: the kernel clamps the size to it. */
        if (setsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_BUFFER_MAX_SIZE, &v, sizeof(v)) < 0 ||
            setsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_BUFFER_SIZE, &v, sizeof(v)) < 0)
                return negative_errno();
        r = vsock_opt(fd, SO_VM_SOCKETS_BUFFER_MAX_SIZE, &max);
        if (r >= 0)
                r = vsock_opt(fd, SO_VM_SOCKETS_BUFFER_SIZE, &cur);
        if (r < 0)
                return r;
        return max == size && cur == size ? 0 : -EIO;
}

/* ---- whole-buffer I/O ---- */

int transport_send_all(int fd, const void *buf, size_t len, int timeout_ms) {
        const uint8_t *p = buf;
        int64_t deadline = -2; /* computed on the first wait: the fast path needs no clock */

        if (fd < 0 || (!buf && len > 0))
                return -EINVAL;
        while (len > 0) {
                ssize_t n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
                int r;

                if (n > 0) {
                        p += n;
                        len -= (size_t) n;
                        continue;
                }
                if (n == 0)
                        return -ECONNRESET;
                if (errno == EINTR)
                        continue;
                if (errno == EPIPE || errno == ECONNRESET)
                        return -ECONNRESET;
                if (errno != EAGAIN && errno != EWOULDBLOCK)
                        return negative_errno();
                if (deadline == -2)
                        deadline = deadline_from(timeout_ms);
                r = wait_fd(fd, POLLOUT, deadline);
                if (r < 0)
                        return r;
        }
        return 0;
}

int transport_recv_all(int fd, void *buf, size_t len, int timeout_ms) {
        uint8_t *p = buf;
        int64_t deadline = -2;

        if (fd < 0 || (!buf && len > 0))
                return -EINVAL;
        while (len > 0) {
                ssize_t n = recv(fd, p, len, MSG_DONTWAIT);
                int r;

                if (n > 0) {
                        p += n;
                        len -= (size_t) n;
                        continue;
                }
                if (n == 0)
                        return -ECONNRESET;
                if (errno == EINTR)
                        continue;
                if (errno != EAGAIN && errno != EWOULDBLOCK)
                        return negative_errno();
                if (deadline == -2)
                        deadline = deadline_from(timeout_ms);
                r = wait_fd(fd, POLLIN, deadline);
                if (r < 0)
                        return r;
        }
        return 0;
}
