/* Tests for parent/webapply (integration suite: they start processes and wait out timeouts): atomic
 * replace, config test, graceful reload, rollback, whether the server survived the reload or runs at all,
 * finding its pid file; with a fake server script (tests/data/webapply/fake-server.sh) standing in for nginx
 * and apachectl, and a fake systemctl. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "parent/subprocess.h"
#include "parent/webapply-internal.h"
#include "parent/webapply.h"
#include "common/cleanup.h"
#include "tests/lib/tap.h"

struct fixture {
        char *dir;
        char *server; /* dir/fake-server: a copy, so a lost exec bit in the checkout does not matter */
        char *conf;   /* dir/site.conf */
        char *log;    /* dir/log: what the fake server was asked to do */
        char *seen;   /* dir/log.seen: the file as the config test saw it */
        char *pid;    /* dir/server.pid: the fake server's (a sleep), killed at the end */
        const char *test_argv[5];
        const char *reload_argv[4];
        const char *start_argv[5]; /* starts the fake server */
        const char *kill_argv[5];  /* a reload that kills it */
};

static char *file_read(const char *path, size_t *ret_len) {
        _cleanup_fclose_ FILE *f = fopen(path, "rbe");
        FILE *m;
        char *buf = NULL;
        size_t size = 0;

        if (!f || !(m = open_memstream(&buf, &size)))
                return NULL;
        for (int ch; (ch = fgetc(f)) != EOF;)
                fputc(ch, m);
        fclose(m);
        if (ret_len)
                *ret_len = size;
        return buf;
}

static int file_write(const char *path, const char *text, mode_t mode) {
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        size_t len = strlen(text);

        if (fd < 0 || write(fd, text, len) != (ssize_t) len || fchmod(fd, mode) < 0)
                return -errno;
        return 0;
}

static bool file_is(const char *path, const char *want) {
        _cleanup_free_ char *got = NULL;
        size_t len = 0;

        got = file_read(path, &len);
        return got && len == strlen(want) && memcmp(got, want, len) == 0;
}

static bool file_starts(const char *path, const char *want) {
        _cleanup_free_ char *got = NULL;
        size_t len = 0;

        got = file_read(path, &len);
        return got && len >= strlen(want) && memcmp(got, want, strlen(want)) == 0;
}

static mode_t file_mode(const char *path) {
        struct stat st;

        return lstat(path, &st) < 0 ? (mode_t) -1 : st.st_mode & 07777;
}

static size_t dir_count(const char *dir) {
        DIR *d = opendir(dir);
        size_t n = 0;

        if (!d)
                return 0;
        for (struct dirent *e; (e = readdir(d));)
                n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
        closedir(d);
        return n;
}

/* tests/data: $TEST_DATA, else next to this file (meson compiles it as "../tests/integration/…"). */
static char *data_path(const char *rel) {
        const char *env = getenv("TEST_DATA"), *slash = strrchr(__FILE__, '/');
        char *path = NULL;

        if (env ? asprintf(&path, "%s/%s", env, rel) < 0
                : asprintf(&path, "%.*s/../data/%s", slash ? (int) (slash - __FILE__) : 1,
                           slash ? __FILE__ : ".", rel) < 0)
                return NULL;
        return path;
}

static bool fixture_init(struct fixture *f) {
        const char *tmp = getenv("TMPDIR");
        _cleanup_free_ char *script = data_path("webapply/fake-server.sh"), *text = NULL;

        *f = (struct fixture){};
        if (asprintf(&f->dir, "%s/test-webapply-XXXXXX", tmp && *tmp ? tmp : "/tmp") < 0 || !mkdtemp(f->dir))
                return false;
        if (asprintf(&f->server, "%s/fake-server", f->dir) < 0 ||
            asprintf(&f->conf, "%s/site.conf", f->dir) < 0 || asprintf(&f->log, "%s/log", f->dir) < 0 ||
            asprintf(&f->seen, "%s/log.seen", f->dir) < 0 || asprintf(&f->pid, "%s/server.pid", f->dir) < 0)
                return false;
        text = script ? file_read(script, NULL) : NULL;
        if (!text || file_write(f->server, text, 0755) < 0) {
                printf("# cannot read '%s' (set TEST_DATA to tests/data)\n", script ? script : "?");
                return false;
        }
        memcpy(f->test_argv, (const char *[]){ f->server, "test", f->conf, f->log, NULL },
               sizeof(f->test_argv));
        memcpy(f->reload_argv, (const char *[]){ f->server, "reload", f->log, NULL },
               sizeof(f->reload_argv));
        memcpy(f->start_argv, (const char *[]){ f->server, "start", f->pid, f->log, NULL },
               sizeof(f->start_argv));
        memcpy(f->kill_argv, (const char *[]){ f->server, "kill", f->pid, f->log, NULL },
               sizeof(f->kill_argv));
        return true;
}

/* The pid in the fake server's pid file; 0 when there is none. */
static pid_t server_pid(const struct fixture *f) {
        _cleanup_free_ char *text = f->pid ? file_read(f->pid, NULL) : NULL;
        long pid = text ? strtol(text, NULL, 10) : 0;

        return pid > 1 && pid != getpid() ? (pid_t) pid : 0;
}

/* Not a zombie either: the fake server's sleep is left to a PID 1 that may not reap it. */
static bool pid_running(pid_t pid) {
        _cleanup_free_ char *path = NULL, *stat = NULL;
        const char *paren;

        if (pid <= 1 || kill(pid, 0) < 0 || asprintf(&path, "/proc/%d/stat", (int) pid) < 0)
                return false;
        stat = file_read(path, NULL);
        paren = stat ? strrchr(stat, ')') : NULL;
        return !paren || paren[1] != ' ' || paren[2] != 'Z';
}

