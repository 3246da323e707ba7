/* The module's calls to enclave-token over the pooled data channel, with one retry on a broken link. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/p11-errmap.h"
#include "common/secret.h"
#include "common/time-util.h"
#include "p11module/conn.h"
#include "p11module/debug.h"
#include "p11module/module.h"
#include "p11module/remote.h"

/* Takes what it needs from a decoded answer while the connection, and so the reply buffer the answer's
 * slices point into, is still held. */
typedef int (*consume_fn)(const void *resp, void *userdata);

/* The end of the PKCS#11 call this thread is in (mono_msec()); 0 before its first round trip. */
static __thread uint64_t call_deadline_ms;

void p11_remote_budget_reset(void) {
        call_deadline_ms = 0;
}

/* Every step of one PKCS#11 call shares one timeout, counted from its first round trip: the clock is
 * read once per call, and a call that stays local never reads it. */
static uint64_t call_deadline(void) {
        if (call_deadline_ms == 0)
                call_deadline_ms = mono_msec() + (uint64_t) p11_mod.cfg.timeout_ms;
        return call_deadline_ms;
}

static int exchange_once(struct p11_conn *c, uint64_t deadline_ms, enum rpc_call call, const void *req,
                         void *resp, consume_fn consume, void *userdata) {
        int r;

        rpc_client_set_deadline(p11_conn_rpc(c), deadline_ms);
        r = rpc_client_call_msg(p11_conn_rpc(c), call, req, resp);
        if (r < 0)
                return r; /* resp untouched */
        r = consume(resp, userdata);
        rpc_msg_done(rpc_call_lookup(call)->response, resp);
        return r;
}

/* The wire status for an answer, the errno text for a local or transport failure. */
static const char *result_string(int r, bool broken) {
        const char *s;

        if (r >= 0)
                return "ok";
        s = broken ? NULL : rpc_status_to_string(errmap_status_from_errno(r));
        return s && errmap_status_from_errno(r) != RPC_STATUS_INTERNAL ? s : strerror(-r);
}

/* A connection that broke mid-call (daemon restarted, idle link dropped) is replaced and the call
 * repeated once: every data-channel call is idempotent. A timeout is not repeated: the budget is spent.
 * The wait for a connection, its connect and HELLO, the call and the repeat all end by the deadline of
 * the PKCS#11 call, which a re-login and the other round trips of the same call share. */
static int exchange(enum rpc_call call, const void *req, void *resp, consume_fn consume, void *userdata) {
        uint64_t deadline_ms = call_deadline();
        int r = -ECONNRESET;

        for (int attempt = 0; attempt < 2; attempt++) {
                struct p11_conn *c;
                bool broken;

                r = p11_conn_acquire(deadline_ms, &c);
                if (r < 0)
                        return r;
                r = exchange_once(c, deadline_ms, call, req, resp, consume, userdata);
                broken = rpc_client_is_broken(p11_conn_rpc(c));
                p11_conn_release(c, r);
                p11_debug(P11_DEBUG_RPC, "%s: %s%s", rpc_call_to_string(call), result_string(r, broken),
                          broken ? " (connection dropped)" : "");
                if (!broken || r == -ETIMEDOUT)
                        return r;
        }
        return r;
}

int p11_remote_errno(enum rpc_status s) {
        return errmap_errno_from_status(s);
}

/* ---- TOKEN_LIST ---- */

struct list_state {
        bool have_generation;
        uint64_t generation;
        uint32_t next;
        bool restart;
        struct p11_token_summary *v;
        size_t n;
};

static int list_append(struct list_state *s, const struct rpc_page_resp *p) {
        struct p11_token_summary *v;

        if (p->n_tokens == 0)
                return 0;
        if (s->n + p->n_tokens > RPC_MAX_TOKENS)
                return -EPROTO;
        v = realloc(s->v, (s->n + p->n_tokens) * sizeof(*v));
        if (!v)
                return -ENOMEM;
        s->v = v;
        for (size_t i = 0; i < p->n_tokens; i++) {
                const struct rpc_token_info *t = &p->tokens[i];
                struct p11_token_summary *d = &s->v[s->n++];

                if (t->label.len > RPC_LABEL_MAX)
                        return -EPROTO;
                *d = (struct p11_token_summary){ .slot = t->slot,
                                                 .generation = t->generation,
                                                 .n_keys = t->n_keys_total,
                                                 .pin_status = t->pin_status & _RPC_PIN_STATUS_ALL,
                                                 .label_len = t->label.len };
                memcpy(d->label, t->label.ptr, t->label.len);
        }
        return 0;
}

