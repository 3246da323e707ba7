/* enclave-acm eif describe | pcr | build: Enclave Image Files (eif/) without nitro-cli or Docker. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>

#include "common/cleanup-ssl.h"
#include "common/json.h"
#include "common/log.h"
#include "common/parse-util.h"
#include "eif/cpio.h"
#include "eif/eif-sign.h"
#include "eif/eif.h"
#include "tools/cli.h"

/* Exit status (documented in --help and README.md). */
#define EIF_EXIT_MALFORMED 3
#define EIF_EXIT_SIGNATURE 4

#define EIF_FILE_MAX       (UINT64_C(8) << 30) /* 8 GiB: far above any enclave's memory */
#define EIF_CERT_FILE_MAX  (64u * 1024u)
#define RAMDISK_DIR_MAX    (UINT64_C(2) << 30)
#define HASH_ALGORITHM     "Sha384 { ... }" /* nitro-cli prints the Rust Debug form of its hasher */

/* ---- files ---- */

DEFINE_TRIVIAL_CLEANUP_FUNC(DIR *, closedir);

struct mapped {
        uint8_t *ptr;
        size_t len;
};

static void mapped_done(struct mapped *m) {
        if (m->ptr && m->len > 0)
                (void) munmap(m->ptr, m->len);
        *m = (struct mapped){};
}

/* A read-only mapping of the whole file (an empty file maps to ptr NULL, len 0). Logs failures. */
static int map_file(const char *path, uint64_t max, struct mapped *ret) {
        _cleanup_close_ int fd = -1;
        struct stat st;
        void *p;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return log_error_errno(negative_errno(), "Cannot open '%s': %m", path);
        if (fstat(fd, &st) < 0)
                return log_error_errno(negative_errno(), "Cannot stat '%s': %m", path);
        if (!S_ISREG(st.st_mode))
                return log_error_errno(-EINVAL, "'%s' is not a regular file", path);
        if ((uint64_t) st.st_size > max || (uint64_t) st.st_size > SIZE_MAX)
                return log_error_errno(-EFBIG, "'%s' is larger than %" PRIu64 " bytes", path, max);
        *ret = (struct mapped){};
        if (st.st_size == 0)
                return 0;
        p = mmap(NULL, (size_t) st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED)
                return log_error_errno(negative_errno(), "Cannot map '%s': %m", path);
        *ret = (struct mapped){ p, (size_t) st.st_size };
        return 0;
}

static void hex48(const uint8_t *p, char out[2 * EIF_PCR_LEN + 1]) {
        for (size_t i = 0; i < EIF_PCR_LEN; i++)
                (void) snprintf(out + 2 * i, 3, "%02x", p[i]);
}

/* ---- describe ---- */

struct describe {
        const char *path;
        struct eif_image img;
        struct eif_metadata md;
        struct eif_pcrs pcrs;
        bool is_signed, sig_ok;
        uint8_t pcr8[EIF_PCR_LEN];
        char sig_error[256];
        char cert_subject[256], cert_issuer[256], not_before[32], not_after[32];
        const char *alg;
};

static const char *alg_name(int64_t alg) {
        switch (alg) {
        case EIF_COSE_ES256: return "ES256";
        case EIF_COSE_ES384: return "ES384";
        case EIF_COSE_ES512: return "ES512";
        default: return "unknown";
        }
}

