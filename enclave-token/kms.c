/* The KMS round of a control connection: credentials, one ephemeral key, one attestation document and
 * one kept-alive TLS connection for every Decrypt of the round. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "aws/endpoint.h"
#include "aws/http.h"
#include "aws/kms.h"
#include "aws/sigv4.h"
#include "common/cleanup-ssl.h"
#include "common/log.h"
#include "common/time-util.h"
#include "enclave-token/cms.h"
#include "enclave-token/errors.h"
#include "enclave-token/kms.h"

struct etok_kms_round {
        const struct etok_kms_config *cfg;
        char region[AWS_REGION_MAX + 1];
        char host[AWS_HOST_MAX];
        char akid[RPC_AKID_MAX + 1];
        struct secret_buf *secret, *token; /* token NULL: long-term credentials */
        int64_t offset_ms;                 /* added to the enclave's clock to sign */
        bool per_key;

        /* The Recipient: for the whole round, or (per_key) for one Decrypt. */
        EVP_PKEY *key;
        uint8_t *doc;
        size_t doc_len;
        struct aws_http_conn *conn;

        struct etok_kms_stats stats;
};

static pthread_mutex_t last_lock = PTHREAD_MUTEX_INITIALIZER;
static struct etok_kms_stats last_stats;

static int64_t realtime_ms(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int cfg_ms(int v, int def) {
        return v > 0 ? v : def;
}

/* A text slice from the wire into a NUL-terminated buffer of size bytes; -EBADMSG if it does not fit
 * or holds a NUL. */
static int slice_to_str(const struct rpc_slice *s, char *buf, size_t size) {
        if (s->len >= size || (s->len && memchr(s->ptr, 0, s->len)))
                return -EBADMSG;
        if (s->len > 0) /* an absent field is a NULL slice */
                memcpy(buf, s->ptr, s->len);
        buf[s->len] = '\0';
        return 0;
}

/* Access key ids are upper-case letters and digits (AKIA..., ASIA...). */
static bool akid_ok(const struct rpc_slice *s) {
        for (size_t i = 0; i < s->len; i++)
                if (!((s->ptr[i] >= 'A' && s->ptr[i] <= 'Z') || (s->ptr[i] >= '0' && s->ptr[i] <= '9')))
                        return false;
        return s->len > 0;
}

static void recipient_drop(struct etok_kms_round *k) {
        EVP_PKEY_free(TAKE_PTR(k->key)); /* RSA private numbers are wiped by OpenSSL */
        free(TAKE_PTR(k->doc));
        k->doc_len = 0;
        k->conn = aws_http_conn_free(k->conn);
}

/* The key pair and the attestation document with its SPKI as public_key. */
static int recipient_new(struct etok_kms_round *k) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_free_ uint8_t *spki = NULL;
        _cleanup_free_ char *err = NULL;
        uint8_t *doc = NULL;
        size_t spki_len = 0, doc_len = 0;
        int r;

        r = nsm_kms_keypair_new(&key, &spki, &spki_len);
        if (r < 0)
                return log_error_errno(r, "KMS round: cannot make the RSA-2048 key pair: %m");
        r = nsm_get_attestation(k->cfg->nsm, NULL, NULL, &NSM_OPT(spki, spki_len), &doc, &doc_len, &err);
        k->stats.documents++;
        if (r < 0)
                return log_error_errno(r == -ENOMEM ? r : ETOK_ERR(INTERNAL),
                                       "KMS round: the NSM (%s) gave no attestation document: %s",
                                       nsm_dev_name(k->cfg->nsm), err ?: strerror(-r));
        k->key = TAKE_PTR(key);
        k->doc = doc;
        k->doc_len = doc_len;
        return 0;
}

