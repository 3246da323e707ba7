/* `enclave-acm health [--json]`: healthy (0) / degraded (1) / down (2), one line per problem, from the
 * health facts the agent keeps in its state file; for Nagios-style checks and load-balancer hooks. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "tools/cli-health.h"
#include "tools/cli.h"

static void add_local(struct cli_health *h, const char *subject, const char *fmt, ...) _printf_(3, 4);
static void add_local(struct cli_health *h, const char *subject, const char *fmt, ...) {
        size_t k = h->n_local;
        va_list ap;

        h->level = AGENT_STATE_DOWN;
        if (k >= ELEMENTSOF(h->local) || h->n_problems >= ELEMENTSOF(h->problems))
                return;
        h->n_local++;
        va_start(ap, fmt);
        (void) vsnprintf(h->local[k], sizeof(h->local[k]), fmt, ap);
        va_end(ap);
        h->problems[h->n_problems++] = (struct cli_health_problem){ .level = AGENT_STATE_DOWN,
                                                                    .subject = subject,
                                                                    .text = h->local[k] };
}

static void add_agent_problems(const struct cli_agent *a, struct cli_health *h) {
        for (size_t i = 0; i < a->n_problems && h->n_problems < ELEMENTSOF(h->problems); i++) {
                struct agent_state_problem p;

                if (agent_state_problem_from_record(&a->problems[i], &p) < 0) {
                        add_local(h, "agent", "agent: problem record %zu in '%s' is not valid", i + 1,
                                  a->path);
                        continue;
                }
                h->problems[h->n_problems++] = (struct cli_health_problem){
                        .level = p.level, .subject = p.subject, .label = p.label, .text = p.text
                };
                if (p.level > h->level)
                        h->level = p.level;
        }
}

void cli_health_judge(const struct cli_agent *a, int load_error, const char *runtime_dir, uint64_t now,
                      struct cli_health *ret) {
        struct cli_health *h = ret;
        uint64_t pid = 0;

        *h = (struct cli_health){ .level = AGENT_STATE_HEALTHY };
        if (!a) {
                if (load_error == -ENOENT)
                        add_local(h, "agent", "agent: no state file in '%s' (the agent is not running here)",
                                  runtime_dir);
                else
                        add_local(h, "agent", "agent: its state file in '%s' cannot be read (%s)",
                                  runtime_dir, strerror(-load_error));
                return;
        }
        if (!a->running) {
                if (agent_state_get_u64(&a->agent, "pid", &pid) < 0)
                        pid = 0;
                add_local(h, "agent", "agent: not running (pid %" PRIu64 " in '%s' is gone)", pid, a->path);
                return;
        }
        if (!a->health.kind) {
                add_local(h, "agent", "agent: its state file '%s' has no health record (an older agent?)",
                          a->path);
                return;
        }
        if (agent_state_health_from_record(&a->health, &h->facts) < 0) {
                add_local(h, "agent", "agent: the health record in '%s' is not valid", a->path);
                return;
        }
        h->have_facts = true;
        h->level = h->facts.level;
        h->stale = agent_state_health_stale(&h->facts, now);
        if (h->stale)
                add_local(h, "agent",
                          "agent: its health facts are stale (updated %" PRId64 " s ago, more than %" PRIu64
                          " s): its loop looks stuck",
                          (int64_t) (now - h->facts.updated), h->facts.stale_after);
        add_agent_problems(a, h);
        /* a level the problems do not explain still counts (a record cut short) */
        if (h->facts.level > h->level)
                h->level = h->facts.level;
}

static const char *level_upper(enum agent_state_level l) {
        return l == AGENT_STATE_HEALTHY ? "HEALTHY" : l == AGENT_STATE_DEGRADED ? "DEGRADED" : "DOWN";
}

void cli_health_print(const struct cli_health *h, const char *indent) {
        printf("%sHealth:    %s", indent, agent_state_level_to_string(h->level));
        if (h->have_facts) {
                const struct agent_state_health *f = &h->facts;

                if (f->interval == 0)
                        printf(" (in-band pings off)");
                else if (strcmp(f->ping, "none") == 0)
                        printf(" (no in-band ping yet, every %" PRIu64 " s)", f->interval);
                else
                        printf(" (last in-band ping %s in %" PRIu64 ".%03" PRIu64 " ms, %" PRIu64
                               " of %" PRIu64 " misses; %" PRIu64 " relaunch%s for missed pings)",
                               strcmp(f->ping, "ok") == 0 ? "answered" : "MISSED", f->ping_usec / 1000u,
                               f->ping_usec % 1000u, f->misses, f->max_misses, f->relaunches,
                               f->relaunches == 1 ? "" : "es");
        }
        printf("\n");
        for (size_t i = 0; i < h->n_problems; i++)
                printf("%s  %s: %s\n", indent, agent_state_level_to_string(h->problems[i].level),
                       h->problems[i].text);
}

