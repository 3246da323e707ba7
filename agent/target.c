/* Pointing a token's web-server target at its key: the nginx stanza or the httpd Conf edit, applied with
 * webapply. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/metrics.h"
#include "agent/target.h"
#include "parent/webapply.h"
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
        return nginxconf_stanza_render(
                &(struct nginxconf_stanza){ .cert_path = k->cert_path, .key_uri = uri }, ret_text, ret_len);
}

/* The server's own commands in direct mode; NULL (webapply's defaults) otherwise. */
struct server_argv {
        const char *test[6];
        const char *reload[7];
        const char *start[6];
};

#define ARGV_SET(a, ...)                                                  \
        do {                                                              \
                const char *_v[] = { __VA_ARGS__, NULL };                 \
                _Static_assert(sizeof(_v) <= sizeof(a), "argv too long"); \
                memcpy((a), _v, sizeof(_v));                              \
        } while (0)

static void server_argv_fill(const struct agent_config *cfg, struct server_argv *a) {
        const char *conf = cfg->options.server_config;

        *a = (struct server_argv){};
        if (cfg->options.service == AGENT_SERVICE_NGINX) {
                /* "nginx -s reload" signals the master named in the config's pid file. */
                if (conf) {
                        ARGV_SET(a->test, "nginx", "-t", "-c", conf);
                        ARGV_SET(a->reload, "nginx", "-c", conf, "-s", "reload");
                        ARGV_SET(a->start, "nginx", "-c", conf);
                } else {
                        ARGV_SET(a->test, "nginx", "-t");
                        ARGV_SET(a->reload, "nginx", "-s", "reload");
                        ARGV_SET(a->start, "nginx");
                }
        } else if (conf) {
                ARGV_SET(a->test, "apachectl", "-f", conf, "-t");
                ARGV_SET(a->reload, "apachectl", "-f", conf, "-k", "graceful");
                ARGV_SET(a->start, "apachectl", "-f", conf, "-k", "start");
        } else {
                ARGV_SET(a->test, "apachectl", "-t");
                ARGV_SET(a->reload, "apachectl", "-k", "graceful");
                ARGV_SET(a->start, "apachectl", "-k", "start");
        }
}

/* Direct mode: the pid file that tells whether the server runs, as configured or as the server finds it. */
static int server_pid_file(const struct agent_config *cfg, char **ret, char **ret_error) {
        bool nginx = cfg->options.service == AGENT_SERVICE_NGINX;
        int r;

        *ret = NULL;
        if (cfg->options.server_control != AGENT_SERVER_CONTROL_DIRECT)
                return 0;
        if (cfg->options.server_pid_file) {
                *ret = strdup(cfg->options.server_pid_file);
                return *ret ? 0 : errmsg_set(ret_error, -ENOMEM, "out of memory");
        }
        r = webapply_pid_file_find(nginx ? WEBAPPLY_NGINX : WEBAPPLY_HTTPD, NULL, cfg->options.server_config,
                                   0, ret);
        if (r < 0)
                return errmsg_set(
                        ret_error, r,
                        "cannot tell where %s keeps its pid file (%s): %s; set options.server_pid_file",
                        nginx ? "nginx" : "httpd",
                        nginx ? "its config's pid directive, nginx -V" : "apachectl -t -D DUMP_RUN_CFG",
                        strerror(-r));
        return 0;
}

/* Why a start failed: the command's output, or that the server did not show up (-ESRCH). */
static const char *start_failure(const struct webapply_result *res, int r) {
        return res->output ?: r == -ESRCH ? "it did not come up or stay up" : strerror(-r);
}

