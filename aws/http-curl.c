/* The aws/ library's one I/O file: libcurl HTTPS over a vsock or unix socket, TLS to the real host. */
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "aws/http.h"
#include "common/secret.h"
#include "common/transport.h"

struct relay {
        int lfd, stop[2];
        pthread_t thread;
        bool started;
        struct transport_addr addr;
        int connect_timeout_ms, io_timeout_ms;
        atomic_int error; /* the last transport_connect() failure */
        char dir[96];     /* private directory of the listening socket */
};

struct aws_http_conn {
        CURL *curl;
        struct transport_addr addr;
        char host[256];
        char url_base[300];
        struct curl_slist *resolve;
        int connect_timeout_ms;
        size_t max_response;
        int connect_error; /* from the last open-socket callback */
        enum aws_http_socket_mode mode;
        struct sockaddr_un sa; /* REWRITE: the unix address; RELAY: the relay's */
        socklen_t sa_len;
        struct relay relay;
        /* the response being received */
        uint8_t *buf;
        size_t len;
        bool oversize;
        char errbuf[CURL_ERROR_SIZE];
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc;

static void global_init(void) {
        global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- The relay (RELAY mode): a unix socket in a private directory, for this process only; one connection
 * at a time copied both ways to the transport address. TLS runs through it untouched. */

/* Copies until both directions ended, an error, or stop; half-closes to pass EOFs on. */
static void relay_pump(struct relay *rl, int a, int b) {
        bool open[2] = { true, true };
        int fds[2] = { a, b };
        char buf[16384];

        while (open[0] || open[1]) {
                struct pollfd p[3] = { { a, open[0] ? POLLIN : 0, 0 },
                                       { b, open[1] ? POLLIN : 0, 0 },
                                       { rl->stop[0], POLLIN, 0 } };
                if (poll(p, 3, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return;
                }
                if (p[2].revents)
                        return;
                for (int i = 0; i < 2; i++) {
                        ssize_t n;
                        if (!open[i] || !(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
                                continue;
                        n = read(fds[i], buf, sizeof(buf));
                        if (n < 0 && (errno == EINTR || errno == EAGAIN))
                                continue;
                        if (n < 0)
                                return;
                        if (n == 0) {
                                open[i] = false;
                                (void) shutdown(fds[1 - i], SHUT_WR);
                                continue;
                        }
                        if (transport_send_all(fds[1 - i], buf, (size_t) n, rl->io_timeout_ms) < 0)
                                return;
                }
        }
}

static void *relay_main(void *userdata) {
        struct relay *rl = userdata;

        for (;;) {
                struct pollfd p[2] = { { rl->lfd, POLLIN, 0 }, { rl->stop[0], POLLIN, 0 } };
                struct ucred cred;
                socklen_t len = sizeof(cred);
                int cfd, vfd;

                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return NULL;
                }
                if (p[1].revents)
                        return NULL;
                cfd = accept4(rl->lfd, NULL, NULL, SOCK_CLOEXEC);
                if (cfd < 0)
                        continue;
                /* only libcurl in this process: nobody else gets our KMS connection */
                if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || cred.pid != getpid()) {
                        safe_close(cfd);
                        continue;
                }
                vfd = transport_connect(&rl->addr, rl->connect_timeout_ms);
                atomic_store(&rl->error, vfd < 0 ? vfd : 0);
                if (vfd >= 0) {
                        relay_pump(rl, cfd, vfd);
                        safe_close(vfd);
                }
                safe_close(cfd);
        }
}

static int relay_start(struct relay *rl, struct sockaddr_un *ret_sa, socklen_t *ret_len) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        const char *tmp = secure_getenv("TMPDIR");
        int n;

        /* A path in a fresh 0700 directory, not an abstract name: libcurl 7.88 prints the peer address
         * and refuses to reuse a connection whose address prints empty ("still name resolving"). */
        n = snprintf(rl->dir, sizeof(rl->dir), "%s/enclave-acm-aws-XXXXXX",
                     tmp && tmp[0] == '/' ? tmp : "/tmp");
        if (n < 0 || (size_t) n >= sizeof(rl->dir) || (size_t) n + 3 > sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        if (!mkdtemp(rl->dir)) {
                rl->dir[0] = '\0';
                return negative_errno();
        }
        (void) snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/r", rl->dir);
        *ret_len = (socklen_t) sizeof(sa);
        rl->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (rl->lfd < 0)
                return negative_errno();
        if (bind(rl->lfd, (struct sockaddr *) &sa, *ret_len) < 0 || listen(rl->lfd, 4) < 0)
                return negative_errno();
        if (pipe2(rl->stop, O_CLOEXEC) < 0)
                return negative_errno();
        n = pthread_create(&rl->thread, NULL, relay_main, rl);
        if (n != 0)
                return -n;
        rl->started = true;
        *ret_sa = sa;
        return 0;
}

static void relay_stop(struct relay *rl) {
        if (rl->started) {
                (void) write(rl->stop[1], "x", 1);
                (void) pthread_join(rl->thread, NULL);
                rl->started = false;
        }
        rl->lfd = safe_close(rl->lfd);
        if (rl->dir[0]) {
                char path[sizeof(rl->dir) + 2];
                (void) snprintf(path, sizeof(path), "%s/r", rl->dir);
                (void) unlink(path);
                (void) rmdir(rl->dir);
                rl->dir[0] = '\0';
        }
        rl->stop[0] = safe_close(rl->stop[0]);
        rl->stop[1] = safe_close(rl->stop[1]);
}

/* ---- Sockets for libcurl ---- */

/* libcurl asks for a socket to the dummy address from CURLOPT_RESOLVE. PRECONNECTED: it gets one
 * already connected to the transport address (SOCKOPTFUNCTION says so). REWRITE and RELAY: a fresh
 * unix socket, and the address is replaced by the one to connect to (libcurl documents that the
 * callback may change it). */
static curl_socket_t open_socket(void *userdata, curlsocktype purpose, struct curl_sockaddr *address) {
        struct aws_http_conn *c = userdata;
        int fd;

        if (purpose != CURLSOCKTYPE_IPCXN)
                return CURL_SOCKET_BAD;
        c->connect_error = 0;
        if (c->mode == AWS_HTTP_SOCKET_PRECONNECTED) {
                fd = transport_connect(&c->addr, c->connect_timeout_ms);
                if (fd < 0) {
                        c->connect_error = fd;
                        return CURL_SOCKET_BAD;
                }
                return fd;
        }
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
                c->connect_error = negative_errno();
                return CURL_SOCKET_BAD;
        }
        address->family = AF_UNIX;
        address->socktype = SOCK_STREAM;
        address->protocol = 0;
        address->addrlen = (unsigned) c->sa_len;
        /* libcurl's storage behind address->addr is a sockaddr_storage */
        memcpy((char *) address + offsetof(struct curl_sockaddr, addr), &c->sa, c->sa_len);
        return fd;
}

static int sockopt_cb(void *userdata, curl_socket_t fd, curlsocktype purpose) {
        struct aws_http_conn *c = userdata;

        return c->mode == AWS_HTTP_SOCKET_PRECONNECTED ? CURL_SOCKOPT_ALREADY_CONNECTED : CURL_SOCKOPT_OK;
}

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *userdata) {
        struct aws_http_conn *c = userdata;
        size_t n = size * nmemb;
        uint8_t *p;

        if (n > c->max_response - c->len) {
                c->oversize = true;
                return 0; /* CURLE_WRITE_ERROR */
        }
        if (!c->buf) {
                /* the whole cap at once: no growing copies, and the cap bounds the memory */
                c->buf = malloc(c->max_response + 1);
                if (!c->buf)
                        return 0;
        }
        p = c->buf + c->len;
        memcpy(p, ptr, n);
        c->len += n;
        return n;
}

static bool host_ok(const char *h) {
        size_t n = h ? strlen(h) : 0;

        if (n == 0 || n > 253)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((h[i] >= 'a' && h[i] <= 'z') || (h[i] >= '0' && h[i] <= '9') || h[i] == '-' ||
                      h[i] == '.'))
                        return false;
        return true;
}

