/* AWS Signature Version 4 signer and verifier (aws-c-auth's behaviour, checked against its suite). */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "aws/sigv4.h"
#include "common/secret.h"
#include "common/parse-util.h"

#define ALGORITHM "AWS4-HMAC-SHA256"

/* ---- A bounded string builder whose old copies are wiped when it grows ---------------------- */

struct sb {
        char *p;
        size_t len, cap;
        int err;
};

static void sb_wipe_free(char *p, size_t cap) {
        if (!p)
                return;
        secret_wipe(p, cap);
        free(p);
}

static void sb_done(struct sb *b) {
        sb_wipe_free(b->p, b->cap);
        *b = (struct sb){};
}

static void sb_add(struct sb *b, const void *s, size_t n) {
        char *q;
        size_t cap;

        if (b->err)
                return;
        if (n > AWS_SIGV4_MAX_CANONICAL - b->len) {
                b->err = -E2BIG;
                return;
        }
        if (b->len + n + 1 > b->cap) {
                cap = MAX(b->cap * 2, MAX(b->len + n + 1, (size_t) 256));
                q = malloc(cap);
                if (!q) {
                        b->err = -ENOMEM;
                        return;
                }
                if (b->len)
                        memcpy(q, b->p, b->len);
                sb_wipe_free(b->p, b->cap);
                b->p = q;
                b->cap = cap;
        }
        memcpy(b->p + b->len, s, n);
        b->len += n;
        b->p[b->len] = '\0';
}

static void sb_str(struct sb *b, const char *s) {
        sb_add(b, s, strlen(s));
}

static void sb_ch(struct sb *b, char c) {
        sb_add(b, &c, 1);
}

/* Hands out the string (NUL-terminated, "" if empty) or the sticky error. */
static int sb_take(struct sb *b, char **ret) {
        if (!b->err && !b->p)
                sb_add(b, "", 0);
        if (b->err)
                return b->err;
        *ret = b->p;
        *b = (struct sb){};
        return 0;
}

static void wipe_free_str(char *s) {
        if (s) {
                secret_wipe(s, strlen(s));
                free(s);
        }
}

/* ---- Encoding pieces ------------------------------------------------------------------------ */

static bool unreserved(unsigned char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
               c == '_' || c == '.' || c == '~';
}

static void sb_uri_encode(struct sb *b, const char *s, size_t len, bool keep_slash) {
        static const char hex[] = "0123456789ABCDEF";

        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char) s[i];
                if (unreserved(c) || (keep_slash && c == '/'))
                        sb_ch(b, (char) c);
                else {
                        char t[3] = { '%', hex[c >> 4], hex[c & 15] };
                        sb_add(b, t, 3);
                }
        }
}

int aws_sigv4_uri_encode(const char *s, size_t len, bool keep_slash, char *buf, size_t size) {
        struct sb b = {};
        int r;

        sb_uri_encode(&b, s, len, keep_slash);
        sb_add(&b, "", 0);
        if (b.err) {
                r = b.err;
        } else if (b.len + 1 > size) {
                r = -E2BIG;
        } else {
                memcpy(buf, b.p, b.len + 1);
                r = (int) b.len;
        }
        sb_done(&b);
        return r;
}

/* RFC 3986 remove_dot_segments plus dropping empty segments; a trailing '/' stays. */
static int normalize_path(const char *path, struct sb *out) {
        size_t seg_start[AWS_SIGV4_MAX_PATH / 2 + 1], n = 0, len = strlen(path);
        bool trailing = len > 1 && path[len - 1] == '/';
        struct sb b = {};
        const char *p = path;

        if (len == 0 || len > AWS_SIGV4_MAX_PATH || path[0] != '/')
                return -EINVAL;
        sb_ch(&b, '/');
        while (*p) {
                const char *s;
                size_t sl;

                while (*p == '/')
                        p++;
                s = p;
                while (*p && *p != '/')
                        p++;
                sl = (size_t) (p - s);
                if (sl == 0 || (sl == 1 && s[0] == '.'))
                        continue;
                if (sl == 2 && s[0] == '.' && s[1] == '.') {
                        if (n > 0)
                                b.len = seg_start[--n];
                        continue;
                }
                seg_start[n++] = b.len;
                if (b.len > 1)
                        sb_ch(&b, '/');
                sb_add(&b, s, sl);
        }
        if (trailing && b.len > 1)
                sb_ch(&b, '/');
        if (!b.err)
                b.p[b.len] = '\0';
        if (b.err) {
                sb_done(&b);
                return -E2BIG;
        }
        sb_add(out, b.p, b.len);
        sb_done(&b);
        return 0;
}

int aws_sigv4_normalize_path(const char *path, char *buf, size_t size) {
        struct sb b = {};
        int r;

        r = normalize_path(path, &b);
        sb_add(&b, "", 0);
        if (r >= 0 && b.err)
                r = b.err;
        if (r >= 0) {
                if (b.len + 1 > size)
                        r = -E2BIG;
                else {
                        memcpy(buf, b.p, b.len + 1);
                        r = (int) b.len;
                }
        }
        sb_done(&b);
        return r;
}

int aws_sigv4_format_date(int64_t t, char buf[static 17]) {
        struct tm tm;
        time_t tt;

        if (t < 0 || t > INT64_C(253402300799)) /* 9999-12-31T23:59:59Z */
                return -ERANGE;
        tt = (time_t) t;
        if (!gmtime_r(&tt, &tm))
                return -ERANGE;
        if (strftime(buf, 17, "%Y%m%dT%H%M%SZ", &tm) != 16)
                return -ERANGE;
        return 0;
}

static int digits(const char *s, size_t n, int min, int max, int *ret) {
        int v = 0;

        for (size_t i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -EINVAL;
                v = v * 10 + (s[i] - '0');
        }
        if (v < min || v > max)
                return -EINVAL;
        *ret = v;
        return 0;
}

