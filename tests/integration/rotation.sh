#!/bin/bash
# Key rotation: `token add --replace` with another key keeps the token's slot id (it depends on the
# label only) and retires the old version under the same slot id. A process that logged in on the
# old version keeps signing with the old key (its login ticket picks the version) during
# enclave-token's --rotation-grace; a fresh process sees the same one slot and signs with the new
# key; once the grace period is over the old ticket is refused, the module logs in again and the
# old session signs with the current version's key.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
require_tool openssl python3

GRACE=2
[[ -n $VALGRIND ]] && GRACE=30
MECH=SHA256-RSA-PKCS
printf 'rotation test %02d\n' $(seq 1 8) >"$T/data"
openssl x509 -in "$TEST_DATA/rsa2048.crt.pem" -noout -pubkey >"$T/old.pub"
openssl x509 -in "$TEST_DATA/rsa3072.crt.pem" -noout -pubkey >"$T/new.pub"

slot_of() {
        "$ENCLAVE_ACM" status --json | python3 -c '
import json, sys
slots = [t["slot"] for t in json.load(sys.stdin)["tokens"] if t["label"] == sys.argv[1]]
assert len(slots) == 1, slots
print(slots[0])' "$1"
}
verify() { # PUB SIG
        openssl dgst -sha256 -verify "$1" -signature "$2" "$T/data" >/dev/null 2>&1
}

start_daemon --rotation-grace "$GRACE"
provision web rsa2048
slot_old=$(slot_of web)

# The old process: session + login on version 1, then it waits for the rotation.
timeout 120 "$P11_CLIENT" "$P11_MODULE" web open "login:$PIN" findkey sign:$MECH:"$T/data":"$T/old.sig1" \
        touch:"$T/ready" wait:"$T/rotated" slots:1 sign:$MECH:"$T/data":"$T/old.sig2" countkeys:1 \
        touch:"$T/signed" wait:"$T/expired" \
        sign:$MECH:"$T/data":"$T/old.sig3" >"$T/old.out" 2>&1 &
OLD_PID=$!
BG_PIDS+=("$OLD_PID")
wait_for_file "$T/ready" || { cat "$T/old.out" >&2; fail "the old process did not get ready"; }

provision web rsa3072 --replace
touch "$T/rotated"
slot_new=$(slot_of web)
[[ $slot_new == "$slot_old" ]] || fail "a replaced key changed the slot id ($slot_old -> $slot_new)"
ok "token add --replace with another key: same slot id $slot_new, one token listed"

wait_for_file "$T/signed" 20 || { cat "$T/old.out" >&2; fail "the old session did not sign after the rotation"; }
verify "$T/old.pub" "$T/old.sig1" && verify "$T/old.pub" "$T/old.sig2" ||
        fail "the old session's signatures do not verify with the OLD certificate"
ok "the old session signs after the rotation with the old key (its ticket picks the retired version)"

check "a fresh process sees one slot and signs with the new key" \
        timeout 60 "$P11_CLIENT" "$P11_MODULE" web slots:1 open "login:$PIN" findkey countkeys:1 \
        sign:$MECH:"$T/data":"$T/new.sig"
verify "$T/new.pub" "$T/new.sig" || fail "the fresh process's signature does not verify with the NEW certificate"
verify "$T/old.pub" "$T/new.sig" && fail "the fresh process signed with the old key"
ok "the fresh process's signature verifies with the new certificate"

# The same keys again: the same slot id, replaced in place.
provision web rsa3072 --replace
[[ $(slot_of web) == "$slot_new" ]] || fail "replacing with the same key changed the slot id"
ok "replacing with the same key keeps the slot id"

sleep $((GRACE + 2))
touch "$T/expired"
wait "$OLD_PID" || { cat "$T/old.out" >&2; fail "the old session could not sign after the grace period"; }
verify "$T/new.pub" "$T/old.sig3" || { cat "$T/old.out" >&2; fail "after the grace period the old session did not sign with the NEW key"; }
ok "after the grace period the old session logs in again and signs with the current (new) key"

stop_daemon
