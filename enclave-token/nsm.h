/* The Nitro Secure Module client: the serde-shaped CBOR codec of /dev/nsm requests and responses
 * (NITRO-FORMATS.md 1.2), the one error table, and a device with two backends (the ioctl, the
 * simulator of nsm-sim.h) that both carry request and response BYTES through the same codec. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/cleanup.h"

#define NSM_DEV_PATH        "/dev/nsm"
#define NSM_REQUEST_MAX     4096  /* NSM_REQUEST_MAX_SIZE: larger requests are refused before the ioctl */
#define NSM_RESPONSE_MAX    12288 /* NSM_RESPONSE_MAX_SIZE: the response buffer is always exactly this */
#define NSM_PCR_COUNT       32    /* max_pcrs */
#define NSM_PCR_LEN         48    /* SHA-384 */
#define NSM_PCR_LEN_MAX     64    /* what a response may carry (SHA-256/384/512 digests) */
#define NSM_OPT_MAX         1024  /* user_data, nonce, public_key: what real hardware accepts (1.5) */
#define NSM_OPT_GEN_MAX     512   /* user_data, nonce: what we generate (strict verifiers' limit) */
#define NSM_RANDOM_MAX      1024  /* GetRandom bytes accepted in one response (real: 256) */
#define NSM_MODULE_ID_MAX   128
#define NSM_LOCKED_PCRS_MAX 64

/* The ErrorCode names the NSM answers with {"Error": name} (1.3). Success is not an error and never
 * arrives in an Error response: that name decodes as malformed. */
enum nsm_error {
        NSM_ERROR_INVALID_ARGUMENT,
        NSM_ERROR_INVALID_INDEX,
        NSM_ERROR_INVALID_RESPONSE,
        NSM_ERROR_READ_ONLY_INDEX,
        NSM_ERROR_INVALID_OPERATION,
        NSM_ERROR_BUFFER_TOO_SMALL,
        NSM_ERROR_INPUT_TOO_LARGE,
        NSM_ERROR_INTERNAL_ERROR,
        _NSM_ERROR_MAX,
        _NSM_ERROR_INVALID = -EINVAL,
};

/* The one table: wire name <-> enum <-> negative errno <-> text. */
const char *nsm_error_to_name(enum nsm_error e);
const char *nsm_error_to_string(enum nsm_error e);
int nsm_error_to_errno(enum nsm_error e);
enum nsm_error nsm_error_from_name(const uint8_t *name, size_t len);
/* The error whose errno is err (the simulator answers with it), or _NSM_ERROR_INVALID. */
enum nsm_error nsm_error_from_errno(int err);

enum nsm_digest {
        NSM_DIGEST_SHA256,
        NSM_DIGEST_SHA384,
        NSM_DIGEST_SHA512,
        _NSM_DIGEST_MAX,
        _NSM_DIGEST_INVALID = -EINVAL,
};

/* An optional byte string: null when !present (an empty present one is bytes of length 0). */
struct nsm_opt {
        const uint8_t *ptr;
        size_t len;
        bool present;
};
#define NSM_OPT(p, n) ((struct nsm_opt){ .ptr = (p), .len = (n), .present = true })

enum nsm_request_kind {
        NSM_REQUEST_DESCRIBE_PCR,
        NSM_REQUEST_EXTEND_PCR,
        NSM_REQUEST_LOCK_PCR,
        NSM_REQUEST_LOCK_PCRS,
        NSM_REQUEST_DESCRIBE_NSM,
        NSM_REQUEST_ATTESTATION,
        NSM_REQUEST_GET_RANDOM,
        _NSM_REQUEST_MAX,
        _NSM_REQUEST_INVALID = -EINVAL,
};

struct nsm_request {
        enum nsm_request_kind kind;
        uint16_t index;                      /* DescribePCR, ExtendPCR, LockPCR */
        uint16_t range;                      /* LockPCRs: locks [0, range) */
        struct nsm_opt data;                 /* ExtendPCR (always present) */
        struct nsm_opt user_data, nonce, pk; /* Attestation (pk: public_key) */
};

enum nsm_response_kind {
        NSM_RESPONSE_DESCRIBE_PCR,
        NSM_RESPONSE_EXTEND_PCR,
        NSM_RESPONSE_LOCK_PCR,
        NSM_RESPONSE_LOCK_PCRS,
        NSM_RESPONSE_DESCRIBE_NSM,
        NSM_RESPONSE_ATTESTATION,
        NSM_RESPONSE_GET_RANDOM,
        NSM_RESPONSE_ERROR,
        _NSM_RESPONSE_MAX,
        _NSM_RESPONSE_INVALID = -EINVAL,
};

const char *nsm_request_kind_to_name(enum nsm_request_kind k);
const char *nsm_response_kind_to_name(enum nsm_response_kind k);

struct nsm_description {
        uint16_t version_major, version_minor, version_patch;
        char module_id[NSM_MODULE_ID_MAX + 1];
        uint16_t max_pcrs;
        uint16_t locked_pcrs[NSM_LOCKED_PCRS_MAX];
        size_t n_locked_pcrs;
        enum nsm_digest digest;
};

struct nsm_pcr {
        uint8_t data[NSM_PCR_LEN_MAX];
        size_t len;
        bool locked; /* DescribePCR only */
};

