/* What a test's code under test writes to stderr, captured in a temporary file. */
#pragma once

/* Sends stderr (fd 2) to a fresh temporary file until capture_stderr_end(). */
void capture_stderr_begin(void);
/* Puts stderr back and returns what was written since capture_stderr_begin() (at most 64 KiB,
 * NUL-terminated; static storage, valid until the next call). "" when nothing was. */
const char *capture_stderr_end(void);
