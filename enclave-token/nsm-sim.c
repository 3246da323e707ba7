/* The software NSM (development and tests only): decodes request bytes, answers response bytes. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "enclave-token/nsm-sim.h"

#define SIM_USER_PCR_FIRST 16 /* 0-15 are locked at boot (NITRO-FORMATS.md 1.4) */

struct nsm_sim {
        pthread_mutex_t lock;
        uint8_t pcrs[NSM_PCR_COUNT][NSM_PCR_LEN];
        bool locked[NSM_PCR_COUNT];
        char module_id[NSM_MODULE_ID_MAX + 1];
        nsm_sim_doc_fn doc_fn;
        void *doc_userdata;
};

int nsm_sim_new(const struct nsm_sim_config *cfg, struct nsm_sim **ret) {
        const uint8_t *boot[SIM_USER_PCR_FIRST] = {};
        const char *id;
        struct nsm_sim *s;

        if (!cfg || !ret)
                return -EINVAL;
        id = cfg->module_id ? cfg->module_id : NSM_SIM_MODULE_ID;
        if (strlen(id) == 0 || strlen(id) > NSM_MODULE_ID_MAX)
                return -EINVAL;
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        if (pthread_mutex_init(&s->lock, NULL) != 0) {
                free(s);
                return -ENOMEM;
        }
        boot[0] = cfg->pcr0;
        boot[1] = cfg->pcr1;
        boot[2] = cfg->pcr2;
        boot[3] = cfg->pcr3;
        boot[4] = cfg->pcr4;
        boot[8] = cfg->pcr8;
        for (unsigned i = 0; i < SIM_USER_PCR_FIRST; i++) {
                if (boot[i])
                        memcpy(s->pcrs[i], boot[i], NSM_PCR_LEN);
                s->locked[i] = true;
        }
        memcpy(s->module_id, id, strlen(id) + 1);
        s->doc_fn = cfg->doc_fn;
        s->doc_userdata = cfg->doc_userdata;
        *ret = s;
        return 0;
}

struct nsm_sim *nsm_sim_free(struct nsm_sim *s) {
        if (!s)
                return NULL;
        (void) pthread_mutex_destroy(&s->lock);
        free(s);
        return NULL;
}

static int sim_error(struct nsm_response *resp, enum nsm_error e) {
        resp->kind = NSM_RESPONSE_ERROR;
        resp->error = e;
        return 0;
}

/* PCR_i := SHA384(PCR_i || data) (1.4). */
static int sim_extend(struct nsm_sim *s, unsigned i, const struct nsm_opt *data) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        unsigned n = 0;
        int ok;

        if (!ctx)
                return -ENOMEM;
        ok = EVP_DigestInit_ex(ctx, EVP_sha384(), NULL) > 0 &&
             EVP_DigestUpdate(ctx, s->pcrs[i], NSM_PCR_LEN) > 0 &&
             (data->len == 0 || EVP_DigestUpdate(ctx, data->ptr, data->len) > 0) &&
             EVP_DigestFinal_ex(ctx, s->pcrs[i], &n) > 0 && n == NSM_PCR_LEN;
        EVP_MD_CTX_free(ctx);
        return ok ? 0 : -EIO;
}

static void sim_pcr(const struct nsm_sim *s, unsigned i, struct nsm_response *resp) {
        memcpy(resp->pcr.data, s->pcrs[i], NSM_PCR_LEN);
        resp->pcr.len = NSM_PCR_LEN;
        resp->pcr.locked = s->locked[i];
}

static int sim_attestation(struct nsm_sim *s, const struct nsm_request *req, struct nsm_response *resp) {
        uint8_t *doc = NULL;
        size_t len = 0;
        int r;

        /* Real hardware takes up to 1024 bytes in each (1.5). */
        if (req->user_data.len > NSM_OPT_MAX || req->nonce.len > NSM_OPT_MAX || req->pk.len > NSM_OPT_MAX)
                return sim_error(resp, NSM_ERROR_INPUT_TOO_LARGE);
        if (!s->doc_fn)
                return sim_error(resp, NSM_ERROR_INTERNAL_ERROR);
        r = s->doc_fn(s->doc_userdata, (const uint8_t(*)[NSM_PCR_LEN]) s->pcrs, NSM_PCR_COUNT,
                      &req->user_data, &req->nonce, &req->pk, &doc, &len);
        if (r < 0 || !doc || len == 0) {
                free(doc);
                return sim_error(resp, NSM_ERROR_INTERNAL_ERROR);
        }
        resp->kind = NSM_RESPONSE_ATTESTATION;
        resp->document = doc;
        resp->document_len = len;
        return 0;
}

static void sim_describe(const struct nsm_sim *s, struct nsm_response *resp) {
        struct nsm_description *dd = &resp->description;

        resp->kind = NSM_RESPONSE_DESCRIBE_NSM;
        dd->version_major = 1;
        dd->version_minor = 0;
        dd->version_patch = 0;
        memcpy(dd->module_id, s->module_id, sizeof(dd->module_id));
        dd->max_pcrs = NSM_PCR_COUNT;
        dd->digest = NSM_DIGEST_SHA384;
        for (unsigned i = 0; i < NSM_PCR_COUNT; i++)
                if (s->locked[i])
                        dd->locked_pcrs[dd->n_locked_pcrs++] = (uint16_t) i;
}

