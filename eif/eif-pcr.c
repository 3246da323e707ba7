/* EIF measurements: PCR(data) = SHA384(0^48 || SHA384(data)), extended once from zero (7.3). */
#include <openssl/evp.h>
#include <string.h>

#include "common/cleanup-ssl.h"
#include "eif/eif.h"

int eif_pcr(const struct eif_blob *parts, size_t n, uint8_t ret[EIF_PCR_LEN]) {
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *md = NULL;
        uint8_t buf[2 * EIF_PCR_LEN] = {};
        unsigned len = 0;

        md = EVP_MD_CTX_new();
        if (!md || EVP_DigestInit_ex(md, EVP_sha384(), NULL) != 1)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                if (parts[i].len > 0 && EVP_DigestUpdate(md, parts[i].ptr, parts[i].len) != 1)
                        return -EIO;
        /* The register starts at zero; extending it hashes old value || digest of the data. */
        if (EVP_DigestFinal_ex(md, buf + EIF_PCR_LEN, &len) != 1 || len != EIF_PCR_LEN)
                return -EIO;
        if (EVP_Digest(buf, sizeof(buf), ret, &len, EVP_sha384(), NULL) != 1 || len != EIF_PCR_LEN)
                return -EIO;
        return 0;
}

int eif_pcrs_compute(struct eif_blob kernel, struct eif_blob cmdline, const struct eif_blob *ramdisks,
                     size_t n_ramdisks, struct eif_pcrs *ret) {
        struct eif_blob parts[2 + EIF_MAX_SECTIONS];
        struct eif_pcrs p;
        int r;

        if (n_ramdisks < 1 || n_ramdisks > EIF_MAX_SECTIONS)
                return -EINVAL;
        parts[0] = kernel;
        parts[1] = cmdline;
        memcpy(parts + 2, ramdisks, n_ramdisks * sizeof(*ramdisks));
        if ((r = eif_pcr(parts, 2 + n_ramdisks, p.pcr0)) < 0 || (r = eif_pcr(parts, 3, p.pcr1)) < 0 ||
            (r = eif_pcr(ramdisks + 1, n_ramdisks - 1, p.pcr2)) < 0)
                return r;
        *ret = p;
        return 0;
}

int eif_image_pcrs(const struct eif_image *img, struct eif_pcrs *ret) {
        struct eif_blob rd[EIF_MAX_SECTIONS];
        const struct eif_section *k, *c;

        if (img->kernel < 0 || img->cmdline < 0 || img->n_ramdisks < 1 || img->n_ramdisks > EIF_MAX_SECTIONS)
                return -EINVAL;
        k = &img->sections[img->kernel];
        c = &img->sections[img->cmdline];
        for (size_t i = 0; i < img->n_ramdisks; i++)
                rd[i] = (struct eif_blob){ img->sections[img->ramdisks[i]].data,
                                           img->sections[img->ramdisks[i]].size };
        return eif_pcrs_compute((struct eif_blob){ k->data, k->size }, (struct eif_blob){ c->data, c->size },
                                rd, img->n_ramdisks, ret);
}
