/* Finding a web server's pid file as the server itself would: nginx's "pid" directive or built-in
 * default, httpd's PidFile as the server reports it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parent/subprocess.h"
#include "parent/webapply.h"
#include "nginx/nginxconf.h"

/* nginx's compiled-in defaults when `nginx -V` names none (nginx's auto/options). */
#define NGINX_DEFAULT_PREFIX   "/usr/local/nginx/"
#define NGINX_DEFAULT_CONF     "conf/nginx.conf"
#define NGINX_DEFAULT_PID_PATH "logs/nginx.pid"

/* "--NAME=VALUE" of `nginx -V`'s configure arguments; NULL when absent. */
static int configure_arg(const char *out, const char *name, char **ret) {
        _cleanup_free_ char *needle = NULL;
        const char *p;

        if (asprintf(&needle, " --%s=", name) < 0)
                return -ENOMEM;
        p = strstr(out, needle);
        if (!p) {
                *ret = NULL;
                return 0;
        }
        p += strlen(needle);
        *ret = strndup(p, strcspn(p, " \t\r\n'\""));
        return *ret ? 0 : -ENOMEM;
}

struct nginx_builtin {
        char *prefix, *conf, *pid;
};

static void nginx_builtin_done(struct nginx_builtin *b) {
        free(b->prefix);
        free(b->conf);
        free(b->pid);
}

static int nginx_builtin_get(const char *binary, unsigned timeout_ms, struct nginx_builtin *b) {
        _cleanup_(subprocess_result_done) struct subprocess_result s = { .exit_status = -1 };
        const char *const argv[] = { binary, "-V", NULL };
        int r;

        r = subprocess_run(argv, timeout_ms, &s);
        if (r >= 0)
                r = subprocess_result_errno(&s);
        if (r < 0)
                return r;
        if ((r = configure_arg(s.output, "prefix", &b->prefix)) < 0 ||
            (r = configure_arg(s.output, "conf-path", &b->conf)) < 0 ||
            (r = configure_arg(s.output, "pid-path", &b->pid)) < 0)
                return r;
        return 0;
}

/* A relative path is nginx's prefix's. */
static int under_prefix(const char *prefix, const char *path, char **ret) {
        size_t n = strlen(prefix);

        if (path[0] == '/')
                *ret = strdup(path);
        else if (asprintf(ret, "%s%s%s", prefix, n > 0 && prefix[n - 1] == '/' ? "" : "/", path) < 0)
                *ret = NULL;
        return *ret ? 0 : -ENOMEM;
}

/* The config's "pid", NULL when it has none or does not exist. */
static int nginx_conf_pid(const char *config, char **ret) {
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        int r;

        r = webapply_read_file(config, &text, &len);
        if (r == -ENOENT) {
                *ret = NULL;
                return 0;
        }
        if (r < 0)
                return r;
        r = nginxconf_get_pid(text, len, ret, NULL);
        return r < 0 ? (r == -ENOMEM ? r : -EBADMSG) : 0;
}

static int nginx_pid_file(const char *binary, const char *config, unsigned timeout_ms, char **ret) {
        _cleanup_(nginx_builtin_done) struct nginx_builtin b = {};
        _cleanup_free_ char *pid = NULL, *conf = NULL;
        int r;

        if (config && (r = nginx_conf_pid(config, &pid)) < 0)
                return r;
        if (pid && pid[0] == '/') {
                *ret = TAKE_PTR(pid);
                return 0;
        }
        r = nginx_builtin_get(binary, timeout_ms, &b);
        if (r < 0)
                return r;
        if (!b.prefix && !(b.prefix = strdup(NGINX_DEFAULT_PREFIX)))
                return -ENOMEM;
        if (!config) {
                r = under_prefix(b.prefix, b.conf ?: NGINX_DEFAULT_CONF, &conf);
                if (r < 0 || (r = nginx_conf_pid(conf, &pid)) < 0)
                        return r;
        }
        return under_prefix(b.prefix, pid ?: b.pid ?: NGINX_DEFAULT_PID_PATH, ret);
}

/* `httpd -t -D DUMP_RUN_CFG` prints PidFile: "/run/apache2/apache2.pid", already absolute. */
static int httpd_pid_file(const char *binary, const char *config, unsigned timeout_ms, char **ret) {
        _cleanup_(subprocess_result_done) struct subprocess_result s = { .exit_status = -1 };
        const char *const argv[] = {
                binary, "-t", "-D", "DUMP_RUN_CFG", config ? "-f" : NULL, config, NULL
        };
        static const char key[] = "PidFile: \"";
        const char *p;
        size_t n;
        int r;

        r = subprocess_run(argv, timeout_ms, &s);
        if (r >= 0)
                r = subprocess_result_errno(&s);
        if (r < 0)
                return r;
        for (p = s.output; strncmp(p, key, strlen(key)) != 0; p++) {
                p = strchr(p, '\n');
                if (!p)
                        return -EBADMSG;
        }
        p += strlen(key);
        n = strcspn(p, "\"\n");
        if (n == 0 || p[n] != '"')
                return -EBADMSG;
        *ret = strndup(p, n);
        return *ret ? 0 : -ENOMEM;
}

int webapply_pid_file_find(enum webapply_server server, const char *binary, const char *config,
                           unsigned timeout_ms, char **ret) {
        if (!ret || (binary && !binary[0]) || (config && !config[0]))
                return -EINVAL;
        if (server == WEBAPPLY_NGINX)
                return nginx_pid_file(binary ?: "nginx", config, timeout_ms, ret);
        if (server == WEBAPPLY_HTTPD)
                return httpd_pid_file(binary ?: "apachectl", config, timeout_ms, ret);
        return -EINVAL;
}
