/* `enclave-acm web apply`, the applying side: render and edit the files, apply them, report. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parent/webapply.h"
#include "common/log.h"
#include "httpd/httpdconf.h"
#include "nginx/nginxconf.h"
#include "tools/cli-web.h"

/* argv for the server's own commands; the strings live in web_args. */
struct web_commands {
        const char *test[5];
        const char *reload[6];
        const char *start[6];
};

static void commands_build(const struct web_args *a, struct web_commands *c) {
        const char *bin = a->binary ? a->binary : a->server == WEBAPPLY_NGINX ? "nginx" : "apachectl";
        const char *conf = a->server == WEBAPPLY_NGINX ? a->main_conf : a->httpd_config;
        const char *flag = a->server == WEBAPPLY_NGINX ? "-c" : "-f";
        size_t t = 0, r = 0, s = 0;

        *c = (struct web_commands){};
        c->test[t++] = bin;
        c->test[t++] = "-t";
        c->reload[r++] = bin;
        c->reload[r++] = a->server == WEBAPPLY_NGINX ? "-s" : conf ? "-k" : "graceful";
        if (a->server == WEBAPPLY_NGINX || conf)
                c->reload[r++] = a->server == WEBAPPLY_NGINX ? "reload" : "graceful";
        /* nginx starts when run without -s; apachectl and apache2 both take -k start. */
        c->start[s++] = bin;
        if (a->server == WEBAPPLY_HTTPD) {
                c->start[s++] = "-k";
                c->start[s++] = "start";
        }
        if (conf) {
                c->test[t++] = c->reload[r++] = c->start[s++] = flag;
                c->test[t++] = c->reload[r++] = c->start[s++] = conf;
        }
}

static void print_output(FILE *f, const char *out) {
        for (const char *p = out; p && *p;) {
                size_t n = strcspn(p, "\n");

                fprintf(f, "    %.*s\n", (int) n, p);
                p += n + (p[n] == '\n');
        }
}

/* What became of the failing command, in words; program NULL: the reload signal to a pid file. */
static char *command_text(const struct webapply_result *r, int err, const char *program) {
        char *t = NULL;
        int n;

        if (r->timed_out)
                n = asprintf(&t, "'%s' did not finish in time and was killed", program);
        else if (r->term_signal > 0)
                n = asprintf(&t, "'%s' was killed by signal %d (SIG%s)", program, r->term_signal,
                             sigabbrev_np(r->term_signal) ?: "?");
        else if (r->exit_status > 0)
                n = asprintf(&t, "'%s' exited with status %d", program, r->exit_status);
        else if (program)
                n = asprintf(&t, "cannot run '%s': %s", program, strerror(-err));
        else
                n = asprintf(&t, "cannot signal the process in the pid file: %s", strerror(-err));
        return n < 0 ? NULL : t;
}

static void report_start_failed(const char *what, const char *path, int r, const struct webapply_result *res,
                                const char *how) {
        const char *why = r == -ESRCH ? "it did not come up or stay up" : how ?: "?";

        if (res->rolled_back)
                log_error(
                        "%s '%s': the config test passed, but the server was not running and did not start "
                        "with the new file (%s); the previous file is back in place, the server stays "
                        "stopped",
                        what, path, why);
        else
                log_error_errno(
                        res->rollback_error,
                        "%s '%s': the config test passed, but the server was not running and did not "
                        "start with the new file (%s), and putting the previous file back failed (%m): "
                        "the new file is in place!",
                        what, path, why);
}

static void report_server_died(const char *what, const char *path, const struct webapply_result *res,
                               const char *how) {
        const char *why = res->start_error == -ESRCH ? "it did not come up or stay up" : how ?: "?";

        if (!res->rolled_back)
                log_error_errno(
                        res->rollback_error,
                        "%s '%s': the config test passed, but the server stopped after the reload, and "
                        "putting the previous file back failed (%m): the server is down and the new "
                        "file is in place!",
                        what, path);
        else if (res->start_error < 0)
                log_error("%s '%s': the config test passed, but the server stopped after the reload; the "
                          "previous file is back in place, but starting the server again failed (%s): the "
                          "server is down!",
                          what, path, why);
        else
                log_error(
                        "%s '%s': the config test passed, but the server stopped after the reload (a config "
                        "test does not always load the keys: is the key in the token?); the previous file "
                        "is back in place and the server was started again",
                        what, path);
}

