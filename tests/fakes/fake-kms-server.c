/* The fake KMS's HTTPS/1.1 server: one thread per connection, keep-alive, bounded requests and
 * timeouts; SigV4, the request, the attestation document and the PCR policy checked as KMS does;
 * answers a real CMS EnvelopedData for the document's key. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "aws/kms.h"
#include "aws/sigv4.h"
#include "common/base64.h"
#include "common/cleanup-ssl.h"
#include "common/json.h"
#include "common/log.h"
#include "common/time-util.h"
#include "tests/fakes/fake-kms-blob.h"
#include "tests/fakes/fake-kms-cms.h"
#include "tests/fakes/fake-kms-http.h"
#include "tests/fakes/fake-kms-server.h"
#include "tests/fakes/fake-kms-util.h"

#define FKMS_ACCOUNT     "111122223333"
#define FKMS_SLOW_MAX_MS 600000u
#define FKMS_DOCS_MAX    (256u * 1024u) /* distinct documents remembered for the statistics */
#define FKMS_OUTCOMES    32u

/* ---- statistics ------------------------------------------------------------------------------- */

enum { OP_DECRYPT, OP_RANDOM, OP_OTHER, _OP_MAX };
static const char *const op_names[_OP_MAX] = { "Decrypt", "GenerateRandom", "other" };

static struct {
        pthread_mutex_t lock;
        uint64_t connections, handshakes, handshake_failures, refused_connections, requests;
        unsigned active;
        uint64_t ops[_OP_MAX];
        struct {
                const char *name; /* static */
                uint64_t count;
        } outcomes[FKMS_OUTCOMES];
        uint8_t (*docs)[SHA256_DIGEST_LENGTH];
        size_t n_docs, docs_cap;
        bool docs_overflow;
} stats = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* Called with stats.lock held. */
static void stats_write_locked(const struct fkms_config *cfg) {
        _cleanup_(json_writer_done) struct json_writer w;
        _cleanup_free_ char *out = NULL;
        size_t len;
        int r;

        json_writer_init(&w, false);
        if (!cfg->stats_file)
                return;
        json_begin_object(&w, NULL);
        json_uint(&w, "connections", stats.connections);
        json_uint(&w, "handshakes", stats.handshakes);
        json_uint(&w, "handshake_failures", stats.handshake_failures);
        json_uint(&w, "refused_connections", stats.refused_connections);
        json_uint(&w, "active_connections", stats.active);
        json_uint(&w, "requests", stats.requests);
        json_begin_object(&w, "operations");
        for (size_t i = 0; i < _OP_MAX; i++)
                json_uint(&w, op_names[i], stats.ops[i]);
        json_end_object(&w);
        json_begin_object(&w, "outcomes");
        for (size_t i = 0; i < FKMS_OUTCOMES && stats.outcomes[i].name; i++)
                json_uint(&w, stats.outcomes[i].name, stats.outcomes[i].count);
        json_end_object(&w);
        json_uint(&w, "documents", stats.n_docs);
        json_bool(&w, "documents_overflow", stats.docs_overflow);
        json_end_object(&w);
        r = json_writer_finish(&w, &out, &len);
        if (r >= 0)
                r = fkms_write_atomic(cfg->stats_file, out, len, 0644);
        if (r < 0)
                log_warning_errno(r, "Failed to write the statistics to '%s', ignoring: %m",
                                  cfg->stats_file);
}

static void stats_connection(const struct fkms_config *cfg, int what) {
        pthread_mutex_lock(&stats.lock);
        switch (what) {
        case 0:
                stats.connections++;
                stats.active++;
                break;
        case 1: stats.handshakes++; break;
        case 2: stats.handshake_failures++; break;
        case 3: stats.active--; break;
        case 4:
                stats.connections++;
                stats.refused_connections++;
                break;
        }
        stats_write_locked(cfg);
        pthread_mutex_unlock(&stats.lock);
}

