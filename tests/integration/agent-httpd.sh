#!/bin/bash
# enclave-acm-agent with the local launcher, a File source and a real Apache httpd (event MPM) in direct
# mode (`options.service: httpd`, `server_control: direct`, `server_config: <apache2.conf>`): the
# agent rewrites the SSLCertificateFile / SSLCertificateKeyFile lines of a Conf target (an included
# vhost file that starts with a plain key file), adds SSLCryptoDevice pkcs11 and restarts Apache
# gracefully; READY=1 over NOTIFY_SOCKET; Apache serves the provisioned certificate; enclave-token
# killed with SIGKILL is relaunched and re-provisioned and Apache serves again with no restart at all
# (same parent, same generation); a replaced File source (key + chain with an intermediate) is rotated
# on the next sync with a graceful restart while client loops run handshakes, none failing; SIGTERM.
# Apache's parent runs as root with www-data children (as the packaged service does); run as another
# user, every process runs as that user.
# Plain script: exit 0 pass, 77 skip (apache2 is not installed), anything else fail.
set -euo pipefail
. "$(dirname "$0")/agent-lib.sh"

: "${AGENT:?}" "${ENCLAVE_TOKEN:?}" "${P11_MODULE:?}" "${TEST_DATA:?}"
# Under `meson test --setup=valgrind` meson runs this script's bash under valgrind, which reports bash's
# own leaks (exit 66) from every subshell: leave it (valgrind does not follow exec), as lib.sh does.
if [[ ${ENCLAVE_ACM_UNDER_VALGRIND:-} == 1 && -z ${EACM_IT_REEXEC:-} ]]; then
        EACM_IT_REEXEC=1 exec bash "$0" "$@"
fi
SRC_ROOT=$(cd "$TEST_DATA/../.." && pwd)
MPM=${1:-event}

APACHE2=$(command -v apache2 || command -v httpd || true)
[[ -n $APACHE2 ]] || { echo "SKIP: 'apache2' is not installed"; exit 77; }
# Everything else the test drives is in scripts/deps.sh: missing, it is a failure, not a skip.
for t in apachectl openssl python3 curl; do
        command -v "$t" >/dev/null 2>&1 || fail "'$t' is not installed (scripts/deps.sh installs it)"
done
ENGINE=$(openssl version -e 2>/dev/null | sed -n 's/^ENGINESDIR: "\(.*\)"$/\1/p')/pkcs11.so
[[ -f $ENGINE ]] || fail "the libp11 engine ($ENGINE, package libengine-pkcs11-openssl) is not installed"
MODULES=${APACHE_MODULES:-/usr/lib/apache2/modules}
for m in "mpm_$MPM" ssl authz_core dir; do
        [[ -f $MODULES/mod_$m.so ]] || fail "no $MODULES/mod_$m.so"
done

AGENT_PID='' NOTIFY_PID='' PARENT=''
LOOP_PIDS=()
T=$(mktemp -d /tmp/eacm-ahttpd.XXXXXX)
chmod 0755 "$T"
[[ $T =~ ^[A-Za-z0-9/._-]+$ ]] || fail "temp dir '$T' would need percent-encoding in a PKCS#11 URI"

# children PID: PID's children that have not exited (an exited child waits a moment to be reaped).
children() { ps -o pid=,stat= --ppid "$1" 2>/dev/null | awk '$2 !~ /^Z/ { print $1 }' | sort -n || true; }
words() { tr '\n' ' ' | sed 's/ *$//'; }

