#!/bin/bash
# enclave-acm-agent reloads (SIGHUP) that build the whole new token set before they swap: a reload adding
# a token whose PIN must be generated while <state_dir>/pins is a regular file fails as a whole (the
# agent keeps running with the same pid, the running tokens still sign through the PKCS#11 module, one
# error line names the token and the cause); once the cause is gone the same reload provisions it; a
# reload dropping a token removes it from the enclave. Local launcher, File sources, no web server.
# Plain script: exit 0 pass, 77 skip, anything else fail.
set -euo pipefail
. "$(dirname "$0")/agent-lib.sh"

: "${AGENT:?}" "${ENCLAVE_TOKEN:?}" "${P11_MODULE:?}" "${P11_CLIENT:?}" "${TEST_DATA:?}" "${ENCLAVE_ACM:?}"
for t in openssl python3; do
        command -v "$t" >/dev/null 2>&1 || { echo "SKIP: '$t' is not installed"; exit 77; }
done

# Under `meson test --setup=valgrind` meson runs this script's bash under valgrind, which reports bash's
# own leaks: leave it (valgrind does not follow exec), as lib.sh does.
if [[ ${ENCLAVE_ACM_UNDER_VALGRIND:-} == 1 && -z ${EACM_IT_REEXEC:-} ]]; then
        EACM_IT_REEXEC=1 exec bash "$0" "$@"
fi

