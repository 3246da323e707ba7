/* The request dispatcher: call table check, then one small handler per call. No sockets here. */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "common/log.h"
#include "common/p11-errmap.h"
#include "common/secret.h"
#include "enclave-token/dispatch.h"
#include "enclave-token/errors.h"

#define SERVER_NAME "enclave-token " ENCLAVE_ACM_VERSION

/* A handler gets the request decoded with the call's request schema and writes its answer to w,
 * normally with reply(), that is with the call's response schema. */
typedef int (*handler_fn)(const struct etok_dispatch *d, struct etok_session *s,
                          const struct rpc_call_info *c, const void *req, struct rpc_writer *w);

/* Requests are decoded on the stack (TOKEN_ADD, the largest, is about 1 KiB). */
#define REQUEST_MAX RPC_MSG_SIZE_MAX

static int reply(struct rpc_writer *w, const struct rpc_call_info *c, const void *resp) {
        rpc_msg_write(c->response, w, resp);
        return rpc_writer_finish(w);
}

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

static int handle_hello(const struct etok_dispatch *d, struct etok_session *s, const struct rpc_call_info *c,
                        const void *request, struct rpc_writer *w) {
        const struct rpc_hello_req *req = request;
        uint32_t lo, hi;
        int r;

        lo = MAX(req->min_version, (uint32_t) RPC_VERSION_MIN);
        hi = MIN(req->max_version, (uint32_t) RPC_VERSION_MAX);
        if (lo > hi)
                return ETOK_ERR(BAD_VERSION);
        r = reply(w, c,
                  &(struct rpc_hello_resp){
                          .version = hi,
                          .generation = etok_keystore_generation(d->keystore),
                          .server = { (const uint8_t *) SERVER_NAME, strlen(SERVER_NAME) },
                          .max_tokens = (uint32_t) etok_keystore_max_tokens(d->keystore),
                          .dev = d->dev,
                  });
        if (r < 0)
                return r;
        s->version = (uint8_t) hi;
        s->state = RPC_STATE_READY;
        return 0;
}

static int handle_ping(const struct etok_dispatch *d, struct etok_session *s, const struct rpc_call_info *c,
                       const void *req, struct rpc_writer *w) {
        return reply(w, c, NULL);
}

/* Encodes the page, halving it until it fits the frame (DESCRIBE pages can be large). Read lock held. */
static int encode_page_locked(const struct rpc_call_info *c, const struct etok_keystore *ks, size_t start,
                              size_t n, struct rpc_token_info *infos, struct rpc_writer *w) {
        size_t total = etok_keystore_count_locked(ks), mark = w->len;
        int r;

        for (;;) {
                const struct etok_token *next = etok_keystore_get_locked(ks, start + n);

                r = reply(w, c,
                          &(struct rpc_page_resp){
                                  .generation = etok_keystore_generation(ks),
                                  .next = next ? next->slot : 0,
                                  .n_tokens_total = (uint32_t) total,
                                  .n_tokens = n,
                                  .tokens = infos,
                          });
                if (r != -EMSGSIZE || n <= 1)
                        return r;
                n /= 2;
                w->len = mark;
                w->err = 0;
        }
}

/* The PIN status travels to data-channel clients that negotiated it (version 3). */
static uint32_t pin_status_for(const struct etok_dispatch *d, const struct etok_session *s,
                               const struct etok_token *t) {
        return s->version >= RPC_VERSION_KMS ? etok_keystore_pin_status(d->keystore, t, &s->pin_guard) : 0;
}

static int handle_page(const struct etok_dispatch *d, const struct etok_session *s,
                       const struct rpc_call_info *c, const void *request, struct rpc_writer *w,
                       bool describe) {
        _cleanup_free_ struct rpc_token_info *infos = NULL;
        const struct rpc_page_req *req = request;
        struct etok_keystore *ks = d->keystore;
        size_t start, n;
        int r;

        etok_keystore_read_begin(ks);
        start = etok_keystore_seek_locked(ks, req->cursor);
        n = MIN(etok_keystore_count_locked(ks) - start, (size_t) RPC_PAGE_MAX);
        infos = calloc(MAX(n, (size_t) 1), sizeof(*infos)); /* zeroed: see handle_token_objects() */
        if (!infos)
                r = -ENOMEM;
        else {
                for (size_t i = 0; i < n; i++) {
                        const struct etok_token *t = etok_keystore_get_locked(ks, start + i);

                        etok_token_info(t, describe, ETOK_KEY_VIEW_DESCRIBE, &infos[i]);
                        infos[i].pin_status = describe ? 0 : pin_status_for(d, s, t);
                }
                r = encode_page_locked(c, ks, start, n, infos, w);
        }
        etok_keystore_read_end(ks);
        return r;
}

