/* What the PKCS#11 benchmarks share. */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "bench/bench-p11.h"
#include "common/cleanup.h"

int bench_p11_find_slot(CK_FUNCTION_LIST_PTR p11, const char *label, CK_SLOT_ID *ret) {
        CK_SLOT_ID slots[4096];
        CK_ULONG n = ELEMENTSOF(slots);
        size_t len = strlen(label);

        if (p11->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK)
                return -EIO;
        for (CK_ULONG i = 0; i < n; i++) {
                CK_TOKEN_INFO ti;
                if (p11->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
                        continue;
                if (len <= sizeof(ti.label) && memcmp(ti.label, label, len) == 0 &&
                    (len == sizeof(ti.label) || ti.label[len] == ' ')) {
                        *ret = slots[i];
                        return 0;
                }
        }
        return -ENOENT;
}

int bench_p11_load(const char *prog, const char *path, CK_FUNCTION_LIST_PTR *ret) {
        CK_RV (*get)(CK_FUNCTION_LIST_PTR_PTR);
        CK_C_INITIALIZE_ARGS args = { .flags = CKF_OS_LOCKING_OK };
        void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);

        if (!h) {
                fprintf(stderr, "%s: cannot load '%s': %s\n", prog, path, dlerror());
                return -ENOENT;
        }
        get = (CK_RV(*)(CK_FUNCTION_LIST_PTR_PTR)) dlsym(h, "C_GetFunctionList");
        if (!get || get(ret) != CKR_OK || (*ret)->C_Initialize(&args) != CKR_OK) {
                fprintf(stderr, "%s: '%s' did not initialise\n", prog, path);
                return -EIO;
        }
        return 0;
}
