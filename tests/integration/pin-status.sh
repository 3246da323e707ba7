#!/bin/bash
# Issue 16, PIN status: CKF_USER_PIN_COUNT_LOW after a wrong PIN, CKF_USER_PIN_FINAL_TRY before the back-off
# starts, CKF_USER_PIN_LOCKED while attempts are refused, all cleared by a successful login. The count and
# the back-off stay in enclave-token; the module reports them. In one process (p11-pin-status) and across
# processes (pkcs11-tool -L after other processes' wrong PINs: the count is the token's).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
require_tool pkcs11-tool
: "${P11_PIN_STATUS:?}"
[[ -n $VALGRIND ]] && P11_PIN_STATUS=$(vg_wrap p11-pin-status "$P11_PIN_STATUS")

start_daemon
provision pins rsa2048
provision other ec-p256
ok "provisioned tokens 'pins' and 'other'"

flags() { # LABEL: the token flags line pkcs11-tool -L prints for it
        p11 -L >"$T/L.out" 2>&1 || { cat "$T/L.out" >&2; fail "pkcs11-tool -L"; }
        awk -v l="$1" '$1 == "token" && $2 == "label" { cur = $4 } $1 == "token" && $2 == "flags" && cur == l' "$T/L.out"
}
wrong_login() { # LABEL
        p11 --token-label "$1" --login --pin "$WRONG_PIN" -O >"$T/wrong.out" 2>&1 && fail "a wrong PIN logged in"
        grep -q 'CKR_PIN_INCORRECT' "$T/wrong.out" || { cat "$T/wrong.out" >&2; fail "a wrong PIN: CKR_PIN_INCORRECT"; }
}

f=$(flags pins)
[[ -n $f ]] || fail "pkcs11-tool -L shows token 'pins'"
[[ $f != *"user PIN"* && $f != *"PIN count low"* ]] || fail "fresh token shows a PIN status: $f"
ok "a fresh token shows no PIN status ($f)"

# In one process: COUNT_LOW, FINAL_TRY, LOCKED, cleared by the right PIN.
"$P11_PIN_STATUS" "$P11_MODULE" pins "$T/pin" "$T/wrong-pin" >"$T/status.out" 2>&1 || { cat "$T/status.out" >&2; fail "p11-pin-status"; }
cat "$T/status.out"
ok "p11-pin-status: the flags follow the enclave's count and back-off in one process"

# Across processes: each pkcs11-tool is a new connection, and the count is the token's. Another process
# sees it once it reads the token list (C_GetSlotList) or the token's objects; C_GetTokenInfo itself
# stays local (no round trip).
show() { # LABEL: the PIN flags another process reports after an object search
        "$P11_PIN_STATUS" "$P11_MODULE" "$1" show >"$T/show.out" 2>&1 || { cat "$T/show.out" >&2; fail "p11-pin-status show $1"; }
        sed -n 's/^pin-flags://p' "$T/show.out"
}
[[ $(show pins) == "" ]] || fail "after the right PIN another process sees a status: $(show pins)"
wrong_login pins
[[ $(show pins) == " count-low" ]] || fail "after another process's wrong PIN: count low only, got '$(show pins)'"
ok "another process's wrong PIN shows as CKF_USER_PIN_COUNT_LOW"
[[ $(show other) == "" ]] || fail "token 'other' shows the PIN status of 'pins'"
ok "the status is per token: 'other' shows none"
wrong_login pins
wrong_login pins
wrong_login pins
[[ $(show pins) == " count-low final-try" ]] || fail "after 4 wrong PINs: count low and final try, got '$(show pins)'"
ok "after 4 wrong PINs from 4 processes: CKF_USER_PIN_COUNT_LOW and CKF_USER_PIN_FINAL_TRY"
# pkcs11-tool -L reads no objects, only the token list (C_GetSlotList), which carries the status too.
f=$(flags pins)
[[ $f == *"user PIN count low"* && $f == *"final user PIN try"* ]] ||
        fail "pkcs11-tool -L (token list only) after 4 wrong PINs shows '$f'"
ok "pkcs11-tool -L shows another process's wrong PINs from the token list ($f)"
p11 --token-label pins --login --pin "$PIN" -O >"$T/right.out" 2>&1 || { cat "$T/right.out" >&2; fail "the right PIN"; }
[[ $(show pins) == "" ]] || fail "after the right PIN the status stays: '$(show pins)'"
ok "the right PIN (another process) clears the status"
finish
