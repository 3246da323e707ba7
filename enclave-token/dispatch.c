/* The request dispatcher: call table check, then one small handler per call. No sockets here. */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "common/log.h"
#include "common/p11-errmap.h"
#include "common/cleanup-ssl.h"
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

void etok_session_done(struct etok_session *s) {
        s->kms_round = etok_kms_round_end(s->kms_round);
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
                        /* An older client would refuse the unknown key. */
                        if (describe && s->version >= RPC_VERSION_KMS)
                                infos[i].expires = t->expires;
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

/* Plaintexts of a request's KMS ciphertexts, wiped when the handler returns. */
struct plaintexts {
        struct secret_buf *buf[RPC_MAX_KEYS];
};

static void plaintexts_done(struct plaintexts *p) {
        for (size_t i = 0; i < ELEMENTSOF(p->buf); i++)
                p->buf[i] = secret_buf_free(p->buf[i]);
}

/* Each key is key_pem (--dev only) or a ciphertext, never both: MALFORMED, DENIED; *ret_kms: any
 * ciphertext. */
static int add_check_sources(const struct etok_dispatch *d, const struct rpc_token_add_req *req,
                             const char *label, bool *ret_kms) {
        bool kms = false;

        for (size_t i = 0; i < req->n_keys; i++) {
                const struct rpc_add_key *k = &req->keys[i];

                if ((k->key_pem.len > 0) == (k->ciphertext.len > 0)) {
                        log_warning("TOKEN_ADD of token '%s': key id %" PRIu32 " needs exactly one of "
                                    "key_pem and ciphertext",
                                    label, k->id);
                        return -EBADMSG;
                }
                if (k->key_pem.len > 0 && !d->dev) {
                        log_warning("TOKEN_ADD of token '%s' with a plaintext key refused: not running with "
                                    "--dev",
                                    label);
                        return ETOK_ERR(DENIED);
                }
                kms = kms || k->ciphertext.len > 0;
        }
        *ret_kms = kms;
        return 0;
}

/* Decrypts every ciphertext of the request in the connection's round, into p; copy gets the
 * plaintexts as key_pem. Nothing is provisioned before all of them are decrypted. */
static int add_decrypt_all(struct etok_session *s, const struct rpc_token_add_req *req, const char *label,
                           struct plaintexts *p, struct rpc_token_add_req *copy) {
        int r;

        if (!s->kms_round) {
                log_warning("TOKEN_ADD of token '%s': KMS ciphertexts without KMS_BEGIN on this connection",
                            label);
                return ETOK_ERR(NO_KMS_ROUND);
        }
        for (size_t i = 0; i < req->n_keys; i++) {
                const struct rpc_add_key *k = &req->keys[i];

                if (k->ciphertext.len == 0)
                        continue;
                r = etok_kms_decrypt(s->kms_round, k->ciphertext.ptr, k->ciphertext.len, &p->buf[i]);
                if (r < 0) {
                        log_warning("Token '%s' not provisioned: the key of key id %" PRIu32 " was not "
                                    "decrypted (%s)",
                                    label, k->id, rpc_status_to_string(errmap_status_from_errno(r)));
                        return r;
                }
                copy->keys[i].key_pem = (struct rpc_slice){ p->buf[i]->data, p->buf[i]->len };
                copy->keys[i].ciphertext = (struct rpc_slice){};
        }
        return 0;
}

static int handle_token_add(const struct etok_dispatch *d, struct etok_session *s,
                            const struct rpc_call_info *c, const void *request, struct rpc_writer *w) {
        const struct rpc_token_add_req *req = request;
        _cleanup_(plaintexts_done) struct plaintexts p = {};
        struct rpc_token_add_req copy = *req;
        char lbuf[RPC_LABEL_MAX + 1];
        const char *label = label_for_log(&req->label, lbuf);
        size_t bad = SIZE_MAX;
        uint64_t expires = 0, ttl;
        bool kms = false;
        uint32_t slot;
        int r;

        r = add_check_sources(d, req, label, &kms);
        if (r < 0)
                return r;
        if (kms && (r = add_decrypt_all(s, req, label, &p, &copy)) < 0)
                return r;
        ttl = req->ttl > 0 ? req->ttl : kms ? ETOK_KMS_TTL_DEFAULT_SEC : 0; /* --dev plaintext: never */
        r = etok_keystore_add_ttl(d->keystore, &copy, ttl, &slot, &expires, &bad);
        plaintexts_done(&p); /* parsed into the keystore, or refused: wiped now */
        secret_wipe(&copy, sizeof(copy));
        if (r == ETOK_ERR(KEY_INVALID) && bad < req->n_keys && req->keys[bad].ciphertext.len > 0) {
                log_warning("Token '%s': the decrypted key of key id %" PRIu32 " does not match its "
                            "certificate (or is not a usable private key), token not provisioned",
                            label, req->keys[bad].id);
                return r;
        }
        if (r < 0) {
                log_warning("Failed to provision token '%s': %s", label,
                            rpc_status_to_string(errmap_status_from_errno(r)));
                return r;
        }
        log_info("Token '%s' %s in slot %" PRIu32 " with %zu key(s)%s%s", label,
                 r > 0 ? "replaced" : "provisioned", slot, req->n_keys, kms ? " from KMS" : "",
                 r > 0 && req->hold ? ", the replaced version held" : "");
        return reply(w, c,
                     &(struct rpc_token_add_resp){
                             .slot = slot,
                             .held = (uint32_t) MIN(etok_keystore_held_count(d->keystore, &req->label),
                                                    (size_t) UINT32_MAX),
                             .expires = expires,
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

static int handle_attest(const struct etok_dispatch *d, struct etok_session *s,
                         const struct rpc_call_info *c, const void *request, struct rpc_writer *w) {
        const struct rpc_attest_req *req = request;
        _cleanup_free_ uint8_t *doc = NULL;
        _cleanup_free_ char *err = NULL;
        size_t len = 0;
        int r;

        if (!d->nsm)
                return ETOK_ERR(NO_ATTESTATION);
        r = nsm_get_attestation(d->nsm, req->nonce.len ? &NSM_OPT(req->nonce.ptr, req->nonce.len) : NULL,
                                req->user_data.len ? &NSM_OPT(req->user_data.ptr, req->user_data.len) : NULL,
                                NULL, &doc, &len, &err);
        if (r < 0)
                return log_error_errno(r == -ENOMEM ? r : ETOK_ERR(INTERNAL),
                                       "ATTEST: the NSM (%s) gave no document: %s", nsm_dev_name(d->nsm),
                                       err ?: strerror(-r));
        if (len > RPC_ATTEST_DOC_MAX)
                return log_error_errno(ETOK_ERR(INTERNAL), "ATTEST: the NSM's document is %zu bytes", len);
        return reply(w, c, &(struct rpc_attest_resp){ .document = { doc, len } });
}

static int handle_kms_begin(const struct etok_dispatch *d, struct etok_session *s,
                            const struct rpc_call_info *c, const void *request, struct rpc_writer *w) {
        struct rpc_kms_begin_resp resp = {};
        struct etok_kms_round *k = NULL;
        int r;

        if (!d->nsm || !d->kms)
                return ETOK_ERR(NO_ATTESTATION);
        /* A second KMS_BEGIN replaces the round: the old one is wiped first. */
        s->kms_round = etok_kms_round_end(s->kms_round);
        r = etok_kms_round_begin(d->kms, request, &k, &resp);
        if (r < 0)
                return r;
        s->kms_round = k;
        return reply(w, c, &resp);
}

static int handle_kms_end(const struct etok_dispatch *d, struct etok_session *s,
                          const struct rpc_call_info *c, const void *request, struct rpc_writer *w) {
        etok_session_done(s);
        return reply(w, c, NULL);
}

/* Decrypts and parses every key of a refresh into pkeys (the plaintexts are wiped at once). */
static int refresh_decrypt_all(struct etok_session *s, const struct rpc_token_refresh_req *req,
                               const char *label, uint32_t *ids, EVP_PKEY **pkeys) {
        int r;

        for (size_t i = 0; i < req->n_keys; i++) {
                _cleanup_secret_ struct secret_buf *plain = NULL;

                ids[i] = req->keys[i].id;
                r = etok_kms_decrypt(s->kms_round, req->keys[i].ciphertext.ptr, req->keys[i].ciphertext.len,
                                     &plain);
                if (r >= 0)
                        r = etok_key_parse_private(&(struct rpc_slice){ plain->data, plain->len },
                                                   &pkeys[i]);
                if (r < 0) {
                        log_warning("Token '%s' not refreshed: the key of key id %" PRIu32
                                    " was not %s (%s)",
                                    label, ids[i], plain ? "a private key" : "decrypted",
                                    rpc_status_to_string(errmap_status_from_errno(r)));
                        return r;
                }
        }
        return 0;
}

static int handle_token_refresh(const struct etok_dispatch *d, struct etok_session *s,
                                const struct rpc_call_info *c, const void *request, struct rpc_writer *w) {
        const struct rpc_token_refresh_req *req = request;
        EVP_PKEY *pkeys[RPC_MAX_KEYS] = {};
        uint32_t ids[RPC_MAX_KEYS] = {};
        char lbuf[RPC_LABEL_MAX + 1];
        const char *label = label_for_log(&req->label, lbuf);
        size_t bad = SIZE_MAX;
        uint64_t expires = 0;
        int r;

        if (!s->kms_round) {
                log_warning("TOKEN_REFRESH of token '%s' without KMS_BEGIN on this connection", label);
                return ETOK_ERR(NO_KMS_ROUND);
        }
        /* The PIN before KMS is asked anything. */
        r = etok_keystore_check_pin(d->keystore, &req->label, &req->pin);
        if (r >= 0)
                r = refresh_decrypt_all(s, req, label, ids, pkeys);
        if (r >= 0)
                r = etok_keystore_refresh(d->keystore, &req->label, &req->pin, ids, pkeys, req->n_keys,
                                          req->ttl ?: ETOK_KMS_TTL_DEFAULT_SEC, &expires, &bad);
        for (size_t i = 0; i < ELEMENTSOF(pkeys); i++)
                EVP_PKEY_free(pkeys[i]);
        if (r == ETOK_ERR(KEY_INVALID) && bad < req->n_keys)
                log_warning("Token '%s' not refreshed: the decrypted key of key id %" PRIu32 " is not the "
                            "key the token holds",
                            label, req->keys[bad].id);
        else if (r < 0)
                log_warning("Token '%s' not refreshed: %s%s", label,
                            rpc_status_to_string(errmap_status_from_errno(r)),
                            r == ETOK_ERR(KEY_INVALID) ? " (the keys given are not all of the token's)"
                                                       : "");
        if (r < 0)
                return r;
        log_info("Token '%s' refreshed: expires at %" PRIu64, label, expires);
        return reply(w, c, &(struct rpc_token_refresh_resp){ .expires = expires });
}

/* One token's counters and public facts for STATS. Read lock held. */
static void token_stats(const struct etok_token *t, struct rpc_token_stats *ret) {
        etok_stats_read(t->stats, ret);
        ret->slot = t->slot;
        ret->label = (struct rpc_slice){ (const uint8_t *) t->label, t->label_len };
        ret->expires = t->expires;
        ret->n_keys_held = (uint32_t) t->n_keys;
}

/* Encodes the STATS page, halving it until it fits the frame. Read lock held. */
static int encode_stats_locked(const struct rpc_call_info *c, struct etok_keystore *ks, size_t start,
                               size_t n, struct rpc_stats_resp *resp, struct rpc_writer *w) {
        size_t mark = w->len;
        int r;

        for (;;) {
                const struct etok_token *next = etok_keystore_get_locked(ks, start + n);

                resp->next = next ? next->slot : 0;
                resp->n_tokens = n;
                r = reply(w, c, resp);
                if (r != -EMSGSIZE || n <= 1)
                        return r;
                n /= 2;
                w->len = mark;
                w->err = 0;
        }
}

static int handle_stats(const struct etok_dispatch *d, struct etok_session *s, const struct rpc_call_info *c,
                        const void *request, struct rpc_writer *w) {
        const struct rpc_page_req *req = request;
        struct etok_keystore *ks = d->keystore;
        _cleanup_free_ struct rpc_token_stats *tokens = NULL;
        struct rpc_stats_resp resp = { .n_bounds = ETOK_STATS_BOUNDS };
        size_t start, n, total;
        uint64_t keys = 0;
        int r;

        memcpy(resp.bounds_ns, etok_stats_bounds_ns, sizeof(etok_stats_bounds_ns));
        etok_stats_read_errors(etok_keystore_stats(ks), resp.errors, &resp.n_errors);
        etok_keystore_read_begin(ks);
        total = etok_keystore_count_locked(ks);
        start = etok_keystore_seek_locked(ks, req->cursor);
        n = MIN(total - start, (size_t) RPC_PAGE_MAX);
        tokens = calloc(MAX(n, (size_t) 1), sizeof(*tokens));
        if (!tokens)
                r = -ENOMEM;
        else {
                for (size_t i = 0; i < total; i++)
                        keys += etok_keystore_get_locked(ks, i)->n_keys;
                for (size_t i = 0; i < n; i++)
                        token_stats(etok_keystore_get_locked(ks, start + i), &tokens[i]);
                resp.generation = etok_keystore_generation(ks);
                resp.n_tokens_total = (uint32_t) total;
                resp.tokens = tokens;
                resp.retired = etok_keystore_retired_count_locked(ks);
                resp.keys_held = keys;
                r = encode_stats_locked(c, ks, start, n, &resp, w);
        }
        etok_keystore_read_end(ks);
        return r;
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
        [RPC_CALL_KMS_BEGIN] = handle_kms_begin,
        [RPC_CALL_KMS_END] = handle_kms_end,
        [RPC_CALL_TOKEN_REFRESH] = handle_token_refresh,
        [RPC_CALL_ATTEST] = handle_attest,
        [RPC_CALL_STATS] = handle_stats,
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
