/* Acm and S3 sources: the object {certificate, certificateChain, encryptedPrivateKey, encryptionMethod}
 * fetched with the instance role's credentials, kept between syncs with its ETag so an unchanged object
 * costs one conditional GET (304), a changed one (an ACM renewal) is seen by its new ETag. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "agent/config/config.h"
#include "agent/creds.h"
#include "aws/http.h"
#include "common/cleanup.h"

struct agent_s3_cache {
        char uri[8 + 64 + 1024 + 1]; /* s3://bucket/key of the last fetch */
        char etag[AWS_URL_ETAG_MAX + 1];
        uint8_t *ciphertext; /* the KMS blob, decoded from encryptedPrivateKey */
        size_t ciphertext_len;
        char *chain; /* certificate + certificateChain, re-encoded PEM, NUL-terminated */
        size_t chain_len;
        uint64_t not_after; /* the leaf's, Unix seconds; 0: unreadable */
        unsigned fetches, not_modified;
};

void agent_s3_cache_done(struct agent_s3_cache *c);

/* PEM certificates (leaf first) from memory into a clean PEM chain: only certificates, each re-encoded.
 * -EBADMSG (no certificate, or junk), -E2BIG (over 16), -ENOMEM. */
_must_check_ int agent_pem_chain_clean(const char *pem, size_t len, char **ret, size_t *ret_len,
                                       uint64_t *ret_not_after);

/* Whether the configuration has an Acm source: then the sync pass's credentials are fetched with the
 * role ARN from the start, so one IMDS round serves every source and the KMS round. Pure. */
bool agent_s3_sources_want_arn(const struct agent_config *cfg);

/* Fetches the token's object (Acm: ACM's name from the instance role's ARN and region; S3: its uri),
 * with If-None-Match when the cache holds the same object, with the credentials of creds (the sync
 * pass's, shared by its tokens; NULL: acquired for this call alone). 0: unchanged (304), 1: the cache
 * now holds a new object; a negative errno with *ret_error one line naming the URI or ARN and the fix. */
_must_check_ int agent_s3_source_sync(const struct agent_config *cfg, const struct agent_config_token *ct,
                                      struct agent_creds_cache *creds, struct agent_s3_cache *cache,
                                      char **ret_error);
