/* enclave-acm attestation verify: check a Nitro attestation document offline (attest/) and print it. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "attest/attest.h"
#include "common/cleanup-ssl.h"
#include "common/json.h"
#include "common/log.h"
#include "common/parse-util.h"
#include "tools/cli-attest-get.h"
#include "tools/cli.h"

/* Exit status per verdict (documented in --help and README.md). */
#define ATTEST_EXIT_IO        1
#define ATTEST_EXIT_MALFORMED 3
#define ATTEST_EXIT_SIGNATURE 4
#define ATTEST_EXIT_CHAIN     5
#define ATTEST_EXIT_EXPIRED   6
#define ATTEST_EXIT_ROOT      7
#define ATTEST_EXIT_PCR       8

/* A base64 document is at most 4/3 of ATTEST_DOC_MAX plus line breaks. */
#define ATTEST_FILE_MAX (ATTEST_DOC_MAX * 2)

struct attest_args {
        const char *file;
        const char *root;
        enum attest_time_mode at;
        uint64_t at_ms;
        bool json;
        struct attest_pcr_expect pcrs[ATTEST_PCR_COUNT];
        uint8_t pcr_bytes[ATTEST_PCR_COUNT][64];
        size_t n_pcrs;
};

static void help_attest(void) {
        printf("Usage: enclave-acm attestation verify FILE [--root PEM] [--at now|doc|UNIX_MS]\n"
               "                                      [--pcr N=HEX]... [--json]\n"
               "\n"
               "Verifies a Nitro Enclaves attestation document (COSE_Sign1, raw CBOR or base64 of it):\n"
               "the ES384 signature, the certificate chain to the pinned AWS Nitro Enclaves root\n"
               "(AWS_NitroEnclaves_Root-G1) and, when given, expected PCR values. Prints the module id,\n"
               "digest, timestamp, PCRs, the optional fields and the verdict.\n"
               "\n"
               "Options:\n"
               "  --root PEM              trust this root instead of the AWS root (e.g. the NSM\n"
               "                          simulator's test CA); cabundle[0] must equal it\n"
               "  --at now|doc|UNIX_MS    check certificate validity now (default), as of the\n"
               "                          document's own timestamp, or at a UNIX time in milliseconds\n"
               "  --pcr N=HEX             expect PCR N (0..31) to hold HEX; may be repeated\n"
               "  --json                  print JSON\n"
               "  -h, --help              this text\n"
               "\n"
               "Exit status: 0 verified, 1 cannot read a file, 2 invalid command line, 3 malformed\n"
               "document, 4 bad signature, 5 certificate chain rejected, 6 a certificate expired or not\n"
               "yet valid at the time used, 7 cabundle[0] is not the trusted root, 8 a PCR differs.\n");
}

static int hex_decode(const char *s, uint8_t *out, size_t size, size_t *ret_len) {
        size_t n = strlen(s);

        if (n == 0 || n % 2 || n / 2 > size)
                return -EINVAL;
        for (size_t i = 0; i < n / 2; i++) {
                int hi = OPENSSL_hexchar2int((unsigned char) s[2 * i]);
                int lo = OPENSSL_hexchar2int((unsigned char) s[2 * i + 1]);

                if (hi < 0 || lo < 0)
                        return -EINVAL;
                out[i] = (uint8_t) (hi << 4 | lo);
        }
        *ret_len = n / 2;
        return 0;
}