int aws_sigv4_parse_date(const char *s, int64_t *ret) {
        static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
        int y, mo, d, h, mi, se;
        struct tm tm = {};
        time_t t;

        if (!s || strlen(s) != 16 || s[8] != 'T' || s[15] != 'Z')
                return -EINVAL;
        if (digits(s, 4, 1970, 9999, &y) < 0 || digits(s + 4, 2, 1, 12, &mo) < 0 ||
            digits(s + 6, 2, 1, mdays[mo - 1], &d) < 0 || digits(s + 9, 2, 0, 23, &h) < 0 ||
            digits(s + 11, 2, 0, 59, &mi) < 0 || digits(s + 13, 2, 0, 59, &se) < 0)
                return -EINVAL;
        if (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
                return -EINVAL;
        tm.tm_year = y - 1900;
        tm.tm_mon = mo - 1;
        tm.tm_mday = d;
        tm.tm_hour = h;
        tm.tm_min = mi;
        tm.tm_sec = se;
        t = timegm(&tm);
        if (t == (time_t) -1)
                return -EINVAL;
        *ret = (int64_t) t;
        return 0;
}

static void hex_encode(const uint8_t *p, size_t n, char *out) {
        static const char hex[] = "0123456789abcdef";

        for (size_t i = 0; i < n; i++) {
                out[2 * i] = hex[p[i] >> 4];
                out[2 * i + 1] = hex[p[i] & 15];
        }
        out[2 * n] = '\0';
}

static void sha256_hex(const void *p, size_t n, char out[static 65]) {
        uint8_t md[SHA256_DIGEST_LENGTH];

        SHA256(n ? p : (const void *) "", n, md);
        hex_encode(md, sizeof(md), out);
}

/* ---- Validation ----------------------------------------------------------------------------- */

static bool scope_part_ok(const char *s) {
        size_t n = s ? strlen(s) : 0;

        if (n == 0 || n > AWS_SIGV4_MAX_SCOPE_PART)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
                        return false;
        return true;
}

static bool akid_ok(const char *s) {
        size_t n = s ? strlen(s) : 0;

        if (n == 0 || n > AWS_SIGV4_MAX_AKID)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!isalnum((unsigned char) s[i]))
                        return false;
        return true;
}

static bool token_char(unsigned char c) {
        return isalnum(c) || strchr("!#$%&'*+-.^_`|~", c);
}

static int check_name(const char *what, const char *s, struct aws_err *e) {
        size_t n = s ? strlen(s) : 0;

        if (n == 0 || n > AWS_SIGV4_MAX_NAME)
                return aws_err(e, -EINVAL, "%s: name empty or longer than %u bytes", what,
                               AWS_SIGV4_MAX_NAME);
        for (size_t i = 0; i < n; i++)
                if (!token_char((unsigned char) s[i]))
                        return aws_err(e, -EINVAL, "%s: invalid character at byte %zu of the name", what, i);
        return 0;
}

/* No control characters (CR/LF would split the request), bounded. */
static int check_value(const char *what, const char *name, const char *s, size_t n, size_t max,
                       struct aws_err *e) {
        if (n > max)
                return aws_err(e, -E2BIG, "%s '%s': value longer than %zu bytes", what, name, max);
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) s[i] < 0x20 && s[i] != '\t')
                        return aws_err(e, -EINVAL, "%s '%s': control character at byte %zu of the value",
                                       what, name, i);
                else if (s[i] == 0x7f)
                        return aws_err(e, -EINVAL, "%s '%s': DEL at byte %zu of the value", what, name, i);
        return 0;
}

/* ---- Canonical request ---------------------------------------------------------------------- */

struct hentry {
        char name[AWS_SIGV4_MAX_NAME + 1]; /* lower-case */
        const char *value;
        size_t value_len;
};

struct qentry {
        char *key; /* encoded */
        char *value;
};

struct canon {
        const char *method;
        const char *path; /* raw */
        unsigned flags;
        struct qentry *q;
        size_t n_q;
        struct hentry *h;
        size_t n_h;
        const char *body_hex;
};

static void hentry_set(struct hentry *h, const char *name, const char *value, size_t value_len) {
        size_t i;

        for (i = 0; name[i] && i < AWS_SIGV4_MAX_NAME; i++)
                h->name[i] = (char) tolower((unsigned char) name[i]);
        h->name[i] = '\0';
        h->value = value;
        h->value_len = value_len;
}

/* Stable insertion sort by name: repeated headers keep their order for the ',' join. */
static void hentries_sort(struct hentry *h, size_t n) {
        for (size_t i = 1; i < n; i++) {
                struct hentry t = h[i];
                size_t j = i;
                while (j > 0 && strcmp(h[j - 1].name, t.name) > 0) {
                        h[j] = h[j - 1];
                        j--;
                }
                h[j] = t;
        }
}

static int qentry_cmp(const void *a, const void *b) {
        const struct qentry *x = a, *y = b;
        int c = strcmp(x->key, y->key);

        return c ? c : strcmp(x->value, y->value);
}

static void qentries_free(struct qentry *q, size_t n) {
        if (!q)
                return;
        for (size_t i = 0; i < n; i++) {
                wipe_free_str(q[i].key);
                wipe_free_str(q[i].value);
        }
        free(q);
}

static int qentry_set(struct qentry *q, const char *k, size_t kl, const char *v, size_t vl) {
        struct sb a = {}, b = {};
        int r;

        sb_uri_encode(&a, k, kl, false);
        sb_uri_encode(&b, v, vl, false);
        if ((r = sb_take(&a, &q->key)) < 0 || (r = sb_take(&b, &q->value)) < 0) {
                sb_done(&a);
                sb_done(&b);
                return r;
        }
        return 0;
}

/* Trimmed, inner runs of blanks collapsed to one space. */
static void sb_trimmed(struct sb *b, const char *v, size_t n) {
        bool space = false, any = false;

        for (size_t i = 0; i < n; i++) {
                if (v[i] == ' ' || v[i] == '\t') {
                        space = any;
                        continue;
                }
                if (space)
                        sb_ch(b, ' ');
                sb_ch(b, v[i]);
                space = false;
                any = true;
        }
}

