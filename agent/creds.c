/* AWS credentials and region: the environment (AWS's standard environment provider), else IMDSv2. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/config/config.h"
#include "agent/creds.h"
#include "aws/imds-client.h"
#include "common/errmsg.h"
#include "common/log.h"
#include "common/rpc-messages.h"

void agent_creds_done(struct agent_creds *c) {
        if (!c)
                return;
        free(c->region);
        free(c->access_key_id);
        secret_buf_free(c->secret_access_key);
        secret_buf_free(c->session_token);
        free(c->partition);
        free(c->domain);
        free(c->role);
        free(c->role_arn);
        *c = (struct agent_creds){};
}

/* AKIA... / ASIA...: upper-case letters and digits. */
static bool akid_valid(const char *s) {
        size_t n = strlen(s);

        if (n < RPC_AKID_MIN || n > RPC_AKID_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!(s[i] >= 'A' && s[i] <= 'Z') && !(s[i] >= '0' && s[i] <= '9'))
                        return false;
        return true;
}

/* Printable ASCII without blanks: what SigV4 can carry. Checked without printing the value. */
static bool secret_chars_valid(const char *s, size_t n) {
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) s[i] <= 0x20 || (unsigned char) s[i] >= 0x7f)
                        return false;
        return true;
}

static int load_secret(agent_getenv_fn get, const char *name, size_t max, bool required,
                       struct secret_buf **ret, char **ret_error) {
        const char *v = get(name);
        size_t n = v ? strlen(v) : 0;

        *ret = NULL;
        if (n == 0)
                return required ? errmsg_set(ret_error, -ENOKEY, "%s is not set", name) : 0;
        if (n > max || !secret_chars_valid(v, n))
                return errmsg_set(ret_error, -EINVAL,
                                  "%s is not a valid value (%zu bytes; at most %zu printable characters)",
                                  name, n, max);
        return secret_buf_dup(v, n, ret);
}

int agent_creds_load(agent_getenv_fn get, const char *cfg_region, struct agent_creds *ret,
                     char **ret_error) {
        _cleanup_(agent_creds_done) struct agent_creds c = {};
        const char *akid, *region, *region_from = "options.region";
        int r;

        if (!get)
                get = secure_getenv;
        region = cfg_region;
        if (!region || !*region) {
                region_from = "AWS_REGION";
                region = get("AWS_REGION");
        }
        if (!region || !*region) {
                region_from = "AWS_DEFAULT_REGION";
                region = get("AWS_DEFAULT_REGION");
        }
        if (!region || !*region)
                return errmsg_set(ret_error, -ENOKEY,
                                  "no AWS region: set options.region in the configuration, or AWS_REGION");
        if (!agent_region_valid(region))
                return errmsg_set(ret_error, -EINVAL, "%s '%.*s' is not an AWS region (like us-east-1)",
                                  region_from, (int) MIN(strlen(region), (size_t) 64), region);
        akid = get("AWS_ACCESS_KEY_ID");
        if (!akid || !*akid)
                return errmsg_set(ret_error, -ENOKEY, "AWS_ACCESS_KEY_ID is not set");
        if (!akid_valid(akid))
                return errmsg_set(
                        ret_error, -EINVAL,
                        "AWS_ACCESS_KEY_ID is not an access key id (%d to %d upper-case letters and "
                        "digits)",
                        RPC_AKID_MIN, RPC_AKID_MAX);
        r = load_secret(get, "AWS_SECRET_ACCESS_KEY", RPC_AWS_SECRET_MAX, true, &c.secret_access_key,
                        ret_error);
        if (r < 0)
                return r;
        r = load_secret(get, "AWS_SESSION_TOKEN", RPC_SESSION_TOKEN_MAX, false, &c.session_token, ret_error);
        if (r < 0)
                return r;
        c.region = strdup(region);
        c.access_key_id = strdup(akid);
        if (!c.region || !c.access_key_id)
                return -ENOMEM;
        *ret = c;
        c = (struct agent_creds){};
        return 0;
}

