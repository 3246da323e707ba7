#!/bin/bash
# e2e: `enclave-acm web apply --server httpd` against a running Apache httpd (event MPM) when the key id
# it is given is not in the token. `apache2 -t` does not load keys, so the config test passes and the
# graceful restart makes the parent exit. web apply must notice (the pid in the pid file is gone), put
# the conf back byte for byte, start apache2 again and exit 1 saying so; apache2 then serves HTTPS with
# the old certificate. Then: a key the token holds is applied with a graceful restart (same parent, the
# new certificate served); with apache2 stopped, --no-start leaves it stopped with the tested file in
# place, and without it web apply starts apache2 instead of reloading it.
# Exit 0: pass; 77: apache2 is not installed; anything else: fail.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MPM=event
command -v apache2 >/dev/null 2>&1 || command -v httpd >/dev/null 2>&1 ||
        { echo "SKIP: 'apache2' is not installed"; exit 77; }
. "$here/lib.sh"
. "$here/httpd-lib.sh"
require_tool openssl
[[ $(id -u) == 0 ]] || fail "needs root: Apache's parent runs as root and its children as www-data"
for m in "mpm_$MPM" ssl authz_core dir; do
        [[ -f $HTTPD_MODULES/mod_$m.so ]] || fail "no $HTTPD_MODULES/mod_$m.so"
done

# web_apply KEY_ID NAME OUT [options...]: the CLI with the servers' environment (a server it starts
# inherits it). provision-keys labels key N of token "web" "web-N". The pid file is not given: the CLI
# asks apache2 (-t -D DUMP_RUN_CFG).
web_apply() {
        local id=$1 name=$2 out=$3
        shift 3
        "${SERVER_ENV[@]}" "$ENCLAVE_ACM" web apply --server httpd --token web --key-id "$id" --key-label "web-$id" \
                --pin-file "$T/pin" --cert "$(cert_of "$name")" --conf "$HTTPD_CONF" --httpd-config "$HTTPD_CONF" \
                --binary "$(httpd_bin)" --reload-wait-ms 2000 "$@" >"$out" 2>&1
}

# serves_within SECONDS NAME: wait until a handshake on $PORT shows NAME's certificate.
serves_within() {
        local i want
        want=$(fp_of "$(cert_of "$2")")
        for ((i = 0; i < $1 * 10; i++)); do
                if handshake "$PORT" "$(ca_of "$2")" "$T/s_client.out" -servername "$(host_of "$2")" &&
                        [[ $(served_fp "$T/s_client.out") == "$want" ]]; then
                        return 0
                fi
                sleep 0.1
        done
        return 1
}

start_token
provision_keys web 1 rsa2048 2 ec-p256
PORT=$(free_port)
httpd_conf "$HTTPD_CONF" "$MPM" 0 -- "$PORT" rsa2048 web 1
httpd_start "$PORT"
PARENT=$(httpd_parent)
check_tls "$PORT" rsa2048 tls1_3

# 1. Key id 9 is not in the token: the config test passes, the parent dies at the graceful restart.
cp -p "$HTTPD_CONF" "$T/conf.before"
rc=0
web_apply 9 ec-p256 "$LOGS/apply-bad.out" || rc=$?
cat "$LOGS/apply-bad.out"
((rc == 1)) || fail "web apply with a key id the token lacks exited $rc, expected 1"
grep -q "the config test passed, but the server stopped after the reload" "$LOGS/apply-bad.out" ||
        fail "the server's death is not reported"
grep -q "previous file is back in place and the server was started again" "$LOGS/apply-bad.out" ||
        fail "the rollback and the restart are not reported"
ok "web apply with a missing key id fails: the server stopped at the reload, said so (exit 1)"
alive "$PARENT" && fail "the old apache2 parent $PARENT still runs: it was expected to exit at the reload"
grep -qE 'AH02312|AH02574|Configuration Failed|private key' "$HTTPD_ERROR_LOG" ||
        fail "apache2's error log does not show why the parent exited"
ok "apache2's parent $PARENT exited at the graceful restart (its error log says why)"
cmp "$HTTPD_CONF" "$T/conf.before" || fail "the conf was not restored byte for byte"
[[ $(stat -c %a:%U:%G "$HTTPD_CONF") == $(stat -c %a:%U:%G "$T/conf.before") ]] || fail "the conf's mode/owner changed"
[[ -z $(find "$HTTPD" -maxdepth 1 -name '.*.enclave-acm.*') ]] || fail "a temp file was left behind"
ok "the conf is back byte for byte (mode and owner too)"
[[ -s $HTTPD_PID_FILE ]] && alive "$(httpd_parent)" || fail "apache2 does not run again"
[[ $(httpd_parent) != "$PARENT" ]] || fail "the pid file still names the dead parent"
wait_port "$PORT" || fail "the restarted apache2 does not accept on port $PORT"
ok "apache2 runs again (parent $(httpd_parent))"
check_tls "$PORT" rsa2048 tls1_3
check_tls "$PORT" rsa2048 tls1_2
check_no_pin "after the failed apply"

# 2. A key the token holds: config test, graceful restart, same parent, the new certificate.
PARENT=$(httpd_parent)
web_apply 2 ec-p256 "$LOGS/apply-good.out" || { cat "$LOGS/apply-good.out" >&2; fail "web apply (key 2)"; }
cat "$LOGS/apply-good.out"
grep -q "^conf $HTTPD_CONF: updated; config test passed; reloaded$" "$LOGS/apply-good.out" ||
        fail "the good key was not reported as reloaded"
[[ $(httpd_parent) == "$PARENT" ]] && alive "$PARENT" || fail "the apache2 parent changed on a good reload"
serves_within 30 ec-p256 || fail "apache2 does not serve the ec-p256 certificate after the reload"
ok "a key the token holds: reloaded gracefully (same parent $PARENT), the new certificate is served"

# 3. apache2 stopped: --no-start leaves it so with the tested file in place; then it is started.
httpd_stop
alive "$PARENT" && fail "apache2 did not stop"
web_apply 1 rsa2048 "$LOGS/apply-nostart.out" --no-start ||
        { cat "$LOGS/apply-nostart.out" >&2; fail "web apply --no-start"; }
cat "$LOGS/apply-nostart.out"
grep -q "^conf $HTTPD_CONF: updated; config test passed; the server is not running: left stopped$" \
        "$LOGS/apply-nostart.out" || fail "--no-start did not say the server was left stopped"
grep -q "id=%01;object=web-1;" "$HTTPD_CONF" || fail "the tested conf is not in place"
if [[ -s $HTTPD_PID_FILE ]] && alive "$(httpd_parent)"; then
        fail "apache2 was started despite --no-start"
fi
ok "--no-start: the conf is updated, apache2 stays stopped"
web_apply 2 ec-p256 "$LOGS/apply-start.out" || { cat "$LOGS/apply-start.out" >&2; fail "web apply (start)"; }
cat "$LOGS/apply-start.out"
grep -q "^conf $HTTPD_CONF: updated; config test passed; the server was not running: started$" \
        "$LOGS/apply-start.out" || fail "the start is not reported"
[[ -s $HTTPD_PID_FILE ]] && alive "$(httpd_parent)" || fail "apache2 was not started"
wait_port "$PORT" || fail "the started apache2 does not accept on port $PORT"
check_tls "$PORT" ec-p256 tls1_3
ok "apache2 not running: web apply started it with the new conf instead of reloading"

check_no_pin "at the end"
finish
