/* Unit tests for agent/health: the ping state machine, the verdict, the watchdog gate, and the health
 * records of the state file read back through parent/agent-state. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/health.h"
#include "common/cleanup.h"
#include "parent/agent-state.h"
#include "tests/lib/tap.h"

#define SEC      1000000ull
#define DAY      86400ull
#define T0       (1000 * SEC)  /* a monotonic start */
#define UNIX_NOW 1800000000ull /* 2027-01-15 */

static const struct agent_health_config cfg = {
        .interval_usec = 10 * SEC,
        .timeout_usec = 3 * SEC,
        .max_misses = 3,
        .expiry_warning_sec = 30 * DAY,
};

static void test_schedule(void) {
        struct agent_health h;
        struct agent_health_config off = cfg;

        agent_health_init(&h, &cfg, T0);
        ASSERT_FALSE(agent_health_ping_due(&h, T0));
        ASSERT_FALSE(agent_health_ping_due(&h, T0 + 10 * SEC - 1));
        ASSERT_TRUE(agent_health_ping_due(&h, T0 + 10 * SEC));
        ASSERT_EQ(agent_health_next_ping(&h), T0 + 10 * SEC);
        /* the next one is one interval after the ping ended */
        ASSERT_FALSE(agent_health_ping_done(&h, T0 + 11 * SEC, UNIX_NOW, 0, 1500, NULL));
        ASSERT_EQ(agent_health_next_ping(&h), T0 + 21 * SEC);
        ASSERT_FALSE(agent_health_ping_due(&h, T0 + 20 * SEC));

        off.interval_usec = 0;
        agent_health_init(&h, &off, T0);
        ASSERT_FALSE(agent_health_ping_due(&h, T0 + 1000 * SEC));
        ASSERT_EQ(agent_health_next_ping(&h), UINT64_MAX);
        ASSERT_TRUE(agent_health_watchdog_ok(&h, T0 + 100000 * SEC));
}

static void test_misses_relaunch(void) {
        struct agent_health h;
        double secs = -1;
        bool ok = true;

        agent_health_init(&h, &cfg, T0);
        ASSERT_FALSE(agent_health_last_ping(&h, &secs, &ok));
        /* two misses, an answer: the count starts again */
        ASSERT_FALSE(agent_health_ping_done(&h, T0 + 10 * SEC, UNIX_NOW, -ETIMEDOUT, 3 * SEC, "data: x"));
        ASSERT_FALSE(agent_health_ping_done(&h, T0 + 20 * SEC, UNIX_NOW, -ETIMEDOUT, 3 * SEC, "data: x"));
        ASSERT_EQ(h.misses, 2);
        ASSERT_TRUE(agent_health_last_ping(&h, &secs, &ok));
        ASSERT_FALSE(ok);
        ASSERT_TRUE(secs > 2.99 && secs < 3.01);
        ASSERT_FALSE(agent_health_ping_done(&h, T0 + 30 * SEC, UNIX_NOW, 0, 250, NULL));
        ASSERT_EQ(h.misses, 0);
        ASSERT_TRUE(agent_health_last_ping(&h, &secs, &ok));
        ASSERT_TRUE(ok);
        ASSERT_TRUE(secs > 0.000249 && secs < 0.000251);
        /* three in a row: relaunch, once */
        ASSERT_FALSE(agent_health_ping_done(&h, T0 + 40 * SEC, UNIX_NOW, -ECONNREFUSED, 10, "a"));
        ASSERT_FALSE(agent_health_ping_done(&h, T0 + 50 * SEC, UNIX_NOW, -ECONNREFUSED, 10, "b"));
        ASSERT_TRUE(agent_health_ping_done(&h, T0 + 60 * SEC, UNIX_NOW, -ECONNREFUSED, 10, "c"));
        ASSERT_EQ(h.relaunches, 1);
        ASSERT_STREQ(h.last_error, "c");
        /* relaunched: the slate is clean, the relaunch count stays */
        agent_health_launched(&h, T0 + 65 * SEC);
        ASSERT_EQ(h.misses, 0);
        ASSERT_FALSE(agent_health_last_ping(&h, &secs, &ok));
        ASSERT_EQ(h.relaunches, 1);
        ASSERT_EQ(agent_health_next_ping(&h), T0 + 75 * SEC);

        /* max_misses 1: the first miss relaunches; 0 is taken as 1 */
        {
                struct agent_health_config one = cfg;

                one.max_misses = 0;
                agent_health_init(&h, &one, T0);
                ASSERT_TRUE(agent_health_ping_done(&h, T0 + 10 * SEC, UNIX_NOW, -ETIMEDOUT, 1, NULL));
                ASSERT_STREQ(h.last_error, "no answer");
        }
}

