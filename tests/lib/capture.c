/* What a test's code under test writes to stderr, captured in a temporary file. */
#include <stdio.h>
#include <unistd.h>

#include "tests/lib/capture.h"

static FILE *capture;
static int saved_fd = -1;
static char text[64 * 1024];

void capture_stderr_begin(void) {
        (void) fflush(stderr);
        capture = tmpfile();
        saved_fd = dup(STDERR_FILENO);
        if (capture && saved_fd >= 0)
                (void) dup2(fileno(capture), STDERR_FILENO);
}

const char *capture_stderr_end(void) {
        size_t n = 0;

        (void) fflush(stderr);
        if (saved_fd >= 0) {
                (void) dup2(saved_fd, STDERR_FILENO);
                (void) close(saved_fd);
                saved_fd = -1;
        }
        if (capture) {
                rewind(capture);
                n = fread(text, 1, sizeof(text) - 1, capture);
                (void) fclose(capture);
                capture = NULL;
        }
        text[n] = '\0';
        return text;
}
