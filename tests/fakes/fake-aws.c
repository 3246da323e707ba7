/* fake-aws: IMDSv2 and S3 GetObject/PutObject on 127.0.0.1 for the tests and the demo: IMDS over plain
 * HTTP (as the real one), S3 over TLS with its own test CA (--tls-port-file) or, without it, over plain
 * HTTP on the IMDS port. Never installed, contacts nothing. One request per connection, one connection at
 * a time.
 *
 *   fake-aws --port-file FILE --objects DIR --region R --role NAME --credentials AKID:SECRET:TOKEN
 *            [--tls-port-file FILE --ca-out FILE [--tls-name DNS]...]
 *            [--partition P] [--domain D] [--role-arn-tag ARN] [--instance-profile ARN] [--no-role]
 *            [--cred-ttl SECONDS] [--deny BUCKET] [--slow BUCKET] [--clock-offset SECONDS]
 *            [--stats FILE] [--log FILE]
 *
 * TLS: --tls-port-file gives S3 a second loopback port speaking TLS 1.2+ with a certificate for the
 * --tls-name DNS names (default "localhost"; no IP address names, so https://127.0.0.1:PORT is a wrong
 * host name), signed by a P-256 test CA made at start whose PEM goes to --ca-out (written before the
 * port files). The plain port then answers S3 requests 400 TLSRequired and the TLS port answers IMDS
 * paths 404. A failed handshake (a client that does not trust the CA or the name) is counted and logged.
 * IMDS: PUT /latest/api/token needs X-aws-ec2-metadata-token-ttl-seconds (1..21600); every GET needs a
 * live token (401 otherwise). The credentials' Expiration is their issue time + --cred-ttl (default
 * 3600); once expired, the next credentials GET issues a new generation (AKID, secret and token end in
 * the generation number) and S3 refuses expired ones with 403 ExpiredToken.
 * S3 (path style, /bucket/key; GET, and PUT which writes the file): SigV4 checked against the credentials
 * handed out (region, service s3, x-amz-content-sha256, the session token, 300 s skew:
 * RequestTimeTooSkewed); the object is the file DIR/bucket/<key with '/' as '_'>; its ETag the first 32 hex
 * digits of its SHA-256, quoted; If-None-Match equal to it: 304. --deny: 403 AccessDenied; --slow: answers
 * after 3 s; missing: 404.
 * --stats: counters (key=value lines), rewritten after every request. --log: one line per request,
 * "METHOD target status [conditional]" (the target without its query; conditional: If-None-Match was
 * sent; no header values). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "aws/imds.h"
#include "aws/sigv4.h"
#include "common/secret.h"
#include "tests/fakes/fake-aws-tls.h"
#include "tests/fakes/fake-kms-http.h"
#include "tests/fakes/fake-kms-util.h"

#define MAX_TOKENS 64
#define IO_MS      5000

static struct {
        const char *objects, *region, *role, *partition, *domain, *role_arn_tag, *instance_profile;
        const char *deny, *slow, *stats, *log;
        bool no_role, tls;
        int64_t cred_ttl, clock_offset;
        char akid_base[64];
        char secret_base[128];
        char token_base[512];
} arg = { .partition = "aws", .domain = "amazonaws.com", .cred_ttl = 3600 };

static struct {
        unsigned gen;
        int64_t issued, expires;
        char akid[80];
        struct secret_buf *secret, *token;
} cred;

static struct {
        char value[33];
        int64_t expires;
} tokens[MAX_TOKENS];
static size_t n_tokens;

static struct {
        unsigned s3_put, imds_token, imds_get, imds_401, imds_creds, s3_get, s3_200, s3_304, s3_403, s3_404,
                s3_bad_sig, s3_expired, s3_tls, s3_plain_refused, tls_handshakes, tls_handshake_failed;
} stats;

static volatile sig_atomic_t stop;

static void on_signal(int sig) {
        stop = 1;
}

static int64_t now_s(void) {
        return (int64_t) time(NULL) + arg.clock_offset;
}

static void write_stats(void) {
        char tmp[4096];
        FILE *f;

        if (!arg.stats)
                return;
        (void) snprintf(tmp, sizeof(tmp), "%s.tmp", arg.stats);
        f = fopen(tmp, "we");
        if (!f)
                return;
        fprintf(f,
                "imds_token=%u\nimds_get=%u\nimds_401=%u\nimds_creds=%u\ns3_get=%u\ns3_200=%u\ns3_304=%u\n"
                "s3_403=%u\ns3_404=%u\ns3_bad_sig=%u\ns3_expired=%u\ncred_gen=%u\ns3_put=%u\n"
                "s3_tls=%u\ns3_plain_refused=%u\ntls_handshakes=%u\ntls_handshake_failed=%u\n",
                stats.imds_token, stats.imds_get, stats.imds_401, stats.imds_creds, stats.s3_get,
                stats.s3_200, stats.s3_304, stats.s3_403, stats.s3_404, stats.s3_bad_sig, stats.s3_expired,
                cred.gen, stats.s3_put, stats.s3_tls, stats.s3_plain_refused, stats.tls_handshakes,
                stats.tls_handshake_failed);
        if (fclose(f) == 0)
                (void) rename(tmp, arg.stats);
}

static int issue_credentials(void) {
        char buf[600];
        int n;

        cred.gen++;
        cred.issued = now_s();
        cred.expires = cred.issued + arg.cred_ttl;
        (void) snprintf(cred.akid, sizeof(cred.akid), "%s%04u", arg.akid_base, cred.gen);
        secret_buf_free(cred.secret);
        secret_buf_free(cred.token);
        cred.secret = cred.token = NULL;
        n = snprintf(buf, sizeof(buf), "%s%u", arg.secret_base, cred.gen);
        if (secret_buf_dup(buf, (size_t) n, &cred.secret) < 0)
                return -ENOMEM;
        n = snprintf(buf, sizeof(buf), "%s%u", arg.token_base, cred.gen);
        if (secret_buf_dup(buf, (size_t) n, &cred.token) < 0)
                return -ENOMEM;
        secret_wipe(buf, sizeof(buf));
        return 0;
}

static int lookup(void *userdata, const char *akid, const struct secret_buf **ret_secret,
                  const struct secret_buf **ret_token) {
        if (strcmp(akid, cred.akid) != 0)
                return -ENOKEY;
        *ret_secret = cred.secret;
        *ret_token = cred.token;
        return 0;
}

static const struct fkms_http_head *cur_head; /* the request being answered, for --log */

