/* Pointing a token's web-server target at its key: the nginx stanza or the httpd Conf edit, applied with webapply. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/target.h"
#include "agent/webapply.h"
#include "common/errmsg.h"
#include "common/p11-uri.h"
#include "httpd/httpdconf.h"
#include "nginx/nginxconf.h"

int target_key_uri(const struct target_key *k, char **ret) {
        uint8_t id[P11URI_U32_ID_MAX];
        const struct p11uri_key key = {
                .token = k->label,
                .id = id,
                .id_len = p11uri_id_from_u32(k->key_id, id),
                .pin_file = k->pin_file,
        };
        size_t len;

        return p11uri_build(&key, ret, &len);
}

int target_nginx_stanza(const struct target_key *k, char **ret_text, size_t *ret_len) {
        _cleanup_free_ char *uri = NULL;
        int r;

        r = target_key_uri(k, &uri);
        if (r < 0)
                return r;
        return nginxconf_stanza_render(&(struct nginxconf_stanza){ .cert_path = k->cert_path, .key_uri = uri },
                                       ret_text, ret_len);
}

/* The server's own commands in direct mode; NULL (webapply's defaults) otherwise. */
struct server_argv {
        const char *test[6];
        const char *reload[7];
};

static void server_argv_fill(const struct agent_config *cfg, struct server_argv *a) {
        const char *conf = cfg->options.server_config;

        *a = (struct server_argv){};
        if (cfg->options.service == AGENT_SERVICE_NGINX) {
                /* "nginx -s reload" signals the master named in the config's pid file. */
                if (conf) {
                        memcpy(a->test, (const char *[]){ "nginx", "-t", "-c", conf, NULL }, 5 * sizeof(char *));
                        memcpy(a->reload, (const char *[]){ "nginx", "-c", conf, "-s", "reload", NULL },
                               6 * sizeof(char *));
                } else {
                        memcpy(a->test, (const char *[]){ "nginx", "-t", NULL }, 3 * sizeof(char *));
                        memcpy(a->reload, (const char *[]){ "nginx", "-s", "reload", NULL }, 4 * sizeof(char *));
                }
        } else if (conf) {
                memcpy(a->test, (const char *[]){ "apachectl", "-f", conf, "-t", NULL }, 5 * sizeof(char *));
                memcpy(a->reload, (const char *[]){ "apachectl", "-f", conf, "-k", "graceful", NULL },
                       6 * sizeof(char *));
        } else {
                memcpy(a->test, (const char *[]){ "apachectl", "-t", NULL }, 3 * sizeof(char *));
                memcpy(a->reload, (const char *[]){ "apachectl", "-k", "graceful", NULL }, 4 * sizeof(char *));
        }
}

static int apply(const struct agent_config *cfg, const char *path, const char *text, size_t len, mode_t mode,
                 const char *user, const char *group, char **ret_error) {
        _cleanup_(webapply_result_done) struct webapply_result res = {};
        struct server_argv a;
        bool direct = cfg->options.server_control == AGENT_SERVER_CONTROL_DIRECT;
        int r;

        server_argv_fill(cfg, &a);
        r = webapply_file(&(struct webapply_req){
                                  .path = path,
                                  .text = text,
                                  .text_len = len,
                                  .mode = mode,
                                  .user = user,
                                  .group = group,
                                  .server = cfg->options.service == AGENT_SERVICE_NGINX ? WEBAPPLY_NGINX
                                                                                        : WEBAPPLY_HTTPD,
                                  .control = direct ? WEBAPPLY_DIRECT : WEBAPPLY_SYSTEMD,
                                  .test_argv = a.test,
                                  .reload_argv = direct ? a.reload : NULL,
                                  .service = cfg->options.service == AGENT_SERVICE_NGINX ? "nginx" : NULL,
                          },
                          &res);
        if (r >= 0)
                return r;
        switch (res.failed) {
        case WEBAPPLY_STEP_TEST:
                return errmsg_set(ret_error, r, "the config test rejected the new '%s'; %s: %s", path,
                            res.rolled_back ? "the previous content is back in place"
                                            : "the rollback failed too, the rejected file may be in place",
                            res.output ?: strerror(-r));
        case WEBAPPLY_STEP_RELOAD:
                return errmsg_set(ret_error, r, "'%s' was updated but the server's reload failed: %s", path,
                            res.output ?: strerror(-r));
        default:
                return errmsg_set(ret_error, r, "cannot %s '%s': %s", webapply_step_to_string(res.failed), path,
                            res.output ?: strerror(-r));
        }
}