static void fixture_done(struct fixture *f) {
        pid_t pid = server_pid(f);
        DIR *d = f->dir ? opendir(f->dir) : NULL;

        if (pid_running(pid))
                (void) kill(pid, SIGKILL);
        for (struct dirent *e; d && (e = readdir(d));)
                (void) unlinkat(dirfd(d), e->d_name, 0);
        if (d)
                closedir(d);
        if (f->dir)
                (void) rmdir(f->dir);
        free(f->dir);
        free(f->server);
        free(f->conf);
        free(f->log);
        free(f->seen);
        free(f->pid);
}

static struct webapply_req req_for(const struct fixture *f, const char *text) {
        return (struct webapply_req){
                .path = f->conf,
                .text = text,
                .text_len = strlen(text),
                .server = WEBAPPLY_NGINX,
                .control = WEBAPPLY_DIRECT,
                .test_argv = f->test_argv,
                .reload_argv = f->reload_argv,
        };
}

/* res is unused in the tests that only look at the files: clang warns, gcc does not. */
#define FIXTURE(f)                                                       \
        _cleanup_(fixture_done) struct fixture f;                        \
        _cleanup_(webapply_result_done) struct webapply_result res = {}; \
        (void) res;                                                      \
        ASSERT_TRUE(fixture_init(&f))

/* ---- the happy path ---- */

static void test_apply_success(void) {
        FIXTURE(f);
        struct webapply_req req = req_for(&f, "server { listen 443 ssl; }\n");

        ASSERT_OK(file_write(f.conf, "old\n", 0640));
        ASSERT_EQ(webapply_file(&req, &res), 1);
        ASSERT_TRUE(res.changed && res.reloaded && !res.rolled_back);
        ASSERT_EQ(res.failed, WEBAPPLY_STEP_NONE);
        ASSERT_TRUE(file_is(f.conf, req.text));
        ASSERT_TRUE(file_is(f.seen, req.text)); /* the test saw the whole new file */
        ASSERT_EQ(file_mode(f.conf), 0640);     /* the old file's mode */
        ASSERT_TRUE(file_is(f.log, "test\nreload\n"));
        ASSERT_TRUE(res.output && strstr(res.output, "test is successful"));
        ASSERT_TRUE(res.output[strlen(res.output) - 1] != '\n'); /* trimmed */
        ASSERT_EQ(dir_count(f.dir), 4u);                         /* no temp file left */
}

static void test_apply_idempotent(void) {
        FIXTURE(f);
        struct webapply_req req = req_for(&f, "same\n");

        ASSERT_OK(file_write(f.conf, "old\n", 0644));
        ASSERT_EQ(webapply_file(&req, &res), 1);
        webapply_result_done(&res);
        ASSERT_EQ(webapply_file(&req, &res), 0); /* same text: no test, no reload */
        ASSERT_TRUE(!res.changed && !res.reloaded && res.output == NULL);
        ASSERT_TRUE(file_is(f.log, "test\nreload\n"));
        /* force: the same text tested and reloaded again (the server may never have loaded it). */
        webapply_result_done(&res);
        req.force = true;
        ASSERT_EQ(webapply_file(&req, &res), 1);
        ASSERT_TRUE(res.reloaded && !res.rolled_back);
        ASSERT_TRUE(file_is(f.conf, "same\n"));
        ASSERT_TRUE(file_is(f.log, "test\nreload\ntest\nreload\n"));
}

static void test_apply_new_file(void) {
        FIXTURE(f);
        struct webapply_req req = req_for(&f, "new\n");

        ASSERT_EQ(webapply_file(&req, &res), 1);
        ASSERT_TRUE(file_is(f.conf, "new\n"));
        ASSERT_EQ(file_mode(f.conf), 0644);
}

static void test_probe_write(void) {
        FIXTURE(f);
        _cleanup_free_ char *below = NULL;
        size_t before;

        ASSERT_OK(file_write(f.conf, "old\n", 0640));
        before = dir_count(f.dir);
        ASSERT_OK(webapply_probe_write(f.conf, "new\n", 4));
        ASSERT_TRUE(file_is(f.conf, "old\n")); /* nothing touched, no temp file left */
        ASSERT_EQ(dir_count(f.dir), before);
        ASSERT_TRUE(asprintf(&below, "%s/stanza.conf", f.conf) >= 0); /* its directory is a file */
        ASSERT_ERR(webapply_probe_write(below, "new\n", 4), -ENOTDIR);
}

static void test_apply_mode_owner(void) {
        FIXTURE(f);
        struct webapply_req req = req_for(&f, "text\n");
        struct passwd *nobody = geteuid() == 0 ? getpwnam("nobody") : NULL;
        struct stat st;

        ASSERT_OK(file_write(f.conf, "text\n", 0644));
        req.mode = 0600;
        req.user = nobody ? "nobody" : NULL;
        ASSERT_EQ(webapply_file(&req, &res), 0); /* the text is there: fixed in place, no reload */
        ASSERT_EQ(file_mode(f.conf), 0600);
        ASSERT_TRUE(access(f.log, F_OK) < 0);
        ASSERT_OK(stat(f.conf, &st));
        ASSERT_EQ(st.st_uid, nobody ? nobody->pw_uid : geteuid());
        webapply_result_done(&res);
        req.text = "other\n";
        req.text_len = strlen(req.text);
        req.mode = 0440;
        ASSERT_EQ(webapply_file(&req, &res), 1);
        ASSERT_EQ(file_mode(f.conf), 0440);
        webapply_result_done(&res);
        req.user = "no-such-user-enclave-acm";
        ASSERT_ERR(webapply_file(&req, &res), -ESRCH);
        ASSERT_EQ(res.failed, WEBAPPLY_STEP_READ);
}

