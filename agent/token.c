/* One token's life in the agent: PIN, key material, key id, provisioning and key rotation.
 *
 * Key rotation without failed handshakes: TOKEN_ADD with replace=true and the new key only, then the
 * chain file, the target and a graceful reload (nginx HUP, httpd graceful), whether the private key
 * changed or only the certificate. enclave-token keeps the token's slot id (it hashes the label only)
 * and keeps the previous version for --rotation-grace seconds, unlisted, under the same slot id,
 * answering SIGN/DECRYPT for holders of its login ticket. That is what libp11 0.4.12 needs: it lists
 * slots once per process, so the nginx master / httpd parent must find the new key in the slot it
 * already knows (it searches objects again on reload, and the PKCS#11 module re-reads the token's
 * objects then), while the old workers, still signing with the old certificate and the old ticket
 * until they exit, keep signing with the old key. New workers log in afresh and get the new version.
 * Each key gets a key id not used by the two before it (1, 2, 3, ..., 65535, 1): a reloaded master
 * looks for a new id. Not the previous one's: libp11 caches the keys it found in a slot for the life
 * of the process and would take a key it saw two rotations ago, under the same id, for the new one
 * ("key values mismatch" on the reload). Each generation keeps its own chain file; the one of the
 * generation before the previous is deleted once the server uses the new one (no config names it).
 *
 * The replace retires the version the server still uses: the server must move before the grace period
 * ends. So before the replace the new chain file is written and the target is checked for being
 * writable (a temp file in its directory): a read-only, full or missing target directory fails there,
 * nothing is replaced and the old version stays current for as long as it takes. Once the replace is
 * sent, the token remembers what the enclave holds (sent_key_id, sent_digest): a retry after a failed
 * target applies the target only. The agent cannot send the old key again instead: it keeps no private
 * key after sending it, and a File source's file already holds the new one.
 *
 * And the target can still fail after the replace (the config test rejects the new stanza, the reload
 * fails, the server is down): so the replace asks the enclave to hold the replaced version (no expiry)
 * and TOKEN_RELEASE starts its grace period only once the target is applied: config test passed and
 * graceful reload done (or the server was not running and starts with the new file). The TOKEN_ADD
 * answer says whether the enclave holds versions of the token, also after an agent restart or a reload
 * (the first TOKEN_ADD of a token object, fresh, replaces in place): then the next apply tests and
 * reloads even when the file already says so (the previous agent may have died before the reload, or
 * the reload failed), and releases after it. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "agent/metrics.h"
#include "agent/pinstore.h"
#include "agent/token.h"
#include "agent/target.h"
#include "common/errmsg.h"
#include "common/log.h"
#include "common/p11-errmap.h"
#include "common/cleanup-ssl.h"
#include "parent/provision.h"

#define BACKOFF_MAX_USEC (300u * 1000000u)

static const char *const state_names[_AGENT_TOKEN_STATE_MAX] = {
        [AGENT_TOKEN_PENDING] = "pending",
        [AGENT_TOKEN_READY] = "ready",
        [AGENT_TOKEN_UNSUPPORTED] = "not provisionable yet",
        [AGENT_TOKEN_FAILED] = "failed",
};

const char *agent_token_state_to_string(enum agent_token_state s) {
        return s >= 0 && s < _AGENT_TOKEN_STATE_MAX ? state_names[s] : NULL;
}

uint32_t agent_rotation_next_id(uint32_t cur) {
        return cur >= RPC_KEY_ID_MAX || cur == 0 ? 1 : cur + 1;
}

uint64_t agent_backoff_usec(unsigned failures, uint64_t max_usec) {
        uint64_t d = 1000000u;

        for (unsigned i = 1; i < failures && d < max_usec; i++)
                d *= 2;
        return MIN(d, max_usec);
}

static void material_done(struct agent_material *m) {
        free(m->chain);
        *m = (struct agent_material){ .key_id = m->key_id };
}

static uint64_t wall_now(void) {
        time_t t = time(NULL);

        return t > 0 ? (uint64_t) t : 0;
}

static void set_error(struct agent_token *t, const char *msg) {
        free(t->error);
        t->error = msg ? strdup(msg) : NULL;
        t->failed_at = msg ? wall_now() : 0;
}

int agent_token_new(const struct agent_config *cfg, const struct agent_config_token *ct,
                    struct agent_token **ret, char **ret_error) {
        _cleanup_(agent_token_freep) struct agent_token *t = NULL;
        bool created = false;
        int r;

        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->cfg = ct;
        t->label = strdup(ct->label);
        if (!t->label)
                return -ENOMEM;
        t->cur.key_id = 1;
        if (ct->pin)
                r = secret_buf_dup(ct->pin->data, ct->pin->len, &t->pin);
        else {
                r = pinstore_load_or_create(cfg->options.state_dir, t->label, &t->pin, &created);
                if (r >= 0 && created)
                        log_info("Token '%s': generated a PIN, kept in '%s/pins/'", t->label,
                                 cfg->options.state_dir);
        }
        if (r == -ENOMEM)
                return r;
        if (r < 0 && ct->pin)
                return errmsg_set(ret_error, r, "cannot hold its PIN: %s", strerror(-r));
        if (r == -EPERM)
                return errmsg_set(
                        ret_error, r,
                        "refuses its PIN file in '%s/pins': not ours, or others may read or write it "
                        "(it must be 0600; delete it for a new PIN)",
                        cfg->options.state_dir);
        if (r < 0)
                return errmsg_set(ret_error, r, "cannot read or create its PIN in '%s/pins': %s",
                                  cfg->options.state_dir, strerror(-r));
        r = pinstore_load_key_id(cfg->options.state_dir, t->label, &t->cur.key_id);
        if (r < 0)
                log_warning_errno(r, "Token '%s': cannot read its last key id, using 1: %m", t->label);
        if (!pinstore_pin_source_ok(t->pin->data, t->pin->len)) {
                t->state = AGENT_TOKEN_FAILED;
                t->settled = true;
                t->retry_at_usec = UINT64_MAX;
                set_error(
                        t,
                        "its PIN is longer than 31 bytes, which libp11 cannot read from a pin-source file");
                log_error(
                        "Token '%s': the PIN is %zu bytes; libp11 reads at most %d from a pin-source file. "
                        "Use a PIN of 4-%d bytes or leave 'pin' out to have one generated",
                        t->label, t->pin->len, PINSTORE_PIN_SOURCE_MAX, PINSTORE_PIN_SOURCE_MAX);
        }
        *ret = TAKE_PTR(t);
        return 0;
}

struct agent_token *agent_token_free(struct agent_token *t) {
        if (!t)
                return NULL;
        material_done(&t->cur);
        agent_s3_cache_done(&t->s3);
        secret_buf_free(t->pin);
        free(t->label);
        free(t->pin_file);
        free(t->error);
        free(t);
        return NULL;
}

/* Reads the source: the key (in *ret_key, a secret_buf the caller wipes as soon as it is sent; for an
 * encrypted source the KMS ciphertext, not secret but handled alike) and the chain, and their digest. */
