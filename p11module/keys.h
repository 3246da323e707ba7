/* A token's public objects as the module caches them: keys parsed once, attribute bytes precomputed. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "common/rpc-codec.h"

struct p11_blob {
        uint8_t *ptr;
        size_t len;
};

struct p11_cert {
        struct p11_blob der;     /* CKA_VALUE */
        struct p11_blob subject; /* DER Name */
        struct p11_blob issuer;  /* DER Name */
        struct p11_blob serial;  /* DER INTEGER */
        struct p11_blob spki;    /* CKA_PUBLIC_KEY_INFO */
        struct p11_blob id;      /* CKA_ID: the key id for the leaf, SHA-1 of the public key otherwise */
        uint8_t check_value[3];
        char label[RPC_KEY_LABEL_MAX + 16];
        size_t label_len;
};

struct p11_key {
        uint32_t id;
        char label[RPC_KEY_LABEL_MAX + 1];
        size_t label_len;
        enum rpc_key_type type;
        uint32_t bits;    /* RSA modulus bits, EC field bits, 255 for Ed25519 */
        size_t key_bytes; /* RSA k, EC field bytes, 32 for Ed25519 */
        size_t sig_len;   /* exact signature length */
        uint8_t ckid[4];  /* CKA_ID: key id, big-endian, minimal */
        size_t ckid_len;
        struct p11_blob spki;      /* CKA_PUBLIC_KEY_INFO */
        struct p11_blob modulus;   /* RSA */
        struct p11_blob exponent;  /* RSA */
        struct p11_blob ec_params; /* EC/Ed25519: DER OID */
        struct p11_blob ec_point;  /* EC/Ed25519: DER OCTET STRING */
        size_t n_certs;
        struct p11_cert certs[RPC_MAX_CERTS];
};

struct p11_objects {
        uint64_t generation;
        uint32_t pin_status;           /* enum rpc_pin_status when TOKEN_OBJECTS answered */
        char label[RPC_LABEL_MAX + 1]; /* the token's label, as TOKEN_OBJECTS gave it */
        size_t label_len;
        size_t n_keys;
        struct p11_key keys[]; /* room for the token's keys, n_keys of them built */
};

/* Parses one key's SPKI and certificates. -EBADMSG for anything unparsable or inconsistent.
 * Leaves the OpenSSL error queue as it found it. */
_must_check_ int p11_key_build(const struct rpc_key_info *ki, struct p11_key *ret);
void p11_key_done(struct p11_key *k);

_must_check_ int p11_objects_build(const struct rpc_token_info *ti, struct p11_objects **ret);
struct p11_objects *p11_objects_free(struct p11_objects *o);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct p11_objects *, p11_objects_free);
const struct p11_key *p11_objects_find_key(const struct p11_objects *o, uint32_t key_id);

/* Big-endian minimal bytes of a key id (0 -> 00, 1 -> 01, 0x102 -> 01 02). Returns the length. */
size_t p11_key_id_bytes(uint32_t id, uint8_t out[static 4]);
/* DER OCTET STRING around p; -ENOMEM. */
_must_check_ int p11_der_octet_string(const uint8_t *p, size_t len, struct p11_blob *ret);
