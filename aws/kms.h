/* KMS JSON 1.1 messages with a Recipient: Decrypt and GenerateRandom requests and responses, error
 * bodies, both the client's and the (fake) server's side. Pure: no I/O. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aws/err.h"
#include "aws/sigv4.h"
#include "common/cleanup.h"

#define AWS_KMS_CONTENT_TYPE     "application/x-amz-json-1.1"
#define AWS_KMS_RECIPIENT_ALG    "RSAES_OAEP_SHA_256"
#define AWS_KMS_BLOB_MAX         6144u  /* CiphertextBlob, CiphertextForRecipient (NITRO-FORMATS §3.4) */
#define AWS_KMS_RANDOM_MAX       1024u  /* GenerateRandom NumberOfBytes */
#define AWS_KMS_ATTESTATION_MAX  16384u /* the NSM answers in 12288 bytes at most */
#define AWS_KMS_KEY_ID_MAX       2048u
#define AWS_KMS_ALG_MAX          32u
#define AWS_KMS_CONTEXT_MAX      64u /* EncryptionContext pairs */
#define AWS_KMS_CONTEXT_STR_MAX  2048u
#define AWS_KMS_GRANT_TOKENS_MAX 10u
#define AWS_KMS_BODY_MAX         (64u * 1024u) /* any request or response body */
#define AWS_KMS_MESSAGE_MAX      200u          /* error message kept for a log line */
#define AWS_KMS_TYPE_MAX         64u

enum aws_kms_op {
        AWS_KMS_DECRYPT,
        AWS_KMS_GENERATE_RANDOM,
        _AWS_KMS_OP_MAX,
        _AWS_KMS_OP_INVALID = -EINVAL,
};

/* "TrentService.Decrypt", "TrentService.GenerateRandom" */
const char *aws_kms_op_target(enum aws_kms_op op);
/* From an X-Amz-Target value; _AWS_KMS_OP_INVALID for anything else. */
enum aws_kms_op aws_kms_op_from_target(const char *target);
/* Content-Type and X-Amz-Target for op into ret[0..1]; -EINVAL for a bad op. */
_must_check_ int aws_kms_headers(enum aws_kms_op op, struct aws_header ret[static 2]);

struct aws_kms_context_pair {
        const char *key;
        const char *value;
};

struct aws_kms_decrypt_req {
        const uint8_t *ciphertext; /* 1..AWS_KMS_BLOB_MAX */
        size_t ciphertext_len;
        const char *key_id; /* NULL: omitted */
        const struct aws_kms_context_pair *context;
        size_t n_context;
        const uint8_t *attestation_doc; /* the Recipient's, 1..AWS_KMS_ATTESTATION_MAX */
        size_t attestation_doc_len;
};

struct aws_kms_random_req {
        uint32_t number_of_bytes; /* 1..AWS_KMS_RANDOM_MAX */
        const uint8_t *attestation_doc;
        size_t attestation_doc_len;
};

/* Compact JSON bodies (free() them); -EINVAL / -E2BIG with e naming the field, -ENOMEM. */
_must_check_ int aws_kms_decrypt_request_build(const struct aws_kms_decrypt_req *q, char **ret_body,
                                               size_t *ret_len, struct aws_err *e);
_must_check_ int aws_kms_random_request_build(const struct aws_kms_random_req *q, char **ret_body,
                                              size_t *ret_len, struct aws_err *e);

/* ---- Responses (client side) ---------------------------------------------------------------- */

struct aws_kms_decrypt_resp {
        char key_id[AWS_KMS_KEY_ID_MAX + 1];
        char encryption_algorithm[AWS_KMS_ALG_MAX + 1]; /* "" if absent */
        size_t cfr_len;                                 /* bytes written to the caller's buffer */
};

/* A 200 response body. CiphertextForRecipient is decoded strictly (padding, no whitespace,
 * 1..AWS_KMS_BLOB_MAX bytes) into cfr (cfr_size bytes); KeyId is required; a Plaintext member is
 * refused (the call was not made for a Recipient). Unknown members are skipped, duplicates refused.
 * -EBADMSG (not JSON, wrong type, missing or bad field), -E2BIG, -ENOBUFS (cfr too small). */
_must_check_ int aws_kms_decrypt_response_parse(const void *body, size_t len, uint8_t *cfr, size_t cfr_size,
                                                struct aws_kms_decrypt_resp *ret, struct aws_err *e);