static int conn_new(struct etok_kms_round *k) {
        const struct etok_kms_config *c = k->cfg;
        struct aws_err e = {};
        int r;

        r = aws_http_conn_new(
                &(struct aws_http_opts){
                        .address = c->proxy ?: ETOK_KMS_PROXY_DEFAULT,
                        .host = k->host,
                        .ca_file = c->ca_file,
                        .connect_timeout_ms = cfg_ms(c->connect_ms, ETOK_KMS_CONNECT_MS),
                        .total_timeout_ms = cfg_ms(c->attempt_ms, ETOK_KMS_ATTEMPT_MS),
                        .max_response = AWS_KMS_BODY_MAX,
                },
                &k->conn, &e);
        if (r < 0)
                return log_error_errno(r == -ENOMEM ? r : ETOK_ERR(KMS_ERROR),
                                       "KMS round: cannot set up HTTPS to %s through '%s': %s", k->host,
                                       c->proxy ?: ETOK_KMS_PROXY_DEFAULT, e.msg);
        return 0;
}

/* The clock SigV4 signs with: the enclave's own, unless the parent's differs by more than
 * ETOK_KMS_CLOCK_SKEW_MS (nitro-cli #500: an enclave's clock may drift); then the parent's, kept as an
 * offset so the round's clock still runs. */
static bool pick_clock(struct etok_kms_round *k, uint64_t parent_ms, int64_t own_ms) {
        int64_t diff = (int64_t) MIN(parent_ms, (uint64_t) INT64_MAX) - own_ms;

        if (diff > ETOK_KMS_CLOCK_SKEW_MS || diff < -ETOK_KMS_CLOCK_SKEW_MS) {
                k->offset_ms = diff;
                log_notice("KMS round: the enclave's clock is %" PRId64 " ms %s the parent's, signing with "
                           "the parent's",
                           diff > 0 ? diff : -diff, diff > 0 ? "behind" : "ahead of");
                return true;
        }
        log_debug("KMS round: the enclave's clock is within %" PRId64 " ms of the parent's",
                  diff > 0 ? diff : -diff);
        return false;
}

static int round_creds(struct etok_kms_round *k, const struct rpc_kms_begin_req *req) {
        char domain[RPC_DOMAIN_MAX + 1];
        struct aws_err e = {};
        int r;

        if (slice_to_str(&req->region, k->region, sizeof(k->region)) < 0 ||
            aws_region_validate(k->region, &e) < 0)
                return log_warning_errno(-EBADMSG, "KMS_BEGIN: invalid region: %s", e.msg);
        if (slice_to_str(&req->domain, domain, sizeof(domain)) < 0 ||
            (domain[0] && aws_dns_suffix_validate(domain, &e) < 0))
                return log_warning_errno(-EBADMSG, "KMS_BEGIN: invalid domain: %s", e.msg);
        r = aws_kms_host(k->region, domain[0] ? domain : NULL, k->host, sizeof(k->host), &e);
        if (r < 0)
                return log_warning_errno(-EBADMSG, "KMS_BEGIN: no KMS host name: %s", e.msg);
        if (!akid_ok(&req->access_key_id) || slice_to_str(&req->access_key_id, k->akid, sizeof(k->akid)) < 0)
                return log_warning_errno(-EBADMSG, "KMS_BEGIN: the access key id is not [A-Z0-9]+");
        r = secret_buf_dup(req->secret_access_key.ptr, req->secret_access_key.len, &k->secret);
        if (r < 0)
                return r;
        if (req->session_token.len > 0) {
                r = secret_buf_dup(req->session_token.ptr, req->session_token.len, &k->token);
                if (r < 0)
                        return r;
        }
        return 0;
}

int etok_kms_round_begin(const struct etok_kms_config *cfg, const struct rpc_kms_begin_req *req,
                         struct etok_kms_round **ret, struct rpc_kms_begin_resp *ret_resp) {
        _cleanup_(etok_kms_round_endp) struct etok_kms_round *k = NULL;
        int64_t own;
        bool parent;
        int r;

        if (!cfg || !cfg->nsm)
                return ETOK_ERR(NO_ATTESTATION);
        k = calloc(1, sizeof(*k));
        if (!k)
                return -ENOMEM;
        k->cfg = cfg;
        k->per_key = req->per_key;
        r = round_creds(k, req);
        if (r < 0)
                return r;
        own = realtime_ms();
        parent = pick_clock(k, req->time, own);
        if (!k->per_key) {
                if ((r = recipient_new(k)) < 0 || (r = conn_new(k)) < 0)
                        return r;
        }
        log_info("KMS round opened: %s, %s credentials%s", k->host, k->token ? "temporary" : "long-term",
                 k->per_key ? ", a new key, document and connection per Decrypt" : "");
        *ret_resp = (struct rpc_kms_begin_resp){ .time = (uint64_t) MAX(own, (int64_t) 0),
                                                 .parent_time = parent };
        *ret = TAKE_PTR(k);
        return 0;
}

