/* The IMDSv2 round over aws_url_fetch(). Secrets: the session token of IMDS itself is short-lived
 * and only good on this instance, but it is still wiped; the role's credentials go to secret_bufs. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/http.h"
#include "aws/imds-client.h"
#include "common/secret.h"

void aws_imds_info_done(struct aws_imds_info *i) {
        if (!i)
                return;
        aws_imds_credentials_done(&i->creds);
        *i = (struct aws_imds_info){};
}

int aws_imds_endpoint_validate(const char *ep, struct aws_err *e) {
        const char *h;
        size_t n;

        if (!ep || strncmp(ep, "http://", 7) != 0)
                return aws_err(e, -EINVAL, "IMDS endpoint: must be http://host[:port]");
        h = ep + 7;
        n = strlen(h);
        if (n == 0 || n > 253)
                return aws_err(e, -EINVAL, "IMDS endpoint: host missing or too long");
        for (size_t i = 0; i < n; i++)
                if (!((h[i] >= 'a' && h[i] <= 'z') || (h[i] >= 'A' && h[i] <= 'Z') ||
                      (h[i] >= '0' && h[i] <= '9') || h[i] == '.' || h[i] == '-' || h[i] == ':' ||
                      h[i] == '[' || h[i] == ']'))
                        return aws_err(e, -EINVAL,
                                       "IMDS endpoint: invalid character at byte %zu (no path, no user)",
                                       7 + i);
        return 0;
}

/* Prefixes e's message with "IMDS <method> <path>" (copied first: aws_err() may not read its own buffer). */
static int wrap(struct aws_err *e, int r, const char *method, const char *path) {
        char old[AWS_ERR_MAX];

        if (!e)
                return r;
        memcpy(old, e->msg, sizeof(old));
        old[sizeof(old) - 1] = '\0';
        return aws_err(e, r, "IMDS %s %s: %s", method, path, old);
}

struct imds {
        const char *endpoint;
        struct aws_url_opts uo;
        char token[AWS_IMDS_TOKEN_MAX + 1];
};

static void imds_done(struct imds *m) {
        secret_wipe(m->token, sizeof(m->token));
}

/* GET path with the session token: 0 and the response (any status), or a transport error. */
static int imds_get(struct imds *m, const char *path, struct aws_url_resp *ret, struct aws_err *e) {
        _cleanup_free_ char *url = NULL;
        const struct aws_header h[] = { { AWS_IMDS_TOKEN_HEADER, m->token } };
        struct aws_url_req q = { .method = "GET", .headers = h, .n_headers = 1 };
        int r;

        if (asprintf(&url, "%s%s", m->endpoint, path) < 0)
                return -ENOMEM;
        q.url = url;
        r = aws_url_fetch(&m->uo, &q, ret, e);
        if (r < 0)
                return wrap(e, r, "GET", path);
        return 0;
}

static int unexpected(struct aws_err *e, const char *path, long status) {
        return aws_err(e, status == 401 ? -EACCES : -EPROTO, "IMDS GET %s: HTTP %ld%s", path, status,
                       status == 401 ? " (session token refused)" : "");
}

