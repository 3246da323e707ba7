/* One provisioned private key and its certificate chain: parsed once, then used for every operation. */
#include <errno.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "common/cleanup-ssl.h"
#include "common/rpc-crypto.h"
#include "enclave-token/errors.h"
#include "enclave-token/key.h"

/* An OpenSSL failure: drop the error queue so it cannot leak into the next request's diagnosis. */
static int ssl_fail(int r) {
        ERR_clear_error();
        return r;
}

static bool ssl_out_of_memory(void) {
        unsigned long e;

        while ((e = ERR_get_error()) != 0)
                if (ERR_GET_REASON(e) == ERR_R_MALLOC_FAILURE)
                        return true;
        return false;
}

/* Never prompt on a terminal for an encrypted PEM key. */
static int no_password(char *buf, int size, int rwflag, void *u) {
        return -1;
}

static void ctx_reset(struct etok_key_ctx *c) {
        EVP_PKEY_CTX_free(TAKE_PTR(c->pctx));
        EVP_MD_CTX_free(TAKE_PTR(c->mctx));
}

struct etok_key *etok_key_free(struct etok_key *k) {
        if (!k)
                return NULL;
        if (k->ctxs)
                for (size_t i = 0; i < ETOK_KEY_CTXS; i++)
                        ctx_reset(&k->ctxs[i]);
        free(k->ctxs);
        EVP_PKEY_free(k->pkey);
        OPENSSL_free(k->spki);
        for (size_t i = 0; i < k->n_certs; i++)
                OPENSSL_free(k->certs[i]);
        free(k);
        return NULL;
}

static int key_check_type(struct etok_key *k) {
        static const struct {
                const char *group;
                uint32_t bits;
        } curves[] = {
                { "prime256v1", 256 },
                { "secp384r1", 384 },
                { "secp521r1", 521 },
        };
        char group[64];
        int bits;

        switch (EVP_PKEY_get_base_id(k->pkey)) {
        case EVP_PKEY_RSA:
                bits = EVP_PKEY_get_bits(k->pkey);
                if (bits < 2048 || bits > 4096)
                        return ETOK_ERR(KEY_INVALID);
                k->type = RPC_KEY_RSA;
                k->bits = (uint32_t) bits;
                k->sig_len = (size_t) EVP_PKEY_get_size(k->pkey);
                return 0;
        case EVP_PKEY_EC:
                if (EVP_PKEY_get_group_name(k->pkey, group, sizeof(group), NULL) <= 0)
                        return ssl_fail(ETOK_ERR(KEY_INVALID));
                for (size_t i = 0; i < ELEMENTSOF(curves); i++)
                        if (strcmp(group, curves[i].group) == 0) {
                                k->type = RPC_KEY_EC;
                                k->bits = curves[i].bits;
                                k->sig_len = 2 * ((curves[i].bits + 7) / 8);
                                return 0;
                        }
                return ETOK_ERR(KEY_INVALID);
        case EVP_PKEY_ED25519:
                k->type = RPC_KEY_ED25519;
                k->bits = 256;
                k->sig_len = 64;
                return 0;
        default: return ETOK_ERR(KEY_INVALID);
        }
}

/* Read-only memory BIO straight over the secret frame: no copy of the PEM text. */
static int pem_bio_new(const struct rpc_slice *pem, BIO **ret) {
        if (pem->len == 0 || pem->len > INT_MAX)
                return ETOK_ERR(KEY_INVALID);
        *ret = BIO_new_mem_buf(pem->ptr, (int) pem->len);
        return *ret ? 0 : ssl_fail(-ENOMEM);
}

static int key_load_private(struct etok_key *k, const struct rpc_slice *pem) {
        _cleanup_(BIO_free_allp) BIO *bio = NULL;
        int r;

        r = pem_bio_new(pem, &bio);
        if (r < 0)
                return r;
        k->pkey = PEM_read_bio_PrivateKey(bio, NULL, no_password, NULL);
        if (!k->pkey)
                /* A full secure heap is a capacity limit, not a bad key. */
                return ssl_fail(ssl_out_of_memory() ? ETOK_ERR(LIMIT) : ETOK_ERR(KEY_INVALID));
        return key_check_type(k);
}

