/* Target: fkms_http_head_end + fkms_http_head_parse (tests/fakes: the fake KMS's reader of request
 * heads from its clients) and fkms_blob_open (its reader of CiphertextBlobs)
 *
 * Input: bytes as they arrive on a connection. The head's end is searched as the server does; a found
 * head is parsed in a copy of exactly its length (so a read past it is caught by ASan). Invariants:
 * errors are the documented ones with a reason, an offset inside the head and an HTTP status; what
 * parses has its strings inside the head, NUL-terminated, within the caps. The same bytes are also
 * opened as a blob under a fixed master key: refused (or, never in practice, opened) without a crash. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tests/fakes/fake-kms-blob.h"
#include "tests/fakes/fake-kms-http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool inside(const char *p, const char *buf, size_t len) {
        return p >= buf && p < buf + len && memchr(p, '\0', (size_t) (buf + len - p));
}

static void check_parsed(const struct fkms_http_head *h, const char *buf, size_t len) {
        if (!inside(h->method, buf, len) || !inside(h->target, buf, len) || h->minor > 1 ||
            h->n_headers > FKMS_HTTP_HEADERS_MAX || h->content_length > FKMS_HTTP_BODY_MAX ||
            (!h->has_content_length && h->content_length) || strlen(h->target) > FKMS_HTTP_TARGET_MAX)
                abort();
        for (size_t i = 0; i < h->n_headers; i++)
                if (!inside(h->headers[i].name, buf, len) || !inside(h->headers[i].value, buf, len) ||
                    strlen(h->headers[i].name) > FKMS_HTTP_NAME_MAX ||
                    strlen(h->headers[i].value) > FKMS_HTTP_VALUE_MAX)
                        abort();
        if ((h->host && !inside(h->host, buf, len)) || (h->amz_target && !inside(h->amz_target, buf, len)) ||
            (h->content_type && !inside(h->content_type, buf, len)) || (h->minor == 1 && !h->host))
                abort();
}

static void fuzz_head(const uint8_t *data, size_t size) {
        struct fkms_http_error err = {};
        struct fkms_http_head h;
        char *copy;
        int end, r;

        end = fkms_http_head_end((const char *) data, size);
        if (end == 0 || end == -E2BIG)
                return;
        if (end < 0 || (size_t) end > size || (size_t) end > FKMS_HTTP_HEAD_MAX)
                abort();
        copy = malloc((size_t) end);
        if (!copy)
                return;
        memcpy(copy, data, (size_t) end);
        r = fkms_http_head_parse(copy, (size_t) end, &h, &err);
        if (r < 0) {
                if ((r != -EBADMSG && r != -E2BIG && r != -EOPNOTSUPP) || !err.what ||
                    err.offset > (size_t) end || err.status < 400 || err.status > 505)
                        abort();
        } else
                check_parsed(&h, copy, (size_t) end);
        free(copy);
}

static void fuzz_blob(const uint8_t *data, size_t size) {
        static const uint8_t key[FKMS_MASTER_KEY_LEN] = { 1, 2, 3 };
        struct secret_buf *pt = NULL;
        char id[FKMS_KEY_ID_MAX + 1];
        const char *why = NULL;
        int r;

        r = fkms_blob_open(key, data, size, id, &pt, &why);
        if (r >= 0) {
                if (!pt || pt->len == 0 || pt->len > FKMS_PLAINTEXT_MAX || fkms_key_id_validate(id) < 0)
                        abort();
                secret_buf_free(pt);
        } else if ((r == -EBADMSG || r == -EKEYREJECTED) && !why)
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        fuzz_head(data, size);
        fuzz_blob(data, size);
        return 0;
}
