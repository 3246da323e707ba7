/* KMS JSON 1.1 messages (Decrypt, GenerateRandom with a Recipient) for the enclave and the fake KMS. */
#include <string.h>

#include "aws/kms.h"
#include "common/base64.h"
#include "common/json.h"

static const char *const targets[_AWS_KMS_OP_MAX] = {
        [AWS_KMS_DECRYPT] = "TrentService.Decrypt",
        [AWS_KMS_GENERATE_RANDOM] = "TrentService.GenerateRandom",
};

const char *aws_kms_op_target(enum aws_kms_op op) {
        return (int) op >= 0 && op < _AWS_KMS_OP_MAX ? targets[op] : NULL;
}

enum aws_kms_op aws_kms_op_from_target(const char *target) {
        for (int i = 0; target && i < _AWS_KMS_OP_MAX; i++)
                if (strcmp(target, targets[i]) == 0)
                        return (enum aws_kms_op) i;
        return _AWS_KMS_OP_INVALID;
}

int aws_kms_headers(enum aws_kms_op op, struct aws_header ret[static 2]) {
        const char *t = aws_kms_op_target(op);

        if (!t)
                return -EINVAL;
        ret[0] = (struct aws_header){ "Content-Type", AWS_KMS_CONTENT_TYPE };
        ret[1] = (struct aws_header){ "X-Amz-Target", t };
        return 0;
}

/* ---- Writing ------------------------------------------------------------------------------- */

static int json_b64(struct json_writer *w, const char *key, const uint8_t *p, size_t n) {
        _cleanup_free_ char *s = NULL;
        size_t size = base64_encoded_len(n) + 1;
        int r;

        s = malloc(size);
        if (!s)
                return -ENOMEM;
        r = base64_encode(p, n, s, size);
        if (r < 0)
                return r;
        json_string_len(w, key, s, (size_t) r);
        return 0;
}

static int check_blob(const char *what, const uint8_t *p, size_t n, size_t max, struct aws_err *e) {
        if (!p || n == 0 || n > max)
                return aws_err(e, n > max ? -E2BIG : -EINVAL, "%s: %zu bytes, not 1..%zu", what, n, max);
        return 0;
}

static int check_text(const char *what, const char *s, size_t max, struct aws_err *e) {
        size_t n = s ? strnlen(s, max + 1) : 0;

        if (n == 0 || n > max)
                return aws_err(e, n > max ? -E2BIG : -EINVAL, "%s: empty or longer than %zu bytes", what,
                               max);
        return 0;
}

static int recipient(struct json_writer *w, const uint8_t *doc, size_t n, struct aws_err *e) {
        int r;

        if ((r = check_blob("Recipient.AttestationDocument", doc, n, AWS_KMS_ATTESTATION_MAX, e)) < 0)
                return r;
        json_begin_object(w, "Recipient");
        json_string(w, "KeyEncryptionAlgorithm", AWS_KMS_RECIPIENT_ALG);
        if ((r = json_b64(w, "AttestationDocument", doc, n)) < 0)
                return r;
        json_end_object(w);
        return 0;
}

static int finish(struct json_writer *w, char **ret_body, size_t *ret_len) {
        return json_writer_finish(w, ret_body, ret_len);
}

