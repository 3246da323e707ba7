#!/bin/bash
# e2e: Apache httpd (MPM given as $1: prefork or event; parent as root, children as www-data,
# SSLCryptoDevice pkcs11) serves HTTPS on loopback with an RSA-2048 and a P-256 key held in a local
# enclave-token: TLS 1.2 and 1.3 handshakes verify against the provisioned certificates; 200
# sequential and 50 concurrent handshakes per key all succeed while children are replaced every 10
# connections (each new child re-initialises the module after fork); a config naming a missing key
# fails to start without the PIN reaching any log; a graceful restart keeps serving.
# Exit 0: pass; 77: apache2 is not installed; anything else: fail.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MPM=${1:?usage: httpd-tls.sh prefork|event}
command -v apache2 >/dev/null 2>&1 || command -v httpd >/dev/null 2>&1 ||
        { echo "SKIP: 'apache2' is not installed"; exit 77; }
. "$here/lib.sh"
. "$here/httpd-lib.sh"
require_tool curl openssl
[[ $(id -u) == 0 ]] || fail "needs root: Apache's parent runs as root and its children as www-data"
for m in "mpm_$MPM" ssl authz_core dir; do
        [[ -f $HTTPD_MODULES/mod_$m.so ]] || fail "no $HTTPD_MODULES/mod_$m.so"
done

start_token
provision web-rsa rsa2048
provision web-ec ec-p256
P_RSA=$(free_port)
P_EC=$(free_port)
while [[ $P_EC == "$P_RSA" ]]; do P_EC=$(free_port); done

# MaxConnectionsPerChild 10: over the 500 connections below, dozens of children are forked and
# each one logs in and signs through its own re-initialised module.
httpd_conf "$HTTPD_CONF" "$MPM" 10 -- "$P_RSA" rsa2048 web-rsa 1 "$P_EC" ec-p256 web-ec 1
"${SERVER_ENV[@]}" "$(httpd_bin)" -t -f "$HTTPD_CONF" >"$LOGS/httpd-t.log" 2>&1 ||
        fail "apache2 -t: $(cat "$LOGS/httpd-t.log")"
ok "apache2 -t accepts the config ($MPM MPM)"
httpd_start "$P_RSA" "$P_EC"
PARENT=$(httpd_parent)
[[ $(ps -o user= -p "$PARENT") == root ]] || fail "the apache2 parent does not run as root"
# A child is forked as root and drops to www-data right after: allow it a moment.
for ((i = 0; i < 50; i++)); do
        users=$(for c in $(httpd_children); do ps -o user= -p "$c" || true; done | sort -u | tr -d ' ')
        [[ $users == www-data ]] && break
        sleep 0.1
done
[[ $users == www-data ]] || fail "apache2 children run as '$(words <<<"$users")', not www-data"
ok "apache2 ($MPM) runs: parent $PARENT as root, children $(httpd_children | words) as www-data"

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
if handshake "$P_RSA" "$TEST_DATA/ec-p256.crt.pem" "$T/s_client.out"; then
        fail "a handshake verified against the wrong certificate succeeded"
fi
ok "a client trusting only another certificate refuses the server (the checks can fail)"

: >"$T/bodies"
sequential_handshakes "$P_RSA" rsa2048 200
sequential_handshakes "$P_EC" ec-p256 200
concurrent_handshakes "$P_RSA" rsa2048 50
concurrent_handshakes "$P_EC" ec-p256 50
n=$(grep -c '^ok$' "$T/bodies" || true)
((n == 500)) || fail "$n of 500 responses carried the page"
# Every child serves at most 10 connections, so at least 50 distinct children served these.
kids=$(awk '$3 == 200 { print $1 }' "$LOGS/httpd-main-access.log" | sort -u | wc -l)
((kids >= 50)) || fail "only $kids children served the 500 requests (MaxConnectionsPerChild 10)"
ok "$kids forked children each re-initialised the module and signed (500 requests)"
[[ $(httpd_parent) == "$PARENT" ]] || fail "the apache2 parent changed"
check_no_pin "after the handshakes"

# A config naming a key id the token does not hold, as a second server on another port: it must
# fail to start, naming the key by its pin-source URI but never printing the PIN.
P_BAD=$(free_port)
httpd_conf "$HTTPD/bad.conf" "$MPM" 10 bad -- "$P_BAD" rsa2048 web-rsa 9
rc=0
"${SERVER_ENV[@]}" "$(httpd_bin)" -t -f "$HTTPD/bad.conf" >"$LOGS/httpd-t-bad.log" 2>&1 || rc=$?
echo "# apache2 -t on a config with a missing key id: exit $rc (mod_ssl does not load keys for -t)"
rc=0
httpd_ctl "$HTTPD/bad.conf" start >"$LOGS/httpd-bad-start.log" 2>&1 || rc=$?
for ((i = 0; i < 100; i++)); do
        if [[ ! -s $HTTPD/run/bad.pid ]] || ! alive "$(cat "$HTTPD/run/bad.pid")"; then
                break
        fi
        sleep 0.1
done
if [[ -s $HTTPD/run/bad.pid ]] && alive "$(cat "$HTTPD/run/bad.pid")"; then
        kill -TERM "$(cat "$HTTPD/run/bad.pid")"
        fail "apache2 started with a key id the token does not hold"
fi
cat "$LOGS/httpd-bad-error.log" "$LOGS/httpd-bad-start.log" >"$LOGS/httpd-bad-all.out" 2>/dev/null || true
grep -qF "pin-source=file:$T/pin" "$LOGS/httpd-bad-all.out" ||
        fail "the failed start does not name the key URI: $(tail -n 5 "$LOGS/httpd-bad-all.out")"
grep -qiE 'private key|AH02312|AH02574|Configuration Failed' "$LOGS/httpd-bad-all.out" ||
        fail "the failed start does not say the key could not be loaded"
ok "apache2 refuses to start with a missing key id (exit $rc) and names the key by its pin-source URI"
check_no_pin "after a failed start"

# A graceful restart with the same config: same parent, new children, both keys still served.
httpd_graceful
[[ $(httpd_parent) == "$PARENT" ]] || fail "graceful restart changed the parent"
check_tls "$P_RSA" rsa2048 tls1_3
check_tls "$P_EC" ec-p256 tls1_2
concurrent_handshakes "$P_EC" ec-p256 50
ok "graceful restart: same parent $PARENT, new children serve both keys"
check_no_pin "at the end"
httpd_check_stops
finish
