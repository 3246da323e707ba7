/* Sends broken frames to an enclave-token socket and checks that the daemon drops that connection.
 *
 *   junk-client SOCKET_PATH MODE [HOLD_SECONDS]
 *
 * MODE:
 *   garbage      64 bytes that are not a frame header     -> closed, no answer
 *   badmagic     a header with the wrong magic            -> closed, no answer
 *   badversion   a header with protocol version 99        -> closed, no answer
 *   badkind      a "response" sent as a request          -> closed, no answer
 *   oversize     a header announcing a body over 1 MiB    -> closed, no answer
 *   oversize-data  a body of 64 KiB + 1 (over the data channel's maximum) -> closed, no answer
 *   before-hello a well-formed SIGN before HELLO          -> answered MALFORMED, then closed
 *   badcbor      HELLO whose body is not CBOR             -> answered with an error status, or closed
 *   half-header  8 of the 16 header bytes, held open HOLD_SECONDS, then closed by us
 *   half-body    a header announcing 100 bytes, 10 sent, held open HOLD_SECONDS, then closed by us
 *   half-login   (junk-client SOCKET half-login HOLD_SECONDS PIN) HELLO, then a LOGIN frame whose header
 *                announces one byte more than its whole body (slot 1, PIN), which is sent: the PIN sits
 *                in the daemon's read buffer, held open HOLD_SECONDS, then closed by us. Prints
 *                "half-login: sent" once the body is out and the daemon kept the connection open for
 *                half a second (tests take a core of the daemon then); exits 1 if it did not.
 * Exits 0 when the daemon behaved as described.
 *
 *   junk-client SOCKET_PATH flood COUNT KIND HOLD_SECONDS [STATUS_FILE]
 *
 * Opens COUNT connections, each left as KIND says: idle (nothing sent), hello (HELLO answered, then
 * nothing), half-header, half-body (as above; half-big: a header announcing the largest data body,
 * half of it sent; half-size:N: a header announcing an N-byte body, half of it sent; hello+KIND: HELLO
 * first). Then watches them for HOLD_SECONDS, noting each one the daemon closes. Once no connection was
 * closed for 2 s (or at the end, which comes early once the daemon closed them all) it writes "settled
 * open=N closed=M" to STATUS_FILE; at the end it prints one line of figures (opened, failed connects, closed
 * by the daemon, still open, and when the first and last were closed, in ms since the last one was opened)
 * and exits 0.
 *
 *   junk-client SOCKET_PATH sign-key SLOT KEY_ID PIN_FILE
 *
 * A well-formed LOGIN with the PIN in PIN_FILE, then an ECDSA SIGN of a 32-byte digest with key KEY_ID
 * (which the module would never send for a key it does not list). Prints "sign-key: LOGIN STATUS, SIGN
 * STATUS" and exits 0 when both calls got an answer.
 *
 *   junk-client SOCKET_PATH race MAX_SECONDS STOP_FILE
 *
 * Connects in a loop, from before the socket exists, until STOP_FILE exists or MAX_SECONDS are up;
 * each connection it gets sends HELLO and is closed. Prints the counts of attempts, connections,
 * answered HELLOs, and of EACCES, ECONNREFUSED and ENOENT, and exits 0. */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/cbor-write.h"
#include "common/p11-errmap.h"
#include "common/rpc-client.h"
#include "common/rpc-calls.h"
#include "common/rpc-frame.h"
#include "common/rpc-messages.h"

#define CLOSE_WAIT_MS 10000

static int connect_unix(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd;

        if (strncmp(path, "unix:path=", 10) == 0)
                path += 10;
        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        return fd;
}

/* 0 when sent; 1 when the daemon had already closed the connection (EPIPE/ECONNRESET), which
 * the checks below treat like a close; -errno otherwise. */
static int send_bytes(int fd, const void *p, size_t len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n == (ssize_t) len)
                return 0;
        if (n < 0 && (errno == EPIPE || errno == ECONNRESET))
                return 1;
        printf("send: %s\n", n < 0 ? strerror(errno) : "short write");
        return -EIO;
}

