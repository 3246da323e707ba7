/* agent_token_step() rotating a File source's key while its nginx stanza target fails: a target that
 * cannot be written stops the rotation before the TOKEN_ADD replace (the version the server uses stays
 * current), and a target that fails after the replace is retried without sending the replace again;
 * the replace holds the replaced version and TOKEN_RELEASE comes only after an apply that passed the
 * config test and reloaded, also from an agent that restarted meanwhile. Against an in-test control
 * server thread (HELLO, TOKEN_ADD, TOKEN_RELEASE, keeping a held count as enclave-token does) and a
 * stand-in `nginx` whose config test or reload fails while a flag file exists. */
#include <errno.h>
#include <ftw.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/launcher/launcher.h"
#include "agent/token.h"
#include "common/rpc-codec.h"
#include "common/rpc-frame.h"
#include "common/transport.h"
#include "tests/lib/tap.h"

static char dir[64];

/* ---- the control server: counts the TOKEN_ADDs and remembers the last one's key ids ---- */

struct server {
        struct transport_addr addr;
        int lfd;
        pthread_t thread;
        bool started;
        volatile bool stop;
        pthread_mutex_t lock;
        unsigned n_adds;
        size_t last_n_keys;
        uint32_t last_ids[RPC_MAX_KEYS];
        bool last_replace;
        bool last_hold;
        uint8_t cur_key[64]; /* the start of the current version's key PEM: "same keys" */
        unsigned held;       /* versions replaced with hold and not released */
        unsigned n_releases;
        unsigned refuse_releases; /* answer that many TOKEN_RELEASEs PIN_LOCKED (a PIN back-off) */
        uint32_t version;         /* HELLO answers it (0: RPC_VERSION_MAX) */
};

static int reply(int fd, const struct rpc_header *req, uint8_t status, const uint8_t *body, size_t len) {
        static uint8_t frame[RPC_HEADER_SIZE + 256];
        struct rpc_header h = { .magic = RPC_MAGIC,
                                .version = req->version,
                                .kind = RPC_KIND_RESPONSE,
                                .call = req->call,
                                .status = status,
                                .request_id = req->request_id,
                                .body_len = (uint32_t) len };

        rpc_header_encode(&h, frame);
        if (len > 0) /* an error answer has no body: memcpy() from NULL is undefined even for 0 bytes */
                memcpy(frame + RPC_HEADER_SIZE, body, len);
        return transport_send_all(fd, frame, RPC_HEADER_SIZE + len, 5000);
}

static int serve_one(struct server *s, int fd, const struct rpc_header *h, const uint8_t *body) {
        uint8_t out[256];
        struct rpc_writer w;

        rpc_writer_init(&w, out, sizeof(out));
        if (h->call == RPC_CALL_HELLO)
                rpc_hello_resp_encode(&w,
                                      &(struct rpc_hello_resp){ .version = s->version ?: RPC_VERSION_MAX,
                                                                .generation = 1,
                                                                .server = { (const uint8_t *) "fake", 4 },
                                                                .max_tokens = 16 });
        else if (h->call == RPC_CALL_TOKEN_ADD) {
                static struct rpc_token_add_req req;
                uint8_t key[sizeof(s->cur_key)] = {};

                if (rpc_token_add_req_decode(body, h->body_len, &req) < 0 || (s->version == 1 && req.hold))
                        return reply(fd, h, RPC_STATUS_MALFORMED, NULL, 0); /* version 1: unknown key */
                /* PKCS#8 PEMs of different keys differ early: 64 bytes tell them apart. */
                memcpy(key, req.keys[0].key_pem.ptr, MIN(req.keys[0].key_pem.len, sizeof(key)));
                (void) pthread_mutex_lock(&s->lock);
                s->n_adds++;
                s->last_n_keys = req.n_keys;
                s->last_replace = req.replace;
                s->last_hold = req.hold;
                for (size_t i = 0; i < req.n_keys; i++)
                        s->last_ids[i] = req.keys[i].id;
                if (req.replace && req.hold && s->cur_key[0] && memcmp(key, s->cur_key, sizeof(key)) != 0)
                        s->held++;
                memcpy(s->cur_key, key, sizeof(key));
                rpc_token_add_resp_encode(&w, &(struct rpc_token_add_resp){ .slot = 7, .held = s->held });
                (void) pthread_mutex_unlock(&s->lock);
        } else if (h->call == RPC_CALL_TOKEN_RELEASE) {
                struct rpc_token_release_req req;

                if (rpc_token_release_req_decode(body, h->body_len, &req) < 0)
                        return reply(fd, h, RPC_STATUS_MALFORMED, NULL, 0);
                (void) pthread_mutex_lock(&s->lock);
                if (s->refuse_releases > 0) {
                        s->refuse_releases--;
                        (void) pthread_mutex_unlock(&s->lock);
                        return reply(fd, h, RPC_STATUS_PIN_LOCKED, NULL, 0);
                }
                s->n_releases++;
                rpc_token_release_resp_encode(&w, &(struct rpc_token_release_resp){ .released = s->held });
                s->held = 0;
                (void) pthread_mutex_unlock(&s->lock);
        } else
                return reply(fd, h, RPC_STATUS_MALFORMED, NULL, 0);
        if (rpc_writer_finish(&w) < 0)
                return -EIO;
        return reply(fd, h, RPC_STATUS_OK, out, w.len);
}

