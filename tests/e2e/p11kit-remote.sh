#!/bin/bash
# Issue 16, p11-kit remoting (the topology of AWS's ACM for Nitro Enclaves): `p11-kit server --provider
# enclave-acm-pkcs11.so` exports the tokens on a unix socket, p11-kit-client.so reaches them, and
# pkcs11-tool signs and verifies through it. p11-kit 0.24.1 (Debian 12) forwards only the mechanisms its
# RPC can serialise: raw RSA PKCS#1 v1.5 and PSS, SHA-1/256/384/512 with RSA PKCS#1 v1.5, raw ECDSA,
# ECDSA-SHA1, OAEP. Hashed PSS, ECDSA-SHA224..512 and EdDSA are dropped from the mechanism list and
# refused; the script checks that too, so the README's list stays true for the version tested.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
require_tool pkcs11-tool openssl
P11KIT_SERVER=/usr/libexec/p11-kit/p11-kit-server
CLIENT_SO=$(pkg-config --variable=p11_module_path p11-kit-1 2>/dev/null)/p11-kit-client.so
[[ -f $CLIENT_SO ]] || CLIENT_SO=/usr/lib/$(gcc -print-multiarch 2>/dev/null)/pkcs11/p11-kit-client.so
[[ -x $P11KIT_SERVER ]] || fail "$P11KIT_SERVER (package p11-kit) is not installed"
[[ -f $CLIENT_SO ]] || fail "p11-kit-client.so (package p11-kit-modules) is not installed"
P11KIT_VERSION=$(dpkg-query -W -f '${Version}' p11-kit 2>/dev/null || echo unknown)
echo "# p11-kit $P11KIT_VERSION"

start_token
provision pk-rsa rsa2048
provision pk-ec ec-p256
provision pk-ed ed25519
ok "provisioned pk-rsa (RSA-2048), pk-ec (P-256), pk-ed (Ed25519)"

SOCK=$T/p11kit.sock
ENCLAVE_ACM_ADDRESS=$DATA_ADDR timeout 300 "$P11KIT_SERVER" -f --provider "$P11_MODULE" -n "$SOCK" \
        'pkcs11:token=pk-rsa' 'pkcs11:token=pk-ec' 'pkcs11:token=pk-ed' >"$LOGS/p11-kit-server.log" 2>&1 &
SERVER_PID=$!
BG_PIDS+=("$SERVER_PID")
server_stop() { kill -TERM "$SERVER_PID" 2>/dev/null || true; }
STOP_HOOKS+=(server_stop)
for ((i = 0; i < 200; i++)); do
        [[ -S $SOCK ]] && break
        alive "$SERVER_PID" || { cat "$LOGS/p11-kit-server.log" >&2; fail "p11-kit server exited"; }
        sleep 0.05
done
[[ -S $SOCK ]] || fail "p11-kit server did not create $SOCK"
ok "p11-kit server --provider enclave-acm-pkcs11.so listens on a unix socket"

# Clients see nothing of enclave-token: only the p11-kit socket.
remote() {
        env -u ENCLAVE_ACM_ADDRESS P11_KIT_SERVER_ADDRESS="unix:path=$SOCK" timeout 60 pkcs11-tool --module "$CLIENT_SO" "$@"
}
remote -L >"$T/L.out" 2>&1 || { cat "$T/L.out" >&2; fail "pkcs11-tool -L through p11-kit-client.so"; }
for label in pk-rsa pk-ec pk-ed; do
        grep -Eq "token label +: $label\$" "$T/L.out" || { cat "$T/L.out" >&2; fail "p11-kit-client lists '$label'"; }
done
grep -Eq 'token manufacturer +: enclave-acm$' "$T/L.out" || fail "p11-kit-client: manufacturer enclave-acm"
ok "pkcs11-tool through p11-kit-client.so lists the three tokens"

for i in $(seq 1 30); do printf 'p11-kit remote data %02d\n' "$i"; done >"$T/data"
openssl dgst -sha256 -binary -out "$T/data.sha256" "$T/data"
{ printf '\x30\x31\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x01\x05\x00\x04\x20'; cat "$T/data.sha256"; } >"$T/data.di256"
openssl x509 -in "$TEST_DATA/rsa2048.crt.pem" -noout -pubkey >"$T/rsa.pub"
openssl x509 -in "$TEST_DATA/ec-p256.crt.pem" -noout -pubkey >"$T/ec.pub"
rsign() { # LABEL MECH IN OUT [options]
        local label=$1 mech=$2 in=$3 out=$4
        shift 4
        remote --token-label "$label" --login --pin "$PIN" --sign --id 01 -m "$mech" -i "$in" -o "$out" "$@" >"$T/sign.out" 2>&1
}