/* The answer to one decoded request, with the state locked. */
static int sim_handle(struct nsm_sim *s, const struct nsm_request *req, struct nsm_response *resp) {
        int r;

        switch (req->kind) {
        case NSM_REQUEST_DESCRIBE_PCR:
                if (req->index >= NSM_PCR_COUNT)
                        return sim_error(resp, NSM_ERROR_INVALID_INDEX);
                resp->kind = NSM_RESPONSE_DESCRIBE_PCR;
                sim_pcr(s, req->index, resp);
                return 0;
        case NSM_REQUEST_EXTEND_PCR:
                if (req->index >= NSM_PCR_COUNT)
                        return sim_error(resp, NSM_ERROR_INVALID_INDEX);
                if (s->locked[req->index])
                        return sim_error(resp, NSM_ERROR_READ_ONLY_INDEX);
                r = sim_extend(s, req->index, &req->data);
                if (r < 0)
                        return sim_error(resp, NSM_ERROR_INTERNAL_ERROR);
                resp->kind = NSM_RESPONSE_EXTEND_PCR;
                sim_pcr(s, req->index, resp);
                return 0;
        case NSM_REQUEST_LOCK_PCR:
                if (req->index >= NSM_PCR_COUNT)
                        return sim_error(resp, NSM_ERROR_INVALID_INDEX);
                if (s->locked[req->index])
                        return sim_error(resp, NSM_ERROR_READ_ONLY_INDEX);
                s->locked[req->index] = true;
                resp->kind = NSM_RESPONSE_LOCK_PCR;
                return 0;
        case NSM_REQUEST_LOCK_PCRS:
                if (req->range > NSM_PCR_COUNT)
                        return sim_error(resp, NSM_ERROR_INVALID_INDEX);
                for (unsigned i = 0; i < req->range; i++)
                        s->locked[i] = true;
                resp->kind = NSM_RESPONSE_LOCK_PCRS;
                return 0;
        case NSM_REQUEST_DESCRIBE_NSM: sim_describe(s, resp); return 0;
        case NSM_REQUEST_GET_RANDOM:
                if (RAND_bytes(resp->random, NSM_SIM_RANDOM) <= 0)
                        return sim_error(resp, NSM_ERROR_INTERNAL_ERROR);
                resp->kind = NSM_RESPONSE_GET_RANDOM;
                resp->random_len = NSM_SIM_RANDOM;
                return 0;
        case NSM_REQUEST_ATTESTATION: return sim_attestation(s, req, resp);
        default: return sim_error(resp, NSM_ERROR_INVALID_OPERATION);
        }
}

static int encode_error(enum nsm_error e, uint8_t *buf, size_t *ret_len) {
        struct nsm_response err = { .kind = NSM_RESPONSE_ERROR, .error = e };

        return nsm_response_encode(&err, buf, NSM_RESPONSE_MAX, ret_len);
}

int nsm_sim_transact(struct nsm_sim *s, const uint8_t *req, size_t req_len, uint8_t *resp, size_t *ret_len) {
        struct nsm_response answer = {};
        struct nsm_request request;
        int r;

        if (!s || (!req && req_len > 0) || !resp || !ret_len)
                return -EINVAL;
        if (req_len > NSM_REQUEST_MAX)
                return encode_error(NSM_ERROR_INPUT_TOO_LARGE, resp, ret_len);
        r = nsm_request_decode(req, req_len, &request, NULL);
        if (r < 0) /* a known request with bad fields; anything else is no operation we know */
                return encode_error(r == -EINVAL ? NSM_ERROR_INVALID_ARGUMENT : NSM_ERROR_INVALID_OPERATION,
                                    resp, ret_len);
        (void) pthread_mutex_lock(&s->lock);
        r = sim_handle(s, &request, &answer);
        (void) pthread_mutex_unlock(&s->lock);
        if (r >= 0)
                r = nsm_response_encode(&answer, resp, NSM_RESPONSE_MAX, ret_len);
        nsm_response_done(&answer);
        if (r == -EMSGSIZE) /* a document too large for the response buffer */
                return encode_error(NSM_ERROR_BUFFER_TOO_SMALL, resp, ret_len);
        return r;
}

static int sim_dev_transact(void *userdata, const uint8_t *req, size_t req_len, uint8_t *resp,
                            size_t *ret_len) {
        return nsm_sim_transact(userdata, req, req_len, resp, ret_len);
}

static void sim_dev_free(void *userdata) {
        nsm_sim_free(userdata);
}

static const struct nsm_dev_ops sim_ops = {
        .name = "NSM simulator",
        .transact = sim_dev_transact,
        .free = sim_dev_free,
};

int nsm_dev_new_sim(struct nsm_sim *s, struct nsm_dev **ret) {
        if (!s) {
                return -EINVAL;
        }
        return nsm_dev_new(&sim_ops, s, ret);
}
