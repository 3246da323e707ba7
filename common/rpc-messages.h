/* The messages of the wire protocol: limits, structs and one schema each (common/rpc-messages.c).
 *
 * The call table (common/rpc-calls.c) names each call's request and response schema; the schema
 * engine (common/rpc-schema.h) encodes and decodes any of them. Fields marked secret in the schemas
 * are listed next to the members here. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/cleanup.h"
#include "common/rpc-schema.h"

/* Schema limits. */
#define RPC_LABEL_MAX      32 /* token label, bytes (ACM: 1..32) */
#define RPC_PIN_MIN        4
#define RPC_PIN_MAX        64
#define RPC_KEY_LABEL_MAX  64
#define RPC_KEY_ID_MAX     0xffff
#define RPC_MAX_KEYS       16    /* keys per token */
#define RPC_MAX_CERTS      8     /* certificates per key: leaf + chain */
#define RPC_CERT_MAX       16384 /* one DER certificate */
#define RPC_SPKI_MAX       1024
#define RPC_KEY_PEM_MAX    16384 /* PEM private key (RSA-4096 ~ 3.3 KiB) */
#define RPC_CHAIN_PEM_MAX  65536
#define RPC_TICKET_LEN     32
#define RPC_DATA_MAX       16384 /* sign/decrypt input (EdDSA signs the message itself) */
#define RPC_SIG_MAX        1024
#define RPC_OAEP_LABEL_MAX 1024
#define RPC_TEXT_MAX       256  /* free text: server name, subject */
#define RPC_MAX_TOKENS     4096 /* the token daemon's hard ceiling (default limit 1024) */
#define RPC_PAGE_MAX       128  /* tokens per TOKEN_LIST / DESCRIBE page */
/* KMS (protocol version 3) */
#define RPC_CIPHERTEXT_MAX    6144 /* a KMS CiphertextBlob (KMS: 1..6144) */
#define RPC_REGION_MAX        32
#define RPC_AKID_MIN          16
#define RPC_AKID_MAX          128
#define RPC_AWS_SECRET_MAX    128
#define RPC_SESSION_TOKEN_MAX 4096
#define RPC_DOMAIN_MAX        64    /* partition DNS suffix: amazonaws.com, amazonaws.com.cn, ... */
#define RPC_NONCE_MAX         512   /* ATTEST nonce and user data (the NSM's own caps) */
#define RPC_ATTEST_DOC_MAX    12288 /* the NSM's response buffer */
#define RPC_TTL_MAX           (366u * 24 * 3600)
/* STATS */
#define RPC_STATS_MECH_MAX    16 /* ops[] per key, indexed by enum rpc_mech */
#define RPC_STATS_STATUS_MAX  64 /* errors[], indexed by enum rpc_status */
#define RPC_STATS_BUCKETS_MAX 32 /* latency buckets, +Inf included */

enum rpc_key_type {
        RPC_KEY_NONE,
        RPC_KEY_RSA,
        RPC_KEY_EC,
        RPC_KEY_ED25519,
        _RPC_KEY_MAX,
        _RPC_KEY_INVALID = -EINVAL,
};

/* Wire mechanisms: what the enclave does. Hashed PKCS#11 mechanisms are hashed in the module. */
enum rpc_mech {
        RPC_MECH_NONE,
        RPC_MECH_RSA_PKCS,     /* sign: PKCS#1 v1.5 type 1 padding over data (a DigestInfo) */
        RPC_MECH_RSA_PSS,      /* sign: data is the digest; hash, mgf, salt_len */
        RPC_MECH_ECDSA,        /* sign: data is the digest; result is r || s */
        RPC_MECH_EDDSA,        /* sign: data is the message (Ed25519, pure) */
        RPC_MECH_RSA_PKCS_DEC, /* decrypt: PKCS#1 v1.5 type 2 */
        RPC_MECH_RSA_OAEP,     /* decrypt: hash, mgf, label */
        _RPC_MECH_MAX,
        _RPC_MECH_INVALID = -EINVAL,
};

