/* The fake KMS's HTTP/1.1 request-head parser (RFC 9112 section 3 and 5, the strict subset). */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "tests/fakes/fake-kms-http.h"

static int fail(struct fkms_http_error *err, int r, int status, const char *what, size_t offset) {
        if (err)
                *err = (struct fkms_http_error){ .what = what, .offset = offset, .status = status };
        return r;
}

int fkms_http_head_end(const char *buf, size_t len) {
        size_t n = MIN(len, (size_t) FKMS_HTTP_HEAD_MAX);

        for (size_t i = 3; i < n; i++)
                if (buf[i] == '\n' && buf[i - 1] == '\r' && buf[i - 2] == '\n' && buf[i - 3] == '\r')
                        return (int) (i + 1);
        return len >= FKMS_HTTP_HEAD_MAX ? -E2BIG : 0;
}

static bool is_tchar(unsigned char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* The line starting at pos: its length without CRLF; -EBADMSG for a CR or LF not in a CRLF. */
static int line_len(const char *h, size_t len, size_t pos, size_t *ret) {
        for (size_t i = pos; i < len; i++) {
                if (h[i] == '\r') {
                        if (i + 1 >= len || h[i + 1] != '\n')
                                return -EBADMSG;
                        *ret = i - pos;
                        return 0;
                }
                if (h[i] == '\n' || h[i] == '\0')
                        return -EBADMSG;
        }
        return -EBADMSG;
}

static int parse_request_line(char *h, size_t n, struct fkms_http_head *r, struct fkms_http_error *err) {
        size_t i = 0, m, t;

        for (m = 0; m < n && is_tchar((unsigned char) h[m]); m++)
                ;
        if (m == 0 || m >= n || h[m] != ' ')
                return fail(err, -EBADMSG, 400, "request line: method", m);
        if (m > FKMS_HTTP_METHOD_MAX)
                return fail(err, -E2BIG, 400, "request line: method too long", m);
        h[m] = '\0';
        r->method = h;
        i = m + 1;
        for (t = i; t < n && h[t] > 0x20 && h[t] < 0x7f; t++)
                ;
        if (t == i || t >= n || h[t] != ' ')
                return fail(err, -EBADMSG, 400, "request line: target", t);
        if (t - i > FKMS_HTTP_TARGET_MAX)
                return fail(err, -E2BIG, 414, "request line: target too long", i);
        h[t] = '\0';
        r->target = h + i;
        i = t + 1;
        if (n - i != 8 || memcmp(h + i, "HTTP/1.", 7) != 0 || (h[i + 7] != '0' && h[i + 7] != '1')) {
                if (n - i == 8 && memcmp(h + i, "HTTP/", 5) == 0)
                        return fail(err, -EOPNOTSUPP, 505, "request line: HTTP version", i);
                return fail(err, -EBADMSG, 400, "request line: version", i);
        }
        r->minor = (unsigned) (h[i + 7] - '0');
        return 0;
}

static bool token_in_list(const char *v, const char *token) {
        size_t tl = strlen(token);

        while (*v) {
                while (*v == ' ' || *v == '\t' || *v == ',')
                        v++;
                const char *end = v;
                while (*end && *end != ',')
                        end++;
                const char *e = end;
                while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
                        e--;
                if ((size_t) (e - v) == tl && strncasecmp(v, token, tl) == 0)
                        return true;
                v = end;
        }
        return false;
}

/* Headers with a meaning for the server; each may appear once. */
static int header_known(struct fkms_http_head *r, const char *name, const char *value, size_t off,
                        bool *saw_connection_close, bool *saw_keep_alive, struct fkms_http_error *err) {
        const char **slot = NULL;

        if (!strcasecmp(name, "Transfer-Encoding"))
                return fail(err, -EOPNOTSUPP, 501, "Transfer-Encoding is not supported", off);
        if (!strcasecmp(name, "Content-Length")) {
                size_t v = 0;
                if (r->has_content_length)
                        return fail(err, -EBADMSG, 400, "Content-Length repeated", off);
                if (!*value)
                        return fail(err, -EBADMSG, 400, "Content-Length empty", off);
                for (const char *p = value; *p; p++) {
                        if (*p < '0' || *p > '9')
                                return fail(err, -EBADMSG, 400, "Content-Length not decimal", off);
                        v = v * 10 + (size_t) (*p - '0');
                        if (v > FKMS_HTTP_BODY_MAX)
                                return fail(err, -E2BIG, 413, "Content-Length over the body limit", off);
                }
                r->has_content_length = true;
                r->content_length = v;
                return 0;
        }
        if (!strcasecmp(name, "Connection")) {
                *saw_connection_close |= token_in_list(value, "close");
                *saw_keep_alive |= token_in_list(value, "keep-alive");
                return 0;
        }
        if (!strcasecmp(name, "Host"))
                slot = &r->host;
        else if (!strcasecmp(name, "Content-Type"))
                slot = &r->content_type;
        else if (!strcasecmp(name, "X-Amz-Target"))
                slot = &r->amz_target;
        else if (!strcasecmp(name, "Expect")) {
                if (r->expect_continue)
                        return fail(err, -EBADMSG, 400, "Expect repeated", off);
                if (strcasecmp(value, "100-continue") != 0)
                        return fail(err, -EBADMSG, 417, "Expect: only 100-continue", off);
                r->expect_continue = true;
                return 0;
        } else
                return 0;
        if (*slot)
                return fail(err, -EBADMSG, 400, "Host, Content-Type or X-Amz-Target repeated", off);
        *slot = value;
        return 0;
}

static int parse_header(char *h, size_t pos, size_t n, struct fkms_http_head *r, bool *close, bool *ka,
                        struct fkms_http_error *err) {
        char *line = h + pos, *value;
        size_t c, v, end = n;

        if (line[0] == ' ' || line[0] == '\t')
                return fail(err, -EBADMSG, 400, "folded header line", pos);
        for (c = 0; c < n && is_tchar((unsigned char) line[c]); c++)
                ;
        if (c == 0 || c >= n || line[c] != ':')
                return fail(err, -EBADMSG, 400, "header name", pos + c);
        if (c > FKMS_HTTP_NAME_MAX)
                return fail(err, -E2BIG, 431, "header name too long", pos);
        for (v = c + 1; v < n && (line[v] == ' ' || line[v] == '\t'); v++)
                ;
        for (size_t i = v; i < n; i++)
                if ((line[i] < 0x20 && line[i] != '\t') || (unsigned char) line[i] >= 0x7f)
                        return fail(err, -EBADMSG, 400, "header value: control or non-ASCII byte", pos + i);
        while (end > v && (line[end - 1] == ' ' || line[end - 1] == '\t'))
                end--;
        if (end - v > FKMS_HTTP_VALUE_MAX)
                return fail(err, -E2BIG, 431, "header value too long", pos + v);
        if (r->n_headers >= FKMS_HTTP_HEADERS_MAX)
                return fail(err, -E2BIG, 431, "too many headers", pos);
        line[c] = '\0';
        line[end] = '\0';
        value = line + v;
        r->headers[r->n_headers++] = (struct aws_header){ line, value };
        return header_known(r, line, value, pos, close, ka, err);
}

int fkms_http_head_parse(char *head, size_t len, struct fkms_http_head *ret, struct fkms_http_error *err) {
        struct fkms_http_head r = {};
        bool close = false, keep_alive = false;
        size_t pos = 0, n;
        int k;

        if (!head || !ret)
                return fail(err, -EINVAL, 500, "no buffer", 0);
        if (len > FKMS_HTTP_HEAD_MAX)
                return fail(err, -E2BIG, 431, "head too long", FKMS_HTTP_HEAD_MAX);
        if (len < 4 || memcmp(head + len - 4, "\r\n\r\n", 4) != 0)
                return fail(err, -EBADMSG, 400, "head does not end with a blank line", len);
        if (line_len(head, len, 0, &n) < 0)
                return fail(err, -EBADMSG, 400, "request line: bare CR, LF or NUL", 0);
        if ((k = parse_request_line(head, n, &r, err)) < 0)
                return k;
        head[n] = '\0';
        for (pos = n + 2; pos < len; pos += n + 2) {
                if (line_len(head, len, pos, &n) < 0)
                        return fail(err, -EBADMSG, 400, "header line: bare CR, LF or NUL", pos);
                if (n == 0)
                        break;
                if ((k = parse_header(head, pos, n, &r, &close, &keep_alive, err)) < 0)
                        return k;
        }
        if (pos + 2 != len)
                return fail(err, -EBADMSG, 400, "bytes after the blank line", pos);
        if (r.minor == 1 && !r.host)
                return fail(err, -EBADMSG, 400, "Host missing", pos);
        r.keep_alive = r.minor == 1 ? !close : (keep_alive && !close);
        *ret = r;
        return 0;
}
