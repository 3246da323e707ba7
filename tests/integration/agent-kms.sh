#!/bin/bash
# The KMS key path end to end THROUGH THE AGENT (issue 13): enclave-acm-agent with the local launcher,
# the NSM simulator, expected_pcrs, kms_proxy and kms_ca_file, File sources with encrypted_key made by
# `fake-kms encrypt`, AWS credentials in its environment; the fake KMS (tests/fakes) on a unix socket
# with the credentials from a 0600 file, a PCR0 key policy and statistics.
# - both tokens provisioned in one round (the fake saw one TLS connection and one attestation document
#   per round, two Decrypts); each signs through the PKCS#11 module, verified with its certificate;
# - refresh: DESCRIBE's expiry (enclave-acm status --json) moves forward;
# - another token's ciphertext in a token's encrypted_key: KEY_INVALID naming the token, the token keeps
#   signing with its own key; the file put back, it recovers;
# - KMS closing every connection: bounded retries with back-off, a clear error, no partial token, the
#   other tokens keep signing; the fault gone, the token is provisioned at a later retry;
# - KMS answering too slowly: the tokens sign while the refresh round waits, the round ends within the
#   enclave's bound (KMS_UNAVAILABLE, not a broken connection), the next refresh succeeds;
# - a PCR0 the fake's key policy does not allow: one line saying KMS denied, no token, a plaintext token
#   in the same enclave keeps signing;
# - expected_pcrs differing from what the (simulated) enclave reports: one line naming PCR0, expected
#   and actual, no credentials sent (that fake saw no connection at all);
# - plaintext keys: the local launcher runs enclave-token --dev (documented), an enclave-token without
#   --dev refuses a plaintext File source (DENIED, no token), nitro-cli refuses `key:` at --check-config;
# - no credential in any log (and secret-scan checks PINs and key bytes in the kept logs).
# Plain script: exit 0 pass, 77 skip, anything else fail.
set -euo pipefail
. "$(dirname "$0")/agent-lib.sh"

: "${AGENT:?}" "${ENCLAVE_TOKEN:?}" "${ENCLAVE_ACM:?}" "${P11_MODULE:?}" "${P11_CLIENT:?}" "${FAKE_KMS:?}"
: "${TEST_DATA:?}"
for t in openssl python3; do
        command -v "$t" >/dev/null 2>&1 || { echo "SKIP: '$t' is not installed"; exit 77; }
done
if ! "$ENCLAVE_TOKEN" --help 2>&1 | grep -q -- "--nsm-simulator"; then
        echo "SKIP: enclave-token is built without the NSM simulator (-Dnsm_simulator=false)"
        exit 77
fi
if [[ ${ENCLAVE_ACM_UNDER_VALGRIND:-} == 1 && -z ${EACM_IT_REEXEC:-} ]]; then
        EACM_IT_REEXEC=1 exec bash "$0" "$@"
fi