static int page_consume(const void *resp, void *userdata) {
        const struct rpc_page_resp *p = resp;
        struct list_state *s = userdata;

        if (s->have_generation && p->generation != s->generation) {
                s->restart = true; /* the list changed between pages */
                return 0;
        }
        s->have_generation = true;
        s->generation = p->generation;
        s->next = p->next;
        return list_append(s, p);
}

static int list_pages(struct list_state *s) {
        uint32_t cursor = 0;
        int r;

        /* Every page but the last holds at least one token. */
        for (unsigned pages = 0; pages <= RPC_MAX_TOKENS; pages++) {
                struct rpc_page_req req = { .cursor = cursor };
                struct rpc_page_resp resp;

                r = exchange(RPC_CALL_TOKEN_LIST, &req, &resp, page_consume, s);
                if (r < 0 || s->restart)
                        return r;
                if (s->next == 0)
                        return 0;
                cursor = s->next;
        }
        return -EPROTO;
}

int p11_remote_token_list(struct p11_token_summary **ret, size_t *ret_n, uint64_t *ret_generation) {
        for (int tries = 0; tries < 3; tries++) {
                struct list_state s = {};
                int r;

                r = list_pages(&s);
                if (r < 0 || s.restart) {
                        free(s.v);
                        if (r < 0)
                                return r;
                        continue;
                }
                *ret = s.v;
                *ret_n = s.n;
                *ret_generation = s.generation;
                return 0;
        }
        return -EAGAIN;
}

/* ---- TOKEN_OBJECTS ---- */

static int objects_consume(const void *resp, void *userdata) {
        int r;

        /* Parsed here, while the body the slices point into is still valid. */
        r = p11_objects_build(resp, userdata);
        return r == -EBADMSG ? -EPROTO : r;
}

int p11_remote_token_objects(uint32_t slot, struct p11_objects **ret) {
        _cleanup_free_ struct rpc_token_info *ti = NULL; /* ~3.5 KiB: not on a host thread's stack */
        struct rpc_slot_req req = { .slot = slot };
        struct p11_objects *o = NULL;
        int r;

        ti = malloc(sizeof(*ti));
        if (!ti)
                return -ENOMEM;
        r = exchange(RPC_CALL_TOKEN_OBJECTS, &req, ti, objects_consume, &o);
        if (r < 0)
                return r;
        *ret = o;
        return 0;
}

/* ---- LOGIN ---- */

static int login_consume(const void *resp, void *userdata) {
        const struct rpc_login_resp *l = resp;

        if (l->ticket.len != RPC_TICKET_LEN)
                return -EPROTO;
        memcpy(userdata, l->ticket.ptr, RPC_TICKET_LEN);
        return 0;
}

int p11_remote_login(uint32_t slot, const uint8_t *pin, size_t pin_len,
                     uint8_t ret_ticket[static RPC_TICKET_LEN]) {
        struct rpc_login_req req = { .slot = slot, .pin = { pin, pin_len } };
        struct rpc_login_resp resp;
        uint8_t ticket[RPC_TICKET_LEN];
        int r;

        r = exchange(RPC_CALL_LOGIN, &req, &resp, login_consume, ticket);
        if (r >= 0)
                memcpy(ret_ticket, ticket, sizeof(ticket));
        secret_wipe(ticket, sizeof(ticket));
        return r;
}

/* ---- SIGN / DECRYPT ---- */

struct crypto_out {
        uint8_t *buf;
        size_t size;
        size_t len;
};

static int crypto_consume(const void *resp, void *userdata) {
        const struct rpc_crypto_resp *c = resp;
        struct crypto_out *out = userdata;

        if (c->data.len > out->size)
                return -ENOBUFS;
        if (c->data.len)
                memcpy(out->buf, c->data.ptr, c->data.len);
        out->len = c->data.len;
        return 0;
}

int p11_remote_crypto(enum rpc_call call, const struct rpc_crypto_req *req, uint8_t *out, size_t size) {
        struct crypto_out o = { out, size, 0 };
        struct rpc_crypto_resp resp;
        int r;

        r = exchange(call, req, &resp, crypto_consume, &o);
        if (r < 0)
                return r;
        return (int) o.len;
}
