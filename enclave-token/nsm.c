/* The NSM client: serde-shaped CBOR requests and responses, the error table, the /dev/nsm ioctl. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "common/cbor-read.h"
#include "common/cbor-write.h"
#include "common/errmsg.h"
#include "common/secret.h"
#include "enclave-token/nsm.h"

/* ---- the error table: the only place where NSM error names, our enum and errnos meet ---- */

static const struct {
        const char *name;
        int err;
        const char *text;
} nsm_errors[_NSM_ERROR_MAX] = {
        [NSM_ERROR_INVALID_ARGUMENT] = { "InvalidArgument", -EINVAL, "invalid argument" },
        [NSM_ERROR_INVALID_INDEX] = { "InvalidIndex", -ERANGE, "PCR index out of range" },
        [NSM_ERROR_INVALID_RESPONSE] = { "InvalidResponse", -EPROTO,
                                         "the NSM produced an invalid response" },
        [NSM_ERROR_READ_ONLY_INDEX] = { "ReadOnlyIndex", -EROFS, "PCR is locked (read-only)" },
        [NSM_ERROR_INVALID_OPERATION] = { "InvalidOperation", -EOPNOTSUPP, "invalid operation" },
        [NSM_ERROR_BUFFER_TOO_SMALL] = { "BufferTooSmall", -ENOBUFS, "response buffer too small" },
        [NSM_ERROR_INPUT_TOO_LARGE] = { "InputTooLarge", -EMSGSIZE, "input too large" },
        [NSM_ERROR_INTERNAL_ERROR] = { "InternalError", -EIO, "NSM internal error" },
};

const char *nsm_error_to_name(enum nsm_error e) {
        return e >= 0 && e < _NSM_ERROR_MAX ? nsm_errors[e].name : NULL;
}

const char *nsm_error_to_string(enum nsm_error e) {
        return e >= 0 && e < _NSM_ERROR_MAX ? nsm_errors[e].text : NULL;
}

int nsm_error_to_errno(enum nsm_error e) {
        return e >= 0 && e < _NSM_ERROR_MAX ? nsm_errors[e].err : -EINVAL;
}

enum nsm_error nsm_error_from_name(const uint8_t *name, size_t len) {
        for (size_t i = 0; i < _NSM_ERROR_MAX; i++)
                if (strlen(nsm_errors[i].name) == len && memcmp(nsm_errors[i].name, name, len) == 0)
                        return (enum nsm_error) i;
        return _NSM_ERROR_INVALID;
}

enum nsm_error nsm_error_from_errno(int err) {
        for (size_t i = 0; i < _NSM_ERROR_MAX; i++)
                if (nsm_errors[i].err == err)
                        return (enum nsm_error) i;
        return _NSM_ERROR_INVALID;
}

/* Request and response kinds share their order, so a request's kind is its answer's kind. */
static const char *const variant_names[] = {
        [NSM_RESPONSE_DESCRIBE_PCR] = "DescribePCR", [NSM_RESPONSE_EXTEND_PCR] = "ExtendPCR",
        [NSM_RESPONSE_LOCK_PCR] = "LockPCR",         [NSM_RESPONSE_LOCK_PCRS] = "LockPCRs",
        [NSM_RESPONSE_DESCRIBE_NSM] = "DescribeNSM", [NSM_RESPONSE_ATTESTATION] = "Attestation",
        [NSM_RESPONSE_GET_RANDOM] = "GetRandom",     [NSM_RESPONSE_ERROR] = "Error",
};
_Static_assert((int) NSM_REQUEST_GET_RANDOM == (int) NSM_RESPONSE_GET_RANDOM, "kinds share their order");
_Static_assert((int) NSM_REQUEST_DESCRIBE_PCR == (int) NSM_RESPONSE_DESCRIBE_PCR, "kinds share their order");

const char *nsm_request_kind_to_name(enum nsm_request_kind k) {
        return k >= 0 && k < _NSM_REQUEST_MAX ? variant_names[k] : NULL;
}

const char *nsm_response_kind_to_name(enum nsm_response_kind k) {
        return k >= 0 && k < _NSM_RESPONSE_MAX ? variant_names[k] : NULL;
}

static int variant_from_slice(const struct rpc_slice *s, int max) {
        for (int i = 0; i < max; i++)
                if (rpc_slice_eq_str(s, variant_names[i]))
                        return i;
        return -1;
}

static const char *const digest_names[_NSM_DIGEST_MAX] = {
        [NSM_DIGEST_SHA256] = "SHA256",
        [NSM_DIGEST_SHA384] = "SHA384",
        [NSM_DIGEST_SHA512] = "SHA512",
};

void nsm_response_done(struct nsm_response *resp) {
        if (!resp)
                return;
        free(resp->document);
        resp->document = NULL;
        resp->document_len = 0;
        secret_wipe(resp->random, sizeof(resp->random));
        resp->random_len = 0;
}

/* ---- encoding ---- */

static void put_key(struct rpc_writer *w, const char *key) {
        rpc_put_text(w, key, strlen(key));
}