static void test_watchdog(void) {
        struct agent_health h;
        /* (3 + 1) intervals + the timeout */
        uint64_t window = 43 * SEC;

        agent_health_init(&h, &cfg, T0);
        ASSERT_TRUE(agent_health_watchdog_ok(&h, T0));
        ASSERT_TRUE(agent_health_watchdog_ok(&h, T0 + window));
        ASSERT_FALSE(agent_health_watchdog_ok(&h, T0 + window + 1));
        /* an answered ping moves the window */
        ASSERT_FALSE(agent_health_ping_done(&h, T0 + 40 * SEC, UNIX_NOW, 0, 1, NULL));
        ASSERT_TRUE(agent_health_watchdog_ok(&h, T0 + 40 * SEC + window));
        /* misses do not */
        ASSERT_FALSE(agent_health_ping_done(&h, T0 + 50 * SEC, UNIX_NOW, -ETIMEDOUT, 1, NULL));
        ASSERT_FALSE(agent_health_watchdog_ok(&h, T0 + 40 * SEC + window + 1));
        /* a relaunch does */
        agent_health_launched(&h, T0 + 100 * SEC);
        ASSERT_TRUE(agent_health_watchdog_ok(&h, T0 + 100 * SEC + window));
        ASSERT_FALSE(agent_health_watchdog_ok(&h, T0 + 100 * SEC + window + 1));
}

static void test_verdict(void) {
        _cleanup_(agent_health_report_done) struct agent_health_report rep = {};
        struct agent_health h;
        struct agent_health_token tokens[] = {
                { .label = "ok", .not_after = UNIX_NOW + 90 * DAY },
                { .label = "soon", .not_after = UNIX_NOW + 12 * DAY + 5 },
                { .label = "broken", .failing = true, .error = "key file 'x': No such file" },
                { .label = "old", .not_after = UNIX_NOW - 1 },
                { .label = "edge", .not_after = UNIX_NOW + 30 * DAY },
                { .label = "unknown", .not_after = 0 },
        };
        struct agent_health_input in = { .enclave_running = true, .now = UNIX_NOW };

        agent_health_init(&h, &cfg, T0);
        /* nothing wrong */
        in.tokens = tokens;
        in.n_tokens = 1;
        ASSERT_OK(agent_health_evaluate(&h, &in, &rep));
        ASSERT_EQ(rep.level, AGENT_STATE_HEALTHY);
        ASSERT_EQ(rep.n_problems, 0);
        agent_health_report_done(&rep);

        in.n_tokens = ELEMENTSOF(tokens);
        ASSERT_OK(agent_health_evaluate(&h, &in, &rep));
        ASSERT_EQ(rep.level, AGENT_STATE_DEGRADED);
        ASSERT_EQ(rep.n_problems, 4);
        ASSERT_STREQ(rep.problems[0].label, "soon");
        ASSERT_TRUE(strstr(rep.problems[0].text, "expires in 12 days"));
        ASSERT_STREQ(rep.problems[1].label, "broken");
        ASSERT_TRUE(strstr(rep.problems[1].text, "failing: key file 'x'"));
        ASSERT_STREQ(rep.problems[2].label, "old");
        ASSERT_TRUE(strstr(rep.problems[2].text, "EXPIRED"));
        ASSERT_STREQ(rep.problems[3].label, "edge"); /* exactly the warning time: warned */
        for (size_t i = 0; i < rep.n_problems; i++) {
                ASSERT_EQ(rep.problems[i].level, AGENT_STATE_DEGRADED);
                ASSERT_STREQ(rep.problems[i].subject, "token");
        }
        agent_health_report_done(&rep);

        /* a missed ping: down, the enclave first */
        ASSERT_FALSE(agent_health_ping_done(&h, T0 + 10 * SEC, UNIX_NOW, -ETIMEDOUT, 3 * SEC,
                                            "control channel: no answer"));
        ASSERT_OK(agent_health_evaluate(&h, &in, &rep));
        ASSERT_EQ(rep.level, AGENT_STATE_DOWN);
        ASSERT_EQ(rep.n_problems, 5);
        ASSERT_STREQ(rep.problems[0].subject, "enclave");
        ASSERT_TRUE(rep.problems[0].label == NULL);
        ASSERT_TRUE(strstr(rep.problems[0].text, "missed 1 in-band ping in a row (control channel"));
        agent_health_report_done(&rep);

        /* no enclave; a stopped agent */
        in.enclave_running = false;
        in.n_tokens = 0;
        ASSERT_OK(agent_health_evaluate(&h, &in, &rep));
        ASSERT_EQ(rep.level, AGENT_STATE_DOWN);
        ASSERT_TRUE(strstr(rep.problems[0].text, "not running"));
        agent_health_report_done(&rep);
        in.agent_stopped = true;
        ASSERT_OK(agent_health_evaluate(&h, &in, &rep));
        ASSERT_EQ(rep.n_problems, 1);
        ASSERT_STREQ(rep.problems[0].subject, "agent");
        agent_health_report_done(&rep);

        /* expiry warning 0: only an expired certificate is a problem */
        {
                struct agent_health_config c0 = cfg;

                c0.expiry_warning_sec = 0;
                agent_health_init(&h, &c0, T0);
                in = (struct agent_health_input){ .enclave_running = true,
                                                  .now = UNIX_NOW,
                                                  .tokens = tokens,
                                                  .n_tokens = ELEMENTSOF(tokens) };
                ASSERT_OK(agent_health_evaluate(&h, &in, &rep));
                ASSERT_EQ(rep.n_problems, 2);
                ASSERT_STREQ(rep.problems[0].label, "broken");
                ASSERT_STREQ(rep.problems[1].label, "old");
        }
}

