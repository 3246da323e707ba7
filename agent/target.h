/* Pointing a token's web-server target at its key: the nginx stanza or the httpd Conf edit, applied with
 * webapply. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "agent/config/config.h"

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

/* What target_apply() / target_ensure_main() did, when they succeeded. */
enum target_outcome {
        TARGET_UNCHANGED,   /* the file already was as wanted: nothing reloaded */
        TARGET_RELOADED,    /* replaced; the server reloaded gracefully and survived it */
        TARGET_NOT_RUNNING, /* replaced (config test passed); the server was not running and was left
                             * stopped (options.force_start: false) */
        TARGET_STARTED,     /* replaced; the server was not running and was started with it (force_start) */
};

/* "reloaded gracefully", "was not running and is left stopped (force_start: false)", "was not running
 * and was started", for log lines. */
const char *target_outcome_to_string(int outcome);

/* Make t's target (when present) use k: render, then webapply (config test, graceful reload or a
 * start, a check that the server survived for options.reload_wait_ms, rollback). Returns an
 * enum target_outcome (> 0: the file was replaced; a new key too: see agent/token.c), or a
 * negative errno; *ret_error (may be NULL) then gets a one-line explanation with the server's own
 * message (-ESRCH: the server died after the reload; the previous file is back and the server was
 * started again, as the message says). In direct mode the server's pid file is options.server_pid_file
 * or found with webapply_pid_file_find(). force: test and reload even when the file already says so
 * (the server may never have loaded it: a reload failed earlier, or the agent died before it).
 * Logs nothing. */
_must_check_ int target_apply(const struct agent_config *cfg, const struct agent_config_token *t,
                              const struct target_key *k, bool force, char **ret_error);

/* Can t's target file be replaced by one pointing at k? The text is rendered and written to a temp
 * file next to it (then removed), as target_apply() would: a read-only or full file system, or a
 * directory that is not one, fails here. 0, or a negative errno with *ret_error. Logs nothing. */
_must_check_ int target_check_writable(const struct agent_config *cfg, const struct agent_config_token *t,
                                       const struct target_key *k, char **ret_error);

/* nginx in direct mode with options.server_config: make sure the main file has "ssl_engine pkcs11;"
 * and "env" lines for OPENSSL_CONF and the module's address variables. An enum target_outcome, or a
 * negative errno with *ret_error. Does nothing (0) in other setups. */
_must_check_ int target_ensure_main(const struct agent_config *cfg, char **ret_error);
