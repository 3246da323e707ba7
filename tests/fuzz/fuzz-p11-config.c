/* Target: p11_config_load() (parse_unsigned(), p11_debug_parse(), transport_addr_parse() on the
 * module's environment), then p11_config_address() and p11_config_first_line().
 *
 * Input: fields separated by NUL bytes: ENCLAVE_ACM_TIMEOUT_MS, ENCLAVE_ACM_BUSY_POLL_USEC,
 * ENCLAVE_ACM_ADDRESS, ENCLAVE_ACM_DEBUG; what follows the fourth NUL is the text of an address file.
 * A field that is not there leaves its variable unset. */
#include <stdlib.h>
#include <string.h>

#include "p11module/config.h"
#include "p11module/debug.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const vars[] = {
        "ENCLAVE_ACM_TIMEOUT_MS",
        "ENCLAVE_ACM_BUSY_POLL_USEC",
        "ENCLAVE_ACM_ADDRESS",
        "ENCLAVE_ACM_DEBUG",
};

static void check_file_text(const char *text, size_t len) {
        struct transport_addr a;
        char line[512], again[512];

        if (p11_config_first_line(text, len, line, sizeof(line)) < 0)
                return;
        if (line[0] == '\0' || strchr(line, '\n') || strchr(" \t\r", line[strlen(line) - 1]))
                abort();
        /* what parses has a text form that parses to the same address */
        if (transport_addr_parse(line, &a) < 0)
                return;
        if (transport_addr_format(&a, again, sizeof(again)) < 0 || transport_addr_parse(again, &a) < 0)
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const char *p = (const char *) data, *end = p + size;
        struct p11_config c = {};
        struct transport_addr a;
        char *field;

        /* The environment keeps nothing from the previous input. */
        (void) unsetenv("ENCLAVE_ACM_ADDRESS_FILE");
        for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
                const char *nul = p < end ? memchr(p, '\0', (size_t) (end - p)) : NULL;

                if (!nul) {
                        (void) unsetenv(vars[i]);
                        p = end;
                        continue;
                }
                field = strndup(p, (size_t) (nul - p));
                if (!field)
                        return 0;
                (void) setenv(vars[i], field, 1);
                free(field);
                p = nul + 1;
        }
        /* An address file that cannot exist: p11_config_address() falls back without I/O worth fuzzing. */
        (void) setenv("ENCLAVE_ACM_ADDRESS_FILE", "/nonexistent/fuzz-p11-config/address", 1);
        if (p11_config_load(&c) < 0)
                return 0;
        if (c.timeout_ms < 1 || c.timeout_ms > P11_TIMEOUT_MS_MAX ||
            c.busy_poll_usec > P11_BUSY_POLL_MAX_USEC)
                abort();
        if (c.address && transport_addr_parse(c.address, &a) < 0)
                abort(); /* kept only when it parses */
        if (p11_config_address(&c, &a) < 0)
                abort(); /* always an address: the variable, the file or the default */
        p11_config_done(&c);
        check_file_text(p, (size_t) (end - p));
        return 0;
}
