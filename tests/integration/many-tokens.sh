#!/bin/bash
# 1024 tokens (the default --max-tokens), EC P-256 to keep it fast: all provisioned with the CLI, the
# 1025th refused, all listed by pkcs11-tool -L, p11-kit list-modules and enclave-acm status.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
require_tool pkcs11-tool p11-kit python3 openssl

N=1024
if [[ ! -f ${P11_KIT_PROXY:-p11-kit-proxy.so} ]]; then
        echo "SKIP: '${P11_KIT_PROXY:-p11-kit-proxy.so}' is not installed (package p11-kit-modules)"
        exit 77
fi
AS=()
if [[ $EUID -eq 0 ]]; then
        require_tool setpriv
        AS=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
fi
chmod 0755 "$T"
start_daemon --socket-mode 0666

# Two provisioning streams in parallel, each one CLI call per token (never under valgrind: too slow).
add_range() { # FIRST LAST
        local i
        for ((i = $1; i <= $2; i++)); do
                "$ENCLAVE_ACM_BIN" token add --label "tok-$(printf '%04d' "$i")" --pin-file "$T/pin" \
                        --key "$TEST_DATA/ec-p256.key.pem" --cert "$TEST_DATA/ec-p256.crt.pem" >/dev/null 2>"$T/add-$1.err" ||
                        { echo "token $i:"; cat "$T/add-$1.err"; return 1; }
        done
}
start=$SECONDS
add_range 1 512 &
p1=$!
add_range 513 $N &
p2=$!
wait "$p1" || fail "provisioning tokens 1-512"
wait "$p2" || fail "provisioning tokens 513-$N"
ok "provisioned $N tokens in $((SECONDS - start)) s"

rc=0
"$ENCLAVE_ACM" token add --label one-too-many --pin-file "$T/pin" --key "$TEST_DATA/ec-p256.key.pem" \
        --cert "$TEST_DATA/ec-p256.crt.pem" >"$T/limit.out" 2>&1 || rc=$?
[[ $rc -eq 1 ]] && grep -q 'a limit of the daemon is reached' "$T/limit.out" ||
        { cat "$T/limit.out" >&2; fail "token $((N + 1)) is refused with LIMIT (exit $rc)"; }
ok "token $((N + 1)) is refused: limit reached"

"$ENCLAVE_ACM" status --json >"$T/status.json" || fail "status --json with $N tokens"
python3 - "$T/status.json" "$N" <<'PY' || fail "status --json lists $N tokens"
import json, sys
st = json.load(open(sys.argv[1]))
n = int(sys.argv[2])
assert st["token_count"] == n and st["token_limit"] == n, (st["token_count"], st["token_limit"])
labels = sorted(t["label"] for t in st["tokens"])
assert labels == ["tok-%04d" % i for i in range(1, n + 1)], labels[:5]
assert len({t["slot"] for t in st["tokens"]}) == n
PY
ok "enclave-acm status --json lists $N tokens with distinct slots"

timeout 120 pkcs11-tool --module "$P11_MODULE" -L >"$T/L.out" 2>&1 || { tail "$T/L.out" >&2; fail "pkcs11-tool -L"; }
[[ $(grep -Ec 'token label +: tok-[0-9]{4}$' "$T/L.out") -eq $N ]] ||
        fail "pkcs11-tool -L lists $N tokens (got $(grep -c 'token label' "$T/L.out"))"
ok "pkcs11-tool -L lists $N tokens"

# p11-kit, as nobody (it ignores user module configs for root), through a user module file.
mkdir -p "$T/home/.config/pkcs11/modules" "$T/lib"
cp "$P11_MODULE" "$T/lib/enclave-acm-pkcs11.so"
printf 'module: %s\n' "$T/lib/enclave-acm-pkcs11.so" >"$T/home/.config/pkcs11/modules/enclave-acm.module"
chmod -R a+rX "$T/home" "$T/lib"
as_user() {
        timeout 120 "${AS[@]}" env -u PKCS11_MODULE_PATH HOME="$T/home" XDG_CONFIG_HOME="$T/home/.config" \
                ENCLAVE_ACM_ADDRESS="$DATA_ADDR" "$@"
}
# The p11-kit proxy (what libp11 loads by default) aggregates all 1024 slots.
as_user pkcs11-tool --module "$P11_KIT_PROXY" -L >"$T/proxy.out" 2>&1 || { tail "$T/proxy.out" >&2; fail "pkcs11-tool via p11-kit-proxy"; }
[[ $(grep -Ec 'token label +: tok-[0-9]{4}$' "$T/proxy.out") -eq $N ]] ||
        fail "p11-kit-proxy lists $N tokens (got $(grep -Ec 'token label +: tok-' "$T/proxy.out"))"
