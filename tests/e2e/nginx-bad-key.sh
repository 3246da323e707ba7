#!/bin/bash
# e2e: `enclave-acm web apply --server nginx` and a key id the token does not hold: unlike Apache's,
# nginx's config test loads the key (ssl_engine), so the apply must fail at the test, before any
# reload: the stanza is put back byte for byte and the master keeps serving the old certificate. Then,
# with nginx stopped: --no-start leaves it stopped with the tested stanza in place, and without it web
# apply starts nginx (nginx -c FILE) instead of reloading it; the pid file is found from nginx.conf's
# pid directive.
# Exit 0: pass; 77: nginx is not installed; anything else: fail.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
command -v nginx >/dev/null 2>&1 || { echo "SKIP: 'nginx' is not installed"; exit 77; }
. "$here/lib.sh"
. "$here/nginx-lib.sh"
require_tool openssl
[[ $(id -u) == 0 ]] || fail "needs root: nginx's master runs as root and its workers as www-data"

STANZA=$NGX/enclave-acm-web.conf

# web_apply KEY_ID NAME OUT [options...]: nginx_web_apply (nginx-lib.sh) with this test's options.
web_apply() { nginx_web_apply "$@" --reload-wait-ms 500; }

start_token
provision_keys web 1 rsa2048 2 ec-p256
PORT=$(free_port)
nginx_conf "$NGX/nginx.conf" -- "$PORT" rsa2048 web 1
nginx_start "$PORT"
web_apply 1 rsa2048 "$LOGS/apply-0.out" || { cat "$LOGS/apply-0.out" >&2; fail "web apply (key 1)"; }
grep -q "^stanza $STANZA: updated; config test passed; reloaded$" "$LOGS/apply-0.out" ||
        { cat "$LOGS/apply-0.out" >&2; fail "the stanza was not applied with a reload"; }
MASTER=$(nginx_master)
WORKERS=$(nginx_workers)
check_tls "$PORT" rsa2048 tls1_3 -servername "$(host_of rsa2048)"

# 1. Key id 9 is not in the token: nginx -t fails, nothing is reloaded.
cp -p "$STANZA" "$T/stanza.before"
cp -p "$NGX/nginx.conf" "$T/nginx.conf.before"
rc=0
web_apply 9 ec-p256 "$LOGS/apply-bad.out" || rc=$?
cat "$LOGS/apply-bad.out"
((rc == 1)) || fail "web apply with a key id the token lacks exited $rc, expected 1"
grep -q "the config test failed" "$LOGS/apply-bad.out" || fail "the failure is not the config test's"
grep -q "stopped after the reload" "$LOGS/apply-bad.out" && fail "nginx -t let the missing key through to the reload"
cmp "$STANZA" "$T/stanza.before" || fail "the stanza was not restored byte for byte"
cmp "$NGX/nginx.conf" "$T/nginx.conf.before" || fail "nginx.conf changed"
[[ $(nginx_master) == "$MASTER" && $(nginx_workers) == "$WORKERS" ]] || fail "nginx was reloaded or restarted"
ok "a key id the token lacks fails nginx -t (it loads keys): stanza restored, no reload"
check_tls "$PORT" rsa2048 tls1_3 -servername "$(host_of rsa2048)"

# 2. nginx stopped: --no-start leaves it so; then web apply starts it.
nginx_stop
alive "$MASTER" && fail "nginx did not stop"
web_apply 2 ec-p256 "$LOGS/apply-nostart.out" --no-start ||
        { cat "$LOGS/apply-nostart.out" >&2; fail "web apply --no-start"; }
cat "$LOGS/apply-nostart.out"
grep -q "^stanza $STANZA: updated; config test passed; the server is not running: left stopped$" \
        "$LOGS/apply-nostart.out" || fail "--no-start did not say nginx was left stopped"
grep -q "id=%02;object=web-2;" "$STANZA" || fail "the tested stanza is not in place"
[[ -s $NGX_PID_FILE ]] && alive "$(nginx_master)" && fail "nginx was started despite --no-start"
ok "--no-start: the stanza is updated, nginx stays stopped"
web_apply 1 rsa2048 "$LOGS/apply-start.out" || { cat "$LOGS/apply-start.out" >&2; fail "web apply (start)"; }
cat "$LOGS/apply-start.out"
grep -q "^stanza $STANZA: updated; config test passed; the server was not running: started$" \
        "$LOGS/apply-start.out" || fail "the start is not reported"
[[ -s $NGX_PID_FILE ]] && alive "$(nginx_master)" || fail "nginx was not started"
wait_port "$PORT" || fail "the started nginx does not accept on port $PORT"
check_tls "$PORT" rsa2048 tls1_3 -servername "$(host_of rsa2048)"
ok "nginx not running: web apply started it with the new stanza instead of reloading"

check_no_pin "at the end"
nginx_check_stops
finish
