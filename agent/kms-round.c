/* The agent's KMS round: credentials, attestation check, KMS_BEGIN ... KMS_END on one connection. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "agent/attestation.h"
#include "agent/creds.h"
#include "agent/kms-round.h"
#include "agent/source-s3.h"
#include "common/cleanup-ssl.h"
#include "common/errmsg.h"
#include "common/log.h"
#include "parent/provision.h"

#define SIM_ROOT_MAX (64u * 1024u)

void agent_round_init(struct agent_round *rd, const struct agent_config *cfg, struct launcher *l) {
        *rd = (struct agent_round){ .cfg = cfg, .launcher = l };
}

const char *agent_kms_status_text(int r) {
        switch (r) {
        case -EKEYREVOKED:
                return "KMS denied the Decrypt (AccessDenied: the key policy or its attestation condition, "
                       "or the credentials are wrong or expired)";
        case -ENOTRECOVERABLE:
                return "KMS cannot decrypt the ciphertext (invalid, or its KMS key is wrong, disabled or "
                       "unknown)";
        case -EHOSTUNREACH: return "KMS is unreachable, slow or throttling";
        case -EREMOTEIO: return "KMS failed, or its answer could not be opened (see the enclave's log)";
        case -ENOMEDIUM:
                return "the enclave has no NSM to attest with (no /dev/nsm and no --nsm-simulator): it "
                       "cannot decrypt keys";
        case -ENOLINK: return "the enclave saw no KMS round on this connection";
        case -EKEYREJECTED:
                return "the enclave rejected the decrypted key (unparsable, or it does not match the "
                       "certificate chain: a ciphertext of another token's key?)";
        default: return NULL;
        }
}

enum agent_kms_retry agent_kms_retry_kind(int r, bool broken) {
        if (broken || r == -EHOSTUNREACH || r == -ENOKEY || r == -ETIMEDOUT || r == -ECONNREFUSED ||
            r == -ECONNRESET || r == -ENOENT || r == -EPIPE || r == -ENOTCONN || r == -ENOMEM)
                return AGENT_KMS_RETRY_BACKOFF;
        return AGENT_KMS_RETRY_NEXT_SYNC;
}

static uint64_t wall_ms(void) {
        struct timespec ts;

        if (clock_gettime(CLOCK_REALTIME, &ts) < 0 || ts.tv_sec < 0)
                return 0;
        return (uint64_t) ts.tv_sec * 1000u + (uint64_t) ts.tv_nsec / 1000000u;
}

/* The simulator's root, as enclave-token wrote it (PEM) into the runtime directory, in DER. */
static int sim_root_load(const struct launcher *l, uint8_t **ret, size_t *ret_len, char **ret_error) {
        _cleanup_secret_ struct secret_buf *pem = NULL;
        _cleanup_(BIO_free_allp) BIO *in = NULL;
        _cleanup_(X509_freep) X509 *x = NULL;
        _cleanup_free_ char *path = launcher_sim_root_path(l);
        unsigned char *der = NULL;
        int n, r;

        if (!path)
                return -ENOMEM;
        r = provision_read_file(path, SIM_ROOT_MAX, "NSM simulator root", &pem, ret_error);
        if (r < 0)
                return r;
        in = BIO_new_mem_buf(pem->data, (int) pem->len);
        if (!in)
                return -ENOMEM;
        ERR_set_mark();
        x = PEM_read_bio_X509(in, NULL, NULL, NULL);
        ERR_pop_to_mark();
        if (!x)
                return errmsg_set(ret_error, -EBADMSG,
                                  "The NSM simulator root '%s' holds no PEM certificate", path);
        n = i2d_X509(x, &der);
        if (n <= 0)
                return errmsg_set(ret_error, -ENOMEM, "Cannot encode the NSM simulator root '%s'", path);
        *ret = der; /* OPENSSL_malloc'ed */
        *ret_len = (size_t) n;
        return 0;
}

static int round_fail(struct agent_round *rd, int r, enum agent_kms_retry retry, const char *fmt, ...)
        _printf_(4, 5);
