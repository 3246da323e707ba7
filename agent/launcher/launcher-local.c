/* The local launcher: enclave-token as a child process serving unix sockets (development, demo, tests). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/launcher/launcher.h"
#include "common/log.h"

#define STOP_WAIT_MS 5000

/* The agent's environment without the AWS credentials it may have been given (AWS_*): enclave-token gets
 * credentials only through KMS_BEGIN, and a child's /proc/PID/environ must not hold them. The strings
 * are the agent's own; only the array is allocated. */
static char **child_environ(void) {
        extern char **environ;
        size_t n = 0, k = 0;
        char **env;

        for (char **e = environ; e && *e; e++)
                n++;
        env = calloc(n + 1, sizeof(*env));
        if (!env)
                return NULL;
        for (char **e = environ; e && *e; e++)
                if (strncmp(*e, "AWS_", 4) != 0)
                        env[k++] = *e;
        return env;
}

__attribute__((noreturn)) static void exec_child(const char *const *argv, char *const *envp, pid_t parent) {
        sigset_t all;

        /* The agent blocks its signals for signalfd: the child starts with a clean slate. */
        (void) sigemptyset(&all);
        (void) sigprocmask(SIG_SETMASK, &all, NULL);
        for (int sig = 1; sig < NSIG; sig++)
                (void) signal(sig, SIG_DFL);
        /* An agent killed with SIGKILL must not leave the keys behind in an orphan. */
        if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != parent)
                _exit(127);
        execve(argv[0], (char *const *) argv, envp);
        fprintf(stderr, "<3>enclave-acm-agent: cannot run '%s': %s\n", argv[0], strerror(errno));
        _exit(127);
}

char **launcher_argv_free(char **argv) {
        for (size_t i = 0; argv && argv[i]; i++)
                free(argv[i]);
        free(argv);
        return NULL;
}

char *launcher_sim_root_path(const struct launcher *l) {
        char *p;

        if (!l->nsm_simulator || asprintf(&p, "%s/%s", l->runtime_dir, LAUNCHER_NSM_SIM_ROOT_FILE) < 0)
                return NULL;
        return p;
}

#define ARGV_MAX (16 + 2 * AGENT_PCR_COUNT)

static const char *slot_suffix(const struct launcher *l) {
        return l->slot ? ".1" : "";
}

static int argv_add(char **argv, size_t *n, const char *fmt, ...) _printf_(3, 4);
static int argv_add(char **argv, size_t *n, const char *fmt, ...) {
        va_list ap;
        int r;

        if (*n + 1 >= ARGV_MAX)
                return -E2BIG;
        va_start(ap, fmt);
        r = vasprintf(&argv[*n], fmt, ap);
        va_end(ap);
        if (r < 0) {
                argv[*n] = NULL;
                return -ENOMEM;
        }
        (*n)++;
        return 0;
}

static int argv_add_pcr(char **argv, size_t *n, unsigned index, const uint8_t *v) {
        char hex[2 * AGENT_PCR_LEN + 1];

        for (size_t i = 0; i < AGENT_PCR_LEN; i++)
                (void) snprintf(hex + 2 * i, 3, "%02x", v[i]);
        return argv_add(argv, n, "%u=%s", index, hex);
}

/* --socket-mode 0666: the web server's workers (www-data, nobody, apache) connect to the data socket.
 * enclave-token creates the control socket 0600 before it listens, so only we (and root) can ever
 * provision. --dev: a File source hands over a plaintext key, which enclave-token only takes in
 * development mode; the local launcher is for development, demos and tests only. The simulated NSM
 * reports the PCRs the agent expects, and writes its root certificate where the agent reads it. */
