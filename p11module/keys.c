/* A token's public objects as the module caches them: keys parsed once, attribute bytes precomputed. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "common/cleanup-ssl.h"
#include "p11module/keys.h"

/* id-Ed25519, 1.3.101.112: what p11-kit, OpenSC and pkcs11-provider accept in CKA_EC_PARAMS. */
static const uint8_t ed25519_oid_der[] = { 0x06, 0x03, 0x2b, 0x65, 0x70 };

DEFINE_TRIVIAL_CLEANUP_FUNC(X509_PUBKEY *, X509_PUBKEY_free);

static void blob_free(struct p11_blob *b) {
        free(b->ptr);
        *b = (struct p11_blob){};
}

static int blob_dup(const void *p, size_t len, struct p11_blob *ret) {
        uint8_t *d = malloc(len ? len : 1);

        if (!d)
                return -ENOMEM;
        if (len)
                memcpy(d, p, len);
        ret->ptr = d;
        ret->len = len;
        return 0;
}

/* Takes an i2d_*() result allocated by OpenSSL. */
static int blob_from_openssl(unsigned char *der, int len, struct p11_blob *ret) {
        int r;

        if (!der || len <= 0) {
                OPENSSL_free(der);
                return -EBADMSG;
        }
        r = blob_dup(der, (size_t) len, ret);
        OPENSSL_free(der);
        return r;
}

size_t p11_key_id_bytes(uint32_t id, uint8_t out[static 4]) {
        size_t n = id > 0xffffff ? 4 : id > 0xffff ? 3 : id > 0xff ? 2 : 1;

        for (size_t i = 0; i < n; i++)
                out[i] = (uint8_t) (id >> (8 * (n - 1 - i)));
        return n;
}

int p11_der_octet_string(const uint8_t *p, size_t len, struct p11_blob *ret) {
        uint8_t hdr[4] = { 0x04 };
        size_t h;
        uint8_t *d;

        if (len < 0x80) {
                hdr[1] = (uint8_t) len;
                h = 2;
        } else if (len <= 0xff) {
                hdr[1] = 0x81;
                hdr[2] = (uint8_t) len;
                h = 3;
        } else if (len <= 0xffff) {
                hdr[1] = 0x82;
                hdr[2] = (uint8_t) (len >> 8);
                hdr[3] = (uint8_t) len;
                h = 4;
        } else
                return -EMSGSIZE;
        d = malloc(h + len);
        if (!d)
                return -ENOMEM;
        memcpy(d, hdr, h);
        memcpy(d + h, p, len);
        ret->ptr = d;
        ret->len = h + len;
        return 0;
}

/*
 * The SPKI is taken apart with the ASN.1 layer only (X509_PUBKEY, no EVP_PKEY): inside a host that
 * loaded the libp11 engine as default RSA/EC method, decoded EVP_PKEYs are engine-backed legacy keys
 * whose parameters cannot be read back through the provider API.
 */

static int bn_blob(const ASN1_INTEGER *i, struct p11_blob *ret, uint32_t *ret_bits) {
        _cleanup_(BN_freep) BIGNUM *bn = NULL;
        int n;

        if (!i || ASN1_STRING_type(i) != V_ASN1_INTEGER)
                return -EBADMSG;
        bn = ASN1_INTEGER_to_BN(i, NULL);
        if (!bn)
                return -EBADMSG;
        n = BN_num_bytes(bn);
        ret->ptr = malloc(n > 0 ? (size_t) n : 1);
        if (!ret->ptr)
                return -ENOMEM;
        ret->len = (size_t) BN_bn2bin(bn, ret->ptr);
        if (ret_bits)
                *ret_bits = (uint32_t) BN_num_bits(bn);
        return 0;
}

/* RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER } */
static int key_rsa(struct p11_key *k, const unsigned char *pk, int pk_len) {
        const unsigned char *p = pk;
        STACK_OF(ASN1_TYPE) * seq;
        const ASN1_TYPE *n, *e;
        int r = -EBADMSG;

        seq = d2i_ASN1_SEQUENCE_ANY(NULL, &p, pk_len);
        if (!seq)
                return -EBADMSG;
        if (p == pk + pk_len && sk_ASN1_TYPE_num(seq) == 2) {
                n = sk_ASN1_TYPE_value(seq, 0);
                e = sk_ASN1_TYPE_value(seq, 1);
                if (n->type == V_ASN1_INTEGER && e->type == V_ASN1_INTEGER) {
                        r = bn_blob(n->value.integer, &k->modulus, &k->bits);
                        if (r == 0)
                                r = bn_blob(e->value.integer, &k->exponent, NULL);
                }
        }
        sk_ASN1_TYPE_pop_free(seq, ASN1_TYPE_free);
        if (r < 0)
                return r;
        if (k->bits < 1024 || k->bits > 16384)
                return -EBADMSG;
        k->key_bytes = (k->bits + 7) / 8;
        k->sig_len = k->key_bytes;
        return 0;
}