enum rpc_hash {
        RPC_HASH_NONE,
        RPC_HASH_SHA1,
        RPC_HASH_SHA224,
        RPC_HASH_SHA256,
        RPC_HASH_SHA384,
        RPC_HASH_SHA512,
        _RPC_HASH_MAX,
        _RPC_HASH_INVALID = -EINVAL,
};

/* ---- messages ---- */

/* HELLO */
struct rpc_hello_req {
        uint32_t min_version;
        uint32_t max_version;
        struct rpc_slice client; /* text, e.g. "enclave-acm-pkcs11 0.1.0"; optional */
};
struct rpc_hello_resp {
        uint32_t version;
        uint64_t generation;     /* bumps on every token add/remove/replace */
        struct rpc_slice server; /* text */
        uint32_t max_tokens;
        bool dev; /* the daemon runs with --dev */
};

/* PING: empty map both ways (no struct). */

/* One key's public view. Fields a call does not carry are zero / empty. */
struct rpc_key_info {
        uint32_t id;
        struct rpc_slice label; /* text */
        uint32_t type;          /* enum rpc_key_type */
        uint32_t bits;
        struct rpc_slice spki; /* DER SubjectPublicKeyInfo (TOKEN_OBJECTS) */
        size_t n_certs;
        struct rpc_slice certs[RPC_MAX_CERTS]; /* DER, leaf first (TOKEN_OBJECTS) */
        uint64_t not_after;                    /* leaf notAfter, Unix time (DESCRIBE) */
        struct rpc_slice subject;              /* leaf subject, one-line text (DESCRIBE) */
};

/* struct rpc_token_info.pin_status (protocol version 3, TOKEN_LIST and TOKEN_OBJECTS): what the token's
 * wrong-PIN count and back-off mean for the next LOGIN, as PKCS#11's CKF_USER_PIN_* flags say it. */
enum rpc_pin_status {
        RPC_PIN_COUNT_LOW = 1 << 0, /* a wrong PIN since the last right one */
        RPC_PIN_FINAL_TRY = 1 << 1, /* one more wrong PIN starts the back-off */
        RPC_PIN_LOCKED = 1 << 2,    /* attempts are refused now (PIN_LOCKED) */
        _RPC_PIN_STATUS_ALL = (1 << 3) - 1,
};

struct rpc_token_info {
        uint32_t slot;
        struct rpc_slice label; /* text */
        uint64_t generation;    /* bumps when this token's keys change */
        uint32_t n_keys_total;  /* number of keys (always sent) */
        uint64_t expires;       /* Unix time the token expires unless refreshed; 0: never (DESCRIBE) */
        uint32_t pin_status; /* enum rpc_pin_status bits; 0: none (TOKEN_LIST, TOKEN_OBJECTS, version 3) */
        size_t n_keys;       /* keys[] filled (TOKEN_OBJECTS, DESCRIBE) */
        struct rpc_key_info keys[RPC_MAX_KEYS];
};

/* TOKEN_LIST and DESCRIBE */
struct rpc_page_req {
        uint32_t cursor; /* 0 = from the start */
};
struct rpc_page_resp {
        uint64_t generation;
        uint32_t next; /* 0 = last page */
        uint32_t n_tokens_total;
        size_t n_tokens;
        struct rpc_token_info *tokens; /* decoder allocates; free with rpc_page_resp_done() */
};

/* TOKEN_OBJECTS */
struct rpc_slot_req {
        uint32_t slot;
};
/* response: struct rpc_token_info */

/* LOGIN */
struct rpc_login_req {
        uint32_t slot;
        struct rpc_slice pin; /* secret */
};
struct rpc_login_resp {
        struct rpc_slice ticket; /* secret: RPC_TICKET_LEN bytes; sent with every SIGN/DECRYPT */
};

/* SIGN and DECRYPT */
struct rpc_crypto_req {
        uint32_t slot;
        uint32_t key_id;
        struct rpc_slice ticket; /* secret */
        uint32_t mech;           /* enum rpc_mech */
        uint32_t hash;           /* enum rpc_hash: PSS/OAEP hash */
        uint32_t mgf_hash;       /* enum rpc_hash: PSS/OAEP MGF1 hash */
        uint32_t salt_len;       /* PSS */
        struct rpc_slice data;
        struct rpc_slice oaep_label;
};
struct rpc_crypto_resp {
        struct rpc_slice data; /* signature, or plaintext (secret: the DECRYPT schema says so) */
};

