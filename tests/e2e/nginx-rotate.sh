#!/bin/bash
# e2e: key and certificate rotation under nginx without a failed handshake, twice in a row. While
# client loops run TLS handshakes continuously: (1) the token is re-provisioned holding the old key
# (id N) and the new key (id N+1), (2) the config is pointed at the new id and certificate and the
# master gets SIGHUP, (3) once the old workers are gone the old key is dropped. No handshake may
# fail, the master pid stays the same (a reload, not a restart), and afterwards only the new
# certificate is served.
# Exit 0: pass; 77: nginx is not installed; anything else: fail.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
command -v nginx >/dev/null 2>&1 || { echo "SKIP: 'nginx' is not installed"; exit 77; }
. "$here/lib.sh"
. "$here/nginx-lib.sh"
. "$here/rotate-lib.sh"
require_tool curl openssl
[[ $(id -u) == 0 ]] || fail "needs root: nginx's master runs as root and its workers as www-data"

# Two rotations in a row in the same master: the second one finds the module already initialised
# in the master since the first reload (no fork in between), as a long-running server would.
KEYS=(rsa2048 rsa3072 ec-p256)
start_token
provision web "${KEYS[0]}"
PORT=$(free_port)
nginx_conf "$NGX/nginx.conf" -- "$PORT" "${KEYS[0]}" web 1
nginx_start "$PORT"
MASTER=$(nginx_master)
check_tls "$PORT" "${KEYS[0]}" tls1_3

for r in 1 2; do
        old=${KEYS[r - 1]} new=${KEYS[r]}
        echo "# rotation $r: $old (id $r) -> $new (id $((r + 1)))"
        rotation_start "$PORT" "$old" "$new"
        rotation_add_new_key web "$r" "$old" "$((r + 1))" "$new"
        # Point the config at the new key and certificate, then a graceful reload: new workers start
        # with them, old workers finish their connections (signing with the old id) and exit.
        nginx_conf "$NGX/nginx.conf" -- "$PORT" "$new" web "$((r + 1))"
        OLD_WORKERS=$(nginx_workers)
        nginx_reload
        if [[ $(nginx_master) != "$MASTER" ]] || ! alive "$MASTER"; then
                fail "the nginx master changed across the reload"
        fi
        ok "SIGHUP: the master ($MASTER) stayed, workers $(words <<<"$OLD_WORKERS") were replaced by $(nginx_workers | words)"
        rotation_switched
        rotation_drop_old_key web "$((r + 1))" "$new"
        rotation_finish
        check_tls "$PORT" "$new" tls1_3
        check_tls "$PORT" "$new" tls1_2
done
[[ $(nginx_master) == "$MASTER" ]] || fail "the nginx master changed"
check_no_pin "after the rotations"
nginx_check_stops
finish
