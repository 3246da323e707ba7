/* C_Verify* and C_DigestKey rules through the module against a running enclave-token, for what
 * pkcs11-tool cannot express (tests/integration/consumers-verify.sh):
 *
 *   p11-verify MODULE TOKEN_LABEL PIN_FILE MECH DATA_FILE SIG_FILE
 *
 * MECH is CKM_* as a number (no parameters: not PSS). SIG_FILE is a valid signature of DATA_FILE by the
 * token's only key, in the PKCS#11 form. Checks: the public-key handle verifies without login; the
 * private-key handle is hidden before login and verifies with its public half after; single- and
 * multi-part verification; a short / long signature is CKR_SIGNATURE_LEN_RANGE, a changed one or other
 * data CKR_SIGNATURE_INVALID; C_Verify ends the operation; a certificate is no verification key;
 * C_DigestKey answers CKR_KEY_INDIGESTIBLE for the keys; verify and digest operations left active at
 * C_CloseSession and C_Finalize (for the ASan setup's leak check). Prints TAP lines; exits 0 only if all
 * hold. */
#include <dlfcn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <p11-kit/pkcs11.h>

static CK_FUNCTION_LIST_PTR p11;
static unsigned n_checks, n_failed;

static void check(bool ok, const char *what, CK_RV rv) {
        n_checks++;
        n_failed += !ok;
        printf("%s %u - %s (rv 0x%lx)\n", ok ? "ok" : "not ok", n_checks, what, (unsigned long) rv);
}

static unsigned char *read_file(const char *path, size_t *ret_len) {
        FILE *f = fopen(path, "re");
        unsigned char *buf = malloc(1 << 20);
        size_t n = 0;

        if (f && buf)
                n = fread(buf, 1, 1 << 20, f);
        if (f)
                fclose(f);
        if (!f || !buf || n == 0) {
                free(buf);
                return NULL;
        }
        *ret_len = n;
        return buf;
}

static CK_RV find_one(CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls, CK_OBJECT_HANDLE *ret) {
        CK_ATTRIBUTE t = { CKA_CLASS, &cls, sizeof(cls) };
        CK_ULONG n = 0;
        CK_RV rv = p11->C_FindObjectsInit(s, &t, 1);

        if (rv == CKR_OK)
                rv = p11->C_FindObjects(s, ret, 1, &n);
        (void) p11->C_FindObjectsFinal(s);
        return rv == CKR_OK && n != 1 ? CKR_OBJECT_HANDLE_INVALID : rv;
}

static CK_RV verify(CK_SESSION_HANDLE s, CK_MECHANISM *m, CK_OBJECT_HANDLE k, unsigned char *d, size_t dl,
                    unsigned char *sig, size_t sl) {
        CK_RV rv = p11->C_VerifyInit(s, m, k);

        return rv != CKR_OK ? rv : p11->C_Verify(s, d, (CK_ULONG) dl, sig, (CK_ULONG) sl);
}

