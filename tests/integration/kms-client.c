/* kms-client: a raw control-channel client for the KMS key path tests (the enclave-acm CLI cannot send
 * ciphertexts). One connection; the words after the address are calls made on it in order:
 *
 *   kms-client ADDRESS [--creds FILE] [--region R] [--clock-offset MS] [--per-key] WORD...
 *     attest OUT_FILE NONCE|-              ATTEST; the document is written to OUT_FILE
 *     begin                                KMS_BEGIN with --creds (AKID:SECRET[:TOKEN]) and the clock
 *     end                                  KMS_END
 *     add LABEL PIN TTL KEYS               TOKEN_ADD; KEYS: ID:CIPHERTEXT_FILE:CHAIN_FILE[,...]
 *     add-plain LABEL PIN TTL KEYS         TOKEN_ADD; KEYS: ID:KEY_PEM_FILE:CHAIN_FILE[,...]
 *     refresh LABEL PIN TTL KEYS           TOKEN_REFRESH; KEYS: ID:CIPHERTEXT_FILE[,...]
 *     describe LABEL                       DESCRIBE; prints the token's expires
 *
 * Each call prints one line "WORD STATUS [slot=N] [expires=N] [parent_time=0|1]" and the client goes on
 * with the next word whatever the status. Exit status: 0, or 1 for a usage, file or connection error.
 * Test credentials only: they come from a file, never from the command line. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/p11-errmap.h"
#include "common/rpc-client.h"
#include "common/rpc-codec.h"
#include "common/transport.h"

#define FILE_MAX (256u * 1024u)

static const char *arg_creds, *arg_region = "us-east-1";
static long arg_clock_offset;
static bool arg_per_key;

/* What a call's request points into: freed once the call is done. */
static void *owned[4 * RPC_MAX_KEYS + 4];
static size_t n_owned;

static void *own(void *p) {
        if (!p || n_owned >= ELEMENTSOF(owned))
                exit(1);
        return owned[n_owned++] = p;
}

static void owned_free(void) {
        while (n_owned > 0)
                free(owned[--n_owned]);
}

static char *read_file(const char *path, size_t *ret_len) {
        FILE *f = fopen(path, "re");
        char *buf;
        size_t n;

        if (!f) {
                fprintf(stderr, "kms-client: cannot open '%s': %s\n", path, strerror(errno));
                exit(1);
        }
        buf = malloc(FILE_MAX + 1);
        if (!buf)
                exit(1);
        n = fread(buf, 1, FILE_MAX, f);
        fclose(f);
        buf[n] = '\0';
        *ret_len = n;
        return buf;
}

static struct rpc_slice S(const char *s) {
        return (struct rpc_slice){ (const uint8_t *) s, strlen(s) };
}

static struct rpc_slice
file_slice(const char *path) {
        size_t n;
        char *p = own(read_file(path, &n));

        return (struct rpc_slice){ (const uint8_t *) p, n };
}

static const char *status_name(int r) {
        return r == 0 ? "ok" : rpc_status_to_string(errmap_status_from_errno(r)) ?: "transport-error";
}

