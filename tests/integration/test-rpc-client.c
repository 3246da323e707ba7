/* rpc_client against a tiny in-test server thread: HELLO, calls, status errors, and broken peers. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/busy-poll.h"
#include "common/rpc-client.h"
#include "common/time-util.h"
#include "tests/lib/tap.h"

enum mode {
        MODE_NORMAL,
        MODE_GARBAGE, /* answers PING with 16 bytes of garbage */
        MODE_WRONG_ID,
        MODE_WRONG_CALL,
        MODE_WRONG_KIND,
        MODE_WRONG_VERSION,
        MODE_OVERSIZE, /* body_len over the channel maximum */
        MODE_UNKNOWN_STATUS,
        MODE_CLOSE,        /* closes instead of answering PING */
        MODE_SILENT,       /* never answers PING */
        MODE_SHORT_BODY,   /* announces 10 body bytes, sends 3, closes */
        MODE_BAD_VERSION,  /* answers HELLO with BAD_VERSION */
        MODE_BAD_HELLO,    /* answers HELLO with an undecodable body */
        MODE_FUTURE_HELLO, /* answers HELLO choosing a version the client does not have */
};
#define FUTURE (RPC_VERSION_MAX + 1)

struct server {
        struct transport_addr addr;
        enum rpc_channel ch;
        enum mode mode;
        int lfd;
        pthread_t thread;
        /* what it saw */
        char client[RPC_TEXT_MAX + 1];
        uint32_t hello_min, hello_max, hello_header_version;
        unsigned n_requests;
        bool ids_in_order;
        uint32_t last_id;
        size_t largest_body;
};

static char tmpdir[64];
static unsigned n_servers;

static int reply(int fd, const struct rpc_header *req, uint8_t status, const uint8_t *body, size_t len) {
        static uint8_t frame[RPC_HEADER_SIZE + RPC_MAX_BODY_CONTROL];
        struct rpc_header h = {
                .magic = RPC_MAGIC,
                .version = req->version,
                .kind = RPC_KIND_RESPONSE,
                .call = req->call,
                .status = status,
                .request_id = req->request_id,
                .body_len = (uint32_t) len,
        };

        rpc_header_encode(&h, frame);
        if (len > 0)
                memcpy(frame + RPC_HEADER_SIZE, body, len);
        return transport_send_all(fd, frame, RPC_HEADER_SIZE + len, 5000);
}

static int reply_header(int fd, struct rpc_header h) {
        uint8_t b[RPC_HEADER_SIZE];

        rpc_header_encode(&h, b);
        return transport_send_all(fd, b, sizeof(b), 5000);
}