/* The writer has no null: CBOR simple value 22 is the single byte 0xf6. */
static void put_null(struct rpc_writer *w) {
        if (w->err)
                return;
        if (w->size - w->len < 1) {
                rpc_writer_fail(w, -EMSGSIZE);
                return;
        }
        w->buf[w->len++] = 0xf6;
}

static void put_kv_bytes(struct rpc_writer *w, const char *key, const uint8_t *p, size_t len) {
        put_key(w, key);
        rpc_put_bytes(w, p ? (const void *) p : "", len);
}

static void put_kv_opt(struct rpc_writer *w, const char *key, const struct nsm_opt *o) {
        if (o->present)
                put_kv_bytes(w, key, o->ptr, o->len);
        else {
                put_key(w, key);
                put_null(w);
        }
}

/* {"Variant": {...n fields}} up to the inner map's head. */
static void put_struct_variant(struct rpc_writer *w, int kind, size_t n) {
        rpc_put_map(w, 1);
        put_key(w, variant_names[kind]);
        rpc_put_map(w, n);
}

int nsm_request_encode(const struct nsm_request *req, uint8_t *buf, size_t size, size_t *ret_len) {
        struct rpc_writer w;
        int r;

        if (!req || !buf || !ret_len)
                return -EINVAL;
        rpc_writer_init(&w, buf, MIN(size, (size_t) NSM_REQUEST_MAX));
        switch (req->kind) {
        case NSM_REQUEST_DESCRIBE_NSM:
        case NSM_REQUEST_GET_RANDOM: put_key(&w, variant_names[req->kind]); break;
        case NSM_REQUEST_DESCRIBE_PCR:
        case NSM_REQUEST_LOCK_PCR:
                put_struct_variant(&w, req->kind, 1);
                put_key(&w, "index");
                rpc_put_uint(&w, req->index);
                break;
        case NSM_REQUEST_EXTEND_PCR:
                put_struct_variant(&w, req->kind, 2);
                put_key(&w, "index");
                rpc_put_uint(&w, req->index);
                put_kv_bytes(&w, "data", req->data.ptr, req->data.len);
                break;
        case NSM_REQUEST_LOCK_PCRS:
                put_struct_variant(&w, req->kind, 1);
                put_key(&w, "range");
                rpc_put_uint(&w, req->range);
                break;
        case NSM_REQUEST_ATTESTATION:
                put_struct_variant(&w, req->kind, 3);
                put_kv_opt(&w, "user_data", &req->user_data);
                put_kv_opt(&w, "nonce", &req->nonce);
                put_kv_opt(&w, "public_key", &req->pk);
                break;
        default: return -EINVAL;
        }
        r = rpc_writer_finish(&w);
        if (r < 0)
                return r;
        *ret_len = w.len;
        return 0;
}

int nsm_response_encode(const struct nsm_response *resp, uint8_t *buf, size_t size, size_t *ret_len) {
        const struct nsm_description *dd = &resp->description;
        struct rpc_writer w;
        int r;

        if (!resp || !buf || !ret_len)
                return -EINVAL;
        rpc_writer_init(&w, buf, MIN(size, (size_t) NSM_RESPONSE_MAX));
        switch (resp->kind) {
        case NSM_RESPONSE_LOCK_PCR:
        case NSM_RESPONSE_LOCK_PCRS: put_key(&w, variant_names[resp->kind]); break;
        case NSM_RESPONSE_DESCRIBE_PCR:
                put_struct_variant(&w, resp->kind, 2);
                put_key(&w, "lock");
                rpc_put_bool(&w, resp->pcr.locked);
                put_kv_bytes(&w, "data", resp->pcr.data, resp->pcr.len);
                break;
        case NSM_RESPONSE_EXTEND_PCR:
                put_struct_variant(&w, resp->kind, 1);
                put_kv_bytes(&w, "data", resp->pcr.data, resp->pcr.len);
                break;
        case NSM_RESPONSE_ATTESTATION:
                put_struct_variant(&w, resp->kind, 1);
                put_kv_bytes(&w, "document", resp->document, resp->document_len);
                break;
        case NSM_RESPONSE_GET_RANDOM:
                put_struct_variant(&w, resp->kind, 1);
                put_kv_bytes(&w, "random", resp->random, MIN(resp->random_len, sizeof(resp->random)));
                break;
        case NSM_RESPONSE_DESCRIBE_NSM:
                if (dd->digest < 0 || dd->digest >= _NSM_DIGEST_MAX ||
                    dd->n_locked_pcrs > NSM_LOCKED_PCRS_MAX)
                        return -EINVAL;
                put_struct_variant(&w, resp->kind, 7);
                put_key(&w, "version_major");
                rpc_put_uint(&w, dd->version_major);
                put_key(&w, "version_minor");
                rpc_put_uint(&w, dd->version_minor);
                put_key(&w, "version_patch");
                rpc_put_uint(&w, dd->version_patch);
                put_key(&w, "module_id");
                rpc_put_text(&w, dd->module_id, strnlen(dd->module_id, sizeof(dd->module_id)));
                put_key(&w, "max_pcrs");
                rpc_put_uint(&w, dd->max_pcrs);
                put_key(&w, "locked_pcrs");
                rpc_put_array(&w, dd->n_locked_pcrs);
                for (size_t i = 0; i < dd->n_locked_pcrs; i++)
                        rpc_put_uint(&w, dd->locked_pcrs[i]);
                put_key(&w, "digest");
                put_key(&w, digest_names[dd->digest]);
                break;
        case NSM_RESPONSE_ERROR:
                if (!nsm_error_to_name(resp->error))
                        return -EINVAL;
                rpc_put_map(&w, 1);
                put_key(&w, "Error");
                put_key(&w, nsm_error_to_name(resp->error));
                break;
        default: return -EINVAL;
        }
        r = rpc_writer_finish(&w);
        if (r < 0)
                return r;
        *ret_len = w.len;
        return 0;
}

