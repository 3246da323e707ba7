#!/bin/bash
# GnuTLS tools against the module: p11tool listing, export and --test-sign, certtool signing a certificate
# with a token key. Key URIs come from `enclave-acm status --json`, so the CLI's URIs are tested too.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
require_tool p11tool certtool openssl python3

D=$TEST_DATA
start_daemon
KEYS=(rsa2048 rsa3072 ec-p256 ec-p384 ec-p521 ed25519)
for k in "${KEYS[@]}"; do
        provision "$k" "$k"
done
provision "chain token" chain-leaf --id 258 --key-label "leaf key"
export GNUTLS_PIN=$PIN

# uri LABEL: the private key URI that `enclave-acm status --json` reports for the token's first key.
"$ENCLAVE_ACM" status --json >"$T/status.json"
uri() {
        python3 -c 'import json,sys; print(next(t["keys"][0]["uri"] for t in json.load(open(sys.argv[1]))["tokens"] if t["label"] == sys.argv[2]))' \
                "$T/status.json" "$1"
}

P=(p11tool --provider "$P11_MODULE")
check_output "p11tool --list-tokens" 'Manufacturer: enclave-acm' "${P[@]}" --list-tokens
for k in "${KEYS[@]}" "chain token"; do
        grep -q "Label: $k\$" "$T/check.out" || { cat "$T/check.out" >&2; fail "--list-tokens shows '$k'"; }
done
grep -q 'Model: enclave-token' "$T/check.out" || fail "--list-tokens shows the model"
ok "p11tool --list-tokens shows every token with manufacturer and model"

check_output "p11tool --list-all without login: certificate" 'type=cert' "${P[@]}" --list-all 'pkcs11:token=rsa2048'
! grep -q 'type=private' "$T/check.out" || { cat "$T/check.out" >&2; fail "private key listed without login"; }
check_output "p11tool --login --list-all shows the private key" \
        'pkcs11:model=enclave-token;manufacturer=enclave-acm;.*token=rsa2048;id=%01;object=rsa2048;type=private' \
        "${P[@]}" --login --list-all 'pkcs11:token=rsa2048'
check_output "p11tool --list-all on the chain token: id 258 is %01%02" 'id=%01%02;object=leaf%20key;type=private' \
        "${P[@]}" --login --list-all 'pkcs11:token=chain%20token'
[[ $(grep -c 'type=cert' "$T/check.out") -eq 2 ]] || { cat "$T/check.out" >&2; fail "chain token lists 2 certificates"; }
ok "chain token lists leaf and intermediate certificates"

# (GnuTLS needs an object or id in the URI to export.)
"${P[@]}" --export 'pkcs11:token=ec-p384;object=ec-p384;type=cert' >"$T/exported.pem" 2>"$T/err" || { cat "$T/err" >&2; fail "p11tool --export"; }
cmp -s <(openssl x509 -in "$T/exported.pem" -outform DER) <(openssl x509 -in "$D/ec-p384.crt.pem" -outform DER) ||
        fail "exported certificate equals the provisioned one"
ok "p11tool --export gives the provisioned certificate"
"${P[@]}" --list-all-certs 'pkcs11:token=chain%20token' >"$T/certs.out" 2>&1 || { cat "$T/certs.out" >&2; fail "--list-all-certs"; }
: >"$T/chain.pem"
while read -r url; do
        "${P[@]}" --export "$url" >>"$T/chain.pem" 2>"$T/err" || { cat "$T/err" >&2; fail "p11tool --export '$url'"; }
done < <(sed -n 's/^[[:space:]]*URL: //p' "$T/certs.out")
cmp -s <(grep -v '^$' "$T/chain.pem") <(cat "$D/chain-leaf.crt.pem" "$D/chain-intermediate.crt.pem") ||
        { cat "$T/certs.out" "$T/chain.pem" >&2; fail "the chain token's certificates are leaf + intermediate"; }
grep -q 'CKA_CERTIFICATE_CATEGORY=CA' "$T/certs.out" || { cat "$T/certs.out" >&2; fail "the intermediate is a CA certificate"; }
ok "p11tool exports the chain token's leaf and intermediate (category CA)"

# --test-sign signs with the token key and verifies against the key's public parameters.
test_sign() { # LABEL [extra p11tool options]
        local label=$1 u
        shift
        u=$(uri "$label")
        "${P[@]}" --login --test-sign "$u" "$@" >"$T/ts.out" 2>&1 || { cat "$T/ts.out" >&2; fail "p11tool --test-sign '$u' $*"; }
        grep -q 'Verifying against private key parameters... ok' "$T/ts.out" || { cat "$T/ts.out" >&2; fail "test-sign on '$label' verified"; }
        ! grep -qi 'failed' "$T/ts.out" || { cat "$T/ts.out" >&2; fail "test-sign on '$label' reported a failure"; }
        ok "p11tool --test-sign $u $*"
}
for k in rsa2048 rsa3072 ec-p256 ec-p384 ec-p521 "chain token"; do
        test_sign "$k"
done
test_sign ed25519 --hash SHA512 # GnuTLS signs Ed25519 only with its own hash, SHA-512
test_sign rsa2048 --sign-params RSA-PSS
test_sign rsa3072 --sign-params RSA-PSS

# certtool signs a whole certificate with a token key; OpenSSL checks the self-signature.
cat >"$T/template" <<'TMPL'
cn = "certtool.enclave-acm.test"
serial = 42
expiration_days = 30
signing_key
TMPL
for k in rsa2048 ec-p256 ed25519; do
        certtool --provider "$P11_MODULE" --generate-self-signed --load-privkey "$(uri "$k")" \
                --template "$T/template" --outfile "$T/self-$k.pem" >"$T/certtool.out" 2>&1 ||
                { cat "$T/certtool.out" >&2; fail "certtool --generate-self-signed with the '$k' token key"; }
        openssl verify -CAfile "$T/self-$k.pem" -check_ss_sig "$T/self-$k.pem" >/dev/null 2>&1 ||
                fail "the certificate certtool signed with '$k' verifies"
        cmp -s <(openssl x509 -in "$T/self-$k.pem" -noout -pubkey) <(openssl x509 -in "$D/$k.crt.pem" -noout -pubkey) ||
                fail "certtool used the token key of '$k'"
        ok "certtool signed a certificate with the '$k' token key; openssl verifies it"
done

# Wrong PIN.
check_fails "p11tool --login with a wrong PIN" 'PIN|pin|login|Login' \
        env GNUTLS_PIN="$WRONG_PIN" "${P[@]}" --login --test-sign "$(uri ec-p256)"
finish