static void report_failure(const char *what, const char *path, int r, const struct webapply_result *res,
                           const char *program) {
        _cleanup_free_ char *how =
                command_text(res, res->failed == WEBAPPLY_STEP_SERVER_DIED ? res->start_error : r, program);

        fflush(stdout); /* after what was said about the files before this one */
        switch (res->failed) {
        case WEBAPPLY_STEP_TEST:
                if (res->rolled_back)
                        log_error("%s '%s': the config test failed (%s); the previous file is back in place",
                                  what, path, how ?: "?");
                else
                        log_error_errno(
                                res->rollback_error,
                                "%s '%s': the config test failed (%s), and putting the previous file "
                                "back failed too (%m): the rejected file is in place!",
                                what, path, how ?: "?");
                break;
        case WEBAPPLY_STEP_RELOAD:
                log_error("%s '%s': updated and the config test passed, but the reload failed (%s); the new "
                          "file stays and takes effect at the next reload",
                          what, path, how ?: "?");
                break;
        case WEBAPPLY_STEP_START: report_start_failed(what, path, r, res, how); break;
        case WEBAPPLY_STEP_SERVER_DIED: report_server_died(what, path, res, how); break;
        default:
                log_error_errno(r, "%s '%s': cannot %s it: %m", what, path,
                                res->failed == WEBAPPLY_STEP_WRITE ? "replace" : "read");
                break;
        }
        print_output(stderr, res->output);
}

static int dry_run(const char *what, const char *path, const char *text, size_t len) {
        _cleanup_free_ char *cur = NULL;
        size_t cur_len = 0;
        int r;

        r = webapply_read_file(path, &cur, &cur_len);
        if (r < 0 && r != -ENOENT)
                return log_error_errno(r, "%s '%s': cannot read it: %m", what, path);
        printf("%s %s: %s\n", what, path,
               r == -ENOENT                                    ? "would be created"
               : cur_len == len && memcmp(cur, text, len) == 0 ? "unchanged"
                                                               : "would change");
        return 0;
}

/* Which program a failure is about, for command_text(); NULL: the reload signal to a pid file. */
static const char *failed_program(const struct web_args *a, const struct web_commands *cmd,
                                  enum webapply_step step) {
        if (step == WEBAPPLY_STEP_TEST)
                return cmd->test[0];
        if (a->control == WEBAPPLY_SYSTEMD)
                return "systemctl";
        if (step == WEBAPPLY_STEP_START || step == WEBAPPLY_STEP_SERVER_DIED)
                return cmd->start[0];
        return a->pid_file ? NULL : cmd->reload[0];
}

static int apply_file(const struct web_args *a, const char *what, const char *path, const char *text,
                      size_t len, mode_t mode) {
        _cleanup_(webapply_result_done) struct webapply_result res = {};
        struct web_commands cmd;
        struct webapply_req req;
        int r;

        if (a->dry_run)
                return dry_run(what, path, text, len);
        commands_build(a, &cmd);
        req = (struct webapply_req){
                .path = path,
                .text = text,
                .text_len = len,
                .mode = mode,
                .server = a->server,
                .control = a->control,
                .test_argv = cmd.test,
                .reload_argv = a->pid_file || a->control == WEBAPPLY_SYSTEMD ? NULL : cmd.reload,
                .pid_file = a->pid_file ?: a->found_pid_file,
                .start_argv = a->control == WEBAPPLY_SYSTEMD ? NULL : cmd.start,
                .service = a->service,
                .pin = a->pin_mask,
                .timeout_ms = (unsigned) a->timeout_s * 1000u,
                .reload_wait_ms = (unsigned) a->reload_wait_ms,
                .no_start = a->no_start,
        };
        r = webapply_file(&req, &res);
        if (r < 0) {
                report_failure(what, path, r, &res, failed_program(a, &cmd, res.failed));
                return r;
        }
        printf("%s %s: %s\n", what, path,
               r == 0            ? "unchanged"
               : res.started     ? "updated; config test passed; the server was not running: started"
               : res.was_stopped ? "updated; config test passed; the server is not running: left stopped"
                                 : "updated; config test passed; reloaded");
        print_output(stdout, r > 0 ? res.output : NULL);
        return 0;
}

/* An nginx/ or httpd/ editor, its error flattened. */
struct edit_error {
        unsigned line, column;
        const char *message;
};
typedef int (*edit_fn)(const struct web_args *a, const char *text, size_t len, char **ret, size_t *ret_len,
                       struct edit_error *e);

static int edit_nginx_main(const struct web_args *a, const char *text, size_t len, char **ret,
                           size_t *ret_len, struct edit_error *e) {
        const struct nginxconf_main_opts opts = { .engine = a->engine, .env = a->env };
        struct nginxconf_error ne = {};
        int r = nginxconf_ensure_main(text, len, &opts, ret, ret_len, &ne);

        *e = (struct edit_error){ ne.line, ne.column, ne.message };
        return r;
}