/* "ID:A:B,ID:A:B": up to RPC_MAX_KEYS entries of n_parts fields after the id; s is modified. */
static size_t split_keys(char *s, unsigned n_parts, uint32_t ids[], char *parts[][2]) {
        size_t n = 0;

        for (char *save = NULL, *e = strtok_r(s, ",", &save); e; e = strtok_r(NULL, ",", &save)) {
                char *c1 = strchr(e, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;

                if (n >= RPC_MAX_KEYS || !c1 || (n_parts == 2) != (c2 != NULL)) {
                        fprintf(stderr, "kms-client: bad key list entry '%s'\n", e);
                        exit(1);
                }
                *c1 = '\0';
                if (c2)
                        *c2 = '\0';
                ids[n] = (uint32_t) strtoul(e, NULL, 10);
                parts[n][0] = c1 + 1;
                parts[n][1] = c2 ? c2 + 1 : NULL;
                n++;
        }
        return n;
}

static int do_begin(struct rpc_client *c) {
        struct rpc_kms_begin_resp resp = {};
        struct timespec ts;
        char *akid, *secret, *token;
        size_t n;
        int r;

        if (!arg_creds) {
                fprintf(stderr, "kms-client: begin needs --creds FILE\n");
                exit(1);
        }
        akid = read_file(arg_creds, &n);
        akid[strcspn(akid, "\r\n")] = '\0';
        secret = strchr(akid, ':');
        if (!secret) {
                fprintf(stderr, "kms-client: --creds: AKID:SECRET[:TOKEN]\n");
                exit(1);
        }
        *secret++ = '\0';
        token = strchr(secret, ':');
        if (token)
                *token++ = '\0';
        (void) clock_gettime(CLOCK_REALTIME, &ts);
        r = rpc_client_call_msg(c, RPC_CALL_KMS_BEGIN,
                                &(struct rpc_kms_begin_req){
                                        .region = S(arg_region),
                                        .access_key_id = S(akid),
                                        .secret_access_key = S(secret),
                                        .session_token = token ? S(token) : (struct rpc_slice){},
                                        .time = (uint64_t) ((int64_t) ts.tv_sec * 1000 +
                                                            ts.tv_nsec / 1000000 + arg_clock_offset),
                                        .per_key = arg_per_key,
                                },
                                &resp);
        printf("begin %s parent_time=%d\n", status_name(r), r == 0 && resp.parent_time);
        free(akid);
        return r;
}

static int do_add(struct rpc_client *c, char **w, bool plain) {
        struct rpc_token_add_req req = { .label = S(w[0]), .pin = S(w[1]), .ttl = (uint32_t) atol(w[2]) };
        struct rpc_token_add_resp resp = {};
        char *parts[RPC_MAX_KEYS][2];
        uint32_t ids[RPC_MAX_KEYS];
        int r;

        req.n_keys = split_keys(w[3], 2, ids, parts);
        for (size_t i = 0; i < req.n_keys; i++) {
                char label[16];

                (void) snprintf(label, sizeof(label), "key%" PRIu32, ids[i]);
                req.keys[i].id = ids[i];
                req.keys[i].label =
                        (struct rpc_slice){ (const uint8_t *) own(strdup(label)), strlen(label) };
                if (plain)
                        req.keys[i].key_pem = file_slice(parts[i][0]);
                else
                        req.keys[i].ciphertext = file_slice(parts[i][0]);
                req.keys[i].chain_pem = file_slice(parts[i][1]);
        }
        r = rpc_client_call_msg(c, RPC_CALL_TOKEN_ADD, &req, &resp);
        printf("%s %s slot=%" PRIu32 " expires=%" PRIu64 "\n", plain ? "add-plain" : "add", status_name(r),
               resp.slot, resp.expires);
        return r;
}

static int do_refresh(struct rpc_client *c, char **w) {
        struct rpc_token_refresh_req req = { .label = S(w[0]),
                                             .pin = S(w[1]),
                                             .ttl = (uint32_t) atol(w[2]) };
        struct rpc_token_refresh_resp resp = {};
        char *parts[RPC_MAX_KEYS][2];
        uint32_t ids[RPC_MAX_KEYS];
        int r;

        req.n_keys = split_keys(w[3], 1, ids, parts);
        for (size_t i = 0; i < req.n_keys; i++) {
                req.keys[i].id = ids[i];
                req.keys[i].ciphertext = file_slice(parts[i][0]);
        }
        r = rpc_client_call_msg(c, RPC_CALL_TOKEN_REFRESH, &req, &resp);
        printf("refresh %s expires=%" PRIu64 "\n", status_name(r), resp.expires);
        return r;
}

static int do_attest(struct rpc_client *c, const char *out, const char *nonce) {
        struct rpc_attest_resp resp = {};
        FILE *f;
        int r;

        r = rpc_client_call_msg(c, RPC_CALL_ATTEST,
                                &(struct rpc_attest_req){ .nonce = nonce ? S(nonce) : (struct rpc_slice){} },
                                &resp);
        if (r == 0) {
                f = fopen(out, "we");
                if (!f || fwrite(resp.document.ptr, 1, resp.document.len, f) != resp.document.len) {
                        fprintf(stderr, "kms-client: cannot write '%s'\n", out);
                        exit(1);
                }
                fclose(f);
        }
        printf("attest %s bytes=%zu\n", status_name(r), r == 0 ? resp.document.len : 0);
        return r;
}

static int do_describe(struct rpc_client *c, const char *label) {
        struct rpc_page_resp page = {};
        uint64_t expires = 0;
        bool found = false;
        int r;

        r = rpc_client_call_msg(c, RPC_CALL_DESCRIBE, &(struct rpc_page_req){}, &page);
        for (size_t i = 0; r == 0 && i < page.n_tokens; i++)
                if (page.tokens[i].label.len == strlen(label) &&
                    memcmp(page.tokens[i].label.ptr, label, strlen(label)) == 0) {
                        found = true;
                        expires = page.tokens[i].expires;
                }
        rpc_page_resp_done(&page);
        printf("describe %s found=%d expires=%" PRIu64 "\n", status_name(r), found, expires);
        return r;
}

int main(int argc, char *argv[]) {
        _cleanup_(rpc_client_freep) struct rpc_client *c = NULL;
        struct transport_addr a;
        int i = 2, r;

        log_set_max_level(LOG_WARNING);
        if (argc < 3 || transport_addr_parse(argv[1], &a) < 0) {
                fprintf(stderr, "usage: kms-client ADDRESS [OPTIONS] WORD...\n");
                return 1;
        }
        for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2)
                if (!strcmp(argv[i], "--creds"))
                        arg_creds = argv[i + 1];
                else if (!strcmp(argv[i], "--region"))
                        arg_region = argv[i + 1];
                else if (!strcmp(argv[i], "--clock-offset"))
                        arg_clock_offset = atol(argv[i + 1]);
                else if (!strcmp(argv[i], "--per-key")) {
                        arg_per_key = true;
                        i--;
                } else {
                        fprintf(stderr, "kms-client: unknown option '%s'\n", argv[i]);
                        return 1;
                }
        /* Control calls wait on KMS: a TOKEN_ADD of 16 keys may take 16 bounded Decrypts. */
        r = rpc_client_open(&a, RPC_CHANNEL_CONTROL, 300000, "kms-client", &c);
        if (r < 0) {
                fprintf(stderr, "kms-client: cannot connect to '%s': %s\n", argv[1], strerror(-r));
                return 1;
        }
        while (i < argc) {
                const char *w = argv[i++];
                int left = argc - i;

                if (!strcmp(w, "begin"))
                        r = do_begin(c);
                else if (!strcmp(w, "end")) {
                        r = rpc_client_call_msg(c, RPC_CALL_KMS_END, NULL, NULL);
                        printf("end %s\n", status_name(r));
                } else if (!strcmp(w, "attest") && left >= 2) {
                        r = do_attest(c, argv[i], strcmp(argv[i + 1], "-") ? argv[i + 1] : NULL);
                        i += 2;
                } else if ((!strcmp(w, "add") || !strcmp(w, "add-plain") || !strcmp(w, "refresh")) &&
                           left >= 4) {
                        r = !strcmp(w, "refresh") ? do_refresh(c, &argv[i])
                                                  : do_add(c, &argv[i], w[3] == '-');
                        i += 4;
                } else if (!strcmp(w, "describe") && left >= 1) {
                        r = do_describe(c, argv[i]);
                        i++;
                } else {
                        fprintf(stderr, "kms-client: bad word '%s' (or missing arguments)\n", w);
                        return 1;
                }
                owned_free();
                fflush(stdout);
                if (rpc_client_is_broken(c)) {
                        fprintf(stderr, "kms-client: the connection broke: %s\n", strerror(-r));
                        return 1;
                }
        }
        return 0;
}