T=$(mktemp -d /tmp/eacm-agentkms.XXXXXX)
AGENT_PID='' NOTIFY_PID='' PIDS=()
cleanup() {
        local rc=$? p
        trap - EXIT
        for p in ${AGENT_PID:-} "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
        for p in ${AGENT_PID:-} "${PIDS[@]}"; do
                for ((i = 0; i < 50; i++)); do alive "$p" || break; sleep 0.1; done
                kill -KILL "$p" 2>/dev/null || true
        done
        keep_logs "$T"
        if [[ $rc -ne 0 && $rc -ne 77 ]]; then
                for p in "$T"/*.log; do
                        [[ -s $p ]] && { echo "--- $p (last 30 lines) ---" >&2; tail -n 30 "$p" >&2; } || true
                done
        fi
        rm -rf "$T"
        exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
export ENCLAVE_ACM_NO_MLOCK=1

PCR_A=$(printf 'a5%.0s' $(seq 48)) # the image the key policy allows
PCR_B=$(printf 'b6%.0s' $(seq 48)) # another image
AKID=AKIAIOSFODNN7AGENTKMS
SECRET=agentKmsE2eSecret/K7MDENG+bPxRfiCYzz0123
SESSION=agent-kms-e2e-session-token-Qx7
umask 077
echo "$AKID:$SECRET:$SESSION" >"$T/kms-creds"
[[ $(stat -c %a "$T/kms-creds") == 600 ]] || fail "the fake's credentials file is not 0600"
umask 022
head -c 1000 /dev/urandom >"$T/data"

# Ciphertexts of tests/data keys, by the fake's own encrypt.
"$FAKE_KMS" keygen --master-key "$T/master.key" >>"$T/fake-kms-encrypt.log" 2>&1
for k in rsa2048 ec-p256 ec-p384; do
        "$FAKE_KMS" encrypt --master-key "$T/master.key" --key-id agent-kms-test -i "$TEST_DATA/$k.key.pem" \
                -o "$T/$k.ct" >>"$T/fake-kms-encrypt.log" 2>&1 || fail "fake-kms encrypt $k"
done
"$FAKE_KMS" encrypt --master-key "$T/master.key" --key-id agent-kms-test --base64 -i "$TEST_DATA/ec-p256.key.pem" \
        -o "$T/ec-p256.ct.b64" >>"$T/fake-kms-encrypt.log" 2>&1 || fail "fake-kms encrypt --base64"
ok "private keys encrypted by fake-kms (raw and base64 ciphertexts)"

# start_fake NAME ROOT POLICY_PCR0: fake-kms serve on $T/NAME.sock trusting ROOT (the simulator's root,
# re-read at every request); waits for its CA file. Sets FAKE_PID.
start_fake() {
        rm -f "$T/$1.sock" "$T/$1-ca.pem"
        "$FAKE_KMS" serve --listen "unix:path=$T/$1.sock" --ca-out "$T/$1-ca.pem" --credentials "@$T/kms-creds" \
                --region us-east-1 --attestation-root "$2" --master-key "$T/master.key" --policy-pcr "0=$3" \
                --stats "$T/$1-stats.json" --fault-file "$T/fault" >>"$T/$1.log" 2>&1 &
        FAKE_PID=$!
        PIDS+=("$FAKE_PID")
        wait_for 30 "fake-kms '$1' writes its CA" test -s "$T/$1-ca.pem"
}

stat_of() { # NAME PATH...: a value of the fake's statistics (operations.Decrypt: PATH operations Decrypt)
        python3 -c 'import json, sys
v = json.load(open(sys.argv[1]))
for k in sys.argv[2:]:
    v = v.get(k, 0) if isinstance(v, dict) else 0
print(v)' "$T/$1-stats.json" "${@:2}"
}

# An enclave-token standing in for one built from another image, or without --dev: the simulated NSM
# reports PCR0=$ETOK_WRAP_PCR0 whatever the agent passes, and --dev is dropped with ETOK_WRAP_NO_DEV=1.
cat >"$T/etok-wrap" <<EOF
#!/bin/bash
args=()
while ((\$#)); do
        if [[ \$1 == --nsm-sim-pcr && \${2-} == 0=* && -n \${ETOK_WRAP_PCR0-} ]]; then
                args+=(--nsm-sim-pcr "0=\$ETOK_WRAP_PCR0"); shift 2; continue
        fi
        [[ \$1 == --dev && \${ETOK_WRAP_NO_DEV-} == 1 ]] || args+=("\$1")
        shift
done
exec "$ENCLAVE_TOKEN" "\${args[@]}"
EOF
chmod 0755 "$T/etok-wrap"

# write_config NAME EXPECTED_PCR0 FAKE TOKEN_BINARY TOKENS_FILE: $T/NAME.yaml, runtime and state in $T/NAME/.
write_config() {
        mkdir -p "$T/$1/run" "$T/$1/state"
        cat >"$T/$1.yaml" <<EOF
enclave:
  launcher: local
  token_binary: $4
  boot_timeout_ms: 20000
  nsm_simulator: true
  expected_pcrs:
    0: $2
  kms_proxy: unix:path=$T/$3.sock
  kms_ca_file: $T/$3-ca.pem
options:
  runtime_dir: $T/$1/run
  state_dir: $T/$1/state
  sync_interval_secs: 2
  region: us-east-1
log:
  level: debug
tokens:
EOF
        cat "$5" >>"$T/$1.yaml"
        "$AGENT" --check-config --config "$T/$1.yaml" >"$T/$1-check.out" 2>&1 ||
                fail "--check-config $1.yaml: $(cat "$T/$1-check.out")"
}

# start_agent NAME [ENV...]: the agent on $T/NAME.yaml with the AWS credentials in its environment.
start_agent() {
        local name=$1
        shift
        env AWS_ACCESS_KEY_ID="$AKID" AWS_SECRET_ACCESS_KEY="$SECRET" AWS_SESSION_TOKEN="$SESSION" \
                AWS_REGION=us-east-1 "$@" "$AGENT" --config "$T/$name.yaml" >"$T/$name.log" 2>&1 &
        AGENT_PID=$!
}

# status NAME: enclave-acm status --json (agent's view and DESCRIBE) into $T/NAME-status.json
status() {
        "$ENCLAVE_ACM" status --json --runtime-dir "$T/$1/run" >"$T/$1-status.json" 2>"$T/$1-status.err"
}

# q NAME EXPR: a Python expression over the last status (s), its agent tokens (a) and enclave tokens (e)
q() {
        python3 -c 'import json, sys
s = json.load(open(sys.argv[1]))
a = {t["label"]: t for t in s.get("agent", {}).get("tokens", [])}
e = {t["label"]: t for t in s.get("tokens", [])}
r = eval(sys.argv[2])
sys.exit(0 if r is True else 1) if isinstance(r, bool) else print(r)' "$T/$1-status.json" "$2"
}

# wait_q NAME SECONDS DESCRIPTION EXPR: q holds within SECONDS (the agent writes its state file at the end
# of a pass, after its log lines).
wait_q() {
        local i
        for ((i = 0; i < $2 * 10; i++)); do
                status "$1" && q "$1" "$4" && return 0
                sleep 0.1
        done
        cat "$T/$1-status.json" >&2
        fail "$3 (not within $2 s)"
}

ready() { # NAME LABEL: the agent says ready and the enclave lists the token
        status "$1" && q "$1" "a['$2']['state'] == 'ready' and '$2' in e"
}

# An ECDSA signature as PKCS#11 gives it (r || s) to the DER OpenSSL verifies.
ecdsa_to_der() { # IN OUT
        python3 - "$1" "$2" <<'PY'
import sys
raw = open(sys.argv[1], "rb").read()
def integer(b):
    b = b.lstrip(b"\0") or b"\0"
    if b[0] & 0x80:
        b = b"\0" + b
    return b"\x02" + bytes([len(b)]) + b
body = integer(raw[: len(raw) // 2]) + integer(raw[len(raw) // 2 :])
open(sys.argv[2], "wb").write(b"\x30" + (bytes([len(body)]) if len(body) < 128 else b"\x81" + bytes([len(body)])) + body)
PY
}

# sign_ok NAME LABEL KEYNAME MECH: a signature through the module with the agent's generated PIN, verified
# by OpenSSL with KEYNAME's public key (tests/data).
sign_ok() {
        local sig=$T/sig.$2 pin
        pin=$(cat "$T/$1/state/pins/$2") || fail "no PIN kept for token '$2'"
        rm -f "$sig" "$sig.der"
        ENCLAVE_ACM_ADDRESS_FILE=$T/$1/run/address timeout 60 "$P11_CLIENT" "$P11_MODULE" "$2" open \
                "login:$pin" findkey "sign:$4:$T/data:$sig" >"$T/sign-$2.out" 2>&1 ||
                { cat "$T/sign-$2.out" >&2; fail "token '$2' does not sign through the module"; }
        if [[ $4 == ECDSA* ]]; then
                ecdsa_to_der "$sig" "$sig.der"
                sig=$sig.der
        fi
        openssl dgst -sha256 -verify "$TEST_DATA/$3.pub.pem" -signature "$sig" "$T/data" >/dev/null 2>&1 ||
                fail "token '$2': the signature does not verify with $3's public key"
}

# lines_until FILE PATTERN END: how many lines match PATTERN up to the first line matching END.
lines_until() {
        sed -n "1,/$3/p" "$1" | grep -c -- "$2" || true
}

# ---------------------------------------------------------------------------------------------------
# 1. Agent "a": two encrypted tokens provisioned in one KMS round.
start_fake kms "$T/a/run/nsm-sim-root.pem" "$PCR_A"
KMS_PID=$FAKE_PID
cat >"$T/a-tokens.yaml" <<EOF
  - label: web
    source:
      File:
        encrypted_key: $T/web.ct
        certificate: $TEST_DATA/rsa2048.crt.pem
    refresh_interval_secs: 5
    ttl_secs: 3600
  - label: api
    source:
      File:
        encrypted_key: $T/ec-p256.ct.b64
        certificate: $TEST_DATA/ec-p256.crt.pem
    refresh_interval_secs: 5
    ttl_secs: 3600
EOF
cp "$T/rsa2048.ct" "$T/web.ct"
write_config a "$PCR_A" kms "$T/etok-wrap" "$T/a-tokens.yaml"
start_agent a
wait_for 60 "token 'web' is provisioned" ready a web
wait_for 30 "token 'api' is provisioned" ready a api
ok "both encrypted tokens provisioned (File encrypted_key, raw and base64 ciphertexts)"
grep -q "NSM simulator: attestation proves nothing" "$T/a.log" || fail "no simulator warning at start"
grep -q "KMS round: the enclave's attestation document verifies (NSM simulator root, enclave.expected_pcrs)" \
        "$T/a.log" || fail "the agent does not log its attestation check"
ok "the agent checked the enclave's attestation document (simulator root, expected PCR0) before the round"
q a "e['web']['keys'][0]['type'] == 'RSA' and e['api']['keys'][0]['type'] == 'EC'" ||
        fail "the enclave's tokens do not hold the certificates' key types"
q a "a['web']['key_source'] == 'kms' and s['dev_mode'] is True" || fail "status: key_source kms, dev_mode"

sign_ok a web rsa2048 SHA256-RSA-PKCS
sign_ok a api ec-p256 ECDSA-SHA256
ok "both tokens sign through the PKCS#11 module; the signatures verify with the certificates' keys"

# The credentials reach enclave-token through KMS_BEGIN only: not in its environment (the launcher
# drops the agent's AWS_* variables; before, /proc/PID/environ of the token held the secret key).
tokens=0
for p in $(pgrep -f enclave-token || true); do
        tr '\0' '\n' <"/proc/$p/cmdline" 2>/dev/null | grep -qF "$T/a/" || continue
        [[ $(readlink "/proc/$p/exe" 2>/dev/null) == */enclave-token ]] || continue
        tokens=$((tokens + 1))
        ! tr '\0' '\n' <"/proc/$p/environ" | grep -q '^AWS_' ||
                fail "enclave-token (pid $p) has AWS_* variables in its environment"