/* A problem's text is one line, bounded. */
static void test_text_bounded(void) {
        _cleanup_(agent_health_report_done) struct agent_health_report rep = {};
        _cleanup_free_ char *error = malloc(4000);
        struct agent_health h;
        struct agent_health_token t = { .label = "x", .failing = true };
        struct agent_health_input in = {
                .enclave_running = true, .now = UNIX_NOW, .tokens = &t, .n_tokens = 1
        };

        ASSERT_TRUE(error);
        memset(error, 'e', 3999);
        error[3999] = '\0';
        error[10] = '\n';
        error[20] = '\r';
        t.error = error;
        agent_health_init(&h, &cfg, T0);
        ASSERT_OK(agent_health_evaluate(&h, &in, &rep));
        ASSERT_EQ(rep.n_problems, 1);
        ASSERT_EQ(strlen(rep.problems[0].text), AGENT_HEALTH_TEXT_MAX - 1);
        ASSERT_TRUE(strchr(rep.problems[0].text, '\n') == NULL &&
                    strchr(rep.problems[0].text, '\r') == NULL);
        ASSERT_STREQ(rep.problems[0].text + AGENT_HEALTH_TEXT_MAX - 4, "...");
}

/* The records the agent writes parse back into what the CLI evaluates. */
static void test_render_parse(void) {
        _cleanup_(agent_health_report_done) struct agent_health_report rep = {};
        _cleanup_free_ char *text = NULL;
        struct agent_health h;
        struct agent_health_token t = { .label = "web site", .failing = true, .error = "a b\tc" };
        struct agent_health_input in = {
                .enclave_running = true, .now = UNIX_NOW, .tokens = &t, .n_tokens = 1
        };
        size_t len = 0, lines = 0;
        FILE *f;

        agent_health_init(&h, &cfg, T0);
        ASSERT_FALSE(agent_health_ping_done(&h, T0 + 10 * SEC, UNIX_NOW - 3, -ETIMEDOUT, 3 * SEC, "data"));
        ASSERT_OK(agent_health_evaluate(&h, &in, &rep));
        f = open_memstream(&text, &len);
        ASSERT_TRUE(f);
        agent_health_render(&h, &rep, UNIX_NOW, 90, f);
        ASSERT_EQ(fclose(f), 0);

        for (char *p = text, *nl; (nl = strchr(p, '\n')); p = nl + 1, lines++) {
                struct agent_state_record rec = {};

                ASSERT_OK(agent_state_parse_line(p, (size_t) (nl - p), &rec));
                if (lines == 0) {
                        struct agent_state_health hs;

                        ASSERT_OK(agent_state_health_from_record(&rec, &hs));
                        ASSERT_EQ(hs.level, AGENT_STATE_DOWN);
                        ASSERT_EQ(hs.updated, UNIX_NOW);
                        ASSERT_EQ(hs.stale_after, 90);
                        ASSERT_EQ(hs.interval, 10);
                        ASSERT_EQ(hs.timeout_ms, 3000);
                        ASSERT_EQ(hs.max_misses, 3);
                        ASSERT_EQ(hs.misses, 1);
                        ASSERT_STREQ(hs.ping, "missed");
                        ASSERT_EQ(hs.ping_at, UNIX_NOW - 3);
                        ASSERT_EQ(hs.ping_usec, 3 * SEC);
                        ASSERT_EQ(hs.expiry_warning_days, 30);
                        ASSERT_FALSE(agent_state_health_stale(&hs, UNIX_NOW + 90));
                        ASSERT_TRUE(agent_state_health_stale(&hs, UNIX_NOW + 91));
                        ASSERT_FALSE(agent_state_health_stale(&hs, UNIX_NOW - 90));
                        ASSERT_TRUE(agent_state_health_stale(&hs, UNIX_NOW - 91));
                } else {
                        struct agent_state_problem pr;

                        ASSERT_OK(agent_state_problem_from_record(&rec, &pr));
                        ASSERT_EQ(pr.level, lines == 1 ? AGENT_STATE_DOWN : AGENT_STATE_DEGRADED);
                        ASSERT_STREQ(pr.subject, lines == 1 ? "enclave" : "token");
                        if (lines == 2) {
                                ASSERT_STREQ(pr.label, "web site");
                                ASSERT_STREQ(pr.text, "token 'web site': failing: a b c");
                        }
                }
                agent_state_record_done(&rec);
        }
        ASSERT_EQ(lines, 3);
}