int aws_kms_decrypt_request_build(const struct aws_kms_decrypt_req *q, char **ret_body, size_t *ret_len,
                                  struct aws_err *e) {
        _cleanup_(json_writer_done) struct json_writer w;
        int r;

        json_writer_init(&w, true);
        if ((r = check_blob("CiphertextBlob", q->ciphertext, q->ciphertext_len, AWS_KMS_BLOB_MAX, e)) < 0)
                return r;
        if (q->key_id && (r = check_text("KeyId", q->key_id, AWS_KMS_KEY_ID_MAX, e)) < 0)
                return r;
        if (q->n_context > AWS_KMS_CONTEXT_MAX || (q->n_context && !q->context))
                return aws_err(e, -E2BIG, "EncryptionContext: more than %u pairs", AWS_KMS_CONTEXT_MAX);
        json_begin_object(&w, NULL);
        if ((r = json_b64(&w, "CiphertextBlob", q->ciphertext, q->ciphertext_len)) < 0)
                return r;
        if (q->key_id)
                json_string(&w, "KeyId", q->key_id);
        if (q->n_context > 0) {
                json_begin_object(&w, "EncryptionContext");
                for (size_t i = 0; i < q->n_context; i++) {
                        if ((r = check_text("EncryptionContext key", q->context[i].key,
                                            AWS_KMS_CONTEXT_STR_MAX, e)) < 0)
                                return r;
                        if (!q->context[i].value || strlen(q->context[i].value) > AWS_KMS_CONTEXT_STR_MAX)
                                return aws_err(e, -EINVAL,
                                               "EncryptionContext value %zu: missing or too long", i);
                        for (size_t j = 0; j < i; j++)
                                if (!strcmp(q->context[j].key, q->context[i].key))
                                        return aws_err(e, -EINVAL,
                                                       "EncryptionContext: key %zu repeats key %zu", i, j);
                        json_string(&w, q->context[i].key, q->context[i].value);
                }
                json_end_object(&w);
        }
        if ((r = recipient(&w, q->attestation_doc, q->attestation_doc_len, e)) < 0)
                return r;
        json_end_object(&w);
        return finish(&w, ret_body, ret_len);
}

int aws_kms_random_request_build(const struct aws_kms_random_req *q, char **ret_body, size_t *ret_len,
                                 struct aws_err *e) {
        _cleanup_(json_writer_done) struct json_writer w;
        int r;

        json_writer_init(&w, true);
        if (q->number_of_bytes < 1 || q->number_of_bytes > AWS_KMS_RANDOM_MAX)
                return aws_err(e, -EINVAL, "NumberOfBytes: %u, not 1..%u", q->number_of_bytes,
                               AWS_KMS_RANDOM_MAX);
        json_begin_object(&w, NULL);
        json_uint(&w, "NumberOfBytes", q->number_of_bytes);
        if ((r = recipient(&w, q->attestation_doc, q->attestation_doc_len, e)) < 0)
                return r;
        json_end_object(&w);
        return finish(&w, ret_body, ret_len);
}

/* ---- Reading -------------------------------------------------------------------------------- */

static int json_fail(int r, const struct json_error *je, struct aws_err *e) {
        char buf[160];

        if (je->what)
                return aws_err(e, r, "%s", json_error_string(je, buf, sizeof(buf)));
        return aws_err(e, r, "JSON: %s", strerror(-r));
}

static int reader_open(struct json_reader *rd, const void *body, size_t len, size_t max_string,
                       struct json_error *je, struct aws_err *e) {
        const struct json_limits lim = {
                .max_depth = 4,
                .max_string = max_string,
                .max_input = AWS_KMS_BODY_MAX,
                .reject_duplicates = true,
        };
        int r;

        if (!body)
                return aws_err(e, -EBADMSG, "body: missing");
        if ((r = json_reader_init(rd, body, len, &lim, je)) < 0 || (r = json_object_begin(rd)) < 0)
                return json_fail(r, je, e);
        return 0;
}

/* A base64 string member decoded strictly into buf: the length, or an error naming the field. */
static int read_b64(struct json_reader *rd, const char *field, uint8_t *buf, size_t size, size_t max,
                    struct json_error *je, struct aws_err *e) {
        _cleanup_free_ char *s = NULL;
        size_t off = 0, n;
        int r;

        if ((r = json_read_string(rd, &s)) < 0)
                return r == -E2BIG ? aws_err(e, r, "%s: longer than %zu bytes", field, max)
                                   : json_fail(r, je, e);
        n = strlen(s);
        if (n == 0 || n > base64_encoded_len(max))
                return aws_err(e, n ? -E2BIG : -EBADMSG, "%s: %zu base64 characters, not 1..%zu", field, n,
                               base64_encoded_len(max));
        r = base64_decode(s, n, buf, MIN(size, max), &off);
        if (r == -ENOBUFS)
                return aws_err(e, size < max ? -ENOBUFS : -E2BIG, "%s: decodes to more than %zu bytes",
                               field, MIN(size, max));
        if (r < 0)
                return aws_err(e, r, "%s: invalid base64 at character %zu", field, off);
        if (r == 0)
                return aws_err(e, -EBADMSG, "%s: empty", field);
        return r;
}