cleanup() {
        local rc=$? pid i kids=
        trap - EXIT
        [[ -d $T ]] && touch "$T/stop-clients"
        for pid in "${LOOP_PIDS[@]}"; do
                for ((i = 0; i < 50; i++)); do alive "$pid" || break; sleep 0.1; done
                kill -KILL "$pid" 2>/dev/null || true
        done
        if [[ -n $AGENT_PID ]]; then
                kill -TERM "$AGENT_PID" 2>/dev/null || true
                for ((i = 0; i < 50; i++)); do alive "$AGENT_PID" || break; sleep 0.1; done
                kill -KILL "$AGENT_PID" 2>/dev/null || true
        fi
        [[ -z $PARENT && -s $T/httpd/run/httpd.pid ]] && PARENT=$(cat "$T/httpd/run/httpd.pid")
        if [[ -n $PARENT ]] && alive "$PARENT"; then
                kids=$(children "$PARENT")
                kill -TERM "$PARENT" 2>/dev/null || true
                for ((i = 0; i < 100; i++)); do
                        local left=0
                        for pid in $PARENT $kids; do alive "$pid" && left=1; done
                        ((left)) || break
                        sleep 0.1
                done
                for pid in $PARENT $kids; do kill -KILL "$pid" 2>/dev/null || true; done
        fi
        [[ -n $NOTIFY_PID ]] && kill "$NOTIFY_PID" 2>/dev/null || true
        if [[ $rc -ne 0 && $rc -ne 77 ]]; then
                for f in "$T"/agent.log "$T"/httpd-error.log "$T"/notify.log "$T"/vhost.conf; do
                        [[ -s $f ]] && { echo "--- $f (last 40 lines) ---" >&2; tail -n 40 "$f" >&2; } || true
                done
        fi
        keep_logs "$T"
        [[ ${AGENT_TEST_KEEP:-0} == 1 ]] && echo "# kept $T" >&2 || rm -rf "$T"
        exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM


generations() { grep -c 'resuming normal operations' "$T/httpd-error.log" || true; }


PORT=$(free_port)
mkdir -p "$T/src" "$T/run" "$T/state" "$T/httpd/run" "$T/httpd/htdocs"
chmod 0755 "$T/run" "$T/httpd" "$T/httpd/run" "$T/httpd/htdocs"
echo ok >"$T/httpd/htdocs/index.html"
chmod 0644 "$T/httpd/htdocs/index.html"
cp "$TEST_DATA/rsa2048.key.pem" "$T/src/key.pem"
cp "$TEST_DATA/rsa2048.crt.pem" "$T/src/chain.pem"
FP_OLD=$(fp_of "$TEST_DATA/rsa3072.crt.pem")
FP_RSA=$(fp_of "$TEST_DATA/rsa2048.crt.pem")
FP_NEW=$(fp_of "$TEST_DATA/chain-leaf.crt.pem")
# What the client loops trust across the rotation: the self-signed RSA certificate and the new chain's root.
cat "$TEST_DATA/rsa2048.crt.pem" "$TEST_DATA/chain-root.crt.pem" >"$T/rotation-ca.pem"

sed "s|^MODULE_PATH = .*|MODULE_PATH = $P11_MODULE|; s|^dynamic_path = .*|dynamic_path = $ENGINE|" \
        "$SRC_ROOT/packaging/openssl-enclave-acm.cnf" >"$T/openssl.cnf"
grep -q "^MODULE_PATH = $P11_MODULE\$" "$T/openssl.cnf" || fail "cannot point the OpenSSL config at the module"
# The environment Apache runs with (as systemd's Environment= would give it) and the agent passes on to
# apachectl: the engine config and the address file the local launcher writes.
export OPENSSL_CONF=$T/openssl.cnf
export ENCLAVE_ACM_ADDRESS_FILE=$T/run/address
export ENCLAVE_ACM_NO_MLOCK=1

USER_LINES=
if [[ $(id -u) == 0 ]]; then
        id www-data >/dev/null 2>&1 || fail "running as root, but there is no www-data user for Apache's children"
        USER_LINES=$'User www-data\nGroup www-data'
fi
# The main config: no SSLCryptoDevice (the agent adds it to the vhost file) and no ${APACHE_*}
# variables (apachectl sources /etc/apache2/envvars, which must not matter).
cat >"$T/apache2.conf" <<EOF
ServerRoot $T/httpd
DefaultRuntimeDir $T/httpd/run
PidFile $T/httpd/run/httpd.pid
Mutex file:$T/httpd/run default
LoadModule mpm_${MPM}_module $MODULES/mod_mpm_${MPM}.so
LoadModule authz_core_module $MODULES/mod_authz_core.so
LoadModule dir_module $MODULES/mod_dir.so
LoadModule ssl_module $MODULES/mod_ssl.so
$USER_LINES
ServerName localhost
ErrorLog $T/httpd-error.log
LogLevel info
LogFormat "%P %{SSL_PROTOCOL}x %>s" agent
CustomLog $T/httpd-access.log agent
KeepAlive Off
StartServers 2
ThreadsPerChild 16
MinSpareThreads 16
MaxSpareThreads 64
MaxRequestWorkers 64
MinSpareServers 1
MaxSpareServers 8
DocumentRoot $T/httpd/htdocs
<Directory $T/httpd/htdocs>
        Require all granted
</Directory>
SSLSessionCache none
SSLSessionTickets off
SSLProtocol -all +TLSv1.2 +TLSv1.3
Include $T/vhost.conf
EOF
[[ $MPM == prefork ]] && sed -i '/^ThreadsPerChild\|^MinSpareThreads\|^MaxSpareThreads/d' "$T/apache2.conf"
[[ $MPM != prefork ]] && sed -i '/^MinSpareServers\|^MaxSpareServers/d' "$T/apache2.conf"
# The Conf target: a virtual host with a plain key file, as before the agent ran; indented directives
# and a comment that must survive.
cp "$TEST_DATA/rsa3072.key.pem" "$T/httpd/old.key.pem"
cat >"$T/vhost.conf" <<EOF
# TLS virtual host kept up to date by enclave-acm-agent.
Listen 127.0.0.1:$PORT
<VirtualHost 127.0.0.1:$PORT>
    ServerName localhost
    SSLEngine on
    SSLCertificateFile $TEST_DATA/rsa3072.crt.pem
    SSLCertificateKeyFile $T/httpd/old.key.pem
</VirtualHost>
EOF
cat >"$T/acm.yaml" <<EOF
enclave:
  launcher: local
  token_binary: $ENCLAVE_TOKEN
  boot_timeout_ms: 10000
options:
  service: httpd
  server_control: direct
  server_config: $T/apache2.conf
  runtime_dir: $T/run
  state_dir: $T/state
  sync_interval_secs: 2
  reload_wait_ms: 0
log:
  level: debug
tokens:
  - label: web
    source:
      File:
        key: $T/src/key.pem
        certificate: $T/src/chain.pem
    target:
      Conf:
        path: $T/vhost.conf
    refresh_interval_secs: 60
EOF

"$AGENT" --config "$T/acm.yaml" --check-config >"$T/check.log" 2>&1 || { cat "$T/check.log"; fail "--check-config"; }
ok "the test configuration is valid"

"$APACHE2" -f "$T/apache2.conf" -t >"$T/httpd-t.log" 2>&1 || { cat "$T/httpd-t.log"; fail "apache2 -t"; }
"$APACHE2" -f "$T/apache2.conf" -k start >"$T/httpd-start.log" 2>&1 || { cat "$T/httpd-start.log"; fail "apache2 -k start"; }
wait_for 10 "apache2 writes its pid file" test -s "$T/httpd/run/httpd.pid"
PARENT=$(cat "$T/httpd/run/httpd.pid")
wait_for 10 "apache2 serves the plain-file certificate" serves "$FP_OLD"
ok "apache2 ($MPM MPM, parent $PARENT as $(ps -o user= -p "$PARENT")) serves with a plain key file"

# NOTIFY_SOCKET listener: one line per datagram.
start_notify_listener

GEN0=$(generations)
NOTIFY_SOCKET=$T/notify.sock WATCHDOG_USEC=2000000 "$AGENT" --config "$T/acm.yaml" >"$T/agent.log" 2>&1 &
AGENT_PID=$!
wait_for 30 "the agent sends READY=1" grep -q 'READY=1' "$T/notify.log"
ok "READY=1 received"
grep -q "Token 'web': Conf '$T/vhost.conf' now uses key id 1; httpd reloaded gracefully" "$T/agent.log" ||
        fail "the agent does not log the Conf target applied with a graceful restart"

# The vhost file: the two lines rewritten where they stood (indentation kept), SSLCryptoDevice added,
# the rest byte for byte.
URI="pkcs11:model=enclave-token;manufacturer=enclave-acm;token=web;id=%01;type=private?pin-source=file:$T/run/web.pin"
grep -qxF "    SSLCertificateKeyFile \"$URI\"" "$T/vhost.conf" ||
        fail "SSLCertificateKeyFile is not \"$URI\" (token 'web', key id 1, pin-source file)"
grep -qxF "    SSLCertificateFile \"$T/run/web.1.crt.pem\"" "$T/vhost.conf" ||
        fail "SSLCertificateFile does not name the chain file the agent wrote"
grep -qx 'SSLCryptoDevice pkcs11' "$T/vhost.conf" || fail "no SSLCryptoDevice pkcs11 line in the vhost file"
grep -q 'pin-value' "$T/vhost.conf" && fail "the vhost file holds the PIN itself"
grep -qxF '# TLS virtual host kept up to date by enclave-acm-agent.' "$T/vhost.conf" &&
        grep -qxF '    ServerName localhost' "$T/vhost.conf" || fail "the rest of the vhost file changed"
cmp -s "$T/run/web.1.crt.pem" "$TEST_DATA/rsa2048.crt.pem" || fail "the chain file is not the source's chain"
[[ $(stat -c %a "$T/run/web.pin") == 400 ]] || fail "the pin file is not 0400"
[[ $(stat -c %a "$T/state/pins/web") == 600 ]] || fail "the persisted PIN is not 0600"
ok "the vhost file points at the token's key (pin-source file, 0400) and chain file; SSLCryptoDevice added"

wait_for 20 "apache2 serves the token's certificate" serves "$FP_RSA"
[[ $(cat "$T/httpd/run/httpd.pid") == "$PARENT" ]] && alive "$PARENT" || fail "apache2's parent changed"
(($(generations) > GEN0)) || fail "apache2 did not restart gracefully"
curl -sS --max-time 10 --cacert "$TEST_DATA/rsa2048.crt.pem" --resolve "rsa2048.enclave-acm.test:$PORT:127.0.0.1" \
        "https://rsa2048.enclave-acm.test:$PORT/" >"$T/curl.out" 2>&1 || { cat "$T/curl.out"; fail "curl"; }
[[ $(cat "$T/curl.out") == ok ]] || fail "curl got '$(cat "$T/curl.out")'"
ok "apache2 serves the provisioned certificate after a graceful restart (parent $PARENT unchanged; curl verifies it)"
wait_for 10 "WATCHDOG=1" grep -q 'WATCHDOG=1' "$T/notify.log"
ok "WATCHDOG=1 sent"

# enclave-token killed: relaunched and re-provisioned (same key id, same files), Apache not restarted
# or reloaded at all: its children reconnect to the new enclave-token.
TOKEN_PID=$(pgrep -P "$AGENT_PID" -x enclave-token || true)
[[ -n $TOKEN_PID ]] || fail "no enclave-token child of the agent"
VHOST_BEFORE=$(md5sum <"$T/vhost.conf")
GEN1=$(generations)
KIDS1=$(children "$PARENT")
kill -KILL "$TOKEN_PID"
wait_for 30 "the agent relaunches enclave-token" grep -q 'launch 2)' "$T/agent.log"
wait_for 30 "apache2 serves again after the relaunch" serves "$FP_RSA"
for ((i = 0; i < 20; i++)); do serves "$FP_RSA" || fail "handshake $i after the relaunch failed"; done
[[ $(cat "$T/httpd/run/httpd.pid") == "$PARENT" ]] && alive "$PARENT" || fail "apache2's parent changed after the relaunch"
[[ $(md5sum <"$T/vhost.conf") == "$VHOST_BEFORE" ]] || fail "the vhost file changed after the relaunch"
[[ $(generations) == "$GEN1" ]] || fail "apache2 was restarted after the relaunch"
ok "enclave-token killed: relaunched, re-provisioned; apache2 serves again (20 handshakes) with no restart (parent $PARENT, children $(words <<<"$KIDS1") -> $(children "$PARENT" | words))"

# Rotation: the File source gets a new key and a chain with an intermediate. On the next sync the agent
# provisions key id 2, writes web.2.crt.pem, rewrites the vhost file and restarts Apache gracefully.
# Client loops run handshakes (each verified against the old and the new trust anchor) across it.
client_loop() { # N
        local out=$T/client.$1 n=0 end=$((SECONDS + 120))
        : >"$out"
        while [[ ! -e $T/stop-clients ]] && ((SECONDS < end)); do
                n=$((n + 1))
                if timeout 10 openssl s_client -connect "127.0.0.1:$PORT" -CAfile "$T/rotation-ca.pem" \
                        -verify_return_error </dev/null >"$out.s" 2>&1 && grep -q '^Verification: OK$' "$out.s"; then
                        echo "ok $(openssl x509 -in "$out.s" -noout -fingerprint -sha256 | sed 's/^.*=//')" >>"$out"
                else
                        echo "FAIL $n" >>"$out"
                        cp "$out.s" "$out.fail.$n"
                fi
        done
}
client_count() { cat "$T"/client.[0-9] 2>/dev/null | grep -Ec -- "$1" || true; }
progress() { (($(client_count '^(ok|FAIL) ') >= $1)); }
CLIENTS=3
rm -f "$T/stop-clients"
for ((c = 0; c < CLIENTS; c++)); do
        client_loop "$c" &
        LOOP_PIDS+=($!)
done
wait_for 30 "the client loops run" progress 20
ok "$CLIENTS client loops run handshakes against apache2"

KIDS_OLD=$(children "$PARENT")
GEN2=$(generations)
cp "$TEST_DATA/chain-leaf.key.pem" "$T/src/key.pem.new" && mv "$T/src/key.pem.new" "$T/src/key.pem"
cp "$TEST_DATA/chain-leaf.chain.pem" "$T/src/chain.pem.new" && mv "$T/src/chain.pem.new" "$T/src/chain.pem"
wait_for 30 "the agent rotates to key id 2" grep -q "now uses key id 2; httpd reloaded gracefully" "$T/agent.log"
grep -q 'id=%02' "$T/vhost.conf" || fail "the vhost file does not point at key id 2"
grep -qF "SSLCertificateFile \"$T/run/web.2.crt.pem\"" "$T/vhost.conf" || fail "the vhost file does not name web.2.crt.pem"
[[ -e $T/run/web.1.crt.pem ]] || fail "the previous chain file was deleted"
ok "the source changed: key id 2 provisioned, the vhost file rewritten, apachectl graceful run"
# The old generation's children finish and exit; the new one serves the new certificate.
old_gone() {
        local pid
        for pid in $KIDS_OLD; do alive "$pid" && return 1; done
        return 0
}
wait_for 30 "the old generation's children exit" old_gone
wait_for 10 "apache2 serves the rotated certificate" serves "$FP_NEW"
[[ $(cat "$T/httpd/run/httpd.pid") == "$PARENT" ]] && alive "$PARENT" || fail "apache2's parent changed across the rotation"
(($(generations) == GEN2 + 1)) || fail "expected one graceful restart for the rotation, saw $(($(generations) - GEN2))"
ok "graceful restart: parent $PARENT unchanged, children $(words <<<"$KIDS_OLD") replaced by $(children "$PARENT" | words)"
# Every handshake from now on must show the new certificate.
declare -a MARK=()
for ((c = 0; c < CLIENTS; c++)); do MARK+=("$(wc -l <"$T/client.$c")"); done
N=$(client_count '^(ok|FAIL) ')
wait_for 30 "the client loops go on after the rotation" progress $((N + 30))
touch "$T/stop-clients"
for pid in "${LOOP_PIDS[@]}"; do wait "$pid" || true; done
LOOP_PIDS=()
TOTAL=$(client_count '^(ok|FAIL) ')
FAILED=$(client_count '^FAIL ')
OLDN=$(client_count "^ok $FP_RSA\$")
NEWN=$(client_count "^ok $FP_NEW\$")
if ((FAILED > 0)); then
        for f in "$T"/client.*.fail.*; do echo "--- $f ---" >&2; tail -n 20 "$f" >&2; break; done
        fail "$FAILED of $TOTAL handshakes failed across the rotation"
fi
((OLDN + NEWN == TOTAL)) || fail "$((TOTAL - OLDN - NEWN)) of $TOTAL handshakes served an unexpected certificate"
((OLDN > 0 && NEWN > 0)) || fail "the loops saw $OLDN old and $NEWN new certificates"
STALE=0
for ((c = 0; c < CLIENTS; c++)); do
        # Skip the handshake that may have been in flight at the mark.
        STALE=$((STALE + $(tail -n +"$((MARK[c] + 2))" "$T/client.$c" | grep -vc "^ok $FP_NEW\$" || true)))
done
((STALE == 0)) || fail "$STALE handshakes after the old children exited did not serve the new certificate"
ok "rotation: $TOTAL handshakes in $CLIENTS loops, 0 failed ($OLDN old certificate, $NEWN new; only new after the switch)"
timeout 10 openssl s_client -connect "127.0.0.1:$PORT" -CAfile "$TEST_DATA/chain-root.crt.pem" -verify_return_error \
        -verify_hostname chain-leaf.enclave-acm.test </dev/null >"$T/s_client.out" 2>&1 || { cat "$T/s_client.out"; fail "s_client"; }
grep -q '^Verification: OK$' "$T/s_client.out" || fail "the new chain does not verify against its root"
grep -q '^ 1 s:.*CN = enclave-acm test intermediate CA' "$T/s_client.out" ||
        fail "apache2 does not send the intermediate certificate of the new chain"
ok "the new chain (leaf + intermediate) is served"

# SIGTERM: clean stop, enclave-token gone, certificate files and the vhost file kept.
TOKEN_PID=$(pgrep -P "$AGENT_PID" -x enclave-token || true)
stop_agent
[[ -z $TOKEN_PID ]] || ! alive "$TOKEN_PID" || fail "enclave-token still runs"
grep -q 'STOPPING=1' "$T/notify.log" || fail "no STOPPING=1"
[[ -e $T/run/web.1.crt.pem && -e $T/run/web.2.crt.pem ]] || fail "certificate files were deleted"
grep -q 'id=%02' "$T/vhost.conf" || fail "the vhost file changed on stop"
alive "$PARENT" || fail "apache2's parent exited with the agent"
ok "SIGTERM: exit 0, STOPPING=1, enclave-token stopped, certificate files and vhost file kept, apache2 still runs"

echo "1..$CHECKS"