/* What the CLI refuses in the health records. */
static void test_records_bad(void) {
        static const char *const bad_health[] = {
                "health updated=1 stale_after=9",                          /* no level */
                "health level=fine updated=1 stale_after=9",               /* unknown level */
                "health level=down stale_after=9",                         /* no updated */
                "health level=down updated=1",                             /* no stale_after */
                "health level=down updated=1 stale_after=0",               /* stale at once */
                "health level=down updated=x stale_after=9",               /* not a number */
                "health level=down updated=1 stale_after=9 misses=-1",     /* negative */
                "health level=down updated=1 stale_after=9 ping=maybe",    /* unknown ping */
                "health level=down updated=1 stale_after=9 ping_usec=1e3", /* not decimal */
                "health level=down updated=1 stale_after=99999999999999999999",
                "problem level=down subject=enclave text=x", /* wrong kind */
        };
        static const char *const bad_problem[] = {
                "problem subject=enclave text=x",               /* no level */
                "problem level=healthy subject=enclave text=x", /* not a problem's level */
                "problem level=down text=x",                    /* no subject */
                "problem level=down subject=moon text=x",       /* unknown subject */
                "problem level=down subject=enclave",           /* no text */
                "problem level=down subject=enclave text=",     /* empty text */
                "problem level=degraded subject=token text=x",  /* token without label */
                "problem level=degraded subject=token label= text=x",
                "health level=down subject=enclave text=x", /* wrong kind */
        };
        struct agent_state_health h;
        struct agent_state_problem p;

        for (size_t i = 0; i < ELEMENTSOF(bad_health); i++) {
                struct agent_state_record rec = {};

                ASSERT_OK(agent_state_parse_line(bad_health[i], strlen(bad_health[i]), &rec));
                if (agent_state_health_from_record(&rec, &h) != -EBADMSG) {
                        agent_state_record_done(&rec);
                        TAP_FAIL_("accepted: %s", bad_health[i]);
                }
                agent_state_record_done(&rec);
        }
        for (size_t i = 0; i < ELEMENTSOF(bad_problem); i++) {
                struct agent_state_record rec = {};

                ASSERT_OK(agent_state_parse_line(bad_problem[i], strlen(bad_problem[i]), &rec));
                if (agent_state_problem_from_record(&rec, &p) != -EBADMSG) {
                        agent_state_record_done(&rec);
                        TAP_FAIL_("accepted: %s", bad_problem[i]);
                }
                agent_state_record_done(&rec);
        }
        /* the minimal good ones */
        {
                static const char good_h[] = "health level=healthy updated=5 stale_after=1";
                static const char good_p[] = "problem level=down subject=agent text=stopped";
                struct agent_state_record rec = {};

                ASSERT_OK(agent_state_parse_line(good_h, strlen(good_h), &rec));
                ASSERT_OK(agent_state_health_from_record(&rec, &h));
                ASSERT_STREQ(h.ping, "none");
                ASSERT_EQ(h.misses, 0);
                agent_state_record_done(&rec);
                ASSERT_OK(agent_state_parse_line(good_p, strlen(good_p), &rec));
                ASSERT_OK(agent_state_problem_from_record(&rec, &p));
                ASSERT_TRUE(p.label == NULL);
                agent_state_record_done(&rec);
        }
        ASSERT_EQ(agent_state_level_from_string(NULL), _AGENT_STATE_LEVEL_INVALID);
        ASSERT_TRUE(agent_state_level_to_string(_AGENT_STATE_LEVEL_MAX) == NULL);
}

TAP_MAIN(TEST("/agent-health/schedule", test_schedule), TEST("/agent-health/misses", test_misses_relaunch),
         TEST("/agent-health/watchdog", test_watchdog), TEST("/agent-health/verdict", test_verdict),
         TEST("/agent-health/text-bounded", test_text_bounded),
         TEST("/agent-health/render-parse", test_render_parse),
         TEST("/agent-health/records-bad", test_records_bad))
