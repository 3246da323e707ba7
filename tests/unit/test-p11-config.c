/* The module's environment: a value it cannot use is named in the debug trace and the documented default
 * is used; without ENCLAVE_ACM_DEBUG the module prints nothing at all. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "p11module/config.h"
#include "p11module/debug.h"
#include "p11module/interface.h"
#include "tests/lib/capture.h"
#include "tests/lib/tap.h"

/* The defaults README.md documents. */
#define DOC_TIMEOUT_MS     5000
#define DOC_BUSY_POLL_USEC 50
#define DOC_ADDRESS_FILE   "/run/enclave-acm/address"
#define DOC_VSOCK_CID      16
#define DOC_VSOCK_PORT     9999
#define NO_SUCH_FILE       "/nonexistent/enclave-acm-test/address"
#define TRACE_PREFIX       "enclave-acm-pkcs11["

static const char *const module_vars[] = {
        "ENCLAVE_ACM_DEBUG",   "ENCLAVE_ACM_TIMEOUT_MS",   "ENCLAVE_ACM_BUSY_POLL_USEC",
        "ENCLAVE_ACM_ADDRESS", "ENCLAVE_ACM_ADDRESS_FILE",
};

static void env_clear(void) {
        for (size_t i = 0; i < ELEMENTSOF(module_vars); i++)
                (void) unsetenv(module_vars[i]);
}

/* p11_config_load() with stderr captured into *ret_trace. */
static int load(struct p11_config *c, const char **ret_trace) {
        int r;

        capture_stderr_begin();
        r = p11_config_load(c);
        *ret_trace = capture_stderr_end();
        return r;
}

/* Only var=value set (none when var is NULL), and ENCLAVE_ACM_DEBUG=debug unless it is NULL; then load(). */
static int load_with(const char *var, const char *value, const char *debug, struct p11_config *c,
                     const char **ret_trace) {
        env_clear();
        if (var)
                (void) setenv(var, value, 1);
        if (debug)
                (void) setenv("ENCLAVE_ACM_DEBUG", debug, 1);
        return load(c, ret_trace);
}

static void test_defaults(void) {
        struct p11_config c = {};
        const char *trace;

        ASSERT_OK(load_with(NULL, NULL, "all", &c, &trace));
        ASSERT_EQ(c.timeout_ms, DOC_TIMEOUT_MS);
        ASSERT_EQ(c.busy_poll_usec, DOC_BUSY_POLL_USEC);
        ASSERT_TRUE(c.address == NULL);
        ASSERT_STREQ(c.address_file, DOC_ADDRESS_FILE);
        ASSERT_EQ(c.debug, P11_DEBUG_ALL);
        p11_config_done(&c);
        ASSERT_STREQ(trace, "");
}

