/* enclave-init: PID 1 of the enclave image. Mounts the API file systems, brings up loopback, loads
 * nsm.ko when the image has it, tells the Nitro hypervisor the enclave booted (one byte 0xB7 to CID 3
 * port 9000, answered 0xB7: NITRO-FORMATS.md section 8), starts enclave-token on vsock ports 9999 and
 * 10000, reaps every child and powers the enclave off when enclave-token dies (the agent relaunches it).
 *
 * With "enclave_acm.selfcheck=1" on the kernel command line (which changes PCR0, so a production image
 * can never be in this mode) it serves on unix sockets instead of vsock, skips the ready signal (QEMU 7.2
 * has no vsock for it), checks that enclave-token answers PING and DESCRIBE on its control channel,
 * prints one line saying so on the console and powers off: the QEMU boot test reads that line.
 *
 * As a plain process (not PID 1: tests) it only starts enclave-token, reaps, forwards SIGTERM and
 * exits with enclave-token's status instead of powering off. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/vm_sockets.h>
#include <net/if.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/rpc-client.h"
#include "common/rpc-messages.h"
#include "common/transport.h"

#define READY_CID      3
#define READY_PORT     9000
#define READY_BYTE     0xB7
#define NSM_MODULE     "/nsm.ko"
#define SELFCHECK_SECS 60
#define SELFCHECK_DATA "unix:path=/run/enclave-acm/data.sock"
#define SELFCHECK_CTRL "unix:path=/run/enclave-acm/control.sock"
#define PROD_DATA      "vsock:port=9999"
#define PROD_CTRL      "vsock:port=10000"

static const char *arg_token = "/usr/bin/enclave-token";
static const char *arg_data, *arg_control;
static bool arg_selfcheck;

static bool is_pid1(void) {
        return getpid() == 1;
}

/* Never returns: PID 1 powers the machine off, a plain process exits. */
static _Noreturn void finish(int status) {
        if (!is_pid1())
                exit(status);
        sync();
        (void) reboot(RB_POWER_OFF);
        for (;;)
                pause();
}

static void mount_one(const char *what, const char *where, const char *type, unsigned long flags,
                      const char *data) {
        (void) mkdir(where, 0755);
        if (mount(what, where, type, flags, data) < 0 && errno != EBUSY)
                log_warning_errno(negative_errno(), "Cannot mount %s on %s: %m, ignoring", type, where);
}