static int curve_bits(int nid) {
        switch (nid) {
        case NID_X9_62_prime256v1: return 256;
        case NID_secp384r1: return 384;
        case NID_secp521r1: return 521;
        default: return -EBADMSG; /* the enclave signs on P-256, P-384 and P-521 only */
        }
}

static int key_ec(struct p11_key *k, const X509_ALGOR *alg, const unsigned char *pk, int pk_len) {
        const ASN1_OBJECT *curve;
        const void *pval;
        unsigned char *der = NULL;
        int ptype, bits, n, r;

        X509_ALGOR_get0(NULL, &ptype, &pval, alg);
        if (ptype != V_ASN1_OBJECT)
                return -EBADMSG; /* named curves only */
        curve = pval;
        bits = curve_bits(OBJ_obj2nid(curve));
        if (bits < 0)
                return bits;
        k->bits = (uint32_t) bits;
        k->key_bytes = ((size_t) bits + 7) / 8;
        k->sig_len = 2 * k->key_bytes;
        if (pk_len != (int) (1 + 2 * k->key_bytes) || pk[0] != 0x04)
                return -EBADMSG; /* uncompressed point */
        n = i2d_ASN1_OBJECT(curve, &der);
        r = blob_from_openssl(der, n, &k->ec_params);
        if (r < 0)
                return r;
        return p11_der_octet_string(pk, (size_t) pk_len, &k->ec_point);
}

static int key_ed25519(struct p11_key *k, const unsigned char *pk, int pk_len) {
        int r;

        if (pk_len != 32)
                return -EBADMSG;
        r = blob_dup(ed25519_oid_der, sizeof(ed25519_oid_der), &k->ec_params);
        if (r < 0)
                return r;
        k->bits = 255;
        k->key_bytes = 32;
        k->sig_len = 64;
        return p11_der_octet_string(pk, (size_t) pk_len, &k->ec_point);
}

static enum rpc_key_type spki_type(const ASN1_OBJECT *alg) {
        switch (OBJ_obj2nid(alg)) {
        case NID_rsaEncryption: return RPC_KEY_RSA;
        case NID_X9_62_id_ecPublicKey: return RPC_KEY_EC;
        case NID_ED25519: return RPC_KEY_ED25519;
        default: return RPC_KEY_NONE;
        }
}

static int key_parse_spki(struct p11_key *k, const struct rpc_slice *spki) {
        const unsigned char *p = spki->ptr, *pk;
        _cleanup_(X509_PUBKEY_freep) X509_PUBKEY *xpk = NULL;
        ASN1_OBJECT *alg_oid;
        X509_ALGOR *alg;
        enum rpc_key_type t;
        int pk_len, r;

        if (!p || spki->len == 0 || spki->len > RPC_SPKI_MAX)
                return -EBADMSG;
        xpk = d2i_X509_PUBKEY(NULL, &p, (long) spki->len);
        if (!xpk || p != spki->ptr + spki->len)
                return -EBADMSG;
        if (X509_PUBKEY_get0_param(&alg_oid, &pk, &pk_len, &alg, xpk) <= 0 || !pk || pk_len <= 0)
                return -EBADMSG;
        t = spki_type(alg_oid);
        if (t == RPC_KEY_NONE || (k->type != RPC_KEY_NONE && k->type != t))
                return -EBADMSG;
        k->type = t;
        r = blob_dup(spki->ptr, spki->len, &k->spki);
        if (r < 0)
                return r;
        switch (t) {
        case RPC_KEY_RSA: return key_rsa(k, pk, pk_len);
        case RPC_KEY_EC: return key_ec(k, alg, pk, pk_len);
        default: return key_ed25519(k, pk, pk_len);
        }
}

static int cert_names(struct p11_cert *c, const X509 *x) {
        unsigned char *der = NULL;
        int n, r;

        n = i2d_X509_NAME(X509_get_subject_name(x), &der);
        r = blob_from_openssl(der, n, &c->subject);
        if (r < 0)
                return r;
        der = NULL;
        n = i2d_X509_NAME(X509_get_issuer_name(x), &der);
        r = blob_from_openssl(der, n, &c->issuer);
        if (r < 0)
                return r;
        der = NULL;
        n = i2d_ASN1_INTEGER(X509_get0_serialNumber(x), &der);
        r = blob_from_openssl(der, n, &c->serial);
        if (r < 0)
                return r;
        der = NULL;
        n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
        return blob_from_openssl(der, n, &c->spki);
}

static int cert_ids(struct p11_cert *c, const struct p11_key *k, size_t index, const X509 *x) {
        uint8_t md[EVP_MAX_MD_SIZE];
        unsigned md_len;
        int n;

        if (EVP_Digest(c->der.ptr, c->der.len, md, &md_len, EVP_sha1(), NULL) <= 0)
                return -EBADMSG;
        memcpy(c->check_value, md, sizeof(c->check_value));
        if (index == 0) {
                n = snprintf(c->label, sizeof(c->label), "%.*s", (int) k->label_len, k->label);
                c->label_len = (size_t) n;
                return blob_dup(k->ckid, k->ckid_len, &c->id);
        }
        /* Chain certificates must not share the key's CKA_ID, or "id=%01;type=cert" finds a CA. */
        n = snprintf(c->label, sizeof(c->label), "%.*s CA %zu", (int) k->label_len, k->label, index);
        c->label_len = (size_t) n;
        if (X509_pubkey_digest(x, EVP_sha1(), md, &md_len) <= 0)
                return -EBADMSG;
        return blob_dup(md, md_len, &c->id);
}

