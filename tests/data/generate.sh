#!/bin/bash
# Regenerates the committed test keys and certificates. Tests never run this: they use the
# committed output, so a run does not depend on randomness or the clock.
#   usage: tests/data/generate.sh [OUTDIR]   (default: the folder this script is in)
set -euo pipefail

out=${1:-$(cd "$(dirname "$0")" && pwd)}
days=36500 # 100 years: the committed certificates must not expire under the tests
cd "$out"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# name  genpkey arguments
keys=(
        "rsa2048:-algorithm RSA -pkeyopt rsa_keygen_bits:2048"
        "rsa3072:-algorithm RSA -pkeyopt rsa_keygen_bits:3072"
        "rsa4096:-algorithm RSA -pkeyopt rsa_keygen_bits:4096"
        "ec-p256:-algorithm EC -pkeyopt ec_paramgen_curve:P-256 -pkeyopt ec_param_enc:named_curve"
        "ec-p384:-algorithm EC -pkeyopt ec_paramgen_curve:P-384 -pkeyopt ec_param_enc:named_curve"
        "ec-p521:-algorithm EC -pkeyopt ec_paramgen_curve:P-521 -pkeyopt ec_param_enc:named_curve"
        "ed25519:-algorithm ED25519"
)

for entry in "${keys[@]}"; do
        name=${entry%%:*}
        args=${entry#*:}
        # shellcheck disable=SC2086
        openssl genpkey $args -out "$name.key.pem"
        usage=digitalSignature
        [[ $name == rsa* ]] && usage=digitalSignature,keyEncipherment
        openssl req -new -x509 -key "$name.key.pem" -out "$name.crt.pem" -days "$days" \
                -subj "/O=enclave-acm tests/CN=$name.enclave-acm.test" \
                -addext "subjectAltName=DNS:$name.enclave-acm.test" \
                -addext "basicConstraints=critical,CA:FALSE" \
                -addext "keyUsage=critical,$usage"
        openssl pkey -in "$name.key.pem" -pubout -out "$name.pub.pem"
done

# Keys enclave-token must refuse (tests/unit/test-keystore.c): RSA below 2048 bits, a curve it does not
# support, and X25519, which cannot sign, so the Ed25519 key above signs its certificate.
for entry in "rsa1024:-algorithm RSA -pkeyopt rsa_keygen_bits:1024" \
        "secp256k1:-algorithm EC -pkeyopt ec_paramgen_curve:secp256k1 -pkeyopt ec_param_enc:named_curve"; do
        name=${entry%%:*}
        # shellcheck disable=SC2086
        openssl genpkey ${entry#*:} -out "$name.key.pem"
        openssl req -new -x509 -key "$name.key.pem" -out "$name.crt.pem" -days "$days" \
                -subj "/O=enclave-acm tests/CN=$name.enclave-acm.test" \
                -addext "subjectAltName=DNS:$name.enclave-acm.test" \
                -addext "basicConstraints=critical,CA:FALSE" \
                -addext "keyUsage=critical,digitalSignature"
        openssl pkey -in "$name.key.pem" -pubout -out "$name.pub.pem"
done
openssl genpkey -algorithm X25519 -out x25519.key.pem
openssl pkey -in x25519.key.pem -pubout -out x25519.pub.pem
openssl x509 -new -subj "/O=enclave-acm tests/CN=x25519.enclave-acm.test" -key ed25519.key.pem \
        -force_pubkey x25519.pub.pem -days "$days" -out x25519.crt.pem

# The same RSA-2048 key in the traditional PKCS#1 form ("BEGIN RSA PRIVATE KEY").
openssl pkey -in rsa2048.key.pem -traditional -out rsa2048.pkcs1.key.pem

# A three-level chain: root CA -> intermediate CA -> leaf (EC P-256 leaf key).
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/root.key.pem"
openssl req -new -x509 -key "$tmp/root.key.pem" -out chain-root.crt.pem -days "$days" \
        -subj "/O=enclave-acm tests/CN=enclave-acm test root CA" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign"

openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/inter.key.pem"
openssl req -new -key "$tmp/inter.key.pem" -out "$tmp/inter.csr" \
        -subj "/O=enclave-acm tests/CN=enclave-acm test intermediate CA"
printf '%s\n' "basicConstraints=critical,CA:TRUE,pathlen:0" "keyUsage=critical,keyCertSign,cRLSign" \
        >"$tmp/inter.ext"
openssl x509 -req -in "$tmp/inter.csr" -CA chain-root.crt.pem -CAkey "$tmp/root.key.pem" \
        -set_serial 2 -days "$days" -extfile "$tmp/inter.ext" -out chain-intermediate.crt.pem

openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out chain-leaf.key.pem
openssl req -new -key chain-leaf.key.pem -out "$tmp/leaf.csr" \
        -subj "/O=enclave-acm tests/CN=chain-leaf.enclave-acm.test"
printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
        "subjectAltName=DNS:chain-leaf.enclave-acm.test" >"$tmp/leaf.ext"
openssl x509 -req -in "$tmp/leaf.csr" -CA chain-intermediate.crt.pem -CAkey "$tmp/inter.key.pem" \
        -set_serial 3 -days "$days" -extfile "$tmp/leaf.ext" -out chain-leaf.crt.pem
cat chain-leaf.crt.pem chain-intermediate.crt.pem >chain-leaf.chain.pem
openssl pkey -in chain-leaf.key.pem -pubout -out chain-leaf.pub.pem

openssl verify -CAfile chain-root.crt.pem -untrusted chain-intermediate.crt.pem chain-leaf.crt.pem
