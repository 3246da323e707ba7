/* p11module/remote.c and conn.c against a scripted enclave-token: the round trips of one PKCS#11 call share
 * one timeout (a SIGN refused for a stale ticket, the re-LOGIN that hangs, the repeated SIGN), a timeout
 * makes later calls fail at once instead of connecting, and the first call after that second that finds
 * the daemon answering restores service. Bounds on time here are bounds on a hang, far from the figures. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/rpc-client.h"
#include "common/time-util.h"
#include "p11module/conn.h"
#include "p11module/module.h"
#include "p11module/remote.h"
#include "tests/lib/tap.h"

#define TIMEOUT_MS 1000
#define MAX_CONNS  16

/* What the scripted daemon does with a call. */
enum answer {
        ANSWER_OK,
        ANSWER_NOT_LOGGED_IN,
        ANSWER_NONE, /* reads the request and never answers: a stopped daemon */
};

static struct {
        struct transport_addr addr;
        int lfd;
        pthread_t thread;
        int fds[MAX_CONNS];
        unsigned n_accepted; /* atomic */
        enum answer sign;    /* atomic */
        enum answer login;   /* atomic */
        bool stop;           /* atomic */
} srv;

static char tmpdir[64];

static int reply(int fd, const struct rpc_header *req, uint8_t status, const struct rpc_writer *w) {
        static uint8_t frame[RPC_HEADER_SIZE + RPC_MAX_BODY_DATA];
        struct rpc_header h = *req;

        h.kind = RPC_KIND_RESPONSE;
        h.status = status;
        h.body_len = w ? (uint32_t) w->len : 0;
        rpc_header_encode(&h, frame);
        if (w)
                memcpy(frame + RPC_HEADER_SIZE, w->buf, w->len);
        return transport_send_all(fd, frame, RPC_HEADER_SIZE + h.body_len, 5000);
}

static int serve(int fd, const struct rpc_header *h) {
        static const uint8_t ticket[RPC_TICKET_LEN] = { 9 };
        static uint8_t out[256];
        struct rpc_writer w;
        enum answer a;

        rpc_writer_init(&w, out, sizeof(out));
        switch (h->call) {
        case RPC_CALL_HELLO:
                rpc_hello_resp_encode(&w, &(struct rpc_hello_resp){
                                                  .version = RPC_VERSION_MIN,
                                                  .server = { (const uint8_t *) "scripted", 8 },
                                          });
                break;
        case RPC_CALL_SIGN:
                a = __atomic_load_n(&srv.sign, __ATOMIC_ACQUIRE);
                if (a == ANSWER_NONE)
                        return 0;
                if (a == ANSWER_NOT_LOGGED_IN)
                        return reply(fd, h, RPC_STATUS_NOT_LOGGED_IN, NULL);
                rpc_crypto_resp_encode(&w,
                                       &(struct rpc_crypto_resp){ .data = { (const uint8_t *) "sig", 3 } });
                break;
        case RPC_CALL_LOGIN:
                if (__atomic_load_n(&srv.login, __ATOMIC_ACQUIRE) == ANSWER_NONE)
                        return 0;
                rpc_login_resp_encode(&w, &(struct rpc_login_resp){ .ticket = { ticket, sizeof(ticket) } });
                break;
        default: return reply(fd, h, RPC_STATUS_MALFORMED, NULL);
        }
        if (rpc_writer_finish(&w) < 0)
                return -EIO;
        return reply(fd, h, RPC_STATUS_OK, &w);
}

/* One request from a readable connection; a negative return closes it. */
static int serve_request(int fd) {
        static uint8_t body[RPC_MAX_BODY_DATA];
        uint8_t hb[RPC_HEADER_SIZE];
        struct rpc_header h;
        int r;

        r = transport_recv_all(fd, hb, sizeof(hb), 5000);
        if (r < 0)
                return r;
        if (rpc_header_decode(hb, RPC_CHANNEL_DATA, &h) < 0 || h.kind != RPC_KIND_REQUEST)
                return -EPROTO;
        r = transport_recv_all(fd, body, h.body_len, 5000);
        return r < 0 ? r : serve(fd, &h);
}