/* Header and body in one write, so the daemon sees them together. */
static int send_frame(int fd, const unsigned char h[RPC_HEADER_SIZE], const void *body, size_t body_len) {
        unsigned char buf[RPC_HEADER_SIZE + 64];

        if (body_len > sizeof(buf) - RPC_HEADER_SIZE)
                return -EINVAL;
        memcpy(buf, h, RPC_HEADER_SIZE);
        if (body_len > 0)
                memcpy(buf + RPC_HEADER_SIZE, body, body_len);
        return send_bytes(fd, buf, RPC_HEADER_SIZE + body_len);
}

/* Reads until EOF/reset, until stop_after bytes arrived (0: never stop early), or timeout.
 * Returns the bytes received, or -ETIMEDOUT. */
static long read_until(int fd, unsigned char *buf, size_t size, size_t stop_after) {
        struct timespec t0, t;
        unsigned char scratch[256];
        size_t got = 0;

        (void) clock_gettime(CLOCK_MONOTONIC, &t0);
        for (;;) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                long elapsed;
                ssize_t n;
                int r;

                (void) clock_gettime(CLOCK_MONOTONIC, &t);
                elapsed = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
                if (elapsed >= CLOSE_WAIT_MS)
                        return -ETIMEDOUT;
                r = poll(&p, 1, (int) (CLOSE_WAIT_MS - elapsed));
                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0)
                        return -ETIMEDOUT;
                if (got < size)
                        n = recv(fd, buf + got, size - got, 0);
                else
                        n = recv(fd, scratch, sizeof(scratch), 0); /* full: keep draining */
                if (n == 0 || (n < 0 && errno == ECONNRESET))
                        return (long) got;
                if (n < 0)
                        return -errno;
                if (got + (size_t) n <= size)
                        got += (size_t) n;
                if (stop_after > 0 && got >= stop_after)
                        return (long) got;
        }
}

/* Bytes received before the peer closed, or -ETIMEDOUT. */
static long read_until_closed(int fd, unsigned char *buf, size_t size) {
        return read_until(fd, buf, size, 0);
}

static void header(unsigned char out[RPC_HEADER_SIZE], uint32_t magic, uint8_t version, uint8_t kind,
                   uint8_t call, uint32_t body_len) {
        struct rpc_header h = {
                .magic = magic,
                .version = version,
                .kind = kind,
                .call = call,
                .request_id = 7,
                .body_len = body_len,
        };
        rpc_header_encode(&h, out);
}

static int expect_closed_silently(int fd) {
        unsigned char buf[256];
        long n = read_until_closed(fd, buf, sizeof(buf));

        if (n == -ETIMEDOUT) {
                printf("the daemon kept the connection open for %d ms\n", CLOSE_WAIT_MS);
                return 1;
        }
        if (n != 0) {
                printf("the daemon answered (%ld bytes) instead of closing silently\n", n);
                return 1;
        }
        return 0;
}

/* An answer with the given status (or any non-OK one when want < 0), then EOF (only when must_close). */
static int expect_error_then_closed(int fd, int want, bool must_close) {
        unsigned char buf[4096];
        struct rpc_header h;
        long n = must_close ? read_until_closed(fd, buf, sizeof(buf))
                            : read_until(fd, buf, sizeof(buf), RPC_HEADER_SIZE);

        if (n == -ETIMEDOUT) {
                printf("the daemon kept the connection open for %d ms\n", CLOSE_WAIT_MS);
                return 1;
        }
        if (n == 0 && !must_close)
                return 0; /* closed without an answer: fine too */
        if (n < RPC_HEADER_SIZE || rpc_header_decode(buf, RPC_CHANNEL_DATA, &h) < 0 ||
            h.kind != RPC_KIND_RESPONSE) {
                printf("expected a response header, got %ld bytes\n", n);
                return 1;
        }
        if ((want >= 0 && h.status != want) || (want < 0 && h.status == RPC_STATUS_OK)) {
                printf("response status %u, expected %d\n", h.status, want);
                return 1;
        }
        return 0;
}