static void log_request(int status) {
        bool conditional = false;
        FILE *f;

        if (!arg.log || !cur_head)
                return;
        for (size_t i = 0; i < cur_head->n_headers; i++)
                if (strcasecmp(cur_head->headers[i].name, "If-None-Match") == 0)
                        conditional = true;
        f = fopen(arg.log, "ae");
        if (!f)
                return;
        fprintf(f, "%s %.*s %d%s\n", cur_head->method, (int) strcspn(cur_head->target, "?"),
                cur_head->target, status, conditional ? " conditional" : "");
        fclose(f);
}

static void reply(struct faws_conn *conn, int status, const char *extra_headers, const void *body,
                  size_t len) {
        char head[1024];
        struct tm tm;
        time_t t = (time_t) now_s();
        char date[64];
        int n;

        (void) gmtime_r(&t, &tm);
        (void) strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nConnection: close\r\nDate: %s\r\n%s\r\n",
                     status, len, date, extra_headers ? extra_headers : "");
        if (n < 0 || (size_t) n >= sizeof(head))
                return;
        log_request(status);
        /* a client that went away gets nothing more; it is not the fake's failure */
        if (faws_conn_send_all(conn, head, (size_t) n) >= 0 && len > 0 &&
            faws_conn_send_all(conn, body, len) < 0)
                fprintf(stderr, "fake-aws: the client left before the whole answer\n");
}

static void reply_text(struct faws_conn *conn, int status, const char *text) {
        reply(conn, status, NULL, text, strlen(text));
}

