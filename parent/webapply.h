/* Safe replacement of one web server config file: temp file, fsync, rename, the server's own config
 * test, graceful reload, a check that the server survived it, and rollback when the test fails or the
 * server died. The text comes from nginx/ or httpd/. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/cleanup.h"

/* Bound on the file replaced and on the new text (the writers' own bound). */
#define WEBAPPLY_MAX_FILE (16u * 1024u * 1024u)

/* How long the server is watched after a reload when the caller has no opinion (ACM's default). */
#define WEBAPPLY_DEFAULT_RELOAD_WAIT_MS 1000u

enum webapply_server {
        WEBAPPLY_NGINX,
        WEBAPPLY_HTTPD,
        _WEBAPPLY_SERVER_MAX,
        _WEBAPPLY_SERVER_INVALID = -EINVAL,
};

/* How the server is tested and reloaded. */
enum webapply_control {
        WEBAPPLY_DIRECT,  /* test_argv, then reload_argv or a signal to the pid in pid_file */
        WEBAPPLY_SYSTEMD, /* test_argv, then `systemctl reload <service>`; `systemctl is-active` */
        _WEBAPPLY_CONTROL_MAX,
        _WEBAPPLY_CONTROL_INVALID = -EINVAL,
};

/* Steps of webapply_file(), for the report. */
enum webapply_step {
        WEBAPPLY_STEP_NONE,   /* nothing failed */
        WEBAPPLY_STEP_READ,   /* reading the current file */
        WEBAPPLY_STEP_WRITE,  /* temp file, fsync, rename (the old file is still in place) */
        WEBAPPLY_STEP_TEST,   /* the config test rejected the new file (rolled back unless rollback_error) */
        WEBAPPLY_STEP_RELOAD, /* the new file passed the test and stays; the reload failed, the server runs
                               */
        /* The server was not running and did not start (or stay up) with the new file, which passed the
         * test: the previous content is back (unless rollback_error); the server is left stopped. */
        WEBAPPLY_STEP_START,
        /* The server stopped after the reload, whether the reload command succeeded or not (httpd's
         * parent exits when it cannot load a key that the config test never loaded): the previous
         * content is back (unless rollback_error) and the server was started again (unless
         * start_error). */
        WEBAPPLY_STEP_SERVER_DIED,
        _WEBAPPLY_STEP_MAX,
        _WEBAPPLY_STEP_INVALID = -EINVAL,
};

struct webapply_req {
        const char *path; /* the file to replace (a symlink is followed: its target is replaced) */
        const char *text; /* the new content, text_len bytes (NUL bytes allowed, not required) */
        size_t text_len;
        mode_t mode;       /* permissions for the file; 0: the current file's, or 0644 for a new one */
        const char *user;  /* owner by name; NULL: the current file's, or the caller's for a new one */
        const char *group; /* group by name; NULL: likewise */
        enum webapply_server server;
        enum webapply_control control;
        /* The config test, e.g. {"nginx", "-t", "-c", "/etc/nginx/nginx.conf", NULL} or
         * {"apache2ctl", "-t", NULL}. NULL: {"nginx", "-t"} / {"apachectl", "-t"}. */
        const char *const *test_argv;
        /* WEBAPPLY_DIRECT: the graceful reload, e.g. {"nginx", "-s", "reload", NULL} or
         * {"apachectl", "graceful", NULL}. NULL with pid_file NULL: those two defaults. */
        const char *const *reload_argv;
        /* WEBAPPLY_DIRECT: the server's pid file (the nginx master's, the httpd parent's; see
         * webapply_pid_file_find()). It tells whether the server runs: a missing file or a dead pid
         * before the reload is a stopped server, a changed or missing pid after it a dead one. NULL:
         * not checked, the server is assumed to run. With reload_argv NULL, the reload is also a
         * signal to that pid instead of a command. */
        const char *pid_file;
        int reload_signal; /* with pid_file; 0: SIGHUP for nginx, SIGUSR1 (graceful) for httpd */
        /* WEBAPPLY_DIRECT: how the server is started when it is not running or died after the reload,
         * e.g. {"nginx", "-c", "/etc/nginx/nginx.conf", NULL}. NULL: {"nginx", NULL} /
         * {"apachectl", "-k", "start", NULL}. WEBAPPLY_SYSTEMD: `systemctl start <service>`. */
        const char *const *start_argv;
        const char *service; /* WEBAPPLY_SYSTEMD: the unit; NULL: "nginx" / "apache2" */
        /* How long the server is watched after the reload (and after a start) for staying up, in
         * milliseconds; 0: checked once, right away. A server that dies later is not noticed. */
        unsigned reload_wait_ms;
        /* The server is not running: leave the tested file in place and the server stopped
         * (result.was_stopped) instead of starting it (ACM's force_start: false). */
        bool no_start;
        /* Test and reload even when the file already holds the text: the server may not have loaded it
         * (an earlier reload failed and left the tested file in place, or the caller died before the
         * reload). The file is written again; a failure restores the same text. */
        bool force;
        /* Masked (raw and percent-encoded) in the output reported back; never logged. May be NULL. */
        const char *pin;
        unsigned timeout_ms; /* per command; 0: SUBPROCESS_DEFAULT_TIMEOUT_MS */
};