static int material_load(struct agent_token *t, const struct agent_config *cfg, struct agent_round *round,
                         struct agent_material *m, struct secret_buf **ret_key, char **ret_error) {
        _cleanup_secret_ struct secret_buf *key = NULL;
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = NULL;
        struct provision_key_summary sum;
        unsigned len = 0;
        int r;

        if (t->cfg->source.kind == AGENT_SOURCE_ACM || t->cfg->source.kind == AGENT_SOURCE_S3) {
                bool had = t->s3.etag[0] != '\0';

                r = agent_s3_source_sync(cfg, t->cfg, round ? &round->creds : NULL, &t->s3, ret_error);
                if (r > 0 && had)
                        log_info("Token '%s': its object changed (ETag %s), a renewal or a new key",
                                 t->label, t->s3.etag);
                if (r >= 0)
                        r = secret_buf_dup(t->s3.ciphertext, t->s3.ciphertext_len, &key);
                if (r >= 0) {
                        m->chain = malloc(t->s3.chain_len + 1);
                        if (!m->chain)
                                return -ENOMEM;
                        memcpy(m->chain, t->s3.chain, t->s3.chain_len + 1);
                        m->chain_len = t->s3.chain_len;
                        sum = (struct provision_key_summary){ .not_after = t->s3.not_after };
                }
        } else if (agent_config_token_encrypted(t->cfg)) {
                _cleanup_free_ uint8_t *blob = NULL;
                size_t blob_len = 0;

                r = provision_read_ciphertext(t->cfg->source.encrypted_key, &blob, &blob_len, ret_error);
                if (r >= 0)
                        r = secret_buf_dup(blob, blob_len, &key);
                if (r >= 0)
                        r = provision_load_chain(t->cfg->source.certificate, &m->chain, &m->chain_len, &sum,
                                                 ret_error);
        } else
                r = provision_load_key_and_chain(t->cfg->source.key, t->cfg->source.certificate, &key,
                                                 &m->chain, &m->chain_len, &sum, ret_error);
        if (r < 0)
                return r;
        m->not_after = sum.not_after;
        ctx = EVP_MD_CTX_new();
        if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) <= 0 ||
            EVP_DigestUpdate(ctx, key->data, key->len) <= 0 || EVP_DigestUpdate(ctx, "", 1) <= 0 ||
            EVP_DigestUpdate(ctx, m->chain, m->chain_len) <= 0 ||
            EVP_DigestFinal_ex(ctx, m->digest, &len) <= 0) {
                material_done(m);
                return -ENOMEM;
        }
        *ret_key = TAKE_PTR(key);
        return 0;
}