done
((tokens == 1)) || fail "found $tokens enclave-token processes of agent a, expected 1"
ok "enclave-token's environment holds no AWS_* variable"

# One TLS connection and one attestation document per round, every round two Decrypts (web and api
# provisioned, then refreshed, together). Rounds end with a debug line; a snapshot is taken when no round
# is in progress (the count of ended rounds unchanged around the read).
snapshot=''
for ((i = 0; i < 100; i++)); do
        r1=$(grep -c 'KMS round ended after' "$T/a.log" || true)
        cp "$T/kms-stats.json" "$T/kms-stats-snap.json" 2>/dev/null || true
        r2=$(grep -c 'KMS round ended after' "$T/a.log" || true)
        if [[ $r1 == "$r2" && $r1 -ge 1 ]] && python3 - "$T/kms-stats-snap.json" "$r1" <<'PY'; then
import json, sys
s, n = json.load(open(sys.argv[1])), int(sys.argv[2])
sys.exit(0 if s["connections"] == n and s["handshakes"] == n and s["documents"] == n
         and s["operations"]["Decrypt"] == 2 * n and s["requests"] == 2 * n else 1)
PY
                snapshot=$r1
                break
        fi
        sleep 0.1
done
[[ -n $snapshot ]] || { cat "$T/kms-stats.json" >&2; grep 'KMS round' "$T/a.log" >&2; fail "the fake's counts do not fit one connection and one document per round of two Decrypts"; }
[[ $(grep -c 'KMS round ended after' "$T/a.log") == $(grep -c 'KMS round ended after 2 call(s)' "$T/a.log") ]] ||
        fail "a round carried other than both tokens"
