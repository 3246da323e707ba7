/* Numbers from the command line and the environment: strict, bounded, one set of rules everywhere. */
#pragma once

#include "common/cleanup.h"

/* An unsigned number in base (8, 10, 16, or 0 for C's 0x / 0 prefixes) that is all of s: it starts
 * with a digit (no blank, no sign) and has nothing after it. 0 and *ret set; -EINVAL for anything
 * that is not such a number (NULL, empty, "-1", "12ms"); -ERANGE for a number outside min..max. */
_must_check_ int parse_unsigned(const char *s, int base, unsigned long min, unsigned long max,
                                unsigned long *ret);

/* The value of one hex digit, either case; -EINVAL for anything else. */
int unhexchar(char c);
