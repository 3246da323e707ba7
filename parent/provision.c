/* Reading a PEM private key + certificate chain and sending them with TOKEN_ADD: shared by the CLI and the
 * agent. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "common/errmsg.h"
#include "common/cleanup-ssl.h"
#include "parent/provision.h"
#include "common/rpc-codec.h"

static void sk_X509_pop_free_all(STACK_OF(X509) * sk) {
        sk_X509_pop_free(sk, X509_free);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(STACK_OF(X509) *, sk_X509_pop_free_all);

int provision_read_file(const char *path, size_t max, const char *what, struct secret_buf **ret,
                        char **ret_error) {
        _cleanup_secret_ struct secret_buf *s = NULL;
        _cleanup_close_ int fd = -1;
        struct stat st;
        int r;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                r = negative_errno();
                return errmsg_set(ret_error, r, "Cannot open %s file '%s': %s", what, path, strerror(-r));
        }
        if (fstat(fd, &st) < 0) {
                r = negative_errno();
                return errmsg_set(ret_error, r, "Cannot stat %s file '%s': %s", what, path, strerror(-r));
        }
        if (!S_ISREG(st.st_mode))
                return errmsg_set(ret_error, -EINVAL, "The %s file '%s' is not a regular file", what, path);
        if (st.st_size == 0)
                return errmsg_set(ret_error, -ENODATA, "The %s file '%s' is empty", what, path);
        if ((uint64_t) st.st_size > max)
                return errmsg_set(ret_error, -EFBIG,
                                  "The %s file '%s' is too large (%jd bytes, at most %zu)", what, path,
                                  (intmax_t) st.st_size, max);

        r = secret_buf_new((size_t) st.st_size + 1, &s);
        if (r < 0)
                return errmsg_set(ret_error, r, "Cannot allocate memory for '%s'", path);
        while (s->len < s->cap) {
                ssize_t n = read(fd, s->data + s->len, s->cap - s->len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        r = negative_errno();
                        return errmsg_set(ret_error, r, "Cannot read %s file '%s': %s", what, path,
                                          strerror(-r));
                }
                if (n == 0)
                        break;
                s->len += (size_t) n;
        }
        if (s->len == s->cap)
                return errmsg_set(ret_error, -EFBIG, "The %s file '%s' grew while it was read", what, path);
        *ret = TAKE_PTR(s);
        return 0;
}

static bool has_pem(const struct secret_buf *s) {
        return memmem(s->data, s->len, "-----BEGIN ", 11) != NULL;
}

/* Never prompts: an encrypted key is an error, not a question on the terminal. */
static int no_password_cb(char *buf, int size, int rwflag, void *u) {
        return -1;
}

static int describe_key(EVP_PKEY *pkey, const char *path, struct provision_key_summary *sum,
                        char **ret_error) {
        int bits = EVP_PKEY_get_bits(pkey);
        char group[64] = "";
        size_t glen = 0;

        switch (EVP_PKEY_get_base_id(pkey)) {
        case EVP_PKEY_RSA:
                if (bits < 2048 || bits > 4096)
                        return errmsg_set(ret_error, -EOPNOTSUPP,
                                          "RSA key in '%s' has %d bits; enclave-token takes 2048 to 4096",
                                          path, bits);
                (void) snprintf(sum->type, sizeof(sum->type), "RSA %d", bits);
                return 0;
        case EVP_PKEY_EC:
                if (EVP_PKEY_get_utf8_string_param(pkey, "group", group, sizeof(group), &glen) <= 0)
                        return errmsg_set(ret_error, -EOPNOTSUPP, "EC key in '%s' has no named curve", path);
                if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0)
                        (void) snprintf(sum->type, sizeof(sum->type), "EC P-256");
                else if (strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0)
                        (void) snprintf(sum->type, sizeof(sum->type), "EC P-384");
                else if (strcmp(group, "secp521r1") == 0 || strcmp(group, "P-521") == 0)
                        (void) snprintf(sum->type, sizeof(sum->type), "EC P-521");
                else
                        return errmsg_set(ret_error, -EOPNOTSUPP,
                                          "EC key in '%s' is on curve '%s'; enclave-token takes P-256, "
                                          "P-384 and P-521",
                                          path, group);
                return 0;
        case EVP_PKEY_ED25519: (void) snprintf(sum->type, sizeof(sum->type), "Ed25519"); return 0;
        default:
                return errmsg_set(ret_error, -EOPNOTSUPP,
                                  "Key in '%s' is of type '%s'; enclave-token takes RSA, EC and Ed25519",
                                  path, OBJ_nid2sn(EVP_PKEY_get_base_id(pkey)));
        }
}

