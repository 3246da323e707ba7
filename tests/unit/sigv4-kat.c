/* sigv4-kat DIR: replays the AWS SigV4 known-answer cases under DIR (aws-c-auth's layout) through
 * aws/sigv4.c, header and query variants; one line per case and variant, exit 1 on any failure. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "aws/sigv4.h"
#include "common/json.h"
#include "common/secret.h"

#define MAX_FILE (256u * 1024u)

struct kase {
        char *method, *target;
        struct aws_header headers[AWS_SIGV4_MAX_HEADERS];
        size_t n_headers;
        struct aws_query_param query[AWS_SIGV4_MAX_QUERY];
        size_t n_query;
        const char *body;
        size_t body_len;
        char akid[AWS_SIGV4_MAX_AKID + 1], region[64], service[64], timestamp[32];
        struct secret_buf *secret, *token;
        uint64_t expires;
        bool normalize, sign_body, omit_token;
};

static char *load(const char *dir, const char *name, size_t *ret_len) {
        _cleanup_free_ char *path = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        char *buf;
        size_t n;

        if (asprintf(&path, "%s/%s", dir, name) < 0)
                return NULL;
        f = fopen(path, "rbe");
        if (!f)
                return NULL;
        buf = malloc(MAX_FILE + 1);
        if (!buf)
                return NULL;
        n = fread(buf, 1, MAX_FILE + 1, f);
        if (n > MAX_FILE || ferror(f)) {
                free(buf);
                return NULL;
        }
        buf[n] = '\0';
        if (ret_len)
                *ret_len = n;
        return buf;
}

/* 2015-08-30T12:36:00Z */
static int parse_iso(const char *s, int64_t *ret) {
        char compact[17];

        if (strlen(s) != 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' ||
            s[19] != 'Z')
                return -EINVAL;
        (void) snprintf(compact, sizeof(compact), "%.4s%.2s%.2sT%.2s%.2s%.2sZ", s, s + 5, s + 8, s + 11,
                        s + 14, s + 17);
        return aws_sigv4_parse_date(compact, ret);
}

static int parse_context(const char *text, size_t len, struct kase *k, char *why, size_t whysize) {
        static const struct json_limits lim = { .reject_duplicates = true, .max_input = MAX_FILE };
        _cleanup_(json_reader_done) struct json_reader r = {};
        struct json_error err = {};
        const char *key;
        int n;

        if ((n = json_reader_init(&r, text, len, &lim, &err)) < 0 || (n = json_object_begin(&r)) < 0)
                goto fail;
        while ((n = json_object_next(&r, &key)) > 0) {
                if (!strcmp(key, "credentials")) {
                        if ((n = json_object_begin(&r)) < 0)
                                goto fail;
                        while ((n = json_object_next(&r, &key)) > 0) {
                                if (!strcmp(key, "access_key_id"))
                                        n = json_read_string_buf(&r, k->akid, sizeof(k->akid));
                                else if (!strcmp(key, "secret_access_key"))
                                        n = json_read_secret(&r, &k->secret);
                                else if (!strcmp(key, "token"))
                                        n = json_read_secret(&r, &k->token);
                                else
                                        n = json_skip(&r);
                                if (n < 0)
                                        goto fail;
                        }
                } else if (!strcmp(key, "region"))
                        n = json_read_string_buf(&r, k->region, sizeof(k->region));
                else if (!strcmp(key, "service"))
                        n = json_read_string_buf(&r, k->service, sizeof(k->service));
                else if (!strcmp(key, "timestamp"))
                        n = json_read_string_buf(&r, k->timestamp, sizeof(k->timestamp));
                else if (!strcmp(key, "expiration_in_seconds"))
                        n = json_read_uint64(&r, &k->expires);
                else if (!strcmp(key, "normalize"))
                        n = json_read_bool(&r, &k->normalize);
                else if (!strcmp(key, "sign_body"))
                        n = json_read_bool(&r, &k->sign_body);
                else if (!strcmp(key, "omit_session_token"))
                        n = json_read_bool(&r, &k->omit_token);
                else
                        n = json_skip(&r);
                if (n < 0)
                        goto fail;
        }
        if (n < 0 || (n = json_reader_end(&r)) < 0)
                goto fail;
        if (!k->akid[0] || !k->secret || !k->region[0] || !k->service[0] || !k->timestamp[0]) {
                (void) snprintf(why, whysize, "context.json: a required field is missing");
                return -EBADMSG;
        }
        return 0;
fail:
        if (err.what)
                (void) json_error_string(&err, why, whysize);
        else
                (void) snprintf(why, whysize, "context.json: %s", strerror(-n));
        return n;
}