/* Remembers a document by its digest (called with the lock held). */
static void stats_document_locked(const uint8_t *doc, size_t len) {
        uint8_t md[SHA256_DIGEST_LENGTH];

        SHA256(doc, len, md);
        for (size_t i = 0; i < stats.n_docs; i++)
                if (memcmp(stats.docs[i], md, sizeof(md)) == 0)
                        return;
        if (stats.n_docs == stats.docs_cap) {
                size_t cap = stats.docs_cap ? stats.docs_cap * 2 : 64;
                void *p;
                if (cap > FKMS_DOCS_MAX || !(p = realloc(stats.docs, cap * sizeof(*stats.docs)))) {
                        stats.docs_overflow = true;
                        return;
                }
                stats.docs = p;
                stats.docs_cap = cap;
        }
        memcpy(stats.docs[stats.n_docs++], md, sizeof(md));
}

static void stats_request(const struct fkms_config *cfg, int op, const char *outcome, const uint8_t *doc,
                          size_t doc_len) {
        size_t i;

        pthread_mutex_lock(&stats.lock);
        stats.requests++;
        stats.ops[op]++;
        for (i = 0; i < FKMS_OUTCOMES && stats.outcomes[i].name; i++)
                if (!strcmp(stats.outcomes[i].name, outcome))
                        break;
        if (i < FKMS_OUTCOMES) {
                stats.outcomes[i].name = outcome;
                stats.outcomes[i].count++;
        }
        if (doc)
                stats_document_locked(doc, doc_len);
        stats_write_locked(cfg);
        pthread_mutex_unlock(&stats.lock);
}

/* ---- faults ----------------------------------------------------------------------------------- */

enum fault {
        FAULT_NONE,
        FAULT_ACCESS_DENIED,
        FAULT_BAD_CIPHERTEXT,
        FAULT_THROTTLE,
        FAULT_INTERNAL,
        FAULT_EXPIRED_TOKEN,
        FAULT_SLOW,
        FAULT_CLOSE,
        FAULT_GARBAGE,
        FAULT_UNKNOWN,
};

/* The first word of the fault file; a missing file is no fault. */
static enum fault fault_read(const struct fkms_config *cfg, unsigned *ret_ms) {
        static const struct {
                const char *word;
                enum fault f;
        } words[] = {
                { "none", FAULT_NONE },
                { "access-denied", FAULT_ACCESS_DENIED },
                { "bad-ciphertext", FAULT_BAD_CIPHERTEXT },
                { "throttle", FAULT_THROTTLE },
                { "internal", FAULT_INTERNAL },
                { "expired-token", FAULT_EXPIRED_TOKEN },
                { "close", FAULT_CLOSE },
                { "garbage", FAULT_GARBAGE },
        };
        _cleanup_free_ char *text = NULL;
        size_t len, n;
        int r;

        if (!cfg->fault_file)
                return FAULT_NONE;
        r = fkms_read_file(cfg->fault_file, 4096, &text, &len);
        if (r == -ENOENT)
                return FAULT_NONE;
        if (r < 0) {
                log_error_errno(r, "Failed to read the fault file '%s': %m", cfg->fault_file);
                return FAULT_UNKNOWN;
        }
        n = strcspn(text, " \t\r\n");
        text[n] = '\0';
        if (n == 0)
                return FAULT_NONE;
        for (size_t i = 0; i < ELEMENTSOF(words); i++)
                if (!strcmp(text, words[i].word))
                        return words[i].f;
        if (!strncmp(text, "slow=", 5)) {
                unsigned long ms = 0;
                const char *p = text + 5;
                for (; *p >= '0' && *p <= '9' && ms <= FKMS_SLOW_MAX_MS; p++)
                        ms = ms * 10 + (unsigned long) (*p - '0');
                if (p != text + 5 && !*p && ms <= FKMS_SLOW_MAX_MS) {
                        *ret_ms = (unsigned) ms;
                        return FAULT_SLOW;
                }
        }
        log_error("Fault file '%s': unknown fault '%.64s' (none, access-denied, bad-ciphertext, throttle, "
                  "internal, expired-token, slow=MS, close, garbage)",
                  cfg->fault_file, text);
        return FAULT_UNKNOWN;
}

/* ---- replies ---------------------------------------------------------------------------------- */

struct reply {
        int status;
        char *body; /* malloc()ed */
        size_t len;
        const char *content_type;
        const char *outcome; /* static: "ok" or the exception name */
        char key_id[FKMS_KEY_ID_MAX + 1];
        bool close_without_answer;
        bool close_after;
};

static void reply_done(struct reply *r) {
        free(r->body);
        *r = (struct reply){};
}