static void asn1_time_str(const ASN1_TIME *t, char *buf, size_t size) {
        struct tm tm;

        if (!t || ASN1_TIME_to_tm(t, &tm) != 1 || strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                (void) snprintf(buf, size, "unknown");
}

static void cert_describe(const struct eif_signature *s, struct describe *d) {
        _cleanup_(BIO_free_allp) BIO *bio = BIO_new_mem_buf(s->cert_pem, (int) s->cert_pem_len);
        _cleanup_(X509_freep) X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;

        if (!x)
                return;
        (void) X509_NAME_oneline(X509_get_subject_name(x), d->cert_subject, sizeof(d->cert_subject));
        (void) X509_NAME_oneline(X509_get_issuer_name(x), d->cert_issuer, sizeof(d->cert_issuer));
        asn1_time_str(X509_get0_notBefore(x), d->not_before, sizeof(d->not_before));
        asn1_time_str(X509_get0_notAfter(x), d->not_after, sizeof(d->not_after));
}

/* The signature section: PCR8 and the check of the COSE signature over PCR0. */
static void describe_signature(struct describe *d) {
        const struct eif_section *s = &d->img.sections[d->img.signature];
        struct eif_signature sig = {};
        struct eif_error err = {};
        char msg[200];
        int r;

        d->is_signed = true;
        r = eif_signature_parse(s->data, s->size, &sig, &err);
        if (r < 0) {
                (void) snprintf(d->sig_error, sizeof(d->sig_error),
                                "signature section at byte %" PRIu64 ": %s", s->offset,
                                r == -EBADMSG ? eif_error_string(&err, msg, sizeof(msg)) : strerror(-r));
                return;
        }
        d->alg = alg_name(sig.alg);
        cert_describe(&sig, d);
        r = eif_signature_pcr8(&sig, d->pcr8);
        if (r < 0)
                (void) snprintf(d->sig_error, sizeof(d->sig_error),
                                "the signing certificate does not parse");
        else {
                r = eif_signature_verify(&sig, d->pcrs.pcr0, &err);
                if (r < 0)
                        (void) snprintf(d->sig_error, sizeof(d->sig_error), "%s%s%s",
                                        err.rule ? err.rule : strerror(-r), err.detail[0] ? ": " : "",
                                        err.detail);
                else
                        d->sig_ok = true;
        }
        eif_signature_done(&sig);
}

/* Printable text of a section (the cmdline): other bytes as \xNN. */
static void print_escaped(const uint8_t *p, size_t n) {
        for (size_t i = 0; i < n; i++) {
                if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\')
                        putchar(p[i]);
                else
                        printf("\\x%02x", p[i]);
        }
}

static void print_raw_json(const char *label, struct eif_blob b) {
        printf("  %-18s ", label);
        print_escaped(b.ptr, b.len);
        putchar('\n');
}

static void describe_text(const struct describe *d) {
        const struct eif_image *img = &d->img;
        char h[2 * EIF_PCR_LEN + 1];

        printf("EIF version:       %u\n", img->version);
        printf("Architecture:      %s\n", img->flags & EIF_FLAG_ARM64 ? "aarch64" : "x86_64");
        printf("CRC-32:            0x%08x (ok)\n", img->crc);
        printf("Default memory:    %" PRIu64 " MiB, CPUs: %" PRIu64 " (not used at launch)\n",
               img->default_mem >> 20, img->default_cpus);
        printf("Sections:          %zu\n", img->n_sections);
        for (size_t i = 0; i < img->n_sections; i++)
                printf("  %2zu %-10s at byte %-12" PRIu64 " %zu bytes\n", i,
                       eif_section_type_to_string(img->sections[i].type), img->sections[i].offset,
                       img->sections[i].size);
        printf("Kernel cmdline:    ");
        print_escaped(img->sections[img->cmdline].data, img->sections[img->cmdline].size);
        printf("\nMeasurements (SHA-384):\n");
        hex48(d->pcrs.pcr0, h);
        printf("  PCR0 %s\n", h);
        hex48(d->pcrs.pcr1, h);
        printf("  PCR1 %s\n", h);
        hex48(d->pcrs.pcr2, h);
        printf("  PCR2 %s\n", h);
        if (d->is_signed && !(d->sig_error[0] && !d->alg)) {
                hex48(d->pcr8, h);
                printf("  PCR8 %s\n", h);
        }
        if (!d->is_signed)
                printf("Signed:            no\n");
        else {
                printf("Signed:            yes (%s)\n", d->alg ? d->alg : "unreadable");
                if (d->cert_subject[0])
                        printf("  Certificate:     %s\n  Issuer:          %s\n  Valid:           %s to %s\n",
                               d->cert_subject, d->cert_issuer, d->not_before, d->not_after);
                printf("Signature check:   %s%s\n",
                       d->sig_ok ? "ok" : "FAILED: ", d->sig_ok ? "" : d->sig_error);
        }
        printf("Metadata:\n");
        printf("  %-18s %s\n  %-18s %s\n", "ImageName", d->md.image_name, "ImageVersion",
               d->md.image_version);
        printf("  %-18s %s\n  %-18s %s\n", "BuildTime", d->md.build_time, "BuildTool", d->md.build_tool);
        printf("  %-18s %s\n  %-18s %s\n", "BuildToolVersion", d->md.build_tool_version, "OperatingSystem",
               d->md.operating_system);
        printf("  %-18s %s\n", "KernelVersion", d->md.kernel_version);
        print_raw_json("DockerInfo", d->md.docker_info);
        print_raw_json("CustomMetadata", d->md.custom_metadata);
}

/* nitro-cli describe-eif's keys (EifVersion, Measurements, IsSigned, SigningCertificate, CheckCRC,
 * SignatureCheck, ImageName, ImageVersion, Metadata) plus Architecture, Cmdline and Sections. DockerInfo
 * and CustomMetadata are the image's own JSON values, copied verbatim where the writer put null. */
static int describe_json(const struct describe *d) {
        const struct eif_image *img = &d->img;
        struct json_writer j;
        _cleanup_free_ char *text = NULL;
        char h[2 * EIF_PCR_LEN + 1];
        size_t len, at_docker, at_custom;
        int r;

        json_writer_init(&j, false);
        json_begin_object(&j, NULL);
        json_uint(&j, "EifVersion", img->version);
        json_begin_object(&j, "Measurements");
        json_string(&j, "HashAlgorithm", HASH_ALGORITHM);
        hex48(d->pcrs.pcr0, h);
        json_string(&j, "PCR0", h);
        hex48(d->pcrs.pcr1, h);
        json_string(&j, "PCR1", h);
        hex48(d->pcrs.pcr2, h);
        json_string(&j, "PCR2", h);
        if (d->is_signed && d->alg) {
                hex48(d->pcr8, h);
                json_string(&j, "PCR8", h);
        }
        json_end_object(&j);
        json_bool(&j, "IsSigned", d->is_signed);
        if (d->is_signed && d->cert_subject[0]) {
                json_begin_object(&j, "SigningCertificate");
                json_string(&j, "Subject", d->cert_subject);
                json_string(&j, "IssuerName", d->cert_issuer);
                json_string(&j, "Algorithm", d->alg);
                json_string(&j, "NotBefore", d->not_before);
                json_string(&j, "NotAfter", d->not_after);
                json_end_object(&j);
        }
        json_bool(&j, "CheckCRC", true);
        if (d->is_signed) {
                json_bool(&j, "SignatureCheck", d->sig_ok);
                if (!d->sig_ok)
                        json_string(&j, "SignatureError", d->sig_error);
        }
        json_string(&j, "ImageName", d->md.image_name);
        json_string(&j, "ImageVersion", d->md.image_version);
        json_begin_object(&j, "Metadata");
        json_string(&j, "BuildTime", d->md.build_time);
        json_string(&j, "BuildTool", d->md.build_tool);
        json_string(&j, "BuildToolVersion", d->md.build_tool_version);
        json_string(&j, "OperatingSystem", d->md.operating_system);
        json_string(&j, "KernelVersion", d->md.kernel_version);
        json_null(&j, "DockerInfo");
        at_docker = j.len - 4; /* where "null" stands: replaced below */
        json_null(&j, "CustomMetadata");
        at_custom = j.len - 4;
        json_end_object(&j);
        json_string(&j, "Architecture", img->flags & EIF_FLAG_ARM64 ? "aarch64" : "x86_64");
        json_string_len(&j, "Cmdline", (const char *) img->sections[img->cmdline].data,
                        img->sections[img->cmdline].size);
        json_begin_array(&j, "Sections");
        for (size_t i = 0; i < img->n_sections; i++) {
                json_begin_object(&j, NULL);
                json_string(&j, "Type", eif_section_type_to_string(img->sections[i].type));
                json_uint(&j, "Offset", img->sections[i].offset);
                json_uint(&j, "Size", img->sections[i].size);
                json_end_object(&j);
        }
        json_end_array(&j);
        json_end_object(&j);
        r = json_writer_finish(&j, &text, &len);
        json_writer_done(&j);
        if (r < 0)
                return r;
        if (fwrite(text, 1, at_docker, stdout) != at_docker ||
            fwrite(d->md.docker_info.ptr, 1, d->md.docker_info.len, stdout) != d->md.docker_info.len ||
            fwrite(text + at_docker + 4, 1, at_custom - at_docker - 4, stdout) !=
                    at_custom - at_docker - 4 ||
            fwrite(d->md.custom_metadata.ptr, 1, d->md.custom_metadata.len, stdout) !=
                    d->md.custom_metadata.len ||
            fwrite(text + at_custom + 4, 1, len - at_custom - 4, stdout) != len - at_custom - 4 ||
            fflush(stdout) != 0)
                return -EIO;
        return 0;
}

static void help_eif(void) {
        printf("Usage: enclave-acm eif describe FILE [--json]\n"
               "       enclave-acm eif pcr (--input FILE | --signing-certificate PEM)\n"
               "       enclave-acm eif build --kernel FILE --cmdline TEXT (--ramdisk FILE | --ramdisk-dir "
               "DIR)...\n"
               "                             [--signing-key KEY.pem --signing-certificate CERT.pem]\n"
               "                             [--name N] [--image-version V] [--build-time RFC3339]\n"
               "                             [--kernel-version V] [--arch x86_64|aarch64] --output FILE\n"
               "\n"
               "Enclave Image Files (EIF version 4) without nitro-cli or Docker.\n"
               "\n"
               "  describe   checks every rule of the format (CRC included) and prints the version,\n"
               "             architecture, sections, PCR0/1/2 (PCR8 and the signature check when signed)\n"
               "             and the metadata; --json in nitro-cli describe-eif's keys\n"
               "  pcr        nitro-cli pcr: {\"PCR\": ...} of a file's bytes, {\"PCR8\": ...} of a "
               "certificate\n"
               "  build      writes a reproducible EIF (same inputs, same bytes) and "
               "image-measurements.json\n"
               "             next to it; --ramdisk-dir packs a directory as a newc cpio (sorted names,\n"
               "             owner 0, mtime = the build time, modes 0755/0644); the build time is\n"
               "             --build-time, else $SOURCE_DATE_EPOCH, else 1970-01-01T00:00:00+00:00\n"
               "\n"
               "Exit status: 0 done, 1 cannot read or write a file, 2 invalid command line, 3 malformed "
               "EIF\n"
               "(the message names the rule and byte offset), 4 the image's signature does not verify.\n");
}

static int verb_describe(int argc, char **argv) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "json", no_argument, NULL, 'j' },
                {},
        };
        _cleanup_(mapped_done) struct mapped m = {};
        struct describe d = {};
        struct eif_error err = {};
        bool json = false;
        char msg[256];
        int c, r;

        optind = 0;
        while ((c = getopt_long(argc, argv, "hj", options, NULL)) >= 0) {
                switch (c) {
                case 'h': help_eif(); return CLI_EXIT_OK;
                case 'j': json = true; break;
                default: log_error("Try 'enclave-acm eif --help'."); return CLI_EXIT_USAGE;
                }
        }
        if (optind + 1 != argc) {
                log_error("eif describe: expected exactly one FILE");
                return CLI_EXIT_USAGE;
        }
        d.path = argv[optind];
        if (map_file(d.path, EIF_FILE_MAX, &m) < 0)
                return CLI_EXIT_FAILED;
        r = eif_parse(m.ptr, m.len, &d.img, &err);
        if (r < 0) {
                log_error("'%s' is not a valid EIF: %s", d.path, eif_error_string(&err, msg, sizeof(msg)));
                return EIF_EXIT_MALFORMED;
        }
        if (eif_image_pcrs(&d.img, &d.pcrs) < 0 ||
            eif_metadata_parse(d.img.sections[d.img.metadata].data, d.img.sections[d.img.metadata].size,
                               &d.md, NULL) < 0) {
                log_error("'%s': cannot compute the measurements", d.path);
                return CLI_EXIT_FAILED;
        }
        if (d.img.signature >= 0)
                describe_signature(&d);
        if (json) {
                if (describe_json(&d) < 0) {
                        log_error("Cannot write the description.");
                        return CLI_EXIT_FAILED;
                }
        } else
                describe_text(&d);
        if (d.is_signed && !d.sig_ok) {
                log_error("'%s': the signature does not verify: %s", d.path, d.sig_error);
                return EIF_EXIT_SIGNATURE;
        }
        return CLI_EXIT_OK;
}