/* A sites-enabled symlink stays a symlink; its target gets the new text. */
static void test_apply_symlink(void) {
        FIXTURE(f);
        _cleanup_free_ char *real = NULL;
        struct webapply_req req = req_for(&f, "via link\n");
        struct stat st;

        ASSERT_TRUE(asprintf(&real, "%s/real.conf", f.dir) >= 0);
        ASSERT_OK(file_write(real, "old\n", 0644));
        ASSERT_OK(symlink("real.conf", f.conf));
        ASSERT_EQ(webapply_file(&req, &res), 1);
        ASSERT_OK(lstat(f.conf, &st));
        ASSERT_TRUE(S_ISLNK(st.st_mode));
        ASSERT_TRUE(file_is(real, "via link\n"));
        ASSERT_OK(unlink(real));
        webapply_result_done(&res);
        ASSERT_ERR(webapply_file(&req, &res), -ENOENT); /* dangling: not replaced by a file */
        ASSERT_OK(lstat(f.conf, &st));
        ASSERT_TRUE(S_ISLNK(st.st_mode));
}

/* ---- a failing config test rolls back ---- */

static void expect_rolled_back(const struct fixture *f, const struct webapply_result *r, const char *old,
                               mode_t mode) {
        ASSERT_TRUE(r->rolled_back && !r->changed && !r->reloaded);
        ASSERT_EQ(r->rollback_error, 0);
        ASSERT_EQ(r->failed, WEBAPPLY_STEP_TEST);
        ASSERT_TRUE(file_is(f->conf, old)); /* byte for byte */
        ASSERT_EQ(file_mode(f->conf), mode);
        ASSERT_TRUE(file_is(f->log, "test\n")); /* no reload */
}

static void test_rollback_failed_test(void) {
        FIXTURE(f);
        struct webapply_req req = req_for(&f, "BROKEN directive;\n");

        ASSERT_OK(file_write(f.conf, "old\r\n\tkept\n", 0604));
        ASSERT_ERR(webapply_file(&req, &res), -EBADMSG);
        ASSERT_TRUE(file_is(f.seen, req.text)); /* the test ran on the new file */
        expect_rolled_back(&f, &res, "old\r\n\tkept\n", 0604);
        ASSERT_EQ(res.exit_status, 1);
        ASSERT_TRUE(res.output && strstr(res.output, "[emerg] invalid line \"BROKEN directive;\""));
        ASSERT_TRUE(strstr(res.output, "test failed") != NULL);
        ASSERT_EQ(dir_count(f.dir), 4u);
}

static void test_rollback_crash(void) {
        FIXTURE(f);
        struct webapply_req req = req_for(&f, "CRASH\n");

        ASSERT_OK(file_write(f.conf, "old\n", 0644));
        ASSERT_ERR(webapply_file(&req, &res), -EBADMSG);
        expect_rolled_back(&f, &res, "old\n", 0644);
        ASSERT_EQ(res.term_signal, SIGSEGV);
        ASSERT_EQ(res.exit_status, -1);
}

static void test_rollback_timeout(void) {
        FIXTURE(f);
        struct webapply_req req = req_for(&f, "SLOW\n");

        ASSERT_OK(file_write(f.conf, "old\n", 0644));
        req.timeout_ms = 300;
        ASSERT_ERR(webapply_file(&req, &res), -ETIMEDOUT);
        expect_rolled_back(&f, &res, "old\n", 0644);
        ASSERT_TRUE(res.timed_out);
        ASSERT_EQ(res.term_signal, SIGKILL);
}

static void test_rollback_new_file(void) {
        FIXTURE(f);
        struct webapply_req req = req_for(&f, "BROKEN\n");

        ASSERT_ERR(webapply_file(&req, &res), -EBADMSG);
        ASSERT_TRUE(res.rolled_back && !res.changed);
        ASSERT_TRUE(access(f.conf, F_OK) < 0 && errno == ENOENT); /* removed again */
        ASSERT_EQ(dir_count(f.dir), 3u);
}

static void test_rollback_missing_command(void) {
        FIXTURE(f);
        struct webapply_req req = req_for(&f, "new\n");
        const char *const test[] = { "/nonexistent/enclave-acm/nginx", "-t", NULL };

        ASSERT_OK(file_write(f.conf, "old\n", 0644));
        req.test_argv = test;
        ASSERT_ERR(webapply_file(&req, &res), -ENOENT);
        ASSERT_TRUE(res.rolled_back && file_is(f.conf, "old\n"));
        ASSERT_EQ(res.failed, WEBAPPLY_STEP_TEST);
}

/* ---- reload ---- */

static void test_reload_failure_keeps_file(void) {
        FIXTURE(f);
        struct webapply_req req = req_for(&f, "new\n");
        const char *const reload[] = { f.server, "fail", f.log, NULL };

        ASSERT_OK(file_write(f.conf, "old\n", 0644));
        req.reload_argv = reload;
        ASSERT_ERR(webapply_file(&req, &res), -EBADMSG);
        ASSERT_EQ(res.failed, WEBAPPLY_STEP_RELOAD);
        ASSERT_TRUE(res.changed && !res.reloaded && !res.rolled_back);
        ASSERT_TRUE(file_is(f.conf, "new\n")); /* it passed the test: it stays */
        ASSERT_EQ(res.exit_status, 3);
        ASSERT_TRUE(res.output && strstr(res.output, "invalid PID number"));
}

static volatile sig_atomic_t got_signal;

static void on_signal(int sig) {
        got_signal = sig;
}

