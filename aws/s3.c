/* S3 URIs, ACM's object name, GetObject targets, error codes and the object JSON. Pure. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/endpoint.h"
#include "aws/kms.h"
#include "aws/s3.h"
#include "aws/sigv4.h"
#include "common/base64.h"
#include "common/json.h"

static bool lower_or_digit(char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

int aws_s3_bucket_validate(const char *b, struct aws_err *e) {
        size_t n = b ? strlen(b) : 0;
        unsigned dots = 0;
        bool all_ip = true;

        if (n < AWS_S3_BUCKET_MIN || n > AWS_S3_BUCKET_MAX)
                return aws_err(e, -EINVAL, "S3 bucket: not %u..%u characters", AWS_S3_BUCKET_MIN,
                               AWS_S3_BUCKET_MAX);
        if (!lower_or_digit(b[0]) || !lower_or_digit(b[n - 1]))
                return aws_err(e, -EINVAL, "S3 bucket: must start and end with a letter or digit");
        for (size_t i = 0; i < n; i++) {
                if (!lower_or_digit(b[i]) && b[i] != '.' && b[i] != '-')
                        return aws_err(e, -EINVAL, "S3 bucket: invalid character at byte %zu", i);
                if (b[i] == '.' && (b[i + 1] == '.' || b[i + 1] == '-' || (i > 0 && b[i - 1] == '-')))
                        return aws_err(e, -EINVAL, "S3 bucket: empty label at byte %zu", i);
                if (b[i] == '.')
                        dots++;
                else if (!(b[i] >= '0' && b[i] <= '9'))
                        all_ip = false;
        }
        if (all_ip && dots == 3)
                return aws_err(e, -EINVAL, "S3 bucket: must not look like an IP address");
        return 0;
}

int aws_s3_key_validate(const char *k, struct aws_err *e) {
        size_t n = k ? strlen(k) : 0;

        if (n == 0 || n > AWS_S3_KEY_MAX)
                return aws_err(e, -EINVAL, "S3 key: not 1..%u bytes", AWS_S3_KEY_MAX);
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) k[i] < 0x20 || (unsigned char) k[i] > 0x7e)
                        return aws_err(e, -EINVAL,
                                       "S3 key: invalid byte at offset %zu (printable ASCII only)", i);
        return 0;
}

int aws_s3_uri_parse(const char *uri, struct aws_s3_uri *ret, struct aws_err *e) {
        struct aws_s3_uri u = {};
        const char *slash;
        size_t bl;
        int r;

        if (!uri || strncmp(uri, "s3://", 5) != 0)
                return aws_err(e, -EINVAL, "S3 URI: must start with s3://");
        slash = strchr(uri + 5, '/');
        if (!slash)
                return aws_err(e, -EINVAL, "S3 URI: no key (s3://bucket/key)");
        bl = (size_t) (slash - (uri + 5));
        if (bl > AWS_S3_BUCKET_MAX)
                return aws_err(e, -EINVAL, "S3 URI: bucket over %u characters", AWS_S3_BUCKET_MAX);
        memcpy(u.bucket, uri + 5, bl);
        u.bucket[bl] = '\0';
        if ((r = aws_s3_bucket_validate(u.bucket, e)) < 0)
                return r;
        if (strlen(slash + 1) > AWS_S3_KEY_MAX)
                return aws_err(e, -EINVAL, "S3 URI: key over %u bytes", AWS_S3_KEY_MAX);
        memcpy(u.key, slash + 1, strlen(slash + 1) + 1);
        if ((r = aws_s3_key_validate(u.key, e)) < 0)
                return r;
        *ret = u;
        return 0;
}

int aws_s3_acm_uri(const char *partition, const char *region, const char *suffix, const char *role_arn,
                   const char *cert_arn, struct aws_s3_uri *ret, struct aws_err *e) {
        struct aws_s3_uri u = {};
        int n, r;

        if (!partition || !region || !suffix || !role_arn || !cert_arn || !*partition || !*suffix ||
            !*role_arn || !*cert_arn)
                return aws_err(e, -EINVAL,
                               "ACM object: partition, region, bucket, role ARN and "
                               "certificate ARN are all needed");
        if ((r = aws_region_validate(region, e)) < 0)
                return r;
        n = snprintf(u.bucket, sizeof(u.bucket), "%s-ec2-enclave-certificate-%s-%s", partition, region,
                     suffix);
        if (n < 0 || (size_t) n >= sizeof(u.bucket))
                return aws_err(e, -EINVAL, "ACM object: bucket name over %u characters", AWS_S3_BUCKET_MAX);
        if ((r = aws_s3_bucket_validate(u.bucket, e)) < 0)
                return r;
        n = snprintf(u.key, sizeof(u.key), "%s/%s", role_arn, cert_arn);
        if (n < 0 || (size_t) n >= sizeof(u.key))
                return aws_err(e, -EINVAL, "ACM object: key over %u bytes", AWS_S3_KEY_MAX);
        if ((r = aws_s3_key_validate(u.key, e)) < 0)
                return r;
        *ret = u;
        return 0;
}

void aws_s3_target_done(struct aws_s3_target *t) {
        if (!t)
                return;
        free(t->url);
        free(t->host);
        free(t->path);
        *t = (struct aws_s3_target){};
}

static bool loopback_host(const char *h, size_t n) {
        return (n == 9 && strncmp(h, "127.0.0.1", 9) == 0) || (n == 9 && strncmp(h, "localhost", 9) == 0) ||
               (n == 5 && strncmp(h, "[::1]", 5) == 0);
}

/* "scheme://host[:port]" into its parts; -EINVAL otherwise. */
static int endpoint_split(const char *ep, bool *ret_https, const char **ret_host, struct aws_err *e) {
        const char *h;
        size_t n;

        if (strncmp(ep, "https://", 8) == 0) {
                *ret_https = true;
                h = ep + 8;
        } else if (strncmp(ep, "http://", 7) == 0) {
                *ret_https = false;
                h = ep + 7;
        } else
                return aws_err(e, -EINVAL, "S3 endpoint: must be https://host[:port]");
        n = strlen(h);
        if (n == 0 || n > AWS_HOST_MAX)
                return aws_err(e, -EINVAL, "S3 endpoint: host missing or too long");
        for (size_t i = 0; i < n; i++)
                if (!(lower_or_digit(h[i]) || h[i] == '.' || h[i] == '-' || h[i] == ':' || h[i] == '[' ||
                      h[i] == ']'))
                        return aws_err(e, -EINVAL,
                                       "S3 endpoint: invalid character at byte %zu (lower case, no path)",
                                       (size_t) (h - ep) + i);
        if (!*ret_https && !loopback_host(h, h[0] == '[' ? strcspn(h, "]") + 1 : strcspn(h, ":")))
                return aws_err(e, -EINVAL, "S3 endpoint: http:// only for a loopback host (tests)");
        *ret_host = h;
        return 0;
}

