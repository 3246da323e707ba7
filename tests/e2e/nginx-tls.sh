#!/bin/bash
# e2e: nginx (2 workers as www-data, libp11 engine, our module) serves HTTPS on loopback with an
# RSA-2048 and a P-256 key held in a local enclave-token: TLS 1.2 and 1.3 handshakes verify against the
# provisioned certificates, 200 sequential and 50 concurrent handshakes per key all succeed in both
# workers, a config naming a missing key is refused (nginx -t and a reload of the running master)
# without the PIN reaching any log, and `nginx -s reload` with the server environment works.
# Exit 0: pass; 77: nginx is not installed; anything else: fail.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
command -v nginx >/dev/null 2>&1 || { echo "SKIP: 'nginx' is not installed"; exit 77; }
. "$here/lib.sh"
. "$here/nginx-lib.sh"
require_tool curl openssl
[[ $(id -u) == 0 ]] || fail "needs root: nginx's master runs as root and its workers as www-data"
id www-data >/dev/null 2>&1 || fail "no www-data user"

start_token
provision web-rsa rsa2048
provision web-ec ec-p256
P_RSA=$(free_port)
P_EC=$(free_port)
while [[ $P_EC == "$P_RSA" ]]; do P_EC=$(free_port); done
SERVERS=("$P_RSA" rsa2048 web-rsa 1 "$P_EC" ec-p256 web-ec 1)

nginx_conf "$NGX/nginx.conf" reuseport -- "${SERVERS[@]}"
"${SERVER_ENV[@]}" nginx -t -p "$NGX/" -c "$NGX/nginx.conf" -e "$NGX_ERROR_LOG" >"$LOGS/nginx-t-good.log" 2>&1 ||
        fail "nginx -t on the config: $(cat "$LOGS/nginx-t-good.log")"
ok "nginx -t accepts the config (it loads both keys through the engine)"
nginx_start "$P_RSA" "$P_EC"
MASTER=$(nginx_master)
[[ $(ps -o user= -p "$MASTER") == root ]] || fail "the nginx master does not run as root"
for w in $(nginx_workers); do
        [[ $(ps -o user= -p "$w") == www-data ]] || fail "nginx worker $w does not run as www-data"
done
ok "nginx runs: master $MASTER as root, workers $(nginx_workers | words) as www-data"

# Each key, TLS 1.3 and 1.2; TLS 1.2 also with the signature algorithm forced, so that RSA signs
# with PKCS#1 v1.5 (TLS 1.3 and OpenSSL's default use PSS) and ECDSA over a SHA-384 digest.
check_tls "$P_RSA" rsa2048 tls1_3
grep -q '^Peer signature type: RSA-PSS' "$T/s_client.out" || fail "TLS 1.3 RSA handshake did not use RSA-PSS"
check_tls "$P_RSA" rsa2048 tls1_2
check_tls "$P_RSA" rsa2048 tls1_2 -sigalgs RSA+SHA256
grep -q '^Peer signature type: RSA$' "$T/s_client.out" || fail "forced RSA+SHA256 did not use PKCS#1 v1.5"
check_tls "$P_EC" ec-p256 tls1_3
grep -q '^Peer signature type: ECDSA' "$T/s_client.out" || fail "the P-256 handshake did not use ECDSA"
check_tls "$P_EC" ec-p256 tls1_2
check_tls "$P_EC" ec-p256 tls1_2 -sigalgs ECDSA+SHA384
grep -q '^Peer signing digest: SHA384' "$T/s_client.out" || fail "forced ECDSA+SHA384 did not sign a SHA-384 digest"

# A handshake with the other key's certificate as the only trust anchor must fail: the checks above
# do verify what the server presents.
if handshake "$P_RSA" "$TEST_DATA/ec-p256.crt.pem" "$T/s_client.out"; then
        fail "a handshake verified against the wrong certificate succeeded"
fi
ok "a client trusting only another certificate refuses the server (the checks can fail)"

