/* IMDSv2 answers: role name, credentials JSON, iam/info, the role ARN tag. Pure. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/imds.h"
#include "aws/sigv4.h"
#include "common/json.h"
#include "common/secret.h"

void aws_imds_credentials_done(struct aws_imds_credentials *c) {
        if (!c)
                return;
        secret_buf_free(c->secret_access_key);
        secret_buf_free(c->session_token);
        *c = (struct aws_imds_credentials){};
}

static bool is_digit(char c) {
        return c >= '0' && c <= '9';
}

int aws_iso8601_parse(const char *s, size_t len, int64_t *ret) {
        /* YYYY-MM-DDTHH:MM:SSZ -> YYYYMMDDTHHMMSSZ, which sigv4's strict reader checks */
        static const char shape[] = "dddd-dd-ddTdd:dd:ddZ";
        char compact[17];
        size_t o = 0;

        if (!s || len != sizeof(shape) - 1)
                return -EINVAL;
        for (size_t i = 0; i < len; i++) {
                if (shape[i] == 'd') {
                        if (!is_digit(s[i]))
                                return -EINVAL;
                } else if (s[i] != shape[i])
                        return -EINVAL;
                if (s[i] != '-' && s[i] != ':')
                        compact[o++] = s[i];
        }
        compact[o] = '\0';
        return aws_sigv4_parse_date(compact, ret);
}

/* The body without one trailing "\n" (or "\r\n"). */
static size_t strip_newline(const char *p, size_t len) {
        if (len > 0 && p[len - 1] == '\n')
                len--;
        if (len > 0 && p[len - 1] == '\r')
                len--;
        return len;
}

int aws_imds_token_validate(const void *body, size_t len, struct aws_err *e) {
        const unsigned char *p = body;

        if (!body || len == 0)
                return aws_err(e, -EINVAL, "IMDS session token: empty");
        if (len > AWS_IMDS_TOKEN_MAX)
                return aws_err(e, -E2BIG, "IMDS session token: over %u bytes", AWS_IMDS_TOKEN_MAX);
        for (size_t i = 0; i < len; i++)
                if (p[i] <= 0x20 || p[i] >= 0x7f)
                        return aws_err(e, -EINVAL, "IMDS session token: invalid byte at offset %zu", i);
        return 0;
}

static bool role_char(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || strchr("+=,.@_-", c);
}

int aws_imds_role_name_parse(const void *body, size_t len, char *buf, size_t size, struct aws_err *e) {
        const char *p = body;
        size_t n = 0;

        if (!body || len == 0)
                return aws_err(e, -ENOENT, "iam/security-credentials/: no role (empty list)");
        if (len > AWS_IMDS_MAX_RESPONSE)
                return aws_err(e, -E2BIG, "iam/security-credentials/: list over %u bytes",
                               AWS_IMDS_MAX_RESPONSE);
        while (n < len && p[n] != '\n' && p[n] != '\r')
                n++;
        if (n == 0)
                return aws_err(e, -ENOENT, "iam/security-credentials/: no role (empty first line)");
        if (n > AWS_IMDS_ROLE_MAX)
                return aws_err(e, -EINVAL, "iam/security-credentials/: role name over %u bytes",
                               AWS_IMDS_ROLE_MAX);
        for (size_t i = 0; i < n; i++)
                if (p[i] == '\0' || !role_char(p[i]))
                        return aws_err(e, -EINVAL,
                                       "iam/security-credentials/: invalid role name byte at offset %zu", i);
        if (n + 1 > size)
                return aws_err(e, -E2BIG, "iam/security-credentials/: role name does not fit");
        memcpy(buf, p, n);
        buf[n] = '\0';
        return 0;
}

int aws_imds_line_parse(const void *body, size_t len, char *buf, size_t size, struct aws_err *e) {
        const unsigned char *p = body;

        if (!body)
                return aws_err(e, -EINVAL, "IMDS value: missing");
        len = strip_newline(body, len);
        if (len == 0)
                return aws_err(e, -EINVAL, "IMDS value: empty");
        for (size_t i = 0; i < len; i++)
                if (p[i] <= 0x20 || p[i] >= 0x7f)
                        return aws_err(e, -EINVAL, "IMDS value: invalid byte at offset %zu", i);
        if (len + 1 > size)
                return aws_err(e, -E2BIG, "IMDS value: over %zu bytes", size ? size - 1 : 0);
        memcpy(buf, p, len);
        buf[len] = '\0';
        return 0;
}

