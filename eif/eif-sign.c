/* The EIF signature section: decode, PCR8, verify, build (COSE_Sign1 ES256/384/512 over PCR0). */
#include <openssl/core_names.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>

#include "common/cbor-read.h"
#include "common/cbor-write.h"
#include "common/cleanup-ssl.h"
#include "eif/eif-internal.h"
#include "eif/eif-sign.h"

#define PROTECTED_MAX 64
#define PAYLOAD_MAX   1024
#define COSE_SIG_MAX  132 /* ES512: 2 x 66 */
#define REGISTER_MAX  31

void eif_signature_done(struct eif_signature *s) {
        if (!s)
                return;
        free(s->cert_pem);
        free(s->cose);
        *s = (struct eif_signature){};
}

static int cbor_fail(const struct rpc_reader *rd, struct eif_error *err, const char *what) {
        return eif_fail(err, rd->pos, "malformed signature section", "%s", what);
}

/* An array of small unsigned integers (serde's Vec<u8>) into a new buffer. */
static int read_u8_array(struct rpc_reader *rd, size_t min, size_t max, uint8_t **ret, size_t *ret_len) {
        _cleanup_free_ uint8_t *out = NULL;
        size_t n;
        int r;

        r = rpc_get_array(rd, max, &n);
        if (r < 0)
                return r;
        if (n < min)
                return -EBADMSG;
        out = malloc(n ? n : 1);
        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                uint64_t v;

                r = rpc_get_uint(rd, 255, &v);
                if (r < 0)
                        return r;
                out[i] = (uint8_t) v;
        }
        *ret_len = n;
        *ret = TAKE_PTR(out);
        return 0;
}

static int parse_payload(struct eif_signature *s, struct eif_error *err) {
        struct rpc_reader rd;
        bool have_index = false, have_value = false;
        size_t n;
        int r;

        rpc_reader_init(&rd, s->payload.ptr, s->payload.len);
        r = rpc_get_map(&rd, 2, &n);
        if (r < 0 || n != 2)
                return eif_fail(err, rd.pos, "malformed signature payload", "expected a map of 2 entries");
        for (size_t i = 0; i < n; i++) {
                struct rpc_slice key;

                if (rpc_get_text(&rd, 1, 32, &key) < 0)
                        return eif_fail(err, rd.pos, "malformed signature payload", "expected a text key");
                if (rpc_slice_eq_str(&key, "register_index") && !have_index) {
                        if (rpc_get_uint(&rd, REGISTER_MAX, &s->register_index) < 0)
                                return eif_fail(err, rd.pos, "malformed signature payload",
                                                "register_index: expected 0..31");
                        have_index = true;
                } else if (rpc_slice_eq_str(&key, "register_value") && !have_value) {
                        _cleanup_free_ uint8_t *v = NULL;
                        size_t len;

                        r = read_u8_array(&rd, EIF_PCR_LEN, EIF_PCR_LEN, &v, &len);
                        if (r == -ENOMEM)
                                return r;
                        if (r < 0)
                                return eif_fail(err, rd.pos, "malformed signature payload",
                                                "register_value: expected 48 integers 0..255");
                        memcpy(s->register_value, v, EIF_PCR_LEN);
                        have_value = true;
                } else
                        return eif_fail(err, rd.pos, "malformed signature payload",
                                        "unknown or repeated key");
        }
        if (rpc_reader_end(&rd) < 0)
                return eif_fail(err, rd.pos, "malformed signature payload", "trailing bytes");
        return 0;
}

static int parse_protected(struct eif_signature *s, struct eif_error *err) {
        struct rpc_reader rd;
        uint64_t label;
        size_t n;

        rpc_reader_init(&rd, s->protected_hdr.ptr, s->protected_hdr.len);
        if (rpc_get_map(&rd, 1, &n) < 0 || n != 1 || rpc_get_uint(&rd, 1, &label) < 0 || label != 1 ||
            rpc_get_int(&rd, -65536, 65536, &s->alg) < 0 || rpc_reader_end(&rd) < 0)
                return eif_fail(err, rd.pos, "malformed COSE protected header", "expected exactly {1: alg}");
        if (s->alg != EIF_COSE_ES256 && s->alg != EIF_COSE_ES384 && s->alg != EIF_COSE_ES512)
                return eif_fail(err, 0, "unsupported COSE algorithm",
                                "alg %" PRId64 " (ES256, ES384, ES512 known)", s->alg);
        return 0;
}

