#!/bin/bash
# Garbage and half frames on the data socket: the daemon closes those connections, while a client that
# connected before keeps signing, and new clients still get served while half frames hang around.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
require_tool openssl pkcs11-tool timeout

for i in $(seq 1 16); do printf 'junk frame test %02d\n' "$i"; done >"$T/data"
openssl x509 -in "$TEST_DATA/ec-p256.crt.pem" -noout -pubkey >"$T/ec.pub"
start_daemon
provision ec ec-p256
SOCK=$T/data.sock

# Client A: logged in and signing before the junk arrives, and again after it.
timeout 120 "$P11_CLIENT" "$P11_MODULE" ec open "login:$PIN" findkey signloop:100:ECDSA-SHA256:"$T/data" \
        touch:"$T/a.ready" wait:"$T/a.go" signloop:100:ECDSA-SHA256:"$T/data" sign:ECDSA-SHA256:"$T/data":"$T/a.sig" \
        >"$T/a.out" 2>&1 &
a=$!
BG_PIDS+=("$a")
wait_for_file "$T/a.ready" || { cat "$T/a.out" >&2; fail "client A did not get ready"; }

# Half frames, held open while everything below runs.
for mode in half-header half-body half-header half-body; do
        "$JUNK_CLIENT" "$SOCK" "$mode" 20 >/dev/null 2>&1 &
        BG_PIDS+=($!)
done

# Client B signs continuously in the background during the junk.
timeout 120 "$P11_CLIENT" "$P11_MODULE" ec open "login:$PIN" findkey signloop:1000:ECDSA-SHA256:"$T/data" \
        >"$T/b.out" 2>&1 &
b=$!
BG_PIDS+=("$b")

for mode in garbage badmagic badversion badkind oversize oversize-data before-hello badcbor garbage; do
        check "junk '$mode' closes that connection" timeout 30 "$JUNK_CLIENT" "$SOCK" "$mode"
done
# While four half frames are still open, a brand-new client is served.
check "a new pkcs11-tool signs while half frames are pending" timeout 20 \
        pkcs11-tool --module "$P11_MODULE" --token-label ec --login --pin "$PIN" --sign --id 01 -m ECDSA-SHA256 \
        --signature-format openssl -i "$T/data" -o "$T/new.sig"
openssl dgst -sha256 -verify "$T/ec.pub" -signature "$T/new.sig" "$T/data" >/dev/null || fail "new client's signature"

touch "$T/a.go"
wait "$a" || { cat "$T/a.out" >&2; fail "client A kept signing across the junk"; }
ok "client A (connected before the junk) kept signing on the same session"
wait "$b" || { cat "$T/b.out" >&2; fail "client B signed 1000 times during the junk"; }
ok "client B signed 1000 times while junk was sent"
kill -0 "$DAEMON_PID" || fail "the daemon is still running"
ok "the daemon survived the junk"

# The control socket rejects the same junk.
for mode in garbage oversize before-hello; do
        check "junk '$mode' on the control socket closes that connection" timeout 30 "$JUNK_CLIENT" "$T/control.sock" "$mode"
done
check_output "the control channel still works" 'Tokens: +1' "$ENCLAVE_ACM" status
finish