#define SETOPT(c, opt, val)                                                            \
        do {                                                                           \
                if (curl_easy_setopt((c), (opt), (val)) != CURLE_OK)                   \
                        return aws_err(e, -EINVAL, "libcurl refused option %s", #opt); \
        } while (0)

static int conn_setup(struct aws_http_conn *c, const struct aws_http_opts *o, struct aws_err *e) {
        char entry[300];
        unsigned port = o->port ? o->port : 443;
        int total = o->total_timeout_ms > 0 ? o->total_timeout_ms : AWS_HTTP_DEFAULT_TOTAL_MS;

        (void) snprintf(entry, sizeof(entry), "%s:%u:127.0.0.1", c->host, port);
        c->resolve = curl_slist_append(NULL, entry);
        if (!c->resolve)
                return -ENOMEM;
        (void) snprintf(c->url_base, sizeof(c->url_base), "https://%s:%u", c->host, port);

        SETOPT(c->curl, CURLOPT_NOSIGNAL, 1L);
        SETOPT(c->curl, CURLOPT_ERRORBUFFER, c->errbuf);
        SETOPT(c->curl, CURLOPT_PROTOCOLS_STR, "https");
        SETOPT(c->curl, CURLOPT_REDIR_PROTOCOLS_STR, "https");
        SETOPT(c->curl, CURLOPT_FOLLOWLOCATION, 0L);
        SETOPT(c->curl, CURLOPT_PROXY, ""); /* never a proxy from the environment */
        SETOPT(c->curl, CURLOPT_NOPROXY, "*");
        SETOPT(c->curl, CURLOPT_HTTP_VERSION, (long) CURL_HTTP_VERSION_1_1);
        SETOPT(c->curl, CURLOPT_SSL_VERIFYPEER, 1L);
        SETOPT(c->curl, CURLOPT_SSL_VERIFYHOST, 2L);
        SETOPT(c->curl, CURLOPT_SSLVERSION, (long) CURL_SSLVERSION_TLSv1_2);
        if (o->ca_file) {
                SETOPT(c->curl, CURLOPT_CAINFO, o->ca_file);
                SETOPT(c->curl, CURLOPT_CAPATH, NULL); /* that bundle only */
        }
        SETOPT(c->curl, CURLOPT_RESOLVE, c->resolve);
        SETOPT(c->curl, CURLOPT_OPENSOCKETFUNCTION, open_socket);
        SETOPT(c->curl, CURLOPT_OPENSOCKETDATA, c);
        SETOPT(c->curl, CURLOPT_SOCKOPTFUNCTION, sockopt_cb);
        SETOPT(c->curl, CURLOPT_SOCKOPTDATA, c);
        SETOPT(c->curl, CURLOPT_TCP_NODELAY, 0L); /* not a TCP socket */
        SETOPT(c->curl, CURLOPT_CONNECTTIMEOUT_MS, (long) c->connect_timeout_ms);
        SETOPT(c->curl, CURLOPT_TIMEOUT_MS, (long) total);
        SETOPT(c->curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) c->max_response);
        SETOPT(c->curl, CURLOPT_WRITEFUNCTION, write_cb);
        SETOPT(c->curl, CURLOPT_WRITEDATA, c);
        SETOPT(c->curl, CURLOPT_USERAGENT, "enclave-acm/" ENCLAVE_ACM_VERSION);
        SETOPT(c->curl, CURLOPT_MAXCONNECTS, 1L);
        return 0;
}