static void reply_error_name(struct reply *out, int status, const char *type, const char *msg) {
        _cleanup_(json_writer_done) struct json_writer w;

        json_writer_init(&w, true);
        json_begin_object(&w, NULL);
        json_string(&w, "__type", type);
        json_string(&w, "message", msg);
        json_end_object(&w);
        free(out->body);
        out->body = NULL;
        if (json_writer_finish(&w, &out->body, &out->len) < 0) {
                out->body = NULL;
                out->len = 0;
        }
        out->status = status;
        out->content_type = AWS_KMS_CONTENT_TYPE;
        out->outcome = type;
}

_printf_(3, 4) static void reply_error(struct reply *out, enum aws_kms_error t, const char *fmt, ...) {
        char msg[512];
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        free(out->body);
        out->body = NULL;
        if (aws_kms_error_build(t, msg, &out->body, &out->len) < 0) {
                out->body = NULL;
                out->len = 0;
        }
        out->status = aws_kms_error_http_status(t);
        out->content_type = AWS_KMS_CONTENT_TYPE;
        out->outcome = aws_kms_error_to_string(t);
}

/* ---- the request handler ---------------------------------------------------------------------- */

struct fkms_server {
        const struct fkms_config *cfg;
        SSL_CTX *ctx;
};

static int lookup_creds(void *userdata, const char *akid, const struct secret_buf **ret_secret,
                        const struct secret_buf **ret_token) {
        const struct fkms_config *cfg = userdata;

        if (strcmp(akid, cfg->access_key_id) != 0)
                return -ENOKEY;
        *ret_secret = cfg->secret_access_key;
        *ret_token = cfg->session_token;
        return 0;
}

/* SigV4 as KMS judges it; false (and the error in out) when the request is refused. */
static bool check_signature(const struct fkms_config *cfg, const struct fkms_http_head *h,
                            const uint8_t *body, size_t len, struct reply *out) {
        struct aws_sigv4_received rq = { .method = h->method,
                                         .target = h->target,
                                         .headers = h->headers,
                                         .n_headers = h->n_headers,
                                         .body = body,
                                         .body_len = len };
        struct aws_sigv4_verify_params p = { .region = cfg->region,
                                             .service = "kms",
                                             .now = (int64_t) time(NULL) + cfg->clock_offset,
                                             .max_skew = 300,
                                             .flags = AWS_SIGV4_NORMALIZE_PATH,
                                             .lookup = lookup_creds,
                                             .userdata = (void *) cfg };
        enum aws_sigv4_verdict v = _AWS_SIGV4_VERDICT_INVALID;
        struct aws_err e = {};
        char msg[320];
        int r;

        r = aws_sigv4_verify(&rq, &p, &v, &e);
        if (r < 0) {
                reply_error(out, AWS_KMS_ERR_INTERNAL, "fake-kms: the signature could not be checked: %s",
                            e.msg);
                return false;
        }
        switch (v) {
        case AWS_SIGV4_OK: return true;
        case AWS_SIGV4_UNKNOWN_KEY:
        case AWS_SIGV4_BAD_TOKEN:
                reply_error(out, AWS_KMS_ERR_UNRECOGNIZED_CLIENT,
                            "The security token included in the request is invalid. (%s: %s)",
                            aws_sigv4_verdict_to_string(v), e.msg);
                return false;
        case AWS_SIGV4_MISSING_HEADER:
                (void) snprintf(msg, sizeof(msg), "Missing Authentication Token (%s)", e.msg);
                reply_error_name(out, 400, "MissingAuthenticationTokenException", msg);
                return false;
        case AWS_SIGV4_MALFORMED:
                (void) snprintf(msg, sizeof(msg), "Authorization header or X-Amz-Date malformed (%s)",
                                e.msg);
                reply_error_name(out, 400, "IncompleteSignatureException", msg);
                return false;
        case AWS_SIGV4_SKEWED:
                reply_error(
                        out, AWS_KMS_ERR_INVALID_SIGNATURE,
                        "Signature expired: X-Amz-Date is more than 5 minutes from the server's time (%s)",
                        e.msg);
                return false;
        default:
                reply_error(out, AWS_KMS_ERR_INVALID_SIGNATURE,
                            "The request signature we calculated does not match the signature you provided. "
                            "(%s: %s)",
                            aws_sigv4_verdict_to_string(v), e.msg);
                return false;
        }
}