static void mount_api(void) {
        mount_one("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
        mount_one("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
        mount_one("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
        mount_one("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
        mount_one("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
}

/* The kernel hands PID 1 /dev/console only if the initramfs has the node; devtmpfs has it now. */
static void console_open(void) {
        int fd = open("/dev/console", O_RDWR | O_NOCTTY | O_CLOEXEC);

        if (fd < 0)
                return;
        for (int i = 0; i < 3; i++)
                (void) dup2(fd, i); /* dup2() clears FD_CLOEXEC on the copies */
        if (fd > 2)
                (void) close(fd);
}

static void loopback_up(void) {
        struct ifreq ifr = {};
        int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

        if (fd < 0) {
                log_warning_errno(negative_errno(), "No IPv4 socket for loopback: %m, ignoring");
                return;
        }
        (void) snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
        if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0 ||
            (ifr.ifr_flags |= IFF_UP, ioctl(fd, SIOCSIFFLAGS, &ifr) < 0))
                log_warning_errno(negative_errno(), "Cannot bring up lo: %m, ignoring");
        (void) close(fd);
}

/* Linux >= 6.8 has the NSM driver built in; older kernels get nsm.ko from the image (as nitro-cli's). */
static void nsm_load(void) {
        int fd = open(NSM_MODULE, O_RDONLY | O_CLOEXEC);

        if (fd < 0)
                return;
        if (syscall(SYS_finit_module, fd, "", 0) < 0 && errno != EEXIST)
                log_error_errno(negative_errno(), "Cannot load %s: %m (attestation will be unavailable)",
                                NSM_MODULE);
        else
                log_info("Loaded %s", NSM_MODULE);
        (void) close(fd);
}

static bool cmdline_has(const char *word) {
        char buf[4096];
        ssize_t n;
        int fd = open("/proc/cmdline", O_RDONLY | O_CLOEXEC);

        if (fd < 0)
                return false;
        n = read(fd, buf, sizeof(buf) - 1);
        (void) close(fd);
        if (n <= 0)
                return false;
        buf[n] = '\0';
        for (char *save = NULL, *w = strtok_r(buf, " \t\n", &save); w; w = strtok_r(NULL, " \t\n", &save))
                if (strcmp(w, word) == 0)
                        return true;
        return false;
}

/* The heartbeat the hypervisor waits for before it reports the enclave running. */
static int ready_signal(void) {
        struct sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_cid = READY_CID, .svm_port = READY_PORT };
        struct timeval tv = { .tv_sec = 10 };
        uint8_t b = READY_BYTE;
        int fd, r = 0;

        fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return log_error_errno(negative_errno(), "No vsock socket for the ready signal: %m");
        (void) setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        (void) setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 || write(fd, &b, 1) != 1 ||
            read(fd, &b, 1) != 1)
                r = log_error_errno(negative_errno(), "Ready signal to CID %d port %d failed: %m", READY_CID,
                                    READY_PORT);
        else if (b != READY_BYTE)
                r = log_error_errno(-EPROTO, "Ready signal answered 0x%02x, expected 0x%02x", b, READY_BYTE);
        (void) close(fd);
        return r;
}

static pid_t spawn_token(const sigset_t *old) {
        char *const argv[] = { (char *) arg_token,   (char *) "--data",    (char *) arg_data,
                               (char *) "--control", (char *) arg_control, NULL };
        char *const envp[] = { (char *) "PATH=/usr/bin:/bin",
                               (char *) "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt", NULL };
        pid_t pid = fork();

        if (pid < 0)
                return log_error_errno(negative_errno(), "Cannot fork enclave-token: %m");
        if (pid == 0) {
                (void) sigprocmask(SIG_SETMASK, old, NULL);
                (void) setsid();
                execve(arg_token, argv, is_pid1() ? envp : environ);
                log_error_errno(negative_errno(), "Cannot run '%s': %m", arg_token);
                _exit(127);
        }
        log_info("Started %s (pid %d) on %s and %s", arg_token, (int) pid, arg_data, arg_control);
        return pid;
}

/* The self-check: enclave-token answers PING and DESCRIBE on its control channel. Runs in a child. */
static int selfcheck(void) {
        _cleanup_(rpc_client_freep) struct rpc_client *c = NULL;
        struct rpc_page_resp page = {};
        struct transport_addr addr;
        int r = -ENOENT;

        if (transport_addr_parse(arg_control, &addr) < 0)
                return -EINVAL;
        for (int i = 0; i < SELFCHECK_SECS * 10 && r < 0; i++) {
                r = rpc_client_open(&addr, RPC_CHANNEL_CONTROL, 5000, "enclave-init", &c);
                if (r < 0)
                        (void) nanosleep(&(struct timespec){ .tv_nsec = 100 * 1000 * 1000 }, NULL);
        }
        if (r < 0)
                return log_error_errno(r, "enclave-acm selfcheck: FAILED: no answer on %s: %m", arg_control);
        r = rpc_client_call_msg(c, RPC_CALL_PING, NULL, NULL);
        if (r < 0)
                return log_error_errno(r, "enclave-acm selfcheck: FAILED: PING: %m");
        r = rpc_client_call_msg(c, RPC_CALL_DESCRIBE, &(struct rpc_page_req){}, &page);
        if (r < 0)
                return log_error_errno(r, "enclave-acm selfcheck: FAILED: DESCRIBE: %m");
        printf("enclave-acm selfcheck: enclave-token answers PING and DESCRIBE (%u tokens)\n",
               page.n_tokens_total);
        fflush(stdout);
        rpc_page_resp_done(&page);
        return 0;
}

static pid_t spawn_selfcheck(const sigset_t *old) {
        pid_t pid = fork();

        if (pid < 0)
                return log_error_errno(negative_errno(), "Cannot fork the self-check: %m");
        if (pid == 0) {
                (void) sigprocmask(SIG_SETMASK, old, NULL);
                _exit(selfcheck() < 0 ? 1 : 0);
        }
        return pid;
}

static int exit_status(int status) {
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Reaps every child; returns when enclave-token (or, in self-check mode, the check) has ended. */
static int supervise(pid_t token, pid_t check, const sigset_t *mask) {
        bool stopping = false;
        int check_status = 0;

        for (;;) {
                siginfo_t si;
                int status;
                pid_t pid;

                if (sigwaitinfo(mask, &si) < 0)
                        continue;
                if (si.si_signo == SIGTERM || si.si_signo == SIGINT) {
                        log_info("Signal %d: stopping enclave-token", si.si_signo);
                        stopping = true;
                        (void) kill(token, SIGTERM);
                        continue;
                }
                while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
                        if (pid == token) {
                                if (stopping)
                                        log_info("enclave-token stopped (status %d)", exit_status(status));
                                else
                                        log_error("enclave-token exited (status %d): powering off",
                                                  exit_status(status));
                                if (stopping)
                                        return check_status;
                                return exit_status(status) ? exit_status(status) : 1;
                        }
                        if (pid == check) {
                                check_status = exit_status(status);
                                log_info("Self-check done (status %d): stopping enclave-token",
                                         check_status);
                                (void) kill(token, SIGTERM);
                                stopping = true;
                                check = 0;
                        }
                }
        }
}

static int parse_argv(int argc, char **argv) {
        enum { ARG_TOKEN = 0x100, ARG_DATA, ARG_CONTROL, ARG_SELFCHECK };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "token", required_argument, NULL, ARG_TOKEN },
                { "data", required_argument, NULL, ARG_DATA },
                { "control", required_argument, NULL, ARG_CONTROL },
                { "selfcheck", no_argument, NULL, ARG_SELFCHECK },
                {},
        };
        int c;

        /* The kernel passes PID 1 the command line's unknown words: as PID 1, ignore them. */
        if (is_pid1())
                return 1;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        printf("Usage: enclave-init [--token PATH] [--data ADDR] [--control ADDR] "
                               "[--selfcheck]\n"
                               "PID 1 of the enclave image; as a plain process it only supervises "
                               "enclave-token.\n");
                        return 0;
                case ARG_TOKEN: arg_token = optarg; break;
                case ARG_DATA: arg_data = optarg; break;
                case ARG_CONTROL: arg_control = optarg; break;
                case ARG_SELFCHECK: arg_selfcheck = true; break;
                default: return -EINVAL;
                }
        }
        return optind < argc ? -EINVAL : 1;
}

