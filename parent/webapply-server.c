/* The server side of webapply: its commands (config test, reload, start) and whether it runs. */
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "parent/subprocess.h"
#include "parent/webapply-internal.h"
#include "parent/webapply.h"
#include "common/parse-util.h"
#include "common/time-util.h"

/* How often a server is looked at while it is watched or awaited. */
#define WATCH_POLL_MS 50u

static void sleep_ms(uint64_t ms) {
        struct timespec ts = { .tv_sec = (time_t) (ms / 1000u), .tv_nsec = (long) (ms % 1000u) * 1000000L };

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

static const char *unit_of(const struct webapply_req *req) {
        return req->service ?: (req->server == WEBAPPLY_NGINX ? "nginx" : "apache2");
}

static unsigned timeout_of(const struct webapply_req *req) {
        return req->timeout_ms ? req->timeout_ms : SUBPROCESS_DEFAULT_TIMEOUT_MS;
}

int webapply_run_command(const struct webapply_req *req, const char *const *argv, bool keep,
                         struct webapply_result *ret) {
        _cleanup_(subprocess_result_done) struct subprocess_result s = { .exit_status = -1 };
        int r;

        r = subprocess_run(argv, req->timeout_ms, &s);
        if (r < 0)
                return r;
        ret->exit_status = s.exit_status;
        ret->term_signal = s.term_signal;
        ret->timed_out = s.timed_out;
        r = subprocess_result_errno(&s);
        if (r < 0 || keep) {
                free(ret->output);
                ret->output = NULL;
                if (webapply_output_mask(s.output, s.output_len, req->pin, &ret->output) < 0)
                        return -ENOMEM;
        }
        return r;
}

/* -ENODATA for an empty file: `nginx -t` creates the pid file it names, empty, when there is none. */
static int read_pid_file(const char *path, pid_t *ret) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        char buf[32] = {};
        unsigned long pid;
        ssize_t n;

        if (fd < 0)
                return -errno;
        n = read(fd, buf, sizeof(buf) - 1);
        if (n < 0)
                return -errno;
        if (n == 0)
                return -ENODATA;
        buf[n] = '\0';
        buf[strcspn(buf, "\n")] = '\0'; /* the pid file's one line */
        if (parse_unsigned(buf, 10, 2, INT_MAX, &pid) < 0)
                return -EBADMSG;
        *ret = (pid_t) pid;
        return 0;
}

/* The process exists and is not a zombie (dead but not reaped yet: a daemon's parent may be a PID 1
 * that never reaps). Without /proc, kill(0) alone decides. */
static bool pid_alive(pid_t pid) {
        char path[32], buf[128];
        _cleanup_close_ int fd = -1;
        ssize_t n;
        const char *paren;

        if (kill(pid, 0) < 0 && errno != EPERM)
                return false;
        (void) snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) /* gone since kill(), unless there is no /proc at all */
                return errno != ENOENT || access("/proc/self/stat", F_OK) < 0;
        n = read(fd, buf, sizeof(buf));
        if (n <= 0)
                return true;
        /* "pid (comm) S ...": comm may hold ')' itself, so the last one counts. */
        paren = memrchr(buf, ')', (size_t) n);
        return !(paren && paren + 2 < buf + n && paren[2] == 'Z');
}

static int systemctl_active(const struct webapply_req *req) {
        _cleanup_(subprocess_result_done) struct subprocess_result s = { .exit_status = -1 };
        const char *const argv[] = { "systemctl", "is-active", "--quiet", unit_of(req), NULL };
        int r;

        r = subprocess_run(argv, req->timeout_ms, &s);
        if (r < 0)
                return r;
        return s.timed_out ? -ETIMEDOUT : subprocess_result_ok(&s);
}

int webapply_server_probe(const struct webapply_req *req, struct webapply_server_state *ret) {
        pid_t pid = 0;
        int r;

        if (req->control == WEBAPPLY_SYSTEMD) {
                r = systemctl_active(req);
                if (r < 0)
                        return r;
                *ret = (struct webapply_server_state){ .running = r > 0 };
                return 0;
        }
        if (!req->pid_file) {
                *ret = (struct webapply_server_state){ .running = true };
                return 0;
        }
        r = read_pid_file(req->pid_file, &pid);
        if (r < 0 && r != -ENOENT && r != -ENODATA)
                return r;
        *ret = r >= 0 && pid_alive(pid) ? (struct webapply_server_state){ .running = true, .pid = pid }
                                        : (struct webapply_server_state){};
        return 0;
}

