/* Running a helper program (nginx -t, apachectl, systemctl) from an argv array: no shell, bounded
 * time, stdout and stderr captured up to a cap. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "common/cleanup.h"

#define SUBPROCESS_DEFAULT_TIMEOUT_MS 30000u
#define SUBPROCESS_MAX_OUTPUT         (64u * 1024u)

struct subprocess_result {
        int exit_status; /* exit status; -1 when it was ended by a signal */
        int term_signal; /* the signal that ended it (SIGKILL after a timeout); 0 when it exited */
        bool timed_out;  /* killed (with its process group) when the time was up */
        bool truncated;  /* more output than SUBPROCESS_MAX_OUTPUT: the rest was read and dropped */
        char *output;    /* stdout and stderr as they came, NUL-terminated; never NULL after a run */
        size_t output_len;
};

/* Wipes and frees the output (it may quote a PIN), and resets the result. */
void subprocess_result_done(struct subprocess_result *r);

/* Exited with status 0: not killed, not timed out. */
bool subprocess_result_ok(const struct subprocess_result *r);

/* The same as an error: 0 when ok, -ETIMEDOUT when it was killed for time, else -EBADMSG. */
int subprocess_result_errno(const struct subprocess_result *r);

/* Run argv[0] (looked up in $PATH when it holds no '/', like execvp()) with argv as is, the caller's
 * environment, stdin from /dev/null, stdout and stderr into one pipe, default signal dispositions and an
 * empty signal mask, in a process group of its own. Waits at most timeout_ms (0: the default); then the
 * group gets SIGKILL. Returns 0 when the program ran, whatever its verdict (see *ret), or a negative
 * errno when it could not be started (-ENOENT: no such program) or waited for. */
_must_check_ int subprocess_run(const char *const *argv, unsigned timeout_ms, struct subprocess_result *ret);
