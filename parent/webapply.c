/* Safe replacement of one web server config file: temp + fsync + rename, config test, reload, a check
 * that the server survived, rollback. */
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "parent/webapply-internal.h"
#include "parent/webapply.h"

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

/* Put the previous content back after the new one failed the test or the server. */
static int restore(const struct webapply_current *c, const struct webapply_target *t,
                   struct webapply_result *ret) {
        ret->rollback_error = rollback(c, t);
        ret->rolled_back = ret->rollback_error >= 0;
        ret->changed = !ret->rolled_back;
        return ret->rollback_error;
}

/* The server was not running: start it with the tested file (force start), or leave it so. */
static int start_instead(const struct webapply_req *req, const struct webapply_current *c,
                         const struct webapply_target *t, struct webapply_result *ret) {
        int r;

        ret->was_stopped = true;
        if (req->no_start)
                return 1;
        r = webapply_server_start(req, ret);
        if (r < 0) {
                (void) restore(c, t, ret);
                return fail(ret, WEBAPPLY_STEP_START, r);
        }
        ret->started = true;
        return 1;
}

/* The config test passed; httpd's does not load the keys, so the reload may still kill the server. */
static int reload_and_watch(const struct webapply_req *req, const struct webapply_server_state *before,
                            const struct webapply_current *c, const struct webapply_target *t,
                            struct webapply_result *ret) {
        int r;

        int w;

        r = webapply_reload(req, ret);
        /* Even when the reload command failed: it may have failed because the server died of the new
         * file (apachectl reports the parent's exit), and then the same rollback applies. */
        w = webapply_server_watch(req, before);
        if (r < 0 && w != 0)
                return fail(ret, WEBAPPLY_STEP_RELOAD, r);
        if (w < 0)
                return fail(ret, WEBAPPLY_STEP_RELOAD, w);
        if (w > 0) {
                ret->reloaded = true;
                return 1;
        }
        /* Keep a failed reload's own words; the test's "syntax ok" would only confuse (a failing start
         * says its own). */
        if (r >= 0) {
                free(ret->output);
                ret->output = NULL;
        }
        if (restore(c, t, ret) >= 0) {
                ret->start_error = webapply_server_start(req, ret);
                ret->started = ret->start_error >= 0;
        }
        return fail(ret, WEBAPPLY_STEP_SERVER_DIED, -ESRCH);
}

static int apply_steps(const struct webapply_req *req, const struct webapply_current *c,
                       const struct webapply_target *t, struct webapply_result *ret) {
        struct webapply_server_state before = {};
        int r;

        r = webapply_replace(t, req->text, req->text_len, t->mode, t->uid, t->gid);
        if (r < 0)
                return fail(ret, WEBAPPLY_STEP_WRITE, r);
        ret->changed = true;
        r = webapply_config_test(req, ret);
        if (r < 0) {
                (void) restore(c, t, ret);
                return fail(ret, WEBAPPLY_STEP_TEST, r);
        }
        r = webapply_server_probe(req, &before);
        if (r < 0)
                return fail(ret, WEBAPPLY_STEP_RELOAD, r);
        if (!before.running)
                return start_instead(req, c, t, ret);
        return reload_and_watch(req, &before, c, t, ret);
}

static int req_check(const struct webapply_req *req) {
        if (!req || !req->path || !req->path[0] || (!req->text && req->text_len > 0))
                return -EINVAL;
        if (req->text_len > WEBAPPLY_MAX_FILE)
                return -EFBIG;
        if (req->server < 0 || req->server >= _WEBAPPLY_SERVER_MAX || req->control < 0 ||
            req->control >= _WEBAPPLY_CONTROL_MAX)
                return -EINVAL;
        if ((req->test_argv && !req->test_argv[0]) || (req->reload_argv && !req->reload_argv[0]) ||
            (req->start_argv && !req->start_argv[0]))
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
        if (same_text(&c, req) && !req->force) {
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
        [WEBAPPLY_STEP_NONE] = "none",
        [WEBAPPLY_STEP_READ] = "read",
        [WEBAPPLY_STEP_WRITE] = "write",
        [WEBAPPLY_STEP_TEST] = "config test",
        [WEBAPPLY_STEP_RELOAD] = "reload",
        [WEBAPPLY_STEP_START] = "start",
        [WEBAPPLY_STEP_SERVER_DIED] = "server died",
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