static int parse_cose(struct eif_signature *s, struct eif_error *err) {
        struct rpc_reader rd;
        struct rpc_slice prot, payload, sig;
        enum rpc_item_type t;
        uint64_t tag;
        size_t n;
        int r;

        rpc_reader_init(&rd, s->cose, s->cose_len);
        if (rpc_peek(&rd, &t) >= 0 && t == RPC_ITEM_TAG && (rpc_get_tag(&rd, &tag) < 0 || tag != 18))
                return eif_fail(err, rd.pos, "malformed COSE_Sign1", "a tag other than 18");
        if (rpc_get_array(&rd, 4, &n) < 0 || n != 4)
                return eif_fail(err, rd.pos, "malformed COSE_Sign1", "expected an array of 4");
        if (rpc_get_bytes(&rd, 1, PROTECTED_MAX, &prot) < 0)
                return eif_fail(err, rd.pos, "malformed COSE_Sign1", "protected header");
        if (rpc_get_map(&rd, 0, &n) < 0)
                return eif_fail(err, rd.pos, "malformed COSE_Sign1", "unprotected header: expected {}");
        if (rpc_get_bytes(&rd, 1, PAYLOAD_MAX, &payload) < 0)
                return eif_fail(err, rd.pos, "malformed COSE_Sign1", "payload");
        if (rpc_get_bytes(&rd, 64, COSE_SIG_MAX, &sig) < 0)
                return eif_fail(err, rd.pos, "malformed COSE_Sign1", "signature: expected 64..132 bytes");
        if (rpc_reader_end(&rd) < 0)
                return eif_fail(err, rd.pos, "malformed COSE_Sign1", "trailing bytes");
        s->protected_hdr = (struct eif_blob){ prot.ptr, prot.len };
        s->payload = (struct eif_blob){ payload.ptr, payload.len };
        s->sig = (struct eif_blob){ sig.ptr, sig.len };
        r = parse_protected(s, err);
        if (r < 0)
                return r;
        return parse_payload(s, err);
}

static int parse_entry(struct rpc_reader *rd, struct eif_signature *s, struct eif_error *err) {
        size_t n;
        int r;

        if (rpc_get_map(rd, 2, &n) < 0 || n != 2)
                return cbor_fail(rd, err, "expected a map of 2 entries");
        for (size_t i = 0; i < n; i++) {
                struct rpc_slice key;

                if (rpc_get_text(rd, 1, 32, &key) < 0)
                        return cbor_fail(rd, err, "expected a text key");
                if (rpc_slice_eq_str(&key, "signing_certificate") && !s->cert_pem) {
                        r = read_u8_array(rd, 1, EIF_SIGNATURE_MAX, &s->cert_pem, &s->cert_pem_len);
                        if (r == -ENOMEM)
                                return r;
                        if (r < 0)
                                return cbor_fail(rd, err, "signing_certificate: expected integers 0..255");
                } else if (rpc_slice_eq_str(&key, "signature") && !s->cose) {
                        r = read_u8_array(rd, 1, EIF_SIGNATURE_MAX, &s->cose, &s->cose_len);
                        if (r == -ENOMEM)
                                return r;
                        if (r < 0)
                                return cbor_fail(rd, err, "signature: expected integers 0..255");
                } else
                        return cbor_fail(rd, err, "unknown or repeated key");
        }
        return 0;
}