void etok_kms_round_stats(const struct etok_kms_round *k, struct etok_kms_stats *ret) {
        *ret = k ? k->stats : (struct etok_kms_stats){};
}

void etok_kms_last_stats(struct etok_kms_stats *ret) {
        (void) pthread_mutex_lock(&last_lock);
        *ret = last_stats;
        (void) pthread_mutex_unlock(&last_lock);
}

struct etok_kms_round *etok_kms_round_end(struct etok_kms_round *k) {
        if (!k)
                return NULL;
        log_debug("KMS round ended: %u attestation document(s), %u TLS connection(s), %u Decrypt request(s)",
                  k->stats.documents, k->stats.connections, k->stats.decrypts);
        (void) pthread_mutex_lock(&last_lock);
        last_stats = k->stats;
        (void) pthread_mutex_unlock(&last_lock);
        recipient_drop(k);
        secret_buf_free(k->secret);
        secret_buf_free(k->token);
        secret_wipe(k, sizeof(*k));
        free(k);
        return NULL;
}

/* What one attempt came to. */
struct outcome {
        int r;          /* 0, or the status errno */
        bool retry;     /* worth another attempt */
        char what[320]; /* for the log line: no credential, no key material */
};

static void outcome_set(struct outcome *o, int r, bool retry, const char *fmt, ...) _printf_(4, 5);
static void outcome_set(struct outcome *o, int r, bool retry, const char *fmt, ...) {
        va_list ap;

        o->r = r;
        o->retry = retry;
        va_start(ap, fmt);
        (void) vsnprintf(o->what, sizeof(o->what), fmt, ap);
        va_end(ap);
}

static void classify_transport(int r, const struct aws_err *e, struct outcome *o) {
        switch (r) {
        case -ETIMEDOUT:
        case -ECONNREFUSED:
        case -ENOENT:
        case -ECONNRESET:
        case -EPROTO:
        case -EHOSTUNREACH:
        case -ENETUNREACH:
        case -EPIPE: outcome_set(o, ETOK_ERR(KMS_UNAVAILABLE), true, "%s", e->msg); return;
        case -ENOMEM: outcome_set(o, -ENOMEM, false, "out of memory"); return;
        default: outcome_set(o, ETOK_ERR(KMS_ERROR), false, "%s", e->msg); return;
        }
}

static int kms_error_status(enum aws_kms_error t) {
        switch (t) {
        case AWS_KMS_ERR_ACCESS_DENIED:
        case AWS_KMS_ERR_UNRECOGNIZED_CLIENT:
        case AWS_KMS_ERR_INVALID_SIGNATURE:
        case AWS_KMS_ERR_EXPIRED_TOKEN: return ETOK_ERR(KMS_DENIED);
        case AWS_KMS_ERR_INVALID_CIPHERTEXT:
        case AWS_KMS_ERR_INCORRECT_KEY:
        case AWS_KMS_ERR_NOT_FOUND:
        case AWS_KMS_ERR_DISABLED:
        case AWS_KMS_ERR_INVALID_STATE: return ETOK_ERR(KMS_CIPHERTEXT);
        default: return aws_kms_error_retryable(t) ? ETOK_ERR(KMS_UNAVAILABLE) : ETOK_ERR(KMS_ERROR);
        }
}

