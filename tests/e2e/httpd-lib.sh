# Apache httpd helpers for the e2e tests (sourced after lib.sh): a minimal config of our own (no
# /etc/apache2, no envvars), start, graceful restart, stop. The parent runs as root and loads the keys
# through mod_ssl's SSLCryptoDevice (the libp11 engine); children run as www-data.

HTTPD=$T/httpd
HTTPD_MODULES=${APACHE_MODULES:-/usr/lib/apache2/modules}
mkdir -p "$HTTPD/run" "$HTTPD/htdocs"
chmod 0755 "$HTTPD" "$HTTPD/run" "$HTTPD/htdocs"
echo "ok" >"$HTTPD/htdocs/index.html"
chmod 0644 "$HTTPD/htdocs/index.html"

httpd_bin() {
        command -v apache2 || command -v httpd
}

# httpd_conf OUT MPM MAX_CONN_PER_CHILD [INSTANCE] -- PORT NAME LABEL ID [PORT NAME LABEL ID]...:
# one TLS virtual host per key. INSTANCE (default "main") names the pid file and error log, so that a
# second server can be started next to the first.
httpd_conf() {
        local out=$1 mpm=$2 maxconn=$3 inst=main
        shift 3
        if [[ $1 != -- ]]; then
                inst=$1
                shift
        fi
        shift
        {
                cat <<EOF
ServerRoot $HTTPD
DefaultRuntimeDir $HTTPD/run
PidFile $HTTPD/run/$inst.pid
Mutex file:$HTTPD/run default
LoadModule mpm_${mpm}_module $HTTPD_MODULES/mod_mpm_${mpm}.so
LoadModule authz_core_module $HTTPD_MODULES/mod_authz_core.so
LoadModule dir_module $HTTPD_MODULES/mod_dir.so
LoadModule ssl_module $HTTPD_MODULES/mod_ssl.so
User www-data
Group www-data
ServerName localhost
ErrorLog $LOGS/httpd-$inst-error.log
LogLevel info
# %P: the child that served the request, to count the processes that signed.
LogFormat "%P %{SSL_PROTOCOL}x %>s" e2e
CustomLog $LOGS/httpd-$inst-access.log e2e
KeepAlive Off
StartServers 4
MaxConnectionsPerChild $maxconn
EOF
                if [[ $mpm == prefork ]]; then
                        echo "MinSpareServers 1"
                        echo "MaxSpareServers 16"
                        echo "MaxRequestWorkers 64"
                else
                        echo "ThreadsPerChild 16"
                        echo "MinSpareThreads 16"
                        echo "MaxSpareThreads 256"
                        echo "MaxRequestWorkers 256"
                fi
                cat <<EOF
DocumentRoot $HTTPD/htdocs
<Directory $HTTPD/htdocs>
        Require all granted
</Directory>
SSLCryptoDevice pkcs11
SSLSessionCache none
SSLSessionTickets off
SSLProtocol -all +TLSv1.2 +TLSv1.3
EOF
                while (($# >= 4)); do
                        cat <<EOF
Listen 127.0.0.1:$1
<VirtualHost 127.0.0.1:$1>
        ServerName $(host_of "$2")
        SSLEngine on
        SSLCertificateFile $(cert_of "$2")
        SSLCertificateKeyFile "$(key_uri "$3" "$4")"
</VirtualHost>
EOF
                        shift 4
                done
        } >"$out.tmp"
        mv "$out.tmp" "$out"
}

HTTPD_CONF=$HTTPD/httpd.conf
HTTPD_PID_FILE=$HTTPD/run/main.pid
HTTPD_ERROR_LOG=$LOGS/httpd-main-error.log

httpd_parent() {
        cat "$HTTPD_PID_FILE"
}

httpd_children() {
        children "$(httpd_parent)" | sort -n
}

# httpd_ctl CONF ACTION: apache2 -f CONF -k ACTION with the server environment.
httpd_ctl() {
        "${SERVER_ENV[@]}" "$(httpd_bin)" -f "$1" -k "$2"
}

httpd_stop() {
        local parent kids
        [[ -f $HTTPD_PID_FILE ]] || return 0
        parent=$(httpd_parent)
        alive "$parent" || return 0
        kids=$(children "$parent")
        httpd_ctl "$HTTPD_CONF" stop >/dev/null 2>&1 || kill -TERM "$parent" 2>/dev/null || true
        # shellcheck disable=SC2086 # one pid per word
        stop_pids 15 "$parent" $kids
}

# httpd_start PORT...: start with $HTTPD_CONF, wait until it accepts on every PORT.
httpd_start() {
        local i port
        httpd_ctl "$HTTPD_CONF" start >"$LOGS/httpd-start.log" 2>&1 ||
                fail "apache2 -k start: $(cat "$LOGS/httpd-start.log")"
        STOP_HOOKS+=(httpd_stop)
        for ((i = 0; i < 200; i++)); do
                [[ -s $HTTPD_PID_FILE ]] && [[ -n $(httpd_children) ]] && break
                sleep 0.05
        done
        [[ -s $HTTPD_PID_FILE ]] || fail "apache2 wrote no pid file"
        for port in "$@"; do
                wait_port "$port" || fail "apache2 does not accept on port $port"
        done
}

# httpd_graceful: `apache2 -k graceful` and wait until the new generation runs and every child of
# the old one has exited (30 s at most).
httpd_graceful() {
        local old pid i left before
        old=$(httpd_children)
        before=$(grep -c 'resuming normal operations' "$HTTPD_ERROR_LOG" || true)
        httpd_ctl "$HTTPD_CONF" graceful >"$LOGS/httpd-graceful.log" 2>&1 ||
                fail "apache2 -k graceful: $(cat "$LOGS/httpd-graceful.log")"
        for ((i = 0; i < 300; i++)); do
                left=0
                for pid in $old; do
                        alive "$pid" && left=1
                done
                # "... configured -- resuming normal operations": the new generation runs.
                if ((left == 0)) && (($(grep -c 'resuming normal operations' "$HTTPD_ERROR_LOG" || true) > before)) &&
                        [[ -n $(httpd_children) ]]; then
                        return 0
                fi
                alive "$(httpd_parent)" || fail "apache2 exited on graceful restart: $(tail -n 5 "$HTTPD_ERROR_LOG")"
                sleep 0.1
        done
        fail "apache2 did not replace its children within 30 s after graceful"
}

# httpd_check_stops: `apache2 -k stop` ends the parent and every child within 15 s.
httpd_check_stops() {
        local parent kids pid i left
        parent=$(httpd_parent)
        kids=$(children "$parent")
        httpd_ctl "$HTTPD_CONF" stop >"$LOGS/httpd-stop.log" 2>&1 || fail "apache2 -k stop: $(cat "$LOGS/httpd-stop.log")"
        for ((i = 0; i < 150; i++)); do
                left=0
                for pid in $parent $kids; do
                        alive "$pid" && left=1
                done
                ((left)) || break
                sleep 0.1
        done
        for pid in $parent $kids; do
                alive "$pid" && fail "apache2 process $pid still runs 15 s after -k stop"
        done
        ok "apache2 stops (parent and children gone after -k stop)"
}