int main(int argc, char **argv) {
        sigset_t mask, old;
        pid_t token, check = 0;
        int r;

        r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? 2 : 0;
        if (!is_pid1())
                /* Orphans of enclave-token are ours to reap, as they would be PID 1's. */
                (void) prctl(PR_SET_CHILD_SUBREAPER, 1);
        else {
                mount_api();
                console_open();
                loopback_up();
                nsm_load();
                arg_selfcheck = cmdline_has("enclave_acm.selfcheck=1");
                (void) mkdir("/run/enclave-acm", 0700);
        }
        if (!arg_data)
                arg_data = arg_selfcheck ? SELFCHECK_DATA : PROD_DATA;
        if (!arg_control)
                arg_control = arg_selfcheck ? SELFCHECK_CTRL : PROD_CTRL;
        log_info("enclave-init %s%s", ENCLAVE_ACM_VERSION, arg_selfcheck ? " (self-check mode)" : "");

        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        if (sigprocmask(SIG_BLOCK, &mask, &old) < 0)
                finish(1);
        if (is_pid1() && !arg_selfcheck && ready_signal() < 0)
                finish(1);
        token = spawn_token(&old);
        if (token < 0)
                finish(1);
        if (arg_selfcheck) {
                check = spawn_selfcheck(&old);
                if (check < 0) {
                        (void) kill(token, SIGTERM);
                        finish(1);
                }
        }
        finish(supervise(token, check, &mask));
}