/* Returns the length of CiphertextForRecipient written to cfr. */
_must_check_ int aws_kms_random_response_parse(const void *body, size_t len, uint8_t *cfr, size_t cfr_size,
                                               struct aws_err *e);

enum aws_kms_error {
        AWS_KMS_ERR_ACCESS_DENIED,
        AWS_KMS_ERR_INVALID_CIPHERTEXT,
        AWS_KMS_ERR_INCORRECT_KEY,
        AWS_KMS_ERR_NOT_FOUND,
        AWS_KMS_ERR_DISABLED,
        AWS_KMS_ERR_INVALID_STATE,
        AWS_KMS_ERR_KEY_UNAVAILABLE,
        AWS_KMS_ERR_DEPENDENCY_TIMEOUT,
        AWS_KMS_ERR_INTERNAL,
        AWS_KMS_ERR_THROTTLING,
        AWS_KMS_ERR_UNRECOGNIZED_CLIENT,
        AWS_KMS_ERR_INVALID_SIGNATURE,
        AWS_KMS_ERR_EXPIRED_TOKEN,
        AWS_KMS_ERR_VALIDATION,
        AWS_KMS_ERR_OTHER,
        _AWS_KMS_ERR_MAX,
        _AWS_KMS_ERR_INVALID = -EINVAL,
};

/* The exception name: "AccessDeniedException", …, "KMSInternalException"; "other" for OTHER. */
const char *aws_kms_error_to_string(enum aws_kms_error t);
/* Worth retrying with back-off: throttling, timeouts, internal and unavailable-key errors. */
bool aws_kms_error_retryable(enum aws_kms_error t);
/* The HTTP status KMS answers with (for the fake KMS). */
int aws_kms_error_http_status(enum aws_kms_error t);

struct aws_kms_error_info {
        enum aws_kms_error type;
        char type_name[AWS_KMS_TYPE_MAX + 1];  /* sanitised, without a "com.amazonaws.kms#" prefix */
        char message[AWS_KMS_MESSAGE_MAX + 4]; /* sanitised (printable ASCII), "..." when cut */
};

/* {"__type": "[prefix#]NameException", "message"|"Message": "..."}: __type required. */
_must_check_ int aws_kms_error_parse(const void *body, size_t len, struct aws_kms_error_info *ret,
                                     struct aws_err *e);

/* ---- Requests (server side: the fake KMS) --------------------------------------------------- */

struct aws_kms_request {
        enum aws_kms_op op;
        uint8_t *ciphertext; /* Decrypt */
        size_t ciphertext_len;
        char *key_id;               /* Decrypt, NULL if absent */
        char *encryption_algorithm; /* Decrypt, NULL if absent */
        char **context_keys, **context_values;
        size_t n_context;
        size_t n_grant_tokens;
        uint32_t number_of_bytes; /* GenerateRandom */
        uint8_t *attestation_doc; /* Recipient, required */
        size_t attestation_doc_len;
};

/* Strict: known members only (Decrypt: CiphertextBlob, KeyId, EncryptionAlgorithm, EncryptionContext,
 * GrantTokens, DryRun, Recipient; GenerateRandom: NumberOfBytes, CustomKeyStoreId, Recipient),
 * duplicates refused, Recipient {KeyEncryptionAlgorithm: RSAES_OAEP_SHA_256, AttestationDocument}
 * required, every blob strict base64 within its limits. *ret is filled only on success. */
_must_check_ int aws_kms_request_parse(enum aws_kms_op op, const void *body, size_t len,
                                       struct aws_kms_request *ret, struct aws_err *e);
void aws_kms_request_done(struct aws_kms_request *r);

/* Response bodies for the fake KMS (compact JSON; free() them). */
_must_check_ int aws_kms_decrypt_response_build(const char *key_id, const char *encryption_algorithm,
                                                const uint8_t *cfr, size_t cfr_len, char **ret_body,
                                                size_t *ret_len);
_must_check_ int aws_kms_random_response_build(const uint8_t *cfr, size_t cfr_len, char **ret_body,
                                               size_t *ret_len);
/* {"__type":"<Name>","message":"<message>"}; type OTHER is refused (-EINVAL). */
_must_check_ int aws_kms_error_build(enum aws_kms_error t, const char *message, char **ret_body,
                                     size_t *ret_len);
