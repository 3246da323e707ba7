/* The request dispatcher: call table check, then one small handler per call. No sockets here. */
#include <errno.h>
#include <string.h>

#include "common/log.h"
#include "common/p11-errmap.h"
#include "common/secret.h"
#include "enclave-token/dispatch.h"
#include "enclave-token/errors.h"

#define SERVER_NAME "enclave-token " ENCLAVE_ACM_VERSION

typedef int (*handler_fn)(const struct etok_dispatch *d, struct etok_session *s, const uint8_t *body,
                          size_t len, struct rpc_writer *w);

/* A label from the wire, printable for a log line (labels are UTF-8 text, possibly with controls). */
static const char *label_for_log(const struct rpc_slice *l, char buf[static RPC_LABEL_MAX + 1]) {
        size_t n = MIN(l->len, (size_t) RPC_LABEL_MAX);

        for (size_t i = 0; i < n; i++)
                buf[i] = l->ptr[i] >= 0x20 && l->ptr[i] < 0x7f ? (char) l->ptr[i] : '?';
        buf[n] = '\0';
        return buf;
}

void etok_session_init(struct etok_session *s, enum rpc_channel ch) {
        *s = (struct etok_session){ .channel = ch, .state = RPC_STATE_NEW };
}

static int handle_hello(const struct etok_dispatch *d, struct etok_session *s, const uint8_t *body,
                        size_t len, struct rpc_writer *w) {
        struct rpc_hello_req req;
        uint32_t lo, hi;
        int r;

        r = rpc_hello_req_decode(body, len, &req);
        if (r < 0)
                return r;
        lo = MAX(req.min_version, (uint32_t) RPC_VERSION_MIN);
        hi = MIN(req.max_version, (uint32_t) RPC_VERSION_MAX);
        if (lo > hi)
                return ETOK_ERR(BAD_VERSION);
        rpc_hello_resp_encode(w, &(struct rpc_hello_resp){
                                         .version = hi,
                                         .generation = etok_keystore_generation(d->keystore),
                                         .server = { (const uint8_t *) SERVER_NAME, strlen(SERVER_NAME) },
                                         .max_tokens = (uint32_t) etok_keystore_max_tokens(d->keystore),
                                         .dev = d->dev,
                                 });
        r = rpc_writer_finish(w);
        if (r < 0)
                return r;
        s->version = (uint8_t) hi;
        s->state = RPC_STATE_READY;
        return 0;
}

static int handle_ping(const struct etok_dispatch *d, struct etok_session *s, const uint8_t *body,
                       size_t len, struct rpc_writer *w) {
        int r;

        r = rpc_empty_decode(body, len);
        if (r < 0)
                return r;
        rpc_empty_encode(w);
        return rpc_writer_finish(w);
}

/* Encodes the page, halving it until it fits the frame (DESCRIBE pages can be large). Read lock held. */
static int encode_page_locked(const struct etok_keystore *ks, size_t start, size_t n,
                              struct rpc_token_info *infos, struct rpc_writer *w) {
        size_t total = etok_keystore_count_locked(ks), mark = w->len;
        int r;

        for (;;) {
                const struct etok_token *next = etok_keystore_get_locked(ks, start + n);

                rpc_page_resp_encode(w, &(struct rpc_page_resp){
                                                .generation = etok_keystore_generation(ks),
                                                .next = next ? next->slot : 0,
                                                .n_tokens_total = (uint32_t) total,
                                                .n_tokens = n,
                                                .tokens = infos,
                                        });
                r = rpc_writer_finish(w);
                if (r != -EMSGSIZE || n <= 1)
                        return r;
                n /= 2;
                w->len = mark;
                w->err = 0;
        }
}

