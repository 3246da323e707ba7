/* Safe replacement of one web server config file: temp + fsync + rename, config test, reload, rollback. */
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent/subprocess.h"
#include "agent/webapply-internal.h"
#include "agent/webapply.h"

/* getpwnam(3): "not found" is NULL with errno 0, ENOENT, ESRCH, EBADF or EPERM, by NSS module. */
static int lookup_error(void) {
        return errno == 0 || errno == ENOENT || errno == ESRCH || errno == EBADF || errno == EPERM ? -ESRCH
                                                                                                   : -errno;
}

static int owner_lookup(const char *user, const char *group, uid_t *uid, gid_t *gid) {
        struct passwd *pw = NULL;
        struct group *gr = NULL;

        errno = 0;
        if (user && !(pw = getpwnam(user)))
                return lookup_error();
        errno = 0;
        if (group && !(gr = getgrnam(group)))
                return lookup_error();
        if (pw)
                *uid = pw->pw_uid;
        if (gr)
                *gid = gr->gr_gid;
        return 0;
}

/* Mode and owner: as requested, else the current file's, else 0644 and the caller's. */
static int target_owner(const struct webapply_req *req, const struct webapply_current *c,
                        struct webapply_target *t) {
        t->mode = req->mode ? req->mode & 07777 : c->fd >= 0 ? c->st.st_mode & 07777 : 0644;
        t->uid = c->fd >= 0 ? c->st.st_uid : geteuid();
        t->gid = c->fd >= 0 ? c->st.st_gid : getegid();
        return owner_lookup(req->user, req->group, &t->uid, &t->gid);
}

static bool same_text(const struct webapply_current *c, const struct webapply_req *req) {
        return c->fd >= 0 && c->len == req->text_len &&
               (c->len == 0 || memcmp(c->text, req->text, c->len) == 0);
}

/* The text is already there: fix mode and owner in place if they differ; nothing to test. */
static int fix_in_place(const struct webapply_current *c, const struct webapply_target *t) {
        if ((c->st.st_uid != t->uid || c->st.st_gid != t->gid) && fchown(c->fd, t->uid, t->gid) < 0)
                return -errno;
        if ((c->st.st_mode & 07777) != t->mode && fchmod(c->fd, t->mode) < 0)
                return -errno;
        return 0;
}

static void fill_command(struct webapply_result *ret, const struct subprocess_result *s) {
        ret->exit_status = s->exit_status;
        ret->term_signal = s->term_signal;
        ret->timed_out = s->timed_out;
}

static int command_verdict(const struct subprocess_result *s) {
        if (s->timed_out)
                return -ETIMEDOUT;
        return subprocess_result_ok(s) ? 0 : -EBADMSG;
}

/* Run one command; its output (masked) becomes the reported one when it fails or when keep. */
static int run_command(const struct webapply_req *req, const char *const *argv, bool keep,
                       struct webapply_result *ret) {
        _cleanup_(subprocess_result_done) struct subprocess_result s = { .exit_status = -1 };
        int r;

        r = subprocess_run(argv, req->timeout_ms, &s);
        if (r < 0)
                return r;
        fill_command(ret, &s);
        r = command_verdict(&s);
        if (r < 0 || keep) {
                free(ret->output);
                ret->output = NULL;
                if (webapply_output_mask(s.output, s.output_len, req->pin, &ret->output) < 0)
                        return -ENOMEM;
        }
        return r;
}

static int read_pid_file(const char *path, pid_t *ret) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        char buf[32] = {}, *end;
        ssize_t n;
        long pid;

        if (fd < 0)
                return -errno;
        n = read(fd, buf, sizeof(buf) - 1);
        if (n < 0)
                return -errno;
        errno = 0;
        pid = strtol(buf, &end, 10);
        if (errno != 0 || end == buf || (*end != '\0' && *end != '\n') || pid <= 1 || pid > INT_MAX)
                return -EBADMSG;
        *ret = (pid_t) pid;
        return 0;
}

static int reload_by_signal(const struct webapply_req *req, struct webapply_result *ret) {
        int sig = req->reload_signal ? req->reload_signal : req->server == WEBAPPLY_NGINX ? SIGHUP : SIGUSR1;
        pid_t pid = 0;
        int r;

        r = read_pid_file(req->pid_file, &pid);
        if (r < 0)
                return r;
        if (kill(pid, sig) < 0)
                return -errno;
        ret->exit_status = 0;
        return 0;
}

static int reload(const struct webapply_req *req, struct webapply_result *ret) {
        static const char *const nginx_reload[] = { "nginx", "-s", "reload", NULL };
        static const char *const httpd_reload[] = { "apachectl", "graceful", NULL };
        const char *systemctl[] = { "systemctl", "reload", req->service, NULL };

        if (req->control == WEBAPPLY_SYSTEMD) {
                if (!systemctl[2])
                        systemctl[2] = req->server == WEBAPPLY_NGINX ? "nginx" : "apache2";
                return run_command(req, systemctl, false, ret);
        }
        if (req->reload_argv)
                return run_command(req, req->reload_argv, false, ret);
        if (req->pid_file)
                return reload_by_signal(req, ret);
        return run_command(req, req->server == WEBAPPLY_NGINX ? nginx_reload : httpd_reload, false, ret);
}