int eif_signature_parse(const uint8_t *buf, size_t len, struct eif_signature *ret, struct eif_error *err) {
        struct eif_signature s = {};
        struct rpc_reader rd;
        size_t n;
        int r;

        if (len > EIF_SIGNATURE_MAX)
                return eif_fail(err, 0, "signature section too large", "%zu bytes", len);
        rpc_reader_init(&rd, buf, len);
        if (rpc_get_array(&rd, 1, &n) < 0 || n != 1)
                return cbor_fail(&rd, err, "expected an array of exactly one PCR signature");
        r = parse_entry(&rd, &s, err);
        if (r >= 0 && rpc_reader_end(&rd) < 0)
                r = cbor_fail(&rd, err, "trailing bytes");
        if (r >= 0)
                r = parse_cose(&s, err);
        if (r < 0) {
                eif_signature_done(&s);
                return r;
        }
        *ret = s;
        return 0;
}

static int cert_load(const uint8_t *pem, size_t len, X509 **ret) {
        _cleanup_(BIO_free_allp) BIO *bio = NULL;
        X509 *x;

        if (len > INT32_MAX)
                return -EBADMSG;
        bio = BIO_new_mem_buf(pem, (int) len);
        if (!bio)
                return -ENOMEM;
        x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        if (!x)
                return -EBADMSG;
        *ret = x;
        return 0;
}

int eif_signature_pcr8(const struct eif_signature *s, uint8_t ret[EIF_PCR_LEN]) {
        _cleanup_(X509_freep) X509 *x = NULL;
        _cleanup_free_ uint8_t *der = NULL;
        uint8_t *p;
        int n, r;

        r = cert_load(s->cert_pem, s->cert_pem_len, &x);
        if (r < 0)
                return r;
        n = i2d_X509(x, NULL);
        if (n <= 0)
                return -EBADMSG;
        der = malloc((size_t) n);
        if (!der)
                return -ENOMEM;
        p = der;
        if (i2d_X509(x, &p) != n)
                return -EBADMSG;
        return eif_pcr(&(struct eif_blob){ der, (size_t) n }, 1, ret);
}

/* The COSE algorithm a key's curve asks for, its digest and the size of r and s. */
static int key_alg(EVP_PKEY *key, int64_t *ret_alg, const EVP_MD **ret_md, size_t *ret_n) {
        char group[32] = "";

        if (!key || !EVP_PKEY_is_a(key, "EC") ||
            EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), NULL) != 1)
                return -EINVAL;
        if (strcmp(group, "prime256v1") == 0)
                *ret_alg = EIF_COSE_ES256, *ret_md = EVP_sha256(), *ret_n = 32;
        else if (strcmp(group, "secp384r1") == 0)
                *ret_alg = EIF_COSE_ES384, *ret_md = EVP_sha384(), *ret_n = 48;
        else if (strcmp(group, "secp521r1") == 0)
                *ret_alg = EIF_COSE_ES512, *ret_md = EVP_sha512(), *ret_n = 66;
        else
                return -EINVAL;
        return 0;
}

/* Sig_structure = ["Signature1", protected, h'', payload]. */
static int sig_structure(struct eif_blob prot, struct eif_blob payload, uint8_t **ret, size_t *ret_len) {
        _cleanup_free_ uint8_t *buf = NULL;
        struct rpc_writer w;
        size_t size = prot.len + payload.len + 32;
        int r;

        buf = malloc(size);
        if (!buf)
                return -ENOMEM;
        rpc_writer_init(&w, buf, size);
        rpc_put_array(&w, 4);
        rpc_put_text(&w, "Signature1", strlen("Signature1"));
        rpc_put_bytes(&w, prot.ptr, prot.len);
        rpc_put_bytes(&w, "", 0);
        rpc_put_bytes(&w, payload.ptr, payload.len);
        r = rpc_writer_finish(&w);
        if (r < 0)
                return r;
        *ret_len = w.len;
        *ret = TAKE_PTR(buf);
        return 0;
}

/* r || s (n bytes each) as a DER ECDSA-Sig-Value. */
static int raw_to_der(const uint8_t *sig, size_t n, uint8_t **ret, size_t *ret_len) {
        _cleanup_(ECDSA_SIG_freep) ECDSA_SIG *es = NULL;
        BIGNUM *r = NULL, *s = NULL;
        uint8_t *der = NULL;
        int len;

        es = ECDSA_SIG_new();
        r = BN_bin2bn(sig, (int) n, NULL);
        s = BN_bin2bn(sig + n, (int) n, NULL);
        if (!es || !r || !s || ECDSA_SIG_set0(es, r, s) != 1) {
                BN_free(r);
                BN_free(s);
                return -ENOMEM;
        }
        len = i2d_ECDSA_SIG(es, &der);
        if (len <= 0)
                return -ENOMEM;
        *ret = der;
        *ret_len = (size_t) len;
        return 0;
}