/* Handles one request; a negative return ends the connection. */
static int serve_one(struct server *s, int fd, const struct rpc_header *h, const uint8_t *body) {
        static uint8_t out[RPC_MAX_BODY_DATA];
        struct rpc_writer w;

        rpc_writer_init(&w, out, sizeof(out));
        switch (h->call) {
        case RPC_CALL_HELLO: {
                struct rpc_hello_req req;

                s->hello_header_version = h->version;
                if (rpc_hello_req_decode(body, h->body_len, &req) < 0)
                        return reply(fd, h, RPC_STATUS_MALFORMED, NULL, 0);
                s->hello_min = req.min_version;
                s->hello_max = req.max_version;
                memcpy(s->client, req.client.ptr ? (const char *) req.client.ptr : "", req.client.len);
                s->client[req.client.len] = '\0';
                if (s->mode == MODE_BAD_VERSION)
                        return reply(fd, h, RPC_STATUS_BAD_VERSION, NULL, 0);
                if (s->mode == MODE_BAD_HELLO)
                        return reply(fd, h, RPC_STATUS_OK, (const uint8_t *) "\xa1\x01", 2);
                rpc_hello_resp_encode(&w, &(struct rpc_hello_resp){
                                                  .version = s->mode == MODE_FUTURE_HELLO ? FUTURE : 1,
                                                  .generation = 42,
                                                  .server = { (const uint8_t *) "test-server 1.0", 15 },
                                                  .max_tokens = 1024,
                                          });
                break;
        }
        case RPC_CALL_PING: {
                struct rpc_header bad = *h;

                bad.kind = RPC_KIND_RESPONSE;
                switch (s->mode) {
                case MODE_GARBAGE: return transport_send_all(fd, "garbage garbage!", 16, 5000);
                case MODE_WRONG_ID: bad.request_id++; return reply_header(fd, bad);
                case MODE_WRONG_CALL: bad.call = RPC_CALL_SIGN; return reply_header(fd, bad);
                case MODE_WRONG_KIND: bad.kind = RPC_KIND_REQUEST; return reply_header(fd, bad);
                case MODE_WRONG_VERSION: bad.version = 2; return reply_header(fd, bad);
                case MODE_OVERSIZE:
                        bad.body_len = (uint32_t) rpc_channel_max_body(s->ch) + 1;
                        return reply_header(fd, bad);
                case MODE_UNKNOWN_STATUS: bad.status = _RPC_STATUS_MAX; return reply_header(fd, bad);
                case MODE_CLOSE: return -ECONNRESET;
                case MODE_SILENT: return 0;
                case MODE_SHORT_BODY:
                        bad.body_len = 10;
                        if (reply_header(fd, bad) >= 0 &&
                            transport_send_all(fd, "\xa0\xa0\xa0", 3, 5000) >= 0)
                                return -ECONNRESET; /* and close */
                        return -EIO;
                default:
                        if (rpc_empty_decode(body, h->body_len) < 0)
                                return reply(fd, h, RPC_STATUS_MALFORMED, NULL, 0);
                        rpc_empty_encode(&w);
                        break;
                }
                break;
        }
        case RPC_CALL_LOGIN: {
                struct rpc_login_req req;
                static const uint8_t ticket[RPC_TICKET_LEN] = { 7 };

                if (rpc_login_req_decode(body, h->body_len, &req) < 0)
                        return reply(fd, h, RPC_STATUS_MALFORMED, NULL, 0);
                if (req.pin.len != 4 || memcmp(req.pin.ptr, "1234", 4) != 0)
                        return reply(fd, h, RPC_STATUS_PIN_INCORRECT, (const uint8_t *) "\xa0", 1);
                rpc_login_resp_encode(&w, &(struct rpc_login_resp){ .ticket = { ticket, sizeof(ticket) } });
                break;
        }
        case RPC_CALL_SIGN: {
                struct rpc_crypto_req req;

                if (rpc_crypto_req_decode(body, h->body_len, &req) < 0)
                        return reply(fd, h, RPC_STATUS_MALFORMED, NULL, 0);
                if (req.key_id != 1)
                        return reply(fd, h, RPC_STATUS_NO_SUCH_KEY, NULL, 0);
                rpc_crypto_resp_encode(&w, &(struct rpc_crypto_resp){ .data = req.data });
                break;
        }
        case RPC_CALL_TOKEN_LIST: {
                static struct rpc_token_info tokens[3];

                for (uint32_t i = 0; i < 3; i++)
                        tokens[i] = (struct rpc_token_info){ .slot = 100 + i,
                                                             .label = { (const uint8_t *) "tok", 3 } };
                rpc_page_resp_encode(
                        &w, &(struct rpc_page_resp){ .generation = 42, .n_tokens = 3, .tokens = tokens });
                break;
        }
        case RPC_CALL_TOKEN_ADD: {
                struct rpc_token_add_req req;

                if (rpc_token_add_req_decode(body, h->body_len, &req) < 0)
                        return reply(fd, h, RPC_STATUS_MALFORMED, NULL, 0);
                rpc_token_add_resp_encode(&w, &(struct rpc_token_add_resp){ .slot = (uint32_t) req.n_keys });
                break;
        }
        default: return reply(fd, h, RPC_STATUS_MALFORMED, NULL, 0);
        }
        if (rpc_writer_finish(&w) < 0)
                return reply(fd, h, RPC_STATUS_INTERNAL, NULL, 0);
        return reply(fd, h, RPC_STATUS_OK, out, w.len);
}

static void *server_main(void *userdata) {
        static uint8_t body[RPC_MAX_BODY_CONTROL];
        struct server *s = userdata;
        struct pollfd p = { .fd = s->lfd, .events = POLLIN };
        int fd;

        if (poll(&p, 1, 5000) != 1)
                return NULL;
        fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
                return NULL;
        for (;;) {
                uint8_t hb[RPC_HEADER_SIZE];
                struct rpc_header h;

                if (transport_recv_all(fd, hb, sizeof(hb), 5000) < 0)
                        break;
                if (rpc_header_decode(hb, s->ch, &h) < 0 || h.kind != RPC_KIND_REQUEST)
                        break;
                if (transport_recv_all(fd, body, h.body_len, 5000) < 0)
                        break;
                s->n_requests++;
                if (h.request_id != s->last_id + 1)
                        s->ids_in_order = false;
                s->last_id = h.request_id;
                if (h.body_len > s->largest_body)
                        s->largest_body = h.body_len;
                if (serve_one(s, fd, &h, body) < 0)
                        break;
        }
        safe_close(fd);
        return NULL;
}