/* ---- decoding ---- */

/* Others' CBOR (serde_cbor, QEMU's libcbor): any key order, indefinite maps, chunked strings, within
 * these caps. */
static const struct rpc_reader_limits nsm_limits = { .depth = 4,
                                                     .count = NSM_LOCKED_PCRS_MAX,
                                                     .len = NSM_RESPONSE_MAX };

#define FIELDS_MAX 16 /* pairs in one variant's map, unknown keys included */

struct dec {
        struct rpc_reader r;
        char **error;
        const char *what;    /* "response", "request" */
        const char *variant; /* while inside one */
        int err;             /* for a malformed field: -EBADMSG in a response, -EINVAL in a request */
};

static int dec_fail(struct dec *d, int err, const char *field, const char *expected) {
        return errmsg_set(d->error, err, "NSM %s%s%s: %s at byte %zu: expected %s", d->what,
                          d->variant ? " " : "", d->variant ? d->variant : "", field, d->r.pos, expected);
}

/* Marks field i of a variant's map as seen: a second time is an error. */
static int claim(struct dec *d, unsigned *seen, unsigned i, const char *name) {
        if (*seen & (1u << i))
                return dec_fail(d, d->err, name, "no duplicate key");
        *seen |= 1u << i;
        return 0;
}

static int skip_unknown(struct dec *d) {
        if (rpc_skip(&d->r) < 0)
                return dec_fail(d, d->err, "unknown key's value", "a well-formed item");
        return 0;
}

/* A struct variant's map: the keys of names[0..n_names) once each (a NULL ends the list early),
 * unknown keys skipped (as serde does), and every field of `needed` present (bit i: names[i]).
 * value() decodes field i's value. */
typedef int (*value_fn)(struct dec *d, void *obj, unsigned field);

static int struct_map(struct dec *d, const char *const *names, unsigned n_names, value_fn value, void *obj,
                      unsigned needed) {
        struct rpc_container c;
        unsigned seen = 0;
        int k;

        if (rpc_get_map_begin(&d->r, FIELDS_MAX, &c) < 0)
                return dec_fail(d, d->err, "value", "a map of at most 16 fields");
        while ((k = rpc_container_next(&d->r, &c)) > 0) {
                struct rpc_slice key;

                if (rpc_get_text(&d->r, 1, 64, &key) < 0)
                        return dec_fail(d, d->err, "map key", "a text string of 1..64 bytes");
                unsigned i = 0;
                while (i < n_names && names[i] && !rpc_slice_eq_str(&key, names[i]))
                        i++;
                if (i < n_names && names[i]) {
                        k = claim(d, &seen, i, names[i]);
                        if (k >= 0)
                                k = value(d, obj, i);
                } else
                        k = skip_unknown(d);
                if (k < 0)
                        return k;
        }
        if (k < 0)
                return dec_fail(d, d->err, "map", "at most 16 fields and a proper end");
        if ((seen & needed) != needed)
                return dec_fail(d, d->err, "map", "every mandatory field");
        return 0;
}

/* serde's two shapes of an enum: a unit variant as its bare name, any other as a one-entry map from
 * its name to its value. */
struct variant_shape {
        int max;                 /* variants 0..max-1 are known */
        uint32_t units;          /* bit v: variant v is a unit variant */
        int err;                 /* for an unknown name or a wrong shape */
        const char *units_named; /* what a bare name may be */
        int (*value)(struct dec *d, int v, void *obj);
};

