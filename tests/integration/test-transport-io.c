/* Bounded send/recv that wait out their timeouts or need a second process, and vsock up to connect():
 * from test-transport.c, in the integration suite because they take time and start processes. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/vm_sockets.h>

#include "common/transport.h"
#include "tests/lib/tap.h"

static void test_recv_timeout(void) {
        int sv[2];
        char buf[4];

        ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
        ASSERT_ERR(transport_recv_all(sv[0], buf, 4, 50), -ETIMEDOUT);
        ASSERT_ERR(transport_recv_all(sv[0], buf, 4, 0), -ETIMEDOUT);
        /* a partial message also times out */
        ASSERT_OK(transport_send_all(sv[1], "ab", 2, 50));
        ASSERT_ERR(transport_recv_all(sv[0], buf, 4, 50), -ETIMEDOUT);
        safe_close(sv[0]);
        safe_close(sv[1]);
}

static void test_send_timeout(void) {
        static uint8_t big[1 << 20];
        int sv[2], sz = 4096;

        ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
        ASSERT_OK(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz)));
        ASSERT_OK(setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz)));
        /* nobody reads: the whole buffer cannot go out */
        ASSERT_ERR(transport_send_all(sv[0], big, sizeof(big), 50), -ETIMEDOUT);
        safe_close(sv[0]);
        safe_close(sv[1]);
}

static void test_large_transfer(void) {
        static uint8_t out[300000], in[300000];
        int sv[2];
        pid_t pid;

        for (size_t i = 0; i < sizeof(out); i++)
                out[i] = (uint8_t) (i * 7 + (i >> 8));
        ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
        pid = fork();
        ASSERT_OK(pid);
        if (pid == 0) {
                safe_close(sv[0]);
                _exit(transport_send_all(sv[1], out, sizeof(out), 10000) < 0 ? 1 : 0);
        }
        safe_close(sv[1]);
        ASSERT_OK(transport_recv_all(sv[0], in, sizeof(in), 10000));
        ASSERT_MEMEQ(in, out, sizeof(out));
        {
                int status;
                ASSERT_EQ(waitpid(pid, &status, 0), pid);
                ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        }
        safe_close(sv[0]);
}

/* ---- vsock: no loopback here, so only up to socket()/connect() ---- */

static bool vsock_available(void) {
        int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (fd < 0)
                return false;
        safe_close(fd);
        return true;
}

static void test_vsock_connect_fails(void) {
        struct transport_addr a;
        int r;

        if (!vsock_available())
                TAP_SKIP("AF_VSOCK socket() unavailable");
        /* cid 1 is the local (loopback) cid: refused or unreachable without vsock_loopback */
        ASSERT_OK(transport_addr_parse("vsock:cid=1;port=9", &a));
        r = transport_connect(&a, 500);
        if (r >= 0) {
                safe_close(r);
                TAP_FAIL_("%s", "connected to vsock cid 1 port 9");
        }
        printf("# vsock cid 1: %s\n", strerror(-r));
        /* the host cid, a port nobody listens on */
        ASSERT_OK(transport_addr_parse("vsock:cid=2;port=4000000000", &a));
        r = transport_connect(&a, 500);
        if (r >= 0) {
                safe_close(r);
                TAP_FAIL_("%s", "connected to vsock cid 2");
        }
        printf("# vsock cid 2: %s\n", strerror(-r));
}

static void test_vsock_listen(void) {
        struct transport_addr a;
        int fd;

        if (!vsock_available())
                TAP_SKIP("AF_VSOCK socket() unavailable");
        ASSERT_OK(transport_addr_parse("vsock:port=4000000001", &a));
        fd = transport_listen(&a, 0, (gid_t) -1, 4);
        /* Either works or fails cleanly (no vsock transport loaded). */
        if (fd >= 0) {
                ASSERT_TRUE(fcntl(fd, F_GETFL) & O_NONBLOCK);
                safe_close(fd);
        } else
                printf("# vsock listen: %s\n", strerror(-fd));
}

TAP_MAIN(TEST("/transport/io/recv-timeout", test_recv_timeout),
         TEST("/transport/io/send-timeout", test_send_timeout),
         TEST("/transport/io/large-transfer", test_large_transfer),
         TEST("/transport/vsock/connect-fails", test_vsock_connect_fails),
         TEST("/transport/vsock/listen", test_vsock_listen))