/* request.txt: request line, "Name:value" headers, an empty line, the body. Edits text in place. */
static int parse_request(char *text, size_t len, struct kase *k, char *why, size_t whysize) {
        char *line = text, *nl, *sp1, *sp2, *q;

        nl = strchr(line, '\n');
        if (!nl)
                goto bad;
        *nl = '\0';
        sp1 = strchr(line, ' ');
        sp2 = strrchr(line, ' ');
        if (!sp1 || sp1 == sp2)
                goto bad;
        *sp1 = '\0';
        *sp2 = '\0';
        k->method = line;
        k->target = sp1 + 1;
        for (line = nl + 1; line < text + len;) {
                char *colon;
                nl = strchr(line, '\n');
                if (nl)
                        *nl = '\0';
                if (*line == '\0') {
                        k->body = nl ? nl + 1 : line;
                        k->body_len = (size_t) (text + len - k->body);
                        break;
                }
                colon = strchr(line, ':');
                if (!colon || k->n_headers >= AWS_SIGV4_MAX_HEADERS)
                        goto bad;
                *colon = '\0';
                k->headers[k->n_headers++] = (struct aws_header){ line, colon + 1 };
                if (!nl)
                        break;
                line = nl + 1;
        }
        q = strchr(k->target, '?');
        if (q) {
                *q++ = '\0';
                while (*q) {
                        char *amp = strchr(q, '&'), *eq;
                        if (amp)
                                *amp = '\0';
                        if (k->n_query >= AWS_SIGV4_MAX_QUERY)
                                goto bad;
                        eq = strchr(q, '=');
                        if (eq)
                                *eq = '\0';
                        k->query[k->n_query++] = (struct aws_query_param){ q, eq ? eq + 1 : "" };
                        if (!amp)
                                break;
                        q = amp + 1;
                }
        }
        return 0;
bad:
        (void) snprintf(why, whysize, "request.txt: not a request line, headers and a body");
        return -EBADMSG;
}

static void kase_done(struct kase *k) {
        secret_buf_free(k->secret);
        secret_buf_free(k->token);
}

/* NULL when equal, else "what differs at byte N" into buf. */
static const char *compare(const char *dir, const char *variant, const char *what, const char *file,
                           const char *got, char *buf, size_t size) {
        _cleanup_free_ char *name = NULL, *want = NULL;
        size_t len, i;

        if (asprintf(&name, "%s-%s", variant, file) < 0 || !(want = load(dir, name, &len))) {
                (void) snprintf(buf, size, "cannot read %s", name ? name : file);
                return buf;
        }
        for (i = 0; i < len && got[i] && got[i] == want[i]; i++)
                ;
        if (i == len && got[i] == '\0')
                return NULL;
        (void) snprintf(buf, size, "%s differs at byte %zu", what, i);
        return buf;
}

/* For the signed-request file: the Authorization line (header) or X-Amz-Signature (query) must be there. */
static const char *check_signed(const char *dir, const char *variant, const struct aws_sigv4_result *res,
                                char *buf, size_t size) {
        _cleanup_free_ char *name = NULL, *want = NULL, *needle = NULL;

        if (asprintf(&name, "%s-signed-request.txt", variant) < 0 || !(want = load(dir, name, NULL))) {
                (void) snprintf(buf, size, "cannot read %s", name ? name : "signed request");
                return buf;
        }
        if (res->authorization ? asprintf(&needle, "\nAuthorization:%s\n", res->authorization) < 0
                               : asprintf(&needle, "&X-Amz-Signature=%s ", res->signature) < 0)
                return "out of memory";
        if (!strstr(want, needle)) {
                (void) snprintf(buf, size, "%s is not in %s",
                                res->authorization ? "Authorization" : "X-Amz-Signature", name);
                return buf;
        }
        return NULL;
}

