/* The serving loop: data workers over the data socket, a small pool of control workers over the control
 * socket, each pool with its own epoll set. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "common/cleanup.h"
#include "common/rpc-frame.h"
#include "common/transport.h"
#include "enclave-token/dispatch.h"

/* Defaults of the connection limits. A peer is a uid on a unix socket (SO_PEERCRED) and a CID on
 * vsock, where every connection comes from the parent: there the per-peer bound is the total, and the
 * timeouts and the choice of which connection to close at a limit do the work (see README.md). */
#define ETOK_MAX_CONNECTIONS_DEFAULT          4096
#define ETOK_MAX_CONNECTIONS_PER_PEER_DEFAULT 1024
#define ETOK_MAX_CONTROL_CONNECTIONS_DEFAULT  32
#define ETOK_HELLO_TIMEOUT_DEFAULT_SEC        10
#define ETOK_FRAME_TIMEOUT_DEFAULT_SEC        10
#define ETOK_IDLE_TIMEOUT_DEFAULT_SEC         3600
/* Threads serving the control channel, besides the data workers: provisioning calls wait on KMS without
 * taking signing capacity; two, so one slow round does not hold up every other control client. */
#define ETOK_CONTROL_WORKERS 2
/* The control socket: only its owner (the agent, or root) may provision. */
#define ETOK_CONTROL_SOCKET_MODE 0600

/* vsock receive buffers (listeners and accepted sockets), instead of the kernel's 256 KiB: the data
 * channel's largest frame, so one connection cannot have the parent queue more than that; the control
 * channel's frames (up to 1 MiB) stream through a buffer of the kernel's default size, an explicit cap
 * rather than a raise, as any parent process can connect to it. */
#define ETOK_VSOCK_BUFFER_DATA    ((uint64_t) RPC_HEADER_SIZE + RPC_MAX_BODY_DATA)
#define ETOK_VSOCK_BUFFER_CONTROL ((uint64_t) 256 * 1024)

struct etok_server_limits {
        unsigned max_conns;          /* data channel, in total */
        unsigned max_conns_per_peer; /* data channel, per uid (unix) or CID (vsock); <= max_conns */
        unsigned max_control_conns;  /* control channel, in total and per peer */
        unsigned hello_timeout_sec;  /* from connect() to the end of HELLO */
        unsigned frame_timeout_sec;  /* from a frame's first byte to its last; an answer the client does
                                      * not read */
        unsigned idle_timeout_sec;   /* data channel, since the last request; 0: never */
};

struct etok_server_config {
        struct transport_addr data;
        struct transport_addr control;
        unsigned workers;        /* worker threads, >= 1 */
        mode_t data_socket_mode; /* unix data socket; 0 leaves the umask's mode. The control socket is
                                  * always ETOK_CONTROL_SOCKET_MODE. */
        gid_t data_socket_gid;   /* unix data socket; (gid_t) -1 leaves it */
        unsigned busy_poll_usec; /* after each request a worker polls this long before it sleeps */
        struct etok_server_limits limits;
};

struct etok_server;

/* Applies the channel's vsock buffer cap (above) to a vsock socket: what the server does to its
 * listeners and to every accepted connection. 0 or negative errno (transport_vsock_set_buffer()). */
_must_check_ int etok_server_vsock_limit(int fd, enum rpc_channel ch);

/* Creates both listening sockets (nothing is served until etok_server_start()). */
_must_check_ int etok_server_new(const struct etok_dispatch *d, const struct etok_server_config *cfg,
                                 struct etok_server **ret);
/* Starts the workers. */
_must_check_ int etok_server_start(struct etok_server *s);
/* Closes connections past their timeout and logs what the limits refused since the last call. Call it
 * about once a second from a thread that is not a worker. */
void etok_server_sweep(struct etok_server *s);
/* Asks the workers to finish and joins them. Safe to call when not started. */
void etok_server_stop(struct etok_server *s);
/* Stops, closes every connection (wiping its buffers), closes and unlinks the sockets. */
struct etok_server *etok_server_free(struct etok_server *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct etok_server *, etok_server_free);
