/* enclave-acm object create: the S3 object of an S3 source, {certificate, certificateChain,
 * encryptedPrivateKey, encryptionMethod}, with the key encrypted by KMS Encrypt (what ACM's s3-db tool
 * does with the aws CLI). The private key is read into wiped memory, sent to KMS, and wiped; it is
 * never written anywhere. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "aws/endpoint.h"
#include "aws/http.h"
#include "aws/imds-client.h"
#include "aws/kms-encrypt.h"
#include "aws/s3-client.h"
#include "aws/s3.h"
#include "aws/sigv4.h"
#include "common/log.h"
#include "common/secret.h"
#include "parent/provision.h"
#include "tools/cli.h"

static void help(void) {
        printf("Usage: enclave-acm object create --key KEY.pem --cert CHAIN.pem --kms-key-id ID [--region "
               "R]\n"
               "                                 [-o FILE] [--s3 s3://BUCKET/KEY [--s3-endpoint URL] "
               "[--s3-ca FILE]]\n"
               "                                 [--imds-endpoint URL] [--kms-ca FILE] [--kms-connect-to "
               "HOST:PORT]\n"
               "\n"
               "Writes the JSON object an S3 source reads: the certificate (leaf), the rest of the chain,\n"
               "the private key encrypted with KMS Encrypt under ID (a key id, key ARN or alias), and\n"
               "encryptionMethod SYMMETRIC_DEFAULT. Upload it with any S3 client; the key policy must "
               "allow\n"
               "kms:Decrypt only with the enclave image's PCR0 (kms:RecipientAttestation:PCR0).\n"
               "\n"
               "Credentials: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN when set, else "
               "the\n"
               "instance role's from IMDSv2 (--imds-endpoint, default http://169.254.169.254). Region:\n"
               "--region, else AWS_REGION, else IMDS's.\n"
               "\n"
               "  --key KEY.pem           the private key (PEM; read into locked memory and wiped)\n"
               "  --cert CHAIN.pem        the certificate chain, leaf first; checked against the key\n"
               "  --kms-key-id ID         the KMS key to encrypt with\n"
               "  --region R              the KMS region\n"
               "  -o, --output FILE       where to write the object (mode 0644; default stdout unless "
               "--s3)\n"
               "  --s3 s3://BUCKET/KEY    upload the object there (S3 PutObject)\n"
               "  --s3-endpoint URL       S3 for --s3: https://host[:port] (http:// to loopback only: "
               "tests)\n"
               "  --s3-ca FILE            a CA bundle for S3's TLS certificate instead of the system's\n"
               "  --imds-endpoint URL     the instance metadata service (tests: a loopback fake)\n"
               "  --kms-ca FILE           a CA bundle for KMS's TLS certificate instead of the system's\n"
               "  --kms-connect-to HOST:PORT\n"
               "                          connect there instead of KMS's address, keeping its name for TLS\n"
               "                          and the signature (tests: a loopback fake KMS)\n");
}

struct object_creds {
        char region[AWS_REGION_MAX + 1];
        char akid[AWS_IMDS_AKID_MAX + 1];
        struct secret_buf *secret, *token;
};

static void object_creds_done(struct object_creds *c) {
        secret_buf_free(c->secret);
        secret_buf_free(c->token);
        *c = (struct object_creds){};
}

static int env_secret(const char *name, struct secret_buf **ret) {
        const char *v = secure_getenv(name);

        *ret = NULL;
        if (!v || !*v)
                return 0;
        return secret_buf_dup(v, strlen(v), ret);
}

static int creds_get(const char *region, const char *imds_endpoint, struct object_creds *ret) {
        const char *akid = secure_getenv("AWS_ACCESS_KEY_ID"), *env_region = secure_getenv("AWS_REGION");
        _cleanup_(aws_imds_info_done) struct aws_imds_info info = {};
        struct aws_err e = {};
        int r;

        if (!region || !*region)
                region = env_region && *env_region ? env_region : NULL;
        if (akid && *akid) {
                if (strlen(akid) > AWS_IMDS_AKID_MAX)
                        return log_error_errno(-EINVAL, "AWS_ACCESS_KEY_ID is too long");
                memcpy(ret->akid, akid, strlen(akid) + 1);
                if ((r = env_secret("AWS_SECRET_ACCESS_KEY", &ret->secret)) < 0 ||
                    (r = env_secret("AWS_SESSION_TOKEN", &ret->token)) < 0)
                        return r;
                if (!ret->secret)
                        return log_error_errno(-ENOKEY,
                                               "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not");
        }
        if (!ret->secret || !region) {
                r = aws_imds_fetch(&(struct aws_imds_opts){ .endpoint = imds_endpoint },
                                   AWS_IMDS_WANT_PLACE | (ret->secret ? 0 : AWS_IMDS_WANT_CREDS), &info, &e);
                if (r < 0)
                        return log_error_errno(r, "AWS credentials or region: %s", e.msg);
                if (!ret->secret) {
                        memcpy(ret->akid, info.creds.access_key_id, sizeof(ret->akid));
                        ret->secret = TAKE_PTR(info.creds.secret_access_key);
                        ret->token = TAKE_PTR(info.creds.session_token);
                }
                if (!region)
                        region = info.region;
        }
        if (aws_region_validate(region, &e) < 0)
                return log_error_errno(-EINVAL, "Region: %s", e.msg);
        memcpy(ret->region, region, strlen(region) + 1);
        return 0;
}

/* KMS Encrypt of the key's PEM: the blob into *ret (malloc'ed). */
static int kms_encrypt(const struct object_creds *c, const char *key_id, const struct secret_buf *pt,
                       const char *ca_file, const char *connect_to, uint8_t **ret, size_t *ret_len) {
        _cleanup_secret_ struct secret_buf *body = NULL;
        _cleanup_(aws_sigv4_result_done) struct aws_sigv4_result sig = {};
        _cleanup_(aws_url_resp_done) struct aws_url_resp resp = {};
        _cleanup_free_ uint8_t *blob = NULL;
        _cleanup_free_ char *url = NULL, *conn = NULL;
        char host[AWS_HOST_MAX + 1];
        struct aws_header h[3 + AWS_SIGV4_MAX_ADD];
        struct aws_credentials cr = { c->akid, c->secret, c->token };
        struct aws_err e = {};
        size_t nh = 0;
        int r;

        if ((r = aws_kms_host(c->region, NULL, host, sizeof(host), &e)) < 0)
                return log_error_errno(r, "KMS endpoint: %s", e.msg);
        if ((r = aws_kms_encrypt_request_build(key_id, pt->data, pt->len, &body, &e)) < 0)
                return log_error_errno(r, "KMS Encrypt: %s", e.msg);
        h[nh++] = (struct aws_header){ "Host", host };
        h[nh++] = (struct aws_header){ "Content-Type", AWS_KMS_CONTENT_TYPE };
        h[nh++] = (struct aws_header){ "X-Amz-Target", AWS_KMS_ENCRYPT_TARGET };
        r = aws_sigv4_sign(&(struct aws_sigv4_req){ .method = "POST",
                                                    .path = "/",
                                                    .headers = h,
                                                    .n_headers = nh,
                                                    .body = body->data,
                                                    .body_len = body->len,
                                                    .creds = &cr,
                                                    .region = c->region,
                                                    .service = "kms",
                                                    .time = (int64_t) time(NULL),
                                                    .flags = AWS_SIGV4_NORMALIZE_PATH },
                           &sig, &e);
        if (r < 0)
                return log_error_errno(r, "KMS Encrypt: signing: %s", e.msg);
        for (size_t i = 0; i < sig.n_add; i++)
                h[nh++] = sig.add[i];
        if (asprintf(&url, "https://%s/", host) < 0 ||
            (connect_to && asprintf(&conn, "%s:443:%s", host, connect_to) < 0))
                return log_error_errno(-ENOMEM, "Out of memory");
        r = aws_url_fetch(&(struct aws_url_opts){ .ca_file = ca_file, .connect_to = conn },
                          &(struct aws_url_req){ .method = "POST",
                                                 .url = url,
                                                 .headers = h,
                                                 .n_headers = nh,
                                                 .body = body->data,
                                                 .body_len = body->len },
                          &resp, &e);
        if (r < 0)
                return log_error_errno(r, "KMS Encrypt at %s: %s", host, e.msg);
        if (resp.status != 200) {
                struct aws_kms_error_info info = {};
                if (aws_kms_error_parse(resp.body, resp.body_len, &info, NULL) >= 0)
                        return log_error_errno(-EACCES, "KMS Encrypt with key '%s' refused: HTTP %ld %s: %s",
                                               key_id, resp.status, info.type_name, info.message);
                return log_error_errno(-EPROTO, "KMS Encrypt with key '%s' refused: HTTP %ld", key_id,
                                       resp.status);
        }
        blob = malloc(AWS_KMS_BLOB_MAX);
        if (!blob)
                return log_error_errno(-ENOMEM, "Out of memory");
        r = aws_kms_encrypt_response_parse(resp.body, resp.body_len, blob, AWS_KMS_BLOB_MAX, &e);
        if (r < 0)
                return log_error_errno(r, "KMS Encrypt: the answer: %s", e.msg);
        *ret = TAKE_PTR(blob);
        *ret_len = (size_t) r;
        return 0;
}