static int imds_round(const struct agent_creds_opts *o, unsigned want, struct aws_imds_info *ret,
                      char **ret_error) {
        struct aws_imds_opts io = { .endpoint = o->imds_endpoint, .timeout_ms = o->imds_timeout_ms };
        struct aws_err e = {};
        int r;

        r = aws_imds_fetch(&io, want, ret, &e);
        if (r < 0)
                return errmsg_set(ret_error, r, "%s", e.msg[0] ? e.msg : strerror(-r));
        return 0;
}

static int dup_or_null(const char *s, char **ret) {
        *ret = NULL;
        if (!s || !*s)
                return 0;
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

int agent_creds_acquire(const struct agent_creds_opts *o, struct agent_creds *ret, char **ret_error) {
        _cleanup_(agent_creds_done) struct agent_creds c = {};
        _cleanup_(aws_imds_info_done) struct aws_imds_info info = {};
        agent_getenv_fn get;
        const char *akid, *secret, *region;
        struct agent_creds_opts io = *o;
        bool env;
        unsigned want = AWS_IMDS_WANT_CREDS | AWS_IMDS_WANT_PLACE;
        int64_t now;
        int r;

        if (!o)
                return -EINVAL;
        get = o->getenv_fn ? o->getenv_fn : secure_getenv;
        akid = get("AWS_ACCESS_KEY_ID");
        secret = get("AWS_SECRET_ACCESS_KEY");
        /* Either variable set means the environment is meant: a missing partner is an error to report,
         * not a reason to go and ask IMDS. */
        env = (akid && *akid) || (secret && *secret);
        if (env && !o->want_arn)
                return agent_creds_load(get, o->region, ret, ret_error);
        if (!io.imds_endpoint) {
                /* tests and the demo set it for every process they start: never the real IMDS there */
                const char *ep = secure_getenv("ENCLAVE_ACM_IMDS_ENDPOINT");
                if (ep && *ep) {
                        if (aws_imds_endpoint_validate(ep, NULL) < 0)
                                return errmsg_set(ret_error, -EINVAL,
                                                  "ENCLAVE_ACM_IMDS_ENDPOINT is not http://host[:port]");
                        io.imds_endpoint = ep;
                }
        }

        if (o->want_arn)
                want |= AWS_IMDS_WANT_ARN;
        r = imds_round(&io, want, &info, ret_error);
        if (r < 0)
                return r;
        now = o->now ? o->now : (int64_t) time(NULL);
        if (info.creds.expiration - now < AGENT_CREDS_REFRESH_MARGIN_SECS) {
                /* IMDS hands out new ones ahead of the end: ask once more */
                aws_imds_info_done(&info);
                r = imds_round(&io, want, &info, ret_error);
                if (r < 0)
                        return r;
                if (info.creds.expiration <= now + 1)
                        return errmsg_set(ret_error, -EKEYEXPIRED,
                                          "the instance role %s's credentials from IMDS expired %" PRId64
                                          " s ago (is the clock right? IMDS keeps handing out old ones)",
                                          info.role, now - info.creds.expiration);
        }
        if (env) {
                /* the environment's credentials, IMDS only for the role ARN and placement */
                r = agent_creds_load(get, o->region ? o->region : info.region, &c, ret_error);
                if (r < 0)
                        return r;
        } else {
                region = o->region && *o->region ? o->region : NULL;
                if (!region)
                        region = get("AWS_REGION");
                if (!region || !*region)
                        region = info.region;
                if (!agent_region_valid(region))
                        return errmsg_set(ret_error, -EINVAL, "region '%.*s' is not an AWS region",
                                          (int) MIN(strlen(region), (size_t) 64), region);
                c.region = strdup(region);
                c.access_key_id = strdup(info.creds.access_key_id);
                if (!c.region || !c.access_key_id)
                        return -ENOMEM;
                if (info.creds.secret_access_key->len > RPC_AWS_SECRET_MAX ||
                    info.creds.session_token->len > RPC_SESSION_TOKEN_MAX)
                        return errmsg_set(ret_error, -EINVAL,
                                          "IMDS credentials of role %s are larger than the enclave takes",
                                          info.role);
                c.secret_access_key = TAKE_PTR(info.creds.secret_access_key);
                c.session_token = TAKE_PTR(info.creds.session_token);
                c.expiration = info.creds.expiration;
                c.from_imds = true;
        }
        if ((r = dup_or_null(info.partition, &c.partition)) < 0 ||
            (r = dup_or_null(info.domain, &c.domain)) < 0 || (r = dup_or_null(info.role, &c.role)) < 0 ||
            (r = dup_or_null(info.role_arn, &c.role_arn)) < 0)
                return r;
        c.role_arn_maybe_wrong = info.role_arn_maybe_wrong;
        *ret = c;
        c = (struct agent_creds){};
        return 0;
}

void agent_creds_cache_done(struct agent_creds_cache *cache) {
        agent_creds_acquire_fn acquire;
        unsigned n;

        if (!cache)
                return;
        n = cache->acquisitions;
        acquire = cache->acquire;
        agent_creds_done(&cache->creds);
        free(cache->error_msg);
        free(cache->error_arn_msg);
        *cache = (struct agent_creds_cache){ .acquire = acquire, .acquisitions = n };
}

static int cached_error(int r, const char *msg, char **ret_error) {
        return errmsg_set(ret_error, r, "%s", msg ? msg : strerror(-r));
}

/* One acquisition, with or without the ARN; its result or its failure kept in the cache. */
static int cache_fetch(struct agent_creds_cache *cache, const struct agent_creds_opts *o, bool arn,
                       char **ret_error) {
        _cleanup_(agent_creds_done) struct agent_creds c = {};
        _cleanup_free_ char *error = NULL;
        struct agent_creds_opts io = *o;
        int r;

        io.want_arn = arn;
        cache->acquisitions++;
        r = (cache->acquire ?: agent_creds_acquire)(&io, &c, &error);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                /* without the ARN failing means with it fails too; not the other way round */
                free(cache->error_arn_msg);
                cache->error_arn = r;
                cache->error_arn_msg = error ? strdup(error) : NULL;
                if (!arn) {
                        free(cache->error_msg);
                        cache->error = r;
                        cache->error_msg = error ? strdup(error) : NULL;
                }
                return cached_error(r, error, ret_error);
        }
        log_debug("AWS credentials for this sync pass: %s%s (access key id %.4s..., acquisition %u)",
                  c.from_imds ? "the instance role's from IMDS" : "the environment's",
                  arn ? " with the role ARN" : "", c.access_key_id, cache->acquisitions);
        agent_creds_done(&cache->creds);
        cache->creds = c;
        c = (struct agent_creds){};
        cache->valid = true;
        cache->has_arn = arn;
        return 0;
}