/* ---- pcr ---- */

static int print_pcr(const char *key, const uint8_t pcr[EIF_PCR_LEN]) {
        struct json_writer j;
        char h[2 * EIF_PCR_LEN + 1];

        hex48(pcr, h);
        json_writer_init(&j, false);
        json_begin_object(&j, NULL);
        json_string(&j, key, h);
        json_end_object(&j);
        if (cli_json_print(&j) < 0) {
                json_writer_done(&j);
                return log_error_errno(-EIO, "Cannot write the PCR.");
        }
        json_writer_done(&j);
        return 0;
}

static int cert_file_pcr8(const char *path, uint8_t ret[EIF_PCR_LEN]) {
        _cleanup_(mapped_done) struct mapped m = {};
        struct eif_signature s = {};
        int r;

        r = map_file(path, EIF_CERT_FILE_MAX, &m);
        if (r < 0)
                return r;
        s.cert_pem = m.ptr;
        s.cert_pem_len = m.len;
        r = eif_signature_pcr8(&s, ret);
        if (r < 0)
                return log_error_errno(r, "'%s' holds no PEM certificate", path);
        return 0;
}

static int verb_pcr(int argc, char **argv) {
        enum { ARG_INPUT = 0x100, ARG_CERT };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "input", required_argument, NULL, ARG_INPUT },
                { "signing-certificate", required_argument, NULL, ARG_CERT },
                {},
        };
        const char *input = NULL, *cert = NULL;
        uint8_t pcr[EIF_PCR_LEN];
        int c;

        optind = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case 'h': help_eif(); return CLI_EXIT_OK;
                case ARG_INPUT: input = optarg; break;
                case ARG_CERT: cert = optarg; break;
                default: log_error("Try 'enclave-acm eif --help'."); return CLI_EXIT_USAGE;
                }
        }
        if (optind < argc || !input == !cert) {
                log_error("eif pcr: give exactly one of --input FILE or --signing-certificate PEM");
                return CLI_EXIT_USAGE;
        }
        if (input) {
                _cleanup_(mapped_done) struct mapped m = {};

                if (map_file(input, EIF_FILE_MAX, &m) < 0 ||
                    eif_pcr(&(struct eif_blob){ m.ptr, m.len }, 1, pcr) < 0)
                        return CLI_EXIT_FAILED;
                return print_pcr("PCR", pcr) < 0 ? CLI_EXIT_FAILED : CLI_EXIT_OK;
        }
        if (cert_file_pcr8(cert, pcr) < 0)
                return CLI_EXIT_FAILED;
        return print_pcr("PCR8", pcr) < 0 ? CLI_EXIT_FAILED : CLI_EXIT_OK;
}

