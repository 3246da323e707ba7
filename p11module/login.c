/* C_Login / C_Logout: token-wide login state, the ticket, and its renewal with the cached PIN. */
#include <errno.h>
#include <string.h>

#include "common/secret.h"
#include "p11module/debug.h"
#include "p11module/login.h"
#include "p11module/module.h"
#include "p11module/remote.h"
#include "p11module/sessions.h"
#include "p11module/tokens.h"

struct login_ctx {
        uint32_t slot;
        bool op_active;
};

static CK_RV session_ctx(CK_SESSION_HANDLE h, struct login_ctx *ret) {
        struct p11_session *s;
        CK_RV rv = p11_session_acquire(h, &s);

        if (rv != CKR_OK)
                return rv;
        ret->slot = s->slot;
        ret->op_active = s->sign.mech || s->decrypt.mech;
        p11_session_release(s);
        return CKR_OK;
}

/* -ENODEV no token, 1 logged in, 0 not. */
static int token_logged_in(uint32_t slot) {
        const struct p11_token *t;
        int r;

        p11_state_lock();
        t = p11_tokens_find(slot);
        r = !t ? -ENODEV : t->logged_in;
        p11_state_unlock();
        return r;
}

static CK_RV login_store(uint32_t slot, const uint8_t *pin, size_t pin_len, const uint8_t *ticket) {
        struct secret_buf *copy = NULL;
        struct p11_token *t;
        CK_RV rv = CKR_OK;

        if (secret_buf_dup(pin, pin_len, &copy) < 0)
                return CKR_HOST_MEMORY;
        p11_state_lock();
        t = p11_tokens_find(slot);
        if (!t)
                rv = CKR_TOKEN_NOT_PRESENT;
        else if (t->logged_in)
                rv = CKR_USER_ALREADY_LOGGED_IN; /* another thread won */
        else {
                t->pin = TAKE_PTR(copy);
                memcpy(t->ticket, ticket, RPC_TICKET_LEN);
                t->logged_in = true;
                t->login_seq++;
                t->pin_status = 0; /* the right PIN reset the enclave's count */
        }
        p11_state_unlock();
        secret_buf_free(copy);
        return rv;
}

static CK_RV user_login(uint32_t slot, const uint8_t *pin, size_t pin_len) {
        uint8_t ticket[RPC_TICKET_LEN];
        CK_RV rv;
        int r;

        r = token_logged_in(slot);
        if (r == -ENODEV) {
                /* The list may not have been read yet (daemon down when the session opened). */
                rv = p11_tokens_check_slot(slot);
                if (rv != CKR_OK)
                        return rv == CKR_SLOT_ID_INVALID ? CKR_TOKEN_NOT_PRESENT : rv;
                r = token_logged_in(slot);
        }
        if (r < 0)
                return CKR_TOKEN_NOT_PRESENT;
        if (r > 0)
                return CKR_USER_ALREADY_LOGGED_IN;
        if (pin_len < RPC_PIN_MIN || pin_len > RPC_PIN_MAX)
                return CKR_PIN_INCORRECT;
        r = p11_remote_login(slot, pin, pin_len, ticket);
        p11_debug(P11_DEBUG_SESSION, "slot %u: login: %s", slot, r < 0 ? strerror(-r) : "ok");
        if (r == p11_remote_errno(RPC_STATUS_PIN_INCORRECT) || r == p11_remote_errno(RPC_STATUS_PIN_LOCKED))
                p11_tokens_pin_failed(slot, r == p11_remote_errno(RPC_STATUS_PIN_LOCKED));
        if (r < 0)
                return p11_ckr(r);
        rv = login_store(slot, pin, pin_len, ticket);
        secret_wipe(ticket, sizeof(ticket));
        return rv;
}

/* CKU_CONTEXT_SPECIFIC re-checks the PIN for the operation in progress (we never set
 * CKA_ALWAYS_AUTHENTICATE, but answer it correctly anyway). */
static CK_RV context_login(const struct login_ctx *c, const uint8_t *pin, size_t pin_len) {
        uint8_t ticket[RPC_TICKET_LEN];
        int r;

        if (!c->op_active)
                return CKR_OPERATION_NOT_INITIALIZED;
        if (token_logged_in(c->slot) <= 0)
                return CKR_USER_NOT_LOGGED_IN;
        if (pin_len < RPC_PIN_MIN || pin_len > RPC_PIN_MAX)
                return CKR_PIN_INCORRECT;
        r = p11_remote_login(c->slot, pin, pin_len, ticket);
        secret_wipe(ticket, sizeof(ticket));
        return p11_ckr(r);
}