static int load_private_key(const char *path, EVP_PKEY **ret_pkey, struct secret_buf **ret_pem,
                            char **ret_error) {
        _cleanup_secret_ struct secret_buf *file = NULL, *pem = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pkey = NULL;
        _cleanup_(BIO_free_allp) BIO *in = NULL, *out = NULL;
        char *p;
        long n;
        int r;

        r = provision_read_file(path, PROVISION_KEY_FILE_MAX, "private key", &file, ret_error);
        if (r < 0)
                return r;
        if (!has_pem(file))
                return errmsg_set(ret_error, -EBADMSG,
                                  "The private key file '%s' contains no PEM data (expected "
                                  "'-----BEGIN PRIVATE KEY-----')",
                                  path);
        in = BIO_new_mem_buf(file->data, (int) file->len);
        if (!in)
                return errmsg_set(ret_error, -ENOMEM, "Out of memory");
        ERR_set_mark();
        pkey = PEM_read_bio_PrivateKey(in, NULL, no_password_cb, NULL);
        ERR_pop_to_mark();
        if (!pkey)
                return errmsg_set(
                        ret_error, -EBADMSG,
                        "The private key file '%s' holds no usable private key (it must be an unencrypted "
                        "PEM private key: PKCS#8, PKCS#1 or SEC1)",
                        path);

        /* Re-encode as PKCS#8 in memory that OpenSSL wipes on free, then into our secret_buf. */
        out = BIO_new(BIO_s_secmem());
        if (!out || PEM_write_bio_PKCS8PrivateKey(out, pkey, NULL, NULL, 0, NULL, NULL) <= 0)
                return errmsg_set(ret_error, -ENOMEM, "Cannot re-encode the private key from '%s'", path);
        n = BIO_get_mem_data(out, &p);
        if (n <= 0 || (size_t) n > RPC_KEY_PEM_MAX)
                return errmsg_set(ret_error, -EFBIG,
                                  "Private key from '%s' is too large (%ld bytes PEM, at most %d)", path, n,
                                  RPC_KEY_PEM_MAX);
        r = secret_buf_dup(p, (size_t) n, &pem);
        if (r < 0)
                return errmsg_set(ret_error, r, "Cannot store the private key from '%s'", path);
        *ret_pkey = TAKE_PTR(pkey);
        *ret_pem = TAKE_PTR(pem);
        return 0;
}

static int load_chain(const char *path, STACK_OF(X509) * *ret, char **ret_error) {
        _cleanup_secret_ struct secret_buf *file = NULL;
        _cleanup_(sk_X509_pop_free_allp) STACK_OF(X509) *certs = NULL;
        _cleanup_(BIO_free_allp) BIO *in = NULL;
        int r;

        r = provision_read_file(path, PROVISION_CHAIN_FILE_MAX, "certificate", &file, ret_error);
        if (r < 0)
                return r;
        if (!has_pem(file))
                return errmsg_set(ret_error, -EBADMSG,
                                  "The certificate file '%s' contains no PEM data (expected "
                                  "'-----BEGIN CERTIFICATE-----')",
                                  path);
        in = BIO_new_mem_buf(file->data, (int) file->len);
        certs = sk_X509_new_null();
        if (!in || !certs)
                return errmsg_set(ret_error, -ENOMEM, "Out of memory");
        for (;;) {
                X509 *x;

                ERR_set_mark();
                x = PEM_read_bio_X509(in, NULL, no_password_cb, NULL);
                if (!x) {
                        unsigned long e = ERR_peek_last_error();
                        bool at_end =
                                ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE;
                        ERR_pop_to_mark();
                        if (at_end)
                                break;
                        return errmsg_set(ret_error, -EBADMSG, "Certificate %d in '%s' cannot be parsed",
                                          sk_X509_num(certs) + 1, path);
                }
                ERR_pop_to_mark();
                if (sk_X509_num(certs) >= RPC_MAX_CERTS || sk_X509_push(certs, x) <= 0) {
                        X509_free(x);
                        return errmsg_set(ret_error, -E2BIG,
                                          "The certificate file '%s' holds more than %d certificates", path,
                                          RPC_MAX_CERTS);
                }
        }
        if (sk_X509_num(certs) == 0)
                return errmsg_set(ret_error, -EBADMSG, "The certificate file '%s' holds no PEM certificate",
                                  path);
        *ret = TAKE_PTR(certs);
        return 0;
}

