/* The PIN status flags of C_GetTokenInfo through the module, in one process
 * (tests/integration/pin-status.sh):
 *
 *   p11-pin-status MODULE TOKEN_LABEL PIN_FILE WRONG_PIN_FILE
 *   p11-pin-status MODULE TOKEN_LABEL show
 *
 * The second form searches the token's objects (which reads them, and the PIN status with them) and
 * prints "pin-flags:" and the names of the CKF_USER_PIN_* flags C_GetTokenInfo then sets.
 *
 * On a token nobody has guessed at: no CKF_USER_PIN_* flag; after a wrong PIN CKF_USER_PIN_COUNT_LOW; after
 * the 4th CKF_USER_PIN_FINAL_TRY; wrong PINs until enclave-token refuses one (CKR_PIN_LOCKED, at most 50)
 * give CKF_USER_PIN_LOCKED; the right PIN, retried while it is refused (bounded: 120 s), logs in and
 * clears every flag. Prints TAP lines; exits 0 only if all hold. PINs come from files, never argv. */
#include <dlfcn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <p11-kit/pkcs11.h>

#define PIN_FLAGS (CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_FINAL_TRY | CKF_USER_PIN_LOCKED)

static CK_FUNCTION_LIST_PTR p11;
static CK_SLOT_ID slot;
static unsigned n_checks, n_failed;

static void check(bool ok, const char *what, CK_RV rv, CK_FLAGS flags) {
        n_checks++;
        if (!ok)
                n_failed++;
        printf("%s %u - %s (rv 0x%lx, PIN flags 0x%lx)\n", ok ? "ok" : "not ok", n_checks, what,
               (unsigned long) rv, (unsigned long) (flags & PIN_FLAGS));
}

static int read_pin(const char *path, char *buf, size_t size) {
        FILE *f = fopen(path, "re");
        size_t n;

        if (!f)
                return -1;
        n = fread(buf, 1, size - 1, f);
        fclose(f);
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
                n--;
        buf[n] = '\0';
        return n > 0 ? 0 : -1;
}

static CK_RV find_slot(const char *label) {
        CK_SLOT_ID slots[4096];
        CK_ULONG n = sizeof(slots) / sizeof(slots[0]);
        char padded[32];
        CK_RV rv;

        memset(padded, ' ', sizeof(padded));
        memcpy(padded, label, strnlen(label, sizeof(padded)));
        rv = p11->C_GetSlotList(CK_TRUE, slots, &n);
        if (rv != CKR_OK)
                return rv;
        for (CK_ULONG i = 0; i < n; i++) {
                CK_TOKEN_INFO ti;

                if (p11->C_GetTokenInfo(slots[i], &ti) == CKR_OK && memcmp(ti.label, padded, 32) == 0) {
                        slot = slots[i];
                        return CKR_OK;
                }
        }
        return CKR_TOKEN_NOT_PRESENT;
}

static CK_FLAGS token_flags(void) {
        CK_TOKEN_INFO ti;

        return p11->C_GetTokenInfo(slot, &ti) == CKR_OK ? ti.flags : ~(CK_FLAGS) 0;
}

static CK_RV login(CK_SESSION_HANDLE s, const char *pin) {
        return p11->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR) pin, (CK_ULONG) strlen(pin));
}

static int show(void) {
        CK_SESSION_HANDLE s;
        CK_OBJECT_HANDLE h[4];
        CK_ULONG n = 0;
        CK_FLAGS f;

        if (p11->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s) != CKR_OK ||
            p11->C_FindObjectsInit(s, NULL, 0) != CKR_OK || p11->C_FindObjects(s, h, 4, &n) != CKR_OK ||
            p11->C_FindObjectsFinal(s) != CKR_OK || n == 0) {
                printf("not ok - search the token's objects\n");
                return 1;
        }
        f = token_flags();
        printf("pin-flags:%s%s%s\n", f & CKF_USER_PIN_COUNT_LOW ? " count-low" : "",
               f & CKF_USER_PIN_FINAL_TRY ? " final-try" : "", f & CKF_USER_PIN_LOCKED ? " locked" : "");
        (void) p11->C_CloseSession(s);
        (void) p11->C_Finalize(NULL);
        return 0;
}

