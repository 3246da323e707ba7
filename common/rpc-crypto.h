/* The wire's hash ids in OpenSSL terms, for the module and the enclave alike. */
#pragma once

#include <stdint.h>

#include <openssl/evp.h>

/* The digest for an enum rpc_hash value; NULL for RPC_HASH_NONE and for anything off the wire that is
 * not a hash we know. */
const EVP_MD *rpc_hash_md(uint32_t h);
