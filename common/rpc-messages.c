/* The message schemas: one table of fields per message, with its limits and secret fields. */
#include <errno.h>
#include <stddef.h>

#include "common/rpc-messages.h"

const struct rpc_schema rpc_empty_schema = { .name = "empty" };

/* ---- HELLO ---- */

static const struct rpc_field hello_req_fields[] = {
        RPC_F_U32(1, struct rpc_hello_req, min_version, true, 1, UINT8_MAX),
        RPC_F_U32(2, struct rpc_hello_req, max_version, true, 1, UINT8_MAX),
        RPC_F_TEXT(3, struct rpc_hello_req, client, false, 0, RPC_TEXT_MAX),
};
const struct rpc_schema rpc_hello_req_schema =
        RPC_SCHEMA("hello_req", struct rpc_hello_req, hello_req_fields, false);

static const struct rpc_field hello_resp_fields[] = {
        RPC_F_U32(1, struct rpc_hello_resp, version, true, 1, UINT8_MAX),
        RPC_F_U64(2, struct rpc_hello_resp, generation, true),
        RPC_F_TEXT(3, struct rpc_hello_resp, server, false, 0, RPC_TEXT_MAX),
        RPC_F_U32(4, struct rpc_hello_resp, max_tokens, false, 0, RPC_MAX_TOKENS),
        RPC_F_BOOL(5, struct rpc_hello_resp, dev, false),
};
const struct rpc_schema rpc_hello_resp_schema =
        RPC_SCHEMA("hello_resp", struct rpc_hello_resp, hello_resp_fields, false);

/* ---- key and token info (TOKEN_OBJECTS, TOKEN_LIST, DESCRIBE) ---- */

static const struct rpc_field cert_elem = RPC_E_BYTES(1, RPC_CERT_MAX);

static const struct rpc_field key_info_fields[] = {
        RPC_F_U32(1, struct rpc_key_info, id, true, 0, RPC_KEY_ID_MAX),
        RPC_F_TEXT(2, struct rpc_key_info, label, false, 0, RPC_KEY_LABEL_MAX),
        RPC_F_U32(3, struct rpc_key_info, type, false, 0, UINT32_MAX),
        RPC_F_U32(4, struct rpc_key_info, bits, false, 0, UINT32_MAX),
        RPC_F_BYTES(5, struct rpc_key_info, spki, false, 0, RPC_SPKI_MAX),
        RPC_F_ARRAY(6, struct rpc_key_info, certs, n_certs, false, 0, RPC_MAX_CERTS, cert_elem, 1, false),
        RPC_F_U64(7, struct rpc_key_info, not_after, false),
        RPC_F_TEXT(8, struct rpc_key_info, subject, false, 0, RPC_TEXT_MAX),
};
static const struct rpc_schema key_info_schema =
        RPC_SCHEMA("key_info", struct rpc_key_info, key_info_fields, false);
/* A key map is at least 3 bytes: {1: id}. */
static const struct rpc_field key_info_elem = RPC_E_MAP(key_info_schema);

static const struct rpc_field token_info_fields[] = {
        RPC_F_U32(1, struct rpc_token_info, slot, true, 0, UINT32_MAX),
        RPC_F_TEXT(2, struct rpc_token_info, label, true, 1, RPC_LABEL_MAX),
        RPC_F_U64(3, struct rpc_token_info, generation, false),
        RPC_F_U32(4, struct rpc_token_info, n_keys_total, false, 0, RPC_MAX_KEYS),
        RPC_F_ARRAY(5, struct rpc_token_info, keys, n_keys, false, 0, RPC_MAX_KEYS, key_info_elem, 3, false),
        RPC_F_U64(6, struct rpc_token_info, expires, false),
        RPC_F_U32(7, struct rpc_token_info, pin_status, false, 0, _RPC_PIN_STATUS_ALL),
};
const struct rpc_schema rpc_token_info_schema =
        RPC_SCHEMA("token_info", struct rpc_token_info, token_info_fields, false);
static const struct rpc_field token_info_elem = RPC_E_MAP(rpc_token_info_schema);

/* Smallest encoding of a token: {1: slot, 2: 1-byte label}. */
#define TOKEN_INFO_MIN_BYTES 6

/* ---- TOKEN_LIST and DESCRIBE ---- */