static int chain_path(const struct agent_config *cfg, const struct agent_token *t, uint32_t id, char **ret) {
        _cleanup_free_ char *name = NULL;
        int r;

        r = pinstore_label_filename(t->label, &name);
        if (r < 0)
                return r;
        return asprintf(ret, "%s/%s.%" PRIu32 ".crt.pem", cfg->options.runtime_dir, name, id) < 0 ? -ENOMEM
                                                                                                  : 0;
}

/* Does the chain file of id exist and hold another chain? (Then a server pointed at id serves
 * another certificate.) */
static bool chain_file_differs(const struct agent_config *cfg, const struct agent_token *t, uint32_t id,
                               const struct agent_material *m) {
        _cleanup_free_ char *path = NULL;
        _cleanup_secret_ struct secret_buf *s = NULL;

        if (chain_path(cfg, t, id, &path) < 0 ||
            provision_read_file(path, PROVISION_CHAIN_FILE_MAX, "chain", &s, NULL) < 0)
                return false;
        return s->len != m->chain_len || memcmp(s->data, m->chain, m->chain_len) != 0;
}

static int client_get(struct launcher *l, struct rpc_client **client) {
        if (*client && rpc_client_is_broken(*client))
                *client = rpc_client_free(*client);
        if (*client)
                return 0;
        return launcher_connect(l, client);
}

/* A failed TOKEN_ADD / TOKEN_REFRESH of an encrypted key: one line naming the token and what the
 * enclave's status means; when to retry. */
static int kms_call_failed(struct agent_token *t, struct agent_round *round, int r, const char *call) {
        bool broken = round->client && rpc_client_is_broken(round->client);
        const char *text = broken ? NULL : agent_kms_status_text(r);
        _cleanup_free_ char *msg = NULL;

        t->retry_next_sync = agent_kms_retry_kind(r, broken) == AGENT_KMS_RETRY_NEXT_SYNC;
        if (r == -EHOSTUNREACH && !broken)
                agent_round_stop(round, r);
        agent_metrics_kms_error(broken ? "connection" : rpc_status_to_string(errmap_status_from_errno(r)));
        if (asprintf(&msg, "%s failed: %s", call, text ?: strerror(-r)) >= 0)
                set_error(t, msg);
        if (text && r == -EKEYREVOKED && (round->cfg->enclave.expected_pcrs.mask & 1u)) {
                /* what the key policy's kms:RecipientAttestation:PCR0 must name: the attested PCR0 */
                char pcr0[2 * AGENT_PCR_LEN + 1];

                for (size_t i = 0; i < AGENT_PCR_LEN; i++)
                        (void) snprintf(pcr0 + 2 * i, 3, "%02x",
                                        round->cfg->enclave.expected_pcrs.value[0][i]);
                return log_error_errno(r,
                                       "Token '%s': %s failed: %s; the enclave attested PCR0 %s: the key "
                                       "policy must allow kms:Decrypt with kms:RecipientAttestation:PCR0 "
                                       "equal to it%s",
                                       t->label, call, text, pcr0,
                                       t->retry_next_sync ? "; retrying at the next sync" : "");
        }
        if (text)
                return log_error_errno(r, "Token '%s': %s failed: %s%s", t->label, call, text,
                                       t->retry_next_sync ? "; retrying at the next sync" : "");
        return log_error_errno(r, "Token '%s': %s failed%s: %m", t->label, call,
                               broken ? " (the connection to the enclave broke)" : "");
}