int etok_key_parse_private(const struct rpc_slice *pem, EVP_PKEY **ret) {
        _cleanup_(BIO_free_allp) BIO *bio = NULL;
        EVP_PKEY *pkey;
        int r;

        r = pem_bio_new(pem, &bio);
        if (r < 0)
                return r;
        pkey = PEM_read_bio_PrivateKey(bio, NULL, no_password, NULL);
        if (!pkey)
                return ssl_fail(ssl_out_of_memory() ? ETOK_ERR(LIMIT) : ETOK_ERR(KEY_INVALID));
        *ret = pkey;
        return 0;
}

static int key_set_leaf_info(struct etok_key *k, X509 *leaf) {
        _cleanup_(BIO_free_allp) BIO *mem = NULL;
        struct tm tm = {};
        time_t t;
        int n;

        if (EVP_PKEY_eq(X509_get0_pubkey(leaf), k->pkey) != 1)
                return ssl_fail(ETOK_ERR(KEY_INVALID));
        if (ASN1_TIME_to_tm(X509_get0_notAfter(leaf), &tm) != 1)
                return ssl_fail(ETOK_ERR(KEY_INVALID));
        t = timegm(&tm);
        k->not_after = t > 0 ? (uint64_t) t : 0;

        /* XN_FLAG_RFC2253 escapes control and non-ASCII bytes, so the text is printable ASCII. */
        mem = BIO_new(BIO_s_mem());
        if (!mem || X509_NAME_print_ex(mem, X509_get_subject_name(leaf), 0, XN_FLAG_RFC2253) < 0)
                return ssl_fail(-ENOMEM);
        n = BIO_read(mem, k->subject, RPC_TEXT_MAX);
        k->subject_len = n > 0 ? (size_t) n : 0;
        k->subject[k->subject_len] = '\0';
        ERR_clear_error(); /* BIO_read on an empty BIO */
        return 0;
}

static int key_load_chain(struct etok_key *k, const struct rpc_slice *pem) {
        _cleanup_(BIO_free_allp) BIO *bio = NULL;
        int r;

        r = pem_bio_new(pem, &bio);
        if (r < 0)
                return r;
        for (;;) {
                _cleanup_(X509_freep) X509 *x = NULL;
                unsigned long e;
                int n;

                x = PEM_read_bio_X509(bio, NULL, no_password, NULL);
                if (!x) {
                        e = ERR_peek_last_error();
                        if (k->n_certs > 0 && ERR_GET_LIB(e) == ERR_LIB_PEM &&
                            ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
                                ERR_clear_error();
                                return 0;
                        }
                        return ssl_fail(ETOK_ERR(KEY_INVALID));
                }
                if (k->n_certs >= RPC_MAX_CERTS)
                        return ETOK_ERR(LIMIT);
                if (k->n_certs == 0) {
                        r = key_set_leaf_info(k, x);
                        if (r < 0)
                                return r;
                }
                n = i2d_X509(x, &k->certs[k->n_certs]);
                if (n <= 0)
                        return ssl_fail(ETOK_ERR(KEY_INVALID));
                k->cert_lens[k->n_certs++] = (size_t) n;
                if ((size_t) n > RPC_CERT_MAX)
                        return ETOK_ERR(LIMIT);
        }
}

static int key_set_spki(struct etok_key *k) {
        int n = i2d_PUBKEY(k->pkey, &k->spki);

        if (n <= 0)
                return ssl_fail(ETOK_ERR(KEY_INVALID));
        k->spki_len = (size_t) n;
        if (k->spki_len > RPC_SPKI_MAX)
                return ETOK_ERR(KEY_INVALID);
        return 0;
}

/* Pairwise consistency: a private key whose private half does not match the public half that
 * EVP_PKEY_eq() compared would only fail later, one handshake at a time. */
static int key_self_test(const struct etok_key *k, const uint8_t *leaf_der, size_t leaf_len) {
        static const uint8_t msg[] = "enclave-token key self-test";
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *sctx = NULL, *vctx = NULL;
        _cleanup_(X509_freep) X509 *leaf = NULL;
        const EVP_MD *md = k->type == RPC_KEY_ED25519 ? NULL : EVP_sha256();
        uint8_t sig[RPC_SIG_MAX];
        size_t sig_len = sizeof(sig);

        leaf = d2i_X509(NULL, &leaf_der, (long) leaf_len);
        sctx = EVP_MD_CTX_new();
        vctx = EVP_MD_CTX_new();
        if (!leaf || !sctx || !vctx)
                return ssl_fail(-ENOMEM);
        if (EVP_DigestSignInit(sctx, NULL, md, NULL, k->pkey) <= 0 ||
            EVP_DigestSign(sctx, sig, &sig_len, msg, sizeof(msg)) <= 0 ||
            EVP_DigestVerifyInit(vctx, NULL, md, NULL, X509_get0_pubkey(leaf)) <= 0 ||
            EVP_DigestVerify(vctx, sig, sig_len, msg, sizeof(msg)) != 1)
                return ssl_fail(ETOK_ERR(KEY_INVALID));
        return 0;
}

