/* Addresses, unix sockets in a temp dir, bounded send/recv over socketpairs (timeouts, a second process and
 * vsock: tests/integration/test-transport-io.c). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/vm_sockets.h>

#include "common/transport.h"
#include "tests/lib/tap.h"

/* ---- addresses ---- */

static void test_parse_good(void) {
        static const struct {
                const char *in;
                enum transport_family family;
                const char *path;
                uint32_t cid, port;
                const char *canonical;
        } cases[] = {
                { "unix:path=/run/enclave-acm/data.sock", TRANSPORT_UNIX, "/run/enclave-acm/data.sock", 0, 0,
                  NULL },
                { "unix:path=/", TRANSPORT_UNIX, "/", 0, 0, NULL },
                { "unix:path=/tmp/a%20b%3Bc", TRANSPORT_UNIX, "/tmp/a b;c", 0, 0, NULL },
                { "unix:path=/tmp/%41", TRANSPORT_UNIX, "/tmp/A", 0, 0, "unix:path=/tmp/A" },
                { "vsock:cid=16;port=9999", TRANSPORT_VSOCK, NULL, 16, 9999, NULL },
                { "vsock:port=9999;cid=16", TRANSPORT_VSOCK, NULL, 16, 9999, "vsock:cid=16;port=9999" },
                { "vsock:port=10000", TRANSPORT_VSOCK, NULL, TRANSPORT_VSOCK_CID_ANY, 10000, NULL },
                { "vsock:cid=0;port=0", TRANSPORT_VSOCK, NULL, 0, 0, NULL },
                { "vsock:cid=4294967294;port=4294967295", TRANSPORT_VSOCK, NULL, 4294967294u, 4294967295u,
                  NULL },
                { "vsock:cid=4294967295;port=1", TRANSPORT_VSOCK, NULL, TRANSPORT_VSOCK_CID_ANY, 1,
                  "vsock:port=1" },
                { "vsock:cid=007;port=08", TRANSPORT_VSOCK, NULL, 7, 8, "vsock:cid=7;port=8" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct transport_addr a, b;
                char buf[256];

                if (transport_addr_parse(cases[i].in, &a) < 0)
                        TAP_FAIL_("'%s' refused", cases[i].in);
                ASSERT_EQ(a.family, cases[i].family);
                if (cases[i].path)
                        ASSERT_STREQ(a.path, cases[i].path);
                else {
                        ASSERT_EQ(a.cid, cases[i].cid);
                        ASSERT_EQ(a.port, cases[i].port);
                }
                ASSERT_OK(transport_addr_format(&a, buf, sizeof(buf)));
                ASSERT_STREQ(buf, cases[i].canonical ? cases[i].canonical : cases[i].in);
                ASSERT_OK(transport_addr_parse(buf, &b));
                ASSERT_MEMEQ(&a, &b, sizeof(a));
        }
}

static void test_parse_bad(void) {
        static const char *const cases[] = {
                "",
                "unix:",
                "unix:path=",
                "unix:path=relative/x.sock",
                "unix:path=./x",
                "unix:/tmp/x",
                "unix:path=/tmp/%",
                "unix:path=/tmp/%4",
                "unix:path=/tmp/%zz",
                "unix:path=/tmp/%00x",
                "UNIX:path=/tmp/x",
                "tcp:host=localhost;port=1",
                "vsock:",
                "vsock:cid=16",
                "vsock:cid=16;",
                "vsock:;port=1",
                "vsock:cid=16;port=",
                "vsock:cid=;port=1",
                "vsock:cid=16;port=9999;",
                "vsock:cid=16;port=9999;cid=3",
                "vsock:port=1;port=2",
                "vsock:cid=16;port=9999;foo=1",
                "vsock:cid=-1;port=1",
                "vsock:cid=+1;port=1",
                "vsock:cid= 1;port=1",
                "vsock:cid=1 ;port=1",
                "vsock:cid=0x10;port=1",
                "vsock:cid=4294967296;port=1",
                "vsock:cid=1;port=99999999999",
                "vsock:cid=1;port=00000000001",
                "vsock:CID=1;port=1",
                "vsock:cid=1,port=1",
                "vsock cid=1;port=1",
        };
        struct transport_addr a = { .port = 77 };
        char longpath[200];

        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                if (transport_addr_parse(cases[i], &a) != -EINVAL)
                        TAP_FAIL_("'%s' accepted", cases[i]);
        ASSERT_EQ(a.port, 77); /* ret written only on success */
        ASSERT_ERR(transport_addr_parse(NULL, &a), -EINVAL);
        ASSERT_ERR(transport_addr_parse("vsock:port=1", NULL), -EINVAL);

        /* sun_path holds 107 characters plus the NUL */
        memcpy(longpath, "unix:path=/", 11);
        memset(longpath + 11, 'a', 106);
        longpath[117] = '\0';
        ASSERT_OK(transport_addr_parse(longpath, &a));
        ASSERT_EQ(strlen(a.path), 107);
        longpath[117] = 'a';
        longpath[118] = '\0';
        ASSERT_ERR(transport_addr_parse(longpath, &a), -EINVAL);
}

static void test_format_small(void) {
        struct transport_addr a;
        char buf[64];

        ASSERT_OK(transport_addr_parse("vsock:cid=16;port=9999", &a));
        ASSERT_ERR(transport_addr_format(&a, buf, strlen("vsock:cid=16;port=9999")), -ENOBUFS);
        ASSERT_OK(transport_addr_format(&a, buf, strlen("vsock:cid=16;port=9999") + 1));
        ASSERT_OK(transport_addr_parse("unix:path=/a%20b", &a));
        ASSERT_ERR(transport_addr_format(&a, buf, strlen("unix:path=/a%20b")), -ENOBUFS);
        ASSERT_ERR(transport_addr_format(&a, buf, 5), -ENOBUFS);
        ASSERT_OK(transport_addr_format(&a, buf, strlen("unix:path=/a%20b") + 1));
        ASSERT_STREQ(buf, "unix:path=/a%20b");
        ASSERT_ERR(transport_addr_format(&a, buf, 0), -EINVAL);
        a.family = _TRANSPORT_MAX;
        ASSERT_ERR(transport_addr_format(&a, buf, sizeof(buf)), -EINVAL);
}

/* ---- unix sockets in a temp dir ---- */

static char tmpdir[64];

static void make_tmpdir(void) {
        if (!tmpdir[0]) {
                strcpy(tmpdir, "/tmp/test-transport-XXXXXX");
                if (!mkdtemp(tmpdir))
                        tmpdir[0] = '\0';
        }
}

static void unix_addr(struct transport_addr *a, const char *name) {
        *a = (struct transport_addr){ .family = TRANSPORT_UNIX };
        (void) snprintf(a->path, sizeof(a->path), "%s/%s", tmpdir, name);
}

static int accept_one(int lfd) {
        struct pollfd p = { .fd = lfd, .events = POLLIN };

        if (poll(&p, 1, 5000) != 1)
                return -ETIMEDOUT;
        return accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
}

static void test_unix_listen_connect(void) {
        _cleanup_close_ int lfd = -1, cfd = -1, sfd = -1;
        struct transport_addr a;
        struct stat st;
        char buf[6];

        make_tmpdir();
        ASSERT_TRUE(tmpdir[0]);
        unix_addr(&a, "data.sock");
        lfd = transport_listen(&a, 0660, getgid(), 8);
        ASSERT_OK(lfd);
        ASSERT_TRUE(fcntl(lfd, F_GETFD) & FD_CLOEXEC);
        ASSERT_TRUE(fcntl(lfd, F_GETFL) & O_NONBLOCK);
        ASSERT_OK(stat(a.path, &st));
        ASSERT_TRUE(S_ISSOCK(st.st_mode));
        ASSERT_EQ(st.st_mode & 07777, 0660);
        ASSERT_EQ(st.st_gid, getgid());

        cfd = transport_connect(&a, 1000);
        ASSERT_OK(cfd);
        ASSERT_TRUE(fcntl(cfd, F_GETFD) & FD_CLOEXEC);
        ASSERT_FALSE(fcntl(cfd, F_GETFL) & O_NONBLOCK); /* back to blocking */
        sfd = accept_one(lfd);
        ASSERT_OK(sfd);

        ASSERT_OK(transport_send_all(cfd, "hello", 5, 1000));
        ASSERT_OK(transport_recv_all(sfd, buf, 5, 1000));
        ASSERT_MEMEQ(buf, "hello", 5);
        ASSERT_OK(transport_send_all(sfd, NULL, 0, 1000));
        ASSERT_OK(transport_recv_all(sfd, NULL, 0, 1000));

        /* A live socket is not replaced. */
        ASSERT_ERR(transport_listen(&a, 0, (gid_t) -1, 8), -EADDRINUSE);

        /* Once the listener is gone the file is stale and is replaced. */
        lfd = safe_close(lfd);
        ASSERT_ERR(transport_connect(&a, 1000), -ECONNREFUSED);
        lfd = transport_listen(&a, 0600, (gid_t) -1, 8);
        ASSERT_OK(lfd);
        ASSERT_OK(stat(a.path, &st));
        ASSERT_EQ(st.st_mode & 07777, 0600);
        (void) unlink(a.path);
}

static void test_unix_errors(void) {
        _cleanup_close_ int fd = -1;
        struct transport_addr a;

        make_tmpdir();
        unix_addr(&a, "missing.sock");
        ASSERT_ERR(transport_connect(&a, 1000), -ENOENT);

        /* A regular file in the way is never removed. */
        unix_addr(&a, "regular");
        fd = open(a.path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
        ASSERT_OK(fd);
        ASSERT_ERR(transport_listen(&a, 0, (gid_t) -1, 8), -EEXIST);
        ASSERT_ERR(transport_connect(&a, 1000), -ECONNREFUSED);
        ASSERT_OK(access(a.path, F_OK));
        (void) unlink(a.path);

        unix_addr(&a, "nodir/x.sock");
        ASSERT_ERR(transport_listen(&a, 0, (gid_t) -1, 8), -ENOENT);

        ASSERT_ERR(transport_connect(NULL, 1000), -EINVAL);
        ASSERT_ERR(transport_listen(NULL, 0, (gid_t) -1, 8), -EINVAL);
        a = (struct transport_addr){ .family = TRANSPORT_UNIX }; /* empty path */
        ASSERT_ERR(transport_connect(&a, 1000), -EINVAL);
        a.family = _TRANSPORT_MAX;
        ASSERT_ERR(transport_connect(&a, 1000), -EINVAL);
}

static void test_io_invalid(void) {
        char c;

        ASSERT_ERR(transport_send_all(-1, "a", 1, 10), -EINVAL);
        ASSERT_ERR(transport_recv_all(-1, &c, 1, 10), -EINVAL);
        ASSERT_ERR(transport_send_all(0, NULL, 1, 10), -EINVAL);
        ASSERT_ERR(transport_recv_all(0, NULL, 1, 10), -EINVAL);
}

/* ---- socketpairs ---- */

static void test_recv_eof(void) {
        int sv[2];
        char buf[4];

        ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
        ASSERT_OK(transport_send_all(sv[1], "abc", 3, 50));
        safe_close(sv[1]);
        /* three bytes then EOF: short read is an error, not a retry */
        ASSERT_ERR(transport_recv_all(sv[0], buf, 4, 1000), -ECONNRESET);
        ASSERT_ERR(transport_recv_all(sv[0], buf, 1, 1000), -ECONNRESET);
        safe_close(sv[0]);
}

static void test_send_closed_peer(void) {
        int sv[2];
        struct sigaction old, ign = { .sa_handler = SIG_DFL };

        /* With SIGPIPE at its default a missing MSG_NOSIGNAL would kill the test. */
        ASSERT_OK(sigaction(SIGPIPE, &ign, &old));
        ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
        safe_close(sv[1]);
        ASSERT_ERR(transport_send_all(sv[0], "abc", 3, 1000), -ECONNRESET);
        safe_close(sv[0]);
        ASSERT_OK(sigaction(SIGPIPE, &old, NULL));
}

static void test_cleanup_tmpdir(void) {
        if (tmpdir[0])
                ASSERT_OK(rmdir(tmpdir));
}

TAP_MAIN(TEST("/transport/addr/parse-good", test_parse_good),
         TEST("/transport/addr/parse-bad", test_parse_bad),
         TEST("/transport/addr/format-small", test_format_small),
         TEST("/transport/unix/listen-connect", test_unix_listen_connect),
         TEST("/transport/unix/errors", test_unix_errors), TEST("/transport/io/invalid", test_io_invalid),
         TEST("/transport/io/recv-eof", test_recv_eof),
         TEST("/transport/io/send-closed-peer", test_send_closed_peer),
         TEST("/transport/cleanup", test_cleanup_tmpdir))