static long now_ms(void) {
        struct timespec t;

        (void) clock_gettime(CLOCK_MONOTONIC, &t);
        return (long) t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* HELLO, and its answer read: the connection is then an ordinary idle client's. */
static int flood_hello(int fd) {
        uint8_t buf[RPC_HEADER_SIZE + 128];
        struct rpc_writer w;
        struct rpc_header h;

        rpc_writer_init(&w, buf + RPC_HEADER_SIZE, sizeof(buf) - RPC_HEADER_SIZE);
        rpc_hello_req_encode(&w, &(struct rpc_hello_req){ .min_version = RPC_VERSION_MIN,
                                                          .max_version = RPC_VERSION_MAX });
        if (rpc_writer_finish(&w) < 0)
                return -EINVAL;
        header(buf, RPC_MAGIC, RPC_VERSION_MIN, RPC_KIND_REQUEST, RPC_CALL_HELLO, (uint32_t) w.len);
        if (send_bytes(fd, buf, RPC_HEADER_SIZE + w.len) != 0)
                return -EIO;
        if (read_until(fd, buf, sizeof(buf), RPC_HEADER_SIZE) < RPC_HEADER_SIZE ||
            rpc_header_decode(buf, RPC_CHANNEL_DATA, &h) < 0 || h.status != RPC_STATUS_OK)
                return -EPROTO;
        /* The rest of the answer, if any, is drained by the watch loop. */
        return 0;
}

static int flood_one(const char *path, const char *kind) {
        static uint8_t body[RPC_MAX_BODY_DATA / 2];
        unsigned char h[RPC_HEADER_SIZE];
        int fd = connect_unix(path), r = 0;
        uint8_t version = 1;

        if (fd < 0)
                return fd;
        if (strncmp(kind, "hello", 5) == 0) {
                r = flood_hello(fd);
                kind += kind[5] == '+' ? 6 : 5;
                /* HELLO offered MIN..MAX and the daemon picks the highest: frames after it carry that
                 * version, or the daemon closes the connection at the header. */
                version = RPC_VERSION_MAX;
        }
        if (r < 0 || kind[0] == '\0')
                ;
        else if (strcmp(kind, "half-header") == 0) {
                header(h, RPC_MAGIC, version, RPC_KIND_REQUEST, RPC_CALL_HELLO, 100);
                r = send_bytes(fd, h, 8) == 0 ? 0 : -EIO;
        } else if (strcmp(kind, "half-body") == 0 || strcmp(kind, "half-big") == 0) {
                bool big = kind[5] == 'b';
                header(h, RPC_MAGIC, version, RPC_KIND_REQUEST, RPC_CALL_HELLO,
                       big ? RPC_MAX_BODY_DATA : 100);
                memset(body, 0xa0, sizeof(body));
                r = send_bytes(fd, h, sizeof(h)) == 0 && send_bytes(fd, body, big ? sizeof(body) : 10) == 0
                            ? 0
                            : -EIO;
        } else if (strncmp(kind, "half-size:", 10) == 0) {
                unsigned long n = strtoul(kind + 10, NULL, 10);

                if (n < 2 || n > RPC_MAX_BODY_DATA)
                        r = -EINVAL;
                else {
                        header(h, RPC_MAGIC, version, RPC_KIND_REQUEST, RPC_CALL_HELLO, (uint32_t) n);
                        memset(body, 0xa0, sizeof(body));
                        r = send_bytes(fd, h, sizeof(h)) == 0 && send_bytes(fd, body, n / 2) == 0 ? 0 : -EIO;
                }
        } else if (strcmp(kind, "idle") != 0)
                r = -EINVAL;
        if (r < 0) {
                close(fd);
                return r;
        }
        return fd;
}

static void write_status(const char *path, int open, int closed) {
        char tmp[4096];
        FILE *f;

        if (!path || snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int) sizeof(tmp))
                return;
        f = fopen(tmp, "we");
        if (!f)
                return;
        fprintf(f, "settled open=%d closed=%d\n", open, closed);
        if (fclose(f) == 0)
                (void) rename(tmp, path);
}

