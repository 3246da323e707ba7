/* Acm and S3 sources: IMDS credentials, S3 GetObject with If-None-Match, the object's chain cleaned. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "agent/creds.h"
#include "agent/source-s3.h"
#include "aws/s3-client.h"
#include "common/cleanup-ssl.h"
#include "common/errmsg.h"
#include "common/log.h"

#define CHAIN_CERTS_MAX 16

void agent_s3_cache_done(struct agent_s3_cache *c) {
        if (!c)
                return;
        free(c->ciphertext);
        free(c->chain);
        *c = (struct agent_s3_cache){};
}

static uint64_t not_after_of(X509 *x) {
        const ASN1_TIME *t = X509_get0_notAfter(x);
        struct tm tm = {};

        if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
                return 0;
        return (uint64_t) timegm(&tm);
}

int agent_pem_chain_clean(const char *pem, size_t len, char **ret, size_t *ret_len,
                          uint64_t *ret_not_after) {
        _cleanup_(BIO_free_allp) BIO *in = NULL, *out = NULL;
        uint64_t not_after = 0;
        unsigned n = 0;
        char *p, *copy;
        long l;

        if (len > INT32_MAX)
                return -E2BIG;
        in = BIO_new_mem_buf(pem, (int) len);
        out = BIO_new(BIO_s_mem());
        if (!in || !out)
                return -ENOMEM;
        for (;;) {
                X509 *x = PEM_read_bio_X509(in, NULL, NULL, NULL);
                if (!x)
                        break;
                if (n == 0)
                        not_after = not_after_of(x);
                if (++n > CHAIN_CERTS_MAX || PEM_write_bio_X509(out, x) != 1) {
                        X509_free(x);
                        return n > CHAIN_CERTS_MAX ? -E2BIG : -ENOMEM;
                }
                X509_free(x);
        }
        ERR_clear_error();
        if (n == 0)
                return -EBADMSG;
        l = BIO_get_mem_data(out, &p);
        if (l <= 0)
                return -ENOMEM;
        copy = malloc((size_t) l + 1);
        if (!copy)
                return -ENOMEM;
        memcpy(copy, p, (size_t) l);
        copy[l] = '\0';
        *ret = copy;
        *ret_len = (size_t) l;
        *ret_not_after = not_after;
        return 0;
}

/* What the operator reads: the token's source, never a credential. */
static const char *source_name(const struct agent_config_token *ct) {
        return ct->source.kind == AGENT_SOURCE_ACM ? ct->source.certificate_arn : ct->source.uri;
}

bool agent_s3_sources_want_arn(const struct agent_config *cfg) {
        for (size_t i = 0; cfg && i < cfg->n_tokens; i++)
                if (cfg->tokens[i].source.kind == AGENT_SOURCE_ACM)
                        return true;
        return false;
}

int agent_s3_source_sync(const struct agent_config *cfg, const struct agent_config_token *ct,
                         struct agent_creds_cache *creds_cache, struct agent_s3_cache *cache,
                         char **ret_error) {
        _cleanup_(agent_creds_cache_done) struct agent_creds_cache own = {};
        const struct agent_creds *cr = NULL;
        _cleanup_(aws_s3_get_result_done) struct aws_s3_get_result res = {};
        _cleanup_(aws_s3_object_done) struct aws_s3_object obj = {};
        _cleanup_free_ char *error = NULL, *pem = NULL, *chain = NULL;
        struct aws_s3_uri u;
        struct aws_err e = {};
        size_t chain_len = 0;
        uint64_t not_after = 0;
        char uri[sizeof(cache->uri)];
        bool acm = ct->source.kind == AGENT_SOURCE_ACM;
        int r;

        if (ct->source.kind != AGENT_SOURCE_ACM && ct->source.kind != AGENT_SOURCE_S3)
                return -EINVAL;
        if (acm && (!ct->source.certificate_arn || !ct->source.certificate_arn[0]))
                return errmsg_set(ret_error, -EINVAL, "Acm source: certificate_arn is empty");
        r = agent_creds_cache_get(creds_cache ?: &own,
                                  &(struct agent_creds_opts){ .region = cfg->options.region,
                                                              .imds_endpoint = cfg->options.imds_endpoint,
                                                              .want_arn = acm,
                                                              .prefer_arn = agent_s3_sources_want_arn(cfg) },
                                  &cr, &error);
        if (r < 0)
                return errmsg_set(ret_error, r, "%s: AWS credentials: %s", source_name(ct),
                                  error ?: strerror(-r));
        if (acm) {
                if (cr->role_arn_maybe_wrong)
                        log_warning("Acm source %s: the role ARN %s was derived from the instance profile, "
                                    "which has a path: if the role has one too, set the instance tag "
                                    "InstanceRoleArn (and allow tags in instance metadata)",
                                    ct->source.certificate_arn, cr->role_arn);
                r = aws_s3_acm_uri(cr->partition ?: "aws", cr->region,
                                   ct->source.bucket ?: AGENT_CONFIG_DEFAULT_ACM_BUCKET, cr->role_arn,
                                   ct->source.certificate_arn, &u, &e);
        } else
                r = aws_s3_uri_parse(ct->source.uri, &u, &e);
        if (r < 0)
                return errmsg_set(ret_error, r, "%s: %s", source_name(ct), e.msg);
        (void) snprintf(uri, sizeof(uri), "s3://%s/%s", u.bucket, u.key);
        r = aws_s3_get_object(
                &(struct aws_s3_opts){ .endpoint = cfg->options.s3_endpoint,
                                       .dns_suffix = cr->domain,
                                       .ca_file = cfg->options.s3_ca_file },
                &(struct aws_credentials){ cr->access_key_id, cr->secret_access_key, cr->session_token },
                cr->region, &u, strcmp(uri, cache->uri) == 0 && cache->etag[0] ? cache->etag : NULL, &res,
                &e);
        if (r < 0)
                return errmsg_set(ret_error, r, "%s%s%s: %s", source_name(ct), acm ? " at " : "",
                                  acm ? uri : "", e.msg);
        cache->fetches++;
        if (res.not_modified) {
                cache->not_modified++;
                return 0;
        }
        r = aws_s3_object_parse(res.body, res.body_len, &obj, &e);
        if (r < 0)
                return errmsg_set(ret_error, r, "%s: %s", uri, e.msg);
        if (asprintf(&pem, "%s\n%s", obj.certificate, obj.certificate_chain) < 0)
                return -ENOMEM;
        r = agent_pem_chain_clean(pem, strlen(pem), &chain, &chain_len, &not_after);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return errmsg_set(ret_error, r,
                                  "%s: certificate or certificateChain holds no readable certificate", uri);
        free(cache->ciphertext);
        free(cache->chain);
        cache->ciphertext = TAKE_PTR(obj.ciphertext);
        cache->ciphertext_len = obj.ciphertext_len;
        cache->chain = TAKE_PTR(chain);
        cache->chain_len = chain_len;
        cache->not_after = not_after;
        memcpy(cache->uri, uri, strlen(uri) + 1);
        memcpy(cache->etag, res.etag, sizeof(cache->etag));
        return 1;
}
