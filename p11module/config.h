/* The module's configuration: environment read once at C_Initialize, address resolved per connect. */
#pragma once

#include "common/transport.h"

#define P11_DEFAULT_ADDRESS        "vsock:cid=16;port=9999"
#define P11_DEFAULT_ADDRESS_FILE   "/run/enclave-acm/address"
#define P11_DEFAULT_TIMEOUT_MS     5000
#define P11_TIMEOUT_MS_MAX         600000
#define P11_DEFAULT_BUSY_POLL_USEC 50
#define P11_BUSY_POLL_MAX_USEC     10000

struct p11_config {
        char *address;           /* ENCLAVE_ACM_ADDRESS, or NULL */
        char *address_file;      /* ENCLAVE_ACM_ADDRESS_FILE or the default */
        int timeout_ms;          /* ENCLAVE_ACM_TIMEOUT_MS */
        unsigned busy_poll_usec; /* ENCLAVE_ACM_BUSY_POLL_USEC: see rpc_client_set_busy_poll() */
        unsigned debug;          /* ENCLAVE_ACM_DEBUG */
};

/* Reads the environment once. A value it cannot use (not a number, out of range, empty, not an
 * address) is named in the debug trace, when ENCLAVE_ACM_DEBUG turns it on, with the documented default
 * that is used instead. -ENOMEM is the only failure. */
_must_check_ int p11_config_load(struct p11_config *ret);
void p11_config_done(struct p11_config *c);

/* The data channel address: the environment, else the first line of the address file (re-read on
 * every connect so a relaunched enclave is found, and by the pool once a second: p11module/conn.c),
 * else the default. A file that holds no address is
 * named in the trace (rpc) and the default is used. */
_must_check_ int p11_config_address(const struct p11_config *c, struct transport_addr *ret);

/* The first line of text (without trailing blanks) of a small buffer; 0 or -EINVAL when empty. */
_must_check_ int p11_config_first_line(const char *buf, size_t len, char *ret, size_t size);
