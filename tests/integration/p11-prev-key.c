/* A key handle found before a key change keeps signing while enclave-token still answers for the old
 * version, even after another session of the same process read the new objects (tests/integration/
 * prev-key.sh):
 *
 *   p11-prev-key MODULE TOKEN_LABEL PIN_FILE MESSAGE_FILE SIG_OUT
 *
 * Session A logs in, finds the private key (Ed25519) and signs MESSAGE_FILE; prints "ready" and waits
 * for a line on stdin (the token is replaced meanwhile with an ECDSA P-256 key). Session B then searches
 * the objects (which reads the new version) and signs with the new key; session A signs again with its
 * old handle, and the signature goes to SIG_OUT (the script verifies it with the old public key). Prints
 * "ready" again and waits for a line (the old version's grace period runs out meanwhile): the old handle
 * then fails with CKR_KEY_HANDLE_INVALID (retried for up to 60 s while the version lingers), and the
 * new key still signs. Prints TAP lines; exits 0 only if all hold. The PIN comes from a file. */
#include <dlfcn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <p11-kit/pkcs11.h>

static CK_FUNCTION_LIST_PTR p11;
static unsigned n_checks, n_failed;

static void check(bool ok, const char *what, CK_RV rv) {
        n_checks++;
        if (!ok)
                n_failed++;
        printf("%s %u - %s (rv 0x%lx)\n", ok ? "ok" : "not ok", n_checks, what, (unsigned long) rv);
}

static size_t read_file(const char *path, unsigned char *buf, size_t size) {
        FILE *f = fopen(path, "re");
        size_t n;

        if (!f)
                return 0;
        n = fread(buf, 1, size, f);
        fclose(f);
        return n;
}

static bool find_slot(const char *label, CK_SLOT_ID *ret) {
        CK_SLOT_ID slots[64];
        CK_ULONG n = 64;
        char padded[32];

        memset(padded, ' ', sizeof(padded));
        memcpy(padded, label, strnlen(label, sizeof(padded)));
        if (p11->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK)
                return false;
        for (CK_ULONG i = 0; i < n; i++) {
                CK_TOKEN_INFO ti;

                if (p11->C_GetTokenInfo(slots[i], &ti) == CKR_OK && memcmp(ti.label, padded, 32) == 0) {
                        *ret = slots[i];
                        return true;
                }
        }
        return false;
}

static CK_RV find_private_key(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE *ret) {
        CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
        CK_ATTRIBUTE tmpl[] = { { CKA_CLASS, &cls, sizeof(cls) } };
        CK_ULONG n = 0;
        CK_RV rv;

        rv = p11->C_FindObjectsInit(s, tmpl, 1);
        if (rv == CKR_OK)
                rv = p11->C_FindObjects(s, ret, 1, &n);
        (void) p11->C_FindObjectsFinal(s);
        return rv != CKR_OK ? rv : n == 1 ? CKR_OK : CKR_OBJECT_HANDLE_INVALID;
}

static CK_RV sign(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, CK_MECHANISM_TYPE mech,
                  const unsigned char *msg, size_t len, unsigned char *sig, CK_ULONG *sig_len) {
        CK_MECHANISM m = { mech, NULL, 0 };
        CK_RV rv = p11->C_SignInit(s, &m, key);

        return rv != CKR_OK ? rv : p11->C_Sign(s, (CK_BYTE_PTR) msg, (CK_ULONG) len, sig, sig_len);
}

static void wait_line(void) {
        char line[64];

        printf("ready\n");
        if (!fgets(line, sizeof(line), stdin))
                exit(2);
}