static void test_reload_pid_file(void) {
        FIXTURE(f);
        _cleanup_free_ char *pid_file = NULL, *pid = NULL;
        struct webapply_req req = req_for(&f, "new\n");
        struct sigaction sa = { .sa_handler = on_signal }, old;

        ASSERT_TRUE(asprintf(&pid_file, "%s/nginx.pid", f.dir) >= 0 &&
                    asprintf(&pid, "%d\n", getpid()) >= 0);
        ASSERT_OK(file_write(pid_file, pid, 0644));
        ASSERT_OK(sigaction(SIGUSR2, &sa, &old));
        req.reload_argv = NULL;
        req.pid_file = pid_file;
        req.reload_signal = SIGUSR2;
        got_signal = 0;
        ASSERT_EQ(webapply_file(&req, &res), 1);
        ASSERT_OK(sigaction(SIGUSR2, &old, NULL));
        ASSERT_EQ(got_signal, SIGUSR2);
        ASSERT_TRUE(res.reloaded);
        webapply_result_done(&res);
        ASSERT_OK(file_write(pid_file, "12ab\n", 0644));
        req.text = "newer\n";
        req.text_len = strlen(req.text);
        ASSERT_ERR(webapply_file(&req, &res), -EBADMSG);
        ASSERT_EQ(res.failed, WEBAPPLY_STEP_RELOAD);
}

/* ---- did the server survive the reload; does it run at all ---- */

/* The fake server runs (a sleep whose pid is in f->pid); the log starts empty. */
static pid_t server_boot(const struct fixture *f) {
        _cleanup_(subprocess_result_done) struct subprocess_result r = {};

        if (subprocess_run(f->start_argv, 0, &r) < 0 || !subprocess_result_ok(&r) || unlink(f->log) < 0)
                return 0;
        return server_pid(f);
}

static struct webapply_req req_watched(const struct fixture *f, const char *text) {
        struct webapply_req req = req_for(f, text);

        req.pid_file = f->pid;
        req.start_argv = f->start_argv;
        req.reload_wait_ms = 100;
        return req;
}

static void test_server_survives(void) {
        FIXTURE(f);
        struct webapply_req req = req_watched(&f, "new\n");
        pid_t pid = server_boot(&f);

        ASSERT_TRUE(pid > 0 && pid_running(pid));
        ASSERT_OK(file_write(f.conf, "old\n", 0644));
        ASSERT_EQ(webapply_file(&req, &res), 1);
        ASSERT_TRUE(res.reloaded && res.changed && !res.started && !res.was_stopped);
        ASSERT_TRUE(file_is(f.log, "test\nreload\n"));
        ASSERT_EQ(server_pid(&f), pid);
        ASSERT_TRUE(pid_running(pid));
}

/* httpd's config test passes a key the token lacks; the graceful reload then kills the parent. */
static void test_server_died(void) {
        FIXTURE(f);
        struct webapply_req req = req_watched(&f, "SSLCertificateKeyFile pkcs11:id=%09\n");
        pid_t pid = server_boot(&f);

        ASSERT_TRUE(pid > 0);
        ASSERT_OK(file_write(f.conf, "old\r\n\tkept\n", 0640));
        req.reload_argv = f.kill_argv;
        req.reload_wait_ms = 300; /* a death ends the watch at once; the restarted server is watched too */
        ASSERT_ERR(webapply_file(&req, &res), -ESRCH);
        ASSERT_EQ(res.failed, WEBAPPLY_STEP_SERVER_DIED);
        ASSERT_TRUE(res.rolled_back && !res.changed && !res.reloaded && res.started);
        ASSERT_EQ(res.rollback_error, 0);
        ASSERT_EQ(res.start_error, 0);
        ASSERT_TRUE(file_is(f.conf, "old\r\n\tkept\n")); /* byte for byte */
        ASSERT_EQ(file_mode(f.conf), 0640);
        ASSERT_TRUE(file_is(f.log, "test\nkill\nstart\n"));
        ASSERT_TRUE(!pid_running(pid));
        ASSERT_TRUE(server_pid(&f) != pid && pid_running(server_pid(&f))); /* started again */
        ASSERT_TRUE(res.output == NULL || strstr(res.output, "successful") == NULL);
        ASSERT_STREQ(webapply_step_to_string(WEBAPPLY_STEP_SERVER_DIED), "server died");
}

/* The reload command fails because the server died of the new file (apachectl reports the exit):
 * the same rollback and restart, and the command's own message is kept. */
static void test_server_died_reload_fails(void) {
        FIXTURE(f);
        struct webapply_req req = req_watched(&f, "new\n");
        const char *const killfail[] = { f.server, "killfail", f.pid, f.log, NULL };
        pid_t pid = server_boot(&f);

        ASSERT_TRUE(pid > 0);
        ASSERT_OK(file_write(f.conf, "old\n", 0644));
        req.reload_argv = killfail;
        ASSERT_ERR(webapply_file(&req, &res), -ESRCH);
        ASSERT_EQ(res.failed, WEBAPPLY_STEP_SERVER_DIED);
        ASSERT_TRUE(res.rolled_back && res.started && !res.reloaded);
        ASSERT_TRUE(file_is(f.conf, "old\n"));
        ASSERT_TRUE(file_is(f.log, "test\nkillfail\nstart\n"));
        ASSERT_TRUE(res.output && strstr(res.output, "not running"));
        ASSERT_TRUE(server_pid(&f) != pid && pid_running(server_pid(&f)));
}

/* A reload command that fails while the server keeps running: the new file stays, STEP_RELOAD. */
static void test_reload_fails_server_runs(void) {
        FIXTURE(f);
        struct webapply_req req = req_watched(&f, "new\n");
        const char *const failing[] = { f.server, "fail", f.log, NULL };
        pid_t pid = server_boot(&f);

        ASSERT_TRUE(pid > 0);
        ASSERT_OK(file_write(f.conf, "old\n", 0644));
        req.reload_argv = failing;
        ASSERT_ERR(webapply_file(&req, &res), -EBADMSG);
        ASSERT_EQ(res.failed, WEBAPPLY_STEP_RELOAD);
        ASSERT_TRUE(res.changed && !res.rolled_back && !res.started);
        ASSERT_TRUE(file_is(f.conf, "new\n"));
        ASSERT_EQ(server_pid(&f), pid);
        ASSERT_TRUE(pid_running(pid));
}