static int server_start(struct server *s, enum rpc_channel ch, enum mode mode) {
        if (!tmpdir[0]) {
                strcpy(tmpdir, "/tmp/test-rpc-client-XXXXXX");
                if (!mkdtemp(tmpdir))
                        return -errno;
        }
        *s = (struct server){ .ch = ch, .mode = mode, .ids_in_order = true, .addr.family = TRANSPORT_UNIX };
        (void) snprintf(s->addr.path, sizeof(s->addr.path), "%s/s%u.sock", tmpdir, n_servers++);
        s->lfd = transport_listen(&s->addr, 0600, (gid_t) -1, 4);
        if (s->lfd < 0)
                return s->lfd;
        if (pthread_create(&s->thread, NULL, server_main, s) != 0) {
                s->lfd = safe_close(s->lfd);
                return -EAGAIN;
        }
        return 0;
}

static void server_stop(struct server *s) {
        (void) pthread_join(s->thread, NULL);
        s->lfd = safe_close(s->lfd);
        (void) unlink(s->addr.path);
}

static int ping(struct rpc_client *c) {
        const uint8_t *body;
        size_t len;
        int r;

        rpc_empty_encode(rpc_client_begin(c));
        r = rpc_client_call(c, RPC_CALL_PING, &body, &len);
        if (r < 0)
                return r;
        return rpc_empty_decode(body, len);
}

static void test_open_ping(void) {
        struct server s;
        struct rpc_client *c = NULL;
        const struct rpc_hello_resp *h;
        int r;

        ASSERT_OK(server_start(&s, RPC_CHANNEL_DATA, MODE_NORMAL));
        r = rpc_client_open(&s.addr, RPC_CHANNEL_DATA, 5000, "test-client 0.1", &c);
        if (r < 0) {
                server_stop(&s);
                TAP_FAIL_("open: %d", r);
        }
        h = rpc_client_hello(c);
        ASSERT_TRUE(h != NULL);
        ASSERT_EQ(h->version, 1);
        ASSERT_EQ(h->generation, 42);
        ASSERT_EQ(h->max_tokens, 1024);
        ASSERT_FALSE(h->dev);
        for (int i = 0; i < 200; i++)
                ASSERT_OK(ping(c));
        /* the server string is the client's own copy, still valid after later calls */
        ASSERT_EQ(h->server.len, 15);
        ASSERT_MEMEQ(h->server.ptr, "test-server 1.0", 15);
        ASSERT_STREQ((const char *) h->server.ptr, "test-server 1.0");
        ASSERT_FALSE(rpc_client_is_broken(c));
        c = rpc_client_free(c);
        ASSERT_TRUE(c == NULL);
        server_stop(&s);

        ASSERT_STREQ(s.client, "test-client 0.1");
        ASSERT_EQ(s.hello_min, RPC_VERSION_MIN);
        ASSERT_EQ(s.hello_max, RPC_VERSION_MAX);
        ASSERT_EQ(s.hello_header_version, RPC_VERSION_MIN);
        ASSERT_EQ(s.n_requests, 201);
        ASSERT_TRUE(s.ids_in_order);
}

/* The same calls with busy polling on: replies are read the same way, whatever the timing. */
static void test_busy_poll_calls(void) {
        struct server s;
        struct rpc_client *c = NULL;
        int r;

        ASSERT_OK(server_start(&s, RPC_CHANNEL_DATA, MODE_NORMAL));
        r = rpc_client_open(&s.addr, RPC_CHANNEL_DATA, 5000, "test-client 0.1", &c);
        if (r < 0) {
                server_stop(&s);
                TAP_FAIL_("open: %d", r);
        }
        rpc_client_set_busy_poll(c, 50);
        for (int i = 0; i < 500; i++)
                ASSERT_OK(ping(c));
        rpc_client_set_busy_poll(c, 10000);
        for (int i = 0; i < 50; i++)
                ASSERT_OK(ping(c));
        ASSERT_FALSE(rpc_client_is_broken(c));
        c = rpc_client_free(c);
        server_stop(&s);
        ASSERT_EQ(s.n_requests, 551);
        rpc_client_set_busy_poll(NULL, 50); /* accepted, nothing happens */
}

