/* The agent's health state machine: pings in, verdict, relaunch and watchdog decisions out. No I/O. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/health.h"

#define USEC_PER_SEC 1000000u

static void schedule(struct agent_health *h, uint64_t now) {
        h->next_ping = h->cfg.interval_usec ? now + h->cfg.interval_usec : UINT64_MAX;
}

void agent_health_init(struct agent_health *h, const struct agent_health_config *cfg, uint64_t now) {
        *h = (struct agent_health){ .cfg = *cfg, .watch_from = now };
        if (h->cfg.max_misses == 0)
                h->cfg.max_misses = 1;
        schedule(h, now);
}

void agent_health_reconfigure(struct agent_health *h, const struct agent_health_config *cfg, uint64_t now) {
        h->cfg = *cfg;
        if (h->cfg.max_misses == 0)
                h->cfg.max_misses = 1;
        h->watch_from = MAX(h->watch_from, now); /* a new window: the old one was measured in other units */
        schedule(h, now);
}

void agent_health_launched(struct agent_health *h, uint64_t now) {
        h->misses = 0;
        h->have_ping = false;
        h->last_ok = false;
        h->last_error[0] = '\0';
        h->watch_from = now;
        schedule(h, now);
}

bool agent_health_ping_due(const struct agent_health *h, uint64_t now) {
        return h->cfg.interval_usec != 0 && now >= h->next_ping;
}

uint64_t agent_health_next_ping(const struct agent_health *h) {
        return h->cfg.interval_usec ? h->next_ping : UINT64_MAX;
}

bool agent_health_ping_done(struct agent_health *h, uint64_t now, uint64_t unix_now, int r, uint64_t usec,
                            const char *error) {
        h->have_ping = true;
        h->last_ok = r >= 0;
        h->last_usec = usec;
        h->last_at = unix_now;
        schedule(h, now);
        if (r >= 0) {
                h->misses = 0;
                h->last_error[0] = '\0';
                h->watch_from = now;
                return false;
        }
        (void) snprintf(h->last_error, sizeof(h->last_error), "%s", error ?: "no answer");
        if (++h->misses < h->cfg.max_misses)
                return false;
        h->relaunches++;
        return true;
}

bool agent_health_watchdog_ok(const struct agent_health *h, uint64_t now) {
        uint64_t window;

        if (h->cfg.interval_usec == 0)
                return true;
        window = (uint64_t) (h->cfg.max_misses + 1) * h->cfg.interval_usec + h->cfg.timeout_usec;
        return now < h->watch_from || now - h->watch_from <= window;
}

bool agent_health_last_ping(const struct agent_health *h, double *ret_seconds, bool *ret_ok) {
        if (!h->have_ping)
                return false;
        *ret_seconds = (double) h->last_usec / USEC_PER_SEC;
        *ret_ok = h->last_ok;
        return true;
}

void agent_health_report_done(struct agent_health_report *r) {
        for (size_t i = 0; i < r->n_problems; i++) {
                free(r->problems[i].label);
                free(r->problems[i].text);
        }
        free(r->problems);
        *r = (struct agent_health_report){};
}

static int add_problem(struct agent_health_report *rep, enum agent_state_level level, const char *subject,
                       const char *label, const char *fmt, ...) _printf_(5, 6);
static int add_problem(struct agent_health_report *rep, enum agent_state_level level, const char *subject,
                       const char *label, const char *fmt, ...) {
        struct agent_health_problem *grown, *p;
        char text[AGENT_HEALTH_TEXT_MAX];
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(text, sizeof(text), fmt, ap);
        va_end(ap);
        if (n < 0)
                return -EINVAL;
        if ((size_t) n >= sizeof(text))
                memcpy(text + sizeof(text) - 4, "...", 4);
        /* one line: the CLI prints one line per problem */
        for (char *c = text; *c; c++)
                if ((unsigned char) *c < 0x20 || *c == 0x7f)
                        *c = ' ';
        grown = realloc(rep->problems, (rep->n_problems + 1) * sizeof(*grown));
        if (!grown)
                return -ENOMEM;
        rep->problems = grown;
        p = &rep->problems[rep->n_problems];
        *p = (struct agent_health_problem){ .level = level, .subject = subject };
        p->text = strdup(text);
        p->label = label ? strdup(label) : NULL;
        if (!p->text || (label && !p->label)) {
                free(p->text);
                free(p->label);
                return -ENOMEM;
        }
        rep->n_problems++;
        if (level > rep->level)
                rep->level = level;
        return 0;
}