int eif_signature_verify(const struct eif_signature *s, const uint8_t pcr0[EIF_PCR_LEN],
                         struct eif_error *err) {
        _cleanup_(X509_freep) X509 *x = NULL;
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *md = NULL;
        _cleanup_free_ uint8_t *tbs = NULL;
        const EVP_MD *digest;
        uint8_t *der = NULL;
        size_t tbs_len, der_len, n;
        int64_t alg;
        int r, ok;

        r = cert_load(s->cert_pem, s->cert_pem_len, &x);
        if (r < 0) {
                (void) eif_fail(err, 0, "bad signing certificate", "the PEM holds no X.509 certificate");
                return r;
        }
        if (key_alg(X509_get0_pubkey(x), &alg, &digest, &n) < 0) {
                (void) eif_fail(err, 0, "bad signing certificate", "not an EC P-256, P-384 or P-521 key");
                return -EKEYREJECTED;
        }
        if (alg != s->alg || s->sig.len != 2 * n) {
                (void) eif_fail(err, 0, "signature algorithm mismatch",
                                "alg %" PRId64
                                " with a %zu-byte signature, the certificate's key needs alg %" PRId64,
                                s->alg, s->sig.len, alg);
                return -EKEYREJECTED;
        }
        if (s->register_index != 0) {
                (void) eif_fail(err, 0, "signature not over PCR0", "register_index %" PRIu64,
                                s->register_index);
                return -EKEYREJECTED;
        }
        if (CRYPTO_memcmp(s->register_value, pcr0, EIF_PCR_LEN) != 0) {
                (void) eif_fail(err, 0, "signed PCR0 differs", "the image's PCR0 is not the one signed");
                return -EKEYREJECTED;
        }
        r = sig_structure(s->protected_hdr, s->payload, &tbs, &tbs_len);
        if (r < 0)
                return r;
        r = raw_to_der(s->sig.ptr, n, &der, &der_len);
        if (r < 0)
                return r;
        md = EVP_MD_CTX_new();
        ok = md && EVP_DigestVerifyInit(md, NULL, digest, NULL, X509_get0_pubkey(x)) == 1 &&
             EVP_DigestVerify(md, der, der_len, tbs, tbs_len) == 1;
        OPENSSL_free(der);
        if (!ok) {
                (void) eif_fail(err, 0, "bad signature",
                                "the COSE signature does not verify with the certificate");
                return -EKEYREJECTED;
        }
        return 0;
}

static void put_u8_array(struct rpc_writer *w, const uint8_t *p, size_t n) {
        rpc_put_array(w, n);
        for (size_t i = 0; i < n; i++)
                rpc_put_uint(w, p[i]);
}

/* DER ECDSA-Sig-Value as r || s, n bytes each. */
static int der_to_raw(const uint8_t *der, size_t len, size_t n, uint8_t *out) {
        _cleanup_(ECDSA_SIG_freep) ECDSA_SIG *es = NULL;
        const uint8_t *p = der;
        const BIGNUM *r, *s;

        es = d2i_ECDSA_SIG(NULL, &p, (long) len);
        if (!es)
                return -EIO;
        ECDSA_SIG_get0(es, &r, &s);
        if (BN_bn2binpad(r, out, (int) n) != (int) n || BN_bn2binpad(s, out + n, (int) n) != (int) n)
                return -EIO;
        return 0;
}