/* The variant, or a negative errno. */
static int variant_body(struct dec *d, const struct variant_shape *sh, void *obj) {
        struct rpc_container c;
        struct rpc_slice s;
        enum rpc_item_type t;
        int k, v;

        if (rpc_peek(&d->r, &t) < 0)
                return dec_fail(d, -EBADMSG, "top level", "a CBOR item");
        if (t == RPC_ITEM_TEXT) {
                if (rpc_get_text(&d->r, 1, 32, &s) < 0)
                        return dec_fail(d, sh->err, "top level", "a variant name");
                v = variant_from_slice(&s, sh->max);
                if (v < 0 || !(sh->units & (1u << v)))
                        return dec_fail(d, sh->err, "top level", sh->units_named);
                return v;
        }
        if (rpc_get_map_begin(&d->r, 1, &c) < 0 || rpc_container_next(&d->r, &c) != 1 ||
            rpc_get_text(&d->r, 1, 32, &s) < 0)
                return dec_fail(d, sh->err, "top level", "a variant name or a one-entry map");
        v = variant_from_slice(&s, sh->max);
        if (v < 0 || (sh->units & (1u << v)))
                return dec_fail(d, sh->err, "variant", "a known variant with fields");
        d->variant = variant_names[v];
        k = sh->value(d, v, obj);
        if (k < 0)
                return k;
        if (rpc_container_next(&d->r, &c) != 0)
                return dec_fail(d, -EBADMSG, "top level", "a one-entry map");
        return v;
}

static int get_u16(struct dec *d, const char *field, uint16_t *ret) {
        uint64_t v;

        if (rpc_get_uint(&d->r, UINT16_MAX, &v) < 0)
                return dec_fail(d, -EBADMSG, field, "an unsigned integer of at most 65535");
        *ret = (uint16_t) v;
        return 0;
}

static int get_pcr_data(struct dec *d, struct nsm_pcr *pcr) {
        size_t n = 0;

        if (rpc_get_bytes_copy(&d->r, 32, NSM_PCR_LEN_MAX, pcr->data, &n) < 0 ||
            (n != 32 && n != 48 && n != 64))
                return dec_fail(d, -EBADMSG, "'data'", "a byte string of 32, 48 or 64 bytes");
        pcr->len = n;
        return 0;
}

static int get_document(struct dec *d, struct nsm_response *resp) {
        _cleanup_free_ uint8_t *doc = malloc(MAX(d->r.len, (size_t) 1));
        size_t n = 0;

        if (!doc)
                return -ENOMEM;
        if (rpc_get_bytes_copy(&d->r, 1, d->r.len, doc, &n) < 0)
                return dec_fail(d, -EBADMSG, "'document'", "a non-empty byte string");
        free(resp->document);
        resp->document = TAKE_PTR(doc);
        resp->document_len = n;
        return 0;
}

static int get_locked_pcrs(struct dec *d, struct nsm_description *dd) {
        struct rpc_container c;
        int k;

        dd->n_locked_pcrs = 0;
        if (rpc_get_array_begin(&d->r, NSM_LOCKED_PCRS_MAX, &c) < 0)
                return dec_fail(d, -EBADMSG, "'locked_pcrs'", "an array of at most 64 PCR indexes");
        while ((k = rpc_container_next(&d->r, &c)) > 0) {
                k = get_u16(d, "'locked_pcrs' element", &dd->locked_pcrs[dd->n_locked_pcrs]);
                if (k < 0)
                        return k;
                dd->n_locked_pcrs++;
        }
        if (k < 0)
                return dec_fail(d, -EBADMSG, "'locked_pcrs'", "an array of at most 64 PCR indexes");
        return 0;
}

static int get_digest(struct dec *d, enum nsm_digest *ret) {
        struct rpc_slice s;

        if (rpc_get_text(&d->r, 1, 16, &s) >= 0)
                for (int i = 0; i < _NSM_DIGEST_MAX; i++)
                        if (rpc_slice_eq_str(&s, digest_names[i])) {
                                *ret = (enum nsm_digest) i;
                                return 0;
                        }
        return dec_fail(d, -EBADMSG, "'digest'", "\"SHA256\", \"SHA384\" or \"SHA512\"");
}

static int get_module_id(struct dec *d, char *buf) {
        size_t n = 0;

        if (rpc_get_text_copy(&d->r, 1, NSM_MODULE_ID_MAX, buf, &n) < 0)
                return dec_fail(d, -EBADMSG, "'module_id'", "a text string of 1..128 bytes");
        buf[n] = '\0';
        return 0;
}

/* Each variant's fields, in declaration order; bit i of "seen" is field i. */
static const char *const response_field_names[_NSM_RESPONSE_MAX][8] = {
        [NSM_RESPONSE_DESCRIBE_PCR] = { "lock", "data" },
        [NSM_RESPONSE_EXTEND_PCR] = { "data" },
        [NSM_RESPONSE_ATTESTATION] = { "document" },
        [NSM_RESPONSE_GET_RANDOM] = { "random" },
        [NSM_RESPONSE_DESCRIBE_NSM] = { "version_major", "version_minor", "version_patch", "module_id",
                                        "max_pcrs", "locked_pcrs", "digest" },
};

