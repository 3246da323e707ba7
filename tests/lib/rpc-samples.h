/* Valid sample bodies for every call, both directions: round trips, mutation tests, fuzz seeds. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/rpc-calls.h"
#include "common/rpc-codec.h"

struct rpc_sample {
        const char *name;
        enum rpc_call call;
        bool request;
};

static const uint8_t rpc_sample_ticket[RPC_TICKET_LEN] = {
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10,
        0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20,
};
/* Not real DER: the codec does not look inside. */
static const uint8_t rpc_sample_cert1[] = { 0x30, 0x82, 0x01, 0x0a, 0x02, 0x01,
                                            0x01, 0x04, 0x03, 'a',  'b',  'c' };
static const uint8_t rpc_sample_cert2[] = { 0x30, 0x03, 0x02, 0x01, 0x02 };
static const uint8_t rpc_sample_spki[] = { 0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a,
                                           0x86, 0x48, 0xce, 0x3d, 0x02, 0x01 };

#define RPC_SLICE_STR(s) ((struct rpc_slice){ (const uint8_t *) (s), sizeof(s) - 1 })
#define RPC_SLICE_ARR(a) ((struct rpc_slice){ (const uint8_t *) (a), sizeof(a) })

static inline void rpc_sample_key_info(struct rpc_key_info *k, bool full) {
        *k = (struct rpc_key_info){
                .id = 1,
                .label = RPC_SLICE_STR("tls-key"),
                .type = RPC_KEY_EC,
                .bits = 256,
                .spki = RPC_SLICE_ARR(rpc_sample_spki),
                .n_certs = 2,
                .certs = { RPC_SLICE_ARR(rpc_sample_cert1), RPC_SLICE_ARR(rpc_sample_cert2) },
        };
        if (full) {
                k->not_after = UINT64_C(1893456000);
                k->subject = RPC_SLICE_STR("CN=www.example.com, O=Ex\xc3\xa4mple");
        }
}

static inline void rpc_sample_token_info(struct rpc_token_info *t, bool full) {
        *t = (struct rpc_token_info){
                .slot = 0x2345678,
                .label = RPC_SLICE_STR("T\xc3\xb6k\xc3\xa9n \xe2\x82\xac\xf0\x9d\x84\x9e"),
                .generation = UINT64_C(0x1122334455667788),
                .n_keys_total = 2,
                .n_keys = 2,
        };
        rpc_sample_key_info(&t->keys[0], full);
        rpc_sample_key_info(&t->keys[1], full);
        t->keys[1].id = RPC_KEY_ID_MAX;
        t->keys[1].type = RPC_KEY_RSA;
        t->keys[1].bits = 4096;
        t->keys[1].n_certs = 1;
}