static int parse_pcr_arg(const char *arg, struct attest_args *a) {
        _cleanup_free_ char *copy = strdup(arg);
        unsigned long idx;
        size_t len;
        char *eq;

        if (!copy)
                return log_error_errno(-ENOMEM, "Out of memory.");
        eq = strchr(copy, '=');
        if (!eq)
                return log_error_errno(-EINVAL, "--pcr '%s': expected N=HEX", arg);
        *eq = '\0';
        if (parse_unsigned(copy, 10, 0, ATTEST_PCR_COUNT - 1, &idx) < 0)
                return log_error_errno(-EINVAL, "--pcr '%s': the index must be 0..31", arg);
        if (a->n_pcrs >= ATTEST_PCR_COUNT)
                return log_error_errno(-EINVAL, "--pcr: at most %d expectations", ATTEST_PCR_COUNT);
        if (hex_decode(eq + 1, a->pcr_bytes[a->n_pcrs], sizeof(a->pcr_bytes[0]), &len) < 0)
                return log_error_errno(-EINVAL, "--pcr %lu: the value must be 1..64 bytes of hex", idx);
        a->pcrs[a->n_pcrs] = (struct attest_pcr_expect){ (unsigned) idx, a->pcr_bytes[a->n_pcrs], len };
        a->n_pcrs++;
        return 0;
}

static int parse_at(const char *arg, struct attest_args *a) {
        unsigned long ms;

        if (strcmp(arg, "now") == 0)
                a->at = ATTEST_TIME_NOW;
        else if (strcmp(arg, "doc") == 0)
                a->at = ATTEST_TIME_DOC;
        else if (parse_unsigned(arg, 10, 1, ULONG_MAX, &ms) >= 0) {
                a->at = ATTEST_TIME_GIVEN;
                a->at_ms = ms;
        } else
                return log_error_errno(-EINVAL, "--at '%s': expected now, doc or UNIX milliseconds", arg);
        return 0;
}

/* 1 to go on, 0 after --help, -EINVAL on a bad command line (logged). */
static int parse_attest(int argc, char **argv, struct attest_args *a) {
        enum { ARG_ROOT = 0x100, ARG_AT, ARG_PCR };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "json", no_argument, NULL, 'j' },
                { "root", required_argument, NULL, ARG_ROOT },
                { "at", required_argument, NULL, ARG_AT },
                { "pcr", required_argument, NULL, ARG_PCR },
                {},
        };
        int c;

        optind = 0;
        while ((c = getopt_long(argc, argv, "hj", options, NULL)) >= 0) {
                switch (c) {
                case 'h': help_attest(); return 0;
                case 'j': a->json = true; break;
                case ARG_ROOT: a->root = optarg; break;
                case ARG_AT:
                        if (parse_at(optarg, a) < 0)
                                return -EINVAL;
                        break;
                case ARG_PCR:
                        if (parse_pcr_arg(optarg, a) < 0)
                                return -EINVAL;
                        break;
                default: return log_error_errno(-EINVAL, "Try 'enclave-acm attestation verify --help'.");
                }
        }
        if (optind >= argc)
                return log_error_errno(-EINVAL, "attestation verify: missing FILE");
        a->file = argv[optind++];
        if (optind < argc)
                return log_error_errno(-EINVAL, "attestation verify: unexpected argument '%s'",
                                       argv[optind]);
        return 1;
}

/* The whole file, at most max bytes. */
static int read_file(const char *path, size_t max, uint8_t **ret, size_t *ret_len) {
        _cleanup_fclose_ FILE *f = NULL;
        _cleanup_free_ uint8_t *buf = NULL;
        size_t n;

        f = fopen(path, "rbe");
        if (!f)
                return log_error_errno(negative_errno(), "Cannot open '%s': %m", path);
        buf = malloc(max + 1);
        if (!buf)
                return log_error_errno(-ENOMEM, "Out of memory.");
        n = fread(buf, 1, max + 1, f);
        if (ferror(f))
                return log_error_errno(-EIO, "Cannot read '%s': %m", path);
        if (n > max)
                return log_error_errno(-EFBIG, "'%s' is larger than %zu bytes", path, max);
        *ret_len = n;
        *ret = TAKE_PTR(buf);
        return 0;
}