: >"$T/bodies"
sequential_handshakes "$P_RSA" rsa2048 200
sequential_handshakes "$P_EC" ec-p256 200
concurrent_handshakes "$P_RSA" rsa2048 50
concurrent_handshakes "$P_EC" ec-p256 50
# reuseport spreads the 500 connections over both workers; each must have signed.
WORKERS=$(nginx_workers)
for w in $WORKERS; do
        n=$(grep -c "^pid=$w\$" "$T/bodies" || true)
        ((n > 0)) || fail "worker $w served none of the requests (workers: $WORKERS)"
done
ok "both workers ($(words <<<"$WORKERS")) served handshakes: each re-initialised the module after fork"
[[ $(nginx_master) == "$MASTER" ]] || fail "the nginx master changed"
check_no_pin "after the handshakes"

# A config naming a key id the token does not hold: nginx -t refuses it and names the key URI, which
# carries pin-source=file:, never the PIN.
nginx_conf "$NGX/bad.conf" -- "$P_RSA" rsa2048 web-rsa 9 "$P_EC" ec-p256 web-ec 1
rc=0
"${SERVER_ENV[@]}" nginx -t -p "$NGX/" -c "$NGX/bad.conf" -e "$LOGS/nginx-t-bad.log" >"$LOGS/nginx-t-bad.out" 2>&1 || rc=$?
((rc != 0)) || fail "nginx -t accepted a key id the token does not hold"
grep -q 'cannot load certificate key' "$LOGS/nginx-t-bad.out" || fail "nginx -t did not say why: $(cat "$LOGS/nginx-t-bad.out")"
grep -qF "pin-source=file:$T/pin" "$LOGS/nginx-t-bad.out" || fail "nginx -t did not print the key URI"
ok "nginx -t refuses a missing key id (exit $rc) and names the key by its pin-source URI"

# The same config given to the running master: it keeps the old config and its workers.
OLD_WORKERS=$(nginx_workers)
cp "$NGX/nginx.conf" "$NGX/good.conf"
cp "$NGX/bad.conf" "$NGX/nginx.conf"
before=$(grep -c 'cannot load certificate key' "$NGX_ERROR_LOG" || true)
kill -HUP "$MASTER"
for ((i = 0; i < 200; i++)); do
        (($(grep -c 'cannot load certificate key' "$NGX_ERROR_LOG" || true) > before)) && break
        sleep 0.05
done
(($(grep -c 'cannot load certificate key' "$NGX_ERROR_LOG" || true) > before)) ||
        fail "the master did not report the missing key after SIGHUP"
grep -F 'cannot load certificate key' "$NGX_ERROR_LOG" | grep -qF "pin-source=file:$T/pin" ||
        fail "the reload error does not name the key URI"
if [[ $(nginx_master) != "$MASTER" ]] || ! alive "$MASTER"; then
        fail "the master did not survive a failed reload"
fi
[[ $(nginx_workers) == "$OLD_WORKERS" ]] || fail "a failed reload replaced the workers"
check_tls "$P_RSA" rsa2048 tls1_3
ok "a reload with a missing key id fails, the master ($MASTER) keeps serving with its workers"
check_no_pin "after failed config loads"

# Back to the good config with `nginx -s reload` (what an operator or the agent runs): the signalling
# process loads the keys too, so it needs the server environment.
cp "$NGX/good.conf" "$NGX/nginx.conf"
emerg=$(grep -c '\[emerg\]' "$NGX_ERROR_LOG" || true)
"${SERVER_ENV[@]}" nginx -p "$NGX/" -c "$NGX/nginx.conf" -e "$NGX_ERROR_LOG" -s reload >"$LOGS/nginx-s.log" 2>&1 ||
        fail "nginx -s reload: $(cat "$LOGS/nginx-s.log")"
nginx_wait_generation "$OLD_WORKERS" "$emerg"
[[ $(nginx_master) == "$MASTER" ]] || fail "nginx -s reload changed the master"
check_tls "$P_RSA" rsa2048 tls1_3
check_tls "$P_EC" ec-p256 tls1_2
concurrent_handshakes "$P_RSA" rsa2048 50
ok "nginx -s reload: same master $MASTER, new workers $(nginx_workers | words) serve both keys"
check_no_pin "at the end"
nginx_check_stops
finish
