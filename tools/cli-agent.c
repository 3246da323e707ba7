/* `enclave-acm status`, the agent's side: read the state file the agent rewrites on every change. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "parent/provision.h"
#include "common/secret.h"
#include "tools/cli-agent.h"
#include "tools/cli.h"

void cli_agent_done(struct cli_agent *a) {
        agent_state_record_done(&a->agent);
        for (size_t i = 0; i < a->n_tokens; i++)
                agent_state_record_done(&a->tokens[i]);
        free(a->tokens);
        agent_state_record_done(&a->health);
        for (size_t i = 0; i < a->n_problems; i++)
                agent_state_record_done(&a->problems[i]);
        free(a->problems);
        free(a->path);
        *a = (struct cli_agent){};
}

/* Is pid an enclave-acm-agent? (A stale file may name a pid reused since.) */
static bool agent_alive(const struct agent_state_record *r) {
        _cleanup_free_ char *comm_path = NULL;
        char comm[32] = "";
        uint64_t pid;
        FILE *f;

        if (agent_state_get_u64(r, "pid", &pid) < 0 || pid == 0 || pid > INT32_MAX)
                return false;
        if (kill((pid_t) pid, 0) < 0 && errno != EPERM)
                return false;
        if (asprintf(&comm_path, "/proc/%" PRIu64 "/comm", pid) < 0)
                return false;
        f = fopen(comm_path, "re");
        if (!f)
                return false;
        if (!fgets(comm, sizeof(comm), f))
                comm[0] = '\0';
        (void) fclose(f);
        comm[strcspn(comm, "\n")] = '\0';
        /* the kernel keeps the first 15 bytes of the name */
        return comm[0] && strncmp("enclave-acm-agent", comm, strlen(comm)) == 0;
}

static int append(struct agent_state_record **v, size_t *n, struct agent_state_record *rec) {
        struct agent_state_record *grown = realloc(*v, (*n + 1) * sizeof(*grown));

        if (!grown)
                return -ENOMEM;
        *v = grown;
        (*v)[(*n)++] = *rec;
        return 0;
}

static int add_record(struct cli_agent *a, struct agent_state_record *rec) {
        if (strcmp(rec->kind, "agent") == 0) {
                agent_state_record_done(&a->agent);
                a->agent = *rec;
        } else if (strcmp(rec->kind, "health") == 0) {
                agent_state_record_done(&a->health);
                a->health = *rec;
        } else if (strcmp(rec->kind, "problem") == 0 && a->n_problems < AGENT_STATE_MAX_PROBLEMS) {
                if (append(&a->problems, &a->n_problems, rec) < 0)
                        return -ENOMEM;
        } else if (strcmp(rec->kind, "token") == 0 && agent_state_get(rec, "label")) {
                struct agent_state_record *grown = realloc(a->tokens, (a->n_tokens + 1) * sizeof(*grown));
                if (!grown)
                        return -ENOMEM;
                a->tokens = grown;
                a->tokens[a->n_tokens++] = *rec;
        } else
                agent_state_record_done(rec); /* a kind from a newer agent */
        *rec = (struct agent_state_record){};
        return 0;
}

static int parse_file(struct cli_agent *a, const char *text, size_t len) {
        unsigned line = 0;

        for (const char *p = text, *end = text + len; p < end;) {
                const char *nl = memchr(p, '\n', (size_t) (end - p));
                size_t n = nl ? (size_t) (nl - p) : (size_t) (end - p);
                struct agent_state_record rec = {};
                int r;

                line++;
                if (n > 0 && p[0] != '#') {
                        r = agent_state_parse_line(p, n, &rec);
                        if (r < 0)
                                return log_error_errno(r, "%s:%u: not a valid state record: %m", a->path,
                                                       line);
                        r = add_record(a, &rec);
                        if (r < 0)
                                return log_error_errno(r, "Out of memory");
                }
                p += n + (nl != NULL);
        }
        if (!a->agent.kind)
                return log_error_errno(-EBADMSG, "%s: no agent record", a->path);
        return 0;
}

int cli_agent_load(const char *runtime_dir, struct cli_agent *ret) {
        _cleanup_(cli_agent_done) struct cli_agent a = {};
        _cleanup_secret_ struct secret_buf *text = NULL;
        _cleanup_free_ char *error = NULL;
        int r;

        if (asprintf(&a.path, "%s/%s", runtime_dir, AGENT_STATE_FILE) < 0)
                return log_error_errno(-ENOMEM, "Out of memory");
        r = provision_read_file(a.path, AGENT_STATE_MAX_FILE, "agent state", &text, &error);
        if (r == -ENOENT)
                return r;
        if (r < 0)
                return log_error_errno(r, "%s", error ?: "Cannot read the agent's state file");
        r = parse_file(&a, (const char *) text->data, text->len);
        if (r < 0)
                return r;
        a.running = agent_alive(&a.agent);
        *ret = a;
        a = (struct cli_agent){};
        return 0;
}

const struct agent_state_record *cli_agent_token(const struct cli_agent *a, const char *label) {
        for (size_t i = 0; i < a->n_tokens; i++)
                if (strcmp(agent_state_get(&a->tokens[i], "label"), label) == 0)
                        return &a->tokens[i];
        return NULL;
}

const char *cli_agent_control(const struct cli_agent *a) {
        const char *enclave = agent_state_get(&a->agent, "enclave");

        if (!a->running || !enclave || strcmp(enclave, "running") != 0)
                return NULL;
        return agent_state_get(&a->agent, "control");
}