static int canon_build(const struct canon *c, struct sb *creq, struct sb *signed_headers,
                       struct aws_err *e) {
        int r;

        sb_str(creq, c->method);
        sb_ch(creq, '\n');
        if (c->flags & AWS_SIGV4_NORMALIZE_PATH) {
                struct sb np = {};
                r = normalize_path(c->path, &np);
                if (r < 0) {
                        sb_done(&np);
                        return aws_err(e, r, "path: not absolute or longer than %u bytes",
                                       AWS_SIGV4_MAX_PATH);
                }
                sb_uri_encode(creq, np.p, np.len, true);
                sb_done(&np);
        } else
                sb_uri_encode(creq, c->path, strlen(c->path), true);
        sb_ch(creq, '\n');

        if (c->n_q > 1)
                qsort(c->q, c->n_q, sizeof(*c->q), qentry_cmp);
        for (size_t i = 0; i < c->n_q; i++) {
                if (i)
                        sb_ch(creq, '&');
                sb_str(creq, c->q[i].key);
                sb_ch(creq, '=');
                sb_str(creq, c->q[i].value);
        }
        sb_ch(creq, '\n');

        hentries_sort(c->h, c->n_h);
        for (size_t i = 0; i < c->n_h; i++) {
                bool first = i == 0 || strcmp(c->h[i - 1].name, c->h[i].name) != 0;
                bool last = i + 1 == c->n_h || strcmp(c->h[i + 1].name, c->h[i].name) != 0;
                if (first) {
                        sb_str(creq, c->h[i].name);
                        sb_ch(creq, ':');
                        if (signed_headers->len)
                                sb_ch(signed_headers, ';');
                        sb_str(signed_headers, c->h[i].name);
                } else
                        sb_ch(creq, ',');
                sb_trimmed(creq, c->h[i].value, c->h[i].value_len);
                if (last)
                        sb_ch(creq, '\n');
        }
        sb_ch(creq, '\n');
        sb_add(signed_headers, "", 0);
        sb_str(creq, signed_headers->p ? signed_headers->p : "");
        sb_ch(creq, '\n');
        sb_str(creq, c->body_hex);
        if (creq->err || signed_headers->err)
                return aws_err(e, creq->err ?: signed_headers->err, "canonical request: over %u bytes",
                               AWS_SIGV4_MAX_CANONICAL);
        return 0;
}

static int derive_signature(const struct secret_buf *secret, const char *day, const char *region,
                            const char *service, const char *sts, char out[static 65]) {
        uint8_t k[4 + AWS_SIGV4_MAX_SECRET], a[EVP_MAX_MD_SIZE], b[EVP_MAX_MD_SIZE];
        unsigned alen = 0, blen = 0;
        int r = -EIO;

        if (secret->len == 0 || secret->len > AWS_SIGV4_MAX_SECRET)
                return -EINVAL;
        memcpy(k, "AWS4", 4);
        memcpy(k + 4, secret->data, secret->len);
        if (HMAC(EVP_sha256(), k, (int) (4 + secret->len), (const uint8_t *) day, strlen(day), a, &alen) &&
            HMAC(EVP_sha256(), a, (int) alen, (const uint8_t *) region, strlen(region), b, &blen) &&
            HMAC(EVP_sha256(), b, (int) blen, (const uint8_t *) service, strlen(service), a, &alen) &&
            HMAC(EVP_sha256(), a, (int) alen, (const uint8_t *) "aws4_request", 12, b, &blen) &&
            HMAC(EVP_sha256(), b, (int) blen, (const uint8_t *) sts, strlen(sts), a, &alen)) {
                hex_encode(a, alen, out);
                r = 0;
        }
        OPENSSL_cleanse(k, sizeof(k));
        OPENSSL_cleanse(a, sizeof(a));
        OPENSSL_cleanse(b, sizeof(b));
        return r;
}

static int string_to_sign(const char *amz_date, const char *scope, const char *creq, char **ret) {
        struct sb b = {};
        char h[65];

        sha256_hex(creq, strlen(creq), h);
        sb_str(&b, ALGORITHM "\n");
        sb_str(&b, amz_date);
        sb_ch(&b, '\n');
        sb_str(&b, scope);
        sb_ch(&b, '\n');
        sb_str(&b, h);
        return sb_take(&b, ret);
}

/* ---- Signing -------------------------------------------------------------------------------- */

static bool is_added_header(const char *lname) {
        return !strcmp(lname, "authorization") || !strcmp(lname, "x-amz-date") ||
               !strcmp(lname, "x-amz-security-token") || !strcmp(lname, "x-amz-content-sha256");
}

/* Headers proxies and clients change on the way: never signed (as aws-c-auth). */
static bool is_unsigned_header(const char *lname) {
        return !strcmp(lname, "user-agent") || !strcmp(lname, "x-amzn-trace-id") ||
               !strcmp(lname, "expect") || !strcmp(lname, "connection") ||
               !strcmp(lname, "transfer-encoding");
}

