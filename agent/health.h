/* The agent's health: in-band pings of enclave-token, token failures and certificate expiry, turned into
 * healthy / degraded / down with a list of problems, "relaunch now" after too many missed pings, and
 * whether systemd's watchdog may be fed. Pure: the service does the pinging and hands in the results. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/cleanup.h"
#include "parent/agent-state.h"

#define AGENT_HEALTH_TEXT_MAX 512 /* bytes of one problem's text (longer ones end in "...") */

struct agent_health_config {
        uint64_t interval_usec;      /* between pings; 0: in-band pings off */
        uint64_t timeout_usec;       /* for both channels' pings together */
        unsigned max_misses;         /* consecutive missed pings that relaunch the enclave (>= 1) */
        uint64_t expiry_warning_sec; /* a certificate expiring within this is a problem */
};

struct agent_health {
        struct agent_health_config cfg;
        uint64_t next_ping;   /* monotonic usec */
        uint64_t watch_from;  /* monotonic usec: the last answered ping, or the last (re)launch */
        unsigned misses;      /* consecutive */
        bool have_ping;       /* a ping was answered or missed since the last launch */
        bool last_ok;         /* ... and how it went */
        uint64_t last_usec;   /* its round trip (answered) or the time it waited (missed) */
        uint64_t last_at;     /* Unix seconds */
        unsigned relaunches;  /* relaunches asked for by missed pings, over the agent's life */
        char last_error[128]; /* what the last missed ping ran into ("data channel: timed out") */
};

/* One token, as the health check sees it. */
struct agent_health_token {
        const char *label;
        bool failing;       /* its last attempt failed (or it cannot be served) */
        const char *error;  /* why, may be NULL */
        uint64_t not_after; /* the leaf certificate's, Unix seconds; 0 unknown */
};

struct agent_health_input {
        bool agent_stopped;   /* the agent is stopping: its enclave is terminated */
        bool enclave_running; /* the launcher has one up */
        uint64_t now;         /* Unix seconds */
        const struct agent_health_token *tokens;
        size_t n_tokens;
};

struct agent_health_problem {
        enum agent_state_level level; /* DEGRADED or DOWN */
        const char *subject;          /* "enclave", "token" (static) */
        char *label;                  /* token problems */
        char *text;
};

struct agent_health_report {
        enum agent_state_level level;
        struct agent_health_problem *problems;
        size_t n_problems;
};

/* Resets everything; the first ping is due one interval after now (monotonic usec). */
void agent_health_init(struct agent_health *h, const struct agent_health_config *cfg, uint64_t now);
/* New settings (reload): counters and the last result are kept, the next ping rescheduled. */
void agent_health_reconfigure(struct agent_health *h, const struct agent_health_config *cfg, uint64_t now);

/* An enclave was (re)launched at now: misses and the last result are forgotten, the watchdog's window
 * starts again, the first ping comes one interval later. */
void agent_health_launched(struct agent_health *h, uint64_t now);

/* Is a ping due at now? Never when pings are off. */
bool agent_health_ping_due(const struct agent_health *h, uint64_t now);
/* When the next ping is due (UINT64_MAX when pings are off). */
uint64_t agent_health_next_ping(const struct agent_health *h);

/* The result of the ping started at now: r >= 0 answered after usec; r < 0 missed (error says where and
 * what; NULL is fine), unix_now for the report. Returns true when this miss makes max_misses in a row:
 * the caller relaunches the enclave now (and calls agent_health_launched() once it is up again). */
bool agent_health_ping_done(struct agent_health *h, uint64_t now, uint64_t unix_now, int r, uint64_t usec,
                            const char *error);

/* May systemd's watchdog be fed at now? Pings off: yes. Else only while a ping was answered (or the
 * enclave launched) within the window max_misses + 1 intervals plus the timeout: pings that keep failing
 * although the agent relaunched the enclave starve it, and systemd restarts the agent. */
bool agent_health_watchdog_ok(const struct agent_health *h, uint64_t now);

/* The last ping: false when there was none since the last launch; else its time in seconds and
 * whether it was answered. For the metrics endpoint (agent_metrics_set_ping()). */
bool agent_health_last_ping(const struct agent_health *h, double *ret_seconds, bool *ret_ok);

/* The verdict: down when the enclave is not running or the last ping was missed; degraded for each token
 * failing or whose certificate expires within expiry_warning_sec (expired ones too); else healthy. The
 * problems come enclave first, then tokens in the given order. -ENOMEM. */
_must_check_ int agent_health_evaluate(const struct agent_health *h, const struct agent_health_input *in,
                                       struct agent_health_report *ret);
void agent_health_report_done(struct agent_health_report *r);

/* The "health" and "problem" records of the state file (parent/agent-state.h). updated: Unix seconds of
 * this write; stale_after: how old the reader may find it. Errors stick to f. */
void agent_health_render(const struct agent_health *h, const struct agent_health_report *rep,
                         uint64_t updated, uint64_t stale_after, FILE *f);