/* A non-200 answer: the AWS error body, or the status alone. */
static void classify_http(const struct aws_http_resp *resp, struct outcome *o) {
        struct aws_kms_error_info info = {};
        struct aws_err e = {};

        if (aws_kms_error_parse(resp->body, resp->body_len, &info, &e) < 0) {
                bool server = resp->status >= 500 && resp->status <= 599;

                outcome_set(o, server ? ETOK_ERR(KMS_UNAVAILABLE) : ETOK_ERR(KMS_ERROR), server,
                            "HTTP %ld without an AWS error body (%s)", resp->status, e.msg);
                return;
        }
        o->r = kms_error_status(info.type);
        outcome_set(o, o->r, o->r == ETOK_ERR(KMS_UNAVAILABLE), "HTTP %ld %s: %s", resp->status,
                    info.type_name, info.message);
}

/* One signed POST of body. */
static int post_once(struct etok_kms_round *k, const char *body, size_t body_len, struct aws_http_resp *resp,
                     struct outcome *o) {
        _cleanup_(aws_sigv4_result_done) struct aws_sigv4_result sig = {};
        struct aws_header kh[2], signed_h[3], send_h[2 + AWS_SIGV4_MAX_ADD];
        struct aws_credentials creds = { .access_key_id = k->akid,
                                         .secret_access_key = k->secret,
                                         .session_token = k->token };
        struct aws_err e = {};
        size_t n = 0;
        int r;

        r = aws_kms_headers(AWS_KMS_DECRYPT, kh);
        if (r < 0)
                return r;
        signed_h[0] = (struct aws_header){ "Host", k->host };
        signed_h[1] = kh[0];
        signed_h[2] = kh[1];
        r = aws_sigv4_sign(
                &(struct aws_sigv4_req){
                        .method = "POST",
                        .path = "/",
                        .headers = signed_h,
                        .n_headers = ELEMENTSOF(signed_h),
                        .body = body,
                        .body_len = body_len,
                        .creds = &creds,
                        .region = k->region,
                        .service = "kms",
                        .time = (realtime_ms() + k->offset_ms) / 1000,
                        .flags = AWS_SIGV4_NORMALIZE_PATH | AWS_SIGV4_SIGN_BODY,
                },
                &sig, &e);
        if (r < 0) {
                outcome_set(o, r == -ENOMEM ? r : ETOK_ERR(KMS_ERROR), false, "cannot sign: %s", e.msg);
                return 0;
        }
        send_h[n++] = kh[0];
        send_h[n++] = kh[1];
        for (size_t i = 0; i < sig.n_add; i++)
                send_h[n++] = sig.add[i];
        k->stats.decrypts++;
        r = aws_http_post(
                k->conn,
                &(struct aws_http_req){
                        .path = "/", .headers = send_h, .n_headers = n, .body = body, .body_len = body_len },
                resp, &e);
        if (r < 0) {
                classify_transport(r, &e, o);
                return 0;
        }
        k->stats.connections += resp->new_connections > 0 ? (unsigned) resp->new_connections : 0;
        if (resp->status != 200)
                classify_http(resp, o);
        else
                o->r = 0;
        return 0;
}

static int64_t jittered(int64_t ms) {
        uint16_t j = 0;

        if (RAND_bytes((unsigned char *) &j, sizeof(j)) != 1)
                ERR_clear_error();
        return ms + (ms / 4) * j / UINT16_MAX; /* up to a quarter more: retries of many rounds spread */
}

static void sleep_ms(int64_t ms) {
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000 };

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

