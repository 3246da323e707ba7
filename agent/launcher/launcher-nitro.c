/* The nitro-cli launcher: run-enclave, its JSON, liveness by kill(ProcessID, 0), terminate-enclave. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/launcher/launcher.h"
#include "common/json.h"
#include "parent/subprocess.h"
#include "common/log.h"

/* The top-level object plus the eight levels of nesting nitro-cli's output was always allowed. */
#define NITRO_JSON_MAX_DEPTH 9

static int read_member(struct json_reader *j, const char *key, struct launcher_nitro_info *info,
                       unsigned *have) {
        int64_t v;
        int r;

        if (strcmp(key, "EnclaveID") == 0) {
                r = json_read_string_buf(j, info->enclave_id, sizeof(info->enclave_id));
                if (r < 0 || !info->enclave_id[0])
                        return -EBADMSG;
                *have |= 1u << 0;
        } else if (strcmp(key, "ProcessID") == 0) {
                if (json_read_int64(j, &v) < 0 || v <= 1 || v > INT32_MAX)
                        return -EBADMSG;
                info->process_id = v;
                *have |= 1u << 1;
        } else if (strcmp(key, "EnclaveCID") == 0) {
                /* 0-2 are the hypervisor, reserved and the host, 3 is the parent instance on
                 * Nitro; 0xffffffff is "any". Same range as acm.yaml's enclave.cid. */
                if (json_read_int64(j, &v) < 0 || v < 4 || v >= UINT32_MAX)
                        return -EBADMSG;
                info->cid = (uint32_t) v;
                *have |= 1u << 2;
        }
        return 0; /* anything else is skipped by the next json_object_next() */
}

int launcher_nitro_parse(const char *text, size_t len, struct launcher_nitro_info *ret) {
        static const struct json_limits limits = { .max_depth = NITRO_JSON_MAX_DEPTH };
        struct launcher_nitro_info info = { .process_id = -1 };
        _cleanup_(json_reader_done) struct json_reader j = {};
        const char *start = NULL, *key;
        unsigned have = 0;
        int r;

        /* nitro-cli may print progress lines first ("Start allocating memory..."): the object starts
         * with the first '{' at the beginning of a line. What follows the object is not looked at. */
        for (size_t i = 0; i < len && !start; i++)
                if (text[i] == '{' && (i == 0 || text[i - 1] == '\n'))
                        start = text + i;
        if (!start)
                return -EBADMSG;
        if (json_reader_init(&j, start, len - (size_t) (start - text), &limits, NULL) < 0 ||
            json_object_begin(&j) < 0)
                return -EBADMSG;
        while ((r = json_object_next(&j, &key)) > 0)
                if (read_member(&j, key, &info, &have) < 0)
                        return -EBADMSG;
        if (r < 0 || have != 7u)
                return -EBADMSG;
        *ret = info;
        return 0;
}

/* Tests have no vsock: with ENCLAVE_ACM_TEST_VSOCK_DIR set, vsock:cid=C;port=P is reached as
 * unix:path=<dir>/vsock-C-P.sock instead, where tests/data/fake-nitro-cli serves it. */
static int vsock_address(uint32_t cid, uint32_t port, char **ret) {
        const char *dir = secure_getenv("ENCLAVE_ACM_TEST_VSOCK_DIR");

        if (dir && *dir)
                return asprintf(ret, "unix:path=%s/vsock-%" PRIu32 "-%" PRIu32 ".sock", dir, cid, port) < 0
                               ? -ENOMEM
                               : 0;
        return asprintf(ret, "vsock:cid=%" PRIu32 ";port=%" PRIu32, cid, port) < 0 ? -ENOMEM : 0;
}

static int run_nitro_cli(const char *const *argv, unsigned timeout_ms, struct subprocess_result *res) {
        int r;

        r = subprocess_run(argv, timeout_ms, res);
        if (r < 0)
                return log_error_errno(r, "Cannot run '%s': %m", argv[0]);
        if (!subprocess_result_ok(res))
                return log_error_errno(-EBADMSG, "'%s %s' failed (%s %d): %s", argv[0], argv[1],
                                       res->timed_out     ? "timed out, signal"
                                       : res->term_signal ? "signal"
                                                          : "status",
                                       res->term_signal ? res->term_signal : res->exit_status, res->output);
        return 0;
}

