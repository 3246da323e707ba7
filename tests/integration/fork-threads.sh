#!/bin/bash
# Processes and threads: pkcs11-tool --test-fork and --test-threads, a forked child re-initialising the
# libp11 way and the pkcs11-provider way, many threads on one module, several processes at once.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
require_tool pkcs11-tool openssl

start_daemon
provision rsa rsa2048
provision ec ec-p256
for i in $(seq 1 32); do printf 'fork and thread test line %02d\n' "$i"; done >"$T/data"

check_output "pkcs11-tool --test-fork" 'C_Initialize in forked child' p11 --test-fork
! grep -Eq 'error|Aborting' "$T/check.out" || { cat "$T/check.out" >&2; fail "--test-fork reported an error"; }
check_output "pkcs11-tool --test-fork with a token" 'C_Initialize in forked child' p11 --test-fork --token-label ec
! grep -Eq 'error|Aborting' "$T/check.out" || { cat "$T/check.out" >&2; fail "--test-fork reported an error"; }

# pkcs11-tool's test threads start before its main thread calls C_Initialize(NULL) and only the main
# thread tolerates CKR_CRYPTOKI_ALREADY_INITIALIZED, so a thread that starts with IN/IL races it. The
# four threads here pause a second (P1), then call into the module concurrently with each other (GI
# C_GetInfo, SL C_GetSlotList, Tn C_GetTokenInfo of slot n). pkcs11-tool then waits 30 s for them.
check_output "pkcs11-tool --test-threads, four threads at once, -L" 'all threads have ended with CKR_OK' \
        timeout 90 pkcs11-tool --module "$P11_MODULE" --test-threads P1SLT0GI --test-threads P1GISLT1 \
        --test-threads P1SLT1T0SL --test-threads P1GIGISLT0 -L
grep -Eq 'token label +: rsa$' "$T/check.out" || { cat "$T/check.out" >&2; fail "-L after the threads lists tokens"; }
[[ $(grep -c 'C_GetTokenInfo from slot_index' "$T/check.out") -eq 5 ]] || { cat "$T/check.out" >&2; fail "threads read token info"; }
# Concurrent C_Initialize from many threads: exactly one wins, the rest are told it is done.
check "16 threads call C_Initialize at once (x3), then sign" \
        timeout 60 "$P11_CLIENT" "$P11_MODULE" ec initrace:16 initrace:16 initrace:16 open "login:$PIN" findkey \
        sign:ECDSA-SHA256:"$T/data":"$T/sig0"

# A forked child: libp11 style (C_Initialize only) and pkcs11-provider style (C_Finalize first).
# The child must not use the parent's connection, and the parent must sign afterwards.
check "fork, child re-initialises (libp11 style), parent signs after" \
        timeout 60 "$P11_CLIENT" "$P11_MODULE" rsa open "login:$PIN" findkey sign:SHA256-RSA-PKCS:"$T/data":"$T/sig1" \
        fork:init:SHA256-RSA-PKCS:"$T/data" fork:init:SHA256-RSA-PKCS:"$T/data" sign:SHA256-RSA-PKCS:"$T/data":"$T/sig2"
check "fork, child finalizes then initialises (pkcs11-provider style)" \
        timeout 60 "$P11_CLIENT" "$P11_MODULE" ec open "login:$PIN" findkey fork:finalize:ECDSA-SHA256:"$T/data"
openssl x509 -in "$TEST_DATA/rsa2048.crt.pem" -noout -pubkey >"$T/rsa.pub"
for s in sig1 sig2; do
        openssl dgst -sha256 -verify "$T/rsa.pub" -signature "$T/$s" "$T/data" >/dev/null || fail "signature $s verifies"
done
ok "signatures before and after the forks verify"

# Many threads in one process, each with its own session.
check "16 threads x 50 ECDSA-SHA256 signatures" \
        timeout 120 "$P11_CLIENT" "$P11_MODULE" ec open "login:$PIN" findkey threads:16:50:ECDSA-SHA256:"$T/data"
check "8 threads x 20 SHA256-RSA-PKCS signatures" \
        timeout 120 "$P11_CLIENT" "$P11_MODULE" rsa open "login:$PIN" findkey threads:8:20:SHA256-RSA-PKCS:"$T/data"

# Several processes at once.
pids=()
for i in 1 2 3 4; do
        timeout 120 "$P11_CLIENT" "$P11_MODULE" ec open "login:$PIN" findkey signloop:200:ECDSA-SHA256:"$T/data" \
                >"$T/proc$i.out" 2>&1 &
        pids+=($!)
done
for i in 1 2 3 4; do
        wait "${pids[$((i - 1))]}" || { cat "$T/proc$i.out" >&2; fail "process $i of 4 signing in parallel"; }
done
ok "4 processes x 200 signatures in parallel"
finish