/* The document against the root file and the PCR policy; the recipient's RSA key on success. */
static bool check_document(const struct fkms_config *cfg, const struct aws_kms_request *q,
                           EVP_PKEY **ret_key, struct reply *out) {
        _cleanup_free_ uint8_t *root = NULL;
        struct attest_result res;
        struct attest_opts o;
        const char *why = NULL;
        size_t root_len;
        int r;

        r = fkms_pem_cert_der(cfg->attestation_root, &root, &root_len);
        if (r < 0) {
                log_error_errno(r, "Failed to read the attestation root '%s': %m", cfg->attestation_root);
                reply_error(out, AWS_KMS_ERR_INTERNAL, "fake-kms: cannot read its attestation root");
                return false;
        }
        o = (struct attest_opts){ .root_der = root,
                                  .root_len = root_len,
                                  .time_mode = ATTEST_TIME_GIVEN,
                                  .time_ms = (uint64_t) ((int64_t) time(NULL) + cfg->clock_offset) * 1000u,
                                  .pcrs = cfg->policy,
                                  .n_pcrs = cfg->n_policy };
        r = attest_verify(q->attestation_doc, q->attestation_doc_len, &o, &res);
        if (r < 0) {
                if (res.reason == ATTEST_ERR_PCR)
                        reply_error(out, AWS_KMS_ERR_ACCESS_DENIED,
                                    "The attestation document does not satisfy the key policy: "
                                    "kms:RecipientAttestation:%s%u%s differs",
                                    res.pcr_index == 0 ? "ImageSha384 (PCR" : "PCR", res.pcr_index,
                                    res.pcr_index == 0 ? ")" : "");
                else if (res.reason == ATTEST_ERR_MALFORMED)
                        reply_error(out, AWS_KMS_ERR_ACCESS_DENIED,
                                    "Invalid attestation document: malformed at byte %zu (%s)", res.offset,
                                    res.field ? res.field : "?");
                else
                        reply_error(out, AWS_KMS_ERR_ACCESS_DENIED, "Invalid attestation document: %s%s%s",
                                    attest_reason_to_string(res.reason), res.detail ? ": " : "",
                                    res.detail ? res.detail : "");
                return false;
        }
        if (res.doc.public_key.kind != ATTEST_OPT_BYTES) {
                reply_error(out, AWS_KMS_ERR_VALIDATION, "The attestation document carries no public_key");
                return false;
        }
        r = fkms_recipient_key(res.doc.public_key.ptr, res.doc.public_key.len, ret_key, &why);
        if (r < 0) {
                reply_error(out, AWS_KMS_ERR_VALIDATION, "Recipient.AttestationDocument: %s", why);
                return false;
        }
        return true;
}

static void reply_cms(const struct fkms_config *cfg, EVP_PKEY *key, const struct secret_buf *pt,
                      const char *key_id, struct reply *out) {
        _cleanup_free_ uint8_t *cms = NULL;
        char arn[256];
        size_t len;
        int r;

        r = fkms_cms_envelope(key, cfg->cert_signer, pt->data, pt->len, &cms, &len);
        if (r < 0) {
                log_error_errno(r, "Failed to make the CMS envelope: %m");
                reply_error(out, AWS_KMS_ERR_INTERNAL, "fake-kms: CMS envelope failed");
                return;
        }
        free(out->body);
        out->body = NULL;
        if (key_id) {
                (void) snprintf(arn, sizeof(arn), "arn:%s:kms:%s:" FKMS_ACCOUNT ":key/%s", cfg->partition,
                                cfg->region, key_id);
                r = aws_kms_decrypt_response_build(arn, "SYMMETRIC_DEFAULT", cms, len, &out->body,
                                                   &out->len);
        } else
                r = aws_kms_random_response_build(cms, len, &out->body, &out->len);
        if (r < 0) {
                reply_error(out, AWS_KMS_ERR_INTERNAL, "fake-kms: response body failed");
                return;
        }
        out->status = 200;
        out->content_type = AWS_KMS_CONTENT_TYPE;
        out->outcome = "ok";
}