static void *server_main(void *userdata) {
        while (!__atomic_load_n(&srv.stop, __ATOMIC_ACQUIRE)) {
                struct pollfd p[MAX_CONNS + 1] = { { .fd = srv.lfd, .events = POLLIN } };

                for (size_t i = 0; i < MAX_CONNS; i++)
                        p[i + 1] = (struct pollfd){ .fd = srv.fds[i], .events = POLLIN };
                if (poll(p, MAX_CONNS + 1, 20) <= 0)
                        continue;
                for (size_t i = 0; i < MAX_CONNS; i++)
                        if (p[i + 1].revents && serve_request(srv.fds[i]) < 0)
                                srv.fds[i] = safe_close(srv.fds[i]);
                if (p[0].revents)
                        for (size_t i = 0; i < MAX_CONNS; i++)
                                if (srv.fds[i] < 0) {
                                        srv.fds[i] = accept4(srv.lfd, NULL, NULL, SOCK_CLOEXEC);
                                        __atomic_add_fetch(&srv.n_accepted, 1, __ATOMIC_RELEASE);
                                        break;
                                }
        }
        return NULL;
}

static unsigned accepted(void) {
        return __atomic_load_n(&srv.n_accepted, __ATOMIC_ACQUIRE);
}

static void set_answers(enum answer sign, enum answer login) {
        __atomic_store_n(&srv.sign, sign, __ATOMIC_RELEASE);
        __atomic_store_n(&srv.login, login, __ATOMIC_RELEASE);
}

/* The module's configuration pointing at the scripted daemon, and its connection pool. */
static void test_setup(void) {
        char address[160];

        strcpy(tmpdir, "/tmp/test-p11-remote-XXXXXX");
        ASSERT_TRUE(mkdtemp(tmpdir) != NULL);
        srv.addr.family = TRANSPORT_UNIX;
        (void) snprintf(srv.addr.path, sizeof(srv.addr.path), "%s/data.sock", tmpdir);
        for (size_t i = 0; i < MAX_CONNS; i++)
                srv.fds[i] = -1;
        srv.lfd = transport_listen(&srv.addr, 0600, (gid_t) -1, 16);
        ASSERT_OK(srv.lfd);
        ASSERT_EQ(pthread_create(&srv.thread, NULL, server_main, NULL), 0);

        ASSERT_OK(transport_addr_format(&srv.addr, address, sizeof(address)));
        p11_mod.cfg = (struct p11_config){ .address = strdup(address), .timeout_ms = TIMEOUT_MS };
        ASSERT_TRUE(p11_mod.cfg.address != NULL);
        p11_pool_init(&p11_mod.cfg);
}

static int sign(void) {
        static const uint8_t ticket[RPC_TICKET_LEN] = { 9 }, digest[32] = { 1 };
        const struct rpc_crypto_req req = {
                .slot = 1,
                .key_id = 1,
                .ticket = { ticket, sizeof(ticket) },
                .mech = RPC_MECH_ECDSA,
                .data = { digest, sizeof(digest) },
        };
        uint8_t out[64];

        return p11_remote_crypto(RPC_CALL_SIGN, &req, out, sizeof(out));
}

static int login(void) {
        uint8_t ticket[RPC_TICKET_LEN];

        return p11_remote_login(1, (const uint8_t *) "1234", 4, ticket);
}

/* What crypto.c does when the ticket is stale, as one PKCS#11 call: SIGN, LOGIN with the cached PIN,
 * SIGN again. The LOGIN hangs: the call ends one timeout after it started, and its last SIGN does not
 * even connect. */
static void test_one_budget(void) {
        uint64_t t0, dt;
        int r1, r2, r3;

        set_answers(ANSWER_NOT_LOGGED_IN, ANSWER_NONE);
        p11_remote_budget_reset();
        t0 = mono_msec();
        r1 = sign();
        r2 = login();
        r3 = sign();
        dt = mono_msec() - t0;
        printf("# SIGN %d, LOGIN %d, SIGN %d: %llu ms with a %d ms timeout, %u connection(s)\n", r1, r2, r3,
               (unsigned long long) dt, TIMEOUT_MS, accepted());
        ASSERT_ERR(r1, p11_remote_errno(RPC_STATUS_NOT_LOGGED_IN));
        ASSERT_ERR(r2, -ETIMEDOUT);
        ASSERT_ERR(r3, -ETIMEDOUT);
        ASSERT_TRUE(dt < TIMEOUT_MS + TIMEOUT_MS * 4 / 5); /* two timeouts before the fix */
        ASSERT_EQ(accepted(), 1);
}