static int read_str(struct json_reader *rd, const char *field, char *buf, size_t size, struct json_error *je,
                    struct aws_err *e) {
        int r = json_read_string_buf(rd, buf, size);

        if (r == -E2BIG)
                return aws_err(e, r, "%s: longer than %zu bytes", field, size - 1);
        if (r < 0)
                return json_fail(r, je, e);
        if (!buf[0])
                return aws_err(e, -EBADMSG, "%s: empty", field);
        return 0;
}

static bool alg_ok(const char *s) {
        for (; *s; s++)
                if (!((*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_'))
                        return false;
        return true;
}

static int response_parse(bool decrypt, const void *body, size_t len, uint8_t *cfr, size_t cfr_size,
                          struct aws_kms_decrypt_resp *ret, struct aws_err *e) {
        _cleanup_(json_reader_done) struct json_reader rd = {};
        struct aws_kms_decrypt_resp res = {};
        struct json_error je = {};
        bool have_cfr = false;
        const char *key;
        int r;

        if ((r = reader_open(&rd, body, len, base64_encoded_len(AWS_KMS_BLOB_MAX), &je, e)) < 0)
                return r;
        while ((r = json_object_next(&rd, &key)) > 0) {
                if (!strcmp(key, "CiphertextForRecipient")) {
                        r = read_b64(&rd, "CiphertextForRecipient", cfr, cfr_size, AWS_KMS_BLOB_MAX, &je, e);
                        if (r < 0)
                                return r;
                        res.cfr_len = (size_t) r;
                        have_cfr = true;
                } else if (!strcmp(key, "Plaintext"))
                        return aws_err(e, -EBADMSG, "Plaintext: present, the answer is not for a Recipient");
                else if (decrypt && !strcmp(key, "KeyId")) {
                        if ((r = read_str(&rd, "KeyId", res.key_id, sizeof(res.key_id), &je, e)) < 0)
                                return r;
                } else if (decrypt && !strcmp(key, "EncryptionAlgorithm")) {
                        if ((r = read_str(&rd, "EncryptionAlgorithm", res.encryption_algorithm,
                                          sizeof(res.encryption_algorithm), &je, e)) < 0)
                                return r;
                        if (!alg_ok(res.encryption_algorithm))
                                return aws_err(e, -EBADMSG, "EncryptionAlgorithm: not [A-Z0-9_]");
                } else if ((r = json_skip(&rd)) < 0)
                        return json_fail(r, &je, e);
        }
        if (r < 0 || (r = json_reader_end(&rd)) < 0)
                return json_fail(r, &je, e);
        if (!have_cfr)
                return aws_err(e, -EBADMSG, "CiphertextForRecipient: missing");
        if (decrypt && !res.key_id[0])
                return aws_err(e, -EBADMSG, "KeyId: missing");
        if (ret)
                *ret = res;
        return (int) res.cfr_len;
}

int aws_kms_decrypt_response_parse(const void *body, size_t len, uint8_t *cfr, size_t cfr_size,
                                   struct aws_kms_decrypt_resp *ret, struct aws_err *e) {
        int r = response_parse(true, body, len, cfr, cfr_size, ret, e);
        return r < 0 ? r : 0;
}

int aws_kms_random_response_parse(const void *body, size_t len, uint8_t *cfr, size_t cfr_size,
                                  struct aws_err *e) {
        return response_parse(false, body, len, cfr, cfr_size, NULL, e);
}

/* ---- Errors --------------------------------------------------------------------------------- */

static const struct {
        const char *name;
        bool retryable;
        int status;
} errors[_AWS_KMS_ERR_MAX] = {
        [AWS_KMS_ERR_ACCESS_DENIED] = { "AccessDeniedException", false, 400 },
        [AWS_KMS_ERR_INVALID_CIPHERTEXT] = { "InvalidCiphertextException", false, 400 },
        [AWS_KMS_ERR_INCORRECT_KEY] = { "IncorrectKeyException", false, 400 },
        [AWS_KMS_ERR_NOT_FOUND] = { "NotFoundException", false, 400 },
        [AWS_KMS_ERR_DISABLED] = { "DisabledException", false, 400 },
        [AWS_KMS_ERR_INVALID_STATE] = { "KMSInvalidStateException", false, 400 },
        [AWS_KMS_ERR_KEY_UNAVAILABLE] = { "KeyUnavailableException", true, 500 },
        [AWS_KMS_ERR_DEPENDENCY_TIMEOUT] = { "DependencyTimeoutException", true, 503 },
        [AWS_KMS_ERR_INTERNAL] = { "KMSInternalException", true, 500 },
        [AWS_KMS_ERR_THROTTLING] = { "ThrottlingException", true, 400 },
        [AWS_KMS_ERR_UNRECOGNIZED_CLIENT] = { "UnrecognizedClientException", false, 400 },
        [AWS_KMS_ERR_INVALID_SIGNATURE] = { "InvalidSignatureException", false, 400 },
        [AWS_KMS_ERR_EXPIRED_TOKEN] = { "ExpiredTokenException", false, 400 },
        [AWS_KMS_ERR_VALIDATION] = { "ValidationException", false, 400 },
        [AWS_KMS_ERR_OTHER] = { "other", false, 400 },
};

const char *aws_kms_error_to_string(enum aws_kms_error t) {
        return (int) t >= 0 && t < _AWS_KMS_ERR_MAX ? errors[t].name : NULL;
}

bool aws_kms_error_retryable(enum aws_kms_error t) {
        return (int) t >= 0 && t < _AWS_KMS_ERR_MAX && errors[t].retryable;
}

int aws_kms_error_http_status(enum aws_kms_error t) {
        return (int) t >= 0 && t < _AWS_KMS_ERR_MAX ? errors[t].status : 500;
}

/* Printable ASCII only, cut at max with "..." appended. */
static void sanitise(const char *s, char *out, size_t max) {
        size_t n = 0;

        for (; *s && n < max; s++)
                out[n++] = (*s >= 0x20 && *s < 0x7f) ? *s : '?';
        if (*s)
                memcpy(out + n, "...", 3), n += 3;
        out[n] = '\0';
}

int aws_kms_error_parse(const void *body, size_t len, struct aws_kms_error_info *ret, struct aws_err *e) {
        _cleanup_(json_reader_done) struct json_reader rd = {};
        struct aws_kms_error_info res = { .type = AWS_KMS_ERR_OTHER };
        _cleanup_free_ char *type = NULL, *msg = NULL;
        struct json_error je = {};
        const char *key, *name;
        int r;

        /* any message length the body cap allows: it is cut for the log line, not refused */
        if ((r = reader_open(&rd, body, len, AWS_KMS_BODY_MAX, &je, e)) < 0)
                return r;
        while ((r = json_object_next(&rd, &key)) > 0) {
                if (!strcmp(key, "__type") && !type)
                        r = json_read_string(&rd, &type);
                else if ((!strcmp(key, "message") || !strcmp(key, "Message")) && !msg)
                        r = json_read_string(&rd, &msg);
                else
                        r = json_skip(&rd);
                if (r < 0)
                        return json_fail(r, &je, e);
        }
        if (r < 0 || (r = json_reader_end(&rd)) < 0)
                return json_fail(r, &je, e);
        if (!type || !type[0])
                return aws_err(e, -EBADMSG, "__type: missing");
        /* some services append ":http://internal.amazon.com/..." to the name */
        type[strcspn(type, ":")] = '\0';
        name = strrchr(type, '#');
        name = name ? name + 1 : type;
        sanitise(name, res.type_name, AWS_KMS_TYPE_MAX - 3);
        for (int i = 0; i < AWS_KMS_ERR_OTHER; i++)
                if (!strcmp(name, errors[i].name))
                        res.type = (enum aws_kms_error) i;
        sanitise(msg ? msg : "", res.message, AWS_KMS_MESSAGE_MAX);
        *ret = res;
        return 0;
}

/* ---- Server side ---------------------------------------------------------------------------- */

void aws_kms_request_done(struct aws_kms_request *r) {
        if (!r)
                return;
        free(r->ciphertext);
        free(r->key_id);
        free(r->encryption_algorithm);
        for (size_t i = 0; i < r->n_context; i++) {
                free(r->context_keys[i]);
                free(r->context_values[i]);
        }
        free(r->context_keys);
        free(r->context_values);
        free(r->attestation_doc);
        *r = (struct aws_kms_request){};
}

static int read_blob_alloc(struct json_reader *rd, const char *field, size_t max, uint8_t **ret,
                           size_t *ret_len, struct json_error *je, struct aws_err *e) {
        _cleanup_free_ uint8_t *b = NULL;
        int r;

        if (*ret)
                return aws_err(e, -EBADMSG, "%s: repeated", field);
        b = malloc(max);
        if (!b)
                return -ENOMEM;
        if ((r = read_b64(rd, field, b, max, max, je, e)) < 0)
                return r;
        *ret = TAKE_PTR(b);
        *ret_len = (size_t) r;
        return 0;
}

static int read_recipient(struct json_reader *rd, struct aws_kms_request *q, struct json_error *je,
                          struct aws_err *e) {
        char alg[AWS_KMS_ALG_MAX + 1] = "";
        const char *key;
        int r;

        if ((r = json_object_begin(rd)) < 0)
                return json_fail(r, je, e);
        while ((r = json_object_next(rd, &key)) > 0) {
                if (!strcmp(key, "KeyEncryptionAlgorithm"))
                        r = read_str(rd, "Recipient.KeyEncryptionAlgorithm", alg, sizeof(alg), je, e);
                else if (!strcmp(key, "AttestationDocument"))
                        r = read_blob_alloc(rd, "Recipient.AttestationDocument", AWS_KMS_ATTESTATION_MAX,
                                            &q->attestation_doc, &q->attestation_doc_len, je, e);
                else
                        return aws_err(e, -EBADMSG, "Recipient: unknown member");
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return json_fail(r, je, e);
        if (strcmp(alg, AWS_KMS_RECIPIENT_ALG) != 0)
                return aws_err(e, -EBADMSG,
                               "Recipient.KeyEncryptionAlgorithm: missing or not " AWS_KMS_RECIPIENT_ALG);
        if (!q->attestation_doc)
                return aws_err(e, -EBADMSG, "Recipient.AttestationDocument: missing");
        return 0;
}

static int read_context(struct json_reader *rd, struct aws_kms_request *q, struct json_error *je,
                        struct aws_err *e) {
        const char *key;
        int r;

        if ((r = json_object_begin(rd)) < 0)
                return json_fail(r, je, e);
        q->context_keys = calloc(AWS_KMS_CONTEXT_MAX, sizeof(char *));
        q->context_values = calloc(AWS_KMS_CONTEXT_MAX, sizeof(char *));
        if (!q->context_keys || !q->context_values)
                return -ENOMEM;
        while ((r = json_object_next(rd, &key)) > 0) {
                if (q->n_context >= AWS_KMS_CONTEXT_MAX)
                        return aws_err(e, -E2BIG, "EncryptionContext: more than %u pairs",
                                       AWS_KMS_CONTEXT_MAX);
                if (!key[0])
                        return aws_err(e, -EBADMSG, "EncryptionContext: empty key");
                q->context_keys[q->n_context] = strdup(key);
                if (!q->context_keys[q->n_context])
                        return -ENOMEM;
                r = json_read_string(rd, &q->context_values[q->n_context]);
                q->n_context++;
                if (r < 0)
                        return json_fail(r, je, e);
                if (strlen(key) > AWS_KMS_CONTEXT_STR_MAX ||
                    strlen(q->context_values[q->n_context - 1]) > AWS_KMS_CONTEXT_STR_MAX)
                        return aws_err(e, -E2BIG, "EncryptionContext: pair %zu longer than %u bytes",
                                       q->n_context - 1, AWS_KMS_CONTEXT_STR_MAX);
        }
        return r < 0 ? json_fail(r, je, e) : 0;
}

static int read_grant_tokens(struct json_reader *rd, struct aws_kms_request *q, struct json_error *je,
                             struct aws_err *e) {
        int r;

        if ((r = json_array_begin(rd)) < 0)
                return json_fail(r, je, e);
        while ((r = json_array_next(rd)) > 0) {
                _cleanup_free_ char *t = NULL;
                if (++q->n_grant_tokens > AWS_KMS_GRANT_TOKENS_MAX)
                        return aws_err(e, -E2BIG, "GrantTokens: more than %u", AWS_KMS_GRANT_TOKENS_MAX);
                if ((r = json_read_string(rd, &t)) < 0)
                        return json_fail(r, je, e);
        }
        return r < 0 ? json_fail(r, je, e) : 0;
}

static int read_member(struct json_reader *rd, const char *key, struct aws_kms_request *q,
                       struct json_error *je, struct aws_err *e) {
        char buf[AWS_KMS_KEY_ID_MAX + 1];
        uint64_t u;
        bool b;
        int r;

        if (!strcmp(key, "Recipient"))
                return read_recipient(rd, q, je, e);
        if (q->op == AWS_KMS_GENERATE_RANDOM) {
                if (!strcmp(key, "NumberOfBytes")) {
                        if ((r = json_read_uint64(rd, &u)) < 0 && r != -ERANGE)
                                return json_fail(r, je, e);
                        if (r < 0 || u < 1 || u > AWS_KMS_RANDOM_MAX)
                                return aws_err(e, -EBADMSG, "NumberOfBytes: not 1..%u", AWS_KMS_RANDOM_MAX);
                        q->number_of_bytes = (uint32_t) u;
                        return 0;
                }
                if (!strcmp(key, "CustomKeyStoreId"))
                        return read_str(rd, "CustomKeyStoreId", buf, 65, je, e);
                return aws_err(e, -EBADMSG, "GenerateRandom: unknown member");
        }
        if (!strcmp(key, "CiphertextBlob"))
                return read_blob_alloc(rd, "CiphertextBlob", AWS_KMS_BLOB_MAX, &q->ciphertext,
                                       &q->ciphertext_len, je, e);
        if (!strcmp(key, "KeyId")) {
                if ((r = read_str(rd, "KeyId", buf, sizeof(buf), je, e)) < 0)
                        return r;
                return (q->key_id = strdup(buf)) ? 0 : -ENOMEM;
        }
        if (!strcmp(key, "EncryptionAlgorithm")) {
                if ((r = read_str(rd, "EncryptionAlgorithm", buf, AWS_KMS_ALG_MAX + 1, je, e)) < 0)
                        return r;
                if (!alg_ok(buf))
                        return aws_err(e, -EBADMSG, "EncryptionAlgorithm: not [A-Z0-9_]");
                return (q->encryption_algorithm = strdup(buf)) ? 0 : -ENOMEM;
        }
        if (!strcmp(key, "EncryptionContext"))
                return read_context(rd, q, je, e);
        if (!strcmp(key, "GrantTokens"))
                return read_grant_tokens(rd, q, je, e);
        if (!strcmp(key, "DryRun"))
                return json_read_bool(rd, &b) < 0 ? json_fail(-EBADMSG, je, e) : 0;
        return aws_err(e, -EBADMSG, "Decrypt: unknown member");
}

int aws_kms_request_parse(enum aws_kms_op op, const void *body, size_t len, struct aws_kms_request *ret,
                          struct aws_err *e) {
        _cleanup_(json_reader_done) struct json_reader rd = {};
        _cleanup_(aws_kms_request_done) struct aws_kms_request q = { .op = op };
        struct json_error je = {};
        const char *key;
        int r;

        if ((int) op < 0 || op >= _AWS_KMS_OP_MAX)
                return -EINVAL;
        if ((r = reader_open(&rd, body, len, base64_encoded_len(AWS_KMS_ATTESTATION_MAX), &je, e)) < 0)
                return r;
        while ((r = json_object_next(&rd, &key)) > 0)
                if ((r = read_member(&rd, key, &q, &je, e)) < 0)
                        return r;
        if (r < 0 || (r = json_reader_end(&rd)) < 0)
                return json_fail(r, &je, e);
        if (!q.attestation_doc)
                return aws_err(e, -EBADMSG, "Recipient: missing");
        if (op == AWS_KMS_DECRYPT && !q.ciphertext)
                return aws_err(e, -EBADMSG, "CiphertextBlob: missing");
        if (op == AWS_KMS_GENERATE_RANDOM && q.number_of_bytes == 0)
                return aws_err(e, -EBADMSG, "NumberOfBytes: missing");
        *ret = q;
        q = (struct aws_kms_request){};
        return 0;
}

int aws_kms_decrypt_response_build(const char *key_id, const char *encryption_algorithm, const uint8_t *cfr,
                                   size_t cfr_len, char **ret_body, size_t *ret_len) {
        _cleanup_(json_writer_done) struct json_writer w;
        int r;

        json_writer_init(&w, true);
        if (check_text("KeyId", key_id, AWS_KMS_KEY_ID_MAX, NULL) < 0 ||
            (encryption_algorithm &&
             check_text("EncryptionAlgorithm", encryption_algorithm, AWS_KMS_ALG_MAX, NULL) < 0) ||
            check_blob("CiphertextForRecipient", cfr, cfr_len, AWS_KMS_BLOB_MAX, NULL) < 0)
                return -EINVAL;
        json_begin_object(&w, NULL);
        json_string(&w, "KeyId", key_id);
        if (encryption_algorithm)
                json_string(&w, "EncryptionAlgorithm", encryption_algorithm);
        if ((r = json_b64(&w, "CiphertextForRecipient", cfr, cfr_len)) < 0)
                return r;
        json_end_object(&w);
        return finish(&w, ret_body, ret_len);
}

int aws_kms_random_response_build(const uint8_t *cfr, size_t cfr_len, char **ret_body, size_t *ret_len) {
        _cleanup_(json_writer_done) struct json_writer w;
        int r;

        json_writer_init(&w, true);
        if (check_blob("CiphertextForRecipient", cfr, cfr_len, AWS_KMS_BLOB_MAX, NULL) < 0)
                return -EINVAL;
        json_begin_object(&w, NULL);
        if ((r = json_b64(&w, "CiphertextForRecipient", cfr, cfr_len)) < 0)
                return r;
        json_end_object(&w);
        return finish(&w, ret_body, ret_len);
}

int aws_kms_error_build(enum aws_kms_error t, const char *message, char **ret_body, size_t *ret_len) {
        _cleanup_(json_writer_done) struct json_writer w;

        json_writer_init(&w, true);
        if ((int) t < 0 || t >= AWS_KMS_ERR_OTHER)
                return -EINVAL;
        json_begin_object(&w, NULL);
        json_string(&w, "__type", errors[t].name);
        json_string(&w, "message", message ? message : "");
        json_end_object(&w);
        return finish(&w, ret_body, ret_len);
}