static void handle_decrypt(const struct fkms_config *cfg, const struct aws_kms_request *q,
                           struct reply *out) {
        _cleanup_secret_ struct secret_buf *pt = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        char key_id[FKMS_KEY_ID_MAX + 1], arn[256];
        const char *why = "?";
        int r;

        if (q->encryption_algorithm && strcmp(q->encryption_algorithm, "SYMMETRIC_DEFAULT") != 0) {
                reply_error(out, AWS_KMS_ERR_INVALID_CIPHERTEXT,
                            "EncryptionAlgorithm: this key only does SYMMETRIC_DEFAULT");
                return;
        }
        r = fkms_blob_open(cfg->master_key->data, q->ciphertext, q->ciphertext_len, key_id, &pt, &why);
        if (r < 0) {
                reply_error(out, AWS_KMS_ERR_INVALID_CIPHERTEXT, "CiphertextBlob: %s",
                            r == -EKEYREJECTED || r == -EBADMSG ? why : "cannot be opened");
                return;
        }
        (void) snprintf(out->key_id, sizeof(out->key_id), "%s", key_id);
        if (q->n_context > 0) { /* fake-kms encrypt binds no context, so any context differs */
                reply_error(out, AWS_KMS_ERR_INVALID_CIPHERTEXT,
                            "EncryptionContext: does not match the one the ciphertext was made with");
                return;
        }
        (void) snprintf(arn, sizeof(arn), "arn:%s:kms:%s:" FKMS_ACCOUNT ":key/%s", cfg->partition,
                        cfg->region, key_id);
        if (q->key_id && strcmp(q->key_id, key_id) != 0 && strcmp(q->key_id, arn) != 0) {
                reply_error(out, AWS_KMS_ERR_INCORRECT_KEY,
                            "KeyId: the ciphertext was made under another key");
                return;
        }
        if (!check_document(cfg, q, &key, out))
                return;
        reply_cms(cfg, key, pt, key_id, out);
}

static void handle_random(const struct fkms_config *cfg, const struct aws_kms_request *q,
                          struct reply *out) {
        _cleanup_secret_ struct secret_buf *rnd = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;

        if (!check_document(cfg, q, &key, out))
                return;
        if (secret_buf_new(q->number_of_bytes, &rnd) < 0 ||
            RAND_bytes(rnd->data, (int) q->number_of_bytes) <= 0) {
                reply_error(out, AWS_KMS_ERR_INTERNAL, "fake-kms: no random bytes");
                return;
        }
        rnd->len = q->number_of_bytes;
        reply_cms(cfg, key, rnd, NULL, out);
}

/* A fault that answers in place of the handler: true when out holds the answer. */
static bool apply_fault(const struct fkms_config *cfg, struct reply *out) {
        unsigned ms = 0;

        switch (fault_read(cfg, &ms)) {
        case FAULT_NONE: return false;
        case FAULT_SLOW: {
                struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000L };
                while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                        ;
                return false;
        }
        case FAULT_ACCESS_DENIED:
                reply_error(out, AWS_KMS_ERR_ACCESS_DENIED,
                            "fault injected: access denied by the key policy");
                return true;
        case FAULT_BAD_CIPHERTEXT:
                reply_error(out, AWS_KMS_ERR_INVALID_CIPHERTEXT, "fault injected: invalid ciphertext");
                return true;
        case FAULT_THROTTLE:
                reply_error(out, AWS_KMS_ERR_THROTTLING, "fault injected: Rate exceeded");
                return true;
        case FAULT_INTERNAL:
        case FAULT_UNKNOWN:
                reply_error(out, AWS_KMS_ERR_INTERNAL, "fault injected: internal error");
                return true;
        case FAULT_EXPIRED_TOKEN:
                reply_error(out, AWS_KMS_ERR_EXPIRED_TOKEN,
                            "fault injected: The security token included in "
                            "the request is expired");
                return true;
        case FAULT_CLOSE:
                out->close_without_answer = true;
                out->outcome = "fault-close";
                return true;
        case FAULT_GARBAGE:
                out->body = strdup("<html>this is not JSON</html>\n");
                out->len = out->body ? strlen(out->body) : 0;
                out->status = 200;
                out->content_type = "text/html";
                out->outcome = "fault-garbage";
                return true;
        }
        return false;
}

static int op_index(const char *target) {
        switch (aws_kms_op_from_target(target ? target : "")) {
        case AWS_KMS_DECRYPT: return OP_DECRYPT;
        case AWS_KMS_GENERATE_RANDOM: return OP_RANDOM;
        default: return OP_OTHER;
        }
}