static int flood(const char *path, int count, const char *kind, int hold, const char *status) {
        struct pollfd *p = calloc((size_t) count, sizeof(*p));
        int opened = 0, failed = 0, closed = 0, first_err = 0;
        long t0, first = -1, last = -1, quiet_since;
        bool settled = false;

        if (!p)
                return 1;
        for (int i = 0; i < count; i++) {
                int fd = flood_one(path, kind);

                if (fd == -EINVAL) {
                        fprintf(stderr, "unknown flood kind '%s'\n", kind);
                        return 2;
                }
                if (fd < 0) {
                        /* Refused, or closed by the daemon before HELLO was answered: a failed attempt. */
                        failed++;
                        if (!first_err)
                                first_err = -fd;
                        p[i].fd = -1;
                        continue;
                }
                p[i] = (struct pollfd){ .fd = fd, .events = POLLIN | POLLRDHUP };
                opened++;
        }
        t0 = quiet_since = now_ms();
        /* Until HOLD_SECONDS are up, or the daemon closed every one. */
        while (now_ms() - t0 < hold * 1000L && (opened == 0 || closed < opened)) {
                int n = poll(p, (nfds_t) count, 100);

                if (n < 0 && errno != EINTR)
                        break;
                for (int i = 0; n > 0 && i < count; i++) {
                        unsigned char scratch[4096];
                        ssize_t k;

                        if (p[i].fd < 0 || p[i].revents == 0)
                                continue;
                        k = recv(p[i].fd, scratch, sizeof(scratch), MSG_DONTWAIT);
                        if (k > 0 || (k < 0 && (errno == EAGAIN || errno == EINTR)))
                                continue;
                        close(p[i].fd);
                        p[i].fd = -1;
                        closed++;
                        last = now_ms() - t0;
                        if (first < 0)
                                first = last;
                        quiet_since = now_ms();
                }
                if (!settled && now_ms() - quiet_since >= 2000) {
                        write_status(status, opened - closed, closed);
                        settled = true;
                }
        }
        if (!settled)
                write_status(status, opened - closed, closed);
        printf("flood %s: opened=%d failed=%d (first error: %s) closed_by_daemon=%d still_open=%d "
               "first_close_ms=%ld last_close_ms=%ld\n",
               kind, opened, failed, first_err ? strerror(first_err) : "none", closed, opened - closed,
               first, last);
        for (int i = 0; i < count; i++)
                if (p[i].fd >= 0)
                        close(p[i].fd);
        free(p);
        return 0;
}

static int race(const char *path, int secs, const char *stop) {
        unsigned long attempts = 0, connected = 0, hello = 0, denied = 0, refused = 0, absent = 0, other = 0;
        long end = now_ms() + secs * 1000L;

        while (now_ms() < end) {
                int fd = connect_unix(path);

                attempts++;
                if (fd >= 0) {
                        connected++;
                        if (flood_hello(fd) == 0)
                                hello++;
                        close(fd);
                } else if (fd == -EACCES)
                        denied++;
                else if (fd == -ECONNREFUSED)
                        refused++;
                else if (fd == -ENOENT)
                        absent++;
                else
                        other++;
                /* The stop file is looked at now and then: the loop stays tight. */
                if (attempts % 256 == 0 && access(stop, F_OK) == 0)
                        break;
        }
        printf("race: attempts=%lu connected=%lu hello_ok=%lu denied=%lu refused=%lu absent=%lu other=%lu\n",
               attempts, connected, hello, denied, refused, absent, other);
        return 0;
}

static const char *status_of(int r) {
        return rpc_status_to_string(errmap_status_from_errno(r)) ?: "?";
}

