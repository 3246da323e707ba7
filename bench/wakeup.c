/* What a wake-up costs on this machine: a request/answer ping-pong over a unix socket pair between
 * two processes that sleep in recv(), with both pinned to one CPU, pinned to two CPUs, and left to
 * the scheduler. Every signature a sleeping client waits for pays one such wake-up, so this bounds
 * what the module can do with more threads than CPUs (bench/README.md). */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/time-util.h"

#define ROUNDS 100000
#define MSG    64

static int pin(int cpu) {
        cpu_set_t set;

        if (cpu < 0)
                return 0;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        return sched_setaffinity(0, sizeof(set), &set) < 0 ? -errno : 0;
}

static int echo(int fd, int cpu) {
        char buf[MSG];

        if (pin(cpu) < 0)
                return 1;
        for (int i = 0; i < ROUNDS; i++)
                if (recv(fd, buf, sizeof(buf), MSG_WAITALL) != MSG || send(fd, buf, sizeof(buf), 0) != MSG)
                        return 1;
        return 0;
}

/* Microseconds per round trip, or a negative errno. */
static double ping_pong(int cpu_a, int cpu_b) {
        char buf[MSG] = {};
        uint64_t start, end;
        int sv[2], status;
        pid_t pid;

        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                return -errno;
        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                close(sv[0]);
                _exit(echo(sv[1], cpu_b));
        }
        close(sv[1]);
        if (pin(cpu_a) < 0)
                return -EINVAL;
        start = mono_nsec();
        for (int i = 0; i < ROUNDS; i++)
                if (send(sv[0], buf, sizeof(buf), 0) != MSG ||
                    recv(sv[0], buf, sizeof(buf), MSG_WAITALL) != MSG)
                        break;
        end = mono_nsec();
        close(sv[0]);
        if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
                return -EIO;
        return (double) (end - start) / ROUNDS / 1000.0;
}

int main(void) {
        static const struct {
                const char *what;
                int a, b;
        } cases[] = {
                { "both on CPU 0", 0, 0 },
                { "CPU 0 and CPU 1", 0, 1 },
                { "as scheduled", -1, -1 },
        };
        cpu_set_t all;

        if (sched_getaffinity(0, sizeof(all), &all) < 0 || !CPU_ISSET(0, &all) || !CPU_ISSET(1, &all)) {
                fprintf(stderr, "wakeup: needs CPUs 0 and 1\n");
                return 1;
        }
        printf("# unix socket ping-pong, both sides asleep in recv(), %d round trips each\n", ROUNDS);
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                double us = ping_pong(cases[i].a, cases[i].b);

                if (us < 0) {
                        fprintf(stderr, "wakeup: %s: %s\n", cases[i].what, strerror((int) -us));
                        return 1;
                }
                printf("%-16s %8.1f us per round trip (two wake-ups)\n", cases[i].what, us);
                (void) sched_setaffinity(0, sizeof(all), &all);
        }
        return 0;
}