/* The connection an encrypted key goes over: the pass's KMS round. The round logged its own failure. */
static int round_get(struct agent_token *t, struct agent_round *round, struct rpc_client **ret) {
        const char *why = NULL;
        int r;

        if (!round) {
                set_error(t, "no KMS round");
                return -ENOLINK;
        }
        r = agent_round_client(round, ret, &why);
        if (r < 0) {
                agent_metrics_kms_error("round");
                set_error(t, why ?: "the KMS round failed");
                t->retry_next_sync = round->retry == AGENT_KMS_RETRY_NEXT_SYNC;
                return r;
        }
        return 0;
}

static void log_expiry(const struct agent_token *t, const char *what) {
        time_t e = (time_t) t->expires;
        struct tm tm;
        char when[64] = "never";

        if (t->expires && gmtime_r(&e, &tm))
                (void) strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
        log_info("Token '%s' %s; the enclave keeps it until %s unless refreshed", t->label, what, when);
}

/* TOKEN_ADD replace with the one key of m, then the key is wiped: what the enclave holds is
 * remembered by its digest only. An encrypted key goes in the pass's KMS round. */
static int send_key(struct agent_token *t, struct launcher *l, struct rpc_client **client,
                    struct agent_round *round, const struct agent_material *m, struct secret_buf **key) {
        _cleanup_secret_ struct secret_buf *k = TAKE_PTR(*key);
        bool enc = agent_config_token_encrypted(t->cfg);
        struct provision_key pk;
        struct rpc_client *c = NULL;
        char label[16];
        enum provision_step step;
        static bool warned_no_hold = false;
        uint32_t slot = 0, held = 0;
        uint64_t expires = 0;
        bool hold;
        int r;

        (void) snprintf(label, sizeof(label), "key-%" PRIu32, m->key_id);
        pk = (struct provision_key){
                .id = m->key_id, .label = label, .chain = m->chain, .chain_len = m->chain_len
        };
        if (enc) {
                pk.ciphertext = k->data;
                pk.ciphertext_len = k->len;
                r = round_get(t, round, &c);
                if (r < 0)
                        return r;
        } else {
                pk.key_pem = k;
                r = client_get(l, client);
                if (r < 0)
                        return log_error_errno(
                                r, "Token '%s': cannot reach the enclave's control channel: %m", t->label);
                c = *client;
        }
        hold = rpc_client_hello(c)->version >= RPC_VERSION_HOLD;
        if (!hold && !warned_no_hold) {
                log_warning("enclave-token speaks protocol version %" PRIu32
                            ", which cannot hold a replaced "
                            "key version: a rotation whose target fails ends when the rotation grace does. "
                            "Update the enclave image",
                            rpc_client_hello(c)->version);
                warned_no_hold = true;
        }
        r = provision_token_add(c, t->label, t->pin, true, hold, enc ? (uint32_t) t->cfg->ttl_secs : 0, &pk,
                                1, &slot, &held, &expires, &step);
        if (enc)
                round->sent++;
        if (r < 0 && enc)
                return kms_call_failed(t, round, r, "TOKEN_ADD");
        if (r == -EROFS && step == PROVISION_STEP_CALL) {
                /* DENIED: an enclave-token without --dev (an enclave image) takes no plaintext key. Retrying
                 * soon will not change that. */
                t->retry_next_sync = true;
                set_error(t,
                          "TOKEN_ADD refused: the enclave takes no plaintext key (it runs without --dev); "
                          "use encrypted_key");
                return log_error_errno(
                        r,
                        "Token '%s': TOKEN_ADD refused: the enclave takes no plaintext key (it "
                        "runs without --dev); use encrypted_key. Retrying at the next sync",
                        t->label);
        }
        if (r < 0) {
                if (rpc_client_is_broken(*client))
                        *client = rpc_client_free(*client);
                return log_error_errno(r, "Token '%s': TOKEN_ADD failed (%s): %m", t->label,
                                       step == PROVISION_STEP_CALL
                                               ? "the enclave refused or the connection broke"
                                               : "request or answer malformed");
        }
        log_info("Token '%s' provisioned in slot %" PRIu32 " with key id %" PRIu32 "%s%s", t->label, slot,
                 m->key_id, enc ? " (decrypted by the enclave through KMS)" : "",
                 held > 0 ? "; the enclave holds the version(s) it replaced until the server has moved"
                          : "");
        t->release_due = held > 0;
        t->provisioned_in = l->launches;
        t->sent_key_id = m->key_id;
        memcpy(t->sent_digest, m->digest, sizeof(t->sent_digest));
        t->provisioned_at = t->refreshed_at = wall_now();
        t->expires = expires;
        if (enc) {
                t->next_refresh_usec =
                        0; /* the TOKEN_ADD set a new expiry: the next refresh is an interval away */
                log_expiry(t, "holds its decrypted key");
        }
        return 0;
}

