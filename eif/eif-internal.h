/* Helpers shared by the eif/ sources: header field offsets, big-endian access, error reporting. */
#pragma once

#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>

#include "common/cleanup.h"
#include "eif/eif.h"

#define EIF_OFF_VERSION  4
#define EIF_OFF_FLAGS    6
#define EIF_OFF_MEM      8
#define EIF_OFF_CPUS     16
#define EIF_OFF_RESERVED 24
#define EIF_OFF_COUNT    26
#define EIF_OFF_OFFSETS  28
#define EIF_OFF_SIZES    284
#define EIF_OFF_UNUSED   540

uint16_t eif_get_be16(const uint8_t *p);
uint32_t eif_get_be32(const uint8_t *p);
uint64_t eif_get_be64(const uint8_t *p);
void eif_put_be16(uint8_t *p, uint16_t v);
void eif_put_be32(uint8_t *p, uint32_t v);
void eif_put_be64(uint8_t *p, uint64_t v);

/* Fills *err (when not NULL) and returns -EBADMSG. fmt may be NULL. */
_printf_(4, 5) int eif_fail(struct eif_error *err, size_t offset, const char *rule, const char *fmt, ...);

/* No NUL, no trailing newline; base is the offset reported. */
_must_check_ int eif_cmdline_check(const uint8_t *p, size_t len, size_t base, struct eif_error *err);
