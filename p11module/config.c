/* The module's configuration: environment read once at C_Initialize, address resolved per connect. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/parse-util.h"
#include "p11module/config.h"
#include "p11module/debug.h"

/* A value the module cannot use is named in the trace with what is used instead: a host's typo must
 * not break it, and the module prints nothing unless ENCLAVE_ACM_DEBUG turned the trace on. At load
 * time p11_debug_mask is not set yet, hence the config's own mask. */
#define config_trace(c, ...)                                  \
        do {                                                  \
                if ((c)->debug)                               \
                        p11_debug_log("config", __VA_ARGS__); \
        } while (0)

static unsigned long env_number(const struct p11_config *c, const char *name, unsigned long min,
                                unsigned long max, unsigned long def, const char *unit) {
        const char *s = secure_getenv(name);
        unsigned long v;
        int r;

        if (!s)
                return def;
        r = parse_unsigned(s, 10, min, max, &v);
        if (r == -ERANGE)
                config_trace(c, "%s='%s' is out of range (%lu to %lu %s), using the default %lu", name, s,
                             min, max, unit, def);
        else if (r < 0)
                config_trace(c, "%s='%s' is not a number of %s, using the default %lu", name, s, unit, def);
        return r < 0 ? def : v;
}

/* NULL when unset or unusable (then the address file, else the default, is used). */
static int env_address(const struct p11_config *c, char **ret) {
        const char *s = secure_getenv("ENCLAVE_ACM_ADDRESS");
        struct transport_addr a;

        *ret = NULL;
        if (!s)
                return 0;
        if (transport_addr_parse(s, &a) < 0) {
                config_trace(c,
                             "ENCLAVE_ACM_ADDRESS='%s' is not an address (unix:path=/absolute/path or "
                             "vsock:cid=N;port=P), using the address file '%s', else the default %s",
                             s, c->address_file, P11_DEFAULT_ADDRESS);
                return 0;
        }
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

static int env_address_file(const struct p11_config *c, char **ret) {
        const char *s = secure_getenv("ENCLAVE_ACM_ADDRESS_FILE");

        if (s && !*s) {
                config_trace(c, "ENCLAVE_ACM_ADDRESS_FILE='' is not a file name, using the default %s",
                             P11_DEFAULT_ADDRESS_FILE);
                s = NULL;
        }
        *ret = strdup(s ?: P11_DEFAULT_ADDRESS_FILE);
        return *ret ? 0 : -ENOMEM;
}

/* Read by common/secret.c where a buffer is locked; only "1" turns locking off. */
static void env_no_mlock(const struct p11_config *c) {
        const char *s = secure_getenv("ENCLAVE_ACM_NO_MLOCK");

        if (s && strcmp(s, "1") != 0)
                config_trace(
                        c, "ENCLAVE_ACM_NO_MLOCK='%s' is not 1, secret buffers are locked (the default)", s);
}

int p11_config_load(struct p11_config *ret) {
        _cleanup_(p11_config_done) struct p11_config c = {};
        int r;

        c.debug = p11_debug_parse(secure_getenv("ENCLAVE_ACM_DEBUG"));
        c.timeout_ms = (int) env_number(&c, "ENCLAVE_ACM_TIMEOUT_MS", 1, P11_TIMEOUT_MS_MAX,
                                        P11_DEFAULT_TIMEOUT_MS, "milliseconds");
        c.busy_poll_usec = (unsigned) env_number(&c, "ENCLAVE_ACM_BUSY_POLL_USEC", 0, P11_BUSY_POLL_MAX_USEC,
                                                 P11_DEFAULT_BUSY_POLL_USEC, "microseconds");
        env_no_mlock(&c);
        r = env_address_file(&c, &c.address_file);
        if (r < 0)
                return r;
        r = env_address(&c, &c.address);
        if (r < 0)
                return r;
        *ret = c;
        c = (struct p11_config){};
        return 0;
}

void p11_config_done(struct p11_config *c) {
        if (!c)
                return;
        free(c->address);
        free(c->address_file);
        *c = (struct p11_config){};
}

int p11_config_first_line(const char *buf, size_t len, char *ret, size_t size) {
        size_t n = 0;

        while (n < len && buf[n] != '\n' && buf[n] != '\0')
                n++;
        while (n > 0 && strchr(" \t\r", buf[n - 1]))
                n--;
        if (n == 0 || n >= size)
                return -EINVAL;
        memcpy(ret, buf, n);
        ret[n] = '\0';
        return 0;
}

/* 0 with the first line, -ENOENT when the file is missing, unreadable or empty (use the default). */
static int read_address_file(const char *path, char *ret, size_t size) {
        char buf[512];
        ssize_t n;
        int fd, e;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                p11_debug(P11_DEBUG_RPC, "address file '%s': %s, using the default %s", path,
                          strerror(errno), P11_DEFAULT_ADDRESS);
                return -ENOENT;
        }
        do
                n = read(fd, buf, sizeof(buf));
        while (n < 0 && errno == EINTR);
        e = errno; /* before close() */
        (void) close(fd);
        if (n < 0 || p11_config_first_line(buf, (size_t) n, ret, size) < 0) {
                p11_debug(P11_DEBUG_RPC, "address file '%s': %s, using the default %s", path,
                          n < 0 ? strerror(e) : "no address on its first line", P11_DEFAULT_ADDRESS);
                return -ENOENT;
        }
        return 0;
}

int p11_config_address(const struct p11_config *c, struct transport_addr *ret) {
        char line[512];

        if (c->address && transport_addr_parse(c->address, ret) == 0)
                return 0;
        if (!c->address && read_address_file(c->address_file, line, sizeof(line)) == 0) {
                if (transport_addr_parse(line, ret) == 0)
                        return 0;
                p11_debug(P11_DEBUG_RPC, "address file '%s': '%s' is not an address, using the default %s",
                          c->address_file, line, P11_DEFAULT_ADDRESS);
        }
        return transport_addr_parse(P11_DEFAULT_ADDRESS, ret) < 0 ? -EINVAL : 0;
}
