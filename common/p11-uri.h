/* PKCS#11 URIs (RFC 7512) of the keys in an enclave-acm token, in the form libp11 0.4.12 parses. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/cleanup.h"

/* nginx reads a config token into a 4 KiB buffer ("too long parameter"); stay well below. */
#define P11URI_MAX_LEN 3072u
/* CKA_ID bytes of a 32-bit key id (see p11uri_id_from_u32()). */
#define P11URI_U32_ID_MAX 4u

/* The attributes libp11 0.4.12 reads from a URI; each value is percent-encoded as needed. */
struct p11uri_key {
        const char *model;        /* CK_TOKEN_INFO model, <= 16 bytes; NULL: "enclave-token"; "": omitted */
        const char *manufacturer; /* <= 32 bytes; NULL: "enclave-acm"; "": omitted */
        const char *serial;       /* CK_TOKEN_INFO serialNumber, <= 16 bytes; NULL or "": omitted */
        const char *token;        /* token label, 1..32 bytes, required */
        const uint8_t *id;        /* CKA_ID, 1..100 bytes (libp11 0.4.12 limit), required */
        size_t id_len;
        const char *object; /* CKA_LABEL of the key, <= 255 bytes; NULL or "": omitted */
        /* PIN, preferred form: "?pin-source=file:<path>". Absolute path, <= 1024 bytes. libp11 0.4.12
         * reads at most 31 bytes from it and keeps a trailing newline as part of the PIN, so the file
         * must hold the bare PIN (<= 31 bytes, no newline), mode 0400/0440. */
        const char *pin_file;
        /* Used only when pin_file is NULL: "?pin-value=<pct-encoded>", 1..32 bytes. nginx prints the whole
         * key string, PIN included, in its error log; prefer pin_file. NULL with pin_file NULL: no PIN. */
        const char *pin;
};

/* Build "pkcs11:model=…;manufacturer=…;serial=…;token=…;id=%01;object=…;type=private?pin-source=file:…".
 * Attribute values are percent-encoded except RFC 3986 unreserved characters ('/' is also kept
 * in the pin-source path); id is always fully encoded. The PIN attribute goes in the query ('?'),
 * where RFC 7512 puts it; libp11 0.4.12 splits on any of ";?&", so both forms work with it, and
 * only the '?' form works with p11-kit, GnuTLS and pkcs11-provider. Returns 0, -EINVAL, -E2BIG
 * (> P11URI_MAX_LEN) or -ENOMEM. The result may hold a PIN: wipe it before freeing. */
_must_check_ int p11uri_build(const struct p11uri_key *k, char **ret_uri, size_t *ret_len);

/* CKA_ID bytes of an enclave-token key id: big-endian without leading zero bytes, at least one
 * byte (1 -> 01, 258 -> 01 02). Writes ret_id[0..n) and returns n (1..P11URI_U32_ID_MAX). */
size_t p11uri_id_from_u32(uint32_t id, uint8_t ret_id[static P11URI_U32_ID_MAX]);

/* s with every byte but RFC 3986 unreserved ones percent-encoded ("%2F"), as p11uri_build() encodes
 * a pin-value. Returns 0, -EINVAL or -ENOMEM; the result may hold a PIN: wipe it before freeing. */
_must_check_ int p11uri_pct_encode(const char *s, char **ret);

/* RFC 3986 "unreserved": ALPHA / DIGIT / "-" / "." / "_" / "~". */
bool p11uri_is_unreserved(unsigned char ch);
