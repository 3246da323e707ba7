/* Target: eif_parse() (eif/), the strict EIF checker, on the input as it is and on a copy whose CRC
 * field is recomputed (so the structural rules behind the CRC check are reached too); on an accepted
 * image eif_image_pcrs(), eif_signature_parse(), eif_signature_pcr8() and eif_signature_verify(); and
 * eif_metadata_parse() and eif_signature_parse() on the raw input.
 *
 * Input: an EIF file; the seeds are the toy image, a signed one and images breaking one rule
 * each. Nothing may crash; a refusal must name a rule and an offset inside the input; an accepted image
 * must have its sections inside the input, back to back up to its end. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "eif/eif-sign.h"
#include "eif/eif.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_image(const uint8_t *buf, size_t size) {
        struct eif_image img;
        struct eif_error err = {};
        struct eif_pcrs pcrs;
        size_t end = EIF_HEADER_SIZE;
        int r;

        r = eif_parse(buf, size, &img, &err);
        if (r < 0) {
                if (r != -EBADMSG || !err.rule || err.offset > size)
                        abort();
                return;
        }
        for (size_t i = 0; i < img.n_sections; i++) {
                const struct eif_section *s = &img.sections[i];

                if (s->offset != end || s->data != buf + end + EIF_SECTION_HDR_SIZE)
                        abort();
                end += EIF_SECTION_HDR_SIZE + s->size;
        }
        if (end != size || eif_image_pcrs(&img, &pcrs) < 0)
                abort();
        if (img.signature >= 0) {
                const struct eif_section *s = &img.sections[img.signature];
                struct eif_signature sig = {};
                uint8_t pcr8[EIF_PCR_LEN];

                if (eif_signature_parse(s->data, s->size, &sig, &err) == 0) {
                        r = eif_signature_pcr8(&sig, pcr8);
                        if (r < 0 && r != -EBADMSG && r != -ENOMEM)
                                abort();
                        r = eif_signature_verify(&sig, pcrs.pcr0, &err);
                        if (r < 0 && r != -EKEYREJECTED && r != -EBADMSG && r != -ENOMEM)
                                abort();
                        eif_signature_done(&sig);
                }
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct eif_metadata md;
        struct eif_signature sig = {};
        uint8_t *copy;
        int r;

        check_image(data, size);
        if (size >= EIF_HEADER_SIZE) {
                uint32_t crc;

                copy = malloc(size);
                if (!copy)
                        return 0;
                memcpy(copy, data, size);
                crc = eif_crc32(eif_crc32(0, copy, EIF_CRC_OFFSET), copy + EIF_HEADER_SIZE,
                                size - EIF_HEADER_SIZE);
                for (int i = 0; i < 4; i++)
                        copy[EIF_CRC_OFFSET + i] = (uint8_t) (crc >> (24 - 8 * i));
                check_image(copy, size);
                free(copy);
        }
        r = eif_metadata_parse(data, size, &md, NULL);
        if (r < 0 && r != -EBADMSG)
                abort();
        if (eif_signature_parse(data, size, &sig, NULL) == 0)
                eif_signature_done(&sig);
        return 0;
}