/* What webapply_file() said when it failed, in one line. */
static int apply_error(const char *path, int r, const struct webapply_result *res, char **ret_error) {
        const char *out = res->output ?: strerror(-r);

        switch (res->failed) {
        case WEBAPPLY_STEP_TEST:
                return errmsg_set(ret_error, r, "the config test rejected the new '%s'; %s: %s", path,
                                  res->rolled_back
                                          ? "the previous content is back in place"
                                          : "the rollback failed too, the rejected file may be in place",
                                  out);
        case WEBAPPLY_STEP_RELOAD:
                return errmsg_set(ret_error, r, "'%s' was updated but the server's reload failed: %s", path,
                                  out);
        case WEBAPPLY_STEP_START:
                return errmsg_set(
                        ret_error, r,
                        "the server was not running and did not start with the new '%s'; %s: %s", path,
                        res->rolled_back ? "the previous content is back in place, the server stays stopped"
                                         : "the rollback failed too, the new file may be in place",
                        start_failure(res, r));
        case WEBAPPLY_STEP_SERVER_DIED:
                if (!res->rolled_back)
                        return errmsg_set(
                                ret_error, r,
                                "the server stopped after the reload with the new '%s', and putting the "
                                "previous content back failed (%s): the server is down",
                                path, strerror(-res->rollback_error));
                if (res->start_error < 0)
                        return errmsg_set(
                                ret_error, r,
                                "the server stopped after the reload with the new '%s'; the previous "
                                "content is back in place but starting the server again failed: %s",
                                path, start_failure(res, res->start_error));
                return errmsg_set(
                        ret_error, r,
                        "the server stopped after the reload with the new '%s' (its config test does not "
                        "load keys: is the key in the token?); the previous content is back in place "
                        "and the server was started again",
                        path);
        default:
                return errmsg_set(ret_error, r, "cannot %s '%s': %s", webapply_step_to_string(res->failed),
                                  path, out);
        }
}

static int apply(const struct agent_config *cfg, const char *path, const char *text, size_t len, mode_t mode,
                 const char *user, const char *group, bool force, char **ret_error) {
        _cleanup_(webapply_result_done) struct webapply_result res = {};
        _cleanup_free_ char *pid_file = NULL;
        struct server_argv a;
        bool direct = cfg->options.server_control == AGENT_SERVER_CONTROL_DIRECT;
        bool nginx = cfg->options.service == AGENT_SERVICE_NGINX;
        int r;

        r = server_pid_file(cfg, &pid_file, ret_error);
        if (r < 0)
                return r;
        server_argv_fill(cfg, &a);
        r = webapply_file(
                &(struct webapply_req){
                        .path = path,
                        .text = text,
                        .text_len = len,
                        .mode = mode,
                        .user = user,
                        .group = group,
                        .server = nginx ? WEBAPPLY_NGINX : WEBAPPLY_HTTPD,
                        .control = direct ? WEBAPPLY_DIRECT : WEBAPPLY_SYSTEMD,
                        .test_argv = a.test,
                        .reload_argv = direct ? a.reload : NULL,
                        .start_argv = direct ? a.start : NULL,
                        .pid_file = pid_file,
                        .service = nginx ? "nginx" : NULL,
                        .reload_wait_ms = (unsigned) MIN(cfg->options.reload_wait_ms, (uint64_t) UINT_MAX),
                        .no_start = !cfg->options.force_start,
                        .force = force,
                },
                &res);
        if (res.rolled_back)
                agent_metrics_count(AGENT_METRICS_ROLLBACKS);
        if (r > 0 && (!res.was_stopped || res.started))
                agent_metrics_count(AGENT_METRICS_RELOADS);
        if (r < 0)
                return apply_error(path, r, &res, ret_error);
        if (r == 0)
                return TARGET_UNCHANGED;
        return res.was_stopped ? (res.started ? TARGET_STARTED : TARGET_NOT_RUNNING) : TARGET_RELOADED;
}

/* The text t's target file gets for k and 1, or 0 and the current text when the file already says so
 * (httpd). */
