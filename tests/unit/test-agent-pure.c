/* Pure parts of the agent: PIN generation and file names, nitro-cli JSON, rotation ids, back-off. */
#include <string.h>

#include "agent/launcher/launcher.h"
#include "agent/pinstore.h"
#include "agent/token.h"
#include "agent/target.h"
#include "tests/lib/tap.h"

static void test_pin_from_random(void) {
        uint8_t rnd[64];
        char buf[PINSTORE_GENERATED_LEN + 1] = "";
        size_t n;

        for (size_t i = 0; i < sizeof(rnd); i++)
                rnd[i] = (uint8_t) (i * 7 + 200); /* some >= 248: skipped */
        n = pinstore_pin_from_random(rnd, sizeof(rnd), buf, PINSTORE_GENERATED_LEN);
        ASSERT_EQ(n, (size_t) PINSTORE_GENERATED_LEN);
        for (size_t i = 0; i < n; i++)
                ASSERT_TRUE(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
                                   buf[i]) != NULL);
        memset(rnd, 0xff, sizeof(rnd));
        ASSERT_EQ(pinstore_pin_from_random(rnd, sizeof(rnd), buf, 10), (size_t) 0);
        rnd[3] = 0;
        rnd[5] = 61;
        ASSERT_EQ(pinstore_pin_from_random(rnd, sizeof(rnd), buf, 10), (size_t) 2);
        ASSERT_EQ(buf[0], 'A');
        ASSERT_EQ(buf[1], '9');
}

static void test_pin_generate(void) {
        struct secret_buf *pin = NULL;

        ASSERT_OK(pinstore_generate(&pin));
        ASSERT_EQ(pin->len, (size_t) PINSTORE_GENERATED_LEN);
        ASSERT_TRUE(pinstore_pin_source_ok(pin->data, pin->len));
        secret_buf_free(pin);
}

static void test_pin_source_ok(void) {
        ASSERT_TRUE(pinstore_pin_source_ok((const uint8_t *) "1234", 4));
        ASSERT_TRUE(pinstore_pin_source_ok((const uint8_t *) "1234567890123456789012345678901", 31));
        ASSERT_FALSE(pinstore_pin_source_ok((const uint8_t *) "12345678901234567890123456789012", 32));
        ASSERT_FALSE(pinstore_pin_source_ok((const uint8_t *) "12\n4", 4));
        ASSERT_FALSE(pinstore_pin_source_ok((const uint8_t *) "12\r4", 4));
        ASSERT_FALSE(pinstore_pin_source_ok((const uint8_t *) "12\0"
                                                              "4",
                                            4));
        ASSERT_FALSE(pinstore_pin_source_ok((const uint8_t *) "", 0));
}

static void check_filename(const char *label, const char *want) {
        char *s = NULL;

        ASSERT_OK(pinstore_label_filename(label, &s));
        ASSERT_STREQ(s, want);
        free(s);
}

static void test_label_filename(void) {
        char *s = NULL;

        check_filename("web", "web");
        check_filename("a/b", "a%2Fb");
        check_filename("..", "%2E.");
        check_filename(".x", "%2Ex");
        check_filename("x.y-z_~", "x.y-z_~");
        check_filename("é", "%C3%A9");
        ASSERT_ERR(pinstore_label_filename("", &s), -EINVAL);
}

static const char real_output[] = "Start allocating memory...\n"
                                  "Started enclave with enclave-cid: 16, memory: 2048 MiB, cpu-ids: [1, 3]\n"
                                  "{\n"
                                  "  \"EnclaveName\": \"enclave-acm\",\n"
                                  "  \"EnclaveID\": \"i-05f6ed443aEXAMPLE-enc173dfe3eEXAMPLE\",\n"
                                  "  \"ProcessID\": 7077,\n"
                                  "  \"EnclaveCID\": 16,\n"
                                  "  \"NumberOfCPUs\": 2,\n"
                                  "  \"CPUIDs\": [\n    1,\n    3\n  ],\n"
                                  "  \"MemoryMiB\": 2048,\n"
                                  "  \"Flags\": \"NONE\",\n"
                                  "  \"Nested\": {\"a\": [true, false, null, {\"b\": \"c\\\"d\"}]}\n"
                                  "}\n";

static void test_nitro_parse(void) {
        struct launcher_nitro_info info;

        ASSERT_OK(launcher_nitro_parse(real_output, strlen(real_output), &info));
        ASSERT_STREQ(info.enclave_id, "i-05f6ed443aEXAMPLE-enc173dfe3eEXAMPLE");
        ASSERT_EQ(info.process_id, 7077);
        ASSERT_EQ(info.cid, 16u);
}

static void test_nitro_parse_bad(void) {
        static const char *const bad[] = {
                "",
                "no json here",
                "{}",
                "{\"EnclaveID\": \"x\", \"ProcessID\": 7}",                    /* no CID */
                "{\"EnclaveID\": \"x\", \"ProcessID\": 7, \"EnclaveCID\": 2}", /* reserved CID */
                "{\"EnclaveID\": \"x\", \"ProcessID\": 7, \"EnclaveCID\": 3}", /* the parent's CID */
                "{\"EnclaveID\": \"x\", \"ProcessID\": -7, \"EnclaveCID\": 16}",
                "{\"EnclaveID\": \"\", \"ProcessID\": 7, \"EnclaveCID\": 16}",
                "{\"EnclaveID\": 5, \"ProcessID\": 7, \"EnclaveCID\": 16}",
                "{\"EnclaveID\": \"x\", \"ProcessID\": 7.5, \"EnclaveCID\": 16}",
                "{\"EnclaveID\": \"x\", \"ProcessID\": 99999999999999999999, \"EnclaveCID\": 16}",
                "{\"EnclaveID\": \"x\", \"ProcessID\": 7, \"EnclaveCID\": 16", /* unterminated */
                "{\"EnclaveID\": \"x\" \"ProcessID\": 7, \"EnclaveCID\": 16}", /* no comma */
                /* nested deeper than the reader allows */
                "{\"A\":[[[[[[[[[[[[1]]]]]]]]]]]],\"EnclaveID\":\"x\",\"ProcessID\":7,\"EnclaveCID\":16}",
        };
        struct launcher_nitro_info info;

        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                ASSERT_ERR(launcher_nitro_parse(bad[i], strlen(bad[i]), &info), -EBADMSG);
}