static void serve_connection(struct server *s, int fd) {
        static uint8_t body[RPC_MAX_BODY_CONTROL];

        while (!s->stop) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                uint8_t hb[RPC_HEADER_SIZE];
                struct rpc_header h;

                if (poll(&p, 1, 100) == 0)
                        continue;
                if (transport_recv_all(fd, hb, sizeof(hb), 5000) < 0 ||
                    rpc_header_decode(hb, RPC_CHANNEL_CONTROL, &h) < 0 ||
                    transport_recv_all(fd, body, h.body_len, 5000) < 0 || serve_one(s, fd, &h, body) < 0)
                        break;
        }
        safe_close(fd);
}

static void *server_main(void *userdata) {
        struct server *s = userdata;

        while (!s->stop) {
                struct pollfd p = { .fd = s->lfd, .events = POLLIN };
                int fd;

                if (poll(&p, 1, 100) != 1)
                        continue;
                fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
                if (fd >= 0)
                        serve_connection(s, fd);
        }
        return NULL;
}

static unsigned adds(struct server *s) {
        unsigned n;

        (void) pthread_mutex_lock(&s->lock);
        n = s->n_adds;
        (void) pthread_mutex_unlock(&s->lock);
        return n;
}

static unsigned releases(struct server *s) {
        unsigned n;

        (void) pthread_mutex_lock(&s->lock);
        n = s->n_releases;
        (void) pthread_mutex_unlock(&s->lock);
        return n;
}

static unsigned held(struct server *s) {
        unsigned n;

        (void) pthread_mutex_lock(&s->lock);
        n = s->held;
        (void) pthread_mutex_unlock(&s->lock);
        return n;
}

/* ---- files ---- */

static char *path_of(const char *name) {
        char *p = NULL;

        return asprintf(&p, "%s/%s", dir, name) < 0 ? NULL : p;
}

static bool chain_file_exists(uint32_t id) {
        char name[64];
        _cleanup_free_ char *p = NULL;

        (void) snprintf(name, sizeof(name), "run/web.%u.crt.pem", id);
        p = path_of(name);
        return p && access(p, F_OK) == 0;
}

static bool write_text(const char *name, const char *text, mode_t mode) {
        char *p = path_of(name);
        FILE *f = p ? fopen(p, "we") : NULL;
        bool ok = f && fputs(text, f) >= 0;

        if (f && fclose(f) != 0)
                ok = false;
        ok = ok && chmod(p, mode) == 0;
        free(p);
        return ok;
}

/* tests/data next to this file (meson compiles it as "../tests/unit/…"), or $TEST_DATA. */
static bool copy_data(const char *rel, const char *name) {
        const char *env = getenv("TEST_DATA"), *slash = strrchr(__FILE__, '/');
        char *src = NULL, *text = NULL;
        size_t len = 0;
        FILE *f;
        bool ok;

        if (env ? asprintf(&src, "%s/%s", env, rel) < 0
                : asprintf(&src, "%.*s/../data/%s", slash ? (int) (slash - __FILE__) : 1,
                           slash ? __FILE__ : ".", rel) < 0)
                return false;
        f = fopen(src, "re");
        free(src);
        if (!f)
                return false;
        ok = getdelim(&text, &len, '\0', f) > 0;
        fclose(f);
        ok = ok && write_text(name, text, 0600);
        free(text);
        return ok;
}

