/* The fake KMS's statistics: counters under one lock, written as JSON after every change. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "common/json.h"
#include "common/log.h"
#include "tests/fakes/fake-kms-stats.h"
#include "tests/fakes/fake-kms-util.h"

#define FKMS_DOCS_MAX (256u * 1024u) /* distinct documents remembered */
#define FKMS_OUTCOMES 32u

static const char *const op_names[_FKMS_OP_MAX] = { "Decrypt", "GenerateRandom", "other" };

static struct {
        pthread_mutex_t lock;
        const char *path;
        uint64_t connections, handshakes, handshake_failures, refused_connections, requests;
        unsigned active;
        uint64_t ops[_FKMS_OP_MAX];
        struct {
                const char *name; /* static */
                uint64_t count;
        } outcomes[FKMS_OUTCOMES];
        uint8_t (*docs)[SHA256_DIGEST_LENGTH];
        size_t n_docs, docs_cap;
        bool docs_overflow;
} stats = { .lock = PTHREAD_MUTEX_INITIALIZER };

const char *fkms_op_to_string(enum fkms_op op) {
        return (int) op >= 0 && op < _FKMS_OP_MAX ? op_names[op] : NULL;
}

/* Called with stats.lock held. */
static void write_locked(void) {
        _cleanup_(json_writer_done) struct json_writer w;
        _cleanup_free_ char *out = NULL;
        size_t len;
        int r;

        json_writer_init(&w, false);
        if (!stats.path)
                return;
        json_begin_object(&w, NULL);
        json_uint(&w, "connections", stats.connections);
        json_uint(&w, "handshakes", stats.handshakes);
        json_uint(&w, "handshake_failures", stats.handshake_failures);
        json_uint(&w, "refused_connections", stats.refused_connections);
        json_uint(&w, "active_connections", stats.active);
        json_uint(&w, "requests", stats.requests);
        json_begin_object(&w, "operations");
        for (size_t i = 0; i < _FKMS_OP_MAX; i++)
                json_uint(&w, op_names[i], stats.ops[i]);
        json_end_object(&w);
        json_begin_object(&w, "outcomes");
        for (size_t i = 0; i < FKMS_OUTCOMES && stats.outcomes[i].name; i++)
                json_uint(&w, stats.outcomes[i].name, stats.outcomes[i].count);
        json_end_object(&w);
        json_uint(&w, "documents", stats.n_docs);
        json_bool(&w, "documents_overflow", stats.docs_overflow);
        json_end_object(&w);
        r = json_writer_finish(&w, &out, &len);
        if (r >= 0)
                r = fkms_write_atomic(stats.path, out, len, 0644);
        if (r < 0)
                log_warning_errno(r, "Failed to write the statistics to '%s', ignoring: %m", stats.path);
}

void fkms_stats_init(const char *path) {
        pthread_mutex_lock(&stats.lock);
        stats.path = path;
        write_locked();
        pthread_mutex_unlock(&stats.lock);
}

void fkms_stats_connection(enum fkms_conn_event ev) {
        pthread_mutex_lock(&stats.lock);
        switch (ev) {
        case FKMS_CONN_ACCEPTED:
                stats.connections++;
                stats.active++;
                break;
        case FKMS_CONN_HANDSHAKE: stats.handshakes++; break;
        case FKMS_CONN_HANDSHAKE_FAILED: stats.handshake_failures++; break;
        case FKMS_CONN_CLOSED: stats.active--; break;
        case FKMS_CONN_REFUSED:
                stats.connections++;
                stats.refused_connections++;
                break;
        default: break;
        }
        write_locked();
        pthread_mutex_unlock(&stats.lock);
}

/* Remembers a document by its digest (called with the lock held). */
static void document_locked(const uint8_t *doc, size_t len) {
        uint8_t md[SHA256_DIGEST_LENGTH];

        SHA256(doc, len, md);
        for (size_t i = 0; i < stats.n_docs; i++)
                if (memcmp(stats.docs[i], md, sizeof(md)) == 0)
                        return;
        if (stats.n_docs == stats.docs_cap) {
                size_t cap = stats.docs_cap ? stats.docs_cap * 2 : 64;
                void *p;
                if (cap > FKMS_DOCS_MAX || !(p = realloc(stats.docs, cap * sizeof(*stats.docs)))) {
                        stats.docs_overflow = true;
                        return;
                }
                stats.docs = p;
                stats.docs_cap = cap;
        }
        memcpy(stats.docs[stats.n_docs++], md, sizeof(md));
}

void fkms_stats_request(enum fkms_op op, const char *outcome, const uint8_t *doc, size_t doc_len) {
        size_t i;

        pthread_mutex_lock(&stats.lock);
        stats.requests++;
        if ((int) op >= 0 && op < _FKMS_OP_MAX)
                stats.ops[op]++;
        for (i = 0; i < FKMS_OUTCOMES && stats.outcomes[i].name; i++)
                if (!strcmp(stats.outcomes[i].name, outcome))
                        break;
        if (i < FKMS_OUTCOMES) {
                stats.outcomes[i].name = outcome;
                stats.outcomes[i].count++;
        }
        if (doc)
                document_locked(doc, doc_len);
        write_locked();
        pthread_mutex_unlock(&stats.lock);
}

unsigned fkms_stats_active(void) {
        unsigned n;

        pthread_mutex_lock(&stats.lock);
        n = stats.active;
        pthread_mutex_unlock(&stats.lock);
        return n;
}
