/* The sd_notify() datagram protocol, without libsystemd: READY=1, STATUS=, RELOADING=1, STOPPING=1,
 * WATCHDOG=1. */
#pragma once

#include <stdint.h>

#include "common/cleanup.h"

/* Send one state string ("READY=1\nSTATUS=…") to $NOTIFY_SOCKET. Returns 1 when sent, 0 when
 * $NOTIFY_SOCKET is unset (not run by systemd), or a negative errno. Logs nothing. */
_must_check_ int notify_send(const char *state);
/* printf-style notify_send(). */
_must_check_ _printf_(1, 2) int notify_sendf(const char *fmt, ...);

/* $WATCHDOG_USEC when set and $WATCHDOG_PID (if set) is this process; 0 otherwise. */
uint64_t notify_watchdog_usec(void);
