#!/bin/bash
# pkcs11-tool (OpenSC) against the module: list, objects, mechanisms, and sign/verify + decrypt for every
# key type, each result checked by OpenSSL against the public key of the certificate read from the token.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
require_tool pkcs11-tool openssl cmp

D=$TEST_DATA
start_daemon
KEYS=(rsa2048 rsa3072 rsa4096 ec-p256 ec-p384 ec-p521 ed25519)
for k in "${KEYS[@]}"; do
        provision "$k" "$k"
done
provision chain chain-leaf --id 7 --key-label "web server"
ok "provisioned ${#KEYS[@]} key types and a chain with enclave-acm"

# Fixed input (no randomness in what is signed).
for i in $(seq 1 64); do printf 'enclave-acm integration test data, line %02d\n' "$i"; done >"$T/data"
for alg in sha256 sha384 sha512; do openssl dgst "-$alg" -binary -out "$T/data.$alg" "$T/data"; done
# DigestInfo for SHA-256, the input CKM_RSA_PKCS signs in TLS 1.2.
{ printf '\x30\x31\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x01\x05\x00\x04\x20'; cat "$T/data.sha256"; } \
        >"$T/data.di256"

# --- listing ------------------------------------------------------------------------------------
check_output "pkcs11-tool -I" 'Cryptoki version' p11 -I
check_output "pkcs11-tool --list-interfaces shows the PKCS 11 3.0 interface" 'PKCS 11' p11 --list-interfaces
p11 -L >"$T/L.out" 2>&1 || { cat "$T/L.out" >&2; fail "pkcs11-tool -L"; }
for label in "${KEYS[@]}" chain; do
        grep -Eq "token label +: $label\$" "$T/L.out" || { cat "$T/L.out" >&2; fail "-L lists token '$label'"; }
done
[[ $(grep -Ec 'token manufacturer +: enclave-acm$' "$T/L.out") -eq 8 ]] || fail "-L: manufacturer enclave-acm x8"
[[ $(grep -Ec 'token model +: enclave-token$' "$T/L.out") -eq 8 ]] || fail "-L: model enclave-token x8"
grep -Eq 'token flags +:.*login required' "$T/L.out" || fail "-L: tokens need a login"
ok "pkcs11-tool -L lists 8 tokens with label, manufacturer enclave-acm, model enclave-token, login required"

# -O without login: certificate and public key, no private key. With login: the private key too.
p11 --token-label rsa2048 -O >"$T/O.out" 2>&1 || { cat "$T/O.out" >&2; fail "pkcs11-tool -O"; }
grep -q 'Certificate Object' "$T/O.out" && grep -q 'Public Key Object; RSA 2048 bits' "$T/O.out" &&
        grep -Eq 'ID: +01$' "$T/O.out" && grep -Eq 'label: +rsa2048$' "$T/O.out" ||
        { cat "$T/O.out" >&2; fail "-O without login shows certificate and public key, id 01, label rsa2048"; }
! grep -q 'Private Key Object' "$T/O.out" || { cat "$T/O.out" >&2; fail "-O without login hides the private key"; }
ok "pkcs11-tool -O without login: certificate + public key, private key hidden"
p11 --token-label rsa2048 -O --login --pin "$PIN" >"$T/O.out" 2>&1 || { cat "$T/O.out" >&2; fail "-O --login"; }
grep -q 'Private Key Object; RSA' "$T/O.out" && grep -Eq 'Usage: .*sign' "$T/O.out" ||
        { cat "$T/O.out" >&2; fail "-O with login shows a signing private key"; }
ok "pkcs11-tool -O --login shows the private key"
p11 --token-label chain -O --login --pin "$PIN" >"$T/O.out" 2>&1 || { cat "$T/O.out" >&2; fail "-O chain"; }
[[ $(grep -c 'Certificate Object' "$T/O.out") -eq 2 ]] || { cat "$T/O.out" >&2; fail "chain token has 2 certificates"; }
grep -q 'Private Key Object; EC' "$T/O.out" && grep -Eq 'label: +web server$' "$T/O.out" && grep -Eq 'ID: +07$' "$T/O.out" ||
        { cat "$T/O.out" >&2; fail "chain token: key 'web server' id 07"; }
