/* The token table: provisioned tokens sorted by slot id behind one reader/writer lock, plus the
 * retired versions of replaced tokens, which still answer SIGN/DECRYPT with their ticket until they expire.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "common/time-util.h"
#include "enclave-token/errors.h"
#include "enclave-token/keystore.h"

#define NSEC_PER_SEC    UINT64_C(1000000000)
#define SLOT_MASK       UINT32_C(0x7fffffff)
#define GENERATION_MASK UINT64_C(0x0000ffffffffffff) /* random start, room to count up */

/* One (peer, token) pair's wrong-PIN budget (keystore.h). */
struct pin_peer {
        bool used;
        uint8_t kind; /* enum etok_peer_kind */
        uint32_t id;
        uint32_t slot;
        uint64_t tat_ns;  /* GCRA: when its budget is whole again */
        uint64_t last_ns; /* its last attempt: the least recently used whole one is forgotten first */
};

struct etok_keystore {
        pthread_rwlock_t lock;
        /* Taken inside a token's pin_lock. The last entry is shared by pairs that found no room. */
        pthread_mutex_t peers_lock;
        struct pin_peer peers[ETOK_PIN_PEERS + 1];
        struct etok_token **tokens; /* sorted by slot id */
        size_t n_tokens;
        size_t max_tokens;
        /* Replaced versions in the order they were retired (oldest first); not listed, not counted
         * against max_tokens, at most max_tokens of them and ETOK_RETIRED_PER_LABEL per label. */
        struct etok_token **retired;
        size_t n_retired;
        uint64_t grace_ns;
        uint64_t generation; /* written under the write lock, read lock-free */
        etok_clock_fn clock;
        void *clock_userdata;
        struct etok_stats stats; /* requests naming no token (embedded: never freed on its own) */
};

static uint64_t clock_monotonic(void *userdata) {
        return mono_nsec();
}

static uint8_t *token_ticket(const struct etok_token *t) {
        return t->secret->data + RPC_PIN_MAX;
}

static struct etok_token *token_free(struct etok_token *t) {
        if (!t)
                return NULL;
        for (size_t i = 0; i < t->n_keys; i++)
                etok_key_free(t->keys[i]);
        secret_buf_free(t->secret);
        etok_stats_unref(t->stats);
        (void) pthread_mutex_destroy(&t->pin_lock);
        free(t);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(struct etok_token *, token_free);

int etok_keystore_new(size_t max_tokens, struct etok_keystore **ret) {
        pthread_rwlockattr_t attr;
        struct etok_keystore *ks;
        uint64_t gen;
        int r;

        if (max_tokens == 0 || max_tokens > RPC_MAX_TOKENS)
                return -EINVAL;
        if (RAND_bytes((unsigned char *) &gen, sizeof(gen)) != 1) {
                ERR_clear_error();
                return -EIO;
        }
        ks = calloc(1, sizeof(*ks));
        if (!ks)
                return -ENOMEM;
        ks->tokens = calloc(max_tokens, sizeof(*ks->tokens));
        ks->retired = calloc(max_tokens, sizeof(*ks->retired));
        if (!ks->tokens || !ks->retired) {
                free(ks->tokens);
                free(ks->retired);
                free(ks);
                return -ENOMEM;
        }
        /* Writers first: a steady stream of SIGN readers must not starve provisioning. */
        (void) pthread_rwlockattr_init(&attr);
        (void) pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
        r = pthread_rwlock_init(&ks->lock, &attr);
        (void) pthread_rwlockattr_destroy(&attr);
        if (r == 0) {
                r = pthread_mutex_init(&ks->peers_lock, NULL);
                if (r != 0)
                        (void) pthread_rwlock_destroy(&ks->lock);
        }
        if (r != 0) {
                free(ks->tokens);
                free(ks->retired);
                free(ks);
                return -r;
        }
        ks->max_tokens = max_tokens;
        ks->generation = gen & GENERATION_MASK;
        ks->clock = clock_monotonic;
        ks->grace_ns = ETOK_ROTATION_GRACE_DEFAULT_SEC * NSEC_PER_SEC;
        *ret = ks;
        return 0;
}

struct etok_keystore *etok_keystore_free(struct etok_keystore *ks) {
        if (!ks)
                return NULL;
        for (size_t i = 0; i < ks->n_tokens; i++)
                token_free(ks->tokens[i]);
        for (size_t i = 0; i < ks->n_retired; i++)
                token_free(ks->retired[i]);
        free(ks->tokens);
        free(ks->retired);
        (void) pthread_rwlock_destroy(&ks->lock);
        (void) pthread_mutex_destroy(&ks->peers_lock);
        free(ks);
        return NULL;
}

void etok_keystore_set_clock(struct etok_keystore *ks, etok_clock_fn fn, void *userdata) {
        ks->clock = fn ? fn : clock_monotonic;
        ks->clock_userdata = userdata;
}

void etok_keystore_set_grace(struct etok_keystore *ks, uint64_t grace_sec) {
        (void) pthread_rwlock_wrlock(&ks->lock);
        ks->grace_ns = MIN(grace_sec, UINT64_MAX / NSEC_PER_SEC) * NSEC_PER_SEC;
        (void) pthread_rwlock_unlock(&ks->lock);
}

struct etok_stats *etok_keystore_stats(struct etok_keystore *ks) {
        return &ks->stats;
}

size_t etok_keystore_max_tokens(const struct etok_keystore *ks) {
        return ks->max_tokens;
}

uint64_t etok_keystore_generation(const struct etok_keystore *ks) {
        return __atomic_load_n(&ks->generation, __ATOMIC_ACQUIRE);
}

static uint64_t generation_bump(struct etok_keystore *ks) {
        return __atomic_add_fetch(&ks->generation, 1, __ATOMIC_RELEASE);
}

static uint32_t fnv1a(uint32_t h, const uint8_t *p, size_t len) {
        for (size_t i = 0; i < len; i++) {
                h ^= p[i];
                h *= UINT32_C(16777619);
        }
        return h;
}

uint32_t etok_slot_hash(const void *label, size_t len) {
        return fnv1a(UINT32_C(2166136261), label, len) & SLOT_MASK;
}

void etok_keystore_read_begin(struct etok_keystore *ks) {
        (void) pthread_rwlock_rdlock(&ks->lock);
}

void etok_keystore_read_end(struct etok_keystore *ks) {
        (void) pthread_rwlock_unlock(&ks->lock);
}

size_t etok_keystore_count_locked(const struct etok_keystore *ks) {
        return ks->n_tokens;
}

size_t etok_keystore_seek_locked(const struct etok_keystore *ks, uint32_t slot) {
        size_t lo = 0, hi = ks->n_tokens;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;

                if (ks->tokens[mid]->slot < slot)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo;
}

const struct etok_token *etok_keystore_get_locked(const struct etok_keystore *ks, size_t idx) {
        return idx < ks->n_tokens ? ks->tokens[idx] : NULL;
}

static struct etok_token *find_slot(const struct etok_keystore *ks, uint32_t slot) {
        size_t i = etok_keystore_seek_locked(ks, slot);

