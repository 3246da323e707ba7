/* Opt-in debug trace to stderr (ENCLAVE_ACM_DEBUG): silent by default, never PINs or keys. */
#pragma once

#include <stdbool.h>

#include "common/cleanup.h"

enum p11_debug_flag {
        P11_DEBUG_INIT = 1u << 0,
        P11_DEBUG_SLOT = 1u << 1,
        P11_DEBUG_SESSION = 1u << 2,
        P11_DEBUG_OBJECT = 1u << 3,
        P11_DEBUG_SIGN = 1u << 4,
        P11_DEBUG_RPC = 1u << 5,
        P11_DEBUG_ALL = 0xffffu,
};

extern unsigned p11_debug_mask;

/* "1", "all", "yes" or a comma list of init,slot,session,object,sign,rpc. NULL/"" or "0": off.
 * When the trace is on, its unknown words are named in it. Any switch also turns on the lines of
 * p11_config_load() that name a setting it cannot use. */
unsigned p11_debug_parse(const char *s);
void p11_debug_log(const char *func, const char *fmt, ...) _printf_(2, 3);

#define p11_debug(flag, ...)                                  \
        do {                                                  \
                if (_unlikely_(p11_debug_mask & (flag)))      \
                        p11_debug_log(__func__, __VA_ARGS__); \
        } while (0)
