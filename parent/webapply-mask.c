/* What webapply reports of a server's output: trimmed, and with the PIN masked. */
#include <stdlib.h>
#include <string.h>

#include "parent/webapply-internal.h"
#include "common/p11-uri.h"
#include "common/text-edit.h"

#define MASK "***"

static bool blank(char ch) {
        return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f';
}

/* Length of the longest needle found at p, 0 when none is. */
static size_t match_at(const char *p, size_t left, const char *const *needles, size_t n) {
        size_t best = 0;

        for (size_t i = 0; i < n; i++) {
                size_t len = needles[i] ? strlen(needles[i]) : 0;

                if (len > best && len <= left && memcmp(p, needles[i], len) == 0)
                        best = len;
        }
        return best;
}

static int mask_into(const char *p, size_t len, const char *const *needles, size_t n, struct text_buf *b) {
        size_t i = 0, plain = 0;
        int r = 0;

        while (r >= 0 && i < len) {
                size_t m = match_at(p + i, len - i, needles, n);

                if (m == 0) {
                        i++;
                        continue;
                }
                if ((r = text_buf_put(b, p + plain, i - plain)) >= 0)
                        r = text_buf_puts(b, MASK);
                i += m;
                plain = i;
        }
        if (r >= 0)
                r = text_buf_put(b, p + plain, len - plain);
        return r;
}

int webapply_output_mask(const char *out, size_t len, const char *pin, char **ret) {
        _cleanup_free_ char *encoded = NULL;
        struct text_buf b = {};
        int r;

        while (len > 0 && blank(out[len - 1]))
                len--;
        while (len > 0 && blank(out[0])) {
                out++;
                len--;
        }
        if (pin && pin[0] && p11uri_pct_encode(pin, &encoded) < 0)
                return -ENOMEM;
        /* Only masked text ever goes into b, so its reallocations leave no PIN behind. */
        r = mask_into(out, len, (const char *const[]){ pin, encoded }, pin && pin[0] ? 2 : 0, &b);
        if (r >= 0)
                r = text_buf_put(&b, "", 0);
        if (encoded)
                explicit_bzero(encoded, strlen(encoded));
        if (r < 0) {
                text_buf_wipe(&b);
                return r;
        }
        *ret = b.p;
        return 0;
}