static const char *time_text(const struct agent_state_record *r, const char *key, bool iso, char *buf,
                             size_t size) {
        uint64_t t;

        if (agent_state_get_u64(r, key, &t) < 0 || !cli_format_time(t, iso, buf, size))
                return NULL;
        return buf;
}

static const char *get(const struct agent_state_record *r, const char *key) {
        return agent_state_get(r, key) ?: "?";
}

void cli_agent_print(const struct cli_agent *a) {
        const struct agent_state_record *r = &a->agent;
        const char *enclave = get(r, "enclave");
        char buf[64];
        const char *since = time_text(r, "started", false, buf, sizeof(buf));

        printf("Agent:     %s (pid %s%s%s), config %s\n",
               a->running ? "running" : "NOT running, last state shown", get(r, "pid"),
               since ? ", started " : "", since ?: "", get(r, "config"));
        printf("           %s via %s, %s launcher; enclave %s", get(r, "service"), get(r, "server_control"),
               get(r, "launcher"), a->running ? enclave : "not watched");
        if (a->running && strcmp(enclave, "running") == 0 && agent_state_get(r, "launches"))
                printf(" (launch %s)", get(r, "launches"));
        if (a->running && agent_state_get(r, "draining_launch"))
                printf("; upgrade: the old enclave (launch %s) drains", get(r, "draining_launch"));
        printf("\n");
        printf("Status:    %s\n", get(r, "status"));
}

void cli_agent_print_token(const struct agent_state_record *t, const char *indent) {
        char a[64], b[64], c[64], d[64];
        const char *v;

        printf("%sAgent:     %s", indent, get(t, "state"));
        if ((v = agent_state_get(t, "key_id")))
                printf(", key id %s", v);
        printf(", source %s\n", get(t, "source"));
        printf("%s           provisioned %s, last sync %s, last refresh %s (every %s s)\n", indent,
               time_text(t, "provisioned", false, a, sizeof(a)) ?: "never",
               time_text(t, "synced", false, b, sizeof(b)) ?: "never",
               time_text(t, "refreshed", false, c, sizeof(c)) ?: "never", get(t, "refresh_interval"));
        if (time_text(t, "not_after", false, d, sizeof(d)))
                printf("%s           certificate expires %s\n", indent, d);
        if (time_text(t, "expires", false, d, sizeof(d)))
                printf("%s           KMS key: the enclave keeps it until %s unless refreshed\n", indent, d);
        if ((v = agent_state_get(t, "target")))
                printf("%sTarget:    %s %s (%s)\n", indent, get(t, "target_kind"), v,
                       strcmp(get(t, "target_applied"), "yes") == 0 ? "applied" : "not applied");
        if ((v = agent_state_get(t, "error"))) {
                const char *at = time_text(t, "error_at", false, a, sizeof(a));

                printf("%sError:     %s%s%s (%s failure%s)\n", indent, v, at ? ", at " : "", at ?: "",
                       get(t, "failures"), strcmp(get(t, "failures"), "1") == 0 ? "" : "s");
        }
}

static void json_time(struct json_writer *j, const struct agent_state_record *r, const char *key) {
        char buf[64];

        if (time_text(r, key, true, buf, sizeof(buf)))
                json_string(j, key, buf);
}

static void json_num(struct json_writer *j, const struct agent_state_record *r, const char *key) {
        uint64_t v;

        if (agent_state_get_u64(r, key, &v) >= 0)
                json_uint(j, key, v);
}

static void json_str(struct json_writer *j, const struct agent_state_record *r, const char *key) {
        const char *v = agent_state_get(r, key);

        if (v)
                json_string(j, key, v);
}

void cli_agent_json(const struct cli_agent *a, struct json_writer *j) {
        static const char *const agent_strs[] = { "version",  "config",  "service",    "server_control",
                                                  "launcher", "enclave", "enclave_id", "control",
                                                  "data",     "status" };
        static const char *const token_strs[] = { "label",       "state",  "source",         "key_source",
                                                  "target_kind", "target", "target_applied", "error" };
        static const char *const token_nums[] = { "key_id", "refresh_interval", "failures" };
        static const char *const token_times[] = { "not_after", "provisioned", "synced",
                                                   "refreshed", "expires",     "error_at" };

        json_begin_object(j, "agent");
        json_string(j, "state_file", a->path);
        json_bool(j, "running", a->running);
        json_num(j, &a->agent, "pid");
        json_time(j, &a->agent, "started");
        for (size_t i = 0; i < sizeof(agent_strs) / sizeof(agent_strs[0]); i++)
                json_str(j, &a->agent, agent_strs[i]);
        json_num(j, &a->agent, "launches");
        json_num(j, &a->agent, "draining_launch");
        json_num(j, &a->agent, "enclave_failures");
        json_num(j, &a->agent, "sync_interval");
        json_begin_array(j, "tokens");
        for (size_t k = 0; k < a->n_tokens; k++) {
                const struct agent_state_record *t = &a->tokens[k];

                json_begin_object(j, NULL);
                for (size_t i = 0; i < sizeof(token_strs) / sizeof(token_strs[0]); i++)
                        json_str(j, t, token_strs[i]);
                for (size_t i = 0; i < sizeof(token_nums) / sizeof(token_nums[0]); i++)
                        json_num(j, t, token_nums[i]);
                for (size_t i = 0; i < sizeof(token_times) / sizeof(token_times[0]); i++)
                        json_time(j, t, token_times[i]);
                json_end_object(j);
        }
        json_end_array(j);
        json_end_object(j);
}
