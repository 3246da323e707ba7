/* The sd_notify() datagram protocol, without libsystemd: READY=1, STATUS=, RELOADING=1, STOPPING=1,
 * WATCHDOG=1.
 *
 * Why not libsystemd: the protocol is one datagram to a unix socket (chrony does the same), and
 * the agent then needs no library that pulls in half of systemd for a sendto(). */
#include <errno.h>
#include <limits.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "agent/notify.h"
#include "common/parse-util.h"

int notify_send(const char *state) {
        _cleanup_close_ int fd = -1;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        const char *path = secure_getenv("NOTIFY_SOCKET");
        size_t len, state_len = strlen(state);
        socklen_t salen;
        ssize_t n;

        if (!path || !*path)
                return 0;
        len = strlen(path);
        if ((path[0] != '/' && path[0] != '@') || len < 2 || len >= sizeof(sa.sun_path))
                return -EINVAL;
        memcpy(sa.sun_path, path, len);
        if (path[0] == '@')
                sa.sun_path[0] = '\0'; /* abstract namespace: no terminating NUL in the address length */
        salen = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + len + (path[0] == '/'));

        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return negative_errno();
        n = sendto(fd, state, state_len, MSG_NOSIGNAL, (struct sockaddr *) &sa, salen);
        if (n < 0)
                return negative_errno();
        if ((size_t) n != state_len)
                return -EMSGSIZE;
        return 1;
}

int notify_sendf(const char *fmt, ...) {
        _cleanup_free_ char *s = NULL;
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        return notify_send(s);
}

static int parse_u64(const char *s, uint64_t *ret) {
        unsigned long v;
        int r;

        r = parse_unsigned(s, 10, 0, ULONG_MAX, &v);
        if (r < 0)
                return -EINVAL;
        *ret = v;
        return 0;
}

uint64_t notify_watchdog_usec(void) {
        uint64_t usec = 0, pid = 0;
        const char *p = secure_getenv("WATCHDOG_PID");

        if (p && (parse_u64(p, &pid) < 0 || pid != (uint64_t) getpid()))
                return 0;
        if (parse_u64(secure_getenv("WATCHDOG_USEC"), &usec) < 0)
                return 0;
        return usec;
}