static int sign_key(const char *path, const char *slot_s, const char *key_s, const char *pin_file) {
        _cleanup_(rpc_client_freep) struct rpc_client *c = NULL;
        static const uint8_t digest[32] = { 1, 2, 3 };
        struct rpc_login_resp lr = {};
        struct rpc_crypto_resp sr = {};
        struct transport_addr a;
        char addr[256], pin[RPC_PIN_MAX + 2] = {};
        uint8_t ticket[RPC_TICKET_LEN] = {};
        size_t n;
        FILE *f;
        int r, rs;

        f = fopen(pin_file, "re");
        if (!f)
                return 1;
        n = fread(pin, 1, sizeof(pin) - 1, f);
        (void) fclose(f);
        while (n > 0 && (pin[n - 1] == '\n' || pin[n - 1] == '\r'))
                n--;
        (void) snprintf(addr, sizeof(addr), "unix:path=%s", path);
        if (transport_addr_parse(addr, &a) < 0 ||
            rpc_client_open(&a, RPC_CHANNEL_DATA, 5000, "junk-client", &c) < 0) {
                printf("sign-key: cannot connect to '%s'\n", path);
                return 1;
        }
        r = rpc_client_call_msg(c, RPC_CALL_LOGIN,
                                &(struct rpc_login_req){ .slot = (uint32_t) strtoul(slot_s, NULL, 10),
                                                         .pin = { (const uint8_t *) pin, n } },
                                &lr);
        explicit_bzero(pin, sizeof(pin));
        if (r >= 0 && lr.ticket.len == RPC_TICKET_LEN)
                memcpy(ticket, lr.ticket.ptr, RPC_TICKET_LEN);
        rs = rpc_client_call_msg(c, RPC_CALL_SIGN,
                                 &(struct rpc_crypto_req){ .slot = (uint32_t) strtoul(slot_s, NULL, 10),
                                                           .key_id = (uint32_t) strtoul(key_s, NULL, 10),
                                                           .ticket = { ticket, sizeof(ticket) },
                                                           .mech = RPC_MECH_ECDSA,
                                                           .data = { digest, sizeof(digest) } },
                                 &sr);
        explicit_bzero(ticket, sizeof(ticket));
        printf("sign-key: LOGIN %s, SIGN %s\n", status_of(r), status_of(rs));
        return rpc_client_is_broken(c) ? 1 : 0;
}