static int cose_sign(const uint8_t pcr0[EIF_PCR_LEN], EVP_PKEY *key, uint8_t *out, size_t size,
                     size_t *ret_len) {
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *md = NULL;
        _cleanup_free_ uint8_t *tbs = NULL, *der = NULL;
        uint8_t prot[8], payload[160], sig[COSE_SIG_MAX];
        const EVP_MD *digest;
        struct rpc_writer w;
        size_t tbs_len, der_len, n;
        int64_t alg;
        int r;

        r = key_alg(key, &alg, &digest, &n);
        if (r < 0)
                return r;
        rpc_writer_init(&w, prot, sizeof(prot));
        rpc_put_map(&w, 1);
        rpc_put_uint(&w, 1);
        /* alg is negative: CBOR major type 1 with argument -1 - alg (6, 34 or 35), in its shortest form. */
        if (-1 - alg < 24)
                w.buf[w.len++] = (uint8_t) (0x20 | (-1 - alg));
        else {
                w.buf[w.len++] = 0x38;
                w.buf[w.len++] = (uint8_t) (-1 - alg);
        }
        struct eif_blob p_blob = { prot, w.len };
        rpc_writer_init(&w, payload, sizeof(payload));
        rpc_put_map(&w, 2);
        rpc_put_text(&w, "register_index", strlen("register_index"));
        rpc_put_uint(&w, 0);
        rpc_put_text(&w, "register_value", strlen("register_value"));
        put_u8_array(&w, pcr0, EIF_PCR_LEN);
        r = rpc_writer_finish(&w);
        if (r < 0)
                return r;
        struct eif_blob pl_blob = { payload, w.len };

        r = sig_structure(p_blob, pl_blob, &tbs, &tbs_len);
        if (r < 0)
                return r;
        md = EVP_MD_CTX_new();
        if (!md || EVP_DigestSignInit(md, NULL, digest, NULL, key) != 1 ||
            EVP_DigestSign(md, NULL, &der_len, tbs, tbs_len) != 1)
                return -EIO;
        der = malloc(der_len);
        if (!der || EVP_DigestSign(md, der, &der_len, tbs, tbs_len) != 1)
                return der ? -EIO : -ENOMEM;
        r = der_to_raw(der, der_len, n, sig);
        if (r < 0)
                return r;
        rpc_writer_init(&w, out, size);
        rpc_put_array(&w, 4);
        rpc_put_bytes(&w, p_blob.ptr, p_blob.len);
        rpc_put_map(&w, 0);
        rpc_put_bytes(&w, pl_blob.ptr, pl_blob.len);
        rpc_put_bytes(&w, sig, 2 * n);
        r = rpc_writer_finish(&w);
        if (r < 0)
                return r;
        *ret_len = w.len;
        return 0;
}

int eif_signature_build(const uint8_t pcr0[EIF_PCR_LEN], const uint8_t *cert_pem, size_t cert_pem_len,
                        EVP_PKEY *key, uint8_t **ret, size_t *ret_len) {
        _cleanup_(X509_freep) X509 *x = NULL;
        _cleanup_free_ uint8_t *buf = NULL;
        uint8_t cose[512];
        size_t cose_len, size;
        struct rpc_writer w;
        int r;

        if (cert_pem_len > EIF_SIGNATURE_MAX)
                return -EMSGSIZE;
        r = cert_load(cert_pem, cert_pem_len, &x);
        if (r < 0)
                return -EINVAL;
        if (EVP_PKEY_eq(X509_get0_pubkey(x), key) != 1)
                return -EINVAL;
        r = cose_sign(pcr0, key, cose, sizeof(cose), &cose_len);
        if (r < 0)
                return r;
        size = 2 * (cert_pem_len + cose_len) + 64;
        buf = malloc(size);
        if (!buf)
                return -ENOMEM;
        rpc_writer_init(&w, buf, size);
        rpc_put_array(&w, 1);
        rpc_put_map(&w, 2);
        rpc_put_text(&w, "signing_certificate", strlen("signing_certificate"));
        put_u8_array(&w, cert_pem, cert_pem_len);
        rpc_put_text(&w, "signature", strlen("signature"));
        put_u8_array(&w, cose, cose_len);
        r = rpc_writer_finish(&w);
        if (r < 0)
                return r;
        if (w.len > EIF_SIGNATURE_MAX)
                return -EMSGSIZE;
        *ret_len = w.len;
        *ret = TAKE_PTR(buf);
        return 0;
}
