/* The token table: provisioned tokens sorted by slot id behind one reader/writer lock, plus the
 * retired versions of replaced tokens, which still answer SIGN/DECRYPT with their ticket until they expire.
 */
#pragma once

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/cleanup.h"
#include "common/rpc-codec.h"
#include "common/secret.h"
#include "enclave-token/key.h"
#include "enclave-token/stats.h"

#define ETOK_MAX_TOKENS_DEFAULT 1024
/* PIN guessing (SECURITY.md, docs/protocol.md "Login"). Three limits refuse an attempt (PIN_LOCKED)
 * before the comparison, so a refusal tells a guesser nothing:
 * - per connection: ETOK_PIN_FREE_FAILURES wrong PINs, then one min(2^(n-5), 60) s after its n-th;
 * - per peer and token: ETOK_PIN_GUESS_BURST wrong PINs at once, then one per
 *   ETOK_PIN_GUESS_INTERVAL_NSEC (a GCRA). The peer is the uid on a unix socket (SO_PEERCRED at
 *   accept), the CID on vsock (every parent process: one peer), the control channel one more. Only the
 *   peer over its budget is refused: another uid's right PIN is compared and gets in;
 * - per token, all peers together, a last resort far above one peer's budget:
 *   ETOK_PIN_GUESS_TOTAL_BURST at once, then one per ETOK_PIN_GUESS_TOTAL_INTERVAL_NSEC. One peer
 *   can never reach it; it takes more than ETOK_PIN_GUESS_TOTAL_INTERVAL_NSEC / ETOK_PIN_GUESS_INTERVAL
 *   peers guessing at their full rate, and then it refuses everyone.
 * The per-peer budgets are kept for at most ETOK_PIN_PEERS (peer, token) pairs, and only for pairs that
 * sent a wrong PIN: a pair whose budget is whole again is forgotten first (least recently used), a
 * spent one never; when all are spent, pairs without one share one more budget. */
#define ETOK_PIN_FREE_FAILURES             5 /* per connection, before its back-off starts */
#define ETOK_PIN_BACKOFF_MAX_SEC           60
#define ETOK_PIN_GUESS_BURST               10
#define ETOK_PIN_GUESS_INTERVAL_NSEC       UINT64_C(1000000000)
#define ETOK_PIN_GUESS_TOTAL_BURST         100
#define ETOK_PIN_GUESS_TOTAL_INTERVAL_NSEC UINT64_C(100000000)
#define ETOK_PIN_PEERS                     256
#define ETOK_ROTATION_GRACE_DEFAULT_SEC    300
#define ETOK_RETIRED_PER_LABEL             4 /* the oldest retired version of a label is wiped early */
/* retired_until_ns of a held version: replaced with TOKEN_ADD hold, it answers until TOKEN_RELEASE
 * (then for the grace period). At most ETOK_RETIRED_PER_LABEL per label, besides those in the grace
 * period: see retired_make_room() in keystore.c. */
#define ETOK_HELD UINT64_MAX

struct etok_token {
        uint32_t slot;
        char label[RPC_LABEL_MAX + 1];
        size_t label_len;
        uint64_t generation;       /* the keystore generation when these keys were provisioned */
        uint64_t retired_until_ns; /* 0: current (listed); else retired, usable until this monotonic time
                                    * (ETOK_HELD: until released) */

        /* secret->data: [0, RPC_PIN_MAX) the PIN, zero padded; then the login ticket. */
        struct secret_buf *secret;
        size_t pin_len;

        pthread_mutex_t pin_lock; /* guards guess_tat_ns; readers of the table take it */
        uint64_t guess_tat_ns;    /* GCRA, all peers: when the total budget is whole again (0: whole) */
        unsigned pin_failures;    /* wrong PINs compared since the last right one, any connection */

        size_t n_keys;
        struct etok_key *keys[RPC_MAX_KEYS];

        /* When the token expires unless refreshed (0: never): Unix seconds for the wire, and the same
         * moment on the keystore's monotonic clock, which decides. */
        uint64_t expires;
        uint64_t expires_ns;

        struct etok_stats *stats; /* the label's counters: a new version takes its predecessor's */
};

struct etok_keystore;

