/* Verifying a parsed attestation document: the root pin, the certificate path at a chosen time, the
 * CA / leaf profile, the COSE ES384 signature and the PCR expectations. */
#include <errno.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "attest/attest-internal.h"
#include "attest/attest.h"
#include "common/cbor-write.h"
#include "common/cleanup-ssl.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(X509_STORE *, X509_STORE_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(X509_STORE_CTX *, X509_STORE_CTX_free);

static void x509_stack_freep(STACK_OF(X509) * *s) {
        if (*s)
                sk_X509_pop_free(*s, X509_free);
}

static int fail(struct attest_result *res, enum attest_reason reason, const char *detail) {
        static const int errnos[_ATTEST_REASON_MAX] = {
                [ATTEST_ERR_MALFORMED] = -EBADMSG,  [ATTEST_ERR_SIGNATURE] = -EKEYREJECTED,
                [ATTEST_ERR_CHAIN] = -EKEYREJECTED, [ATTEST_ERR_EXPIRED] = -EKEYEXPIRED,
                [ATTEST_ERR_ROOT] = -EKEYREJECTED,  [ATTEST_ERR_PCR] = -EPERM,
                [ATTEST_ERR_INTERNAL] = -ENOMEM,
        };

        ERR_clear_error(); /* a library leaves OpenSSL's queue as it found it */
        res->reason = reason;
        res->detail = detail;
        return errnos[reason];
}

/* DER of exactly len bytes, or NULL. */
static X509 *cert_parse(struct attest_blob b) {
        const uint8_t *p = b.ptr;
        X509 *x;

        x = d2i_X509(NULL, &p, (long) b.len);
        if (x && p != b.ptr + b.len) {
                X509_free(x);
                return NULL;
        }
        return x;
}

static int fail_der(const uint8_t *doc, struct attest_result *res, struct attest_blob b, const char *field) {
        ERR_clear_error();
        res->reason = ATTEST_ERR_MALFORMED;
        res->offset = (size_t) (b.ptr - doc);
        res->field = field;
        return -EBADMSG;
}

static bool ext_critical(X509 *x, int nid) {
        int i = X509_get_ext_by_NID(x, nid, -1);

        return i >= 0 && X509_EXTENSION_get_critical(X509_get_ext(x, i)) == 1;
}

/* NITRO-FORMATS.md 2.4: CAs have critical basicConstraints CA:TRUE and keyCertSign; the leaf is not a
 * CA and has digitalSignature. OpenSSL checked path lengths. */
static const char *profile_check(X509 *x, bool ca) {
        uint32_t flags = X509_get_extension_flags(x);
        uint32_t ku = X509_get_key_usage(x);

        if (ca) {
                if (!(flags & EXFLAG_BCONS) || !(flags & EXFLAG_CA) ||
                    !ext_critical(x, NID_basic_constraints))
                        return "CA certificate without critical basicConstraints CA:TRUE";
                if (!(flags & EXFLAG_KUSAGE) || !(ku & KU_KEY_CERT_SIGN))
                        return "CA certificate without keyUsage keyCertSign";
                return NULL;
        }
        if (flags & EXFLAG_CA)
                return "leaf certificate is a CA";
        if (!(flags & EXFLAG_KUSAGE) || !(ku & KU_DIGITAL_SIGNATURE))
                return "leaf certificate without keyUsage digitalSignature";
        return NULL;
}

