#!/bin/bash
# OpenSSL with the libp11 "pkcs11" engine (the path nginx and httpd use): sign with token keys via
# PKCS11_MODULE_PATH and via an openssl.cnf engine section, verify against the certificates.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
require_tool openssl python3
ENGINE_SO=$(openssl version -e | sed -n 's/^ENGINESDIR: "\(.*\)"$/\1/p')/pkcs11.so
if [[ ! -f $ENGINE_SO ]]; then
        echo "SKIP: the libp11 engine ($ENGINE_SO, package libengine-pkcs11-openssl) is not installed"
        exit 77
fi

D=$TEST_DATA
start_daemon
KEYS=(rsa2048 rsa4096 ec-p256 ec-p384 ec-p521)
for k in "${KEYS[@]}"; do
        provision "$k" "$k"
done
provision "web site" rsa3072 --id 9 --key-label "tls key"
for i in $(seq 1 40); do printf 'openssl engine test line %02d\n' "$i"; done >"$T/data"
openssl dgst -sha256 -binary -out "$T/data.sha256" "$T/data"

"$ENCLAVE_ACM" status --json >"$T/status.json"
uri() {
        python3 -c 'import json,sys; print(next(t["keys"][0]["uri"] for t in json.load(open(sys.argv[1]))["tokens"] if t["label"] == sys.argv[2]))' \
                "$T/status.json" "$1"
}
pub() { # LABEL -> public key of the provisioned certificate
        local name=$1
        [[ $name == "web site" ]] && name=rsa3072
        openssl x509 -in "$D/$name.crt.pem" -noout -pubkey >"$T/pub.pem"
        echo "$T/pub.pem"
}

export PKCS11_MODULE_PATH=$P11_MODULE
# openssl dgst -sign: OpenSSL hashes, the engine signs the digest (CKM_RSA_PKCS / CKM_ECDSA).
for k in "${KEYS[@]}" "web site"; do
        key="$(uri "$k");pin-value=$PIN"
        openssl dgst -sha256 -engine pkcs11 -keyform engine -sign "$key" -out "$T/sig" "$T/data" >"$T/e.out" 2>&1 ||
                { cat "$T/e.out" >&2; fail "openssl dgst -engine pkcs11 -sign with '$k'"; }
        openssl dgst -sha256 -verify "$(pub "$k")" -signature "$T/sig" "$T/data" >/dev/null ||
                fail "engine signature of '$k' verifies against its certificate"
        ok "openssl dgst -engine pkcs11 -sign with $k verifies against the certificate"
done

# openssl pkeyutl -sign over a digest, as in the issue; RSA also with PSS (what TLS 1.3 uses).
for k in rsa2048 ec-p384; do
        key="$(uri "$k");pin-value=$PIN"
        openssl pkeyutl -engine pkcs11 -keyform engine -inkey "$key" -sign -in "$T/data.sha256" \
                -pkeyopt digest:sha256 -out "$T/sig" >"$T/e.out" 2>&1 ||
                { cat "$T/e.out" >&2; fail "openssl pkeyutl -engine pkcs11 -sign with '$k'"; }
        openssl pkeyutl -verify -pubin -inkey "$(pub "$k")" -in "$T/data.sha256" -sigfile "$T/sig" \
                -pkeyopt digest:sha256 >/dev/null || fail "pkeyutl signature of '$k' verifies"
        ok "openssl pkeyutl -engine pkcs11 -sign with $k verifies"
done
key="$(uri rsa2048);pin-value=$PIN"
openssl pkeyutl -engine pkcs11 -keyform engine -inkey "$key" -sign -in "$T/data.sha256" -out "$T/sig" \
        -pkeyopt rsa_padding_mode:pss -pkeyopt digest:sha256 -pkeyopt rsa_pss_saltlen:32 >"$T/e.out" 2>&1 ||
        { cat "$T/e.out" >&2; fail "openssl pkeyutl -engine pkcs11 RSA-PSS"; }
openssl pkeyutl -verify -pubin -inkey "$(pub rsa2048)" -in "$T/data.sha256" -sigfile "$T/sig" \
        -pkeyopt rsa_padding_mode:pss -pkeyopt digest:sha256 -pkeyopt rsa_pss_saltlen:32 >/dev/null ||
        fail "engine RSA-PSS signature verifies"
ok "openssl pkeyutl -engine pkcs11 RSA-PSS (TLS 1.3 style) verifies"

# The PIN as ?pin-value= (query form) also works.
openssl dgst -sha256 -engine pkcs11 -keyform engine -sign "$(uri ec-p256)?pin-value=$PIN" -out "$T/sig" "$T/data" \
        >"$T/e.out" 2>&1 || { cat "$T/e.out" >&2; fail "engine with ?pin-value="; }
openssl dgst -sha256 -verify "$(pub ec-p256)" -signature "$T/sig" "$T/data" >/dev/null || fail "?pin-value= signature"
ok "engine with a ?pin-value= query"

# A wrong PIN fails cleanly.
rc=0
openssl dgst -sha256 -engine pkcs11 -keyform engine -sign "$(uri ec-p256);pin-value=$WRONG_PIN" -out "$T/sig" \
        "$T/data" >"$T/e.out" 2>&1 || rc=$?
[[ $rc -ne 0 && $rc -lt 124 ]] || { cat "$T/e.out" >&2; fail "engine with a wrong PIN: exit $rc"; }
ok "engine with a wrong PIN fails (exit $rc)"

# openssl.cnf with an engine section and MODULE_PATH, no environment variable.
unset PKCS11_MODULE_PATH
cat >"$T/openssl.cnf" <<CNF
openssl_conf = openssl_init
[openssl_init]
engines = engine_section
[engine_section]
pkcs11 = pkcs11_section
[pkcs11_section]
engine_id = pkcs11
dynamic_path = $ENGINE_SO
MODULE_PATH = $P11_MODULE
init = 0
CNF
key="$(uri "web site");pin-value=$PIN"
OPENSSL_CONF=$T/openssl.cnf openssl pkeyutl -engine pkcs11 -keyform engine -inkey "$key" -sign \
        -in "$T/data.sha256" -pkeyopt digest:sha256 -out "$T/sig" >"$T/e.out" 2>&1 ||
        { cat "$T/e.out" >&2; fail "openssl.cnf engine section with MODULE_PATH"; }
openssl pkeyutl -verify -pubin -inkey "$(pub "web site")" -in "$T/data.sha256" -sigfile "$T/sig" \
        -pkeyopt digest:sha256 >/dev/null || fail "openssl.cnf engine signature verifies"
ok "openssl.cnf engine section (MODULE_PATH) signs with 'web site'/'tls key'"
finish
