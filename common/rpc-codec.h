/* CBOR <-> message structs. Encode and decode of each message live side by side in rpc-codec.c.
 *
 * Bodies are CBOR maps with small unsigned integer keys. Decoding is zero-copy: every
 * struct rpc_slice points into the frame body, which must outlive the decoded struct.
 * Decoders bound every count and length by the schema limit and by the bytes left, reject
 * indefinite lengths, unknown or duplicate keys, wrong types, and trailing bytes. Secret
 * fields (PINs, private keys) are never copied by the codec: the frame itself is a secret_buf. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/cleanup.h"

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

struct rpc_slice {
        const uint8_t *ptr;
        size_t len;
};

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

/* ---- low level: writer and reader over a caller's buffer ---- */

struct rpc_writer {
        uint8_t *buf;
        size_t size;
        size_t len;
        int err; /* sticky: -EMSGSIZE once the buffer is full */
};

void rpc_writer_init(struct rpc_writer *w, uint8_t *buf, size_t size);
void rpc_put_map(struct rpc_writer *w, size_t n);
void rpc_put_array(struct rpc_writer *w, size_t n);
void rpc_put_uint(struct rpc_writer *w, uint64_t v);
void rpc_put_bytes(struct rpc_writer *w, const void *p, size_t len);
void rpc_put_text(struct rpc_writer *w, const char *s, size_t len);
/* Key + value in one go (map entries). */
void rpc_put_kv_uint(struct rpc_writer *w, unsigned key, uint64_t v);
void rpc_put_kv_bytes(struct rpc_writer *w, unsigned key, const void *p, size_t len);
void rpc_put_kv_text(struct rpc_writer *w, unsigned key, const char *s, size_t len);
/* 0 or the sticky error. */
_must_check_ int rpc_writer_finish(const struct rpc_writer *w);

struct rpc_reader {
        const uint8_t *buf;
        size_t len;
        size_t pos;
        int err; /* sticky */
};

void rpc_reader_init(struct rpc_reader *r, const uint8_t *buf, size_t len);
/* Each reads one item of the given type; a wrong type, indefinite length, a count or length
 * above max or above the bytes left gives -EBADMSG (sticky). */
_must_check_ int rpc_get_map(struct rpc_reader *r, size_t max, size_t *ret_n);
_must_check_ int rpc_get_array(struct rpc_reader *r, size_t max, size_t *ret_n);
_must_check_ int rpc_get_uint(struct rpc_reader *r, uint64_t max, uint64_t *ret);
_must_check_ int rpc_get_bytes(struct rpc_reader *r, size_t min, size_t max, struct rpc_slice *ret);
/* UTF-8 text without NUL bytes. */
_must_check_ int rpc_get_text(struct rpc_reader *r, size_t min, size_t max, struct rpc_slice *ret);
/* 0 if every byte was consumed and no error occurred, else -EBADMSG. */
_must_check_ int rpc_reader_end(const struct rpc_reader *r);

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

struct rpc_token_info {
        uint32_t slot;
        struct rpc_slice label; /* text */
        uint64_t generation;    /* bumps when this token's keys change */
        uint32_t n_keys_total;  /* number of keys (always sent) */
        size_t n_keys;          /* keys[] filled (TOKEN_OBJECTS, DESCRIBE) */
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
void rpc_page_resp_done(struct rpc_page_resp *p);

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
        struct rpc_slice ticket; /* RPC_TICKET_LEN bytes; sent with every SIGN/DECRYPT */
};

/* SIGN and DECRYPT */
struct rpc_crypto_req {
        uint32_t slot;
        uint32_t key_id;
        struct rpc_slice ticket;
        uint32_t mech;     /* enum rpc_mech */
        uint32_t hash;     /* enum rpc_hash: PSS/OAEP hash */
        uint32_t mgf_hash; /* enum rpc_hash: PSS/OAEP MGF1 hash */
        uint32_t salt_len; /* PSS */
        struct rpc_slice data;
        struct rpc_slice oaep_label;
};
struct rpc_crypto_resp {
        struct rpc_slice data; /* signature or plaintext */
};