struct nsm_response {
        enum nsm_response_kind kind;
        enum nsm_error error; /* NSM_RESPONSE_ERROR */
        struct nsm_pcr pcr;   /* DescribePCR (data, lock), ExtendPCR (data) */
        uint8_t *document;    /* Attestation: malloc()ed, owned, freed by nsm_response_done() */
        size_t document_len;
        uint8_t random[NSM_RANDOM_MAX]; /* GetRandom; wiped by nsm_response_done() */
        size_t random_len;
        struct nsm_description description; /* DescribeNSM */
};

/* Frees the document and wipes the random bytes; the struct may be reused. */
void nsm_response_done(struct nsm_response *resp);

/* Encodes req in the serde_cbor shape the NSM expects (unit variants as a text string, struct
 * variants as a one-entry map with the fields in declaration order). -EMSGSIZE above NSM_REQUEST_MAX
 * or size, -EINVAL for a kind out of range. Field caps are the device's business (the simulator
 * enforces them as the NSM does); the high-level calls below apply ours. */
_must_check_ int nsm_request_encode(const struct nsm_request *req, uint8_t *buf, size_t size,
                                    size_t *ret_len);
/* The other side (the simulator, tests): strings come back as slices into buf. -EOPNOTSUPP for
 * something that is not a known request variant, -EINVAL for a known one with missing, duplicate or
 * ill-typed fields (the simulator answers InvalidOperation and InvalidArgument), -EBADMSG for bytes
 * that are not one CBOR item, -EMSGSIZE above NSM_REQUEST_MAX; ret_error says what and where. */
_must_check_ int nsm_request_decode(const uint8_t *buf, size_t len, struct nsm_request *ret,
                                    char **ret_error);

/* Responses: maps in any key order and of either length encoding, unknown keys inside a variant
 * skipped (serde ignores them), duplicates and missing fields refused, every length capped.
 * -EBADMSG with ret_error naming the field and byte offset. An {"Error": name} response decodes
 * fine into kind NSM_RESPONSE_ERROR. */
_must_check_ int nsm_response_decode(const uint8_t *buf, size_t len, struct nsm_response *ret,
                                     char **ret_error);
_must_check_ int nsm_response_encode(const struct nsm_response *resp, uint8_t *buf, size_t size,
                                     size_t *ret_len);

/* ---- the device ---- */

struct nsm_dev;

/* A backend: one request's bytes in, the response's bytes out. resp holds NSM_RESPONSE_MAX bytes;
 * *ret_len is the length used. A negative errno is a transport failure (not an NSM error). */
struct nsm_dev_ops {
        const char *name;
        int (*transact)(void *userdata, const uint8_t *req, size_t req_len, uint8_t *resp, size_t *ret_len);
        void (*free)(void *userdata);
};

/* The device owns userdata from here on (ops->free() releases it, also on failure). */
_must_check_ int nsm_dev_new(const struct nsm_dev_ops *ops, void *userdata, struct nsm_dev **ret);
/* The real device (path NULL: NSM_DEV_PATH), opened O_RDWR|O_CLOEXEC; -ENOENT when there is none. */
_must_check_ int nsm_dev_open(const char *path, struct nsm_dev **ret);
struct nsm_dev *nsm_dev_free(struct nsm_dev *d);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct nsm_dev *, nsm_dev_free);
const char *nsm_dev_name(const struct nsm_dev *d);

/* Encode, send, decode: one request, its response (owned by the caller: nsm_response_done()).
 * -EMSGSIZE for a request above NSM_REQUEST_MAX before the device sees it. An Error response is
 * returned as its table errno, with ret_error naming it. */
_must_check_ int nsm_dev_call(struct nsm_dev *d, const struct nsm_request *req, struct nsm_response *ret,
                              char **ret_error);

/* ---- high-level calls (ret_error may be NULL) ---- */

/* A NULL or !present option is sent as null. user_data and nonce at most NSM_OPT_GEN_MAX bytes,
 * public_key (DER SPKI) at most NSM_OPT_MAX, else -EMSGSIZE. *ret_doc is malloc()ed (COSE_Sign1). */
_must_check_ int nsm_get_attestation(struct nsm_dev *d, const struct nsm_opt *nonce,
                                     const struct nsm_opt *user_data, const struct nsm_opt *public_key,
                                     uint8_t **ret_doc, size_t *ret_len, char **ret_error);
_must_check_ int nsm_describe_pcr(struct nsm_dev *d, uint16_t index, struct nsm_pcr *ret, char **ret_error);
/* ret (the new value) may be NULL. */
_must_check_ int nsm_extend_pcr(struct nsm_dev *d, uint16_t index, const uint8_t *data, size_t len,
                                struct nsm_pcr *ret, char **ret_error);
_must_check_ int nsm_lock_pcr(struct nsm_dev *d, uint16_t index, char **ret_error);
_must_check_ int nsm_lock_pcrs(struct nsm_dev *d, uint16_t range, char **ret_error);
/* Fills buf with len random bytes from as many GetRandom calls as it takes. */
_must_check_ int nsm_get_random(struct nsm_dev *d, uint8_t *buf, size_t len, char **ret_error);
_must_check_ int nsm_describe(struct nsm_dev *d, struct nsm_description *ret, char **ret_error);