static int response_value(struct dec *d, void *obj, unsigned field) {
        struct nsm_response *resp = obj;
        struct nsm_description *dd = &resp->description;

        switch (resp->kind * 8 + (int) field) {
        case NSM_RESPONSE_DESCRIBE_PCR * 8 + 0:
                return rpc_get_bool(&d->r, &resp->pcr.locked) < 0
                               ? dec_fail(d, -EBADMSG, "'lock'", "a boolean")
                               : 0;
        case NSM_RESPONSE_DESCRIBE_PCR * 8 + 1:
        case NSM_RESPONSE_EXTEND_PCR * 8 + 0: return get_pcr_data(d, &resp->pcr);
        case NSM_RESPONSE_ATTESTATION * 8 + 0: return get_document(d, resp);
        case NSM_RESPONSE_GET_RANDOM * 8 + 0:
                return rpc_get_bytes_copy(&d->r, 0, NSM_RANDOM_MAX, resp->random, &resp->random_len) < 0
                               ? dec_fail(d, -EBADMSG, "'random'", "a byte string of at most 1024 bytes")
                               : 0;
        case NSM_RESPONSE_DESCRIBE_NSM * 8 + 0: return get_u16(d, "'version_major'", &dd->version_major);
        case NSM_RESPONSE_DESCRIBE_NSM * 8 + 1: return get_u16(d, "'version_minor'", &dd->version_minor);
        case NSM_RESPONSE_DESCRIBE_NSM * 8 + 2: return get_u16(d, "'version_patch'", &dd->version_patch);
        case NSM_RESPONSE_DESCRIBE_NSM * 8 + 3: return get_module_id(d, dd->module_id);
        case NSM_RESPONSE_DESCRIBE_NSM * 8 + 4: return get_u16(d, "'max_pcrs'", &dd->max_pcrs);
        case NSM_RESPONSE_DESCRIBE_NSM * 8 + 5: return get_locked_pcrs(d, dd);
        case NSM_RESPONSE_DESCRIBE_NSM * 8 + 6: return get_digest(d, &dd->digest);
        default: return -EINVAL;
        }
}

/* All fields are mandatory. */
static const unsigned response_fields[_NSM_RESPONSE_MAX] = {
        [NSM_RESPONSE_DESCRIBE_PCR] = 3, [NSM_RESPONSE_EXTEND_PCR] = 1,     [NSM_RESPONSE_ATTESTATION] = 1,
        [NSM_RESPONSE_GET_RANDOM] = 1,   [NSM_RESPONSE_DESCRIBE_NSM] = 127,
};

static int response_value_of(struct dec *d, int v, void *obj) {
        struct nsm_response *resp = obj;
        struct rpc_slice s;

        resp->kind = (enum nsm_response_kind) v;
        if (v != NSM_RESPONSE_ERROR)
                return struct_map(d, response_field_names[v], ELEMENTSOF(response_field_names[v]),
                                  response_value, resp, response_fields[v]);
        if (rpc_get_text(&d->r, 1, 32, &s) < 0)
                return dec_fail(d, -EBADMSG, "value", "an error name");
        resp->error = nsm_error_from_name(s.ptr, s.len);
        if (resp->error < 0)
                return dec_fail(d, -EBADMSG, "value", "a known error name");
        return 0;
}

static const struct variant_shape response_shape = {
        .max = _NSM_RESPONSE_MAX,
        .units = 1u << NSM_RESPONSE_LOCK_PCR | 1u << NSM_RESPONSE_LOCK_PCRS,
        .err = -EBADMSG,
        .units_named = "\"LockPCR\" or \"LockPCRs\" as a bare name",
        .value = response_value_of,
};

int nsm_response_decode(const uint8_t *buf, size_t len, struct nsm_response *ret, char **ret_error) {
        struct nsm_response resp = { .error = _NSM_ERROR_INVALID };
        struct dec d = { .error = ret_error, .what = "response", .err = -EBADMSG };
        int k;

        if (!ret || (!buf && len > 0))
                return -EINVAL;
        if (len > NSM_RESPONSE_MAX)
                return errmsg_set(ret_error, -EBADMSG, "NSM response of %zu bytes, above %d", len,
                                  NSM_RESPONSE_MAX);
        rpc_reader_init_doc(&d.r, buf, len, &nsm_limits);
        k = variant_body(&d, &response_shape, &resp);
        if (k >= 0)
                resp.kind = (enum nsm_response_kind) k;
        if (k >= 0 && rpc_reader_end(&d.r) < 0)
                k = dec_fail(&d, -EBADMSG, "end", "no trailing bytes");
        if (k < 0) {
                nsm_response_done(&resp);
                return k;
        }
        *ret = resp;
        secret_wipe(&resp, sizeof(resp));
        return 0;
}

/* ---- request decoding (the simulator's side) ---- */

static int get_opt(struct dec *d, const char *field, struct nsm_opt *ret) {
        enum rpc_item_type t;
        struct rpc_slice s;

        if (rpc_peek(&d->r, &t) >= 0 && t == RPC_ITEM_NULL) {
                if (rpc_get_null(&d->r) < 0)
                        return dec_fail(d, -EINVAL, field, "null");
                *ret = (struct nsm_opt){};
                return 0;
        }
        if (rpc_get_bytes(&d->r, 0, NSM_REQUEST_MAX, &s) < 0)
                return dec_fail(d, -EINVAL, field, "a byte string or null");
        *ret = NSM_OPT(s.ptr, s.len);
        return 0;
}