/* Right after that timeout the daemon looks frozen: the next call fails at once, without connecting.
 * A second later a call tries again, finds it answering, and the connection is pooled again. */
static void test_frozen_then_back(void) {
        uint64_t t0 = mono_msec();
        int r;

        set_answers(ANSWER_OK, ANSWER_OK);
        p11_remote_budget_reset();
        r = sign();
        ASSERT_ERR(r, -ETIMEDOUT);
        if (mono_msec() - t0 < 500) /* surely inside the second: a stalled test machine proves nothing */
                ASSERT_EQ(accepted(), 1);

        (void) usleep(1100 * 1000);
        p11_remote_budget_reset();
        ASSERT_EQ(sign(), 3);
        ASSERT_EQ(accepted(), 2);
        p11_remote_budget_reset();
        ASSERT_EQ(login(), 0);
        p11_remote_budget_reset();
        ASSERT_EQ(sign(), 3);
        ASSERT_EQ(accepted(), 2);
}

/* Fairness of the pool (issue 12): with one connection for many threads that each take it, do a little
 * work and give it back in a tight loop, a thread waits for at most one turn of each other thread.
 * Counted in hand-offs, not time. Before the FIFO hand-off a releasing thread took the connection back
 * before the waiter it had woken ran, and waiters lost it over and over. */
#define FAIR_THREADS 6
#define FAIR_ROUNDS  300

static unsigned fair_handoffs; /* atomic: acquisitions so far */

struct fair_thread {
        pthread_t thread;
        unsigned long worst; /* the most acquisitions by others while this thread waited */
        int error;
};

static void *fair_main(void *userdata) {
        struct fair_thread *t = userdata;

        for (unsigned i = 0; i < FAIR_ROUNDS; i++) {
                struct p11_conn *c = NULL;
                int r = p11_conn_acquire(mono_msec() + 30000, &c);

                if (r < 0) {
                        t->error = r;
                        return NULL;
                }
                (void) __atomic_fetch_add(&fair_handoffs, 1, __ATOMIC_ACQ_REL);
                /* Counted by the pool under its lock: the time this thread spends outside it (it may
                 * be preempted anywhere) does not count. */
                if (p11_pool_last_wait() > t->worst)
                        t->worst = p11_pool_last_wait();
                for (volatile unsigned k = 0; k < 2000; k++)
                        ;
                p11_conn_release(c, 0);
        }
        return NULL;
}

static void test_pool_fifo(void) {
        struct fair_thread t[FAIR_THREADS] = {};
        unsigned long worst = 0;

        p11_pool_done();
        p11_pool_init(&p11_mod.cfg);
        p11_pool_set_max(1);
        for (size_t i = 0; i < FAIR_THREADS; i++)
                ASSERT_EQ(pthread_create(&t[i].thread, NULL, fair_main, &t[i]), 0);
        for (size_t i = 0; i < FAIR_THREADS; i++) {
                (void) pthread_join(t[i].thread, NULL);
                ASSERT_OK(t[i].error);
                worst = t[i].worst > worst ? t[i].worst : worst;
        }
        printf("# %d threads x %d rounds on one connection: %u hand-offs, the longest wait %lu of them\n",
               FAIR_THREADS, FAIR_ROUNDS, fair_handoffs, worst);
        ASSERT_EQ(fair_handoffs, FAIR_THREADS * FAIR_ROUNDS);
        /* FIFO: at most the others ahead in the queue, each once. */
        ASSERT_TRUE(worst <= FAIR_THREADS - 1);
        p11_pool_set_max(0);
}

static void test_cleanup(void) {
        p11_pool_done();
        p11_config_done(&p11_mod.cfg);
        __atomic_store_n(&srv.stop, true, __ATOMIC_RELEASE);
        (void) pthread_join(srv.thread, NULL);
        for (size_t i = 0; i < MAX_CONNS; i++)
                srv.fds[i] = safe_close(srv.fds[i]);
        srv.lfd = safe_close(srv.lfd);
        ASSERT_OK(unlink(srv.addr.path));
        ASSERT_OK(rmdir(tmpdir));
}

TAP_MAIN(TEST("/p11/remote/setup", test_setup), TEST("/p11/remote/one-budget", test_one_budget),
         TEST("/p11/remote/frozen-then-back", test_frozen_then_back),
         TEST("/p11/remote/pool-fifo", test_pool_fifo), TEST("/p11/remote/cleanup", test_cleanup))