/* Misses back off 1, 2, 4, ... BUSY_POLL_SKIP_MAX calls; each hit halves the next skip. */
static void test_busy_poll_backoff(void) {
        struct busy_poll bp = {};
        unsigned expect = 1;

        ASSERT_TRUE(busy_poll_begin(&bp));
        busy_poll_end(&bp, true);
        ASSERT_TRUE(busy_poll_begin(&bp));
        for (int round = 0; round < 10; round++) {
                busy_poll_end(&bp, false);
                for (unsigned i = 0; i < expect; i++)
                        ASSERT_FALSE(busy_poll_begin(&bp));
                ASSERT_TRUE(busy_poll_begin(&bp));
                expect = expect * 2 > BUSY_POLL_SKIP_MAX ? BUSY_POLL_SKIP_MAX : expect * 2;
        }
        ASSERT_EQ(bp.backoff, BUSY_POLL_SKIP_MAX);
        /* one hit: the next miss skips half as many */
        busy_poll_end(&bp, true);
        ASSERT_TRUE(busy_poll_begin(&bp));
        busy_poll_end(&bp, false);
        ASSERT_EQ(bp.skip, BUSY_POLL_SKIP_MAX);
        for (unsigned i = 0; i < BUSY_POLL_SKIP_MAX; i++)
                ASSERT_FALSE(busy_poll_begin(&bp));
        /* a run of hits brings it back to polling on every call, a miss then skips one */
        for (int i = 0; i < 8; i++) {
                ASSERT_TRUE(busy_poll_begin(&bp));
                busy_poll_end(&bp, true);
        }
        ASSERT_EQ(bp.backoff, 0);
        busy_poll_end(&bp, false);
        ASSERT_EQ(bp.skip, 1);
}

static void test_calls_and_status(void) {
        struct server s;
        _cleanup_(rpc_client_freep) struct rpc_client *c = NULL;
        struct rpc_writer *w;
        const uint8_t *body;
        size_t len;
        uint8_t data[512];

        ASSERT_OK(server_start(&s, RPC_CHANNEL_DATA, MODE_NORMAL));
        ASSERT_OK(rpc_client_open(&s.addr, RPC_CHANNEL_DATA, 5000, NULL, &c));
        ASSERT_EQ(s.client[0], '\0');

        /* a status error maps to its errno and leaves the connection usable */
        rpc_login_req_encode(rpc_client_begin(c),
                             &(struct rpc_login_req){ .slot = 1, .pin = { (const uint8_t *) "9999", 4 } });
        ASSERT_ERR(rpc_client_call(c, RPC_CALL_LOGIN, &body, &len), -EACCES);
        ASSERT_FALSE(rpc_client_is_broken(c));
        ASSERT_OK(ping(c));

        rpc_login_req_encode(rpc_client_begin(c),
                             &(struct rpc_login_req){ .slot = 1, .pin = { (const uint8_t *) "1234", 4 } });
        ASSERT_OK(rpc_client_call(c, RPC_CALL_LOGIN, &body, &len));
        {
                struct rpc_login_resp lr;
                ASSERT_OK(rpc_login_resp_decode(body, len, &lr));
                ASSERT_EQ(lr.ticket.len, RPC_TICKET_LEN);
                ASSERT_EQ(lr.ticket.ptr[0], 7);
        }

        for (size_t i = 0; i < sizeof(data); i++)
                data[i] = (uint8_t) i;
        rpc_crypto_req_encode(rpc_client_begin(c), &(struct rpc_crypto_req){
                                                           .slot = 1,
                                                           .key_id = 1,
                                                           .mech = RPC_MECH_ECDSA,
                                                           .data = { data, sizeof(data) },
                                                   });
        ASSERT_OK(rpc_client_call(c, RPC_CALL_SIGN, &body, &len));
        {
                struct rpc_crypto_resp cr;
                ASSERT_OK(rpc_crypto_resp_decode(body, len, &cr));
                ASSERT_EQ(cr.data.len, sizeof(data));
                ASSERT_MEMEQ(cr.data.ptr, data, sizeof(data));
        }
        rpc_crypto_req_encode(rpc_client_begin(c),
                              &(struct rpc_crypto_req){ .slot = 1, .key_id = 2, .mech = 1 });
        ASSERT_ERR(rpc_client_call(c, RPC_CALL_SIGN, &body, &len), -ENOKEY);

        rpc_page_req_encode(rpc_client_begin(c), &(struct rpc_page_req){});
        ASSERT_OK(rpc_client_call(c, RPC_CALL_TOKEN_LIST, &body, &len));
        {
                struct rpc_page_resp pr = {};
                ASSERT_OK(rpc_page_resp_decode(body, len, &pr));
                ASSERT_EQ(pr.n_tokens, 3);
                ASSERT_EQ(pr.tokens[2].slot, 102);
                rpc_page_resp_done(&pr);
        }

        /* the server answers MALFORMED to what it does not know */
        rpc_slot_req_encode(rpc_client_begin(c), &(struct rpc_slot_req){ 1 });
        ASSERT_ERR(rpc_client_call(c, RPC_CALL_TOKEN_OBJECTS, &body, &len), -EBADMSG);
        ASSERT_FALSE(rpc_client_is_broken(c));

        /* a body too large for the channel fails before anything is sent */
        w = rpc_client_begin(c);
        rpc_put_map(w, 1);
        rpc_put_uint(w, 1);
        {
                static uint8_t big[RPC_MAX_BODY_DATA];
                rpc_put_bytes(w, big, sizeof(big));
        }
        ASSERT_ERR(rpc_client_call(c, RPC_CALL_SIGN, &body, &len), -EMSGSIZE);
        ASSERT_FALSE(rpc_client_is_broken(c));

        /* misuse: HELLO again, a control call on the data channel, an unknown call */
        rpc_empty_encode(rpc_client_begin(c));
        ASSERT_ERR(rpc_client_call(c, RPC_CALL_HELLO, &body, &len), -EINVAL);
        rpc_empty_encode(rpc_client_begin(c));
        ASSERT_ERR(rpc_client_call(c, RPC_CALL_TOKEN_ADD, &body, &len), -EINVAL);
        rpc_empty_encode(rpc_client_begin(c));
        ASSERT_ERR(rpc_client_call(c, _RPC_CALL_MAX, &body, &len), -EINVAL);
        ASSERT_ERR(rpc_client_call(c, 200, NULL, NULL), -EINVAL);
        ASSERT_FALSE(rpc_client_is_broken(c));

        /* outputs are optional */
        rpc_empty_encode(rpc_client_begin(c));
        ASSERT_OK(rpc_client_call(c, RPC_CALL_PING, NULL, NULL));

        c = rpc_client_free(c);
        server_stop(&s);
        ASSERT_TRUE(s.ids_in_order);
        ASSERT_EQ(s.n_requests, 9); /* the refused calls never reached it */
}

