/* Text plumbing for the httpd config writer: error positions and input bounds. */
#include "httpd/httpdconf-internal.h"

int hx_fail(const char *text, size_t len, size_t off, int r, const char *msg, struct httpdconf_error *e) {
        if (e) {
                *e = (struct httpdconf_error){ .message = msg };
                text_position(text, len, off, &e->line, &e->column);
        }
        return r;
}

int hx_check_input(const char *text, size_t len, struct httpdconf_error *e) {
        struct text_error te;
        int r = text_check_input(text, len, HTTPDCONF_MAX_INPUT, HTTPDCONF_MAX_LINE, &te);

        return r < 0 ? hx_fail(text, len, te.off, r, te.message, e) : 0;
}

int hx_edits_apply(const char *text, size_t len, struct text_edits *edits, char **ret_text, size_t *ret_len,
                   struct httpdconf_error *e) {
        struct text_error te;
        int r = text_edits_apply(text, len, edits, ret_text, ret_len, &te);

        return r < 0 ? hx_fail(text, len, te.off, r, te.message, e) : r;
}