static bool curl_honours_already_connected(void) {
        return curl_version_info(CURLVERSION_NOW)->version_num >= 0x080000;
}

static int pick_mode(struct aws_http_conn *c, enum aws_http_socket_mode m, struct aws_err *e) {
        bool is_unix = c->addr.family == TRANSPORT_UNIX;

        if ((int) m < 0 || m >= _AWS_HTTP_SOCKET_MAX)
                return aws_err(e, -EINVAL, "socket mode: invalid");
        if (m == AWS_HTTP_SOCKET_AUTO)
                m = is_unix                            ? AWS_HTTP_SOCKET_REWRITE
                    : curl_honours_already_connected() ? AWS_HTTP_SOCKET_PRECONNECTED
                                                       : AWS_HTTP_SOCKET_RELAY;
        if (m == AWS_HTTP_SOCKET_REWRITE) {
                if (!is_unix)
                        return aws_err(e, -EOPNOTSUPP,
                                       "socket mode: libcurl cannot connect to vsock itself");
                c->sa = (struct sockaddr_un){ .sun_family = AF_UNIX };
                memcpy(c->sa.sun_path, c->addr.path, strlen(c->addr.path) + 1);
                c->sa_len = (socklen_t) sizeof(c->sa);
        }
        if (m == AWS_HTTP_SOCKET_PRECONNECTED && !curl_honours_already_connected())
                return aws_err(e, -EOPNOTSUPP,
                               "socket mode: libcurl %s ignores CURL_SOCKOPT_ALREADY_CONNECTED "
                               "(curl#10626, fixed in 8.0)",
                               curl_version_info(CURLVERSION_NOW)->version);
        c->mode = m;
        return 0;
}