static const struct rpc_field page_req_fields[] = {
        RPC_F_U32(1, struct rpc_page_req, cursor, false, 0, UINT32_MAX),
};
const struct rpc_schema rpc_page_req_schema =
        RPC_SCHEMA("page_req", struct rpc_page_req, page_req_fields, false);

static const struct rpc_field page_resp_fields[] = {
        RPC_F_U64(1, struct rpc_page_resp, generation, true),
        RPC_F_U32(2, struct rpc_page_resp, next, false, 0, UINT32_MAX),
        RPC_F_U32(3, struct rpc_page_resp, n_tokens_total, false, 0, UINT32_MAX),
        /* Allocated by the decoder: bounded by the page size and by the bytes left first. */
        RPC_F_ARRAY(4, struct rpc_page_resp, tokens, n_tokens, false, 0, RPC_PAGE_MAX, token_info_elem,
                    TOKEN_INFO_MIN_BYTES, true),
};
const struct rpc_schema rpc_page_resp_schema =
        RPC_SCHEMA("page_resp", struct rpc_page_resp, page_resp_fields, false);

/* ---- TOKEN_OBJECTS ---- */

static const struct rpc_field slot_req_fields[] = {
        RPC_F_U32(1, struct rpc_slot_req, slot, true, 0, UINT32_MAX),
};
const struct rpc_schema rpc_slot_req_schema =
        RPC_SCHEMA("slot_req", struct rpc_slot_req, slot_req_fields, false);

/* ---- LOGIN ---- */

static const struct rpc_field login_req_fields[] = {
        RPC_F_U32(1, struct rpc_login_req, slot, true, 0, UINT32_MAX),
        RPC_F_SECRET(2, struct rpc_login_req, pin, true, RPC_PIN_MIN, RPC_PIN_MAX),
};
const struct rpc_schema rpc_login_req_schema =
        RPC_SCHEMA("login_req", struct rpc_login_req, login_req_fields, true);

static const struct rpc_field login_resp_fields[] = {
        RPC_F_SECRET(1, struct rpc_login_resp, ticket, true, RPC_TICKET_LEN, RPC_TICKET_LEN),
};
const struct rpc_schema rpc_login_resp_schema =
        RPC_SCHEMA("login_resp", struct rpc_login_resp, login_resp_fields, true);

/* ---- SIGN and DECRYPT ---- */

static const struct rpc_field crypto_req_fields[] = {
        RPC_F_U32(1, struct rpc_crypto_req, slot, true, 0, UINT32_MAX),
        RPC_F_U32(2, struct rpc_crypto_req, key_id, true, 0, RPC_KEY_ID_MAX),
        /* Missing ticket: the handler answers NOT_LOGGED_IN. */
        RPC_F_SECRET(3, struct rpc_crypto_req, ticket, false, RPC_TICKET_LEN, RPC_TICKET_LEN),
        RPC_F_U32(4, struct rpc_crypto_req, mech, true, 0, UINT32_MAX),
        RPC_F_U32(5, struct rpc_crypto_req, hash, false, 0, UINT32_MAX),
        RPC_F_U32(6, struct rpc_crypto_req, mgf_hash, false, 0, UINT32_MAX),
        RPC_F_U32(7, struct rpc_crypto_req, salt_len, false, 0, UINT32_MAX),
        RPC_F_BYTES(8, struct rpc_crypto_req, data, true, 0, RPC_DATA_MAX),
        RPC_F_BYTES(9, struct rpc_crypto_req, oaep_label, false, 0, RPC_OAEP_LABEL_MAX),
};
const struct rpc_schema rpc_crypto_req_schema =
        RPC_SCHEMA("crypto_req", struct rpc_crypto_req, crypto_req_fields, true);

static const struct rpc_field sign_resp_fields[] = {
        RPC_F_BYTES(1, struct rpc_crypto_resp, data, true, 0, RPC_SIG_MAX),
};
const struct rpc_schema rpc_sign_resp_schema =
        RPC_SCHEMA("sign_resp", struct rpc_crypto_resp, sign_resp_fields, false);

static const struct rpc_field decrypt_resp_fields[] = {
        RPC_F_SECRET(1, struct rpc_crypto_resp, data, true, 0, RPC_SIG_MAX),
};
const struct rpc_schema rpc_decrypt_resp_schema =
        RPC_SCHEMA("decrypt_resp", struct rpc_crypto_resp, decrypt_resp_fields, true);

/* ---- TOKEN_ADD ---- */

