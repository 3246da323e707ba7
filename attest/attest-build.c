/* Building attestation documents (payload, COSE_Sign1 ES384) and an in-memory test CA. */
#include <errno.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "attest/attest-build.h"
#include "attest/attest-internal.h"
#include "common/cbor-write.h"
#include "common/cleanup-ssl.h"

/* One raw byte (heads the writer has no call for: null, tag 18). */
static void put_raw(struct rpc_writer *w, uint8_t byte) {
        if (w->err)
                return;
        if (w->len >= w->size) {
                rpc_writer_fail(w, -EMSGSIZE);
                return;
        }
        w->buf[w->len++] = byte;
}

static void put_key(struct rpc_writer *w, const char *key) {
        rpc_put_text(w, key, strlen(key));
}

static void put_opt(struct rpc_writer *w, const char *key, const struct attest_opt *o) {
        switch (o->kind) {
        case ATTEST_OPT_ABSENT: return;
        case ATTEST_OPT_NULL:
                put_key(w, key);
                put_raw(w, 0xf6);
                return;
        case ATTEST_OPT_BYTES:
                put_key(w, key);
                rpc_put_bytes(w, o->len ? o->ptr : (const uint8_t *) "", o->len);
                return;
        default: rpc_writer_fail(w, -EINVAL);
        }
}

static size_t payload_size_bound(const struct attest_build *b) {
        size_t n = 256 + strlen(b->module_id) + b->certificate.len + b->public_key.len + b->user_data.len +
                   b->nonce.len;

        for (size_t i = 0; i < b->n_pcrs; i++)
                n += 16 + b->pcrs[i].len;
        for (size_t i = 0; i < b->n_cabundle; i++)
                n += 16 + b->cabundle[i].len;
        return n;
}

int attest_payload_encode(const struct attest_build *b, uint8_t **ret, size_t *ret_len) {
        _cleanup_free_ uint8_t *buf = NULL;
        struct rpc_writer w;
        size_t size, n = 6;
        int r;

        if (!b || !b->module_id || (b->n_pcrs && !b->pcrs) || (b->n_cabundle && !b->cabundle))
                return -EINVAL;
        n += b->public_key.kind != ATTEST_OPT_ABSENT;
        n += b->user_data.kind != ATTEST_OPT_ABSENT;
        n += b->nonce.kind != ATTEST_OPT_ABSENT;
        size = payload_size_bound(b);
        buf = malloc(size);
        if (!buf)
                return -ENOMEM;
        rpc_writer_init(&w, buf, size);
        rpc_put_map(&w, n);
        put_key(&w, "module_id");
        rpc_put_text(&w, b->module_id, strlen(b->module_id));
        put_key(&w, "digest");
        rpc_put_text(&w, "SHA384", 6);
        put_key(&w, "timestamp");
        rpc_put_uint(&w, b->timestamp_ms);
        put_key(&w, "pcrs");
        rpc_put_map(&w, b->n_pcrs);
        for (size_t i = 0; i < b->n_pcrs; i++) {
                rpc_put_uint(&w, b->pcrs[i].index);
                rpc_put_bytes(&w, b->pcrs[i].ptr, b->pcrs[i].len);
        }
        put_key(&w, "certificate");
        rpc_put_bytes(&w, b->certificate.ptr, b->certificate.len);
        put_key(&w, "cabundle");
        rpc_put_array(&w, b->n_cabundle);
        for (size_t i = 0; i < b->n_cabundle; i++)
                rpc_put_bytes(&w, b->cabundle[i].ptr, b->cabundle[i].len);
        put_opt(&w, "public_key", &b->public_key);
        put_opt(&w, "user_data", &b->user_data);
        put_opt(&w, "nonce", &b->nonce);
        r = rpc_writer_finish(&w);
        if (r < 0)
                return r;
        *ret_len = w.len;
        *ret = TAKE_PTR(buf);
        return 0;
}

