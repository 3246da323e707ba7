/* The agent's check of the enclave's attestation document before it sends credentials. Pure. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "agent/attestation.h"
#include "attest/attest.h"
#include "common/errmsg.h"

#define SHOWN_BYTES 8 /* of a PCR value in a message: enough to tell two images apart */

static void hex_prefix(const uint8_t *p, size_t len, char *buf, size_t size) {
        size_t n = 0;

        buf[0] = '\0';
        for (size_t i = 0; i < MIN(len, (size_t) SHOWN_BYTES) && n + 3 <= size; i++)
                n += (size_t) snprintf(buf + n, size - n, "%02x", p[i]);
        if (len > SHOWN_BYTES && n + 4 <= size)
                (void) snprintf(buf + n, size - n, "\xe2\x80\xa6"); /* … */
}

static int fail(char **ret_error, int r, const char *what) {
        return errmsg_set(ret_error, r, "attestation: %s; not sending credentials", what);
}

static int explain(const struct attest_result *res, int r, const struct agent_attest_policy *p,
                   char **ret_error) {
        char want[2 * SHOWN_BYTES + 4], got[2 * SHOWN_BYTES + 4], msg[512];

        switch (res->reason) {
        case ATTEST_ERR_PCR:
                hex_prefix(res->pcr_expected.ptr, res->pcr_expected.len, want, sizeof(want));
                if (!res->pcr_actual.ptr)
                        (void) snprintf(msg, sizeof(msg), "the document has no PCR%u, expected %s (%s)",
                                        res->pcr_index, want, agent_pcrs_origin_to_string(p->origin));
                else {
                        hex_prefix(res->pcr_actual.ptr, res->pcr_actual.len, got, sizeof(got));
                        (void) snprintf(msg, sizeof(msg), "PCR%u is %s, expected %s (%s)", res->pcr_index,
                                        got, want, agent_pcrs_origin_to_string(p->origin));
                }
                return fail(ret_error, r, msg);
        case ATTEST_ERR_MALFORMED:
                (void) snprintf(msg, sizeof(msg), "the enclave's document is malformed at byte %zu (%s)",
                                res->offset, res->field ?: "?");
                return fail(ret_error, r, msg);
        case ATTEST_ERR_ROOT:
                return fail(ret_error, r,
                            p->root_der ? "the document's chain does not end at the NSM simulator's root"
                                        : "the document's chain does not end at the AWS Nitro Enclaves root "
                                          "(a simulated or forged NSM?)");
        case ATTEST_ERR_EXPIRED:
                (void) snprintf(
                        msg, sizeof(msg),
                        "a certificate of the document's chain is expired or not yet valid (depth %d%s%s)",
                        res->x509_depth, res->detail ? ": " : "", res->detail ?: "");
                return fail(ret_error, r, msg);
        case ATTEST_ERR_CHAIN:
                (void) snprintf(msg, sizeof(msg),
                                "the document's certificate chain does not verify (depth %d%s%s)",
                                res->x509_depth, res->detail ? ": " : "", res->detail ?: "");
                return fail(ret_error, r, msg);
        case ATTEST_ERR_SIGNATURE: return fail(ret_error, r, "the document's signature does not verify");
        default: return fail(ret_error, r == -ENOMEM ? r : -EIO, "the document could not be checked");
        }
}

int agent_attest_check(const uint8_t *doc, size_t len, const uint8_t *nonce, size_t nonce_len,
                       const struct agent_attest_policy *p, char **ret_error) {
        struct attest_pcr_expect expect[AGENT_PCR_COUNT];
        struct attest_opts opts = {
                .root_der = p->root_der,
                .root_len = p->root_len,
                .time_mode = p->time_ms ? ATTEST_TIME_GIVEN : ATTEST_TIME_NOW,
                .time_ms = p->time_ms,
                .pcrs = expect,
        };
        struct attest_result res;
        const struct attest_opt *n;
        int r;

        if (!doc || !nonce || nonce_len == 0 || !p)
                return -EINVAL;
        for (unsigned i = 0; p->pcrs && i < AGENT_PCR_COUNT; i++)
                if (p->pcrs->mask & (1u << i))
                        expect[opts.n_pcrs++] = (struct attest_pcr_expect){ .index = i,
                                                                            .ptr = p->pcrs->value[i],
                                                                            .len = AGENT_PCR_LEN };
        r = attest_verify(doc, len, &opts, &res);
        if (r < 0)
                return explain(&res, r, p, ret_error);
        /* A replayed document (an old one, or another enclave's) carries another nonce. */
        n = &res.doc.nonce;
        if (n->kind != ATTEST_OPT_BYTES || n->len != nonce_len ||
            CRYPTO_memcmp(n->ptr, nonce, nonce_len) != 0)
                return fail(
                        ret_error, -EKEYREJECTED,
                        n->kind != ATTEST_OPT_BYTES
                                ? "the document carries no nonce, not the one the agent sent (a replayed "
                                  "document?)"
                                : "the document's nonce is not the one the agent sent (a replayed "
                                  "document?)");
        return 0;
}