static int chain_verify(const uint8_t *doc, const struct attest_doc *d, time_t t, struct attest_result *res,
                        X509 **ret_leaf) {
        _cleanup_(x509_stack_freep) STACK_OF(X509) *untrusted = NULL;
        _cleanup_(X509_STORE_CTX_freep) X509_STORE_CTX *ctx = NULL;
        _cleanup_(X509_STORE_freep) X509_STORE *store = NULL;
        _cleanup_(X509_freep) X509 *leaf = NULL, *root = NULL;
        X509_VERIFY_PARAM *param;
        const char *why;
        int err;

        leaf = cert_parse(d->certificate);
        if (!leaf)
                return fail_der(doc, res, d->certificate, "certificate (not one DER X.509 certificate)");
        root = cert_parse(d->cabundle[0]);
        if (!root)
                return fail_der(doc, res, d->cabundle[0], "cabundle (entry not one DER X.509 certificate)");
        untrusted = sk_X509_new_null();
        store = X509_STORE_new();
        ctx = X509_STORE_CTX_new();
        if (!untrusted || !store || !ctx || X509_STORE_add_cert(store, root) != 1)
                return fail(res, ATTEST_ERR_INTERNAL, "out of memory");
        for (size_t i = 1; i < d->n_cabundle; i++) {
                X509 *x = cert_parse(d->cabundle[i]);

                if (!x)
                        return fail_der(doc, res, d->cabundle[i],
                                        "cabundle (entry not one DER X.509 certificate)");
                if (!sk_X509_push(untrusted, x)) {
                        X509_free(x);
                        return fail(res, ATTEST_ERR_INTERNAL, "out of memory");
                }
        }
        if (X509_STORE_CTX_init(ctx, store, leaf, untrusted) != 1)
                return fail(res, ATTEST_ERR_INTERNAL, "X509_STORE_CTX_init failed");
        param = X509_STORE_CTX_get0_param(ctx);
        X509_VERIFY_PARAM_set_time(param, t);
        X509_VERIFY_PARAM_set_depth(param, ATTEST_CABUNDLE_MAX + 1);
        /* The root is the only anchor: a chain ending in an intermediate is not enough. */
        (void) X509_VERIFY_PARAM_clear_flags(param, X509_V_FLAG_PARTIAL_CHAIN);
        /* No X509_V_FLAG_X509_STRICT: real Nitro leaf certificates have no authorityKeyIdentifier,
         * which strict mode requires. The profile of 2.4 is checked below instead. */

        if (X509_verify_cert(ctx) != 1) {
                err = X509_STORE_CTX_get_error(ctx);
                res->x509_error = err;
                res->x509_depth = X509_STORE_CTX_get_error_depth(ctx);
                if (err == X509_V_ERR_CERT_NOT_YET_VALID || err == X509_V_ERR_CERT_HAS_EXPIRED)
                        return fail(res, ATTEST_ERR_EXPIRED, X509_verify_cert_error_string(err));
                return fail(res, ATTEST_ERR_CHAIN, X509_verify_cert_error_string(err));
        }
        /* Every cabundle entry is on the path, in order: leaf + n_cabundle certificates. */
        if ((size_t) sk_X509_num(X509_STORE_CTX_get0_chain(ctx)) != d->n_cabundle + 1)
                return fail(res, ATTEST_ERR_CHAIN, "the path does not use every cabundle entry");
        for (size_t i = 0; i < d->n_cabundle; i++) {
                X509 *x = sk_X509_value(X509_STORE_CTX_get0_chain(ctx), (int) (d->n_cabundle - i));

                why = profile_check(x, true);
                if (why) {
                        res->x509_depth = (int) (d->n_cabundle - i);
                        return fail(res, ATTEST_ERR_CHAIN, why);
                }
        }
        why = profile_check(leaf, false);
        if (why)
                return fail(res, ATTEST_ERR_CHAIN, why);
        *ret_leaf = TAKE_PTR(leaf);
        return 0;
}

int attest_sig_structure(struct attest_blob prot, struct attest_blob payload, uint8_t **ret,
                         size_t *ret_len) {
        _cleanup_free_ uint8_t *buf = NULL;
        struct rpc_writer w;
        size_t size;
        int r;

        if (prot.len > ATTEST_DOC_MAX || payload.len > ATTEST_DOC_MAX)
                return -EMSGSIZE;
        size = prot.len + payload.len + 32;
        buf = malloc(size);
        if (!buf)
                return -ENOMEM;
        rpc_writer_init(&w, buf, size);
        rpc_put_array(&w, 4);
        rpc_put_text(&w, "Signature1", strlen("Signature1"));
        rpc_put_bytes(&w, prot.ptr, prot.len);
        rpc_put_bytes(&w, "", 0); /* external_aad */
        rpc_put_bytes(&w, payload.ptr, payload.len);
        r = rpc_writer_finish(&w);
        if (r < 0)
                return r;
        *ret_len = w.len;
        *ret = TAKE_PTR(buf);
        return 0;
}

bool attest_key_is_p384(EVP_PKEY *key) {
        char group[32] = "";

        if (!key || !EVP_PKEY_is_a(key, "EC"))
                return false;
        if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), NULL) != 1)
                return false;
        return strcmp(group, "secp384r1") == 0;
}

/* 96 bytes r || s as DER ECDSA-Sig-Value. */
static int sig_to_der(struct attest_blob sig, uint8_t **ret, size_t *ret_len) {
        _cleanup_(ECDSA_SIG_freep) ECDSA_SIG *es = NULL;
        BIGNUM *r, *s;
        uint8_t *der = NULL;
        int n;

        es = ECDSA_SIG_new();
        r = BN_bin2bn(sig.ptr, 48, NULL);
        s = BN_bin2bn(sig.ptr + 48, 48, NULL);
        if (!es || !r || !s || ECDSA_SIG_set0(es, r, s) != 1) {
                BN_free(r);
                BN_free(s);
                return -ENOMEM;
        }
        n = i2d_ECDSA_SIG(es, &der);
        if (n <= 0)
                return -ENOMEM;
        *ret = der;
        *ret_len = (size_t) n;
        return 0;
}