/* Base64 text (whitespace allowed) decoded in place; false if it is not base64 (then it is CBOR). */
static bool base64_decode_inplace(uint8_t *buf, size_t *len) {
        _cleanup_free_ uint8_t *text = NULL;
        size_t n = 0, pad = 0;
        int out;

        if (*len == 0 || buf[0] == 0x84 || buf[0] == 0xd2)
                return false;
        text = malloc(*len + 1);
        if (!text)
                return false;
        for (size_t i = 0; i < *len; i++) {
                if (isspace(buf[i]))
                        continue;
                if (!isalnum(buf[i]) && buf[i] != '+' && buf[i] != '/' && buf[i] != '=')
                        return false;
                text[n++] = buf[i];
        }
        if (n == 0 || n % 4)
                return false;
        pad = (text[n - 1] == '=') + (text[n - 2] == '=');
        out = EVP_DecodeBlock(buf, text, (int) n);
        if (out < 0 || (size_t) out < pad) {
                ERR_clear_error();
                return false;
        }
        *len = (size_t) out - pad;
        return true;
}

static int load_root(const char *path, uint8_t **ret, size_t *ret_len) {
        _cleanup_free_ uint8_t *pem = NULL;
        _cleanup_(BIO_free_allp) BIO *bio = NULL;
        _cleanup_(X509_freep) X509 *x = NULL;
        uint8_t *der = NULL;
        size_t n;
        int r, len;

        r = read_file(path, 65536, &pem, &n);
        if (r < 0)
                return r;
        bio = BIO_new_mem_buf(pem, (int) n);
        if (!bio)
                return log_error_errno(-ENOMEM, "Out of memory.");
        x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        if (!x) {
                ERR_clear_error();
                return log_error_errno(-EINVAL, "'%s' holds no PEM certificate", path);
        }
        len = i2d_X509(x, &der);
        if (len <= 0)
                return log_error_errno(-ENOMEM, "Out of memory.");
        *ret = der;
        *ret_len = (size_t) len;
        return 0;
}

static void hex_string(const uint8_t *p, size_t n, char *out) {
        static const char digits[] = "0123456789abcdef";

        for (size_t i = 0; i < n; i++) {
                out[2 * i] = digits[p[i] >> 4];
                out[2 * i + 1] = digits[p[i] & 15];
        }
        out[2 * n] = '\0';
}