int aws_http_conn_new(const struct aws_http_opts *o, struct aws_http_conn **ret, struct aws_err *e) {
        _cleanup_(aws_http_conn_freep) struct aws_http_conn *c = NULL;
        int r;

        if (!o || !o->address)
                return aws_err(e, -EINVAL, "address: missing");
        if (!host_ok(o->host))
                return aws_err(e, -EINVAL, "host: not a lower-case DNS name");
        (void) pthread_once(&global_once, global_init);
        if (global_rc != CURLE_OK)
                return aws_err(e, -ENOMEM, "libcurl: global init failed");
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->relay.lfd = c->relay.stop[0] = c->relay.stop[1] = -1;
        r = transport_addr_parse(o->address, &c->addr);
        if (r < 0)
                return aws_err(e, r, "address: not unix:path=/... or vsock:cid=N;port=M");
        if ((r = pick_mode(c, o->socket_mode, e)) < 0)
                return r;
        memcpy(c->host, o->host, strlen(o->host) + 1);
        c->connect_timeout_ms =
                o->connect_timeout_ms > 0 ? o->connect_timeout_ms : AWS_HTTP_DEFAULT_CONNECT_MS;
        c->max_response = o->max_response ? o->max_response : AWS_HTTP_DEFAULT_MAX_RESPONSE;
        if (c->mode == AWS_HTTP_SOCKET_RELAY) {
                c->relay.addr = c->addr;
                c->relay.connect_timeout_ms = c->connect_timeout_ms;
                c->relay.io_timeout_ms =
                        o->total_timeout_ms > 0 ? o->total_timeout_ms : AWS_HTTP_DEFAULT_TOTAL_MS;
                if ((r = relay_start(&c->relay, &c->sa, &c->sa_len)) < 0)
                        return aws_err(e, r, "relay: cannot start: %s", strerror(-r));
        }
        c->curl = curl_easy_init();
        if (!c->curl)
                return -ENOMEM;
        if ((r = conn_setup(c, o, e)) < 0)
                return r;
        *ret = TAKE_PTR(c);
        return 0;
}

struct aws_http_conn *aws_http_conn_free(struct aws_http_conn *c) {
        if (!c)
                return NULL;
        if (c->curl)
                curl_easy_cleanup(c->curl); /* closes libcurl's end first, so the relay sees EOF */
        relay_stop(&c->relay);
        curl_slist_free_all(c->resolve);
        free(c->buf);
        free(c);
        return NULL;
}

/* Header lines may carry the session token: wipe them before libcurl frees them. */
static void slist_wipe_free(struct curl_slist *l) {
        for (struct curl_slist *p = l; p; p = p->next)
                if (p->data)
                        secret_wipe(p->data, strlen(p->data));
        curl_slist_free_all(l);
}

