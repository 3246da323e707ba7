# Shared helpers for the integration tests: temp dir, enclave-token lifecycle, provisioning, checks.
# Sourced by each test script, which runs with `set -euo pipefail`.
#
# Environment (set by tests/integration/meson.build):
#   ENCLAVE_TOKEN   the enclave-token binary       ENCLAVE_ACM   the enclave-acm CLI
#   P11_MODULE      enclave-acm-pkcs11.so          TEST_DATA     tests/data in the source tree
#   P11_CLIENT      tests/integration/p11-client   JUNK_CLIENT   tests/integration/junk-client

#
# Under `meson test --setup=valgrind` (ENCLAVE_ACM_UNDER_VALGRIND=1) meson runs this script's bash under
# valgrind. The script leaves it (valgrind does not follow exec) and runs the project's own programs
# under valgrind instead: enclave-token, the enclave-acm CLI and p11-client with the module loaded.

: "${ENCLAVE_TOKEN:?}" "${ENCLAVE_ACM:?}" "${P11_MODULE:?}" "${TEST_DATA:?}"
. "$(dirname "${BASH_SOURCE[0]}")/keep-logs.sh"

if [[ ${ENCLAVE_ACM_UNDER_VALGRIND:-} == 1 && -z ${EACM_IT_REEXEC:-} ]]; then
        EACM_IT_REEXEC=1 exec bash "$0" "$@"
fi

PIN=it-pin-1234
WRONG_PIN=it-pin-0000
DAEMON_PID=
BG_PIDS=()
CHECKS=0

# Exit 77 (skip) when a tool the test drives is not installed. Nothing else skips.
require_tool() {
        local t
        for t in "$@"; do
                if ! command -v "$t" >/dev/null 2>&1; then
                        echo "SKIP: '$t' is not installed"
                        exit 77
                fi
        done
}

fail() {
        echo "FAIL: $*" >&2
        exit 1
}

ok() {
        CHECKS=$((CHECKS + 1))
        echo "ok $CHECKS - $*"
}

# check DESCRIPTION COMMAND... : the command must succeed.
check() {
        local desc=$1
        shift
        if ! "$@" >"$T/check.out" 2>&1; then
                cat "$T/check.out" >&2
                fail "$desc (command: $*)"
        fi
        ok "$desc"
}

# check_fails DESCRIPTION PATTERN COMMAND... : the command must fail and print PATTERN (grep -E).
check_fails() {
        local desc=$1 pattern=$2 rc=0
        shift 2
        "$@" >"$T/check.out" 2>&1 || rc=$?
        if [[ $rc -eq 0 ]]; then
                cat "$T/check.out" >&2
                fail "$desc: succeeded but should have failed (command: $*)"
        fi
        if [[ $rc -ge 124 ]]; then
                cat "$T/check.out" >&2
                fail "$desc: exit code $rc (timeout or crash) (command: $*)"
        fi
        if ! grep -Eq -- "$pattern" "$T/check.out"; then
                cat "$T/check.out" >&2
                fail "$desc: output lacks /$pattern/ (command: $*)"
        fi
        ok "$desc"
}

# check_output DESCRIPTION PATTERN COMMAND... : the command must succeed and print PATTERN.
check_output() {
        local desc=$1 pattern=$2
        shift 2
        if ! "$@" >"$T/check.out" 2>&1; then
                cat "$T/check.out" >&2
                fail "$desc (command: $*)"
        fi
        if ! grep -Eq -- "$pattern" "$T/check.out"; then
                cat "$T/check.out" >&2
                fail "$desc: output lacks /$pattern/ (command: $*)"
        fi
        ok "$desc"
}

cleanup() {
        local rc=$? pid
        for pid in "${BG_PIDS[@]}"; do
                kill -KILL "$pid" 2>/dev/null || true
        done
        if [[ -n $DAEMON_PID ]]; then
                kill -KILL "$DAEMON_PID" 2>/dev/null || true
                wait "$DAEMON_PID" 2>/dev/null || true
        fi
        if [[ $rc -ne 0 && $rc -ne 77 && -f $T/daemon.log ]]; then
                echo "--- enclave-token log (last 40 lines) ---" >&2
                tail -n 40 "$T/daemon.log" >&2 || true
        fi
        keep_logs "$T"
        rm -rf "$T"
        exit "$rc"
}

