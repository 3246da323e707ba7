/* The fake KMS's HTTPS server: connections, timeouts, keep-alive; requests go to the handler. */
#pragma once

#include <openssl/ssl.h>

#include "common/cleanup.h"
#include "tests/fakes/fake-kms-handler.h"

/* Serves on the listening socket lfd until SIGTERM or SIGINT (blocked in the caller, taken through
 * sigfd), with the statistics in stats_file (NULL: none). Returns then 0, or the number of connections
 * still open after a short wait (their threads still use cfg: the caller must _exit() without freeing
 * it), or a negative errno for a failure of the listening socket. */
_must_check_ int fkms_serve(const struct fkms_config *cfg, const char *stats_file, SSL_CTX *ctx, int lfd,
                            int sigfd);