static const struct rpc_field add_key_fields[] = {
        RPC_F_U32(1, struct rpc_add_key, id, true, 0, RPC_KEY_ID_MAX),
        RPC_F_TEXT(2, struct rpc_add_key, label, true, 1, RPC_KEY_LABEL_MAX),
        /* Exactly one of key_pem and ciphertext: the handler checks (MALFORMED otherwise). */
        RPC_F_SECRET(3, struct rpc_add_key, key_pem, false, 1, RPC_KEY_PEM_MAX),
        RPC_F_BYTES(4, struct rpc_add_key, chain_pem, true, 1, RPC_CHAIN_PEM_MAX),
        RPC_F_BYTES(5, struct rpc_add_key, ciphertext, false, 1, RPC_CIPHERTEXT_MAX),
};
static const struct rpc_schema add_key_schema =
        RPC_SCHEMA("add_key", struct rpc_add_key, add_key_fields, true);
/* A key map is at least 13 bytes: four keys, id, 1-byte label and PEMs. */
static const struct rpc_field add_key_elem = RPC_E_MAP(add_key_schema);

static const struct rpc_field token_add_req_fields[] = {
        RPC_F_TEXT(1, struct rpc_token_add_req, label, true, 1, RPC_LABEL_MAX),
        RPC_F_SECRET(2, struct rpc_token_add_req, pin, true, RPC_PIN_MIN, RPC_PIN_MAX),
        RPC_F_BOOL(3, struct rpc_token_add_req, replace, false),
        RPC_F_ARRAY(4, struct rpc_token_add_req, keys, n_keys, true, 1, RPC_MAX_KEYS, add_key_elem, 13,
                    false),
        RPC_F_BOOL(5, struct rpc_token_add_req, hold, false),
        RPC_F_U32(6, struct rpc_token_add_req, ttl, false, 0, RPC_TTL_MAX),
};
const struct rpc_schema rpc_token_add_req_schema =
        RPC_SCHEMA("token_add_req", struct rpc_token_add_req, token_add_req_fields, true);

static const struct rpc_field token_add_resp_fields[] = {
        RPC_F_U32(1, struct rpc_token_add_resp, slot, true, 0, UINT32_MAX),
        RPC_F_U32(2, struct rpc_token_add_resp, held, false, 0, UINT32_MAX),
        RPC_F_U64(3, struct rpc_token_add_resp, expires, false),
};
const struct rpc_schema rpc_token_add_resp_schema =
        RPC_SCHEMA("token_add_resp", struct rpc_token_add_resp, token_add_resp_fields, false);

/* ---- TOKEN_REMOVE ---- */

static const struct rpc_field token_remove_req_fields[] = {
        RPC_F_TEXT(1, struct rpc_token_remove_req, label, true, 1, RPC_LABEL_MAX),
        RPC_F_SECRET(2, struct rpc_token_remove_req, pin, true, RPC_PIN_MIN, RPC_PIN_MAX),
};
const struct rpc_schema rpc_token_remove_req_schema =
        RPC_SCHEMA("token_remove_req", struct rpc_token_remove_req, token_remove_req_fields, true);

/* ---- TOKEN_RELEASE ---- */

static const struct rpc_field token_release_req_fields[] = {
        RPC_F_TEXT(1, struct rpc_token_release_req, label, true, 1, RPC_LABEL_MAX),
        RPC_F_SECRET(2, struct rpc_token_release_req, pin, true, RPC_PIN_MIN, RPC_PIN_MAX),
};
const struct rpc_schema rpc_token_release_req_schema =
        RPC_SCHEMA("token_release_req", struct rpc_token_release_req, token_release_req_fields, true);

static const struct rpc_field token_release_resp_fields[] = {
        RPC_F_U32(1, struct rpc_token_release_resp, released, false, 0, UINT32_MAX),
};
const struct rpc_schema rpc_token_release_resp_schema =
        RPC_SCHEMA("token_release_resp", struct rpc_token_release_resp, token_release_resp_fields, false);

/* ---- KMS_BEGIN ---- */

