#!/bin/bash
# enclave-init as a plain process (no VM): it starts enclave-token, its self-check sees PING and DESCRIBE
# answered, SIGTERM stops both cleanly (exit 0, keys wiped), and enclave-token dying makes it exit
# non-zero (as PID 1 it would power the enclave off for the agent to relaunch it).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

: "${ENCLAVE_INIT:?}"
D="unix:path=$T/data.sock"
C="unix:path=$T/control.sock"

rc=0
timeout 60 "$ENCLAVE_INIT" --token "$ENCLAVE_TOKEN" --data "$D" --control "$C" --selfcheck >"$T/sc.log" 2>&1 || rc=$?
[[ $rc -eq 0 ]] || { cat "$T/sc.log" >&2; fail "self-check mode exited $rc"; }
grep -q 'enclave-acm selfcheck: enclave-token answers PING and DESCRIBE' "$T/sc.log" || fail "no self-check line"
grep -q 'Stopped, keys wiped' "$T/sc.log" || fail "enclave-token did not stop cleanly after the self-check"
ok "self-check: PING and DESCRIBE answered, then a clean stop"

"$ENCLAVE_INIT" --token "$ENCLAVE_TOKEN" --data "$D" --control "$C" >"$T/run.log" 2>&1 &
INIT=$!
for _ in $(seq 100); do [[ -S $T/control.sock ]] && break; sleep 0.1; done
[[ -S $T/control.sock ]] || { cat "$T/run.log" >&2; fail "enclave-token never listened"; }
check "status through the supervised enclave-token" "$ENCLAVE_ACM" --control "$C" status
kill -TERM "$INIT"
rc=0
wait "$INIT" || rc=$?
[[ $rc -eq 0 ]] || { cat "$T/run.log" >&2; fail "SIGTERM: exit $rc, expected 0"; }
grep -q 'Stopped, keys wiped' "$T/run.log" || fail "SIGTERM did not reach enclave-token"
ok "SIGTERM stops enclave-token and enclave-init cleanly"

"$ENCLAVE_INIT" --token "$ENCLAVE_TOKEN" --data "$D" --control "$C" >"$T/die.log" 2>&1 &
INIT=$!
for _ in $(seq 100); do [[ -S $T/control.sock ]] && break; sleep 0.1; done
TOKEN=$(pgrep -P "$INIT" -f enclave-token) || fail "no enclave-token child"
kill -KILL "$TOKEN"
rc=0
wait "$INIT" || rc=$?
[[ $rc -ne 0 ]] || fail "enclave-token killed: enclave-init exited 0"
grep -q 'enclave-token exited (status 137): powering off' "$T/die.log" || { cat "$T/die.log" >&2; fail "no power-off line"; }
ok "enclave-token dying ends enclave-init with a failure (power off as PID 1)"