/* ES384 over tbs as raw r || s (96 bytes). */
static int sign_es384(EVP_PKEY *key, const uint8_t *tbs, size_t tbs_len, uint8_t sig[static 96]) {
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *md = NULL;
        _cleanup_(ECDSA_SIG_freep) ECDSA_SIG *es = NULL;
        uint8_t der[160];
        const uint8_t *p = der;
        size_t der_len = sizeof(der);

        if (!attest_key_is_p384(key))
                return -EINVAL;
        md = EVP_MD_CTX_new();
        if (!md || EVP_DigestSignInit(md, NULL, EVP_sha384(), NULL, key) != 1 ||
            EVP_DigestSign(md, der, &der_len, tbs, tbs_len) != 1) {
                ERR_clear_error();
                return -EIO;
        }
        es = d2i_ECDSA_SIG(NULL, &p, (long) der_len);
        if (!es || BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, 48) != 48 ||
            BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + 48, 48) != 48) {
                ERR_clear_error();
                return -EIO;
        }
        return 0;
}

int attest_cose_sign1(struct attest_blob protected_hdr, struct attest_blob payload, bool untagged,
                      EVP_PKEY *key, uint8_t **ret, size_t *ret_len) {
        _cleanup_free_ uint8_t *tbs = NULL, *buf = NULL;
        uint8_t sig[96];
        struct rpc_writer w;
        size_t tbs_len, size;
        int r;

        r = attest_sig_structure(protected_hdr, payload, &tbs, &tbs_len);
        if (r < 0)
                return r;
        r = sign_es384(key, tbs, tbs_len, sig);
        if (r < 0)
                return r;
        size = protected_hdr.len + payload.len + sizeof(sig) + 32;
        buf = malloc(size);
        if (!buf)
                return -ENOMEM;
        rpc_writer_init(&w, buf, size);
        if (!untagged)
                put_raw(&w, 0xd2); /* tag 18 */
        rpc_put_array(&w, 4);
        rpc_put_bytes(&w, protected_hdr.ptr, protected_hdr.len);
        rpc_put_map(&w, 0);
        rpc_put_bytes(&w, payload.ptr, payload.len);
        rpc_put_bytes(&w, sig, sizeof(sig));
        r = rpc_writer_finish(&w);
        if (r < 0)
                return r;
        *ret_len = w.len;
        *ret = TAKE_PTR(buf);
        return 0;
}

int attest_doc_sign(const struct attest_build *b, EVP_PKEY *leaf_key, uint8_t **ret, size_t *ret_len) {
        static const uint8_t es384[] = { 0xa1, 0x01, 0x38, 0x22 }; /* {1: -35} */
        _cleanup_free_ uint8_t *payload = NULL;
        size_t payload_len;
        int r;

        r = attest_payload_encode(b, &payload, &payload_len);
        if (r < 0)
                return r;
        return attest_cose_sign1((struct attest_blob){ es384, sizeof(es384) },
                                 (struct attest_blob){ payload, payload_len }, b->untagged, leaf_key, ret,
                                 ret_len);
}

/* ---- the test CA ---- */

static int add_ext(X509 *x, X509 *issuer, int nid, const char *value) {
        X509V3_CTX v3;
        X509_EXTENSION *ext;
        int ok;

        X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
        ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
        if (!ext)
                return -EINVAL;
        ok = X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
        return ok == 1 ? 0 : -ENOMEM;
}

struct cert_spec {
        const char *cn;
        long serial;
        const char *bc, *ku;
        time_t not_before, not_after;
};