        return i < ks->n_tokens && ks->tokens[i]->slot == slot ? ks->tokens[i] : NULL;
}

const struct etok_token *etok_keystore_find_locked(const struct etok_keystore *ks, uint32_t slot) {
        return find_slot(ks, slot);
}

static bool ticket_matches(const struct etok_token *t, const struct rpc_slice *ticket) {
        return ticket->len == RPC_TICKET_LEN &&
               CRYPTO_memcmp(ticket->ptr, token_ticket(t), RPC_TICKET_LEN) == 0;
}

/* The version of this slot id a ticket belongs to: the current one, else an unexpired retired one.
 * Lock held (read or write). Retired versions are few: a linear scan is enough. 0: the current
 * version, 1: a retired one; NO_SUCH_TOKEN when the slot id has no current or unexpired retired
 * version, NOT_LOGGED_IN when none has this ticket. */
static int find_version(const struct etok_keystore *ks, uint32_t slot, const struct rpc_slice *ticket,
                        const struct etok_token **ret) {
        const struct etok_token *t = find_slot(ks, slot);
        bool known = t;
        uint64_t now;

        if (t && ticket_matches(t, ticket)) {
                *ret = t;
                return 0;
        }
        if (ks->n_retired == 0)
                return known ? ETOK_ERR(NOT_LOGGED_IN) : ETOK_ERR(NO_SUCH_TOKEN);
        now = ks->clock(ks->clock_userdata);
        for (size_t i = ks->n_retired; i > 0; i--) { /* newest first */
                const struct etok_token *r = ks->retired[i - 1];

                if (r->slot != slot || now >= r->retired_until_ns)
                        continue;
                known = true;
                if (ticket_matches(r, ticket)) {
                        *ret = r;
                        return 1;
                }
        }
        return known ? ETOK_ERR(NOT_LOGGED_IN) : ETOK_ERR(NO_SUCH_TOKEN);
}

static struct etok_token *retired_take(struct etok_keystore *ks, size_t i) {
        struct etok_token *t = ks->retired[i];