static const struct {
        const char *var, *value;
        unsigned long want;
        const char *line; /* the trace line, after its prefix */
} numbers[] = {
        /* unusable: the default, and why */
        { "ENCLAVE_ACM_TIMEOUT_MS", "abc", DOC_TIMEOUT_MS,
          "ENCLAVE_ACM_TIMEOUT_MS='abc' is not a number of milliseconds, using the default 5000" },
        { "ENCLAVE_ACM_TIMEOUT_MS", "", DOC_TIMEOUT_MS,
          "ENCLAVE_ACM_TIMEOUT_MS='' is not a number of milliseconds, using the default 5000" },
        { "ENCLAVE_ACM_TIMEOUT_MS", "-1", DOC_TIMEOUT_MS,
          "ENCLAVE_ACM_TIMEOUT_MS='-1' is not a number of milliseconds, using the default 5000" },
        { "ENCLAVE_ACM_TIMEOUT_MS", "+100", DOC_TIMEOUT_MS,
          "ENCLAVE_ACM_TIMEOUT_MS='+100' is not a number of milliseconds, using the default 5000" },
        { "ENCLAVE_ACM_TIMEOUT_MS", " 100", DOC_TIMEOUT_MS,
          "ENCLAVE_ACM_TIMEOUT_MS=' 100' is not a number of milliseconds, using the default 5000" },
        { "ENCLAVE_ACM_TIMEOUT_MS", "100 ", DOC_TIMEOUT_MS,
          "ENCLAVE_ACM_TIMEOUT_MS='100 ' is not a number of milliseconds, using the default 5000" },
        { "ENCLAVE_ACM_TIMEOUT_MS", "100ms", DOC_TIMEOUT_MS,
          "ENCLAVE_ACM_TIMEOUT_MS='100ms' is not a number of milliseconds, using the default 5000" },
        { "ENCLAVE_ACM_TIMEOUT_MS", "0x10", DOC_TIMEOUT_MS,
          "ENCLAVE_ACM_TIMEOUT_MS='0x10' is not a number of milliseconds, using the default 5000" },
        { "ENCLAVE_ACM_TIMEOUT_MS", "0", DOC_TIMEOUT_MS,
          "ENCLAVE_ACM_TIMEOUT_MS='0' is out of range (1 to 600000 milliseconds), using the default 5000" },
        { "ENCLAVE_ACM_TIMEOUT_MS", "600001", DOC_TIMEOUT_MS,
          "ENCLAVE_ACM_TIMEOUT_MS='600001' is out of range (1 to 600000 milliseconds), using the default "
          "5000" },
        { "ENCLAVE_ACM_TIMEOUT_MS", "99999999999999999999999", DOC_TIMEOUT_MS,
          "ENCLAVE_ACM_TIMEOUT_MS='99999999999999999999999' is out of range (1 to 600000 milliseconds), "
          "using the default 5000" },
        { "ENCLAVE_ACM_BUSY_POLL_USEC", "-1", DOC_BUSY_POLL_USEC,
          "ENCLAVE_ACM_BUSY_POLL_USEC='-1' is not a number of microseconds, using the default 50" },
        { "ENCLAVE_ACM_BUSY_POLL_USEC", "abc", DOC_BUSY_POLL_USEC,
          "ENCLAVE_ACM_BUSY_POLL_USEC='abc' is not a number of microseconds, using the default 50" },
        { "ENCLAVE_ACM_BUSY_POLL_USEC", "", DOC_BUSY_POLL_USEC,
          "ENCLAVE_ACM_BUSY_POLL_USEC='' is not a number of microseconds, using the default 50" },
        { "ENCLAVE_ACM_BUSY_POLL_USEC", "20us", DOC_BUSY_POLL_USEC,
          "ENCLAVE_ACM_BUSY_POLL_USEC='20us' is not a number of microseconds, using the default 50" },
        { "ENCLAVE_ACM_BUSY_POLL_USEC", "10001", DOC_BUSY_POLL_USEC,
          "ENCLAVE_ACM_BUSY_POLL_USEC='10001' is out of range (0 to 10000 microseconds), using the default "
          "50" },
        /* usable: taken as is, nothing traced */
        { "ENCLAVE_ACM_TIMEOUT_MS", "1", 1, NULL },
        { "ENCLAVE_ACM_TIMEOUT_MS", "600000", 600000, NULL },
        { "ENCLAVE_ACM_TIMEOUT_MS", "30000", 30000, NULL },
        { "ENCLAVE_ACM_BUSY_POLL_USEC", "0", 0, NULL },
        { "ENCLAVE_ACM_BUSY_POLL_USEC", "10000", 10000, NULL },
};

static unsigned long number_of(const struct p11_config *c, const char *var) {
        return strcmp(var, "ENCLAVE_ACM_TIMEOUT_MS") == 0 ? (unsigned long) c->timeout_ms
                                                          : c->busy_poll_usec;
}

static void test_numbers(void) {
        for (size_t i = 0; i < ELEMENTSOF(numbers); i++) {
                struct p11_config c = {};
                const char *trace;
                unsigned long got;

                printf("# %s='%s'\n", numbers[i].var, numbers[i].value);
                ASSERT_OK(load_with(numbers[i].var, numbers[i].value, "init", &c, &trace));
                got = number_of(&c, numbers[i].var);
                p11_config_done(&c);
                ASSERT_EQ(got, numbers[i].want);
                if (!numbers[i].line)
                        ASSERT_STREQ(trace, "");
                else {
                        ASSERT_TRUE(strncmp(trace, TRACE_PREFIX, strlen(TRACE_PREFIX)) == 0);
                        ASSERT_TRUE(strstr(trace, numbers[i].line) != NULL);
                        ASSERT_EQ(strchr(trace, '\n') - trace + 1, (long) strlen(trace)); /* one line */
                }

                /* the same without the trace: the same value, not a byte of output */
                (void) unsetenv("ENCLAVE_ACM_DEBUG");
                ASSERT_OK(load(&c, &trace));
                got = number_of(&c, numbers[i].var);
                p11_config_done(&c);
                ASSERT_EQ(got, numbers[i].want);
                ASSERT_STREQ(trace, "");
        }
}