/* One complete request: the answer in out; the document it carried (if any) for the statistics. */
static void handle(const struct fkms_config *cfg, const struct fkms_http_head *h, const uint8_t *body,
                   size_t len, struct reply *out, struct aws_kms_request *q) {
        enum aws_kms_op op;
        struct aws_err e = {};
        int r;

        if (apply_fault(cfg, out))
                return;
        if (strcmp(h->method, "POST") != 0 || strcmp(h->target, "/") != 0) {

                reply_error_name(out, 404, "UnknownOperationException", "KMS answers POST / only");

                return;
        }
        if (!check_signature(cfg, h, body, len, out))
                return;
        if (!h->content_type || strcasecmp(h->content_type, AWS_KMS_CONTENT_TYPE) != 0) {
                reply_error_name(out, 400, "SerializationException",
                                 "Content-Type must be " AWS_KMS_CONTENT_TYPE);
                return;
        }
        op = aws_kms_op_from_target(h->amz_target ? h->amz_target : "");
        if (op < 0) {
                reply_error_name(out, 400, "UnknownOperationException",
                                 "X-Amz-Target: not TrentService.Decrypt or TrentService.GenerateRandom");
                return;
        }
        r = aws_kms_request_parse(op, body, len, q, &e);
        if (r < 0) {
                reply_error(out, AWS_KMS_ERR_VALIDATION, "%s", e.msg);
                return;
        }
        if (op == AWS_KMS_DECRYPT)
                handle_decrypt(cfg, q, out);
        else
                handle_random(cfg, q, out);
}

/* ---- connections ------------------------------------------------------------------------------ */

struct conn {
        const struct fkms_config *cfg;
        SSL_CTX *ctx;
        SSL *ssl;
        int fd;
        uint64_t id;
        uint8_t *buf; /* FKMS_HTTP_HEAD_MAX + FKMS_HTTP_BODY_MAX */
        size_t have;
};

/* Waits for what SSL asked for until deadline (monotonic ms). */
static int tls_wait(struct conn *c, int ret, uint64_t deadline) {
        int err = SSL_get_error(c->ssl, ret);
        struct pollfd p = { .fd = c->fd };
        uint64_t now = mono_msec();
        int n;

        if (err == SSL_ERROR_WANT_READ)
                p.events = POLLIN;
        else if (err == SSL_ERROR_WANT_WRITE)
                p.events = POLLOUT;
        else if (err == SSL_ERROR_ZERO_RETURN)
                return -ECONNRESET;
        else
                return -EPROTO;
        if (now >= deadline)
                return -ETIMEDOUT;
        n = poll(&p, 1, (int) MIN(deadline - now, (uint64_t) INT32_MAX));
        if (n < 0)
                return errno == EINTR ? 0 : negative_errno();
        return n == 0 ? -ETIMEDOUT : 0;
}

static int tls_read(struct conn *c, size_t cap, uint64_t deadline) {
        for (;;) {
                int n, r;

                ERR_clear_error();
                n = SSL_read(c->ssl, c->buf + c->have, (int) (cap - c->have));
                if (n > 0) {
                        c->have += (size_t) n;
                        return n;
                }
                r = tls_wait(c, n, deadline);
                if (r < 0)
                        return r;
        }
}

static int tls_write_all(struct conn *c, const void *data, size_t len, uint64_t deadline) {
        const uint8_t *p = data;

        while (len > 0) {
                int n, r;

                ERR_clear_error();
                n = SSL_write(c->ssl, p, (int) MIN(len, (size_t) 16384));
                if (n > 0) {
                        p += n;
                        len -= (size_t) n;
                        continue;
                }
                r = tls_wait(c, n, deadline);
                if (r < 0)
                        return r;
        }
        return 0;
}

static const char *reason_phrase(int status) {
        switch (status) {
        case 100: return "Continue";
        case 200: return "OK";
        case 400: return "Bad Request";
        case 404: return "Not Found";
        case 408: return "Request Timeout";
        case 411: return "Length Required";
        case 413: return "Content Too Large";
        case 414: return "URI Too Long";
        case 417: return "Expectation Failed";
        case 431: return "Request Header Fields Too Large";
        case 500: return "Internal Server Error";
        case 501: return "Not Implemented";
        case 503: return "Service Unavailable";
        case 505: return "HTTP Version Not Supported";
        default: return "Status";
        }
}