static void test_server_died_start_fails(void) {
        FIXTURE(f);
        struct webapply_req req = req_watched(&f, "new\n");
        const char *const start[] = { f.server, "fail", f.log, NULL };

        ASSERT_TRUE(server_boot(&f) > 0);
        ASSERT_OK(file_write(f.conf, "old\n", 0644));
        req.reload_argv = f.kill_argv;
        req.start_argv = start;
        ASSERT_ERR(webapply_file(&req, &res), -ESRCH);
        ASSERT_EQ(res.failed, WEBAPPLY_STEP_SERVER_DIED);
        ASSERT_TRUE(res.rolled_back && !res.started);
        ASSERT_EQ(res.start_error, -EBADMSG);
        ASSERT_EQ(res.exit_status, 3);
        ASSERT_TRUE(res.output && strstr(res.output, "invalid PID number"));
        ASSERT_TRUE(file_is(f.conf, "old\n"));
        ASSERT_TRUE(file_is(f.log, "test\nkill\nfail\n"));
}

/* A pid file naming a process that is gone: a stopped server, as much as no pid file at all. */
static void write_dead_pid(const struct fixture *f) {
        _cleanup_free_ char *text = NULL;
        pid_t child = fork();

        if (child == 0)
                _exit(0);
        (void) waitpid(child, NULL, 0);
        if (asprintf(&text, "%d\n", (int) child) >= 0)
                (void) file_write(f->pid, text, 0644);
}

static void test_force_start(void) {
        FIXTURE(f);
        struct webapply_req req = req_watched(&f, "new\n");

        ASSERT_OK(file_write(f.conf, "old\n", 0644));
        ASSERT_EQ(webapply_file(&req, &res), 1); /* no pid file */
        ASSERT_TRUE(res.started && res.was_stopped && !res.reloaded && res.changed);
        ASSERT_EQ(res.failed, WEBAPPLY_STEP_NONE);
        ASSERT_TRUE(file_is(f.conf, "new\n"));
        ASSERT_TRUE(file_is(f.log, "test\nstart\n")); /* started, not reloaded */
        ASSERT_TRUE(pid_running(server_pid(&f)));
        ASSERT_OK(kill(server_pid(&f), SIGKILL));
        webapply_result_done(&res);
        write_dead_pid(&f);
        ASSERT_OK(unlink(f.log));
        req.text = "newer\n";
        req.text_len = strlen(req.text);
        ASSERT_EQ(webapply_file(&req, &res), 1);
        ASSERT_TRUE(res.started && res.was_stopped && !res.reloaded);
        ASSERT_TRUE(file_is(f.log, "test\nstart\n"));
        /* An empty pid file (`nginx -t` leaves one where there was none): stopped as well. */
        ASSERT_OK(kill(server_pid(&f), SIGKILL));
        webapply_result_done(&res);
        ASSERT_OK(file_write(f.pid, "", 0644));
        ASSERT_OK(unlink(f.log));
        req.text = "newest\n";
        req.text_len = strlen(req.text);
        ASSERT_EQ(webapply_file(&req, &res), 1);
        ASSERT_TRUE(res.started && res.was_stopped && !res.reloaded);
        ASSERT_TRUE(file_is(f.log, "test\nstart\n"));
}

static void test_no_start(void) {
        FIXTURE(f);
        struct webapply_req req = req_watched(&f, "new\n");

        ASSERT_OK(file_write(f.conf, "old\n", 0644));
        write_dead_pid(&f);
        req.no_start = true;
        ASSERT_EQ(webapply_file(&req, &res), 1);
        ASSERT_TRUE(res.was_stopped && !res.started && !res.reloaded && res.changed);
        ASSERT_EQ(res.failed, WEBAPPLY_STEP_NONE);
        ASSERT_TRUE(file_is(f.conf, "new\n")); /* tested, and it stays */
        ASSERT_TRUE(file_is(f.log, "test\n")); /* nothing started or reloaded */
        ASSERT_TRUE(!pid_running(server_pid(&f)));
}

static void test_start_fails(void) {
        FIXTURE(f);
        struct webapply_req req = req_watched(&f, "new\n");
        const char *const fail_start[] = { f.server, "fail", f.log, NULL };
        const char *const no_server[] = { f.server, "reload", f.log, NULL }; /* exits 0, starts nothing */

        ASSERT_OK(file_write(f.conf, "old\n", 0644));
        req.start_argv = fail_start;
        ASSERT_ERR(webapply_file(&req, &res), -EBADMSG);
        ASSERT_EQ(res.failed, WEBAPPLY_STEP_START);
        ASSERT_TRUE(res.was_stopped && !res.started && res.rolled_back && !res.changed);
        ASSERT_TRUE(file_is(f.conf, "old\n"));
        ASSERT_TRUE(file_is(f.log, "test\nfail\n"));
        webapply_result_done(&res);
        req.start_argv = no_server;
        req.timeout_ms = 300; /* how long a started server may take to show up */
        ASSERT_ERR(webapply_file(&req, &res), -ESRCH);
        ASSERT_EQ(res.failed, WEBAPPLY_STEP_START);
        ASSERT_TRUE(res.rolled_back && file_is(f.conf, "old\n"));
}

/* ---- systemd: systemctl is-active / start, a fake systemctl first in $PATH ---- */

struct fake_systemctl {
        char *old_path;
        char *log;
        char *active; /* exists: the unit is active */
        char *kills;  /* exists: a reload stops the unit */
};

