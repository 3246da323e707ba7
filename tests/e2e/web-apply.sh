#!/bin/bash
# e2e: `enclave-acm web apply --server nginx` against a running nginx. The token holds two keys; nginx
# starts serving the first one from its own ssl_certificate{,_key} lines. web apply then writes the
# stanza for the second key, checks nginx.conf, includes the stanza in the server block (disabling
# the block's own lines), runs `nginx -t` and reloads: the new certificate is served by the same
# master. A second run changes nothing and does not reload. A key the token does not hold fails
# `nginx -t`: the stanza is put back byte for byte, nothing is reloaded, and the exit status is 1.
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
web_apply() { nginx_web_apply "$@" --server-name "$(host_of rsa2048)"; }

start_token
provision_keys web 1 rsa2048 2 ec-p256
PORT=$(free_port)
nginx_conf "$NGX/nginx.conf" -- "$PORT" rsa2048 web 1
nginx_start "$PORT"
MASTER=$(nginx_master)
check_tls "$PORT" rsa2048 tls1_3

# 0. A dry run says what would change and touches nothing.
cp -p "$NGX/nginx.conf" "$T/nginx.conf.orig"
web_apply 2 ec-p256 "$LOGS/apply-0.out" --dry-run || { cat "$LOGS/apply-0.out" >&2; fail "web apply --dry-run"; }
cat "$LOGS/apply-0.out"
grep -q "^stanza $STANZA: would be created$" "$LOGS/apply-0.out" || fail "dry run: the stanza"
grep -q "^nginx.conf $NGX/nginx.conf: unchanged$" "$LOGS/apply-0.out" || fail "dry run: nginx.conf"
[[ ! -e $STANZA ]] && cmp -s "$NGX/nginx.conf" "$T/nginx.conf.orig" || fail "a dry run changed files"
ok "--dry-run reports and changes nothing"

# 1. Switch to key 2 and its certificate.
OLD_WORKERS=$(nginx_workers)
EMERG=$(grep -c '\[emerg\]' "$NGX_ERROR_LOG" || true)
web_apply 2 ec-p256 "$LOGS/apply-1.out" || { cat "$LOGS/apply-1.out" >&2; fail "web apply (key 2)"; }
cat "$LOGS/apply-1.out"
grep -q "^stanza $STANZA: updated; config test passed; reloaded$" "$LOGS/apply-1.out" || fail "the stanza was not written"
grep -q "^nginx.conf $NGX/nginx.conf: unchanged$" "$LOGS/apply-1.out" || fail "nginx.conf should need no ssl_engine/env edit"
grep -q "^site $NGX/nginx.conf: updated; config test passed; reloaded$" "$LOGS/apply-1.out" || fail "the include was not added"
grep -q "test is successful" "$LOGS/apply-1.out" || fail "nginx -t's verdict is not shown"
grep -q "^[[:space:]]*include $STANZA;$" "$NGX/nginx.conf" || fail "no include of the stanza in nginx.conf"
grep -q "^[[:space:]]*#enclave-acm: ssl_certificate_key" "$NGX/nginx.conf" || fail "the block's own key line is not disabled"
grep -q "id=%02;object=web-2;type=private?pin-source=file:$T/pin\";$" "$STANZA" || fail "unexpected stanza: $(cat "$STANZA")"
ok "web apply wrote the stanza, included it and reloaded; nginx -t passed"
nginx_wait_generation "$OLD_WORKERS" "$EMERG"
[[ $(nginx_master) == "$MASTER" ]] || fail "the nginx master changed: a restart, not a reload"
check_tls "$PORT" ec-p256 tls1_3 -servername "$(host_of rsa2048)"
check_tls "$PORT" ec-p256 tls1_2 -servername "$(host_of rsa2048)"

# 2. The same again: nothing to do, no reload.
cp -p "$STANZA" "$T/stanza.before"
cp -p "$NGX/nginx.conf" "$T/nginx.conf.before"
WORKERS=$(nginx_workers)
web_apply 2 ec-p256 "$LOGS/apply-2.out" || { cat "$LOGS/apply-2.out" >&2; fail "web apply (again)"; }
(($(grep -c ': unchanged$' "$LOGS/apply-2.out") == 3)) || { cat "$LOGS/apply-2.out" >&2; fail "a second run changed something"; }
sleep 0.5
[[ $(nginx_workers) == "$WORKERS" ]] || fail "a run with nothing to change reloaded nginx"
ok "a second run changes nothing and does not reload"

# 3. A key the token does not hold: nginx -t fails, the stanza goes back, no reload, exit 1.
rc=0
web_apply 7 ec-p256 "$LOGS/apply-3.out" || rc=$?
cat "$LOGS/apply-3.out"
((rc == 1)) || fail "web apply with a missing key exited $rc, expected 1"
grep -q "the config test failed" "$LOGS/apply-3.out" || fail "the failure is not reported"
grep -q "previous file is back in place" "$LOGS/apply-3.out" || fail "the rollback is not reported"
grep -q "\[emerg\]" "$LOGS/apply-3.out" || fail "nginx's own message is not shown"
cmp "$STANZA" "$T/stanza.before" || fail "the stanza was not restored byte for byte"
[[ $(stat -c %a:%U "$STANZA") == $(stat -c %a:%U "$T/stanza.before") ]] || fail "the stanza's mode/owner changed"
cmp "$NGX/nginx.conf" "$T/nginx.conf.before" || fail "nginx.conf changed"
[[ -z $(find "$NGX" -maxdepth 1 -name '.*.enclave-acm.*') ]] || fail "a temp file was left behind"
[[ $(nginx_workers) == "$WORKERS" ]] || fail "nginx was reloaded after a failed config test"
ok "a key the token does not hold: nginx -t fails, the stanza is restored byte for byte, no reload"
check_tls "$PORT" ec-p256 tls1_3 -servername "$(host_of rsa2048)"

check_no_pin "after web apply"
nginx_check_stops
finish