/* The key id the stanza file names ("…;id=%0N;…"), 0 when there is none. */
static unsigned stanza_id(void) {
        char *p = path_of("conf/stanza.conf"), *text = NULL, *id;
        size_t len = 0;
        unsigned v = 0;
        FILE *f = p ? fopen(p, "re") : NULL;

        free(p);
        if (!f)
                return 0;
        if (getdelim(&text, &len, '\0', f) > 0 && (id = strstr(text, ";id=%")))
                v = (unsigned) strtoul(id + 5, NULL, 16);
        fclose(f);
        free(text);
        return v;
}

/* Reloads the stand-in nginx did. */
static unsigned reloads(void) {
        char *p = path_of("reloads"), *line = NULL;
        size_t len = 0;
        unsigned n = 0;
        FILE *f = p ? fopen(p, "re") : NULL;

        free(p);
        while (f && getline(&line, &len, f) > 0)
                n++;
        if (f)
                fclose(f);
        free(line);
        return n;
}

static bool source_set(const char *name) {
        char key[64], crt[64];

        (void) snprintf(key, sizeof(key), "%s.key.pem", name);
        (void) snprintf(crt, sizeof(crt), "%s.crt.pem", name);
        return copy_data(key, "src/key.pem") && copy_data(crt, "src/chain.pem");
}

static bool rename_in(const char *from, const char *to) {
        char *a = path_of(from), *b = path_of(to);
        bool ok = a && b && rename(a, b) == 0;

        free(a);
        free(b);
        return ok;
}

/* ---- the test ---- */

/* Torn down by fixture_done() however far fixture_init() got, also when an assertion returns early. */
struct fixture {
        struct server srv;
        struct agent_config *cfg;
        struct launcher *l;
        struct agent_token *t;
        struct rpc_client *client;
        uint64_t now;
};

/* One step at a time far enough in the future that any back-off is over. */
static int step(struct fixture *f) {
        f->now += 3600ull * 1000000u;
        return agent_token_step(f->t, f->cfg, f->l, &f->client, f->now);
}

static bool fixture_init(struct fixture *f) {
        char *yaml = NULL, *bin = NULL, *path = NULL, *error = NULL;
        const char *old_path = getenv("PATH");
        int r;

        strcpy(dir, "/tmp/test-agent-rotate-XXXXXX");
        if (!mkdtemp(dir))
                return false;
        for (const char *d = "src\0conf\0bin\0run\0state\0"; *d; d += strlen(d) + 1) {
                char *p = path_of(d);
                bool ok = p && mkdir(p, 0755) == 0;
                free(p);
                if (!ok)
                        return false;
        }
        /* The stand-in nginx: its config test fails while dir/fail exists, its reload ("-s reload")
         * while dir/reload-fail does; each reload is logged in dir/reloads. */
        if (asprintf(&yaml,
                     "#!/bin/sh\nif [ \"$1\" = -s ]; then\n"
                     "  if [ -e '%s/reload-fail' ]; then echo 'reload failed' >&2; exit 1; fi\n"
                     "  echo reload >>'%s/reloads'; exit 0\nfi\n"
                     "if [ -e '%s/fail' ]; then echo 'config test failed' >&2; exit 1; fi\n",
                     dir, dir, dir) < 0 ||
            !write_text("bin/nginx", yaml, 0755))
                return false;
        free(yaml);
        bin = path_of("bin");
        if (!bin || asprintf(&path, "%s:%s", bin, old_path ?: "/usr/bin:/bin") < 0 ||
            setenv("PATH", path, 1) < 0)
                return false;
        free(bin);
        free(path);
        if (!source_set("rsa2048"))
                return false;
        if (asprintf(
                    &yaml,
                    "enclave:\n  launcher: local\n"
                    "options:\n  service: nginx\n  server_control: direct\n  server_pid_file: %s/nginx.pid\n"
                    "  force_start: false\n  reload_wait_ms: 0\n  runtime_dir: %s/run\n  state_dir: "
                    "%s/state\n  "
                    "sync_interval_secs: 1\n"
                    "tokens:\n  - label: web\n    pin: 'unit-pin-1'\n    source:\n      File:\n"
                    "        key: %s/src/key.pem\n        certificate: %s/src/chain.pem\n"
                    "    target:\n      NginxStanza:\n        path: %s/conf/stanza.conf\n",
                    dir, dir, dir, dir, dir, dir) < 0)
                return false;
        r = agent_config_parse(yaml, strlen(yaml), "acm.yaml", &f->cfg, NULL);
        free(yaml);
        if (r < 0)
                return false;

        *f = (struct fixture){ .cfg = f->cfg, .srv = { .lfd = -1, .addr.family = TRANSPORT_UNIX } };
        (void) pthread_mutex_init(&f->srv.lock, NULL);
        (void) snprintf(f->srv.addr.path, sizeof(f->srv.addr.path), "%s/control.sock", dir);
        f->srv.lfd = transport_listen(&f->srv.addr, 0600, (gid_t) -1, 4);
        if (f->srv.lfd < 0 || pthread_create(&f->srv.thread, NULL, server_main, &f->srv) != 0)
                return false;
        f->srv.started = true;
        if (launcher_new(f->cfg, &f->l) < 0 ||
            asprintf(&f->l->control_address, "unix:path=%s", f->srv.addr.path) < 0)
                return false;
        f->l->running = true;
        f->l->launches = 1;
        r = agent_token_new(f->cfg, &f->cfg->tokens[0], &f->t, &error);
        free(error);
        return r >= 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path) < 0 ? -errno : 0;
}

