/* Files and the TLS test CA of the fake KMS program. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/buffer.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "common/cleanup-ssl.h"
#include "tests/fakes/fake-kms-blob.h"
#include "tests/fakes/fake-kms-util.h"

static int write_all_fd(int fd, const void *data, size_t len) {
        const uint8_t *p = data;

        while (len > 0) {
                ssize_t n = write(fd, p, len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return n < 0 ? negative_errno() : -EIO;
                p += n;
                len -= (size_t) n;
        }
        return 0;
}

int fkms_write_atomic(const char *path, const void *data, size_t len, mode_t mode) {
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = -1;
        int r;

        if (asprintf(&tmp, "%s.tmp.XXXXXX", path) < 0) {
                tmp = NULL;
                return -ENOMEM;
        }
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        if (fchmod(fd, mode) < 0 || (r = write_all_fd(fd, data, len)) < 0 || fsync(fd) < 0 ||
            rename(tmp, path) < 0) {
                r = negative_errno();
                (void) unlink(tmp);
                return r;
        }
        return 0;
}

int fkms_read_file(const char *path, size_t max, char **ret, size_t *ret_len) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;

        if (fd < 0)
                return negative_errno();
        buf = malloc(max + 1);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t n = read(fd, buf + len, max + 1 - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return negative_errno();
                if (n == 0)
                        break;
                len += (size_t) n;
                if (len > max)
                        return -EFBIG;
        }
        buf[len] = '\0';
        *ret_len = len;
        *ret = TAKE_PTR(buf);
        return 0;
}

static int master_key_create(const char *path) {
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        uint8_t key[FKMS_MASTER_KEY_LEN];
        int r;

        if (fd < 0)
                return negative_errno();
        if (RAND_priv_bytes(key, sizeof(key)) <= 0) {
                (void) unlink(path);
                return -EIO;
        }
        r = write_all_fd(fd, key, sizeof(key));
        secret_wipe(key, sizeof(key));
        if (r >= 0 && fsync(fd) < 0)
                r = negative_errno();
        if (r < 0)
                (void) unlink(path);
        return r;
}

int fkms_master_key_load(const char *path, bool create, struct secret_buf **ret, bool *ret_created) {
        _cleanup_secret_ struct secret_buf *k = NULL;
        _cleanup_close_ int fd = -1;
        bool created = false;
        struct stat st;
        ssize_t n;
        int r;

        if (create) {
                r = master_key_create(path);
                if (r < 0 && r != -EEXIST)
                        return r;
                created = r >= 0;
        }
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return negative_errno();
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode) || st.st_size != FKMS_MASTER_KEY_LEN)
                return -EBADMSG;
        r = secret_buf_new(FKMS_MASTER_KEY_LEN, &k);
        if (r < 0)
                return r;
        n = read(fd, k->data, FKMS_MASTER_KEY_LEN);
        if (n != FKMS_MASTER_KEY_LEN)
                return n < 0 ? negative_errno() : -EBADMSG;
        k->len = FKMS_MASTER_KEY_LEN;
        if (ret_created)
                *ret_created = created;
        *ret = TAKE_PTR(k);
        return 0;
}

int fkms_pem_cert_der(const char *path, uint8_t **ret, size_t *ret_len) {
        _cleanup_free_ char *pem = NULL;
        _cleanup_(BIO_free_allp) BIO *b = NULL;
        _cleanup_(X509_freep) X509 *x = NULL;
        unsigned char *der = NULL;
        size_t len;
        int r, n;

        r = fkms_read_file(path, 64 * 1024, &pem, &len);
        if (r < 0)
                return r;
        b = BIO_new_mem_buf(pem, (int) len);
        if (!b)
                return -ENOMEM;
        x = PEM_read_bio_X509(b, NULL, NULL, NULL);
        if (!x)
                return -EBADMSG;
        n = i2d_X509(x, &der);
        if (n <= 0)
                return -EBADMSG;
        *ret = malloc((size_t) n);
        if (!*ret) {
                OPENSSL_free(der);
                return -ENOMEM;
        }
        memcpy(*ret, der, (size_t) n);
        OPENSSL_free(der);
        *ret_len = (size_t) n;
        return 0;
}

/* ---- TLS identity ----------------------------------------------------------------------------- */

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value) {
        X509V3_CTX ctx;
        X509_EXTENSION *ext;
        int ok;

        X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
        ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
        if (!ext)
                return -EINVAL;
        ok = X509_add_ext(cert, ext, -1);
        X509_EXTENSION_free(ext);
        return ok ? 0 : -ENOMEM;
}

