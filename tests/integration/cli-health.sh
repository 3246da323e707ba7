#!/bin/bash
# enclave-acm health against hand-written state files: each verdict and its exit status, the agent's
# liveness (a stand-in process named enclave-acm-agent), stale facts, records it must not trust, --json,
# and a bad command line. Plain script: exit 0 pass, anything else fail.
set -euo pipefail
: "${ENCLAVE_ACM:?}"
T=$(mktemp -d /tmp/eacm-cli-health.XXXXXX)
FAKE=
cleanup() {
        [[ -n $FAKE ]] && kill "$FAKE" 2>/dev/null || true
        rm -rf "$T"
}
trap cleanup EXIT
N=0
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { N=$((N + 1)); echo "ok $N - $*"; }

# A process the CLI takes for the agent: its comm is "enclave-acm-age" (the kernel keeps 15 bytes).
cp "$(command -v sleep)" "$T/enclave-acm-agent"
"$T/enclave-acm-agent" 600 &
FAKE=$!
NOW=$(date +%s)

# state AGENT_PID HEALTH_LINE [PROBLEM_LINE...]
state() {
        local pid=$1 h=$2
        shift 2
        {
                echo "# enclave-acm-agent state"
                echo "agent version=0.1.0 pid=$pid config=/x.yaml service=nginx launcher=local enclave=running status=x"
                echo "token label=web state=ready source=File"
                [[ -n $h ]] && echo "$h"
                for p in "$@"; do echo "$p"; done
        } >"$T/status"
}
# run EXIT_CODE DESCRIPTION [ARGS...]: health exits with EXIT_CODE; its output in $T/out
run() {
        local want=$1 desc=$2 rc=0
        shift 2
        "$ENCLAVE_ACM" health --runtime-dir "$T" "$@" >"$T/out" 2>&1 || rc=$?
        [[ $rc == "$want" ]] || { cat "$T/out" >&2; fail "$desc: exit $rc, expected $want"; }
}
H="health level=healthy updated=$NOW stale_after=60 interval=10 timeout_ms=3000 max_misses=3 misses=0 ping=ok ping_at=$NOW ping_usec=420 relaunches=0 expiry_warning_days=30"

run 2 "no state file"
grep -q "^agent: no state file in '$T'" "$T/out" || fail "no state file: $(cat "$T/out")"
ok "no state file: down (2)"

state "$FAKE" "$H"
run 0 "healthy"
[[ $(cat "$T/out") == "HEALTHY: 0 problems" ]] || fail "healthy output: $(cat "$T/out")"
ok "fresh healthy facts from a running agent: healthy (0)"

state "$FAKE" "${H/level=healthy/level=degraded}" \
        "problem level=degraded subject=token label=web text=token%20'web':%20certificate%20expires%20in%203%20days"
run 1 "degraded"
[[ $(sed -n 2p "$T/out") == "token 'web': certificate expires in 3 days" ]] || fail "degraded output: $(cat "$T/out")"
run 1 "degraded --json" --json
python3 -c '
import json, sys
h = json.load(open(sys.argv[1]))
assert h["level"] == "degraded" and h["exit_status"] == 1 and h["agent_running"] and not h["stale"], h
assert h["problems"] == [{"level": "degraded", "subject": "token", "label": "web",
                          "text": "token '"'"'web'"'"': certificate expires in 3 days"}], h["problems"]
assert h["ping"] == "ok" and h["ping_usec"] == 420 and h["max_misses"] == 3, h' "$T/out" || fail "degraded --json: $(cat "$T/out")"
ok "a degraded token: degraded (1), one line per problem; --json the same"

state "$FAKE" "${H/level=healthy/level=down}" \
        "problem level=down subject=enclave text=enclave:%20missed%201%20in-band%20ping" \
        "problem level=degraded subject=token label=web text=token%20'web':%20failing"
run 2 "down"
[[ $(head -n 1 "$T/out") == "DOWN: 2 problems" ]] || fail "down output: $(cat "$T/out")"
ok "a missed ping: down (2), both problems listed"

state "$FAKE" "${H/updated=$NOW/updated=$((NOW - 300))}"
run 2 "stale"
grep -q "^agent: its health facts are stale" "$T/out" || fail "stale output: $(cat "$T/out")"
ok "facts older than stale_after: down (2), the agent looks stuck"

state "$FAKE" ""
run 2 "no health record"
grep -q "no health record" "$T/out" || fail "no health record: $(cat "$T/out")"
for bad in "health level=fine updated=$NOW stale_after=60" "health level=healthy stale_after=60" \
        "health level=healthy updated=$NOW stale_after=60 ping=maybe"; do
        state "$FAKE" "$bad"
        run 2 "bad health record '$bad'"
        grep -q "health record in '$T/status' is not valid" "$T/out" || fail "bad record: $(cat "$T/out")"
done
state "$FAKE" "$H" "problem level=degraded subject=token text=no-label"
run 2 "bad problem record"
grep -q "problem record 1 in '$T/status' is not valid" "$T/out" || fail "bad problem: $(cat "$T/out")"
ok "no, or an invalid, health or problem record: down (2), saying which"

kill "$FAKE"
wait "$FAKE" 2>/dev/null || true
state "$FAKE" "$H"
run 2 "agent gone"
grep -q "^agent: not running (pid $FAKE" "$T/out" || fail "agent gone: $(cat "$T/out")"
FAKE=
ok "the agent's pid gone: down (2) although its last facts were healthy"

run 3 "bad option" --bogus
run 3 "extra argument" extra
"$ENCLAVE_ACM" health --help | grep -q "^Exit status: 0 healthy" || fail "health --help"
ok "a bad command line: 3; --help documents the exit status"
echo "1..$N"
