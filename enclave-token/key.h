/* One provisioned private key and its certificate chain: parsed once, then used for every operation. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "common/cleanup.h"
#include "common/rpc-codec.h"

/* A signing context kept for reuse (ECDSA and Ed25519 keys). Making one per signature costs a
 * provider lookup under locks all workers share: about 15 % of a P-256 signature with two workers. */
struct etok_key_ctx {
        bool busy;              /* taken by a signer; atomic */
        EVP_PKEY_CTX *pctx;     /* EC: sign-initialised */
        EVP_MD_CTX *mctx;       /* Ed25519: DigestSign-initialised */
} __attribute__((aligned(64))); /* one cache line each: workers use different slots */

#define ETOK_KEY_CTXS 16 /* more signers at once than this make a context each time */

struct etok_key {
        uint32_t id;
        char label[RPC_KEY_LABEL_MAX + 1];
        size_t label_len;

        EVP_PKEY *pkey; /* private numbers in OpenSSL's secure heap, the rest in ssl-heap.c's arena */
        enum rpc_key_type type;
        uint32_t bits;
        size_t sig_len; /* RSA: modulus bytes; EC: 2 * field bytes; Ed25519: 64 */
        struct etok_key_ctx
                *ctxs; /* ETOK_KEY_CTXS slots; NULL for RSA, where a context is 1 % of a signature */

        uint8_t *spki; /* DER SubjectPublicKeyInfo */
        size_t spki_len;
        size_t n_certs;
        uint8_t *certs[RPC_MAX_CERTS]; /* DER, leaf first */
        size_t cert_lens[RPC_MAX_CERTS];

        uint64_t not_after;             /* leaf notAfter, Unix time */
        char subject[RPC_TEXT_MAX + 1]; /* leaf subject, RFC 2253, ASCII */
        size_t subject_len;
};

/* Which public fields etok_key_info() fills. */
enum etok_key_view {
        ETOK_KEY_VIEW_OBJECTS,  /* TOKEN_OBJECTS: SPKI and certificates */
        ETOK_KEY_VIEW_DESCRIBE, /* DESCRIBE: notAfter and subject */
};

/* Parses the PEM private key and chain (read in place through a memory BIO: the key bytes are
 * never copied), checks the key type and size and that the leaf certificate carries the
 * private key's public key, then signs a test value and verifies it with the leaf key.
 * Errors: KEY_INVALID, LIMIT (too many or too large certificates), -ENOMEM. */
_must_check_ int etok_key_new(const struct rpc_add_key *in, struct etok_key **ret);
struct etok_key *etok_key_free(struct etok_key *k);
/* The PEM private key alone (no chain, no type check), read in place: TOKEN_REFRESH compares it with
 * the key a token holds. KEY_INVALID, LIMIT (OpenSSL's secure heap is full), -ENOMEM. */
_must_check_ int etok_key_parse_private(const struct rpc_slice *pem, EVP_PKEY **ret);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct etok_key *, etok_key_free);

/* SIGN / DECRYPT per the mechanism table in docs/protocol.md. out must hold RPC_SIG_MAX bytes.
 * Errors: UNSUPPORTED (mechanism or parameter does not fit the key), DATA_LEN, DATA_INVALID. */
_must_check_ int etok_key_sign(const struct etok_key *k, const struct rpc_crypto_req *req, uint8_t *out,
                               size_t size, size_t *ret_len);
_must_check_ int etok_key_decrypt(const struct etok_key *k, const struct rpc_crypto_req *req, uint8_t *out,
                                  size_t size, size_t *ret_len);

/* Public view for the codec; slices point into k. */
void etok_key_info(const struct etok_key *k, enum etok_key_view view, struct rpc_key_info *ret);