static void format_ms(uint64_t ms, char *buf, size_t size) {
        time_t t = (time_t) (ms / 1000);
        struct tm tm;
        char sec[32];

        if ((uint64_t) t != ms / 1000 || !gmtime_r(&t, &tm) ||
            strftime(sec, sizeof(sec), "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
                (void) snprintf(buf, size, "unknown");
                return;
        }
        (void) snprintf(buf, size, "%s.%03uZ", sec, (unsigned) (ms % 1000));
}

static const char *opt_kind(const struct attest_opt *o) {
        switch (o->kind) {
        case ATTEST_OPT_ABSENT: return "absent";
        case ATTEST_OPT_NULL: return "null";
        default: return "bytes";
        }
}

static void print_opt(const char *label, const struct attest_opt *o) {
        if (o->kind == ATTEST_OPT_BYTES)
                printf("%-13s%zu bytes\n", label, o->len);
        else
                printf("%-13s%s\n", label, opt_kind(o));
}

/* module_id is UTF-8 from the document: control characters are shown escaped. */
static void print_text(const struct attest_blob *b) {
        for (size_t i = 0; i < b->len; i++) {
                if (b->ptr[i] < 0x20 || b->ptr[i] == 0x7f)
                        printf("\\x%02x", b->ptr[i]);
                else
                        putchar(b->ptr[i]);
        }
}

static int exit_status(enum attest_reason r) {
        switch (r) {
        case ATTEST_OK: return CLI_EXIT_OK;
        case ATTEST_ERR_MALFORMED: return ATTEST_EXIT_MALFORMED;
        case ATTEST_ERR_SIGNATURE: return ATTEST_EXIT_SIGNATURE;
        case ATTEST_ERR_CHAIN: return ATTEST_EXIT_CHAIN;
        case ATTEST_ERR_EXPIRED: return ATTEST_EXIT_EXPIRED;
        case ATTEST_ERR_ROOT: return ATTEST_EXIT_ROOT;
        case ATTEST_ERR_PCR: return ATTEST_EXIT_PCR;
        default: return ATTEST_EXIT_IO;
        }
}

static void print_human(const struct attest_result *res) {
        const struct attest_doc *d = &res->doc;
        char when[48], hex[2 * 64 + 1], hex2[2 * 64 + 1];

        if (res->reason != ATTEST_ERR_MALFORMED) {
                printf("%-13s", "Module ID:");
                print_text(&d->module_id);
                printf("\n%-13s%.*s\n", "Digest:", (int) d->digest.len, (const char *) d->digest.ptr);
                format_ms(d->timestamp_ms, when, sizeof(when));
                printf("%-13s%" PRIu64 " (%s)\n", "Timestamp:", d->timestamp_ms, when);
                printf("%-13s%zu\n", "PCRs:", d->n_pcrs);
                for (size_t i = 0; i < d->n_pcrs; i++) {
                        hex_string(d->pcrs[i].ptr, d->pcrs[i].len, hex);
                        printf("  PCR%-3u    %s\n", d->pcrs[i].index, hex);
                }
                print_opt("Public key:", &d->public_key);
                print_opt("User data:", &d->user_data);
                print_opt("Nonce:", &d->nonce);
                printf("%-13s%zu bytes, CA bundle: %zu certificates\n", "Certificate:", d->certificate.len,
                       d->n_cabundle);
                format_ms(res->verify_time_ms, when, sizeof(when));
                if (res->reason != ATTEST_ERR_INTERNAL)
                        printf("%-13s%s\n", "Checked at:", when);
        }
        switch (res->reason) {
        case ATTEST_OK: printf("%-13sok\n", "Verdict:"); break;
        case ATTEST_ERR_MALFORMED:
                printf("%-13smalformed: %s at byte %zu\n", "Verdict:", res->field, res->offset);
                break;
        case ATTEST_ERR_PCR:
                hex_string(res->pcr_expected.ptr, MIN(res->pcr_expected.len, 64), hex);
                if (res->pcr_actual.ptr)
                        hex_string(res->pcr_actual.ptr, MIN(res->pcr_actual.len, 64), hex2);
                printf("%-13spcr: PCR%u expected %s, got %s\n", "Verdict:", res->pcr_index, hex,
                       res->pcr_actual.ptr ? hex2 : "nothing (not in the document)");
                break;
        case ATTEST_ERR_CHAIN:
        case ATTEST_ERR_EXPIRED:
                printf("%-13s%s: %s (certificate depth %d, 0 = leaf)\n",
                       "Verdict:", attest_reason_to_string(res->reason), res->detail ?: "-",
                       res->x509_depth);
                break;
        default:
                printf("%-13s%s: %s\n", "Verdict:", attest_reason_to_string(res->reason) ?: "internal",
                       res->detail ?: "-");
        }
}

static void json_opt(struct json_writer *j, const char *key, const struct attest_opt *o) {
        json_begin_object(j, key);
        json_string(j, "kind", opt_kind(o));
        if (o->kind == ATTEST_OPT_BYTES)
                json_uint(j, "length", o->len);
        json_end_object(j);
}

static int print_json(const char *file, const struct attest_result *res) {
        _cleanup_(json_writer_done) struct json_writer j;
        const struct attest_doc *d = &res->doc;
        char when[48], hex[2 * 64 + 1];

        json_writer_init(&j, false);
        json_begin_object(&j, NULL);
        json_string(&j, "file", file);
        json_string(&j, "verdict", attest_reason_to_string(res->reason) ?: "internal");
        if (res->detail)
                json_string(&j, "detail", res->detail);
        if (res->reason == ATTEST_ERR_MALFORMED) {
                json_string(&j, "field", res->field);
                json_uint(&j, "offset", res->offset);
        } else {
                json_string_len(&j, "module_id", (const char *) d->module_id.ptr, d->module_id.len);
                json_string_len(&j, "digest", (const char *) d->digest.ptr, d->digest.len);
                json_uint(&j, "timestamp_ms", d->timestamp_ms);
                format_ms(d->timestamp_ms, when, sizeof(when));
                json_string(&j, "timestamp", when);
                json_begin_array(&j, "pcrs");
                for (size_t i = 0; i < d->n_pcrs; i++) {
                        hex_string(d->pcrs[i].ptr, d->pcrs[i].len, hex);
                        json_begin_object(&j, NULL);
                        json_uint(&j, "index", d->pcrs[i].index);
                        json_string(&j, "value", hex);
                        json_end_object(&j);
                }
                json_end_array(&j);
                json_opt(&j, "public_key", &d->public_key);
                json_opt(&j, "user_data", &d->user_data);
                json_opt(&j, "nonce", &d->nonce);
                json_uint(&j, "certificate_length", d->certificate.len);
                json_uint(&j, "cabundle_count", d->n_cabundle);
                json_uint(&j, "checked_at_ms", res->verify_time_ms);
        }
        if (res->reason == ATTEST_ERR_CHAIN || res->reason == ATTEST_ERR_EXPIRED)
                json_int(&j, "certificate_depth", res->x509_depth);
        if (res->reason == ATTEST_ERR_PCR) {
                json_uint(&j, "pcr_index", res->pcr_index);
                hex_string(res->pcr_expected.ptr, MIN(res->pcr_expected.len, 64), hex);
                json_string(&j, "pcr_expected", hex);
                if (res->pcr_actual.ptr) {
                        hex_string(res->pcr_actual.ptr, MIN(res->pcr_actual.len, 64), hex);
                        json_string(&j, "pcr_actual", hex);
                } else
                        json_null(&j, "pcr_actual");
        }
        json_end_object(&j);
        return cli_json_print(&j);
}

int cli_verb_attestation(int argc, char **argv, const struct cli_ctx *ctx) {
        _cleanup_free_ uint8_t *doc = NULL;
        uint8_t *root = NULL;
        struct attest_args args = { .at = ATTEST_TIME_NOW };
        struct attest_opts opts;
        struct attest_result res;
        size_t n, root_len = 0;
        int r;

        if (argc >= 2 && strcmp(argv[1], "get") == 0) /* tools/cli-attest-get.c */
                return cli_verb_attestation_get(argc - 1, argv + 1, ctx);
        if (argc < 2 || strcmp(argv[1], "verify") != 0) {
                if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
                        help_attest();
                        return CLI_EXIT_OK;
                }
                log_error("attestation: expected the sub-command 'verify'. Try 'enclave-acm attestation "
                          "verify --help'.");
                return CLI_EXIT_USAGE;
        }
        r = parse_attest(argc - 1, argv + 1, &args);
        if (r <= 0)
                return r < 0 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
        if (read_file(args.file, ATTEST_FILE_MAX, &doc, &n) < 0)
                return ATTEST_EXIT_IO;
        (void) base64_decode_inplace(doc, &n);
        if (args.root && load_root(args.root, &root, &root_len) < 0)
                return ATTEST_EXIT_IO;
        opts = (struct attest_opts){ .root_der = root,
                                     .root_len = root_len,
                                     .time_mode = args.at,
                                     .time_ms = args.at_ms,
                                     .pcrs = args.pcrs,
                                     .n_pcrs = args.n_pcrs };
        r = attest_verify(doc, n, &opts, &res); /* res.reason is the verdict */
        r = args.json ? print_json(args.file, &res) : (print_human(&res), fflush(stdout) == 0 ? 0 : -EIO);
        OPENSSL_free(root);
        if (r < 0) {
                log_error_errno(r, "Cannot write the result: %m");
                return ATTEST_EXIT_IO;
        }
        return exit_status(res.reason);
}