static int evaluate_enclave(const struct agent_health *h, const struct agent_health_input *in,
                            struct agent_health_report *rep) {
        if (in->agent_stopped)
                return add_problem(rep, AGENT_STATE_DOWN, "agent", NULL,
                                   "agent: stopped (its enclave was terminated)");
        if (!in->enclave_running)
                return add_problem(rep, AGENT_STATE_DOWN, "enclave", NULL,
                                   "enclave: not running (the agent is launching it)");
        if (h->have_ping && !h->last_ok)
                return add_problem(rep, AGENT_STATE_DOWN, "enclave", NULL,
                                   "enclave: missed %u in-band ping%s in a row (%s; the agent relaunches it "
                                   "after %u)",
                                   h->misses, h->misses == 1 ? "" : "s", h->last_error, h->cfg.max_misses);
        return 0;
}

static void format_day(uint64_t t, char *buf, size_t size) {
        time_t tt = (time_t) t;
        struct tm tm;

        if ((uint64_t) tt != t || !gmtime_r(&tt, &tm) || strftime(buf, size, "%Y-%m-%d %H:%M UTC", &tm) == 0)
                (void) snprintf(buf, size, "%" PRIu64, t);
}

static int evaluate_token(const struct agent_health *h, const struct agent_health_token *t, uint64_t now,
                          struct agent_health_report *rep) {
        char when[64];
        int r;

        if (t->failing) {
                r = add_problem(rep, AGENT_STATE_DEGRADED, "token", t->label, "token '%s': failing: %s",
                                t->label, t->error ?: "see the agent's log");
                if (r < 0)
                        return r;
        }
        if (t->not_after == 0)
                return 0;
        format_day(t->not_after, when, sizeof(when));
        if (t->not_after <= now)
                return add_problem(rep, AGENT_STATE_DEGRADED, "token", t->label,
                                   "token '%s': certificate EXPIRED on %s", t->label, when);
        if (t->not_after - now <= h->cfg.expiry_warning_sec) {
                uint64_t days = (t->not_after - now) / 86400u;

                return add_problem(rep, AGENT_STATE_DEGRADED, "token", t->label,
                                   "token '%s': certificate expires in %" PRIu64 " day%s (%s; warning at "
                                   "%" PRIu64 " days)",
                                   t->label, days, days == 1 ? "" : "s", when,
                                   h->cfg.expiry_warning_sec / 86400u);
        }
        return 0;
}

int agent_health_evaluate(const struct agent_health *h, const struct agent_health_input *in,
                          struct agent_health_report *ret) {
        _cleanup_(agent_health_report_done) struct agent_health_report rep = { .level =
                                                                                       AGENT_STATE_HEALTHY };
        int r;

        r = evaluate_enclave(h, in, &rep);
        if (r < 0)
                return r;
        for (size_t i = 0; i < in->n_tokens; i++) {
                r = evaluate_token(h, &in->tokens[i], in->now, &rep);
                if (r < 0)
                        return r;
        }
        *ret = rep;
        rep = (struct agent_health_report){};
        return 0;
}

void agent_health_render(const struct agent_health *h, const struct agent_health_report *rep,
                         uint64_t updated, uint64_t stale_after, FILE *f) {
        agent_state_begin(f, "health");
        agent_state_put(f, "level", agent_state_level_to_string(rep->level));
        agent_state_put_u64(f, "updated", updated);
        agent_state_put_u64(f, "stale_after", stale_after);
        agent_state_put_u64(f, "interval", h->cfg.interval_usec / USEC_PER_SEC);
        agent_state_put_u64(f, "timeout_ms", h->cfg.timeout_usec / 1000u);
        agent_state_put_u64(f, "max_misses", h->cfg.max_misses);
        agent_state_put_u64(f, "misses", h->misses);
        agent_state_put(f, "ping", !h->have_ping ? "none" : h->last_ok ? "ok" : "missed");
        if (h->have_ping) {
                agent_state_put_u64(f, "ping_at", h->last_at);
                agent_state_put_u64(f, "ping_usec", h->last_usec);
        }
        agent_state_put_u64(f, "relaunches", h->relaunches);
        agent_state_put_u64(f, "expiry_warning_days", h->cfg.expiry_warning_sec / 86400u);
        agent_state_end(f);
        for (size_t i = 0; i < MIN(rep->n_problems, (size_t) AGENT_STATE_MAX_PROBLEMS); i++) {
                const struct agent_health_problem *p = &rep->problems[i];

                agent_state_begin(f, "problem");
                agent_state_put(f, "level", agent_state_level_to_string(p->level));
                agent_state_put(f, "subject", p->subject);
                agent_state_put(f, "label", p->label);
                agent_state_put(f, "text", p->text);
                agent_state_end(f);
        }
}
