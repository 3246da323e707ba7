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