static int check_req(const struct aws_sigv4_req *q, struct aws_err *e) {
        const struct aws_credentials *c = q->creds;
        size_t ml = q->method ? strlen(q->method) : 0;

        if (ml == 0 || ml > AWS_SIGV4_MAX_METHOD)
                return aws_err(e, -EINVAL, "method: empty or longer than %u bytes", AWS_SIGV4_MAX_METHOD);
        for (size_t i = 0; i < ml; i++)
                if (q->method[i] < 'A' || q->method[i] > 'Z')
                        return aws_err(e, -EINVAL, "method: invalid character at byte %zu", i);
        if (!q->path || q->path[0] != '/' || strlen(q->path) > AWS_SIGV4_MAX_PATH)
                return aws_err(e, -EINVAL, "path: not absolute or longer than %u bytes", AWS_SIGV4_MAX_PATH);
        if (check_value("path", "", q->path, strlen(q->path), AWS_SIGV4_MAX_PATH, e) < 0)
                return -EINVAL;
        if (!scope_part_ok(q->region))
                return aws_err(e, -EINVAL, "region: not [a-z0-9-]{1,%u}", AWS_SIGV4_MAX_SCOPE_PART);
        if (!scope_part_ok(q->service))
                return aws_err(e, -EINVAL, "service: not [a-z0-9-]{1,%u}", AWS_SIGV4_MAX_SCOPE_PART);
        if (!c || !akid_ok(c->access_key_id))
                return aws_err(e, -EINVAL, "access key id: not alphanumeric, 1..%u bytes",
                               AWS_SIGV4_MAX_AKID);
        if (!c->secret_access_key || c->secret_access_key->len == 0 ||
            c->secret_access_key->len > AWS_SIGV4_MAX_SECRET)
                return aws_err(e, -EINVAL, "secret access key: empty or longer than %u bytes",
                               AWS_SIGV4_MAX_SECRET);
        if (c->session_token) {
                const char *t = (const char *) c->session_token->data;
                size_t tl = c->session_token->len;
                if (tl > AWS_SIGV4_MAX_TOKEN)
                        return aws_err(e, -E2BIG, "session token: longer than %u bytes",
                                       AWS_SIGV4_MAX_TOKEN);
                for (size_t i = 0; i < tl; i++)
                        if ((unsigned char) t[i] <= 0x20 || (unsigned char) t[i] >= 0x7f)
                                return aws_err(e, -EINVAL, "session token: invalid character at byte %zu",
                                               i);
        }
        if (q->n_headers > AWS_SIGV4_MAX_HEADERS || (q->n_headers && !q->headers))
                return aws_err(e, -E2BIG, "headers: more than %u", AWS_SIGV4_MAX_HEADERS);
        if (q->n_query > AWS_SIGV4_MAX_QUERY || (q->n_query && !q->query))
                return aws_err(e, -E2BIG, "query: more than %u parameters", AWS_SIGV4_MAX_QUERY);
        if (q->body_len && !q->body)
                return aws_err(e, -EINVAL, "body: NULL with a length");
        return 0;
}

static bool has_token(const struct aws_credentials *c) {
        return c->session_token && c->session_token->len > 0;
}