static int header_list(const struct aws_http_req *q, struct curl_slist **ret, struct aws_err *e) {
        struct curl_slist *l = NULL, *n;

        if (q->n_headers > AWS_HTTP_MAX_HEADERS || (q->n_headers && !q->headers))
                return aws_err(e, -EINVAL, "headers: more than %u", AWS_HTTP_MAX_HEADERS);
        for (size_t i = 0; i <= q->n_headers; i++) {
                _cleanup_free_ char *line = NULL;
                const char *name = i < q->n_headers ? q->headers[i].name : "Expect";
                const char *value = i < q->n_headers ? q->headers[i].value : "";
                size_t nl = name ? strlen(name) : 0, vl = value ? strlen(value) : 0;

                if (nl == 0 || !value || strcspn(name, ":\r\n ") != nl || strcspn(value, "\r\n") != vl) {
                        slist_wipe_free(l);
                        return aws_err(e, -EINVAL, "header %zu: empty name, or ':', CR or LF in it", i);
                }
                /* "Name:" with an empty value removes a header libcurl would add (Expect: 100-continue) */
                if (asprintf(&line, vl ? "%s: %s" : "%s:", name, value) < 0) {
                        slist_wipe_free(l);
                        return -ENOMEM;
                }
                n = curl_slist_append(l, line);
                secret_wipe(line, strlen(line));
                if (!n) {
                        slist_wipe_free(l);
                        return -ENOMEM;
                }
                l = n;
        }
        *ret = l;
        return 0;
}

static int map_error(struct aws_http_conn *c, CURLcode rc, struct aws_err *e) {
        const char *why = c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc);
        long verify = 0, oserr = 0;

        (void) curl_easy_getinfo(c->curl, CURLINFO_SSL_VERIFYRESULT, &verify);
        (void) curl_easy_getinfo(c->curl, CURLINFO_OS_ERRNO, &oserr);
        if (rc == CURLE_SSL_CONNECT_ERROR && verify != 0)
                rc = CURLE_PEER_FAILED_VERIFICATION; /* e.g. a signature that does not verify */
        if (rc == CURLE_COULDNT_CONNECT && !c->connect_error && oserr > 0)
                c->connect_error = (int) -oserr;

        if (c->oversize || rc == CURLE_FILESIZE_EXCEEDED)
                return aws_err(e, -EMSGSIZE, "https://%s: response body over %zu bytes, refused", c->host,
                               c->max_response);
        switch (rc) {
        case CURLE_OPERATION_TIMEDOUT:
                return aws_err(e, -ETIMEDOUT, "https://%s: timed out: %s", c->host, why);
        default: break;
        }
        if (c->mode == AWS_HTTP_SOCKET_RELAY && atomic_load(&c->relay.error) < 0) {
                int r = atomic_exchange(&c->relay.error, 0);
                return aws_err(e, r, "https://%s: cannot connect: %s", c->host, strerror(-r));
        }
        switch (rc) {
        case CURLE_COULDNT_CONNECT:
                return aws_err(e, c->connect_error ? c->connect_error : -ECONNREFUSED,
                               "https://%s: cannot connect: %s", c->host,
                               c->connect_error ? strerror(-c->connect_error) : why);
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CACERT_BADFILE:
                return aws_err(e, -EKEYREJECTED, "https://%s: TLS certificate refused: %s", c->host, why);
        case CURLE_SSL_CONNECT_ERROR:
                return aws_err(e, -EPROTO, "https://%s: TLS handshake failed: %s", c->host, why);
        case CURLE_PARTIAL_FILE:
        case CURLE_RECV_ERROR:
        case CURLE_SEND_ERROR:
        case CURLE_GOT_NOTHING:
                return aws_err(e, -ECONNRESET, "https://%s: connection closed mid-exchange: %s", c->host,
                               why);
        case CURLE_OUT_OF_MEMORY: return -ENOMEM;
        default: return aws_err(e, -EPROTO, "https://%s: %s", c->host, why);
        }
}

