#!/bin/bash
# The large-frame budget of enclave-token (16 MiB for data frames larger than a connection's page and
# for answers the socket did not take) is shared by all clients, and each uid gets only a share of it
# (issue 12): one unprivileged uid holding hundreds of half-sent largest frames cannot keep another
# uid's large requests out. Before the per-uid share, nobody's 255 half frames took the whole budget
# and root's 16 KB Ed25519 signature request was refused (connection closed).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
require_tool openssl setpriv
[[ $EUID -eq 0 ]] || fail "needs root to run the attacker as another uid"
[[ -z $VALGRIND ]] || { echo "SKIP: hundreds of connections under valgrind"; exit 77; }

FLOOD=300 # half-sent frames of the largest size: 255 of them fill the budget but for 60 KiB,
FILL=40   # which as many half-sent 8 KiB frames fill (7 would do)
ulimit -n 4096 2>/dev/null || true
chmod 0755 "$T"
mkdir -m 0777 "$T/att"
NOBODY=$(id -u nobody 2>/dev/null || echo 65534)

start_daemon --socket-mode 0666
provision ed ed25519
SOCK=$T/data.sock
head -c 16000 /dev/urandom >"$T/msg" # RPC_DATA_MAX is 16384; a frame larger than a connection's page (4 KiB)

big_sign() { # NAME: root signs the 16 KB message with Ed25519; the signature must verify
        timeout 60 "$P11_CLIENT" "$P11_MODULE" ed open "login:$PIN" findkey \
                "sign:EDDSA:$T/msg:$T/$1.sig" >"$T/$1.out" 2>&1 || { cat "$T/$1.out" >&2; return 1; }
        openssl pkeyutl -verify -pubin -inkey "$TEST_DATA/ed25519.pub.pem" -rawin -in "$T/msg" \
                -sigfile "$T/$1.sig" >/dev/null
}
check "root signs a 16 KB message before the attack" big_sign before

# nobody: HELLO, then a header announcing the largest data body and half of it, on FLOOD connections,
# held until the daemon's frame timeout (10 s) closes them.
setpriv --reuid="$NOBODY" --regid="$NOBODY" --clear-groups \
        "$JUNK_CLIENT" "$SOCK" flood "$FLOOD" hello+half-big 30 "$T/att/big.status" >"$T/big.out" 2>&1 &
att=$!
for ((i = 0; i < 200; i++)); do
        [[ -e $T/att/big.status ]] && break
        kill -0 "$att" 2>/dev/null || { cat "$T/big.out" >&2; fail "the half-frame flood ended early"; }
        sleep 0.05
done
[[ -e $T/att/big.status ]] || fail "the half-frame flood did not settle"
setpriv --reuid="$NOBODY" --regid="$NOBODY" --clear-groups \
        "$JUNK_CLIENT" "$SOCK" flood "$FILL" hello+half-size:8192 30 "$T/att/fill.status" >"$T/fill.out" 2>&1 &
fill=$!
for ((i = 0; i < 200; i++)); do
        [[ -e $T/att/fill.status ]] && break
        kill -0 "$fill" 2>/dev/null || { cat "$T/fill.out" >&2; fail "the 8 KiB half-frame flood ended early"; }
        sleep 0.05
done
[[ -e $T/att/fill.status ]] || fail "the 8 KiB half-frame flood did not settle"
echo "# nobody's floods: largest frames $(cat "$T/att/big.status"); 8 KiB frames $(cat "$T/att/fill.status")"
held=$(sed -n 's/.* open=\([0-9]*\).*/\1/p' "$T/att/big.status")
# A quarter of the budget (4 MiB) per uid: 63 frames of 64 KiB + 16 bytes.
((held <= 64)) || fail "nobody holds $held half-sent largest frames: more than its share (64)"
ok "nobody holds $held half-sent largest frames, within its share of the budget"
# The daemon is within its frame timeout for these: they hold their mappings (or were refused one).
check "root signs a 16 KB message while nobody holds $FLOOD half-sent large frames" big_sign during
check "and again" big_sign during2
wait "$att" || { cat "$T/big.out" >&2; fail "the half-frame flood failed"; }
wait "$fill" || { cat "$T/fill.out" >&2; fail "the 8 KiB half-frame flood failed"; }
cat "$T/big.out" "$T/fill.out"
grep -E 'large-frame|Connection limits' "$T/daemon.log" | tail -n 3 || true
check "root signs a 16 KB message after the attack" big_sign after
finish