static int sign_common(const struct aws_sigv4_req *q, bool presign, struct aws_sigv4_result *ret,
                       struct aws_err *e) {
        struct hentry h[AWS_SIGV4_MAX_HEADERS + 3];
        struct aws_sigv4_result res = {};
        struct sb creq = {}, sh = {}, scope = {}, cred = {}, auth = {}, qs = {};
        struct qentry *qe = NULL;
        size_t n_h = 0, n_q = 0;
        char day[9], expires[16];
        bool token = false, host = false;
        int r;

        if ((r = check_req(q, e)) < 0)
                return r;
        if (presign && (q->expires == 0 || q->expires > AWS_SIGV4_MAX_EXPIRES))
                return aws_err(e, -EINVAL, "expires: not 1..%u seconds", AWS_SIGV4_MAX_EXPIRES);
        if (aws_sigv4_format_date(q->time, res.amz_date) < 0)
                return aws_err(e, -ERANGE, "time: outside 1970..9999");
        memcpy(day, res.amz_date, 8);
        day[8] = '\0';
        sha256_hex(q->body, q->body_len, res.body_sha256);
        token = has_token(q->creds);
        if (token) {
                res.token =
                        strndup((const char *) q->creds->session_token->data, q->creds->session_token->len);
                if (!res.token)
                        return -ENOMEM;
        }

        for (size_t i = 0; i < q->n_headers; i++) {
                const struct aws_header *x = &q->headers[i];
                if ((r = check_name("header", x->name, e)) < 0 ||
                    (r = check_value("header", x->name, x->value ? x->value : "",
                                     x->value ? strlen(x->value) : 0, AWS_SIGV4_MAX_VALUE, e)) < 0)
                        goto fail;
                if (!x->value) {
                        r = aws_err(e, -EINVAL, "header '%s': no value", x->name);
                        goto fail;
                }
                hentry_set(&h[n_h], x->name, x->value, strlen(x->value));
                if (is_added_header(h[n_h].name)) {
                        r = aws_err(e, -EINVAL, "header '%s': added by the signer, not by the caller",
                                    x->name);
                        goto fail;
                }
                if (!strcmp(h[n_h].name, "host"))
                        host = true;
                if (!is_unsigned_header(h[n_h].name))
                        n_h++;
        }
        if (!host) {
                r = aws_err(e, -EINVAL, "header 'Host': missing");
                goto fail;
        }
        if (!presign) {
                hentry_set(&h[n_h++], "x-amz-date", res.amz_date, 16);
                if (token && !(q->flags & AWS_SIGV4_OMIT_SESSION_TOKEN))
                        hentry_set(&h[n_h++], "x-amz-security-token", res.token, strlen(res.token));
                if (q->flags & AWS_SIGV4_SIGN_BODY)
                        hentry_set(&h[n_h++], "x-amz-content-sha256", res.body_sha256, 64);
        }

        sb_str(&scope, day);
        sb_ch(&scope, '/');
        sb_str(&scope, q->region);
        sb_ch(&scope, '/');
        sb_str(&scope, q->service);
        sb_str(&scope, "/aws4_request");
        sb_str(&cred, q->creds->access_key_id);
        sb_ch(&cred, '/');
        sb_add(&cred, scope.p, scope.len);
        if (scope.err || cred.err) {
                r = -ENOMEM;
                goto fail;
        }

        qe = calloc(q->n_query + 6, sizeof(*qe));
        if (!qe) {
                r = -ENOMEM;
                goto fail;
        }
        for (size_t i = 0; i < q->n_query; i++) {
                const struct aws_query_param *p = &q->query[i];
                size_t kl = p->key ? strlen(p->key) : 0, vl = p->value ? strlen(p->value) : 0;
                if (kl == 0 || kl > AWS_SIGV4_MAX_NAME) {
                        r = aws_err(e, -EINVAL, "query parameter %zu: key empty or longer than %u bytes", i,
                                    AWS_SIGV4_MAX_NAME);
                        goto fail;
                }
                if (vl > AWS_SIGV4_MAX_VALUE) {
                        r = aws_err(e, -E2BIG, "query parameter '%s': value longer than %u bytes", p->key,
                                    AWS_SIGV4_MAX_VALUE);
                        goto fail;
                }
                if ((r = qentry_set(&qe[n_q++], p->key, kl, p->value ? p->value : "", vl)) < 0)
                        goto fail;
        }
        if (presign) {
                /* the signed-headers list is needed inside the query: build it first */
                struct canon c0 = { .method = q->method,
                                    .path = q->path,
                                    .flags = q->flags,
                                    .h = h,
                                    .n_h = n_h,
                                    .body_hex = res.body_sha256 };
                struct sb tmp = {};
                r = canon_build(&c0, &tmp, &sh, e);
                sb_done(&tmp);
                if (r < 0)
                        goto fail;
                (void) snprintf(expires, sizeof(expires), "%" PRIu32, q->expires);
                if ((r = qentry_set(&qe[n_q++], "X-Amz-Algorithm", 15, ALGORITHM, strlen(ALGORITHM))) < 0 ||
                    (r = qentry_set(&qe[n_q++], "X-Amz-Credential", 16, cred.p, cred.len)) < 0 ||
                    (r = qentry_set(&qe[n_q++], "X-Amz-Date", 10, res.amz_date, 16)) < 0 ||
                    (r = qentry_set(&qe[n_q++], "X-Amz-Expires", 13, expires, strlen(expires))) < 0 ||
                    (r = qentry_set(&qe[n_q++], "X-Amz-SignedHeaders", 19, sh.p, sh.len)) < 0)
                        goto fail;
                if (token && !(q->flags & AWS_SIGV4_OMIT_SESSION_TOKEN) &&
                    (r = qentry_set(&qe[n_q++], "X-Amz-Security-Token", 20, res.token, strlen(res.token))) <
                            0)
                        goto fail;
                sb_done(&sh);
        }

        {
                struct canon c = { .method = q->method,
                                   .path = q->path,
                                   .flags = q->flags,
                                   .q = qe,
                                   .n_q = n_q,
                                   .h = h,
                                   .n_h = n_h,
                                   .body_hex = res.body_sha256 };
                if ((r = canon_build(&c, &creq, &sh, e)) < 0)
                        goto fail;
        }
        if ((r = sb_take(&creq, &res.canonical_request)) < 0 ||
            (r = sb_take(&sh, &res.signed_headers)) < 0 ||
            (r = string_to_sign(res.amz_date, scope.p, res.canonical_request, &res.string_to_sign)) < 0)
                goto fail;
        r = derive_signature(q->creds->secret_access_key, day, q->region, q->service, res.string_to_sign,
                             res.signature);
        if (r < 0) {
                r = aws_err(e, r, "signature: HMAC failed");
                goto fail;
        }

        if (presign) {
                for (size_t i = 0; i < n_q; i++) {
                        if (i)
                                sb_ch(&qs, '&');
                        sb_str(&qs, qe[i].key);
                        sb_ch(&qs, '=');
                        sb_str(&qs, qe[i].value);
                }
                if (token && (q->flags & AWS_SIGV4_OMIT_SESSION_TOKEN)) {
                        sb_str(&qs, "&X-Amz-Security-Token=");
                        sb_uri_encode(&qs, res.token, strlen(res.token), false);
                }
                sb_str(&qs, "&X-Amz-Signature=");
                sb_str(&qs, res.signature);
                if ((r = sb_take(&qs, &res.query)) < 0)
                        goto fail;
        } else {
                sb_str(&auth, ALGORITHM " Credential=");
                sb_add(&auth, cred.p, cred.len);
                sb_str(&auth, ", SignedHeaders=");
                sb_str(&auth, res.signed_headers);
                sb_str(&auth, ", Signature=");
                sb_str(&auth, res.signature);
                if ((r = sb_take(&auth, &res.authorization)) < 0)
                        goto fail;
        }
        r = 0;
        *ret = res;
        res = (struct aws_sigv4_result){};
        /* add[] points into *ret itself, so it is filled after the copy */
        if (!presign) {
                ret->add[ret->n_add++] = (struct aws_header){ "X-Amz-Date", ret->amz_date };
                if (token)
                        ret->add[ret->n_add++] = (struct aws_header){ "X-Amz-Security-Token", ret->token };
                if (q->flags & AWS_SIGV4_SIGN_BODY)
                        ret->add[ret->n_add++] =
                                (struct aws_header){ "X-Amz-Content-Sha256", ret->body_sha256 };
                ret->add[ret->n_add++] = (struct aws_header){ "Authorization", ret->authorization };
        }
fail:
        aws_sigv4_result_done(&res);
        qentries_free(qe, n_q);
        sb_done(&creq);
        sb_done(&sh);
        sb_done(&scope);
        sb_done(&cred);
        sb_done(&auth);
        sb_done(&qs);
        return r;
}

int aws_sigv4_sign(const struct aws_sigv4_req *req, struct aws_sigv4_result *ret, struct aws_err *e) {
        return sign_common(req, false, ret, e);
}

int aws_sigv4_presign(const struct aws_sigv4_req *req, struct aws_sigv4_result *ret, struct aws_err *e) {
        return sign_common(req, true, ret, e);
}

void aws_sigv4_result_done(struct aws_sigv4_result *r) {
        if (!r)
                return;
        wipe_free_str(r->canonical_request);
        wipe_free_str(r->string_to_sign);
        wipe_free_str(r->signed_headers);
        wipe_free_str(r->authorization);
        wipe_free_str(r->query);
        wipe_free_str(r->token);
        secret_wipe(r, sizeof(*r));
}

/* ---- Verifier ------------------------------------------------------------------------------- */

