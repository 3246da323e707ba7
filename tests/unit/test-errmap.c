/* The errno / wire status / CK_RV table. */
#include <errno.h>

#include "common/p11-errmap.h"
#include "tests/lib/tap.h"

static const struct {
        int err;
        enum rpc_status status;
        CK_RV ckr;
} rows[] = {
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
};

static void test_rows(void) {
        for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                ASSERT_EQ(errmap_status_from_errno(rows[i].err), rows[i].status);
                ASSERT_EQ(errmap_ckr_from_errno(rows[i].err), rows[i].ckr);
        }
}

static void test_status_roundtrip(void) {
        ASSERT_EQ(errmap_errno_from_status(RPC_STATUS_OK), 0);
        ASSERT_EQ(errmap_status_from_errno(0), RPC_STATUS_OK);
        ASSERT_EQ(errmap_errno_from_status(RPC_STATUS_MALFORMED), -EBADMSG);
        for (int s = 1; s < _RPC_STATUS_MAX; s++) {
                int e = errmap_errno_from_status(s);
                ASSERT_TRUE(e < 0);
                ASSERT_EQ(errmap_status_from_errno(e), s);
        }
        ASSERT_EQ(errmap_errno_from_status(_RPC_STATUS_MAX), -EPROTO);
        ASSERT_EQ(errmap_errno_from_status(200), -EPROTO);
        ASSERT_EQ(errmap_errno_from_status(_RPC_STATUS_INVALID), -EPROTO);
}

static void test_local_only(void) {
        /* Connection errors never go on the wire, but have a CK_RV. */
        ASSERT_EQ(errmap_ckr_from_errno(-ECONNREFUSED), CKR_DEVICE_REMOVED);
        ASSERT_EQ(errmap_ckr_from_errno(-ENOENT), CKR_DEVICE_REMOVED);
        ASSERT_EQ(errmap_ckr_from_errno(-ECONNRESET), CKR_DEVICE_REMOVED);
        ASSERT_EQ(errmap_ckr_from_errno(-EPIPE), CKR_DEVICE_REMOVED);
        ASSERT_EQ(errmap_ckr_from_errno(-ETIMEDOUT), CKR_DEVICE_ERROR);
        ASSERT_EQ(errmap_ckr_from_errno(-ENOMEM), CKR_HOST_MEMORY);
        ASSERT_EQ(errmap_status_from_errno(-ECONNRESET), RPC_STATUS_INTERNAL);
        ASSERT_EQ(errmap_status_from_errno(-ENOMEM), RPC_STATUS_INTERNAL);
}

static void test_unknown(void) {
        ASSERT_EQ(errmap_status_from_errno(-EXDEV), RPC_STATUS_INTERNAL);
        ASSERT_EQ(errmap_ckr_from_errno(-EXDEV), CKR_GENERAL_ERROR);
        ASSERT_EQ(errmap_ckr_from_errno(-99999), CKR_GENERAL_ERROR);
        ASSERT_EQ(errmap_ckr_from_errno(0), CKR_OK);
        ASSERT_EQ(errmap_ckr_from_errno(5), CKR_OK); /* counts are success */
        ASSERT_EQ(errmap_status_from_errno(5), RPC_STATUS_OK);
}

static void test_strings(void) {
        for (int s = 0; s < _RPC_STATUS_MAX; s++) {
                ASSERT_TRUE(rpc_status_to_string(s) != NULL);
                for (int t = 0; t < s; t++)
                        ASSERT_TRUE(strcmp(rpc_status_to_string(s), rpc_status_to_string(t)) != 0);
        }
        ASSERT_STREQ(rpc_status_to_string(RPC_STATUS_OK), "ok");
        ASSERT_STREQ(rpc_status_to_string(RPC_STATUS_PIN_LOCKED), "pin-locked");
        ASSERT_TRUE(rpc_status_to_string(_RPC_STATUS_MAX) == NULL);
        ASSERT_TRUE(rpc_status_to_string(_RPC_STATUS_INVALID) == NULL);
}

TAP_MAIN(TEST("/errmap/rows", test_rows), TEST("/errmap/status-roundtrip", test_status_roundtrip),
         TEST("/errmap/local-only", test_local_only), TEST("/errmap/unknown", test_unknown),
         TEST("/errmap/strings", test_strings))