/* A certificate for key signed by issuer_key (issuer NULL: self-signed), DER in *ret. */
static int make_cert(const struct cert_spec *s, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key,
                     X509 **ret_x, uint8_t **ret, size_t *ret_len) {
        _cleanup_(X509_freep) X509 *x = NULL;
        X509_NAME *name;
        uint8_t *der = NULL;
        int n;

        x = X509_new();
        if (!x || X509_set_version(x, X509_VERSION_3) != 1 ||
            ASN1_INTEGER_set(X509_get_serialNumber(x), s->serial) != 1 ||
            !ASN1_TIME_set(X509_getm_notBefore(x), s->not_before) ||
            !ASN1_TIME_set(X509_getm_notAfter(x), s->not_after) || X509_set_pubkey(x, key) != 1)
                return -ENOMEM;
        name = X509_get_subject_name(x);
        if (X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const uint8_t *) "enclave-acm test", -1, -1,
                                       0) != 1 ||
            X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const uint8_t *) s->cn, -1, -1, 0) != 1 ||
            X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name) != 1)
                return -ENOMEM;
        if (add_ext(x, issuer ?: x, NID_basic_constraints, s->bc) < 0 ||
            add_ext(x, issuer ?: x, NID_key_usage, s->ku) < 0 ||
            add_ext(x, issuer ?: x, NID_subject_key_identifier, "hash") < 0 ||
            add_ext(x, issuer ?: x, NID_authority_key_identifier, "keyid:always") < 0)
                return -EINVAL;
        if (X509_sign(x, issuer_key, EVP_sha384()) <= 0)
                return -EIO;
        n = i2d_X509(x, &der);
        if (n <= 0)
                return -ENOMEM;
        *ret = der;
        *ret_len = (size_t) n;
        if (ret_x)
                *ret_x = TAKE_PTR(x);
        return 0;
}

struct attest_test_ca *attest_test_ca_free(struct attest_test_ca *ca) {
        if (!ca)
                return NULL;
        OPENSSL_free(ca->root_der);
        OPENSSL_free(ca->inter_der);
        OPENSSL_free(ca->leaf_der);
        EVP_PKEY_free(ca->leaf_key);
        EVP_PKEY_free(ca->inter_key);
        EVP_PKEY_free(ca->root_key);
        free(ca);
        return NULL;
}

int attest_test_ca_new(time_t not_before, time_t not_after, struct attest_test_ca **ret) {
        _cleanup_(attest_test_ca_freep) struct attest_test_ca *ca = NULL;
        _cleanup_(X509_freep) X509 *root = NULL, *inter = NULL;
        const struct cert_spec root_spec = { "enclave-acm test root (not AWS)",
                                             1,
                                             "critical,CA:TRUE",
                                             "critical,digitalSignature,keyCertSign,cRLSign",
                                             not_before,
                                             not_after };
        const struct cert_spec inter_spec = { "enclave-acm test intermediate",
                                              2,
                                              "critical,CA:TRUE,pathlen:0",
                                              "critical,digitalSignature,keyCertSign,cRLSign",
                                              not_before,
                                              not_after };
        const struct cert_spec leaf_spec = { "i-00000000000000000-enc0000000000000000.test",
                                             3,
                                             "critical,CA:FALSE",
                                             "digitalSignature,nonRepudiation",
                                             not_before,
                                             not_after };
        int r;

        if (not_after <= not_before)
                return -EINVAL;
        ca = calloc(1, sizeof(*ca));
        if (!ca)
                return -ENOMEM;
        ca->root_key = EVP_EC_gen("P-384");
        ca->inter_key = EVP_EC_gen("P-384");
        ca->leaf_key = EVP_EC_gen("P-384");
        if (!ca->root_key || !ca->inter_key || !ca->leaf_key) {
                ERR_clear_error();
                return -ENOMEM;
        }
        if ((r = make_cert(&root_spec, ca->root_key, NULL, ca->root_key, &root, &ca->root_der,
                           &ca->root_len)) < 0 ||
            (r = make_cert(&inter_spec, ca->inter_key, root, ca->root_key, &inter, &ca->inter_der,
                           &ca->inter_len)) < 0 ||
            (r = make_cert(&leaf_spec, ca->leaf_key, inter, ca->inter_key, NULL, &ca->leaf_der,
                           &ca->leaf_len)) < 0) {
                ERR_clear_error();
                return r;
        }
        *ret = TAKE_PTR(ca);
        return 0;
}
