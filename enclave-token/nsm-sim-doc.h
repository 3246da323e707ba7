/* The NSM simulator's attestation documents: a test CA made at startup (attest/'s builder) signs
 * documents in the real layout. Compiled only with -Dnsm_simulator=true, like the simulator. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/cleanup.h"
#include "enclave-token/nsm-sim.h"

/* The test CA is valid from now - 1 h to now + 30 days. */
#define ETOK_SIM_CA_BEFORE_SEC 3600
#define ETOK_SIM_CA_AFTER_SEC  (30 * 24 * 3600)

struct etok_sim_doc;

/* A new test CA valid [now - ETOK_SIM_CA_BEFORE_SEC, now + ETOK_SIM_CA_AFTER_SEC]. module_id NULL:
 * NSM_SIM_MODULE_ID. */
_must_check_ int etok_sim_doc_new(time_t now, const char *module_id, struct etok_sim_doc **ret);
struct etok_sim_doc *etok_sim_doc_free(struct etok_sim_doc *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct etok_sim_doc *, etok_sim_doc_free);

/* The nsm_sim_doc_fn (userdata: a struct etok_sim_doc): module_id, digest SHA384, timestamp now (ms),
 * PCRs 0-15 (locked at boot, as real documents list them), certificate (the leaf), cabundle [root,
 * intermediate], and public_key / user_data / nonce as requested (null when not). */
int etok_sim_doc_make(void *userdata, const uint8_t (*pcrs)[NSM_PCR_LEN], unsigned n_pcrs,
                      const struct nsm_opt *user_data, const struct nsm_opt *nonce,
                      const struct nsm_opt *public_key, uint8_t **ret_doc, size_t *ret_len);

/* The root certificate as PEM (malloc()ed, NUL-terminated), for --nsm-sim-root. */
_must_check_ int etok_sim_doc_root_pem(const struct etok_sim_doc *s, char **ret, size_t *ret_len);
