/* Target: attest_verify() (attest/), parse and verify against the pinned AWS root as of the document's
 * own timestamp, plus attest_parse() on the same bytes.
 *
 * Input: one attestation document (COSE_Sign1 bytes); the ten real documents from Nitro hardware and
 * builder-made ones are seeds. Nothing may crash; what the parser calls MALFORMED the verifier does
 * too (the verifier alone parses the certificates' DER), every reason must be a known one, and MALFORMED
 * must name a field and an offset inside the input. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "attest/attest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const struct attest_opts opts = { .time_mode = ATTEST_TIME_DOC };
        struct attest_result v, p;
        int rv, rp;

        rv = attest_verify(data, size, &opts, &v);
        rp = attest_parse(data, size, &p);
        if (!attest_reason_to_string(v.reason) || (rv == 0) != (v.reason == ATTEST_OK))
                abort();
        if ((rp == -EBADMSG && v.reason != ATTEST_ERR_MALFORMED) || (rp < 0 && rp != -EBADMSG))
                abort();
        /* only the verifier parses the certificates' DER */
        if (rp == 0 && v.reason == ATTEST_ERR_MALFORMED && strncmp(v.field, "certificate", 11) != 0 &&
            strncmp(v.field, "cabundle", 8) != 0)
                abort();
        if (rp < 0 && (!p.field || p.offset > size))
                abort();
        if (rp == 0 && (p.doc.n_pcrs < ATTEST_PCR_MIN || p.doc.n_cabundle == 0 || p.doc.signature.len != 96))
                abort();
        return 0;
}