/* The protocol version that brought TOKEN_ADD hold / held and TOKEN_RELEASE: a client sends them only
 * to a daemon that negotiated it (an older one answers MALFORMED to the unknown key). */
#define RPC_VERSION_HOLD 2

/* The protocol version that brought KMS_BEGIN / KMS_END, TOKEN_ADD keys as KMS ciphertexts, token
 * expiry (ttl, expires), TOKEN_REFRESH and ATTEST. */
#define RPC_VERSION_KMS 3

/* TOKEN_ADD: each key is either key_pem (plaintext, --dev only) or ciphertext (a KMS CiphertextBlob
 * the enclave decrypts in the connection's KMS round: KMS_BEGIN). */
struct rpc_add_key {
        uint32_t id;
        struct rpc_slice label;      /* text */
        struct rpc_slice key_pem;    /* secret */
        struct rpc_slice chain_pem;  /* leaf first */
        struct rpc_slice ciphertext; /* KMS CiphertextBlob of the PEM private key */
};
struct rpc_token_add_req {
        struct rpc_slice label;
        struct rpc_slice pin; /* secret */
        bool replace;         /* replace an existing token with this label (PIN must match) */
        size_t n_keys;
        struct rpc_add_key keys[RPC_MAX_KEYS];
        /* With replace: a replaced version is held (signs with its ticket, no expiry) until a
         * TOKEN_RELEASE starts its grace period: a web server may still use it. */
        bool hold;
        uint32_t ttl; /* seconds until the token expires unless refreshed; 0: never (KMS keys: 48 h) */
};
struct rpc_token_add_resp {
        uint32_t slot;
        uint32_t held;    /* versions of this label held after the call (sent when not 0) */
        uint64_t expires; /* Unix time; 0: never */
};

/* KMS_BEGIN: opens the connection's KMS round. The enclave makes one ephemeral RSA-2048 key and one
 * attestation document for it, and uses them and one kept-alive TLS connection for every Decrypt of
 * the round; KMS_END (or the connection's end) wipes the key and the credentials. */
struct rpc_kms_begin_req {
        struct rpc_slice region;            /* text: us-east-1 */
        struct rpc_slice access_key_id;     /* text */
        struct rpc_slice secret_access_key; /* secret */
        struct rpc_slice session_token;     /* secret; empty for long-term credentials */
        uint64_t time;                      /* the parent's clock, Unix ms */
        struct rpc_slice domain;            /* text: partition DNS suffix; empty: from the region */
        bool per_key; /* a new key, document and connection for every Decrypt (benchmarks only) */
};
struct rpc_kms_begin_resp {
        uint64_t time;    /* the enclave's clock, Unix ms */
        bool parent_time; /* the enclave signs with the parent's time (its own is > 4 min off) */
};
/* KMS_END: empty map both ways. */

/* TOKEN_REFRESH: re-decrypts the token's keys in the connection's KMS round; each must be the key the
 * token holds under that id. Extends the expiry; ticket and objects are unchanged. */
struct rpc_refresh_key {
        uint32_t id;
        struct rpc_slice ciphertext;
};
struct rpc_token_refresh_req {
        struct rpc_slice label;
        struct rpc_slice pin; /* secret */
        size_t n_keys;
        struct rpc_refresh_key keys[RPC_MAX_KEYS];
        uint32_t ttl; /* 0: the default (48 h) */
};
struct rpc_token_refresh_resp {
        uint64_t expires; /* Unix time */
};

/* ATTEST: a fresh attestation document from the NSM, for the parent to check the enclave. */
struct rpc_attest_req {
        struct rpc_slice nonce;     /* 0..RPC_NONCE_MAX bytes */
        struct rpc_slice user_data; /* 0..RPC_NONCE_MAX bytes */
};
struct rpc_attest_resp {
        struct rpc_slice document; /* COSE_Sign1 */
};