static const struct rpc_field kms_begin_req_fields[] = {
        RPC_F_TEXT(1, struct rpc_kms_begin_req, region, true, 1, RPC_REGION_MAX),
        RPC_F_TEXT(2, struct rpc_kms_begin_req, access_key_id, true, RPC_AKID_MIN, RPC_AKID_MAX),
        RPC_F_SECRET(3, struct rpc_kms_begin_req, secret_access_key, true, 1, RPC_AWS_SECRET_MAX),
        RPC_F_SECRET(4, struct rpc_kms_begin_req, session_token, false, 1, RPC_SESSION_TOKEN_MAX),
        RPC_F_U64(5, struct rpc_kms_begin_req, time, true),
        RPC_F_TEXT(6, struct rpc_kms_begin_req, domain, false, 1, RPC_DOMAIN_MAX),
        RPC_F_BOOL(7, struct rpc_kms_begin_req, per_key, false),
};
const struct rpc_schema rpc_kms_begin_req_schema =
        RPC_SCHEMA("kms_begin_req", struct rpc_kms_begin_req, kms_begin_req_fields, true);

static const struct rpc_field kms_begin_resp_fields[] = {
        RPC_F_U64(1, struct rpc_kms_begin_resp, time, true),
        RPC_F_BOOL(2, struct rpc_kms_begin_resp, parent_time, false),
};
const struct rpc_schema rpc_kms_begin_resp_schema =
        RPC_SCHEMA("kms_begin_resp", struct rpc_kms_begin_resp, kms_begin_resp_fields, false);

/* ---- TOKEN_REFRESH ---- */

static const struct rpc_field refresh_key_fields[] = {
        RPC_F_U32(1, struct rpc_refresh_key, id, true, 0, RPC_KEY_ID_MAX),
        RPC_F_BYTES(2, struct rpc_refresh_key, ciphertext, true, 1, RPC_CIPHERTEXT_MAX),
};
static const struct rpc_schema refresh_key_schema =
        RPC_SCHEMA("refresh_key", struct rpc_refresh_key, refresh_key_fields, false);
static const struct rpc_field refresh_key_elem = RPC_E_MAP(refresh_key_schema);

static const struct rpc_field token_refresh_req_fields[] = {
        RPC_F_TEXT(1, struct rpc_token_refresh_req, label, true, 1, RPC_LABEL_MAX),
        RPC_F_SECRET(2, struct rpc_token_refresh_req, pin, true, RPC_PIN_MIN, RPC_PIN_MAX),
        /* A key map is at least 6 bytes: its head, two keys, an id and a 1-byte ciphertext. */
        RPC_F_ARRAY(3, struct rpc_token_refresh_req, keys, n_keys, true, 1, RPC_MAX_KEYS, refresh_key_elem,
                    6, false),
        RPC_F_U32(4, struct rpc_token_refresh_req, ttl, false, 0, RPC_TTL_MAX),
};
const struct rpc_schema rpc_token_refresh_req_schema =
        RPC_SCHEMA("token_refresh_req", struct rpc_token_refresh_req, token_refresh_req_fields, true);

static const struct rpc_field token_refresh_resp_fields[] = {
        RPC_F_U64(1, struct rpc_token_refresh_resp, expires, true),
};
const struct rpc_schema rpc_token_refresh_resp_schema =
        RPC_SCHEMA("token_refresh_resp", struct rpc_token_refresh_resp, token_refresh_resp_fields, false);

/* ---- ATTEST ---- */

static const struct rpc_field attest_req_fields[] = {
        RPC_F_BYTES(1, struct rpc_attest_req, nonce, false, 1, RPC_NONCE_MAX),
        RPC_F_BYTES(2, struct rpc_attest_req, user_data, false, 1, RPC_NONCE_MAX),
};
const struct rpc_schema rpc_attest_req_schema =
        RPC_SCHEMA("attest_req", struct rpc_attest_req, attest_req_fields, false);

static const struct rpc_field attest_resp_fields[] = {
        RPC_F_BYTES(1, struct rpc_attest_resp, document, true, 1, RPC_ATTEST_DOC_MAX),
};
const struct rpc_schema rpc_attest_resp_schema =
        RPC_SCHEMA("attest_resp", struct rpc_attest_resp, attest_resp_fields, false);

/* ---- STATS ---- */

static const struct rpc_field counter_elem = { .type = RPC_FIELD_U64,
                                               .size = sizeof(uint64_t),
                                               .max = UINT64_MAX };

static const struct rpc_field key_stats_fields[] = {
        RPC_F_U32(1, struct rpc_key_stats, id, true, 0, RPC_KEY_ID_MAX),
        RPC_F_ARRAY(2, struct rpc_key_stats, ops, n_ops, false, 0, RPC_STATS_MECH_MAX, counter_elem, 1,
                    false),
};
static const struct rpc_schema key_stats_schema =
        RPC_SCHEMA("key_stats", struct rpc_key_stats, key_stats_fields, false);
