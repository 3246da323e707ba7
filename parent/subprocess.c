/* Running a helper program from an argv array: no shell, bounded time, captured output. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "parent/subprocess.h"
#include "common/text-edit.h"
#include "common/time-util.h"

extern char **environ;

/* How often a child that closed its output (or left it to a grandchild) is checked on. */
#define SUBPROCESS_POLL_MS 20

struct capture {
        int fd; /* read end, -1 after EOF */
        pid_t pid;
        uint64_t deadline_ms;
        struct text_buf out;
        bool truncated;
};

void subprocess_result_done(struct subprocess_result *r) {
        if (r->output)
                explicit_bzero(r->output, r->output_len);
        free(r->output);
        *r = (struct subprocess_result){ .exit_status = -1 };
}

bool subprocess_result_ok(const struct subprocess_result *r) {
        return !r->timed_out && r->term_signal == 0 && r->exit_status == 0;
}

int subprocess_result_errno(const struct subprocess_result *r) {
        return r->timed_out ? -ETIMEDOUT : subprocess_result_ok(r) ? 0 : -EBADMSG;
}

static int spawn_attrs(posix_spawnattr_t *attr, posix_spawn_file_actions_t *fa, int wfd) {
        sigset_t none, all;
        int r;

        (void) sigemptyset(&none);
        (void) sigfillset(&all);
        if ((r = posix_spawnattr_setflags(attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                                        POSIX_SPAWN_SETPGROUP)) != 0 ||
            (r = posix_spawnattr_setsigmask(attr, &none)) != 0 ||
            (r = posix_spawnattr_setsigdefault(attr, &all)) != 0 ||
            (r = posix_spawnattr_setpgroup(attr, 0)) != 0 ||
            (r = posix_spawn_file_actions_addopen(fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0)) != 0 ||
            (r = posix_spawn_file_actions_adddup2(fa, wfd, STDOUT_FILENO)) != 0 ||
            (r = posix_spawn_file_actions_adddup2(fa, wfd, STDERR_FILENO)) != 0)
                return -r;
        return 0;
}

/* Look the program up ourselves rather than through posix_spawnp(): the error is then -ENOENT
 * everywhere, also where exec failures only show as exit status 127 (valgrind). */
static int find_program(const char *name, char **ret) {
        const char *path = secure_getenv("PATH");

        if (strchr(name, '/')) {
                *ret = strdup(name);
                return !*ret ? -ENOMEM : access(name, X_OK) < 0 ? -errno : 0;
        }
        if (!path || !*path)
                path = "/usr/local/bin:/usr/bin:/bin";
        for (const char *p = path, *end; *p; p = *end ? end + 1 : end) {
                _cleanup_free_ char *full = NULL;

                end = strchrnul(p, ':');
                if (asprintf(&full, "%.*s/%s", end > p ? (int) (end - p) : 1, end > p ? p : ".", name) < 0)
                        return -ENOMEM;
                if (access(full, X_OK) == 0) {
                        *ret = TAKE_PTR(full);
                        return 0;
                }
        }
        return -ENOENT;
}

static int start(const char *const *argv, int wfd, pid_t *ret_pid) {
        _cleanup_free_ char *program = NULL;
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t attr;
        int r;

        r = find_program(argv[0], &program);
        if (r < 0)
                return r;
        if (posix_spawnattr_init(&attr) != 0)
                return -ENOMEM;
        if (posix_spawn_file_actions_init(&fa) != 0) {
                (void) posix_spawnattr_destroy(&attr);
                return -ENOMEM;
        }
        r = spawn_attrs(&attr, &fa, wfd);
        if (r == 0)
                r = -posix_spawn(ret_pid, program, &fa, &attr, (char *const *) argv, environ);
        (void) posix_spawn_file_actions_destroy(&fa);
        (void) posix_spawnattr_destroy(&attr);
        return r;
}

/* Keep the first SUBPROCESS_MAX_OUTPUT bytes; read and drop the rest so the child never blocks on us.
 * Returns 1 when bytes came, 0 at EOF (fd closed) or when none are there yet, or a negative errno. */