static int handle_token_list(const struct etok_dispatch *d, struct etok_session *s,
                             const struct rpc_call_info *c, const void *req, struct rpc_writer *w) {
        return handle_page(d, s, c, req, w, false);
}

static int handle_describe(const struct etok_dispatch *d, struct etok_session *s,
                           const struct rpc_call_info *c, const void *req, struct rpc_writer *w) {
        return handle_page(d, s, c, req, w, true);
}

static int handle_token_objects(const struct etok_dispatch *d, struct etok_session *s,
                                const struct rpc_call_info *c, const void *request, struct rpc_writer *w) {
        const struct rpc_slot_req *req = request;
        struct rpc_token_info info = {}; /* ~3.5 KiB: the stack beats a malloc per call; zeroed: fields
                                          * etok_token_info() does not fill (expires) are absent */
        const struct etok_token *t;
        int r;

        etok_keystore_read_begin(d->keystore);
        t = etok_keystore_find_locked(d->keystore, req->slot); /* the current version only */
        if (!t)
                r = ETOK_ERR(NO_SUCH_TOKEN);
        else {
                etok_token_info(t, true, ETOK_KEY_VIEW_OBJECTS, &info);
                info.pin_status = pin_status_for(d, s, t);
                r = reply(w, c, &info);
        }
        etok_keystore_read_end(d->keystore);
        return r;
}

static int handle_login(const struct etok_dispatch *d, struct etok_session *s, const struct rpc_call_info *c,
                        const void *request, struct rpc_writer *w) {
        const struct rpc_login_req *req = request;
        uint8_t ticket[RPC_TICKET_LEN] = {};
        int r;

        r = etok_keystore_login_conn(d->keystore, &s->pin_guard, req->slot, &req->pin, ticket);
        if (r == ETOK_ERR(PIN_INCORRECT) || r == ETOK_ERR(PIN_LOCKED))
                log_notice("LOGIN on slot %" PRIu32 " refused: %s", req->slot,
                           rpc_status_to_string(errmap_status_from_errno(r)));
        if (r >= 0)
                r = reply(w, c, &(struct rpc_login_resp){ .ticket = { ticket, sizeof(ticket) } });
        secret_wipe(ticket, sizeof(ticket));
        return r;
}

static int handle_crypto(const struct etok_dispatch *d, const struct rpc_call_info *c, const void *req,
                         struct rpc_writer *w, bool decrypt) {
        uint8_t out[RPC_SIG_MAX];
        size_t n = 0;
        int r;

        r = etok_keystore_crypt(d->keystore, decrypt, req, out, sizeof(out), &n);
        if (r >= 0)
                r = reply(w, c, &(struct rpc_crypto_resp){ .data = { out, n } });
        if (rpc_call_secret_response(c))
                secret_wipe(out, sizeof(out));
        return r;
}

static int handle_sign(const struct etok_dispatch *d, struct etok_session *s, const struct rpc_call_info *c,
                       const void *req, struct rpc_writer *w) {
        return handle_crypto(d, c, req, w, false);
}

static int handle_decrypt(const struct etok_dispatch *d, struct etok_session *s,
                          const struct rpc_call_info *c, const void *req, struct rpc_writer *w) {
        return handle_crypto(d, c, req, w, true);
}

static int handle_token_add(const struct etok_dispatch *d, struct etok_session *s,
                            const struct rpc_call_info *c, const void *request, struct rpc_writer *w) {
        const struct rpc_token_add_req *req = request;
        char lbuf[RPC_LABEL_MAX + 1];
        uint32_t slot;
        int r;

        /* Plaintext private keys only with --dev. */
        if (!d->dev) {
                log_warning("TOKEN_ADD with a plaintext key refused: not running with --dev");
                return ETOK_ERR(DENIED);
        }
        r = etok_keystore_add(d->keystore, req, &slot);
        if (r < 0) {
                log_warning("Failed to provision token '%s': %s", label_for_log(&req->label, lbuf),
                            rpc_status_to_string(errmap_status_from_errno(r)));
                return r;
        }
        log_info("Token '%s' %s in slot %" PRIu32 " with %zu key(s)%s", label_for_log(&req->label, lbuf),
                 r > 0 ? "replaced" : "provisioned", slot, req->n_keys,
                 r > 0 && req->hold ? ", the replaced version held" : "");
        return reply(w, c,
                     &(struct rpc_token_add_resp){
                             .slot = slot,
                             .held = (uint32_t) MIN(etok_keystore_held_count(d->keystore, &req->label),
                                                    (size_t) UINT32_MAX),
                     });
}

