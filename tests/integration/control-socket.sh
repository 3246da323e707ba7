#!/bin/bash
# The control socket is never reachable by another user: an unprivileged user connects in a tight loop,
# from before the socket exists, while the agent (local launcher) starts enclave-token again and again,
# and never gets a control connection. The data socket stays reachable by that
# user (web-server workers run as another user). Plain script: exit 0 pass, 77 skip, anything else fail.
set -euo pipefail
. "$(dirname "$0")/agent-lib.sh"

: "${AGENT:?}" "${ENCLAVE_TOKEN:?}" "${JUNK_CLIENT:?}"
[[ $(id -u) == 0 ]] || { echo "SKIP: needs root to run the racer as another user"; exit 77; }
command -v setpriv >/dev/null 2>&1 || { echo "SKIP: 'setpriv' is not installed"; exit 77; }
[[ -x $AGENT ]] || { echo "SKIP: the agent is not built"; exit 77; }

LAUNCHES=12
NOBODY=$(id -u nobody 2>/dev/null || echo 65534)
AGENT_PID= RACE_PID=
T=$(mktemp -d /tmp/eacm-ctl.XXXXXX)
chmod 0755 "$T"
cleanup() {
        local rc=$?
        trap - EXIT
        [[ -n $RACE_PID ]] && kill "$RACE_PID" 2>/dev/null || true
        cleanup_agent "$rc" "$(ls -t "$T"/agent.*.log 2>/dev/null | head -n 1)" "$T/race.out"
        rm -rf "$T"
        exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$T/run" "$T/state"
chmod 0755 "$T/run"
: >"$T/nginx.conf"
cat >"$T/acm.yaml" <<EOF
enclave:
  launcher: local
  token_binary: $ENCLAVE_TOKEN
  boot_timeout_ms: 10000
options:
  service: nginx
  server_control: direct
  server_config: $T/nginx.conf
  runtime_dir: $T/run
  state_dir: $T/state
log:
  level: debug
tokens: []
EOF
export ENCLAVE_ACM_NO_MLOCK=1

# The racer first: it is already looping when the first socket appears.
setpriv --reuid="$NOBODY" --regid="$NOBODY" --clear-groups \
        "$JUNK_CLIENT" "$T/run/control.sock" race 240 "$T/race.stop" >"$T/race.out" 2>&1 &
RACE_PID=$!
# Agent restarts rather than kill -9 of enclave-token: the agent backs off between relaunches of a
# token that keeps dying, and every start is a launch with the same window.
start=$SECONDS
for ((i = 1; i <= LAUNCHES; i++)); do
        "$AGENT" --config "$T/acm.yaml" >"$T/agent.$i.log" 2>&1 &
        AGENT_PID=$!
        wait_for 30 "launch $i of enclave-token" grep -q "launch 1)" "$T/agent.$i.log"
        ((i < LAUNCHES)) || break
        stop_agent
done
ok "the agent launched enclave-token $LAUNCHES times ($((SECONDS - start)) s) while the racer looped"

[[ $(stat -c %a "$T/run/control.sock") == 600 ]] || fail "control.sock is $(stat -c %a "$T/run/control.sock"), not 0600"
[[ $(stat -c %a "$T/run/data.sock") == 666 ]] || fail "data.sock is $(stat -c %a "$T/run/data.sock"), not 0666"
ok "control.sock is 0600, data.sock 0666"

touch "$T/race.stop"
wait "$RACE_PID" || { cat "$T/race.out" >&2; fail "the racer failed"; }
RACE_PID=
cat "$T/race.out"
connected=$(sed -n 's/.* connected=\([0-9]*\).*/\1/p' "$T/race.out")
denied=$(sed -n 's/.* denied=\([0-9]*\).*/\1/p' "$T/race.out")
[[ -n $connected && -n $denied ]] || fail "the racer's figures are missing"
((denied > 0)) || fail "the racer never found the control socket in place: the race was not run"
((connected == 0)) || fail "an unprivileged user got $connected control connection(s)"
ok "an unprivileged user never got a control connection ($denied attempts denied on an existing socket)"

out=$(setpriv --reuid="$NOBODY" --regid="$NOBODY" --clear-groups "$JUNK_CLIENT" "$T/run/data.sock" flood 1 hello 0)
echo "$out"
[[ $out == *" opened=1 "* ]] || fail "an unprivileged user cannot reach the data socket"
ok "the data socket answers HELLO for an unprivileged user"

stop_agent
ok "the agent stopped cleanly"
echo "PASS: $CHECKS checks"