static bool partition_valid(const char *s) {
        size_t n = strlen(s);

        if (n < 3 || n > AWS_IMDS_PARTITION_MAX || strncmp(s, "aws", 3) != 0)
                return false;
        if (n > 3 && s[3] != '-')
                return false;
        if (s[n - 1] == '-')
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= 'a' && s[i] <= 'z') || is_digit(s[i]) || s[i] == '-') ||
                    (s[i] == '-' && s[i + 1] == '-'))
                        return false;
        return true;
}

int aws_imds_partition_parse(const void *body, size_t len, char *buf, size_t size, struct aws_err *e) {
        char tmp[AWS_IMDS_PARTITION_MAX + 1];
        int r;

        r = aws_imds_line_parse(body, len, tmp, sizeof(tmp), e);
        if (r < 0)
                return aws_err(e, r, "services/partition: not a partition name");
        if (!partition_valid(tmp))
                return aws_err(e, -EINVAL, "services/partition: not a partition name (aws, aws-cn, ...)");
        if (strlen(tmp) + 1 > size)
                return aws_err(e, -E2BIG, "services/partition: does not fit");
        memcpy(buf, tmp, strlen(tmp) + 1);
        return 0;
}

static int json_fail(struct aws_err *e, int r, const char *what, const struct json_error *je) {
        char b[160];

        return aws_err(e, r, "%s: %s", what, json_error_string(je, b, sizeof(b)));
}

static bool akid_valid(const char *s) {
        size_t n = strlen(s);

        if (n < AWS_IMDS_AKID_MIN || n > AWS_IMDS_AKID_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!(s[i] >= 'A' && s[i] <= 'Z') && !is_digit(s[i]))
                        return false;
        return true;
}

static bool secret_chars_valid(const struct secret_buf *b) {
        for (size_t i = 0; i < b->len; i++)
                if (b->data[i] <= 0x20 || b->data[i] >= 0x7f)
                        return false;
        return true;
}

/* IMDS's "Code": anything but "Success" (a longer string too) makes the document not ok. */
static int read_code(struct json_reader *rd, bool *code_ok) {
        char code[32];
        int r = json_read_string_buf(rd, code, sizeof(code));

        if (r >= 0 && strcmp(code, "Success") != 0)
                *code_ok = false;
        if (r == -E2BIG)
                *code_ok = false, r = 0;
        return r;
}

