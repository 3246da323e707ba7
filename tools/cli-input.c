/* Reading the operator's PIN, private key and certificate chain for `enclave-acm token add/remove`. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "common/log.h"
#include "parent/provision.h"
#include "common/rpc-codec.h"
#include "tools/cli-input.h"

/* The checks live in parent/provision.c (shared with the agent); here its message is logged. */
static int read_file(const char *path, size_t max, const char *what, struct secret_buf **ret) {
        _cleanup_free_ char *error = NULL;
        int r;

        r = provision_read_file(path, max, what, ret, &error);
        if (r < 0)
                return log_error_errno(r, "%s", error ?: "Out of memory");
        return 0;
}

static int check_pin(const struct secret_buf *pin, const char *origin) {
        if (pin->len < RPC_PIN_MIN || pin->len > RPC_PIN_MAX)
                return log_error_errno(-EINVAL, "PIN from %s must be %d to %d bytes long (got %zu)", origin,
                                       RPC_PIN_MIN, RPC_PIN_MAX, pin->len);
        if (memchr(pin->data, '\0', pin->len))
                return log_error_errno(-EINVAL, "PIN from %s contains a NUL byte", origin);
        return 0;
}

int cli_pin_from_arg(char *arg, struct secret_buf **ret) {
        _cleanup_secret_ struct secret_buf *pin = NULL;
        size_t len = strlen(arg);
        int r;

        r = secret_buf_dup(arg, len, &pin);
        secret_wipe(arg, len); /* the copy in argv shows up in ps: blank it */
        if (r < 0)
                return log_error_errno(r, "Cannot store the PIN: %m");
        r = check_pin(pin, "--pin");
        if (r < 0)
                return r;
        *ret = TAKE_PTR(pin);
        return 0;
}

int cli_pin_from_file(const char *path, struct secret_buf **ret) {
        _cleanup_secret_ struct secret_buf *pin = NULL;
        _cleanup_free_ char *origin = NULL;
        int r;

        r = read_file(path, PROVISION_PIN_FILE_MAX, "PIN", &pin);
        if (r < 0)
                return r;
        while (pin->len > 0 && (pin->data[pin->len - 1] == '\n' || pin->data[pin->len - 1] == '\r'))
                pin->data[--pin->len] = 0;
        if (asprintf(&origin, "PIN file '%s'", path) < 0)
                return log_error_errno(-ENOMEM, "Out of memory");
        r = check_pin(pin, origin);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(pin);
        return 0;
}

int cli_load_key_and_chain(const char *key_path, const char *chain_path, struct secret_buf **ret_key,
                           char **ret_chain, size_t *ret_chain_len,
                           struct provision_key_summary *ret_summary) {
        _cleanup_free_ char *error = NULL;
        struct provision_key_summary sum = {};
        int r;

        r = provision_load_key_and_chain(key_path, chain_path, ret_key, ret_chain, ret_chain_len, &sum,
                                         &error);
        if (r < 0)
                return log_error_errno(r, "%s", error ?: "Out of memory");
        *ret_summary = sum;
        return 0;
}