static void fixture_done(struct fixture *f) {
        f->srv.stop = true;
        if (f->srv.started)
                (void) pthread_join(f->srv.thread, NULL);
        if (f->srv.lfd >= 0)
                safe_close(f->srv.lfd);
        rpc_client_free(f->client);
        agent_token_free(f->t);
        if (f->l)
                f->l->running = false;
        launcher_free(f->l);
        agent_config_free(f->cfg);
        if (dir[0] && nftw(dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS) != 0)
                fprintf(stderr, "# cannot remove %s\n", dir);
}

static void test_target_fails(void) {
        _cleanup_(fixture_done) struct fixture f = { .srv.lfd = -1 };

        ASSERT_TRUE(fixture_init(&f));
        ASSERT_OK(step(&f));
        ASSERT_EQ(adds(&f.srv), 1u);
        ASSERT_EQ(stanza_id(), 1u);

        /* The config test fails after the replace: the target is retried, the replace is not. */
        ASSERT_TRUE(source_set("rsa3072"));
        ASSERT_TRUE(write_text("fail", "", 0644));
        ASSERT_FAIL(step(&f));
        ASSERT_EQ(adds(&f.srv), 2u);
        ASSERT_EQ(f.srv.last_n_keys, (size_t) 1);
        ASSERT_EQ(f.srv.last_ids[0], 2u);
        ASSERT_TRUE(f.srv.last_replace);
        ASSERT_TRUE(f.srv.last_hold); /* key id 1, which the server uses, is held */
        ASSERT_EQ(held(&f.srv), 1u);
        ASSERT_EQ(releases(&f.srv), 0u);
        ASSERT_EQ(stanza_id(), 1u); /* rolled back */
        for (int i = 0; i < 3; i++) {
                ASSERT_FAIL(step(&f));
                ASSERT_EQ(adds(&f.srv), 2u);
                ASSERT_EQ(releases(&f.srv), 0u);
                ASSERT_EQ(stanza_id(), 1u);
        }
        ASSERT_TRUE(rename_in("fail", "fail.off"));
        ASSERT_OK(step(&f));
        ASSERT_EQ(adds(&f.srv), 2u);
        ASSERT_EQ(stanza_id(), 2u);
        ASSERT_EQ(f.t->cur.key_id, 2u);
        ASSERT_EQ(releases(&f.srv), 1u); /* once the server moved */
        ASSERT_EQ(held(&f.srv), 0u);
        ASSERT_OK(step(&f)); /* nothing changed: nothing sent */
        ASSERT_EQ(adds(&f.srv), 2u);
        ASSERT_EQ(releases(&f.srv), 1u);

        /* The target's directory is a file: the rotation stops before the replace, for as long as it
         * takes; the enclave keeps key id 2 (the server's) current. */
        ASSERT_TRUE(source_set("rsa2048"));
        ASSERT_TRUE(rename_in("conf", "conf.saved"));
        ASSERT_TRUE(write_text("conf", "", 0644));
        for (int i = 0; i < 4; i++) {
                ASSERT_FAIL(step(&f));
                ASSERT_EQ(adds(&f.srv), 2u);
        }
        ASSERT_EQ(f.t->state, AGENT_TOKEN_FAILED);
        ASSERT_TRUE(f.t->error && strstr(f.t->error, "Not a directory"));
        ASSERT_TRUE(rename_in("conf", "conf.file") && rename_in("conf.saved", "conf"));
        ASSERT_OK(step(&f));
        ASSERT_EQ(adds(&f.srv), 3u);
        ASSERT_EQ(f.srv.last_ids[0], 3u);
        ASSERT_EQ(stanza_id(), 3u);
        ASSERT_EQ(f.t->state, AGENT_TOKEN_READY);
        /* a new id for each key (libp11 caches keys by id); the chain files of the server's id and the
         * one before stay, the older one is gone */
        ASSERT_TRUE(chain_file_exists(3));
        ASSERT_TRUE(chain_file_exists(2));
        ASSERT_FALSE(chain_file_exists(1));

        /* A new enclave (launch 2): provisioned again with the key the target uses, re-read from the file.
         */
        f.l->launches = 2;
        f.client = rpc_client_free(f.client);
        ASSERT_OK(step(&f));
        ASSERT_EQ(adds(&f.srv), 4u);
        ASSERT_EQ(f.srv.last_ids[0], 3u);
        ASSERT_EQ(stanza_id(), 3u);
}

