/* The negative errno enclave-token returns for each wire status, taken from the one errmap table. */
#pragma once

#include "common/p11-errmap.h"
#include "common/rpc-frame.h"

/* Handlers and the keystore return negative errnos; whichever errno common/p11-errmap.c pairs
 * with a status is the one we return, so the table stays the single place where they meet.
 * Schema violations use -EBADMSG directly (MALFORMED). */
#define ETOK_ERR(status) errmap_errno_from_status(RPC_STATUS_##status)