static int handle_page(const struct etok_dispatch *d, const uint8_t *body, size_t len, struct rpc_writer *w,
                       bool describe) {
        _cleanup_free_ struct rpc_token_info *infos = NULL;
        struct etok_keystore *ks = d->keystore;
        struct rpc_page_req req;
        size_t start, n;
        int r;

        r = rpc_page_req_decode(body, len, &req);
        if (r < 0)
                return r;
        etok_keystore_read_begin(ks);
        start = etok_keystore_seek_locked(ks, req.cursor);
        n = MIN(etok_keystore_count_locked(ks) - start, (size_t) RPC_PAGE_MAX);
        infos = malloc(MAX(n, (size_t) 1) * sizeof(*infos));
        if (!infos)
                r = -ENOMEM;
        else {
                for (size_t i = 0; i < n; i++)
                        etok_token_info(etok_keystore_get_locked(ks, start + i), describe,
                                        ETOK_KEY_VIEW_DESCRIBE, &infos[i]);
                r = encode_page_locked(ks, start, n, infos, w);
        }
        etok_keystore_read_end(ks);
        return r;
}

static int handle_token_list(const struct etok_dispatch *d, struct etok_session *s, const uint8_t *body,
                             size_t len, struct rpc_writer *w) {
        return handle_page(d, body, len, w, false);
}

static int handle_describe(const struct etok_dispatch *d, struct etok_session *s, const uint8_t *body,
                           size_t len, struct rpc_writer *w) {
        return handle_page(d, body, len, w, true);
}

static int handle_token_objects(const struct etok_dispatch *d, struct etok_session *s, const uint8_t *body,
                                size_t len, struct rpc_writer *w) {
        struct rpc_token_info info; /* ~3.5 KiB: the stack beats a malloc per call */
        const struct etok_token *t;
        struct rpc_slot_req req;
        int r;

        r = rpc_slot_req_decode(body, len, &req);
        if (r < 0)
                return r;
        etok_keystore_read_begin(d->keystore);
        t = etok_keystore_find_locked(d->keystore, req.slot); /* the current version only */
        if (!t)
                r = ETOK_ERR(NO_SUCH_TOKEN);
        else {
                etok_token_info(t, true, ETOK_KEY_VIEW_OBJECTS, &info);
                rpc_token_info_encode(w, &info);
                r = rpc_writer_finish(w);
        }
        etok_keystore_read_end(d->keystore);
        return r;
}

static int handle_login(const struct etok_dispatch *d, struct etok_session *s, const uint8_t *body,
                        size_t len, struct rpc_writer *w) {
        uint8_t ticket[RPC_TICKET_LEN] = {};
        struct rpc_login_req req;
        int r;

        r = rpc_login_req_decode(body, len, &req);
        if (r < 0)
                return r;
        r = etok_keystore_login_conn(d->keystore, &s->pin_guard, req.slot, &req.pin, ticket);
        if (r == ETOK_ERR(PIN_INCORRECT) || r == ETOK_ERR(PIN_LOCKED))
                log_notice("LOGIN on slot %" PRIu32 " refused: %s", req.slot,
                           rpc_status_to_string(errmap_status_from_errno(r)));
        if (r >= 0) {
                rpc_login_resp_encode(w, &(struct rpc_login_resp){ .ticket = { ticket, sizeof(ticket) } });
                r = rpc_writer_finish(w);
        }
        secret_wipe(ticket, sizeof(ticket));
        return r;
}

static int handle_crypto(const struct etok_dispatch *d, const uint8_t *body, size_t len,
                         struct rpc_writer *w, bool decrypt) {
        uint8_t out[RPC_SIG_MAX];
        struct rpc_crypto_req req;
        size_t n = 0;
        int r;

        r = rpc_crypto_req_decode(body, len, &req);
        if (r < 0)
                return r;
        r = etok_keystore_crypt(d->keystore, decrypt, &req, out, sizeof(out), &n);
        if (r >= 0) {
                rpc_crypto_resp_encode(w, &(struct rpc_crypto_resp){ .data = { out, n } });
                r = rpc_writer_finish(w);
        }
        if (decrypt)
                secret_wipe(out, sizeof(out));
        return r;
}

static int handle_sign(const struct etok_dispatch *d, struct etok_session *s, const uint8_t *body,
                       size_t len, struct rpc_writer *w) {
        return handle_crypto(d, body, len, w, false);
}

static int handle_decrypt(const struct etok_dispatch *d, struct etok_session *s, const uint8_t *body,
                          size_t len, struct rpc_writer *w) {
        return handle_crypto(d, body, len, w, true);
}

