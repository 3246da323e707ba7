/* Token-wide login: the ticket every SIGN/DECRYPT carries, renewed with the cached PIN when stale. */
#pragma once

#include <stdint.h>

#include "common/rpc-codec.h"

/* The token's current ticket and login sequence; -EPERM when not logged in, -ENODEV without token. */
_must_check_ int p11_login_ticket(uint32_t slot, uint8_t ret_ticket[static RPC_TICKET_LEN],
                                  uint64_t *ret_seq);
/* The ticket was refused (enclave restarted, token replaced): LOGIN again with the cached PIN, once.
 * -EPERM when that is impossible or the PIN no longer works (the token is then logged out). */
_must_check_ int p11_login_renew(uint32_t slot, uint64_t seq, uint8_t ret_ticket[static RPC_TICKET_LEN]);