/* Who sends a PIN, for the per-peer budget. */
enum etok_peer_kind {
        ETOK_PEER_NONE, /* no identity: all such callers share one budget */
        ETOK_PEER_UID,  /* unix socket: SO_PEERCRED uid */
        ETOK_PEER_CID,  /* vsock: the peer's CID (every parent process has the same) */
        ETOK_PEER_CONTROL,
        _ETOK_PEER_KIND_MAX,
        _ETOK_PEER_KIND_INVALID = -EINVAL,
};

/* One connection's wrong PINs, for its own back-off: other connections are not slowed by them; and
 * its peer, set at accept, whose budget its wrong PINs are charged to. Zero-initialised (peer NONE);
 * used by one request at a time. */
struct etok_pin_guard {
        unsigned failures; /* consecutive, on any token */
        uint64_t last_failure_ns;
        enum etok_peer_kind peer_kind;
        uint32_t peer_id;
};

/* Monotonic nanoseconds; replaceable so tests can drive the PIN back-off without sleeping. */
typedef uint64_t (*etok_clock_fn)(void *userdata);

_must_check_ int etok_keystore_new(size_t max_tokens, struct etok_keystore **ret);
/* Wipes and frees every token. */
struct etok_keystore *etok_keystore_free(struct etok_keystore *ks);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct etok_keystore *, etok_keystore_free);
void etok_keystore_set_clock(struct etok_keystore *ks, etok_clock_fn fn, void *userdata);

size_t etok_keystore_max_tokens(const struct etok_keystore *ks);
/* Bumps on every add, replace and remove; starts at a random value. Lock-free. */
uint64_t etok_keystore_generation(const struct etok_keystore *ks);

/* FNV-1a 32 over the label, masked to 31 bits: the slot id before collision probing. A label keeps
 * its slot id across replacements, whatever the keys. */
uint32_t etok_slot_hash(const void *label, size_t len);

/* How long a replaced token version keeps answering for its slot id (0: not at all). Default
 * ETOK_ROTATION_GRACE_DEFAULT_SEC. */
void etok_keystore_set_grace(struct etok_keystore *ks, uint64_t grace_sec);
/* Wipes retired versions whose grace period is over and tokens past their expiry (which leave the
 * listing: the generation bumps). Takes the write lock only when one is due. */
int etok_keystore_expire(struct etok_keystore *ks); /* returns the tokens (not retired versions) wiped */
/* Retired versions still held (expired ones included until the next write or etok_keystore_expire). */
size_t etok_keystore_retired_count(struct etok_keystore *ks);
size_t etok_keystore_retired_count_locked(const struct etok_keystore *ks);

/* TOKEN_ADD: validates, parses the keys outside the lock, then inserts (0) or replaces (1). A
 * replacement keeps the slot id; with other keys the previous version is retired for the grace period
 * (req->hold: held until TOKEN_RELEASE) under the same slot id, reachable with its ticket only.
 * Errors: -EBADMSG (schema), KEY_INVALID, EXISTS, PIN_INCORRECT, PIN_LOCKED, LIMIT. */
_must_check_ int etok_keystore_add(struct etok_keystore *ks, const struct rpc_token_add_req *req,
                                   uint32_t *ret_slot);
/* etok_keystore_add() with an expiry: the token expires ttl_sec seconds from now unless refreshed (0:
 * never); *ret_expires (may be NULL) says when in Unix seconds (0: never). When a key is refused
 * (KEY_INVALID, LIMIT) *ret_bad_key (may be NULL) is its index in req->keys. */
_must_check_ int etok_keystore_add_ttl(struct etok_keystore *ks, const struct rpc_token_add_req *req,
                                       uint64_t ttl_sec, uint32_t *ret_slot, uint64_t *ret_expires,
                                       size_t *ret_bad_key);
/* The current version's PIN of the token labelled label, checked with the usual limits.
 * NO_SUCH_TOKEN, PIN_INCORRECT, PIN_LOCKED. */
_must_check_ int etok_keystore_check_pin(struct etok_keystore *ks, const struct rpc_slice *label,
                                         const struct rpc_slice *pin);
/* TOKEN_REFRESH: checks the PIN, then that the token holds exactly the keys given (ids[i] with the
 * public key of pkeys[i], every key of the token named once: KEY_INVALID otherwise, *ret_bad_key its
 * index, SIZE_MAX when the count differs; an id it lacks: NO_SUCH_KEY), then moves the expiry to now +
 * ttl_sec. Tickets, objects and slot id are unchanged. */