int etok_key_new(const struct rpc_add_key *in, struct etok_key **ret) {
        _cleanup_(etok_key_freep) struct etok_key *k = NULL;
        int r;

        if (in->label.len == 0 || in->label.len > RPC_KEY_LABEL_MAX || in->id > RPC_KEY_ID_MAX)
                return -EBADMSG;
        k = calloc(1, sizeof(*k));
        if (!k)
                return -ENOMEM;
        k->id = in->id;
        memcpy(k->label, in->label.ptr, in->label.len);
        k->label_len = in->label.len;

        if ((r = key_load_private(k, &in->key_pem)) < 0 || (r = key_load_chain(k, &in->chain_pem)) < 0 ||
            (r = key_set_spki(k)) < 0 || (r = key_self_test(k, k->certs[0], k->cert_lens[0])) < 0)
                return r;
        if (k->type != RPC_KEY_RSA) {
                k->ctxs = aligned_alloc(_Alignof(struct etok_key_ctx), ETOK_KEY_CTXS * sizeof(*k->ctxs));
                if (!k->ctxs)
                        return -ENOMEM;
                memset(k->ctxs, 0, ETOK_KEY_CTXS * sizeof(*k->ctxs));
        }
        *ret = TAKE_PTR(k);
        return 0;
}

/* PSS and OAEP: the hash is required; the MGF1 hash defaults to it. */
static int crypto_mds(const struct rpc_crypto_req *req, const EVP_MD **ret_md, const EVP_MD **ret_mgf) {
        const EVP_MD *md = rpc_hash_md(req->hash);
        const EVP_MD *mgf = req->mgf_hash == RPC_HASH_NONE ? md : rpc_hash_md(req->mgf_hash);

        if (!md || !mgf)
                return ETOK_ERR(UNSUPPORTED);
        *ret_md = md;
        *ret_mgf = mgf;
        return 0;
}

static int pkey_ctx_new(const struct etok_key *k, EVP_PKEY_CTX **ret) {
        *ret = EVP_PKEY_CTX_new_from_pkey(NULL, k->pkey, NULL);
        return *ret ? 0 : ssl_fail(-ENOMEM);
}

static int sign_rsa_pkcs(const struct etok_key *k, const struct rpc_crypto_req *req, uint8_t *out,
                         size_t *io_len) {
        _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = NULL;
        int r;

        if (req->data.len == 0 || req->data.len > k->sig_len - 11)
                return ETOK_ERR(DATA_LEN);
        if ((r = pkey_ctx_new(k, &ctx)) < 0)
                return r;
        /* No signature md: the data (a DigestInfo) is padded as it is, PKCS#1 type 1. */
        if (EVP_PKEY_sign_init(ctx) <= 0 || EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) <= 0)
                return ssl_fail(-EIO);
        if (EVP_PKEY_sign(ctx, out, io_len, req->data.ptr, req->data.len) <= 0)
                return ssl_fail(ETOK_ERR(DATA_INVALID));
        return 0;
}

static int sign_rsa_pss(const struct etok_key *k, const struct rpc_crypto_req *req, uint8_t *out,
                        size_t *io_len) {
        _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = NULL;
        const EVP_MD *md = NULL, *mgf = NULL;
        size_t em_len = (k->bits - 1 + 7) / 8, h_len;
        int r;

        if ((r = crypto_mds(req, &md, &mgf)) < 0)
                return r;
        h_len = (size_t) EVP_MD_get_size(md);
        if (req->data.len != h_len)
                return ETOK_ERR(DATA_LEN);
        /* RFC 8017 9.1.1: emLen >= hLen + sLen + 2. */
        if (req->salt_len > em_len - h_len - 2)
                return ETOK_ERR(UNSUPPORTED);
        if ((r = pkey_ctx_new(k, &ctx)) < 0)
                return r;
        if (EVP_PKEY_sign_init(ctx) <= 0 || EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) <= 0 ||
            EVP_PKEY_CTX_set_signature_md(ctx, md) <= 0 || EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, mgf) <= 0 ||
            EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, (int) req->salt_len) <= 0)
                return ssl_fail(ETOK_ERR(UNSUPPORTED));
        if (EVP_PKEY_sign(ctx, out, io_len, req->data.ptr, req->data.len) <= 0)
                return ssl_fail(ETOK_ERR(DATA_INVALID));
        return 0;
}

