/* Files the agent keeps: generated PINs and current key ids under state_dir, PIN files for libp11's
 * pin-source under runtime_dir, and the atomic file writer everything else uses. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/cleanup.h"
#include "common/secret.h"

/* libp11 0.4.12 reads at most 31 bytes from a pin-source file and keeps a trailing newline as part
 * of the PIN: generated PINs are 31 characters of [A-Za-z0-9] (about 184 bits), no newline. */
#define PINSTORE_GENERATED_LEN  31
#define PINSTORE_PIN_SOURCE_MAX 31

/* A file name for a token label: RFC 3986 unreserved bytes kept, everything else (and a leading
 * '.') as %XX, so "a/b" cannot leave the directory and two labels never share a name. Pure. */
_must_check_ int pinstore_label_filename(const char *label, char **ret);

/* PIN_SOURCE_MAX bytes at most, no NUL, CR or LF: usable through a pin-source file. Pure. */
bool pinstore_pin_source_ok(const uint8_t *pin, size_t len);

/* Fill buf[0..len) with characters of [A-Za-z0-9] from the random bytes in rnd (rejection
 * sampling: bytes >= 248 are skipped). Returns the number of characters written. Pure. */
size_t pinstore_pin_from_random(const uint8_t *rnd, size_t rnd_len, char *buf, size_t len);

/* A new PINSTORE_GENERATED_LEN-character PIN from getrandom(). */
_must_check_ int pinstore_generate(struct secret_buf **ret);

/* state_dir/pins/<label>: the persisted PIN (created, 0600, when missing; *ret_created then true).
 * Directories are created 0700. -EBADMSG when the stored file is not a usable PIN. */
_must_check_ int pinstore_load_or_create(const char *state_dir, const char *label, struct secret_buf **ret,
                                         bool *ret_created);

/* state_dir/keys/<label>: the key id the web server was last pointed at (1 when missing); -EBADMSG
 * when the file holds anything but a key id. */
_must_check_ int pinstore_load_key_id(const char *state_dir, const char *label, uint32_t *ret);
/* The file's text: "N" or "N\n", N in 1..65535. Pure. */
_must_check_ int pinstore_parse_key_id(const char *text, size_t len, uint32_t *ret);
_must_check_ int pinstore_save_key_id(const char *state_dir, const char *label, uint32_t id);

/* runtime_dir/<label>.pin for libp11's "?pin-source=file:": the bare PIN, mode 0440 and the given
 * group when group is not NULL, else 0400; owned by the agent's user. */
_must_check_ int pinstore_write_runtime(const char *runtime_dir, const char *label,
                                        const struct secret_buf *pin, const char *group, char **ret_path);

/* Atomically make path hold data[0..len) with mode and owner (uid/gid (uid_t)-1 / (gid_t)-1: the
 * caller's): temp file in the same directory, fsync, rename, fsync of the directory. Returns 0
 * when the file already held exactly that, 1 when it was written, or a negative errno. */
_must_check_ int pinstore_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
                                       uid_t uid, gid_t gid);

/* mkdir -p with mode for the directories it creates. */
_must_check_ int pinstore_mkdir_p(const char *path, mode_t mode);

/* A group name to its gid: -ESRCH when unknown. */
_must_check_ int pinstore_group_gid(const char *name, gid_t *ret);
