/* C_FindObjects*, C_GetAttributeValue, C_GetObjectSize over the cached objects; writes are refused. */
#include <string.h>

#include "p11module/module.h"
#include "p11module/sessions.h"
#include "p11module/tokens.h"

/* Calls fn on the session's token with its objects cached and the state lock held. */
static CK_RV with_objects(uint32_t slot, p11_token_fn fn, void *userdata, CK_RV absent) {
        CK_RV rv;

        /* A search must see the token as it is now (a key added or replaced since this process last
         * looked: Apache's parent searches again on a graceful restart and never forks in between).
         * One TOKEN_LIST round trip; an unreachable daemon leaves the cached objects in use. A token
         * list not read yet (the daemon was down at C_OpenSession) is read now. */
        (void) p11_tokens_refresh();
        rv = p11_tokens_check_slot(slot);
        if (rv != CKR_OK)
                return rv == CKR_SLOT_ID_INVALID ? CKR_DEVICE_REMOVED : rv;
        return p11_tokens_with_objects(slot, fn, userdata, absent);
}

static CK_RV template_check(const CK_ATTRIBUTE *tmpl, CK_ULONG n) {
        if (!tmpl && n > 0)
                return CKR_ARGUMENTS_BAD;
        for (CK_ULONG i = 0; i < n; i++)
                if (!tmpl[i].pValue && tmpl[i].ulValueLen > 0 &&
                    tmpl[i].ulValueLen != CK_UNAVAILABLE_INFORMATION)
                        return CKR_ARGUMENTS_BAD;
        return CKR_OK;
}

struct find_args {
        struct p11_session *s;
        const CK_ATTRIBUTE *tmpl;
        CK_ULONG n;
};

static CK_RV find_locked(const struct p11_token *t, void *userdata) {
        struct find_args *a = userdata;
        struct p11_session *s = a->s;

        s->find_n =
                p11_objects_find(t->objects, t->slot, t->logged_in, a->tmpl, a->n, s->find, P11_MAX_OBJECTS);
        s->find_pos = 0;
        s->find_active = true;
        return CKR_OK;
}

CK_RV C_FindObjectsInit(CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount) {
        struct p11_session *s;
        CK_RV rv = p11_session_acquire(hSession, &s);

        if (rv != CKR_OK)
                return rv;
        if (s->find_active)
                rv = CKR_OPERATION_ACTIVE;
        else
                rv = template_check(pTemplate, ulCount);
        if (rv == CKR_OK)
                rv = with_objects(s->slot, find_locked, &(struct find_args){ s, pTemplate, ulCount },
                                  CKR_DEVICE_REMOVED);
        p11_session_release(s);
        return rv;
}

CK_RV C_FindObjects(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE_PTR phObject, CK_ULONG ulMaxObjectCount,
                    CK_ULONG_PTR pulObjectCount) {
        struct p11_session *s;
        CK_RV rv = p11_session_acquire(hSession, &s);
        size_t n;

        if (rv != CKR_OK)
                return rv;
        if (!s->find_active)
                rv = CKR_OPERATION_NOT_INITIALIZED;
        else if (!pulObjectCount || (!phObject && ulMaxObjectCount > 0))
                rv = CKR_ARGUMENTS_BAD;
        else {
                n = MIN((size_t) ulMaxObjectCount, s->find_n - s->find_pos);
                if (n)
                        memcpy(phObject, s->find + s->find_pos, n * sizeof(*phObject));
                s->find_pos += n;
                *pulObjectCount = n;
        }
        p11_session_release(s);
        return rv;
}

CK_RV C_FindObjectsFinal(CK_SESSION_HANDLE hSession) {
        struct p11_session *s;
        CK_RV rv = p11_session_acquire(hSession, &s);

        if (rv != CKR_OK)
                return rv;
        if (!s->find_active)
                rv = CKR_OPERATION_NOT_INITIALIZED;
        s->find_active = false;
        s->find_n = s->find_pos = 0;
        p11_session_release(s);
        return rv;
}

/* Resolves an object of the session's token and calls fn on it with the state lock held. */
typedef CK_RV (*object_fn)(const struct p11_obj *o, void *userdata);

struct object_args {
        CK_OBJECT_HANDLE h;
        object_fn fn;
        void *userdata;
};

static CK_RV object_locked(const struct p11_token *t, void *userdata) {
        struct object_args *a = userdata;
        struct p11_obj o;

        if (p11_obj_resolve(t->objects, t->slot, a->h, t->logged_in, &o) < 0)
                return CKR_OBJECT_HANDLE_INVALID;
        return a->fn(&o, a->userdata);
}

static CK_RV with_object(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, object_fn fn,
                         void *userdata) {
        struct p11_session *s;
        uint32_t slot;
        CK_RV rv = p11_session_acquire(hSession, &s);

        if (rv != CKR_OK)
                return rv;
        slot = s->slot;
        p11_session_release(s);
        return with_objects(slot, object_locked, &(struct object_args){ hObject, fn, userdata },
                            CKR_OBJECT_HANDLE_INVALID);
}

struct attr_args {
        CK_ATTRIBUTE_PTR tmpl;
        CK_ULONG n;
};

static CK_RV get_attributes(const struct p11_obj *o, void *userdata) {
        struct attr_args *a = userdata;

        return p11_obj_get_attributes(o, a->tmpl, a->n);
}

CK_RV C_GetAttributeValue(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ATTRIBUTE_PTR pTemplate,
                          CK_ULONG ulCount) {
        struct attr_args a = { pTemplate, ulCount };
        CK_RV rv = p11_enter();

        if (rv != CKR_OK)
                return rv;
        if (!pTemplate && ulCount > 0)
                return CKR_ARGUMENTS_BAD;
        return with_object(hSession, hObject, get_attributes, &a);
}

static CK_RV object_size(const struct p11_obj *o, void *userdata) {
        *(CK_ULONG *) userdata = p11_obj_size(o);
        return CKR_OK;
}

CK_RV C_GetObjectSize(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ULONG_PTR pulSize) {
        CK_RV rv = p11_enter();

        if (rv != CKR_OK)
                return rv;
        if (!pulSize)
                return CKR_ARGUMENTS_BAD;
        return with_object(hSession, hObject, object_size, pulSize);
}

static CK_RV object_exists(const struct p11_obj *o, void *userdata) {
        return CKR_ACTION_PROHIBITED; /* CKA_MODIFIABLE, CKA_COPYABLE, CKA_DESTROYABLE are false */
}

CK_RV C_CopyObject(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ATTRIBUTE_PTR pTemplate,
                   CK_ULONG ulCount, CK_OBJECT_HANDLE_PTR phNewObject) {
        return with_object(hSession, hObject, object_exists, NULL);
}

CK_RV C_DestroyObject(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject) {
        return with_object(hSession, hObject, object_exists, NULL);
}

CK_RV C_SetAttributeValue(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ATTRIBUTE_PTR pTemplate,
                          CK_ULONG ulCount) {
        return with_object(hSession, hObject, object_exists, NULL);
}

/* Tokens change only through the control channel. */
CK_RV C_CreateObject(CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount,
                     CK_OBJECT_HANDLE_PTR phObject) {
        struct p11_session *s;
        CK_RV rv = p11_session_acquire(hSession, &s);

        if (rv != CKR_OK)
                return rv;
        p11_session_release(s);
        return CKR_FUNCTION_NOT_SUPPORTED;
}
