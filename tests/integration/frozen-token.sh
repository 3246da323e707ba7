#!/bin/bash
# enclave-token stopped (SIGSTOP) for longer than ENCLAVE_ACM_TIMEOUT_MS: each module call returns an error
# within one timeout plus a margin, whatever it needs (a round trip on an open connection, a new connection
# the stopped daemon's listen backlog accepts, several round trips), also with many threads signing at
# once and in a process that starts meanwhile; after SIGCONT the same processes sign again.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

# BOUND: one timeout plus a margin for a loaded machine; a call that waits a second timeout takes twice
# the timeout or more. Under valgrind enclave-token signs so slowly that after SIGCONT the 12 threads'
# signatures would not fit into 1500 ms.
if [[ -n $VALGRIND ]]; then
        export ENCLAVE_ACM_TIMEOUT_MS=3000
        BOUND=5200
else
        export ENCLAVE_ACM_TIMEOUT_MS=1500
        BOUND=2600
fi
ERR='CKR_DEVICE_ERROR|CKR_DEVICE_REMOVED|CKR_TOKEN_NOT_PRESENT|CKR_FUNCTION_FAILED|CKR_GENERAL_ERROR'
MECH=SHA256-RSA-PKCS

for i in $(seq 1 16); do printf 'frozen token test %02d\n' "$i"; done >"$T/data"
openssl x509 -in "$TEST_DATA/rsa2048.crt.pem" -noout -pubkey >"$T/rsa.pub"
start_daemon
provision rsa rsa2048
C=(timeout 120 "$P11_CLIENT" "$P11_MODULE" rsa)

# a: a logged-in session that signed; then two signatures in a row, as an nginx worker handles handshakes
# (the first times out on the open connection; the second must not wait for a new connection's HELLO
# too: together they end within the bound); one more; after SIGCONT it signs again.
"${C[@]}" open "login:$PIN" findkey sign:$MECH:"$T/data":"$T/a.sig1" touch:"$T/a.ready" wait:"$T/stopped" \
        expect:"$ERR" maxms:$BOUND callthreads:1:2:$BOUND:$MECH:"$T/data" \
        expect:"$ERR" maxms:$BOUND sign:$MECH:"$T/data":"$T/a.x" \
        touch:"$T/a.done" wait:"$T/resumed" sign:$MECH:"$T/data":"$T/a.sig2" >"$T/a.out" 2>&1 &
a=$!
BG_PIDS+=("$a")
# t: 12 threads signing 3 times each at once, more threads than the module's pool has connections: one
# thread's call times out on the open connection, others on new connections' HELLO, the rest wait for a
# connection; after SIGCONT one signature finds enclave-token answering (while it tries, the others would
# fail at once), then 8 threads sign again. (Not 12: a thread that waits for one of the pool's 8
# connections can lose it again and again to the threads that return it, and under valgrind, which runs
# one thread at a time, it waits until its timeout.)
"${C[@]}" open "login:$PIN" findkey sign:$MECH:"$T/data":"$T/t.sig1" touch:"$T/t.ready" wait:"$T/stopped" \
        expect:"$ERR" callthreads:12:3:$BOUND:$MECH:"$T/data" \
        touch:"$T/t.done" wait:"$T/resumed" sign:$MECH:"$T/data":"$T/t.sig2" \
        callthreads:8:3:$BOUND:$MECH:"$T/data" >"$T/t.out" 2>&1 &
t=$!
BG_PIDS+=("$t")
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
for w in a t b; do
        wait_for_file "$T/$w.ready" || { cat "$T"/[atb].out >&2; fail "clients did not get ready"; }
done

kill -STOP "$DAEMON_PID"
touch "$T/stopped"

# A process that starts while the daemon is stopped: C_Initialize and the token lookup end in time.
rc=0
"${C[@]}" >"$T/c.out" 2>&1 || rc=$?
ms=$(sed -n "s/^not ok - token 'rsa': CKR_TOKEN_NOT_PRESENT (C_Initialize and the lookup took \([0-9]*\) ms)$/\1/p" "$T/c.out")
[[ -n $ms ]] || { cat "$T/c.out" >&2; fail "new process while stopped: exit $rc"; }
((ms <= BOUND)) || { cat "$T/c.out" >&2; fail "new process while stopped: $ms ms, more than $BOUND ms"; }
ok "a process started while enclave-token is stopped: C_Initialize and the token lookup fail after $ms ms (bound $BOUND ms)"

for w in a t b; do
        wait_for_file "$T/$w.done" 60 || { cat "$T"/[atb].out >&2; fail "clients stuck while stopped"; }
done
kill -CONT "$DAEMON_PID"
# While enclave-token looks frozen the module tries a new connection at most once a second: let that
# second pass, so the next call tries.
sleep 1.2
touch "$T/resumed"

wait "$a" || { cat "$T/a.out" >&2; fail "session a: calls bounded while stopped, signs after SIGCONT"; }
grep '^ok.*\(sign:\|callthreads\)' "$T/a.out" | sed 's/^/# a: /'
ok "while stopped: two signatures in a row ended within $BOUND ms together, one more too; signing works after SIGCONT"
wait "$t" || { cat "$T/t.out" >&2; fail "threads: each call bounded while stopped, all sign after SIGCONT"; }
grep '^# thread\|^ok.*callthreads' "$T/t.out" | sed 's/^/# t: /'
ok "while stopped: 12 threads x 3 signatures at once, each call ended within $BOUND ms; after SIGCONT 8 threads sign"
wait "$b" || { cat "$T/b.out" >&2; fail "session b: calls bounded while stopped, works after SIGCONT"; }
grep '^ok.*\(countkeys\|login\|initrace\)' "$T/b.out" | sed 's/^/# b: /'
ok "key search, C_Login, C_Initialize + token lookup while stopped each ended within $BOUND ms; all work after SIGCONT"

for s in a.sig1 a.sig2 t.sig1 t.sig2 b.sig; do
        openssl dgst -sha256 -verify "$T/rsa.pub" -signature "$T/$s" "$T/data" >/dev/null || fail "$s verifies"
done
ok "signatures before and after the stop verify"
finish
