/* A software NSM for development and tests ONLY: request bytes in, response bytes out, in the real
 * shapes, with the real PCR rules. Compiled only with -Dnsm_simulator=true; its attestation documents
 * come from a caller's document maker (signed by a test CA), never verifiable against the AWS root. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "common/cleanup.h"
#include "enclave-token/nsm.h"

#define NSM_SIM_MODULE_ID "i-sim0000000000000-enc0000000000000"
#define NSM_SIM_RANDOM    256 /* bytes per GetRandom, as QEMU and the hardware answer */

/* Makes the attestation document for the PCRs (all n_pcrs of them; real documents list the locked
 * ones) and the request's optional fields (NULL pointers never: !present means null). *ret_doc is
 * malloc()ed and owned by the simulator afterwards. A negative errno answers InternalError. */
typedef int (*nsm_sim_doc_fn)(void *userdata, const uint8_t (*pcrs)[NSM_PCR_LEN], unsigned n_pcrs,
                              const struct nsm_opt *user_data, const struct nsm_opt *nonce,
                              const struct nsm_opt *public_key, uint8_t **ret_doc, size_t *ret_len);

struct nsm_sim_config {
        /* The image measurements to simulate, NSM_PCR_LEN bytes each; NULL leaves a PCR zero (as a
         * debug enclave reads PCR0-2). PCRs 0-15 are locked from the start. */
        const uint8_t *pcr0, *pcr1, *pcr2, *pcr3, *pcr4, *pcr8;
        const char *module_id; /* NULL: NSM_SIM_MODULE_ID */
        nsm_sim_doc_fn doc_fn; /* NULL: Attestation answers InternalError */
        void *doc_userdata;
};

struct nsm_sim;

_must_check_ int nsm_sim_new(const struct nsm_sim_config *cfg, struct nsm_sim **ret);
struct nsm_sim *nsm_sim_free(struct nsm_sim *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct nsm_sim *, nsm_sim_free);

/* One request: resp holds NSM_RESPONSE_MAX bytes. Every NSM-level failure is an {"Error": name}
 * response (0 returned); a negative errno only when not even that fits. Thread-safe. */
_must_check_ int nsm_sim_transact(struct nsm_sim *s, const uint8_t *req, size_t req_len, uint8_t *resp,
                                  size_t *ret_len);

/* A device backed by the simulator; the device owns s from here on (also on failure). */
_must_check_ int nsm_dev_new_sim(struct nsm_sim *s, struct nsm_dev **ret);
