#!/bin/bash
# Without --dev, enclave-token refuses plaintext keys: TOKEN_ADD is DENIED and nothing is provisioned.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
require_tool pkcs11-tool

start_daemon --no-dev
check_output "status shows production mode" 'Mode: +production' "$ENCLAVE_ACM" status
rc=0
"$ENCLAVE_ACM" token add --label web --pin-file "$T/pin" --key "$TEST_DATA/ec-p256.key.pem" \
        --cert "$TEST_DATA/ec-p256.crt.pem" >"$T/add.out" 2>&1 || rc=$?
[[ $rc -eq 1 ]] || { cat "$T/add.out" >&2; fail "token add without --dev: exit $rc, expected 1"; }
grep -q "Cannot add token 'web': the daemon refuses plaintext private keys: it is not running with --dev" "$T/add.out" ||
        { cat "$T/add.out" >&2; fail "token add without --dev explains why"; }
ok "token add without --dev is refused (exit 1) with a clear message"
check_output "nothing was provisioned" 'Tokens: +0 ' "$ENCLAVE_ACM" status
"$ENCLAVE_ACM" status --json | grep -q '"dev_mode": false' || fail "status --json says dev_mode false"
ok "status --json says dev_mode false"
rc=0
timeout 20 pkcs11-tool --module "$P11_MODULE" -L >"$T/L.out" 2>&1 || rc=$?
# pkcs11-tool exits 1 after "No slots."
[[ $rc -le 1 ]] || { cat "$T/L.out" >&2; fail "pkcs11-tool -L against an empty daemon: exit $rc"; }
! grep -q 'token label' "$T/L.out" || { cat "$T/L.out" >&2; fail "no tokens listed"; }
ok "pkcs11-tool -L lists no tokens (exit $rc)"
finish
