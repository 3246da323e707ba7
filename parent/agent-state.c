/* The agent's state file: one record per line, percent-encoded values (see agent-state.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/parse-util.h"
#include "parent/agent-state.h"

static bool needs_escape(unsigned char c) {
        return c <= 0x20 || c == 0x7f || c == '%';
}

static bool is_key_char(char c) {
        return (c >= 'a' && c <= 'z') || c == '_';
}

void agent_state_begin(FILE *f, const char *kind) {
        (void) fputs(kind, f);
}

void agent_state_put(FILE *f, const char *key, const char *value) {
        static const char hex[] = "0123456789ABCDEF";

        if (!value)
                return;
        (void) fprintf(f, " %s=", key);
        for (const unsigned char *p = (const unsigned char *) value; *p; p++) {
                if (needs_escape(*p)) {
                        (void) fputc('%', f);
                        (void) fputc(hex[*p >> 4], f);
                        (void) fputc(hex[*p & 0xf], f);
                } else
                        (void) fputc(*p, f);
        }
}

void agent_state_put_u64(FILE *f, const char *key, uint64_t value) {
        (void) fprintf(f, " %s=%" PRIu64, key, value);
}

void agent_state_end(FILE *f) {
        (void) fputc('\n', f);
}

/* Decode the value at s (up to a space or the end) into d, NUL-terminated; *ret_end after it. */
static int decode_value(const char *s, const char *end, char *d, const char **ret_end) {
        while (s < end && *s != ' ') {
                unsigned char c = (unsigned char) *s;

                if (c < 0x20 || c == 0x7f)
                        return -EBADMSG;
                if (c == '%') {
                        int hi, lo;

                        if (end - s < 3 || (hi = unhexchar(s[1])) < 0 || (lo = unhexchar(s[2])) < 0 ||
                            (hi | lo) == 0)
                                return -EBADMSG;
                        *d++ = (char) (hi << 4 | lo);
                        s += 3;
                } else {
                        *d++ = (char) c;
                        s++;
                }
        }
        *d = '\0';
        *ret_end = s;
        return 0;
}

static int parse_fields(const char *s, const char *end, char *d, struct agent_state_record *rec) {
        while (s < end) {
                struct agent_state_field *f;
                const char *k = s;
                int r;

                if (*s++ != ' ' || s == end)
                        return -EBADMSG;
                for (k = s; s < end && is_key_char(*s); s++)
                        ;
                if (s == k || s == end || *s != '=')
                        return -EBADMSG;
                if (rec->n_fields >= AGENT_STATE_MAX_FIELDS)
                        return -E2BIG;
                f = &rec->fields[rec->n_fields];
                memcpy(d, k, (size_t) (s - k));
                d[s - k] = '\0';
                f->key = d;
                d += s - k + 1;
                if (agent_state_get(rec, f->key))
                        return -EBADMSG;
                r = decode_value(s + 1, end, d, &s);
                if (r < 0)
                        return r;
                f->value = d;
                d += strlen(d) + 1;
                rec->n_fields++;
        }
        return 0;
}

int agent_state_parse_line(const char *line, size_t len, struct agent_state_record *ret) {
        struct agent_state_record rec = {};
        const char *s = line, *end = line + len;
        char *d;
        int r;

        if (len > AGENT_STATE_MAX_LINE)
                return -E2BIG;
        /* Decoding never grows the text; one NUL per kind, key and value fits in len + 1 + 2 per field. */
        rec.buf = malloc(len + 2 * AGENT_STATE_MAX_FIELDS + 2);
        if (!rec.buf)
                return -ENOMEM;
        d = rec.buf;
        while (s < end && *s >= 'a' && *s <= 'z')
                s++;
        if (s == line) {
                free(rec.buf);
                return -EBADMSG;
        }
        memcpy(d, line, (size_t) (s - line));
        d[s - line] = '\0';
        rec.kind = d;
        d += s - line + 1;
        r = parse_fields(s, end, d, &rec);
        if (r < 0) {
                free(rec.buf);
                return r;
        }
        *ret = rec;
        return 0;
}

void agent_state_record_done(struct agent_state_record *r) {
        free(r->buf);
        *r = (struct agent_state_record){};
}

const char *agent_state_get(const struct agent_state_record *r, const char *key) {
        for (size_t i = 0; i < r->n_fields; i++)
                if (strcmp(r->fields[i].key, key) == 0)
                        return r->fields[i].value;
        return NULL;
}

