/* PKCS#11 URIs (RFC 7512) for keys in an enclave-acm token, as the module exposes them. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "tools/p11-uri.h"

static bool is_unreserved(unsigned char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
               c == '.' || c == '_' || c == '~';
}

static void put_encoded(FILE *f, const char *s, size_t len) {
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char) s[i];
                if (is_unreserved(c))
                        fputc(c, f);
                else
                        fprintf(f, "%%%02X", c);
        }
}

/* CKA_ID bytes of a key id: big-endian without leading zero bytes, at least one byte. */
static void put_id(FILE *f, uint32_t id) {
        bool started = false;

        for (int shift = 24; shift >= 0; shift -= 8) {
                unsigned b = (id >> shift) & 0xff;
                if (b == 0 && !started && shift > 0)
                        continue;
                started = true;
                fprintf(f, "%%%02X", b);
        }
}

static int finish_stream(FILE *f, char **buf, char **ret) {
        if (fclose(f) != 0) {
                free(*buf);
                *buf = NULL;
                return -ENOMEM;
        }
        *ret = *buf;
        *buf = NULL;
        return 0;
}

int p11uri_pct_encode(const char *s, size_t len, char **ret) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f;

        f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;
        put_encoded(f, s, len);
        return finish_stream(f, &buf, ret);
}

int p11uri_private_key(const char *token_label, size_t token_label_len, uint32_t key_id,
                       const char *key_label, size_t key_label_len, char **ret) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f;

        f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;
        fputs("pkcs11:model=enclave-token;manufacturer=enclave-acm;token=", f);
        put_encoded(f, token_label, token_label_len);
        fputs(";id=", f);
        put_id(f, key_id);
        fputs(";object=", f);
        put_encoded(f, key_label, key_label_len);
        fputs(";type=private", f);
        return finish_stream(f, &buf, ret);
}