# --- what is forwarded: signatures checked by OpenSSL --------------------------------------------------
rsign pk-rsa RSA-PKCS "$T/data.di256" "$T/sig" || { cat "$T/sign.out" >&2; fail "RSA-PKCS through p11-kit"; }
openssl dgst -sha256 -verify "$T/rsa.pub" -signature "$T/sig" "$T/data" >/dev/null || fail "RSA-PKCS via p11-kit: openssl verify"
rsign pk-rsa SHA256-RSA-PKCS "$T/data" "$T/sig" || { cat "$T/sign.out" >&2; fail "SHA256-RSA-PKCS through p11-kit"; }
openssl dgst -sha256 -verify "$T/rsa.pub" -signature "$T/sig" "$T/data" >/dev/null || fail "SHA256-RSA-PKCS via p11-kit: openssl verify"
rsign pk-rsa RSA-PKCS-PSS "$T/data.sha256" "$T/sig" --hash-algorithm SHA256 --mgf MGF1-SHA256 --salt-len 32 ||
        { cat "$T/sign.out" >&2; fail "RSA-PKCS-PSS through p11-kit"; }
openssl pkeyutl -verify -pubin -inkey "$T/rsa.pub" -in "$T/data.sha256" -sigfile "$T/sig" -pkeyopt rsa_padding_mode:pss \
        -pkeyopt digest:sha256 -pkeyopt rsa_mgf1_md:sha256 -pkeyopt rsa_pss_saltlen:32 >/dev/null ||
        fail "RSA-PKCS-PSS via p11-kit: openssl verify"
ok "through p11-kit: RSA-PKCS, SHA256-RSA-PKCS, RSA-PKCS-PSS signatures verified by OpenSSL"
rsign pk-ec ECDSA "$T/data.sha256" "$T/sig" --signature-format openssl || { cat "$T/sign.out" >&2; fail "ECDSA through p11-kit"; }
openssl pkeyutl -verify -pubin -inkey "$T/ec.pub" -in "$T/data.sha256" -sigfile "$T/sig" >/dev/null ||
        fail "ECDSA via p11-kit: openssl verify"
ok "through p11-kit: raw ECDSA (P-256) signature verified by OpenSSL"
# The module's local verification, reached through the RPC.
rsign pk-rsa SHA256-RSA-PKCS "$T/data" "$T/sig" || fail "SHA256-RSA-PKCS through p11-kit"
remote --token-label pk-rsa --verify --id 01 -m SHA256-RSA-PKCS -i "$T/data" --signature-file "$T/sig" >"$T/v.out" 2>&1 &&
        grep -q '^Signature is valid' "$T/v.out" || { cat "$T/v.out" >&2; fail "pkcs11-tool --verify through p11-kit"; }
ok "through p11-kit: pkcs11-tool --verify (C_Verify in the module) accepts the signature"

# --- what p11-kit 0.24 drops ------------------------------------------------------------------------
remote --token-label pk-rsa -M >"$T/M.rsa" 2>&1 || fail "-M through p11-kit (pk-rsa)"
remote --token-label pk-ec -M >"$T/M.ec" 2>&1 || fail "-M through p11-kit (pk-ec)"
remote --token-label pk-ed -M >"$T/M.ed" 2>&1 || fail "-M through p11-kit (pk-ed)"
grep -Eq '^ +RSA-PKCS-PSS,' "$T/M.rsa" && grep -Eq '^ +SHA256-RSA-PKCS,' "$T/M.rsa" && grep -Eq '^ +ECDSA,' "$T/M.ec" ||
        { cat "$T/M.rsa" "$T/M.ec" >&2; fail "p11-kit forwards RSA-PKCS-PSS, SHA256-RSA-PKCS, ECDSA"; }
dropped=()
grep -Eq '^ +SHA256-RSA-PKCS-PSS,' "$T/M.rsa" || dropped+=(SHA256-RSA-PKCS-PSS)
grep -Eq '^ +ECDSA-SHA256,' "$T/M.ec" || dropped+=(ECDSA-SHA256)
grep -Eq '^ +EDDSA,' "$T/M.ed" || dropped+=(EDDSA)
echo "# p11-kit $P11KIT_VERSION drops: ${dropped[*]:-nothing}"
[[ ${#dropped[@]} -eq 3 ]] || { cat "$T/M.rsa" "$T/M.ec" "$T/M.ed" >&2; fail "p11-kit 0.24 was expected to drop hashed PSS, ECDSA-SHA256 and EDDSA (README); it dropped: ${dropped[*]:-nothing}"; }
if rsign pk-ed EDDSA "$T/data" "$T/sig"; then
        fail "EDDSA through p11-kit 0.24 was expected to be refused (README)"
fi
grep -Eq 'CKR_MECHANISM_INVALID|not supported|mechanism' "$T/sign.out" || { cat "$T/sign.out" >&2; fail "EDDSA refusal names the mechanism"; }
ok "p11-kit 0.24 drops hashed PSS, ECDSA-SHA256 and EDDSA, as the README says"
finish