int main(int argc, char **argv) {
        CK_C_INITIALIZE_ARGS init = { .flags = CKF_OS_LOCKING_OK };
        CK_RV (*get_list)(CK_FUNCTION_LIST_PTR_PTR);
        char pin[128] = "", wrong[128] = "";
        CK_SESSION_HANDLE s;
        CK_FLAGS f;
        CK_RV rv = CKR_OK;
        void *dl;
        int i;

        setvbuf(stdout, NULL, _IOLBF, 0);
        if (argc == 4 && strcmp(argv[3], "show") == 0) {
                dl = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
                *(void **) &get_list = dl ? dlsym(dl, "C_GetFunctionList") : NULL;
                if (!get_list || get_list(&p11) != CKR_OK || p11->C_Initialize(&init) != CKR_OK ||
                    find_slot(argv[2]) != CKR_OK) {
                        printf("not ok - load the module, find token '%s'\n", argv[2]);
                        return 1;
                }
                return show();
        }
        if (argc != 5 || read_pin(argv[3], pin, sizeof(pin)) < 0 ||
            read_pin(argv[4], wrong, sizeof(wrong)) < 0) {
                fprintf(stderr, "usage: p11-pin-status MODULE TOKEN_LABEL PIN_FILE WRONG_PIN_FILE\n");
                return 2;
        }
        dl = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
        *(void **) &get_list = dl ? dlsym(dl, "C_GetFunctionList") : NULL;
        if (!get_list || get_list(&p11) != CKR_OK || p11->C_Initialize(&init) != CKR_OK ||
            find_slot(argv[2]) != CKR_OK ||
            p11->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s) != CKR_OK) {
                printf("not ok - load the module, find token '%s', open a session\n", argv[2]);
                return 1;
        }

        f = token_flags();
        check((f & PIN_FLAGS) == 0, "no PIN flag before any wrong PIN", CKR_OK, f);

        rv = login(s, wrong);
        f = token_flags();
        check(rv == CKR_PIN_INCORRECT && (f & CKF_USER_PIN_COUNT_LOW) &&
                      !(f & (CKF_USER_PIN_FINAL_TRY | CKF_USER_PIN_LOCKED)),
              "1 wrong PIN: CKR_PIN_INCORRECT, CKF_USER_PIN_COUNT_LOW only", rv, f);

        for (i = 2; i <= 3; i++)
                rv = login(s, wrong);
        f = token_flags();
        check(rv == CKR_PIN_INCORRECT && (f & CKF_USER_PIN_COUNT_LOW) &&
                      !(f & (CKF_USER_PIN_FINAL_TRY | CKF_USER_PIN_LOCKED)),
              "3 wrong PINs: still COUNT_LOW only", rv, f);

        rv = login(s, wrong);
        f = token_flags();
        check(rv == CKR_PIN_INCORRECT && (f & CKF_USER_PIN_COUNT_LOW) && (f & CKF_USER_PIN_FINAL_TRY) &&
                      !(f & CKF_USER_PIN_LOCKED),
              "4 wrong PINs: COUNT_LOW and FINAL_TRY (the 5th starts the back-off)", rv, f);

        for (i = 0; i < 50; i++) {
                rv = login(s, wrong);
                if (rv != CKR_PIN_INCORRECT)
                        break;
        }
        f = token_flags();
        check(rv == CKR_PIN_LOCKED && (f & CKF_USER_PIN_LOCKED) && (f & CKF_USER_PIN_COUNT_LOW),
              "wrong PINs until enclave-token refuses one: CKR_PIN_LOCKED, CKF_USER_PIN_LOCKED", rv, f);

        /* The right PIN while attempts are refused: refused too, until the back-off ends. */
        for (i = 0; i < 600; i++) {
                rv = login(s, pin);
                if (rv != CKR_PIN_LOCKED)
                        break;
                nanosleep(&(struct timespec){ .tv_nsec = 200 * 1000 * 1000 }, NULL);
        }
        f = token_flags();
        check(rv == CKR_OK && (f & PIN_FLAGS) == 0,
              "the right PIN logs in once the back-off ends: every flag cleared", rv, f);
        rv = p11->C_Logout(s);
        f = token_flags();
        check(rv == CKR_OK && (f & PIN_FLAGS) == 0, "still clear after C_Logout", rv, f);

        memset(pin, 0, sizeof(pin));
        memset(wrong, 0, sizeof(wrong));
        (void) p11->C_CloseSession(s);
        (void) p11->C_Finalize(NULL);
        printf("%s: %u of %u checks failed\n", n_failed ? "FAIL" : "PASS", n_failed, n_checks);
        return n_failed ? 1 : 0;
}