int agent_creds_cache_get(struct agent_creds_cache *cache, const struct agent_creds_opts *o,
                          const struct agent_creds **ret, char **ret_error) {
        bool arn;
        int64_t now;
        int r;

        if (!cache || !o || !ret)
                return -EINVAL;
        now = o->now ? o->now : (int64_t) time(NULL);
        if (cache->valid && (cache->has_arn || !o->want_arn) &&
            (!cache->creds.from_imds || cache->creds.expiration - now >= AGENT_CREDS_REFRESH_MARGIN_SECS)) {
                *ret = &cache->creds;
                return 0;
        }
        if (o->want_arn && cache->error_arn < 0)
                return cached_error(cache->error_arn, cache->error_arn_msg, ret_error);
        if (!o->want_arn && cache->error < 0)
                return cached_error(cache->error, cache->error_msg, ret_error);
        /* the ARN too when it is wanted later in the pass, unless it could not be had this pass */
        arn = o->want_arn || (o->prefer_arn && cache->error_arn == 0);
        r = cache_fetch(cache, o, arn, ret_error);
        if (r < 0 && r != -ENOMEM && arn && !o->want_arn)
                r = cache_fetch(cache, o, false, ret_error);
        if (r < 0)
                return r;
        *ret = &cache->creds;
        return 0;
}
