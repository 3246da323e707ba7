/* Unit tests for parent/agent-state: the agent's state file records, written and read back. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parent/agent-state.h"
#include "common/cleanup.h"
#include "tests/lib/tap.h"

#define SAMPLE                                                                                           \
        "token label=web%20site state=ready key_id=2 provisioned=1763870001 target=/etc/nginx/web.conf " \
        "error="

static char *write_record(const char *kind, const char *const *kv) {
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);

        if (!f)
                return NULL;
        agent_state_begin(f, kind);
        for (size_t i = 0; kv[i]; i += 2)
                agent_state_put(f, kv[i], kv[i + 1]);
        if (fclose(f) != 0) {
                free(text);
                return NULL;
        }
        return text;
}

static void test_round_trip(void) {
        static const char *const kv[] = {
                "label",
                "a b%c\nd\te\x7f"
                "f",
                "empty",
                "",
                "utf",
                "\xc3\xa9t\xc3\xa9",
                "path",
                "/run/enclave-acm/x=y.crt.pem",
                NULL,
        };
        _cleanup_free_ char *text = write_record("token", kv);
        struct agent_state_record rec = {};

        ASSERT_TRUE(text);
        ASSERT_TRUE(strchr(text, '\n') == NULL && strchr(text, '\t') == NULL);
        ASSERT_STREQ(text, "token label=a%20b%25c%0Ad%09e%7Ff empty= utf=\xc3\xa9t\xc3\xa9 "
                           "path=/run/enclave-acm/x=y.crt.pem");
        ASSERT_OK(agent_state_parse_line(text, strlen(text), &rec));
        ASSERT_STREQ(rec.kind, "token");
        ASSERT_EQ(rec.n_fields, 4);
        for (size_t i = 0; kv[i]; i += 2)
                ASSERT_STREQ(agent_state_get(&rec, kv[i]), kv[i + 1]);
        ASSERT_TRUE(agent_state_get(&rec, "missing") == NULL);
        agent_state_record_done(&rec);
}

static void test_u64(void) {
        static const char line[] =
                "agent pid=1234 zero=0 max=18446744073709551615 over=18446744073709551616 "
                "neg=-1 hex=0x10 blank= long=000000000000000000001";
        struct agent_state_record rec = {};
        uint64_t v = 7;

        ASSERT_OK(agent_state_parse_line(line, strlen(line), &rec));
        ASSERT_OK(agent_state_get_u64(&rec, "pid", &v));
        ASSERT_EQ(v, 1234);
        ASSERT_OK(agent_state_get_u64(&rec, "zero", &v));
        ASSERT_EQ(v, 0);
        ASSERT_OK(agent_state_get_u64(&rec, "max", &v));
        ASSERT_TRUE(v == UINT64_MAX);
        v = 7;
        ASSERT_ERR(agent_state_get_u64(&rec, "over", &v), -EBADMSG);
        ASSERT_ERR(agent_state_get_u64(&rec, "neg", &v), -EBADMSG);
        ASSERT_ERR(agent_state_get_u64(&rec, "hex", &v), -EBADMSG);
        ASSERT_ERR(agent_state_get_u64(&rec, "blank", &v), -EBADMSG);
        ASSERT_ERR(agent_state_get_u64(&rec, "long", &v), -EBADMSG);
        ASSERT_ERR(agent_state_get_u64(&rec, "nope", &v), -ENOENT);
        ASSERT_EQ(v, 7); /* outputs only on success */
        agent_state_record_done(&rec);
}

