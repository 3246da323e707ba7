/* Files and certificates for the fake KMS program: atomic writes, bounded reads, the TLS test CA. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "common/cleanup.h"
#include "common/secret.h"

/* Writes data to path through a temporary file in the same directory, fsync()ed and renamed. */
_must_check_ int fkms_write_atomic(const char *path, const void *data, size_t len, mode_t mode);

/* The whole file (at most max bytes, else -EFBIG), NUL-terminated, malloc()ed. */
_must_check_ int fkms_read_file(const char *path, size_t max, char **ret, size_t *ret_len);

/* The 32-byte master key: read (exactly 32 bytes, else -EBADMSG), or created 0600 with random bytes
 * when missing and create is set. *ret_created says which. */
_must_check_ int fkms_master_key_load(const char *path, bool create, struct secret_buf **ret,
                                      bool *ret_created);

/* The first certificate of a PEM file as DER (malloc()ed). */
_must_check_ int fkms_pem_cert_der(const char *path, uint8_t **ret, size_t *ret_len);

/* A P-256 test CA and a server certificate for each DNS name in names (NULL-terminated), valid from an
 * hour ago for 30 days. */
struct fkms_tls_identity {
        EVP_PKEY *ca_key, *leaf_key;
        X509 *ca, *leaf;
};
_must_check_ int fkms_tls_identity_new(const char *const *names, struct fkms_tls_identity *ret);
void fkms_tls_identity_done(struct fkms_tls_identity *t);
/* The CA as PEM (malloc()ed, NUL-terminated). */
_must_check_ int fkms_tls_ca_pem(const struct fkms_tls_identity *t, char **ret, size_t *ret_len);
