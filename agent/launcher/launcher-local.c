/* The local launcher: enclave-token as a child process serving unix sockets (development, demo, tests). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/launcher/launcher.h"
#include "common/log.h"

#define STOP_WAIT_MS 5000

__attribute__((noreturn)) static void exec_child(const char *const *argv, pid_t parent) {
        sigset_t all;

        /* The agent blocks its signals for signalfd: the child starts with a clean slate. */
        (void) sigemptyset(&all);
        (void) sigprocmask(SIG_SETMASK, &all, NULL);
        for (int sig = 1; sig < NSIG; sig++)
                (void) signal(sig, SIG_DFL);
        /* An agent killed with SIGKILL must not leave the keys behind in an orphan. */
        if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != parent)
                _exit(127);
        execv(argv[0], (char *const *) argv);
        fprintf(stderr, "<3>enclave-acm-agent: cannot run '%s': %s\n", argv[0], strerror(errno));
        _exit(127);
}

int launcher_local_start(struct launcher *l) {
        _cleanup_free_ char *data = NULL, *control = NULL;
        pid_t parent = getpid(), pid;

        if (asprintf(&data, "unix:path=%s/data.sock", l->runtime_dir) < 0 ||
            asprintf(&control, "unix:path=%s/control.sock", l->runtime_dir) < 0)
                return log_error_errno(-ENOMEM, "Out of memory");
        if (access(l->token_binary, X_OK) < 0)
                return log_error_errno(negative_errno(), "Cannot run the token binary '%s': %m",
                                       l->token_binary);

        /* --socket-mode 0666: the web server's workers (www-data, nobody, apache) connect to the
         * data socket. enclave-token creates the control socket 0600 before it listens, so only we
         * (and root) can ever provision. --dev: a File source hands over a plaintext key, which
         * enclave-token only takes in development mode; the local launcher is for development, demos
         * and tests only. */
        const char *argv[] = {
                l->token_binary, "--dev", "--data", data, "--control", control,
                "--socket-mode", "0666",  NULL,     NULL, NULL,
        };
        /* At debug level so is enclave-token (the tests grep both logs for secrets). */
        if (log_get_max_level() >= LOG_DEBUG) {
                argv[8] = "--log-level";
                argv[9] = "debug";
        }
        pid = fork();
        if (pid < 0)
                return log_error_errno(negative_errno(), "Cannot fork: %m");
        if (pid == 0)
                exec_child(argv, parent);

        free(l->data_address);
        free(l->control_address);
        l->data_address = TAKE_PTR(data);
        l->control_address = TAKE_PTR(control);
        l->pid = pid;
        l->running = true;
        log_debug("Started '%s' as pid %d", l->token_binary, (int) pid);
        return 0;
}

bool launcher_local_check(struct launcher *l) {
        int status = 0;
        pid_t p;

        do
                p = waitpid(l->pid, &status, WNOHANG);
        while (p < 0 && errno == EINTR);
        if (p == 0)
                return true;
        if (p < 0)
                log_error_errno(negative_errno(), "Lost track of enclave-token (pid %d): %m", (int) l->pid);
        else if (WIFSIGNALED(status))
                log_error("enclave-token (pid %d) was killed by signal %d (%s)", (int) l->pid,
                          WTERMSIG(status), strsignal(WTERMSIG(status)));
        else
                log_error("enclave-token (pid %d) exited with status %d", (int) l->pid, WEXITSTATUS(status));
        l->pid = 0;
        l->running = false;
        return false;
}

void launcher_local_stop(struct launcher *l) {
        int status;

        if (l->pid <= 0)
                return;
        (void) kill(l->pid, SIGTERM);
        for (int waited = 0; waited < STOP_WAIT_MS; waited += 50) {
                pid_t p = waitpid(l->pid, &status, WNOHANG);
                if (p == l->pid || (p < 0 && errno == ECHILD)) {
                        l->pid = 0;
                        return;
                }
                (void) usleep(50 * 1000);
        }
        log_warning("enclave-token (pid %d) did not stop within %d ms, killing it", (int) l->pid,
                    STOP_WAIT_MS);
        (void) kill(l->pid, SIGKILL);
        (void) waitpid(l->pid, &status, 0);
        l->pid = 0;
}
