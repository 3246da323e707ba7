/* S3 GetObject over aws_url_fetch(). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aws/endpoint.h"
#include "aws/s3-client.h"

void aws_s3_get_result_done(struct aws_s3_get_result *r) {
        if (!r)
                return;
        free(r->body);
        *r = (struct aws_s3_get_result){};
}

static bool etag_ok(const char *s) {
        size_t n = s ? strlen(s) : 0;

        if (n == 0 || n > AWS_URL_ETAG_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if (s[i] < 0x21 || s[i] > 0x7e)
                        return false;
        return true;
}

/* "S3 https://host[:port]": what transport errors name (the caller names the object; its URL can be
 * longer than a message). */
static void endpoint_label(const struct aws_s3_target *t, char *buf, size_t size) {
        (void) snprintf(buf, size, "S3 %s://%s", strncmp(t->url, "http://", 7) == 0 ? "http" : "https",
                        t->host);
}

static int refusal(const struct aws_s3_uri *obj, const char *action, const struct aws_url_resp *resp,
                   int64_t now, struct aws_err *e) {
        char code[AWS_S3_CODE_MAX + 1] = "";
        const char *where = obj->bucket;

        if (aws_s3_error_code(resp->body, resp->body_len, code, sizeof(code)) < 0)
                code[0] = '\0';
        if (strcmp(code, "RequestTimeTooSkewed") == 0 ||
            (resp->status == 403 && resp->date && (resp->date - now > 300 || now - resp->date > 300)))
                return aws_err(e, -ETIME,
                               "S3 s3://%s/...: clock skew: S3's clock says %+lld s from ours; fix the "
                               "time (chrony)",
                               where, resp->date ? (long long) (resp->date - now) : 0LL);
        if (strcmp(code, "ExpiredToken") == 0 || strcmp(code, "TokenRefreshRequired") == 0 ||
            strcmp(code, "InvalidToken") == 0)
                return aws_err(e, -EKEYEXPIRED,
                               "S3 s3://%s/...: the credentials expired (%s): they are fetched again at "
                               "the next sync",
                               where, code);
        if (strcmp(code, "InvalidAccessKeyId") == 0 || strcmp(code, "SignatureDoesNotMatch") == 0)
                return aws_err(e, -EKEYREJECTED, "S3 s3://%s/...: credentials refused (%s)", where, code);
        if (resp->status == 403)
                return aws_err(e, -EACCES,
                               "S3 s3://%s/...: access denied (%s): the credentials' role may not %s "
                               "it (Acm: associate the role with the certificate, "
                               "ec2 associate-enclave-certificate-iam-role)",
                               where, code[0] ? code : "403", action);
        if (resp->status == 404)
                return aws_err(e, -ENOENT, "S3 s3://%s/...: no such %s (%s): check the URI or ARN", where,
                               strcmp(code, "NoSuchBucket") == 0 ? "bucket" : "object",
                               code[0] ? code : "404");
        return aws_err(e, -EPROTO, "S3 s3://%s/...: HTTP %ld%s%s", where, resp->status, code[0] ? " " : "",
                       code);
}

/* One signed S3 request: the object's URL from the options, Host and the one extra header (if any),
 * signed with the payload hash, sent with the options' CA and time bound. *ret_now is the signing time
 * (for a clock skew named in a refusal). Options NULL: the defaults. */