ok "the fake KMS saw one TLS connection, one attestation document and two Decrypts per round ($snapshot round(s) so far)"
grep -q "KMS round ended: 1 attestation document(s), 1 TLS connection(s), 2 Decrypt" "$T/a.log" ||
        fail "enclave-token does not count one document and one connection for the round"

# ---------------------------------------------------------------------------------------------------
# 2. Refresh (every 5 s): DESCRIBE's expiry moves forward, the keys still sign.
status a
e1=$(q a "e['web']['expires']")
a1=$(q a "a['web']['expires']")
[[ $e1 -gt $(($(date +%s) + 3000)) ]] || fail "the token's expiry ($e1) is not about ttl_secs (3600 s) ahead"
wait_for 30 "DESCRIBE shows web's expiry moving forward (was $e1)" \
        bash -c "'$ENCLAVE_ACM' status --json --runtime-dir '$T/a/run' >'$T/a-status.json' 2>/dev/null &&
                 python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); t=[t for t in s[\"tokens\"] if t[\"label\"]==\"web\"][0]; sys.exit(0 if t[\"expires\"] > int(sys.argv[2]) else 1)' '$T/a-status.json' '$e1'"
e2=$(q a "e['web']['expires']")
ok "refresh: DESCRIBE's expires moved forward ($e1 -> $e2)"
grep -q "Token 'web' refreshed (the enclave decrypted its key again)" "$T/a.log" || fail "no refresh line"
wait_for 20 "the agent's view of the expiry moves too" bash -c "'$ENCLAVE_ACM' status --json --runtime-dir '$T/a/run' |
        python3 -c 'import json,sys; s=json.load(sys.stdin); t=[t for t in s[\"agent\"][\"tokens\"] if t[\"label\"]==\"web\"][0]; sys.exit(0 if t[\"expires\"] != sys.argv[1] else 1)' '$a1'"
sign_ok a web rsa2048 SHA256-RSA-PKCS
ok "after the refresh the agent's view shows the new expiry and the token still signs"

# ---------------------------------------------------------------------------------------------------
# 3. A ciphertext of the other token's key in web's encrypted_key: KEY_INVALID naming web; web keeps
# signing with its own key; the file put back, web recovers.
cp "$T/ec-p256.ct" "$T/web.ct.new" && mv "$T/web.ct.new" "$T/web.ct"
wait_for 30 "the enclave refuses the swapped key" grep -q "Token 'web': the decrypted key of key id [0-9]* does not match its certificate" "$T/a.log"
wait_for 10 "the agent's line names the token" grep -q "Token 'web': TOKEN_ADD failed: the enclave rejected the decrypted key" "$T/a.log"
ok "another token's ciphertext: KEY_INVALID, the enclave's and the agent's lines name token 'web'"
status a
q a "len(e['web']['keys']) == 1 and e['web']['keys'][0]['type'] == 'RSA'" ||
        fail "the enclave's token 'web' changed keys after a refused swap"
wait_q a 20 "status shows web's error" "a['web']['state'] == 'failed' and 'rejected the decrypted key' in a['web']['error']"
sign_ok a web rsa2048 SHA256-RSA-PKCS
ok "nothing is served with the wrong key: 'web' still holds its RSA key and signs with it"
cp "$T/rsa2048.ct" "$T/web.ct.new" && mv "$T/web.ct.new" "$T/web.ct"
wait_for 30 "web recovers once its ciphertext is put back" ready a web
sign_ok a web rsa2048 SHA256-RSA-PKCS
ok "the right ciphertext back: 'web' ready again and signing"

# ---------------------------------------------------------------------------------------------------
# 4. KMS closes every connection while a new token arrives (SIGHUP): bounded retries with back-off, a
# clear error, no partial token, the others keep signing; the fault gone, a later retry provisions it.
echo close >"$T/fault"
cp "$T/a-tokens.yaml" "$T/a2-tokens.yaml"
cat >>"$T/a2-tokens.yaml" <<EOF
  - label: late
    source:
      File:
        encrypted_key: $T/ec-p384.ct
        certificate: $TEST_DATA/ec-p384.crt.pem
EOF
write_config a "$PCR_A" kms "$T/etok-wrap" "$T/a2-tokens.yaml"
kill -HUP "$AGENT_PID"
wait_for 30 "the agent reports KMS unreachable for 'late'" \
        grep -q "Token 'late': TOKEN_ADD failed: KMS is unreachable, slow or throttling" "$T/a.log"
wait_for 30 "a second attempt" grep -q "Token 'late': attempt 2 failed, retrying in [0-9]* s" "$T/a.log"
grep -q "Token 'late': attempt 1 failed, retrying in [0-9]* s" "$T/a.log" || fail "no back-off after the first attempt"
grep -Eq "KMS Decrypt at kms.us-east-1.amazonaws.com failed \(kms-unavailable\) after [23] attempt\(s\)" "$T/a.log" ||
        fail "enclave-token does not retry a closed connection a bounded number of times"
ok "KMS closing connections: bounded retries in the enclave, the agent retries with back-off and says why"
wait_q a 20 "no partial token 'late', and its error in status" \
        "'late' not in e and a['late']['state'] == 'failed' and 'KMS is unreachable' in a['late']['error']"
sign_ok a web rsa2048 SHA256-RSA-PKCS
sign_ok a api ec-p256 ECDSA-SHA256
ok "no partial token; 'web' and 'api' keep signing while KMS fails"
: >"$T/fault"
wait_for 30 "'late' is provisioned at a later retry" ready a late
sign_ok a late ec-p384 ECDSA-SHA256
ok "KMS back: 'late' provisioned at a later retry and signs"

# A slow KMS (each answer 4 s late, past enclave-token's 3 s per attempt): the refresh round of web and
# api ends in its bound with a clear error, and the tokens sign while it waits.
opened=$(grep -c 'KMS round opened' "$T/a.log" || true)
failed=$(grep -c "TOKEN_REFRESH failed: KMS is unreachable, slow or throttling" "$T/a.log" || true)
echo slow=4000 >"$T/fault"
wait_for 30 "a refresh round opens" bash -c "(( \$(grep -c 'KMS round opened' '$T/a.log') > $opened ))"
sign_ok a web rsa2048 SHA256-RSA-PKCS
sign_ok a api ec-p256 ECDSA-SHA256
# (the round takes about 10 s: 3 attempts of 3 s; the two signatures take well under that)
[[ $(grep -c "TOKEN_REFRESH failed: KMS is unreachable, slow or throttling" "$T/a.log" || true) == "$failed" ]] ||
        fail "the slow round ended before the signatures: they did not run while it waited"
ok "a slow KMS round in progress: 'web' and 'api' sign meanwhile"
wait_for 40 "the slow round ends in a clear error" bash -c \
        "(( \$(grep -c 'TOKEN_REFRESH failed: KMS is unreachable, slow or throttling' '$T/a.log') > $failed ))"
grep -Eq "KMS Decrypt at kms.us-east-1.amazonaws.com failed \(kms-unavailable\) after [1-3] attempt\(s\)" "$T/a.log" ||
        fail "enclave-token does not bound the attempts on a slow KMS"
ok "a slow KMS: the refresh fails within enclave-token's bound with a line saying KMS is slow or unreachable"
refreshed=$(grep -c "Token 'web' refreshed (the enclave" "$T/a.log" || true)
: >"$T/fault"
wait_for 40 "'web' is refreshed once KMS answers again" bash -c \
        "(( \$(grep -c \"Token 'web' refreshed (the enclave\" '$T/a.log') > $refreshed ))"
status a
q a "all(l in e for l in ('web', 'api', 'late'))" || fail "a token left the enclave after KMS faults"
ok "KMS answers again: the next refresh succeeds, every token still in the enclave"
stop_agent
ok "agent 'a' stops cleanly"
kill -TERM "$KMS_PID"

# ---------------------------------------------------------------------------------------------------
# 5. A PCR0 the key policy does not allow: the enclave (and the agent) expect PCR_B, the fake's policy
# allows PCR_A only. A plaintext token in the same enclave keeps signing.
start_fake kms-b "$T/b/run/nsm-sim-root.pem" "$PCR_A"
cat >"$T/b-tokens.yaml" <<EOF
  - label: denied
    source:
      File:
        encrypted_key: $T/ec-p256.ct
        certificate: $TEST_DATA/ec-p256.crt.pem
  - label: plain
    source:
      File:
        key: $TEST_DATA/ec-p521.key.pem
        certificate: $TEST_DATA/ec-p521.crt.pem
EOF
write_config b "$PCR_B" kms-b "$T/etok-wrap" "$T/b-tokens.yaml"
start_agent b
wait_for 60 "the plaintext token is provisioned" ready b plain
wait_for 30 "the agent says KMS denied" grep -q "Token 'denied': attempt 1 failed" "$T/b.log"
n=$(lines_until "$T/b.log" "Token 'denied': TOKEN_ADD failed: KMS denied the Decrypt" "Token 'denied': attempt 1 failed")
[[ $n == 1 ]] || fail "$n lines say KMS denied for the first attempt, expected 1"
grep "Token 'denied': TOKEN_ADD failed: KMS denied" "$T/b.log" | grep -q '^<3>' || fail "not at error priority"
ok "a PCR0 the key policy does not allow: one line, 'Token 'denied': TOKEN_ADD failed: KMS denied the Decrypt ...'"
grep -Eq "failed \(kms-denied\) after 1 attempt\(s\): HTTP 400 AccessDeniedException.*PCR0" "$T/b.log" ||
        fail "enclave-token's line does not carry KMS's reason (PCR0)"
[[ $(stat_of kms-b outcomes ok) == 0 && $(stat_of kms-b outcomes AccessDeniedException) -ge 1 ]] ||
        { cat "$T/kms-b-stats.json" >&2; fail "the fake answered other than AccessDenied"; }
wait_q b 20 "no token 'denied', its failure in status" "'denied' not in e and a['denied']['state'] == 'failed'"
q b "s['dev_mode'] is True" || fail "the local launcher's enclave-token is not in development mode (--dev)"
sign_ok b plain ec-p521 ECDSA-SHA256
ok "no token 'denied'; the plaintext token in the same enclave signs"
stop_agent

# ---------------------------------------------------------------------------------------------------
# 6. expected_pcrs (PCR_A) differ from what the enclave reports (PCR_B), and that enclave-token runs
# without --dev: no credentials leave (its fake sees no connection), one line naming PCR0, expected and
# actual; the plaintext File source is refused by the enclave (DENIED), nothing provisioned.
start_fake kms-c "$T/c/run/nsm-sim-root.pem" "$PCR_A"
cat >"$T/c-tokens.yaml" <<EOF
  - label: enc
    source:
      File:
        encrypted_key: $T/rsa2048.ct
        certificate: $TEST_DATA/rsa2048.crt.pem
  - label: plain
    source:
      File:
        key: $TEST_DATA/ec-p256.key.pem
        certificate: $TEST_DATA/ec-p256.crt.pem
EOF
write_config c "$PCR_A" kms-c "$T/etok-wrap" "$T/c-tokens.yaml"
start_agent c ETOK_WRAP_PCR0="$PCR_B" ETOK_WRAP_NO_DEV=1
wait_for 60 "the attestation refusal" grep -q "Token 'enc': attempt 1 failed" "$T/c.log"
want="KMS round: attestation: PCR0 is ${PCR_B:0:16}…, expected ${PCR_A:0:16}… (enclave.expected_pcrs); not sending credentials"
n=$(lines_until "$T/c.log" "$want" "Token 'enc': attempt 1 failed")
[[ $n == 1 ]] || { grep -n "attestation" "$T/c.log" >&2; fail "$n lines '$want' for the first attempt, expected 1"; }
ok "expected_pcrs differ from the enclave's PCR0: one line naming PCR0, the actual and the expected value"
grep -q "KMS round opened" "$T/c.log" && fail "enclave-token got a KMS round (credentials were sent)"
[[ $(stat_of kms-c connections) == 0 && $(stat_of kms-c requests) == 0 ]] ||
        { cat "$T/kms-c-stats.json" >&2; fail "the fake KMS saw a connection"; }
ok "no credentials sent: no KMS_BEGIN in the enclave, the fake saw no connection"
wait_for 30 "the plaintext token's refusal" grep -q "Token 'plain': attempt 1 failed" "$T/c.log"
n=$(lines_until "$T/c.log" "^<3>Token 'plain': TOKEN_ADD refused: the enclave takes no plaintext key (it runs without --dev); use encrypted_key" \
        "Token 'plain': attempt 1 failed")
[[ $n == 1 ]] || { grep "Token 'plain'" "$T/c.log" >&2; fail "the refusal of the plaintext key does not say why in one line"; }
grep -q "Token 'plain': attempt 1 failed, retrying in 2 s" "$T/c.log" ||
        fail "a refused plaintext key is retried before the next sync (sync_interval_secs 2)"
wait_q c 20 "enclave-token without --dev holds no token, the refusal in status" \
        "s['dev_mode'] is False and e == {} and 'no plaintext key' in a['plain']['error']"
ok "enclave-token without --dev refuses the plaintext File source, no token at all"
stop_agent
# The documented rules: the local launcher runs enclave-token --dev (so `key:` works there, step 5);
# nitro-cli refuses a plaintext key before anything starts.
cat >"$T/nitro-plain.yaml" <<EOF
enclave:
  cpu_count: 2
  memory_mib: 256
  expected_pcrs: {0: $PCR_A}
tokens:
  - label: plain
    source: {File: {key: $TEST_DATA/ec-p256.key.pem, certificate: $TEST_DATA/ec-p256.crt.pem}}
EOF
rc=0
"$AGENT" --check-config --config "$T/nitro-plain.yaml" >"$T/nitro-plain.out" 2>&1 || rc=$?
[[ $rc == 1 ]] && grep -q "only allowed with enclave.launcher: local (use encrypted_key)" "$T/nitro-plain.out" ||
        { cat "$T/nitro-plain.out" >&2; fail "nitro-cli with a plaintext key: exit $rc"; }
ok "nitro-cli with a plaintext File key is refused by --check-config"

# ---------------------------------------------------------------------------------------------------
# 7. No credential in any log or output this test kept (secret-scan checks PINs and key bytes).
if grep -rlF -e "$SECRET" -e "$SESSION" "$T" --include='*.log' --include='*.out' --include='*.json' \
        --include='*.err' >"$T/leaks.txt"; then
        cat "$T/leaks.txt" >&2
        fail "the secret access key or session token is in a log"
fi
ok "neither the secret access key nor the session token is in any log"
echo "$CHECKS checks passed"
