/* Diagnostics of the acm.yaml parser: a bounded list of {severity, line, column, key, message}. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/config/config-internal.h"

static const char *const severity_names[_AGENT_CONFIG_SEVERITY_MAX] = {
        [AGENT_CONFIG_WARNING] = "warning",
        [AGENT_CONFIG_ERROR] = "error",
};

const char *agent_config_severity_to_string(enum agent_config_severity s) {
        return s >= 0 && s < _AGENT_CONFIG_SEVERITY_MAX ? severity_names[s] : NULL;
}

/* Messages end up on terminals and in the journal: no escape sequences or line breaks from the file. */
static void sanitize(char *s) {
        for (; *s; s++)
                if ((unsigned char) *s < 0x20 || (unsigned char) *s == 0x7f)
                        *s = '?';
}

int config_diag_add(struct agent_config_diag *d, enum agent_config_severity severity, unsigned line,
                    unsigned column, const char *key, const char *fmt, ...) {
        _cleanup_free_ char *k = NULL, *msg = NULL;
        struct agent_config_diag_entry *e;
        va_list ap;
        int r;

        if (severity == AGENT_CONFIG_ERROR)
                d->n_errors++;
        else
                d->n_warnings++;
        if (d->n_entries >= AGENT_CONFIG_MAX_DIAGS) {
                d->truncated = true;
                return 0;
        }

        va_start(ap, fmt);
        r = vasprintf(&msg, fmt, ap);
        va_end(ap);
        if (r < 0) {
                msg = NULL;
                return -ENOMEM;
        }
        k = strdup(key ? key : "");
        if (!k)
                return -ENOMEM;
        sanitize(k);
        sanitize(msg);

        e = realloc(d->entries, (d->n_entries + 1) * sizeof(*e));
        if (!e)
                return -ENOMEM;
        d->entries = e;
        d->entries[d->n_entries++] = (struct agent_config_diag_entry){
                .severity = severity,
                .line = line,
                .column = column,
                .key = TAKE_PTR(k),
                .message = TAKE_PTR(msg),
        };
        return 0;
}

void agent_config_diag_done(struct agent_config_diag *d) {
        if (!d)
                return;
        for (size_t i = 0; i < d->n_entries; i++) {
                free(d->entries[i].key);
                free(d->entries[i].message);
        }
        free(d->entries);
        free(d->filename);
        *d = (struct agent_config_diag){};
}

int agent_config_diag_format(const struct agent_config_diag *d, const struct agent_config_diag_entry *e,
                             char **ret) {
        _cleanup_free_ char *place = NULL;
        const char *file = d && d->filename ? d->filename : "acm.yaml";
        const char *sev;
        char *s;
        int r;

        if (!e || !ret)
                return -EINVAL;
        sev = agent_config_severity_to_string(e->severity);
        if (!sev)
                return -EINVAL;
        if (e->line > 0)
                r = asprintf(&place, "%s:%u:%u", file, e->line, e->column);
        else
                r = asprintf(&place, "%s", file);
        if (r < 0) {
                place = NULL;
                return -ENOMEM;
        }
        if (e->key && e->key[0])
                r = asprintf(&s, "%s: %s: %s: %s", place, sev, e->key, e->message);
        else
                r = asprintf(&s, "%s: %s: %s", place, sev, e->message);
        if (r < 0)
                return -ENOMEM;
        *ret = s;
        return 0;
}