const char *aws_sigv4_verdict_to_string(enum aws_sigv4_verdict v) {
        static const char *const names[_AWS_SIGV4_VERDICT_MAX] = {
                [AWS_SIGV4_OK] = "ok",
                [AWS_SIGV4_MISSING_HEADER] = "missing header",
                [AWS_SIGV4_MALFORMED] = "malformed request",
                [AWS_SIGV4_BAD_SCOPE] = "bad credential scope",
                [AWS_SIGV4_WRONG_DATE] = "wrong date",
                [AWS_SIGV4_SKEWED] = "request time too skewed",
                [AWS_SIGV4_UNKNOWN_KEY] = "unknown access key id",
                [AWS_SIGV4_BAD_TOKEN] = "bad security token",
                [AWS_SIGV4_BODY_HASH_MISMATCH] = "body hash mismatch",
                [AWS_SIGV4_SIGNATURE_MISMATCH] = "signature mismatch",
        };

        if ((int) v < 0 || v >= _AWS_SIGV4_VERDICT_MAX)
                return "invalid";
        return names[v];
}

/* All received values of a header joined with ',', raw (untrimmed); NULL if absent. */
static const char *find_header(const struct aws_sigv4_received *rq, const char *lname, size_t *ret_count) {
        const char *v = NULL;
        size_t n = 0;

        for (size_t i = 0; i < rq->n_headers; i++)
                if (rq->headers[i].name && strcasecmp(rq->headers[i].name, lname) == 0) {
                        if (!v)
                                v = rq->headers[i].value;
                        n++;
                }
        if (ret_count)
                *ret_count = n;
        return v;
}

/* Percent-decodes s[0..n) into a new string; -EBADMSG for a bad escape or a decoded NUL. */
static int pct_decode(const char *s, size_t n, char **ret) {
        char *o = malloc(n + 1);
        size_t j = 0;

        if (!o)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                if (s[i] != '%') {
                        o[j++] = s[i];
                        continue;
                }
                if (n - i < 3) {
                        free(o);
                        return -EBADMSG;
                }
                int hi = unhexchar(s[i + 1]), lo = hi < 0 ? -1 : unhexchar(s[i + 2]);
                if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                        free(o);
                        return -EBADMSG;
                }
                o[j++] = (char) (hi << 4 | lo);
                i += 2;
        }
        o[j] = '\0';
        *ret = o;
        return 0;
}

struct auth_fields {
        char akid[AWS_SIGV4_MAX_AKID + 1];
        char day[9];
        char region[AWS_SIGV4_MAX_SCOPE_PART + 1];
        char service[AWS_SIGV4_MAX_SCOPE_PART + 1];
        char terminator[16];
        char signed_headers[AWS_SIGV4_MAX_HEADERS * (AWS_SIGV4_MAX_NAME + 1)];
        char signature[65];
};

/* Copies s[0..n) into buf, -E2BIG if it does not fit. */
static int copy_field(const char *s, size_t n, char *buf, size_t size) {
        if (n + 1 > size)
                return -E2BIG;
        memcpy(buf, s, n);
        buf[n] = '\0';
        return 0;
}

static int parse_credential(const char *s, size_t n, struct auth_fields *a) {
        char *parts[5] = { a->akid, a->day, a->region, a->service, a->terminator };
        size_t sizes[5] = { sizeof(a->akid), sizeof(a->day), sizeof(a->region), sizeof(a->service),
                            sizeof(a->terminator) };
        size_t k = 0, start = 0;

        for (size_t i = 0; i <= n; i++) {
                if (i < n && s[i] != '/')
                        continue;
                if (k >= 5 || copy_field(s + start, i - start, parts[k], sizes[k]) < 0)
                        return -EBADMSG;
                k++;
                start = i + 1;
        }
        return k == 5 ? 0 : -EBADMSG;
}

/* "AWS4-HMAC-SHA256 Credential=A/D/R/S/aws4_request, SignedHeaders=a;b, Signature=hex" */
static int parse_authorization(const char *v, struct auth_fields *a, struct aws_err *e) {
        const size_t plen = strlen(ALGORITHM " ");
        bool seen[3] = {};
        const char *p;

        if (strlen(v) > AWS_SIGV4_MAX_VALUE)
                return aws_err(e, -E2BIG, "Authorization: longer than %u bytes", AWS_SIGV4_MAX_VALUE);
        if (strncmp(v, ALGORITHM " ", plen) != 0)
                return aws_err(e, -EBADMSG, "Authorization: algorithm is not " ALGORITHM);
        p = v + plen;
        while (*p) {
                const char *end, *eq;
                size_t n;

                while (*p == ' ')
                        p++;
                end = strchr(p, ',');
                if (!end)
                        end = p + strlen(p);
                eq = memchr(p, '=', (size_t) (end - p));
                if (!eq)
                        return aws_err(e, -EBADMSG, "Authorization: component without '=' at byte %zu",
                                       (size_t) (p - v));
                n = (size_t) (end - eq - 1);
                while (n > 0 && eq[n] == ' ')
                        n--;
                if ((size_t) (eq - p) == 10 && !strncmp(p, "Credential", 10) && !seen[0]) {
                        seen[0] = true;
                        if (parse_credential(eq + 1, n, a) < 0)
                                return aws_err(e, -EBADMSG,
                                               "Authorization: Credential is not "
                                               "AKID/date/region/service/terminator");
                } else if ((size_t) (eq - p) == 13 && !strncmp(p, "SignedHeaders", 13) && !seen[1]) {
                        seen[1] = true;
                        if (copy_field(eq + 1, n, a->signed_headers, sizeof(a->signed_headers)) < 0)
                                return aws_err(e, -E2BIG, "Authorization: SignedHeaders too long");
                } else if ((size_t) (eq - p) == 9 && !strncmp(p, "Signature", 9) && !seen[2]) {
                        seen[2] = true;
                        if (copy_field(eq + 1, n, a->signature, sizeof(a->signature)) < 0 || n != 64)
                                return aws_err(e, -EBADMSG, "Authorization: Signature is not 64 hex digits");
                } else
                        return aws_err(e, -EBADMSG,
                                       "Authorization: unknown or repeated component at byte %zu",
                                       (size_t) (p - v));
                p = *end ? end + 1 : end;
        }
        if (!seen[0] || !seen[1] || !seen[2])
                return aws_err(e, -EBADMSG, "Authorization: %s missing",
                               !seen[0]   ? "Credential"
                               : !seen[1] ? "SignedHeaders"
                                          : "Signature");
        return 0;
}

