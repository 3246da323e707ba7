#!/bin/bash
# An S3 source served by nginx, and its renewal with no failed handshake: enclave-acm-agent (local
# launcher, NSM simulator) takes the instance role's credentials from fake-aws's IMDS, the object from
# fake-aws's S3 over HTTPS (verified against the fake's test CA, options.s3_ca_file), the enclave
# decrypts the key at fake-kms, nginx (direct mode, libp11 engine) serves the certificate; the object
# is then replaced by a renewed one: the next sync rotates the token and nginx serves the new
# certificate after a graceful reload, same master pid, while a client loop of 200 TLS handshakes sees
# no failure. Plain script: exit 0 pass, 77 skip, anything else fail.
set -euo pipefail
. "$(dirname "$0")/agent-lib.sh"

: "${AGENT:?}" "${ENCLAVE_TOKEN:?}" "${TEST_DATA:?}" "${FAKE_KMS:?}" "${FAKE_AWS:?}" "${P11_MODULE:?}"
agent_nginx_skip_unless python3
if ! "$ENCLAVE_TOKEN" --help 2>&1 | grep -q -- "--nsm-simulator"; then
        echo "SKIP: enclave-token is built without the NSM simulator (-Dnsm_simulator=false)"
        exit 77
fi

AGENT_PID='' NOTIFY_PID='' KMS_PID='' AWS_PID=''
T=$(mktemp -d /tmp/eacm-s3nginx.XXXXXX)
chmod 0755 "$T"
cleanup() {
        local rc=$?
        trap - EXIT
        cleanup_agent "$rc" "$T/agent.log" "$T/nginx-error.log" "$T/fake-aws.log" "$T/fake-kms.log"
        [[ -f $T/nginx.pid ]] && kill -QUIT "$(cat "$T/nginx.pid")" 2>/dev/null && sleep 0.5 || true
        for p in $KMS_PID $AWS_PID; do
                kill -TERM "$p" 2>/dev/null || true
                wait "$p" 2>/dev/null || true
        done
        rm -rf "$T"
        exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export ENCLAVE_ACM_NO_MLOCK=1
export ENCLAVE_ACM_ADDRESS_FILE=$T/run/address
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_REGION AWS_DEFAULT_REGION AWS_PROFILE

REGION=eu-west-1
PCR0=$(printf '5a%.0s' $(seq 48))
AKID=ASIAFAKEAGENTS3KEY
SECRET=fakeAgentS3SecretKey/0123456789abcdef
SESSION=FakeAgentS3SessionToken+/=
PORT=$(free_port)
mkdir -p "$T/run" "$T/state" "$T/objects/certs-bucket" "$T/nginx"
chmod 0755 "$T/run" "$T/nginx"
FP_RSA=$(fp_of "$TEST_DATA/rsa2048.crt.pem")
FP_NEW=$(fp_of "$TEST_DATA/rsa3072.crt.pem")
FP_OLD=$(fp_of "$TEST_DATA/ec-p256.crt.pem")

"$FAKE_KMS" keygen --master-key "$T/master.key" >>"$T/fake-kms.log" 2>&1
put_object() { # FILE KEYNAME
        "$FAKE_KMS" encrypt --master-key "$T/master.key" --key-id it-key --base64 -i "$TEST_DATA/$2.key.pem" \
                -o "$T/$2.ct" >>"$T/fake-kms.log" 2>&1 || fail "fake-kms encrypt $2"
        python3 - "$TEST_DATA/$2.crt.pem" "$T/$2.ct" "$1.tmp" <<'PY'
import json, sys
json.dump({"certificate": open(sys.argv[1]).read(), "certificateChain": "",
           "encryptedPrivateKey": open(sys.argv[2]).read().strip(),
           "encryptionMethod": "SYMMETRIC_DEFAULT"}, open(sys.argv[3], "w"))
PY
        mv "$1.tmp" "$1"
}
put_object "$T/objects/certs-bucket/web.json" rsa2048

"$FAKE_AWS" --port-file "$T/aws.port" --objects "$T/objects" --region "$REGION" --role web-role \
        --credentials "$AKID:$SECRET:$SESSION" --role-arn-tag arn:aws:iam::123456789012:role/web-role \
        --tls-port-file "$T/aws-tls.port" --ca-out "$T/s3-ca.pem" --stats "$T/aws.stats" \
        --log "$T/requests.log" >>"$T/fake-aws.log" 2>&1 &
AWS_PID=$!
wait_for 10 "fake-aws is up" test -s "$T/aws-tls.port"
EP=http://127.0.0.1:$(cat "$T/aws.port")
S3EP=https://localhost:$(cat "$T/aws-tls.port") # S3 over TLS, verified against the fake's test CA
echo "${AKID}0001:${SECRET}1:${SESSION}1" >"$T/kms-creds"
"$FAKE_KMS" serve --listen "unix:path=$T/kms.sock" --ca-out "$T/kms-ca.pem" --credentials "@$T/kms-creds" \
        --region "$REGION" --attestation-root "$T/run/nsm-sim-root.pem" --master-key "$T/master.key" \
        --policy-pcr "0=$PCR0" >>"$T/fake-kms.log" 2>&1 &
KMS_PID=$!
wait_for 30 "fake-kms wrote its CA" test -s "$T/kms-ca.pem"
ok "fake IMDS (HTTP), fake S3 (HTTPS, test CA) and fake KMS are up"

nginx_openssl_cnf "$T" "$P11_MODULE"
export OPENSSL_CONF=$T/openssl.cnf
cp "$TEST_DATA/ec-p256.key.pem" "$T/nginx/old.key.pem"
cat >"$T/stanza.conf" <<EOF
ssl_certificate $TEST_DATA/ec-p256.crt.pem;
ssl_certificate_key $T/nginx/old.key.pem;
EOF
agent_nginx_conf "$PORT"
cat >"$T/acm.yaml" <<EOF
enclave:
  launcher: local
  token_binary: $ENCLAVE_TOKEN
  boot_timeout_ms: 10000
  nsm_simulator: true
  expected_pcrs: {0: $PCR0}
  kms_proxy: unix:path=$T/kms.sock
  kms_ca_file: $T/kms-ca.pem
options:
  service: nginx
  server_control: direct
  server_config: $T/nginx.conf
  runtime_dir: $T/run
  state_dir: $T/state
  sync_interval_secs: 2
  reload_wait_ms: 500
  imds_endpoint: $EP
  s3_endpoint: $S3EP
  s3_ca_file: $T/s3-ca.pem
log:
  level: debug
tokens:
  - label: web
    source:
      S3:
        uri: s3://certs-bucket/web.json
    target:
      NginxStanza:
        path: $T/stanza.conf
EOF
"$AGENT" --check-config --config "$T/acm.yaml" >"$T/check.out" 2>&1 || fail "--check-config: $(cat "$T/check.out")"

nginx -c "$T/nginx.conf" -e "$T/nginx-error.log" || fail "nginx did not start"
wait_for 10 "nginx serves the plain-file certificate" serves "$FP_OLD"
MASTER=$(cat "$T/nginx.pid")
ok "nginx runs (master $MASTER) with a plain key file"

start_notify_listener
NOTIFY_SOCKET=$T/notify.sock "$AGENT" --config "$T/acm.yaml" >"$T/agent.log" 2>&1 &
AGENT_PID=$!
wait_for 60 "nginx serves the S3 object's certificate" serves "$FP_RSA"
[[ $(cat "$T/nginx.pid") == "$MASTER" ]] || fail "nginx's master changed"
ok "nginx serves the certificate of the S3 object, its key in the token (decrypted via the fake KMS)"

handshakes &
LOOP_PID=$!
sleep 0.5
put_object "$T/objects/certs-bucket/web.json" rsa3072
wait_for 60 "nginx serves the renewed certificate" serves "$FP_NEW"
[[ $(cat "$T/nginx.pid") == "$MASTER" ]] || fail "the master changed: expected a graceful reload"
grep -q "Token 'web': its object changed (ETag" "$T/agent.log" || fail "no line about the changed object"
ok "renewal: the replaced object is served after a graceful reload (master $MASTER unchanged)"
wait "$LOOP_PID" || true
FAILS=$(cat "$T/handshake-failures")
[[ $FAILS == 0 ]] || fail "$FAILS of 200 handshakes failed across the renewal"
ok "200 handshakes across the renewal, 0 failed"
stat_of() { sed -n "s/^$1=//p" "$T/aws.stats"; }
[[ $(stat_of s3_plain_refused) == 0 && $(stat_of s3_200) -ge 2 && $(stat_of s3_tls) -ge 2 ]] ||
        fail "the object was not fetched over TLS: $(tr '\n' ' ' <"$T/aws.stats")"
ok "the object and its renewal came over HTTPS ($(stat_of s3_tls) S3 requests over TLS, none in plain HTTP)"

stop_agent
ok "the agent stops cleanly"
for s in "$SECRET" "$SESSION"; do
        grep -qF -- "$s" "$T/agent.log" "$T/nginx-error.log" "$T/fake-aws.log" && fail "a credential in a log"
done
ok "no credential in the logs"
echo "$CHECKS checks passed"
