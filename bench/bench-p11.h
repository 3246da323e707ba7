/* What the PKCS#11 benchmarks share. */
#pragma once

#include <p11-kit/pkcs11.h>

/* The slot of the token labelled label (as C_GetTokenInfo pads it): 0, -ENOENT, or -EIO. */
int bench_p11_find_slot(CK_FUNCTION_LIST_PTR p11, const char *label, CK_SLOT_ID *ret);

/* dlopen()s the module at path and C_Initialize()s it for threads (CKF_OS_LOCKING_OK): 0 with its
 * function list, else -ENOENT (not loadable) or -EIO (did not initialise), said on stderr as prog. */
int bench_p11_load(const char *prog, const char *path, CK_FUNCTION_LIST_PTR *ret);
