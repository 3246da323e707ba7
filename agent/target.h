/* Pointing a token's web-server target at its key: the nginx stanza or the httpd Conf edit, applied with webapply. */
#pragma once

#include <stdint.h>

#include "agent/config.h"

/* The key a target is pointed at. */
struct target_key {
        const char *label;     /* token label */
        uint32_t key_id;       /* CKA_ID */
        const char *pin_file;  /* absolute path for "?pin-source=file:" */
        const char *cert_path; /* the PEM chain file (leaf first) */
};

/* "pkcs11:…;token=<label>;id=%0N;type=private?pin-source=file:<pin_file>". Pure. */
_must_check_ int target_key_uri(const struct target_key *k, char **ret);

/* The whole stanza file text for an NginxStanza target. Pure. */
_must_check_ int target_nginx_stanza(const struct target_key *k, char **ret_text, size_t *ret_len);

/* Make t's target (when present) use k: render, then webapply (config test, graceful reload,
 * rollback). Returns 0 when the file already was as wanted (nothing reloaded), 1 when it was
 * replaced and the server reloaded gracefully (a new key too: see agent/provision.c), or a negative errno;
 * *ret_error (may be NULL) then gets a one-line explanation with the server's own message. Logs nothing. */
_must_check_ int target_apply(const struct agent_config *cfg, const struct agent_config_token *t,
                              const struct target_key *k, char **ret_error);

/* nginx in direct mode with options.server_config: make sure the main file has "ssl_engine pkcs11;"
 * and "env" lines for OPENSSL_CONF and the module's address variables. 0 unchanged, 1 changed and
 * reloaded, negative errno with *ret_error. Does nothing (0) in other setups. */
_must_check_ int target_ensure_main(const struct agent_config *cfg, char **ret_error);