static int send_reply(struct conn *c, const struct reply *rp, bool keep_alive) {
        char head[512], reqid[33];
        uint8_t rnd[16];
        int n, r;

        if (RAND_bytes(rnd, sizeof(rnd)) <= 0)
                memset(rnd, 0, sizeof(rnd));
        for (size_t i = 0; i < sizeof(rnd); i++)
                (void) snprintf(reqid + 2 * i, 3, "%02x", rnd[i]);
        n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nx-amzn-RequestId: %s\r\nContent-Type: %s\r\nContent-Length: "
                     "%zu\r\n%s\r\n",
                     rp->status, reason_phrase(rp->status), reqid,
                     rp->content_type ? rp->content_type : "text/plain", rp->len,
                     keep_alive ? "" : "Connection: close\r\n");
        if (n < 0 || (size_t) n >= sizeof(head))
                return -ENOBUFS;
        r = tls_write_all(c, head, (size_t) n, mono_msec() + (uint64_t) c->cfg->io_timeout_ms);
        if (r >= 0 && rp->len > 0)
                r = tls_write_all(c, rp->body, rp->len, mono_msec() + (uint64_t) c->cfg->io_timeout_ms);
        return r;
}

/* A request the parser refused: a short answer, then the connection closes. */
static void send_http_error(struct conn *c, const struct fkms_http_error *err) {
        struct reply rp = { .status = err->status, .content_type = "text/plain" };
        char text[160];

        rp.len = (size_t) snprintf(text, sizeof(text), "%s (byte %zu)\n", err->what, err->offset);
        rp.body = text;
        (void) send_reply(c, &rp, false);
        log_info("conn=%" PRIu64 " refused a request head: %s at byte %zu, answered %d", c->id, err->what,
                 err->offset, err->status);
}

/* Reads one request into c->buf: the head's length, 0 at a clean end of the connection, or a negative
 * errno (the connection ends). */
static int read_request(struct conn *c, struct fkms_http_head *h, size_t *ret_total) {
        const size_t cap = FKMS_HTTP_HEAD_MAX + FKMS_HTTP_BODY_MAX;
        struct fkms_http_error err = {};
        uint64_t deadline = mono_msec() + (uint64_t) c->cfg->idle_timeout_ms;
        bool started = c->have > 0;
        int head_len, r;

        if (started)
                deadline = mono_msec() + (uint64_t) c->cfg->io_timeout_ms;
        while ((head_len = fkms_http_head_end((const char *) c->buf, c->have)) == 0) {
                r = tls_read(c, FKMS_HTTP_HEAD_MAX, deadline);
                if (r < 0)
                        return started || r != -ECONNRESET ? r : 0;
                if (!started) {
                        started = true;
                        deadline = mono_msec() + (uint64_t) c->cfg->io_timeout_ms;
                }
        }
        if (head_len < 0) {
                send_http_error(
                        c, &(struct fkms_http_error){ "request head too long", FKMS_HTTP_HEAD_MAX, 431 });
                return -E2BIG;
        }
        r = fkms_http_head_parse((char *) c->buf, (size_t) head_len, h, &err);
        if (r < 0) {
                send_http_error(c, &err);
                return r;
        }
        if (!h->has_content_length && strcmp(h->method, "POST") == 0) {
                send_http_error(c, &(struct fkms_http_error){ "Content-Length required", 0, 411 });
                return -EBADMSG;
        }
        if (h->expect_continue && c->have < (size_t) head_len + h->content_length) {
                static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
                r = tls_write_all(c, cont, sizeof(cont) - 1, mono_msec() + (uint64_t) c->cfg->io_timeout_ms);
                if (r < 0)
                        return r;
        }
        while (c->have < (size_t) head_len + h->content_length) {
                r = tls_read(c, cap, deadline);
                if (r < 0)
                        return r == -ECONNRESET ? r : r;
        }
        *ret_total = (size_t) head_len + h->content_length;
        return head_len;
}