static void s3_error(struct faws_conn *conn, int status, const char *code) {
        char body[256];
        int n = snprintf(
                body, sizeof(body),
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code><Message>fake-aws"
                "</Message></Error>",
                code);
        reply(conn, status, "Content-Type: application/xml\r\n", body, (size_t) n);
}

static const char *header(const struct fkms_http_head *h, const char *name) {
        for (size_t i = 0; i < h->n_headers; i++)
                if (strcasecmp(h->headers[i].name, name) == 0)
                        return h->headers[i].value;
        return NULL;
}

static bool token_live(const char *t) {
        int64_t now = now_s();

        if (!t)
                return false;
        for (size_t i = 0; i < n_tokens; i++)
                if (strcmp(tokens[i].value, t) == 0 && tokens[i].expires > now)
                        return true;
        return false;
}

static void iso8601(int64_t t, char buf[static 32]) {
        struct tm tm;
        time_t tt = (time_t) t;

        (void) gmtime_r(&tt, &tm);
        (void) strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void imds(struct faws_conn *conn, const struct fkms_http_head *h) {
        const char *p = h->target;
        char buf[8192];
        int n;

        if (strcmp(h->method, "PUT") == 0 && strcmp(p, AWS_IMDS_PATH_TOKEN) == 0) {
                const char *ttl_s = header(h, AWS_IMDS_TOKEN_TTL_HEADER);
                char *end;
                long ttl = ttl_s ? strtol(ttl_s, &end, 10) : 0;
                uint8_t rnd[16];
                size_t slot = n_tokens < MAX_TOKENS ? n_tokens++ : (size_t) (stats.imds_token % MAX_TOKENS);

                if (!ttl_s || *end || ttl < 1 || ttl > AWS_IMDS_MAX_TTL)
                        return reply_text(conn, 400, "bad ttl");
                if (RAND_bytes(rnd, sizeof(rnd)) != 1)
                        return reply_text(conn, 500, "rand");
                for (size_t i = 0; i < sizeof(rnd); i++)
                        (void) snprintf(tokens[slot].value + 2 * i, 3, "%02x", rnd[i]);
                tokens[slot].expires = now_s() + ttl;
                stats.imds_token++;
                return reply_text(conn, 200, tokens[slot].value);
        }
        if (strcmp(h->method, "GET") != 0)
                return reply_text(conn, 405, "");
        stats.imds_get++;
        if (!token_live(header(h, AWS_IMDS_TOKEN_HEADER))) {
                stats.imds_401++;
                return reply_text(conn, 401, "");
        }
        if (strcmp(p, AWS_IMDS_PATH_PARTITION) == 0)
                return reply_text(conn, 200, arg.partition);
        if (strcmp(p, AWS_IMDS_PATH_DOMAIN) == 0)
                return reply_text(conn, 200, arg.domain);
        if (strcmp(p, AWS_IMDS_PATH_REGION) == 0)
                return reply_text(conn, 200, arg.region);
        if (strcmp(p, AWS_IMDS_PATH_ROLE_TAG) == 0)
                return arg.role_arn_tag ? reply_text(conn, 200, arg.role_arn_tag)
                                        : reply_text(conn, 404, "");
        if (strcmp(p, AWS_IMDS_PATH_INFO) == 0) {
                if (arg.no_role || !arg.instance_profile)
                        return reply_text(conn, 404, "");
                n = snprintf(buf, sizeof(buf),
                             "{\n  \"Code\" : \"Success\",\n  \"LastUpdated\" : \"2026-01-01T00:00:00Z\",\n"
                             "  \"InstanceProfileArn\" : \"%s\",\n  \"InstanceProfileId\" : \"AIPAFAKE\"\n}",
                             arg.instance_profile);
                return reply(conn, 200, NULL, buf, (size_t) n);
        }
        if (strcmp(p, AWS_IMDS_PATH_ROLES) == 0)
                return arg.no_role ? reply_text(conn, 404, "") : reply_text(conn, 200, arg.role);
        if (strncmp(p, AWS_IMDS_PATH_ROLES, strlen(AWS_IMDS_PATH_ROLES)) == 0 && !arg.no_role &&
            strcmp(p + strlen(AWS_IMDS_PATH_ROLES), arg.role) == 0) {
                char exp[32];

                if (cred.expires <= now_s() && issue_credentials() < 0)
                        return reply_text(conn, 500, "");
                stats.imds_creds++;
                iso8601(cred.expires, exp);
                n = snprintf(buf, sizeof(buf),
                             "{\n  \"Code\" : \"Success\",\n  \"LastUpdated\" : \"2026-01-01T00:00:00Z\",\n"
                             "  \"Type\" : \"AWS-HMAC\",\n  \"AccessKeyId\" : \"%s\",\n"
                             "  \"SecretAccessKey\" : \"%.*s\",\n  \"Token\" : \"%.*s\",\n"
                             "  \"Expiration\" : \"%s\"\n}",
                             cred.akid, (int) cred.secret->len, (const char *) cred.secret->data,
                             (int) cred.token->len, (const char *) cred.token->data, exp);
                if (n < 0 || (size_t) n >= sizeof(buf))
                        return reply_text(conn, 500, "");
                reply(conn, 200, NULL, buf, (size_t) n);
                secret_wipe(buf, sizeof(buf));
                return;
        }
        return reply_text(conn, 404, "");
}

static int unhex(char c) {
        return c >= '0' && c <= '9'   ? c - '0'
               : c >= 'A' && c <= 'F' ? c - 'A' + 10
               : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                      : -1;
}

static void s3(struct faws_conn *conn, const struct fkms_http_head *h, const char *body, size_t body_len) {
        enum aws_sigv4_verdict v;
        struct aws_err e = {};
        char path[4096], file[8192], etag[40];
        const char *inm, *slash;
        uint8_t *data = NULL, md[SHA256_DIGEST_LENGTH];
        size_t o = 0, len = 0;
        struct stat st;
        FILE *f;
        int r;

        stats.s3_get++;
        if (strcmp(h->method, "GET") != 0 && strcmp(h->method, "PUT") != 0)
                return s3_error(conn, 405, "MethodNotAllowed");
        r = aws_sigv4_verify(&(struct aws_sigv4_received){ .method = h->method,
                                                           .target = h->target,
                                                           .headers = h->headers,
                                                           .n_headers = h->n_headers,
                                                           .body = body,
                                                           .body_len = body_len },
                             &(struct aws_sigv4_verify_params){ .region = arg.region,
                                                                .service = "s3",
                                                                .now = now_s(),
                                                                .max_skew = 300,
                                                                .lookup = lookup },
                             &v, &e);
        if (r < 0)
                return s3_error(conn, 500, "InternalError");
        if (v == AWS_SIGV4_SKEWED) {
                stats.s3_403++;
                return s3_error(conn, 403, "RequestTimeTooSkewed");
        }
        if (v == AWS_SIGV4_UNKNOWN_KEY) {
                stats.s3_bad_sig++;
                return s3_error(conn, 403, "InvalidAccessKeyId");
        }
        if (v != AWS_SIGV4_OK) {
                stats.s3_bad_sig++;
                fprintf(stderr, "fake-aws: S3 signature refused: %s: %s\n", aws_sigv4_verdict_to_string(v),
                        e.msg);
                return s3_error(conn, 403, "SignatureDoesNotMatch");
        }
        if (cred.expires <= now_s()) {
                stats.s3_expired++;
                return s3_error(conn, 400, "ExpiredToken");
        }
        /* /bucket/key, percent-decoded */
        for (const char *p = h->target; *p && *p != '?' && o + 1 < sizeof(path); p++) {
                if (*p == '%' && unhex(p[1]) >= 0 && unhex(p[2]) >= 0) {
                        path[o++] = (char) (unhex(p[1]) * 16 + unhex(p[2]));
                        p += 2;
                } else
                        path[o++] = *p;
        }
        path[o] = '\0';
        slash = strchr(path + 1, '/');
        if (path[0] != '/' || !slash || strstr(path, ".."))
                return s3_error(conn, 400, "InvalidURI");
        if (arg.deny && strncmp(path + 1, arg.deny, (size_t) (slash - path - 1)) == 0 &&
            strlen(arg.deny) == (size_t) (slash - path - 1)) {
                stats.s3_403++;
                return s3_error(conn, 403, "AccessDenied");
        }
        if (arg.slow && strncmp(path + 1, arg.slow, (size_t) (slash - path - 1)) == 0)
                (void) poll(NULL, 0, 3000);
        (void) snprintf(file, sizeof(file), "%s/%.*s/", arg.objects, (int) (slash - path - 1), path + 1);
        o = strlen(file);
        for (const char *k = slash + 1; *k && o + 1 < sizeof(file); k++)
                file[o++] = *k == '/' ? '_' : *k;
        file[o] = '\0';
        if (strcmp(h->method, "PUT") == 0) {
                /* PutObject: the body becomes the object file (tests/fakes/README) */
                char tmp[8200];
                (void) snprintf(tmp, sizeof(tmp), "%s.put", file);
                f = fopen(tmp, "we");
                if (!f || fwrite(body, 1, body_len, f) != body_len || fclose(f) != 0 ||
                    rename(tmp, file) < 0)
                        return s3_error(conn, 500, "InternalError");
                stats.s3_put++;
                return reply(conn, 200, NULL, NULL, 0);
        }
        f = fopen(file, "re");
        if (!f || fstat(fileno(f), &st) < 0) {
                if (f)
                        fclose(f);
                stats.s3_404++;
                return s3_error(conn, 404, "NoSuchKey");
        }
        len = (size_t) st.st_size;
        data = malloc(len + 1);
        if (!data || fread(data, 1, len, f) != len) {
                fclose(f);
                free(data);
                return s3_error(conn, 500, "InternalError");
        }
        fclose(f);
        SHA256(data, len, md);
        etag[0] = '"';
        for (size_t i = 0; i < 16; i++)
                (void) snprintf(etag + 1 + 2 * i, 3, "%02x", md[i]);
        memcpy(etag + 33, "\"", 2);
        inm = header(h, "If-None-Match");
        {
                char hdr[128];
                (void) snprintf(hdr, sizeof(hdr), "ETag: %s\r\n", etag);
                if (inm && strcmp(inm, etag) == 0) {
                        stats.s3_304++;
                        reply(conn, 304, hdr, NULL, 0);
                } else {
                        stats.s3_200++;
                        reply(conn, 200, hdr, data, len);
                }
        }
        free(data);
}

/* One request on c. tls: the S3 port (IMDS is plain HTTP, as the real one); with a TLS port, the plain
 * port serves IMDS only. */
static void serve_one(struct faws_conn *c, bool tls) {
        static char buf[FKMS_HTTP_HEAD_MAX + FKMS_HTTP_BODY_MAX];
        struct fkms_http_head h;
        struct fkms_http_error err = {};
        size_t have = 0;
        int head_len;

        while ((head_len = fkms_http_head_end(buf, have)) == 0) {
                ssize_t n = faws_conn_recv(c, buf + have, FKMS_HTTP_HEAD_MAX - have);
                if (n <= 0)
                        return;
                have += (size_t) n;
        }
        if (head_len < 0 || fkms_http_head_parse(buf, (size_t) head_len, &h, &err) < 0)
                return reply_text(c, 400, "bad request");
        while (have < (size_t) head_len + h.content_length) {
                ssize_t n = faws_conn_recv(c, buf + have, sizeof(buf) - have);
                if (n <= 0)
                        return;
                have += (size_t) n;
        }
        cur_head = &h;
        if (strncmp(h.target, "/latest/", 8) == 0) {
                if (tls)
                        reply_text(c, 404, "IMDS is plain HTTP, on the other port");
                else
                        imds(c, &h);
        } else if (arg.tls && !tls) {
                stats.s3_plain_refused++;
                s3_error(c, 400, "TLSRequired");
        } else {
                if (tls)
                        stats.s3_tls++;
                s3(c, &h, buf + head_len, h.content_length);
        }
        cur_head = NULL;
        write_stats();
}

/* The port file written atomically: tests wait for it. */
static int write_port_file(const char *path, int lfd) {
        struct sockaddr_in sa;
        socklen_t sl = sizeof(sa);
        char tmp[4096];
        FILE *f;

        if (getsockname(lfd, (struct sockaddr *) &sa, &sl) < 0)
                return -errno;
        (void) snprintf(tmp, sizeof(tmp), "%s.tmp", path);
        f = fopen(tmp, "we");
        if (!f || fprintf(f, "%u\n", ntohs(sa.sin_port)) < 0 || fclose(f) != 0 || rename(tmp, path) < 0)
                return -EIO;
        return 0;
}

static int listen_loopback(void) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (fd < 0 || bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 || listen(fd, 16) < 0) {
                safe_close(fd);
                return -1;
        }
        return fd;
}