static bool systemctl_install(const struct fixture *f, struct fake_systemctl *s) {
        _cleanup_free_ char *script = NULL, *path = NULL, *bin = NULL;
        const char *old = getenv("PATH");

        *s = (struct fake_systemctl){ .old_path = strdup(old ? old : "/usr/bin:/bin") };
        if (!s->old_path || asprintf(&s->log, "%s/systemctl.log", f->dir) < 0 ||
            asprintf(&s->active, "%s/active", f->dir) < 0 || asprintf(&s->kills, "%s/kills", f->dir) < 0 ||
            asprintf(&bin, "%s/bin", f->dir) < 0 || mkdir(bin, 0755) < 0 ||
            asprintf(&path, "%s/systemctl", bin) < 0)
                return false;
        if (asprintf(&script,
                     "#!/bin/sh\n"
                     "echo \"$*\" >>'%s'\n"
                     "case \"$1\" in\n"
                     "is-active) test -e '%s' ;;\n"
                     "start) touch '%s' ;;\n"
                     "reload) if test -e '%s'; then rm -f '%s'; fi ;;\n"
                     "esac\n",
                     s->log, s->active, s->active, s->kills, s->active) < 0 ||
            file_write(path, script, 0755) < 0)
                return false;
        free(path);
        path = NULL;
        return asprintf(&path, "%s:%s", bin, s->old_path) >= 0 && setenv("PATH", path, 1) == 0;
}

static void systemctl_remove(struct fake_systemctl *s) {
        _cleanup_free_ char *bin = NULL;

        if (s->old_path)
                (void) setenv("PATH", s->old_path, 1);
        if (s->log && asprintf(&bin, "%.*s/bin", (int) (strrchr(s->log, '/') - s->log), s->log) >= 0) {
                _cleanup_free_ char *path = NULL;

                if (asprintf(&path, "%s/systemctl", bin) >= 0)
                        (void) unlink(path);
                (void) rmdir(bin);
        }
        free(s->old_path);
        free(s->log);
        free(s->active);
        free(s->kills);
}

static void test_systemd_force_start(void) {
        FIXTURE(f);
        _cleanup_(systemctl_remove) struct fake_systemctl s = {};
        struct webapply_req req = req_for(&f, "new\n");

        ASSERT_TRUE(systemctl_install(&f, &s));
        ASSERT_OK(file_write(f.conf, "old\n", 0644));
        req.control = WEBAPPLY_SYSTEMD;
        req.reload_argv = NULL;
        ASSERT_EQ(webapply_file(&req, &res), 1);
        ASSERT_TRUE(res.started && res.was_stopped && !res.reloaded);
        /* Before; start; until it runs; watched (reload_wait_ms 0: once). */
        ASSERT_TRUE(file_is(s.log, "is-active --quiet nginx\nstart nginx\nis-active --quiet nginx\n"
                                   "is-active --quiet nginx\n"));
        webapply_result_done(&res);
        ASSERT_OK(unlink(s.log));
        req.text = "newer\n";
        req.text_len = strlen(req.text);
        req.service = "nginx-custom";
        ASSERT_EQ(webapply_file(&req, &res), 1); /* active now: reloaded */
        ASSERT_TRUE(res.reloaded && !res.started && !res.was_stopped);
        ASSERT_TRUE(file_is(s.log, "is-active --quiet nginx-custom\nreload nginx-custom\n"
                                   "is-active --quiet nginx-custom\n"));
}

static void test_systemd_died(void) {
        FIXTURE(f);
        _cleanup_(systemctl_remove) struct fake_systemctl s = {};
        struct webapply_req req = req_for(&f, "new\n");

        ASSERT_TRUE(systemctl_install(&f, &s));
        ASSERT_OK(file_write(f.conf, "old\n", 0644));
        ASSERT_OK(file_write(s.active, "", 0644));
        ASSERT_OK(file_write(s.kills, "", 0644));
        req.control = WEBAPPLY_SYSTEMD;
        req.server = WEBAPPLY_HTTPD;
        req.reload_wait_ms = 200;
        ASSERT_ERR(webapply_file(&req, &res), -ESRCH);
        ASSERT_EQ(res.failed, WEBAPPLY_STEP_SERVER_DIED);
        ASSERT_TRUE(res.rolled_back && res.started && file_is(f.conf, "old\n"));
        /* Then watched again after the start, as often as 200 ms allow. */
        ASSERT_TRUE(file_starts(s.log,
                                "is-active --quiet apache2\nreload apache2\nis-active --quiet apache2\n"
                                "start apache2\nis-active --quiet apache2\n"));
}

/* ---- finding the pid file ---- */

static void test_pid_file_nginx(void) {
        FIXTURE(f);
        _cleanup_free_ char *a = NULL, *b = NULL, *c = NULL, *d = NULL;

        ASSERT_OK(file_write(f.conf,
                             "# pid /commented/out.pid;\n"
                             "worker_processes 2;\n"
                             "events { pid /in/a/block.pid; }\n"
                             "http { server { listen 443 ssl; } }\n"
                             "pid \"/run/my nginx\\\".pid\" ;\n"
                             "pid /second.pid;\n",
                             0644));
        /* An absolute pid directive: nginx -V is not even run. */
        ASSERT_OK(webapply_pid_file_find(WEBAPPLY_NGINX, "/nonexistent/nginx", f.conf, 0, &a));
        ASSERT_STREQ(a, "/run/my nginx\".pid");
        ASSERT_OK(file_write(f.conf, "pid logs/rel.pid;\nevents {}\n", 0644));
        ASSERT_OK(webapply_pid_file_find(WEBAPPLY_NGINX, f.server, f.conf, 0, &b));
        ASSERT_STREQ(b, "/opt/fake-nginx/logs/rel.pid"); /* under nginx -V's --prefix */
        ASSERT_OK(file_write(f.conf, "events { }\nhttp { pid /not/here.pid; }\n", 0644));
        ASSERT_OK(webapply_pid_file_find(WEBAPPLY_NGINX, f.server, f.conf, 0, &c));
        ASSERT_STREQ(c, "/opt/fake-nginx/run/fake.pid"); /* nginx -V's --pid-path */
        ASSERT_OK(webapply_pid_file_find(WEBAPPLY_NGINX, f.server, NULL, 0, &d));
        ASSERT_STREQ(d, "/opt/fake-nginx/run/fake.pid"); /* its --conf-path does not exist */
}

