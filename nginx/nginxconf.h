/* nginx config writer: the per-token stanza file and the edits nginx.conf needs. Pure: text in, text out. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "common/cleanup.h"

/* Bounds on what the editors accept; beyond them they return -E2BIG. */
#define NGINXCONF_MAX_INPUT (16u * 1024u * 1024u)
#define NGINXCONF_MAX_LINE  (64u * 1024u)
#define NGINXCONF_MAX_DEPTH 64u
/* nginx reads a config token into a 4 KiB buffer ("too long parameter"); stay well below. */
#define NGINXCONF_MAX_URI 3072u

/* Prefix written in front of each line of a directive that nginxconf_ensure_include() disables.
 * Deleting the prefix restores the original line byte for byte. */
#define NGINXCONF_DISABLED_MARK "#enclave-acm: "

/* Where and why an edit was refused. line and column are 1-based (column counts bytes);
 * both are 0 when the problem is not tied to a position. message is a static string. */
struct nginxconf_error {
        unsigned line;
        unsigned column;
        const char *message;
};

struct nginxconf_stanza {
        const char *cert_path; /* absolute path of the PEM chain file (leaf first), required */
        const char *key_uri;   /* "pkcs11:…" from p11uri_build() (common/p11-uri.h), required */
        const char *engine;    /* OpenSSL engine id; NULL: "pkcs11" */
};

/* Render the stanza file the agent maintains for one token:
 *   # <generated-by header>
 *   ssl_certificate <cert_path>;
 *   ssl_certificate_key "engine:pkcs11:<key_uri>";
 * The key value is always double-quoted (the URI holds ';'). Values holding '$' are refused
 * (nginx treats ssl_certificate{,_key} values with '$' as variables), as are control
 * characters; '"' and '\\' in cert_path are escaped. Returns 0, -EINVAL, -E2BIG or -ENOMEM. */
_must_check_ int nginxconf_stanza_render(const struct nginxconf_stanza *s, char **ret_text, size_t *ret_len);

struct nginxconf_main_opts {
        const char *engine;     /* NULL: "pkcs11" */
        const char *const *env; /* NULL-terminated list of variables for "env NAME;"; may be NULL */
};

/* Make sure the main nginx.conf has "ssl_engine <engine>;" and "env NAME;" for each variable at top
 * level (nginx clears its workers' environment). Missing lines are added after the last top-level
 * directive before the first top-level block. An "env NAME=value;" counts as present. A different
 * ssl_engine → -EEXIST; ssl_engine inside a block → -EINVAL.
 * All editors: text may hold any bytes (a NUL is -EINVAL with its position); on success *ret_text
 * is a new NUL-terminated copy with the edits spliced in and everything else byte for byte, and
 * the return value is 1 when something changed, 0 when the text already was as wanted (applying
 * twice is a no-op). On failure nothing is returned but the error and ret_error (may be NULL). */
_must_check_ int nginxconf_ensure_main(const char *text, size_t len, const struct nginxconf_main_opts *opts,
                                       char **ret_text, size_t *ret_len, struct nginxconf_error *ret_error);

/* The argument of the top-level "pid" directive of a main nginx.conf, decoded (quotes and escapes
 * removed), in *ret_pid: returns 1; 0 with *ret_pid NULL when there is none (nginx then uses its
 * built-in path). A "pid" in a file included from the top level is not seen (no I/O here). Errors
 * as for the editors. */
_must_check_ int nginxconf_get_pid(const char *text, size_t len, char **ret_pid,
                                   struct nginxconf_error *ret_error);

struct nginxconf_include_opts {
        const char *stanza_path; /* absolute path of the stanza file, no glob characters */
        unsigned port;           /* server {} listening with ssl on this port; 0: any port */
        const char *server_name; /* also matching this server_name (ASCII case-insensitive); NULL: any */
        /* NULL-terminated list of include arguments to disable in the matching blocks, for files
         * the caller found to set ssl_certificate (Debian's "snippets/snakeoil.conf"); may be NULL. */
        const char *const *disable_includes;
};

/* Make sure each server {} block (at top level of an included site file, or inside http {} or
 * stream {}) that listens with ssl on opts->port and has opts->server_name includes the stanza
 * file. "include <stanza_path>;" goes last in the block, so that its certificate wins over one
 * of the same key type set earlier (ssl_certificate may repeat; the last of a type is used).
 * The block's own ssl_certificate / ssl_certificate_key directives and the includes named in
 * disable_includes are disabled with NGINXCONF_DISABLED_MARK; other includes are left alone.
 * No matching block → -ENOENT, positioned at the first server block seen (0:0 when there is none). */
_must_check_ int nginxconf_ensure_include(const char *text, size_t len,
                                          const struct nginxconf_include_opts *opts, char **ret_text,
                                          size_t *ret_len, struct nginxconf_error *ret_error);
