/* The mechanism table and the pure helpers around it: parameters, input checks, DigestInfo. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "common/rpc-codec.h"
#include "p11module/pkcs11-3.h"

struct p11_mech {
        CK_MECHANISM_TYPE type;
        enum rpc_key_type key_type;
        enum rpc_mech wire; /* for signing; decryption mechanisms carry their decrypt wire mech */
        enum rpc_hash hash; /* hashed in the module; RPC_HASH_NONE for the raw mechanisms */
        CK_FLAGS flags;     /* CKF_SIGN and/or CKF_DECRYPT */
};

struct p11_mech_params {
        enum rpc_hash hash;     /* PSS/OAEP */
        enum rpc_hash mgf_hash; /* PSS/OAEP */
        uint32_t salt_len;      /* PSS */
        size_t label_len;       /* OAEP */
        uint8_t label[RPC_OAEP_LABEL_MAX];
};

#define P11_DIGESTINFO_MAX (19 + 64)

size_t p11_mech_count(void);
const struct p11_mech *p11_mech_at(size_t i);
const struct p11_mech *p11_mech_find(CK_MECHANISM_TYPE type);

/* CKR_OK, CKR_MECHANISM_INVALID. Key sizes in bits, flags with CKF_HW and the EC capability bits;
 * CKF_VERIFY with CKF_SIGN (verification is local, with the public key); the digests (CKM_SHA_1,
 * CKM_SHA224 .. CKM_SHA512) with CKF_DIGEST only. The module-wide view: every key type. */
CK_RV p11_mech_info(CK_MECHANISM_TYPE type, CK_MECHANISM_INFO *ret);

/* The key types and sizes one token holds: what its slot's mechanism list is made of. */
struct p11_mech_keys {
        CK_ULONG min_bits[_RPC_KEY_MAX]; /* 0: the token has no key of this type */
        CK_ULONG max_bits[_RPC_KEY_MAX];
};
void p11_mech_keys_add(struct p11_mech_keys *k, enum rpc_key_type t, uint32_t bits);
/* A slot's mechanisms: the digests, then every mechanism a key of the token can use. Writes at most
 * max of them to out (out may be NULL with max 0) and returns how many there are. */
size_t p11_mech_list(const struct p11_mech_keys *k, CK_MECHANISM_TYPE *out, size_t max);
/* p11_mech_info() for one slot: CKR_MECHANISM_INVALID for a mechanism none of its keys can use, key
 * sizes from its keys. */
CK_RV p11_mech_info_keys(const struct p11_mech_keys *k, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO *ret);

/* The hash of a digest mechanism (CKM_SHA_1, CKM_SHA224 .. CKM_SHA512), RPC_HASH_NONE for others. */
enum rpc_hash p11_digest_mech_hash(CK_MECHANISM_TYPE type);
/* Mechanisms usable with a key type for sign (CKF_SIGN) or decrypt (CKF_DECRYPT); returns the count. */
size_t p11_mech_for_key(enum rpc_key_type t, CK_FLAGS op, CK_MECHANISM_TYPE *out, size_t max);

/* The wire mechanism for an operation (CKF_SIGN or CKF_DECRYPT). */
enum rpc_mech p11_mech_wire(const struct p11_mech *m, CK_FLAGS op);

/* Validates pMechanism's parameters against the mechanism, the operation and the key size in bytes.
 * CKR_OK, CKR_MECHANISM_PARAM_INVALID, CKR_ARGUMENTS_BAD. */
CK_RV p11_mech_params_check(const struct p11_mech *m, const CK_MECHANISM *mech, CK_FLAGS op,
                            size_t key_bytes, struct p11_mech_params *ret);

/* Length check of what a raw mechanism signs: CKR_OK or CKR_DATA_LEN_RANGE. */
CK_RV p11_mech_check_input(const struct p11_mech *m, const struct p11_mech_params *p, size_t key_bytes,
                           size_t len);

const EVP_MD *p11_hash_md(enum rpc_hash h);
size_t p11_hash_len(enum rpc_hash h);
enum rpc_hash p11_hash_from_ckm(CK_MECHANISM_TYPE ckm);
enum rpc_hash p11_hash_from_mgf(CK_RSA_PKCS_MGF_TYPE mgf);

/* DER DigestInfo { AlgorithmIdentifier(hash, NULL), OCTET STRING digest }. -EINVAL if the digest
 * length does not match the hash, -ENOBUFS if out is too small. Returns the length. */
_must_check_ int p11_digestinfo_build(enum rpc_hash h, const uint8_t *digest, size_t len, uint8_t *out,
                                      size_t size);