static int render(const struct agent_config_token *t, enum agent_service service, const struct target_key *k,
                  char **ret_text, size_t *ret_len, char **ret_error) {
        _cleanup_free_ char *uri = NULL, *text = NULL;
        struct httpdconf_error e = {};
        size_t len;
        int r;

        if (service != AGENT_SERVICE_HTTPD) {
                r = target_nginx_stanza(k, ret_text, ret_len);
                if (r < 0)
                        return errmsg_set(ret_error, r, "cannot render the nginx stanza: %s", strerror(-r));
                return 1;
        }
        r = webapply_read_file(t->target.path, &text, &len);
        if (r < 0)
                return errmsg_set(ret_error, r, "cannot read '%s': %s", t->target.path, strerror(-r));
        r = target_key_uri(k, &uri);
        if (r < 0)
                return errmsg_set(ret_error, r, "cannot build the key's PKCS#11 URI: %s", strerror(-r));
        r = httpdconf_set_cert(text, len,
                               &(struct httpdconf_cert_opts){ .cert_path = k->cert_path, .key_uri = uri },
                               ret_text, ret_len, &e);
        if (r < 0)
                return errmsg_set(ret_error, r, "%s:%u:%u: %s", t->target.path, e.line, e.column,
                                  e.message ?: strerror(-r));
        return r > 0 ? 1 : 0;
}

const char *target_outcome_to_string(int outcome) {
        switch (outcome) {
        case TARGET_UNCHANGED: return "left as it was";
        case TARGET_RELOADED: return "reloaded gracefully";
        case TARGET_NOT_RUNNING: return "was not running and is left stopped (force_start: false)";
        case TARGET_STARTED: return "was not running and was started";
        default: return "in an unknown state";
        }
}

int target_apply(const struct agent_config *cfg, const struct agent_config_token *t,
                 const struct target_key *k, bool force, char **ret_error) {
        _cleanup_free_ char *text = NULL;
        size_t len;
        int r;

        if (!t->target.present)
                return 0;
        r = render(t, cfg->options.service, k, &text, &len, ret_error);
        if (r < 0 || (r == 0 && !force))
                return r;
        /* Like ACM for a stanza: 0440 when an owner is named (the file is for that user), else readable
         * by all (it holds no PIN: the PIN is in the pin-source file). httpd: the current file's mode. */
        return apply(cfg, t->target.path, text, len,
                     cfg->options.service == AGENT_SERVICE_HTTPD ? 0
                     : t->target.user || t->target.group         ? 0440
                                                                 : 0644,
                     t->target.user, t->target.group, force, ret_error);
}

int target_check_writable(const struct agent_config *cfg, const struct agent_config_token *t,
                          const struct target_key *k, char **ret_error) {
        _cleanup_free_ char *text = NULL;
        size_t len;
        int r;

        if (!t->target.present)
                return 0;
        r = render(t, cfg->options.service, k, &text, &len, ret_error);
        if (r > 0 && (r = webapply_probe_write(t->target.path, text, len)) < 0)
                return errmsg_set(ret_error, r, "cannot write a file next to '%s': %s", t->target.path,
                                  strerror(-r));
        return MIN(r, 0);
}

int target_ensure_main(const struct agent_config *cfg, char **ret_error) {
        static const char *const env[] = { "OPENSSL_CONF", "ENCLAVE_ACM_ADDRESS", "ENCLAVE_ACM_ADDRESS_FILE",
                                           NULL };
        _cleanup_free_ char *text = NULL, *out = NULL;
        const char *path = cfg->options.server_config;
        struct nginxconf_error e = {};
        size_t len, out_len;
        int r;

        if (cfg->options.service != AGENT_SERVICE_NGINX ||
            cfg->options.server_control != AGENT_SERVER_CONTROL_DIRECT || !path)
                return 0;
        r = webapply_read_file(path, &text, &len);
        if (r < 0)
                return errmsg_set(ret_error, r, "cannot read '%s': %s", path, strerror(-r));
        r = nginxconf_ensure_main(text, len, &(struct nginxconf_main_opts){ .env = env }, &out, &out_len,
                                  &e);
        if (r < 0)
                return errmsg_set(ret_error, r, "%s:%u:%u: %s", path, e.line, e.column,
                                  e.message ?: strerror(-r));
        if (r == 0)
                return 0;
        return apply(cfg, path, out, out_len, 0, NULL, NULL, false, ret_error);
}