/* The generic call: request and answer through the call table's schemas. */
static void test_call_msg(void) {
        struct server s;
        _cleanup_(rpc_client_freep) struct rpc_client *c = NULL;
        struct rpc_login_resp lr;
        struct rpc_crypto_resp cr;
        struct rpc_page_resp pr = {};
        const uint8_t *ticket;
        uint8_t data[64];

        ASSERT_OK(server_start(&s, RPC_CHANNEL_DATA, MODE_NORMAL));
        ASSERT_OK(rpc_client_open(&s.addr, RPC_CHANNEL_DATA, 5000, "msg-test", &c));
        ASSERT_STREQ(s.client, "msg-test");
        ASSERT_STREQ((const char *) rpc_client_hello(c)->server.ptr, "test-server 1.0");

        ASSERT_OK(rpc_client_call_msg(c, RPC_CALL_PING, NULL, NULL));
        ASSERT_ERR(rpc_client_call_msg(
                           c, RPC_CALL_LOGIN,
                           &(struct rpc_login_req){ .slot = 1, .pin = { (const uint8_t *) "9999", 4 } },
                           &lr),
                   -EACCES);
        ASSERT_OK(rpc_client_call_msg(
                c, RPC_CALL_LOGIN,
                &(struct rpc_login_req){ .slot = 1, .pin = { (const uint8_t *) "1234", 4 } }, &lr));
        ASSERT_EQ(lr.ticket.len, RPC_TICKET_LEN);
        ASSERT_EQ(lr.ticket.ptr[0], 7);
        ticket = lr.ticket.ptr; /* into the reply buffer: valid until the next call */
        ASSERT_OK(rpc_client_call_msg(c, RPC_CALL_PING, NULL, NULL));
        /* LOGIN's answer is secret in the table: wiped when the next call began */
        for (size_t i = 0; i < RPC_TICKET_LEN; i++)
                ASSERT_EQ(ticket[i], 0);

        for (size_t i = 0; i < sizeof(data); i++)
                data[i] = (uint8_t) (i + 1);
        ASSERT_OK(rpc_client_call_msg(
                c, RPC_CALL_SIGN,
                &(struct rpc_crypto_req){
                        .slot = 1, .key_id = 1, .mech = RPC_MECH_ECDSA, .data = { data, sizeof(data) } },
                &cr));
        ASSERT_EQ(cr.data.len, sizeof(data));
        ASSERT_MEMEQ(cr.data.ptr, data, sizeof(data));
        ASSERT_ERR(rpc_client_call_msg(c, RPC_CALL_SIGN,
                                       &(struct rpc_crypto_req){ .slot = 1, .key_id = 2, .mech = 1 }, &cr),
                   -ENOKEY);

        ASSERT_OK(rpc_client_call_msg(c, RPC_CALL_TOKEN_LIST, &(struct rpc_page_req){}, &pr));
        ASSERT_EQ(pr.n_tokens, 3);
        ASSERT_EQ(pr.tokens[2].slot, 102);
        ASSERT_TRUE(rpc_slice_eq_str(&pr.tokens[0].label, "tok"));
        rpc_page_resp_done(&pr);
        ASSERT_TRUE(pr.tokens == NULL);
        ASSERT_EQ(pr.n_tokens, 0);

        /* outside the schema (a 2-byte PIN), or no struct where one is needed: nothing is sent */
        ASSERT_ERR(rpc_client_call_msg(
                           c, RPC_CALL_LOGIN,
                           &(struct rpc_login_req){ .slot = 1, .pin = { (const uint8_t *) "12", 2 } }, &lr),
                   -EINVAL);
        ASSERT_ERR(rpc_client_call_msg(c, RPC_CALL_LOGIN, NULL, &lr), -EINVAL);
        ASSERT_ERR(rpc_client_call_msg(c, RPC_CALL_LOGIN, &(struct rpc_login_req){}, NULL), -EINVAL);
        ASSERT_ERR(rpc_client_call_msg(c, _RPC_CALL_MAX, NULL, NULL), -EINVAL);
        ASSERT_ERR(rpc_client_call_msg(NULL, RPC_CALL_PING, NULL, NULL), -EINVAL);
        /* the server's MALFORMED */
        ASSERT_ERR(rpc_client_call_msg(c, RPC_CALL_TOKEN_OBJECTS, &(struct rpc_slot_req){ 1 }, &pr),
                   -EBADMSG);
        ASSERT_FALSE(rpc_client_is_broken(c));

        c = rpc_client_free(c);
        server_stop(&s);
        ASSERT_TRUE(s.ids_in_order);
        ASSERT_EQ(s.n_requests, 9); /* HELLO, 2 PING, 2 LOGIN, 2 SIGN, TOKEN_LIST, TOKEN_OBJECTS */
}