static void test_address(void) {
        static const char *const bad[] = { "tcp:1.2.3.4", "", "unix:path=relative.sock",
                                           "vsock:cid=x;port=1" };
        struct transport_addr a = {};
        struct p11_config c = {};
        const char *trace;
        char line[256];

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                env_clear();
                (void) setenv("ENCLAVE_ACM_ADDRESS", bad[i], 1);
                (void) setenv("ENCLAVE_ACM_ADDRESS_FILE", NO_SUCH_FILE, 1);
                (void) setenv("ENCLAVE_ACM_DEBUG", "rpc", 1);
                ASSERT_OK(load(&c, &trace));
                (void) snprintf(line, sizeof(line),
                                "ENCLAVE_ACM_ADDRESS='%s' is not an address (unix:path=/absolute/path or "
                                "vsock:cid=N;port=P), using the address file '" NO_SUCH_FILE
                                "', else the default vsock:cid=16;port=9999",
                                bad[i]);
                ASSERT_TRUE(strstr(trace, line) != NULL);
                ASSERT_TRUE(c.address == NULL);
                /* no file either: the default */
                ASSERT_OK(p11_config_address(&c, &a));
                p11_config_done(&c);
                ASSERT_EQ(a.family, TRANSPORT_VSOCK);
                ASSERT_EQ(a.cid, DOC_VSOCK_CID);
                ASSERT_EQ(a.port, DOC_VSOCK_PORT);
        }

        env_clear();
        (void) setenv("ENCLAVE_ACM_ADDRESS", "unix:path=/run/x/data.sock", 1);
        (void) setenv("ENCLAVE_ACM_DEBUG", "all", 1);
        ASSERT_OK(load(&c, &trace));
        ASSERT_STREQ(trace, "");
        ASSERT_OK(p11_config_address(&c, &a));
        p11_config_done(&c);
        ASSERT_EQ(a.family, TRANSPORT_UNIX);
        ASSERT_STREQ(a.path, "/run/x/data.sock");
}

static void test_address_file_name(void) {
        struct p11_config c = {};
        const char *trace;

        ASSERT_OK(load_with("ENCLAVE_ACM_ADDRESS_FILE", "", "init", &c, &trace));
        ASSERT_STREQ(c.address_file, DOC_ADDRESS_FILE);
        p11_config_done(&c);
        ASSERT_TRUE(strstr(trace, "ENCLAVE_ACM_ADDRESS_FILE='' is not a file name, using the default "
                                  "/run/enclave-acm/address") != NULL);
}

/* The address file is read at every connect: what it holds, or the default with the reason traced. */
static void test_address_file_content(void) {
        static const struct {
                const char *content, *line;
        } rows[] = {
                { "garbage\n", "'garbage' is not an address, using the default vsock:cid=16;port=9999" },
                { "", "no address on its first line, using the default vsock:cid=16;port=9999" },
                { "\nunix:path=/run/x.sock\n", "no address on its first line, using the default" },
                { "unix:path=/run/y/data.sock \n", NULL },
        };
        char path[] = "/tmp/test-p11-config-XXXXXX";
        int fd = mkstemp(path);

        ASSERT_TRUE(fd >= 0);
        (void) close(fd);
        for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                struct transport_addr a = {};
                struct p11_config c = {};
                const char *trace;
                FILE *f = fopen(path, "we");
                int r;

                ASSERT_TRUE(f != NULL);
                (void) fputs(rows[i].content, f);
                (void) fclose(f);
                env_clear();
                (void) setenv("ENCLAVE_ACM_ADDRESS_FILE", path, 1);
                (void) setenv("ENCLAVE_ACM_DEBUG", "rpc", 1);
                ASSERT_OK(load(&c, &trace));
                p11_debug_mask = c.debug; /* as C_Initialize sets it */
                capture_stderr_begin();
                r = p11_config_address(&c, &a);
                trace = capture_stderr_end();
                p11_debug_mask = 0;
                p11_config_done(&c);
                ASSERT_OK(r);
                if (!rows[i].line) {
                        ASSERT_STREQ(trace, "");
                        ASSERT_STREQ(a.path, "/run/y/data.sock");
                        continue;
                }
                ASSERT_TRUE(strstr(trace, path) != NULL);
                ASSERT_TRUE(strstr(trace, rows[i].line) != NULL);
                ASSERT_EQ(a.family, TRANSPORT_VSOCK);
                ASSERT_EQ(a.cid, DOC_VSOCK_CID);
        }
        (void) unlink(path);
}

