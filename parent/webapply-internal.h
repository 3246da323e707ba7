/* Internals of webapply: the file side (read, atomic replace, remove), the server side (commands,
 * whether it runs) and the output masking. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "parent/webapply.h"
#include "common/cleanup.h"

/* ---- webapply-file.c ---- */

/* The file as found before the change: what a rollback puts back. */
struct webapply_current {
        int fd; /* open for reading, to fix mode/owner in place; -1 when there is no file */
        char *text;
        size_t len;
        struct stat st;
};

/* Where and how the new file goes. */
struct webapply_target {
        char *path; /* symlinks resolved */
        char *dir;
        char *base;
        mode_t mode;
        uid_t uid;
        gid_t gid;
};

/* Wipes the text (it may hold a PIN) and closes the fd. */
void webapply_current_done(struct webapply_current *c);
void webapply_target_done(struct webapply_target *t);

/* Resolve symlinks (a sites-enabled link keeps pointing at its file) and split into directory and
 * name. A missing file is fine (it will be created); a dangling symlink is -ENOENT. */
_must_check_ int webapply_target_resolve(const char *path, struct webapply_target *t);
/* Read the current file (c->fd stays -1 when there is none). Not a regular file: -EINVAL;
 * larger than WEBAPPLY_MAX_FILE: -EFBIG. */
_must_check_ int webapply_current_read(const char *path, struct webapply_current *c);

/* Write text to a new temp file next to t->path (O_EXCL, mode, owner), fsync it, rename it over
 * t->path, fsync the directory. On failure the temp file is removed and t->path is untouched
 * (unless only the directory fsync failed). */
_must_check_ int webapply_replace(const struct webapply_target *t, const char *text, size_t len, mode_t mode,
                                  uid_t uid, gid_t gid);
/* Remove t->path (a missing one is fine) and fsync the directory. */
_must_check_ int webapply_remove(const struct webapply_target *t);

/* ---- webapply-server.c ---- */

/* Whether the server runs, as seen before the reload. */
struct webapply_server_state {
        bool running;
        pid_t pid; /* WEBAPPLY_DIRECT with a pid file: the master's / parent's pid; else 0 */
};

/* Run one command (timeout req->timeout_ms); its exit goes to ret, and its output (masked) too when it
 * fails or when keep. 0 when it exited 0, else -EBADMSG, -ETIMEDOUT, or why it could not run. */
_must_check_ int webapply_run_command(const struct webapply_req *req, const char *const *argv, bool keep,
                                      struct webapply_result *ret);
/* The config test (req->test_argv or the default), its output kept. */
_must_check_ int webapply_config_test(const struct webapply_req *req, struct webapply_result *ret);
/* The graceful reload: systemctl reload, reload_argv, a signal to the pid file's pid, or the default. */
_must_check_ int webapply_reload(const struct webapply_req *req, struct webapply_result *ret);
/* Whether the server runs now (see req->pid_file). Direct mode without a pid file: assumed to run.
 * A missing or empty pid file, or one naming a dead process, is a stopped server; one that cannot be
 * read or parsed is an error. */
_must_check_ int webapply_server_probe(const struct webapply_req *req, struct webapply_server_state *ret);
/* Watch the server for req->reload_wait_ms after a reload: 1 when it stayed up (with the same pid),
 * 0 when it stopped, or a negative errno when that cannot be told. */
_must_check_ int webapply_server_watch(const struct webapply_req *req,
                                       const struct webapply_server_state *before);
/* Start the server, wait (at most the command timeout) until it runs, then watch it. 0 when it runs,
 * -ESRCH when it did not come up or stay up, or the start command's error. */
_must_check_ int webapply_server_start(const struct webapply_req *req, struct webapply_result *ret);

/* ---- webapply-mask.c ---- */

/* Copy out with leading and trailing white space trimmed and every occurrence of pin (as is and
 * percent-encoded) replaced by "***". pin may be NULL or empty. Returns 0 or -ENOMEM. */
_must_check_ int webapply_output_mask(const char *out, size_t len, const char *pin, char **ret);