/* ---- build ---- */

struct ramdisk_arg {
        const char *path;
        bool dir;
};

struct build_args {
        const char *kernel, *cmdline, *output, *key, *cert, *name, *version, *kernel_version;
        uint16_t flags;
        struct ramdisk_arg ramdisks[EIF_MAX_SECTIONS];
        size_t n_ramdisks;
        uint64_t epoch;
};

/* A directory's tree as cpio entries; names and contents owned here. */
struct tree {
        struct eif_cpio_entry *e;
        size_t n, cap;
        uint64_t total;
};

static void tree_done(struct tree *t) {
        for (size_t i = 0; i < t->n; i++) {
                free((char *) t->e[i].name);
                free((uint8_t *) t->e[i].data);
        }
        free(t->e);
        *t = (struct tree){};
}

static int tree_add(struct tree *t, char *name, uint32_t mode, uint8_t *data, size_t len) {
        if (t->n == t->cap) {
                size_t cap = t->cap ? 2 * t->cap : 64;
                struct eif_cpio_entry *e = reallocarray(t->e, cap, sizeof(*e));

                if (!e) {
                        free(name);
                        free(data);
                        return -ENOMEM;
                }
                t->e = e;
                t->cap = cap;
        }
        t->e[t->n++] = (struct eif_cpio_entry){ .name = name, .mode = mode, .data = data, .len = len };
        return 0;
}