static int imds_token(struct imds *m, unsigned ttl, struct aws_err *e) {
        _cleanup_(aws_url_resp_done) struct aws_url_resp resp = {};
        _cleanup_free_ char *url = NULL;
        char ttl_s[16];
        const struct aws_header h[] = { { AWS_IMDS_TOKEN_TTL_HEADER, ttl_s } };
        struct aws_url_req q = { .method = "PUT", .headers = h, .n_headers = 1 };
        int r;

        (void) snprintf(ttl_s, sizeof(ttl_s), "%u", ttl);
        if (asprintf(&url, "%s%s", m->endpoint, AWS_IMDS_PATH_TOKEN) < 0)
                return -ENOMEM;
        q.url = url;
        r = aws_url_fetch(&m->uo, &q, &resp, e);
        if (r == -ETIMEDOUT || r == -ECONNREFUSED || r == -EHOSTUNREACH || r == -ENETUNREACH)
                return aws_err(e, r == -ETIMEDOUT ? -ETIMEDOUT : -EHOSTUNREACH,
                               "no instance metadata service at %s (not on EC2, or IMDS disabled; "
                               "options.imds_endpoint overrides it): %s",
                               m->endpoint, r == -ETIMEDOUT ? "timed out" : strerror(-r));
        if (r < 0)
                return wrap(e, r, "PUT", AWS_IMDS_PATH_TOKEN);
        if (resp.status != 200)
                return aws_err(e, -EPROTO, "IMDS PUT %s: HTTP %ld (IMDSv2 required; hop limit too low?)",
                               AWS_IMDS_PATH_TOKEN, resp.status);
        r = aws_imds_token_validate(resp.body, resp.body_len, e);
        if (r >= 0) {
                memcpy(m->token, resp.body, resp.body_len);
                m->token[resp.body_len] = '\0';
        }
        secret_wipe(resp.body, resp.body_len);
        return r;
}

typedef int (*line_fn)(const void *body, size_t len, char *buf, size_t size, struct aws_err *e);

static int get_line(struct imds *m, const char *path, line_fn fn, char *buf, size_t size, bool optional,
                    struct aws_err *e) {
        _cleanup_(aws_url_resp_done) struct aws_url_resp resp = {};
        int r;

        r = imds_get(m, path, &resp, e);
        if (r < 0)
                return r;
        if (resp.status == 404 && optional) {
                buf[0] = '\0';
                return 0;
        }
        if (resp.status != 200)
                return unexpected(e, path, resp.status);
        r = fn(resp.body, resp.body_len, buf, size, e);
        if (r < 0)
                return wrap(e, r, "GET", path);
        return 0;
}

static int fetch_place(struct imds *m, struct aws_imds_info *i, struct aws_err *e) {
        int r;

        if ((r = get_line(m, AWS_IMDS_PATH_PARTITION, aws_imds_partition_parse, i->partition,
                          sizeof(i->partition), false, e)) < 0 ||
            (r = get_line(m, AWS_IMDS_PATH_REGION, aws_imds_line_parse, i->region, sizeof(i->region), false,
                          e)) < 0 ||
            (r = get_line(m, AWS_IMDS_PATH_DOMAIN, aws_imds_line_parse, i->domain, sizeof(i->domain), true,
                          e)) < 0)
                return r;
        if (aws_region_validate(i->region, NULL) < 0)
                return aws_err(e, -EINVAL, "IMDS GET %s: not an AWS region", AWS_IMDS_PATH_REGION);
        if (i->domain[0] && aws_dns_suffix_validate(i->domain, NULL) < 0)
                return aws_err(e, -EINVAL, "IMDS GET %s: not a DNS suffix", AWS_IMDS_PATH_DOMAIN);
        return 0;
}

static int fetch_role(struct imds *m, struct aws_imds_info *i, struct aws_err *e) {
        _cleanup_(aws_url_resp_done) struct aws_url_resp resp = {};
        int r;

        r = imds_get(m, AWS_IMDS_PATH_ROLES, &resp, e);
        if (r < 0)
                return r;
        if (resp.status == 404)
                return aws_err(e, -ENOENT,
                               "no IAM role attached to this instance (IMDS %s is 404): attach an instance "
                               "profile whose role may s3:GetObject the certificate",
                               AWS_IMDS_PATH_ROLES);
        if (resp.status != 200)
                return unexpected(e, AWS_IMDS_PATH_ROLES, resp.status);
        r = aws_imds_role_name_parse(resp.body, resp.body_len, i->role, sizeof(i->role), e);
        if (r == -ENOENT)
                return aws_err(e, r, "no IAM role attached to this instance (IMDS %s is empty)",
                               AWS_IMDS_PATH_ROLES);
        return r;
}