static int round_fail(struct agent_round *rd, int r, enum agent_kms_retry retry, const char *fmt, ...) {
        va_list ap;
        char *msg = NULL;

        va_start(ap, fmt);
        if (vasprintf(&msg, fmt, ap) < 0)
                msg = NULL;
        va_end(ap);
        rd->error = r < 0 ? r : -EIO;
        rd->retry = retry;
        free(rd->error_msg);
        rd->error_msg = msg;
        if (rd->client && rpc_client_is_broken(rd->client))
                rd->client = rpc_client_free(rd->client);
        log_error_errno(rd->error, "KMS round: %s", msg ?: "failed");
        return rd->error;
}

void agent_round_stop(struct agent_round *rd, int r) {
        if (!rd->error)
                (void) round_fail(
                        rd, r, AGENT_KMS_RETRY_BACKOFF,
                        "%s (an earlier call of this round): the other tokens wait for their retry",
                        agent_kms_status_text(r) ?: strerror(-r));
}

/* ATTEST with a fresh nonce, and the document's check. */
static int round_attest(struct agent_round *rd) {
        const struct agent_config_enclave *e = &rd->cfg->enclave;
        _cleanup_free_ uint8_t *doc = NULL;
        _cleanup_free_ char *error = NULL;
        uint8_t nonce[PROVISION_NONCE_LEN];
        uint8_t *root = NULL;
        size_t len = 0, root_len = 0;
        int r;

        if (RAND_bytes(nonce, sizeof(nonce)) != 1)
                return round_fail(rd, -EIO, AGENT_KMS_RETRY_BACKOFF, "cannot draw a random nonce");
        r = provision_attest(rd->client, nonce, sizeof(nonce), &doc, &len);
        if (r < 0)
                return round_fail(rd, r, agent_kms_retry_kind(r, rpc_client_is_broken(rd->client)),
                                  "ATTEST failed: %s", agent_kms_status_text(r) ?: strerror(-r));
        if (rd->launcher->nsm_simulator) {
                r = sim_root_load(rd->launcher, &root, &root_len, &error);
                if (r < 0)
                        return round_fail(rd, r, AGENT_KMS_RETRY_BACKOFF, "%s",
                                          error ?: "cannot read the NSM simulator's root");
        }
        r = agent_attest_check(doc, len, nonce, sizeof(nonce),
                               &(struct agent_attest_policy){ .pcrs = &e->expected_pcrs,
                                                              .origin = e->pcrs_origin,
                                                              .root_der = root,
                                                              .root_len = root_len },
                               &error);
        OPENSSL_free(root);
        if (r < 0)
                return round_fail(rd, r, r == -ENOMEM ? AGENT_KMS_RETRY_BACKOFF : AGENT_KMS_RETRY_NEXT_SYNC,
                                  "%s", error ?: "the enclave's attestation document does not verify");
        log_debug("KMS round: the enclave's attestation document verifies (%s root, %s)",
                  root_len ? "NSM simulator" : "AWS Nitro Enclaves",
                  e->pcrs_origin == AGENT_PCRS_NONE ? "no PCR expected"
                                                    : agent_pcrs_origin_to_string(e->pcrs_origin));
        return 0;
}

/* KMS_BEGIN with the pass's credentials (wiped at the pass's end, agent_round_end()). */
static int round_begin(struct agent_round *rd, const struct agent_creds *creds) {
        struct rpc_kms_begin_resp resp = {};
        uint64_t now = wall_ms();
        int r;

        r = provision_kms_begin(rd->client,
                                &(struct provision_kms_creds){ .region = creds->region,
                                                               .access_key_id = creds->access_key_id,
                                                               .secret_access_key = creds->secret_access_key,
                                                               .session_token = creds->session_token },
                                now, &resp);
        if (r < 0)
                return round_fail(rd, r, agent_kms_retry_kind(r, rpc_client_is_broken(rd->client)),
                                  "KMS_BEGIN failed: %s", agent_kms_status_text(r) ?: strerror(-r));
        if (resp.parent_time)
                log_warning("KMS round: the enclave's clock is %" PRIi64
                            " s off; it signs KMS requests with "
                            "the agent's time",
                            ((int64_t) resp.time - (int64_t) now) / 1000);
        return 0;
}

