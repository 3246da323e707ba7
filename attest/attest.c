/* Parsing a Nitro attestation document: the COSE_Sign1 envelope and the AttestationDocument payload,
 * with the bounded CBOR reader in document mode. Every failure names a byte offset and a field. */
#include <errno.h>
#include <string.h>

#include "attest/attest.h"
#include "common/cbor-read.h"

/* Depth: tag + array for the envelope, map + pcrs map for the payload. Counts: 32 PCRs at most,
 * the payload map is capped separately. */
static const struct rpc_reader_limits doc_limits = { .depth = 4, .count = 64, .len = ATTEST_DOC_MAX };

static const char *const reason_names[_ATTEST_REASON_MAX] = {
        [ATTEST_OK] = "ok",
        [ATTEST_ERR_MALFORMED] = "malformed",
        [ATTEST_ERR_SIGNATURE] = "signature",
        [ATTEST_ERR_CHAIN] = "chain",
        [ATTEST_ERR_EXPIRED] = "expired",
        [ATTEST_ERR_ROOT] = "root",
        [ATTEST_ERR_PCR] = "pcr",
        [ATTEST_ERR_INTERNAL] = "internal",
};

const char *attest_reason_to_string(enum attest_reason r) {
        if ((int) r < 0 || r >= _ATTEST_REASON_MAX)
                return NULL;
        return reason_names[r];
}

enum payload_key {
        KEY_MODULE_ID,
        KEY_DIGEST,
        KEY_TIMESTAMP,
        KEY_PCRS,
        KEY_CERTIFICATE,
        KEY_CABUNDLE,
        KEY_PUBLIC_KEY,
        KEY_USER_DATA,
        KEY_NONCE,
        _KEY_MAX,
};

static const char *const key_names[_KEY_MAX] = {
        "module_id", "digest",     "timestamp", "pcrs",  "certificate",
        "cabundle",  "public_key", "user_data", "nonce",
};

static const char *const missing_names[_KEY_MAX] = {
        "payload (module_id missing)", "payload (digest missing)",      "payload (timestamp missing)",
        "payload (pcrs missing)",      "payload (certificate missing)", "payload (cabundle missing)",
};

#define MANDATORY_KEYS                                                                           \
        ((1u << KEY_MODULE_ID) | (1u << KEY_DIGEST) | (1u << KEY_TIMESTAMP) | (1u << KEY_PCRS) | \
         (1u << KEY_CERTIFICATE) | (1u << KEY_CABUNDLE))

/* A reader over part of the document, reporting offsets from the document's first byte. */
struct cursor {
        struct rpc_reader r;
        size_t base; /* offset of r.buf[0] in the document */
        struct attest_result *res;
};

static void cursor_init(struct cursor *c, const uint8_t *doc, struct attest_blob part,
                        struct attest_result *res) {
        rpc_reader_init_doc(&c->r, part.ptr, part.len, &doc_limits);
        c->base = (size_t) (part.ptr - doc);
        c->res = res;
}

static size_t cursor_off(const struct cursor *c) {
        return c->base + c->r.pos;
}

static int fail_at(struct attest_result *res, size_t offset, const char *field) {
        res->reason = ATTEST_ERR_MALFORMED;
        res->offset = offset;
        res->field = field;
        return -EBADMSG;
}

static struct attest_blob blob(struct rpc_slice s) {
        return (struct attest_blob){ .ptr = s.ptr, .len = s.len };
}

/* {1: -35} and nothing else, in any valid encoding (the bytes are signed as received). */
static int parse_protected(const uint8_t *doc, struct attest_blob prot, struct attest_result *res) {
        struct rpc_container m;
        struct cursor c;
        uint64_t key;
        int64_t alg;
        int k;

        cursor_init(&c, doc, prot, res);
        if ((k = rpc_get_map_begin(&c.r, 1, &m)) < 0 || (k = rpc_container_next(&c.r, &m)) != 1)
                return fail_at(res, cursor_off(&c), "protected (not a map with one entry)");
        if ((k = rpc_get_uint(&c.r, 1, &key)) < 0 || key != 1)
                return fail_at(res, cursor_off(&c), "protected (key is not 1 = alg)");
        if ((k = rpc_get_int(&c.r, -35, -35, &alg)) < 0)
                return fail_at(res, cursor_off(&c), "protected (alg is not -35 = ES384)");
        if ((k = rpc_container_next(&c.r, &m)) != 0)
                return fail_at(res, cursor_off(&c), "protected (more than one entry)");
        if (rpc_reader_end(&c.r) < 0)
                return fail_at(res, cursor_off(&c), "protected (trailing bytes)");
        return 0;
}

