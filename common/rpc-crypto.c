/* The wire's hash ids in OpenSSL terms, for the module and the enclave alike. */
#include "common/rpc-codec.h"
#include "common/rpc-crypto.h"

const EVP_MD *rpc_hash_md(uint32_t h) {
        switch (h) {
        case RPC_HASH_SHA1: return EVP_sha1();
        case RPC_HASH_SHA224: return EVP_sha224();
        case RPC_HASH_SHA256: return EVP_sha256();
        case RPC_HASH_SHA384: return EVP_sha384();
        case RPC_HASH_SHA512: return EVP_sha512();
        default: return NULL;
        }
}
