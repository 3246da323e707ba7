# nginx helpers for the e2e tests (sourced after lib.sh): config, start, reload, stop.
# nginx runs as production does: daemonised master as root (it loads the keys through the libp11
# engine, then forks), 2 workers as www-data that re-initialise the module after fork.

NGX=$T/nginx
NGX_PID_FILE=$NGX/nginx.pid
NGX_ERROR_LOG=$LOGS/nginx-error.log
mkdir -p "$NGX"
chmod 0755 "$NGX"

# nginx_conf OUT [reuseport] -- PORT NAME LABEL ID [PORT NAME LABEL ID]...: a config with one TLS server
# per key; the key is "engine:pkcs11:<URI>" (quoted: the URI holds ';'), the certificate the test file
# of NAME. Each response body names the worker that served it.
nginx_conf() {
        local out=$1 listen_opt=""
        shift
        if [[ $1 == reuseport ]]; then
                # One listening socket per worker: the kernel spreads connections over both workers.
                listen_opt=" reuseport"
                shift
        fi
        [[ $1 == -- ]] && shift
        {
                cat <<EOF
worker_processes 2;
user www-data;
pid $NGX_PID_FILE;
error_log $NGX_ERROR_LOG info;
# nginx clears its workers' environment: the module and OpenSSL need these two.
env ENCLAVE_ACM_ADDRESS;
env OPENSSL_CONF;
ssl_engine pkcs11;
events {
        worker_connections 1024;
}
http {
        access_log $LOGS/nginx-access.log;
        client_body_temp_path $NGX/client_body;
        proxy_temp_path $NGX/proxy;
        fastcgi_temp_path $NGX/fastcgi;
        uwsgi_temp_path $NGX/uwsgi;
        scgi_temp_path $NGX/scgi;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache off;
        ssl_session_tickets off;
EOF
                while (($# >= 4)); do
                        cat <<EOF
        server {
                listen 127.0.0.1:$1 ssl$listen_opt;
                server_name $(host_of "$2");
                ssl_certificate $(cert_of "$2");
                ssl_certificate_key "engine:pkcs11:$(key_uri "$3" "$4")";
                location / {
                        return 200 "pid=\$pid\\n";
                }
        }
EOF
                        shift 4
                done
                echo "}"
        } >"$out.tmp"
        mv "$out.tmp" "$out"
}

nginx_master() {
        cat "$NGX_PID_FILE"
}

nginx_workers() {
        children "$(nginx_master)" | sort -n
}

nginx_stop() {
        local master kids
        [[ -f $NGX_PID_FILE ]] || return 0
        master=$(nginx_master)
        alive "$master" || return 0
        kids=$(children "$master")
        kill -QUIT "$master" 2>/dev/null || true
        # shellcheck disable=SC2086 # one pid per word
        stop_pids 10 "$master" $kids
        rm -f "$NGX_PID_FILE"
}

# nginx_start PORT...: start nginx with $NGX/nginx.conf and wait until it accepts on every PORT
# and both workers run.
nginx_start() {
        local i port
        "${SERVER_ENV[@]}" nginx -p "$NGX/" -c "$NGX/nginx.conf" -e "$NGX_ERROR_LOG" >"$LOGS/nginx-start.log" 2>&1 ||
                fail "nginx did not start: $(cat "$LOGS/nginx-start.log")"
        STOP_HOOKS+=(nginx_stop)
        for ((i = 0; i < 200; i++)); do
                [[ -s $NGX_PID_FILE ]] && (($(nginx_workers | wc -l) == 2)) && break
                sleep 0.05
        done
        [[ -s $NGX_PID_FILE ]] || fail "nginx wrote no pid file"
        for port in "$@"; do
                wait_port "$port" || fail "nginx does not accept on port $port"
        done
}

# nginx_wait_generation OLD_WORKERS [EMERG_COUNT]: after a reload, wait until none of the old workers
# is left and two new ones run (30 s at most). With EMERG_COUNT (the [emerg] lines in the error log
# before the reload), fail at once when the master logs another: it refused the new config.
nginx_wait_generation() {
        local old=$1 emerg=${2-} i now pid left
        for ((i = 0; i < 300; i++)); do
                if [[ -n $emerg ]] && (($(grep -c '\[emerg\]' "$NGX_ERROR_LOG" || true) > emerg)); then
                        fail "nginx refused the new config: $(grep '\[emerg\]' "$NGX_ERROR_LOG" | tail -n 1)"
                fi
                now=$(nginx_workers)
                left=0
                for pid in $old; do
                        alive "$pid" && left=1
                done
                if ((left == 0)) && (($(wc -w <<<"$now") == 2)); then
                        return 0
                fi
                sleep 0.1
        done
        fail "nginx did not replace its workers within 30 s (old: $(words <<<"$old"); now: $(nginx_workers | words))"
}

# nginx_reload: SIGHUP to the master, then wait for the new generation of workers; fails at once with
# the master's message if it refused the new config.
nginx_reload() {
        local old emerg
        old=$(nginx_workers)
        emerg=$(grep -c '\[emerg\]' "$NGX_ERROR_LOG" || true)
        kill -HUP "$(nginx_master)"
        nginx_wait_generation "$old" "$emerg"
}

# nginx_check_stops: a graceful stop ends the master and every worker within 10 s (a worker stuck
# in the module would not).
nginx_check_stops() {
        local master kids pid i
        master=$(nginx_master)
        kids=$(children "$master")
        kill -QUIT "$master"
        for ((i = 0; i < 100; i++)); do
                local left=0
                for pid in $master $kids; do
                        alive "$pid" && left=1
                done
                ((left)) || break
                sleep 0.1
        done
        for pid in $master $kids; do
                alive "$pid" && fail "nginx process $pid still runs 10 s after SIGQUIT"
        done
        rm -f "$NGX_PID_FILE"
        ok "nginx stops gracefully (master and workers gone after SIGQUIT)"
}

# nginx_web_apply KEY_ID NAME OUT [options...]: `enclave-acm web apply --server nginx` for key KEY_ID of
# token "web" (provision-keys labels it "web-KEY_ID") with NAME's certificate, pointing the stanza
# $NGX/enclave-acm-web.conf into $NGX/nginx.conf, with the servers' environment: nginx -t loads the
# key through the module, so it needs OPENSSL_CONF and ENCLAVE_ACM_ADDRESS as the master has them, and
# a server the CLI starts inherits them.
nginx_web_apply() {
        local id=$1 name=$2 out=$3
        shift 3
        "${SERVER_ENV[@]}" "$ENCLAVE_ACM" web apply --server nginx --token web --key-id "$id" --key-label "web-$id" \
                --pin-file "$T/pin" --cert "$(cert_of "$name")" --stanza "$NGX/enclave-acm-web.conf" \
                --main-conf "$NGX/nginx.conf" --conf "$NGX/nginx.conf" --port "$PORT" "$@" >"$out" 2>&1
}