int aws_imds_credentials_parse(const void *body, size_t len, struct aws_imds_credentials *ret,
                               struct aws_err *e) {
        _cleanup_(aws_imds_credentials_done) struct aws_imds_credentials c = {};
        const struct json_limits lim = { .max_depth = 2,
                                         .max_string = AWS_IMDS_SESSION_MAX,
                                         .max_input = AWS_IMDS_MAX_RESPONSE,
                                         .reject_duplicates = true };
        struct json_error je = {};
        struct json_reader rd = {};
        bool have_exp = false, code_ok = true;
        const char *key;
        int r;

        if (!body)
                return aws_err(e, -EINVAL, "credentials: missing");
        r = json_reader_init(&rd, body, len, &lim, &je);
        if (r >= 0)
                r = json_object_begin(&rd);
        while (r >= 0 && (r = json_object_next(&rd, &key)) > 0) {
                if (strcmp(key, "Code") == 0)
                        r = read_code(&rd, &code_ok);
                else if (strcmp(key, "AccessKeyId") == 0) {
                        r = json_read_string_buf(&rd, c.access_key_id, sizeof(c.access_key_id));
                        if (r == -E2BIG) {
                                json_reader_done(&rd);
                                return aws_err(e, -EINVAL, "credentials: AccessKeyId over %u bytes",
                                               AWS_IMDS_AKID_MAX);
                        }
                } else if (strcmp(key, "SecretAccessKey") == 0)
                        r = json_read_secret(&rd, &c.secret_access_key);
                else if (strcmp(key, "Token") == 0)
                        r = json_read_secret(&rd, &c.session_token);
                else if (strcmp(key, "Expiration") == 0) {
                        char t[32];
                        r = json_read_string_buf(&rd, t, sizeof(t));
                        if (r >= 0 && aws_iso8601_parse(t, strlen(t), &c.expiration) < 0) {
                                json_reader_done(&rd);
                                return aws_err(e, -EINVAL,
                                               "credentials: Expiration is not YYYY-MM-DDTHH:MM:SSZ");
                        }
                        have_exp = r >= 0;
                } else
                        r = json_skip(&rd);
        }
        if (r >= 0)
                r = json_reader_end(&rd);
        json_reader_done(&rd);
        if (r < 0)
                return json_fail(e, r, "credentials JSON", &je);
        if (!code_ok)
                return aws_err(e, -EKEYEXPIRED, "credentials: Code is not \"Success\"");
        if (!c.access_key_id[0])
                return aws_err(e, -EINVAL, "credentials: AccessKeyId missing");
        if (!akid_valid(c.access_key_id))
                return aws_err(e, -EINVAL,
                               "credentials: AccessKeyId is not %u..%u upper-case letters and digits",
                               AWS_IMDS_AKID_MIN, AWS_IMDS_AKID_MAX);
        if (!c.secret_access_key || c.secret_access_key->len == 0)
                return aws_err(e, -EINVAL, "credentials: SecretAccessKey missing");
        if (c.secret_access_key->len > AWS_IMDS_SECRET_MAX || !secret_chars_valid(c.secret_access_key))
                return aws_err(e, -EINVAL, "credentials: SecretAccessKey is not 1..%u printable characters",
                               AWS_IMDS_SECRET_MAX);
        if (!c.session_token || c.session_token->len == 0)
                return aws_err(e, -EINVAL, "credentials: Token missing");
        if (!secret_chars_valid(c.session_token))
                return aws_err(e, -EINVAL, "credentials: Token holds a non-printable character");
        if (!have_exp)
                return aws_err(e, -EINVAL, "credentials: Expiration missing");
        *ret = c;
        c = (struct aws_imds_credentials){};
        return 0;
}

/* The partition of an ARN: [a-z0-9-]{1,32}. */
static const char *arn_part(const char *s, size_t *ret_len, char sep) {
        const char *end = strchr(s, sep);

        if (!end)
                return NULL;
        *ret_len = (size_t) (end - s);
        return end + 1;
}

static bool path_char(char c) {
        /* IAM names and paths: \w+=,.@- and '/' in paths */
        return role_char(c) || c == '/';
}

/* arn:<partition>:iam::<account>:<what>/<rest>; returns a pointer to <rest>, or NULL. */
static const char *iam_arn_split(const char *arn, const char *what, const char **ret_acct_end) {
        const char *p, *q;
        size_t n;

        if (!arn || strncmp(arn, "arn:", 4) != 0)
                return NULL;
        p = arn + 4;
        q = arn_part(p, &n, ':');
        if (!q || n == 0 || n > AWS_IMDS_PARTITION_MAX)
                return NULL;
        for (size_t i = 0; i < n; i++)
                if (!((p[i] >= 'a' && p[i] <= 'z') || is_digit(p[i]) || p[i] == '-'))
                        return NULL;
        if (strncmp(q, "iam::", 5) != 0)
                return NULL;
        q += 5;
        for (n = 0; n < 12; n++)
                if (!is_digit(q[n]))
                        return NULL;
        if (q[12] != ':')
                return NULL;
        if (ret_acct_end)
                *ret_acct_end = q + 13;
        q += 13;
        n = strlen(what);
        if (strncmp(q, what, n) != 0 || q[n] != '/')
                return NULL;
        return q + n + 1;
}

static int iam_rest_validate(const char *rest, const char **ret_name) {
        size_t n = strlen(rest);
        const char *name;

        if (n == 0 || n > 512 + AWS_IMDS_ROLE_MAX)
                return -EINVAL;
        for (size_t i = 0; i < n; i++)
                if (!path_char(rest[i]) || (rest[i] == '/' && (i == 0 || rest[i - 1] == '/')))
                        return -EINVAL;
        name = strrchr(rest, '/');
        name = name ? name + 1 : rest;
        if (strlen(name) == 0 || strlen(name) > AWS_IMDS_ROLE_MAX)
                return -EINVAL;
        if (ret_name)
                *ret_name = name;
        return 0;
}

