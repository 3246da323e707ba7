/* Target: cms_envelope_open() (and its shape check cms_envelope_parse()) with a fixed test key.
 *
 * Input: one CiphertextForRecipient. The key is tests/data/rsa2048.key.pem (a test key, see
 * tests/data/README); the seeds are envelopes for it made by tests/fuzz/gen-cms-corpus.sh, plus the
 * sdk-c vector. Whatever decrypts holds 1..4096 bytes; everything else fails with a known errno. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "enclave-token/cms.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char key_pem[] = "-----BEGIN PRIVATE KEY-----\n"
                              "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCk3q+lvU5Pu/7W\n"
                              "og1OVjF3h+sgu12R57Nnm1Ok0lyKc+HDIxP5XwxxyE6HBWakiysQtRuZ7ZgwwV1g\n"
                              "nqB+8Mw/qMQiNY4QXaKpCmNksmPYgWSdp6ipHq60ZXJEQ8Wetem2HnlSmF84e9Ms\n"
                              "5ucYgI45utPFqwoMLYu2XE6YZx56oLWpwedrw/sPGqoIEXeeYlrV38wde2EOh4V0\n"
                              "AkHj+j5g68vN8bX7x534GFUzDJn8ANa1qxdiC2XuGLmdgdfwdWVI8i3F+Iype2Vc\n"
                              "cFAHbcgPEACbc7r0p7UsO3UB18rFpF4gJ/+sdLRl0H57QZkQ3mbIO/fYub0lQV4i\n"
                              "Zq7keXxnAgMBAAECggEAUCZB1Zz2GSUXelhFh7O3UJiu4ba0gl3VhaSpQRNTEavM\n"
                              "MQU4jJ58ekQaiOFDSPKu+OxSgr5SokEel/4FoDCH2tq8nrTSX3plvS/jqexfRb2B\n"
                              "oHMFN1JHNEOtDSq1Q7bD61ldOZ4BjIAF5WpLJko42i/NC+dedxUdOoYdX1GiK5J1\n"
                              "VTnQCBIHhJwLy0x07D+V9ycCZFgoFtARKZpCwV+gLSAGdjkSnSQgbYCCPW5IVqnH\n"
                              "VzXdhKwlwADVF0ji/4q90OQ0eU7tjgEOFT3Bx8dAjsbyI8vPuczZD6s6utv+cvwv\n"
                              "+2tSs3bXEIMxpavKxcRb0oEXf8ehnXemsoOqu1iSgQKBgQDV0zeGMy1Q7VpYTDSx\n"
                              "IIkypuumiO1OGAJZdnTUg/m+dIYcIOfsMXdD40F+e01Ivufm7JUKZma4pqQCC250\n"
                              "V+fbaK41eOzSUe8QrSE5yuPcTdrljizgqnQQNSOunB1eC9dLdfCPJq+mwQqkgT9d\n"
                              "A75yCu64zpU4Lii36tDV8bp5lwKBgQDFY4xcxUBezh/3bImPwB490v3XQkEoeSup\n"
                              "EXv41gkJYf+DuL28oIJRY+4Don+JQI00jvdZvxvuZRGeZ1AVllI6bWktg38vpdJd\n"
                              "T+q4Nnzu89U5DJYNDx9nqz0aZWrFDnAx4GlFyQcU+haKCTMd7Ei6zI+qMH5PHvDC\n"
                              "7vXwGO9NsQKBgCFe2WeETSo4IMVu/zo1jbPuARD4hbCOZq93oTwZbLygit2Q9SET\n"
                              "hz19FhebPrB/usl7WrdIy/c9apM3HYHixjij2axWtv8L8ndzzZ+rXmxfai4xRie5\n"
                              "8mslH/B8RMkMqAkK2wQ8UWWA8xxBX5Ywo2RA+Ii3FOqzqX8qknURSLz5AoGBAIxU\n"
                              "/tiBwAbm4qEkgBQ8EQQBOkjMqMhehSTY8ltxx9Ds5BzAvdwZ/SxiMDhTUfrBcuJ3\n"
                              "9fDPRstQ/ZqxdqUyTtmNKaabA1RbvthqVcSLsHyty9yYTyGPq9MnUfSvP55Dao57\n"
                              "LjzX8/n85wNSEQ5oCzkK7+SeP15+78qW2zDMeW2xAoGAE9Lw53/9UyqhuAe5NZh4\n"
                              "XdSJxFooP0kRxSc8FUtoH9U9MKmG00PpWzwzJdctoZHJ08S0ETPeFjxyYnQwWAF5\n"
                              "8UQWrZqHpAUsTtGz+39EB4mzUS/TDyfwvNoi2tIoWzBiNZG5EBs/SwA04JHj3vWA\n"
                              "UwZWfsIgxVG52VU2p4gX1qU=\n"
                              "-----END PRIVATE KEY-----\n";

static EVP_PKEY *test_key(void) {
        static EVP_PKEY *key;
        BIO *b;

        if (key)
                return key;
        b = BIO_new_mem_buf(key_pem, (int) sizeof(key_pem) - 1);
        if (!b)
                abort();
        key = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
        BIO_free(b);
        if (!key)
                abort();
        return key;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct cms_envelope_info info;
        struct secret_buf *pt = NULL;
        int r, p;

        setenv("ENCLAVE_ACM_NO_MLOCK", "1", 0);
        p = cms_envelope_parse(data, size, &info, NULL);
        if (p < 0 && p != -EBADMSG && p != -EOPNOTSUPP && p != -EMSGSIZE && p != -EINVAL)
                abort();
        if (p >= 0 && (info.ciphertext_len == 0 || info.ciphertext_len % 16 != 0 ||
                       info.ciphertext_offset + info.ciphertext_len > size))
                abort();
        r = cms_envelope_open(data, size, test_key(), &pt, NULL);
        if (r >= 0) {
                if (p < 0 || !pt || pt->len == 0 || pt->len > CMS_KMS_PLAINTEXT_MAX)
                        abort();
        } else if (r != -EBADMSG && r != -EOPNOTSUPP && r != -EMSGSIZE && r != -EKEYREJECTED &&
                   r != -EINVAL && r != -ENOMEM)
                abort();
        secret_buf_free(pt);
        ERR_clear_error();
        return 0;
}