/* The whole regular file at dirfd/name, which must keep the size fstat() saw. */
static int read_at(int dirfd, const char *name, const char *path, uint64_t max, uint8_t **ret,
                   size_t *ret_len) {
        _cleanup_close_ int fd = -1;
        _cleanup_free_ uint8_t *buf = NULL;
        struct stat st;
        size_t got = 0;

        fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        if (fd < 0 || fstat(fd, &st) < 0)
                return log_error_errno(negative_errno(), "Cannot read '%s': %m", path);
        if ((uint64_t) st.st_size > max)
                return log_error_errno(-EFBIG, "'%s': the ramdisk directory exceeds %" PRIu64 " bytes", path,
                                       max);
        buf = malloc(st.st_size > 0 ? (size_t) st.st_size : 1);
        if (!buf)
                return log_error_errno(-ENOMEM, "Out of memory.");
        while (got < (size_t) st.st_size) {
                ssize_t n = read(fd, buf + got, (size_t) st.st_size - got);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return log_error_errno(n < 0 ? negative_errno() : -EIO, "Cannot read '%s': %s", path,
                                               n < 0 ? strerror(errno) : "it shrank while being read");
                got += (size_t) n;
        }
        *ret_len = got;
        *ret = TAKE_PTR(buf);
        return 0;
}

/* Permissions are normalised (0755 for directories and executables, 0644 for other files) so that a
 * checkout's umask cannot change the image. */
static int tree_walk(struct tree *t, int dirfd, const char *root, const char *prefix, unsigned depth) {
        _cleanup_(closedirp) DIR *d = NULL;
        struct dirent *de;
        int fd, r;

        if (depth > 64)
                return log_error_errno(-ELOOP, "'%s/%s': directories nested too deep", root, prefix);
        fd = dup(dirfd);
        if (fd < 0 || !(d = fdopendir(fd))) {
                if (fd >= 0)
                        (void) close(fd);
                return log_error_errno(negative_errno(), "Cannot list '%s/%s': %m", root, prefix);
        }
        while ((errno = 0, de = readdir(d))) {
                _cleanup_free_ char *name = NULL, *path = NULL;
                uint8_t *data = NULL;
                size_t len = 0;
                struct stat st;
                uint32_t mode;

                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                if (asprintf(&name, "%s%s%s", prefix, prefix[0] ? "/" : "", de->d_name) < 0 ||
                    asprintf(&path, "%s/%s", root, name) < 0)
                        return log_error_errno(-ENOMEM, "Out of memory.");
                if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return log_error_errno(negative_errno(), "Cannot stat '%s': %m", path);
                if (S_ISDIR(st.st_mode)) {
                        _cleanup_close_ int sub =
                                openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);

                        if (sub < 0)
                                return log_error_errno(negative_errno(), "Cannot open '%s': %m", path);
                        r = tree_add(t, TAKE_PTR(name), S_IFDIR | 0755, NULL, 0);
                        if (r < 0 || (r = tree_walk(t, sub, root, t->e[t->n - 1].name, depth + 1)) < 0)
                                return r;
                        continue;
                }
                if (S_ISREG(st.st_mode)) {
                        mode = S_IFREG | (st.st_mode & 0111 ? 0755 : 0644);
                        r = read_at(dirfd, de->d_name, path, RAMDISK_DIR_MAX - t->total, &data, &len);
                } else if (S_ISLNK(st.st_mode)) {
                        char target[PATH_MAX];
                        ssize_t n = readlinkat(dirfd, de->d_name, target, sizeof(target));

                        if (n <= 0 || (size_t) n >= sizeof(target))
                                return log_error_errno(n < 0 ? negative_errno() : -ENAMETOOLONG,
                                                       "Cannot read the link '%s'", path);
                        mode = S_IFLNK | 0777;
                        data = malloc((size_t) n);
                        if (!data)
                                return log_error_errno(-ENOMEM, "Out of memory.");
                        memcpy(data, target, (size_t) n);
                        len = (size_t) n;
                        r = 0;
                } else
                        return log_error_errno(
                                -EINVAL, "'%s': only directories, files and symlinks are packed", path);
                if (r < 0)
                        return r;
                t->total += len;
                r = tree_add(t, TAKE_PTR(name), mode, data, len);
                if (r < 0)
                        return log_error_errno(r, "Out of memory.");
        }
        if (errno != 0)
                return log_error_errno(negative_errno(), "Cannot list '%s/%s': %m", root, prefix);
        return 0;
}

/* DIR packed as a reproducible newc cpio (malloc'ed). */
static int pack_dir(const char *dir, uint32_t mtime, uint8_t **ret, size_t *ret_len) {
        _cleanup_(tree_done) struct tree t = {};
        _cleanup_close_ int fd = -1;
        int r;

        fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return log_error_errno(negative_errno(), "Cannot open the directory '%s': %m", dir);
        r = tree_walk(&t, fd, dir, "", 0);
        if (r < 0)
                return r;
        r = eif_cpio_write(t.e, t.n, mtime, ret, ret_len);
        if (r < 0)
                return log_error_errno(r, "Cannot pack '%s' as cpio: %m", dir);
        return 0;
}