static int encode_chain(STACK_OF(X509) * certs, const char *path, char **ret, size_t *ret_len,
                        char **ret_error) {
        _cleanup_(BIO_free_allp) BIO *out = NULL;
        _cleanup_free_ char *copy = NULL;
        char *p;
        long n;

        out = BIO_new(BIO_s_mem());
        if (!out)
                return errmsg_set(ret_error, -ENOMEM, "Out of memory");
        for (int i = 0; i < sk_X509_num(certs); i++) {
                X509 *x = sk_X509_value(certs, i);
                int der_len = i2d_X509(x, NULL);
                if (der_len <= 0 || der_len > RPC_CERT_MAX)
                        return errmsg_set(ret_error, -EFBIG,
                                          "Certificate %d in '%s' is too large (%d bytes DER, at most %d)",
                                          i + 1, path, der_len, RPC_CERT_MAX);
                if (PEM_write_bio_X509(out, x) <= 0)
                        return errmsg_set(ret_error, -ENOMEM, "Cannot re-encode certificate %d from '%s'",
                                          i + 1, path);
        }
        n = BIO_get_mem_data(out, &p);
        if (n <= 0 || n > RPC_CHAIN_PEM_MAX)
                return errmsg_set(ret_error, -EFBIG,
                                  "Certificate chain in '%s' is too large (%ld bytes PEM, at most %d)", path,
                                  n, RPC_CHAIN_PEM_MAX);
        copy = malloc((size_t) n + 1);
        if (!copy)
                return errmsg_set(ret_error, -ENOMEM, "Out of memory");
        memcpy(copy, p, (size_t) n);
        copy[n] = 0;
        *ret_len = (size_t) n;
        *ret = TAKE_PTR(copy);
        return 0;
}

static uint64_t leaf_not_after(const X509 *leaf) {
        struct tm tm = {};
        time_t t;

        if (ASN1_TIME_to_tm(X509_get0_notAfter(leaf), &tm) != 1)
                return 0;
        t = timegm(&tm);
        return t > 0 ? (uint64_t) t : 0;
}

int provision_load_key_and_chain(const char *key_path, const char *chain_path, struct secret_buf **ret_key,
                                 char **ret_chain, size_t *ret_chain_len,
                                 struct provision_key_summary *ret_summary, char **ret_error) {
        _cleanup_secret_ struct secret_buf *key_pem = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pkey = NULL;
        _cleanup_(sk_X509_pop_free_allp) STACK_OF(X509) *certs = NULL;
        _cleanup_free_ char *chain = NULL;
        struct provision_key_summary sum = {};
        size_t chain_len = 0;
        int r;

        r = load_private_key(key_path, &pkey, &key_pem, ret_error);
        if (r < 0)
                return r;
        r = describe_key(pkey, key_path, &sum, ret_error);
        if (r < 0)
                return r;
        r = load_chain(chain_path, &certs, ret_error);
        if (r < 0)
                return r;
        ERR_set_mark();
        r = X509_check_private_key(sk_X509_value(certs, 0), pkey);
        ERR_pop_to_mark();
        if (r != 1)
                return errmsg_set(
                        ret_error, -EKEYREJECTED,
                        "The private key in '%s' does not match the first certificate in '%s' (the leaf "
                        "must come first)",
                        key_path, chain_path);
        r = encode_chain(certs, chain_path, &chain, &chain_len, ret_error);
        if (r < 0)
                return r;
        sum.n_certs = (size_t) sk_X509_num(certs);
        sum.not_after = leaf_not_after(sk_X509_value(certs, 0));

        *ret_key = TAKE_PTR(key_pem);
        *ret_chain = TAKE_PTR(chain);
        *ret_chain_len = chain_len;
        *ret_summary = sum;
        return 0;
}