int aws_http_post(struct aws_http_conn *c, const struct aws_http_req *q, struct aws_http_resp *ret,
                  struct aws_err *e) {
        struct curl_slist *headers = NULL;
        _cleanup_free_ char *url = NULL;
        long status = 0, connects = 0;
        CURLcode rc;
        int r;

        if (!c || !q || !q->path || q->path[0] != '/' || (q->body_len && !q->body))
                return aws_err(e, -EINVAL, "request: path must start with '/'");
        for (const char *p = q->path; *p; p++)
                if (*p <= 0x20 || *p >= 0x7f)
                        return aws_err(e, -EINVAL, "path: invalid character at byte %zu",
                                       (size_t) (p - q->path));
        if (asprintf(&url, "%s%s", c->url_base, q->path) < 0)
                return -ENOMEM;
        if ((r = header_list(q, &headers, e)) < 0)
                return r;
        free(c->buf);
        c->buf = NULL;
        c->len = 0;
        c->oversize = false;
        c->errbuf[0] = '\0';
        c->connect_error = 0;
        atomic_store(&c->relay.error, 0);

        if (curl_easy_setopt(c->curl, CURLOPT_URL, url) != CURLE_OK ||
            curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, headers) != CURLE_OK ||
            curl_easy_setopt(c->curl, CURLOPT_POST, 1L) != CURLE_OK ||
            curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, q->body_len ? q->body : "") != CURLE_OK ||
            curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) q->body_len) != CURLE_OK) {
                slist_wipe_free(headers);
                return aws_err(e, -EINVAL, "libcurl refused the request options");
        }
        rc = curl_easy_perform(c->curl);
        (void) curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, NULL);
        (void) curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, NULL);
        slist_wipe_free(headers);
        if (rc != CURLE_OK)
                return map_error(c, rc, e);
        (void) curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
        (void) curl_easy_getinfo(c->curl, CURLINFO_NUM_CONNECTS, &connects);
        if (!c->buf) {
                c->buf = malloc(1);
                if (!c->buf)
                        return -ENOMEM;
        }
        c->buf[c->len] = '\0';
        *ret = (struct aws_http_resp){
                .status = status, .body = TAKE_PTR(c->buf), .body_len = c->len, .new_connections = connects
        };
        c->len = 0;
        return 0;
}

void aws_http_resp_done(struct aws_http_resp *r) {
        if (!r)
                return;
        free(r->body);
        *r = (struct aws_http_resp){};
}

/* ---- Plain URLs (IMDS, S3) ---- */

static void curl_slist_free_allp(struct curl_slist **p) {
        curl_slist_free_all(*p);
}

static void curl_easy_cleanupp(CURL **p) {
        if (*p)
                curl_easy_cleanup(*p);
}

struct url_xfer {
        uint8_t *buf;
        size_t len, max;
        bool oversize;
        char etag[AWS_URL_ETAG_MAX + 1];
        int64_t date;
};

static size_t url_write_cb(char *ptr, size_t size, size_t nmemb, void *userdata) {
        struct url_xfer *x = userdata;
        size_t n = size * nmemb;

        if (n > x->max - x->len) {
                x->oversize = true;
                return 0;
        }
        if (!x->buf) {
                x->buf = malloc(x->max + 1);
                if (!x->buf)
                        return 0;
        }
        memcpy(x->buf + x->len, ptr, n);
        x->len += n;
        return n;
}

/* "Name: value\r\n": the ETag (kept if it fits and is printable) and the Date. */
static size_t url_header_cb(char *ptr, size_t size, size_t nitems, void *userdata) {
        struct url_xfer *x = userdata;
        size_t n = size * nitems, v, end;
        char tmp[80];

        if (n >= 5 && strncasecmp(ptr, "ETag:", 5) == 0) {
                v = 5;
                x->etag[0] = '\0';
        } else if (n >= 5 && strncasecmp(ptr, "Date:", 5) == 0)
                v = 5;
        else
                return n;
        while (v < n && (ptr[v] == ' ' || ptr[v] == '\t'))
                v++;
        end = n;
        while (end > v && (ptr[end - 1] == '\r' || ptr[end - 1] == '\n' || ptr[end - 1] == ' '))
                end--;
        if (ptr[0] == 'E' || ptr[0] == 'e') {
                if (end - v == 0 || end - v > AWS_URL_ETAG_MAX)
                        return n;
                for (size_t i = v; i < end; i++)
                        if ((unsigned char) ptr[i] < 0x21 || (unsigned char) ptr[i] > 0x7e)
                                return n;
                memcpy(x->etag, ptr + v, end - v);
                x->etag[end - v] = '\0';
        } else if (end - v < sizeof(tmp)) {
                time_t t;
                memcpy(tmp, ptr + v, end - v);
                tmp[end - v] = '\0';
                t = curl_getdate(tmp, NULL);
                x->date = t > 0 ? (int64_t) t : 0;
        }
        return n;
}

