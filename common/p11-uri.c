/* PKCS#11 URIs (RFC 7512) of the keys in an enclave-acm token, in the form libp11 0.4.12 parses. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/p11-uri.h"

/* Field sizes of CK_TOKEN_INFO (label 32, manufacturerID 32, model 16, serialNumber 16); libp11
 * 0.4.12 copies id= into a 100-byte buffer and pin-value= into a 32-byte one, and rejects longer. */
#define URI_MAX_TOKEN        32u
#define URI_MAX_MANUFACTURER 32u
#define URI_MAX_MODEL        16u
#define URI_MAX_SERIAL       16u
#define URI_MAX_OBJECT       255u
#define URI_MAX_ID           100u
#define URI_MAX_PIN          32u
#define URI_MAX_PATH         1024u

/* Writes into p when non-NULL; always counts, so one function both measures and builds. */
struct out {
        char *p;
        size_t n;
};

static void out_put(struct out *o, const char *s, size_t n) {
        if (o->p)
                memcpy(o->p + o->n, s, n);
        o->n += n;
}

bool p11uri_is_unreserved(unsigned char ch) {
        return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
               ch == '-' || ch == '.' || ch == '_' || ch == '~';
}

/* Percent-encode everything but RFC 3986 unreserved characters (and '/' when keep_slash). */
static void out_pct(struct out *o, const uint8_t *s, size_t n, bool encode_all, bool keep_slash) {
        static const char hex[] = "0123456789ABCDEF";

        for (size_t i = 0; i < n; i++) {
                char enc[3] = { '%', hex[s[i] >> 4], hex[s[i] & 0xf] };

                if (!encode_all && (p11uri_is_unreserved(s[i]) || (keep_slash && s[i] == '/')))
                        out_put(o, (const char *) &s[i], 1);
                else
                        out_put(o, enc, sizeof(enc));
        }
}

/* ";name=value" (no ';' before the first attribute); nothing when value is NULL or empty. */
static void out_attr(struct out *o, bool *first, const char *name, const char *value) {
        if (!value || !*value)
                return;
        if (!*first)
                out_put(o, ";", 1);
        *first = false;
        out_put(o, name, strlen(name));
        out_pct(o, (const uint8_t *) value, strlen(value), false, false);
}

static void uri_write(const void *arg, struct out *o) {
        const struct p11uri_key *k = arg;
        bool first = true;

        out_put(o, "pkcs11:", 7);
        out_attr(o, &first, "model=", k->model ? k->model : "enclave-token");
        out_attr(o, &first, "manufacturer=", k->manufacturer ? k->manufacturer : "enclave-acm");
        out_attr(o, &first, "serial=", k->serial);
        out_attr(o, &first, "token=", k->token);
        out_put(o, ";id=", 4);
        out_pct(o, k->id, k->id_len, true, false);
        out_attr(o, &first, "object=", k->object);
        out_put(o, ";type=private", 13);
        if (k->pin_file) {
                out_put(o, "?pin-source=file:", 17);
                out_pct(o, (const uint8_t *) k->pin_file, strlen(k->pin_file), false, true);
        } else if (k->pin) {
                out_put(o, "?pin-value=", 11);
                out_pct(o, (const uint8_t *) k->pin, strlen(k->pin), false, false);
        }
}

static bool length_ok(const char *s, size_t min, size_t max) {
        return s && strnlen(s, max + 1) >= min && strnlen(s, max + 1) <= max;
}

static int uri_validate(const struct p11uri_key *k) {
        if (!k || !length_ok(k->token, 1, URI_MAX_TOKEN) || !k->id || k->id_len < 1 ||
            k->id_len > URI_MAX_ID)
                return -EINVAL;
        if ((k->model && !length_ok(k->model, 0, URI_MAX_MODEL)) ||
            (k->manufacturer && !length_ok(k->manufacturer, 0, URI_MAX_MANUFACTURER)) ||
            (k->serial && !length_ok(k->serial, 0, URI_MAX_SERIAL)) ||
            (k->object && !length_ok(k->object, 0, URI_MAX_OBJECT)))
                return -EINVAL;
        if (k->pin_file && (k->pin_file[0] != '/' || !length_ok(k->pin_file, 2, URI_MAX_PATH)))
                return -EINVAL;
        if (!k->pin_file && k->pin && !length_ok(k->pin, 1, URI_MAX_PIN))
                return -EINVAL;
        return 0;
}

/* Run write twice: once to measure, once into an allocation of the right size. */
static int out_build(void (*write)(const void *arg, struct out *o), const void *arg, size_t max, char **ret,
                     size_t *ret_len) {
        struct out o = {};

        write(arg, &o);
        if (o.n > max)
                return -E2BIG;
        o.p = malloc(o.n + 1);
        if (!o.p)
                return -ENOMEM;
        o.n = 0;
        write(arg, &o);
        o.p[o.n] = '\0';
        if (ret_len)
                *ret_len = o.n;
        *ret = o.p;
        return 0;
}

int p11uri_build(const struct p11uri_key *k, char **ret_uri, size_t *ret_len) {
        int r;

        if (!ret_uri || !ret_len)
                return -EINVAL;
        r = uri_validate(k);
        if (r < 0)
                return r;
        return out_build(uri_write, k, P11URI_MAX_LEN, ret_uri, ret_len);
}

static void pct_write(const void *arg, struct out *o) {
        out_pct(o, arg, strlen(arg), false, false);
}

int p11uri_pct_encode(const char *s, char **ret) {
        if (!s || !ret)
                return -EINVAL;
        return out_build(pct_write, s, SIZE_MAX / 4, ret, NULL);
}

size_t p11uri_id_from_u32(uint32_t id, uint8_t ret_id[static P11URI_U32_ID_MAX]) {
        size_t n = 0;

        for (int shift = 24; shift >= 0; shift -= 8) {
                uint8_t b = (uint8_t) (id >> shift);

                if (n == 0 && b == 0 && shift > 0)
                        continue;
                ret_id[n++] = b;
        }
        return n;
}