static void test_control_large(void) {
        struct server s;
        _cleanup_(rpc_client_freep) struct rpc_client *c = NULL;
        static uint8_t chain[RPC_CHAIN_PEM_MAX];
        static struct rpc_token_add_req req;
        const uint8_t *body;
        size_t len;

        memset(chain, 'C', sizeof(chain));
        req = (struct rpc_token_add_req){ .label = { (const uint8_t *) "big", 3 },
                                          .pin = { (const uint8_t *) "1234", 4 } };
        /* 12 keys with a 64 KiB chain each: ~786 KiB, fine on control, too big for data */
        req.n_keys = 12;
        for (size_t i = 0; i < req.n_keys; i++)
                req.keys[i] = (struct rpc_add_key){ (uint32_t) i,
                                                    { (const uint8_t *) "k", 1 },
                                                    { (const uint8_t *) "K", 1 },
                                                    { chain, sizeof(chain) } };

        ASSERT_OK(server_start(&s, RPC_CHANNEL_CONTROL, MODE_NORMAL));
        ASSERT_OK(rpc_client_open(&s.addr, RPC_CHANNEL_CONTROL, 5000, "agent", &c));
        ASSERT_OK(ping(c));
        rpc_token_add_req_encode(rpc_client_begin(c), &req);
        ASSERT_OK(rpc_client_call(c, RPC_CALL_TOKEN_ADD, &body, &len));
        {
                struct rpc_token_add_resp ar;
                ASSERT_OK(rpc_token_add_resp_decode(body, len, &ar));
                ASSERT_EQ(ar.slot, 12);
        }
        /* data-channel calls are refused on control */
        rpc_crypto_req_encode(rpc_client_begin(c), &(struct rpc_crypto_req){ .mech = 1 });
        ASSERT_ERR(rpc_client_call(c, RPC_CALL_SIGN, &body, &len), -EINVAL);
        c = rpc_client_free(c);
        server_stop(&s);
        ASSERT_TRUE(s.largest_body > RPC_MAX_BODY_DATA);
}