static int url_map_error(const char *what, CURLcode rc, const char *errbuf, bool oversize, size_t max,
                         long oserr, struct aws_err *e) {
        const char *why = errbuf[0] ? errbuf : curl_easy_strerror(rc);

        if (oversize || rc == CURLE_FILESIZE_EXCEEDED)
                return aws_err(e, -EMSGSIZE, "%s: response body over %zu bytes, refused", what, max);
        switch (rc) {
        case CURLE_OPERATION_TIMEDOUT: return aws_err(e, -ETIMEDOUT, "%s: timed out: %s", what, why);
        case CURLE_COULDNT_CONNECT:
                return aws_err(e, oserr > 0 ? (int) -oserr : -ECONNREFUSED, "%s: cannot connect: %s", what,
                               why);
        case CURLE_COULDNT_RESOLVE_HOST:
                return aws_err(e, -EHOSTUNREACH, "%s: cannot resolve the host: %s", what, why);
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CACERT_BADFILE:
                return aws_err(e, -EKEYREJECTED, "%s: TLS certificate refused: %s", what, why);
        case CURLE_SSL_CONNECT_ERROR: return aws_err(e, -EPROTO, "%s: TLS handshake failed: %s", what, why);
        case CURLE_PARTIAL_FILE:
        case CURLE_RECV_ERROR:
        case CURLE_SEND_ERROR:
        case CURLE_GOT_NOTHING:
                return aws_err(e, -ECONNRESET, "%s: connection closed mid-exchange: %s", what, why);
        case CURLE_UNSUPPORTED_PROTOCOL: return aws_err(e, -EINVAL, "%s: scheme not allowed: %s", what, why);
        case CURLE_OUT_OF_MEMORY: return -ENOMEM;
        default: return aws_err(e, -EPROTO, "%s: %s", what, why);
        }
}

/* The URL without its query, for messages (a presigned query would hold credentials). */
static void url_what(const char *url, char *buf, size_t size) {
        size_t n = strcspn(url, "?");

        (void) snprintf(buf, size, "%.*s", (int) MIN(n, (size_t) 120), url);
}

