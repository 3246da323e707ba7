/* A no-op dlclose() preloaded under ASan, so a module's symbols stay mapped for the leak report at exit. */
#include <dlfcn.h>

/* Exported on purpose: the build uses -fvisibility=hidden and this must override libc's dlclose(). */
__attribute__((visibility("default"))) int dlclose(void *handle);

int dlclose(void *handle) {
        (void) handle;
        return 0;
}
