#!/bin/bash
# e2e: key and certificate rotation under Apache httpd (MPM given as $1: prefork or event) without a
# failed handshake, twice in a row. While client loops run TLS handshakes continuously: (1) the token
# is re-provisioned holding the old key (id N) and the new key (id N+1), (2) the config is pointed at
# the new id and certificate (chain) and Apache restarts gracefully, (3) once the old children are
# gone the old key is dropped. No handshake may fail, the parent pid stays the same, and afterwards
# only the new certificate is served.
# Exit 0: pass; 77: apache2 is not installed; anything else: fail.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MPM=${1:?usage: httpd-rotate.sh prefork|event}
command -v apache2 >/dev/null 2>&1 || command -v httpd >/dev/null 2>&1 ||
        { echo "SKIP: 'apache2' is not installed"; exit 77; }
. "$here/lib.sh"
. "$here/httpd-lib.sh"
. "$here/rotate-lib.sh"
require_tool curl openssl
[[ $(id -u) == 0 ]] || fail "needs root: Apache's parent runs as root and its children as www-data"

# Two rotations in a row in the same parent: a self-signed P-256 leaf, then a leaf with an
# intermediate (a renewal that also changes the issuer), then an RSA key. Apache's parent does not
# fork between graceful restarts, so it must see keys added to the token while it runs.
KEYS=(ec-p256 chain-leaf rsa2048)
start_token
provision web "${KEYS[0]}"
PORT=$(free_port)
httpd_conf "$HTTPD_CONF" "$MPM" 0 -- "$PORT" "${KEYS[0]}" web 1
httpd_start "$PORT"
PARENT=$(httpd_parent)
check_tls "$PORT" "${KEYS[0]}" tls1_3

for r in 1 2; do
        old=${KEYS[r - 1]} new=${KEYS[r]}
        echo "# rotation $r: $old (id $r) -> $new (id $((r + 1)))"
        rotation_start "$PORT" "$old" "$new"
        rotation_add_new_key web "$r" "$old" "$((r + 1))" "$new"
        httpd_conf "$HTTPD_CONF" "$MPM" 0 -- "$PORT" "$new" web "$((r + 1))"
        OLD_CHILDREN=$(httpd_children)
        httpd_graceful
        if [[ $(httpd_parent) != "$PARENT" ]] || ! alive "$PARENT"; then
                fail "the apache2 parent changed across the graceful restart"
        fi
        ok "graceful restart: the parent ($PARENT) stayed, children $(words <<<"$OLD_CHILDREN") were replaced by $(httpd_children | words)"
        rotation_switched
        rotation_drop_old_key web "$((r + 1))" "$new"
        rotation_finish
        check_tls "$PORT" "$new" tls1_3
        check_tls "$PORT" "$new" tls1_2
        if [[ $new == chain-leaf ]]; then
                grep -q '^ 1 s:.*CN = enclave-acm test intermediate CA' "$T/s_client.out" ||
                        fail "the server did not send the intermediate certificate of the new chain"
                ok "the new chain (leaf + intermediate) is served"
        fi
done
[[ $(httpd_parent) == "$PARENT" ]] || fail "the apache2 parent changed"
check_no_pin "after the rotations"
httpd_check_stops
finish
