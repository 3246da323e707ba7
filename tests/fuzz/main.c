/* Standalone driver for the fuzz targets: one input from stdin, or each file (or directory of files,
 * in name order) given on the command line. Not linked with -Dfuzzing=true (libFuzzer has main). */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define DRIVER_MAX_INPUT (4u * 1024u * 1024u)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_stream(FILE *f, const char *name) {
        uint8_t *buf = malloc(DRIVER_MAX_INPUT);
        size_t n;

        if (!buf)
                return -ENOMEM;
        n = fread(buf, 1, DRIVER_MAX_INPUT, f);
        if (ferror(f)) {
                fprintf(stderr, "%s: read error\n", name);
                free(buf);
                return -EIO;
        }
        /* a trimmed copy, so that reads past the end are caught by ASan / valgrind */
        {
                uint8_t *exact = malloc(n > 0 ? n : 1);
                if (!exact) {
                        free(buf);
                        return -ENOMEM;
                }
                memcpy(exact, buf, n);
                free(buf);
                (void) LLVMFuzzerTestOneInput(exact, n);
                free(exact);
        }
        return 0;
}

static int run_file(const char *path) {
        FILE *f = fopen(path, "rbe");
        int r;

        if (!f) {
                fprintf(stderr, "%s: %s\n", path, strerror(errno));
                return -errno;
        }
        r = run_stream(f, path);
        fclose(f);
        return r;
}

static int run_path(const char *path) {
        struct dirent **entries;
        struct stat st;
        int n, r = 0;

        if (stat(path, &st) < 0) {
                fprintf(stderr, "%s: %s\n", path, strerror(errno));
                return -errno;
        }
        if (!S_ISDIR(st.st_mode))
                return run_file(path);
        n = scandir(path, &entries, NULL, alphasort);
        if (n < 0)
                return -errno;
        for (int i = 0; i < n; i++) {
                if (entries[i]->d_name[0] != '.' && r >= 0) {
                        char *p;
                        if (asprintf(&p, "%s/%s", path, entries[i]->d_name) < 0)
                                r = -ENOMEM;
                        else {
                                r = run_file(p);
                                if (r >= 0)
                                        printf("%s: ok\n", p);
                                free(p);
                        }
                }
                free(entries[i]);
        }
        free(entries);
        return r;
}

int main(int argc, char *argv[]) {
        if (argc < 2)
                return run_stream(stdin, "stdin") < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
        for (int i = 1; i < argc; i++)
                if (run_path(argv[i]) < 0)
                        return EXIT_FAILURE;
        return EXIT_SUCCESS;
}