/* STATS (control channel): the enclave's counters, a page of tokens at a time (request: struct
 * rpc_page_req). Counters only grow while the daemon runs; a token's counters survive its replacements
 * (they belong to the label) and go with its removal. */
struct rpc_key_stats {
        uint32_t id;
        size_t n_ops;
        uint64_t ops[RPC_STATS_MECH_MAX]; /* successful operations, indexed by enum rpc_mech */
};
struct rpc_token_stats {
        uint32_t slot;
        struct rpc_slice label; /* text */
        uint64_t expires;       /* Unix time; 0: never */
        uint32_t n_keys_held;   /* keys of the current version */
        size_t n_keys;
        struct rpc_key_stats keys[RPC_MAX_KEYS]; /* key ids that signed or decrypted */
        size_t n_errors;
        uint64_t errors[RPC_STATS_STATUS_MAX]; /* failed SIGN/DECRYPT, indexed by enum rpc_status */
        uint64_t login_failures;               /* wrong PINs (LOGIN and the control calls' PINs) */
        uint64_t login_locked;                 /* PIN attempts refused by the back-off (PIN_LOCKED) */
        size_t n_latency;
        uint64_t latency[RPC_STATS_BUCKETS_MAX]; /* per bucket, not cumulative; the last one is +Inf */
        uint64_t latency_sum_ns;                 /* of the private-key operations counted in latency[] */
};
struct rpc_stats_resp {
        uint64_t generation;
        uint32_t next; /* 0 = last page */
        uint32_t n_tokens_total;
        size_t n_tokens;
        struct rpc_token_stats *tokens; /* decoder allocates; free with rpc_stats_resp_done() */
        size_t n_bounds;
        uint64_t bounds_ns[RPC_STATS_BUCKETS_MAX - 1]; /* upper bounds of the finite latency buckets */
        size_t n_errors;
        uint64_t errors[RPC_STATS_STATUS_MAX]; /* failed SIGN/DECRYPT/LOGIN naming no token */
        uint64_t retired;                      /* replaced versions still held */
        uint64_t keys_held;                    /* keys of all current tokens */
};

/* TOKEN_REMOVE */
struct rpc_token_remove_req {
        struct rpc_slice label;
        struct rpc_slice pin; /* secret */
};
/* response: empty map */

/* TOKEN_RELEASE: the held versions of the label run out the grace period from now. */
struct rpc_token_release_req {
        struct rpc_slice label;
        struct rpc_slice pin; /* secret: the current version's */
};
struct rpc_token_release_resp {
        uint32_t released; /* versions released (0: none was held) */
};

/* ---- schemas ---- */

extern const struct rpc_schema rpc_empty_schema; /* PING both ways, TOKEN_REMOVE response */
extern const struct rpc_schema rpc_hello_req_schema;
extern const struct rpc_schema rpc_hello_resp_schema;
extern const struct rpc_schema rpc_page_req_schema;
extern const struct rpc_schema rpc_page_resp_schema;
extern const struct rpc_schema rpc_slot_req_schema;
extern const struct rpc_schema rpc_token_info_schema;
extern const struct rpc_schema rpc_login_req_schema;
extern const struct rpc_schema rpc_login_resp_schema;
extern const struct rpc_schema rpc_crypto_req_schema;
extern const struct rpc_schema rpc_sign_resp_schema;    /* struct rpc_crypto_resp */
extern const struct rpc_schema rpc_decrypt_resp_schema; /* the same wire, data marked secret */
extern const struct rpc_schema rpc_token_add_req_schema;
extern const struct rpc_schema rpc_token_add_resp_schema;
extern const struct rpc_schema rpc_token_remove_req_schema;
extern const struct rpc_schema rpc_token_release_req_schema;
extern const struct rpc_schema rpc_token_release_resp_schema;
extern const struct rpc_schema rpc_kms_begin_req_schema;
extern const struct rpc_schema rpc_kms_begin_resp_schema;
extern const struct rpc_schema rpc_token_refresh_req_schema;
extern const struct rpc_schema rpc_token_refresh_resp_schema;
extern const struct rpc_schema rpc_attest_req_schema;
extern const struct rpc_schema rpc_attest_resp_schema;
extern const struct rpc_schema rpc_stats_resp_schema;

