/* The vsock receive-buffer cap of issue 12, through the function enclave-token applies to its vsock
 * listeners and to every accepted connection (etok_server_vsock_limit()). AF_VSOCK sockets can be
 * created here though nothing can connect (no vsock loopback): the options are read back with
 * getsockopt(). A machine without AF_VSOCK fails this test: it cannot check what it is for. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/vm_sockets.h>

#include "common/transport.h"
#include "enclave-token/server.h"
#include "tests/lib/tap.h"

/* The option's value; UINT64_MAX (which no assertion expects) when getsockopt() fails. */
static uint64_t opt(int fd, int name) {
        unsigned long long v = 0;
        socklen_t len = sizeof(v);

        if (getsockopt(fd, AF_VSOCK, name, &v, &len) < 0 || len != sizeof(v)) {
                printf("# getsockopt(AF_VSOCK, %d): %s\n", name, strerror(errno));
                return UINT64_MAX;
        }
        return v;
}

/* Callers assert fd >= 0. */
static int vsock_socket(void) {
        int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (fd < 0)
                printf("# socket(AF_VSOCK): %s\n", strerror(errno));
        return fd;
}

static void test_channel(enum rpc_channel ch, uint64_t want) {
        int fd = vsock_socket();
        uint64_t before;

        ASSERT_TRUE(fd >= 0);
        before = opt(fd, SO_VM_SOCKETS_BUFFER_SIZE);
        printf("# %s: kernel default %llu, max %llu; cap %llu\n", rpc_channel_to_string(ch),
               (unsigned long long) before, (unsigned long long) opt(fd, SO_VM_SOCKETS_BUFFER_MAX_SIZE),
               (unsigned long long) want);
        ASSERT_OK(etok_server_vsock_limit(fd, ch));
        ASSERT_EQ(opt(fd, SO_VM_SOCKETS_BUFFER_MAX_SIZE), want);
        ASSERT_EQ(opt(fd, SO_VM_SOCKETS_BUFFER_SIZE), want);
        ASSERT_TRUE(opt(fd, SO_VM_SOCKETS_BUFFER_MIN_SIZE) <= want);
        /* A peer cannot raise it past the maximum: the kernel clamps to it. */
        {
                unsigned long long big = 4u << 20;
                ASSERT_OK(setsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_BUFFER_SIZE, &big, sizeof(big)));
                ASSERT_EQ(opt(fd, SO_VM_SOCKETS_BUFFER_SIZE), want);
        }
        safe_close(fd);
}

static void test_data(void) {
        /* The largest legal data frame fits, and less than the kernel's default 256 KiB is queued. */
        ASSERT_EQ(ETOK_VSOCK_BUFFER_DATA, RPC_HEADER_SIZE + RPC_MAX_BODY_DATA);
        test_channel(RPC_CHANNEL_DATA, ETOK_VSOCK_BUFFER_DATA);
}

static void test_control(void) {
        test_channel(RPC_CHANNEL_CONTROL, ETOK_VSOCK_BUFFER_CONTROL);
}

static void test_small_and_errors(void) {
        int fd = vsock_socket(), sv[2];

        ASSERT_TRUE(fd >= 0);
        /* Below the kernel's minimum (128): the minimum follows. */
        ASSERT_OK(transport_vsock_set_buffer(fd, 64));
        ASSERT_EQ(opt(fd, SO_VM_SOCKETS_BUFFER_SIZE), 64);
        ASSERT_EQ(opt(fd, SO_VM_SOCKETS_BUFFER_MIN_SIZE), 64);
        ASSERT_ERR(transport_vsock_set_buffer(fd, 0), -EINVAL);
        ASSERT_ERR(transport_vsock_set_buffer(-1, 4096), -EINVAL);
        safe_close(fd);
        /* Not a vsock socket. */
        ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
        ASSERT_TRUE(transport_vsock_set_buffer(sv[0], 4096) < 0);
        safe_close(sv[0]);
        safe_close(sv[1]);
}

/* enclave-token's own vsock listeners (vsock can listen here, not connect): found among this
 * process's fds by their port, each carries its channel's cap, which accepted sockets inherit. */
static int find_vsock_listener(uint32_t port) {
        for (int fd = 3; fd < 1024; fd++) {
                struct sockaddr_vm vm = {};
                socklen_t len = sizeof(vm);

                if (getsockname(fd, (struct sockaddr *) &vm, &len) == 0 && vm.svm_family == AF_VSOCK &&
                    vm.svm_port == port)
                        return fd;
        }
        return -1;
}

static void test_server_listeners(void) {
        const struct etok_dispatch d = {};
        struct etok_server_config cfg = {
                .workers = 1,
                .limits = { .max_conns = 8, .max_conns_per_peer = 8, .max_control_conns = 2 },
        };
        _cleanup_(etok_server_freep) struct etok_server *srv = NULL;
        uint32_t port = 40000u + (uint32_t) getpid() % 20000u;
        int fd;

        /* Ports another test may hold: try a few. */
        for (int attempt = 0; attempt < 10 && !srv; attempt++, port += 2) {
                cfg.data = (struct transport_addr){ .family = TRANSPORT_VSOCK,
                                                    .cid = TRANSPORT_VSOCK_CID_ANY,
                                                    .port = port };
                cfg.control = (struct transport_addr){ .family = TRANSPORT_VSOCK,
                                                       .cid = TRANSPORT_VSOCK_CID_ANY,
                                                       .port = port + 1 };
                if (etok_server_new(&d, &cfg, &srv) < 0)
                        srv = NULL;
        }
        ASSERT_TRUE(srv != NULL);
        port -= 2;
        fd = find_vsock_listener(port);
        ASSERT_TRUE(fd >= 0);
        ASSERT_EQ(opt(fd, SO_VM_SOCKETS_BUFFER_MAX_SIZE), ETOK_VSOCK_BUFFER_DATA);
        ASSERT_EQ(opt(fd, SO_VM_SOCKETS_BUFFER_SIZE), ETOK_VSOCK_BUFFER_DATA);
        fd = find_vsock_listener(port + 1);
        ASSERT_TRUE(fd >= 0);
        ASSERT_EQ(opt(fd, SO_VM_SOCKETS_BUFFER_MAX_SIZE), ETOK_VSOCK_BUFFER_CONTROL);
        ASSERT_EQ(opt(fd, SO_VM_SOCKETS_BUFFER_SIZE), ETOK_VSOCK_BUFFER_CONTROL);
}

TAP_MAIN(TEST("/vsock-buffer/data", test_data), TEST("/vsock-buffer/control", test_control),
         TEST("/vsock-buffer/small-and-errors", test_small_and_errors),
         TEST("/vsock-buffer/server-listeners", test_server_listeners))
