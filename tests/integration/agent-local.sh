#!/bin/bash
# enclave-acm-agent with the local launcher, a File source and a real nginx in direct mode: provisioning,
# READY=1 over NOTIFY_SOCKET, enclave-token killed and relaunched without an nginx restart, key rotation
# on the next sync with a plain graceful reload (HUP, the master stays: the slot id stays the same)
# and no failed handshake, a broken nginx config rejected with the old one kept, SIGTERM.
# Plain script: exit 0 pass, 77 skip, anything else fail. Runs nginx's master as root, workers as www-data.
set -euo pipefail
. "$(dirname "$0")/agent-lib.sh"

: "${AGENT:?}" "${ENCLAVE_TOKEN:?}" "${P11_MODULE:?}" "${TEST_DATA:?}" "${ENCLAVE_ACM:?}"
agent_nginx_skip_unless python3 curl

AGENT_PID= NOTIFY_PID=

T=$(mktemp -d /tmp/eacm-agent.XXXXXX)
chmod 0755 "$T"
cleanup() {
        local rc=$?
        trap - EXIT
        cleanup_agent "$rc" "$T/agent.log" "$T/nginx-error.log" "$T/notify.log"
        [[ -f $T/nginx.pid ]] && kill -QUIT "$(cat "$T/nginx.pid")" 2>/dev/null && sleep 0.5 || true
        [[ ${AGENT_TEST_KEEP:-0} == 1 ]] && echo "# kept $T" >&2 || rm -rf "$T"
        exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM


master() { cat "$T/nginx.pid"; }

PORT=$(free_port)
mkdir -p "$T/src" "$T/run" "$T/state" "$T/nginx"
chmod 0755 "$T/run" "$T/nginx"
cp "$TEST_DATA/rsa2048.key.pem" "$T/src/key.pem"
cp "$TEST_DATA/rsa2048.crt.pem" "$T/src/chain.pem"
FP_RSA=$(fp_of "$TEST_DATA/rsa2048.crt.pem")
FP_EC=$(fp_of "$TEST_DATA/ec-p256.crt.pem")
FP_OLD=$(fp_of "$TEST_DATA/rsa3072.crt.pem")

nginx_openssl_cnf "$T" "$P11_MODULE"
export OPENSSL_CONF=$T/openssl.cnf
export ENCLAVE_ACM_ADDRESS_FILE=$T/run/address
export ENCLAVE_ACM_NO_MLOCK=1

# The stanza nginx starts with: a plain key file, as before the agent ran. nginx.conf has no
# ssl_engine/env lines: the agent adds them (direct mode).
cp "$TEST_DATA/rsa3072.key.pem" "$T/nginx/old.key.pem"
cat >"$T/stanza.conf" <<EOF
ssl_certificate $TEST_DATA/rsa3072.crt.pem;
ssl_certificate_key $T/nginx/old.key.pem;
EOF
agent_nginx_conf "$PORT"
{
        agent_yaml_local "$T" "$ENCLAVE_TOKEN" 2
        cat <<EOF
log:
  level: debug
tokens:
  - label: web
    source:
      File:
        key: $T/src/key.pem
        certificate: $T/src/chain.pem
    target:
      NginxStanza:
        path: $T/stanza.conf
    refresh_interval_secs: 60
  - label: later
    source:
      S3:
        uri: s3://bucket/key.json
EOF
} >"$T/acm.yaml"

"$AGENT" --config "$T/acm.yaml" --check-config >"$T/check.log" 2>&1 || { cat "$T/check.log"; fail "--check-config"; }
ok "the test configuration is valid"

# An absolute path, as the systemd units start it.
NGINX=$(command -v nginx)
"$NGINX" -c "$T/nginx.conf" -e "$T/nginx-error.log" || fail "nginx did not start"
wait_for 10 "nginx serves the plain-file certificate" serves "$FP_OLD"
MASTER=$(master)
ok "nginx runs (master $MASTER) with a plain key file"

# NOTIFY_SOCKET listener: one line per datagram.
start_notify_listener

NOTIFY_SOCKET=$T/notify.sock WATCHDOG_USEC=2000000 "$AGENT" --config "$T/acm.yaml" >"$T/agent.log" 2>&1 &
AGENT_PID=$!
wait_for 30 "the agent sends READY=1" grep -q 'READY=1' "$T/notify.log"
ok "READY=1 received"
MODULE_CONFIGS=$(pkg-config --variable=p11_module_configs p11-kit-1)
if [[ -e $MODULE_CONFIGS/enclave-acm.module || -e /etc/pkcs11/modules/enclave-acm.module ]]; then
        ! grep -q "No p11-kit module file" "$T/agent.log" || fail "the agent misses an installed module file"
else
        grep -q "No p11-kit module file 'enclave-acm.module' in /etc/pkcs11/modules or $MODULE_CONFIGS" "$T/agent.log" ||
                fail "the agent does not point out the missing p11-kit module file"
fi
ok "the agent checks for the p11-kit module file"
wait_for 20 "the S3 token's failure in STATUS=" \
        grep -q "STATUS=.*'later' failed: .*no instance metadata service at http://127.0.0.1:9" "$T/notify.log"
ok "STATUS= reports the S3 token as failed, naming the missing IMDS (the File token is unaffected)"
wait_for 10 "nginx serves the token's certificate" serves "$FP_RSA"
[[ $(master) == "$MASTER" ]] || fail "nginx's master changed"
ok "nginx serves the certificate with the key in the token (master unchanged)"
grep -q '^ssl_engine pkcs11;' "$T/nginx.conf" && grep -q '^env OPENSSL_CONF;' "$T/nginx.conf" ||
        fail "the agent did not add ssl_engine/env to nginx.conf"
ok "nginx.conf got ssl_engine and env lines"
grep -q 'pin-source=file:' "$T/stanza.conf" || fail "the stanza does not use a pin-source file"
[[ $(stat -c %a "$T"/run/web.pin) == 400 ]] || fail "the pin file is not 0400"
[[ $(stat -c %a "$T"/state/pins/web) == 600 ]] || fail "the persisted PIN is not 0600"
[[ $(stat -c %s "$T"/state/pins/web) == 31 ]] || fail "the generated PIN is not 31 bytes"
ok "PIN generated (31 bytes, 0600 in state_dir) and a 0400 pin-source file in runtime_dir"
wait_for 10 "WATCHDOG=1" grep -q 'WATCHDOG=1' "$T/notify.log"
ok "WATCHDOG=1 sent"

# enclave-acm status: the agent's state file plus enclave-token's view, reached where the agent says.
"$ENCLAVE_ACM" status --runtime-dir "$T/run" >"$T/status.txt" 2>&1 || { cat "$T/status.txt"; fail "status failed"; }
for want in "Agent:     running (pid $AGENT_PID" "config $T/acm.yaml" "nginx via direct, local launcher; enclave running (launch 1)" \
        "Daemon:    enclave-token" "Token 'web' (slot" "  Agent:     ready, key id 1, source File" \
        "certificate expires 2" "  Target:    NginxStanza $T/stanza.conf (applied)" "pkcs11:" \
        "Token 'later' (not in the enclave)" "  Agent:     failed, source S3"; do
        grep -qF -- "$want" "$T/status.txt" || { cat "$T/status.txt"; fail "status does not show '$want'"; }
done
"$ENCLAVE_ACM" status --json --runtime-dir "$T/run" >"$T/status.json" || fail "status --json failed"
python3 - "$T/status.json" "$AGENT_PID" "$T/stanza.conf" <<'PY' || { cat "$T/status.json"; fail "status --json"; }
import json, sys
s = json.load(open(sys.argv[1]))
a = s["agent"]
assert s["reachable"] and a["running"] and a["pid"] == int(sys.argv[2]) and a["enclave"] == "running", a
web = [t for t in a["tokens"] if t["label"] == "web"][0]
assert web["state"] == "ready" and web["key_id"] == 1 and web["target"] == sys.argv[3], web
assert web["target_applied"] == "yes" and "provisioned" in web and "synced" in web and "not_after" in web, web
later = [t for t in a["tokens"] if t["label"] == "later"][0]
assert later["state"] == "failed" and "key_id" not in later and "no instance metadata service" in later["error"], later
assert [t["label"] for t in s["tokens"]] == ["web"], s["tokens"]
PY
ok "enclave-acm status shows the agent (pid, enclave, per token state, key id, times, target) and the enclave"

# enclave-token killed: relaunched, re-provisioned, no nginx restart or reload.
TOKEN_PID=$(pgrep -P "$AGENT_PID" -x enclave-token || true)
[[ -n $TOKEN_PID ]] || fail "no enclave-token child of the agent"
STANZA_BEFORE=$(md5sum <"$T/stanza.conf")
kill -KILL "$TOKEN_PID"
wait_for 30 "the agent relaunches enclave-token" grep -q 'launch 2)' "$T/agent.log"
wait_for 30 "nginx serves again after the relaunch" serves "$FP_RSA"
[[ $(master) == "$MASTER" ]] || fail "nginx's master changed after the relaunch"
[[ $(md5sum <"$T/stanza.conf") == "$STANZA_BEFORE" ]] || fail "the stanza changed after the relaunch"
ok "enclave-token killed: relaunched and re-provisioned, nginx serves again (same master, same stanza)"

# SIGHUP: reload, RELOADING=1 then READY=1.
N=$(grep -c 'READY=1' "$T/notify.log")
kill -HUP "$AGENT_PID"
wait_for 20 "RELOADING=1 then READY=1" bash -c "grep -q 'RELOADING=1|MONOTONIC_USEC=' '$T/notify.log' && (( \$(grep -c 'READY=1' '$T/notify.log') > $N ))"
ok "SIGHUP: RELOADING=1 with MONOTONIC_USEC, then READY=1"

# A broken nginx config while the source changes: the config test fails, the stanza is rolled back,
# nginx keeps serving the old certificate, the agent keeps running and retries.
cp "$T/nginx.conf" "$T/nginx.conf.good"
echo "this_is_not_a_directive;" >>"$T/nginx.conf"
cp "$TEST_DATA/ec-p256.key.pem" "$T/src/key.pem.new" && mv "$T/src/key.pem.new" "$T/src/key.pem"
cp "$TEST_DATA/ec-p256.crt.pem" "$T/src/chain.pem"
wait_for 30 "the agent reports the rejected config" grep -q 'config test rejected' "$T/agent.log"
alive "$AGENT_PID" || fail "the agent exited"
serves "$FP_RSA" || fail "nginx does not serve the previous certificate"
grep -q 'id=%01' "$T/stanza.conf" || fail "the stanza was not rolled back"
wait_for 10 "status shows the target error" bash -c "'$ENCLAVE_ACM' status --runtime-dir '$T/run' | grep -q '  Error:     .*config test rejected'"
ok "broken nginx.conf: clear error (in the log and in enclave-acm status), stanza rolled back, nginx serves the previous certificate, agent runs"

# Rotation once the config is fixed: one TOKEN_ADD replace with the new key (key id 2, the same slot
# id; the old version keeps signing for the old workers' ticket during enclave-token's grace
# period), then a plain graceful reload (HUP): the master, which lists slots once through
# libengine-pkcs11-openssl 0.4.12, finds key id 2 in the slot it knows. The master pid stays; no
# handshake may fail meanwhile (a client loop runs across the rotation).
handshakes &
LOOP_PID=$!
sleep 0.5
cp "$T/nginx.conf.good" "$T/nginx.conf"
wait_for 60 "the stanza points at key id 2" grep -q 'id=%02' "$T/stanza.conf"
grep -q 'dropped the old key' "$T/agent.log" && fail "the agent still drops the old key in a second step"
ok "config fixed: the retry rotates to key id 2 in one step"
wait_for 30 "nginx serves the rotated certificate" serves "$FP_EC"
[[ $(master) == "$MASTER" ]] || fail "the master changed ($MASTER -> $(master)): expected a graceful reload"
alive "$MASTER" || fail "the master is not running"
[[ ! -e $T/nginx.pid.oldbin ]] || fail "nginx.pid.oldbin exists: an executable upgrade happened"
grep -q 'reloaded gracefully' "$T/agent.log" || fail "the agent does not log a graceful reload"
grep -q 'executable upgrade' "$T/agent.log" && fail "the agent still starts a fresh master"
ok "nginx serves the new certificate after a graceful reload (master $MASTER unchanged)"
wait "$LOOP_PID" || true
FAILS=$(cat "$T/handshake-failures")
[[ $FAILS == 0 ]] || fail "$FAILS of 200 handshakes failed across the rotation"
ok "200 handshakes across the rotation, 0 failed"

# A second renewal, to a third key: the key id moves on to 3. Never back to 1: the master's libp11
# caches the keys it found by id for its whole life, and going back to id 1 with another key made the
# reload fail ("key values mismatch") and nginx kept serving the old certificate.
FP_RSA3=$(fp_of "$TEST_DATA/rsa3072.crt.pem")
handshakes &
LOOP_PID=$!
sleep 0.5
cp "$TEST_DATA/rsa3072.key.pem" "$T/src/key.pem.new" && mv "$T/src/key.pem.new" "$T/src/key.pem"
cp "$TEST_DATA/rsa3072.crt.pem" "$T/src/chain.pem"
wait_for 60 "the stanza points at key id 3" grep -q 'id=%03' "$T/stanza.conf"
wait_for 30 "nginx serves the third certificate" serves "$FP_RSA3"
[[ $(master) == "$MASTER" ]] || fail "the master changed ($MASTER -> $(master)): expected a graceful reload"
wait "$LOOP_PID" || true
FAILS=$(cat "$T/handshake-failures")
[[ $FAILS == 0 ]] || fail "$FAILS of 200 handshakes failed across the second rotation"
ls "$T"/run/web.1.crt.pem >/dev/null 2>&1 && fail "the chain file of key id 1 (no config names it) is still there"
ls "$T"/run/web.2.crt.pem "$T"/run/web.3.crt.pem >/dev/null || fail "the chain files of key ids 2 and 3 are missing"
ok "second renewal: key id 3, nginx serves the third certificate (master $MASTER unchanged), 0 of 200 handshakes failed, key id 1's chain file deleted"

# SIGTERM: clean stop, enclave-token gone, certificate files kept.
TOKEN_PID=$(pgrep -P "$AGENT_PID" -x enclave-token || true)
stop_agent
[[ -z $TOKEN_PID ]] || ! alive "$TOKEN_PID" || fail "enclave-token still runs"
grep -q 'STOPPING=1' "$T/notify.log" || fail "no STOPPING=1"
ls "$T"/run/web.*.crt.pem >/dev/null || fail "certificate files were deleted"
ok "SIGTERM: exit 0, STOPPING=1, enclave-token stopped, certificate files kept"
"$ENCLAVE_ACM" status --runtime-dir "$T/run" >"$T/status.txt" 2>&1 && fail "status exits 0 with the enclave gone"
grep -qF "Agent:     NOT running, last state shown" "$T/status.txt" && grep -qF "Daemon:    not reachable" "$T/status.txt" &&
        grep -qF "Token 'web' (enclave not reachable)" "$T/status.txt" || { cat "$T/status.txt"; fail "status after stop"; }
ok "enclave-acm status after the stop: the agent's last state, the enclave not reachable, exit 1"

echo "1..$CHECKS"