/* Writes the pieces to a temporary file beside path, fsync()s it and renames it into place. */
static int write_atomic(const char *path, const struct eif_blob *pieces, size_t n) {
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = -1;
        int r = 0;

        if (asprintf(&tmp, "%s.tmp.XXXXXX", path) < 0)
                return log_error_errno(-ENOMEM, "Out of memory.");
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return log_error_errno(negative_errno(), "Cannot create a file beside '%s': %m", path);
        if (fchmod(fd, 0644) < 0)
                r = negative_errno();
        for (size_t i = 0; r == 0 && i < n; i++) {
                size_t done = 0;

                while (r == 0 && done < pieces[i].len) {
                        ssize_t k = write(fd, pieces[i].ptr + done, pieces[i].len - done);

                        if (k < 0 && errno == EINTR)
                                continue;
                        if (k <= 0)
                                r = k < 0 ? negative_errno() : -EIO;
                        else
                                done += (size_t) k;
                }
        }
        if (r == 0 && fsync(fd) < 0)
                r = negative_errno();
        if (r == 0 && rename(tmp, path) < 0)
                r = negative_errno();
        if (r < 0) {
                (void) unlink(tmp);
                return log_error_errno(r, "Cannot write '%s': %m", path);
        }
        return 0;
}

/* nitro-cli's build output: {"Measurements": {"HashAlgorithm": ..., "PCR0": ..., ...}}. */
static int measurements_json(const struct eif_pcrs *p, const uint8_t *pcr8, char **ret, size_t *ret_len) {
        struct json_writer j;
        char h[2 * EIF_PCR_LEN + 1];
        int r;

        json_writer_init(&j, false);
        json_begin_object(&j, NULL);
        json_begin_object(&j, "Measurements");
        json_string(&j, "HashAlgorithm", HASH_ALGORITHM);
        hex48(p->pcr0, h);
        json_string(&j, "PCR0", h);
        hex48(p->pcr1, h);
        json_string(&j, "PCR1", h);
        hex48(p->pcr2, h);
        json_string(&j, "PCR2", h);
        if (pcr8) {
                hex48(pcr8, h);
                json_string(&j, "PCR8", h);
        }
        json_end_object(&j);
        json_end_object(&j);
        r = json_writer_finish(&j, ret, ret_len);
        json_writer_done(&j);
        return r;
}

static int parse_epoch(struct build_args *a) {
        const char *s = secure_getenv("SOURCE_DATE_EPOCH");
        unsigned long v;

        a->epoch = 0;
        if (!s || !s[0])
                return 0;
        if (parse_unsigned(s, 10, 0, UINT32_MAX, &v) < 0)
                return log_error_errno(-EINVAL, "SOURCE_DATE_EPOCH='%s' is not a UNIX time (0..%u)", s,
                                       UINT32_MAX);
        a->epoch = v;
        return 0;
}

static void help_build(void) {
        help_eif();
}

static int parse_build(int argc, char **argv, struct build_args *a) {
        enum {
                ARG_KERNEL = 0x100,
                ARG_CMDLINE,
                ARG_RAMDISK,
                ARG_RAMDISK_DIR,
                ARG_KEY,
                ARG_CERT,
                ARG_OUTPUT,
                ARG_NAME,
                ARG_VERSION,
                ARG_KVER,
                ARG_ARCH,
        };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "kernel", required_argument, NULL, ARG_KERNEL },
                { "cmdline", required_argument, NULL, ARG_CMDLINE },
                { "ramdisk", required_argument, NULL, ARG_RAMDISK },
                { "ramdisk-dir", required_argument, NULL, ARG_RAMDISK_DIR },
                { "signing-key", required_argument, NULL, ARG_KEY },
                { "private-key", required_argument, NULL, ARG_KEY }, /* nitro-cli's name */
                { "signing-certificate", required_argument, NULL, ARG_CERT },
                { "output", required_argument, NULL, ARG_OUTPUT },
                { "name", required_argument, NULL, ARG_NAME },
                { "image-version", required_argument, NULL, ARG_VERSION },
                { "kernel-version", required_argument, NULL, ARG_KVER },
                { "arch", required_argument, NULL, ARG_ARCH },
                {},
        };
        int c;

        optind = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case 'h': help_build(); return 0;
                case ARG_KERNEL: a->kernel = optarg; break;
                case ARG_CMDLINE: a->cmdline = optarg; break;
                case ARG_RAMDISK:
                case ARG_RAMDISK_DIR:
                        if (a->n_ramdisks >= EIF_MAX_SECTIONS - 4)
                                return log_error_errno(-EINVAL, "eif build: at most %d ramdisks",
                                                       EIF_MAX_SECTIONS - 4);
                        a->ramdisks[a->n_ramdisks++] = (struct ramdisk_arg){ optarg, c == ARG_RAMDISK_DIR };
                        break;
                case ARG_KEY: a->key = optarg; break;
                case ARG_CERT: a->cert = optarg; break;
                case ARG_OUTPUT: a->output = optarg; break;
                case ARG_NAME: a->name = optarg; break;
                case ARG_VERSION: a->version = optarg; break;
                case ARG_KVER: a->kernel_version = optarg; break;
                case ARG_ARCH:
                        if (strcmp(optarg, "x86_64") == 0)
                                a->flags = 0;
                        else if (strcmp(optarg, "aarch64") == 0)
                                a->flags = EIF_FLAG_ARM64;
                        else
                                return log_error_errno(-EINVAL, "--arch '%s': expected x86_64 or aarch64",
                                                       optarg);
                        break;
                default: return log_error_errno(-EINVAL, "Try 'enclave-acm eif --help'.");
                }
        }
        if (optind < argc)
                return log_error_errno(-EINVAL, "eif build: unexpected argument '%s'", argv[optind]);
        if (!a->kernel || !a->cmdline || !a->output || a->n_ramdisks == 0)
                return log_error_errno(-EINVAL, "eif build: --kernel, --cmdline, --output and at least one "
                                                "--ramdisk or --ramdisk-dir are required");
        if (!a->key != !a->cert)
                return log_error_errno(-EINVAL,
                                       "eif build: --signing-key and --signing-certificate go together");
        return parse_epoch(a) < 0 ? -EINVAL : 1;
}

