/* The one table where errno, wire status and CK_RV meet. */
#pragma once

#include <p11-kit/pkcs11.h>

#include "common/rpc-frame.h"

/* Status for a handler's negative errno; unknown errnos map to RPC_STATUS_INTERNAL. */
enum rpc_status errmap_status_from_errno(int r);
/* Negative errno for a status (0 for OK). */
int errmap_errno_from_status(enum rpc_status s);
/* CK_RV for a negative errno; unknown ones give CKR_GENERAL_ERROR, 0 gives CKR_OK. */
CK_RV errmap_ckr_from_errno(int r);
const char *rpc_status_to_string(enum rpc_status s);
