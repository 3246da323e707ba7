/* Apache httpd config writer: point mod_ssl's certificate and key at a token. Pure: text in, text out. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "common/cleanup.h"

/* Bounds on what the editor accepts; beyond them it returns -E2BIG. */
#define HTTPDCONF_MAX_INPUT (16u * 1024u * 1024u)
#define HTTPDCONF_MAX_LINE  (64u * 1024u)
#define HTTPDCONF_MAX_DEPTH 64u
#define HTTPDCONF_MAX_VALUE 3072u

/* Prefix written in front of each physical line of a directive httpdconf_set_cert() disables
 * (a second SSLCertificateFile / SSLCertificateKeyFile in the same scope). Deleting it restores
 * the line byte for byte. */
#define HTTPDCONF_DISABLED_MARK "#enclave-acm: "

/* Where and why an edit was refused. line and column are 1-based (column counts bytes; line is
 * the physical line); both are 0 when the problem is not tied to a position. message is static. */
struct httpdconf_error {
        unsigned line;
        unsigned column;
        const char *message;
};

struct httpdconf_cert_opts {
        const char *cert_path; /* absolute path of the PEM chain file (leaf first), required */
        /* SSLCertificateKeyFile value: a "pkcs11:…" URI (without nginx's "engine:pkcs11:" prefix;
         * build it with p11uri_build()) or an absolute key file path, required */
        const char *key_uri;
        unsigned port;           /* only <VirtualHost> blocks for this port; 0: any */
        const char *server_name; /* only <VirtualHost> blocks with this ServerName/ServerAlias; NULL: any */
        const char *crypto_device; /* NULL: "pkcs11" */
        bool skip_crypto_device;   /* leave SSLCryptoDevice alone (set in another file, or provider path) */
};

/* Point mod_ssl at the token, wherever the directives stand (any indentation, any case of the
 * directive name, inside <VirtualHost>/<IfModule>, continued with a trailing backslash, quoted):
 * - scopes: every <VirtualHost> holding an SSLCertificateFile, plus the server config outside
 *   any <VirtualHost>; with port or server_name set, only the <VirtualHost> blocks that match.
 * - in each scope the first SSLCertificateFile gets "<cert_path>" and the first
 *   SSLCertificateKeyFile gets "<key_uri>" (both double-quoted); when the scope has no
 *   SSLCertificateKeyFile one is added on the line after SSLCertificateFile with the same
 *   indentation; further ones in the scope are disabled with HTTPDCONF_DISABLED_MARK.
 * - "SSLCryptoDevice pkcs11" (server config context only): an existing "builtin" is replaced,
 *   another engine is -EEXIST, one inside <VirtualHost> is -EINVAL; when missing it is added
 *   before the first edited <VirtualHost> (or directive) with its indentation.
 * No SSLCertificateFile in any selected scope → -ENOENT. Values with control characters, '"',
 * '\\' or "${" are refused (-EINVAL): mod_ssl cannot take them back out of quotes.
 * text may hold any bytes (a NUL is -EINVAL with its position); on success *ret_text is a new
 * NUL-terminated copy with everything not edited kept byte for byte (CRLF too), and the return
 * value is 1 when something changed, 0 when the text already was as wanted (applying twice is a
 * no-op). On failure nothing is returned but the error and ret_error (may be NULL). */
_must_check_ int httpdconf_set_cert(const char *text, size_t len, const struct httpdconf_cert_opts *opts,
                                    char **ret_text, size_t *ret_len, struct httpdconf_error *ret_error);

/* Check what httpdconf_set_cert() relies on: size bounds, no NUL, quotes closed, sections balanced
 * and properly closed with '>', no <VirtualHost> inside another, nesting <= HTTPDCONF_MAX_DEPTH.
 * Returns 0, or -EINVAL / -E2BIG with ret_error set. */
_must_check_ int httpdconf_check_syntax(const char *text, size_t len, struct httpdconf_error *ret_error);