void cli_health_json(const struct cli_health *h, struct json_writer *j) {
        json_string(j, "level", agent_state_level_to_string(h->level));
        json_uint(j, "exit_status", (uint64_t) h->level);
        json_bool(j, "stale", h->stale);
        if (h->have_facts) {
                const struct agent_state_health *f = &h->facts;
                char when[64];

                if (cli_format_time(f->updated, true, when, sizeof(when)))
                        json_string(j, "updated", when);
                json_uint(j, "stale_after_secs", f->stale_after);
                json_uint(j, "interval_secs", f->interval);
                json_uint(j, "timeout_ms", f->timeout_ms);
                json_string(j, "ping", f->ping);
                if (f->ping_at && cli_format_time(f->ping_at, true, when, sizeof(when))) {
                        json_string(j, "ping_at", when);
                        json_uint(j, "ping_usec", f->ping_usec);
                }
                json_uint(j, "misses", f->misses);
                json_uint(j, "max_misses", f->max_misses);
                json_uint(j, "relaunches", f->relaunches);
                json_uint(j, "expiry_warning_days", f->expiry_warning_days);
        }
        json_begin_array(j, "problems");
        for (size_t i = 0; i < h->n_problems; i++) {
                const struct cli_health_problem *p = &h->problems[i];

                json_begin_object(j, NULL);
                json_string(j, "level", agent_state_level_to_string(p->level));
                json_string(j, "subject", p->subject);
                if (p->label)
                        json_string(j, "label", p->label);
                json_string(j, "text", p->text);
                json_end_object(j);
        }
        json_end_array(j);
}

static void help_health(void) {
        printf("Usage: enclave-acm health [--json] [--runtime-dir DIR]\n"
               "\n"
               "Judges the agent's health from its state file DIR/status: the in-band pings of\n"
               "enclave-token on the data and control channels, failing tokens and certificates that\n"
               "expire within options.expiry_warning_days; the agent itself must be running and its\n"
               "facts fresh. Prints the verdict, then one line per problem.\n"
               "\n"
               "  --json             a JSON object instead\n"
               "  --runtime-dir DIR  the agent's runtime directory (default %s)\n"
               "\n"
               "Exit status: 0 healthy, 1 degraded (a token failing, a certificate expiring soon),\n"
               "2 down (the enclave not answering or not running, the agent not running or stuck),\n"
               "3 invalid command line.\n",
               CLI_DEFAULT_RUNTIME_DIR);
}

int cli_verb_health(int argc, char **argv, const struct cli_ctx *ctx) {
        enum { ARG_RUNTIME_DIR = 0x100 };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "json", no_argument, NULL, 'j' },
                { "runtime-dir", required_argument, NULL, ARG_RUNTIME_DIR },
                {},
        };
        _cleanup_(cli_agent_done) struct cli_agent agent = {};
        const char *runtime_dir = CLI_DEFAULT_RUNTIME_DIR;
        struct cli_health h;
        bool json = false;
        int c, r;

        optind = 0;
        while ((c = getopt_long(argc, argv, "hj", options, NULL)) >= 0) {
                switch (c) {
                case 'h': help_health(); return CLI_EXIT_OK;
                case 'j': json = true; break;
                case ARG_RUNTIME_DIR: runtime_dir = optarg; break;
                default: log_error("Try 'enclave-acm health --help'."); return CLI_HEALTH_EXIT_USAGE;
                }
        }
        if (optind < argc) {
                log_error("health: unexpected argument '%s'", argv[optind]);
                return CLI_HEALTH_EXIT_USAGE;
        }
        r = cli_agent_load(runtime_dir, &agent);
        cli_health_judge(r >= 0 ? &agent : NULL, r, runtime_dir, (uint64_t) MAX(time(NULL), (time_t) 0), &h);
        if (json) {
                _cleanup_(json_writer_done) struct json_writer j;

                json_writer_init(&j, false);
                json_begin_object(&j, NULL);
                if (r >= 0)
                        json_string(&j, "state_file", agent.path);
                json_bool(&j, "agent_running", r >= 0 && agent.running);
                cli_health_json(&h, &j);
                json_end_object(&j);
                r = cli_json_print(&j);
        } else {
                printf("%s: %zu problem%s\n", level_upper(h.level), h.n_problems,
                       h.n_problems == 1 ? "" : "s");
                for (size_t i = 0; i < h.n_problems; i++)
                        printf("%s\n", h.problems[i].text);
                r = fflush(stdout) == 0 && !ferror(stdout) ? 0 : -EIO;
        }
        if (r < 0)
                log_error_errno(r, "Cannot write the health verdict: %m");
        (void) ctx;
        /* a verdict that could not be written is no verdict: down */
        return r < 0 ? (int) AGENT_STATE_DOWN : (int) h.level;
}