static int handle_token_add(const struct etok_dispatch *d, struct etok_session *s, const uint8_t *body,
                            size_t len, struct rpc_writer *w) {
        char lbuf[RPC_LABEL_MAX + 1];
        struct rpc_token_add_req req;
        uint32_t slot;
        int r;

        if (!d->dev) {
                log_warning("TOKEN_ADD with a plaintext key refused: not running with --dev");
                return ETOK_ERR(DENIED);
        }
        r = rpc_token_add_req_decode(body, len, &req);
        if (r < 0)
                return r;
        r = etok_keystore_add(d->keystore, &req, &slot);
        if (r < 0) {
                log_warning("Failed to provision token '%s': %s", label_for_log(&req.label, lbuf),
                            rpc_status_to_string(errmap_status_from_errno(r)));
                return r;
        }
        log_info("Token '%s' %s in slot %" PRIu32 " with %zu key(s)", label_for_log(&req.label, lbuf),
                 r > 0 ? "replaced" : "provisioned", slot, req.n_keys);
        rpc_token_add_resp_encode(w, &(struct rpc_token_add_resp){ .slot = slot });
        return rpc_writer_finish(w);
}

static int handle_token_remove(const struct etok_dispatch *d, struct etok_session *s, const uint8_t *body,
                               size_t len, struct rpc_writer *w) {
        char lbuf[RPC_LABEL_MAX + 1];
        struct rpc_token_remove_req req;
        int r;

        r = rpc_token_remove_req_decode(body, len, &req);
        if (r < 0)
                return r;
        r = etok_keystore_remove(d->keystore, &req);
        if (r < 0) {
                log_warning("Failed to remove token '%s': %s", label_for_log(&req.label, lbuf),
                            rpc_status_to_string(errmap_status_from_errno(r)));
                return r;
        }
        log_info("Token '%s' removed, keys wiped", label_for_log(&req.label, lbuf));
        rpc_empty_encode(w);
        return rpc_writer_finish(w);
}

static const handler_fn handlers[_RPC_CALL_MAX] = {
        [RPC_CALL_HELLO] = handle_hello,
        [RPC_CALL_PING] = handle_ping,
        [RPC_CALL_TOKEN_LIST] = handle_token_list,
        [RPC_CALL_TOKEN_OBJECTS] = handle_token_objects,
        [RPC_CALL_LOGIN] = handle_login,
        [RPC_CALL_SIGN] = handle_sign,
        [RPC_CALL_DECRYPT] = handle_decrypt,
        [RPC_CALL_TOKEN_ADD] = handle_token_add,
        [RPC_CALL_TOKEN_REMOVE] = handle_token_remove,
        [RPC_CALL_DESCRIBE] = handle_describe,
};

void etok_dispatch_request(const struct etok_dispatch *d, struct etok_session *s, unsigned call,
                           const uint8_t *body, size_t len, struct rpc_writer *w, struct etok_reply *ret) {
        static const uint8_t empty[1];
        size_t mark = w->len;
        int r;

        *ret = (struct etok_reply){};
        r = rpc_call_check(call, s->channel, s->state, NULL);
        if (r < 0) {
                log_debug("%s call %u (%s) on the %s channel refused, closing",
                          s->state == RPC_STATE_NEW ? "Early" : "Bad", call,
                          rpc_call_to_string(call) ?: "unknown", rpc_channel_to_string(s->channel));
                *ret = (struct etok_reply){ .status = RPC_STATUS_MALFORMED, .close = true };
                return;
        }
        ret->secret = call == RPC_CALL_LOGIN || call == RPC_CALL_DECRYPT;
        r = handlers[call](d, s, body ?: empty, len, w);
        if (r < 0) {
                /* Nothing of a failed answer goes out: the body of a non-OK status is empty. */
                secret_wipe(w->buf + mark, w->len - mark);
                w->len = mark;
                w->err = 0;
                if (r == -ENOMEM || r == -EMSGSIZE || r == -EINVAL)
                        log_error_errno(r, "%s failed: %m", rpc_call_to_string(call));
                ret->status = r == -EBADMSG ? RPC_STATUS_MALFORMED : errmap_status_from_errno(r);
                return;
        }
        ret->status = RPC_STATUS_OK;
}