static int request_u16(struct dec *d, const char *name, uint16_t *ret) {
        uint64_t v;

        if (rpc_get_uint(&d->r, UINT16_MAX, &v) < 0)
                return dec_fail(d, -EINVAL, name, "an unsigned integer of at most 65535");
        *ret = (uint16_t) v;
        return 0;
}

/* Each variant's fields; bit i of "seen" is field i. */
static const char *const request_field_names[_NSM_REQUEST_MAX][3] = {
        [NSM_REQUEST_DESCRIBE_PCR] = { "index" },
        [NSM_REQUEST_EXTEND_PCR] = { "index", "data" },
        [NSM_REQUEST_LOCK_PCR] = { "index" },
        [NSM_REQUEST_LOCK_PCRS] = { "range" },
        [NSM_REQUEST_ATTESTATION] = { "user_data", "nonce", "public_key" },
};

static int request_value(struct dec *d, void *obj, unsigned field) {
        struct nsm_request *req = obj;
        struct rpc_slice s;

        switch (req->kind * 4 + (int) field) {
        case NSM_REQUEST_DESCRIBE_PCR * 4 + 0:
        case NSM_REQUEST_EXTEND_PCR * 4 + 0:
        case NSM_REQUEST_LOCK_PCR * 4 + 0: return request_u16(d, "'index'", &req->index);
        case NSM_REQUEST_LOCK_PCRS * 4 + 0: return request_u16(d, "'range'", &req->range);
        case NSM_REQUEST_EXTEND_PCR * 4 + 1:
                if (rpc_get_bytes(&d->r, 0, NSM_REQUEST_MAX, &s) < 0)
                        return dec_fail(d, -EINVAL, "'data'", "a byte string");
                req->data = NSM_OPT(s.ptr, s.len);
                return 0;
        case NSM_REQUEST_ATTESTATION * 4 + 0: return get_opt(d, "user_data", &req->user_data);
        case NSM_REQUEST_ATTESTATION * 4 + 1: return get_opt(d, "nonce", &req->nonce);
        case NSM_REQUEST_ATTESTATION * 4 + 2: return get_opt(d, "public_key", &req->pk);
        default: return -EINVAL;
        }
}

/* Missing Option fields are None for serde; the others are mandatory. */
static const unsigned request_fields[_NSM_REQUEST_MAX] = {
        [NSM_REQUEST_DESCRIBE_PCR] = 1, [NSM_REQUEST_EXTEND_PCR] = 3,  [NSM_REQUEST_LOCK_PCR] = 1,
        [NSM_REQUEST_LOCK_PCRS] = 1,    [NSM_REQUEST_ATTESTATION] = 0,
};

static int request_value_of(struct dec *d, int v, void *obj) {
        struct nsm_request *req = obj;

        req->kind = (enum nsm_request_kind) v;
        return struct_map(d, request_field_names[v], ELEMENTSOF(request_field_names[v]), request_value, req,
                          request_fields[v]);
}

static const struct variant_shape request_shape = {
        .max = _NSM_REQUEST_MAX,
        .units = 1u << NSM_REQUEST_DESCRIBE_NSM | 1u << NSM_REQUEST_GET_RANDOM,
        .err = -EOPNOTSUPP,
        .units_named = "\"DescribeNSM\" or \"GetRandom\"",
        .value = request_value_of,
};

int nsm_request_decode(const uint8_t *buf, size_t len, struct nsm_request *ret, char **ret_error) {
        struct nsm_request req = {};
        struct dec d = { .error = ret_error, .what = "request", .err = -EINVAL };
        int k;

        if (!ret || (!buf && len > 0))
                return -EINVAL;
        if (len > NSM_REQUEST_MAX)
                return errmsg_set(ret_error, -EMSGSIZE, "NSM request of %zu bytes, above %d", len,
                                  NSM_REQUEST_MAX);
        rpc_reader_init_doc(&d.r, buf, len, &nsm_limits);
        k = variant_body(&d, &request_shape, &req);
        if (k < 0)
                return k;
        req.kind = (enum nsm_request_kind) k;
        if (rpc_reader_end(&d.r) < 0)
                return dec_fail(&d, -EBADMSG, "end", "no trailing bytes");
        *ret = req;
        return 0;
}

/* ---- the device ---- */

struct nsm_dev {
        const struct nsm_dev_ops *ops;
        void *userdata;
};

int nsm_dev_new(const struct nsm_dev_ops *ops, void *userdata, struct nsm_dev **ret) {
        struct nsm_dev *d;

        if (!ops || !ops->transact || !ret) {
                if (ops && ops->free)
                        ops->free(userdata);
                return -EINVAL;
        }
        d = calloc(1, sizeof(*d));
        if (!d) {
                if (ops->free)
                        ops->free(userdata);
                return -ENOMEM;
        }
        d->ops = ops;
        d->userdata = userdata;
        *ret = d;
        return 0;
}

struct nsm_dev *nsm_dev_free(struct nsm_dev *d) {
        if (!d)
                return NULL;
        if (d->ops->free)
                d->ops->free(d->userdata);
        free(d);
        return NULL;
}

