/* Target: base64_decode() (common/base64.c: KMS CiphertextBlob / Plaintext fields, S3 objects) and
 * provision_ciphertext_decode() (parent/provision-kms.c: the operator's encrypted key file, ACM's
 * encryptedPrivateKey base64 with line breaks), against each other.
 *
 * Input: any bytes. Invariants: base64_decode() accepts exactly the canonical encodings, i.e. what
 * it accepts re-encodes with base64_encode() to the same text, and it never writes past the size it
 * was given (an exact-size output buffer); provision_ciphertext_decode() says raw (0) exactly when a
 * byte is outside the base64 alphabet plus CR/LF, and when it decodes (1), it decodes to what
 * base64_decode() makes of the same text with its line breaks (LF or CRLF) removed; it refuses
 * (-EBADMSG) only what base64_decode() refuses too, or text that is empty once its line breaks are removed.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/base64.h"
#include "parent/provision.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool b64_alphabet(uint8_t ch) {
        return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
               ch == '+' || ch == '/' || ch == '=';
}

/* base64_decode() into an exact-size buffer, so that ASan sees a write past it. */
static int decode_exact(const char *in, size_t len, uint8_t **ret, size_t *ret_len) {
        size_t max = base64_decoded_max(len), off = SIZE_MAX;
        uint8_t *out = malloc(max ? max : 1);
        char *again;
        int r;

        if (!out)
                abort();
        r = base64_decode(in, len, out, max, &off);
        if (r < 0) {
                if (r != -EBADMSG || off > len)
                        abort(); /* a refusal names an offset inside the input */
                free(out);
                return r;
        }
        if ((size_t) r > max)
                abort();
        /* canonical: the encoding of what came out is the input */
        again = malloc(base64_encoded_len((size_t) r) + 1);
        if (!again)
                abort();
        if (base64_encode(out, (size_t) r, again, base64_encoded_len((size_t) r) + 1) != (int) len ||
            memcmp(again, in, len) != 0)
                abort();
        free(again);
        /* too small a buffer is -ENOBUFS, never a partial write past it */
        if (r > 0) {
                uint8_t *small = malloc((size_t) r - 1 ? (size_t) r - 1 : 1);

                if (!small)
                        abort();
                if (base64_decode(in, len, small, (size_t) r - 1, NULL) != -ENOBUFS)
                        abort();
                free(small);
        }
        *ret = out;
        *ret_len = (size_t) r;
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        uint8_t *prov = NULL, *plain = NULL;
        size_t prov_len = 0, plain_len = 0, n = 0;
        bool raw = false;
        char *stripped;
        int rp, rb;

        if (size > 1u << 20)
                return 0;
        for (size_t i = 0; i < size; i++)
                if (!b64_alphabet(data[i]) && data[i] != '\n' && data[i] != '\r')
                        raw = true;

        rp = provision_ciphertext_decode(data, size, &prov, &prov_len);
        if (rp != 0 && rp != 1 && rp != -EBADMSG && rp != -ENOMEM)
                abort();
        if ((rp == 0) != raw)
                abort();

        /* The same text without its line breaks ("\n" or "\r\n"; a lone "\r" the file reader refuses). */
        stripped = malloc(size ? size : 1);
        if (!stripped)
                abort();
        for (size_t i = 0; i < size; i++)
                if (data[i] != '\n' && !(data[i] == '\r' && i + 1 < size && data[i + 1] == '\n'))
                        stripped[n++] = (char) data[i];
        rb = decode_exact(stripped, n, &plain, &plain_len);

        if (rp == 1) {
                if (rb < 0 || prov_len != plain_len || (plain_len && memcmp(prov, plain, plain_len) != 0))
                        abort();
        } else if (rp == -EBADMSG && rb == 0 && n > 0 && memchr(data, '\r', size) == NULL) {
                abort(); /* refused non-empty text that is valid base64 once its line feeds are removed */
        }
        free(stripped);
        free(plain);
        free(prov);
        return 0;
}
