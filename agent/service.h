/* The service loop: launch the enclave, provision the tokens, keep them synced, refreshed and served. */
#pragma once

#include "agent/config/config.h"

/* Runs in the foreground until SIGTERM/SIGINT. Takes ownership of *cfg (set to NULL). SIGHUP re-reads
 * config_path and applies what changed. Returns 0 after a clean stop, a negative errno when it could
 * not start at all. Transient failures are retried, never fatal. */
_must_check_ int agent_service_run(const char *config_path, struct agent_config **cfg);
