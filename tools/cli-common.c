/* Shared pieces of the enclave-acm CLI: connecting to the control channel and turning errors into words. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/json.h"
#include "common/log.h"
#include "common/p11-errmap.h"
#include "tools/cli.h"

int cli_connect(const struct cli_ctx *ctx, struct rpc_client **ret) {
        int r;

        r = rpc_client_open(&ctx->addr, RPC_CHANNEL_CONTROL, CLI_TIMEOUT_MS,
                            "enclave-acm " ENCLAVE_ACM_VERSION, ret);
        if (r == -ENOENT || r == -ECONNREFUSED)
                return log_error_errno(r,
                                       "Cannot connect to enclave-token at '%s': %m (is the daemon running? "
                                       "use --control or ENCLAVE_ACM_CONTROL to pick another address)",
                                       ctx->control);
        if (r < 0)
                return log_error_errno(r, "Cannot connect to enclave-token at '%s': %m", ctx->control);
        return 0;
}

static const char *status_text(enum rpc_status s) {
        switch (s) {
        case RPC_STATUS_MALFORMED:
                return "the daemon rejected the request as malformed (is it a different version?)";
        case RPC_STATUS_UNSUPPORTED: return "the daemon does not support this key type or parameter";
        case RPC_STATUS_NO_SUCH_TOKEN: return "there is no token with this label";
        case RPC_STATUS_NO_SUCH_KEY: return "there is no such key";
        case RPC_STATUS_PIN_INCORRECT: return "the PIN is wrong";
        case RPC_STATUS_PIN_LOCKED:
                return "too many wrong PINs were tried for this token; wait a minute and try again";
        case RPC_STATUS_NOT_LOGGED_IN: return "not logged in";
        case RPC_STATUS_EXISTS:
                return "a token with this label already exists (add --replace, with its current PIN, to "
                       "replace it)";
        case RPC_STATUS_LIMIT:
                return "a limit of the daemon is reached (--max-tokens, keys per token, or the token's "
                       "objects do not fit in one data frame)";
        case RPC_STATUS_DENIED:
                return "the daemon refuses plaintext private keys: it is not running with --dev";
        case RPC_STATUS_DATA_INVALID:
        case RPC_STATUS_DATA_LEN: return "the daemon rejected the data";
        case RPC_STATUS_KEY_INVALID:
                return "the daemon rejected the key or certificate (unparsable, unsupported, or the key "
                       "does "
                       "not match the leaf certificate)";
        case RPC_STATUS_BAD_VERSION: return "the daemon speaks no protocol version in common with this tool";
        case RPC_STATUS_INTERNAL: return "the daemon hit an internal error (see its log)";
        default: return NULL;
        }
}

int cli_report_call_error(const struct rpc_client *c, int r, const char *what) {
        enum rpc_status s;
        const char *text;

        if (rpc_client_is_broken(c)) {
                log_error_errno(r, "%s: lost the connection to the daemon: %m", what);
                return CLI_EXIT_FAILED;
        }
        s = errmap_status_from_errno(r);
        /* Only an errno that stands for a wire status gets the status text. */
        text = errmap_errno_from_status(s) == r ? status_text(s) : NULL;
        if (text)
                log_error("%s: %s (%s).", what, text, rpc_status_to_string(s));
        else
                log_error_errno(r, "%s: %m", what);
        return CLI_EXIT_FAILED;
}

bool cli_format_time(uint64_t t, bool iso, char *buf, size_t size) {
        time_t tt = (time_t) t;
        struct tm tm;

        if (t == 0 || (uint64_t) tt != t || !gmtime_r(&tt, &tm)) {
                (void) snprintf(buf, size, "unknown");
                return false;
        }
        (void) strftime(buf, size, iso ? "%Y-%m-%dT%H:%M:%SZ" : "%Y-%m-%d %H:%M:%S UTC", &tm);
        return true;
}

int cli_json_print(struct json_writer *j) {
        _cleanup_free_ char *text = NULL;
        size_t len;
        int r;

        r = json_writer_finish(j, &text, &len);
        if (r < 0)
                return r;
        if (fwrite(text, 1, len, stdout) != len || fflush(stdout) != 0)
                return -EIO;
        return 0;
}
