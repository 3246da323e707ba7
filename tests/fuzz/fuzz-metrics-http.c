/* Target: the agent's /metrics endpoint on untrusted bytes: metrics_http_answer() (the request head a
 * client sends), metrics_listen_parse() (options.metrics_listen) and the exposition writer's escaping
 * (metrics_add() / metrics_render() with arbitrary label values and HELP text).
 *
 * Input: byte 0 picks the function (modulo 3), the rest is its input: 0 a request head; 1 a listen
 * address (cut at the first NUL); 2 a label value and a HELP text separated by the first NUL. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agent/metrics-http.h"
#include "agent/metrics.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fake_scrape(char **ret, size_t *ret_len) {
        *ret = strdup("# HELP a A.\n# TYPE a gauge\na 1\n");
        if (!*ret)
                return -ENOMEM;
        *ret_len = strlen(*ret);
        return 0;
}

static void answer(const uint8_t *d, size_t n) {
        char *out = NULL;
        size_t len = 0;
        int status = 0;

        if (metrics_http_answer((const char *) d, n, fake_scrape, &out, &len, &status) < 0)
                return;
        if (strncmp(out, "HTTP/1.1 ", 9) != 0 || strlen(out) != len ||
            (status != 200 && status != 400 && status != 404 && status != 405))
                abort();
        free(out);
}

static void listen_addr(const uint8_t *d, size_t n) {
        struct metrics_listen l;
        char *s = strndup((const char *) d, n);

        if (!s)
                return;
        if (metrics_listen_parse(s, &l, NULL) >= 0) {
                if (l.kind == METRICS_LISTEN_UNIX ? l.path[0] != '/' : l.port == 0)
                        abort();
                if (l.kind == METRICS_LISTEN_INET && l.addr[0] != 127)
                        abort();
        }
        free(s);
}

/* Whatever the text, the exposition has exactly its three lines: escaping keeps every newline out. */
static void escaping(const uint8_t *d, size_t n) {
        struct metrics_set *m = NULL;
        const uint8_t *nul = memchr(d, 0, n);
        char *value = strndup((const char *) d, nul ? (size_t) (nul - d) : n);
        char *help = nul ? strndup((const char *) nul + 1, n - (size_t) (nul - d) - 1) : strdup("");
        char *out = NULL;
        size_t len = 0, lines = 0;

        if (value && help && metrics_set_new(0, &m) >= 0 &&
            metrics_family(m, "fuzz_total", METRICS_COUNTER, help) >= 0 &&
            metrics_add(m, "fuzz_total", &(struct metrics_label){ "token", value }, 1, 1) >= 0 &&
            metrics_render(m, &out, &len) >= 0) {
                for (size_t i = 0; i < len; i++)
                        lines += out[i] == '\n';
                if (lines != 3 || strncmp(out, "# HELP fuzz_total ", 18) != 0)
                        abort();
        }
        free(out);
        metrics_set_free(m);
        free(value);
        free(help);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size < 1)
                return 0;
        switch (data[0] % 3) {
        case 0: answer(data + 1, size - 1); break;
        case 1: listen_addr(data + 1, size - 1); break;
        default: escaping(data + 1, size - 1); break;
        }
        return 0;
}
