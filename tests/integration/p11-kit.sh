#!/bin/bash
# p11-kit: the module registered through a .module file shows up in `p11-kit list-modules`, and the
# p11-kit proxy (what the libp11 engine loads by default, as ACM for Nitro Enclaves does) reaches it.
# p11-kit ignores user module configs for root, so as root this runs the consumers as nobody.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
require_tool p11-kit pkcs11-tool openssl

ENGINE_SO=$(openssl version -e | sed -n 's/^ENGINESDIR: "\(.*\)"$/\1/p')/pkcs11.so
for f in "${P11_KIT_PROXY:-p11-kit-proxy.so}" "$ENGINE_SO"; do
        if [[ ! -f $f ]]; then
                echo "SKIP: '$f' is not installed (packages p11-kit-modules, libengine-pkcs11-openssl)"
                exit 77
        fi
done

AS=()
if [[ $EUID -eq 0 ]]; then
        require_tool setpriv
        AS=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
fi

# Everything nobody needs must be reachable: the temp dir, a copy of the module, the config, the socket.
chmod 0755 "$T"
mkdir -p "$T/lib" "$T/home/.config/pkcs11/modules" "$T/out"
cp "$P11_MODULE" "$T/lib/enclave-acm-pkcs11.so"
chmod -R a+rX "$T/lib" "$T/home"
chmod 0777 "$T/out"
printf 'module: %s\n' "$T/lib/enclave-acm-pkcs11.so" >"$T/home/.config/pkcs11/modules/enclave-acm.module"
chmod a+r "$T/home/.config/pkcs11/modules/enclave-acm.module" "$T/pin"

start_daemon --socket-mode 0666
provision rsa2048 rsa2048
provision ec-p256 ec-p256
provision "third token" ec-p384

as_user() {
        "${AS[@]}" env -u PKCS11_MODULE_PATH -u OPENSSL_CONF HOME="$T/home" XDG_CONFIG_HOME="$T/home/.config" ENCLAVE_ACM_ADDRESS="$DATA_ADDR" \
                ENCLAVE_ACM_TIMEOUT_MS="$ENCLAVE_ACM_TIMEOUT_MS" "$@"
}

as_user p11-kit list-modules >"$T/lm.out" 2>&1 || { cat "$T/lm.out" >&2; fail "p11-kit list-modules"; }
# Our module's section: from its "name: path" line to the next module line.
awk -v path="$T/lib/enclave-acm-pkcs11.so" '
        /^[^ \t].*: / { inside = (index($0, path) > 0) }
        inside' "$T/lm.out" >"$T/ours.out"
[[ -s $T/ours.out ]] || { cat "$T/lm.out" >&2; fail "list-modules shows enclave-acm-pkcs11.so"; }
grep -q '^enclave-acm: ' "$T/ours.out" || { cat "$T/ours.out" >&2; fail "the module is named enclave-acm (from enclave-acm.module)"; }
grep -Eq 'library-manufacturer: +enclave-acm' "$T/ours.out" || { cat "$T/ours.out" >&2; fail "library-manufacturer"; }
for label in rsa2048 ec-p256 "third token"; do
        grep -Eq "^ +token: $label\$" "$T/ours.out" || { cat "$T/ours.out" >&2; fail "list-modules shows token '$label'"; }
done
[[ $(grep -Ec '^ +manufacturer: enclave-acm$' "$T/ours.out") -eq 3 ]] || { cat "$T/ours.out" >&2; fail "3 tokens by enclave-acm"; }
[[ $(grep -Ec '^ +model: enclave-token$' "$T/ours.out") -eq 3 ]] || { cat "$T/ours.out" >&2; fail "3 tokens of model enclave-token"; }
ok "p11-kit list-modules shows enclave-acm with its 3 tokens (manufacturer enclave-acm, model enclave-token)"

as_user pkcs11-tool --module "$P11_KIT_PROXY" -L >"$T/proxy.out" 2>&1 || { cat "$T/proxy.out" >&2; fail "pkcs11-tool via p11-kit-proxy"; }
grep -Eq 'token label +: third token$' "$T/proxy.out" || { cat "$T/proxy.out" >&2; fail "p11-kit-proxy lists our tokens"; }
ok "pkcs11-tool through p11-kit-proxy.so lists the tokens"

for i in $(seq 1 20); do printf 'through the proxy %02d\n' "$i"; done >"$T/out/data"
chmod a+r "$T/out/data"
as_user pkcs11-tool --module "$P11_KIT_PROXY" --token-label ec-p256 --login --pin "$PIN" --sign --id 01 \
        -m ECDSA-SHA256 --signature-format openssl -i "$T/out/data" -o "$T/out/sig" >"$T/ps.out" 2>&1 ||
        { cat "$T/ps.out" >&2; fail "sign through p11-kit-proxy"; }
openssl dgst -sha256 -verify <(openssl x509 -in "$TEST_DATA/ec-p256.crt.pem" -noout -pubkey) \
        -signature "$T/out/sig" "$T/out/data" >/dev/null || fail "proxy signature verifies"
ok "ECDSA-SHA256 through p11-kit-proxy verifies"

# The libp11 engine without a module setting loads p11-kit-proxy: the ACM for Nitro Enclaves set-up.
uri="pkcs11:model=enclave-token;manufacturer=enclave-acm;token=rsa2048;id=%01;object=rsa2048;type=private;pin-value=$PIN"
as_user openssl dgst -sha256 -engine pkcs11 -keyform engine -sign "$uri" -out "$T/out/sig2" "$T/out/data" \
        >"$T/eng.out" 2>&1 || { cat "$T/eng.out" >&2; fail "engine via p11-kit-proxy"; }
openssl dgst -sha256 -verify <(openssl x509 -in "$TEST_DATA/rsa2048.crt.pem" -noout -pubkey) \
        -signature "$T/out/sig2" "$T/out/data" >/dev/null || fail "engine via proxy signature verifies"
ok "libp11 engine with its default module (p11-kit-proxy) signs with the token key"
finish
