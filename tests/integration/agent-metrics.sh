#!/bin/bash
# The agent's /metrics (options.metrics_listen) with the local launcher and File sources, no web server:
# the exposition passes `promtool check metrics` and our own stricter checker (which must reject a broken
# copy); N signatures through the module show as exactly N more for that token, key and mechanism (and
# in the latency histogram); a wrong PIN moves the login-failure counter, a SIGN for an unknown key id
# the NO_SUCH_KEY error counter; 404 / 405; more than METRICS_HTTP_MAX_SCRAPES (4) concurrent clients get
# 503 while the agent keeps provisioning (a key rotation goes through meanwhile); a slow-loris client is
# dropped after the 5 s read timeout without stalling other scrapes; a killed enclave counts as a
# relaunch; SIGHUP moves the endpoint to a unix socket; the socket is removed at stop.
# Plain script: exit 0 pass, 77 skip, anything else fail.
set -euo pipefail
. "$(dirname "$0")/agent-lib.sh"

: "${AGENT:?}" "${ENCLAVE_TOKEN:?}" "${P11_MODULE:?}" "${P11_CLIENT:?}" "${JUNK_CLIENT:?}" "${TEST_DATA:?}"
: "${ENCLAVE_ACM:?}"
CHECKER=$(dirname "$0")/metrics-check.py
for t in curl python3 openssl; do
        command -v "$t" >/dev/null 2>&1 || { echo "SKIP: '$t' is not installed"; exit 77; }
done
# Not a skip: the format check is the point (Debian's prometheus package ships promtool; scripts/deps.sh).
command -v promtool >/dev/null 2>&1 || fail "promtool is not installed (apt-get install prometheus)"

# Under `meson test --setup=valgrind` meson runs this script's bash under valgrind, which reports bash's
# own leaks: leave it (valgrind does not follow exec), as lib.sh does.
if [[ ${ENCLAVE_ACM_UNDER_VALGRIND:-} == 1 && -z ${EACM_IT_REEXEC:-} ]]; then
        EACM_IT_REEXEC=1 exec bash "$0" "$@"
fi