static bool run_variant(const char *dir, const char *name, const struct kase *k, bool presign) {
        _cleanup_(aws_sigv4_result_done) struct aws_sigv4_result res = {};
        const char *variant = presign ? "query" : "header", *diff = NULL;
        struct aws_credentials creds = { k->akid, k->secret, k->token };
        struct aws_sigv4_req req = {
                .method = k->method,
                .path = k->target,
                .query = k->query,
                .n_query = k->n_query,
                .headers = k->headers,
                .n_headers = k->n_headers,
                .body = k->body,
                .body_len = k->body_len,
                .creds = &creds,
                .region = k->region,
                .service = k->service,
                .flags = (k->normalize ? AWS_SIGV4_NORMALIZE_PATH : 0) |
                         (k->sign_body ? AWS_SIGV4_SIGN_BODY : 0) |
                         (k->omit_token ? AWS_SIGV4_OMIT_SESSION_TOKEN : 0),
                .expires = (uint32_t) k->expires,
        };
        struct aws_err err = {};
        char buf[256];
        int r;

        if (parse_iso(k->timestamp, &req.time) < 0) {
                printf("FAIL %s %s: context.json: timestamp is not YYYY-MM-DDTHH:MM:SSZ\n", name, variant);
                return false;
        }
        r = presign ? aws_sigv4_presign(&req, &res, &err) : aws_sigv4_sign(&req, &res, &err);
        if (r < 0) {
                printf("FAIL %s %s: signing failed: %s (%s)\n", name, variant, strerror(-r), err.msg);
                return false;
        }
        if (!(diff = compare(dir, variant, "canonical request", "canonical-request.txt",
                             res.canonical_request, buf, sizeof(buf))) &&
            !(diff = compare(dir, variant, "string to sign", "string-to-sign.txt", res.string_to_sign, buf,
                             sizeof(buf))) &&
            !(diff = compare(dir, variant, "signature", "signature.txt", res.signature, buf, sizeof(buf))))
                diff = check_signed(dir, variant, &res, buf, sizeof(buf));
        if (diff) {
                printf("FAIL %s %s: %s\n", name, variant, diff);
                return false;
        }
        printf("ok %s %s\n", name, variant);
        return true;
}

static int name_cmp(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

int main(int argc, char **argv) {
        char *names[256];
        size_t n = 0, passed = 0, failed = 0;
        DIR *d;
        struct dirent *de;

        if (argc != 2) {
                fprintf(stderr, "usage: sigv4-kat DIR\n");
                return 2;
        }
        d = opendir(argv[1]);
        if (!d) {
                printf("FAIL cannot open '%s': %s\n0 passed, 1 failed\n", argv[1], strerror(errno));
                return 1;
        }
        while ((de = readdir(d)) && n < ELEMENTSOF(names))
                if (de->d_name[0] != '.' && de->d_type == DT_DIR)
                        names[n++] = strdup(de->d_name);
        closedir(d);
        qsort(names, n, sizeof(names[0]), name_cmp);

        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *dir = NULL, *req = NULL, *ctx = NULL;
                struct kase k = {};
                size_t rl, cl;
                char why[256] = "";

                if (!names[i] || asprintf(&dir, "%s/%s", argv[1], names[i]) < 0)
                        return 1;
                req = load(dir, "request.txt", &rl);
                ctx = load(dir, "context.json", &cl);
                if (!req || !ctx) {
                        printf("FAIL %s: cannot read %s\n", names[i], !req ? "request.txt" : "context.json");
                        failed += 2;
                } else if (parse_context(ctx, cl, &k, why, sizeof(why)) < 0 ||
                           parse_request(req, rl, &k, why, sizeof(why)) < 0) {
                        printf("FAIL %s: %s\n", names[i], why);
                        failed += 2;
                } else
                        for (int v = 0; v < 2; v++) {
                                if (run_variant(dir, names[i], &k, v == 1))
                                        passed++;
                                else
                                        failed++;
                        }
                kase_done(&k);
                free(names[i]);
        }
        if (n == 0) {
                printf("FAIL no case folders under '%s'\n", argv[1]);
                failed++;
        }
        printf("%zu passed, %zu failed\n", passed, failed);
        return failed ? 1 : 0;
}