/* {1: id}: 3 bytes at least. */
static const struct rpc_field key_stats_elem = RPC_E_MAP(key_stats_schema);

static const struct rpc_field token_stats_fields[] = {
        RPC_F_U32(1, struct rpc_token_stats, slot, true, 0, UINT32_MAX),
        RPC_F_TEXT(2, struct rpc_token_stats, label, true, 1, RPC_LABEL_MAX),
        RPC_F_U64(3, struct rpc_token_stats, expires, false),
        RPC_F_U32(4, struct rpc_token_stats, n_keys_held, false, 0, RPC_MAX_KEYS),
        RPC_F_ARRAY(5, struct rpc_token_stats, keys, n_keys, false, 0, RPC_MAX_KEYS, key_stats_elem, 3,
                    false),
        RPC_F_ARRAY(6, struct rpc_token_stats, errors, n_errors, false, 0, RPC_STATS_STATUS_MAX,
                    counter_elem, 1, false),
        RPC_F_U64(7, struct rpc_token_stats, login_failures, false),
        RPC_F_U64(8, struct rpc_token_stats, login_locked, false),
        RPC_F_ARRAY(9, struct rpc_token_stats, latency, n_latency, false, 0, RPC_STATS_BUCKETS_MAX,
                    counter_elem, 1, false),
        RPC_F_U64(10, struct rpc_token_stats, latency_sum_ns, false),
};
static const struct rpc_schema token_stats_schema =
        RPC_SCHEMA("token_stats", struct rpc_token_stats, token_stats_fields, false);
static const struct rpc_field token_stats_elem = RPC_E_MAP(token_stats_schema);

static const struct rpc_field stats_resp_fields[] = {
        RPC_F_U64(1, struct rpc_stats_resp, generation, true),
        RPC_F_U32(2, struct rpc_stats_resp, next, false, 0, UINT32_MAX),
        RPC_F_U32(3, struct rpc_stats_resp, n_tokens_total, false, 0, UINT32_MAX),
        /* Allocated by the decoder: bounded by the page size and by the bytes left first. */
        RPC_F_ARRAY(4, struct rpc_stats_resp, tokens, n_tokens, false, 0, RPC_PAGE_MAX, token_stats_elem,
                    TOKEN_INFO_MIN_BYTES, true),
        RPC_F_ARRAY(5, struct rpc_stats_resp, bounds_ns, n_bounds, false, 0, RPC_STATS_BUCKETS_MAX - 1,
                    counter_elem, 1, false),
        RPC_F_ARRAY(6, struct rpc_stats_resp, errors, n_errors, false, 0, RPC_STATS_STATUS_MAX, counter_elem,
                    1, false),
        RPC_F_U64(7, struct rpc_stats_resp, retired, false),
        RPC_F_U64(8, struct rpc_stats_resp, keys_held, false),
};
const struct rpc_schema rpc_stats_resp_schema =
        RPC_SCHEMA("stats_resp", struct rpc_stats_resp, stats_resp_fields, false);

/* ---- names ---- */

const char *rpc_key_type_to_string(enum rpc_key_type t) {
        static const char *const names[_RPC_KEY_MAX] = {
                [RPC_KEY_NONE] = "none",
                [RPC_KEY_RSA] = "rsa",
                [RPC_KEY_EC] = "ec",
                [RPC_KEY_ED25519] = "ed25519",
        };
        return t >= 0 && t < _RPC_KEY_MAX ? names[t] : NULL;
}

const char *rpc_mech_to_string(enum rpc_mech m) {
        static const char *const names[_RPC_MECH_MAX] = {
                [RPC_MECH_NONE] = "none",         [RPC_MECH_RSA_PKCS] = "rsa-pkcs",
                [RPC_MECH_RSA_PSS] = "rsa-pss",   [RPC_MECH_ECDSA] = "ecdsa",
                [RPC_MECH_EDDSA] = "eddsa",       [RPC_MECH_RSA_PKCS_DEC] = "rsa-pkcs-dec",
                [RPC_MECH_RSA_OAEP] = "rsa-oaep",
        };
        return m >= 0 && m < _RPC_MECH_MAX ? names[m] : NULL;
}