static int edit_nginx_site(const struct web_args *a, const char *text, size_t len, char **ret,
                           size_t *ret_len, struct edit_error *e) {
        const struct nginxconf_include_opts opts = {
                .stanza_path = a->stanza,
                .port = (unsigned) a->port,
                .server_name = a->server_name,
                .disable_includes = a->n_disable ? a->disable : NULL,
        };
        struct nginxconf_error ne = {};
        int r = nginxconf_ensure_include(text, len, &opts, ret, ret_len, &ne);

        *e = (struct edit_error){ ne.line, ne.column, ne.message };
        return r;
}

static int edit_httpd(const struct web_args *a, const char *text, size_t len, char **ret, size_t *ret_len,
                      struct edit_error *e) {
        const struct httpdconf_cert_opts opts = {
                .cert_path = a->cert,
                .key_uri = a->uri,
                .port = (unsigned) a->port,
                .server_name = a->server_name,
                .crypto_device = a->engine,
                .skip_crypto_device = a->no_crypto_device,
        };
        struct httpdconf_error he = {};
        int r = httpdconf_set_cert(text, len, &opts, ret, ret_len, &he);

        *e = (struct edit_error){ he.line, he.column, he.message };
        return r;
}

/* Read the file, let the editor rewrite it, apply the result. An editor's refusal is reported at its
 * position in the file. */
static int edit_and_apply(const struct web_args *a, const char *what, const char *path, edit_fn edit) {
        _cleanup_(wipe_freep) char *text = NULL, *out = NULL;
        struct edit_error e = {};
        size_t len, out_len;
        int r;

        r = webapply_read_file(path, &text, &len);
        if (r < 0)
                return log_error_errno(r, "Cannot read '%s': %m", path);
        r = edit(a, text, len, &out, &out_len, &e);
        if (r < 0 && !e.message)
                return log_error_errno(r, "%s: cannot edit it: %m", path);
        if (r < 0 && e.line > 0)
                return log_error_errno(r, "%s:%u:%u: %s", path, e.line, e.column, e.message);
        if (r < 0)
                return log_error_errno(r, "%s: %s", path, e.message);
        return apply_file(a, what, path, out, out_len, 0);
}

static int apply_nginx(const struct web_args *a) {
        _cleanup_(wipe_freep) char *stanza = NULL;
        const struct nginxconf_stanza s = { .cert_path = a->cert, .key_uri = a->uri, .engine = a->engine };
        size_t len;
        int r;

        r = nginxconf_stanza_render(&s, &stanza, &len);
        if (r < 0)
                return log_error_errno(r,
                                       "Cannot render the stanza for '%s': %m (paths may not hold '$' "
                                       "or control characters)",
                                       a->cert);
        /* The stanza first: once it is included, a test of the site file loads the key. A stanza
         * with a pin-value= in it is for root's eyes only. */
        if ((r = apply_file(a, "stanza", a->stanza, stanza, len, a->pin_mask ? 0600 : 0)) < 0 ||
            (a->main_conf && (r = edit_and_apply(a, "nginx.conf", a->main_conf, edit_nginx_main)) < 0) ||
            (a->conf && (r = edit_and_apply(a, "site", a->conf, edit_nginx_site)) < 0))
                return r;
        return 0;
}

/* Direct mode without --pid-file: where the server keeps its pid, so that a server that is not running
 * or that dies at the reload is noticed. *ret stays NULL when not needed. */
static int find_pid_file(const struct web_args *a, char **ret) {
        const char *conf = a->server == WEBAPPLY_NGINX ? a->main_conf : a->httpd_config;
        int r;

        if (a->dry_run || a->pid_file || a->control != WEBAPPLY_DIRECT)
                return 0;
        r = webapply_pid_file_find(a->server, a->binary, conf, (unsigned) a->timeout_s * 1000u, ret);
        if (r < 0)
                return log_error_errno(r,
                                       "web apply: cannot tell where %s keeps its pid file (%s): %m; give "
                                       "--pid-file FILE",
                                       webapply_server_to_string(a->server),
                                       a->server == WEBAPPLY_NGINX ? "pid directive, nginx -V"
                                                                   : "-t -D DUMP_RUN_CFG");
        return 0;
}

int cli_web_apply(const struct web_args *a) {
        _cleanup_free_ char *pid_file = NULL;
        struct web_args b = *a;
        int r;

        r = find_pid_file(a, &pid_file);
        if (r < 0)
                return r;
        b.found_pid_file = pid_file;
        if (b.server == WEBAPPLY_NGINX)
                return apply_nginx(&b);
        return edit_and_apply(&b, "conf", b.conf, edit_httpd);
}