/* TOKEN_ADD */
struct rpc_add_key {
        uint32_t id;
        struct rpc_slice label;     /* text */
        struct rpc_slice key_pem;   /* secret */
        struct rpc_slice chain_pem; /* leaf first */
};
struct rpc_token_add_req {
        struct rpc_slice label;
        struct rpc_slice pin; /* secret */
        bool replace;         /* replace an existing token with this label (PIN must match) */
        size_t n_keys;
        struct rpc_add_key keys[RPC_MAX_KEYS];
};
struct rpc_token_add_resp {
        uint32_t slot;
};

/* TOKEN_REMOVE */
struct rpc_token_remove_req {
        struct rpc_slice label;
        struct rpc_slice pin; /* secret */
};
/* response: empty map */

/* Each encoder writes the whole body (a map) into w; check rpc_writer_finish(w).
 * Each decoder parses the whole body; 0 or -EBADMSG / -ENOMEM; ret is written only on success. */
void rpc_hello_req_encode(struct rpc_writer *w, const struct rpc_hello_req *m);
_must_check_ int rpc_hello_req_decode(const uint8_t *b, size_t n, struct rpc_hello_req *ret);
void rpc_hello_resp_encode(struct rpc_writer *w, const struct rpc_hello_resp *m);
_must_check_ int rpc_hello_resp_decode(const uint8_t *b, size_t n, struct rpc_hello_resp *ret);

void rpc_empty_encode(struct rpc_writer *w);
_must_check_ int rpc_empty_decode(const uint8_t *b, size_t n);

void rpc_page_req_encode(struct rpc_writer *w, const struct rpc_page_req *m);
_must_check_ int rpc_page_req_decode(const uint8_t *b, size_t n, struct rpc_page_req *ret);
void rpc_page_resp_encode(struct rpc_writer *w, const struct rpc_page_resp *m);
_must_check_ int rpc_page_resp_decode(const uint8_t *b, size_t n, struct rpc_page_resp *ret);

void rpc_slot_req_encode(struct rpc_writer *w, const struct rpc_slot_req *m);
_must_check_ int rpc_slot_req_decode(const uint8_t *b, size_t n, struct rpc_slot_req *ret);
/* ret is large (keys[]): callers keep it on the heap. */
void rpc_token_info_encode(struct rpc_writer *w, const struct rpc_token_info *m);
_must_check_ int rpc_token_info_decode(const uint8_t *b, size_t n, struct rpc_token_info *ret);

void rpc_login_req_encode(struct rpc_writer *w, const struct rpc_login_req *m);
_must_check_ int rpc_login_req_decode(const uint8_t *b, size_t n, struct rpc_login_req *ret);
void rpc_login_resp_encode(struct rpc_writer *w, const struct rpc_login_resp *m);
_must_check_ int rpc_login_resp_decode(const uint8_t *b, size_t n, struct rpc_login_resp *ret);

void rpc_crypto_req_encode(struct rpc_writer *w, const struct rpc_crypto_req *m);
_must_check_ int rpc_crypto_req_decode(const uint8_t *b, size_t n, struct rpc_crypto_req *ret);
void rpc_crypto_resp_encode(struct rpc_writer *w, const struct rpc_crypto_resp *m);
_must_check_ int rpc_crypto_resp_decode(const uint8_t *b, size_t n, struct rpc_crypto_resp *ret);

void rpc_token_add_req_encode(struct rpc_writer *w, const struct rpc_token_add_req *m);
_must_check_ int rpc_token_add_req_decode(const uint8_t *b, size_t n, struct rpc_token_add_req *ret);
void rpc_token_add_resp_encode(struct rpc_writer *w, const struct rpc_token_add_resp *m);
_must_check_ int rpc_token_add_resp_decode(const uint8_t *b, size_t n, struct rpc_token_add_resp *ret);

void rpc_token_remove_req_encode(struct rpc_writer *w, const struct rpc_token_remove_req *m);
_must_check_ int rpc_token_remove_req_decode(const uint8_t *b, size_t n, struct rpc_token_remove_req *ret);

const char *rpc_key_type_to_string(enum rpc_key_type t);
const char *rpc_mech_to_string(enum rpc_mech m);
