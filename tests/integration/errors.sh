#!/bin/bash
# Error paths through the module: wrong PIN, signing without login, unknown mechanisms, and a daemon that
# is down or goes away (a bounded, quick CKR_DEVICE_ERROR / CKR_DEVICE_REMOVED, never a hang).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
require_tool pkcs11-tool openssl timeout

for i in $(seq 1 16); do printf 'error path test %02d\n' "$i"; done >"$T/data"
openssl dgst -sha256 -binary -out "$T/data.sha256" "$T/data"
C=(timeout 60 "$P11_CLIENT" "$P11_MODULE")

# Daemon not running at all: listing ends quickly and does not crash.
rc=0
timeout 20 pkcs11-tool --module "$P11_MODULE" -L >"$T/down.out" 2>&1 || rc=$?
[[ $rc -ne 124 && $rc -lt 128 ]] || { cat "$T/down.out" >&2; fail "pkcs11-tool -L without a daemon: exit $rc (hang or crash)"; }
! grep -q 'token label' "$T/down.out" || fail "no tokens without a daemon"
ok "pkcs11-tool -L without a daemon ends (exit $rc) and lists no token"

# Settings the module cannot use: the defaults are used; not a byte on the host's stderr without
# ENCLAVE_ACM_DEBUG, each one named in the trace with it.
bad_env=(ENCLAVE_ACM_TIMEOUT_MS=abc ENCLAVE_ACM_BUSY_POLL_USEC=-1 ENCLAVE_ACM_ADDRESS_FILE=)
env -u ENCLAVE_ACM_DEBUG "${bad_env[@]}" timeout 20 pkcs11-tool --module "$P11_MODULE" -L >/dev/null 2>"$T/quiet.err" || true
! grep -q 'enclave-acm-pkcs11' "$T/quiet.err" || { cat "$T/quiet.err" >&2; fail "the module printed without ENCLAVE_ACM_DEBUG"; }
env ENCLAVE_ACM_DEBUG=init "${bad_env[@]}" timeout 20 pkcs11-tool --module "$P11_MODULE" -L >/dev/null 2>"$T/trace.err" || true
for want in "ENCLAVE_ACM_TIMEOUT_MS='abc' is not a number of milliseconds, using the default 5000" \
        "ENCLAVE_ACM_BUSY_POLL_USEC='-1' is not a number of microseconds, using the default 50" \
        "ENCLAVE_ACM_ADDRESS_FILE='' is not a file name, using the default /run/enclave-acm/address"; do
        grep -qF -- "$want" "$T/trace.err" || { cat "$T/trace.err" >&2; fail "trace lacks: $want"; }
done
ok "unusable module settings: silent by default, named in the ENCLAVE_ACM_DEBUG trace with the default used"

# Bad enclave-token options: refused up front with the option named, nothing left listening.
for bad in "--busy-poll 10001" "--busy-poll x" "--busy-poll -1" "--rotation-grace 86401" "--max-tokens 0"; do
        rc=0
        # shellcheck disable=SC2086 # option and value split on purpose
        timeout 20 "$ENCLAVE_TOKEN" --dev $bad --data "unix:path=$T/bad-data.sock" \
                --control "unix:path=$T/bad-control.sock" >"$T/bad.out" 2>&1 || rc=$?
        [[ $rc -ne 0 && $rc -ne 124 && $rc -lt 128 ]] || { cat "$T/bad.out" >&2; fail "enclave-token $bad: exit $rc"; }
        grep -q "Invalid ${bad%% *} '${bad#* }'" "$T/bad.out" || { cat "$T/bad.out" >&2; fail "enclave-token $bad: no message"; }
        [[ ! -e $T/bad-data.sock ]] || fail "enclave-token $bad left a socket"
done
ok "bad enclave-token options (--busy-poll, --rotation-grace, --max-tokens out of range) are refused by name"

start_daemon
provision rsa rsa2048
provision ec ec-p256