static int load_signing_key(const char *path, EVP_PKEY **ret) {
        _cleanup_(BIO_free_allp) BIO *bio = NULL;
        EVP_PKEY *k;

        bio = BIO_new_file(path, "re");
        if (!bio)
                return log_error_errno(-ENOENT, "Cannot open the signing key '%s'", path);
        k = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
        if (!k)
                return log_error_errno(-EINVAL,
                                       "'%s' holds no PEM private key (an encrypted key is not read)", path);
        *ret = k;
        return 0;
}

/* The signature section for pcr0, and PCR8. */
static int build_signature(const struct build_args *a, const struct eif_pcrs *p, uint8_t **ret,
                           size_t *ret_len, uint8_t pcr8[EIF_PCR_LEN]) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_(mapped_done) struct mapped cert = {};
        int r;

        if (load_signing_key(a->key, &key) < 0 || map_file(a->cert, EIF_CERT_FILE_MAX, &cert) < 0)
                return -EINVAL;
        r = eif_signature_build(p->pcr0, cert.ptr, cert.len, key, ret, ret_len);
        if (r == -EINVAL)
                return log_error_errno(
                        r,
                        "Cannot sign with '%s': it must be an EC P-256, P-384 or P-521 key and "
                        "'%s' its PEM certificate",
                        a->key, a->cert);
        if (r < 0)
                return log_error_errno(r, "Cannot sign the image: %m");
        r = cert_file_pcr8(a->cert, pcr8);
        return r < 0 ? r : 0;
}

struct build_parts {
        struct mapped kernel;
        struct mapped files[EIF_MAX_SECTIONS];
        uint8_t *packed[EIF_MAX_SECTIONS];
        struct eif_blob ramdisks[EIF_MAX_SECTIONS];
        char *metadata;
        uint8_t *signature;
        struct eif_layout *layout;
};

static void build_parts_done(struct build_parts *b) {
        mapped_done(&b->kernel);
        for (size_t i = 0; i < EIF_MAX_SECTIONS; i++) {
                mapped_done(&b->files[i]);
                free(b->packed[i]);
        }
        free(b->metadata);
        free(b->signature);
        free(b->layout);
}

static int load_parts(const struct build_args *a, struct build_parts *b) {
        for (size_t i = 0; i < a->n_ramdisks; i++) {
                size_t len;

                if (a->ramdisks[i].dir) {
                        if (pack_dir(a->ramdisks[i].path, (uint32_t) a->epoch, &b->packed[i], &len) < 0)
                                return -EINVAL;
                        b->ramdisks[i] = (struct eif_blob){ b->packed[i], len };
                } else {
                        if (map_file(a->ramdisks[i].path, EIF_FILE_MAX, &b->files[i]) < 0)
                                return -EINVAL;
                        b->ramdisks[i] = (struct eif_blob){ b->files[i].ptr, b->files[i].len };
                }
        }
        return map_file(a->kernel, EIF_FILE_MAX, &b->kernel);
}

