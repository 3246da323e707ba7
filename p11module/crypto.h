/* What C_SignInit/C_DecryptInit and C_Sign/C_Decrypt share: key checks, operation set-up, the round trip. */
#pragma once

#include "common/rpc-calls.h"
#include "p11module/sessions.h"

/* Starts a sign (CKF_SIGN) or decrypt (CKF_DECRYPT) operation on a locked session: mechanism,
 * key type, parameters and login are checked here, without a round trip. */
CK_RV p11_op_init(struct p11_session *s, CK_FLAGS op, const CK_MECHANISM *mech, CK_OBJECT_HANDLE key);

/* SIGN or DECRYPT for the operation's key, with the token's ticket; a stale ticket is renewed with
 * the cached PIN and the call repeated once. The answer goes to out, its length to *ret_len. */
CK_RV p11_op_call(const struct p11_session *s, const struct p11_op *op, enum rpc_call call,
                  const uint8_t *in, size_t in_len, uint8_t *out, size_t size, size_t *ret_len);

/* The hashing hashed mechanisms and C_Digest* do here: start (allocating *md once), add, finish. */
CK_RV p11_md_start(EVP_MD_CTX **md, enum rpc_hash h);
CK_RV p11_md_update(EVP_MD_CTX *md, const uint8_t *data, size_t len);
CK_RV p11_md_final(EVP_MD_CTX *md, uint8_t out[static EVP_MAX_MD_SIZE], size_t *ret_len);
/* Finishes a hashed mechanism's digest and shapes what is signed: a DigestInfo for PKCS#1 v1.5, the
 * digest otherwise. */
CK_RV p11_hashed_input(EVP_MD_CTX *md, const struct p11_mech *m, uint8_t buf[static P11_DIGESTINFO_MAX],
                       size_t *ret_len);