static int parse_envelope(const uint8_t *doc, size_t len, struct attest_result *res) {
        struct attest_doc *d = &res->doc;
        struct rpc_container arr, unprot;
        struct rpc_slice s;
        struct rpc_reader r;
        enum rpc_item_type t;
        uint64_t tag;
        size_t at;

        if (len > ATTEST_DOC_MAX)
                return fail_at(res, ATTEST_DOC_MAX, "document (larger than 16384 bytes)");
        rpc_reader_init_doc(&r, doc, len, &doc_limits);
        if (rpc_peek(&r, &t) < 0)
                return fail_at(res, r.pos, "document (empty or bad CBOR head)");
        if (t == RPC_ITEM_TAG) {
                if (rpc_get_tag(&r, &tag) < 0 || tag != 18)
                        return fail_at(res, 0, "tag (not 18 = COSE_Sign1)");
                d->tagged = true;
        }
        at = r.pos;
        if (rpc_get_array_begin(&r, 4, &arr) < 0 || arr.indefinite || arr.n != 4)
                return fail_at(res, at, "COSE_Sign1 (not a definite array of 4)");

        at = r.pos;
        if (rpc_container_next(&r, &arr) != 1 || rpc_get_bytes(&r, 1, 64, &s) < 0)
                return fail_at(res, at, "protected (not a byte string of 1..64 bytes)");
        d->protected_hdr = blob(s);

        at = r.pos;
        if (rpc_container_next(&r, &arr) != 1 || rpc_get_map_begin(&r, 1, &unprot) < 0 ||
            rpc_container_next(&r, &unprot) != 0)
                return fail_at(res, at, "unprotected (not an empty map)");

        at = r.pos;
        if (rpc_container_next(&r, &arr) != 1 || rpc_get_bytes(&r, 1, ATTEST_DOC_MAX, &s) < 0)
                return fail_at(res, at, "payload (not a byte string)");
        d->payload = blob(s);

        at = r.pos;
        if (rpc_container_next(&r, &arr) != 1 || rpc_get_bytes(&r, 96, 96, &s) < 0)
                return fail_at(res, at, "signature (not a byte string of 96 bytes)");
        d->signature = blob(s);

        at = r.pos;
        if (rpc_container_next(&r, &arr) != 0 || rpc_reader_end(&r) < 0)
                return fail_at(res, at, "document (trailing bytes)");
        return parse_protected(doc, d->protected_hdr, res);
}

static int parse_opt(struct cursor *c, struct attest_opt *o, const char *field) {
        enum rpc_item_type t;
        struct rpc_slice s;
        size_t at = cursor_off(c);

        if (rpc_peek(&c->r, &t) < 0)
                return fail_at(c->res, at, field);
        if (t == RPC_ITEM_NULL) {
                if (rpc_get_null(&c->r) < 0)
                        return fail_at(c->res, at, field);
                *o = (struct attest_opt){ .kind = ATTEST_OPT_NULL };
                return 0;
        }
        if (rpc_get_bytes(&c->r, 0, ATTEST_OPT_MAX, &s) < 0)
                return fail_at(c->res, at, field);
        *o = (struct attest_opt){ .kind = ATTEST_OPT_BYTES, .ptr = s.ptr, .len = s.len };
        return 0;
}

static int parse_pcrs(struct cursor *c) {
        struct attest_doc *d = &c->res->doc;
        struct rpc_container m;
        uint32_t seen = 0;
        size_t start = cursor_off(c), at;
        int k;

        if (rpc_get_map_begin(&c->r, ATTEST_PCR_COUNT, &m) < 0)
                return fail_at(c->res, start, "pcrs (not a map of at most 32 entries)");
        while ((k = rpc_container_next(&c->r, &m)) > 0) {
                struct rpc_slice s;
                uint64_t idx;

                at = cursor_off(c);
                if (rpc_get_uint(&c->r, ATTEST_PCR_COUNT - 1, &idx) < 0)
                        return fail_at(c->res, at, "pcrs (index not an integer 0..31)");
                if (seen & (UINT32_C(1) << idx))
                        return fail_at(c->res, at, "pcrs (duplicate index)");
                seen |= UINT32_C(1) << idx;
                at = cursor_off(c);
                if (rpc_get_bytes(&c->r, ATTEST_PCR_LEN, ATTEST_PCR_LEN, &s) < 0)
                        return fail_at(c->res, at, "pcrs (value not a byte string of 48 bytes)");
                d->pcrs[d->n_pcrs++] =
                        (struct attest_pcr_value){ .index = (unsigned) idx, .ptr = s.ptr, .len = s.len };
        }
        if (k < 0)
                return fail_at(c->res, cursor_off(c), "pcrs (more than 32 entries or bad break)");
        if (d->n_pcrs < ATTEST_PCR_MIN || (seen & 0xffffu) != 0xffffu)
                return fail_at(c->res, start, "pcrs (PCRs 0..15 not all present)");
        return 0;
}

