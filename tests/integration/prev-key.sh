#!/bin/bash
# A key handle found before a key change keeps signing while enclave-token still answers for the old
# version (its rotation grace period), even after another session of the same process searched the
# objects again and saw the new key; once the old version is gone, the handle is CKR_KEY_HANDLE_INVALID
# and the new key signs. Before the fix, the second session's search made the first one's handle
# invalid at once (found by bench/soak.sh: a renewal under a multi-session consumer).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
: "${P11_PREV_KEY:?}"
[[ -n $VALGRIND ]] && P11_PREV_KEY=$(vg_wrap p11-prev-key "$P11_PREV_KEY")
grace=20
[[ -n $VALGRIND ]] && grace=60

start_daemon --rotation-grace "$grace"
provision prev ed25519
ok "provisioned token 'prev' with an Ed25519 key (id 1)"
printf 'a message signed before and after a key change\n' >"$T/msg"

coproc PREV { "$P11_PREV_KEY" "$P11_MODULE" prev "$T/pin" "$T/msg" "$T/sig" 2>"$T/prev.err"; }
prev_pid=$PREV_PID prev_out=${PREV[0]} # bash unsets both once the coprocess ends
wait_ready() {
        local line
        while IFS= read -r -t 120 line <&"$prev_out"; do
                echo "$line"
                [[ $line == ready ]] && return 0
        done
        cat "$T/prev.err" >&2
        fail "p11-prev-key did not get ready"
}
wait_ready
provision prev ec-p256 --replace --id 2
ok "replaced 'prev' with an ECDSA P-256 key (id 2); the old version signs for ${grace} s"
echo go >&"${PREV[1]}"
wait_ready
openssl pkeyutl -verify -pubin -inkey "$TEST_DATA/ed25519.pub.pem" -rawin -in "$T/msg" -sigfile "$T/sig" \
        >/dev/null || fail "the old handle's signature after the key change does not verify with the old key"
ok "the old handle's signature after the key change verifies with the old Ed25519 key"
echo go >&"${PREV[1]}"
while IFS= read -r -t 120 line <&"$prev_out"; do echo "$line"; done
wait "$prev_pid" || { cat "$T/prev.err" >&2; fail "p11-prev-key"; }
ok "p11-prev-key: the old handle until the old version is gone, then CKR_KEY_HANDLE_INVALID"
finish