const char *nsm_dev_name(const struct nsm_dev *d) {
        return d ? d->ops->name : NULL;
}

/* include/uapi/linux/nsm.h: two {addr, len} pairs, request then response; response.len is in/out.
 * The legacy nsm.ko's two struct iovec have the same layout on the 64-bit enclaves. */
struct nsm_ioctl_iovec {
        uint64_t addr;
        uint64_t len;
};
struct nsm_ioctl_raw {
        struct nsm_ioctl_iovec request;
        struct nsm_ioctl_iovec response;
};
#define NSM_IOCTL_RAW _IOWR(0x0A, 0, struct nsm_ioctl_raw)
_Static_assert(sizeof(struct nsm_ioctl_raw) == 32, "the NSM ioctl argument is 32 bytes");
_Static_assert(NSM_IOCTL_RAW == 0xC0200A00u, "NSM_IOCTL_RAW is 0xC0200A00");

struct nsm_real {
        int fd;
};

static int real_transact(void *userdata, const uint8_t *req, size_t req_len, uint8_t *resp,
                         size_t *ret_len) {
        struct nsm_real *n = userdata;
        struct nsm_ioctl_raw raw;

        for (;;) {
                /* Exactly NSM_RESPONSE_MAX: QEMU's virtio-nsm refuses any other size (1.1). */
                raw = (struct nsm_ioctl_raw){
                        .request = { .addr = (uintptr_t) req, .len = req_len },
                        .response = { .addr = (uintptr_t) resp, .len = NSM_RESPONSE_MAX },
                };
                if (ioctl(n->fd, NSM_IOCTL_RAW, &raw) >= 0)
                        break;
                if (errno != EINTR)
                        return negative_errno();
        }
        if (raw.response.len > NSM_RESPONSE_MAX)
                return -EBADMSG;
        *ret_len = (size_t) raw.response.len;
        return 0;
}

static void real_free(void *userdata) {
        struct nsm_real *n = userdata;

        if (n) {
                safe_close(n->fd);
                free(n);
        }
}

static const struct nsm_dev_ops real_ops = {
        .name = NSM_DEV_PATH,
        .transact = real_transact,
        .free = real_free,
};

