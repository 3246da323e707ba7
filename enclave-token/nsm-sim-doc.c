/* The NSM simulator's attestation documents, signed by a test CA made at startup. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "attest/attest-build.h"
#include "common/cleanup-ssl.h"
#include "enclave-token/nsm-sim-doc.h"

/* Real documents list the PCRs locked at boot (0-15) and any user PCR locked since (1.4). */
#define SIM_DOC_PCRS 16

struct etok_sim_doc {
        struct attest_test_ca *ca;
        char module_id[NSM_MODULE_ID_MAX + 1];
};

int etok_sim_doc_new(time_t now, const char *module_id, struct etok_sim_doc **ret) {
        _cleanup_(etok_sim_doc_freep) struct etok_sim_doc *s = NULL;
        int r;

        if (!module_id)
                module_id = NSM_SIM_MODULE_ID;
        if (strlen(module_id) == 0 || strlen(module_id) > NSM_MODULE_ID_MAX)
                return -EINVAL;
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        memcpy(s->module_id, module_id, strlen(module_id) + 1);
        r = attest_test_ca_new(now - ETOK_SIM_CA_BEFORE_SEC, now + ETOK_SIM_CA_AFTER_SEC, &s->ca);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

struct etok_sim_doc *etok_sim_doc_free(struct etok_sim_doc *s) {
        if (!s)
                return NULL;
        attest_test_ca_free(s->ca);
        free(s);
        return NULL;
}

static struct attest_opt opt_of(const struct nsm_opt *o) {
        if (!o || !o->present)
                return (struct attest_opt){ .kind = ATTEST_OPT_NULL };
        return (struct attest_opt){ .kind = ATTEST_OPT_BYTES, .ptr = o->ptr, .len = o->len };
}

int etok_sim_doc_make(void *userdata, const uint8_t (*pcrs)[NSM_PCR_LEN], unsigned n_pcrs,
                      const struct nsm_opt *user_data, const struct nsm_opt *nonce,
                      const struct nsm_opt *public_key, uint8_t **ret_doc, size_t *ret_len) {
        struct etok_sim_doc *s = userdata;
        struct attest_pcr_value values[SIM_DOC_PCRS];
        struct attest_blob cabundle[2];
        struct timespec ts;

        if (!s || !pcrs || n_pcrs < SIM_DOC_PCRS)
                return -EINVAL;
        for (unsigned i = 0; i < SIM_DOC_PCRS; i++)
                values[i] = (struct attest_pcr_value){ .index = i, .ptr = pcrs[i], .len = NSM_PCR_LEN };
        cabundle[0] = (struct attest_blob){ s->ca->root_der, s->ca->root_len };
        cabundle[1] = (struct attest_blob){ s->ca->inter_der, s->ca->inter_len };
        (void) clock_gettime(CLOCK_REALTIME, &ts);
        return attest_doc_sign(
                &(struct attest_build){
                        .module_id = s->module_id,
                        .timestamp_ms = (uint64_t) ts.tv_sec * 1000u + (uint64_t) ts.tv_nsec / 1000000u,
                        .pcrs = values,
                        .n_pcrs = SIM_DOC_PCRS,
                        .certificate = { s->ca->leaf_der, s->ca->leaf_len },
                        .cabundle = cabundle,
                        .n_cabundle = 2,
                        .public_key = opt_of(public_key),
                        .user_data = opt_of(user_data),
                        .nonce = opt_of(nonce),
                },
                s->ca->leaf_key, ret_doc, ret_len);
}

int etok_sim_doc_root_pem(const struct etok_sim_doc *s, char **ret, size_t *ret_len) {
        _cleanup_(X509_freep) X509 *x = NULL;
        _cleanup_(BIO_free_allp) BIO *b = NULL;
        const unsigned char *p = s->ca->root_der;
        char *data = NULL, *copy;
        long n;

        x = d2i_X509(NULL, &p, (long) s->ca->root_len);
        b = BIO_new(BIO_s_mem());
        if (!x || !b || PEM_write_bio_X509(b, x) != 1) {
                ERR_clear_error();
                return -EIO;
        }
        n = BIO_get_mem_data(b, &data);
        if (n <= 0)
                return -EIO;
        copy = malloc((size_t) n + 1);
        if (!copy)
                return -ENOMEM;
        memcpy(copy, data, (size_t) n);
        copy[n] = '\0';
        *ret = copy;
        *ret_len = (size_t) n;
        return 0;
}