ok "pkcs11-tool -O: chain token has leaf + intermediate, key label 'web server', id 07"

check_output "-M on an RSA token" 'SHA256-RSA-PKCS-PSS' p11 --token-label rsa2048 -M
for m in RSA-PKCS, SHA256-RSA-PKCS, RSA-PKCS-PSS, RSA-PKCS-OAEP; do
        grep -q -- "^ *$m" "$T/check.out" || { cat "$T/check.out" >&2; fail "-M lists $m"; }
done
check_output "-M on an EC token" 'ECDSA-SHA384' p11 --token-label ec-p384 -M
for m in ECDSA, ECDSA-SHA256, ECDSA-SHA512; do
        grep -q -- "^ *$m" "$T/check.out" || { cat "$T/check.out" >&2; fail "-M lists $m"; }
done
check_output "-M on an Ed25519 token lists EDDSA" '^ *EDDSA' p11 --token-label ed25519 -M

# --- certificates and public keys read from the token ------------------------------------------
# $T/<label>.pub.pem: the public key of the certificate the token holds, for every verification below.
for label in "${KEYS[@]}" chain; do
        name=$label id=01
        [[ $label == chain ]] && name=chain-leaf id=07
        p11 --token-label "$label" --read-object --type cert --id "$id" -o "$T/$label.crt.der" >/dev/null 2>&1 ||
                fail "read the certificate of '$label'"
        openssl x509 -in "$D/$name.crt.pem" -outform DER -out "$T/$label.expected.der"
        cmp -s "$T/$label.crt.der" "$T/$label.expected.der" || fail "certificate of '$label' differs from $name.crt.pem"
        openssl x509 -inform DER -in "$T/$label.crt.der" -noout -pubkey >"$T/$label.pub.pem"
done
ok "the token's certificates are byte-identical to the provisioned ones"
for label in rsa2048 ec-p256 ec-p521; do
        p11 --token-label "$label" --read-object --type pubkey --id 01 -o "$T/$label.spki.der" >/dev/null 2>&1 ||
                fail "read the public key of '$label'"
        openssl pkey -pubin -in "$D/$label.pub.pem" -outform DER -out "$T/$label.spki.expected"
        cmp -s "$T/$label.spki.der" "$T/$label.spki.expected" || fail "public key object of '$label'"
done
ok "public key objects match the provisioned keys (RSA, EC P-256, EC P-521)"

# --- signatures ----------------------------------------------------------------------------------
sign() { # LABEL MECH IN OUT [pkcs11-tool options]
        local label=$1 mech=$2 in=$3 out=$4 id=01
        shift 4
        [[ $label == chain ]] && id=07
        p11 --token-label "$label" --login --pin "$PIN" --sign --id "$id" -m "$mech" -i "$in" -o "$out" "$@" \
                >"$T/sign.out" 2>&1 || { cat "$T/sign.out" >&2; fail "sign with $mech on '$label'"; }
}