static int parse_cabundle(struct cursor *c) {
        struct attest_doc *d = &c->res->doc;
        struct rpc_container a;
        size_t start = cursor_off(c), at;
        int k;

        if (rpc_get_array_begin(&c->r, ATTEST_CABUNDLE_MAX, &a) < 0)
                return fail_at(c->res, start, "cabundle (not an array of at most 16 entries)");
        while ((k = rpc_container_next(&c->r, &a)) > 0) {
                struct rpc_slice s;

                at = cursor_off(c);
                if (rpc_get_bytes(&c->r, 1, ATTEST_CERT_MAX, &s) < 0)
                        return fail_at(c->res, at, "cabundle (entry not a byte string of 1..1024 bytes)");
                d->cabundle[d->n_cabundle++] = blob(s);
        }
        if (k < 0)
                return fail_at(c->res, cursor_off(c), "cabundle (more than 16 entries or bad break)");
        if (d->n_cabundle == 0)
                return fail_at(c->res, start, "cabundle (empty)");
        return 0;
}

static int parse_value(struct cursor *c, enum payload_key key) {
        struct attest_doc *d = &c->res->doc;
        struct rpc_slice s;
        size_t at = cursor_off(c);

        switch (key) {
        case KEY_MODULE_ID:
                if (rpc_get_text(&c->r, 1, ATTEST_MODULE_ID_MAX, &s) < 0)
                        return fail_at(c->res, at, "module_id (not text of 1..256 bytes)");
                d->module_id = blob(s);
                return 0;
        case KEY_DIGEST:
                if (rpc_get_text(&c->r, 1, 16, &s) < 0 || !rpc_slice_eq_str(&s, "SHA384"))
                        return fail_at(c->res, at, "digest (not \"SHA384\")");
                d->digest = blob(s);
                return 0;
        case KEY_TIMESTAMP:
                if (rpc_get_uint(&c->r, UINT64_MAX, &d->timestamp_ms) < 0 || d->timestamp_ms == 0)
                        return fail_at(c->res, at, "timestamp (not an integer > 0)");
                return 0;
        case KEY_PCRS: return parse_pcrs(c);
        case KEY_CERTIFICATE:
                if (rpc_get_bytes(&c->r, 1, ATTEST_CERT_MAX, &s) < 0)
                        return fail_at(c->res, at, "certificate (not a byte string of 1..1024 bytes)");
                d->certificate = blob(s);
                return 0;
        case KEY_CABUNDLE: return parse_cabundle(c);
        case KEY_PUBLIC_KEY: return parse_opt(c, &d->public_key, "public_key (not null or 0..1024 bytes)");
        case KEY_USER_DATA: return parse_opt(c, &d->user_data, "user_data (not null or 0..1024 bytes)");
        case KEY_NONCE: return parse_opt(c, &d->nonce, "nonce (not null or 0..1024 bytes)");
        default: return -EINVAL;
        }
}

static int parse_payload(const uint8_t *doc, struct attest_result *res) {
        struct rpc_container m;
        struct cursor c;
        unsigned seen = 0;
        size_t at;
        int k, r;

        cursor_init(&c, doc, res->doc.payload, res);
        /* 16 pairs: a tenth key is reported as unknown or duplicate, not as a count overflow. */
        if (rpc_get_map_begin(&c.r, 16, &m) < 0)
                return fail_at(res, c.base, "payload (not a map)");
        res->doc.payload_indefinite = m.indefinite;
        while ((k = rpc_container_next(&c.r, &m)) > 0) {
                struct rpc_slice name;
                enum payload_key key;

                at = cursor_off(&c);
                if (rpc_get_text(&c.r, 1, 32, &name) < 0)
                        return fail_at(res, at, "payload key (not text of 1..32 bytes)");
                for (key = 0; key < _KEY_MAX; key++)
                        if (rpc_slice_eq_str(&name, key_names[key]))
                                break;
                if (key == _KEY_MAX)
                        return fail_at(res, at, "payload key (unknown)");
                if (seen & (1u << key))
                        return fail_at(res, at, "payload key (duplicate)");
                seen |= 1u << key;
                r = parse_value(&c, key);
                if (r < 0)
                        return r;
        }
        if (k < 0)
                return fail_at(res, cursor_off(&c), "payload (more than 16 entries or bad break)");
        if (rpc_reader_end(&c.r) < 0)
                return fail_at(res, cursor_off(&c), "payload (trailing bytes)");
        for (enum payload_key key = 0; key < _KEY_MAX; key++)
                if ((MANDATORY_KEYS & (1u << key)) && !(seen & (1u << key)))
                        return fail_at(res, c.base, missing_names[key]);
        return 0;
}

int attest_parse(const uint8_t *buf, size_t len, struct attest_result *ret) {
        int r;

        *ret = (struct attest_result){ .reason = ATTEST_OK };
        if (!buf && len > 0) {
                ret->reason = ATTEST_ERR_INTERNAL;
                ret->detail = "no buffer";
                return -EINVAL;
        }
        r = parse_envelope(buf, len, ret);
        if (r < 0)
                return r;
        return parse_payload(buf, ret);
}