struct vstate {
        struct hentry h[AWS_SIGV4_MAX_HEADERS];
        size_t n_h;
        struct qentry *q;
        size_t n_q;
        char *path;
        char *sts;
        struct sb creq, sh;
};

static void vstate_done(struct vstate *s) {
        qentries_free(s->q, s->n_q);
        free(s->path);
        wipe_free_str(s->sts);
        sb_done(&s->creq);
        sb_done(&s->sh);
}

/* Splits the target into the decoded path and the query parameters (decoded, then re-encoded). */
static int parse_target(const char *t, struct vstate *s, struct aws_err *e) {
        const char *qm = strchr(t, '?'), *p;
        size_t plen = qm ? (size_t) (qm - t) : strlen(t);

        if (plen == 0 || t[0] != '/' || strlen(t) > AWS_SIGV4_MAX_PATH + AWS_SIGV4_MAX_CANONICAL / 2)
                return aws_err(e, -EBADMSG, "target: not an absolute path or too long");
        if (pct_decode(t, plen, &s->path) < 0)
                return aws_err(e, -EBADMSG, "target: bad percent escape in the path");
        if (!qm || !qm[1])
                return 0;
        s->q = calloc(AWS_SIGV4_MAX_QUERY, sizeof(*s->q));
        if (!s->q)
                return -ENOMEM;
        p = qm + 1;
        for (;;) {
                const char *end = strchr(p, '&'), *eq;
                _cleanup_free_ char *k = NULL, *v = NULL;
                size_t n;
                int r;

                if (!end)
                        end = p + strlen(p);
                n = (size_t) (end - p);
                if (n > 0) {
                        if (s->n_q >= AWS_SIGV4_MAX_QUERY)
                                return aws_err(e, -E2BIG, "target: more than %u query parameters",
                                               AWS_SIGV4_MAX_QUERY);
                        eq = memchr(p, '=', n);
                        if (pct_decode(p, eq ? (size_t) (eq - p) : n, &k) < 0 ||
                            (eq ? pct_decode(eq + 1, (size_t) (end - eq - 1), &v) : pct_decode("", 0, &v)) <
                                    0)
                                return aws_err(e, -EBADMSG,
                                               "target: bad percent escape in query parameter %zu", s->n_q);
                        if ((r = qentry_set(&s->q[s->n_q++], k, strlen(k), v, strlen(v))) < 0)
                                return r;
                }
                if (!*end)
                        break;
                p = end + 1;
        }
        return 0;
}

/* Collects the received values of every signed header; the list must be lower-case, sorted, unique. */
static int collect_signed(const struct aws_sigv4_received *rq, const char *list, struct vstate *s,
                          enum aws_sigv4_verdict *v, struct aws_err *e) {
        char prev[AWS_SIGV4_MAX_NAME + 1] = "";
        const char *p = list;
        bool host = false, date = false;

        while (*p) {
                const char *end = strchr(p, ';');
                char name[AWS_SIGV4_MAX_NAME + 1];
                size_t n = end ? (size_t) (end - p) : strlen(p), found = 0;

                if (n == 0 || copy_field(p, n, name, sizeof(name)) < 0 ||
                    check_name("SignedHeaders", name, NULL) < 0)
                        goto malformed;
                for (size_t i = 0; i < n; i++)
                        if (isupper((unsigned char) name[i]))
                                goto malformed;
                if (prev[0] && strcmp(prev, name) >= 0)
                        goto malformed;
                memcpy(prev, name, n + 1);
                host |= !strcmp(name, "host");
                date |= !strcmp(name, "x-amz-date");
                for (size_t i = 0; i < rq->n_headers; i++) {
                        const struct aws_header *x = &rq->headers[i];
                        if (!x->name || !x->value || strcasecmp(x->name, name) != 0)
                                continue;
                        if (s->n_h >= AWS_SIGV4_MAX_HEADERS)
                                return aws_err(e, -E2BIG, "headers: more than %u signed values",
                                               AWS_SIGV4_MAX_HEADERS);
                        if (check_value("header", name, x->value, strlen(x->value), AWS_SIGV4_MAX_VALUE, e) <
                            0)
                                goto malformed_e;
                        hentry_set(&s->h[s->n_h++], name, x->value, strlen(x->value));
                        found++;
                }
                if (found == 0) {
                        *v = AWS_SIGV4_MISSING_HEADER;
                        return aws_err(e, 0, "signed header '%s' is not in the request", name);
                }
                p = end ? end + 1 : p + n;
        }
        if (!host || !date) {
                *v = AWS_SIGV4_MISSING_HEADER;
                return aws_err(e, 0, "SignedHeaders: must include %s", !host ? "host" : "x-amz-date");
        }
        return 1;
malformed:
        aws_err(e, 0, "Authorization: SignedHeaders is not a sorted, lower-case, ';'-separated list");
malformed_e:
        *v = AWS_SIGV4_MALFORMED;
        return 0;
}

static bool in_list(const char *list, const char *name) {
        size_t n = strlen(name);

        for (const char *p = list; p && *p;) {
                const char *end = strchr(p, ';');
                size_t l = end ? (size_t) (end - p) : strlen(p);
                if (l == n && !strncmp(p, name, n))
                        return true;
                p = end ? end + 1 : p + l;
        }
        return false;
}

static int check_token(const struct aws_sigv4_received *rq, const struct secret_buf *expected,
                       const char *list, enum aws_sigv4_verdict *v, struct aws_err *e) {
        size_t count;
        const char *t = find_header(rq, "x-amz-security-token", &count);
        bool want = expected && expected->len > 0;

        if (!want && !t)
                return 1;
        *v = AWS_SIGV4_BAD_TOKEN;
        if (!want)
                return aws_err(e, 0, "X-Amz-Security-Token: sent with long-term credentials");
        if (!t || count != 1)
                return aws_err(e, 0, "X-Amz-Security-Token: missing or repeated");
        if (!in_list(list, "x-amz-security-token"))
                return aws_err(e, 0, "X-Amz-Security-Token: not signed");
        if (strlen(t) != expected->len || CRYPTO_memcmp(t, expected->data, expected->len) != 0)
                return aws_err(e, 0, "X-Amz-Security-Token: does not match the access key's");
        *v = AWS_SIGV4_OK;
        return 1;
}

