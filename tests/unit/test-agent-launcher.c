/* Unit tests for agent/launcher's pure parts for upgrades: the allocator's configuration, the output of
 * `nitro-cli describe-enclaves`, and the second enclave's sockets and CID. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agent/config/config.h"
#include "agent/launcher/launcher.h"
#include "common/cleanup.h"
#include "tests/lib/tap.h"

static int allocator(const char *text, uint64_t *mem, uint64_t *cpus) {
        return launcher_allocator_parse(text, strlen(text), mem, cpus);
}

static void test_allocator(void) {
        uint64_t mem = 0, cpus = 0;

        /* the file aws-nitro-enclaves-cli installs, values changed */
        ASSERT_OK(allocator(
                "---\n# Enclave configuration file.\n#\n# How much memory to allocate for enclaves "
                "(in MiB).\nmemory_mib: 4096\n#\n# How many CPUs to reserve for enclaves.\ncpu_count: 4\n"
                "#\n# cpu_pool: 2,3,6-9\n",
                &mem, &cpus));
        ASSERT_EQ(mem, 4096);
        ASSERT_EQ(cpus, 4);
        ASSERT_OK(allocator("memory_mib: \"2048\"   # quoted\r\ncpu_pool: 2,3,6-9\n", &mem, &cpus));
        ASSERT_EQ(mem, 2048);
        ASSERT_EQ(cpus, 6);
        ASSERT_OK(allocator("cpu_pool: 1\nmemory_mib: 512", &mem, &cpus)); /* no final newline */
        ASSERT_EQ(cpus, 1);
        /* an indented key belongs to something else */
        ASSERT_OK(allocator("other:\n  memory_mib: 1\nmemory_mib: 64\ncpu_count: 2\n", &mem, &cpus));
        ASSERT_EQ(mem, 64);
}

static void test_allocator_bad(void) {
        static const char *const bad[] = {
                "",
                "memory_mib: 512\n",                            /* no CPUs */
                "cpu_count: 2\n",                               /* no memory */
                "memory_mib: 512\ncpu_count: 2\ncpu_pool: 1\n", /* both: they conflict */
                "memory_mib: 512\nmemory_mib: 512\ncpu_count: 2\n",
                "memory_mib: 0\ncpu_count: 2\n",
                "memory_mib: 512\ncpu_count: 0\n",
                "memory_mib: -5\ncpu_count: 2\n",
                "memory_mib: 5x\ncpu_count: 2\n",
                "memory_mib: 99999999999\ncpu_count: 2\n",
                "memory_mib: 512\ncpu_count: 5000\n",
                "memory_mib: 512\ncpu_pool: 2,\n",
                "memory_mib: 512\ncpu_pool: ,2\n",
                "memory_mib: 512\ncpu_pool: 2,,3\n",
                "memory_mib: 512\ncpu_pool: 5-3\n",
                "memory_mib: 512\ncpu_pool: 1-\n",
                "memory_mib: 512\ncpu_pool: a\n",
                "memory_mib:\ncpu_count: 2\n",
                "# memory_mib: 512\ncpu_count: 2\n",
        };
        uint64_t mem = 7, cpus = 7;

        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                if (allocator(bad[i], &mem, &cpus) != -EBADMSG)
                        TAP_FAIL_("accepted allocator text %zu: '%s'", i, bad[i]);
        ASSERT_EQ(mem, 7); /* outputs untouched on failure */
        ASSERT_EQ(cpus, 7);
}

static int describe(const char *text, uint64_t *mem, uint64_t *cpus, unsigned *n) {
        return launcher_nitro_describe_parse(text, strlen(text), mem, cpus, n);
}

static void test_describe(void) {
        uint64_t mem = 0, cpus = 0;
        unsigned n = 9;

        ASSERT_OK(
                describe("[\n  {\n    \"EnclaveName\": \"enclave-acm\",\n    \"EnclaveID\": \"i-0-enc1\",\n"
                         "    \"ProcessID\": 4242,\n    \"EnclaveCID\": 16,\n    \"NumberOfCPUs\": 2,\n"
                         "    \"CPUIDs\": [1, 3],\n    \"MemoryMiB\": 1024,\n    \"State\": \"RUNNING\",\n"
                         "    \"Flags\": \"NONE\"\n  },\n  {\"MemoryMiB\": 512, \"NumberOfCPUs\": 1}\n]\n",
                         &mem, &cpus, &n));
        ASSERT_EQ(mem, 1536);
        ASSERT_EQ(cpus, 3);
        ASSERT_EQ(n, 2);
        ASSERT_OK(describe("[]\n", &mem, &cpus, &n));
        ASSERT_EQ(mem, 0);
        ASSERT_EQ(n, 0);
        ASSERT_OK(describe("a progress line\n[]", &mem, &cpus, &n));
}

