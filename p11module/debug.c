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

unsigned p11_debug_parse(const char *s) {
        unsigned mask = 0;

        while (s && *s) {
                size_t n = strcspn(s, ",: ");

                mask |= debug_word(s, n);
                s += n;
                s += strspn(s, ",: ");
        }
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
