#!/bin/bash
# enclave-token with busy polling on, as on vsock: the worker that answered a connection polls it for
# the next request before giving it back to epoll. Answers stay right, one worker is shared fairly
# between a client that never pauses and others, and clients that go away while polled cost nothing.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
require_tool openssl

# One worker and a poll window far longer than any client's pause between two signatures: the busy
# client's next request always arrives while its connection is polled.
start_daemon --workers 1 --busy-poll 5000
provision ec ec-p256
provision rsa rsa2048
printf 'busy poll test\n' >"$T/data"
openssl x509 -in "$TEST_DATA/rsa2048.crt.pem" -noout -pubkey >"$T/rsa.pub"

check "101 RSA signatures in a row on a polled connection" \
        timeout 120 "$P11_CLIENT" "$P11_MODULE" rsa open "login:$PIN" findkey signloop:100:SHA256-RSA-PKCS:"$T/data" \
        sign:SHA256-RSA-PKCS:"$T/data":"$T/rsa.sig"
openssl dgst -sha256 -verify "$T/rsa.pub" -signature "$T/rsa.sig" "$T/data" >/dev/null ||
        fail "the signature made on a polled connection verifies"
ok "the signature made on a polled connection verifies"

# Fairness: the busy client signs without a pause until it is told to stop. The worker stops polling
# the busy connection as soon as another one has a request for epoll, so the other client is served
# while the busy one is still at it (else it would wait for as long as the busy one goes on: its
# timeout, then the busy client's bound of signatures, fail the test). No timing is compared.
timeout 600 "$P11_CLIENT" "$P11_MODULE" ec open "login:$PIN" findkey signloop:20:ECDSA-SHA256:"$T/data" \
        touch:"$T/busy-started" signuntil:"$T/busy-stop":1000000:ECDSA-SHA256:"$T/data" >"$T/busy.out" 2>&1 &
busy=$!
BG_PIDS+=("$busy")
check "the busy client is signing" timeout 120 "$P11_CLIENT" "$P11_MODULE" ec wait:"$T/busy-started"
check "another client signs 20 times meanwhile, on the same single worker" \
        timeout 120 "$P11_CLIENT" "$P11_MODULE" ec open "login:$PIN" findkey signloop:20:ECDSA-SHA256:"$T/data"
kill -0 "$busy" 2>/dev/null || fail "the busy client stopped before it was told to (busy.out: $(cat "$T/busy.out"))"
ok "the other client was served while the busy one was still signing"
touch "$T/busy-stop"
wait "$busy" || { cat "$T/busy.out" >&2; fail "the busy client's signatures until told to stop"; }
ok "the busy client's signatures until told to stop ($(sed -n 's/^# stopped after \([0-9]*\).*/\1/p' "$T/busy.out"))"

# Clients that exit right after their last answer, while the worker polls their connection.
for i in $(seq 1 10); do
        timeout 60 "$P11_CLIENT" "$P11_MODULE" ec open "login:$PIN" findkey signloop:3:ECDSA-SHA256:"$T/data" \
                >"$T/short$i.out" 2>&1 || { cat "$T/short$i.out" >&2; fail "short-lived client $i"; }
done
ok "10 clients exited while their connections were polled"
kill -0 "$DAEMON_PID" 2>/dev/null || fail "enclave-token is still running"
check "enclave-token still answers after them" \
        timeout 60 "$P11_CLIENT" "$P11_MODULE" rsa open "login:$PIN" findkey sign:SHA256-RSA-PKCS:"$T/data":"$T/rsa2.sig"
finish