static int cert_parse(struct p11_cert *c, const struct p11_key *k, size_t index,
                      const struct rpc_slice *der) {
        const unsigned char *p = der->ptr;
        _cleanup_(X509_freep) X509 *x = NULL;
        int r;

        if (!p || der->len == 0 || der->len > RPC_CERT_MAX)
                return -EBADMSG;
        x = d2i_X509(NULL, &p, (long) der->len);
        if (!x || p != der->ptr + der->len)
                return -EBADMSG;
        r = blob_dup(der->ptr, der->len, &c->der);
        if (r < 0)
                return r;
        r = cert_names(c, x);
        if (r < 0)
                return r;
        return cert_ids(c, k, index, x);
}

static void cert_done(struct p11_cert *c) {
        blob_free(&c->der);
        blob_free(&c->subject);
        blob_free(&c->issuer);
        blob_free(&c->serial);
        blob_free(&c->spki);
        blob_free(&c->id);
}

void p11_key_done(struct p11_key *k) {
        if (!k)
                return;
        blob_free(&k->spki);
        blob_free(&k->modulus);
        blob_free(&k->exponent);
        blob_free(&k->ec_params);
        blob_free(&k->ec_point);
        for (size_t i = 0; i < k->n_certs; i++)
                cert_done(&k->certs[i]);
        k->n_certs = 0;
}

static int key_build(const struct rpc_key_info *ki, struct p11_key *k) {
        int r;

        if (ki->id > RPC_KEY_ID_MAX || ki->label.len > RPC_KEY_LABEL_MAX || ki->n_certs > RPC_MAX_CERTS ||
            ki->type >= _RPC_KEY_MAX)
                return -EBADMSG;
        k->id = ki->id;
        k->ckid_len = p11_key_id_bytes(ki->id, k->ckid);
        if (ki->label.len)
                memcpy(k->label, ki->label.ptr, ki->label.len);
        k->label_len = ki->label.len;
        k->type = (enum rpc_key_type) ki->type;
        r = key_parse_spki(k, &ki->spki);
        if (r < 0)
                return r;
        for (size_t i = 0; i < ki->n_certs; i++) {
                r = cert_parse(&k->certs[i], k, i, &ki->certs[i]);
                k->n_certs = i + 1; /* so p11_key_done() frees a half-built one */
                if (r < 0)
                        return r;
        }
        return 0;
}

int p11_key_build(const struct rpc_key_info *ki, struct p11_key *ret) {
        struct p11_key k = {};
        int r;

        if (!ki || !ret)
                return -EINVAL;
        ERR_set_mark();
        r = key_build(ki, &k);
        ERR_pop_to_mark();
        if (r < 0) {
                p11_key_done(&k);
                return r;
        }
        *ret = k;
        return 0;
}

struct p11_objects *p11_objects_free(struct p11_objects *o) {
        if (!o)
                return NULL;
        for (size_t i = 0; i < o->n_keys; i++)
                p11_key_done(&o->keys[i]);
        free(o);
        return NULL;
}

int p11_objects_build(const struct rpc_token_info *ti, struct p11_objects **ret) {
        _cleanup_(p11_objects_freep) struct p11_objects *o = NULL;
        int r;

        if (!ti || !ret || ti->n_keys > RPC_MAX_KEYS)
                return -EINVAL;
        o = calloc(1, sizeof(*o) + ti->n_keys * sizeof(o->keys[0]));
        if (!o)
                return -ENOMEM;
        o->generation = ti->generation;
        o->pin_status = ti->pin_status & _RPC_PIN_STATUS_ALL;
        /* An empty label may come with a NULL pointer, which memcpy() must not get even for 0 bytes. */
        if (ti->label.len > 0 && ti->label.len <= RPC_LABEL_MAX) {
                memcpy(o->label, ti->label.ptr, ti->label.len);
                o->label_len = ti->label.len;
        }
        for (size_t i = 0; i < ti->n_keys; i++) {
                if (p11_objects_find_key(o, ti->keys[i].id))
                        return -EBADMSG; /* duplicate id: handles would collide */
                r = p11_key_build(&ti->keys[i], &o->keys[i]);
                if (r < 0)
                        return r;
                o->n_keys = i + 1;
        }
        *ret = TAKE_PTR(o);
        return 0;
}

const struct p11_key *p11_objects_find_key(const struct p11_objects *o, uint32_t key_id) {
        if (!o)
                return NULL;
        for (size_t i = 0; i < o->n_keys; i++)
                if (o->keys[i].id == key_id)
                        return &o->keys[i];
        return NULL;
}