int main(int argc, char **argv) {
        CK_C_INITIALIZE_ARGS init = { .flags = CKF_OS_LOCKING_OK };
        CK_RV (*get_list)(CK_FUNCTION_LIST_PTR_PTR);
        static const unsigned char digest[32] = { 7 };
        unsigned char pin[128], msg[1024], sig[512];
        CK_SESSION_HANDLE a, b;
        CK_OBJECT_HANDLE ka = 0, kb = 0;
        CK_SLOT_ID slot = 0;
        size_t pin_len, msg_len;
        CK_ULONG sig_len;
        CK_RV rv;
        void *dl;
        FILE *out;

        setvbuf(stdout, NULL, _IOLBF, 0);
        if (argc != 6) {
                fprintf(stderr, "usage: p11-prev-key MODULE TOKEN_LABEL PIN_FILE MESSAGE_FILE SIG_OUT\n");
                return 2;
        }
        pin_len = read_file(argv[3], pin, sizeof(pin));
        while (pin_len > 0 && (pin[pin_len - 1] == '\n' || pin[pin_len - 1] == '\r'))
                pin_len--;
        msg_len = read_file(argv[4], msg, sizeof(msg));
        dl = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
        *(void **) &get_list = dl ? dlsym(dl, "C_GetFunctionList") : NULL;
        if (pin_len == 0 || msg_len == 0 || !get_list || get_list(&p11) != CKR_OK ||
            p11->C_Initialize(&init) != CKR_OK || !find_slot(argv[2], &slot) ||
            p11->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &a) != CKR_OK) {
                printf("not ok - read the PIN and message, load the module, find token '%s'\n", argv[2]);
                return 1;
        }
        rv = p11->C_Login(a, CKU_USER, pin, (CK_ULONG) pin_len);
        check(rv == CKR_OK, "session A logs in", rv);
        rv = find_private_key(a, &ka);
        check(rv == CKR_OK, "session A finds the Ed25519 key", rv);
        sig_len = sizeof(sig);
        rv = sign(a, ka, CKM_EDDSA, msg, msg_len, sig, &sig_len);
        check(rv == CKR_OK && sig_len == 64, "session A signs with it", rv);

        wait_line(); /* the token is replaced */

        rv = p11->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &b);
        check(rv == CKR_OK, "session B opens after the key change", rv);
        rv = find_private_key(b, &kb);
        check(rv == CKR_OK && kb != ka, "session B's search finds the new key, another handle", rv);
        sig_len = sizeof(sig);
        rv = sign(b, kb, CKM_ECDSA, digest, sizeof(digest), sig, &sig_len);
        check(rv == CKR_OK && sig_len == 64, "session B signs with the new ECDSA key", rv);
        sig_len = sizeof(sig);
        rv = sign(a, ka, CKM_EDDSA, msg, msg_len, sig, &sig_len);
        check(rv == CKR_OK && sig_len == 64, "session A still signs with its old handle (the old version)",
              rv);
        out = fopen(argv[5], "we");
        if (out) {
                (void) fwrite(sig, 1, sig_len, out);
                fclose(out);
        }

        wait_line(); /* the old version's grace period ends */

        rv = CKR_OK;
        for (int i = 0; i < 600 && rv == CKR_OK; i++) {
                sig_len = sizeof(sig);
                rv = sign(a, ka, CKM_EDDSA, msg, msg_len, sig, &sig_len);
                if (rv == CKR_OK)
                        nanosleep(&(struct timespec){ 0, 100 * 1000 * 1000 }, NULL);
        }
        check(rv == CKR_KEY_HANDLE_INVALID, "once the old version is gone, its handle is invalid", rv);
        sig_len = sizeof(sig);
        rv = sign(b, kb, CKM_ECDSA, digest, sizeof(digest), sig, &sig_len);
        check(rv == CKR_OK, "the new key still signs", rv);
        sig_len = sizeof(sig);
        rv = sign(a, kb, CKM_ECDSA, digest, sizeof(digest), sig, &sig_len);
        check(rv == CKR_OK, "and session A signs with the new key's handle (its login renewed)", rv);

        (void) p11->C_CloseSession(b);
        (void) p11->C_CloseSession(a);
        (void) p11->C_Finalize(NULL);
        printf("1..%u\n", n_checks);
        return n_failed ? 1 : 0;
}