int aws_url_fetch(const struct aws_url_opts *o, const struct aws_url_req *q, struct aws_url_resp *ret,
                  struct aws_err *e) {
        static const struct aws_url_opts defaults = {};
        struct url_xfer x = {};
        struct curl_slist *headers = NULL;
        _cleanup_(curl_slist_free_allp) struct curl_slist *connect_to = NULL;
        _cleanup_(curl_easy_cleanupp) CURL *curl = NULL;
        char errbuf[CURL_ERROR_SIZE] = "", what[128];
        const char *protos;
        long status = 0, oserr = 0;
        CURLcode rc;
        bool put, get, post;
        int r;

        if (!o)
                o = &defaults;
        if (!q || !q->url || !q->method || (q->body_len && !q->body))
                return aws_err(e, -EINVAL, "request: url and method required");
        for (const char *p = q->url; *p; p++)
                if (*p <= 0x20 || *p >= 0x7f)
                        return aws_err(e, -EINVAL, "url: invalid character at byte %zu",
                                       (size_t) (p - q->url));
        if (o->label)
                (void) snprintf(what, sizeof(what), "%s", o->label);
        else
                url_what(q->url, what, sizeof(what));
        get = strcmp(q->method, "GET") == 0;
        put = strcmp(q->method, "PUT") == 0;
        post = strcmp(q->method, "POST") == 0;
        if (!get && !put && !post)
                return aws_err(e, -EINVAL, "%s: method must be GET, PUT or POST", what);
        if (strncmp(q->url, "https://", 8) != 0 && !(o->allow_http && strncmp(q->url, "http://", 7) == 0))
                return aws_err(e, -EINVAL, "%s: scheme must be https%s", what,
                               o->allow_http ? " or http" : "");
        protos = o->allow_http ? "http,https" : "https";
        (void) pthread_once(&global_once, global_init);
        if (global_rc != CURLE_OK)
                return aws_err(e, -ENOMEM, "libcurl: global init failed");
        x.max = o->max_response ? o->max_response : AWS_HTTP_DEFAULT_MAX_RESPONSE;
        curl = curl_easy_init();
        if (!curl)
                return -ENOMEM;
        {
                struct aws_http_req hq = { .path = "/", .headers = q->headers, .n_headers = q->n_headers };
                if ((r = header_list(&hq, &headers, e)) < 0)
                        return r;
        }
#define USETOPT(opt, val)                                                              \
        do {                                                                           \
                if (curl_easy_setopt(curl, (opt), (val)) != CURLE_OK) {                \
                        slist_wipe_free(headers);                                      \
                        free(x.buf);                                                   \
                        return aws_err(e, -EINVAL, "libcurl refused option %s", #opt); \
                }                                                                      \
        } while (0)
        USETOPT(CURLOPT_NOSIGNAL, 1L);
        USETOPT(CURLOPT_ERRORBUFFER, errbuf);
        USETOPT(CURLOPT_URL, q->url);
        USETOPT(CURLOPT_PROTOCOLS_STR, protos);
        USETOPT(CURLOPT_REDIR_PROTOCOLS_STR, "https");
        USETOPT(CURLOPT_FOLLOWLOCATION, 0L);
        USETOPT(CURLOPT_PROXY, "");
        USETOPT(CURLOPT_NOPROXY, "*");
        USETOPT(CURLOPT_HTTP_VERSION, (long) CURL_HTTP_VERSION_1_1);
        USETOPT(CURLOPT_SSL_VERIFYPEER, 1L);
        USETOPT(CURLOPT_SSL_VERIFYHOST, 2L);
        USETOPT(CURLOPT_SSLVERSION, (long) CURL_SSLVERSION_TLSv1_2);
        if (o->ca_file) {
                USETOPT(CURLOPT_CAINFO, o->ca_file);
                USETOPT(CURLOPT_CAPATH, NULL);
        }
        USETOPT(CURLOPT_CONNECTTIMEOUT_MS,
                (long) (o->connect_timeout_ms > 0 ? o->connect_timeout_ms : AWS_HTTP_DEFAULT_CONNECT_MS));
        USETOPT(CURLOPT_TIMEOUT_MS,
                (long) (o->total_timeout_ms > 0 ? o->total_timeout_ms : AWS_HTTP_DEFAULT_TOTAL_MS));
        USETOPT(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) x.max);
        USETOPT(CURLOPT_WRITEFUNCTION, url_write_cb);
        USETOPT(CURLOPT_WRITEDATA, &x);
        USETOPT(CURLOPT_HEADERFUNCTION, url_header_cb);
        USETOPT(CURLOPT_HEADERDATA, &x);
        USETOPT(CURLOPT_USERAGENT, "enclave-acm/" ENCLAVE_ACM_VERSION);
        USETOPT(CURLOPT_HTTPHEADER, headers);
        if (o->connect_to) {
                connect_to = curl_slist_append(NULL, o->connect_to);
                if (!connect_to) {
                        slist_wipe_free(headers);
                        return -ENOMEM;
                }
                USETOPT(CURLOPT_CONNECT_TO, connect_to);
        }
        if (put || post) {
                if (put)
                        USETOPT(CURLOPT_CUSTOMREQUEST, "PUT");
                USETOPT(CURLOPT_POST, 1L);
                USETOPT(CURLOPT_POSTFIELDS, q->body_len ? q->body : "");
                USETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) q->body_len);
        } else
                USETOPT(CURLOPT_HTTPGET, 1L);
#undef USETOPT
        rc = curl_easy_perform(curl);
        (void) curl_easy_setopt(curl, CURLOPT_HTTPHEADER, NULL);
        slist_wipe_free(headers);
        if (rc != CURLE_OK) {
                (void) curl_easy_getinfo(curl, CURLINFO_OS_ERRNO, &oserr);
                free(x.buf);
                return url_map_error(what, rc, errbuf, x.oversize, x.max, oserr, e);
        }
        (void) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
        if (!x.buf) {
                x.buf = malloc(1);
                if (!x.buf)
                        return -ENOMEM;
        }
        x.buf[x.len] = '\0';
        *ret = (struct aws_url_resp){ .status = status, .body = x.buf, .body_len = x.len, .date = x.date };
        memcpy(ret->etag, x.etag, sizeof(x.etag));
        return 0;
}

void aws_url_resp_done(struct aws_url_resp *r) {
        if (!r)
                return;
        free(r->body);
        *r = (struct aws_url_resp){};
}
