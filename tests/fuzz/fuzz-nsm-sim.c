/* Target: nsm_sim_transact() (the simulator's request decoding and handling).
 *
 * Input: one request's bytes. Whatever comes in, the simulator answers a response the client's
 * decoder accepts: the variant asked for, or an {"Error": name}. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "enclave-token/nsm-sim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t resp[NSM_RESPONSE_MAX];

static int doc_fn(void *userdata, const uint8_t (*pcrs)[NSM_PCR_LEN], unsigned n_pcrs,
                  const struct nsm_opt *u, const struct nsm_opt *n, const struct nsm_opt *pk,
                  uint8_t **ret_doc, size_t *ret_len) {
        size_t len = 1 + u->len + n->len + pk->len;
        uint8_t *doc = malloc(len);

        if (!doc)
                return -ENOMEM;
        doc[0] = 0x84;
        memcpy(doc + 1, u->present ? u->ptr : (const uint8_t *) "", u->len);
        memcpy(doc + 1 + u->len, n->present ? n->ptr : (const uint8_t *) "", n->len);
        memcpy(doc + 1 + u->len + n->len, pk->present ? pk->ptr : (const uint8_t *) "", pk->len);
        *ret_doc = doc;
        *ret_len = len;
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const uint8_t pcr0[NSM_PCR_LEN] = { 1 };
        struct nsm_sim *s = NULL;
        struct nsm_response out = {};
        struct nsm_request req;
        size_t len = 0;

        /* A fresh simulator per input, so that runs do not depend on each other. */
        if (nsm_sim_new(&(struct nsm_sim_config){ .pcr0 = pcr0, .doc_fn = doc_fn }, &s) < 0)
                return 0;
        if (nsm_sim_transact(s, data, size, resp, &len) < 0 || len > NSM_RESPONSE_MAX)
                abort();
        if (nsm_response_decode(resp, len, &out, NULL) < 0)
                abort();
        if (out.kind != NSM_RESPONSE_ERROR &&
            (nsm_request_decode(data, size, &req, NULL) < 0 || (int) req.kind != (int) out.kind))
                abort();
        nsm_response_done(&out);
        nsm_sim_free(s);
        return 0;
}