/* Still the same server? A pid file being rewritten (empty for a moment) is not a verdict. */
static int survived(const struct webapply_req *req, const struct webapply_server_state *before) {
        pid_t now = 0;
        int r;

        if (req->control == WEBAPPLY_SYSTEMD)
                return systemctl_active(req);
        if (!before->pid)
                return 1;
        r = read_pid_file(req->pid_file, &now);
        if (r == -ENOENT || (r >= 0 && now != before->pid))
                return 0;
        return pid_alive(before->pid);
}

int webapply_server_watch(const struct webapply_req *req, const struct webapply_server_state *before) {
        uint64_t deadline = mono_msec() + req->reload_wait_ms;

        for (;;) {
                uint64_t now;
                int r = survived(req, before);

                if (r <= 0)
                        return r;
                now = mono_msec();
                if (now >= deadline)
                        return 1;
                sleep_ms(MIN(deadline - now, (uint64_t) WATCH_POLL_MS));
        }
}

/* After a start command: a daemon writes its pid file some time after the command returned. */
static int await_running(const struct webapply_req *req, struct webapply_server_state *ret) {
        uint64_t deadline = mono_msec() + timeout_of(req);

        for (;;) {
                int r = webapply_server_probe(req, ret);

                if (r < 0 || ret->running)
                        return r;
                if (mono_msec() >= deadline)
                        return -ESRCH;
                sleep_ms(WATCH_POLL_MS);
        }
}

/* A pid file naming a dead process goes: `apachectl -k start` takes a pid that kill(0) reaches for a
 * running server, and a dead parent stays a zombie until its new parent (PID 1) gets round to it. */
static int stale_pid_file_remove(const struct webapply_req *req) {
        pid_t pid = 0;

        if (req->control != WEBAPPLY_DIRECT || !req->pid_file || read_pid_file(req->pid_file, &pid) < 0 ||
            pid_alive(pid))
                return 0;
        return unlink(req->pid_file) < 0 && errno != ENOENT ? -errno : 0;
}

int webapply_server_start(const struct webapply_req *req, struct webapply_result *ret) {
        static const char *const nginx_start[] = { "nginx", NULL };
        static const char *const httpd_start[] = { "apachectl", "-k", "start", NULL };
        const char *const systemctl[] = { "systemctl", "start", unit_of(req), NULL };
        const char *const *argv = req->start_argv;
        struct webapply_server_state state = {};
        int r;

        if (req->control == WEBAPPLY_SYSTEMD)
                argv = systemctl;
        else if (!argv)
                argv = req->server == WEBAPPLY_NGINX ? nginx_start : httpd_start;
        r = stale_pid_file_remove(req);
        if (r < 0)
                return r;
        r = webapply_run_command(req, argv, false, ret);
        if (r < 0)
                return r;
        r = await_running(req, &state);
        if (r < 0)
                return r;
        r = webapply_server_watch(req, &state);
        return r < 0 ? r : r == 0 ? -ESRCH : 0;
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

int webapply_reload(const struct webapply_req *req, struct webapply_result *ret) {
        static const char *const nginx_reload[] = { "nginx", "-s", "reload", NULL };
        static const char *const httpd_reload[] = { "apachectl", "graceful", NULL };
        const char *const systemctl[] = { "systemctl", "reload", unit_of(req), NULL };

        if (req->control == WEBAPPLY_SYSTEMD)
                return webapply_run_command(req, systemctl, false, ret);
        if (req->reload_argv)
                return webapply_run_command(req, req->reload_argv, false, ret);
        if (req->pid_file)
                return reload_by_signal(req, ret);
        return webapply_run_command(req, req->server == WEBAPPLY_NGINX ? nginx_reload : httpd_reload, false,
                                    ret);
}

int webapply_config_test(const struct webapply_req *req, struct webapply_result *ret) {
        static const char *const nginx_test[] = { "nginx", "-t", NULL };
        static const char *const httpd_test[] = { "apachectl", "-t", NULL };
        const char *const *argv = req->test_argv;

        if (!argv)
                argv = req->server == WEBAPPLY_NGINX ? nginx_test : httpd_test;
        return webapply_run_command(req, argv, true, ret);
}