/* ---- kept signing contexts (EC, Ed25519) ---- */

/* The slot this thread had last comes first, so each worker keeps to its own slot and cache line. */
static __thread unsigned ctx_hint;

static struct etok_key_ctx *ctx_take(const struct etok_key *k) {
        for (unsigned n = 0; k->ctxs && n < ETOK_KEY_CTXS; n++) {
                unsigned i = (ctx_hint + n) % ETOK_KEY_CTXS;

                if (!__atomic_exchange_n(&k->ctxs[i].busy, true, __ATOMIC_ACQUIRE)) {
                        ctx_hint = i;
                        return &k->ctxs[i];
                }
        }
        return NULL;
}

static void ctx_give(struct etok_key_ctx *c) {
        __atomic_store_n(&c->busy, false, __ATOMIC_RELEASE);
}

/* Ready to sign: made on first use. An EC context signs again as it is. Ed25519 is re-initialised
 * without its key, which keeps the fetched method: OpenSSL 3.2 refuses a second one-shot
 * EVP_DigestSign() on a context. */
static int ctx_prepare(const struct etok_key *k, struct etok_key_ctx *c) {
        if (k->type == RPC_KEY_EC) {
                int r;

                if (c->pctx)
                        return 0;
                if ((r = pkey_ctx_new(k, &c->pctx)) < 0)
                        return r;
                return EVP_PKEY_sign_init(c->pctx) > 0 ? 0 : ssl_fail(-EIO);
        }
        if (c->mctx)
                return EVP_DigestSignInit(c->mctx, NULL, NULL, NULL, NULL) > 0 ? 0 : ssl_fail(-EIO);
        c->mctx = EVP_MD_CTX_new();
        if (!c->mctx)
                return ssl_fail(-ENOMEM);
        return EVP_DigestSignInit(c->mctx, NULL, NULL, NULL, k->pkey) > 0 ? 0 : ssl_fail(-EIO);
}

static int ctx_sign(const struct etok_key *k, struct etok_key_ctx *c, const struct rpc_slice *data,
                    uint8_t *out, size_t *io_len) {
        int ok = k->type == RPC_KEY_EC ? EVP_PKEY_sign(c->pctx, out, io_len, data->ptr, data->len)
                                       : EVP_DigestSign(c->mctx, out, io_len, data->ptr, data->len);

        return ok > 0 ? 0 : ssl_fail(ETOK_ERR(DATA_INVALID));
}

/* Signs with a kept context, or a context of its own when all are taken. A kept context that fails
 * is dropped and the signature made once more on a new one: an OpenSSL that refuses reuse costs a
 * retry, never a failed handshake. */
static int sign_kept(const struct etok_key *k, const struct rpc_slice *data, uint8_t *out, size_t *io_len) {
        struct etok_key_ctx own = {}, *c = ctx_take(k);
        size_t cap = *io_len;
        bool kept;
        int r;

        if (!c)
                c = &own;
        do {
                kept = c->pctx || c->mctx;
                *io_len = cap;
                r = ctx_prepare(k, c);
                if (r >= 0)
                        r = ctx_sign(k, c, data, out, io_len);
                if (r < 0)
                        ctx_reset(c);
        } while (r < 0 && kept);
        if (c == &own)
                ctx_reset(c);
        else
                ctx_give(c);
        return r;
}

static int sign_ecdsa(const struct etok_key *k, const struct rpc_crypto_req *req, uint8_t *out,
                      size_t *io_len) {
        _cleanup_(ECDSA_SIG_freep) ECDSA_SIG *sig = NULL;
        const BIGNUM *sr, *ss;
        uint8_t der[256];
        const uint8_t *p = der;
        size_t der_len = sizeof(der), half = k->sig_len / 2;
        int r;

        if (req->data.len == 0)
                return ETOK_ERR(DATA_LEN);
        if (*io_len < k->sig_len)
                return -ENOBUFS;
        /* No md: the data is the digest; ECDSA truncates one longer than the order. */
        r = sign_kept(k, &req->data, der, &der_len);
        if (r < 0)
                return r;
        sig = d2i_ECDSA_SIG(NULL, &p, (long) der_len);
        if (!sig)
                return ssl_fail(-EIO);
        ECDSA_SIG_get0(sig, &sr, &ss);
        if (BN_bn2binpad(sr, out, (int) half) < 0 || BN_bn2binpad(ss, out + half, (int) half) < 0)
                return ssl_fail(-EIO);
        *io_len = k->sig_len;
        return 0;
}