_must_check_ int etok_keystore_refresh(struct etok_keystore *ks, const struct rpc_slice *label,
                                       const struct rpc_slice *pin, const uint32_t *ids,
                                       EVP_PKEY *const *pkeys, size_t n, uint64_t ttl_sec,
                                       uint64_t *ret_expires, size_t *ret_bad_key);
/* TOKEN_REMOVE: wipes the current version; retired ones run out their grace period (held ones from now).
 * NO_SUCH_TOKEN, PIN_INCORRECT, PIN_LOCKED. */
_must_check_ int etok_keystore_remove(struct etok_keystore *ks, const struct rpc_token_remove_req *req);
/* LOGIN on a connection: copies the current version's ticket to ret_ticket. The connection's own
 * back-off lives in guard (NULL: the token's limit only). NO_SUCH_TOKEN, PIN_INCORRECT, PIN_LOCKED. */
_must_check_ int etok_keystore_login_conn(struct etok_keystore *ks, struct etok_pin_guard *guard,
                                          uint32_t slot, const struct rpc_slice *pin,
                                          uint8_t ret_ticket[static RPC_TICKET_LEN]);
/* TOKEN_RELEASE: the label's held versions start their grace period now (no grace period: wiped now);
 * authenticated with the current version's PIN. Returns how many were released (0: none was held).
 * NO_SUCH_TOKEN, PIN_INCORRECT, PIN_LOCKED. */
_must_check_ int etok_keystore_release(struct etok_keystore *ks, const struct rpc_token_release_req *req);
/* Held versions of the label (NULL: of all labels). */
size_t etok_keystore_held_count(struct etok_keystore *ks, const struct rpc_slice *label);
/* The token's PIN status (enum rpc_pin_status) as the connection with this guard (NULL: none) sees it:
 * COUNT_LOW after a wrong PIN, FINAL_TRY when one more starts the back-off (the 5th in a row, or the
 * last of the token's budget), LOCKED while an attempt would be refused. A right PIN clears it. Table
 * lock held (read). */
uint32_t etok_keystore_pin_status(const struct etok_keystore *ks, const struct etok_token *t,
                                  const struct etok_pin_guard *guard);

/* LOGIN: copies the current version's ticket to ret_ticket. NO_SUCH_TOKEN, PIN_INCORRECT, PIN_LOCKED. */
_must_check_ int etok_keystore_login(struct etok_keystore *ks, uint32_t slot, const struct rpc_slice *pin,
                                     uint8_t ret_ticket[static RPC_TICKET_LEN]);
/* SIGN / DECRYPT under the read lock. The ticket picks the version: the current one, else an unexpired
 * retired version of the slot id. NO_SUCH_TOKEN (no version at all), NOT_LOGGED_IN (no version with
 * that ticket), NO_SUCH_KEY, then the key's errors. */
_must_check_ int etok_keystore_crypt(struct etok_keystore *ks, bool decrypt,
                                     const struct rpc_crypto_req *req, uint8_t *out, size_t size,
                                     size_t *ret_len);

/* Counters of SIGN/DECRYPT/LOGIN requests that named no token (NO_SUCH_TOKEN). */
struct etok_stats *etok_keystore_stats(struct etok_keystore *ks);

/* Read access for the listing calls. Tokens and keys stay valid until etok_keystore_read_end(). */
void etok_keystore_read_begin(struct etok_keystore *ks);
void etok_keystore_read_end(struct etok_keystore *ks);
size_t etok_keystore_count_locked(const struct etok_keystore *ks);
/* Index of the first token whose slot id is >= slot (== count when none). */
size_t etok_keystore_seek_locked(const struct etok_keystore *ks, uint32_t slot);
const struct etok_token *etok_keystore_get_locked(const struct etok_keystore *ks, size_t idx);
/* NULL when no current token has that slot id (retired versions are never found here). */
const struct etok_token *etok_keystore_find_locked(const struct etok_keystore *ks, uint32_t slot);

/* Public view of one token for the codec (slices point into the keystore: read lock held). */
void etok_token_info(const struct etok_token *t, bool with_keys, enum etok_key_view view,
                     struct rpc_token_info *ret);