/* Encodes sample i into w; -ENOENT past the last one. */
static inline int rpc_sample_encode(size_t i, struct rpc_writer *w, struct rpc_sample *ret) {
        static struct rpc_token_info tokens[2]; /* too big for the stack of a fuzz driver */
        struct rpc_sample s = {};

        switch (i) {
        case 0:
                s = (struct rpc_sample){ "hello-req", RPC_CALL_HELLO, true };
                rpc_hello_req_encode(w, &(struct rpc_hello_req){ 1, 1, RPC_SLICE_STR("test-client 0.1.0") });
                break;
        case 1:
                s = (struct rpc_sample){ "hello-req-min", RPC_CALL_HELLO, true };
                rpc_hello_req_encode(w, &(struct rpc_hello_req){ .min_version = 1, .max_version = 3 });
                break;
        case 2:
                s = (struct rpc_sample){ "hello-resp", RPC_CALL_HELLO, false };
                rpc_hello_resp_encode(w, &(struct rpc_hello_resp){
                                                 .version = 1,
                                                 .generation = UINT64_C(0xfedcba9876543210),
                                                 .server = RPC_SLICE_STR("enclave-token 0.1.0"),
                                                 .max_tokens = 1024,
                                                 .dev = true,
                                         });
                break;
        case 3:
                s = (struct rpc_sample){ "ping-req", RPC_CALL_PING, true };
                rpc_empty_encode(w);
                break;
        case 4:
                s = (struct rpc_sample){ "ping-resp", RPC_CALL_PING, false };
                rpc_empty_encode(w);
                break;
        case 5:
                s = (struct rpc_sample){ "token-list-req", RPC_CALL_TOKEN_LIST, true };
                rpc_page_req_encode(w, &(struct rpc_page_req){ .cursor = 0 });
                break;
        case 6:
                s = (struct rpc_sample){ "describe-req", RPC_CALL_DESCRIBE, true };
                rpc_page_req_encode(w, &(struct rpc_page_req){ .cursor = 7 });
                break;
        case 7:
                s = (struct rpc_sample){ "token-list-resp", RPC_CALL_TOKEN_LIST, false };
                rpc_sample_token_info(&tokens[0], false);
                tokens[0].n_keys = 0;
                tokens[1] =
                        (struct rpc_token_info){ .slot = 1, .label = RPC_SLICE_STR("b"), .n_keys_total = 1 };
                rpc_page_resp_encode(w, &(struct rpc_page_resp){
                                                .generation = 99,
                                                .next = 2,
                                                .n_tokens_total = 5,
                                                .n_tokens = 2,
                                                .tokens = tokens,
                                        });
                break;
        case 8:
                s = (struct rpc_sample){ "describe-resp", RPC_CALL_DESCRIBE, false };
                rpc_sample_token_info(&tokens[0], true);
                tokens[0].keys[0].spki = (struct rpc_slice){};
                tokens[0].keys[0].n_certs = 0;
                rpc_page_resp_encode(w, &(struct rpc_page_resp){
                                                .generation = 100,
                                                .n_tokens_total = 1,
                                                .n_tokens = 1,
                                                .tokens = tokens,
                                        });
                break;
        case 9:
                s = (struct rpc_sample){ "describe-resp-empty", RPC_CALL_DESCRIBE, false };
                rpc_page_resp_encode(w, &(struct rpc_page_resp){ .generation = 1 });
                break;
        case 10:
                s = (struct rpc_sample){ "token-objects-req", RPC_CALL_TOKEN_OBJECTS, true };
                rpc_slot_req_encode(w, &(struct rpc_slot_req){ .slot = 0x7fffffff });
                break;
        case 11:
                s = (struct rpc_sample){ "token-objects-resp", RPC_CALL_TOKEN_OBJECTS, false };
                rpc_sample_token_info(&tokens[0], false);
                rpc_token_info_encode(w, &tokens[0]);
                break;
        case 12:
                s = (struct rpc_sample){ "login-req", RPC_CALL_LOGIN, true };
                rpc_login_req_encode(w,
                                     &(struct rpc_login_req){ .slot = 3, .pin = RPC_SLICE_STR("123456") });
                break;
        case 13:
                s = (struct rpc_sample){ "login-resp", RPC_CALL_LOGIN, false };
                rpc_login_resp_encode(
                        w, &(struct rpc_login_resp){ .ticket = RPC_SLICE_ARR(rpc_sample_ticket) });
                break;
        case 14:
                s = (struct rpc_sample){ "sign-req-ecdsa", RPC_CALL_SIGN, true };
                rpc_crypto_req_encode(w, &(struct rpc_crypto_req){
                                                 .slot = 3,
                                                 .key_id = 1,
                                                 .ticket = RPC_SLICE_ARR(rpc_sample_ticket),
                                                 .mech = RPC_MECH_ECDSA,
                                                 .data = RPC_SLICE_ARR(rpc_sample_ticket),
                                         });
                break;
        case 15:
                s = (struct rpc_sample){ "sign-req-pss", RPC_CALL_SIGN, true };
                rpc_crypto_req_encode(w, &(struct rpc_crypto_req){
                                                 .slot = 3,
                                                 .key_id = 2,
                                                 .ticket = RPC_SLICE_ARR(rpc_sample_ticket),
                                                 .mech = RPC_MECH_RSA_PSS,
                                                 .hash = RPC_HASH_SHA256,
                                                 .mgf_hash = RPC_HASH_SHA256,
                                                 .salt_len = 32,
                                                 .data = RPC_SLICE_ARR(rpc_sample_ticket),
                                         });
                break;
        case 16:
                s = (struct rpc_sample){ "sign-req-eddsa-empty", RPC_CALL_SIGN, true };
                rpc_crypto_req_encode(w, &(struct rpc_crypto_req){ .mech = RPC_MECH_EDDSA });
                break;
        case 17:
                s = (struct rpc_sample){ "sign-resp", RPC_CALL_SIGN, false };
                rpc_crypto_resp_encode(w,
                                       &(struct rpc_crypto_resp){ .data = RPC_SLICE_ARR(rpc_sample_cert1) });
                break;
        case 18:
                s = (struct rpc_sample){ "decrypt-req-oaep", RPC_CALL_DECRYPT, true };
                rpc_crypto_req_encode(w, &(struct rpc_crypto_req){
                                                 .slot = 9,
                                                 .key_id = 4,
                                                 .ticket = RPC_SLICE_ARR(rpc_sample_ticket),
                                                 .mech = RPC_MECH_RSA_OAEP,
                                                 .hash = RPC_HASH_SHA384,
                                                 .mgf_hash = RPC_HASH_SHA1,
                                                 .data = RPC_SLICE_ARR(rpc_sample_spki),
                                                 .oaep_label = RPC_SLICE_STR("label"),
                                         });
                break;
        case 19:
                s = (struct rpc_sample){ "decrypt-resp", RPC_CALL_DECRYPT, false };
                rpc_crypto_resp_encode(w, &(struct rpc_crypto_resp){ .data = RPC_SLICE_STR("plain") });
                break;
        case 20: {
                struct rpc_token_add_req m = {
                        .label = RPC_SLICE_STR("web"),
                        .pin = RPC_SLICE_STR("0000-secret"),
                        .replace = true,
                        .n_keys = 2,
                        .keys = {
                                { 1, RPC_SLICE_STR("k1"), RPC_SLICE_STR("-----BEGIN PRIVATE KEY-----\nMC4=\n"),
                                  RPC_SLICE_STR("-----BEGIN CERTIFICATE-----\nMA==\n") },
                                { 65535, RPC_SLICE_STR("k\xc3\xa9"), RPC_SLICE_STR("K"), RPC_SLICE_STR("C") },
                        },
                };
                s = (struct rpc_sample){ "token-add-req", RPC_CALL_TOKEN_ADD, true };
                rpc_token_add_req_encode(w, &m);
                break;
        }
        case 21:
                s = (struct rpc_sample){ "token-add-resp", RPC_CALL_TOKEN_ADD, false };
                rpc_token_add_resp_encode(w, &(struct rpc_token_add_resp){ .slot = 0x12345 });
                break;
        case 22:
                s = (struct rpc_sample){ "token-remove-req", RPC_CALL_TOKEN_REMOVE, true };
                rpc_token_remove_req_encode(w, &(struct rpc_token_remove_req){
                                                       .label = RPC_SLICE_STR("web"),
                                                       .pin = RPC_SLICE_STR("0000"),
                                               });
                break;
        case 23:
                s = (struct rpc_sample){ "token-remove-resp", RPC_CALL_TOKEN_REMOVE, false };
                rpc_empty_encode(w);
                break;
        case 24:
                s = (struct rpc_sample){ "token-release-req", RPC_CALL_TOKEN_RELEASE, true };
                rpc_token_release_req_encode(w, &(struct rpc_token_release_req){
                                                        .label = RPC_SLICE_STR("web"),
                                                        .pin = RPC_SLICE_STR("0000"),
                                                });
                break;
        case 25:
                s = (struct rpc_sample){ "token-release-resp", RPC_CALL_TOKEN_RELEASE, false };
                rpc_token_release_resp_encode(w, &(struct rpc_token_release_resp){ .released = 2 });
                break;
        case 26: {
                /* version 3: a key as a KMS ciphertext, a TTL */
                struct rpc_token_add_req m = {
                        .label = RPC_SLICE_STR("web"),
                        .pin = RPC_SLICE_STR("0000-secret"),
                        .n_keys = 1,
                        .keys = { { .id = 1,
                                    .label = RPC_SLICE_STR("k1"),
                                    .chain_pem = RPC_SLICE_STR("-----BEGIN CERTIFICATE-----\nMA==\n"),
                                    .ciphertext = RPC_SLICE_STR("\x01\x02\x03\x00kms-blob") } },
                        .ttl = 172800,
                };
                s = (struct rpc_sample){ "token-add-req-kms", RPC_CALL_TOKEN_ADD, true };
                rpc_token_add_req_encode(w, &m);
                break;
        }
        case 27:
                s = (struct rpc_sample){ "token-add-resp-expires", RPC_CALL_TOKEN_ADD, false };
                rpc_token_add_resp_encode(w,
                                          &(struct rpc_token_add_resp){
                                                  .slot = 7, .held = 1, .expires = UINT64_C(1893456000) });
                break;
        case 28:
                s = (struct rpc_sample){ "kms-begin-req", RPC_CALL_KMS_BEGIN, true };
                rpc_kms_begin_req_encode(w, &(struct rpc_kms_begin_req){
                                                    .region = RPC_SLICE_STR("eu-west-1"),
                                                    .access_key_id = RPC_SLICE_STR("ASIAEXAMPLEEXAMPLE01"),
                                                    .secret_access_key = RPC_SLICE_STR("c2VjcmV0LXNlY3JldA"),
                                                    .session_token = RPC_SLICE_STR("IQoJb3JpZ2luX2VjE"),
                                                    .time = UINT64_C(1765000000123),
                                                    .domain = RPC_SLICE_STR("amazonaws.com"),
                                            });
                break;
        case 29:
                s = (struct rpc_sample){ "kms-begin-resp", RPC_CALL_KMS_BEGIN, false };
                rpc_kms_begin_resp_encode(w, &(struct rpc_kms_begin_resp){ .time = UINT64_C(1765000000456),
                                                                           .parent_time = true });
                break;
        case 30:
                s = (struct rpc_sample){ "kms-end-req", RPC_CALL_KMS_END, true };
                rpc_empty_encode(w);
                break;
        case 31:
                s = (struct rpc_sample){ "token-refresh-req", RPC_CALL_TOKEN_REFRESH, true };
                rpc_token_refresh_req_encode(
                        w, &(struct rpc_token_refresh_req){
                                   .label = RPC_SLICE_STR("web"),
                                   .pin = RPC_SLICE_STR("0000"),
                                   .n_keys = 2,
                                   .keys = { { 1, RPC_SLICE_STR("c1") }, { 2, RPC_SLICE_STR("c2") } },
                                   .ttl = 3600,
                           });
                break;
        case 32:
                s = (struct rpc_sample){ "token-refresh-resp", RPC_CALL_TOKEN_REFRESH, false };
                rpc_token_refresh_resp_encode(
                        w, &(struct rpc_token_refresh_resp){ .expires = UINT64_C(1765172800) });
                break;
        case 33:
                s = (struct rpc_sample){ "attest-req", RPC_CALL_ATTEST, true };
                rpc_attest_req_encode(
                        w, &(struct rpc_attest_req){ .nonce = RPC_SLICE_STR("0123456789abcdef") });
                break;
        case 34:
                s = (struct rpc_sample){ "attest-resp", RPC_CALL_ATTEST, false };
                rpc_attest_resp_encode(w,
                                       &(struct rpc_attest_resp){
                                               .document = RPC_SLICE_STR("\xd2\x84\x44\xa1\x01\x38\x22") });
                break;
        case 35:
                s = (struct rpc_sample){ "stats-req", RPC_CALL_STATS, true };
                rpc_page_req_encode(w, &(struct rpc_page_req){ .cursor = 0x1234 });
                break;
        case 36: {
                static struct rpc_token_stats ts[2] = {
                        { .slot = 7,
                          .label = RPC_SLICE_STR("web"),
                          .expires = UINT64_C(1765172800),
                          .n_keys_held = 1,
                          .n_keys = 2,
                          .keys = { { .id = 1, .n_ops = 7, .ops = { 0, 3, 0, 0, 0, 0, 1 } },
                                    { .id = 2, .n_ops = 7, .ops = { 0, 0, 0, 5 } } },
                          .n_errors = 5,
                          .errors = { 0, 0, 0, 0, 2 },
                          .login_failures = 3,
                          .login_locked = 1,
                          .n_latency = 15,
                          .latency = { 4, 3, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 },
                          .latency_sum_ns = UINT64_C(1000912345) },
                        { .slot = 9, .label = RPC_SLICE_STR("api") },
                };
                s = (struct rpc_sample){ "stats-resp", RPC_CALL_STATS, false };
                rpc_stats_resp_encode(w,
                                      &(struct rpc_stats_resp){ .generation = 42,
                                                                .next = 11,
                                                                .n_tokens_total = 3,
                                                                .n_tokens = 2,
                                                                .tokens = ts,
                                                                .n_bounds = 3,
                                                                .bounds_ns = { 50000, 100000, 1000000000 },
                                                                .n_errors = 4,
                                                                .errors = { 0, 0, 0, 6 },
                                                                .retired = 1,
                                                                .keys_held = 3 });
                break;
        }
        default: return -ENOENT;
        }
        *ret = s;
        return 0;
}
