/* Text plumbing for the nginx config writer: error positions, input bounds, quoting. */
#include <errno.h>
#include <string.h>

#include "nginx/nginxconf-internal.h"

int nx_fail(const char *text, size_t len, size_t off, int r, const char *msg, struct nginxconf_error *e) {
        if (e) {
                *e = (struct nginxconf_error){ .message = msg };
                text_position(text, len, off, &e->line, &e->column);
        }
        return r;
}

int nx_check_input(const char *text, size_t len, struct nginxconf_error *e) {
        struct text_error te;
        int r = text_check_input(text, len, NGINXCONF_MAX_INPUT, NGINXCONF_MAX_LINE, &te);

        return r < 0 ? nx_fail(text, len, te.off, r, te.message, e) : 0;
}

int nx_edits_apply(const char *text, size_t len, struct text_edits *edits, char **ret_text, size_t *ret_len,
                   struct nginxconf_error *e) {
        struct text_error te;
        int r = text_edits_apply(text, len, edits, ret_text, ret_len, &te);

        return r < 0 ? nx_fail(text, len, te.off, r, te.message, e) : r;
}

static bool quote_safe(char ch) {
        return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
               strchr("/._-+:@,=%~", ch);
}

int nx_quote(struct text_buf *b, const char *v, bool no_dollar) {
        bool bare = *v != '\0';
        int r;

        for (const char *p = v; *p; p++) {
                unsigned char ch = (unsigned char) *p;

                if (ch < 0x20 || ch == 0x7f || (ch == '$' && no_dollar))
                        return -EINVAL;
                if (!quote_safe(*p))
                        bare = false;
        }
        if (bare)
                return text_buf_puts(b, v);
        r = text_buf_puts(b, "\"");
        for (const char *p = v; r >= 0 && *p; p++) {
                if (*p == '"' || *p == '\\')
                        r = text_buf_puts(b, "\\");
                if (r >= 0)
                        r = text_buf_put(b, p, 1);
        }
        return r < 0 ? r : text_buf_puts(b, "\"");
}