static void serve_requests(struct conn *c) {
        for (;;) {
                _cleanup_(aws_kms_request_done) struct aws_kms_request q = {};
                _cleanup_(reply_done) struct reply rp = {};
                struct fkms_http_head h;
                size_t total = 0;
                int head_len, op;

                head_len = read_request(c, &h, &total);
                if (head_len <= 0) {
                        if (head_len < 0 && head_len != -ECONNRESET)
                                log_info_errno(head_len, "conn=%" PRIu64 " ends: %m", c->id);
                        return;
                }
                op = op_index(h.amz_target);
                handle(c->cfg, &h, c->buf + head_len, h.content_length, &rp, &q);
                stats_request(c->cfg, op, rp.outcome ? rp.outcome : "none", q.attestation_doc,
                              q.attestation_doc_len);
                log_info("conn=%" PRIu64 " %s %s status=%d key=%s", c->id, op_names[op],
                         rp.outcome ? rp.outcome : "none", rp.close_without_answer ? 0 : rp.status,
                         rp.key_id[0] ? rp.key_id : "-");
                if (rp.close_without_answer)
                        return;
                if (send_reply(c, &rp, h.keep_alive) < 0 || !h.keep_alive)
                        return;
                memmove(c->buf, c->buf + total, c->have - total);
                c->have -= total;
        }
}

static void *conn_main(void *userdata) {
        struct conn *c = userdata;
        uint64_t deadline = mono_msec() + (uint64_t) c->cfg->io_timeout_ms;
        int n, r = 0;

        c->ssl = SSL_new(c->ctx);
        c->buf = malloc(FKMS_HTTP_HEAD_MAX + FKMS_HTTP_BODY_MAX);
        if (!c->ssl || !c->buf || SSL_set_fd(c->ssl, c->fd) != 1)
                r = -ENOMEM;
        while (r >= 0) {
                ERR_clear_error();
                n = SSL_accept(c->ssl);
                if (n == 1)
                        break;
                r = tls_wait(c, n, deadline);
        }
        if (r < 0) {
                stats_connection(c->cfg, 2);
                log_info_errno(r, "conn=%" PRIu64 " TLS handshake failed: %m", c->id);
        } else {
                stats_connection(c->cfg, 1);
                serve_requests(c);
                (void) SSL_shutdown(c->ssl);
        }
        SSL_free(c->ssl);
        free(c->buf);
        safe_close(c->fd);
        stats_connection(c->cfg, 3);
        free(c);
        return NULL;
}

static void accept_one(const struct fkms_config *cfg, SSL_CTX *ctx, int lfd, uint64_t *next_id) {
        pthread_attr_t attr;
        pthread_t t;
        struct conn *c;
        unsigned active;
        int fd;

        fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0)
                return;
        pthread_mutex_lock(&stats.lock);
        active = stats.active;
        pthread_mutex_unlock(&stats.lock);
        if (active >= cfg->max_connections) {
                log_warning("Refusing a connection: %u open, the limit", active);
                stats_connection(cfg, 4);
                safe_close(fd);
                return;
        }
        c = calloc(1, sizeof(*c));
        if (!c) {
                safe_close(fd);
                return;
        }
        *c = (struct conn){ .cfg = cfg, .ctx = ctx, .fd = fd, .id = ++*next_id };
        stats_connection(cfg, 0);
        if (pthread_attr_init(&attr) != 0 ||
            pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED) != 0 ||
            pthread_create(&t, &attr, conn_main, c) != 0) {
                log_error("Failed to start a connection thread");
                safe_close(fd);
                free(c);
                stats_connection(cfg, 3);
        }
        (void) pthread_attr_destroy(&attr);
}

int fkms_serve(const struct fkms_config *cfg, SSL_CTX *ctx, int lfd, int sigfd) {
        uint64_t next_id = 0;

        pthread_mutex_lock(&stats.lock);
        stats_write_locked(cfg);
        pthread_mutex_unlock(&stats.lock);
        for (;;) {
                struct pollfd p[2] = { { .fd = lfd, .events = POLLIN }, { .fd = sigfd, .events = POLLIN } };

                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (p[1].revents & POLLIN) {
                        struct signalfd_siginfo si;
                        if (read(sigfd, &si, sizeof(si)) == sizeof(si)) {
                                log_info("Signal %u: stopping", si.ssi_signo);
                                return 0;
                        }
                }
                if (p[0].revents & (POLLERR | POLLNVAL))
                        return -EIO;
                if (p[0].revents & POLLIN)
                        accept_one(cfg, ctx, lfd, &next_id);
        }
}