int aws_s3_endpoint_validate(const char *endpoint, struct aws_err *e) {
        const char *h;
        bool https;

        if (!endpoint)
                return aws_err(e, -EINVAL, "S3 endpoint: missing");
        return endpoint_split(endpoint, &https, &h, e);
}

int aws_s3_target_make(const char *endpoint, const char *region, const char *dns_suffix, bool path_style,
                       const struct aws_s3_uri *obj, struct aws_s3_target *ret, struct aws_err *e) {
        _cleanup_(aws_s3_target_done) struct aws_s3_target t = {};
        char host[AWS_HOST_MAX + 1], enc[3 * (AWS_S3_KEY_MAX + AWS_S3_BUCKET_MAX) + 4];
        const char *scheme = "https";
        bool https = true;
        int r;

        if (!obj || !region)
                return aws_err(e, -EINVAL, "S3 target: object and region needed");
        if ((r = aws_s3_bucket_validate(obj->bucket, e)) < 0 || (r = aws_s3_key_validate(obj->key, e)) < 0)
                return r;
        if (endpoint) {
                const char *h = NULL;
                if ((r = endpoint_split(endpoint, &https, &h, e)) < 0)
                        return r;
                scheme = https ? "https" : "http";
                memcpy(host, h, strlen(h) + 1);
                path_style = true;
        } else {
                if ((r = aws_service_host("s3", region, dns_suffix, host, sizeof(host), e)) < 0)
                        return r;
                if (strchr(obj->bucket, '.'))
                        path_style = true; /* the wildcard certificate does not cover a dotted bucket */
                if (!path_style) {
                        char vh[AWS_HOST_MAX + 1];
                        int n = snprintf(vh, sizeof(vh), "%s.%s", obj->bucket, host);
                        if (n < 0 || (size_t) n >= sizeof(vh))
                                return aws_err(e, -EINVAL, "S3 target: host name too long");
                        memcpy(host, vh, (size_t) n + 1);
                }
        }
        if (path_style)
                r = asprintf(&t.path, "/%s/%s", obj->bucket, obj->key);
        else
                r = asprintf(&t.path, "/%s", obj->key);
        if (r < 0)
                return -ENOMEM;
        r = aws_sigv4_uri_encode(t.path, strlen(t.path), true, enc, sizeof(enc));
        if (r < 0)
                return aws_err(e, -EINVAL, "S3 target: path too long");
        t.host = strdup(host);
        if (!t.host || asprintf(&t.url, "%s://%s%s", scheme, host, enc) < 0)
                return -ENOMEM;
        *ret = t;
        t = (struct aws_s3_target){};
        return 0;
}

