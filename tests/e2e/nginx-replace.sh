#!/bin/bash
# e2e: key rotation under nginx as the agent does it, three times in a row: one TOKEN_ADD replace with
# the new key only (the old version keeps signing for its ticket during the grace period), the config
# pointed at the new id and a graceful reload. The agent moves to a new key id each time; a server that
# reloads keeps looking for keys in the slot it found at start. No handshake may fail, the master pid
# stays, and afterwards only the new certificate is served.
# Exit 0: pass; 77: nginx is not installed; anything else: fail.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
command -v nginx >/dev/null 2>&1 || { echo "SKIP: 'nginx' is not installed"; exit 77; }
. "$here/lib.sh"
. "$here/nginx-lib.sh"
. "$here/rotate-lib.sh"
require_tool curl openssl
[[ $(id -u) == 0 ]] || fail "needs root: nginx's master runs as root and its workers as www-data"

# key id of each generation as the agent picks them (agent_rotation_next_id), and the keys
IDS=(${ROTATION_IDS:-1 2 3 4})
KEYS=(rsa2048 ec-p256 rsa3072 ec-p384)
start_token
provision web "${KEYS[0]}" --id "${IDS[0]}"
PORT=$(free_port)
nginx_conf "$NGX/nginx.conf" -- "$PORT" "${KEYS[0]}" web "${IDS[0]}"
nginx_start "$PORT"
MASTER=$(nginx_master)
check_tls "$PORT" "${KEYS[0]}" tls1_3

for r in 1 2 3; do
        old=${KEYS[r - 1]} new=${KEYS[r]}
        echo "# rotation $r: $old (id ${IDS[r - 1]}) -> $new (id ${IDS[r]}), one replace"
        rotation_start "$PORT" "$old" "$new"
        client_marks
        provision web "$new" --replace --id "${IDS[r]}"
        wait_clients_progress 20
        nginx_conf "$NGX/nginx.conf" -- "$PORT" "$new" web "${IDS[r]}"
        nginx_reload
        [[ $(nginx_master) == "$MASTER" ]] && alive "$MASTER" || fail "the nginx master changed across the reload"
        ok "replace and SIGHUP: the master ($MASTER) stayed"
        rotation_switched
        rotation_finish
        check_tls "$PORT" "$new" tls1_3
        check_tls "$PORT" "$new" tls1_2
done
[[ $(nginx_master) == "$MASTER" ]] || fail "the nginx master changed"
nginx_check_stops
finish