int provision_load_chain(const char *chain_path, char **ret_chain, size_t *ret_chain_len,
                         struct provision_key_summary *ret_summary, char **ret_error) {
        _cleanup_(sk_X509_pop_free_allp) STACK_OF(X509) *certs = NULL;
        _cleanup_free_ char *chain = NULL;
        struct provision_key_summary sum = {};
        size_t chain_len = 0;
        int r;

        r = load_chain(chain_path, &certs, ret_error);
        if (r < 0)
                return r;
        r = encode_chain(certs, chain_path, &chain, &chain_len, ret_error);
        if (r < 0)
                return r;
        sum.n_certs = (size_t) sk_X509_num(certs);
        sum.not_after = leaf_not_after(sk_X509_value(certs, 0));
        *ret_chain = TAKE_PTR(chain);
        *ret_chain_len = chain_len;
        *ret_summary = sum;
        return 0;
}

/* Which step an error of rpc_client_call_msg() comes from (see its return values). */
static enum provision_step call_step(struct rpc_client *c, int r) {
        if (r == -EINVAL || r == -EMSGSIZE)
                return PROVISION_STEP_ENCODE;
        if (r == -EPROTO && !rpc_client_is_broken(c))
                return PROVISION_STEP_DECODE;
        return PROVISION_STEP_CALL;
}

static int token_add(struct rpc_client *c, const struct rpc_token_add_req *req, uint32_t *ret_slot,
                     uint32_t *ret_held, uint64_t *ret_expires, enum provision_step *step) {
        struct rpc_token_add_resp resp = {};
        int r;

        r = rpc_client_call_msg(c, RPC_CALL_TOKEN_ADD, req, &resp);
        if (r < 0) {
                *step = call_step(c, r);
                return r;
        }
        *ret_slot = resp.slot;
        if (ret_held)
                *ret_held = resp.held;
        if (ret_expires)
                *ret_expires = resp.expires;
        return 0;
}

int provision_token_add(struct rpc_client *c, const char *label, const struct secret_buf *pin, bool replace,
                        bool hold, uint32_t ttl, const struct provision_key *keys, size_t n_keys,
                        uint32_t *ret_slot, uint32_t *ret_held, uint64_t *ret_expires,
                        enum provision_step *ret_step) {
        struct rpc_token_add_req req = {
                .label = { (const uint8_t *) label, strlen(label) },
                .pin = { pin->data, pin->len },
                .replace = replace,
                .n_keys = n_keys,
                .hold = hold,
                .ttl = ttl,
        };
        enum provision_step step = PROVISION_STEP_ENCODE;
        int r;

        if (n_keys == 0 || n_keys > RPC_MAX_KEYS)
                r = -EINVAL;
        else {
                for (size_t i = 0; i < n_keys; i++)
                        req.keys[i] = (struct rpc_add_key){
                                .id = keys[i].id,
                                .label = { (const uint8_t *) keys[i].label, strlen(keys[i].label) },
                                .key_pem = { keys[i].key_pem ? keys[i].key_pem->data : NULL,
                                             keys[i].key_pem ? keys[i].key_pem->len : 0 },
                                .chain_pem = { (const uint8_t *) keys[i].chain, keys[i].chain_len },
                                .ciphertext = { keys[i].ciphertext, keys[i].ciphertext_len },
                        };
                r = token_add(c, &req, ret_slot, ret_held, ret_expires, &step);
        }
        if (r < 0 && ret_step)
                *ret_step = step;
        return r;
}
