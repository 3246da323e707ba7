/* The PKCS#11 module across fork(): a child sees NOT_INITIALIZED until it initialises (from test-p11-mech.c:
 * it starts processes, so it runs in the integration suite). */
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "p11module/interface.h"
#include "tests/lib/tap.h"

static void no_daemon(void) {
        (void) setenv("ENCLAVE_ACM_ADDRESS", "unix:path=/nonexistent/enclave-acm-test.sock", 1);
        (void) unsetenv("ENCLAVE_ACM_DEBUG");
}

/* A child sees NOT_INITIALIZED until it initialises; its C_Finalize is local; C_Initialize is fresh. */
static int child_checks(int style) {
        CK_SESSION_INFO si;
        CK_ULONG n;

        if (C_GetSessionInfo(1, &si) != CKR_CRYPTOKI_NOT_INITIALIZED)
                return 10;
        if (C_GetSlotList(CK_FALSE, NULL, &n) != CKR_CRYPTOKI_NOT_INITIALIZED)
                return 11;
        if (style == 1 && C_Finalize(NULL) != CKR_OK) /* pkcs11-provider: finalise, then initialise */
                return 12;
        if (C_Initialize(NULL) != CKR_OK) /* libp11: initialise without finalising */
                return 13;
        if (C_GetSessionInfo(1, &si) != CKR_SESSION_HANDLE_INVALID) /* the parent's session is gone */
                return 14;
        if (C_Finalize(NULL) != CKR_OK)
                return 15;
        return 0;
}

static void test_fork(void) {
        CK_SESSION_HANDLE h;
        CK_SESSION_INFO si;

        no_daemon();
        ASSERT_EQ(C_Initialize(NULL), CKR_OK);
        ASSERT_EQ(C_OpenSession(3, CKF_SERIAL_SESSION, NULL, NULL, &h), CKR_OK);
        for (int style = 0; style < 2; style++) {
                int status = 0;
                pid_t pid = fork();

                ASSERT_TRUE(pid >= 0);
                if (pid == 0)
                        _exit(child_checks(style));
                ASSERT_EQ(waitpid(pid, &status, 0), pid);
                ASSERT_TRUE(WIFEXITED(status));
                ASSERT_EQ(WEXITSTATUS(status), 0);
        }
        /* the parent is untouched */
        ASSERT_EQ(C_GetSessionInfo(h, &si), CKR_OK);
        ASSERT_EQ(C_Finalize(NULL), CKR_OK);
}

TAP_MAIN(TEST("/p11/module/fork", test_fork))