static int config_test(const struct webapply_req *req, struct webapply_result *ret) {
        static const char *const nginx_test[] = { "nginx", "-t", NULL };
        static const char *const httpd_test[] = { "apachectl", "-t", NULL };
        const char *const *argv = req->test_argv;

        if (!argv)
                argv = req->server == WEBAPPLY_NGINX ? nginx_test : httpd_test;
        return run_command(req, argv, true, ret);
}

/* Put the previous content back (or remove a file that did not exist). */
static int rollback(const struct webapply_current *c, const struct webapply_target *t) {
        if (c->fd < 0)
                return webapply_remove(t);
        return webapply_replace(t, c->text, c->len, c->st.st_mode & 07777, c->st.st_uid, c->st.st_gid);
}

static int fail(struct webapply_result *ret, enum webapply_step step, int r) {
        ret->failed = step;
        return r;
}

static int apply_steps(const struct webapply_req *req, const struct webapply_current *c,
                       const struct webapply_target *t, struct webapply_result *ret) {
        int r;

        r = webapply_replace(t, req->text, req->text_len, t->mode, t->uid, t->gid);
        if (r < 0)
                return fail(ret, WEBAPPLY_STEP_WRITE, r);
        ret->changed = true;
        r = config_test(req, ret);
        if (r < 0) {
                ret->rollback_error = rollback(c, t);
                ret->rolled_back = ret->rollback_error >= 0;
                ret->changed = !ret->rolled_back;
                return fail(ret, WEBAPPLY_STEP_TEST, r);
        }
        r = reload(req, ret);
        if (r < 0)
                return fail(ret, WEBAPPLY_STEP_RELOAD, r);
        ret->reloaded = true;
        return 1;
}

static int req_check(const struct webapply_req *req) {
        if (!req || !req->path || !req->path[0] || (!req->text && req->text_len > 0))
                return -EINVAL;
        if (req->text_len > WEBAPPLY_MAX_FILE)
                return -EFBIG;
        if (req->server < 0 || req->server >= _WEBAPPLY_SERVER_MAX || req->control < 0 ||
            req->control >= _WEBAPPLY_CONTROL_MAX)
                return -EINVAL;
        if ((req->test_argv && !req->test_argv[0]) || (req->reload_argv && !req->reload_argv[0]))
                return -EINVAL;
        return 0;
}

int webapply_file(const struct webapply_req *req, struct webapply_result *ret) {
        _cleanup_(webapply_current_done) struct webapply_current c = { .fd = -1 };
        _cleanup_(webapply_target_done) struct webapply_target t = {};
        int r;

        if (!ret)
                return -EINVAL;
        *ret = (struct webapply_result){ .exit_status = -1 };
        r = req_check(req);
        if (r < 0)
                return fail(ret, WEBAPPLY_STEP_READ, r);
        if ((r = webapply_target_resolve(req->path, &t)) < 0 ||
            (r = webapply_current_read(t.path, &c)) < 0 || (r = target_owner(req, &c, &t)) < 0)
                return fail(ret, WEBAPPLY_STEP_READ, r);
        if (same_text(&c, req)) {
                r = fix_in_place(&c, &t);
                return r < 0 ? fail(ret, WEBAPPLY_STEP_WRITE, r) : 0;
        }
        return apply_steps(req, &c, &t, ret);
}

void webapply_result_done(struct webapply_result *r) {
        if (!r)
                return;
        free(r->output);
        *r = (struct webapply_result){ .exit_status = -1 };
}

static const char *const server_names[_WEBAPPLY_SERVER_MAX] = {
        [WEBAPPLY_NGINX] = "nginx",
        [WEBAPPLY_HTTPD] = "httpd",
};

static const char *const control_names[_WEBAPPLY_CONTROL_MAX] = {
        [WEBAPPLY_DIRECT] = "direct",
        [WEBAPPLY_SYSTEMD] = "systemd",
};

static const char *const step_names[_WEBAPPLY_STEP_MAX] = {
        [WEBAPPLY_STEP_NONE] = "none",     [WEBAPPLY_STEP_READ] = "read",
        [WEBAPPLY_STEP_WRITE] = "write",   [WEBAPPLY_STEP_TEST] = "config test",
        [WEBAPPLY_STEP_RELOAD] = "reload",
};

static int name_lookup(const char *const *names, int n, const char *s) {
        for (int i = 0; s && i < n; i++)
                if (strcmp(names[i], s) == 0)
                        return i;
        return -EINVAL;
}

const char *webapply_server_to_string(enum webapply_server s) {
        return s >= 0 && s < _WEBAPPLY_SERVER_MAX ? server_names[s] : NULL;
}

enum webapply_server webapply_server_from_string(const char *s) {
        return (enum webapply_server) name_lookup(server_names, _WEBAPPLY_SERVER_MAX, s);
}

const char *webapply_control_to_string(enum webapply_control c) {
        return c >= 0 && c < _WEBAPPLY_CONTROL_MAX ? control_names[c] : NULL;
}

enum webapply_control webapply_control_from_string(const char *s) {
        return (enum webapply_control) name_lookup(control_names, _WEBAPPLY_CONTROL_MAX, s);
}

const char *webapply_step_to_string(enum webapply_step s) {
        return s >= 0 && s < _WEBAPPLY_STEP_MAX ? step_names[s] : NULL;
}