int aws_role_arn_validate(const char *arn, struct aws_err *e) {
        const char *rest = iam_arn_split(arn, "role", NULL);

        if (!rest || strlen(arn) > AWS_IMDS_ARN_MAX || iam_rest_validate(rest, NULL) < 0)
                return aws_err(e, -EINVAL,
                               "role ARN: not arn:<partition>:iam::<12 digits>:role/[<path>/]<name>");
        return 0;
}

int aws_imds_role_tag_parse(const void *body, size_t len, char *buf, size_t size, struct aws_err *e) {
        char tmp[AWS_IMDS_ARN_MAX + 1];
        int r;

        r = aws_imds_line_parse(body, len, tmp, sizeof(tmp), e);
        if (r < 0)
                return aws_err(e, r, "tag InstanceRoleArn: not one line of at most %u bytes",
                               AWS_IMDS_ARN_MAX);
        r = aws_role_arn_validate(tmp, e);
        if (r < 0)
                return aws_err(e, r,
                               "tag InstanceRoleArn: not arn:<partition>:iam::<12 digits>:role/<name>");
        if (strlen(tmp) + 1 > size)
                return aws_err(e, -E2BIG, "tag InstanceRoleArn: does not fit");
        memcpy(buf, tmp, strlen(tmp) + 1);
        return 0;
}

int aws_imds_info_role_arn(const void *body, size_t len, const char *role, char *buf, size_t size,
                           bool *ret_profile_has_path, struct aws_err *e) {
        const struct json_limits lim = { .max_depth = 2,
                                         .max_string = AWS_IMDS_ARN_MAX,
                                         .max_input = AWS_IMDS_MAX_RESPONSE,
                                         .reject_duplicates = true };
        _cleanup_free_ char *profile = NULL;
        const char *rest, *acct_end, *key;
        struct json_error je = {};
        struct json_reader rd = {};
        bool code_ok = true;
        int r, n;

        if (!body || !role)
                return aws_err(e, -EINVAL, "iam/info: missing");
        r = json_reader_init(&rd, body, len, &lim, &je);
        if (r >= 0)
                r = json_object_begin(&rd);
        while (r >= 0 && (r = json_object_next(&rd, &key)) > 0) {
                if (strcmp(key, "Code") == 0)
                        r = read_code(&rd, &code_ok);
                else if (strcmp(key, "InstanceProfileArn") == 0)
                        r = json_read_string(&rd, &profile);
                else
                        r = json_skip(&rd);
        }
        if (r >= 0)
                r = json_reader_end(&rd);
        json_reader_done(&rd);
        if (r < 0)
                return json_fail(e, r, "iam/info JSON", &je);
        if (!code_ok)
                return aws_err(e, -EINVAL, "iam/info: Code is not \"Success\"");
        if (!profile)
                return aws_err(e, -EINVAL, "iam/info: InstanceProfileArn missing");
        rest = iam_arn_split(profile, "instance-profile", &acct_end);
        if (!rest || iam_rest_validate(rest, NULL) < 0)
                return aws_err(e, -EINVAL,
                               "iam/info: InstanceProfileArn is not arn:<partition>:iam::<account>:"
                               "instance-profile/<name>");
        for (size_t i = 0; role[i]; i++)
                if (!role_char(role[i]) || i >= AWS_IMDS_ROLE_MAX)
                        return aws_err(e, -EINVAL, "role name: invalid");
        if (!role[0])
                return aws_err(e, -EINVAL, "role name: empty");
        n = snprintf(buf, size, "%.*srole/%s", (int) (acct_end - profile), profile, role);
        if (n < 0 || (size_t) n >= size)
                return aws_err(e, -E2BIG, "derived role ARN: does not fit");
        if (ret_profile_has_path)
                *ret_profile_has_path = strchr(rest, '/') != NULL;
        return 0;
}
