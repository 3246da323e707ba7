/* AWS credentials and region from the environment (AWS's standard environment provider). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agent/config/config.h"
#include "agent/creds.h"
#include "common/errmsg.h"
#include "common/rpc-messages.h"

void agent_creds_done(struct agent_creds *c) {
        if (!c)
                return;
        free(c->region);
        free(c->access_key_id);
        secret_buf_free(c->secret_access_key);
        secret_buf_free(c->session_token);
        *c = (struct agent_creds){};
}

/* AKIA... / ASIA...: upper-case letters and digits. */
static bool akid_valid(const char *s) {
        size_t n = strlen(s);

        if (n < RPC_AKID_MIN || n > RPC_AKID_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!(s[i] >= 'A' && s[i] <= 'Z') && !(s[i] >= '0' && s[i] <= '9'))
                        return false;
        return true;
}

/* Printable ASCII without blanks: what SigV4 can carry. Checked without printing the value. */
static bool secret_chars_valid(const char *s, size_t n) {
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) s[i] <= 0x20 || (unsigned char) s[i] >= 0x7f)
                        return false;
        return true;
}

static int load_secret(agent_getenv_fn get, const char *name, size_t max, bool required,
                       struct secret_buf **ret, char **ret_error) {
        const char *v = get(name);
        size_t n = v ? strlen(v) : 0;

        *ret = NULL;
        if (n == 0)
                return required ? errmsg_set(ret_error, -ENOKEY, "%s is not set", name) : 0;
        if (n > max || !secret_chars_valid(v, n))
                return errmsg_set(ret_error, -EINVAL,
                                  "%s is not a valid value (%zu bytes; at most %zu printable characters)",
                                  name, n, max);
        return secret_buf_dup(v, n, ret);
}

int agent_creds_load(agent_getenv_fn get, const char *cfg_region, struct agent_creds *ret,
                     char **ret_error) {
        _cleanup_(agent_creds_done) struct agent_creds c = {};
        const char *akid, *region, *region_from = "options.region";
        int r;

        if (!get)
                get = secure_getenv;
        region = cfg_region;
        if (!region || !*region) {
                region_from = "AWS_REGION";
                region = get("AWS_REGION");
        }
        if (!region || !*region) {
                region_from = "AWS_DEFAULT_REGION";
                region = get("AWS_DEFAULT_REGION");
        }
        if (!region || !*region)
                return errmsg_set(ret_error, -ENOKEY,
                                  "no AWS region: set options.region in the configuration, or AWS_REGION");
        if (!agent_region_valid(region))
                return errmsg_set(ret_error, -EINVAL, "%s '%.*s' is not an AWS region (like us-east-1)",
                                  region_from, (int) MIN(strlen(region), (size_t) 64), region);
        akid = get("AWS_ACCESS_KEY_ID");
        if (!akid || !*akid)
                return errmsg_set(ret_error, -ENOKEY, "AWS_ACCESS_KEY_ID is not set");
        if (!akid_valid(akid))
                return errmsg_set(
                        ret_error, -EINVAL,
                        "AWS_ACCESS_KEY_ID is not an access key id (%d to %d upper-case letters and "
                        "digits)",
                        RPC_AKID_MIN, RPC_AKID_MAX);
        r = load_secret(get, "AWS_SECRET_ACCESS_KEY", RPC_AWS_SECRET_MAX, true, &c.secret_access_key,
                        ret_error);
        if (r < 0)
                return r;
        r = load_secret(get, "AWS_SESSION_TOKEN", RPC_SESSION_TOKEN_MAX, false, &c.session_token, ret_error);
        if (r < 0)
                return r;
        c.region = strdup(region);
        c.access_key_id = strdup(akid);
        if (!c.region || !c.access_key_id)
                return -ENOMEM;
        *ret = c;
        c = (struct agent_creds){};
        return 0;
}