int main(int argc, char **argv) {
        CK_C_INITIALIZE_ARGS init = { .flags = CKF_OS_LOCKING_OK };
        CK_RV (*get_list)(CK_FUNCTION_LIST_PTR_PTR);
        CK_SLOT_ID slots[4096], slot = 0;
        CK_ULONG n = 4096;
        CK_OBJECT_HANDLE pub = 0, priv = 0, cert = 0;
        CK_MECHANISM m = { 0, NULL, 0 }, sha256 = { CKM_SHA256, NULL, 0 };
        CK_SESSION_HANDLE s, s2;
        unsigned char *data, *sig, *pin, big[2048];
        size_t dl = 0, sl = 0, pl = 0;
        char padded[32];
        bool found = false;
        CK_RV rv;
        void *dl_h;

        setvbuf(stdout, NULL, _IOLBF, 0);
        if (argc != 7 || !(pin = read_file(argv[3], &pl)) || !(data = read_file(argv[5], &dl)) ||
            !(sig = read_file(argv[6], &sl)) || sl > sizeof(big) - 1) {
                fprintf(stderr, "usage: p11-verify MODULE TOKEN_LABEL PIN_FILE MECH DATA_FILE SIG_FILE\n");
                return 2;
        }
        while (pl > 0 && (pin[pl - 1] == '\n' || pin[pl - 1] == '\r'))
                pl--;
        m.mechanism = strtoul(argv[4], NULL, 0);
        dl_h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
        *(void **) &get_list = dl_h ? dlsym(dl_h, "C_GetFunctionList") : NULL;
        if (!get_list || get_list(&p11) != CKR_OK || p11->C_Initialize(&init) != CKR_OK ||
            p11->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK) {
                printf("not ok - load the module\n");
                return 1;
        }
        memset(padded, ' ', sizeof(padded));
        memcpy(padded, argv[2], strnlen(argv[2], sizeof(padded)));
        for (CK_ULONG i = 0; i < n && !found; i++) {
                CK_TOKEN_INFO ti;

                found = p11->C_GetTokenInfo(slots[i], &ti) == CKR_OK && memcmp(ti.label, padded, 32) == 0;
                slot = slots[i];
        }
        if (!found || p11->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s) != CKR_OK ||
            find_one(s, CKO_PUBLIC_KEY, &pub) != CKR_OK || find_one(s, CKO_CERTIFICATE, &cert) != CKR_OK) {
                printf("not ok - token '%s', session, public key and certificate\n", argv[2]);
                return 1;
        }

        check(find_one(s, CKO_PRIVATE_KEY, &priv) != CKR_OK, "no private key before login", CKR_OK);
        rv = verify(s, &m, pub, data, dl, sig, sl);
        check(rv == CKR_OK, "public-key handle, no login: C_Verify accepts the signature", rv);
        rv = p11->C_Verify(s, data, (CK_ULONG) dl, sig, (CK_ULONG) sl);
        check(rv == CKR_OPERATION_NOT_INITIALIZED, "C_Verify ended the operation", rv);
        rv = p11->C_VerifyInit(s, &m, cert);
        check(rv == CKR_KEY_HANDLE_INVALID, "a certificate handle is no verification key", rv);
        rv = p11->C_VerifyInit(s, &sha256, pub);
        check(rv == CKR_MECHANISM_INVALID, "CKM_SHA256 is no verification mechanism", rv);

        /* multi-part: three parts, then the final */
        rv = p11->C_VerifyInit(s, &m, pub);
        if (rv == CKR_OK && dl >= 3) {
                rv = p11->C_VerifyUpdate(s, data, 1);
                if (rv == CKR_OK)
                        rv = p11->C_VerifyUpdate(s, data + 1, (CK_ULONG) (dl - 2));
                if (rv == CKR_OK)
                        rv = p11->C_VerifyUpdate(s, data + dl - 1, 1);
                if (rv == CKR_OK)
                        rv = p11->C_VerifyFinal(s, sig, (CK_ULONG) sl);
        }
        check(rv == CKR_OK, "multi-part C_VerifyUpdate x3 + C_VerifyFinal accepts the signature", rv);

        memcpy(big, sig, sl);
        rv = verify(s, &m, pub, data, dl, big, sl - 1);
        check(rv == CKR_SIGNATURE_LEN_RANGE, "a signature one byte short: CKR_SIGNATURE_LEN_RANGE", rv);
        big[sl] = 0;
        rv = verify(s, &m, pub, data, dl, big, sl + 1);
        check(rv == CKR_SIGNATURE_LEN_RANGE, "a signature one byte long: CKR_SIGNATURE_LEN_RANGE", rv);
        big[sl / 2] ^= 0x10;
        rv = verify(s, &m, pub, data, dl, big, sl);
        check(rv == CKR_SIGNATURE_INVALID, "a changed signature: CKR_SIGNATURE_INVALID", rv);
        rv = verify(s, &m, pub, (unsigned char *) "other data", 10, sig, sl);
        check(rv == CKR_SIGNATURE_INVALID || rv == CKR_DATA_LEN_RANGE, "other data: CKR_SIGNATURE_INVALID",
              rv);

        rv = p11->C_DigestInit(s, &sha256);
        if (rv == CKR_OK)
                rv = p11->C_DigestKey(s, pub);
        check(rv == CKR_KEY_INDIGESTIBLE, "C_DigestKey(public key): CKR_KEY_INDIGESTIBLE", rv);
        rv = p11->C_DigestUpdate(s, data, 1);
        check(rv == CKR_OPERATION_NOT_INITIALIZED, "and the digest operation ended", rv);

        rv = p11->C_Login(s, CKU_USER, pin, (CK_ULONG) pl);
        memset(pin, 0, pl);
        check(rv == CKR_OK, "C_Login", rv);
        rv = find_one(s, CKO_PRIVATE_KEY, &priv);
        check(rv == CKR_OK, "the private key after login", rv);
        rv = verify(s, &m, priv, data, dl, sig, sl);
        check(rv == CKR_OK, "private-key handle: C_Verify with its public half accepts the signature", rv);
        rv = verify(s, &m, priv, data, dl, big, sl);
        check(rv == CKR_SIGNATURE_INVALID, "private-key handle: a changed signature is invalid", rv);
        rv = p11->C_DigestInit(s, &sha256);
        if (rv == CKR_OK)
                rv = p11->C_DigestKey(s, priv);
        check(rv == CKR_KEY_INDIGESTIBLE, "C_DigestKey(private key): CKR_KEY_INDIGESTIBLE", rv);

        /* Operations left active: C_CloseSession frees the verify context, its key and the digest
         * context, and C_Finalize those of a session never closed (a leak fails the ASan setup, where
         * pkcs11-tool --test runs without leak checks: tests/lib/asan-host.sh.in). */
        rv = p11->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s2);
        if (rv == CKR_OK)
                rv = p11->C_VerifyInit(s2, &m, pub);
        if (rv == CKR_OK)
                rv = p11->C_VerifyUpdate(s2, data, 1);
        check(rv == CKR_OK, "a multi-part verification left active in a session C_Finalize closes", rv);
        rv = p11->C_VerifyInit(s, &m, pub);
        if (rv == CKR_OK)
                rv = p11->C_VerifyUpdate(s, data, 1);
        check(rv == CKR_OK, "a multi-part verification left active", rv);
        rv = p11->C_DigestInit(s, &sha256);
        if (rv == CKR_OK)
                rv = p11->C_DigestUpdate(s, data, 1);
        check(rv == CKR_OK, "a multi-part digest left active", rv);

        (void) p11->C_Logout(s);
        (void) p11->C_CloseSession(s);
        (void) p11->C_Finalize(NULL);
        free(pin);
        free(data);
        free(sig);
        printf("%s: %u of %u checks failed\n", n_failed ? "FAIL" : "PASS", n_failed, n_checks);
        return n_failed ? 1 : 0;
}