/* The chain file of m's key id and the PIN file: what the target will point at. */
static int write_files(struct agent_token *t, const struct agent_config *cfg, const struct agent_material *m,
                       char **ret_cpath) {
        _cleanup_free_ char *cpath = NULL;
        int r;

        r = chain_path(cfg, t, m->key_id, &cpath);
        if (r < 0)
                return log_error_errno(r, "Out of memory");
        /* A server may read a chain file its config names at any time (ACM #128): only the file of the
         * generation before the previous one is deleted, once the server has moved (succeed()). */
        r = pinstore_write_atomic(cpath, m->chain, m->chain_len, 0644, (uid_t) -1, (gid_t) -1);
        if (r < 0)
                return log_error_errno(r, "Token '%s': cannot write the certificate chain '%s': %m",
                                       t->label, cpath);
        if (!t->pin_file) {
                r = pinstore_write_runtime(cfg->options.runtime_dir, t->label, t->pin, t->cfg->target.group,
                                           &t->pin_file);
                if (r < 0)
                        return log_error_errno(r, "Token '%s': cannot write its PIN file in '%s': %m",
                                               t->label, cfg->options.runtime_dir);
        }
        *ret_cpath = TAKE_PTR(cpath);
        return 0;
}

/* Chain file, PIN file, target for material m. check_only: before a replace that retires the version
 * the server uses, only check that the target can be written (failing then leaves the enclave as it
 * is). *ret_settled: the failure is one retrying will not fix by itself. */
static int point_target(struct agent_token *t, const struct agent_config *cfg,
                        const struct agent_material *m, bool check_only, bool *ret_settled) {
        _cleanup_free_ char *cpath = NULL, *error = NULL;
        struct target_key k;
        int r;

        *ret_settled = false;
        r = write_files(t, cfg, m, &cpath);
        if (r < 0)
                return r;
        k = (struct target_key){
                .label = t->label, .key_id = m->key_id, .pin_file = t->pin_file, .cert_path = cpath
        };
        r = check_only ? target_check_writable(cfg, t->cfg, &k, &error)
                       : target_apply(cfg, t->cfg, &k, t->release_due, &error);
        if (r < 0) {
                *ret_settled = true;
                set_error(t, error);
                if (check_only)
                        return log_error_errno(
                                r, "Token '%s': target '%s': %s; the key is not rotated%s", t->label,
                                t->cfg->target.path, error ?: "cannot be written",
                                t->sent_key_id == t->cur.key_id
                                        ? " (the server keeps its key id, which stays current "
                                          "in the enclave)"
                                        : "");
                return log_error_errno(r, "Token '%s': target '%s': %s", t->label, t->cfg->target.path,
                                       error ?: "failed");
        }
        if (r > TARGET_UNCHANGED)
                log_info("Token '%s': %s '%s' now uses key id %" PRIu32 "; %s %s", t->label,
                         agent_target_kind_to_string(t->cfg->target.kind), t->cfg->target.path, m->key_id,
                         agent_service_to_string(cfg->options.service), target_outcome_to_string(r));
        return 0;
}

/* The chain file of the generation before the previous one: no config names it any more. */
static void chain_file_retire(const struct agent_config *cfg, const struct agent_token *t) {
        uint32_t prev = t->cur.key_id <= 1 ? RPC_KEY_ID_MAX : t->cur.key_id - 1;
        uint32_t old = prev <= 1 ? RPC_KEY_ID_MAX : prev - 1;
        _cleanup_free_ char *path = NULL;

        if (old == t->cur.key_id || chain_path(cfg, t, old, &path) < 0)
                return;
        if (unlink(path) < 0 && errno != ENOENT)
                log_warning_errno(-errno, "Token '%s': cannot delete the old chain file '%s', ignoring: %m",
                                  t->label, path);
}

