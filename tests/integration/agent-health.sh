#!/bin/bash
# The agent's in-band health check and the enclave upgrade, with the local launcher, a File source and a
# real nginx in direct mode:
# - `enclave-acm health` says healthy (0), degraded (1) for a certificate within expiry_warning_days, and
#   `status` shows the same facts;
# - enclave-token SIGSTOPped: `health` says down (2) within the configured bound, the agent relaunches the
#   enclave after health_misses misses, signing resumes, nginx's master is unchanged, and SIGCONT of the
#   old process leaves one enclave-token;
# - upgrade: the token binary changes (a copy) and SIGHUP: a client signing through the module in a loop,
#   a handshake loop and wrk against nginx see no failure while the agent swaps enclaves; the old
#   enclave-token is gone afterwards, the new one runs the copy, nginx's master is unchanged.
# Plain script: exit 0 pass, 77 skip, anything else fail. Runs nginx's master as root, workers as www-data.
set -euo pipefail
# Under `meson test --setup=valgrind` meson runs this script's bash under valgrind, which reports bash's
# own leaks: leave it (valgrind does not follow exec), as lib.sh and agent-metrics.sh do.
if [[ ${ENCLAVE_ACM_UNDER_VALGRIND:-} == 1 && -z ${EACM_IT_REEXEC:-} ]]; then
        EACM_IT_REEXEC=1 exec bash "$0" "$@"
fi
. "$(dirname "$0")/agent-lib.sh"

: "${AGENT:?}" "${ENCLAVE_TOKEN:?}" "${P11_MODULE:?}" "${P11_CLIENT:?}" "${TEST_DATA:?}" "${ENCLAVE_ACM:?}"
agent_nginx_skip_unless python3 wrk

AGENT_PID= NOTIFY_PID= LOOP_PIDS=()
PIN=health-test-pin-1234
INTERVAL=1 TIMEOUT_MS=500 MISSES=2
# The bound the configuration promises for "down" (one interval, one ping timeout), plus a wide margin for
# a loaded machine: a failure deadline, not a measurement.
DOWN_BOUND=$((INTERVAL + 1 + 20))