static int round_open(struct agent_round *rd) {
        const struct agent_config_enclave *e = &rd->cfg->enclave;
        const struct agent_creds *creds = NULL;
        _cleanup_free_ char *error = NULL;
        uint32_t version;
        int r;

        /* Before anything reaches the enclave: an agent without credentials has nothing to send. */
        r = agent_creds_cache_get(
                &rd->creds,
                &(struct agent_creds_opts){ .region = rd->cfg->options.region,
                                            .imds_endpoint = rd->cfg->options.imds_endpoint,
                                            /* as the pass's Acm sources ask: one IMDS round for all */
                                            .prefer_arn = agent_s3_sources_want_arn(rd->cfg) },
                &creds, &error);
        /* -ENOKEY for any credential problem: the tokens count as settled (systemd gets READY=1 and the
         * agent keeps running), and retry with back-off. */
        if (r < 0)
                return round_fail(
                        rd, r == -ENOMEM ? r : -ENOKEY, AGENT_KMS_RETRY_BACKOFF,
                        "AWS credentials: %s (the agent takes AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, "
                        "AWS_SESSION_TOKEN from its environment when set, else the instance role from IMDS)",
                        error ?: strerror(-r));
        if (e->launcher == AGENT_LAUNCHER_NITRO_CLI && e->pcrs_origin == AGENT_PCRS_NONE)
                return round_fail(
                        rd, -EPERM, AGENT_KMS_RETRY_NEXT_SYNC,
                        "no expected PCRs (enclave.expected_pcrs or %s next to enclave.image_path): "
                        "not sending credentials to an enclave nothing identifies",
                        AGENT_IMAGE_MEASUREMENTS_FILE);
        r = launcher_connect_timeout(rd->launcher, LAUNCHER_KMS_CALL_TIMEOUT_MS, &rd->client);
        if (r < 0)
                return round_fail(rd, r, AGENT_KMS_RETRY_BACKOFF,
                                  "cannot reach the enclave's control channel: %s", strerror(-r));
        version = rpc_client_hello(rd->client)->version;
        if (version < RPC_VERSION_KMS)
                return round_fail(rd, -EPROTONOSUPPORT, AGENT_KMS_RETRY_NEXT_SYNC,
                                  "enclave-token speaks protocol version %" PRIu32 ", encrypted keys need "
                                  "version %d: update the enclave image",
                                  version, RPC_VERSION_KMS);
        r = round_attest(rd);
        if (r < 0)
                return r;
        r = round_begin(rd, creds);
        if (r < 0)
                return r;
        rd->begun = true;
        log_debug("KMS round open");
        return 0;
}

int agent_round_client(struct agent_round *rd, struct rpc_client **ret, const char **ret_error) {
        int r;

        if (!rd->error && rd->client && rpc_client_is_broken(rd->client))
                return round_fail(rd, -ECONNRESET, AGENT_KMS_RETRY_BACKOFF, "the round's connection broke");
        if (!rd->error && !rd->begun) {
                r = round_open(rd);
                (void) r;
        }
        if (rd->error) {
                if (ret_error)
                        *ret_error = rd->error_msg;
                return rd->error;
        }
        *ret = rd->client;
        return 0;
}

void agent_round_end(struct agent_round *rd) {
        int r;

        if (rd->client && rd->begun && !rpc_client_is_broken(rd->client)) {
                r = provision_kms_end(rd->client);
                if (r < 0)
                        log_warning_errno(r,
                                          "KMS round: KMS_END failed (closing the connection ends the round "
                                          "too): %m");
                else
                        log_debug("KMS round ended after %u call(s)", rd->sent);
        }
        rd->client = rpc_client_free(rd->client);
        free(rd->error_msg);
        agent_creds_cache_done(&rd->creds);
        *rd = (struct agent_round){ .cfg = rd->cfg, .launcher = rd->launcher };
}