/* Every truncation of the real output fails cleanly (or, past the object, succeeds). */
static void test_nitro_parse_truncated(void) {
        struct launcher_nitro_info info;
        size_t len = strlen(real_output);

        for (size_t n = 0; n + 2 < len; n++)
                ASSERT_ERR(launcher_nitro_parse(real_output, n, &info), -EBADMSG);
        ASSERT_OK(launcher_nitro_parse(real_output, len - 1, &info));
}

static void test_rotation(void) {
        /* Rotation is one TOKEN_ADD replace (the slot id stays; enclave-token keeps the old version for
         * its grace period, reachable with its login ticket): no "rotating" state waits to drop a key. */
        ASSERT_STREQ(agent_token_state_to_string(AGENT_TOKEN_PENDING), "pending");
        ASSERT_STREQ(agent_token_state_to_string(AGENT_TOKEN_READY), "ready");
        ASSERT_STREQ(agent_token_state_to_string(AGENT_TOKEN_UNSUPPORTED), "not provisionable yet");
        ASSERT_STREQ(agent_token_state_to_string(AGENT_TOKEN_FAILED), "failed");
        ASSERT_EQ(_AGENT_TOKEN_STATE_MAX, 4);
        ASSERT_TRUE(agent_token_state_to_string(_AGENT_TOKEN_STATE_MAX) == NULL);
        /* Each key a new id (libp11 caches keys by id in a reloading master), wrapping at 65535. */
        ASSERT_EQ(agent_rotation_next_id(1), 2u);
        ASSERT_EQ(agent_rotation_next_id(2), 3u);
        ASSERT_EQ(agent_rotation_next_id(7), 8u);
        ASSERT_EQ(agent_rotation_next_id(65535), 1u);
        ASSERT_EQ(agent_rotation_next_id(0), 1u);
        ASSERT_EQ(agent_backoff_usec(1, 60000000u), 1000000u);
        ASSERT_EQ(agent_backoff_usec(2, 60000000u), 2000000u);
        ASSERT_EQ(agent_backoff_usec(4, 60000000u), 8000000u);
        ASSERT_EQ(agent_backoff_usec(40, 60000000u), 60000000u);
        ASSERT_EQ(agent_backoff_usec(3, 3000000u), 3000000u);
}

static void test_target_uri(void) {
        char *uri = NULL, *text = NULL;
        size_t len;
        const struct target_key k = { .label = "web",
                                      .key_id = 2,
                                      .pin_file = "/run/enclave-acm/web.pin",
                                      .cert_path = "/run/enclave-acm/web.2.crt.pem" };

        ASSERT_OK(target_key_uri(&k, &uri));
        ASSERT_TRUE(strstr(uri, "token=web;id=%02;type=private?pin-source=file:/run/enclave-acm/web.pin") !=
                    NULL);
        ASSERT_OK(target_nginx_stanza(&k, &text, &len));
        ASSERT_TRUE(strstr(text, "ssl_certificate /run/enclave-acm/web.2.crt.pem;") != NULL);
        ASSERT_TRUE(strstr(text, "\"engine:pkcs11:pkcs11:") != NULL);
        free(uri);
        free(text);
}

/* The state file of the last key id: "N" or "N\n", N in 1..65535, nothing else. */
static void test_key_id_file(void) {
        static const char *const bad[] = { "",   "\n",    "0",    "65536", "-1",       "+2",    " 2",
                                           "2 ", "2\n\n", "0x10", "1e3",   "12345678", "2\r\n", "abc" };
        uint32_t id = 0;

        ASSERT_OK(pinstore_parse_key_id("1", 1, &id));
        ASSERT_EQ(id, 1u);
        ASSERT_OK(pinstore_parse_key_id("2\n", 2, &id));
        ASSERT_EQ(id, 2u);
        ASSERT_OK(pinstore_parse_key_id("65535\n", 6, &id));
        ASSERT_EQ(id, 65535u);
        ASSERT_OK(pinstore_parse_key_id("307", 3, &id));
        ASSERT_EQ(id, 307u);
        ASSERT_ERR(pinstore_parse_key_id("3\0", 2, &id), -EBADMSG);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                id = 77;
                ASSERT_ERR(pinstore_parse_key_id(bad[i], strlen(bad[i]), &id), -EBADMSG);
                ASSERT_EQ(id, 77u);
        }
}

TAP_MAIN(TEST("/agent/pin/from-random", test_pin_from_random),
         TEST("/agent/pin/generate", test_pin_generate), TEST("/agent/pin/source-ok", test_pin_source_ok),
         TEST("/agent/pin/label-filename", test_label_filename),
         TEST("/agent/nitro/parse", test_nitro_parse), TEST("/agent/nitro/parse-bad", test_nitro_parse_bad),
         TEST("/agent/nitro/parse-truncated", test_nitro_parse_truncated),
         TEST("/agent/rotation/ids-backoff", test_rotation),
         TEST("/agent/rotation/key-id-file", test_key_id_file),
         TEST("/agent/target/uri-stanza", test_target_uri))