check "wrong PIN -> CKR_PIN_INCORRECT; private keys visible only after login" \
        "${C[@]}" rsa open countkeys:0 expect:CKR_PIN_INCORRECT "login:$WRONG_PIN" countkeys:0 "login:$PIN" countkeys:1 \
        expect:CKR_USER_ALREADY_LOGGED_IN "login:$PIN"
check_fails "pkcs11-tool with a wrong PIN" 'CKR_PIN_INCORRECT' \
        p11 --token-label rsa --login --pin "$WRONG_PIN" --sign --id 01 -m SHA256-RSA-PKCS -i "$T/data" -o "$T/sig"

check "no login -> CKR_USER_NOT_LOGGED_IN" \
        "${C[@]}" rsa open "login:$PIN" findkey:01 sign:SHA256-RSA-PKCS:"$T/data":"$T/sig" logout \
        expect:CKR_USER_NOT_LOGGED_IN sign:SHA256-RSA-PKCS:"$T/data":"$T/sig"

check "unknown mechanism -> CKR_MECHANISM_INVALID (SignInit and GetMechanismInfo)" \
        "${C[@]}" rsa open "login:$PIN" findkey expect:CKR_MECHANISM_INVALID sign:0x80001234:"$T/data":"$T/sig" \
        expect:CKR_MECHANISM_INVALID mechinfo:0x80001234 expect:CKR_MECHANISM_INVALID sign:0x0:"$T/data":"$T/sig" \
        sign:SHA256-RSA-PKCS:"$T/data":"$T/sig"
check_fails "pkcs11-tool -m 0x80001234" 'CKR_MECHANISM_INVALID' \
        p11 --token-label rsa --login --pin "$PIN" --sign --id 01 -m 0x80001234 -i "$T/data" -o "$T/sig"
check "a mechanism of another key type is refused, the session stays usable" \
        "${C[@]}" ec open "login:$PIN" findkey expect:CKR_MECHANISM_INVALID\|CKR_KEY_TYPE_INCONSISTENT \
        sign:SHA256-RSA-PKCS:"$T/data":"$T/sig" expect:CKR_MECHANISM_INVALID\|CKR_KEY_TYPE_INCONSISTENT \
        sign:EDDSA:"$T/data":"$T/sig" sign:ECDSA-SHA256:"$T/data":"$T/sig"
check "wrong input length for raw ECDSA/RSA-PKCS is refused, not a crash" \
        "${C[@]}" rsa open "login:$PIN" findkey expect:CKR_DATA_LEN_RANGE\|CKR_DATA_INVALID\|CKR_MECHANISM_PARAM_INVALID \
        sign:RSA-PKCS-PSS:"$T/data":"$T/sig" sign:RSA-PKCS-PSS:"$T/data.sha256":"$T/sig"

# The daemon dies under a logged-in session: the next signature fails fast with a device error.
"${C[@]}" ec open "login:$PIN" findkey sign:ECDSA-SHA256:"$T/data":"$T/sig" touch:"$T/ready" wait:"$T/go" \
        maxms:15000 expect:CKR_DEVICE_ERROR\|CKR_DEVICE_REMOVED sign:ECDSA-SHA256:"$T/data":"$T/sig" \
        >"$T/client.out" 2>&1 &
client=$!
BG_PIDS+=("$client")
wait_for_file "$T/ready" || { cat "$T/client.out" >&2; fail "client did not get ready"; }
stop_daemon KILL
touch "$T/go"
wait "$client" || { cat "$T/client.out" >&2; fail "daemon killed: the next signature must fail with CKR_DEVICE_ERROR/REMOVED within 15 s"; }
cat "$T/client.out"
ok "daemon killed under a session: signing fails quickly with a device error"

rc=0
timeout 20 pkcs11-tool --module "$P11_MODULE" --token-label ec --login --pin "$PIN" --sign --id 01 -m ECDSA-SHA256 \
        -i "$T/data" -o "$T/sig" >"$T/down.out" 2>&1 || rc=$?
[[ $rc -ne 0 && $rc -ne 124 && $rc -lt 128 ]] || { cat "$T/down.out" >&2; fail "signing with the daemon down: exit $rc"; }
ok "pkcs11-tool --sign with the daemon gone fails without hanging (exit $rc)"
finish
