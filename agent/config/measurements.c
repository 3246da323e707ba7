/* The enclave image's measurements: nitro-cli's JSON (build-enclave, describe-eif) into expected PCRs. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/config/config.h"
#include "common/errmsg.h"
#include "common/json.h"
#include "common/parse-util.h"

int agent_pcr_from_hex(const char *s, size_t len, uint8_t out[static AGENT_PCR_LEN]) {
        uint8_t v[AGENT_PCR_LEN];

        if (!s || len != 2 * AGENT_PCR_LEN)
                return -EINVAL;
        for (size_t i = 0; i < AGENT_PCR_LEN; i++) {
                int hi = unhexchar(s[2 * i]), lo = unhexchar(s[2 * i + 1]);

                if (hi < 0 || lo < 0)
                        return -EINVAL;
                v[i] = (uint8_t) (hi << 4 | lo);
        }
        memcpy(out, v, sizeof(v));
        return 0;
}

/* 1-based line and column of a byte offset. */
static void offset_to_place(const char *text, size_t len, size_t off, unsigned *line, unsigned *col) {
        *line = 1;
        *col = 1;
        for (size_t i = 0; i < MIN(off, len); i++) {
                if (text[i] == '\n') {
                        (*line)++;
                        *col = 1;
                } else
                        (*col)++;
        }
}

struct mparse {
        const char *text;
        size_t len;
        struct json_reader rd;
        struct json_error jerr;
        char **ret_error;
};

/* An error at byte off (SIZE_MAX: where the reader stopped, or where its own error is). */
static int fail_at(struct mparse *m, size_t off, int r, const char *what) {
        unsigned line, col;

        if (off == SIZE_MAX)
                off = m->rd.error ? m->jerr.offset : m->rd.pos;
        offset_to_place(m->text, m->len, off, &line, &col);
        if (m->rd.error && m->jerr.what)
                return errmsg_set(m->ret_error, r, "line %u column %u: %s: %s (%s)", line, col, what,
                                  m->jerr.what, m->jerr.path);
        return errmsg_set(m->ret_error, r, "line %u column %u: %s", line, col, what);
}

static int fail(struct mparse *m, int r, const char *what) {
        return fail_at(m, SIZE_MAX, r == -ENOMEM ? r : r == -E2BIG ? -E2BIG : -EBADMSG, what);
}

/* The offset of the next value: past blanks and the ':' or ',' before it. */
static size_t value_offset(const struct mparse *m) {
        size_t i = m->rd.pos;

        while (i < m->len && strchr(" \t\r\n:,", m->text[i]) && m->text[i])
                i++;
        return i;
}

/* "PCR<n>" with n in 0..31, no leading zeros. -1 for any other key. */
static int pcr_key(const char *key) {
        unsigned n = 0;
        size_t len = strlen(key);

        if (len < 4 || len > 5 || strncmp(key, "PCR", 3) != 0 || (len == 5 && key[3] == '0'))
                return -1;
        for (size_t i = 3; i < len; i++) {
                if (key[i] < '0' || key[i] > '9')
                        return -1;
                n = n * 10 + (unsigned) (key[i] - '0');
        }
        return n < AGENT_PCR_COUNT ? (int) n : -1;
}

static int read_pcr(struct mparse *m, unsigned index, struct agent_pcr_set *set) {
        _cleanup_free_ char *hex = NULL;
        size_t at = value_offset(m);
        int r;

        r = json_read_string(&m->rd, &hex);
        if (r < 0)
                return fail(m, r, "a PCR value must be a string of 96 hex digits (SHA-384)");
        if (agent_pcr_from_hex(hex, strlen(hex), set->value[index]) < 0)
                return fail_at(m, at, -EBADMSG, "a PCR value must be 96 hex digits (SHA-384)");
        set->mask |= 1u << index;
        return 0;
}

static int read_algorithm(struct mparse *m) {
        _cleanup_free_ char *algo = NULL;
        size_t at = value_offset(m);
        int r;

        r = json_read_string(&m->rd, &algo);
        if (r < 0)
                return fail(m, r, "HashAlgorithm must be a string");
        /* nitro-cli prints the Rust Debug form: "Sha384 { ... }" */
        if (strncmp(algo, "Sha384", 6) != 0 || (algo[6] != '\0' && algo[6] != ' '))
                return fail_at(m, at, -EBADMSG, "HashAlgorithm is not Sha384");
        return 0;
}

static int read_measurements(struct mparse *m, struct agent_pcr_set *set) {
        bool have_algo = false;
        const char *key;
        int r;

        r = json_object_begin(&m->rd);
        if (r < 0)
                return fail(m, r, "\"Measurements\" must be an object");
        while ((r = json_object_next(&m->rd, &key)) > 0) {
                int index = pcr_key(key);

                if (strcmp(key, "HashAlgorithm") == 0) {
                        r = read_algorithm(m);
                        have_algo = true;
                } else if (index >= 0)
                        r = read_pcr(m, (unsigned) index, set);
                else
                        r = fail(m, -EBADMSG,
                                 "unknown key in \"Measurements\" (expected HashAlgorithm and PCR0..PCR31)");
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return fail(m, r, "invalid JSON");
        if (!have_algo)
                return fail(m, -EBADMSG, "\"Measurements\" has no HashAlgorithm");
        for (unsigned i = 0; i < 3; i++)
                if (!(set->mask & (1u << i))) {
                        char what[64];

                        (void) snprintf(what, sizeof(what), "\"Measurements\" has no PCR%u", i);
                        return fail(m, -EBADMSG, what);
                }
        return 0;
}

int agent_image_measurements_parse(const char *text, size_t len, struct agent_pcr_set *ret,
                                   char **ret_error) {
        struct mparse m = { .text = text, .len = len, .ret_error = ret_error };
        struct json_limits lim = {
                .max_depth = 8,
                .max_string = 4096,
                .max_input = AGENT_IMAGE_MEASUREMENTS_MAX,
                .reject_duplicates = true,
        };
        struct agent_pcr_set set = {};
        bool found = false;
        const char *key;
        int r;

        if (!ret || (!text && len > 0))
                return -EINVAL;
        if (len > AGENT_IMAGE_MEASUREMENTS_MAX)
                return errmsg_set(ret_error, -E2BIG, "larger than %u bytes", AGENT_IMAGE_MEASUREMENTS_MAX);
        r = json_reader_init(&m.rd, text ?: "", len, &lim, &m.jerr);
        if (r < 0)
                return fail(&m, r, "cannot read");
        r = json_object_begin(&m.rd);
        if (r < 0) {
                r = fail(&m, r, "expected a JSON object with \"Measurements\"");
                goto done;
        }
        while ((r = json_object_next(&m.rd, &key)) > 0) {
                if (strcmp(key, "Measurements") != 0) {
                        r = json_skip(&m.rd); /* describe-eif's EifVersion, IsSigned, ... */
                        if (r < 0)
                                break;
                        continue;
                }
                found = true;
                r = read_measurements(&m, &set);
                if (r < 0)
                        goto done;
        }
        if (r < 0) {
                r = fail(&m, r, "invalid JSON");
                goto done;
        }
        r = json_reader_end(&m.rd);
        if (r < 0) {
                r = fail(&m, r, "trailing bytes after the JSON object");
                goto done;
        }
        if (!found) {
                r = fail(&m, -EBADMSG, "no \"Measurements\" object");
                goto done;
        }
        *ret = set;
        r = 0;
done:
        json_reader_done(&m.rd);
        return r;
}