int main(int argc, char **argv) {
        unsigned char h[RPC_HEADER_SIZE], junk[64];
        const char *mode;
        int fd, hold, r;

        if (argc < 3) {
                fprintf(stderr, "usage: junk-client SOCKET MODE [HOLD_SECONDS]\n");
                return 2;
        }
        mode = argv[2];
        if (strcmp(mode, "flood") == 0) {
                long count = argc > 5 ? strtol(argv[3], NULL, 10) : 0,
                     secs = argc > 5 ? strtol(argv[5], NULL, 10) : 0;

                if (count <= 0 || count > 100000 || secs < 0 || secs > 600) {
                        fprintf(stderr,
                                "usage: junk-client SOCKET flood COUNT KIND HOLD_SECONDS [STATUS_FILE]\n");
                        return 2;
                }
                return flood(argv[1], (int) count, argv[4], (int) secs, argc > 6 ? argv[6] : NULL);
        }
        if (strcmp(mode, "sign-key") == 0) {
                if (argc != 6) {
                        fprintf(stderr, "usage: junk-client SOCKET sign-key SLOT KEY_ID PIN_FILE\n");
                        return 2;
                }
                return sign_key(argv[1], argv[3], argv[4], argv[5]);
        }
        if (strcmp(mode, "race") == 0) {
                long secs = argc > 4 ? strtol(argv[3], NULL, 10) : 0;

                if (secs <= 0 || secs > 600) {
                        fprintf(stderr, "usage: junk-client SOCKET race MAX_SECONDS STOP_FILE\n");
                        return 2;
                }
                return race(argv[1], (int) secs, argv[4]);
        }
        hold = argc > 3 ? (int) strtol(argv[3], NULL, 10) : 5;
        if (hold < 0 || hold > 600)
                hold = 5;
        fd = connect_unix(argv[1]);
        if (fd < 0) {
                printf("connect to '%s': %s\n", argv[1], strerror(-fd));
                return 1;
        }

        if (strcmp(mode, "garbage") == 0) {
                for (size_t i = 0; i < sizeof(junk); i++)
                        junk[i] = (unsigned char) (i * 37 + 11);
                r = send_bytes(fd, junk, sizeof(junk));
                return r < 0 ? 1 : expect_closed_silently(fd);
        }
        if (strcmp(mode, "badmagic") == 0 || strcmp(mode, "badversion") == 0 ||
            strcmp(mode, "badkind") == 0) {
                header(h, mode[3] == 'm' ? 0x41414141 : RPC_MAGIC, mode[3] == 'v' ? 99 : 1,
                       mode[3] == 'k' ? RPC_KIND_RESPONSE : RPC_KIND_REQUEST, RPC_CALL_HELLO, 1);
                r = send_frame(fd, h, "\xa0", 1);
                return r < 0 ? 1 : expect_closed_silently(fd);
        }
        if (strcmp(mode, "oversize") == 0 || strcmp(mode, "oversize-data") == 0) {
                header(h, RPC_MAGIC, 1, RPC_KIND_REQUEST, RPC_CALL_HELLO,
                       mode[8] ? RPC_MAX_BODY_DATA + 1 : RPC_MAX_BODY_CONTROL + 1);
                r = send_frame(fd, h, NULL, 0);
                return r < 0 ? 1 : expect_closed_silently(fd);
        }
        if (strcmp(mode, "before-hello") == 0) {
                header(h, RPC_MAGIC, 1, RPC_KIND_REQUEST, RPC_CALL_SIGN, 1);
                r = send_frame(fd, h, "\xa0", 1);
                return r < 0 ? 1 : expect_error_then_closed(fd, RPC_STATUS_MALFORMED, true);
        }
        if (strcmp(mode, "badcbor") == 0) {
                header(h, RPC_MAGIC, 1, RPC_KIND_REQUEST, RPC_CALL_HELLO, 4);
                r = send_frame(fd, h, "\xff\xff\x1f\xbf", 4);
                return r < 0 ? 1 : expect_error_then_closed(fd, -1, false);
        }
        if (strcmp(mode, "half-login") == 0) {
                uint8_t buf[RPC_HEADER_SIZE + 512];
                struct rpc_writer w;

                if (argc < 5 || strlen(argv[4]) > RPC_PIN_MAX) {
                        fprintf(stderr, "usage: junk-client SOCKET half-login HOLD_SECONDS PIN\n");
                        return 2;
                }
                if (flood_hello(fd) < 0) {
                        printf("half-login: HELLO failed\n");
                        return 1;
                }
                rpc_writer_init(&w, buf + RPC_HEADER_SIZE, sizeof(buf) - RPC_HEADER_SIZE);
                rpc_login_req_encode(&w, &(struct rpc_login_req){
                                                 .slot = 1,
                                                 .pin = { (const uint8_t *) argv[4], strlen(argv[4]) },
                                         });
                if (rpc_writer_finish(&w) < 0)
                        return 1;
                /* HELLO offered MIN..MAX: the daemon picks the highest. */
                header(buf, RPC_MAGIC, RPC_VERSION_MAX, RPC_KIND_REQUEST, RPC_CALL_LOGIN,
                       (uint32_t) w.len + 1);
                if (send_bytes(fd, buf, RPC_HEADER_SIZE + w.len) != 0)
                        return 1;
                /* Still open half a second later: the daemon holds the partial frame. */
                if (poll(&(struct pollfd){ .fd = fd, .events = POLLIN }, 1, 500) != 0) {
                        printf("half-login: the daemon answered or closed the connection\n");
                        return 1;
                }
                printf("half-login: sent\n");
                fflush(stdout);
                (void) sleep((unsigned) hold);
                close(fd);
                return 0;
        }
        if (strcmp(mode, "half-header") == 0 || strcmp(mode, "half-body") == 0) {
                bool body = mode[5] == 'b';
                header(h, RPC_MAGIC, 1, RPC_KIND_REQUEST, RPC_CALL_HELLO, 100);
                memset(junk, 0xa0, sizeof(junk));
                if (send_bytes(fd, h, body ? sizeof(h) : 8) != 0 || (body && send_bytes(fd, junk, 10) != 0))
                        return 1;
                (void) sleep((unsigned) hold);
                close(fd);
                return 0;
        }
        fprintf(stderr, "unknown mode '%s'\n", mode);
        return 2;
}
