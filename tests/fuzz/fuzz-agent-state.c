/* Target: agent_state_parse_line, agent_state_health_from_record, agent_state_problem_from_record
 *
 * Input: one line of the agent's state file (the CLI reads what the agent wrote, but the file is
 * only as trustworthy as the directory it sits in). The parser fails cleanly or returns a record
 * whose kind, keys and values are NUL-terminated strings of the allowed characters, keys unique;
 * writing the record back and parsing that again gives the same record. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parent/agent-state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const struct agent_state_record *a, const struct agent_state_record *b) {
        if (strcmp(a->kind, b->kind) != 0 || a->n_fields != b->n_fields)
                abort();
        for (size_t i = 0; i < a->n_fields; i++)
                if (strcmp(a->fields[i].key, b->fields[i].key) != 0 ||
                    strcmp(a->fields[i].value, b->fields[i].value) != 0)
                        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct agent_state_record rec = {}, again = {};
        char *text = NULL;
        size_t len = 0;
        FILE *f;
        int r;

        r = agent_state_parse_line((const char *) data, size, &rec);
        if (r < 0) {
                if (r != -EBADMSG && r != -E2BIG)
                        abort();
                return 0;
        }
        if (!rec.kind[0] || rec.n_fields > AGENT_STATE_MAX_FIELDS)
                abort();
        {
                struct agent_state_health h;
                struct agent_state_problem p;

                r = agent_state_health_from_record(&rec, &h);
                if ((r < 0 && r != -EBADMSG) ||
                    (r >= 0 &&
                     (h.level < 0 || h.level >= _AGENT_STATE_LEVEL_MAX || h.stale_after == 0 || !h.ping)))
                        abort();
                r = agent_state_problem_from_record(&rec, &p);
                if ((r < 0 && r != -EBADMSG) ||
                    (r >= 0 && (p.level == AGENT_STATE_HEALTHY || !p.subject || !p.text || !p.text[0])))
                        abort();
        }
        for (size_t i = 0; i < rec.n_fields; i++)
                if (strspn(rec.fields[i].key, "abcdefghijklmnopqrstuvwxyz_") != strlen(rec.fields[i].key) ||
                    agent_state_get(&rec, rec.fields[i].key) != rec.fields[i].value)
                        abort();
        f = open_memstream(&text, &len);
        if (!f)
                abort();
        agent_state_begin(f, rec.kind);
        for (size_t i = 0; i < rec.n_fields; i++)
                agent_state_put(f, rec.fields[i].key, rec.fields[i].value);
        if (fclose(f) != 0)
                abort();
        r = agent_state_parse_line(text, len, &again);
        if (r < 0 && !(r == -E2BIG && len > AGENT_STATE_MAX_LINE))
                abort();
        if (r >= 0)
                check(&rec, &again);
        agent_state_record_done(&again);
        agent_state_record_done(&rec);
        free(text);
        return 0;
}
