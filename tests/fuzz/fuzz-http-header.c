/* Target: url_header_cb() and url_write_cb() of aws/http-curl.c (the hand-written reading of the
 * ETag and Date headers and the capped body buffer of aws_url_fetch(): S3 objects and IMDS answers),
 * and write_cb() (the capped body buffer of aws_http_post(): KMS answers). They are static, so this
 * target compiles http-curl.c itself in; libaws's own copy of that object is then never linked.
 *
 * Input: byte 0 sets the body cap (0..255 bytes), byte 1 the chunk size libcurl would hand over
 * (1..256); then what a server sends after the status line: header lines up to an empty line, then
 * the body. Each header line goes to url_header_cb() with its line ending, as libcurl calls it.
 * Invariants: every header call returns its length (nothing aborts the transfer); the ETag kept is
 * either empty or 1..AWS_URL_ETAG_MAX printable non-space bytes copied from an ETag line, the Date is
 * not negative; the body writers take a chunk whole or refuse it whole and never go past the cap, and
 * what they kept is the body's first bytes. */
#include <stdlib.h>
#include <string.h>

#include "aws/http-curl.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_etag(const struct url_xfer *x, const char *line, size_t n) {
        size_t len = strnlen(x->etag, sizeof(x->etag));

        if (len > AWS_URL_ETAG_MAX)
                abort();
        for (size_t i = 0; i < len; i++)
                if ((unsigned char) x->etag[i] < 0x21 || (unsigned char) x->etag[i] > 0x7e)
                        abort();
        /* a kept ETag was copied from this line, when this line is an ETag line */
        if (len > 0 && n >= 5 && strncasecmp(line, "ETag:", 5) == 0 && !memmem(line, n, x->etag, len))
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct url_xfer x = {};
        struct aws_http_conn c = {};
        size_t chunk, off = 2, body;

        if (size < 2 || size > 1u << 16)
                return 0;
        x.max = data[0];
        c.max_response = data[0];
        chunk = (size_t) data[1] + 1;

        /* header lines, each with its "\n" as libcurl hands them over, up to the empty line */
        while (off < size) {
                const uint8_t *nl = memchr(data + off, '\n', size - off);
                size_t n = nl ? (size_t) (nl - (data + off)) + 1 : size - off;
                char *line = malloc(n); /* exact size: a read past the line is caught */
                bool last;

                if (!line)
                        abort();
                memcpy(line, data + off, n);
                last = n == 1 || (n == 2 && line[0] == '\r');
                if (url_header_cb(line, 1, n, &x) != n)
                        abort();
                check_etag(&x, line, n);
                if (x.date < 0)
                        abort();
                free(line);
                off += n;
                if (last)
                        break;
        }

        /* the body, in chunks */
        body = off;
        while (off < size) {
                size_t n = chunk < size - off ? chunk : size - off;
                char *p = malloc(n);
                size_t before = x.len, before_c = c.len, got, got_c;

                if (!p)
                        abort();
                memcpy(p, data + off, n);
                got = url_write_cb(p, 1, n, &x);
                got_c = write_cb(p, 1, n, &c);
                free(p);
                if ((got != 0 && got != n) || (got_c != 0 && got_c != n) || got != got_c)
                        abort();
                if (x.len != before + got || c.len != before_c + got_c || x.len > x.max ||
                    c.len > c.max_response)
                        abort();
                if (got == 0 && !x.oversize)
                        abort();
                if (got == 0)
                        break; /* libcurl stops the transfer */
                off += n;
        }
        if (x.len > 0 && (memcmp(x.buf, data + body, x.len) != 0 || memcmp(c.buf, data + body, c.len) != 0))
                abort();
        free(x.buf);
        free(c.buf);
        return 0;
}
