/* Shared pieces of the enclave-acm CLI: exit codes, connecting to the control channel, error text. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "common/cleanup.h"
#include "common/rpc-client.h"

/* Exit codes: 0 done, 1 the operation failed or was refused, 2 the command line is wrong. */
#define CLI_EXIT_OK         0
#define CLI_EXIT_FAILED     1
#define CLI_EXIT_USAGE      2

#define CLI_TIMEOUT_MS      30000
#define CLI_DEFAULT_CONTROL "unix:path=/run/enclave-acm/control.sock"

struct cli_ctx {
        const char *control;   /* the address as given */
        bool control_explicit; /* --control or $ENCLAVE_ACM_CONTROL, not the default */
        struct transport_addr addr;
};

/* Opens the control channel; logs and returns a negative errno on failure. */
_must_check_ int cli_connect(const struct cli_ctx *ctx, struct rpc_client **ret);

/* Logs why a call failed: a lost connection or the daemon's status in words. what names the
 * operation ("Cannot add token 'web'"). Returns CLI_EXIT_FAILED. */
int cli_report_call_error(const struct rpc_client *c, int r, const char *what);

/* Unix time t as "2026-11-23T04:15:41Z" (iso) or "2026-11-23 04:15:41 UTC"; false, with "unknown" in
 * buf, for 0 or a time that does not fit. */
bool cli_format_time(uint64_t t, bool iso, char *buf, size_t size);

struct json_writer;
/* Finishes the document and writes it to stdout: -EIO if that fails, -EINVAL if it nests badly. */
_must_check_ int cli_json_print(struct json_writer *j);

int cli_verb_token_add(int argc, char **argv, const struct cli_ctx *ctx);
int cli_verb_token_remove(int argc, char **argv, const struct cli_ctx *ctx);
int cli_verb_status(int argc, char **argv, const struct cli_ctx *ctx);
int cli_verb_health(int argc, char **argv, const struct cli_ctx *ctx); /* cli-health.c */
int cli_verb_web(int argc, char **argv, const struct cli_ctx *ctx);    /* cli-web.c */

/* cli-attest.c: attestation verify */
int cli_verb_attestation(int argc, char **argv, const struct cli_ctx *ctx);

/* cli-eif.c: eif describe | pcr | build */
int cli_verb_eif(int argc, char **argv, const struct cli_ctx *ctx);

/* cli-object.c: object create (the S3 object of an S3 source, KMS Encrypt) */
int cli_verb_object(int argc, char **argv, const struct cli_ctx *ctx);