CK_RV C_Login(CK_SESSION_HANDLE hSession, CK_USER_TYPE userType, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen) {
        struct login_ctx c;
        CK_RV rv = session_ctx(hSession, &c);
        bool ro;

        if (rv != CKR_OK)
                return rv;
        if (!pPin && ulPinLen > 0)
                return CKR_ARGUMENTS_BAD;
        switch (userType) {
        case CKU_USER:
                if (!pPin)
                        return CKR_ARGUMENTS_BAD; /* no protected authentication path */
                return user_login(c.slot, pPin, ulPinLen);
        case CKU_CONTEXT_SPECIFIC: return context_login(&c, pPin, ulPinLen);
        case CKU_SO:
                /* There is no security officer: tokens are provisioned over the control channel. */
                p11_state_lock();
                ro = p11_sessions_ro_exists(c.slot);
                p11_state_unlock();
                return ro ? CKR_SESSION_READ_ONLY_EXISTS : CKR_USER_TYPE_INVALID;
        default: return CKR_USER_TYPE_INVALID;
        }
}

CK_RV C_LoginUser(CK_SESSION_HANDLE hSession, CK_USER_TYPE userType, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen,
                  CK_UTF8CHAR_PTR pUsername, CK_ULONG ulUsernameLen) {
        /* Tokens have no user names: the name is ignored. */
        return C_Login(hSession, userType, pPin, ulPinLen);
}

CK_RV C_Logout(CK_SESSION_HANDLE hSession) {
        struct p11_token *t;
        struct login_ctx c;
        CK_RV rv = session_ctx(hSession, &c);

        if (rv != CKR_OK)
                return rv;
        p11_state_lock();
        t = p11_tokens_find(c.slot);
        if (t && t->logged_in)
                p11_token_logout(t);
        else
                rv = CKR_USER_NOT_LOGGED_IN;
        p11_state_unlock();
        return rv;
}

int p11_login_ticket(uint32_t slot, uint8_t ret_ticket[static RPC_TICKET_LEN], uint64_t *ret_seq) {
        const struct p11_token *t;
        int r = 0;

        p11_state_lock();
        t = p11_tokens_find(slot);
        if (!t)
                r = -ENODEV;
        else if (!t->logged_in)
                r = -EPERM;
        else {
                memcpy(ret_ticket, t->ticket, RPC_TICKET_LEN);
                *ret_seq = t->login_seq;
        }
        p11_state_unlock();
        return r;
}

/* Copies the cached PIN if the login is still the one the caller saw. */
static int pin_copy(uint32_t slot, uint64_t seq, uint8_t *pin, size_t *pin_len) {
        const struct p11_token *t;
        int r = -EPERM;

        p11_state_lock();
        t = p11_tokens_find(slot);
        if (t && t->logged_in && t->login_seq == seq && t->pin && t->pin->len <= RPC_PIN_MAX) {
                memcpy(pin, t->pin->data, t->pin->len);
                *pin_len = t->pin->len;
                r = 0;
        }
        p11_state_unlock();
        return r;
}

int p11_login_renew(uint32_t slot, uint64_t seq, uint8_t ret_ticket[static RPC_TICKET_LEN]) {
        uint8_t pin[RPC_PIN_MAX] = {};
        struct p11_token *t;
        size_t pin_len = 0;
        bool wrong_pin;
        int r;

        r = pin_copy(slot, seq, pin, &pin_len);
        if (r < 0)
                return r;
        r = p11_remote_login(slot, pin, pin_len, ret_ticket);
        secret_wipe(pin, sizeof(pin));
        p11_debug(P11_DEBUG_SESSION, "slot %u: login renewed: %s", slot, r < 0 ? strerror(-r) : "ok");
        wrong_pin = r == p11_remote_errno(RPC_STATUS_PIN_INCORRECT);
        p11_state_lock();
        t = p11_tokens_find(slot);
        if (t && t->logged_in && t->login_seq == seq) {
                if (r >= 0)
                        memcpy(t->ticket, ret_ticket, RPC_TICKET_LEN);
                else if (wrong_pin)
                        p11_token_logout(t); /* the token was re-provisioned with another PIN */
        }
        p11_state_unlock();
        return wrong_pin ? -EPERM : r;
}