static void succeed(struct agent_token *t, const struct agent_config *cfg, enum agent_token_state state) {
        if (t->failures > 0)
                log_info("Token '%s' recovered", t->label);
        t->state = state;
        t->settled = true;
        t->failures = 0;
        t->backoff_failures = 0;
        t->target_done = true;
        set_error(t, NULL);
        if (t->cfg->target.present)
                chain_file_retire(cfg, t);
        if (pinstore_save_key_id(cfg->options.state_dir, t->label, t->cur.key_id) < 0)
                log_warning("Token '%s': cannot record key id %" PRIu32 " in '%s', ignoring", t->label,
                            t->cur.key_id, cfg->options.state_dir);
}

/* The key id m goes under: the target's while m is what it points at, else the other one (the server
 * reloads, and each id keeps its own chain file). Without a digest from this process (the agent
 * restarted), the chain file of the target's id tells whether the source changed meanwhile. */
static uint32_t wanted_key_id(const struct agent_token *t, const struct agent_config *cfg,
                              const struct agent_material *m) {
        bool changed = t->cur_known ? CRYPTO_memcmp(t->cur.digest, m->digest, sizeof(m->digest)) != 0
                                    : t->cfg->target.present && chain_file_differs(cfg, t, t->cur.key_id, m);

        return changed ? agent_rotation_next_id(t->cur.key_id) : t->cur.key_id;
}

/* TOKEN_RELEASE: the server uses the enclave's current version, the held ones run out the grace period
 * from now. A failure changes nothing for the server (held versions keep signing): logged, and retried
 * at the next sync. */
static void release_held(struct agent_token *t, struct launcher *l, struct rpc_client **client) {
        struct rpc_token_release_resp resp = {};
        int r;

        if (!t->release_due)
                return;
        r = client_get(l, client);
        if (r >= 0)
                r = rpc_client_call_msg(*client, RPC_CALL_TOKEN_RELEASE,
                                        &(struct rpc_token_release_req){
                                                .label = { (const uint8_t *) t->label, strlen(t->label) },
                                                .pin = { t->pin->data, t->pin->len },
                                        },
                                        &resp);
        if (r < 0) {
                if (*client && rpc_client_is_broken(*client))
                        *client = rpc_client_free(*client);
                log_warning_errno(r, "Token '%s': TOKEN_RELEASE failed, retrying at the next sync: %m",
                                  t->label);
                return;
        }
        t->release_due = false;
        log_info("Token '%s': the server uses key id %" PRIu32 "; %" PRIu32
                 " held version(s) released to the enclave's rotation grace period",
                 t->label, t->cur.key_id, resp.released);
}

/* m is what the source holds now, its key in *key. Sends it when the enclave's current version holds
 * something else (or nothing: a fresh enclave), then points the target at it when the target points
 * elsewhere or was not applied. */
static int sync_material(struct agent_token *t, const struct agent_config *cfg, struct launcher *l,
                         struct rpc_client **client, struct agent_round *round, struct agent_material *m,
                         struct secret_buf **key, bool *settled) {
        bool fresh = t->provisioned_in != l->launches;
        int r;

        if (!fresh && t->target_done)
                release_held(t, l, client); /* a release that failed after the last apply */
        m->key_id = wanted_key_id(t, cfg, m);
        if (agent_token_needs_send(t, fresh, m->key_id, m->digest)) {
                if (!fresh && m->key_id != t->cur.key_id) {
                        log_info("Token '%s': the key or certificate in its source changed, rotating "
                                 "from key id %" PRIu32 " to %" PRIu32,
                                 t->label, t->cur.key_id, m->key_id);
                        /* The replace retires the version the server uses: only when it can move. */
                        r = point_target(t, cfg, m, true, settled);
                        if (r < 0)
                                return r;
                }
                r = send_key(t, l, client, round, m, key);
                if (r < 0)
                        return r;
        }
        *key = secret_buf_free(*key);
        if (!fresh && t->target_done && m->key_id == t->cur.key_id)
                return 0;
        r = point_target(t, cfg, m, false, settled);
        if (r < 0) {
                if (m->key_id != t->cur.key_id)
                        log_warning("Token '%s': the enclave holds key id %" PRIu32 " but the server still "
                                    "uses key id %" PRIu32 "; retrying the target only",
                                    t->label, m->key_id, t->cur.key_id);
                return r;
        }
        material_done(&t->cur);
        t->cur = *m;
        t->cur_known = true;
        *m = (struct agent_material){};
        release_held(t, l, client);
        return 0;
}