static int make_metadata(const struct build_args *a, const struct build_parts *b, char **ret,
                         size_t *ret_len) {
        char when[64], kver[EIF_METADATA_STR_MAX];
        time_t t = (time_t) a->epoch;
        struct tm tm;
        struct eif_metadata_in md = {
                .image_name = a->name ? a->name : "enclave-acm",
                .image_version = a->version ? a->version : ENCLAVE_ACM_VERSION,
                .build_time = when,
                .build_tool = "enclave-acm",
                .build_tool_version = ENCLAVE_ACM_VERSION,
                .operating_system = "Linux",
                .kernel_version = kver,
        };

        if (!gmtime_r(&t, &tm) || strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S+00:00", &tm) == 0)
                return log_error_errno(-EINVAL, "Cannot format the build time %" PRIu64, a->epoch);
        if (a->kernel_version)
                (void) snprintf(kver, sizeof(kver), "%s", a->kernel_version);
        else if (eif_bzimage_version(b->kernel.ptr, b->kernel.len, kver, sizeof(kver)) < 0)
                (void) snprintf(kver, sizeof(kver), "unknown");
        if (eif_metadata_write(&md, ret, ret_len) < 0)
                return log_error_errno(-ENOMEM, "Out of memory.");
        return 0;
}

/* Maps what was written and checks it as describe would: the same PCRs, every rule. */
static int check_written(const char *path, const struct eif_pcrs *want) {
        _cleanup_(mapped_done) struct mapped m = {};
        struct eif_image img;
        struct eif_error err = {};
        struct eif_pcrs got;
        char msg[256];

        if (map_file(path, EIF_FILE_MAX, &m) < 0)
                return -EIO;
        if (eif_parse(m.ptr, m.len, &img, &err) < 0)
                return log_error_errno(-EBADMSG, "'%s' as written does not parse: %s", path,
                                       eif_error_string(&err, msg, sizeof(msg)));
        if (eif_image_pcrs(&img, &got) < 0 || memcmp(&got, want, sizeof(got)) != 0)
                return log_error_errno(-EIO, "'%s' as written has other measurements (changed on disk?)",
                                       path);
        return 0;
}

static int write_measurements(const char *output, const char *json, size_t len) {
        _cleanup_free_ char *copy = strdup(output), *path = NULL;
        char *slash;

        if (!copy)
                return log_error_errno(-ENOMEM, "Out of memory.");
        slash = strrchr(copy, '/');
        if (slash)
                slash[1] = '\0';
        if (asprintf(&path, "%simage-measurements.json", slash ? copy : "") < 0)
                return log_error_errno(-ENOMEM, "Out of memory.");
        return write_atomic(path, &(struct eif_blob){ (const uint8_t *) json, len }, 1);
}

static int verb_build(int argc, char **argv) {
        _cleanup_(build_parts_done) struct build_parts b = {};
        _cleanup_free_ char *mjson = NULL;
        _cleanup_free_ struct eif_blob *pieces = NULL;
        struct build_args a = {};
        struct eif_build in;
        struct eif_pcrs pcrs;
        struct eif_error err = {};
        uint8_t pcr8[EIF_PCR_LEN];
        size_t md_len, sig_len = 0, mjson_len, n = 0;
        char msg[256];
        int r;

        r = parse_build(argc, argv, &a);
        if (r <= 0)
                return r < 0 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
        if (load_parts(&a, &b) < 0 || make_metadata(&a, &b, &b.metadata, &md_len) < 0)
                return CLI_EXIT_FAILED;
        in = (struct eif_build){
                .kernel = { b.kernel.ptr, b.kernel.len },
                .cmdline = { (const uint8_t *) a.cmdline, strlen(a.cmdline) },
                .metadata = { (const uint8_t *) b.metadata, md_len },
                .ramdisks = b.ramdisks,
                .n_ramdisks = a.n_ramdisks,
                .flags = a.flags,
        };
        if (eif_pcrs_compute(in.kernel, in.cmdline, in.ramdisks, in.n_ramdisks, &pcrs) < 0)
                return CLI_EXIT_FAILED;
        if (a.key) {
                if (build_signature(&a, &pcrs, &b.signature, &sig_len, pcr8) < 0)
                        return CLI_EXIT_FAILED;
                in.signature = (struct eif_blob){ b.signature, sig_len };
        }
        b.layout = malloc(sizeof(*b.layout));
        pieces = calloc(1 + 2 * EIF_MAX_SECTIONS, sizeof(*pieces));
        if (!b.layout || !pieces) {
                log_error("Out of memory.");
                return CLI_EXIT_FAILED;
        }
        if (eif_layout_build(&in, b.layout, &err) < 0) {
                log_error("Cannot build the image: %s", eif_error_string(&err, msg, sizeof(msg)));
                return CLI_EXIT_FAILED;
        }
        pieces[n++] = (struct eif_blob){ b.layout->header, EIF_HEADER_SIZE };
        for (size_t i = 0; i < b.layout->n_sections; i++) {
                pieces[n++] = (struct eif_blob){ b.layout->section_hdrs[i], EIF_SECTION_HDR_SIZE };
                pieces[n++] = b.layout->data[i];
        }
        if (write_atomic(a.output, pieces, n) < 0)
                return CLI_EXIT_FAILED;
        if (check_written(a.output, &pcrs) < 0) {
                (void) unlink(a.output); /* never leave an image that did not check out */
                return CLI_EXIT_FAILED;
        }
        if (measurements_json(&pcrs, a.key ? pcr8 : NULL, &mjson, &mjson_len) < 0) {
                log_error("Out of memory.");
                return CLI_EXIT_FAILED;
        }
        if (write_measurements(a.output, mjson, mjson_len) < 0)
                return CLI_EXIT_FAILED;
        if (fwrite(mjson, 1, mjson_len, stdout) != mjson_len || fflush(stdout) != 0)
                return CLI_EXIT_FAILED;
        return CLI_EXIT_OK;
}

int cli_verb_eif(int argc, char **argv, const struct cli_ctx *ctx) {
        if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
                if (argc < 2) {
                        log_error("eif: expected the sub-command 'describe', 'pcr' or 'build'");
                        return CLI_EXIT_USAGE;
                }
                help_eif();
                return CLI_EXIT_OK;
        }
        if (strcmp(argv[1], "describe") == 0)
                return verb_describe(argc - 1, argv + 1);
        if (strcmp(argv[1], "pcr") == 0)
                return verb_pcr(argc - 1, argv + 1);
        if (strcmp(argv[1], "build") == 0)
                return verb_build(argc - 1, argv + 1);
        log_error("eif: unknown sub-command '%s' (expected describe, pcr or build)", argv[1]);
        return CLI_EXIT_USAGE;
}