int etok_key_sign(const struct etok_key *k, const struct rpc_crypto_req *req, uint8_t *out, size_t size,
                  size_t *ret_len) {
        size_t len = size;
        int r;

        if (req->data.len > RPC_DATA_MAX)
                return ETOK_ERR(DATA_LEN);
        if (req->mech == RPC_MECH_RSA_PKCS && k->type == RPC_KEY_RSA)
                r = sign_rsa_pkcs(k, req, out, &len);
        else if (req->mech == RPC_MECH_RSA_PSS && k->type == RPC_KEY_RSA)
                r = sign_rsa_pss(k, req, out, &len);
        else if (req->mech == RPC_MECH_ECDSA && k->type == RPC_KEY_EC)
                r = sign_ecdsa(k, req, out, &len);
        else if (req->mech == RPC_MECH_EDDSA && k->type == RPC_KEY_ED25519)
                r = sign_kept(k, &req->data, out, &len);
        else
                r = ETOK_ERR(UNSUPPORTED);
        if (r < 0)
                return r;
        *ret_len = len;
        return 0;
}

int etok_key_decrypt(const struct etok_key *k, const struct rpc_crypto_req *req, uint8_t *out, size_t size,
                     size_t *ret_len) {
        _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = NULL;
        const EVP_MD *md = NULL, *mgf = NULL;
        size_t len = size;
        int r;

        if (k->type != RPC_KEY_RSA || (req->mech != RPC_MECH_RSA_PKCS_DEC && req->mech != RPC_MECH_RSA_OAEP))
                return ETOK_ERR(UNSUPPORTED);
        if (req->mech == RPC_MECH_RSA_OAEP && (r = crypto_mds(req, &md, &mgf)) < 0)
                return r;
        if (req->data.len != k->sig_len)
                return ETOK_ERR(DATA_LEN);
        if ((r = pkey_ctx_new(k, &ctx)) < 0)
                return r;
        if (EVP_PKEY_decrypt_init(ctx) <= 0)
                return ssl_fail(-EIO);
        if (req->mech == RPC_MECH_RSA_PKCS_DEC) {
                if (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) <= 0)
                        return ssl_fail(-EIO);
        } else {
                if (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) <= 0 ||
                    EVP_PKEY_CTX_set_rsa_oaep_md(ctx, md) <= 0 ||
                    EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, mgf) <= 0)
                        return ssl_fail(ETOK_ERR(UNSUPPORTED));
                if (req->oaep_label.len > 0) {
                        void *label = OPENSSL_memdup(req->oaep_label.ptr, req->oaep_label.len);

                        if (!label)
                                return ssl_fail(-ENOMEM);
                        if (EVP_PKEY_CTX_set0_rsa_oaep_label(ctx, label, (int) req->oaep_label.len) <= 0) {
                                OPENSSL_free(label);
                                return ssl_fail(ETOK_ERR(UNSUPPORTED));
                        }
                }
        }
        if (EVP_PKEY_decrypt(ctx, out, &len, req->data.ptr, req->data.len) <= 0)
                return ssl_fail(ETOK_ERR(DATA_INVALID));
        *ret_len = len;
        return 0;
}

void etok_key_info(const struct etok_key *k, enum etok_key_view view, struct rpc_key_info *ret) {
        *ret = (struct rpc_key_info){
                .id = k->id,
                .label = { (const uint8_t *) k->label, k->label_len },
                .type = k->type,
                .bits = k->bits,
        };
        if (view == ETOK_KEY_VIEW_OBJECTS) {
                ret->spki = (struct rpc_slice){ k->spki, k->spki_len };
                ret->n_certs = k->n_certs;
                for (size_t i = 0; i < k->n_certs; i++)
                        ret->certs[i] = (struct rpc_slice){ k->certs[i], k->cert_lens[i] };
        } else {
                ret->not_after = k->not_after;
                ret->subject = (struct rpc_slice){ (const uint8_t *) k->subject, k->subject_len };
        }
}
