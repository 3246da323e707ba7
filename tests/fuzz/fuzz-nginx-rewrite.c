/* Target: nginxconf_ensure_include(), nginxconf_ensure_main() and nginxconf_get_pid() on arbitrary
 * config text.
 *
 * Input: byte 0 picks the options (bits 0-1: port 0/443/8443/80; bit 2: server_name
 * "www.example.com"; bit 3: disable "snippets/snakeoil.conf"; bit 4: no env lines); the rest is the
 * text. Properties: a failure returns nothing and says why; a result is NUL-terminated and a fixed
 * point (applying again changes nothing); the include edit never changes what ensure_main thinks
 * of the text (it still parses, with the same verdict); get_pid returns a NUL-terminated path no
 * longer than the text, or nothing, and neither edit changes what it finds. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nginx/nginxconf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const fuzz_env[] = { "ENCLAVE_ACM_ADDRESS", "OPENSSL_CONF", NULL };
static const char *const fuzz_disable[] = { "snippets/snakeoil.conf", NULL };

static void require(int cond, const char *what) {
        if (!cond) {
                fprintf(stderr, "fuzz-nginx-rewrite: %s\n", what);
                abort();
        }
}

typedef int (*apply_fn)(const char *text, size_t len, const void *opts, char **ret_text, size_t *ret_len,
                        struct nginxconf_error *e);

static int apply_include(const char *t, size_t n, const void *o, char **out, size_t *on,
                         struct nginxconf_error *e) {
        return nginxconf_ensure_include(t, n, o, out, on, e);
}

static int apply_main(const char *t, size_t n, const void *o, char **out, size_t *on,
                      struct nginxconf_error *e) {
        return nginxconf_ensure_main(t, n, o, out, on, e);
}

/* Runs fn; checks the contract; returns its result and keeps the output in *ret_out (or NULL). */
static int run(apply_fn fn, const char *t, size_t n, const void *opts, char **ret_out, size_t *ret_len) {
        struct nginxconf_error e = {};
        char *out = NULL, *again = NULL;
        size_t out_len = 0, again_len = 0;
        int r = fn(t, n, opts, &out, &out_len, &e);

        *ret_out = out;
        *ret_len = out_len;
        if (r < 0) {
                require(out == NULL && e.message != NULL, "failure without a message, or with output");
                require(strncmp(e.message, "internal error", 14) != 0, e.message);
                return r;
        }
        require(r <= 1 && out != NULL && out[out_len] == '\0', "bad result");
        require(r == 1 || (out_len == n && memcmp(out, t, n) == 0), "'unchanged' but the text differs");
        require(fn(out, out_len, opts, &again, &again_len, &e) == 0, "second application changed something");
        require(again_len == out_len && memcmp(again, out, out_len) == 0, "second application differs");
        free(again);
        return r;
}

/* get_pid's contract; returns its result, the path in *ret_pid (or NULL). */
static int get_pid(const char *t, size_t n, char **ret_pid) {
        struct nginxconf_error e = {};
        char *pid = NULL;
        int r = nginxconf_get_pid(t, n, &pid, &e);

        *ret_pid = pid;
        if (r < 0) {
                require(pid == NULL && e.message != NULL,
                        "get_pid: failure without a message, or with a path");
                return r;
        }
        require(r <= 1 && (r == 1) == (pid != NULL), "get_pid: bad result");
        require(!pid || strlen(pid) <= n, "get_pid: a path longer than the text");
        return r;
}

/* The edit at t2 (a result of one of the editors on t1) finds the same pid directive. */
static void same_pid(const char *t1, size_t n1, const char *t2, size_t n2) {
        char *p1 = NULL, *p2 = NULL;
        int r1 = get_pid(t1, n1, &p1), r2 = get_pid(t2, n2, &p2);

        if (r1 >= 0)
                require(r1 == r2 && (!p1 || strcmp(p1, p2) == 0), "an edit changed the pid directive");
        free(p1);
        free(p2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const unsigned ports[] = { 0, 443, 8443, 80 };
        struct nginxconf_include_opts io;
        struct nginxconf_main_opts mo;
        const char *text = (const char *) data + 1;
        char *inc = NULL, *m1 = NULL, *m2 = NULL;
        size_t len, inc_len, m1_len, m2_len;
        int ri, r1, r2;

        if (size < 1)
                return 0;
        len = size - 1;
        io = (struct nginxconf_include_opts){
                .stanza_path = "/etc/enclave-acm/nginx/www.example.com.conf",
                .port = ports[data[0] & 3],
                .server_name = (data[0] & 4) ? "www.example.com" : NULL,
                .disable_includes = (data[0] & 8) ? fuzz_disable : NULL,
        };
        mo = (struct nginxconf_main_opts){ .env = (data[0] & 16) ? NULL : fuzz_env };

        ri = run(apply_include, text, len, &io, &inc, &inc_len);
        r1 = run(apply_main, text, len, &mo, &m1, &m1_len);
        if (ri >= 0) {
                r2 = run(apply_main, inc, inc_len, &mo, &m2, &m2_len);
                require((r1 < 0) == (r2 < 0) && (r1 >= 0 || r1 == r2),
                        "the include edit changed main's verdict");
                free(m2);
                same_pid(text, len, inc, inc_len);
        }
        if (r1 >= 0)
                same_pid(text, len, m1, m1_len);
        else {
                char *pid = NULL;
                (void) get_pid(text, len, &pid);
                free(pid);
        }
        free(inc);
        free(m1);
        return 0;
}
