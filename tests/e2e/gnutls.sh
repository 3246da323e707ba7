#!/bin/bash
# Issue 16, GnuTLS: gnutls-serv serving TLS with --x509keyfile 'pkcs11:…' for an RSA, a P-256 and an
# Ed25519 key in the token, the module found through a p11-kit module file (user config: p11-kit ignores
# it for root, so as root the consumers run as nobody), reached by gnutls-cli (TLS 1.3 and 1.2) and curl.
# gnutls-serv cannot bind to one address: where it can, the script runs in a network namespace of its
# own with only loopback up, so nothing listens beyond this test.
set -euo pipefail
if [[ -z ${EACM_NETNS-} ]] && command -v unshare >/dev/null && command -v ip >/dev/null &&
        unshare --net true 2>/dev/null; then
        exec env EACM_NETNS=1 unshare --net bash -c 'ip link set lo up && exec bash "$0" "$@"' "$0" "$@"
fi
. "$(dirname "$0")/lib.sh"
require_tool gnutls-serv gnutls-cli curl p11tool openssl
[[ -n ${EACM_NETNS-} ]] && ok "in a network namespace of its own (loopback only)"

AS=()
if [[ $EUID -eq 0 ]]; then
        require_tool setpriv
        AS=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
fi
mkdir -p "$T/lib" "$T/home/.config/pkcs11/modules"
cp "$P11_MODULE" "$T/lib/enclave-acm-pkcs11.so"
printf 'module: %s\n' "$T/lib/enclave-acm-pkcs11.so" >"$T/home/.config/pkcs11/modules/enclave-acm.module"
chmod -R a+rX "$T/lib" "$T/home"
chmod 0777 "$LOGS"
# nobody reads the PIN from an environment variable GnuTLS's tools honour (GNUTLS_PIN), never argv.
as_user() {
        "${AS[@]}" env -u PKCS11_MODULE_PATH HOME="$T/home" XDG_CONFIG_HOME="$T/home/.config" \
                ENCLAVE_ACM_ADDRESS="$DATA_ADDR" GNUTLS_PIN="$PIN" "$@"
}

start_token
provision gt-rsa rsa2048
provision gt-ec ec-p256
provision gt-ed ed25519
ok "provisioned gt-rsa (RSA-2048), gt-ec (P-256), gt-ed (Ed25519)"

as_user p11tool --list-tokens >"$T/tokens.out" 2>&1 || { cat "$T/tokens.out" >&2; fail "p11tool --list-tokens"; }
for label in gt-rsa gt-ec gt-ed; do
        grep -q "token=$label" "$T/tokens.out" || { cat "$T/tokens.out" >&2; fail "p11-kit (module file) shows '$label'"; }
done
ok "the module file makes p11-kit (and so GnuTLS) list the three tokens"

SERV_PID=
serv_stop() {
        [[ -n $SERV_PID ]] || return 0
        kill -TERM "$SERV_PID" 2>/dev/null || true
        stop_pids 5 "$SERV_PID"
        wait "$SERV_PID" 2>/dev/null || true
        SERV_PID=
}
STOP_HOOKS+=(serv_stop)

for pair in gt-rsa:rsa2048 gt-ec:ec-p256 gt-ed:ed25519; do
        label=${pair%%:*} name=${pair#*:}
        port=$(free_port)
        uri="pkcs11:token=$label;id=%01;type=private"
        as_user timeout 120 gnutls-serv --http -a -p "$port" --x509certfile "$(cert_of "$name")" \
                --x509keyfile "$uri" >"$LOGS/gnutls-serv-$label.log" 2>&1 &
        SERV_PID=$!
        BG_PIDS+=("$SERV_PID")
        wait_port "$port" || { cat "$LOGS/gnutls-serv-$label.log" >&2; fail "gnutls-serv with $uri did not listen"; }
        for proto in 1.3 1.2; do
                prio="NORMAL:-VERS-ALL:+VERS-TLS$proto"
                printf 'GET / HTTP/1.0\r\n\r\n' | timeout 30 gnutls-cli -p "$port" --x509cafile "$(ca_of "$name")" \
                        --verify-hostname "$(host_of "$name")" --priority "$prio" 127.0.0.1 >"$T/cli.out" 2>&1 ||
                        { cat "$T/cli.out" "$LOGS/gnutls-serv-$label.log" >&2; fail "gnutls-cli TLS $proto to gnutls-serv with $name"; }
                grep -q 'Handshake was completed' "$T/cli.out" && grep -qF "Description: (TLS$proto" "$T/cli.out" &&
                        grep -q 'HTTP/1.0 200 OK' "$T/cli.out" || { cat "$T/cli.out" >&2; fail "gnutls-cli TLS $proto with $name"; }
                ok "gnutls-serv with $uri: gnutls-cli TLS $proto handshake verified (certificate, hostname), HTTP 200"
        done
        curl_get "$port" "$name" "$T/body" --tlsv1.3 || { cat "$T/body.err" >&2; fail "curl to gnutls-serv with $name"; }
        ok "curl TLS 1.3 to gnutls-serv with the $name key in the token"
        serv_stop
done
finish