struct webapply_result {
        bool changed;              /* the file was replaced and the new text stays in place */
        bool rolled_back;          /* the new text failed the test and the previous content is back */
        bool reloaded;             /* the graceful reload ran and the server survived it */
        bool was_stopped;          /* the server was not running before the reload (not reloaded) */
        bool started;              /* the server was started: it was not running, or it died (then with
                                    * the previous content back) */
        enum webapply_step failed; /* WEBAPPLY_STEP_NONE on success */
        int rollback_error;        /* < 0: the rollback failed too, the rejected text may be in place */
        int start_error;           /* WEBAPPLY_STEP_SERVER_DIED: < 0 when starting it again failed */
        int exit_status;           /* of the failing (else the last) command; -1 if none ran or signalled */
        int term_signal;           /* signal that ended it; 0 if none */
        bool timed_out;
        /* The output of the failing command, else of the config test; trimmed, the PIN replaced by
         * "***". NULL when no command ran. */
        char *output;
};

void webapply_result_done(struct webapply_result *r);

/* Read a config file as webapply_file() sees it (symlinks followed, a regular file of at most
 * WEBAPPLY_MAX_FILE bytes): a new copy with a NUL after its ret_len bytes, for the nginx/ and
 * httpd/ editors. -ENOENT when it does not exist. The text may hold a PIN: wipe it before freeing. */
_must_check_ int webapply_read_file(const char *path, char **ret_text, size_t *ret_len);

/* Make req->path hold req->text, safely:
 * - the same text already there (and mode/owner as requested): nothing is done, returns 0 (unless
 *   req->force: then as for a new text);
 * - else the text goes to a temp file in the same directory (O_EXCL, the mode and owner of the
 *   current file or as requested), is fsync'ed and renamed over the target, the directory is
 *   fsync'ed; the previous content is kept in memory;
 * - the server's config test runs: a non-zero exit, a signal (nginx -t crashes on some bad PINs)
 *   or a timeout restores the previous content the same way (or removes a new file) and fails;
 * - the server not running (see pid_file; systemd: not active): it is started instead of reloaded
 *   and must stay up for reload_wait_ms, else the previous content is restored (STEP_START); with
 *   no_start it is left stopped and ret->was_stopped set;
 * - else the server is reloaded gracefully and watched for reload_wait_ms: if it stops, the previous
 *   content is restored, the server started again and STEP_SERVER_DIED returned (-ESRCH);
 * - 1 is returned.
 * A mode/owner difference alone is fixed in place without a test or a reload (returns 0).
 * Returns 0, 1, or a negative errno with ret->failed saying where: -EBADMSG when a command
 * exited non-zero or by a signal, -ETIMEDOUT, -ENOENT when a command or the target's directory
 * does not exist, -ESRCH for an unknown user or group (STEP_READ) or a server that is not running
 * after a start or the reload, -EFBIG for an oversized file, or what the system call said.
 * *ret is always filled (webapply_result_done() it). Logs nothing. */
_must_check_ int webapply_file(const struct webapply_req *req, struct webapply_result *ret);

/* Would webapply_file() be able to write text next to path? The same temp file, fsync'ed, then
 * removed; nothing else is touched. 0 or the errno: -EROFS, -ENOSPC, -ENOTDIR, -EACCES, … */
_must_check_ int webapply_probe_write(const char *path, const char *text, size_t len);

/* The server's pid file, found as the server itself finds it, for req->pid_file:
 * - nginx: the top-level "pid" directive of config (NULL: nginx's built-in --conf-path), else the
 *   built-in --pid-path, a relative path taken under the built-in --prefix (from `BINARY -V`, which
 *   only runs when needed). A "pid" in a file included from the top level is not seen.
 * - httpd: what `BINARY -t -D DUMP_RUN_CFG [-f config]` says as "PidFile:" (envvars, Define and
 *   ServerRoot resolved by the server itself).
 * binary NULL: "nginx" / "apachectl"; timeout_ms as for the commands (0: the default).
 * Returns 0 and a new string, or a negative errno: -ENOENT no such program, -EBADMSG it failed or
 * named no pid file, -ETIMEDOUT, or a read error of config. Logs nothing. */
_must_check_ int webapply_pid_file_find(enum webapply_server server, const char *binary, const char *config,
                                        unsigned timeout_ms, char **ret);

const char *webapply_server_to_string(enum webapply_server s);
enum webapply_server webapply_server_from_string(const char *s);
const char *webapply_control_to_string(enum webapply_control c);
enum webapply_control webapply_control_from_string(const char *s);
const char *webapply_step_to_string(enum webapply_step s);