/* Checks the parts that need no secret; 1 to go on, 0 with *v set. */
static int check_envelope(const struct aws_sigv4_received *rq, const struct aws_sigv4_verify_params *p,
                          struct auth_fields *a, enum aws_sigv4_verdict *v, struct aws_err *e) {
        const char *auth, *date;
        size_t count;
        int64_t t;

        auth = find_header(rq, "authorization", &count);
        date = find_header(rq, "x-amz-date", NULL);
        if (!auth || !date) {
                *v = AWS_SIGV4_MISSING_HEADER;
                return aws_err(e, 0, "header '%s' missing", !auth ? "Authorization" : "X-Amz-Date");
        }
        if (count != 1 || parse_authorization(auth, a, e) < 0) {
                if (count != 1)
                        aws_err(e, 0, "Authorization: repeated");
                *v = AWS_SIGV4_MALFORMED;
                return 0;
        }
        if (aws_sigv4_parse_date(date, &t) < 0) {
                *v = AWS_SIGV4_MALFORMED;
                return aws_err(e, 0, "X-Amz-Date: not YYYYMMDDTHHMMSSZ");
        }
        if (strcmp(a->terminator, "aws4_request") != 0 || strcmp(a->region, p->region) != 0 ||
            strcmp(a->service, p->service) != 0) {
                *v = AWS_SIGV4_BAD_SCOPE;
                return aws_err(e, 0, "Credential: scope %s does not match",
                               strcmp(a->terminator, "aws4_request") ? "terminator"
                               : strcmp(a->region, p->region)        ? "region"
                                                                     : "service");
        }
        if (strncmp(a->day, date, 8) != 0 || strlen(a->day) != 8) {
                *v = AWS_SIGV4_WRONG_DATE;
                return aws_err(e, 0, "Credential: scope date is not the day of X-Amz-Date");
        }
        if (t > p->now + p->max_skew || t < p->now - p->max_skew) {
                *v = AWS_SIGV4_SKEWED;
                return aws_err(e, 0, "X-Amz-Date: %" PRId64 " s away from now, more than %" PRId64,
                               t - p->now, p->max_skew);
        }
        return 1;
}

int aws_sigv4_verify(const struct aws_sigv4_received *rq, const struct aws_sigv4_verify_params *p,
                     enum aws_sigv4_verdict *ret_verdict, struct aws_err *e) {
        const struct secret_buf *secret = NULL, *token = NULL;
        enum aws_sigv4_verdict v = AWS_SIGV4_OK;
        struct vstate s = {};
        struct auth_fields a = {};
        char body_hex[65], sig[65] = "", scope[256];
        const char *h;
        int r;

        if (!rq || !p || !p->lookup || !scope_part_ok(p->region) || !scope_part_ok(p->service) ||
            !rq->method || !rq->target || (rq->n_headers && !rq->headers) || (rq->body_len && !rq->body) ||
            p->max_skew < 0)
                return -EINVAL;
        if ((r = check_envelope(rq, p, &a, &v, e)) <= 0)
                goto done;
        if (p->lookup(p->userdata, a.akid, &secret, &token) < 0 || !secret) {
                v = AWS_SIGV4_UNKNOWN_KEY;
                aws_err(e, 0, "Credential: unknown access key id");
                goto done;
        }
        if ((r = check_token(rq, token, a.signed_headers, &v, e)) <= 0)
                goto done;
        sha256_hex(rq->body, rq->body_len, body_hex);
        h = find_header(rq, "x-amz-content-sha256", NULL);
        if (h && strcmp(h, body_hex) != 0) {
                v = AWS_SIGV4_BODY_HASH_MISMATCH;
                aws_err(e, 0, "X-Amz-Content-Sha256: not the SHA-256 of the body");
                goto done;
        }
        if ((r = collect_signed(rq, a.signed_headers, &s, &v, e)) <= 0)
                goto done;
        r = parse_target(rq->target, &s, e);
        if (r == -ENOMEM)
                goto done;
        if (r < 0 ||
            check_value("method", "", rq->method, strlen(rq->method), AWS_SIGV4_MAX_METHOD, NULL) < 0) {
                v = AWS_SIGV4_MALFORMED;
                goto done;
        }
        {
                struct canon c = { .method = rq->method,
                                   .path = s.path,
                                   .flags = p->flags,
                                   .q = s.q,
                                   .n_q = s.n_q,
                                   .h = s.h,
                                   .n_h = s.n_h,
                                   .body_hex = body_hex };
                r = canon_build(&c, &s.creq, &s.sh, e);
                if (r == -ENOMEM)
                        goto done;
                if (r < 0) {
                        v = AWS_SIGV4_MALFORMED;
                        goto done;
                }
        }
        (void) snprintf(scope, sizeof(scope), "%s/%s/%s/aws4_request", a.day, a.region, a.service);
        if ((r = string_to_sign(find_header(rq, "x-amz-date", NULL), scope, s.creq.p, &s.sts)) < 0)
                goto done;
        r = derive_signature(secret, a.day, a.region, a.service, s.sts, sig);
        if (r < 0) {
                v = AWS_SIGV4_UNKNOWN_KEY;
                aws_err(e, 0, "Credential: the access key's secret is unusable");
                goto done;
        }
        for (size_t i = 0; i < 64; i++)
                a.signature[i] = (char) tolower((unsigned char) a.signature[i]);
        if (CRYPTO_memcmp(sig, a.signature, 64) != 0) {
                v = AWS_SIGV4_SIGNATURE_MISMATCH;
                aws_err(e, 0, "Signature: does not match the request");
        }
done:
        OPENSSL_cleanse(sig, sizeof(sig));
        vstate_done(&s);
        if (r < 0 && r != -EBADMSG && r != -E2BIG && r != -EINVAL)
                return r;
        if (r < 0 && v == AWS_SIGV4_OK)
                v = AWS_SIGV4_MALFORMED;
        *ret_verdict = v;
        return 0;
}
