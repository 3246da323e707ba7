/* The cached token list (one slot per token) with each token's objects and login state.
 *
 * A token that drops out of TOKEN_LIST while sessions are open on it (removed, or a slot id that
 * went away) is not dropped here: it moves to the "gone" list, is no longer listed by
 * C_GetSlotList, and keeps its objects, login and sessions until they close or the daemon says
 * NO_SUCH_TOKEN. (A key rotation keeps the slot id: the daemon picks the version by ticket.) */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/time-util.h"
#include "p11module/debug.h"
#include "p11module/module.h"
#include "p11module/remote.h"
#include "p11module/sessions.h"
#include "p11module/tokens.h"

#define REFRESH_BACKOFF_MS 1000

static struct {
        struct p11_token **v; /* sorted by slot id */
        size_t n;
        struct p11_token **gone; /* no longer listed, sessions still open; unsorted, few */
        size_t n_gone;
        bool loaded;
        uint64_t generation;
        int failed; /* negative errno of the last failed refresh, 0 after a success */
        uint64_t failed_at_ms;
        uint32_t *seen; /* every slot id listed since C_Initialize, sorted: see p11_tokens_seen() */
        size_t n_seen;
} tokens;

#define SEEN_MAX 65536

/* Remember a listed slot id (best effort: a full or failed table only loses the leniency). */
static void seen_add(uint32_t slot) {
        size_t lo = 0, hi = tokens.n_seen;
        uint32_t *v;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (tokens.seen[mid] == slot)
                        return;
                if (tokens.seen[mid] < slot)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        if (tokens.n_seen >= SEEN_MAX)
                return;
        v = realloc(tokens.seen, (tokens.n_seen + 1) * sizeof(*v));
        if (!v)
                return;
        memmove(v + lo + 1, v + lo, (tokens.n_seen - lo) * sizeof(*v));
        v[lo] = slot;
        tokens.seen = v;
        tokens.n_seen++;
}

