/* Target: httpdconf_set_cert() and httpdconf_check_syntax() on arbitrary config text.
 *
 * Input: byte 0 picks the options (bits 0-1: port 0/443/8443/80; bit 2: server_name
 * "www.example.com"; bit 3: skip SSLCryptoDevice); the rest is the text. Properties: a failure
 * returns nothing and says why; a result is NUL-terminated, passes httpdconf_check_syntax() and is
 * a fixed point (applying again changes nothing); whatever set_cert accepts, check_syntax accepts. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httpd/httpdconf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void require(int cond, const char *what) {
        if (!cond) {
                fprintf(stderr, "fuzz-httpd-rewrite: %s\n", what);
                abort();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const unsigned ports[] = { 0, 443, 8443, 80 };
        struct httpdconf_cert_opts o;
        struct httpdconf_error e = {};
        const char *text = (const char *) data + 1;
        char *out = NULL, *again = NULL;
        size_t len, out_len = 0, again_len = 0;
        int r, syntax;

        if (size < 1)
                return 0;
        len = size - 1;
        o = (struct httpdconf_cert_opts){
                .cert_path = "/run/enclave-acm/certs/www.example.com.pem",
                .key_uri =
                        "pkcs11:model=enclave-token;manufacturer=enclave-acm;token=www.example.com;id=%01;"
                        "type=private?pin-source=file:/run/enclave-acm/pins/www.example.com",
                .port = ports[data[0] & 3],
                .server_name = (data[0] & 4) ? "www.example.com" : NULL,
                .skip_crypto_device = (data[0] & 8) != 0,
        };

        syntax = httpdconf_check_syntax(text, len, &e);
        require(syntax == 0 || e.message != NULL, "syntax error without a message");
        r = httpdconf_set_cert(text, len, &o, &out, &out_len, &e);
        if (r < 0) {
                require(out == NULL && e.message != NULL, "failure without a message, or with output");
                require(strncmp(e.message, "internal error", 14) != 0, e.message);
                return 0;
        }
        require(syntax == 0, "set_cert accepted text check_syntax refuses");
        require(r <= 1 && out != NULL && out[out_len] == '\0', "bad result");
        require(r == 1 || (out_len == len && memcmp(out, text, len) == 0),
                "'unchanged' but the text differs");
        require(httpdconf_check_syntax(out, out_len, &e) == 0, "the edit broke the syntax");
        require(httpdconf_set_cert(out, out_len, &o, &again, &again_len, &e) == 0,
                "second application changed something");
        require(again_len == out_len && memcmp(again, out, out_len) == 0, "second application differs");
        free(again);
        free(out);
        return 0;
}