static void test_bad_lines(void) {
        static const struct {
                const char *line;
                size_t len; /* 0: strlen */
                int error;
        } cases[] = {
                { "", 0, -EBADMSG },
                { " a=b", 0, -EBADMSG },       /* no kind */
                { "Token a=b", 0, -EBADMSG },  /* kind is lower case */
                { "token a=b ", 0, -EBADMSG }, /* trailing space */
                { "token  a=b", 0, -EBADMSG }, /* two spaces */
                { "token a", 0, -EBADMSG },    /* no '=' */
                { "token =b", 0, -EBADMSG },   /* empty key */
                { "token A=b", 0, -EBADMSG },  /* key characters */
                { "token a-b=c", 0, -EBADMSG },
                { "token a=b c=d a=e", 0, -EBADMSG }, /* repeated key */
                { "token a=%", 0, -EBADMSG },         /* escapes */
                { "token a=%4", 0, -EBADMSG },
                { "token a=%4g", 0, -EBADMSG },
                { "token a=%00", 0, -EBADMSG },
                { "token a=b\tc", 0, -EBADMSG }, /* control bytes */
                { "token a=b\nc=d", 0, -EBADMSG },
                { "token a=b\x7f", 0, -EBADMSG },
                { "token a=b\0c", 11, -EBADMSG },
                { "token\0 a=b", 10, -EBADMSG },
                { "tokena=b", 0, -EBADMSG },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct agent_state_record rec = { .kind = "untouched" };
                size_t len = cases[i].len ?: strlen(cases[i].line);

                ASSERT_ERR(agent_state_parse_line(cases[i].line, len, &rec), cases[i].error);
                ASSERT_STREQ(rec.kind, "untouched");
        }
}

static void test_limits(void) {
        char line[AGENT_STATE_MAX_LINE + 2];
        struct agent_state_record rec = {};
        size_t n = 0;

        /* exactly AGENT_STATE_MAX_FIELDS fields parse, one more does not */
        n += (size_t) snprintf(line, sizeof(line), "token");
        for (unsigned i = 0; i < AGENT_STATE_MAX_FIELDS; i++) {
                line[n++] = ' ';
                for (unsigned k = 0; k <= i; k++)
                        line[n++] = 'a';
                line[n++] = '=';
        }
        line[n] = '\0';
        ASSERT_OK(agent_state_parse_line(line, n, &rec));
        ASSERT_EQ(rec.n_fields, AGENT_STATE_MAX_FIELDS);
        agent_state_record_done(&rec);
        memcpy(line + n, " z=", 4);
        ASSERT_ERR(agent_state_parse_line(line, n + 3, &rec), -E2BIG);

        /* the longest line parses, one byte more does not */
        memcpy(line, "token v=", 8);
        memset(line + 8, 'x', AGENT_STATE_MAX_LINE - 8);
        ASSERT_OK(agent_state_parse_line(line, AGENT_STATE_MAX_LINE, &rec));
        ASSERT_EQ(strlen(agent_state_get(&rec, "v")), AGENT_STATE_MAX_LINE - 8);
        agent_state_record_done(&rec);
        line[AGENT_STATE_MAX_LINE] = 'x';
        ASSERT_ERR(agent_state_parse_line(line, AGENT_STATE_MAX_LINE + 1, &rec), -E2BIG);
}

/* Every bit flip, 0x00/0xff byte and truncation of a valid line parses or fails cleanly. */
static void test_mutations(void) {
        const size_t len = strlen(SAMPLE);
        _cleanup_free_ char *buf = malloc(len);
        size_t ok = 0, failed = 0;

        ASSERT_TRUE(buf);
        for (size_t i = 0; i < len; i++) {
                for (int m = 0; m < 10; m++) {
                        struct agent_state_record rec = {};
                        int r;

                        memcpy(buf, SAMPLE, len);
                        buf[i] = m < 8 ? (char) (buf[i] ^ (1 << m)) : m == 8 ? 0 : (char) 0xff;
                        r = agent_state_parse_line(buf, len, &rec);
                        ASSERT_TRUE(r == 0 || r == -EBADMSG);
                        if (r == 0) {
                                ok++;
                                agent_state_record_done(&rec);
                        } else
                                failed++;
                }
                {
                        struct agent_state_record rec = {};
                        int r = agent_state_parse_line(SAMPLE, i, &rec);

                        ASSERT_TRUE(r == 0 || r == -EBADMSG);
                        agent_state_record_done(&rec);
                }
        }
        ASSERT_TRUE(ok > 0 && failed > 0);
}

TAP_MAIN(TEST("/agent-state/round-trip", test_round_trip), TEST("/agent-state/u64", test_u64),
         TEST("/agent-state/bad-lines", test_bad_lines), TEST("/agent-state/limits", test_limits),
         TEST("/agent-state/mutations", test_mutations))
