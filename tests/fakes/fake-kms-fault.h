/* The fake KMS's fault file: its first word says how the next answer goes wrong. Pure: no I/O. */
#pragma once

#include <errno.h>

#include "common/cleanup.h"

#define FKMS_SLOW_MAX_MS 600000u

enum fkms_fault {
        FKMS_FAULT_NONE,
        FKMS_FAULT_ACCESS_DENIED,  /* 400 AccessDeniedException */
        FKMS_FAULT_BAD_CIPHERTEXT, /* 400 InvalidCiphertextException */
        FKMS_FAULT_THROTTLE,       /* 400 ThrottlingException */
        FKMS_FAULT_INTERNAL,       /* 500 KMSInternalException */
        FKMS_FAULT_EXPIRED_TOKEN,  /* 400 ExpiredTokenException */
        FKMS_FAULT_SLOW,           /* wait, then answer normally */
        FKMS_FAULT_CLOSE,          /* close without an answer */
        FKMS_FAULT_GARBAGE,        /* 200 with a body that is not JSON */
        _FKMS_FAULT_MAX,
        _FKMS_FAULT_INVALID = -EINVAL,
};

/* The first word of text (blanks and line ends around it are skipped): none, access-denied, bad-ciphertext,
 * throttle, internal, expired-token, slow=MS (decimal, 0..FKMS_SLOW_MAX_MS, *ret_ms set), close,
 * garbage; no word at all is none. _FKMS_FAULT_INVALID for anything else. */
enum fkms_fault fkms_fault_parse(const char *text, unsigned *ret_ms);