static void test_debug_words(void) {
        static const struct {
                const char *value;
                unsigned mask;
                const char *line; /* NULL: nothing printed */
        } rows[] = {
                { "rpc,sesion", P11_DEBUG_RPC,
                  "ENCLAVE_ACM_DEBUG='rpc,sesion': 'sesion' is not one of init, slot, session, object, "
                  "sign, "
                  "rpc, all, ignored" },
                { "session:sign rpc", P11_DEBUG_SESSION | P11_DEBUG_SIGN | P11_DEBUG_RPC, NULL },
                { "yes", P11_DEBUG_ALL, NULL },
                /* nothing known: the trace is off, and says nothing */
                { "sesion", 0, NULL },
                { "0", 0, NULL },
                { "", 0, NULL },
        };

        for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                struct p11_config c = {};
                const char *trace;
                unsigned mask;

                ASSERT_OK(load_with("ENCLAVE_ACM_DEBUG", rows[i].value, NULL, &c, &trace));
                mask = c.debug;
                p11_config_done(&c);
                ASSERT_EQ(mask, rows[i].mask);
                if (rows[i].line)
                        ASSERT_TRUE(strstr(trace, rows[i].line) != NULL);
                else
                        ASSERT_STREQ(trace, "");
        }
}

static void test_no_mlock(void) {
        const char *saved = getenv("ENCLAVE_ACM_NO_MLOCK");
        char *keep = saved ? strdup(saved) : NULL;
        struct p11_config c = {};
        const char *trace;

        (void) setenv("ENCLAVE_ACM_NO_MLOCK", "yes", 1);
        ASSERT_OK(load_with(NULL, NULL, "init", &c, &trace));
        p11_config_done(&c);
        if (keep)
                (void) setenv("ENCLAVE_ACM_NO_MLOCK", keep, 1);
        else
                (void) unsetenv("ENCLAVE_ACM_NO_MLOCK");
        free(keep);
        ASSERT_TRUE(strstr(trace, "ENCLAVE_ACM_NO_MLOCK='yes' is not 1, secret buffers are locked (the "
                                  "default)") != NULL);
}

/* Every variable wrong at once, no ENCLAVE_ACM_DEBUG: initialising, failing to reach the daemon and
 * finalising print nothing into the host's stderr. */
static void test_silent_by_default(void) {
        char path[] = "/tmp/test-p11-config-XXXXXX";
        int fd = mkstemp(path);
        CK_ULONG n = 0;
        const char *trace;
        CK_RV init, list, fini;

        /* the address file names a socket nobody listens on: the connect fails at once */
        ASSERT_TRUE(fd >= 0);
        ASSERT_TRUE(write(fd, "unix:path=" NO_SUCH_FILE ".sock\n",
                          strlen("unix:path=" NO_SUCH_FILE ".sock\n")) > 0);
        (void) close(fd);
        env_clear();
        (void) setenv("ENCLAVE_ACM_TIMEOUT_MS", "abc", 1);
        (void) setenv("ENCLAVE_ACM_BUSY_POLL_USEC", "-1", 1);
        (void) setenv("ENCLAVE_ACM_ADDRESS", "tcp:1.2.3.4", 1);
        (void) setenv("ENCLAVE_ACM_ADDRESS_FILE", path, 1);
        capture_stderr_begin();
        init = C_Initialize(NULL);
        list = C_GetSlotList(CK_FALSE, NULL, &n);
        fini = C_Finalize(NULL);
        trace = capture_stderr_end();
        ASSERT_EQ(init, CKR_OK);
        ASSERT_EQ(list, CKR_OK); /* no daemon: no slots, not an error */
        ASSERT_EQ(n, 0);
        ASSERT_EQ(fini, CKR_OK);
        ASSERT_STREQ(trace, "");

        /* the same with the trace on: it names the values and the defaults used */
        (void) setenv("ENCLAVE_ACM_DEBUG", "init", 1);
        capture_stderr_begin();
        init = C_Initialize(NULL);
        fini = C_Finalize(NULL);
        trace = capture_stderr_end();
        env_clear();
        (void) unlink(path);
        ASSERT_EQ(init, CKR_OK);
        ASSERT_EQ(fini, CKR_OK);
        ASSERT_TRUE(strstr(trace, "ENCLAVE_ACM_TIMEOUT_MS='abc'") != NULL);
        ASSERT_TRUE(strstr(trace, "ENCLAVE_ACM_BUSY_POLL_USEC='-1'") != NULL);
        ASSERT_TRUE(strstr(trace, "ENCLAVE_ACM_ADDRESS='tcp:1.2.3.4'") != NULL);
        ASSERT_TRUE(strstr(trace, "initialised (timeout 5000 ms)") != NULL);
}

TAP_MAIN(TEST("/p11/config/defaults", test_defaults), TEST("/p11/config/numbers", test_numbers),
         TEST("/p11/config/address", test_address),
         TEST("/p11/config/address-file-name", test_address_file_name),
         TEST("/p11/config/address-file-content", test_address_file_content),
         TEST("/p11/config/debug-words", test_debug_words), TEST("/p11/config/no-mlock", test_no_mlock),
         TEST("/p11/config/silent-by-default", test_silent_by_default))
