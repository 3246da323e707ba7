/* The serving loop: worker threads sharing one epoll set over the data and control sockets. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "common/cleanup.h"
#include "common/transport.h"
#include "enclave-token/dispatch.h"

#define ETOK_MAX_CONNECTIONS 4096

struct etok_server_config {
        struct transport_addr data;
        struct transport_addr control;
        unsigned workers;        /* worker threads, >= 1 */
        mode_t socket_mode;      /* unix sockets; 0 leaves the umask's mode */
        gid_t socket_gid;        /* unix sockets; (gid_t) -1 leaves it */
        unsigned busy_poll_usec; /* after each request a worker polls this long before it sleeps */
};

struct etok_server;

/* Creates both listening sockets (nothing is served until etok_server_start()). */
_must_check_ int etok_server_new(const struct etok_dispatch *d, const struct etok_server_config *cfg,
                                 struct etok_server **ret);
/* Starts the workers. */
_must_check_ int etok_server_start(struct etok_server *s);
/* Asks the workers to finish and joins them. Safe to call when not started. */
void etok_server_stop(struct etok_server *s);
/* Stops, closes every connection (wiping its buffers), closes and unlinks the sockets. */
struct etok_server *etok_server_free(struct etok_server *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct etok_server *, etok_server_free);
