#!/bin/bash
# Issue 16, NSS (3.87): modutil -add registers enclave-acm-pkcs11.so in a temporary NSS database,
# modutil -list shows its tokens, certutil -L -h all lists the tokens' certificates and certutil -K -h
# <token> (with the PIN) their private keys. NSS 3.87 lists an Ed25519 key with the type "null".
set -euo pipefail
. "$(dirname "$0")/lib.sh"
require_tool modutil certutil
export ENCLAVE_ACM_ADDRESS=$DATA_ADDR

start_token
provision nss-rsa rsa2048
provision nss-ec ec-p256
provision nss-ed ed25519
provision_keys nss-chain 7 chain-leaf
ok "provisioned nss-rsa, nss-ec, nss-ed and nss-chain (leaf + intermediate)"

DB=sql:$T/nssdb
mkdir -p "$T/nssdb"
timeout 60 certutil -N -d "$DB" --empty-password >"$LOGS/certutil-N.log" 2>&1 || { cat "$LOGS/certutil-N.log" >&2; fail "certutil -N"; }
timeout 60 modutil -force -dbdir "$DB" -add enclave-acm -libfile "$P11_MODULE" >"$LOGS/modutil-add.log" 2>&1 ||
        { cat "$LOGS/modutil-add.log" >&2; fail "modutil -add"; }
ok "modutil -add enclave-acm -libfile enclave-acm-pkcs11.so"
timeout 60 modutil -force -dbdir "$DB" -list >"$LOGS/modutil-list.log" 2>&1 || { cat "$LOGS/modutil-list.log" >&2; fail "modutil -list"; }
for label in nss-rsa nss-ec nss-ed nss-chain; do
        grep -Eq "token: $label$" "$LOGS/modutil-list.log" || { cat "$LOGS/modutil-list.log" >&2; fail "modutil -list shows '$label'"; }
done
grep -q 'library name: .*enclave-acm-pkcs11.so' "$LOGS/modutil-list.log" || { cat "$LOGS/modutil-list.log" >&2; fail "modutil -list: library"; }
ok "modutil -list shows the module and its four tokens"

timeout 60 certutil -L -d "$DB" -h all >"$LOGS/certutil-L.log" 2>&1 || { cat "$LOGS/certutil-L.log" >&2; fail "certutil -L -h all"; }
for label in nss-rsa nss-ec nss-ed; do
        grep -Eq "^$label:$label +u,u,u" "$LOGS/certutil-L.log" || { cat "$LOGS/certutil-L.log" >&2; fail "certutil -L lists $label:$label"; }
done
[[ $(grep -c '^nss-chain:' "$LOGS/certutil-L.log") -eq 2 ]] || { cat "$LOGS/certutil-L.log" >&2; fail "certutil -L: nss-chain has 2 certificates"; }
ok "certutil -L -h all lists every token's certificates (the chain token's two)"
# The certificate NSS reads from the token is the provisioned one.
cp "$T/pin" "$T/nss-pw"
timeout 60 certutil -L -d "$DB" -h nss-ec -f "$T/nss-pw" -n nss-ec:nss-ec -a >"$T/ec.pem" 2>"$LOGS/certutil-L-ec.log" ||
        { cat "$LOGS/certutil-L-ec.log" >&2; fail "certutil -L -n nss-ec:nss-ec -a"; }
[[ $(fp_of "$T/ec.pem") == "$(fp_of "$TEST_DATA/ec-p256.crt.pem")" ]] || fail "NSS's nss-ec certificate is not ec-p256.crt.pem"
ok "certutil exports the provisioned P-256 certificate from the token"

for pair in nss-rsa:rsa nss-ec:ec nss-ed:null nss-chain:ec; do
        label=${pair%%:*} type=${pair#*:}
        timeout 60 certutil -K -d "$DB" -h "$label" -f "$T/nss-pw" >"$LOGS/certutil-K-$label.log" 2>&1 ||
                { cat "$LOGS/certutil-K-$label.log" >&2; fail "certutil -K -h $label"; }
        grep -Eq "^< ?0> $type +[0-9a-f]+ +[^ ]" "$LOGS/certutil-K-$label.log" &&
                ! grep -Eq "^< ?1>" "$LOGS/certutil-K-$label.log" ||
                { cat "$LOGS/certutil-K-$label.log" >&2; fail "certutil -K -h $label lists one $type key"; }
        ok "certutil -K -h $label (with the PIN) lists its private key, type $type"
done
# A wrong PIN is refused.
printf 'not-the-pin' >"$T/nss-wrong"
if timeout 60 certutil -K -d "$DB" -h nss-rsa -f "$T/nss-wrong" >"$LOGS/certutil-K-wrong.log" 2>&1 &&
        grep -Eq '^< ?0> rsa' "$LOGS/certutil-K-wrong.log"; then
        fail "certutil -K lists private keys with a wrong PIN"
fi
ok "certutil -K with a wrong PIN lists no private key"
finish