bool p11_tokens_seen(CK_SLOT_ID slot) {
        size_t lo = 0, hi;
        bool found = false;

        p11_state_lock();
        hi = tokens.n_seen;
        while (slot <= UINT32_MAX && lo < hi && !found) {
                size_t mid = lo + (hi - lo) / 2;
                if (tokens.seen[mid] == slot)
                        found = true;
                else if (tokens.seen[mid] < slot)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        p11_state_unlock();
        return found;
}

static void prev_drop(struct p11_token *t) {
        t->prev_objects = p11_objects_free(t->prev_objects);
        secret_wipe(t->prev_ticket, sizeof(t->prev_ticket));
        t->prev_logged_in = false;
}

static struct p11_token *token_free(struct p11_token *t) {
        if (!t)
                return NULL;
        secret_buf_free(t->pin);
        secret_wipe(t->ticket, sizeof(t->ticket));
        p11_objects_free(t->objects);
        prev_drop(t);
        free(t);
        return NULL;
}

static int slot_cmp(const void *a, const void *b) {
        uint32_t x = *(const uint32_t *) a, y = (*(struct p11_token *const *) b)->slot;

        return x < y ? -1 : x > y;
}

struct p11_token *p11_tokens_find(uint32_t slot) {
        struct p11_token **t;

        if (tokens.n > 0) {
                t = bsearch(&slot, tokens.v, tokens.n, sizeof(*tokens.v), slot_cmp);
                if (t)
                        return *t;
        }
        for (size_t i = 0; i < tokens.n_gone; i++)
                if (tokens.gone[i]->slot == slot)
                        return tokens.gone[i];
        return NULL;
}

void p11_tokens_release_gone(uint32_t slot) {
        for (size_t i = 0; i < tokens.n_gone; i++)
                if (tokens.gone[i]->slot == slot) {
                        p11_debug(P11_DEBUG_SLOT, "slot %u: last session closed, token forgotten", slot);
                        token_free(tokens.gone[i]);
                        tokens.gone[i] = tokens.gone[--tokens.n_gone];
                        return;
                }
}

size_t p11_tokens_count(void) {
        return tokens.n;
}

struct p11_token *p11_tokens_at(size_t i) {
        return i < tokens.n ? tokens.v[i] : NULL;
}

void p11_token_logout(struct p11_token *t) {
        if (!t)
                return;
        t->pin = secret_buf_free(t->pin);
        secret_wipe(t->ticket, sizeof(t->ticket));
        prev_drop(t);
        if (t->logged_in)
                p11_debug(P11_DEBUG_SESSION, "slot %u: logged out", t->slot);
        t->logged_in = false;
        t->login_seq++;
}

static void tokens_free_all(void) {
        for (size_t i = 0; i < tokens.n; i++)
                token_free(tokens.v[i]);
        for (size_t i = 0; i < tokens.n_gone; i++)
                token_free(tokens.gone[i]);
        free(tokens.v);
        free(tokens.gone);
        free(tokens.seen);
        tokens.seen = NULL;
        tokens.n_seen = 0;
        tokens.v = NULL;
        tokens.n = 0;
        tokens.gone = NULL;
        tokens.n_gone = 0;
        tokens.loaded = false;
        tokens.failed = 0;
}

void p11_tokens_done(void) {
        tokens_free_all();
}

void p11_tokens_forked(void) {
        tokens_free_all();
}

static int summary_cmp(const void *a, const void *b) {
        uint32_t x = ((const struct p11_token_summary *) a)->slot,
                 y = ((const struct p11_token_summary *) b)->slot;

        return x < y ? -1 : x > y;
}

static void token_update(struct p11_token *t, const struct p11_token_summary *s) {
        t->slot = s->slot;
        memcpy(t->label, s->label, s->label_len);
        t->label[s->label_len] = '\0';
        t->label_len = s->label_len;
        /* The enclave's count as it is now: another process's wrong PINs (or a lock-out that ended)
         * show in C_GetTokenInfo without waiting for this process to read the objects again. */
        t->pin_status = s->pin_status;
        if (t->generation != s->generation) {
                /* Keys replaced: objects are re-read on next use; the login survives (the next
                 * SIGN re-authenticates with the cached PIN if the ticket went stale). The old
                 * objects and the ticket stay for handles a session still signs with. */
                if (t->objects) {
                        prev_drop(t);
                        t->prev_objects = TAKE_PTR(t->objects);
                        t->prev_logged_in = t->logged_in;
                        if (t->logged_in)
                                memcpy(t->prev_ticket, t->ticket, RPC_TICKET_LEN);
                }
                t->generation = s->generation;
        }
}

/* Replaces the table by the summaries (sorted, deduplicated), keeping what still applies. On failure
 * the old table is left untouched. */
static int tokens_merge(const struct p11_token_summary *s, size_t n) {
        struct p11_token **v = calloc(n ? n : 1, sizeof(*v));
        struct p11_token **gone = calloc(tokens.n_gone + tokens.n + 1, sizeof(*gone));
        size_t n_gone = 0;

        if (!v || !gone) {
                free(v);
                free(gone);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                v[i] = p11_tokens_find(s[i].slot);
                if (v[i]) {
                        v[i]->keep = true;
                        continue;
                }
                v[i] = calloc(1, sizeof(**v));
                if (!v[i]) {
                        for (size_t j = 0; j < i; j++)
                                if (v[j]->keep)
                                        v[j]->keep = false;
                                else
                                        token_free(v[j]);
                        free(v);
                        free(gone);
                        return -ENOMEM;
                }
                v[i]->generation = s[i].generation;
        }
        for (size_t i = 0; i < tokens.n_gone; i++) {
                struct p11_token *t = tokens.gone[i];

                if (t->keep)
                        t->keep = false; /* listed again */
                else
                        gone[n_gone++] = t;
        }
        for (size_t i = 0; i < tokens.n; i++) {
                struct p11_token *t = tokens.v[i];
                CK_ULONG all, rw;

                if (t->keep) {
                        t->keep = false;
                        continue;
                }
                /* No longer listed. With sessions open it may be a retired version the daemon still
                 * answers for: keep it until they close or the daemon says NO_SUCH_TOKEN. */
                p11_sessions_count(t->slot, &all, &rw);
                if (all > 0) {
                        p11_debug(P11_DEBUG_SLOT, "slot %u: no longer listed, kept for %lu open session(s)",
                                  t->slot, (unsigned long) all);
                        gone[n_gone++] = t;
                        continue;
                }
                p11_debug(P11_DEBUG_SLOT, "slot %u: token removed", t->slot);
                p11_sessions_drop_slot(t->slot);
                token_free(t);
        }
        for (size_t i = 0; i < n; i++) {
                token_update(v[i], &s[i]);
                seen_add(v[i]->slot);
        }
        free(tokens.v);
        tokens.v = v;
        tokens.n = n;
        free(tokens.gone);
        tokens.gone = gone;
        tokens.n_gone = n_gone;
        return 0;
}

static size_t summaries_normalise(struct p11_token_summary *s, size_t n) {
        size_t m = 0;

        if (n == 0)
                return 0;
        qsort(s, n, sizeof(*s), summary_cmp);
        for (size_t i = 0; i < n; i++)
                if (m == 0 || s[m - 1].slot != s[i].slot)
                        s[m++] = s[i];
        return m;
}

/* The last failure while it is recent, else 0. */
static int backoff_active(void) {
        if (!tokens.failed)
                return 0;
        return mono_msec() - tokens.failed_at_ms < REFRESH_BACKOFF_MS ? tokens.failed : 0;
}

static int refresh_apply(int r, struct p11_token_summary *s, size_t n, uint64_t generation) {
        if (!p11_mod.initialized)
                return -ENXIO;
        if (r < 0) {
                tokens.failed = r;
                tokens.failed_at_ms = mono_msec();
                return r;
        }
        tokens.failed = 0;
        if (tokens.loaded && tokens.generation == generation)
                return 0;
        r = tokens_merge(s, summaries_normalise(s, n));
        if (r < 0)
                return r;
        tokens.loaded = true;
        tokens.generation = generation;
        p11_debug(P11_DEBUG_SLOT, "%zu token(s), generation %llu", tokens.n,
                  (unsigned long long) generation);
        return 0;
}

int p11_tokens_refresh(void) {
        struct p11_token_summary *s = NULL;
        uint64_t generation = 0;
        size_t n = 0;
        int r;

        p11_state_lock();
        r = backoff_active();
        p11_state_unlock();
        if (r < 0)
                return r;

        r = p11_remote_token_list(&s, &n, &generation);
        p11_state_lock();
        r = refresh_apply(r, s, n, generation);
        p11_state_unlock();
        free(s);
        return r;
}

int p11_tokens_load_objects(uint32_t slot) {
        struct p11_objects *o = NULL;
        struct p11_token *t;
        bool cached;
        int r;

        p11_state_lock();
        t = p11_tokens_find(slot);
        cached = t && t->objects;
        p11_state_unlock();
        if (!t)
                return -ENODEV;
        if (cached)
                return 0;

        r = p11_remote_token_objects(slot, &o);
        if (r < 0)
                return r;
        p11_state_lock();
        t = p11_mod.initialized ? p11_tokens_find(slot) : NULL;
        if (t && !t->objects) {
                p11_debug(P11_DEBUG_OBJECT, "slot %u: %zu key(s) cached", slot, o->n_keys);
                t->pin_status = o->pin_status;
                t->objects = TAKE_PTR(o);
                t->generation = t->objects->generation;
        }
        p11_state_unlock();
        p11_objects_free(o);
        return t ? 0 : -ENODEV;
}

CK_RV p11_tokens_with_objects(uint32_t slot, p11_token_fn fn, void *userdata, CK_RV absent) {
        for (int attempt = 0; attempt < 2; attempt++) {
                const struct p11_token *t;
                CK_RV rv = absent;
                bool found, cached;
                int r;

                p11_state_lock();
                t = p11_tokens_find(slot);
                found = t;
                cached = t && t->objects;
                if (cached)
                        rv = fn(t, userdata);
                p11_state_unlock();
                if (!found || cached)
                        return rv;
                r = p11_tokens_load_objects(slot); /* dropped after a key change: read again */
                if (r == -ENODEV)
                        return absent;
                if (r < 0)
                        return p11_ckr(r);
        }
        return absent;
}

void p11_tokens_pin_failed(uint32_t slot, bool refused) {
        struct p11_token *t;

        p11_tokens_forget_objects(slot);
        if (p11_tokens_load_objects(slot) < 0) /* best effort: the flags below are certain anyway */
                p11_debug(P11_DEBUG_SLOT, "slot %u: objects not read after a failed login", slot);
        p11_state_lock();
        t = p11_tokens_find(slot);
        if (t)
                t->pin_status |= RPC_PIN_COUNT_LOW | (refused ? RPC_PIN_LOCKED : 0);
        p11_state_unlock();
}

void p11_tokens_forget_prev(uint32_t slot) {
        struct p11_token *t;

        p11_state_lock();
        t = p11_tokens_find(slot);
        if (t)
                prev_drop(t);
        p11_state_unlock();
}

int p11_tokens_prev_ticket(uint32_t slot, uint8_t ret_ticket[static RPC_TICKET_LEN]) {
        const struct p11_token *t;
        int r = -EPERM;

        p11_state_lock();
        t = p11_tokens_find(slot);
        if (t && t->logged_in && t->prev_logged_in) {
                memcpy(ret_ticket, t->prev_ticket, RPC_TICKET_LEN);
                r = 0;
        }
        p11_state_unlock();
        return r;
}

void p11_tokens_forget_objects(uint32_t slot) {
        struct p11_token *t;

        p11_state_lock();
        t = p11_tokens_find(slot);
        if (t)
                t->objects = p11_objects_free(t->objects);
        p11_state_unlock();
}

static bool slot_known(CK_SLOT_ID slot) {
        bool found;

        p11_state_lock();
        found = slot <= UINT32_MAX && p11_tokens_find((uint32_t) slot);
        p11_state_unlock();
        return found;
}

/* A slot id the list does not show may still be answered by the daemon: a retired token version
 * during its grace period. That is how a process forked before a key rotation, which re-initialises
 * afterwards (libp11 does so lazily, on the first use in an nginx worker), reopens its session on
 * the slot it inherited. If TOKEN_OBJECTS answers, the token is kept as an unlisted one. */
static int tokens_adopt(uint32_t slot) {
        struct p11_objects *o = NULL;
        struct p11_token **g, *t;
        int r;

        r = p11_remote_token_objects(slot, &o);
        if (r < 0)
                return r;
        p11_state_lock();
        if (!p11_mod.initialized)
                r = -ENXIO;
        else if (!p11_tokens_find(slot)) {
                g = realloc(tokens.gone, (tokens.n_gone + 1) * sizeof(*g));
                t = g ? calloc(1, sizeof(*t)) : NULL;
                if (g)
                        tokens.gone = g;
                if (!t)
                        r = -ENOMEM;
                else {
                        t->slot = slot;
                        memcpy(t->label, o->label, o->label_len);
                        t->label_len = o->label_len;
                        t->generation = o->generation;
                        t->objects = TAKE_PTR(o);
                        tokens.gone[tokens.n_gone++] = t;
                        p11_debug(P11_DEBUG_SLOT,
                                  "slot %u: not listed but answered (a retired version), kept", slot);
                }
        }
        p11_state_unlock();
        p11_objects_free(o);
        return r;
}

CK_RV p11_tokens_check_slot(CK_SLOT_ID slot) {
        int r;

        if (slot_known(slot))
                return CKR_OK;
        r = p11_tokens_refresh();
        if (slot_known(slot))
                return CKR_OK;
        if (r >= 0 && slot <= UINT32_MAX) {
                r = tokens_adopt((uint32_t) slot);
                if (r == -ENODEV)
                        return CKR_SLOT_ID_INVALID;
                if (r >= 0 && slot_known(slot))
                        return CKR_OK;
        }
        return r < 0 ? p11_ckr(r) : CKR_SLOT_ID_INVALID;
}
