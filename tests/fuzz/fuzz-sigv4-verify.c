/* Target: aws_sigv4_verify (the fake KMS's check of a received request)
 *
 * Input: "METHOD TARGET\n", header lines "Name: value\n", an empty line, the body. Verified against
 * the access key ASIAFUZZ as of 2015-08-30T12:36:00Z. Invariants: the verifier always judges (returns
 * 0 with a verdict in range) and never crashes; a verdict of OK is only possible for a request that
 * carries an Authorization header. */
#include <stdlib.h>
#include <string.h>

#include "aws/sigv4.h"
#include "common/secret.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int lookup(void *userdata, const char *akid, const struct secret_buf **ret_secret,
                  const struct secret_buf **ret_token) {
        struct secret_buf **db = userdata;

        if (strcmp(akid, "ASIAFUZZ") != 0)
                return -ENOKEY;
        *ret_secret = db[0];
        *ret_token = db[1];
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static struct secret_buf *db[2];
        struct aws_header h[AWS_SIGV4_MAX_HEADERS];
        _cleanup_free_ char *text = NULL;
        char *line, *next, *sp, *body = NULL;
        size_t n = 0;
        bool auth = false;
        enum aws_sigv4_verdict v = _AWS_SIGV4_VERDICT_INVALID;
        int r;

        if (!db[0] &&
            (secret_buf_dup("fuzz/secret", 11, &db[0]) < 0 || secret_buf_dup("fuzztoken", 9, &db[1]) < 0))
                abort();
        if (size > 65536)
                return 0;
        text = malloc(size + 1);
        if (!text)
                abort();
        memcpy(text, data, size);
        text[size] = '\0';
        line = text;
        next = strchr(line, '\n');
        if (!next)
                return 0;
        *next++ = '\0';
        sp = strchr(line, ' ');
        if (!sp)
                return 0;
        *sp = '\0';
        for (line = next; line && *line && n < AWS_SIGV4_MAX_HEADERS; line = next) {
                char *colon;
                next = strchr(line, '\n');
                if (next)
                        *next++ = '\0';
                if (!*line)
                        break;
                colon = strchr(line, ':');
                if (!colon)
                        continue;
                *colon = '\0';
                h[n++] = (struct aws_header){ line, colon[1] == ' ' ? colon + 2 : colon + 1 };
                auth |= strcasecmp(line, "authorization") == 0;
        }
        body = next ? next : text + size;

        struct aws_sigv4_received rq = { text, sp + 1, h, n, body, strlen(body) };
        struct aws_sigv4_verify_params p = {
                "us-east-1", "kms", INT64_C(1440938160), 300, AWS_SIGV4_NORMALIZE_PATH, lookup, db
        };
        r = aws_sigv4_verify(&rq, &p, &v, NULL);
        if (r < 0 ? r != -ENOMEM
                  : ((int) v < 0 || v >= _AWS_SIGV4_VERDICT_MAX || (v == AWS_SIGV4_OK && !auth)))
                abort();
        return 0;
}