/* A PING answered by a broken server: the call fails with want and the client is dead. */
static void broken_case(enum mode mode, int want) {
        struct server s;
        _cleanup_(rpc_client_freep) struct rpc_client *c = NULL;
        int r;

        ASSERT_OK(server_start(&s, RPC_CHANNEL_DATA, mode));
        r = rpc_client_open(&s.addr, RPC_CHANNEL_DATA, mode == MODE_SILENT ? 300 : 5000, "t", &c);
        if (r < 0) {
                server_stop(&s);
                TAP_FAIL_("open: %d", r);
        }
        r = ping(c);
        if (r != want) {
                c = rpc_client_free(c);
                server_stop(&s);
                TAP_FAIL_("mode %d: got %d, expected %d", mode, r, want);
        }
        ASSERT_TRUE(rpc_client_is_broken(c));
        /* a dead client refuses without touching the socket */
        ASSERT_ERR(ping(c), -ECONNRESET);
        c = rpc_client_free(c); /* closes: the server thread sees EOF and ends */
        server_stop(&s);
        ASSERT_EQ(s.n_requests, 2);
}

static void test_garbage(void) {
        broken_case(MODE_GARBAGE, -EPROTO);
}

static void test_wrong_id(void) {
        broken_case(MODE_WRONG_ID, -EPROTO);
}

static void test_wrong_call(void) {
        broken_case(MODE_WRONG_CALL, -EPROTO);
}

static void test_wrong_kind(void) {
        broken_case(MODE_WRONG_KIND, -EPROTO);
}

static void test_wrong_version(void) {
        broken_case(MODE_WRONG_VERSION, -EPROTO);
}

static void test_oversize(void) {
        broken_case(MODE_OVERSIZE, -EPROTO);
}

static void test_unknown_status(void) {
        broken_case(MODE_UNKNOWN_STATUS, -EPROTO);
}

static void test_close(void) {
        broken_case(MODE_CLOSE, -ECONNRESET);
}

static void test_short_body(void) {
        broken_case(MODE_SHORT_BODY, -ECONNRESET);
}

static void test_timeout(void) {
        broken_case(MODE_SILENT, -ETIMEDOUT);
}

/* A deadline that has passed: the call is refused before a byte is sent and the client stays usable. */
static void test_deadline_passed(void) {
        struct server s;
        struct rpc_client *c = NULL;

        ASSERT_OK(server_start(&s, RPC_CHANNEL_DATA, MODE_NORMAL));
        ASSERT_OK(rpc_client_open(&s.addr, RPC_CHANNEL_DATA, 5000, "t", &c));
        ASSERT_OK(ping(c));
        rpc_client_set_deadline(c, 1); /* long past */
        ASSERT_ERR(ping(c), -ETIMEDOUT);
        ASSERT_FALSE(rpc_client_is_broken(c));
        rpc_client_set_deadline(c, mono_msec() + 60000);
        ASSERT_OK(ping(c));
        rpc_client_set_deadline(c, 0);
        ASSERT_OK(ping(c));
        c = rpc_client_free(c);
        server_stop(&s);
        ASSERT_EQ(s.n_requests, 4); /* HELLO and three PINGs: the refused one never left */
}

/* Hang bounds only, far from both the deadline and the timeout: never an assertion of speed. */
#define FAR_MS  60000
#define HANG_MS 20000

/* A deadline before the call's own timeout ends the call. */
static void test_deadline_first(void) {
        struct server s;
        struct rpc_client *c = NULL;
        uint64_t t0;
        int r;

        ASSERT_OK(server_start(&s, RPC_CHANNEL_DATA, MODE_SILENT));
        ASSERT_OK(rpc_client_open(&s.addr, RPC_CHANNEL_DATA, FAR_MS, "t", &c));
        t0 = mono_msec();
        rpc_client_set_deadline(c, t0 + 200);
        r = ping(c);
        printf("# silent server, deadline in 200 ms, timeout %d ms: %d after %llu ms\n", FAR_MS, r,
               (unsigned long long) (mono_msec() - t0));
        ASSERT_ERR(r, -ETIMEDOUT);
        ASSERT_TRUE(mono_msec() - t0 < HANG_MS);
        ASSERT_TRUE(rpc_client_is_broken(c)); /* the request went out: its answer may still come */
        c = rpc_client_free(c);
        server_stop(&s);
}

/* A listener nobody serves, like a stopped enclave-token: connects complete through the backlog and
 * HELLO is never answered. Connect and HELLO end by the deadline, or within one timeout together. */