int launcher_local_argv(const struct launcher *l, bool debug, char ***ret_argv) {
        _cleanup_(launcher_argv_freep) char **argv = calloc(ARGV_MAX, sizeof(char *));
        _cleanup_free_ char *root = NULL;
        size_t n = 0;
        int r;

        if (!argv)
                return -ENOMEM;
        if ((r = argv_add(argv, &n, "%s", l->token_binary)) < 0 || (r = argv_add(argv, &n, "--dev")) < 0 ||
            (r = argv_add(argv, &n, "--data")) < 0 ||
            (r = argv_add(argv, &n, "unix:path=%s/data%s.sock", l->runtime_dir, slot_suffix(l))) < 0 ||
            (r = argv_add(argv, &n, "--control")) < 0 ||
            (r = argv_add(argv, &n, "unix:path=%s/control%s.sock", l->runtime_dir, slot_suffix(l))) < 0 ||
            (r = argv_add(argv, &n, "--socket-mode")) < 0 || (r = argv_add(argv, &n, "0666")) < 0)
                return r;
        if (debug && ((r = argv_add(argv, &n, "--log-level")) < 0 || (r = argv_add(argv, &n, "debug")) < 0))
                return r;
        if (l->nsm_simulator) {
                root = launcher_sim_root_path(l);
                if (!root)
                        return -ENOMEM;
                if ((r = argv_add(argv, &n, "--nsm-simulator")) < 0 ||
                    (r = argv_add(argv, &n, "--nsm-sim-root")) < 0 ||
                    (r = argv_add(argv, &n, "%s", root)) < 0)
                        return r;
                for (unsigned i = 0; i < AGENT_PCR_COUNT; i++) {
                        if (!(l->sim_pcrs.mask & (1u << i)))
                                continue;
                        if ((r = argv_add(argv, &n, "--nsm-sim-pcr")) < 0 ||
                            (r = argv_add_pcr(argv, &n, i, l->sim_pcrs.value[i])) < 0)
                                return r;
                }
        }
        if (l->kms_proxy && ((r = argv_add(argv, &n, "--kms-proxy")) < 0 ||
                             (r = argv_add(argv, &n, "%s", l->kms_proxy)) < 0))
                return r;
        if (l->kms_ca_file &&
            ((r = argv_add(argv, &n, "--kms-ca")) < 0 || (r = argv_add(argv, &n, "%s", l->kms_ca_file)) < 0))
                return r;
        *ret_argv = TAKE_PTR(argv);
        return 0;
}

int launcher_local_start(struct launcher *l) {
        _cleanup_(launcher_argv_freep) char **argv = NULL;
        _cleanup_free_ char *data = NULL, *control = NULL, *root = NULL;
        _cleanup_free_ char **envp = NULL;
        pid_t parent = getpid(), pid;
        int r;

        if (asprintf(&data, "unix:path=%s/data%s.sock", l->runtime_dir, slot_suffix(l)) < 0 ||
            asprintf(&control, "unix:path=%s/control%s.sock", l->runtime_dir, slot_suffix(l)) < 0)
                return log_error_errno(-ENOMEM, "Out of memory");
        if (access(l->token_binary, X_OK) < 0)
                return log_error_errno(negative_errno(), "Cannot run the token binary '%s': %m",
                                       l->token_binary);
        /* At debug level so is enclave-token (the tests grep both logs for secrets). */
        r = launcher_local_argv(l, log_get_max_level() >= LOG_DEBUG, &argv);
        if (r < 0)
                return log_error_errno(r, "Cannot build enclave-token's command line: %m");
        /* A root left by an earlier simulator must not be taken for this one's. */
        root = launcher_sim_root_path(l);
        if (root)
                (void) unlink(root);
        envp = child_environ();
        if (!envp)
                return log_error_errno(-ENOMEM, "Out of memory");

        pid = fork();
        if (pid < 0)
                return log_error_errno(negative_errno(), "Cannot fork: %m");
        if (pid == 0)
                exec_child((const char *const *) argv, envp, parent);

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
        /* SIGCONT: a stopped enclave-token (frozen, as the health check found it) runs its SIGTERM handler
         * and wipes its keys instead of waiting for the SIGKILL. */
        (void) kill(l->pid, SIGTERM);
        (void) kill(l->pid, SIGCONT);
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

/* /proc/net/unix: "Num RefCount Protocol Flags Type St Inode Path"; an accepted connection carries the
 * listening socket's path and state 03 (connected). */
int launcher_local_data_connections(const struct launcher *l) {
        _cleanup_fclose_ FILE *f = NULL;
        _cleanup_free_ char *line = NULL;
        const char *path;
        size_t size = 0;
        int n = 0;

        if (!l->running || !l->data_address || strncmp(l->data_address, "unix:path=", 10) != 0)
                return -EOPNOTSUPP;
        path = l->data_address + 10;
        f = fopen("/proc/net/unix", "re");
        if (!f)
                return -EOPNOTSUPP;
        while (getline(&line, &size, f) > 0) {
                unsigned flags, type, st;
                char p[256];

                if (sscanf(line, "%*s %*s %*s %x %x %x %*s %255s", &flags, &type, &st, p) == 4 && st == 3 &&
                    !(flags & 0x10000) && strcmp(p, path) == 0)
                        n++;
        }
        return n;
}