int launcher_nitro_start(struct launcher *l) {
        _cleanup_(subprocess_result_done) struct subprocess_result res = {};
        char cpu[32], mem[32], cid[32];
        struct launcher_nitro_info info;
        const char *argv[12];
        size_t n = 0;
        int r;

        (void) snprintf(cpu, sizeof(cpu), "%" PRIu64, l->cpu_count);
        (void) snprintf(mem, sizeof(mem), "%" PRIu64, l->memory_mib);
        (void) snprintf(cid, sizeof(cid), "%" PRIu32, l->want_cid);
        argv[n++] = LAUNCHER_NITRO_CLI;
        argv[n++] = "run-enclave";
        argv[n++] = "--eif-path";
        argv[n++] = l->image_path;
        argv[n++] = "--cpu-count";
        argv[n++] = cpu;
        argv[n++] = "--memory";
        argv[n++] = mem;
        if (l->want_cid != 0) {
                argv[n++] = "--enclave-cid";
                argv[n++] = cid;
        }
        argv[n] = NULL;

        /* nitro-cli allocates and boots before it prints: bounded, with the boot timeout on top. */
        r = run_nitro_cli(argv, SUBPROCESS_DEFAULT_TIMEOUT_MS + (unsigned) MIN(l->boot_timeout_ms, 600000u),
                          &res);
        if (r < 0)
                return r;
        r = launcher_nitro_parse(res.output, res.output_len, &info);
        if (r < 0)
                return log_error_errno(r,
                                       "Cannot find EnclaveID, ProcessID and EnclaveCID in the output of "
                                       "'nitro-cli run-enclave': %s",
                                       res.output);

        free(l->enclave_id);
        free(l->data_address);
        free(l->control_address);
        l->data_address = l->control_address = NULL;
        l->enclave_id = strdup(info.enclave_id);
        if (!l->enclave_id || vsock_address(info.cid, l->p11kit_port, &l->data_address) < 0 ||
            vsock_address(info.cid, l->rpc_port, &l->control_address) < 0) {
                l->pid = (pid_t) info.process_id;
                l->running = true;
                launcher_nitro_stop(l);
                l->running = false;
                return log_error_errno(-ENOMEM, "Out of memory");
        }
        l->pid = (pid_t) info.process_id;
        l->cid = info.cid;
        l->running = true;
        log_info("nitro-cli started enclave '%s' (CID %" PRIu32 ", process %d)", l->enclave_id, l->cid,
                 (int) l->pid);
        return 0;
}