int aws_s3_error_code(const void *body, size_t len, char *buf, size_t size) {
        const char *p = body, *start = NULL;
        size_t n = 0;

        if (!body || size == 0)
                return -ENOENT;
        len = MIN(len, (size_t) 8192);
        for (size_t i = 0; i + 6 <= len; i++)
                if (memcmp(p + i, "<Code>", 6) == 0) {
                        start = p + i + 6;
                        len -= i + 6;
                        break;
                }
        if (!start)
                return -ENOENT;
        while (n < len && start[n] != '<') {
                char c = start[n];
                if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '.'))
                        return -ENOENT;
                n++;
        }
        if (n == 0 || n >= len || n > AWS_S3_CODE_MAX || n + 1 > size || len - n < 7 ||
            memcmp(start + n, "</Code>", 7) != 0)
                return -ENOENT;
        memcpy(buf, start, n);
        buf[n] = '\0';
        return 0;
}

void aws_s3_object_done(struct aws_s3_object *o) {
        if (!o)
                return;
        free(o->certificate);
        free(o->certificate_chain);
        free(o->encrypted_private_key);
        free(o->ciphertext);
        free(o->encryption_method);
        *o = (struct aws_s3_object){};
}

static bool pem_text(const char *s) {
        for (; *s; s++)
                if (!((*s >= 0x20 && *s <= 0x7e) || *s == '\n' || *s == '\r' || *s == '\t'))
                        return false;
        return true;
}