ok "pkcs11-tool through p11-kit-proxy lists $N tokens"
# `p11-kit list-modules` of Debian 12 (0.24.1) reads at most 256 slots per module (a fixed array; later
# versions allocate): with 1024 tokens it reports the module and CKR_BUFFER_TOO_SMALL for the slot list,
# which is the module answering by the standard. Below 256 tokens it lists every one (checked further down).
as_user p11-kit list-modules >"$T/lm.out" 2>&1 || { tail "$T/lm.out" >&2; fail "p11-kit list-modules"; }
grep -q "^enclave-acm: $T/lib/enclave-acm-pkcs11.so" "$T/lm.out" || { cat "$T/lm.out" >&2; fail "list-modules shows the module"; }
lm_tokens=$(grep -Ec '^ +token: tok-[0-9]{4}$' "$T/lm.out" || true)
[[ $lm_tokens -eq $N ]] || grep -q 'Not enough space' "$T/lm.out" ||
        { cat "$T/lm.out" >&2; fail "p11-kit list-modules: $lm_tokens tokens and no CKR_BUFFER_TOO_SMALL"; }
ok "p11-kit list-modules shows the module with $N tokens ($lm_tokens listed; 0.24.1 stops at 256 slots)"

for i in $(seq 1 8); do printf 'many tokens %02d\n' "$i"; done >"$T/data"
check "sign with the last token" timeout 30 pkcs11-tool --module "$P11_MODULE" --token-label tok-$N --login --pin "$PIN" \
        --sign --id 01 -m ECDSA-SHA256 --signature-format openssl -i "$T/data" -o "$T/sig"
openssl dgst -sha256 -verify <(openssl x509 -in "$TEST_DATA/ec-p256.crt.pem" -noout -pubkey) -signature "$T/sig" \
        "$T/data" >/dev/null || fail "signature with tok-$N verifies"
ok "signature with tok-$N verifies"

check_output "remove one token" "Removed token 'tok-0500'" "$ENCLAVE_ACM" token remove --label tok-0500 --pin-file "$T/pin"
check_output "then one more fits" "Added token 'one-more'" "$ENCLAVE_ACM" token add --label one-more --pin-file "$T/pin" \
        --key "$TEST_DATA/ec-p256.key.pem" --cert "$TEST_DATA/ec-p256.crt.pem"

# Down to 250 tokens: p11-kit list-modules lists each of them.
remove_range() { # FIRST LAST
        local i
        for ((i = $1; i <= $2; i++)); do
                [[ $i -eq 500 ]] && continue
                "$ENCLAVE_ACM_BIN" token remove --label "tok-$(printf '%04d' "$i")" --pin-file "$T/pin" >/dev/null 2>&1 || return 1
        done
}
remove_range 1 387 &
p1=$!
remove_range 388 775 &
p2=$!
wait "$p1" && wait "$p2" || fail "removing tokens"
"$ENCLAVE_ACM" status --json | python3 -c 'import json,sys; n=json.load(sys.stdin)["token_count"]; assert n == 250, n' ||
        fail "250 tokens left"
as_user p11-kit list-modules >"$T/lm.out" 2>&1 || { tail "$T/lm.out" >&2; fail "p11-kit list-modules"; }
[[ $(grep -Ec '^ +token: (tok-[0-9]{4}|one-more)$' "$T/lm.out") -eq 250 ]] ||
        { grep -B2 -A2 enclave-acm "$T/lm.out" >&2; fail "p11-kit list-modules lists 250 tokens"; }
ok "after removing 775 tokens, p11-kit list-modules lists all 250 left"
finish