static int s3_send(const struct aws_s3_opts *o, const struct aws_credentials *creds, const char *region,
                   const struct aws_s3_uri *obj, const char *method, const struct aws_header *extra,
                   const void *body, size_t len, size_t max_response, struct aws_url_resp *resp,
                   int64_t *ret_now, struct aws_err *e) {
        _cleanup_(aws_s3_target_done) struct aws_s3_target t = {};
        _cleanup_(aws_sigv4_result_done) struct aws_sigv4_result sig = {};
        struct aws_header h[2 + AWS_SIGV4_MAX_ADD];
        static const struct aws_s3_opts defaults = {};
        char label[AWS_HOST_MAX + 16];
        size_t nh = 0;
        int r;

        if (!o)
                o = &defaults;
        r = aws_s3_target_make(o->endpoint, region, o->dns_suffix, o->path_style, obj, &t, e);
        if (r < 0)
                return r;
        endpoint_label(&t, label, sizeof(label));
        *ret_now = o->now ? o->now : (int64_t) time(NULL);
        h[nh++] = (struct aws_header){ "Host", t.host };
        if (extra)
                h[nh++] = *extra;
        r = aws_sigv4_sign(&(struct aws_sigv4_req){ .method = method,
                                                    .path = t.path,
                                                    .headers = h,
                                                    .n_headers = nh,
                                                    .body = body,
                                                    .body_len = len,
                                                    .creds = creds,
                                                    .region = region,
                                                    .service = "s3",
                                                    .time = *ret_now,
                                                    .flags = AWS_SIGV4_SIGN_BODY },
                           &sig, e);
        if (r < 0)
                return r;
        for (size_t i = 0; i < sig.n_add; i++)
                h[nh++] = sig.add[i];
        return aws_url_fetch(&(struct aws_url_opts){ .ca_file = o->ca_file,
                                                     .total_timeout_ms = o->timeout_ms,
                                                     .max_response = max_response,
                                                     .allow_http = strncmp(t.url, "http://", 7) == 0,
                                                     .label = label },
                             &(struct aws_url_req){ .method = method,
                                                    .url = t.url,
                                                    .headers = h,
                                                    .n_headers = nh,
                                                    .body = body,
                                                    .body_len = len },
                             resp, e);
}

int aws_s3_get_object(const struct aws_s3_opts *o, const struct aws_credentials *creds, const char *region,
                      const struct aws_s3_uri *obj, const char *if_none_match, struct aws_s3_get_result *ret,
                      struct aws_err *e) {
        _cleanup_(aws_url_resp_done) struct aws_url_resp resp = {};
        int64_t now;
        int r;

        if (!creds || !obj || !region)
                return aws_err(e, -EINVAL, "S3 GetObject: credentials, region and object needed");
        if (if_none_match && !etag_ok(if_none_match))
                return aws_err(e, -EINVAL, "S3 GetObject: If-None-Match is not an ETag");
        r = s3_send(o, creds, region, obj, "GET",
                    if_none_match ? &(struct aws_header){ "If-None-Match", if_none_match } : NULL, NULL, 0,
                    AWS_S3_OBJECT_MAX, &resp, &now, e);
        if (r == -EMSGSIZE)
                return aws_err(e, r, "S3 s3://%s/...: object over %u bytes, refused", obj->bucket,
                               AWS_S3_OBJECT_MAX);
        if (r < 0)
                return r;
        if (resp.status == 304 && !if_none_match)
                return aws_err(e, -EPROTO, "S3 s3://%s/...: 304 to an unconditional GET", obj->bucket);
        if (resp.status == 304) {
                *ret = (struct aws_s3_get_result){ .not_modified = true };
                memcpy(ret->etag, if_none_match, strlen(if_none_match) + 1);
                return 0;
        }
        if (resp.status != 200)
                return refusal(obj, "s3:GetObject", &resp, now, e);
        *ret = (struct aws_s3_get_result){ .body = TAKE_PTR(resp.body), .body_len = resp.body_len };
        memcpy(ret->etag, resp.etag, sizeof(resp.etag));
        return 0;
}

int aws_s3_put_object(const struct aws_s3_opts *o, const struct aws_credentials *creds, const char *region,
                      const struct aws_s3_uri *obj, const void *body, size_t len, struct aws_err *e) {
        _cleanup_(aws_url_resp_done) struct aws_url_resp resp = {};
        int64_t now;
        int r;

        if (!creds || !obj || !region || !body || len == 0 || len > AWS_S3_OBJECT_MAX)
                return aws_err(e, -EINVAL,
                               "S3 PutObject: credentials, region, object and 1..%u bytes needed",
                               AWS_S3_OBJECT_MAX);
        r = s3_send(o, creds, region, obj, "PUT", &(struct aws_header){ "Content-Type", "application/json" },
                    body, len, 0, &resp, &now, e);
        if (r < 0)
                return r;
        if (resp.status != 200)
                return refusal(obj, "s3:PutObject", &resp, now, e);
        return 0;
}