        memmove(&ks->retired[i], &ks->retired[i + 1], (ks->n_retired - i - 1) * sizeof(*ks->retired));
        ks->retired[--ks->n_retired] = NULL;
        return t;
}

static bool token_expired(const struct etok_token *t, uint64_t now) {
        return t->expires_ns != 0 && now >= t->expires_ns;
}

static void remove_at(struct etok_keystore *ks, size_t i);
static size_t release_locked(struct etok_keystore *ks, const struct etok_token *t);

/* Write lock held: wipes every retired version whose grace period is over, and every token past its
 * expiry (which leaves the listing: its held versions are released, as by TOKEN_REMOVE). */
static int expire_locked(struct etok_keystore *ks) {
        uint64_t now = ks->clock(ks->clock_userdata);
        int removed = 0;

        for (size_t i = ks->n_tokens; i > 0; i--) {
                struct etok_token *t = ks->tokens[i - 1];

                if (!token_expired(t, now))
                        continue;
                (void) release_locked(ks, t);
                remove_at(ks, i - 1);
                token_free(t);
                removed++;
        }
        if (removed)
                (void) generation_bump(ks);
        for (size_t i = ks->n_retired; i > 0; i--)
                if (now >= ks->retired[i - 1]->retired_until_ns)
                        token_free(retired_take(ks, i - 1));
        return removed;
}

static bool any_expired_locked(const struct etok_keystore *ks) {
        uint64_t now = ks->clock(ks->clock_userdata);

        for (size_t i = 0; i < ks->n_tokens; i++)
                if (token_expired(ks->tokens[i], now))
                        return true;
        for (size_t i = 0; i < ks->n_retired; i++)
                if (now >= ks->retired[i]->retired_until_ns)
                        return true;
        return false;
}

int etok_keystore_expire(struct etok_keystore *ks) {
        bool due;
        int n;

        (void) pthread_rwlock_rdlock(&ks->lock);
        due = any_expired_locked(ks);
        (void) pthread_rwlock_unlock(&ks->lock);
        if (!due)
                return 0;
        (void) pthread_rwlock_wrlock(&ks->lock);
        n = expire_locked(ks);
        (void) pthread_rwlock_unlock(&ks->lock);
        return n;
}

size_t etok_keystore_retired_count_locked(const struct etok_keystore *ks) {
        return ks->n_retired;
}

size_t etok_keystore_retired_count(struct etok_keystore *ks) {
        size_t n;

        (void) pthread_rwlock_rdlock(&ks->lock);
        n = ks->n_retired;
        (void) pthread_rwlock_unlock(&ks->lock);
        return n;
}

/* Index of the token with this label, or -ENOENT. Linear: only provisioning looks up labels. */
static ssize_t find_label(const struct etok_keystore *ks, const struct rpc_slice *label) {
        for (size_t i = 0; i < ks->n_tokens; i++) {
                const struct etok_token *t = ks->tokens[i];

                if (t->label_len == label->len && memcmp(t->label, label->ptr, label->len) == 0)
                        return (ssize_t) i;
        }
        return -ENOENT;
}

/* The connection's own back-off: after ETOK_PIN_FREE_FAILURES, min(2^(n-5), 60) s after its last. */
static bool guard_backing_off(const struct etok_pin_guard *g, uint64_t now) {
        unsigned e;
        uint64_t delay;

        if (!g || g->failures < ETOK_PIN_FREE_FAILURES)
                return false;
        e = g->failures - ETOK_PIN_FREE_FAILURES;
        delay = e >= 6 ? ETOK_PIN_BACKOFF_MAX_SEC : MIN(UINT64_C(1) << e, ETOK_PIN_BACKOFF_MAX_SEC);
        return now - g->last_failure_ns < delay * NSEC_PER_SEC;
}

/* A GCRA budget: burst attempts at once, then one per interval. tat: when it is whole again. */
static bool gcra_allowed(uint64_t tat, uint64_t now, uint64_t interval, uint64_t burst) {
        return tat <= now || tat - now <= (burst - 1) * interval;
}

static void gcra_charge(uint64_t *tat, uint64_t now, uint64_t interval) {
        *tat = MAX(*tat, now) + interval;
}

/* The budget of the guard's peer on this slot id (no guard: the control channel). Only pairs that
 * sent a wrong PIN have one: a pair without one has its whole budget, and its attempt is compared,
 * unless the table has no room for it (every entry spent), when it shares the last entry. With create
 * (a wrong PIN to charge), a new pair takes a free entry, else the least recently used whole one
 * (forgetting it loses nothing), else the last entry: a spent budget is never forgotten. Under
 * peers_lock. NULL: none and room for one. */
static struct pin_peer *peer_budget(struct etok_keystore *ks, uint32_t slot, const struct etok_pin_guard *g,
                                    uint64_t now, bool create) {
        enum etok_peer_kind kind = g ? g->peer_kind : ETOK_PEER_CONTROL;
        uint32_t id = g && kind != ETOK_PEER_NONE ? g->peer_id : 0;
        struct pin_peer *e = NULL, *lru = NULL;

        for (size_t i = 0; i < ETOK_PIN_PEERS; i++) {
                struct pin_peer *p = &ks->peers[i];

                if (!p->used) {
                        if (!e)
                                e = p;
                        continue;
                }
                if (p->kind == kind && p->id == id && p->slot == slot)
                        return p;
                if (p->tat_ns <= now && (!lru || p->last_ns < lru->last_ns))
                        lru = p;
        }
        if (!e)
                e = lru;
        if (!e)
                return &ks->peers[ETOK_PIN_PEERS];
        if (!create)
                return NULL;
        *e = (struct pin_peer){ .used = true, .kind = (uint8_t) kind, .id = id, .slot = slot };
        return e;
}

/* Constant-time PIN check with the limits of keystore.h and SECURITY.md. Attempts over a limit are
 * refused before the comparison, so they tell a guesser nothing; a peer over its own budget does not
 * stop another peer's PIN from being compared. Callers hold the table lock (read or write); the
 * budgets have their own mutexes so LOGIN needs only the read lock. */
static int token_check_pin(struct etok_keystore *ks, struct etok_token *t, struct etok_pin_guard *guard,
                           const struct rpc_slice *pin) {
        uint8_t padded[RPC_PIN_MAX] = {};
        struct pin_peer *peer;
        uint64_t now;
        int r, diff;

        (void) pthread_mutex_lock(&t->pin_lock);
        (void) pthread_mutex_lock(&ks->peers_lock);
        now = ks->clock(ks->clock_userdata);
        peer = peer_budget(ks, t->slot, guard, now, false);
        if (peer)
                peer->last_ns = now;
        if (guard_backing_off(guard, now) ||
            (peer && !gcra_allowed(peer->tat_ns, now, ETOK_PIN_GUESS_INTERVAL_NSEC, ETOK_PIN_GUESS_BURST)) ||
            !gcra_allowed(t->guess_tat_ns, now, ETOK_PIN_GUESS_TOTAL_INTERVAL_NSEC,
                          ETOK_PIN_GUESS_TOTAL_BURST)) {
                (void) pthread_mutex_unlock(&ks->peers_lock);
                (void) pthread_mutex_unlock(&t->pin_lock);
                etok_stats_login_locked(t->stats);
                return ETOK_ERR(PIN_LOCKED);
        }
        if (pin->len <= RPC_PIN_MAX)
                memcpy(padded, pin->ptr, pin->len);
        diff = CRYPTO_memcmp(padded, t->secret->data, RPC_PIN_MAX) | (pin->len != t->pin_len);
        secret_wipe(padded, sizeof(padded));
        if (diff) {
                if (!peer) {
                        peer = peer_budget(ks, t->slot, guard, now, true);
                        peer->last_ns = now;
                }
                gcra_charge(&peer->tat_ns, now, ETOK_PIN_GUESS_INTERVAL_NSEC);
                gcra_charge(&t->guess_tat_ns, now, ETOK_PIN_GUESS_TOTAL_INTERVAL_NSEC);
                if (t->pin_failures < UINT_MAX)
                        t->pin_failures++;
                etok_stats_login_failure(t->stats);
                if (guard) {
                        if (guard->failures < UINT_MAX)
                                guard->failures++;
                        guard->last_failure_ns = now;
                }
                r = ETOK_ERR(PIN_INCORRECT);
        } else {
                if (guard)
                        guard->failures = 0;
                t->pin_failures = 0;
                r = 0;
        }
        (void) pthread_mutex_unlock(&ks->peers_lock);
        (void) pthread_mutex_unlock(&t->pin_lock);
        return r;
}

uint32_t etok_keystore_pin_status(const struct etok_keystore *ks, const struct etok_token *t,
                                  const struct etok_pin_guard *guard) {
        /* pin_lock, peers_lock and the budgets are the mutable part of a const keystore and token */
        struct etok_keystore *mks = (struct etok_keystore *) ks;
        struct etok_token *m = (struct etok_token *) t;
        const uint64_t peer_tol = (ETOK_PIN_GUESS_BURST - 1) * ETOK_PIN_GUESS_INTERVAL_NSEC;
        struct pin_peer *peer;
        uint32_t st = 0;
        uint64_t now;

        (void) pthread_mutex_lock(&m->pin_lock);
        (void) pthread_mutex_lock(&mks->peers_lock);
        now = ks->clock(ks->clock_userdata);
        peer = peer_budget(mks, m->slot, guard, now, false);
        if (m->pin_failures > 0 || (guard && guard->failures > 0))
                st |= RPC_PIN_COUNT_LOW;
        /* What this caller's next attempt meets: its connection's back-off, its peer's budget, the
         * token's last-resort total. */
        if (guard_backing_off(guard, now) ||
            (peer && !gcra_allowed(peer->tat_ns, now, ETOK_PIN_GUESS_INTERVAL_NSEC, ETOK_PIN_GUESS_BURST)) ||
            !gcra_allowed(m->guess_tat_ns, now, ETOK_PIN_GUESS_TOTAL_INTERVAL_NSEC,
                          ETOK_PIN_GUESS_TOTAL_BURST))
                st |= RPC_PIN_LOCKED;
        else if (m->pin_failures == ETOK_PIN_FREE_FAILURES - 1 ||
                 (guard && guard->failures >= ETOK_PIN_FREE_FAILURES - 1) ||
                 (peer && peer->tat_ns > now &&
                  peer->tat_ns - now > peer_tol - ETOK_PIN_GUESS_INTERVAL_NSEC))
                st |= RPC_PIN_FINAL_TRY; /* the next wrong PIN starts a back-off or empties the budget */
        (void) pthread_mutex_unlock(&mks->peers_lock);
        (void) pthread_mutex_unlock(&m->pin_lock);
        return st;
}

static int validate_add(const struct rpc_token_add_req *req) {
        if (req->label.len == 0 || req->label.len > RPC_LABEL_MAX ||
            memchr(req->label.ptr, 0, req->label.len))
                return -EBADMSG;
        if (req->pin.len < RPC_PIN_MIN || req->pin.len > RPC_PIN_MAX)
                return -EBADMSG;
        if (req->n_keys == 0 || req->n_keys > RPC_MAX_KEYS)
                return -EBADMSG;
        for (size_t i = 0; i < req->n_keys; i++) {
                const struct rpc_add_key *a = &req->keys[i];

                if (a->id > RPC_KEY_ID_MAX || a->label.len == 0 || a->label.len > RPC_KEY_LABEL_MAX)
                        return -EBADMSG;
                for (size_t j = 0; j < i; j++) {
                        const struct rpc_add_key *b = &req->keys[j];

                        if (a->id == b->id)
                                return -EBADMSG;
                        if (a->label.len == b->label.len &&
                            memcmp(a->label.ptr, b->label.ptr, a->label.len) == 0)
                                return -EBADMSG;
                }
        }
        return 0;
}

void etok_token_info(const struct etok_token *t, bool with_keys, enum etok_key_view view,
                     struct rpc_token_info *ret) {
        ret->slot = t->slot;
        ret->label = (struct rpc_slice){ (const uint8_t *) t->label, t->label_len };
        ret->generation = t->generation;
        ret->n_keys_total = (uint32_t) t->n_keys;
        ret->expires = 0; /* DESCRIBE to a version-3 client only: the caller sets it */
        ret->n_keys = with_keys ? t->n_keys : 0;
        for (size_t i = 0; i < ret->n_keys; i++)
                etok_key_info(t->keys[i], view, &ret->keys[i]);
}

/* The TOKEN_OBJECTS answer must fit in one data frame, or the module could never read it. */
static int token_check_objects_size(const struct etok_token *t) {
        _cleanup_free_ struct rpc_token_info *info = NULL;
        _cleanup_free_ uint8_t *buf = NULL;
        struct rpc_writer w;

        info = calloc(1, sizeof(*info));
        buf = malloc(RPC_MAX_BODY_DATA);
        if (!info || !buf)
                return -ENOMEM;
        etok_token_info(t, true, ETOK_KEY_VIEW_OBJECTS, info);
        rpc_writer_init(&w, buf, RPC_MAX_BODY_DATA);
        rpc_token_info_encode(&w, info);
        return rpc_writer_finish(&w) < 0 ? ETOK_ERR(LIMIT) : 0;
}

/* Same public keys in the same order (the caller matched the labels): replaced in place. */
static bool token_same_keys(const struct etok_token *a, const struct etok_token *b) {
        if (a->n_keys != b->n_keys)
                return false;
        for (size_t i = 0; i < a->n_keys; i++)
                if (a->keys[i]->spki_len != b->keys[i]->spki_len ||
                    memcmp(a->keys[i]->spki, b->keys[i]->spki, a->keys[i]->spki_len) != 0)
                        return false;
        return true;
}

static int token_new(const struct rpc_token_add_req *req, struct etok_token **ret, size_t *ret_bad_key) {
        _cleanup_(token_freep) struct etok_token *t = NULL;
        int r;

        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        r = pthread_mutex_init(&t->pin_lock, NULL);
        if (r != 0) {
                free(TAKE_PTR(t));
                return -r;
        }
        memcpy(t->label, req->label.ptr, req->label.len);
        t->label_len = req->label.len;
        r = etok_stats_new(&t->stats);
        if (r < 0)
                return r;

        r = secret_buf_new(RPC_PIN_MAX + RPC_TICKET_LEN, &t->secret);
        if (r < 0)
                return r;
        memcpy(t->secret->data, req->pin.ptr, req->pin.len);
        t->pin_len = req->pin.len;
        t->secret->len = RPC_PIN_MAX + RPC_TICKET_LEN;
        if (RAND_priv_bytes(token_ticket(t), RPC_TICKET_LEN) != 1) {
                ERR_clear_error();
                return -EIO;
        }

        for (size_t i = 0; i < req->n_keys; i++) {
                r = etok_key_new(&req->keys[i], &t->keys[i]);
                if (r < 0) {
                        if (ret_bad_key)
                                *ret_bad_key = i;
                        return r;
                }
                t->n_keys++;
        }
        r = token_check_objects_size(t);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(t);
        return 0;
}

/* Under the write lock, for a new label: the label's hash, probing past the ids of current tokens.
 * Retired versions do not take part: their tickets tell them apart from a current token that gets
 * their slot id. A replaced token keeps its slot id (add_locked). */
static uint32_t pick_slot(struct etok_keystore *ks, const struct etok_token *t) {
        uint32_t slot = etok_slot_hash(t->label, t->label_len);

        while (find_slot(ks, slot))
                slot = (slot + 1) & SLOT_MASK;
        return slot;
}

/* When a version retired now stops answering: after the grace period, never ETOK_HELD. */
static uint64_t grace_end(const struct etok_keystore *ks) {
        uint64_t now = ks->clock(ks->clock_userdata);
        uint64_t end = now > ETOK_HELD - 1 - ks->grace_ns ? ETOK_HELD - 1 : now + ks->grace_ns;

        return end ?: 1;
}

static bool same_label(const struct etok_token *a, const struct etok_token *b) {
        return a->label_len == b->label_len && memcmp(a->label, b->label, a->label_len) == 0;
}

static bool is_held(const struct etok_token *t) {
        return t->retired_until_ns == ETOK_HELD;
}

/* The nth (from 0, oldest first) retired version that is held (or not), of like's label (like NULL:
 * of any label): its index, SIZE_MAX when there is none; *ret_count: how many there are. */
static size_t retired_nth(const struct etok_keystore *ks, const struct etok_token *like, bool held,
                          size_t nth, size_t *ret_count) {
        size_t n = 0, found = SIZE_MAX;

        for (size_t i = 0; i < ks->n_retired; i++) {
                const struct etok_token *r = ks->retired[i];

                if (is_held(r) != held || (like && !same_label(r, like)))
                        continue;
                if (n++ == nth)
                        found = i;
        }
        *ret_count = n;
        return found;
}

/* Can one more version be retired (for a replace with other keys)? The versions in the grace period
 * make room for it; held ones never do. */
static bool retired_has_room(const struct etok_keystore *ks) {
        size_t n;

        return ks->n_retired < ks->max_tokens || retired_nth(ks, NULL, false, 0, &n) != SIZE_MAX;
}

/* Write lock held: makes room for one more retired version of old's label; retired_has_room() said
 * there is. Held versions are never wiped here. At ETOK_RETIRED_PER_LABEL held versions of the label,
 * a new hold releases the second oldest to the grace period: the oldest is the one the web server
 * still uses (a holder releases everything once its server moved, so the versions held after it were
 * replaced before the server ever used them). The versions in the grace period are capped as before:
 * ETOK_RETIRED_PER_LABEL per label and max_tokens retired in all, the oldest wiped early (never the
 * one released here). */
static void retired_make_room(struct etok_keystore *ks, const struct etok_token *old, bool hold) {
        struct etok_token *released = NULL;
        size_t n, i;

        if (hold) {
                i = retired_nth(ks, old, true, 1, &n);
                if (n >= ETOK_RETIRED_PER_LABEL)
                        released = ks->retired[i];
        }
        /* Chosen while the released version still counts as held. */
        i = retired_nth(ks, old, false, 0, &n);
        if (n < ETOK_RETIRED_PER_LABEL || (hold && !released))
                i = ks->n_retired >= ks->max_tokens ? retired_nth(ks, NULL, false, 0, &n) : SIZE_MAX;
        if (released)
                released->retired_until_ns = grace_end(ks);
        if (i != SIZE_MAX)
                token_free(retired_take(ks, i));
}

/* Write lock held: moves a replaced version to the retired list, held or for the grace period, making
 * room under the caps (retired_make_room()). Returns old when it is not kept (the caller frees it). */
static struct etok_token *retire(struct etok_keystore *ks, struct etok_token *old, bool hold) {
        if (ks->grace_ns == 0 && !hold)
                return old;
        retired_make_room(ks, old, hold);
        old->retired_until_ns = hold ? ETOK_HELD : grace_end(ks);
        ks->retired[ks->n_retired++] = old;
        return NULL;
}

static void remove_at(struct etok_keystore *ks, size_t i) {
        memmove(&ks->tokens[i], &ks->tokens[i + 1], (ks->n_tokens - i - 1) * sizeof(*ks->tokens));
        ks->tokens[--ks->n_tokens] = NULL;
}

static void insert_sorted(struct etok_keystore *ks, struct etok_token *t) {
        size_t i = etok_keystore_seek_locked(ks, t->slot);

        memmove(&ks->tokens[i + 1], &ks->tokens[i], (ks->n_tokens - i) * sizeof(*ks->tokens));
        ks->tokens[i] = t;
        ks->n_tokens++;
}

/* Write lock held. On success t is in the table (owned by it) and *ret_old holds a replaced token;
 * returns 1 for a replacement, 0 for a new token. */
static int add_locked(struct etok_keystore *ks, const struct rpc_token_add_req *req, struct etok_token *t,
                      struct etok_token **ret_old) {
        ssize_t i;
        int r;

