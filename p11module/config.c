/* The module's configuration: environment read once at C_Initialize, address resolved per connect. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "p11module/config.h"
#include "p11module/debug.h"

static int strdup_env(const char *name, char **ret) {
        const char *v = secure_getenv(name);

        *ret = NULL;
        if (!v || !*v)
                return 0;
        *ret = strdup(v);
        return *ret ? 1 : -ENOMEM;
}

int p11_config_parse_timeout(const char *s, int *ret) {
        unsigned long v;
        char *end;

        if (!s || !*s || *s == '-' || *s == '+')
                return -EINVAL;
        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno != 0 || *end != '\0' || v == 0 || v > P11_TIMEOUT_MS_MAX)
                return -EINVAL;
        *ret = (int) v;
        return 0;
}

int p11_config_load(struct p11_config *ret) {
        struct p11_config c = { .timeout_ms = P11_DEFAULT_TIMEOUT_MS,
                                .busy_poll_usec = P11_DEFAULT_BUSY_POLL_USEC };
        const char *t;
        int r, v;

        c.debug = p11_debug_parse(secure_getenv("ENCLAVE_ACM_DEBUG"));
        t = secure_getenv("ENCLAVE_ACM_TIMEOUT_MS");
        if (t && p11_config_parse_timeout(t, &c.timeout_ms) < 0)
                c.timeout_ms = P11_DEFAULT_TIMEOUT_MS; /* a host's typo must not break it */
        t = secure_getenv("ENCLAVE_ACM_BUSY_POLL_USEC");
        if (t && strcmp(t, "0") == 0)
                c.busy_poll_usec = 0;
        else if (t && p11_config_parse_timeout(t, &v) == 0 && v <= P11_BUSY_POLL_MAX_USEC)
                c.busy_poll_usec = (unsigned) v; /* anything else: the default, as for the timeout */
        r = strdup_env("ENCLAVE_ACM_ADDRESS", &c.address);
        if (r < 0)
                return r;
        r = strdup_env("ENCLAVE_ACM_ADDRESS_FILE", &c.address_file);
        if (r == 0)
                c.address_file = strdup(P11_DEFAULT_ADDRESS_FILE);
        if (!c.address_file) {
                free(c.address);
                return -ENOMEM;
        }
        *ret = c;
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

/* 0 with the first line, -ENOENT when the file is missing or unreadable (use the default). */
static int read_address_file(const char *path, char *ret, size_t size) {
        char buf[512];
        ssize_t n;
        int fd;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                p11_debug(P11_DEBUG_RPC, "address file '%s': %s, using the default", path, strerror(errno));
                return -ENOENT;
        }
        do
                n = read(fd, buf, sizeof(buf));
        while (n < 0 && errno == EINTR);
        (void) close(fd);
        if (n <= 0)
                return -ENOENT;
        return p11_config_first_line(buf, (size_t) n, ret, size) < 0 ? -ENOENT : 0;
}

int p11_config_address(const struct p11_config *c, struct transport_addr *ret) {
        char line[512];
        const char *text = P11_DEFAULT_ADDRESS;
        int r;

        if (c->address)
                text = c->address;
        else if (read_address_file(c->address_file, line, sizeof(line)) == 0)
                text = line;
        r = transport_addr_parse(text, ret);
        if (r < 0)
                p11_debug(P11_DEBUG_RPC, "unparsable address '%s'", text);
        return r < 0 ? -EINVAL : 0;
}
