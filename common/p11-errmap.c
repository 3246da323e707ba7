/* The one table where errno, wire status and CK_RV meet. */
#include <errno.h>

#include "common/cleanup.h"
#include "common/p11-errmap.h"

struct errmap_entry {
        int err;                /* negative errno */
        enum rpc_status status; /* _RPC_STATUS_INVALID: local error, never on the wire */
        CK_RV ckr;
};

/* For a status the first row wins, so each status's canonical errno comes first. */
static const struct errmap_entry errmap[] = {
        { -EBADMSG, RPC_STATUS_MALFORMED, CKR_DEVICE_ERROR },
        { -EPROTO, RPC_STATUS_MALFORMED, CKR_DEVICE_ERROR },
        { -EOPNOTSUPP, RPC_STATUS_UNSUPPORTED, CKR_MECHANISM_INVALID },
        { -ENODEV, RPC_STATUS_NO_SUCH_TOKEN, CKR_TOKEN_NOT_PRESENT },
        { -ENOKEY, RPC_STATUS_NO_SUCH_KEY, CKR_KEY_HANDLE_INVALID },
        { -EACCES, RPC_STATUS_PIN_INCORRECT, CKR_PIN_INCORRECT },
        { -EBUSY, RPC_STATUS_PIN_LOCKED, CKR_PIN_LOCKED },
        { -EPERM, RPC_STATUS_NOT_LOGGED_IN, CKR_USER_NOT_LOGGED_IN },
        { -EEXIST, RPC_STATUS_EXISTS, CKR_GENERAL_ERROR },
        { -ENOSPC, RPC_STATUS_LIMIT, CKR_DEVICE_MEMORY },
        { -EROFS, RPC_STATUS_DENIED, CKR_FUNCTION_REJECTED },
        { -EBADE, RPC_STATUS_DATA_INVALID, CKR_DATA_INVALID },
        { -ERANGE, RPC_STATUS_DATA_LEN, CKR_DATA_LEN_RANGE },
        { -EKEYREJECTED, RPC_STATUS_KEY_INVALID, CKR_KEY_TYPE_INCONSISTENT },
        { -EPROTONOSUPPORT, RPC_STATUS_BAD_VERSION, CKR_DEVICE_ERROR },
        { -EIO, RPC_STATUS_INTERNAL, CKR_DEVICE_ERROR },
        { -ENOMEDIUM, RPC_STATUS_NO_ATTESTATION, CKR_DEVICE_ERROR },
        { -ENOLINK, RPC_STATUS_NO_KMS_ROUND, CKR_DEVICE_ERROR },
        { -EKEYREVOKED, RPC_STATUS_KMS_DENIED, CKR_DEVICE_ERROR },
        { -ENOTRECOVERABLE, RPC_STATUS_KMS_CIPHERTEXT, CKR_DEVICE_ERROR },
        { -EHOSTUNREACH, RPC_STATUS_KMS_UNAVAILABLE, CKR_DEVICE_ERROR },
        { -EREMOTEIO, RPC_STATUS_KMS_ERROR, CKR_DEVICE_ERROR },
        /* The PKCS#11 side only: the connection to the enclave. */
        { -ECONNREFUSED, _RPC_STATUS_INVALID, CKR_DEVICE_REMOVED },
        { -ENOENT, _RPC_STATUS_INVALID, CKR_DEVICE_REMOVED },
        { -ECONNRESET, _RPC_STATUS_INVALID, CKR_DEVICE_REMOVED },
        { -EPIPE, _RPC_STATUS_INVALID, CKR_DEVICE_REMOVED },
        { -ETIMEDOUT, _RPC_STATUS_INVALID, CKR_DEVICE_ERROR },
        { -ENOMEM, _RPC_STATUS_INVALID, CKR_HOST_MEMORY },
};

static const struct errmap_entry *find_errno(int r) {
        for (size_t i = 0; i < ELEMENTSOF(errmap); i++)
                if (errmap[i].err == r)
                        return &errmap[i];
        return NULL;
}

enum rpc_status errmap_status_from_errno(int r) {
        const struct errmap_entry *e;

        if (r >= 0)
                return RPC_STATUS_OK;
        e = find_errno(r);
        return e && e->status != _RPC_STATUS_INVALID ? e->status : RPC_STATUS_INTERNAL;
}

int errmap_errno_from_status(enum rpc_status s) {
        if (s == RPC_STATUS_OK)
                return 0;
        /* Not a status of this protocol version: the peer is broken. */
        if (s < 0 || s >= _RPC_STATUS_MAX)
                return -EPROTO;
        for (size_t i = 0; i < ELEMENTSOF(errmap); i++)
                if (errmap[i].status == s)
                        return errmap[i].err;
        return -EIO;
}

CK_RV errmap_ckr_from_errno(int r) {
        const struct errmap_entry *e;

        if (r >= 0)
                return CKR_OK;
        e = find_errno(r);
        return e ? e->ckr : CKR_GENERAL_ERROR;
}

const char *rpc_status_to_string(enum rpc_status s) {
        static const char *const names[_RPC_STATUS_MAX] = {
                [RPC_STATUS_OK] = "ok",
                [RPC_STATUS_MALFORMED] = "malformed",
                [RPC_STATUS_UNSUPPORTED] = "unsupported",
                [RPC_STATUS_NO_SUCH_TOKEN] = "no-such-token",
                [RPC_STATUS_NO_SUCH_KEY] = "no-such-key",
                [RPC_STATUS_PIN_INCORRECT] = "pin-incorrect",
                [RPC_STATUS_PIN_LOCKED] = "pin-locked",
                [RPC_STATUS_NOT_LOGGED_IN] = "not-logged-in",
                [RPC_STATUS_EXISTS] = "exists",
                [RPC_STATUS_LIMIT] = "limit",
                [RPC_STATUS_DENIED] = "denied",
                [RPC_STATUS_DATA_INVALID] = "data-invalid",
                [RPC_STATUS_DATA_LEN] = "data-len",
                [RPC_STATUS_KEY_INVALID] = "key-invalid",
                [RPC_STATUS_BAD_VERSION] = "bad-version",
                [RPC_STATUS_INTERNAL] = "internal",
                [RPC_STATUS_NO_ATTESTATION] = "no-attestation",
                [RPC_STATUS_NO_KMS_ROUND] = "no-kms-round",
                [RPC_STATUS_KMS_DENIED] = "kms-denied",
                [RPC_STATUS_KMS_CIPHERTEXT] = "kms-ciphertext",
                [RPC_STATUS_KMS_UNAVAILABLE] = "kms-unavailable",
                [RPC_STATUS_KMS_ERROR] = "kms-error",
        };
        return s >= 0 && s < _RPC_STATUS_MAX ? names[s] : NULL;
}