static X509 *cert_new(EVP_PKEY *key, const char *cn, X509 *issuer, long serial) {
        _cleanup_(X509_freep) X509 *c = X509_new();
        X509_NAME *name;

        if (!c)
                return NULL;
        name = X509_get_subject_name(c);
        if (!X509_set_version(c, 2) || !ASN1_INTEGER_set(X509_get_serialNumber(c), serial) ||
            !X509_gmtime_adj(X509_getm_notBefore(c), -3600) ||
            !X509_gmtime_adj(X509_getm_notAfter(c), 30L * 86400) ||
            !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *) cn, -1, -1, 0) ||
            !X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer) : name) ||
            !X509_set_pubkey(c, key))
                return NULL;
        return TAKE_PTR(c);
}

int fkms_tls_identity_new(const char *const *names, struct fkms_tls_identity *ret) {
        _cleanup_(fkms_tls_identity_done) struct fkms_tls_identity t = {};
        _cleanup_free_ char *san = NULL;
        size_t san_len = 0;
        FILE *f;

        if (!names || !names[0])
                return -EINVAL;
        f = open_memstream(&san, &san_len);
        if (!f)
                return -ENOMEM;
        for (size_t i = 0; names[i]; i++)
                fprintf(f, "%sDNS:%s", i ? "," : "", names[i]);
        if (fclose(f) != 0)
                return -ENOMEM;
        t.ca_key = EVP_EC_gen("P-256");
        t.leaf_key = EVP_EC_gen("P-256");
        if (!t.ca_key || !t.leaf_key)
                return -EIO;
        t.ca = cert_new(t.ca_key, "enclave-acm fake KMS test CA", NULL, 1);
        if (!t.ca || add_ext(t.ca, t.ca, NID_basic_constraints, "critical,CA:TRUE") < 0 ||
            add_ext(t.ca, t.ca, NID_key_usage, "critical,keyCertSign,cRLSign") < 0 ||
            add_ext(t.ca, t.ca, NID_subject_key_identifier, "hash") < 0 ||
            !X509_sign(t.ca, t.ca_key, EVP_sha256()))
                return -EIO;
        t.leaf = cert_new(t.leaf_key, names[0], t.ca, 2);
        if (!t.leaf || add_ext(t.leaf, t.ca, NID_subject_alt_name, san) < 0 ||
            add_ext(t.leaf, t.ca, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
            add_ext(t.leaf, t.ca, NID_key_usage, "critical,digitalSignature") < 0 ||
            add_ext(t.leaf, t.ca, NID_ext_key_usage, "serverAuth") < 0 ||
            add_ext(t.leaf, t.ca, NID_authority_key_identifier, "keyid") < 0 ||
            !X509_sign(t.leaf, t.ca_key, EVP_sha256()))
                return -EIO;
        *ret = t;
        t = (struct fkms_tls_identity){};
        return 0;
}

void fkms_tls_identity_done(struct fkms_tls_identity *t) {
        EVP_PKEY_free(t->ca_key);
        EVP_PKEY_free(t->leaf_key);
        X509_free(t->ca);
        X509_free(t->leaf);
        *t = (struct fkms_tls_identity){};
}

int fkms_tls_ca_pem(const struct fkms_tls_identity *t, char **ret, size_t *ret_len) {
        _cleanup_(BIO_free_allp) BIO *b = BIO_new(BIO_s_mem());
        BUF_MEM *bm = NULL;

        if (!b || PEM_write_bio_X509(b, t->ca) <= 0 || BIO_get_mem_ptr(b, &bm) <= 0 || !bm)
                return -EIO;
        *ret = strndup(bm->data, bm->length);
        if (!*ret)
                return -ENOMEM;
        *ret_len = bm->length;
        return 0;
}
