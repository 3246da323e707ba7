/* Unix and vsock stream sockets behind one address syntax (p11-kit's): unix:path=/x, vsock:cid=16;port=9999.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/un.h>

#include "common/cleanup.h"

enum transport_family {
        TRANSPORT_UNIX,
        TRANSPORT_VSOCK,
        _TRANSPORT_MAX,
        _TRANSPORT_INVALID = -EINVAL,
};

#define TRANSPORT_VSOCK_CID_ANY UINT32_C(0xffffffff) /* VMADDR_CID_ANY: listen side, "vsock:port=N" */

struct transport_addr {
        enum transport_family family;
        char path[sizeof(((struct sockaddr_un *) 0)->sun_path)]; /* unix, NUL-terminated */
        uint32_t cid;                                            /* vsock */
        uint32_t port;                                           /* vsock */
};

/* "unix:path=/run/x.sock", "vsock:cid=16;port=9999", "vsock:port=9999" (cid any).
 * -EINVAL for anything else: unknown scheme, unknown or repeated parameter, relative or
 * too long path, non-numeric or out-of-range cid/port. */
_must_check_ int transport_addr_parse(const char *s, struct transport_addr *ret);
/* The same endpoint: family, and path or CID and port. */
bool transport_addr_equal(const struct transport_addr *a, const struct transport_addr *b);
/* Writes the canonical text form; -ENOBUFS if it does not fit. */
_must_check_ int transport_addr_format(const struct transport_addr *a, char *buf, size_t size);

/* Connected blocking socket (SOCK_CLOEXEC) or negative errno; connect bounded by timeout_ms. */
_must_check_ int transport_connect(const struct transport_addr *a, int timeout_ms);
/* Listening non-blocking socket. Unix: a stale socket file is replaced; mode/gid applied when
 * mode != 0 / gid != (gid_t)-1. */
_must_check_ int transport_listen(const struct transport_addr *a, mode_t mode, gid_t gid, int backlog);

/* Caps an AF_VSOCK socket's receive buffer at size bytes (SO_VM_SOCKETS_BUFFER_MAX_SIZE, then
 * SO_VM_SOCKETS_BUFFER_SIZE; the minimum is lowered if it was above). On a listener the kernel copies
 * the values to each accepted socket. Reads both back: -EIO if the kernel did not take them, the
 * socket error otherwise (-ENOPROTOOPT on a socket that is not vsock). */
_must_check_ int transport_vsock_set_buffer(int fd, uint64_t size);

/* Whole-buffer send/receive on a blocking or non-blocking fd, each bounded by timeout_ms overall.
 * -ETIMEDOUT, -ECONNRESET (peer closed: also for EOF in recv), or the socket error. MSG_NOSIGNAL. */
_must_check_ int transport_send_all(int fd, const void *buf, size_t len, int timeout_ms);
_must_check_ int transport_recv_all(int fd, void *buf, size_t len, int timeout_ms);