        (void) expire_locked(ks);
        i = find_label(ks, &req->label);
        if (i >= 0) {
                struct etok_token *old = ks->tokens[i];

                if (!req->replace)
                        return ETOK_ERR(EXISTS);
                r = token_check_pin(ks, old, NULL, &req->pin);
                if (r < 0)
                        return r;
                if ((req->hold || ks->grace_ns > 0) && !token_same_keys(old, t) && !retired_has_room(ks))
                        return ETOK_ERR(LIMIT); /* every retired version is held */
                t->generation = generation_bump(ks);
                /* The counters belong to the label: they go on across its versions. */
                etok_stats_unref(t->stats);
                t->stats = etok_stats_ref(old->stats);
                /* The slot id stays: a process that lists slots once (libp11 0.4.12) finds the new
                 * keys there when it searches objects again (a graceful reload). */
                t->slot = old->slot;
                ks->tokens[i] = t;
                if (token_same_keys(old, t)) {
                        /* Same keys: replaced in place (new PIN, new ticket). */
                        *ret_old = old;
                        return 1;
                }
                /* Other keys: the old version stays for the grace period under the same slot id,
                 * for the holders of its ticket (old workers still signing with the old keys). */
                *ret_old = retire(ks, old, req->hold);
                return 1;
        }
        if (ks->n_tokens >= ks->max_tokens)
                return ETOK_ERR(LIMIT);
        t->slot = pick_slot(ks, t);
        t->generation = generation_bump(ks);
        insert_sorted(ks, t);
        return 0;
}

/* Sets t's expiry ttl_sec from now (0: never) on both clocks. */
static void token_set_expiry(const struct etok_keystore *ks, struct etok_token *t, uint64_t ttl_sec) {
        uint64_t now = ks->clock(ks->clock_userdata), wall = (uint64_t) MAX(time(NULL), (time_t) 0);

        ttl_sec = MIN(ttl_sec, (uint64_t) UINT32_MAX);
        t->expires = ttl_sec ? wall + ttl_sec : 0;
        t->expires_ns = ttl_sec ? now + ttl_sec * NSEC_PER_SEC : 0;
}

int etok_keystore_add(struct etok_keystore *ks, const struct rpc_token_add_req *req, uint32_t *ret_slot) {
        return etok_keystore_add_ttl(ks, req, 0, ret_slot, NULL, NULL);
}

int etok_keystore_add_ttl(struct etok_keystore *ks, const struct rpc_token_add_req *req, uint64_t ttl_sec,
                          uint32_t *ret_slot, uint64_t *ret_expires, size_t *ret_bad_key) {
        _cleanup_(token_freep) struct etok_token *t = NULL, *old = NULL;
        uint64_t expires;
        uint32_t slot;
        int r;

        r = validate_add(req);
        if (r < 0)
                return r;
        /* Parsing RSA keys takes milliseconds: do it before taking the write lock. */
        r = token_new(req, &t, ret_bad_key);
        if (r < 0)
                return r;
        token_set_expiry(ks, t, ttl_sec);
        expires = t->expires;
        (void) pthread_rwlock_wrlock(&ks->lock);
        r = add_locked(ks, req, t, &old);
        slot = t->slot;
        if (r >= 0)
                t = NULL; /* the table owns it now */
        (void) pthread_rwlock_unlock(&ks->lock);
        if (r < 0)
                return r;
        *ret_slot = slot;
        if (ret_expires)
                *ret_expires = expires;
        return r; /* a replaced token is wiped and freed here, outside the lock */
}

int etok_keystore_check_pin(struct etok_keystore *ks, const struct rpc_slice *label,
                            const struct rpc_slice *pin) {
        ssize_t i;
        int r;

        (void) pthread_rwlock_rdlock(&ks->lock);
        i = find_label(ks, label);
        r = i < 0 ? ETOK_ERR(NO_SUCH_TOKEN) : token_check_pin(ks, ks->tokens[i], NULL, pin);
        (void) pthread_rwlock_unlock(&ks->lock);
        return r;
}

static const struct etok_key *token_find_key(const struct etok_token *t, uint32_t id);

/* Lock held: t holds exactly these keys (see etok_keystore_refresh()). */
static int token_check_keys(const struct etok_token *t, const uint32_t *ids, EVP_PKEY *const *pkeys,
                            size_t n, size_t *ret_bad_key) {
        if (n != t->n_keys) {
                *ret_bad_key = SIZE_MAX;
                return ETOK_ERR(KEY_INVALID);
        }
        for (size_t i = 0; i < n; i++) {
                const struct etok_key *k = token_find_key(t, ids[i]);

                *ret_bad_key = i;
                for (size_t j = 0; j < i; j++)
                        if (ids[j] == ids[i])
                                return -EBADMSG;
                if (!k)
                        return ETOK_ERR(NO_SUCH_KEY);
                if (EVP_PKEY_eq(k->pkey, pkeys[i]) != 1) {
                        ERR_clear_error();
                        return ETOK_ERR(KEY_INVALID);
                }
        }
        return 0;
}

int etok_keystore_refresh(struct etok_keystore *ks, const struct rpc_slice *label,
                          const struct rpc_slice *pin, const uint32_t *ids, EVP_PKEY *const *pkeys, size_t n,
                          uint64_t ttl_sec, uint64_t *ret_expires, size_t *ret_bad_key) {
        size_t bad = SIZE_MAX;
        uint64_t expires = 0;
        ssize_t i;
        int r;

        if (ttl_sec == 0)
                return -EINVAL;
        (void) pthread_rwlock_wrlock(&ks->lock);
        (void) expire_locked(ks);
        i = find_label(ks, label);
        if (i < 0)
                r = ETOK_ERR(NO_SUCH_TOKEN);
        else
                r = token_check_pin(ks, ks->tokens[i], NULL, pin);
        if (r >= 0)
                r = token_check_keys(ks->tokens[i], ids, pkeys, n, &bad);
        if (r >= 0) {
                token_set_expiry(ks, ks->tokens[i], ttl_sec);
                expires = ks->tokens[i]->expires;
        }
        (void) pthread_rwlock_unlock(&ks->lock);
        if (r < 0) {
                if (ret_bad_key)
                        *ret_bad_key = bad;
                return r;
        }
        *ret_expires = expires;
        return 0;
}

/* Write lock held: the held versions of t's label start their grace period now. Returns how many. */
static size_t release_locked(struct etok_keystore *ks, const struct etok_token *t) {
        size_t n = 0;

        for (size_t i = 0; i < ks->n_retired; i++)
                if (is_held(ks->retired[i]) && same_label(ks->retired[i], t)) {
                        ks->retired[i]->retired_until_ns = grace_end(ks);
                        n++;
                }
        return n;
}

int etok_keystore_release(struct etok_keystore *ks, const struct rpc_token_release_req *req) {
        size_t n = 0;
        ssize_t i;
        int r;

        (void) pthread_rwlock_wrlock(&ks->lock);
        (void) expire_locked(ks);
        i = find_label(ks, &req->label);
        if (i < 0)
                r = ETOK_ERR(NO_SUCH_TOKEN);
        else
                r = token_check_pin(ks, ks->tokens[i], NULL, &req->pin);
        if (r >= 0) {
                n = release_locked(ks, ks->tokens[i]);
                (void) expire_locked(ks); /* no grace period: wiped now */
        }
        (void) pthread_rwlock_unlock(&ks->lock);
        return r < 0 ? r : (int) MIN(n, (size_t) INT_MAX);
}

size_t etok_keystore_held_count(struct etok_keystore *ks, const struct rpc_slice *label) {
        size_t n = 0;

        (void) pthread_rwlock_rdlock(&ks->lock);
        for (size_t i = 0; i < ks->n_retired; i++) {
                const struct etok_token *r = ks->retired[i];

                if (is_held(r) && (!label || (r->label_len == label->len &&
                                              memcmp(r->label, label->ptr, label->len) == 0)))
                        n++;
        }
        (void) pthread_rwlock_unlock(&ks->lock);
        return n;
}

int etok_keystore_remove(struct etok_keystore *ks, const struct rpc_token_remove_req *req) {
        _cleanup_(token_freep) struct etok_token *old = NULL;
        ssize_t i;
        int r;

        (void) pthread_rwlock_wrlock(&ks->lock);
        (void) expire_locked(ks);
        i = find_label(ks, &req->label);
        if (i < 0)
                r = ETOK_ERR(NO_SUCH_TOKEN);
        else
                r = token_check_pin(ks, ks->tokens[i], NULL, &req->pin);
        if (r >= 0) {
                /* Only the current version: retired ones run out their grace period (docs/protocol.md),
                 * held ones from now on (no TOKEN_RELEASE could name them any more). */
                old = ks->tokens[i];
                (void) release_locked(ks, old);
                remove_at(ks, (size_t) i);
                (void) generation_bump(ks);
        }
        (void) pthread_rwlock_unlock(&ks->lock);
        return r;
}

int etok_keystore_login(struct etok_keystore *ks, uint32_t slot, const struct rpc_slice *pin,
                        uint8_t ret_ticket[static RPC_TICKET_LEN]) {
        return etok_keystore_login_conn(ks, NULL, slot, pin, ret_ticket);
}

int etok_keystore_login_conn(struct etok_keystore *ks, struct etok_pin_guard *guard, uint32_t slot,
                             const struct rpc_slice *pin, uint8_t ret_ticket[static RPC_TICKET_LEN]) {
        struct etok_token *t;
        int r;

        (void) pthread_rwlock_rdlock(&ks->lock);
        t = find_slot(ks, slot); /* always the current version */
        if (!t) {
                r = ETOK_ERR(NO_SUCH_TOKEN);
                etok_stats_error(&ks->stats, RPC_STATUS_NO_SUCH_TOKEN);
        } else
                r = token_check_pin(ks, t, guard, pin);
        if (r >= 0)
                memcpy(ret_ticket, token_ticket(t), RPC_TICKET_LEN);
        (void) pthread_rwlock_unlock(&ks->lock);
        return r;
}

static const struct etok_key *token_find_key(const struct etok_token *t, uint32_t id) {
        for (size_t i = 0; i < t->n_keys; i++)
                if (t->keys[i]->id == id)
                        return t->keys[i];
        return NULL;
}

/* The newest unexpired retired version of this slot that holds key_id, or NULL. */
static const struct etok_key *retired_key(const struct etok_keystore *ks, uint32_t slot, uint32_t key_id) {
        uint64_t now = ks->n_retired ? ks->clock(ks->clock_userdata) : 0;

        for (size_t i = ks->n_retired; i > 0; i--) {
                const struct etok_token *r = ks->retired[i - 1];
                const struct etok_key *k;

                if (r->slot != slot || now >= r->retired_until_ns)
                        continue;
                k = token_find_key(r, key_id);
                if (k)
                        return k;
        }
        return NULL;
}

/* Read lock held: readers sign in parallel; EVP_PKEY is safe for concurrent use. *ret_stats: the
 * counters of the token the request reached (the keystore's when none). */
static int crypt_locked(struct etok_keystore *ks, bool decrypt, const struct rpc_crypto_req *req,
                        uint8_t *out, size_t size, size_t *ret_len, struct etok_stats **ret_stats) {
        const struct etok_token *t = NULL;
        const struct etok_key *k;
        uint64_t start;
        int r;

        r = find_version(ks, req->slot, &req->ticket, &t);
        if (r < 0) {
                /* NOT_LOGGED_IN counts against the slot's current token (a retired version shares its
                 * counters), NO_SUCH_TOKEN against the keystore's. */
                const struct etok_token *cur = find_slot(ks, req->slot);

                *ret_stats = cur ? cur->stats : &ks->stats;
                return r;
        }
        *ret_stats = t->stats;
        k = token_find_key(t, req->key_id);
        if (!k && r == 0)
                /* The current ticket with a key id only a retired version has: a worker forked before
                 * the rotation that logged in only after it (libp11 re-initialises a child lazily, on
                 * its first handshake) still presents the old certificate: the old key signs for it
                 * until the grace period ends. Same token, same PIN: the ticket proves the login. */
                k = retired_key(ks, req->slot, req->key_id);
        if (!k)
                /* A retired version's ticket with a key id only a newer version has: a process that
                 * re-read the objects but not its login (a reloaded master signing itself). NOT_LOGGED_IN
                 * makes the module log in again (the current version) and retry. */
                return r > 0 ? ETOK_ERR(NOT_LOGGED_IN) : ETOK_ERR(NO_SUCH_KEY);
        start = etok_stats_now_ns();
        r = decrypt ? etok_key_decrypt(k, req, out, size, ret_len)
                    : etok_key_sign(k, req, out, size, ret_len);
        if (r >= 0)
                etok_stats_op(t->stats, req->key_id, (enum rpc_mech) MIN(req->mech, (uint32_t) INT_MAX),
                              etok_stats_now_ns() - start);
        return r;
}

int etok_keystore_crypt(struct etok_keystore *ks, bool decrypt, const struct rpc_crypto_req *req,
                        uint8_t *out, size_t size, size_t *ret_len) {
        struct etok_stats *stats = NULL;
        int r;

        (void) pthread_rwlock_rdlock(&ks->lock);
        r = crypt_locked(ks, decrypt, req, out, size, ret_len, &stats);
        if (r < 0)
                etok_stats_error(stats, errmap_status_from_errno(r));
        (void) pthread_rwlock_unlock(&ks->lock);
        return r;
}
