#!/bin/bash
# enclave-token stopped (SIGSTOP) for longer than ENCLAVE_ACM_TIMEOUT_MS: each module call returns an error
# within one timeout plus a margin, whatever it needs (a round trip on an open connection, a new connection
# the stopped daemon's listen backlog accepts, several round trips), also with many threads signing at
# once and in a process that starts meanwhile; after SIGCONT the same processes sign again.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

export ENCLAVE_ACM_TIMEOUT_MS=1500
# One timeout plus a margin for a loaded machine. A call that waits a second timeout takes 3000 ms or more.
BOUND=2600
[[ -n $VALGRIND ]] && BOUND=2900 # valgrind's own slowness, still under two timeouts
ERR='CKR_DEVICE_ERROR|CKR_DEVICE_REMOVED|CKR_TOKEN_NOT_PRESENT|CKR_FUNCTION_FAILED|CKR_GENERAL_ERROR'
MECH=SHA256-RSA-PKCS

for i in $(seq 1 16); do printf 'frozen token test %02d\n' "$i"; done >"$T/data"
openssl x509 -in "$TEST_DATA/rsa2048.crt.pem" -noout -pubkey >"$T/rsa.pub"
start_daemon
provision rsa rsa2048
C=(timeout 120 "$P11_CLIENT" "$P11_MODULE" rsa)

# a: a logged-in session that signed, then 12 threads signing 3 times each at once (more threads than
# the module's pool has connections), then one more signature; after SIGCONT it signs again.
"${C[@]}" open "login:$PIN" findkey sign:$MECH:"$T/data":"$T/a.sig1" touch:"$T/a.ready" wait:"$T/stopped" \
        expect:"$ERR" callthreads:12:3:$BOUND:$MECH:"$T/data" \
        expect:"$ERR" maxms:$BOUND sign:$MECH:"$T/data":"$T/a.x" \
        touch:"$T/a.done" wait:"$T/resumed" sign:$MECH:"$T/data":"$T/a.sig2" >"$T/a.out" 2>&1 &
a=$!
BG_PIDS+=("$a")
# b: has listed the tokens (one open connection) but not read the keys: the key search then needs two
# round trips (TOKEN_LIST, then TOKEN_OBJECTS on a new connection); then C_Login, and C_Initialize again.
"${C[@]}" open touch:"$T/b.ready" wait:"$T/stopped" \
        expect:"$ERR" maxms:$BOUND countkeys:1 \
        expect:"$ERR" maxms:$BOUND "login:$PIN" \
        expect:CKR_TOKEN_NOT_PRESENT maxms:$BOUND initrace:4 \
        touch:"$T/b.done" wait:"$T/resumed" initrace:1 open "login:$PIN" countkeys:1 findkey \
        sign:$MECH:"$T/data":"$T/b.sig" >"$T/b.out" 2>&1 &
b=$!
BG_PIDS+=("$b")
wait_for_file "$T/a.ready" && wait_for_file "$T/b.ready" || { cat "$T"/[ab].out >&2; fail "clients did not get ready"; }

kill -STOP "$DAEMON_PID"
touch "$T/stopped"

# A process that starts while the daemon is stopped: C_Initialize and the token lookup end in time.
t0=$(date +%s%N)
rc=0
"${C[@]}" >"$T/c.out" 2>&1 || rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
grep -q "not ok - token 'rsa': CKR_TOKEN_NOT_PRESENT" "$T/c.out" || { cat "$T/c.out" >&2; fail "new process: exit $rc"; }
((ms <= BOUND)) || { cat "$T/c.out" >&2; fail "new process while stopped: $ms ms, more than $BOUND ms"; }
ok "a process started while enclave-token is stopped finds no token after $ms ms (bound $BOUND ms)"

wait_for_file "$T/a.done" 60 && wait_for_file "$T/b.done" 60 || { cat "$T"/[ab].out >&2; fail "clients stuck while stopped"; }
kill -CONT "$DAEMON_PID"
# While enclave-token looks frozen the module tries a new connection at most once a second: let that
# second pass, so the next call tries.
sleep 1.2
touch "$T/resumed"

wait "$a" || { cat "$T/a.out" >&2; fail "session a: calls bounded while stopped, signs after SIGCONT"; }
grep '^# thread\|^ok.*sign:\|^ok.*callthreads' "$T/a.out" | sed 's/^/# a: /'
ok "12 threads x 3 signatures while stopped: each call ended within $BOUND ms; one more signature too; signing works after SIGCONT"
wait "$b" || { cat "$T/b.out" >&2; fail "session b: calls bounded while stopped, works after SIGCONT"; }
grep '^ok.*\(countkeys\|login\|initrace\)' "$T/b.out" | sed 's/^/# b: /'
ok "key search, C_Login, C_Initialize + token lookup while stopped each ended within $BOUND ms; all work after SIGCONT"

for s in a.sig1 a.sig2 b.sig; do
        openssl dgst -sha256 -verify "$T/rsa.pub" -signature "$T/$s" "$T/data" >/dev/null || fail "$s verifies"
done
ok "signatures before and after the stop verify"
finish