/* The reload fails after the replace: webapply leaves the tested stanza in place, so the retry finds
 * the file as wanted. That is no proof that the server loaded it: with a held version to release the
 * retry tests and reloads again, and releases only once a reload succeeded. */
static void test_reload_fails(void) {
        _cleanup_(fixture_done) struct fixture f = { .srv.lfd = -1 };
        char pid[32];

        ASSERT_TRUE(fixture_init(&f));
        /* The server runs: its pid file names a live process (this one), which survives the reloads. */
        (void) snprintf(pid, sizeof(pid), "%d\n", (int) getpid());
        ASSERT_TRUE(write_text("nginx.pid", pid, 0644));
        ASSERT_OK(step(&f));
        ASSERT_EQ(stanza_id(), 1u);
        ASSERT_EQ(reloads(), 1u);
        ASSERT_EQ(releases(&f.srv), 0u); /* nothing held: nothing to release */

        ASSERT_TRUE(source_set("rsa3072"));
        ASSERT_TRUE(write_text("reload-fail", "", 0644));
        ASSERT_FAIL(step(&f));
        ASSERT_EQ(adds(&f.srv), 2u);
        ASSERT_TRUE(f.srv.last_hold);
        ASSERT_EQ(stanza_id(), 2u); /* passed the test and stays, but the server did not reload */
        for (int i = 0; i < 2; i++) {
                ASSERT_FAIL(step(&f));
                ASSERT_EQ(adds(&f.srv), 2u);
                ASSERT_EQ(releases(&f.srv), 0u);
                ASSERT_EQ(held(&f.srv), 1u);
        }
        ASSERT_EQ(reloads(), 1u);
        ASSERT_TRUE(rename_in("reload-fail", "reload-fail.off"));
        ASSERT_OK(step(&f));
        ASSERT_EQ(reloads(), 2u);
        ASSERT_EQ(releases(&f.srv), 1u);
        ASSERT_EQ(f.t->cur.key_id, 2u);
        ASSERT_OK(step(&f)); /* steady: no reload, no release */
        ASSERT_EQ(reloads(), 2u);
        ASSERT_EQ(releases(&f.srv), 1u);
}

/* The agent restarts (a new token object, as after a crash or a reload that rebuilt the token) while
 * the enclave holds the version the server uses: its first TOKEN_ADD learns of it, the hold stays while
 * the config test fails, and the first successful apply releases it. A restart with nothing held sends
 * no release and does not reload the server. */