/* Typed fronts of the schema engine: the compiler checks the struct against the schema's message.
 * Each encoder writes the whole body (check rpc_writer_finish(w)); each decoder parses the whole
 * body: 0 or -EBADMSG / -ENOMEM, see rpc_msg_decode(). */
#define RPC_MSG_CODEC(name, type)                                                                   \
        static inline void rpc_##name##_encode(struct rpc_writer *w, const type *m) {               \
                rpc_msg_write(&rpc_##name##_schema, w, m);                                          \
        }                                                                                           \
        _must_check_ static inline int rpc_##name##_decode(const uint8_t *b, size_t n, type *ret) { \
                return rpc_msg_decode(&rpc_##name##_schema, b, n, ret);                             \
        }

RPC_MSG_CODEC(hello_req, struct rpc_hello_req)
RPC_MSG_CODEC(hello_resp, struct rpc_hello_resp)
RPC_MSG_CODEC(page_req, struct rpc_page_req)
RPC_MSG_CODEC(page_resp, struct rpc_page_resp)
RPC_MSG_CODEC(slot_req, struct rpc_slot_req)
/* ret is large (keys[]): callers keep it on the heap. */
RPC_MSG_CODEC(token_info, struct rpc_token_info)
RPC_MSG_CODEC(login_req, struct rpc_login_req)
RPC_MSG_CODEC(login_resp, struct rpc_login_resp)
RPC_MSG_CODEC(crypto_req, struct rpc_crypto_req)
RPC_MSG_CODEC(sign_resp, struct rpc_crypto_resp)
RPC_MSG_CODEC(decrypt_resp, struct rpc_crypto_resp)
RPC_MSG_CODEC(token_add_req, struct rpc_token_add_req)
RPC_MSG_CODEC(token_add_resp, struct rpc_token_add_resp)
RPC_MSG_CODEC(token_remove_req, struct rpc_token_remove_req)
RPC_MSG_CODEC(token_release_req, struct rpc_token_release_req)
RPC_MSG_CODEC(token_release_resp, struct rpc_token_release_resp)
RPC_MSG_CODEC(kms_begin_req, struct rpc_kms_begin_req)
RPC_MSG_CODEC(kms_begin_resp, struct rpc_kms_begin_resp)
RPC_MSG_CODEC(token_refresh_req, struct rpc_token_refresh_req)
RPC_MSG_CODEC(token_refresh_resp, struct rpc_token_refresh_resp)
RPC_MSG_CODEC(attest_req, struct rpc_attest_req)
RPC_MSG_CODEC(attest_resp, struct rpc_attest_resp)
RPC_MSG_CODEC(stats_resp, struct rpc_stats_resp)

/* SIGN and DECRYPT answers share one wire form. */
static inline void rpc_crypto_resp_encode(struct rpc_writer *w, const struct rpc_crypto_resp *m) {
        rpc_sign_resp_encode(w, m);
}
_must_check_ static inline int rpc_crypto_resp_decode(const uint8_t *b, size_t n,
                                                      struct rpc_crypto_resp *ret) {
        return rpc_sign_resp_decode(b, n, ret);
}

static inline void rpc_empty_encode(struct rpc_writer *w) {
        rpc_msg_write(&rpc_empty_schema, w, NULL);
}
_must_check_ static inline int rpc_empty_decode(const uint8_t *b, size_t n) {
        return rpc_msg_decode(&rpc_empty_schema, b, n, NULL);
}

/* Frees the tokens a decoded STATS page holds; the struct may be reused. NULL is fine. */
static inline void rpc_stats_resp_done(struct rpc_stats_resp *p) {
        rpc_msg_done(&rpc_stats_resp_schema, p);
}

/* Frees the tokens a decoded page holds; the struct may be reused. NULL is fine. */
static inline void rpc_page_resp_done(struct rpc_page_resp *p) {
        rpc_msg_done(&rpc_page_resp_schema, p);
}

const char *rpc_key_type_to_string(enum rpc_key_type t);
const char *rpc_mech_to_string(enum rpc_mech m);