# A short path: unix socket paths are limited to 107 bytes.
T=$(mktemp -d /tmp/eacm-it.XXXXXX)
trap cleanup EXIT
trap 'exit 130' INT TERM
DATA_ADDR="unix:path=$T/data.sock"
CONTROL_ADDR="unix:path=$T/control.sock"
export ENCLAVE_ACM_ADDRESS=$DATA_ADDR
export ENCLAVE_ACM_CONTROL=$CONTROL_ADDR
export ENCLAVE_ACM_TIMEOUT_MS=${ENCLAVE_ACM_TIMEOUT_MS:-5000}
export ENCLAVE_ACM_NO_MLOCK=1
ENCLAVE_ACM_BIN=$ENCLAVE_ACM # never under valgrind: for bulk provisioning
VALGRIND=
if [[ ${ENCLAVE_ACM_UNDER_VALGRIND:-} == 1 ]]; then
        require_tool valgrind
        VALGRIND=1
        mkdir -p "$T/vg" "$T/bin"
        chmod 0777 "$T/vg"
        vg_wrap() { # NAME REAL: a wrapper script in $T/bin that runs REAL under valgrind
                printf '#!/bin/sh\nexec valgrind --error-exitcode=66 --leak-check=full --errors-for-leak-kinds=definite --quiet --log-file=%s/vg/%s.%%p.log %s "$@"\n' \
                        "$T" "$1" "$2" >"$T/bin/$1"
                chmod 0755 "$T/bin/$1"
                echo "$T/bin/$1"
        }
        ENCLAVE_TOKEN=$(vg_wrap enclave-token "$ENCLAVE_TOKEN")
        ENCLAVE_ACM=$(vg_wrap enclave-acm "$ENCLAVE_ACM")
        [[ -n ${P11_CLIENT:-} ]] && P11_CLIENT=$(vg_wrap p11-client "$P11_CLIENT")
fi
printf '%s\n' "$PIN" >"$T/pin"
printf '%s\n' "$WRONG_PIN" >"$T/wrong-pin"
: >"$T/daemon.log"

# start_daemon [ARGS...]: enclave-token --dev on unix sockets in $T (pass --no-dev to drop --dev).
start_daemon() {
        local args=(--dev --log-level debug) i tries=200
        [[ -n $VALGRIND ]] && tries=1200
        if [[ ${1-} == --no-dev ]]; then
                args=(--log-level debug)
                shift
        fi
        "$ENCLAVE_TOKEN" "${args[@]}" --data "$DATA_ADDR" --control "$CONTROL_ADDR" --workers 2 "$@" \
                >>"$T/daemon.log" 2>&1 &
        DAEMON_PID=$!
        for ((i = 0; i < tries; i++)); do
                if "$ENCLAVE_ACM_BIN" status >/dev/null 2>&1; then
                        return 0
                fi
                if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
                        DAEMON_PID=
                        fail "enclave-token exited at start"
                fi
                sleep 0.05
        done
        fail "enclave-token did not answer on $CONTROL_ADDR in time"
}

stop_daemon() {
        local sig=${1:-TERM}
        [[ -n $DAEMON_PID ]] || return 0
        kill "-$sig" "$DAEMON_PID" 2>/dev/null || true
        wait "$DAEMON_PID" 2>/dev/null || true
        DAEMON_PID=
}

# provision LABEL KEYNAME [enclave-acm token add options...]
provision() {
        local label=$1 name=$2
        shift 2
        local cert=$TEST_DATA/$name.crt.pem
        [[ -f $TEST_DATA/$name.chain.pem ]] && cert=$TEST_DATA/$name.chain.pem
        "$ENCLAVE_ACM" token add --label "$label" --pin-file "$T/pin" --key "$TEST_DATA/$name.key.pem" \
                --cert "$cert" "$@" >"$T/provision.out" 2>&1 || {
                cat "$T/provision.out" >&2
                fail "provisioning token '$label' with $name"
        }
}

# wait_for_file PATH [SECONDS]: true once PATH exists, false after SECONDS (default 30).
wait_for_file() {
        local end=$((SECONDS + ${2:-30}))
        while [[ ! -e $1 ]]; do
                ((SECONDS < end)) || return 1
                sleep 0.05
        done
}

p11() {
        pkcs11-tool --module "$P11_MODULE" "$@"
}

# Hash helpers: hex digest, and the digest written as binary to a file.
digest_file() { # ALG IN OUT
        openssl dgst "-$1" -binary -out "$3" "$2"
}

# The end of every test: enclave-token must stop cleanly on SIGTERM (under valgrind: without errors or
# leaks), and no valgrind log may hold a report.
finish() {
        local rc=0 log
        if [[ -n $DAEMON_PID ]]; then
                kill -TERM "$DAEMON_PID" 2>/dev/null || true
                wait "$DAEMON_PID" || rc=$?
                DAEMON_PID=
                [[ $rc -eq 0 ]] || fail "enclave-token exited with status $rc on SIGTERM${VALGRIND:+ (66: valgrind found errors)}"
                ok "enclave-token stopped cleanly on SIGTERM"
        fi
        if [[ -n $VALGRIND ]]; then
                for log in "$T"/vg/*.log; do
                        # Reports are "==pid==" lines; "--pid--" lines are valgrind's own warnings
                        # (such as an unhandled mlock2).
                        [[ -e $log ]] && grep -q '^==[0-9]*==' "$log" || continue
                        cat "$log" >&2
                        fail "valgrind reported errors ($(basename "$log"))"
                done
                ok "valgrind: no errors or definite leaks in enclave-token, enclave-acm, p11-client + module"
        fi
        echo "PASS: $CHECKS checks"
}