static int signature_verify(const struct attest_doc *d, X509 *leaf, struct attest_result *res) {
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *md = NULL;
        _cleanup_free_ uint8_t *tbs = NULL;
        EVP_PKEY *key = X509_get0_pubkey(leaf);
        uint8_t *der = NULL;
        size_t tbs_len, der_len;
        int ok;

        if (!attest_key_is_p384(key))
                return fail(res, ATTEST_ERR_CHAIN, "leaf key is not EC P-384");
        if (attest_sig_structure(d->protected_hdr, d->payload, &tbs, &tbs_len) < 0 ||
            sig_to_der(d->signature, &der, &der_len) < 0)
                return fail(res, ATTEST_ERR_INTERNAL, "out of memory");
        md = EVP_MD_CTX_new();
        ok = md && EVP_DigestVerifyInit(md, NULL, EVP_sha384(), NULL, key) == 1 &&
             EVP_DigestVerify(md, der, der_len, tbs, tbs_len) == 1;
        OPENSSL_free(der);
        if (!ok)
                return fail(res, ATTEST_ERR_SIGNATURE,
                            "COSE ES384 signature does not verify with the leaf key");
        return 0;
}

static int pcrs_check(const struct attest_doc *d, const struct attest_opts *o, struct attest_result *res) {
        for (size_t i = 0; i < o->n_pcrs; i++) {
                const struct attest_pcr_expect *e = &o->pcrs[i];
                const struct attest_pcr_value *v = NULL;

                if (e->index >= ATTEST_PCR_COUNT || !e->ptr || e->len == 0)
                        return -EINVAL;
                for (size_t j = 0; j < d->n_pcrs; j++)
                        if (d->pcrs[j].index == e->index)
                                v = &d->pcrs[j];
                if (v && v->len == e->len && memcmp(v->ptr, e->ptr, e->len) == 0)
                        continue;
                res->pcr_index = e->index;
                res->pcr_expected = (struct attest_blob){ e->ptr, e->len };
                if (v)
                        res->pcr_actual = (struct attest_blob){ v->ptr, v->len };
                return fail(res, ATTEST_ERR_PCR, v ? "PCR value differs" : "PCR absent from the document");
        }
        return 0;
}

static int verify_time(const struct attest_opts *o, const struct attest_doc *d, uint64_t *ret_ms) {
        switch (o->time_mode) {
        case ATTEST_TIME_NOW: {
                time_t now = time(NULL);

                if (now < 0)
                        return -EINVAL;
                *ret_ms = (uint64_t) now * 1000;
                return 0;
        }
        case ATTEST_TIME_DOC: *ret_ms = d->timestamp_ms; return 0;
        case ATTEST_TIME_GIVEN: *ret_ms = o->time_ms; return 0;
        default: return -EINVAL;
        }
}

int attest_verify(const uint8_t *buf, size_t len, const struct attest_opts *opts,
                  struct attest_result *ret) {
        static const struct attest_opts defaults = { .time_mode = ATTEST_TIME_NOW };
        const struct attest_opts *o = opts ?: &defaults;
        const uint8_t *root = o->root_der ?: attest_aws_root_der;
        size_t root_len = o->root_der ? o->root_len : attest_aws_root_len;
        _cleanup_(X509_freep) X509 *leaf = NULL;
        const struct attest_doc *d = &ret->doc;
        uint64_t t_ms;
        int r;

        r = attest_parse(buf, len, ret);
        if (r < 0)
                return r;
        if (verify_time(o, d, &t_ms) < 0 || t_ms / 1000 > (uint64_t) INT64_MAX) {
                fail(ret, ATTEST_ERR_INTERNAL, "invalid verification time");
                return -EINVAL;
        }
        ret->verify_time_ms = t_ms;
        if (d->cabundle[0].len != root_len || memcmp(d->cabundle[0].ptr, root, root_len) != 0)
                return fail(ret, ATTEST_ERR_ROOT, "cabundle[0] is not the trusted root");
        r = chain_verify(buf, d, (time_t) (t_ms / 1000), ret, &leaf);
        if (r < 0)
                return r;
        r = signature_verify(d, leaf, ret);
        if (r < 0)
                return r;
        r = pcrs_check(d, o, ret);
        if (r == -EINVAL) {
                fail(ret, ATTEST_ERR_INTERNAL, "invalid PCR expectation");
                return -EINVAL;
        }
        return r;
}