int aws_s3_object_parse(const void *body, size_t len, struct aws_s3_object *ret, struct aws_err *e) {
        _cleanup_(aws_s3_object_done) struct aws_s3_object o = {};
        const struct json_limits lim = { .max_depth = 1,
                                         .max_string = AWS_S3_PEM_MAX,
                                         .max_input = AWS_S3_OBJECT_MAX,
                                         .reject_duplicates = true };
        struct json_error je = {};
        struct json_reader rd = {};
        const char *key;
        char unknown[64] = "";
        size_t b64len, off = 0;
        int r;

        if (!body)
                return aws_err(e, -EINVAL, "S3 object: missing");
        r = json_reader_init(&rd, body, len, &lim, &je);
        if (r >= 0)
                r = json_object_begin(&rd);
        while (r >= 0 && (r = json_object_next(&rd, &key)) > 0) {
                char **dst = strcmp(key, "certificate") == 0           ? &o.certificate
                             : strcmp(key, "certificateChain") == 0    ? &o.certificate_chain
                             : strcmp(key, "encryptedPrivateKey") == 0 ? &o.encrypted_private_key
                             : strcmp(key, "encryptionMethod") == 0    ? &o.encryption_method
                                                                       : NULL;
                if (!dst) {
                        /* the member's name only when it is short and plain */
                        size_t kl = strlen(key), i;
                        for (i = 0; i < kl && i < sizeof(unknown) - 1; i++)
                                if (!((key[i] >= 'a' && key[i] <= 'z') || (key[i] >= 'A' && key[i] <= 'Z')))
                                        break;
                        (void) snprintf(unknown, sizeof(unknown), "%.*s", i == kl ? (int) kl : 0, key);
                        if (!unknown[0])
                                memcpy(unknown, "?", 2);
                        break;
                }
                r = json_read_string(&rd, dst);
        }
        if (r >= 0 && !unknown[0])
                r = json_reader_end(&rd);
        json_reader_done(&rd);
        if (r < 0) {
                char b[160];
                return aws_err(e, r, "S3 object JSON: %s", json_error_string(&je, b, sizeof(b)));
        }
        if (unknown[0])
                return aws_err(e, -EINVAL,
                               "S3 object: unknown member '%s' (only certificate, certificateChain, "
                               "encryptedPrivateKey, encryptionMethod)",
                               unknown);
        if (!o.certificate || !o.certificate_chain || !o.encrypted_private_key || !o.encryption_method)
                return aws_err(e, -EINVAL, "S3 object: %s missing",
                               !o.certificate             ? "certificate"
                               : !o.certificate_chain     ? "certificateChain"
                               : !o.encrypted_private_key ? "encryptedPrivateKey"
                                                          : "encryptionMethod");
        if (strncmp(o.certificate, "-----BEGIN CERTIFICATE-----", 27) != 0 || !pem_text(o.certificate))
                return aws_err(e, -EINVAL, "S3 object: certificate is not a PEM certificate");
        if ((o.certificate_chain[0] &&
             strncmp(o.certificate_chain, "-----BEGIN CERTIFICATE-----", 27) != 0) ||
            !pem_text(o.certificate_chain))
                return aws_err(e, -EINVAL, "S3 object: certificateChain is not PEM certificates");
        {
                size_t ml = strlen(o.encryption_method);
                if (ml == 0 || ml > AWS_S3_METHOD_MAX)
                        return aws_err(e, -EINVAL, "S3 object: encryptionMethod is not 1..%u characters",
                                       AWS_S3_METHOD_MAX);
                for (size_t i = 0; i < ml; i++)
                        if (o.encryption_method[i] < 0x21 || o.encryption_method[i] > 0x7e)
                                return aws_err(e, -EINVAL, "S3 object: encryptionMethod is not printable");
        }
        b64len = strlen(o.encrypted_private_key);
        if (b64len == 0 || base64_decoded_max(b64len) > AWS_KMS_BLOB_MAX + 2)
                return aws_err(e, -EINVAL,
                               "S3 object: encryptedPrivateKey is not 1..%u bytes of base64 ciphertext",
                               AWS_KMS_BLOB_MAX);
        o.ciphertext = malloc(base64_decoded_max(b64len) + 1);
        if (!o.ciphertext)
                return -ENOMEM;
        r = base64_decode(o.encrypted_private_key, b64len, o.ciphertext, base64_decoded_max(b64len) + 1,
                          &off);
        if (r < 0)
                return aws_err(e, -EINVAL, "S3 object: encryptedPrivateKey is not base64 (offset %zu)", off);
        if (r < 1 || r > (int) AWS_KMS_BLOB_MAX)
                return aws_err(e, -EINVAL, "S3 object: encryptedPrivateKey is not 1..%u bytes",
                               AWS_KMS_BLOB_MAX);
        o.ciphertext_len = (size_t) r;
        *ret = o;
        o = (struct aws_s3_object){};
        return 0;
}

int aws_s3_object_build(const char *certificate, const char *chain, const uint8_t *ct, size_t ct_len,
                        const char *method, char **ret, size_t *ret_len) {
        _cleanup_free_ char *b64 = NULL;
        struct json_writer j;
        int r;

        if (!certificate || !chain || !ct || ct_len == 0 || ct_len > AWS_KMS_BLOB_MAX || !method)
                return -EINVAL;
        b64 = malloc(base64_encoded_len(ct_len) + 1);
        if (!b64)
                return -ENOMEM;
        r = base64_encode(ct, ct_len, b64, base64_encoded_len(ct_len) + 1);
        if (r < 0)
                return r;
        json_writer_init(&j, false);
        json_begin_object(&j, NULL);
        json_string(&j, "certificate", certificate);
        json_string(&j, "certificateChain", chain);
        json_string(&j, "encryptedPrivateKey", b64);
        json_string(&j, "encryptionMethod", method);
        json_end_object(&j);
        return json_writer_finish(&j, ret, ret_len);
}
