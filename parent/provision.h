/* Reading a PEM private key + certificate chain and sending them with TOKEN_ADD: shared by the CLI and the
 * agent. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/cleanup.h"
#include "common/rpc-client.h"
#include "common/secret.h"

#define PROVISION_PIN_FILE_MAX   4096
#define PROVISION_KEY_FILE_MAX   (1024 * 1024)
#define PROVISION_CHAIN_FILE_MAX (4 * 1024 * 1024)

/* What a loaded key + chain looks like, for messages. */
struct provision_key_summary {
        char type[32]; /* "RSA 2048", "EC P-256", "Ed25519" */
        size_t n_certs;
        uint64_t not_after; /* the leaf's notAfter, Unix seconds; 0 if it cannot be read */
};

/* Library code: nothing here logs. A failure returns a negative errno and, when ret_error is not
 * NULL, a malloc'ed one-line message naming the file and what is wrong (NULL if out of memory). */

/* Reads a whole regular file of 1..max bytes into a secret_buf. what names it in messages ("PIN"). */
_must_check_ int provision_read_file(const char *path, size_t max, const char *what, struct secret_buf **ret,
                                     char **ret_error);

/* Parses the PEM private key in key_path (PKCS#8, PKCS#1 or SEC1, unencrypted) and the PEM
 * certificates in chain_path (leaf first), checks the key type is one enclave-token serves and
 * that it matches the leaf, and returns the key re-encoded as PKCS#8 PEM in a secret_buf and the
 * certificates re-encoded as a clean PEM chain (nothing but certificates, NUL-terminated).
 * Errors: -ENOENT/-EACCES/… from open(), -EINVAL (not a regular file), -ENODATA (empty), -EFBIG,
 * -EBADMSG (no or bad PEM), -EOPNOTSUPP (key type), -E2BIG (too many certificates),
 * -EKEYREJECTED (key does not match the leaf), -ENOMEM. */
_must_check_ int provision_load_key_and_chain(const char *key_path, const char *chain_path,
                                              struct secret_buf **ret_key, char **ret_chain,
                                              size_t *ret_chain_len,
                                              struct provision_key_summary *ret_summary, char **ret_error);

/* The certificate chain alone (an encrypted key's: the parent cannot check the key against it, the enclave
 * does). Same checks and encoding as provision_load_key_and_chain(); the summary's type is empty. */
_must_check_ int provision_load_chain(const char *chain_path, char **ret_chain, size_t *ret_chain_len,
                                      struct provision_key_summary *ret_summary, char **ret_error);

/* One key of a TOKEN_ADD: either key_pem (plaintext, --dev only) or ciphertext (a KMS CiphertextBlob the
 * enclave decrypts in the connection's KMS round). */
struct provision_key {
        uint32_t id;
        const char *label; /* key label (PKCS#11 object=) */
        const struct secret_buf *key_pem;
        const char *chain;
        size_t chain_len;
        const uint8_t *ciphertext;
        size_t ciphertext_len;
};

enum provision_step {
        PROVISION_STEP_ENCODE, /* the request did not fit (key and chain too large) */
        PROVISION_STEP_CALL,   /* transport error or the daemon's status: see rpc_client_call() */
        PROVISION_STEP_DECODE, /* the answer could not be decoded */
        _PROVISION_STEP_MAX,
        _PROVISION_STEP_INVALID = -EINVAL,
};

/* TOKEN_ADD label/pin with keys[0..n_keys) (1..RPC_MAX_KEYS); replace: replace the token with this
 * label in its slot (the PIN must match); hold: keep the replaced version until TOKEN_RELEASE; ttl:
 * seconds until the token expires unless refreshed (0: the enclave's default; sent only when not 0,
 * which needs protocol version 3). 0, *ret_slot, *ret_held (may be NULL: the versions of the label the
 * enclave holds) and *ret_expires (may be NULL; Unix seconds, 0: never), or a negative errno with
 * *ret_step (may be NULL) saying which step failed. */
_must_check_ int provision_token_add(struct rpc_client *c, const char *label, const struct secret_buf *pin,
                                     bool replace, bool hold, uint32_t ttl, const struct provision_key *keys,
                                     size_t n_keys, uint32_t *ret_slot, uint32_t *ret_held,
                                     uint64_t *ret_expires, enum provision_step *ret_step);

/* ---- The KMS key path (protocol version 3): parent/provision-kms.c ---- */

#define PROVISION_NONCE_LEN 32 /* the agent's ATTEST nonce */

/* A KMS CiphertextBlob file: raw binary, or its base64 text (what ACM's encryptedPrivateKey holds;
 * lines may be broken with \n or \r\n, nothing else; padding exact). 1..RPC_CIPHERTEXT_MAX bytes once
 * decoded. Not a secret (only the enclave can open it). *ret malloc'ed; errors as above. */
_must_check_ int provision_read_ciphertext(const char *path, uint8_t **ret, size_t *ret_len,
                                           char **ret_error);
/* The decoding rule alone, pure: 1 and the decoded bytes when data is base64 text, 0 when it is raw (not
 * all base64 characters), -EBADMSG when it looks like base64 but is not valid, -ENOMEM. */
_must_check_ int provision_ciphertext_decode(const uint8_t *data, size_t len, uint8_t **ret,
                                             size_t *ret_len);

/* ATTEST {nonce}: a fresh attestation document (copied into *ret_doc, malloc'ed). */
_must_check_ int provision_attest(struct rpc_client *c, const uint8_t *nonce, size_t nonce_len,
                                  uint8_t **ret_doc, size_t *ret_len);

/* What KMS_BEGIN hands the enclave. The secret parts stay in secret_bufs; the request frame that
 * carries them is wiped once sent (the call table marks it secret). */
struct provision_kms_creds {
        const char *region;
        const char *access_key_id;
        const struct secret_buf *secret_access_key;
        const struct secret_buf *session_token; /* NULL: long-term credentials */
};

/* KMS_BEGIN with the parent's clock (Unix ms). 0 and the answer (may be NULL), or a negative errno. */
_must_check_ int provision_kms_begin(struct rpc_client *c, const struct provision_kms_creds *creds,
                                     uint64_t time_ms, struct rpc_kms_begin_resp *ret_resp);
_must_check_ int provision_kms_end(struct rpc_client *c);

/* One key of a TOKEN_REFRESH. */
struct provision_refresh_key {
        uint32_t id;
        const uint8_t *ciphertext;
        size_t ciphertext_len;
};

/* TOKEN_REFRESH in the connection's KMS round; *ret_expires (may be NULL) is the new expiry. */
_must_check_ int provision_token_refresh(struct rpc_client *c, const char *label,
                                         const struct secret_buf *pin, uint32_t ttl,
                                         const struct provision_refresh_key *keys, size_t n_keys,
                                         uint64_t *ret_expires);
