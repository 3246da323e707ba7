/* The module's calls to enclave-token over the pooled data channel, with one retry on a broken link. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "common/rpc-calls.h"
#include "common/rpc-codec.h"
#include "common/rpc-frame.h"
#include "p11module/keys.h"

struct p11_token_summary {
        uint32_t slot;
        char label[RPC_LABEL_MAX + 1];
        size_t label_len;
        uint64_t generation;
        uint32_t n_keys;
        uint32_t pin_status; /* enum rpc_pin_status, for the caller's peer, when the list was read */
};

/* Starts a PKCS#11 call's budget afresh (p11_enter(), at every entry point): all the round trips of one
 * call, with their connects, repeats and re-login, end within one ENCLAVE_ACM_TIMEOUT_MS, counted from
 * the first of them. */
void p11_remote_budget_reset(void);

/* All pages of TOKEN_LIST; *ret is malloc()ed (NULL when there are no tokens). */
_must_check_ int p11_remote_token_list(struct p11_token_summary **ret, size_t *ret_n,
                                       uint64_t *ret_generation);
_must_check_ int p11_remote_token_objects(uint32_t slot, struct p11_objects **ret);
_must_check_ int p11_remote_login(uint32_t slot, const uint8_t *pin, size_t pin_len,
                                  uint8_t ret_ticket[static RPC_TICKET_LEN]);
/* SIGN or DECRYPT; the answer is copied to out (-ENOBUFS if it does not fit). Returns its length. */
_must_check_ int p11_remote_crypto(enum rpc_call call, const struct rpc_crypto_req *req, uint8_t *out,
                                   size_t size);

/* The errno a wire status arrives as (p11-errmap), to recognise the few the module acts on. */
int p11_remote_errno(enum rpc_status s);
