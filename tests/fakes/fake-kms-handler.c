/* The fake KMS's request handler: faults, Host, SigV4, the request body, the ciphertext, the
 * attestation document and the PCR policy checked as KMS does; a real CMS EnvelopedData for the
 * document's key, or an error in AWS's JSON shape. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/rand.h>

#include "aws/kms-encrypt.h"
#include "aws/kms.h"
#include "aws/sigv4.h"
#include "common/cleanup-ssl.h"
#include "common/json.h"
#include "common/log.h"
#include "tests/fakes/fake-kms-blob.h"
#include "tests/fakes/fake-kms-cms.h"
#include "tests/fakes/fake-kms-fault.h"
#include "tests/fakes/fake-kms-handler.h"
#include "tests/fakes/fake-kms-util.h"

#define FKMS_ACCOUNT "111122223333"

/* ---- replies ---------------------------------------------------------------------------------- */

void fkms_reply_done(struct fkms_reply *r) {
        free(r->body);
        *r = (struct fkms_reply){};
}

static void reply_error_name(struct fkms_reply *out, int status, const char *type, const char *msg) {
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

_printf_(3, 4) static void reply_error(struct fkms_reply *out, enum aws_kms_error t, const char *fmt, ...) {
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
                            const uint8_t *body, size_t len, struct fkms_reply *out) {
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
                           EVP_PKEY **ret_key, struct fkms_reply *out) {
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
                      const char *key_id, struct fkms_reply *out) {
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
                           struct fkms_reply *out) {
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
                          struct fkms_reply *out) {
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

/* Encrypt (enclave-acm object create): the plaintext sealed into a blob of the fake's format, under the
 * key id the request names (a bare id, or this region's key ARN); no attestation: the caller is the
 * parent, as with real KMS. What Decrypt opens. */
static void handle_encrypt(const struct fkms_config *cfg, const uint8_t *body, size_t len,
                           struct fkms_reply *out) {
        _cleanup_secret_ struct secret_buf *pt = NULL;
        _cleanup_free_ uint8_t *blob = NULL;
        char key_id[AWS_KMS_KEY_ID_MAX + 1], prefix[128], arn[256];
        const char *id = key_id;
        struct aws_err e = {};
        size_t blob_len = 0;
        int r;

        r = aws_kms_encrypt_request_parse(body, len, key_id, sizeof(key_id), &pt, &e);
        if (r < 0) {
                reply_error(out, AWS_KMS_ERR_VALIDATION, "%s", e.msg);
                return;
        }
        (void) snprintf(prefix, sizeof(prefix), "arn:%s:kms:%s:" FKMS_ACCOUNT ":key/", cfg->partition,
                        cfg->region);
        if (strncmp(key_id, prefix, strlen(prefix)) == 0)
                id = key_id + strlen(prefix);
        if (fkms_key_id_validate(id) < 0) {
                reply_error(out, AWS_KMS_ERR_NOT_FOUND,
                            "KeyId: no such key in this fake (a key id or its ARN)");
                return;
        }
        if (pt->len > FKMS_PLAINTEXT_MAX ||
            fkms_blob_seal(cfg->master_key->data, id, pt->data, pt->len, &blob, &blob_len) < 0) {
                reply_error(out, AWS_KMS_ERR_INTERNAL, "fake-kms: cannot seal");
                return;
        }
        /* fkms_key_id_validate() bounds id to FKMS_KEY_ID_MAX */
        (void) snprintf(out->key_id, sizeof(out->key_id), "%.*s", (int) FKMS_KEY_ID_MAX, id);
        (void) snprintf(arn, sizeof(arn), "%.*s%.*s", 120, prefix, (int) FKMS_KEY_ID_MAX, id);
        free(out->body);
        out->body = NULL;
        if (aws_kms_encrypt_response_build(arn, blob, blob_len, &out->body, &out->len) < 0) {
                out->body = NULL;
                reply_error(out, AWS_KMS_ERR_INTERNAL, "fake-kms: cannot build the answer");
                return;
        }
        out->status = 200;
}

/* The fault file's word; a missing file is no fault, an unreadable one or an unknown word is logged
 * and answered as an internal error. */
static enum fkms_fault fault_read(const struct fkms_config *cfg, unsigned *ret_ms) {
        _cleanup_free_ char *text = NULL;
        enum fkms_fault f;
        size_t len;
        int r;

        if (!cfg->fault_file)
                return FKMS_FAULT_NONE;
        r = fkms_read_file(cfg->fault_file, 4096, &text, &len);
        if (r == -ENOENT)
                return FKMS_FAULT_NONE;
        if (r < 0) {
                log_error_errno(r, "Failed to read the fault file '%s': %m", cfg->fault_file);
                return FKMS_FAULT_INTERNAL;
        }
        f = fkms_fault_parse(text, ret_ms);
        if (f < 0) {
                log_error("Fault file '%s': unknown fault '%.*s' (none, access-denied, bad-ciphertext, "
                          "throttle, internal, expired-token, slow=MS up to %u, close, garbage)",
                          cfg->fault_file, (int) MIN(strcspn(text, " \t\r\n"), (size_t) 64), text,
                          FKMS_SLOW_MAX_MS);
                return FKMS_FAULT_INTERNAL;
        }
        return f;
}

/* A fault that answers in place of the handler: true when out holds the answer. */
static bool apply_fault(const struct fkms_config *cfg, struct fkms_reply *out) {
        unsigned ms = 0;

        switch (fault_read(cfg, &ms)) {
        case FKMS_FAULT_SLOW: {
                struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000L };
                while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                        ;
                return false;
        }
        case FKMS_FAULT_ACCESS_DENIED:
                reply_error(out, AWS_KMS_ERR_ACCESS_DENIED,
                            "fault injected: access denied by the key policy");
                return true;
        case FKMS_FAULT_BAD_CIPHERTEXT:
                reply_error(out, AWS_KMS_ERR_INVALID_CIPHERTEXT, "fault injected: invalid ciphertext");
                return true;
        case FKMS_FAULT_THROTTLE:
                reply_error(out, AWS_KMS_ERR_THROTTLING, "fault injected: Rate exceeded");
                return true;
        case FKMS_FAULT_INTERNAL:
                reply_error(out, AWS_KMS_ERR_INTERNAL, "fault injected: internal error");
                return true;
        case FKMS_FAULT_EXPIRED_TOKEN:
                reply_error(out, AWS_KMS_ERR_EXPIRED_TOKEN,
                            "fault injected: The security token included in the request is expired");
                return true;
        case FKMS_FAULT_CLOSE:
                out->close_without_answer = true;
                out->outcome = "fault-close";
                return true;
        case FKMS_FAULT_GARBAGE:
                out->body = strdup("<html>this is not JSON</html>\n");
                out->len = out->body ? strlen(out->body) : 0;
                out->status = 200;
                out->content_type = "text/html";
                out->outcome = "fault-garbage";
                return true;
        default: return false;
        }
}

enum fkms_op fkms_op_from_target(const char *target) {
        switch (aws_kms_op_from_target(target ? target : "")) {
        case AWS_KMS_DECRYPT: return FKMS_OP_DECRYPT;
        case AWS_KMS_GENERATE_RANDOM: return FKMS_OP_RANDOM;
        default: return FKMS_OP_OTHER;
        }
}

/* Host names the endpoint the certificate is for, with or without a port. */
static bool host_ok(const struct fkms_config *cfg, const char *host) {
        if (!host)
                return false;
        for (size_t i = 0; cfg->hosts[i]; i++) {
                size_t n = strlen(cfg->hosts[i]);
                if (strncasecmp(host, cfg->hosts[i], n) == 0 &&
                    (host[n] == '\0' || (host[n] == ':' && host[n + 1] >= '0' && host[n + 1] <= '9')))
                        return true;
        }
        return false;
}

/* One complete request: the answer in out; the document it carried (if any) for the statistics. */
void fkms_handle(const struct fkms_config *cfg, const struct fkms_http_head *h, const uint8_t *body,
                 size_t len, struct fkms_reply *out, struct aws_kms_request *q) {
        enum aws_kms_op op;
        struct aws_err e = {};
        int r;

        if (apply_fault(cfg, out))
                return;
        if (strcmp(h->method, "POST") != 0 || strcmp(h->target, "/") != 0) {
                reply_error_name(out, 404, "UnknownOperationException", "KMS answers POST / only");
                return;
        }
        if (!host_ok(cfg, h->host)) {
                reply_error_name(out, 400, "InvalidHostException",
                                 "Host: not the KMS endpoint of this region (kms.<region>.<suffix>[:port])");
                return;
        }
        if (!check_signature(cfg, h, body, len, out))
                return;
        if (!h->content_type || strcasecmp(h->content_type, AWS_KMS_CONTENT_TYPE) != 0) {
                reply_error_name(out, 400, "SerializationException",
                                 "Content-Type must be " AWS_KMS_CONTENT_TYPE);
                return;
        }
        if (h->amz_target && strcmp(h->amz_target, AWS_KMS_ENCRYPT_TARGET) == 0) {
                handle_encrypt(cfg, body, len, out);
                return;
        }
        op = aws_kms_op_from_target(h->amz_target ? h->amz_target : "");
        if (op < 0) {
                reply_error_name(out, 400, "UnknownOperationException",
                                 "X-Amz-Target: not TrentService.Decrypt, TrentService.GenerateRandom or "
                                 "TrentService.Encrypt");
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