int agent_state_get_u64(const struct agent_state_record *r, const char *key, uint64_t *ret) {
        const char *v = agent_state_get(r, key);
        uint64_t n = 0;

        if (!v)
                return -ENOENT;
        if (!*v || strlen(v) > 20)
                return -EBADMSG;
        for (const char *p = v; *p; p++) {
                if (*p < '0' || *p > '9' || n > (UINT64_MAX - (uint64_t) (*p - '0')) / 10)
                        return -EBADMSG;
                n = n * 10 + (uint64_t) (*p - '0');
        }
        *ret = n;
        return 0;
}

static const char *const level_names[_AGENT_STATE_LEVEL_MAX] = {
        [AGENT_STATE_HEALTHY] = "healthy",
        [AGENT_STATE_DEGRADED] = "degraded",
        [AGENT_STATE_DOWN] = "down",
};

const char *agent_state_level_to_string(enum agent_state_level l) {
        return l >= 0 && l < _AGENT_STATE_LEVEL_MAX ? level_names[l] : NULL;
}

enum agent_state_level agent_state_level_from_string(const char *s) {
        for (int i = 0; s && i < _AGENT_STATE_LEVEL_MAX; i++)
                if (strcmp(s, level_names[i]) == 0)
                        return (enum agent_state_level) i;
        return _AGENT_STATE_LEVEL_INVALID;
}

/* An optional number: absent is 0, present must parse. */
static int get_opt_u64(const struct agent_state_record *r, const char *key, uint64_t *ret) {
        int k = agent_state_get_u64(r, key, ret);

        if (k == -ENOENT) {
                *ret = 0;
                return 0;
        }
        return k;
}

int agent_state_health_from_record(const struct agent_state_record *rec, struct agent_state_health *ret) {
        struct agent_state_health h = {};
        int r;

        if (strcmp(rec->kind, "health") != 0)
                return -EBADMSG;
        h.level = agent_state_level_from_string(agent_state_get(rec, "level"));
        if (h.level < 0)
                return -EBADMSG;
        if (agent_state_get_u64(rec, "updated", &h.updated) < 0 ||
            agent_state_get_u64(rec, "stale_after", &h.stale_after) < 0 || h.stale_after == 0)
                return -EBADMSG;
        h.ping = agent_state_get(rec, "ping") ?: "none";
        if (strcmp(h.ping, "ok") != 0 && strcmp(h.ping, "missed") != 0 && strcmp(h.ping, "none") != 0)
                return -EBADMSG;
        if ((r = get_opt_u64(rec, "interval", &h.interval)) < 0 ||
            (r = get_opt_u64(rec, "timeout_ms", &h.timeout_ms)) < 0 ||
            (r = get_opt_u64(rec, "max_misses", &h.max_misses)) < 0 ||
            (r = get_opt_u64(rec, "misses", &h.misses)) < 0 ||
            (r = get_opt_u64(rec, "relaunches", &h.relaunches)) < 0 ||
            (r = get_opt_u64(rec, "expiry_warning_days", &h.expiry_warning_days)) < 0 ||
            (r = get_opt_u64(rec, "ping_at", &h.ping_at)) < 0 ||
            (r = get_opt_u64(rec, "ping_usec", &h.ping_usec)) < 0)
                return -EBADMSG;
        *ret = h;
        return 0;
}

int agent_state_problem_from_record(const struct agent_state_record *rec, struct agent_state_problem *ret) {
        struct agent_state_problem p = {};

        if (strcmp(rec->kind, "problem") != 0)
                return -EBADMSG;
        p.level = agent_state_level_from_string(agent_state_get(rec, "level"));
        p.subject = agent_state_get(rec, "subject");
        p.label = agent_state_get(rec, "label");
        p.text = agent_state_get(rec, "text");
        if ((p.level != AGENT_STATE_DEGRADED && p.level != AGENT_STATE_DOWN) || !p.subject || !p.text ||
            !p.text[0])
                return -EBADMSG;
        if (strcmp(p.subject, "token") == 0
                    ? !p.label || !p.label[0]
                    : strcmp(p.subject, "enclave") != 0 && strcmp(p.subject, "agent") != 0)
                return -EBADMSG;
        *ret = p;
        return 0;
}

bool agent_state_health_stale(const struct agent_state_health *h, uint64_t now) {
        if (h->updated > now)
                return h->updated - now > h->stale_after;
        return now - h->updated > h->stale_after;
}