enum agent_token_due agent_token_due(const struct agent_token *t, unsigned launches, uint64_t now) {
        bool fresh = t->provisioned_in != launches;

        if (t->state == AGENT_TOKEN_UNSUPPORTED || now < t->retry_at_usec)
                return AGENT_TOKEN_DUE_NOTHING;
        if (fresh || t->state != AGENT_TOKEN_READY || now >= t->next_sync_usec)
                return AGENT_TOKEN_DUE_SYNC;
        if (t->next_refresh_usec && now >= t->next_refresh_usec)
                return AGENT_TOKEN_DUE_REFRESH;
        return AGENT_TOKEN_DUE_NOTHING;
}

bool agent_token_needs_send(const struct agent_token *t, bool fresh, uint32_t key_id,
                            const uint8_t digest[32]) {
        return fresh || t->sent_key_id != key_id || CRYPTO_memcmp(t->sent_digest, digest, 32) != 0;
}

/* An encrypted key's refresh: its ciphertext read again and sent with TOKEN_REFRESH, which extends the
 * expiry. *ret_changed when the source changed meanwhile: then it is a sync (a replace), not a refresh. */
static int refresh_encrypted(struct agent_token *t, struct agent_round *round, uint64_t now,
                             bool *ret_changed, bool *settled) {
        _cleanup_secret_ struct secret_buf *ct = NULL;
        _cleanup_free_ char *error = NULL;
        struct agent_material m = {};
        struct rpc_client *c = NULL;
        uint64_t expires = 0;
        int r;

        *ret_changed = false;
        r = material_load(t, round->cfg, round, &m, &ct, &error);
        if (r < 0) {
                agent_metrics_source_error(t->cfg->source.kind);
                *settled = true;
                set_error(t, error);
                return log_error_errno(r, "Token '%s': %s", t->label,
                                       error ?: "cannot load its File source");
        }
        if (!agent_token_needs_send(t, false, t->cur.key_id, m.digest) && t->sent_key_id == t->cur.key_id) {
                r = round_get(t, round, &c);
                if (r >= 0) {
                        r = provision_token_refresh(
                                c, t->label, t->pin, (uint32_t) t->cfg->ttl_secs,
                                &(struct provision_refresh_key){ .id = t->sent_key_id,
                                                                 .ciphertext = ct->data,
                                                                 .ciphertext_len = ct->len },
                                1, &expires);
                        round->sent++;
                        if (r < 0)
                                r = kms_call_failed(t, round, r, "TOKEN_REFRESH");
                }
        } else
                *ret_changed = true;
        material_done(&m);
        if (r < 0 || *ret_changed)
                return r;
        t->expires = expires;
        t->refreshed_at = wall_now();
        t->next_refresh_usec = now + t->cfg->refresh_interval_secs * 1000000u;
        log_expiry(t, "refreshed (the enclave decrypted its key again)");
        return 0;
}

static int step(struct agent_token *t, const struct agent_config *cfg, struct launcher *l,
                struct rpc_client **client, struct agent_round *round, uint64_t now, bool *settled) {
        _cleanup_secret_ struct secret_buf *key = NULL;
        struct agent_material m = {};
        _cleanup_free_ char *error = NULL;
        bool changed = false;
        int r;

        *settled = false;
        switch (agent_token_due(t, l->launches, now)) {
        case AGENT_TOKEN_DUE_NOTHING: return 0;
        case AGENT_TOKEN_DUE_REFRESH:
                if (!agent_config_token_encrypted(t->cfg)) {
                        /* A plaintext key needs no re-attestation: the refresh is a no-op check. */
                        log_debug("Refreshing token '%s': nothing to do for a plaintext File source",
                                  t->label);
                        t->next_refresh_usec = now + t->cfg->refresh_interval_secs * 1000000u;
                        t->refreshed_at = wall_now();
                        return 0;
                }
                log_debug("Refreshing token '%s'", t->label);
                r = refresh_encrypted(t, round, now, &changed, settled);
                if (r < 0 || !changed)
                        return r;
                log_info("Token '%s': its File source changed since the last sync", t->label);
                break;
        default: break;
        }
        log_debug("Syncing token '%s'", t->label);
        r = material_load(t, cfg, round, &m, &key, &error);
        if (r < 0) {
                agent_metrics_source_error(t->cfg->source.kind);
                *settled = true;
                set_error(t, error);
                return log_error_errno(r, "Token '%s': %s", t->label,
                                       error ?: "cannot load its File source");
        }
        t->next_sync_usec = now + cfg->options.sync_interval_secs * 1000000u;
        r = sync_material(t, cfg, l, client, round, &m, &key, settled);
        material_done(&m);
        if (r >= 0) {
                succeed(t, cfg, AGENT_TOKEN_READY);
                t->synced_at = wall_now();
                if (t->next_refresh_usec == 0)
                        t->next_refresh_usec = now + t->cfg->refresh_interval_secs * 1000000u;
        }
        return r;
}

