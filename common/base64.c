/* Strict base64 for KMS blobs and other JSON-carried bytes. */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>

#include "common/base64.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int base64_encode(const void *in, size_t len, char *out, size_t size) {
        const uint8_t *p = in;
        size_t o = 0, need;

        if (len > (size_t) INT_MAX / 4 * 3 - 3)
                return -ENOBUFS;
        need = base64_encoded_len(len);
        if (size < need + 1)
                return -ENOBUFS;
        for (size_t i = 0; i < len; i += 3) {
                uint32_t v = (uint32_t) p[i] << 16;
                size_t left = len - i;

                if (left > 1)
                        v |= (uint32_t) p[i + 1] << 8;
                if (left > 2)
                        v |= p[i + 2];
                out[o++] = alphabet[(v >> 18) & 63];
                out[o++] = alphabet[(v >> 12) & 63];
                out[o++] = left > 1 ? alphabet[(v >> 6) & 63] : '=';
                out[o++] = left > 2 ? alphabet[v & 63] : '=';
        }
        out[o] = '\0';
        return (int) o;
}

static int value_of(char c) {
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        if (c == '+')
                return 62;
        if (c == '/')
                return 63;
        return -1;
}

static int bad(size_t at, size_t *ret_offset) {
        if (ret_offset)
                *ret_offset = at;
        return -EBADMSG;
}

int base64_decode(const char *in, size_t len, void *out, size_t size, size_t *ret_offset) {
        uint8_t *o = out;
        size_t pad = 0, n = 0, need;

        if (len % 4 != 0)
                return bad(len - len % 4, ret_offset);
        if (len > (size_t) INT_MAX)
                return -ENOBUFS;
        if (len >= 1 && in[len - 1] == '=')
                pad = len >= 2 && in[len - 2] == '=' ? 2 : 1;
        need = len / 4 * 3 - pad;
        if (need > size)
                return -ENOBUFS;
        for (size_t i = 0; i < len; i += 4) {
                int v[4];
                bool last = i + 4 == len;

                for (size_t k = 0; k < 4; k++) {
                        v[k] = value_of(in[i + k]);
                        if (v[k] < 0 && !(last && in[i + k] == '=' && k >= 4 - pad))
                                return bad(i + k, ret_offset);
                }
                o[n++] = (uint8_t) (v[0] << 2 | v[1] >> 4);
                if (last && pad == 2) {
                        if (v[1] & 15)
                                return bad(i + 1, ret_offset);
                        break;
                }
                o[n++] = (uint8_t) ((v[1] & 15) << 4 | v[2] >> 2);
                if (last && pad == 1) {
                        if (v[2] & 3)
                                return bad(i + 2, ret_offset);
                        break;
                }
                o[n++] = (uint8_t) ((v[2] & 3) << 6 | v[3]);
        }
        return (int) n;
}