int nsm_dev_open(const char *path, struct nsm_dev **ret) {
        _cleanup_close_ int fd = -1;
        struct nsm_real *n;

        if (!ret)
                return -EINVAL;
        fd = open(path ? path : NSM_DEV_PATH, O_RDWR | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return negative_errno();
        n = malloc(sizeof(*n));
        if (!n)
                return -ENOMEM;
        n->fd = TAKE_FD(fd);
        return nsm_dev_new(&real_ops, n, ret);
}

int nsm_dev_call(struct nsm_dev *d, const struct nsm_request *req, struct nsm_response *ret,
                 char **ret_error) {
        struct nsm_response resp = {};
        uint8_t reqbuf[NSM_REQUEST_MAX];
        _cleanup_free_ uint8_t *respbuf = NULL;
        const char *name;
        size_t req_len = 0, resp_len = 0;
        int r;

        if (!d || !req || !ret)
                return -EINVAL;
        name = nsm_request_kind_to_name(req->kind);
        if (!name)
                return errmsg_set(ret_error, -EINVAL, "Unknown NSM request kind %d", (int) req->kind);
        r = nsm_request_encode(req, reqbuf, sizeof(reqbuf), &req_len);
        if (r == -EMSGSIZE)
                return errmsg_set(ret_error, r, "NSM %s request is larger than %d bytes, not sent", name,
                                  NSM_REQUEST_MAX);
        if (r < 0)
                return errmsg_set(ret_error, r, "Failed to encode the NSM %s request", name);
        respbuf = malloc(NSM_RESPONSE_MAX);
        if (!respbuf)
                return -ENOMEM;
        r = d->ops->transact(d->userdata, reqbuf, req_len, respbuf, &resp_len);
        secret_wipe(reqbuf, req_len);
        if (r >= 0 && resp_len > NSM_RESPONSE_MAX)
                r = -EBADMSG;
        if (r < 0) {
                secret_wipe(respbuf, NSM_RESPONSE_MAX);
                return errmsg_set(ret_error, r, "NSM %s request on %s failed: %s", name, d->ops->name,
                                  strerror(-r));
        }
        r = nsm_response_decode(respbuf, resp_len, &resp, ret_error);
        secret_wipe(respbuf, NSM_RESPONSE_MAX); /* GetRandom's bytes */
        if (r < 0)
                return r;
        if (resp.kind == NSM_RESPONSE_ERROR) {
                r = nsm_error_to_errno(resp.error);
                return errmsg_set(ret_error, r, "NSM answered %s with %s (%s)", name,
                                  nsm_error_to_name(resp.error), nsm_error_to_string(resp.error));
        }
        if ((int) resp.kind != (int) req->kind) {
                nsm_response_done(&resp);
                return errmsg_set(ret_error, -EBADMSG, "NSM answered a %s request with %s", name,
                                  nsm_response_kind_to_name(resp.kind));
        }
        *ret = resp;
        secret_wipe(&resp, sizeof(resp));
        return 0;
}

/* ---- high-level calls ---- */

static struct nsm_opt opt_or_null(const struct nsm_opt *o) {
        return o && o->present ? *o : (struct nsm_opt){};
}

int nsm_get_attestation(struct nsm_dev *d, const struct nsm_opt *nonce, const struct nsm_opt *user_data,
                        const struct nsm_opt *public_key, uint8_t **ret_doc, size_t *ret_len,
                        char **ret_error) {
        struct nsm_request req = {
                .kind = NSM_REQUEST_ATTESTATION,
                .user_data = opt_or_null(user_data),
                .nonce = opt_or_null(nonce),
                .pk = opt_or_null(public_key),
        };
        struct nsm_response resp = {};
        int r;

        if (!ret_doc || !ret_len)
                return -EINVAL;
        if (req.user_data.len > NSM_OPT_GEN_MAX || req.nonce.len > NSM_OPT_GEN_MAX)
                return errmsg_set(ret_error, -EMSGSIZE,
                                  "Attestation user_data (%zu bytes) or nonce (%zu bytes) "
                                  "above %d bytes",
                                  req.user_data.len, req.nonce.len, NSM_OPT_GEN_MAX);
        if (req.pk.len > NSM_OPT_MAX)
                return errmsg_set(ret_error, -EMSGSIZE, "Attestation public_key of %zu bytes, above %d",
                                  req.pk.len, NSM_OPT_MAX);
        r = nsm_dev_call(d, &req, &resp, ret_error);
        if (r < 0)
                return r;
        *ret_doc = TAKE_PTR(resp.document);
        *ret_len = resp.document_len;
        nsm_response_done(&resp);
        return 0;
}

int nsm_describe_pcr(struct nsm_dev *d, uint16_t index, struct nsm_pcr *ret, char **ret_error) {
        struct nsm_request req = { .kind = NSM_REQUEST_DESCRIBE_PCR, .index = index };
        struct nsm_response resp = {};
        int r;

        if (!ret)
                return -EINVAL;
        r = nsm_dev_call(d, &req, &resp, ret_error);
        if (r < 0)
                return r;
        *ret = resp.pcr;
        nsm_response_done(&resp);
        return 0;
}

int nsm_extend_pcr(struct nsm_dev *d, uint16_t index, const uint8_t *data, size_t len, struct nsm_pcr *ret,
                   char **ret_error) {
        struct nsm_request req = { .kind = NSM_REQUEST_EXTEND_PCR,
                                   .index = index,
                                   .data = NSM_OPT(data, len) };
        struct nsm_response resp = {};
        int r;

        if (!data && len > 0)
                return -EINVAL;
        r = nsm_dev_call(d, &req, &resp, ret_error);
        if (r < 0)
                return r;
        if (ret)
                *ret = resp.pcr;
        nsm_response_done(&resp);
        return 0;
}

int nsm_lock_pcr(struct nsm_dev *d, uint16_t index, char **ret_error) {
        struct nsm_request req = { .kind = NSM_REQUEST_LOCK_PCR, .index = index };
        struct nsm_response resp = {};
        int r;

        r = nsm_dev_call(d, &req, &resp, ret_error);
        nsm_response_done(&resp);
        return r < 0 ? r : 0;
}

int nsm_lock_pcrs(struct nsm_dev *d, uint16_t range, char **ret_error) {
        struct nsm_request req = { .kind = NSM_REQUEST_LOCK_PCRS, .range = range };
        struct nsm_response resp = {};
        int r;

        r = nsm_dev_call(d, &req, &resp, ret_error);
        nsm_response_done(&resp);
        return r < 0 ? r : 0;
}

int nsm_get_random(struct nsm_dev *d, uint8_t *buf, size_t len, char **ret_error) {
        struct nsm_request req = { .kind = NSM_REQUEST_GET_RANDOM };
        size_t done = 0;
        int r;

        if (!buf && len > 0)
                return -EINVAL;
        while (done < len) {
                struct nsm_response resp = {};
                size_t n;

                r = nsm_dev_call(d, &req, &resp, ret_error);
                if (r < 0) {
                        secret_wipe(buf, done);
                        return r;
                }
                if (resp.random_len == 0) {
                        secret_wipe(buf, done);
                        return errmsg_set(ret_error, -EIO, "NSM GetRandom answered no bytes");
                }
                n = MIN(resp.random_len, len - done);
                memcpy(buf + done, resp.random, n);
                done += n;
                nsm_response_done(&resp);
        }
        return 0;
}

int nsm_describe(struct nsm_dev *d, struct nsm_description *ret, char **ret_error) {
        struct nsm_request req = { .kind = NSM_REQUEST_DESCRIBE_NSM };
        struct nsm_response resp = {};
        int r;

        if (!ret)
                return -EINVAL;
        r = nsm_dev_call(d, &req, &resp, ret_error);
        if (r < 0)
                return r;
        *ret = resp.description;
        nsm_response_done(&resp);
        return 0;
}