static void test_open_frozen(void) {
        struct transport_addr a = { .family = TRANSPORT_UNIX };
        struct rpc_client *c = NULL;
        uint64_t t0;
        int fd, r;

        (void) snprintf(a.path, sizeof(a.path), "%s/frozen.sock", tmpdir);
        fd = transport_listen(&a, 0600, (gid_t) -1, 8);
        ASSERT_OK(fd);

        t0 = mono_msec();
        r = rpc_client_open_until(&a, RPC_CHANNEL_DATA, FAR_MS, t0 + 200, "t", &c);
        printf("# open, deadline in 200 ms, timeout %d ms: %d after %llu ms\n", FAR_MS, r,
               (unsigned long long) (mono_msec() - t0));
        ASSERT_TRUE(mono_msec() - t0 < HANG_MS);
        ASSERT_ERR(r, -ETIMEDOUT);

        t0 = mono_msec();
        ASSERT_ERR(rpc_client_open(&a, RPC_CHANNEL_DATA, 200, "t", &c), -ETIMEDOUT);
        ASSERT_TRUE(mono_msec() - t0 < HANG_MS);
        /* passed already: not even a connect */
        ASSERT_ERR(rpc_client_open_until(&a, RPC_CHANNEL_DATA, FAR_MS, 1, "t", &c), -ETIMEDOUT);
        ASSERT_TRUE(c == NULL);
        safe_close(fd);
        ASSERT_OK(unlink(a.path));
}

static void open_fails(enum mode mode, int want) {
        struct server s;
        struct rpc_client *c = (struct rpc_client *) 1;
        int r;

        ASSERT_OK(server_start(&s, RPC_CHANNEL_DATA, mode));
        r = rpc_client_open(&s.addr, RPC_CHANNEL_DATA, 5000, "t", &c);
        server_stop(&s);
        ASSERT_ERR(r, want);
        ASSERT_TRUE(c == (struct rpc_client *) 1);
}

static void test_open_failures(void) {
        struct transport_addr a = { .family = TRANSPORT_UNIX };
        struct rpc_client *c = NULL;

        open_fails(MODE_BAD_VERSION, -EPROTONOSUPPORT);
        open_fails(MODE_BAD_HELLO, -EPROTO);
        open_fails(MODE_FUTURE_HELLO, -EPROTONOSUPPORT);

        (void) snprintf(a.path, sizeof(a.path), "%s/nobody.sock", tmpdir);
        ASSERT_ERR(rpc_client_open(&a, RPC_CHANNEL_DATA, 1000, "t", &c), -ENOENT);
        ASSERT_ERR(rpc_client_open(&a, _RPC_CHANNEL_MAX, 1000, "t", &c), -EINVAL);
        ASSERT_ERR(rpc_client_open(NULL, RPC_CHANNEL_DATA, 1000, "t", &c), -EINVAL);
        ASSERT_TRUE(c == NULL);
}

static void test_null(void) {
        ASSERT_TRUE(rpc_client_free(NULL) == NULL);
        ASSERT_TRUE(rpc_client_is_broken(NULL));
        ASSERT_TRUE(rpc_client_hello(NULL) == NULL);
        ASSERT_TRUE(rpc_client_begin(NULL) == NULL);
        ASSERT_ERR(rpc_client_call(NULL, RPC_CALL_PING, NULL, NULL), -EINVAL);
}

static void test_cleanup(void) {
        ASSERT_OK(rmdir(tmpdir));
}

TAP_MAIN(TEST("/rpc/client/open-ping", test_open_ping),
         TEST("/rpc/client/busy-poll-calls", test_busy_poll_calls),
         TEST("/rpc/client/busy-poll-backoff", test_busy_poll_backoff),
         TEST("/rpc/client/calls-and-status", test_calls_and_status),
         TEST("/rpc/client/call-msg", test_call_msg), TEST("/rpc/client/control-large", test_control_large),
         TEST("/rpc/client/broken/garbage", test_garbage),
         TEST("/rpc/client/broken/wrong-id", test_wrong_id),
         TEST("/rpc/client/broken/wrong-call", test_wrong_call),
         TEST("/rpc/client/broken/wrong-kind", test_wrong_kind),
         TEST("/rpc/client/broken/wrong-version", test_wrong_version),
         TEST("/rpc/client/broken/oversize", test_oversize),
         TEST("/rpc/client/broken/unknown-status", test_unknown_status),
         TEST("/rpc/client/broken/close", test_close),
         TEST("/rpc/client/broken/short-body", test_short_body),
         TEST("/rpc/client/broken/timeout", test_timeout),
         TEST("/rpc/client/deadline/passed", test_deadline_passed),
         TEST("/rpc/client/deadline/first", test_deadline_first),
         TEST("/rpc/client/deadline/open-frozen", test_open_frozen),
         TEST("/rpc/client/open-failures", test_open_failures), TEST("/rpc/client/null", test_null),
         TEST("/rpc/client/cleanup", test_cleanup))