static int handle_token_remove(const struct etok_dispatch *d, struct etok_session *s,
                               const struct rpc_call_info *c, const void *request, struct rpc_writer *w) {
        const struct rpc_token_remove_req *req = request;
        char lbuf[RPC_LABEL_MAX + 1];
        int r;

        r = etok_keystore_remove(d->keystore, req);
        if (r < 0) {
                log_warning("Failed to remove token '%s': %s", label_for_log(&req->label, lbuf),
                            rpc_status_to_string(errmap_status_from_errno(r)));
                return r;
        }
        log_info("Token '%s' removed, keys wiped", label_for_log(&req->label, lbuf));
        return reply(w, c, NULL);
}

static int handle_token_release(const struct etok_dispatch *d, struct etok_session *s,
                                const struct rpc_call_info *c, const void *request, struct rpc_writer *w) {
        const struct rpc_token_release_req *req = request;
        char lbuf[RPC_LABEL_MAX + 1];
        int r;

        r = etok_keystore_release(d->keystore, req);
        if (r < 0) {
                log_warning("Failed to release the held versions of token '%s': %s",
                            label_for_log(&req->label, lbuf),
                            rpc_status_to_string(errmap_status_from_errno(r)));
                return r;
        }
        if (r > 0)
                log_info("Token '%s': %d held version(s) released to the rotation grace period",
                         label_for_log(&req->label, lbuf), r);
        return reply(w, c, &(struct rpc_token_release_resp){ .released = (uint32_t) r });
}

/* The KMS key path (protocol version 3): not wired yet. */
static int handle_kms_pending(const struct etok_dispatch *d, struct etok_session *s,
                              const struct rpc_call_info *c, const void *request, struct rpc_writer *w) {
        return ETOK_ERR(NO_ATTESTATION);
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
        [RPC_CALL_TOKEN_RELEASE] = handle_token_release,
        [RPC_CALL_KMS_BEGIN] = handle_kms_pending,
        [RPC_CALL_KMS_END] = handle_kms_pending,
        [RPC_CALL_TOKEN_REFRESH] = handle_kms_pending,
        [RPC_CALL_ATTEST] = handle_kms_pending,
};

/* Decodes the request with the call's schema (into req, REQUEST_MAX bytes) and runs the handler. */
static int run_handler(const struct etok_dispatch *d, struct etok_session *s, const struct rpc_call_info *c,
                       const uint8_t *body, size_t len, void *req, struct rpc_writer *w) {
        int r;

        if (c->request->size > REQUEST_MAX)
                return -EINVAL;
        r = rpc_msg_decode(c->request, body, len, req);
        if (r < 0)
                return r;
        r = handlers[c->id](d, s, c, req, w);
        rpc_msg_done(c->request, req);
        return r;
}

void etok_dispatch_request(const struct etok_dispatch *d, struct etok_session *s, unsigned call,
                           const uint8_t *body, size_t len, struct rpc_writer *w, struct etok_reply *ret) {
        static const uint8_t empty[1];
        _Alignas(max_align_t) uint8_t req[REQUEST_MAX];
        const struct rpc_call_info *c = NULL;
        size_t mark = w->len;
        int r;

        *ret = (struct etok_reply){};
        r = rpc_call_check(call, s->channel, s->state, &c);
        if (r < 0) {
                log_debug("%s call %u (%s) on the %s channel refused, closing",
                          s->state == RPC_STATE_NEW ? "Early" : "Bad", call,
                          rpc_call_to_string(call) ?: "unknown", rpc_channel_to_string(s->channel));
                *ret = (struct etok_reply){ .status = RPC_STATUS_MALFORMED, .close = true };
                return;
        }
        ret->secret = rpc_call_secret_response(c);
        r = run_handler(d, s, c, body ?: empty, len, req, w);
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