AGENT_PID='' NOTIFY_PID=''
T=$(mktemp -d /tmp/eacm-reload.XXXXXX)
cleanup() {
        local rc=$?
        trap - EXIT
        cleanup_agent "$rc" "$T/agent.log" "$T/notify.log" "$T/sign.out"
        rm -rf "$T"
        exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$T/run" "$T/state"
export ENCLAVE_ACM_ADDRESS_FILE=$T/run/address ENCLAVE_ACM_NO_MLOCK=1 ENCLAVE_ACM_TIMEOUT_MS=5000
unset ENCLAVE_ACM_ADDRESS
head -c 1000 /dev/zero | tr '\0' 'x' >"$T/data"

# token_yaml LABEL KEYNAME [PIN]: one entry of tokens: (no PIN: generated and kept in state_dir).
token_yaml() {
        echo "  - label: $1"
        [[ -n ${3:-} ]] && echo "    pin: '$3'"
        echo "    source:"
        echo "      File:"
        echo "        key: $TEST_DATA/$2.key.pem"
        echo "        certificate: $TEST_DATA/$2.crt.pem"
}
# write_config TOKEN_YAML...: the whole acm.yaml, replaced atomically as an operator's editor would.
write_config() {
        {
                cat <<EOF
enclave:
  launcher: local
  token_binary: $ENCLAVE_TOKEN
  boot_timeout_ms: 10000
options:
  runtime_dir: $T/run
  state_dir: $T/state
log:
  level: debug
tokens:
EOF
                printf '%s\n' "$@"
        } >"$T/acm.yaml.new"
        mv "$T/acm.yaml.new" "$T/acm.yaml"
}
A=$(token_yaml a rsa2048 it-pin-aaaa)
B=$(token_yaml b rsa3072 it-pin-bbbb)
C=$(token_yaml c rsa4096)

# signs LABEL KEYNAME PIN: a SHA256-RSA-PKCS signature through the module, checked with the public key.
signs() {
        rm -f "$T/sig"
        "$P11_CLIENT" "$P11_MODULE" "$1" open "login:$3" findkey "sign:SHA256-RSA-PKCS:$T/data:$T/sig" \
                >"$T/sign.out" 2>&1 &&
                openssl dgst -sha256 -verify "$TEST_DATA/$2.pub.pem" -signature "$T/sig" "$T/data" >>"$T/sign.out" 2>&1
}
# absent LABEL: the module lists no token with that label (while the enclave answers).
absent() {
        ! "$P11_CLIENT" "$P11_MODULE" "$1" open >"$T/sign.out" 2>&1 &&
                grep -q "^not ok - token '$1': CKR_TOKEN_NOT_PRESENT" "$T/sign.out"
}
# token_lists: the tokens enclave-acm status shows, the agent's with their state, then the enclave's.
token_lists() {
        "$ENCLAVE_ACM" status --json --runtime-dir "$T/run" >"$T/status.json" || return 1
        python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
agent = ", ".join(sorted(t["label"] + " " + t["state"] for t in s["agent"]["tokens"]))
print("agent: %s; enclave: %s" % (agent, ", ".join(sorted(t["label"] for t in s["tokens"]))))
' "$T/status.json"
}
# reload_and_wait: SIGHUP, then the READY=1 that ends the reload for systemd; fails at once if the
# agent dies meanwhile.
reload_and_wait() {
        local n i
        n=$(grep -c 'READY=1' "$T/notify.log")
        MARK=$(wc -l <"$T/agent.log")
        kill -HUP "$AGENT_PID"
        for ((i = 0; i < 300; i++)); do
                alive "$AGENT_PID" || fail "the agent died on SIGHUP"
                (($(grep -c 'READY=1' "$T/notify.log") > n)) && return 0
                sleep 0.1
        done
        fail "no READY=1 within 30 s of SIGHUP"
}
# since_mark: the agent's log since the last reload_and_wait.
since_mark() { tail -n "+$((MARK + 1))" "$T/agent.log"; }

write_config "$A" "$B"
"$AGENT" --config "$T/acm.yaml" --check-config >"$T/check.log" 2>&1 || { cat "$T/check.log"; fail "--check-config"; }
start_notify_listener
NOTIFY_SOCKET=$T/notify.sock "$AGENT" --config "$T/acm.yaml" >"$T/agent.log" 2>&1 &
AGENT_PID=$!
wait_for 30 "the agent sends READY=1" grep -q 'READY=1' "$T/notify.log"
wait_for 10 "token 'a' signs" signs a rsa2048 it-pin-aaaa
signs b rsa3072 it-pin-bbbb || fail "token 'b' does not sign"
ok "the agent serves tokens a and b: both sign through the PKCS#11 module"

# A reload adding c, whose PIN must be generated, while <state_dir>/pins is a regular file.
[[ ! -e $T/state/pins ]] || fail "state_dir/pins exists before the test made it"
: >"$T/state/pins"
write_config "$A" "$B" "$C"
reload_and_wait
alive "$AGENT_PID" || fail "the agent died on a reload that cannot be built"
grep -q 'RELOADING=1|MONOTONIC_USEC=' "$T/notify.log" || fail "no RELOADING=1 with MONOTONIC_USEC"
ok "reload failing partway: the agent is alive (pid $AGENT_PID), RELOADING=1 then READY=1"
WANT="<3>Reload failed: token 'c': cannot read or create its PIN in '$T/state/pins': Not a directory. Keeping the running configuration."
since_mark | grep '^<3>' >"$T/errors" || true
[[ $(wc -l <"$T/errors") == 1 ]] || { cat "$T/errors" >&2; fail "expected exactly one error line"; }
[[ $(cat "$T/errors") == "$WANT" ]] || fail "the error line is '$(cat "$T/errors")', expected '$WANT'"
ok "exactly one error line, naming token 'c' and the cause"
signs a rsa2048 it-pin-aaaa || fail "token 'a' no longer signs after the failed reload"
signs b rsa3072 it-pin-bbbb || fail "token 'b' no longer signs after the failed reload"
! since_mark | grep -q "removed from the enclave" || fail "the failed reload removed a token from the enclave"
absent c || fail "token 'c' exists after the failed reload"
ok "after the failed reload tokens a and b still sign, c is not there, nothing was removed"
[[ $(token_lists) == "agent: a ready, b ready; enclave: a, b" ]] || fail "enclave-acm status: $(token_lists)"
ok "enclave-acm status: the agent still runs a and b (ready), the enclave holds a and b"

# The cause fixed, the same reload provisions c with a generated PIN.
rm "$T/state/pins"
reload_and_wait
alive "$AGENT_PID" || fail "the agent died"
! since_mark | grep -q '^<3>' || { since_mark >&2; fail "an error after the cause was fixed"; }
wait_for 30 "token 'c' is provisioned" grep -q "Token 'c' provisioned" "$T/agent.log"
[[ $(stat -c %a "$T/state/pins/c") == 600 ]] || fail "c's generated PIN is not kept 0600 in state_dir"
signs c rsa4096 "$(cat "$T/state/pins/c")" || fail "token 'c' does not sign with its generated PIN"
signs a rsa2048 it-pin-aaaa || fail "token 'a' does not sign after c was added"
signs b rsa3072 it-pin-bbbb || fail "token 'b' does not sign after c was added"
! since_mark | grep -q "removed from the enclave" || fail "adding c removed a token from the enclave"
ok "cause fixed: the reload provisions c (generated PIN), which signs; a and b still sign"

# A reload dropping b: b is removed from the enclave, a and c keep signing.
write_config "$A" "$C"
reload_and_wait
wait_for 10 "b is removed" grep -q "Token 'b' removed from the enclave" "$T/agent.log"
absent b || fail "token 'b' is still listed by the module"
signs a rsa2048 it-pin-aaaa || fail "token 'a' does not sign after b was dropped"
signs c rsa4096 "$(cat "$T/state/pins/c")" || fail "token 'c' does not sign after b was dropped"
[[ $(token_lists) == "agent: a ready, c ready; enclave: a, c" ]] || fail "enclave-acm status: $(token_lists)"
ok "a reload dropping b: b is removed from the enclave and gone from the token list; a and c still sign"

stop_agent
ok "SIGTERM: exit 0"

echo "1..$CHECKS"