/* kill(pid, 0) also succeeds for a zombie nobody reaped yet: look at its state too. */
static bool process_alive(pid_t pid) {
        char path[64], buf[256];
        _cleanup_fclose_ FILE *f = NULL;
        char *p;

        if (pid <= 0 || (kill(pid, 0) < 0 && errno == ESRCH))
                return false;
        (void) snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
        f = fopen(path, "re");
        if (!f || !fgets(buf, sizeof(buf), f))
                return true;   /* no /proc: trust kill() */
        p = strrchr(buf, ')'); /* "pid (comm) S ...": comm may hold anything */
        return !(p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X'));
}

bool launcher_nitro_check(struct launcher *l) {
        if (process_alive(l->pid))
                return true;
        log_error("Enclave '%s' died (its process %d is gone)", l->enclave_id ?: "?", (int) l->pid);
        /* Let nitro-cli release what is left (its CPUs and memory go back to the pool). */
        launcher_nitro_stop(l);
        l->running = false;
        return false;
}

void launcher_nitro_stop(struct launcher *l) {
        _cleanup_(subprocess_result_done) struct subprocess_result res = {};
        const char *argv[] = { LAUNCHER_NITRO_CLI, "terminate-enclave", "--enclave-id", l->enclave_id,
                               NULL };

        if (!l->enclave_id)
                return;
        if (run_nitro_cli(argv, SUBPROCESS_DEFAULT_TIMEOUT_MS, &res) < 0 && l->pid > 0 &&
            kill(l->pid, 0) >= 0) {
                log_warning("Sending SIGTERM to the enclave's process %d instead", (int) l->pid);
                (void) kill(l->pid, SIGTERM);
        }
        free(l->enclave_id);
        l->enclave_id = NULL;
        l->pid = 0;
}

/* ---- Room for a second enclave (upgrades) ---- */

#define ALLOCATOR_DEFAULT_PATH "/etc/nitro_enclaves/allocator.yaml"
#define ALLOCATOR_MAX_FILE     (64u * 1024u)
#define DESCRIBE_MAX_ENCLAVES  64u

static int parse_number(const char *s, size_t len, uint64_t max, uint64_t *ret) {
        uint64_t v = 0;

        if (len == 0 || len > 10)
                return -EBADMSG;
        for (size_t i = 0; i < len; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -EBADMSG;
                v = v * 10 + (uint64_t) (s[i] - '0');
        }
        if (v > max)
                return -EBADMSG;
        *ret = v;
        return 0;
}

/* "2,3,6-9" -> 6 */
static int count_cpu_pool(const char *s, size_t len, uint64_t *ret) {
        uint64_t n = 0;

        if (len == 0 || s[len - 1] == ',')
                return -EBADMSG;
        for (size_t i = 0; i < len;) {
                size_t j = i, k;
                uint64_t a, b;

                while (j < len && s[j] != ',')
                        j++;
                for (k = i; k < j && s[k] != '-'; k++)
                        ;
                if (parse_number(s + i, k - i, 4095, &a) < 0)
                        return -EBADMSG;
                b = a;
                if (k < j && parse_number(s + k + 1, j - k - 1, 4095, &b) < 0)
                        return -EBADMSG;
                if (b < a)
                        return -EBADMSG;
                n += b - a + 1;
                i = j + (j < len);
        }
        if (n == 0)
                return -EBADMSG;
        *ret = n;
        return 0;
}

static void trim(const char **s, size_t *len) {
        while (*len > 0 && (**s == ' ' || **s == '\t')) {
                (*s)++;
                (*len)--;
        }
        while (*len > 0 && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t' || (*s)[*len - 1] == '\r'))
                (*len)--;
        if (*len >= 2 &&
            (((*s)[0] == '"' && (*s)[*len - 1] == '"') || ((*s)[0] == '\'' && (*s)[*len - 1] == '\''))) {
                (*s)++;
                *len -= 2;
        }
}

int launcher_allocator_parse(const char *text, size_t len, uint64_t *ret_memory_mib, uint64_t *ret_cpus) {
        uint64_t mem = 0, cpus = 0;
        bool have_mem = false, have_cpus = false;

        if (len > ALLOCATOR_MAX_FILE)
                return -EBADMSG;
        for (const char *p = text, *end = text + len; p < end;) {
                const char *nl = memchr(p, '\n', (size_t) (end - p)), *colon, *v;
                size_t n = nl ? (size_t) (nl - p) : (size_t) (end - p), klen, vlen;
                const char *hash = memchr(p, '#', n);

                if (hash)
                        n = (size_t) (hash - p);
                colon = memchr(p, ':', n);
                if (colon && p[0] != ' ' && p[0] != '\t') {
                        klen = (size_t) (colon - p);
                        v = colon + 1;
                        vlen = n - klen - 1;
                        trim(&v, &vlen);
                        if (klen == 10 && memcmp(p, "memory_mib", 10) == 0) {
                                if (have_mem || parse_number(v, vlen, UINT32_MAX, &mem) < 0 || mem == 0)
                                        return -EBADMSG;
                                have_mem = true;
                        } else if ((klen == 9 && memcmp(p, "cpu_count", 9) == 0) ||
                                   (klen == 8 && memcmp(p, "cpu_pool", 8) == 0)) {
                                int r = klen == 9 ? parse_number(v, vlen, 4096, &cpus)
                                                  : count_cpu_pool(v, vlen, &cpus);

                                if (have_cpus || r < 0 || cpus == 0)
                                        return -EBADMSG;
                                have_cpus = true;
                        }
                }
                p += (nl ? (size_t) (nl - p) + 1 : (size_t) (end - p));
        }
        if (!have_mem || !have_cpus)
                return -EBADMSG;
        *ret_memory_mib = mem;
        *ret_cpus = cpus;
        return 0;
}

static int describe_member(struct json_reader *j, const char *key, uint64_t *mem, uint64_t *cpus,
                           unsigned *have) {
        int64_t v;

        if (strcmp(key, "MemoryMiB") == 0) {
                if (json_read_int64(j, &v) < 0 || v < 0 || v > UINT32_MAX)
                        return -EBADMSG;
                *mem += (uint64_t) v;
                *have |= 1u;
        } else if (strcmp(key, "NumberOfCPUs") == 0) {
                if (json_read_int64(j, &v) < 0 || v < 0 || v > 4096)
                        return -EBADMSG;
                *cpus += (uint64_t) v;
                *have |= 2u;
        }
        return 0;
}

int launcher_nitro_describe_parse(const char *text, size_t len, uint64_t *ret_memory_mib, uint64_t *ret_cpus,
                                  unsigned *ret_count) {
        static const struct json_limits limits = { .max_depth = NITRO_JSON_MAX_DEPTH };
        _cleanup_(json_reader_done) struct json_reader j = {};
        uint64_t mem = 0, cpus = 0;
        unsigned count = 0;
        const char *start = NULL, *key;
        int r;

        for (size_t i = 0; i < len && !start; i++)
                if (text[i] == '[' && (i == 0 || text[i - 1] == '\n'))
                        start = text + i;
        if (!start || json_reader_init(&j, start, len - (size_t) (start - text), &limits, NULL) < 0 ||
            json_array_begin(&j) < 0)
                return -EBADMSG;
        while ((r = json_array_next(&j)) > 0) {
                unsigned have = 0;

                if (++count > DESCRIBE_MAX_ENCLAVES || json_object_begin(&j) < 0)
                        return -EBADMSG;
                while ((r = json_object_next(&j, &key)) > 0)
                        if (describe_member(&j, key, &mem, &cpus, &have) < 0)
                                return -EBADMSG;
                if (r < 0 || have != 3u)
                        return -EBADMSG;
        }
        if (r < 0)
                return -EBADMSG;
        *ret_memory_mib = mem;
        *ret_cpus = cpus;
        *ret_count = count;
        return 0;
}

int launcher_nitro_room(const struct launcher *old, const struct launcher *next, char **ret_why) {
        _cleanup_(subprocess_result_done) struct subprocess_result res = {};
        static const char *const argv[] = { LAUNCHER_NITRO_CLI, "describe-enclaves", NULL };
        const char *path = secure_getenv("ENCLAVE_ACM_TEST_ALLOCATOR") ?: ALLOCATOR_DEFAULT_PATH;
        _cleanup_free_ char *text = NULL;
        uint64_t mem, cpus, used_mem, used_cpus;
        unsigned count;
        size_t len = 0;
        FILE *f;
        int r;

        f = fopen(path, "re");
        if (!f)
                return asprintf(ret_why, "cannot read the allocator's configuration '%s': %s", path,
                                strerror(errno)) < 0
                               ? -ENOMEM
                               : -EIO;
        text = calloc(1, ALLOCATOR_MAX_FILE + 1);
        if (text)
                len = fread(text, 1, ALLOCATOR_MAX_FILE + 1, f);
        (void) fclose(f);
        if (!text)
                return -ENOMEM;
        if (launcher_allocator_parse(text, len, &mem, &cpus) < 0)
                return asprintf(ret_why, "'%s' has no usable memory_mib and cpu_count / cpu_pool", path) < 0
                               ? -ENOMEM
                               : -EBADMSG;
        r = subprocess_run(argv, SUBPROCESS_DEFAULT_TIMEOUT_MS, &res);
        if (r < 0 || !subprocess_result_ok(&res) ||
            launcher_nitro_describe_parse(res.output, res.output_len, &used_mem, &used_cpus, &count) < 0)
                return asprintf(ret_why, "'nitro-cli describe-enclaves' did not say what runs") < 0
                               ? -ENOMEM
                               : -EBADMSG;
        if (used_mem + next->memory_mib > mem || used_cpus + next->cpu_count > cpus)
                return asprintf(ret_why,
                                "the allocator reserves %" PRIu64 " MiB and %" PRIu64
                                " CPUs, %u enclave%s use %" PRIu64 " MiB and %" PRIu64
                                " CPUs, the new one needs %" PRIu64 " MiB and %" PRIu64 " CPUs",
                                mem, cpus, count, count == 1 ? "" : "s", used_mem, used_cpus,
                                next->memory_mib, next->cpu_count) < 0
                               ? -ENOMEM
                               : 0;
        (void) old;
        return 1;
}