for label in rsa2048 rsa3072 rsa4096; do
        pub=$T/$label.pub.pem
        sign "$label" RSA-PKCS "$T/data.di256" "$T/sig"
        openssl dgst -sha256 -verify "$pub" -signature "$T/sig" "$T/data" >/dev/null ||
                fail "$label RSA-PKCS over a DigestInfo: openssl verify"
        sign "$label" SHA256-RSA-PKCS "$T/data" "$T/sig"
        openssl dgst -sha256 -verify "$pub" -signature "$T/sig" "$T/data" >/dev/null ||
                fail "$label SHA256-RSA-PKCS: openssl verify"
        sign "$label" SHA384-RSA-PKCS "$T/data" "$T/sig"
        openssl dgst -sha384 -verify "$pub" -signature "$T/sig" "$T/data" >/dev/null ||
                fail "$label SHA384-RSA-PKCS: openssl verify"
        sign "$label" RSA-PKCS-PSS "$T/data.sha256" "$T/sig" --hash-algorithm SHA256 --mgf MGF1-SHA256 --salt-len 32
        openssl pkeyutl -verify -pubin -inkey "$pub" -in "$T/data.sha256" -sigfile "$T/sig" \
                -pkeyopt rsa_padding_mode:pss -pkeyopt digest:sha256 -pkeyopt rsa_mgf1_md:sha256 \
                -pkeyopt rsa_pss_saltlen:32 >/dev/null || fail "$label RSA-PKCS-PSS SHA-256: openssl verify"
        sign "$label" RSA-PKCS-PSS "$T/data.sha384" "$T/sig" --hash-algorithm SHA384 --mgf MGF1-SHA384 --salt-len 48
        openssl pkeyutl -verify -pubin -inkey "$pub" -in "$T/data.sha384" -sigfile "$T/sig" \
                -pkeyopt rsa_padding_mode:pss -pkeyopt digest:sha384 -pkeyopt rsa_mgf1_md:sha384 \
                -pkeyopt rsa_pss_saltlen:48 >/dev/null || fail "$label RSA-PKCS-PSS SHA-384: openssl verify"
        # pkcs11-tool takes the hash of hashed PSS from the mechanism: MGF1 with it, salt = digest size.
        sign "$label" SHA256-RSA-PKCS-PSS "$T/data" "$T/sig"
        openssl dgst -sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32 -sigopt rsa_mgf1_md:sha256 \
                -verify "$pub" -signature "$T/sig" "$T/data" >/dev/null ||
                fail "$label SHA256-RSA-PKCS-PSS: openssl verify"
        sign "$label" SHA512-RSA-PKCS-PSS "$T/data" "$T/sig"
        openssl dgst -sha512 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:64 -sigopt rsa_mgf1_md:sha512 \
                -verify "$pub" -signature "$T/sig" "$T/data" >/dev/null ||
                fail "$label SHA512-RSA-PKCS-PSS: openssl verify"
        ok "$label: RSA-PKCS, SHA256/384-RSA-PKCS, RSA-PKCS-PSS (SHA-256, SHA-384), SHA256/512-RSA-PKCS-PSS verified"
done

# ECDSA: raw over a digest and hashed, every hash on every curve; --signature-format openssl gives DER.
for label in ec-p256 ec-p384 ec-p521 chain; do
        pub=$T/$label.pub.pem
        for alg in sha256 sha384 sha512; do
                sign "$label" ECDSA "$T/data.$alg" "$T/sig" --signature-format openssl
                openssl pkeyutl -verify -pubin -inkey "$pub" -in "$T/data.$alg" -sigfile "$T/sig" >/dev/null ||
                        fail "$label ECDSA over a $alg digest: openssl verify"
                sign "$label" "ECDSA-${alg^^}" "$T/data" "$T/sig" --signature-format openssl
                openssl dgst "-$alg" -verify "$pub" -signature "$T/sig" "$T/data" >/dev/null ||
                        fail "$label ECDSA-${alg^^}: openssl verify"
        done
        # The default format is r||s, each half the size of the field.
        sign "$label" ECDSA-SHA256 "$T/data" "$T/sig"
        size=$(stat -c %s "$T/sig")
        case $label in
        ec-p256 | chain) want=64 ;;
        ec-p384) want=96 ;;
        ec-p521) want=132 ;;
        esac
        [[ $size -eq $want ]] || fail "$label ECDSA r||s is $size bytes, expected $want"
        ok "$label: ECDSA raw and ECDSA-SHA256/384/512 verified, r||s is $want bytes"