int agent_token_step(struct agent_token *t, const struct agent_config *cfg, struct launcher *l,
                     struct rpc_client **client, uint64_t now) {
        return agent_token_step_round(t, cfg, l, client, NULL, now);
}

int agent_token_step_round(struct agent_token *t, const struct agent_config *cfg, struct launcher *l,
                           struct rpc_client **client, struct agent_round *round, uint64_t now) {
        bool settled = false;
        uint64_t delay;
        int r;

        if (t->state == AGENT_TOKEN_UNSUPPORTED || !l->running || now < t->retry_at_usec)
                return 0;
        t->retry_next_sync = false;
        r = step(t, cfg, l, client, round, now, &settled);
        if (r >= 0) {
                t->retry_at_usec = 0;
                return 0;
        }
        t->failures++;
        t->state = AGENT_TOKEN_FAILED;
        t->target_done = false;
        /* Settled: retrying alone will not fix it (it is still retried). Missing credentials need the
         * operator, as a refused attestation or a KMS denial do. */
        if (settled || t->retry_next_sync || r == -ENOKEY)
                t->settled = true;
        if (t->retry_next_sync || !agent_config_token_encrypted(t->cfg))
                t->backoff_failures = 0;
        else if (++t->backoff_failures >= cfg->enclave.attestation_retry_count) {
                /* the attempts enclave.attestation_retry_count allows: no more back-off until the
                 * next sync, which starts the count again */
                log_warning("Token '%s': %u attempts in a row failed (enclave.attestation_retry_count), "
                            "waiting for the next sync",
                            t->label, t->backoff_failures);
                t->backoff_failures = 0;
                t->retry_next_sync = true;
        }
        if (!t->error) {
                _cleanup_free_ char *msg = NULL;
                if (asprintf(&msg, "provisioning failed: %s", strerror(-r)) >= 0)
                        set_error(t, msg);
        }
        delay = t->retry_next_sync
                        ? cfg->options.sync_interval_secs * 1000000u
                        : agent_backoff_usec(t->failures, MIN(BACKOFF_MAX_USEC,
                                                              cfg->options.sync_interval_secs * 1000000u));
        t->retry_at_usec = now + delay;
        log_warning("Token '%s': attempt %u failed, retrying in %" PRIu64 " s", t->label, t->failures,
                    (t->retry_at_usec - now + 999999u) / 1000000u);
        return r;
}

uint64_t agent_token_next_usec(const struct agent_token *t, const struct launcher *l) {
        uint64_t next;

        if (t->state == AGENT_TOKEN_UNSUPPORTED || !l->running)
                return UINT64_MAX;
        if (t->state == AGENT_TOKEN_FAILED)
                return t->retry_at_usec;
        if (t->provisioned_in != l->launches)
                return t->retry_at_usec;
        next = MIN(t->next_sync_usec, t->next_refresh_usec ?: UINT64_MAX);
        return MAX(next, t->retry_at_usec);
}

int agent_token_remove(struct agent_token *t, struct launcher *l, struct rpc_client **client) {
        int r;

        if (!t->pin || !l->running || t->provisioned_in != l->launches)
                return 0;
        r = client_get(l, client);
        if (r < 0)
                return log_warning_errno(r, "Token '%s': cannot reach the enclave to remove it: %m",
                                         t->label);
        r = rpc_client_call_msg(*client, RPC_CALL_TOKEN_REMOVE,
                                &(struct rpc_token_remove_req){
                                        .label = { (const uint8_t *) t->label, strlen(t->label) },
                                        .pin = { t->pin->data, t->pin->len },
                                },
                                NULL);
        if (r < 0)
                return log_warning_errno(r, "Token '%s': TOKEN_REMOVE failed: %m", t->label);
        log_info("Token '%s' removed from the enclave", t->label);
        return 0;
}
