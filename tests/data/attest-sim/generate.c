/* One-off generator of the simulator-style fixtures in tests/data/attest-sim/ and the builder-made seeds
 * in tests/fuzz/corpus/fuzz-attest-doc/ (see README there). Not built by meson; run from the source root:
 *   cc -I. -I/usr/include/p11-kit-1 tests/data/attest-sim/generate.c -o /tmp/gen-attest \
 *      BUILD/attest/libattest.a BUILD/common/libcommon.a -lcrypto -lcbor && /tmp/gen-attest
 * Every run makes new keys, so the committed files change; the tests only read them. */
#include <stdio.h>
#include <string.h>

#include <openssl/pem.h>

#include "attest/attest-build.h"

static int write_file(const char *path, const uint8_t *p, size_t n) {
        FILE *f = fopen(path, "wbe");

        if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0)
                return -1;
        return 0;
}

int main(void) {
        struct attest_test_ca *ca = NULL;
        uint8_t pcr[32][48];
        struct attest_pcr_value pcrs[32];
        struct attest_blob bundle[2];
        uint8_t *doc = NULL;
        size_t n;

        /* 2026-01-01 .. 2036-01-01; documents dated 2026-06-01T00:00:00.250Z */
        if (attest_test_ca_new(1767225600, 2082758400, &ca) < 0)
                return 1;
        for (unsigned i = 0; i < 32; i++) {
                memset(pcr[i], i < 5 ? 0x11 * (int) (i + 1) : 0, 48);
                pcrs[i] = (struct attest_pcr_value){ i, pcr[i], 48 };
        }
        bundle[0] = (struct attest_blob){ ca->root_der, ca->root_len };
        bundle[1] = (struct attest_blob){ ca->inter_der, ca->inter_len };
        struct attest_build b = {
                .module_id = "i-00000000000000000-enc0000000000000000",
                .timestamp_ms = UINT64_C(1780272000250),
                .pcrs = pcrs,
                .n_pcrs = 16,
                .certificate = { ca->leaf_der, ca->leaf_len },
                .cabundle = bundle,
                .n_cabundle = 2,
                .public_key = { ATTEST_OPT_BYTES, (const uint8_t *) "not a real spki", 15 },
                .user_data = { ATTEST_OPT_NULL },
                .nonce = { ATTEST_OPT_BYTES, (const uint8_t *) "", 0 },
                .untagged = true,
        };
        if (attest_doc_sign(&b, ca->leaf_key, &doc, &n) < 0 ||
            write_file("tests/data/attest-sim/sim.cose", doc, n) < 0)
                return 1;
        FILE *f = fopen("tests/data/attest-sim/root.pem", "we");
        const uint8_t *p = ca->root_der;
        X509 *x = d2i_X509(NULL, &p, (long) ca->root_len);
        if (!f || !x || PEM_write_X509(f, x) != 1 || fclose(f) != 0)
                return 1;
        X509_free(x);
        /* seeds: the same untagged, truncated, tagged with 17 PCRs, optional fields absent */
        if (write_file("tests/fuzz/corpus/fuzz-attest-doc/builder-untagged.cose", doc, n) < 0 ||
            write_file("tests/fuzz/corpus/fuzz-attest-doc/builder-truncated-half.cose", doc, n / 2) < 0 ||
            write_file("tests/fuzz/corpus/fuzz-attest-doc/builder-truncated-sig.cose", doc, n - 1) < 0)
                return 1;
        free(doc);
        b.untagged = false;
        b.n_pcrs = 17;
        b.public_key.kind = b.user_data.kind = b.nonce.kind = ATTEST_OPT_ABSENT;
        if (attest_doc_sign(&b, ca->leaf_key, &doc, &n) < 0 ||
            write_file("tests/fuzz/corpus/fuzz-attest-doc/builder-tagged-17pcrs.cose", doc, n) < 0)
                return 1;
        free(doc);
        attest_test_ca_free(ca);
        return 0;
}