static void test_pid_file_httpd(void) {
        FIXTURE(f);
        _cleanup_free_ char *a = NULL, *b = NULL, *want = NULL, *none = NULL;

        ASSERT_OK(webapply_pid_file_find(WEBAPPLY_HTTPD, f.server, NULL, 0, &a));
        ASSERT_STREQ(a, "/var/run/fake apache2/apache2.pid");
        ASSERT_OK(file_write(f.conf, "ServerRoot /x\n", 0644));
        ASSERT_OK(webapply_pid_file_find(WEBAPPLY_HTTPD, f.server, f.conf, 0, &b));
        ASSERT_TRUE(asprintf(&want, "%s.pid", f.conf) >= 0);
        ASSERT_STREQ(b, want);
        ASSERT_OK(file_write(f.conf, "NOPID\n", 0644));
        ASSERT_ERR(webapply_pid_file_find(WEBAPPLY_HTTPD, f.server, f.conf, 0, &none), -EBADMSG);
        ASSERT_TRUE(none == NULL);
}

static void test_pid_file_errors(void) {
        FIXTURE(f);
        _cleanup_free_ char *p = NULL;
        const char *const bad[] = { "pid \"/unterminated;\n", "}\npid /x.pid;\n", NULL };

        ASSERT_ERR(webapply_pid_file_find(WEBAPPLY_NGINX, "/nonexistent/nginx", NULL, 0, &p), -ENOENT);
        ASSERT_ERR(webapply_pid_file_find(WEBAPPLY_HTTPD, "/nonexistent/apachectl", NULL, 0, &p), -ENOENT);
        ASSERT_ERR(webapply_pid_file_find(_WEBAPPLY_SERVER_MAX, NULL, NULL, 0, &p), -EINVAL);
        ASSERT_ERR(webapply_pid_file_find(WEBAPPLY_NGINX, "", NULL, 0, &p), -EINVAL);
        for (size_t i = 0; bad[i]; i++) {
                ASSERT_OK(file_write(f.conf, bad[i], 0644));
                ASSERT_ERR(webapply_pid_file_find(WEBAPPLY_NGINX, f.server, f.conf, 0, &p), -EBADMSG);
        }
        ASSERT_TRUE(p == NULL);
}

/* argv goes to the program as is: no shell splits or expands anything. */
static void test_argv_no_shell(void) {
        FIXTURE(f);
        _cleanup_free_ char *evil = NULL, *want = NULL, *pwned = NULL;
        struct webapply_req req = req_for(&f, "new\n");

        ASSERT_TRUE(asprintf(&pwned, "%s/pwned", f.dir) >= 0);
        ASSERT_TRUE(asprintf(&evil, "a  b; touch %s", pwned) >= 0);
        const char *const reload[] = {
                f.server, "reload", f.log, evil, "$(touch x)", "`id`|&>'\"", "", NULL
        };
        ASSERT_TRUE(asprintf(&want, "test\nreload\n%s\n$(touch x)\n`id`|&>'\"\n\n", evil) >= 0);
        req.reload_argv = reload;
        ASSERT_EQ(webapply_file(&req, &res), 1);
        ASSERT_TRUE(file_is(f.log, want));
        ASSERT_TRUE(access(pwned, F_OK) < 0);
}

/* ---- what is reported ---- */

static void test_pin_masked(void) {
        FIXTURE(f);
        struct webapply_req req = req_for(&f, "BROKEN key \"engine:pkcs11:pkcs11:token=t;type=private"
                                              "?pin-value=12%3B34\" raw 12;34\n");

        ASSERT_OK(file_write(f.conf, "old\n", 0644));
        req.pin = "12;34";
        ASSERT_ERR(webapply_file(&req, &res), -EBADMSG);
        ASSERT_TRUE(res.output != NULL);
        ASSERT_TRUE(strstr(res.output, "12;34") == NULL && strstr(res.output, "12%3B34") == NULL);
        ASSERT_TRUE(strstr(res.output, "?pin-value=***\" raw ***") != NULL);
}

static void test_output_mask(void) {
        _cleanup_free_ char *a = NULL, *b = NULL, *c = NULL, *d = NULL;
        const char in[] = " \n pin 1234 and 12345 and %31234\t\r\n";

        ASSERT_OK(webapply_output_mask(in, strlen(in), "1234", &a));
        ASSERT_STREQ(a, "pin *** and ***5 and %3***");
        ASSERT_OK(webapply_output_mask(in, strlen(in), NULL, &b));
        ASSERT_STREQ(b, "pin 1234 and 12345 and %31234");
        ASSERT_OK(webapply_output_mask("a b/c", 5, "b/c", &c)); /* raw and encoded ("b%2Fc") */
        ASSERT_STREQ(c, "a ***");
        ASSERT_OK(webapply_output_mask("   ", 3, "x", &d));
        ASSERT_STREQ(d, "");
}