static void test_restart_held(void) {
        _cleanup_(fixture_done) struct fixture f = { .srv.lfd = -1 };
        char *error = NULL;
        char pid[32];

        ASSERT_TRUE(fixture_init(&f));
        (void) snprintf(pid, sizeof(pid), "%d\n", (int) getpid());
        ASSERT_TRUE(write_text("nginx.pid", pid, 0644));
        ASSERT_OK(step(&f));
        ASSERT_TRUE(source_set("rsa3072"));
        ASSERT_TRUE(write_text("fail", "", 0644));
        ASSERT_FAIL(step(&f));
        ASSERT_EQ(held(&f.srv), 1u);
        ASSERT_EQ(stanza_id(), 1u);

        /* The agent dies between the replace and the release; a new one starts. */
        f.t = agent_token_free(f.t);
        f.client = rpc_client_free(f.client);
        ASSERT_OK(agent_token_new(f.cfg, &f.cfg->tokens[0], &f.t, &error));
        ASSERT_FAIL(step(&f));
        ASSERT_EQ(adds(&f.srv), 3u); /* the same key again: replaced in place, nothing more held */
        ASSERT_EQ(f.srv.last_ids[0], 2u);
        ASSERT_EQ(held(&f.srv), 1u);
        ASSERT_EQ(releases(&f.srv), 0u);
        ASSERT_TRUE(rename_in("fail", "fail.off"));
        ASSERT_OK(step(&f));
        ASSERT_EQ(stanza_id(), 2u);
        ASSERT_EQ(releases(&f.srv), 1u);
        ASSERT_EQ(held(&f.srv), 0u);

        /* Dies after the apply, before the release: the next one finds the file as wanted, reloads
         * anyway (it cannot know the server did) and releases. */
        ASSERT_TRUE(source_set("rsa2048"));
        ASSERT_TRUE(write_text("reload-fail", "", 0644));
        ASSERT_FAIL(step(&f));
        ASSERT_EQ(stanza_id(), 3u);
        ASSERT_EQ(held(&f.srv), 1u);
        ASSERT_TRUE(rename_in("reload-fail", "reload-fail.off"));
        f.t = agent_token_free(f.t);
        f.client = rpc_client_free(f.client);
        ASSERT_OK(agent_token_new(f.cfg, &f.cfg->tokens[0], &f.t, &error));
        ASSERT_EQ(reloads(), 2u);
        ASSERT_OK(step(&f));
        ASSERT_EQ(reloads(), 3u);
        ASSERT_EQ(releases(&f.srv), 2u);
        ASSERT_EQ(held(&f.srv), 0u);

        /* Nothing held: a restart neither releases nor reloads. */
        f.t = agent_token_free(f.t);
        f.client = rpc_client_free(f.client);
        ASSERT_OK(agent_token_new(f.cfg, &f.cfg->tokens[0], &f.t, &error));
        ASSERT_OK(step(&f));
        ASSERT_EQ(reloads(), 3u);
        ASSERT_EQ(releases(&f.srv), 2u);
        ASSERT_EQ(stanza_id(), 3u);
}

/* A TOKEN_RELEASE the enclave refuses (here: its PIN back-off) changes nothing for the server: the
 * token is ready, and the release goes out again at the next sync. */
static void test_release_retried(void) {
        _cleanup_(fixture_done) struct fixture f = { .srv.lfd = -1 };

        ASSERT_TRUE(fixture_init(&f));
        ASSERT_OK(step(&f));
        ASSERT_TRUE(source_set("rsa3072"));
        (void) pthread_mutex_lock(&f.srv.lock);
        f.srv.refuse_releases = 1;
        (void) pthread_mutex_unlock(&f.srv.lock);
        ASSERT_OK(step(&f));
        ASSERT_EQ(stanza_id(), 2u);
        ASSERT_EQ(f.t->state, AGENT_TOKEN_READY);
        ASSERT_EQ(releases(&f.srv), 0u);
        ASSERT_EQ(held(&f.srv), 1u);
        ASSERT_OK(step(&f));
        ASSERT_EQ(releases(&f.srv), 1u);
        ASSERT_EQ(held(&f.srv), 0u);
        ASSERT_OK(step(&f));
        ASSERT_EQ(releases(&f.srv), 1u);
        ASSERT_EQ(adds(&f.srv), 2u);
}

/* An enclave-token of protocol version 1 answers MALFORMED to a TOKEN_ADD with hold: the agent sends
 * none to it (the rotation then works as before holds existed) and no TOKEN_RELEASE. */
static void test_old_enclave(void) {
        _cleanup_(fixture_done) struct fixture f = { .srv.lfd = -1 };

        ASSERT_TRUE(fixture_init(&f));
        f.srv.version = 1;
        ASSERT_OK(step(&f));
        ASSERT_FALSE(f.srv.last_hold);
        ASSERT_TRUE(source_set("rsa3072"));
        ASSERT_OK(step(&f));
        ASSERT_EQ(adds(&f.srv), 2u);
        ASSERT_TRUE(f.srv.last_replace);
        ASSERT_FALSE(f.srv.last_hold);
        ASSERT_EQ(stanza_id(), 2u);
        ASSERT_EQ(releases(&f.srv), 0u);
}

TAP_MAIN(TEST("/agent/rotate/target-fails", test_target_fails),
         TEST("/agent/rotate/old-enclave", test_old_enclave),
         TEST("/agent/rotate/release-retried", test_release_retried),
         TEST("/agent/rotate/reload-fails", test_reload_fails),
         TEST("/agent/rotate/restart-held", test_restart_held))