/* Posts body with bounded retries; on success resp holds the 200 answer. */
static int post_retrying(struct etok_kms_round *k, const char *body, size_t body_len,
                         struct aws_http_resp *resp) {
        const struct etok_kms_config *c = k->cfg;
        int64_t start = (int64_t) mono_msec(), budget = cfg_ms(c->decrypt_ms, ETOK_KMS_DECRYPT_MS);
        int64_t backoff = cfg_ms(c->backoff_ms, ETOK_KMS_BACKOFF_MS), attempt_ms;
        struct outcome o = {};
        unsigned attempt;
        int r;

        attempt_ms = cfg_ms(c->attempt_ms, ETOK_KMS_ATTEMPT_MS);
        for (attempt = 1;; attempt++) {
                int64_t wait;

                aws_http_resp_done(resp);
                o = (struct outcome){};
                r = post_once(k, body, body_len, resp, &o);
                if (r < 0)
                        return r;
                if (o.r == 0)
                        return 0;
                if (!o.retry || attempt >= ETOK_KMS_ATTEMPTS)
                        break;
                wait = jittered(backoff << (attempt - 1));
                /* Another attempt only if it can run its full course within the budget. */
                if ((int64_t) mono_msec() - start + wait + attempt_ms > budget)
                        break;
                log_info("KMS Decrypt at %s, attempt %u: %s; retrying in %" PRId64 " ms", k->host, attempt,
                         o.what, wait);
                sleep_ms(wait);
        }
        aws_http_resp_done(resp);
        if (o.r == -ENOMEM)
                return o.r;
        log_warning("KMS Decrypt at %s failed (%s) after %u attempt(s): %s", k->host,
                    rpc_status_to_string(errmap_status_from_errno(o.r)), attempt, o.what);
        return o.r;
}

/* The 200 answer: CiphertextForRecipient, opened with the round's key. */
static int open_answer(struct etok_kms_round *k, const struct aws_http_resp *resp, struct secret_buf **ret) {
        _cleanup_free_ uint8_t *cfr = NULL;
        _cleanup_free_ char *err = NULL;
        struct aws_kms_decrypt_resp d = {};
        struct aws_err e = {};
        int r;

        cfr = malloc(AWS_KMS_BLOB_MAX);
        if (!cfr)
                return -ENOMEM;
        r = aws_kms_decrypt_response_parse(resp->body, resp->body_len, cfr, AWS_KMS_BLOB_MAX, &d, &e);
        if (r < 0)
                return log_warning_errno(r == -ENOMEM ? r : ETOK_ERR(KMS_ERROR),
                                         "KMS Decrypt at %s: unusable answer: %s", k->host, e.msg);
        r = cms_envelope_open(cfr, d.cfr_len, k->key, ret, &err);
        if (r < 0)
                return log_warning_errno(
                        r == -ENOMEM ? r : ETOK_ERR(KMS_ERROR),
                        "KMS Decrypt at %s: CiphertextForRecipient (%zu bytes) does not open "
                        "with the round's key: %s",
                        k->host, d.cfr_len, err ?: strerror(-r));
        return 0;
}

static int decrypt_with_recipient(struct etok_kms_round *k, const uint8_t *ct, size_t len,
                                  struct secret_buf **ret) {
        _cleanup_(aws_http_resp_done) struct aws_http_resp resp = {};
        _cleanup_free_ char *body = NULL;
        struct aws_err e = {};
        size_t body_len = 0;
        int r;

        r = aws_kms_decrypt_request_build(
                &(struct aws_kms_decrypt_req){
                        .ciphertext = ct,
                        .ciphertext_len = len,
                        .attestation_doc = k->doc,
                        .attestation_doc_len = k->doc_len,
                },
                &body, &body_len, &e);
        if (r < 0)
                return log_warning_errno(r == -ENOMEM ? r : -EBADMSG, "KMS Decrypt: bad request: %s", e.msg);
        r = post_retrying(k, body, body_len, &resp);
        if (r < 0)
                return r;
        return open_answer(k, &resp, ret);
}

int etok_kms_decrypt(struct etok_kms_round *k, const uint8_t *ct, size_t len, struct secret_buf **ret) {
        int r;

        if (!k)
                return ETOK_ERR(NO_KMS_ROUND);
        if (len == 0 || len > AWS_KMS_BLOB_MAX)
                return -EBADMSG;
        if (k->per_key) {
                /* As AWS's ACM does: a new key, document and TLS connection for every Decrypt. */
                if ((r = recipient_new(k)) < 0 || (r = conn_new(k)) < 0) {
                        recipient_drop(k);
                        return r;
                }
        }
        r = decrypt_with_recipient(k, ct, len, ret);
        if (k->per_key)
                recipient_drop(k);
        return r;
}
