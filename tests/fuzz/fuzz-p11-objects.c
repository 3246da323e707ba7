/* Target: p11_objects_build() (p11module/keys.c: the module's parse of a token's SPKIs and
 * certificates) on what rpc_msg_decode() makes of a TOKEN_OBJECTS response body, as
 * p11_remote_token_objects() does with what comes back from the vsock.
 *
 * Input: a TOKEN_OBJECTS response body (seeds: the enclave dispatcher's own answers for the Ed25519,
 * P-256 and RSA-2048 test tokens of fuzz-rpc-request, written by gen-objects-corpus). Invariants: the
 * build fails with -EBADMSG (or -ENOMEM) and leaves OpenSSL's error queue empty, or every key of the
 * message is found by its id with its SPKI and certificates copied byte for byte, a signature length
 * and CKA_ID that fit, and no two keys sharing an id. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "common/rpc-calls.h"
#include "p11module/keys.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool same(const struct p11_blob *b, const struct rpc_slice *s) {
        return b->len == s->len && (s->len == 0 || memcmp(b->ptr, s->ptr, s->len) == 0);
}

static void check(const struct rpc_token_info *ti, const struct p11_objects *o) {
        if (o->n_keys != ti->n_keys || o->generation != ti->generation)
                abort();
        if (ti->label.len <= RPC_LABEL_MAX &&
            (o->label_len != ti->label.len ||
             (o->label_len && memcmp(o->label, ti->label.ptr, o->label_len))))
                abort();
        for (size_t i = 0; i < ti->n_keys; i++) {
                const struct rpc_key_info *ki = &ti->keys[i];
                const struct p11_key *k = p11_objects_find_key(o, ki->id);

                if (k != &o->keys[i] || k->type == RPC_KEY_NONE ||
                    (ki->type != RPC_KEY_NONE && (uint32_t) k->type != ki->type))
                        abort();
                if (!same(&k->spki, &ki->spki) || k->n_certs != ki->n_certs)
                        abort();
                if (k->sig_len == 0 || k->key_bytes == 0 || k->ckid_len == 0 ||
                    k->ckid_len > sizeof(k->ckid))
                        abort();
                if (k->label_len != ki->label.len || k->label_len > RPC_KEY_LABEL_MAX)
                        abort();
                for (size_t c = 0; c < k->n_certs; c++)
                        if (!same(&k->certs[c].der, &ki->certs[c]) || k->certs[c].id.len == 0 ||
                            k->certs[c].label_len >= sizeof(k->certs[c].label))
                                abort();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const struct rpc_schema *schema = rpc_call_lookup(RPC_CALL_TOKEN_OBJECTS)->response;
        struct rpc_token_info *ti;
        struct p11_objects *o = NULL;
        int r;

        if (size > RPC_MAX_BODY_DATA)
                return 0;
        ti = calloc(1, sizeof(*ti));
        if (!ti)
                return 0;
        r = rpc_msg_decode(schema, data, size, ti);
        if (r < 0) {
                if (r != -EBADMSG && r != -ENOMEM)
                        abort();
                free(ti);
                return 0;
        }
        r = p11_objects_build(ti, &o);
        if (r < 0) {
                if ((r != -EBADMSG && r != -ENOMEM) || o)
                        abort();
        } else
                check(ti, o);
        if (ERR_peek_error() != 0)
                abort(); /* p11_key_build() leaves the queue as it found it */
        o = p11_objects_free(o);
        rpc_msg_done(schema, ti);
        free(ti);
        return 0;
}
