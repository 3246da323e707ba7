/* Opt-in debug trace to stderr: one line per event, prefixed with the module name and pid. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "p11module/debug.h"

unsigned p11_debug_mask;

static const struct {
        const char *name;
        unsigned flag;
} debug_names[] = {
        { "init", P11_DEBUG_INIT },     { "slot", P11_DEBUG_SLOT }, { "session", P11_DEBUG_SESSION },
        { "object", P11_DEBUG_OBJECT }, { "sign", P11_DEBUG_SIGN }, { "rpc", P11_DEBUG_RPC },
        { "all", P11_DEBUG_ALL },       { "1", P11_DEBUG_ALL },     { "yes", P11_DEBUG_ALL },
};

static unsigned debug_word(const char *w, size_t n) {
        for (size_t i = 0; i < ELEMENTSOF(debug_names); i++)
                if (strlen(debug_names[i].name) == n && strncmp(debug_names[i].name, w, n) == 0)
                        return debug_names[i].flag;
        return 0;
}

/* The next word of a list separated by ',', ':' or ' '; false at the end. */
static bool next_word(const char **p, const char **ret_word, size_t *ret_len) {
        const char *w = *p + strspn(*p, ",: ");

        if (!*w)
                return false;
        *ret_word = w;
        *ret_len = strcspn(w, ",: ");
        *p = w + *ret_len;
        return true;
}

unsigned p11_debug_parse(const char *s) {
        const char *p = s ?: "", *w;
        unsigned mask = 0;
        size_t n;

        while (next_word(&p, &w, &n))
                mask |= debug_word(w, n);
        /* Only a trace that is on can say which words it did not know. */
        for (p = s ?: ""; mask && next_word(&p, &w, &n);)
                if (!debug_word(w, n))
                        p11_debug_log("config",
                                      "ENCLAVE_ACM_DEBUG='%s': '%.*s' is not one of init, slot, session, "
                                      "object, sign, rpc, all, ignored",
                                      s, (int) n, w);
        return mask;
}

void p11_debug_log(const char *func, const char *fmt, ...) {
        char line[512];
        va_list ap;
        int n;

        n = snprintf(line, sizeof(line), "enclave-acm-pkcs11[%d]: %s: ", (int) getpid(), func);
        if (n < 0 || (size_t) n >= sizeof(line))
                return;
        va_start(ap, fmt);
        (void) vsnprintf(line + n, sizeof(line) - (size_t) n, fmt, ap);
        va_end(ap);
        /* One write per line so lines from several threads do not interleave. */
        fprintf(stderr, "%s\n", line);
}