static int write_output(const char *path, const char *text, size_t len) {
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = -1;

        if (!path) {
                if (fwrite(text, 1, len, stdout) != len || fflush(stdout) != 0)
                        return log_error_errno(-EIO, "Cannot write the object to stdout");
                return 0;
        }
        if (asprintf(&tmp, "%s.XXXXXX", path) < 0)
                return log_error_errno(-ENOMEM, "Out of memory");
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return log_error_errno(-errno, "Cannot create '%s': %m", tmp);
        if (fchmod(fd, 0644) < 0 || write(fd, text, len) != (ssize_t) len || fsync(fd) < 0 ||
            rename(tmp, path) < 0) {
                int r = -errno;
                (void) unlink(tmp);
                return log_error_errno(r ?: -EIO, "Cannot write '%s': %m", path);
        }
        return 0;
}

static int object_create(int argc, char **argv) {
        enum {
                ARG_KEY = 0x100,
                ARG_CERT,
                ARG_KMS_KEY_ID,
                ARG_REGION,
                ARG_IMDS,
                ARG_KMS_CA,
                ARG_CONNECT_TO,
                ARG_S3,
                ARG_S3_ENDPOINT,
                ARG_S3_CA,
        };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "key", required_argument, NULL, ARG_KEY },
                { "cert", required_argument, NULL, ARG_CERT },
                { "kms-key-id", required_argument, NULL, ARG_KMS_KEY_ID },
                { "region", required_argument, NULL, ARG_REGION },
                { "output", required_argument, NULL, 'o' },
                { "imds-endpoint", required_argument, NULL, ARG_IMDS },
                { "kms-ca", required_argument, NULL, ARG_KMS_CA },
                { "kms-connect-to", required_argument, NULL, ARG_CONNECT_TO },
                { "s3", required_argument, NULL, ARG_S3 },
                { "s3-endpoint", required_argument, NULL, ARG_S3_ENDPOINT },
                { "s3-ca", required_argument, NULL, ARG_S3_CA },
                {},
        };
        const char *key = NULL, *cert = NULL, *key_id = NULL, *region = NULL, *out = NULL, *imds = NULL,
                   *kms_ca = NULL, *connect_to = NULL, *s3 = NULL, *s3_endpoint = NULL, *s3_ca = NULL;
        struct aws_s3_uri s3_uri = {};
        _cleanup_(object_creds_done) struct object_creds creds = {};
        _cleanup_secret_ struct secret_buf *pem = NULL;
        _cleanup_free_ char *chain = NULL, *error = NULL, *doc = NULL, *leaf = NULL;
        _cleanup_free_ uint8_t *blob = NULL;
        struct provision_key_summary sum = {};
        struct aws_err e = {};
        size_t chain_len = 0, blob_len = 0, doc_len = 0;
        const char *rest;
        int c, r;

        optind = 0;
        while ((c = getopt_long(argc, argv, "ho:", options, NULL)) >= 0) {
                switch (c) {
                case 'h': help(); return CLI_EXIT_OK;
                case ARG_KEY: key = optarg; break;
                case ARG_CERT: cert = optarg; break;
                case ARG_KMS_KEY_ID: key_id = optarg; break;
                case ARG_REGION: region = optarg; break;
                case 'o': out = optarg; break;
                case ARG_IMDS: imds = optarg; break;
                case ARG_KMS_CA: kms_ca = optarg; break;
                case ARG_CONNECT_TO: connect_to = optarg; break;
                case ARG_S3: s3 = optarg; break;
                case ARG_S3_ENDPOINT: s3_endpoint = optarg; break;
                case ARG_S3_CA: s3_ca = optarg; break;
                default: log_error("Try 'enclave-acm object create --help'."); return CLI_EXIT_USAGE;
                }
        }
        if (optind < argc || !key || !cert || !key_id) {
                log_error("object create: --key, --cert and --kms-key-id are required. Try --help.");
                return CLI_EXIT_USAGE;
        }
        if (aws_kms_key_id_validate(key_id, &e) < 0) {
                log_error("--kms-key-id: %s", e.msg);
                return CLI_EXIT_USAGE;
        }
        if (s3 && aws_s3_uri_parse(s3, &s3_uri, &e) < 0) {
                log_error("--s3: %s", e.msg);
                return CLI_EXIT_USAGE;
        }
        if (s3_endpoint && aws_s3_endpoint_validate(s3_endpoint, &e) < 0) {
                log_error("--s3-endpoint: %s", e.msg);
                return CLI_EXIT_USAGE;
        }
        if (!imds)
                imds = secure_getenv("ENCLAVE_ACM_IMDS_ENDPOINT"); /* tests: never the real IMDS */
        if (imds && aws_imds_endpoint_validate(imds, &e) < 0) {
                log_error("--imds-endpoint: %s", e.msg);
                return CLI_EXIT_USAGE;
        }
        /* the key is checked against the leaf and re-encoded as PKCS#8 PEM, in wiped memory */
        r = provision_load_key_and_chain(key, cert, &pem, &chain, &chain_len, &sum, &error);
        if (r < 0) {
                log_error("%s", error ?: strerror(-r));
                return CLI_EXIT_FAILED;
        }
        if (pem->len > AWS_KMS_PLAINTEXT_MAX) {
                log_error("The key's PEM is %zu bytes; KMS Encrypt takes at most %u (RSA up to 4096 bits)",
                          pem->len, AWS_KMS_PLAINTEXT_MAX);
                return CLI_EXIT_FAILED;
        }
        if (creds_get(region, imds, &creds) < 0)
                return CLI_EXIT_FAILED;
        r = kms_encrypt(&creds, key_id, pem, kms_ca, connect_to, &blob, &blob_len);
        pem = secret_buf_free(pem); /* wiped: the key is not needed any more */
        if (r < 0)
                return CLI_EXIT_FAILED;
        /* certificate: the leaf; certificateChain: the others */
        rest = strstr(chain + 1, "-----BEGIN CERTIFICATE-----");
        leaf = strndup(chain, rest ? (size_t) (rest - chain) : chain_len);
        if (!leaf) {
                log_error("Out of memory");
                return CLI_EXIT_FAILED;
        }
        r = aws_s3_object_build(leaf, rest ? rest : "", blob, blob_len, AWS_KMS_SYMMETRIC_DEFAULT, &doc,
                                &doc_len);
        if (r < 0) {
                log_error_errno(r, "Cannot build the object: %m");
                return CLI_EXIT_FAILED;
        }
        if ((out || !s3) && write_output(out, doc, doc_len) < 0)
                return CLI_EXIT_FAILED;
        if (s3) {
                r = aws_s3_put_object(&(struct aws_s3_opts){ .endpoint = s3_endpoint, .ca_file = s3_ca },
                                      &(struct aws_credentials){ creds.akid, creds.secret, creds.token },
                                      creds.region, &s3_uri, doc, doc_len, &e);
                if (r < 0) {
                        log_error("Upload to %s: %s", s3, e.msg);
                        return CLI_EXIT_FAILED;
                }
                log_info("Uploaded the object to %s", s3);
        }
        if (out)
                log_info("Wrote '%s': %s key, %zu certificate(s), encrypted with KMS key '%s' in %s", out,
                         sum.type, sum.n_certs, key_id, creds.region);
        return CLI_EXIT_OK;
}

int cli_verb_object(int argc, char **argv, const struct cli_ctx *ctx) {
        if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
                help();
                return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
        }
        if (strcmp(argv[1], "create") == 0)
                return object_create(argc - 1, argv + 1);
        log_error("object: unknown sub-command '%s' (expected create)", argv[1]);
        return CLI_EXIT_USAGE;
}
