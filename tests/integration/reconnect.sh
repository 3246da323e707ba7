#!/bin/bash
# enclave-token is killed and restarted, then re-provisioned: a session opened and logged in before the
# restart signs again without the application doing anything (the module reconnects and logs in again).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
require_tool openssl pkcs11-tool python3

for i in $(seq 1 16); do printf 'reconnect test %02d\n' "$i"; done >"$T/data"
openssl x509 -in "$TEST_DATA/rsa2048.crt.pem" -noout -pubkey >"$T/rsa.pub"
openssl x509 -in "$TEST_DATA/ec-p384.crt.pem" -noout -pubkey >"$T/ec.pub"

start_daemon
provision rsa rsa2048
provision ec ec-p384
slot_before=$("$ENCLAVE_ACM" status --json | python3 -c 'import json,sys; print([t["slot"] for t in json.load(sys.stdin)["tokens"] if t["label"]=="rsa"][0])')

restart_and_reprovision() {
        stop_daemon KILL
        start_daemon
        provision rsa rsa2048
        provision ec ec-p384
}

# Two clients, one per key type; each signs, waits for the restart, signs again on the same session.
for who in rsa ec; do
        mech=SHA256-RSA-PKCS
        [[ $who == ec ]] && mech=ECDSA-SHA384
        timeout 120 "$P11_CLIENT" "$P11_MODULE" "$who" open "login:$PIN" findkey sign:$mech:"$T/data":"$T/$who.sig1" \
                touch:"$T/$who.ready" wait:"$T/go" sign:$mech:"$T/data":"$T/$who.sig2" countkeys:1 \
                signloop:20:$mech:"$T/data" >"$T/$who.out" 2>&1 &
        BG_PIDS+=($!)
        eval "pid_$who=\$!"
done
wait_for_file "$T/rsa.ready" && wait_for_file "$T/ec.ready" || { cat "$T"/*.out >&2; fail "clients did not get ready"; }
restart_and_reprovision
touch "$T/go"
wait "$pid_rsa" || { cat "$T/rsa.out" >&2; fail "RSA session signs after the daemon restart"; }
wait "$pid_ec" || { cat "$T/ec.out" >&2; fail "EC session signs after the daemon restart"; }
ok "sessions opened before a kill -9 + restart + re-provision sign again"

for s in sig1 sig2; do
        openssl dgst -sha256 -verify "$T/rsa.pub" -signature "$T/rsa.$s" "$T/data" >/dev/null || fail "rsa $s verifies"
done
cmp -s "$T/rsa.sig1" "$T/rsa.sig2" || fail "RSA PKCS#1 v1.5 signatures before and after are identical"
ok "RSA signatures before and after the restart verify and are identical"

slot_after=$("$ENCLAVE_ACM" status --json | python3 -c 'import json,sys; print([t["slot"] for t in json.load(sys.stdin)["tokens"] if t["label"]=="rsa"][0])')
[[ $slot_before == "$slot_after" ]] || fail "slot id stable across the restart ($slot_before vs $slot_after)"
ok "slot id is stable across the restart ($slot_after)"

# Restart while idle, a second time, with a plain pkcs11-tool in between: still fine.
restart_and_reprovision
check "pkcs11-tool signs after a second restart" \
        p11 --token-label ec --login --pin "$PIN" --sign --id 01 -m ECDSA-SHA384 --signature-format openssl \
        -i "$T/data" -o "$T/ec.sig3"
openssl dgst -sha384 -verify "$T/ec.pub" -signature "$T/ec.sig3" "$T/data" >/dev/null || fail "ec sig3 verifies"
ok "signature after the second restart verifies"

# Restart without re-provisioning: the token is gone, the session reports it instead of hanging.
timeout 60 "$P11_CLIENT" "$P11_MODULE" rsa open "login:$PIN" findkey sign:SHA256-RSA-PKCS:"$T/data":"$T/x" \
        touch:"$T/ready2" wait:"$T/go2" maxms:15000 \
        expect:CKR_DEVICE_ERROR\|CKR_DEVICE_REMOVED\|CKR_TOKEN_NOT_PRESENT\|CKR_SESSION_HANDLE_INVALID\|CKR_KEY_HANDLE_INVALID\|CKR_USER_NOT_LOGGED_IN\|CKR_SESSION_CLOSED \
        sign:SHA256-RSA-PKCS:"$T/data":"$T/x" >"$T/gone.out" 2>&1 &
gone=$!
BG_PIDS+=("$gone")
wait_for_file "$T/ready2" || { cat "$T/gone.out" >&2; fail "client did not get ready"; }
stop_daemon KILL
start_daemon
touch "$T/go2"
wait "$gone" || { cat "$T/gone.out" >&2; fail "a token missing after the restart gives an error, not a signature or a hang"; }
ok "a token missing after the restart is reported ($(grep -o 'CKR_[A-Z_]*' "$T/gone.out" | tail -2 | head -1))"
finish
