/* Reading sample files from tests/data for the unit tests. */
#pragma once

#include <stddef.h>

/* The file rel below $TEST_DATA, else below the tests/data next to this source tree, NUL-terminated
 * and malloc()ed; NULL (with a "# cannot read" TAP line when it cannot be opened) on failure. */
char *test_data_load(const char *rel, size_t *ret_len);