static int fetch_creds(struct imds *m, struct aws_imds_info *i, struct aws_err *e) {
        _cleanup_(aws_url_resp_done) struct aws_url_resp resp = {};
        char path[sizeof(AWS_IMDS_PATH_ROLES) + AWS_IMDS_ROLE_MAX];
        int r;

        (void) snprintf(path, sizeof(path), "%s%s", AWS_IMDS_PATH_ROLES, i->role);
        r = imds_get(m, path, &resp, e);
        if (r < 0)
                return r;
        if (resp.status == 404)
                return aws_err(e, -ENOENT, "IMDS GET %s: 404 (the role was detached?)", path);
        if (resp.status != 200) {
                r = unexpected(e, path, resp.status);
                secret_wipe(resp.body, resp.body_len);
                return r;
        }
        r = aws_imds_credentials_parse(resp.body, resp.body_len, &i->creds, e);
        secret_wipe(resp.body, resp.body_len);
        if (r < 0)
                return wrap(e, r, "GET", path);
        return 0;
}

static int fetch_arn(struct imds *m, struct aws_imds_info *i, struct aws_err *e) {
        _cleanup_(aws_url_resp_done) struct aws_url_resp resp = {};
        int r;

        r = get_line(m, AWS_IMDS_PATH_ROLE_TAG, aws_imds_role_tag_parse, i->role_arn, sizeof(i->role_arn),
                     true, e);
        if (r < 0)
                return r;
        if (i->role_arn[0]) {
                i->role_arn_from_tag = true;
                return 0;
        }
        r = imds_get(m, AWS_IMDS_PATH_INFO, &resp, e);
        if (r < 0)
                return r;
        if (resp.status != 200)
                return unexpected(e, AWS_IMDS_PATH_INFO, resp.status);
        r = aws_imds_info_role_arn(resp.body, resp.body_len, i->role, i->role_arn, sizeof(i->role_arn),
                                   &i->role_arn_maybe_wrong, e);
        if (r < 0)
                return wrap(e, r, "GET", AWS_IMDS_PATH_INFO);
        return 0;
}

int aws_imds_fetch(const struct aws_imds_opts *o, unsigned want, struct aws_imds_info *ret,
                   struct aws_err *e) {
        _cleanup_(aws_imds_info_done) struct aws_imds_info i = {};
        _cleanup_(imds_done) struct imds m = {};
        unsigned ttl = o && o->token_ttl ? o->token_ttl : AWS_IMDS_DEFAULT_TTL;
        int r;

        m.endpoint = o && o->endpoint ? o->endpoint : AWS_IMDS_DEFAULT_ENDPOINT;
        if ((r = aws_imds_endpoint_validate(m.endpoint, e)) < 0)
                return r;
        if (ttl > AWS_IMDS_MAX_TTL)
                return aws_err(e, -EINVAL, "IMDS token TTL: at most %u seconds", AWS_IMDS_MAX_TTL);
        m.uo = (struct aws_url_opts){
                .connect_timeout_ms = o && o->timeout_ms ? o->timeout_ms : AWS_IMDS_DEFAULT_TIMEOUT_MS,
                .total_timeout_ms = o && o->timeout_ms ? o->timeout_ms : AWS_IMDS_DEFAULT_TIMEOUT_MS,
                .max_response = AWS_IMDS_MAX_RESPONSE,
                .allow_http = true
        };
        if ((r = imds_token(&m, ttl, e)) < 0)
                return r;
        if ((want & AWS_IMDS_WANT_PLACE) && (r = fetch_place(&m, &i, e)) < 0)
                return r;
        if ((want & (AWS_IMDS_WANT_CREDS | AWS_IMDS_WANT_ARN)) && (r = fetch_role(&m, &i, e)) < 0)
                return r;
        if ((want & AWS_IMDS_WANT_CREDS) && (r = fetch_creds(&m, &i, e)) < 0)
                return r;
        if ((want & AWS_IMDS_WANT_ARN) && (r = fetch_arn(&m, &i, e)) < 0)
                return r;
        *ret = i;
        i = (struct aws_imds_info){};
        return 0;
}