static int capture_read(struct capture *c) {
        char chunk[4096];
        ssize_t n = read(c->fd, chunk, sizeof(chunk));
        size_t keep;
        int r;

        if (n < 0)
                return errno == EINTR || errno == EAGAIN ? 0 : -errno;
        if (n == 0) {
                c->fd = safe_close(c->fd);
                return 0;
        }
        keep = MIN((size_t) n, SUBPROCESS_MAX_OUTPUT - MIN(c->out.n, SUBPROCESS_MAX_OUTPUT));
        c->truncated = c->truncated || keep < (size_t) n;
        r = text_buf_put(&c->out, chunk, keep); /* reserved up front: no realloc leaves copies */
        explicit_bzero(chunk, (size_t) n);
        return r < 0 ? r : 1;
}

/* Wait for output or SUBPROCESS_POLL_MS, whichever comes first, and read what came. */
static int capture_step(struct capture *c, uint64_t left_ms) {
        struct pollfd p = { .fd = c->fd, .events = POLLIN };
        int n;

        n = poll(&p, c->fd >= 0 ? 1 : 0, (int) MIN(left_ms, (uint64_t) SUBPROCESS_POLL_MS));
        if (n < 0)
                return errno == EINTR ? 0 : -errno;
        if (n > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR)))
                return capture_read(c);
        return 0;
}

/* After the child exited: take what is already in the pipe, but do not wait for a grandchild
 * (a daemon started by apachectl) that may hold the write end for ever. */
static int capture_drain(struct capture *c) {
        int r = 0;

        if (c->fd >= 0 && fcntl(c->fd, F_SETFL, O_NONBLOCK) < 0)
                return -errno;
        while (c->fd >= 0 && (r = capture_read(c)) > 0)
                ;
        return r;
}

static int wait_child(struct capture *c, struct subprocess_result *res) {
        int status = 0, r;

        for (;;) {
                uint64_t now = mono_msec();
                pid_t p;

                if (now >= c->deadline_ms) {
                        (void) kill(-c->pid, SIGKILL);
                        res->timed_out = true;
                        while ((p = waitpid(c->pid, &status, 0)) < 0 && errno == EINTR)
                                ;
                        break;
                }
                r = capture_step(c, c->deadline_ms - now);
                if (r < 0)
                        return r;
                p = waitpid(c->pid, &status, WNOHANG);
                if (p < 0 && errno != EINTR)
                        return -errno;
                if (p == c->pid) {
                        r = capture_drain(c);
                        if (r < 0)
                                return r;
                        break;
                }
        }
        res->exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        res->term_signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
        return 0;
}

static int run(const char *const *argv, unsigned timeout_ms, struct capture *c,
               struct subprocess_result *res) {
        int fds[2], r;

        r = text_buf_reserve(&c->out, SUBPROCESS_MAX_OUTPUT);
        if (r < 0)
                return r;
        if (pipe2(fds, O_CLOEXEC) < 0)
                return -errno;
        r = start(argv, fds[1], &c->pid);
        (void) safe_close(fds[1]);
        c->fd = fds[0];
        if (r < 0)
                return r;
        c->deadline_ms = mono_msec() + (timeout_ms ? timeout_ms : SUBPROCESS_DEFAULT_TIMEOUT_MS);
        r = wait_child(c, res);
        if (r < 0) {
                /* Something broke on our side: do not leave the child running or unreaped. */
                (void) kill(-c->pid, SIGKILL);
                (void) waitpid(c->pid, NULL, 0);
        }
        return r;
}

int subprocess_run(const char *const *argv, unsigned timeout_ms, struct subprocess_result *ret) {
        struct subprocess_result res = { .exit_status = -1 };
        struct capture c = { .fd = -1 };
        int r;

        if (!argv || !argv[0] || !argv[0][0] || !ret)
                return -EINVAL;
        r = run(argv, timeout_ms, &c, &res);
        c.fd = safe_close(c.fd);
        if (r >= 0)
                r = text_buf_put(&c.out, "", 0); /* never NULL, always terminated */
        if (r < 0) {
                text_buf_wipe(&c.out);
                return r;
        }
        res.output = c.out.p;
        res.output_len = c.out.n;
        res.truncated = c.truncated;
        *ret = res;
        return 0;
}