T=$(mktemp -d /tmp/eacm-health.XXXXXX)
chmod 0755 "$T"
cleanup() {
        local rc=$? p
        trap - EXIT
        for p in "${LOOP_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
        [[ -n ${STOPPED_PID:-} ]] && kill -CONT "$STOPPED_PID" 2>/dev/null || true
        cleanup_agent "$rc" "$T/agent.log" "$T/nginx-error.log" "$T/sign-loop.log" "$T/wrk.out"
        [[ -f $T/nginx.pid ]] && kill -QUIT "$(cat "$T/nginx.pid")" 2>/dev/null && sleep 0.5 || true
        [[ ${AGENT_TEST_KEEP:-0} == 1 ]] && echo "# kept $T" >&2 || rm -rf "$T"
        exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

master() { cat "$T/nginx.pid"; }
# The agent's enclave-token children (the upgrade's two run at once for a while).
tokens() { pgrep -P "$AGENT_PID" -f enclave-token || true; }
# health_is CODE: `enclave-acm health` exits with CODE.
health_is() {
        local rc=0
        "$ENCLAVE_ACM" health --runtime-dir "$T/run" >"$T/health.out" 2>&1 || rc=$?
        [[ $rc == "$1" ]]
}

PORT=$(free_port)
mkdir -p "$T/src" "$T/run" "$T/state" "$T/nginx"
chmod 0755 "$T/run" "$T/nginx"
cp "$TEST_DATA/rsa2048.key.pem" "$T/src/key.pem"
cp "$TEST_DATA/rsa2048.crt.pem" "$T/src/chain.pem"
FP_RSA=$(fp_of "$TEST_DATA/rsa2048.crt.pem")
# The second binary of the upgrade: a copy of the same program at another path.
cp "$ENCLAVE_TOKEN" "$T/enclave-token-v2"

nginx_openssl_cnf "$T" "$P11_MODULE"
export OPENSSL_CONF=$T/openssl.cnf
export ENCLAVE_ACM_ADDRESS_FILE=$T/run/address
export ENCLAVE_ACM_NO_MLOCK=1
export ENCLAVE_ACM_IMDS_ENDPOINT=http://127.0.0.1:9

cp "$TEST_DATA/rsa3072.key.pem" "$T/nginx/old.key.pem"
cat >"$T/stanza.conf" <<EOF
ssl_certificate $TEST_DATA/rsa3072.crt.pem;
ssl_certificate_key $T/nginx/old.key.pem;
EOF
agent_nginx_conf "$PORT" "keepalive_requests 20;"
# write_config BINARY EXPIRY_WARNING_DAYS
write_config() {
        {
                agent_yaml_local "$T" "$1" 600
                cat <<EOF
  health_interval_secs: $INTERVAL
  health_timeout_ms: $TIMEOUT_MS
  health_misses: $MISSES
  expiry_warning_days: $2
  upgrade_drain_secs: 2
  upgrade_drain_max_secs: 8
log:
  level: debug
  enable_timestamp: true
tokens:
  - label: web
    pin: $PIN
    source:
      File:
        key: $T/src/key.pem
        certificate: $T/src/chain.pem
    target:
      NginxStanza:
        path: $T/stanza.conf
    refresh_interval_secs: 600
EOF
        } >"$T/acm.yaml.new"
        mv "$T/acm.yaml.new" "$T/acm.yaml"
}
write_config "$ENCLAVE_TOKEN" 30
"$AGENT" --config "$T/acm.yaml" --check-config >"$T/check.log" 2>&1 || { cat "$T/check.log"; fail "--check-config"; }
ok "the test configuration (health and upgrade keys) is valid"

# Before any agent ran: down, saying why.
health_is 2 || { cat "$T/health.out"; fail "health without an agent does not exit 2"; }
grep -q "no state file" "$T/health.out" || { cat "$T/health.out"; fail "health without an agent: no reason"; }
ok "enclave-acm health without an agent: down (2), no state file"

NGINX=$(command -v nginx)
"$NGINX" -c "$T/nginx.conf" -e "$T/nginx-error.log" || fail "nginx did not start"
wait_for 10 "nginx serves the plain-file certificate" serves "$(fp_of "$TEST_DATA/rsa3072.crt.pem")"
MASTER=$(master)

start_notify_listener
NOTIFY_SOCKET=$T/notify.sock WATCHDOG_USEC=2000000 "$AGENT" --config "$T/acm.yaml" >"$T/agent.log" 2>&1 &
AGENT_PID=$!
wait_for 30 "the agent sends READY=1" grep -q 'READY=1' "$T/notify.log"
wait_for 20 "nginx serves the token's certificate" serves "$FP_RSA"
wait_for 20 "health says healthy after a ping" bash -c "'$ENCLAVE_ACM' health --runtime-dir '$T/run' --json | grep -q '\"ping\": \"ok\"'"
health_is 0 || { cat "$T/health.out"; fail "health does not exit 0"; }
grep -q "^HEALTHY: 0 problems" "$T/health.out" || { cat "$T/health.out"; fail "health output"; }
"$ENCLAVE_ACM" health --json --runtime-dir "$T/run" >"$T/health.json" || fail "health --json"
python3 - "$T/health.json" "$INTERVAL" "$TIMEOUT_MS" "$MISSES" <<'PY' || { cat "$T/health.json"; fail "health --json"; }
import json, sys
h = json.load(open(sys.argv[1]))
assert h["level"] == "healthy" and h["exit_status"] == 0 and h["agent_running"] and not h["stale"], h
assert h["ping"] == "ok" and h["ping_usec"] > 0 and h["misses"] == 0, h
assert h["interval_secs"] == int(sys.argv[2]) and h["timeout_ms"] == int(sys.argv[3]), h
assert h["max_misses"] == int(sys.argv[4]) and h["expiry_warning_days"] == 30 and h["problems"] == [], h
PY
ok "enclave-acm health: healthy (0) once a ping was answered; --json carries the facts"
wait_for 10 "WATCHDOG=1" grep -q 'WATCHDOG=1' "$T/notify.log"
ok "WATCHDOG=1 fed while the pings work"

"$ENCLAVE_ACM" status --runtime-dir "$T/run" >"$T/status.txt" 2>&1 || { cat "$T/status.txt"; fail "status failed"; }
grep -q "^Health:    healthy (last in-band ping answered in" "$T/status.txt" || { cat "$T/status.txt"; fail "status shows no health"; }
"$ENCLAVE_ACM" status --json --runtime-dir "$T/run" | python3 -c '
import json, sys
s = json.load(sys.stdin)
assert s["health"]["level"] == "healthy" and s["health"]["ping"] == "ok", s["health"]' || fail "status --json: health"
ok "enclave-acm status shows the same health facts"

# Degraded: the certificate (notAfter 2126) is within an expiry warning of 99999 days.
write_config "$ENCLAVE_TOKEN" 99999
kill -HUP "$AGENT_PID"
wait_for 20 "health says degraded" health_is 1
grep -q "^DEGRADED: 1 problem" "$T/health.out" && grep -q "^token 'web': certificate expires in" "$T/health.out" ||
        { cat "$T/health.out"; fail "degraded output"; }
ok "a certificate within expiry_warning_days: degraded (1), one line naming the token"
write_config "$ENCLAVE_TOKEN" 30
kill -HUP "$AGENT_PID"
wait_for 20 "health says healthy again" health_is 0
ok "expiry_warning_days back to 30: healthy again"

# Frozen enclave-token: down within the bound, relaunched after MISSES misses, signing resumes.
OLD=$(tokens)
[[ -n $OLD && $OLD != *$'\n'* ]] || fail "not exactly one enclave-token child: '$OLD'"
LAUNCHES=$(grep -c 'Enclave up (local launcher' "$T/agent.log")
STOPPED_PID=$OLD
kill -STOP "$OLD"
wait_for "$DOWN_BOUND" "health says down" health_is 2
grep -q "^enclave: missed [0-9]* in-band ping" "$T/health.out" || { cat "$T/health.out"; fail "down output"; }
ok "enclave-token stopped: enclave-acm health says down (2) within the configured bound"
wait_for 60 "the agent relaunches the enclave" bash -c "(( \$(grep -c 'Enclave up (local launcher' '$T/agent.log') > $LAUNCHES ))"
grep -q "missed $MISSES in-band pings in a row: stopping it" "$T/agent.log" || fail "the agent does not say why it relaunched"
awk '/in-band pings in a row: stopping it/ { s = 1 } s && /Stopped, keys wiped/ { f = 1 } END { exit !f }' "$T/agent.log" ||
        fail "the frozen enclave-token did not wipe its keys when stopped"
wait_for 30 "nginx serves again" serves "$FP_RSA"
wait_for 20 "health says healthy after the relaunch" health_is 0
[[ $(master) == "$MASTER" ]] || fail "nginx's master changed"
"$P11_CLIENT" "$P11_MODULE" web open "login:$PIN" findkey signloop:5:SHA256-RSA-PKCS:"$T/acm.yaml" >"$T/sign.out" 2>&1 ||
        { cat "$T/sign.out"; fail "signing through the module after the relaunch"; }
ok "after $MISSES missed pings the agent stopped the frozen enclave (keys wiped) and launched another: signing resumes, healthy again, nginx master $MASTER unchanged"
grep -q '"relaunches": 1' <("$ENCLAVE_ACM" health --json --runtime-dir "$T/run") || fail "the relaunch is not counted"
kill -CONT "$OLD" 2>/dev/null || true
STOPPED_PID=
sleep 1
! alive "$OLD" || fail "the frozen enclave-token (pid $OLD) still runs after SIGCONT"
N=$(tokens | wc -l)
[[ $N == 1 ]] || fail "$N enclave-token processes after SIGCONT of the old one"
ok "SIGCONT of the frozen enclave-token: it is gone, one enclave-token runs"

# Upgrade under load: a signing loop through the module (new processes and one long-lived one), a
# handshake loop and wrk; the token binary changes and SIGHUP swaps the enclaves.
OLD=$(tokens)
head -c 1000 /dev/urandom >"$T/data"
touch "$T/sign-failures"
sign_loop() {
        while [[ ! -e $T/stop ]]; do
                "$P11_CLIENT" "$P11_MODULE" web open "login:$PIN" findkey signloop:20:SHA256-RSA-PKCS:"$T/data" \
                        >>"$T/sign-loop.log" 2>&1 || echo fail >>"$T/sign-failures"
        done
}
long_signer() {
        # one process, its pooled connection to the old enclave: the old one is stopped while that
        # connection is open (so only at upgrade_drain_max_secs), and the next call moves to the new one
        "$P11_CLIENT" "$P11_MODULE" web open "login:$PIN" findkey signloop:200:SHA256-RSA-PKCS:"$T/data" \
                touch:"$T/long.ready" wait:"$T/upgraded" signloop:200:SHA256-RSA-PKCS:"$T/data" \
                >"$T/long-signer.log" 2>&1 || echo fail >>"$T/sign-failures"
}
handshakes() {
        local fails=0 n=0
        while [[ ! -e $T/stop ]]; do
                timeout 10 openssl s_client -connect "127.0.0.1:$PORT" </dev/null >/dev/null 2>&1 || fails=$((fails + 1))
                n=$((n + 1))
        done
        echo "$fails $n" >"$T/handshake-failures"
}
sign_loop &
LOOP_PIDS+=($!)
long_signer &
LONG=$!
LOOP_PIDS+=("$LONG")
handshakes &
HS=$!
LOOP_PIDS+=("$HS")
# bounded load: 2 threads, 8 connections, at most 100 requests per connection (keepalive_requests 20
# makes the connections, and so the handshakes, turn over)
# wrk's --timeout: slow is not failed (a loaded 2-CPU machine stalls a request for seconds); a call the
# module gives up on (ENCLAVE_ACM_TIMEOUT_MS, 5 s) fails the handshake, which wrk counts as a socket error.
timeout 120 wrk -t2 -c8 -d25s --timeout 20s "https://127.0.0.1:$PORT/" >"$T/wrk.out" 2>&1 &
WRK=$!
LOOP_PIDS+=("$WRK")
wait_for 60 "the long-lived signer is ready" test -e "$T/long.ready"
sleep 2
RELOADS=$(grep -c 'reloaded gracefully' "$T/agent.log" || true)
write_config "$T/enclave-token-v2" 30
kill -HUP "$AGENT_PID"
wait_for 30 "the agent starts the new enclave next to the old one" grep -q 'Enclave upgrade: starting the new enclave' "$T/agent.log"
wait_for 30 "the address file points at the new enclave" grep -q 'data.1.sock' "$T/run/address"
wait_for 10 "status shows the drain" bash -c "'$ENCLAVE_ACM' status --runtime-dir '$T/run' | grep -q 'upgrade: the old enclave (launch [0-9]*) drains'"
wait_for 60 "the upgrade ends" grep -q 'Enclave upgrade done' "$T/agent.log"
# enclave-token logs to the agent's stderr: the old one's last words come after the agent stopped it
awk '/Enclave upgrade: the old enclave .*stopping it/ { s = 1 } s && /Stopped, keys wiped/ { f = 1 } END { exit !f }' \
        "$T/agent.log" || fail "the old enclave-token did not say it wiped its keys"
ok "SIGHUP with a new token binary: the new enclave is provisioned next to the old one, the address file moved, the old one drained and stopped (keys wiped)"
touch "$T/upgraded"
sleep 2
touch "$T/stop"
wait "$WRK" || fail "wrk failed: $(cat "$T/wrk.out")"
wait "$HS" || true
wait "$LONG" || true
for p in "${LOOP_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
LOOP_PIDS=()
[[ ! -s $T/sign-failures ]] || fail "$(wc -l <"$T/sign-failures") signing runs through the module failed across the upgrade"
[[ $(grep -c "^ok .*signloop:200" "$T/long-signer.log") == 2 ]] || { cat "$T/long-signer.log"; fail "the long-lived signer did not finish"; }
read -r HS_FAILS HS_N <"$T/handshake-failures"
[[ $HS_FAILS == 0 ]] || fail "$HS_FAILS of $HS_N handshakes failed across the upgrade"
! grep -qE "Socket errors|Non-2xx" "$T/wrk.out" || fail "wrk saw errors: $(cat "$T/wrk.out")"
grep -qE "requests in" "$T/wrk.out" || fail "wrk did not run: $(cat "$T/wrk.out")"
ok "across the upgrade: $(grep -c '^ok .*signloop:20' "$T/sign-loop.log") signing runs, a long-lived process, $HS_N handshakes and wrk ($(grep -o '[0-9]* requests in' "$T/wrk.out")): 0 failed"
! alive "$OLD" || fail "the old enclave-token (pid $OLD) still runs"
NEW=$(tokens)
[[ -n $NEW && $NEW != *$'\n'* ]] || fail "not exactly one enclave-token after the upgrade: '$NEW'"
[[ $(readlink "/proc/$NEW/exe") == "$T/enclave-token-v2" ]] || fail "the running enclave-token is $(readlink "/proc/$NEW/exe")"
[[ $(master) == "$MASTER" ]] || fail "nginx's master changed"
[[ $(grep -c 'reloaded gracefully' "$T/agent.log" || true) == "$RELOADS" ]] || fail "nginx was reloaded"
health_is 0 || { cat "$T/health.out"; fail "not healthy after the upgrade"; }
ok "the old enclave-token is gone, the new one runs the new binary, nginx master unchanged and not reloaded, healthy"

# An upgrade whose new enclave refuses the tokens (a wrapper drops --dev: plaintext keys are refused):
# abandoned, the running enclave keeps serving, the new one is stopped.
cat >"$T/etok-nodev" <<EOF
#!/bin/bash
args=()
for a in "\$@"; do [[ \$a == --dev ]] || args+=("\$a"); done
exec "$ENCLAVE_TOKEN" "\${args[@]}"
EOF
chmod 0755 "$T/etok-nodev"
write_config "$T/etok-nodev" 30
kill -HUP "$AGENT_PID"
wait_for 30 "the upgrade is abandoned" grep -q "Enclave upgrade failed: token 'web' could not be provisioned in the new enclave" "$T/agent.log"
sleep 1
[[ $(tokens) == "$NEW" ]] || fail "after the abandoned upgrade: enclave-token processes '$(tokens | tr '\n' ' ')', expected $NEW"
grep -q 'data.1.sock' "$T/run/address" || fail "the address file moved: $(cat "$T/run/address")"
serves "$FP_RSA" || fail "nginx does not serve after the abandoned upgrade"
wait_for 20 "healthy after the abandoned upgrade" health_is 0
ok "an upgrade whose new enclave refuses the token: abandoned, the running enclave serves on, healthy"
# The running enclave's settings stayed in force: SIGHUP with the same file tries again; with the running
# binary back in the file there is nothing to upgrade.
A=$(grep -c 'Enclave upgrade: starting the new enclave' "$T/agent.log")
F=$(grep -c 'Enclave upgrade failed' "$T/agent.log")
kill -HUP "$AGENT_PID"
wait_for 30 "the second attempt fails too" bash -c "(( \$(grep -c 'Enclave upgrade failed' '$T/agent.log') > $F ))"
[[ $(grep -c 'Enclave upgrade: starting the new enclave' "$T/agent.log") == $((A + 1)) ]] || fail "SIGHUP did not try the upgrade again"
write_config "$T/enclave-token-v2" 30
R=$(grep -c 'READY=1' "$T/notify.log")
kill -HUP "$AGENT_PID"
wait_for 20 "READY=1 after the reload" bash -c "(( \$(grep -c 'READY=1' '$T/notify.log') > $R ))"
[[ $(grep -c 'Enclave upgrade: starting the new enclave' "$T/agent.log") == $((A + 1)) ]] || fail "an upgrade to the running binary was started"
[[ $(tokens) == "$NEW" ]] || fail "the enclave changed: '$(tokens | tr '\n' ' ')', expected $NEW"
ok "after an abandoned upgrade SIGHUP tries it again; the running binary in the file again: nothing to do"

# The watchdog: an enclave that stays unreachable although the agent relaunches it (the binary cannot
# run) starves WATCHDOG=1; once it can run again, the relaunch brings the pings and WATCHDOG=1 back.
chmod -x "$T/enclave-token-v2"
kill -STOP "$NEW"
STOPPED_PID=$NEW
wait_for 60 "the relaunch fails" grep -q "Cannot run the token binary '$T/enclave-token-v2'" "$T/agent.log"
wait_for 30 "the watchdog is starved" grep -q "no longer feeding systemd's watchdog" "$T/agent.log"
W=$(grep -c 'WATCHDOG=1' "$T/notify.log")
sleep 3 # more than the 2 s WATCHDOG_USEC: fed, it would have been fed again by now
[[ $(grep -c 'WATCHDOG=1' "$T/notify.log") == "$W" ]] || fail "WATCHDOG=1 is still sent while the enclave cannot be reached"
health_is 2 || { cat "$T/health.out"; fail "health is not down while the enclave cannot run"; }
ok "the enclave unreachable and its relaunch failing: WATCHDOG=1 no longer sent, health down"
chmod +x "$T/enclave-token-v2"
wait_for 60 "WATCHDOG=1 again" bash -c "(( \$(grep -c 'WATCHDOG=1' '$T/notify.log') > $W ))"
grep -q "In-band pings answered again: feeding systemd's watchdog" "$T/agent.log" || fail "the watchdog's return is not logged"
wait_for 20 "healthy again" health_is 0
ok "the binary runs again: relaunched, pings answered, WATCHDOG=1 fed again, healthy"
STOPPED_PID=
! alive "$NEW" || fail "the stopped enclave-token (pid $NEW) still runs"

stop_agent
health_is 2 || { cat "$T/health.out"; fail "health after the agent stopped does not exit 2"; }
grep -qE "^agent: (not running|stopped)" "$T/health.out" || { cat "$T/health.out"; fail "health after stop: no reason"; }
ok "agent stopped: enclave-acm health says down (2)"

echo "1..$CHECKS"