static void test_describe_bad(void) {
        static const char *const bad[] = {
                "",
                "{}",
                "[{\"MemoryMiB\": 1}]",
                "[{\"NumberOfCPUs\": 1}]",
                "[{\"MemoryMiB\": -1, \"NumberOfCPUs\": 1}]",
                "[{\"MemoryMiB\": 1, \"NumberOfCPUs\": 5000}]",
                "[{\"MemoryMiB\": \"1\", \"NumberOfCPUs\": 1}]",
                "[{\"MemoryMiB\": 1, \"NumberOfCPUs\": 1}",
                "[1]",
                "x[]",
        };
        uint64_t mem = 7, cpus = 7;
        unsigned n = 7;

        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                if (describe(bad[i], &mem, &cpus, &n) != -EBADMSG)
                        TAP_FAIL_("accepted describe output %zu: '%s'", i, bad[i]);
        ASSERT_EQ(n, 7);
        /* more enclaves than any instance runs */
        {
                _cleanup_free_ char *many = malloc(70 * 40 + 4);
                char *p = many;

                ASSERT_TRUE(many);
                *p++ = '[';
                for (int i = 0; i < 70; i++)
                        p += sprintf(p, "%s{\"MemoryMiB\":1,\"NumberOfCPUs\":1}", i ? "," : "");
                *p++ = ']';
                *p = '\0';
                ASSERT_ERR(describe(many, &mem, &cpus, &n), -EBADMSG);
        }
}

/* The upgrade's second launcher: the other socket pair, the other CID. */
static void test_next(void) {
        _cleanup_(agent_config_freep) struct agent_config *cfg = NULL;
        _cleanup_(launcher_freep) struct launcher *a = NULL, *b = NULL, *c = NULL;
        _cleanup_(launcher_argv_freep) char **argv = NULL;
        static const char yaml[] = "enclave:\n  launcher: local\n  token_binary: /opt/etok\noptions:\n"
                                   "  runtime_dir: /run/x\ntokens: []\n";
        _cleanup_free_ char *why = NULL;
        bool data = false, control = false;

        ASSERT_OK(agent_config_parse(yaml, strlen(yaml), NULL, &cfg, NULL));
        ASSERT_OK(launcher_new(cfg, &a));
        ASSERT_EQ(a->slot, 0);
        ASSERT_OK(launcher_new_next(cfg, a, &b));
        ASSERT_EQ(b->slot, 1);
        ASSERT_OK(launcher_new_next(cfg, b, &c));
        ASSERT_EQ(c->slot, 0);
        ASSERT_OK(launcher_local_argv(b, false, &argv));
        for (size_t i = 0; argv[i]; i++) {
                data |= strcmp(argv[i], "unix:path=/run/x/data.1.sock") == 0;
                control |= strcmp(argv[i], "unix:path=/run/x/control.1.sock") == 0;
        }
        ASSERT_TRUE(data && control);
        ASSERT_EQ(launcher_room_for_two(a, b, &why), 1);
        ASSERT_TRUE(why == NULL);
        /* not running: no connections to count; a launcher change: no room */
        ASSERT_ERR(launcher_data_connections(a), -EOPNOTSUPP);
        b->kind = AGENT_LAUNCHER_NITRO_CLI;
        ASSERT_EQ(launcher_room_for_two(a, b, &why), 0);
        ASSERT_TRUE(why && strstr(why, "the launcher changes"));
}

static void test_next_nitro_cid(void) {
        _cleanup_(agent_config_freep) struct agent_config *cfg = NULL;
        _cleanup_(launcher_freep) struct launcher *a = NULL, *b = NULL;
        static const char yaml[] = "enclave:\n  cpu_count: 2\n  memory_mib: 1024\n  cid: 16\ntokens: []\n";

        ASSERT_OK(agent_config_parse(yaml, strlen(yaml), NULL, &cfg, NULL));
        ASSERT_OK(launcher_new(cfg, &a));
        ASSERT_EQ(a->want_cid, 16);
        a->cid = 16; /* as nitro-cli reported it */
        ASSERT_OK(launcher_new_next(cfg, a, &b));
        ASSERT_EQ(b->want_cid, 0); /* nitro-cli picks a free one */
        b = launcher_free(b);
        a->cid = 17;
        ASSERT_OK(launcher_new_next(cfg, a, &b));
        ASSERT_EQ(b->want_cid, 16);
}

TAP_MAIN(TEST("/agent-launcher/allocator", test_allocator),
         TEST("/agent-launcher/allocator-bad", test_allocator_bad),
         TEST("/agent-launcher/describe", test_describe),
         TEST("/agent-launcher/describe-bad", test_describe_bad), TEST("/agent-launcher/next", test_next),
         TEST("/agent-launcher/next-nitro-cid", test_next_nitro_cid))