AGENT_PID='' LOADERS=()
T=$(mktemp -d /tmp/eacm-metrics.XXXXXX)
cleanup() {
        local rc=$? p
        trap - EXIT
        for p in "${LOADERS[@]}"; do kill "$p" 2>/dev/null || true; done
        cleanup_agent "$rc" "$T/agent.log"
        [[ ${AGENT_TEST_KEEP:-0} == 1 ]] && echo "# kept $T" >&2 || rm -rf "$T"
        exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export ENCLAVE_ACM_NO_MLOCK=1
export ENCLAVE_ACM_ADDRESS_FILE=$T/run/address
unset ENCLAVE_ACM_ADDRESS
MPORT=$(free_port)
URL=http://127.0.0.1:$MPORT/metrics
ODD='odd"\lab'
mkdir -p "$T/run" "$T/state" "$T/src"
cp "$TEST_DATA/ec-p256.key.pem" "$T/src/web.key.pem"
cp "$TEST_DATA/ec-p256.crt.pem" "$T/src/web.chain.pem"
head -c 32 /dev/zero | tr '\0' 'd' >"$T/digest"

write_config() { # LISTEN
        cat >"$T/acm.yaml" <<EOF
enclave:
  launcher: local
  token_binary: $ENCLAVE_TOKEN
  boot_timeout_ms: 20000
options:
  runtime_dir: $T/run
  state_dir: $T/state
  sync_interval_secs: 1
  imds_endpoint: http://127.0.0.1:9
  metrics_listen: '$1'
log:
  level: debug
tokens:
  - label: web
    source:
      File:
        key: $T/src/web.key.pem
        certificate: $T/src/web.chain.pem
  - label: '$ODD'
    source:
      File:
        key: $TEST_DATA/rsa2048.key.pem
        certificate: $TEST_DATA/rsa2048.crt.pem
EOF
}

# scrape NAME [CURL ARGS...]: GET the endpoint into $T/NAME.prom; prints the HTTP status
scrape() {
        local name=$1
        shift
        local code
        code=$(curl -sS --max-time 10 -o "$T/$name.prom" -w '%{http_code}' "$@" "${SCRAPE_URL:-$URL}" \
                2>>"$T/curl.err") || code=000
        echo "$code"
}
val() { python3 "$CHECKER" get "$T/$1.prom" "$2" || echo absent; }
sum() { python3 "$CHECKER" sum "$T/$1.prom" "${@:2}"; }
valid() { # NAME: both checkers accept the scrape
        promtool check metrics <"$T/$1.prom" >"$T/$1-promtool.out" 2>&1 ||
                fail "promtool rejects $1.prom: $(cat "$T/$1-promtool.out")"
        python3 "$CHECKER" check "$T/$1.prom" >"$T/$1-check.out" 2>&1 ||
                fail "metrics-check rejects $1.prom: $(head -5 "$T/$1-check.out")"
}
ready_scrape() { [[ $(scrape "$1") == 200 ]] && [[ $(val "$1" 'enclave_acm_token_ready{token="web"}') == 1 ]]; }

write_config "127.0.0.1:$MPORT"
"$AGENT" --check-config --config "$T/acm.yaml" >"$T/check.out" 2>&1 || fail "--check-config: $(cat "$T/check.out")"
# a non-loopback address is a configuration error naming the key
sed "s|metrics_listen: .*|metrics_listen: '0.0.0.0:$MPORT'|" "$T/acm.yaml" >"$T/bad.yaml"
"$AGENT" --check-config --config "$T/bad.yaml" >"$T/bad.out" 2>&1 && fail "0.0.0.0 accepted"
grep -q "options.metrics_listen: '0.0.0.0:$MPORT' is not a loopback address" "$T/bad.out" ||
        fail "no clear error for 0.0.0.0: $(cat "$T/bad.out")"
ok "metrics_listen: loopback accepted, 0.0.0.0 refused with a line naming the key"

"$AGENT" --config "$T/acm.yaml" >"$T/agent.log" 2>&1 &
AGENT_PID=$!
wait_for 60 "a scrape shows token 'web' ready" ready_scrape s0
wait_for 30 "token '$ODD' ready" eval "[[ \$(scrape s0) == 200 && \$(val s0 'enclave_acm_token_ready{token=\"odd\\\"\\\\lab\"}') == 1 ]]"
valid s0
grep -q '^# TYPE enclave_acm_token_operation_duration_seconds histogram$' "$T/s0.prom" || fail "no histogram TYPE"
grep -q '^enclave_acm_token_keys{token="odd\\"\\\\lab"} 1$' "$T/s0.prom" || fail "the odd label is not escaped"
[[ $(val s0 enclave_acm_enclave_up) == 1 ]] || fail "enclave_acm_enclave_up is not 1"
[[ $(val s0 enclave_acm_enclave_ping_ok) == 1 ]] || fail "no PING answer"
[[ $(val s0 enclave_acm_enclave_tokens) == 2 ]] || fail "enclave_acm_enclave_tokens is not 2"
[[ $(val s0 enclave_acm_agent_enclave_launches_total) == 1 ]] || fail "launches is not 1"
NA=$(openssl x509 -in "$TEST_DATA/ec-p256.crt.pem" -noout -enddate | sed 's/^notAfter=//')
[[ $(val s0 'enclave_acm_certificate_not_after_timestamp_seconds{token="web"}') == $(date -d "$NA" +%s) ]] ||
        fail "the certificate's notAfter is not the leaf's"
[[ $(val s0 'enclave_acm_token_last_sync_timestamp_seconds{token="web"}') -gt 1700000000 ]] ||
        fail "no last sync time"
ok "the first scrape is valid (promtool and metrics-check), both tokens ready, labels escaped"

# The checker can fail: a copy with the +Inf bucket made smaller than _count is refused by both.
python3 - "$T/s0.prom" "$T/broken.prom" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
t2 = re.sub(r'(enclave_acm_token_operation_duration_seconds_bucket\{token="web",le="\+Inf"\}) \d+', r'\1 999999', t, count=1)
assert t2 != t
open(sys.argv[2], "w").write(t2)
PY
python3 "$CHECKER" check "$T/broken.prom" >"$T/broken-check.out" 2>&1 && fail "metrics-check accepts a broken histogram"
grep -q "bucket counts decrease\|!= _count" "$T/broken-check.out" || fail "metrics-check: $(cat "$T/broken-check.out")"
ok "a broken histogram is refused by metrics-check"

PIN=$(cat "$T/state/pins/web") || fail "no PIN kept for 'web'"
printf '%s' "$PIN" >"$T/web.pin"
SERIES='enclave_acm_token_signatures_total{token="web",key_id="1",mechanism="ecdsa"}'
N=25
before=$(val s0 "$SERIES")
[[ $before == absent ]] && before=0
hist_before=$(sum s0 enclave_acm_token_operation_duration_seconds_count token=web)
timeout 60 "$P11_CLIENT" "$P11_MODULE" web open "login:$PIN" findkey "signloop:$N:ECDSA:$T/digest" \
        >"$T/sign.out" 2>&1 || { cat "$T/sign.out" >&2; fail "signing through the module failed"; }
[[ $(scrape s1) == 200 ]] || fail "scrape s1"
valid s1
after=$(val s1 "$SERIES")
[[ $((after - before)) == "$N" ]] || fail "signatures moved by $((after - before)), expected $N ($before -> $after)"
hist_after=$(sum s1 enclave_acm_token_operation_duration_seconds_count token=web)
[[ $((hist_after - hist_before)) == "$N" ]] || fail "the histogram moved by $((hist_after - hist_before))"
[[ $(sum s1 enclave_acm_token_signatures_total 'token=odd"\lab') == 0 ]] || fail "the other token signed?"
ok "$N signatures through the module: exactly $N more for web/key 1/ecdsa, and in its histogram"

fails0=$(val s1 'enclave_acm_token_login_failures_total{token="web"}')
timeout 60 "$P11_CLIENT" "$P11_MODULE" web open expect:CKR_PIN_INCORRECT login:wrong-pin-0000 \
        >"$T/wrongpin.out" 2>&1 || { cat "$T/wrongpin.out" >&2; fail "a wrong PIN was not refused"; }
[[ $(scrape s2) == 200 ]] || fail "scrape s2"
[[ $(($(val s2 'enclave_acm_token_login_failures_total{token="web"}') - fails0)) == 1 ]] ||
        fail "login failures did not move by one"
ok "a wrong PIN moves enclave_acm_token_login_failures_total by 1"

SLOT=$("$ENCLAVE_ACM" status --json --runtime-dir "$T/run" |
        python3 -c 'import json, sys; print([t["slot"] for t in json.load(sys.stdin)["tokens"] if t["label"] == "web"][0])')
DATA_SOCK=$(sed -n 's/^unix:path=//p' "$T/run/address")
errs0=$(val s2 'enclave_acm_token_errors_total{token="web",code="no-such-key"}')
[[ $errs0 == absent ]] && errs0=0
"$JUNK_CLIENT" "$DATA_SOCK" sign-key "$SLOT" 99 "$T/web.pin" >"$T/unknown-key.out" 2>&1 ||
        fail "sign-key: $(cat "$T/unknown-key.out")"
grep -q "LOGIN ok, SIGN no-such-key" "$T/unknown-key.out" || fail "unknown key: $(cat "$T/unknown-key.out")"
[[ $(scrape s3) == 200 ]] || fail "scrape s3"
[[ $(($(val s3 'enclave_acm_token_errors_total{token="web",code="no-such-key"}') - errs0)) == 1 ]] ||
        fail "the NO_SUCH_KEY counter did not move by one"
[[ $(val s3 "$SERIES") == "$after" ]] || fail "a refused SIGN counted as a signature"
ok "a SIGN for an unknown key id moves enclave_acm_token_errors_total{code=\"no-such-key\"} by 1"

[[ $(SCRAPE_URL=http://127.0.0.1:$MPORT/ scrape nf) == 404 ]] || fail "GET / is not 404"
[[ $(scrape post -X POST) == 405 ]] || fail "POST is not 405"
ok "other paths 404, other methods 405"

# Slow-loris: a client sending one byte a second is dropped at the 5 s read timeout; meanwhile a scrape
# is answered at once.
python3 - "$MPORT" >"$T/loris.out" 2>&1 <<'PY' &
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
start = time.monotonic()
try:
    for c in b"GET /metrics HTTP/1.1\r\nX-Slow: " + b"a" * 100:
        s.send(bytes([c]))
        time.sleep(0.5)
        s.settimeout(0.01)
        try:
            if s.recv(4096, socket.MSG_PEEK) is not None:
                break
        except socket.timeout:
            pass
        s.settimeout(None)
except OSError:
    pass
print("closed after %.1f s" % (time.monotonic() - start))
PY
LORIS=$!
LOADERS+=("$LORIS")
sleep 1
t0=$(date +%s%N)
[[ $(scrape loris-s) == 200 ]] || fail "a scrape during a slow-loris client failed"
ms=$((($(date +%s%N) - t0) / 1000000))
((ms < 3000)) || fail "a scrape during a slow-loris client took $ms ms"
wait "$LORIS" || true
secs=$(sed -n 's/^closed after \([0-9]*\)\..*/\1/p' "$T/loris.out")
[[ -n $secs ]] && ((secs >= 4 && secs <= 8)) || fail "the slow-loris client: $(cat "$T/loris.out")"
ok "a slow-loris client is dropped after ${secs} s (read timeout 5 s); a scrape meanwhile took $ms ms"

# More than 4 concurrent clients: the 5th and later get 503 at once. Four loaders hold the slots
# (each reconnects as soon as the server drops it) for 20 s, during which the key of 'web' is rotated:
# the agent's loop must provision it regardless.
python3 - "$MPORT" 20 "$T/held" >"$T/hold.out" 2>&1 <<'PY' &
import socket, sys, threading, time
port, secs = int(sys.argv[1]), float(sys.argv[2])
end = time.monotonic() + secs
connected = threading.Semaphore(0)
def hold():
    first = True
    while time.monotonic() < end:
        try:
            s = socket.create_connection(("127.0.0.1", port))
            s.send(b"GET /metrics HTTP/1.1\r\n")  # never finished
            if first:
                connected.release()
                first = False
            s.settimeout(max(0.1, end - time.monotonic()))
            s.recv(1)
        except OSError:
            pass
        finally:
            s.close()
ts = [threading.Thread(target=hold) for _ in range(4)]
[t.start() for t in ts]
for _ in ts:
    connected.acquire()
time.sleep(0.3)  # the server has accepted them: its accept thread is not behind under load
open(sys.argv[3], "w").write("held\n")
[t.join() for t in ts]
PY
HOLD=$!
LOADERS+=("$HOLD")
wait_for 20 "the 4 holders are connected" test -e "$T/held"
refused=0
for i in 1 2 3; do
        t0=$(date +%s%N)
        code=$(scrape busy$i)
        ms=$((($(date +%s%N) - t0) / 1000000))
        [[ $code == 503 ]] && ((ms < 3000)) && refused=$((refused + 1))
done
((refused >= 2)) || fail "with 4 slots held, only $refused of 3 scrapes were refused with 503 at once"
cp "$TEST_DATA/ec-p384.key.pem" "$T/src/web.key.pem"
cp "$TEST_DATA/ec-p384.crt.pem" "$T/src/web.chain.pem"
NA384=$(date -d "$(openssl x509 -in "$TEST_DATA/ec-p384.crt.pem" -noout -enddate | sed 's/^notAfter=//')" +%s)
rotated() {
        "$ENCLAVE_ACM" status --json --runtime-dir "$T/run" >"$T/status.json" 2>/dev/null &&
                python3 -c 'import json, sys
s = json.load(open(sys.argv[1]))
w = [t for t in s["tokens"] if t["label"] == "web"][0]
sys.exit(0 if any(k["bits"] == 384 for k in w["keys"]) else 1)' "$T/status.json"
}
wait_for 15 "the agent rotates 'web' to the P-384 key while the metrics slots are full" rotated
alive "$HOLD" || fail "the loaders ended before the rotation was seen (the check proves nothing)"
wait "$HOLD" || true
wait_for 10 "a scrape is answered again once the slots are free" eval "[[ \$(scrape s4) == 200 ]]"
valid s4
[[ $(val s4 'enclave_acm_certificate_not_after_timestamp_seconds{token="web"}') == "$NA384" ]] ||
        fail "notAfter is not the new certificate's"
ok "4 slots held: $refused of 3 more scrapes refused with 503 at once; the key rotation went through meanwhile"

# A killed enclave: relaunched, counted; the counters start again with the new enclave.
ETOK=$(pgrep -P "$AGENT_PID" || true) # the local launcher's child: enclave-token
[[ -n $ETOK ]] || fail "no enclave-token child of the agent"
kill -KILL $ETOK
relaunched() {
        [[ $(scrape s5) == 200 && $(val s5 enclave_acm_agent_enclave_relaunches_total) == 1 &&
                $(val s5 'enclave_acm_token_ready{token="web"}') == 1 && $(val s5 enclave_acm_enclave_up) == 1 ]]
}
wait_for 60 "the relaunch is counted and the token is ready again" relaunched
valid s5
[[ $(val s5 enclave_acm_agent_enclave_launches_total) == 2 ]] || fail "launches is not 2"
ok "a killed enclave is relaunched and counted (launches 2, relaunches 1)"

# SIGHUP: the endpoint moves to a unix socket; the TCP port closes.
write_config "$T/run/metrics.sock"
kill -HUP "$AGENT_PID"
unix_up() { [[ $(scrape s6 --unix-socket "$T/run/metrics.sock") == 200 ]]; }
wait_for 20 "the endpoint moves to the unix socket" unix_up
valid s6
[[ $(stat -c %a "$T/run/metrics.sock") == 666 ]] || fail "the socket's mode is $(stat -c %a "$T/run/metrics.sock")"
[[ $(scrape gone) == 000 ]] || fail "the TCP port still answers"
ok "SIGHUP moved the endpoint to a unix socket (mode 0666); the TCP port is closed"

stop_agent
[[ ! -e $T/run/metrics.sock ]] || fail "the metrics socket is left behind"
grep -q "Serving metrics on '127.0.0.1:$MPORT'" "$T/agent.log" || fail "no log line for the endpoint"
ok "stopped cleanly; the socket is removed"
echo "# $CHECKS checks passed"