done
openssl verify -CAfile "$D/chain-root.crt.pem" -untrusted "$D/chain-intermediate.crt.pem" \
        <(openssl x509 -inform DER -in "$T/chain.crt.der") >/dev/null || fail "chain leaf from the token verifies"
ok "the chain token's leaf verifies up to the test root"

sign ed25519 EDDSA "$T/data" "$T/sig"
[[ $(stat -c %s "$T/sig") -eq 64 ]] || fail "Ed25519 signature is 64 bytes"
openssl pkeyutl -verify -pubin -inkey "$T/ed25519.pub.pem" -rawin -in "$T/data" -sigfile "$T/sig" >/dev/null ||
        fail "Ed25519 EDDSA: openssl verify"
ok "ed25519: EDDSA verified"

# A signature made on the token is rejected for other data (the checks above can fail).
printf 'other data\n' >"$T/other"
sign rsa2048 SHA256-RSA-PKCS "$T/data" "$T/sig"
! openssl dgst -sha256 -verify "$T/rsa2048.pub.pem" -signature "$T/sig" "$T/other" >/dev/null 2>&1 ||
        fail "a signature verifies for other data"
ok "a signature does not verify for other data"

# --- RSA decryption --------------------------------------------------------------------------------
printf 'premaster secret: 0123456789abcdef0123456789abcdef01234567' >"$T/secret"
decrypt() { # LABEL MECH IN OUT [options]
        local label=$1 mech=$2 in=$3 out=$4
        shift 4
        p11 --token-label "$label" --login --pin "$PIN" --decrypt --id 01 -m "$mech" -i "$in" -o "$out" "$@" \
                >"$T/dec.out" 2>&1 || { cat "$T/dec.out" >&2; fail "decrypt with $mech on '$label'"; }
}
for label in rsa2048 rsa3072 rsa4096; do
        pub=$T/$label.pub.pem
        openssl pkeyutl -encrypt -pubin -inkey "$pub" -in "$T/secret" -out "$T/ct"
        decrypt "$label" RSA-PKCS "$T/ct" "$T/pt"
        cmp -s "$T/pt" "$T/secret" || fail "$label RSA-PKCS decrypt gives the plaintext"
        openssl pkeyutl -encrypt -pubin -inkey "$pub" -in "$T/secret" -out "$T/ct" \
                -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256
        decrypt "$label" RSA-PKCS-OAEP "$T/ct" "$T/pt" --hash-algorithm SHA256 --mgf MGF1-SHA256
        cmp -s "$T/pt" "$T/secret" || fail "$label RSA-PKCS-OAEP SHA-256 decrypt gives the plaintext"
        openssl pkeyutl -encrypt -pubin -inkey "$pub" -in "$T/secret" -out "$T/ct" -pkeyopt rsa_padding_mode:oaep
        decrypt "$label" RSA-PKCS-OAEP "$T/ct" "$T/pt" --hash-algorithm SHA-1 --mgf MGF1-SHA1
        cmp -s "$T/pt" "$T/secret" || fail "$label RSA-PKCS-OAEP SHA-1 decrypt gives the plaintext"
        ok "$label: RSA-PKCS and RSA-PKCS-OAEP (SHA-1, SHA-256) decrypt what openssl encrypted"
done
# A corrupted ciphertext does not decrypt to the plaintext.
openssl pkeyutl -encrypt -pubin -inkey "$T/rsa2048.pub.pem" -in "$T/secret" -out "$T/ct"
printf '\x00\x01\x02\x03' | dd of="$T/ct" bs=1 seek=100 conv=notrunc status=none
rc=0
p11 --token-label rsa2048 --login --pin "$PIN" --decrypt --id 01 -m RSA-PKCS -i "$T/ct" -o "$T/pt" >"$T/dec.out" 2>&1 || rc=$?
if [[ $rc -eq 0 ]] && cmp -s "$T/pt" "$T/secret"; then
        fail "a corrupted ciphertext decrypted to the plaintext"
fi
ok "a corrupted ciphertext is rejected"
finish
