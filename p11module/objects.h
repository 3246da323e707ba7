/* Object handles and attribute answers over the cached public objects (pure: no locks, no I/O). */
#pragma once

#include <stdbool.h>

#include "p11module/keys.h"
#include "p11module/pkcs11-3.h"

enum p11_obj_kind {
        P11_OBJ_PRIVATE = 1,
        P11_OBJ_PUBLIC = 2,
        P11_OBJ_CERT = 3,
};

/* Objects one token can hold: per key a private key, a public key and its certificates. */
#define P11_MAX_OBJECTS (RPC_MAX_KEYS * (2 + RPC_MAX_CERTS))

struct p11_handle {
        uint32_t slot; /* 0 when CK_ULONG has no room for it (32-bit hosts) */
        uint32_t key_id;
        enum p11_obj_kind kind;
        unsigned cert;
};

struct p11_obj {
        const struct p11_key *key;
        enum p11_obj_kind kind;
        unsigned cert;
};

/* Stable handles: the same (slot, key id, kind, certificate index) always gives the same handle. */
CK_OBJECT_HANDLE p11_handle_make(uint32_t slot, uint32_t key_id, enum p11_obj_kind kind, unsigned cert);
_must_check_ int p11_handle_parse(CK_OBJECT_HANDLE h, struct p11_handle *ret);
/* Whether a parsed handle can belong to this slot (always true where handles carry no slot). */
bool p11_handle_in_slot(const struct p11_handle *p, uint32_t slot);

/* The object behind a handle in one token: -ENOENT when absent or hidden (private keys before login). */
_must_check_ int p11_obj_resolve(const struct p11_objects *o, uint32_t slot, CK_OBJECT_HANDLE h,
                                 bool logged_in, struct p11_obj *ret);

struct p11_attr {
        const void *ptr;
        size_t len;
        CK_ULONG ul;
        CK_BBOOL b;
        CK_MECHANISM_TYPE mechs[32];
};

/* One attribute's bytes: 0, -ENOENT (not an attribute of this object), -EPERM (sensitive). The
 * result may point into *ret, which must stay put while it is used. */
_must_check_ int p11_obj_attr(const struct p11_obj *o, CK_ATTRIBUTE_TYPE type, struct p11_attr *ret);

/* C_GetAttributeValue's rules, attribute by attribute. */
CK_RV p11_obj_get_attributes(const struct p11_obj *o, CK_ATTRIBUTE *tmpl, CK_ULONG n);
/* Every template attribute present with exactly these bytes. */
bool p11_obj_match(const struct p11_obj *o, const CK_ATTRIBUTE *tmpl, CK_ULONG n);
/* The visible objects matching a template, as handles; returns the count (at most max). */
size_t p11_objects_find(const struct p11_objects *o, uint32_t slot, bool logged_in, const CK_ATTRIBUTE *tmpl,
                        CK_ULONG n, CK_OBJECT_HANDLE *out, size_t max);
/* A rough size in bytes (C_GetObjectSize). */
CK_ULONG p11_obj_size(const struct p11_obj *o);