static int apply_httpd(const struct agent_config *cfg, const struct agent_config_token *t,
                       const struct target_key *k, char **ret_error) {
        _cleanup_free_ char *uri = NULL, *text = NULL, *out = NULL;
        struct httpdconf_error e = {};
        size_t len, out_len;
        int r;

        r = webapply_read_file(t->target.path, &text, &len);
        if (r < 0)
                return errmsg_set(ret_error, r, "cannot read '%s': %s", t->target.path, strerror(-r));
        r = target_key_uri(k, &uri);
        if (r < 0)
                return errmsg_set(ret_error, r, "cannot build the key's PKCS#11 URI: %s", strerror(-r));
        r = httpdconf_set_cert(text, len, &(struct httpdconf_cert_opts){ .cert_path = k->cert_path, .key_uri = uri },
                               &out, &out_len, &e);
        if (r < 0)
                return errmsg_set(ret_error, r, "%s:%u:%u: %s", t->target.path, e.line, e.column,
                            e.message ?: strerror(-r));
        if (r == 0)
                return 0;
        return apply(cfg, t->target.path, out, out_len, 0, t->target.user, t->target.group, ret_error);
}

int target_apply(const struct agent_config *cfg, const struct agent_config_token *t, const struct target_key *k,
                 char **ret_error) {
        _cleanup_free_ char *text = NULL;
        size_t len;
        int r;

        if (!t->target.present)
                return 0;
        if (cfg->options.service == AGENT_SERVICE_HTTPD)
                return apply_httpd(cfg, t, k, ret_error);
        r = target_nginx_stanza(k, &text, &len);
        if (r < 0)
                return errmsg_set(ret_error, r, "cannot render the nginx stanza: %s", strerror(-r));
        /* Like ACM: 0440 when an owner is named (the file is for that user), else readable by all
         * (it holds no PIN: the PIN is in the pin-source file). */
        return apply(cfg, t->target.path, text, len, t->target.user || t->target.group ? 0440 : 0644,
                     t->target.user, t->target.group, ret_error);
}

int target_ensure_main(const struct agent_config *cfg, char **ret_error) {
        static const char *const env[] = { "OPENSSL_CONF", "ENCLAVE_ACM_ADDRESS", "ENCLAVE_ACM_ADDRESS_FILE", NULL };
        _cleanup_free_ char *text = NULL, *out = NULL;
        const char *path = cfg->options.server_config;
        struct nginxconf_error e = {};
        size_t len, out_len;
        int r;

        if (cfg->options.service != AGENT_SERVICE_NGINX || cfg->options.server_control != AGENT_SERVER_CONTROL_DIRECT ||
            !path)
                return 0;
        r = webapply_read_file(path, &text, &len);
        if (r < 0)
                return errmsg_set(ret_error, r, "cannot read '%s': %s", path, strerror(-r));
        r = nginxconf_ensure_main(text, len, &(struct nginxconf_main_opts){ .env = env }, &out, &out_len, &e);
        if (r < 0)
                return errmsg_set(ret_error, r, "%s:%u:%u: %s", path, e.line, e.column, e.message ?: strerror(-r));
        if (r == 0)
                return 0;
        return apply(cfg, path, out, out_len, 0, NULL, NULL, ret_error);
}