static void test_bad_requests(void) {
        FIXTURE(f);
        struct webapply_req req = req_for(&f, "x\n");
        const char *const empty[] = { NULL };

        req.path = NULL;
        ASSERT_ERR(webapply_file(&req, &res), -EINVAL);
        req.path = f.conf;
        req.server = _WEBAPPLY_SERVER_MAX;
        ASSERT_ERR(webapply_file(&req, &res), -EINVAL);
        req.server = WEBAPPLY_HTTPD;
        req.test_argv = empty;
        ASSERT_ERR(webapply_file(&req, &res), -EINVAL);
        req.test_argv = f.test_argv;
        req.text_len = WEBAPPLY_MAX_FILE + 1;
        ASSERT_ERR(webapply_file(&req, &res), -EFBIG);
        req.text_len = 2;
        req.path = f.dir; /* a directory */
        ASSERT_ERR(webapply_file(&req, &res), -EINVAL);
        ASSERT_ERR(webapply_file(NULL, &res), -EINVAL);
        ASSERT_TRUE(access(f.log, F_OK) < 0); /* nothing ran */
        ASSERT_EQ(webapply_server_from_string("httpd"), WEBAPPLY_HTTPD);
        ASSERT_EQ(webapply_control_from_string("systemd"), WEBAPPLY_SYSTEMD);
        ASSERT_EQ(webapply_control_from_string("shell"), -EINVAL);
        ASSERT_STREQ(webapply_step_to_string(WEBAPPLY_STEP_TEST), "config test");
}

/* ---- the subprocess runner ---- */

static void test_subprocess_cap(void) {
        _cleanup_(subprocess_result_done) struct subprocess_result r = {};
        const char *const argv[] = { "head", "-c", "200000", "/dev/zero", NULL };

        ASSERT_OK(subprocess_run(argv, 0, &r));
        ASSERT_TRUE(subprocess_result_ok(&r) && r.truncated);
        ASSERT_EQ(r.output_len, SUBPROCESS_MAX_OUTPUT);
}

/* A daemon left behind holding the output pipe does not make us wait for it. */
static void test_subprocess_grandchild(void) {
        _cleanup_(subprocess_result_done) struct subprocess_result r = {};
        const char *const argv[] = { "sh", "-c", "sleep 3 & echo started", NULL };

        ASSERT_OK(subprocess_run(argv, 2000, &r));
        ASSERT_TRUE(subprocess_result_ok(&r) && !r.timed_out);
        ASSERT_STREQ(r.output, "started\n");
}

static void test_subprocess_errors(void) {
        _cleanup_(subprocess_result_done) struct subprocess_result r = {};
        const char *const missing[] = { "no-such-program-enclave-acm", NULL };
        const char *const empty[] = { NULL };

        ASSERT_ERR(subprocess_run(missing, 0, &r), -ENOENT);
        ASSERT_ERR(subprocess_run(empty, 0, &r), -EINVAL);
        ASSERT_ERR(subprocess_run(NULL, 0, &r), -EINVAL);
}

/* A run's verdict as an error: status 0, another status, a signal, the time running out. */
static void test_subprocess_verdict(void) {
        static const struct {
                const char *script;
                unsigned timeout_ms;
                int want;
        } cases[] = {
                { "exit 0", 0, 0 },
                { "exit 3", 0, -EBADMSG },
                { "kill -TERM $$", 0, -EBADMSG },
                { "sleep 5", 200, -ETIMEDOUT },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(subprocess_result_done) struct subprocess_result r = {};
                const char *const argv[] = { "sh", "-c", cases[i].script, NULL };

                ASSERT_OK(subprocess_run(argv, cases[i].timeout_ms, &r));
                ASSERT_EQ(subprocess_result_errno(&r), cases[i].want);
                ASSERT_EQ(subprocess_result_ok(&r), cases[i].want == 0);
        }
}

TAP_MAIN(TEST("/webapply/apply/success", test_apply_success),
         TEST("/webapply/apply/idempotent", test_apply_idempotent),
         TEST("/webapply/apply/new-file", test_apply_new_file),
         TEST("/webapply/probe-write", test_probe_write),
         TEST("/webapply/apply/mode-owner", test_apply_mode_owner),
         TEST("/webapply/apply/symlink", test_apply_symlink),
         TEST("/webapply/rollback/failed-test", test_rollback_failed_test),
         TEST("/webapply/rollback/crash", test_rollback_crash),
         TEST("/webapply/rollback/timeout", test_rollback_timeout),
         TEST("/webapply/rollback/new-file", test_rollback_new_file),
         TEST("/webapply/rollback/missing-command", test_rollback_missing_command),
         TEST("/webapply/reload/failure-keeps-file", test_reload_failure_keeps_file),
         TEST("/webapply/reload/pid-file", test_reload_pid_file),
         TEST("/webapply/server/survives", test_server_survives),
         TEST("/webapply/server/died", test_server_died),
         TEST("/webapply/server/died-start-fails", test_server_died_start_fails),
         TEST("/webapply/server/died-reload-fails", test_server_died_reload_fails),
         TEST("/webapply/server/reload-fails-server-runs", test_reload_fails_server_runs),
         TEST("/webapply/server/force-start", test_force_start),
         TEST("/webapply/server/no-start", test_no_start),
         TEST("/webapply/server/start-fails", test_start_fails),
         TEST("/webapply/systemd/force-start", test_systemd_force_start),
         TEST("/webapply/systemd/died", test_systemd_died),
         TEST("/webapply/pid-file/nginx", test_pid_file_nginx),
         TEST("/webapply/pid-file/httpd", test_pid_file_httpd),
         TEST("/webapply/pid-file/errors", test_pid_file_errors),
         TEST("/webapply/argv/no-shell", test_argv_no_shell),
         TEST("/webapply/report/pin-masked", test_pin_masked),
         TEST("/webapply/report/output-mask", test_output_mask),
         TEST("/webapply/bad-requests", test_bad_requests), TEST("/subprocess/cap", test_subprocess_cap),
         TEST("/subprocess/grandchild", test_subprocess_grandchild),
         TEST("/subprocess/errors", test_subprocess_errors),
         TEST("/subprocess/verdict", test_subprocess_verdict))