static int split_credentials(const char *s) {
        const char *c1 = strchr(s, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;

        if (!c1 || !c2 || (size_t) (c1 - s) + 4 >= sizeof(arg.akid_base) ||
            (size_t) (c2 - c1 - 1) + 8 >= sizeof(arg.secret_base) ||
            strlen(c2 + 1) + 8 >= sizeof(arg.token_base))
                return -EINVAL;
        (void) snprintf(arg.akid_base, sizeof(arg.akid_base), "%.*s", (int) (c1 - s), s);
        (void) snprintf(arg.secret_base, sizeof(arg.secret_base), "%.*s", (int) (c2 - c1 - 1), c1 + 1);
        (void) snprintf(arg.token_base, sizeof(arg.token_base), "%s", c2 + 1);
        return 0;
}

#define MAX_TLS_NAMES 8

int main(int argc, char **argv) {
        static const struct option opts[] = { { "port-file", required_argument, NULL, 'p' },
                                              { "objects", required_argument, NULL, 'o' },
                                              { "region", required_argument, NULL, 'r' },
                                              { "role", required_argument, NULL, 'R' },
                                              { "credentials", required_argument, NULL, 'c' },
                                              { "partition", required_argument, NULL, 'P' },
                                              { "domain", required_argument, NULL, 'd' },
                                              { "role-arn-tag", required_argument, NULL, 't' },
                                              { "instance-profile", required_argument, NULL, 'i' },
                                              { "no-role", no_argument, NULL, 'n' },
                                              { "cred-ttl", required_argument, NULL, 'T' },
                                              { "deny", required_argument, NULL, 'D' },
                                              { "slow", required_argument, NULL, 's' },
                                              { "clock-offset", required_argument, NULL, 'C' },
                                              { "stats", required_argument, NULL, 'S' },
                                              { "log", required_argument, NULL, 'L' },
                                              { "tls-port-file", required_argument, NULL, 'l' },
                                              { "ca-out", required_argument, NULL, 'a' },
                                              { "tls-name", required_argument, NULL, 'N' },
                                              {} };
        const char *port_file = NULL, *tls_port_file = NULL, *ca_out = NULL;
        const char *names[MAX_TLS_NAMES + 1] = {};
        size_t n_names = 0, ca_len = 0;
        _cleanup_free_ char *ca_pem = NULL;
        SSL_CTX *ctx = NULL;
        int c, lfd, tfd = -1, r;

        while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0) {
                switch (c) {
                case 'p': port_file = optarg; break;
                case 'o': arg.objects = optarg; break;
                case 'r': arg.region = optarg; break;
                case 'R': arg.role = optarg; break;
                case 'c':
                        if (split_credentials(optarg) < 0) {
                                fprintf(stderr, "fake-aws: --credentials AKID:SECRET:TOKEN\n");
                                return 2;
                        }
                        secret_wipe(optarg, strlen(optarg));
                        break;
                case 'P': arg.partition = optarg; break;
                case 'd': arg.domain = optarg; break;
                case 't': arg.role_arn_tag = optarg; break;
                case 'i': arg.instance_profile = optarg; break;
                case 'n': arg.no_role = true; break;
                case 'T': arg.cred_ttl = strtoll(optarg, NULL, 10); break;
                case 'D': arg.deny = optarg; break;
                case 's': arg.slow = optarg; break;
                case 'C': arg.clock_offset = strtoll(optarg, NULL, 10); break;
                case 'S': arg.stats = optarg; break;
                case 'L': arg.log = optarg; break;
                case 'l': tls_port_file = optarg; break;
                case 'a': ca_out = optarg; break;
                case 'N':
                        if (n_names >= MAX_TLS_NAMES) {
                                fprintf(stderr, "fake-aws: at most %d --tls-name\n", MAX_TLS_NAMES);
                                return 2;
                        }
                        names[n_names++] = optarg;
                        break;
                default: return 2;
                }
        }
        if (!port_file || !arg.objects || !arg.region || !arg.role || !arg.akid_base[0] ||
            arg.cred_ttl < 1) {
                fprintf(stderr,
                        "fake-aws: --port-file, --objects, --region, --role, --credentials are required\n");
                return 2;
        }
        if (!tls_port_file != !ca_out || (n_names && !tls_port_file)) {
                fprintf(stderr,
                        "fake-aws: --tls-port-file and --ca-out go together (--tls-name with them)\n");
                return 2;
        }
        arg.tls = tls_port_file != NULL;
        if (arg.tls) {
                if (n_names == 0)
                        names[n_names++] = "localhost";
                r = faws_tls_ctx_new(names, &ctx, &ca_pem, &ca_len);
                if (r < 0) {
                        fprintf(stderr, "fake-aws: cannot make the TLS test CA: %s\n", strerror(-r));
                        return 1;
                }
        }
        if (issue_credentials() < 0)
                return 1;
        lfd = listen_loopback();
        if (lfd < 0 || (arg.tls && (tfd = listen_loopback()) < 0)) {
                perror("fake-aws: listen");
                return 1;
        }
        /* the CA first, then the port files: a test waiting for a port file finds the CA there */
        if ((ca_out && fkms_write_atomic(ca_out, ca_pem, ca_len, 0644) < 0) ||
            write_port_file(port_file, lfd) < 0 ||
            (tls_port_file && write_port_file(tls_port_file, tfd) < 0)) {
                perror("fake-aws: CA or port file");
                return 1;
        }
        write_stats();
        signal(SIGTERM, on_signal);
        signal(SIGINT, on_signal);
        signal(SIGPIPE, SIG_IGN);
        while (!stop) {
                struct pollfd p[2] = { { lfd, POLLIN, 0 }, { tfd, POLLIN, 0 } };

                if (poll(p, tfd >= 0 ? 2 : 1, 500) <= 0)
                        continue;
                for (int i = 0; i < 2; i++) {
                        struct faws_conn conn;
                        const char *why = NULL;
                        int cfd;

                        if (!(p[i].revents & POLLIN))
                                continue;
                        cfd = accept4(p[i].fd, NULL, NULL, SOCK_CLOEXEC);
                        if (cfd < 0)
                                continue;
                        if (faws_conn_open(cfd, i == 1 ? ctx : NULL, IO_MS, &conn, &why) < 0) {
                                if (i == 1) {
                                        stats.tls_handshake_failed++;
                                        write_stats();
                                        fprintf(stderr, "fake-aws: TLS handshake failed: %s\n", why);
                                }
                                continue;
                        }
                        if (i == 1)
                                stats.tls_handshakes++;
                        serve_one(&conn, i == 1);
                        faws_conn_close(&conn);
                }
        }
        (void) unlink(port_file);
        if (tls_port_file)
                (void) unlink(tls_port_file);
        SSL_CTX_free(ctx);
        safe_close(lfd);
        safe_close(tfd);
        secret_buf_free(cred.secret);
        secret_buf_free(cred.token);
        return 0;
}
