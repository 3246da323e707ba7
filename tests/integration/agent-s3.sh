#!/bin/bash
# The production key path end to end on loopback, with fakes standing in for AWS: enclave-acm-agent
# (local launcher, NSM simulator) takes the instance role's credentials from fake-aws's IMDS (plain
# HTTP, as the real one), fetches an S3 source and an Acm source (ACM's object name from the role ARN
# tag) from fake-aws's S3 over HTTPS (libcurl verifying the fake's certificate against the test CA in
# options.s3_ca_file; SigV4 checked against those credentials), and sends the encryptedPrivateKey through its KMS round; the
# enclave decrypts it at fake-kms (attestation, PCR0 policy); the tokens then sign through the
# PKCS#11 module. Then: a replaced object (a renewal) updates the token; an unchanged object is one
# conditional GET per sync (counted at the fake); a source whose object is missing fails alone, with
# its one-line error, and the others keep being served; S3 with a CA that did not sign its certificate,
# or under a name its certificate does not carry, is refused with one line naming the URI; no secret
# reaches the logs.
# Plain script: exit 0 pass, 77 skip, anything else fail.
set -euo pipefail
. "$(dirname "$0")/agent-lib.sh"

: "${AGENT:?}" "${ENCLAVE_ACM:?}" "${ENCLAVE_TOKEN:?}" "${TEST_DATA:?}" "${FAKE_KMS:?}" "${FAKE_AWS:?}" "${P11_CLIENT:?}" "${P11_MODULE:?}"
command -v python3 >/dev/null 2>&1 || { echo "SKIP: 'python3' is not installed"; exit 77; }
command -v openssl >/dev/null 2>&1 || { echo "SKIP: 'openssl' is not installed"; exit 77; }
if ! "$ENCLAVE_TOKEN" --help 2>&1 | grep -q -- "--nsm-simulator"; then
        echo "SKIP: enclave-token is built without the NSM simulator (-Dnsm_simulator=false)"
        exit 77
fi

AGENT_PID='' NOTIFY_PID='' KMS_PID='' AWS_PID='' KMS2_PID='' AWS2_PID=''
T=$(mktemp -d /tmp/eacm-agents3.XXXXXX)
cleanup() {
        local rc=$?
        trap - EXIT
        cleanup_agent "$rc" "$T/agent.log" "$T/fake-aws.log" "$T/fake-kms.log" "$T/requests.log"
        for p in $KMS_PID $KMS2_PID $AWS_PID $AWS2_PID; do
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
# The agent must take its credentials from IMDS, not from a developer's environment.
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_REGION AWS_DEFAULT_REGION AWS_PROFILE

REGION=eu-west-1
PCR0=$(printf '5a%.0s' $(seq 48))
ROLE=web-role
ROLE_ARN=arn:aws:iam::123456789012:role/$ROLE
CERT_ARN=arn:aws:acm:$REGION:123456789012:certificate/0a1b2c3d-1111-2222-3333-444455556666
AKID=ASIAFAKEAGENTS3KEY
SECRET=fakeAgentS3SecretKey/0123456789abcdef
SESSION=FakeAgentS3SessionToken+/=
PIN_WEB=web-pin-1234
PIN_ACM=acm-pin-5678
ACM_BUCKET=aws-ec2-enclave-certificate-$REGION-prod
mkdir -p "$T/run" "$T/state" "$T/objects/certs-bucket" "$T/objects/$ACM_BUCKET"

"$FAKE_KMS" keygen --master-key "$T/master.key" >>"$T/fake-kms.log" 2>&1
# put_object FILE KEYNAME: the S3 object of KEYNAME's certificate and its key encrypted by the fake KMS
put_object() {
        "$FAKE_KMS" encrypt --master-key "$T/master.key" --key-id it-key --base64 -i "$TEST_DATA/$2.key.pem" \
                -o "$T/$2.ct" >>"$T/fake-kms.log" 2>&1 || fail "fake-kms encrypt $2"
        python3 - "$TEST_DATA/$2.crt.pem" "$T/$2.ct" "$1.tmp" <<'PY'
import json, sys
cert = open(sys.argv[1]).read()
ct = open(sys.argv[2]).read().strip()
json.dump({"certificate": cert, "certificateChain": "", "encryptedPrivateKey": ct,
           "encryptionMethod": "SYMMETRIC_DEFAULT"}, open(sys.argv[3], "w"))
PY
        mv "$1.tmp" "$1"
}
put_object "$T/objects/certs-bucket/web.json" rsa2048
ok "S3 object made: the key encrypted by the fake KMS, in the object JSON ACM publishes"

# fake-aws: IMDS + S3 on a loopback port
"$FAKE_AWS" --port-file "$T/aws.port" --objects "$T/objects" --region "$REGION" --role "$ROLE" \
        --credentials "$AKID:$SECRET:$SESSION" --role-arn-tag "$ROLE_ARN" --stats "$T/aws.stats" \
        --tls-port-file "$T/aws-tls.port" --ca-out "$T/s3-ca.pem" \
        --log "$T/requests.log" >>"$T/fake-aws.log" 2>&1 &
AWS_PID=$!
wait_for 10 "fake-aws is up" test -s "$T/aws-tls.port"
EP=http://127.0.0.1:$(cat "$T/aws.port")
# S3 over TLS: the fake's certificate names localhost only (so 127.0.0.1 is a wrong host name)
S3EP=https://localhost:$(cat "$T/aws-tls.port")
S3EP_BADNAME=https://127.0.0.1:$(cat "$T/aws-tls.port")
# fake-kms accepts the credentials fake-aws's IMDS hands out (generation 1, see tests/fakes/README)
echo "${AKID}0001:${SECRET}1:${SESSION}1" >"$T/kms-creds"
"$FAKE_KMS" serve --listen "unix:path=$T/kms.sock" --ca-out "$T/kms-ca.pem" --credentials "@$T/kms-creds" \
        --region "$REGION" --attestation-root "$T/run/nsm-sim-root.pem" --master-key "$T/master.key" \
        --policy-pcr "0=$PCR0" --stats "$T/kms-stats.json" >>"$T/fake-kms.log" 2>&1 &
KMS_PID=$!
wait_for 30 "fake-kms wrote its CA" test -s "$T/kms-ca.pem"
ok "fake IMDS on $EP, fake S3 on $S3EP (TLS, test CA) and fake KMS on a unix socket are up"

# The Acm object is made by `enclave-acm object create`: KMS Encrypt with the role's credentials from
# the fake IMDS, at a second fake KMS on TCP (same master key, so the first one's Decrypt opens it).
KPORT=$(free_port)
"$FAKE_KMS" serve --listen "tcp:127.0.0.1:$KPORT" --ca-out "$T/kms2-ca.pem" --credentials "@$T/kms-creds" \
        --region "$REGION" --attestation-root "$T/run/nsm-sim-root.pem" --master-key "$T/master.key" \
        >>"$T/fake-kms2.log" 2>&1 &
KMS2_PID=$!
wait_for 30 "the TCP fake-kms wrote its CA" test -s "$T/kms2-ca.pem"
ACM_OBJ=$T/objects/$ACM_BUCKET/${ROLE_ARN//\//_}_${CERT_ARN//\//_}
"$ENCLAVE_ACM" object create --key "$TEST_DATA/ec-p256.key.pem" --cert "$TEST_DATA/ec-p256.crt.pem" \
        --kms-key-id it-key --imds-endpoint "$EP" --kms-ca "$T/kms2-ca.pem" \
        --kms-connect-to "127.0.0.1:$KPORT" -o "$T/acm-object.json" \
        --s3 "s3://$ACM_BUCKET/$ROLE_ARN/$CERT_ARN" --s3-endpoint "$S3EP" --s3-ca "$T/s3-ca.pem" \
        >"$T/object-create.log" 2>&1 ||
        fail "object create: $(cat "$T/object-create.log")"
cmp -s "$T/acm-object.json" "$ACM_OBJ" || fail "the uploaded object (fake S3's file) differs from the -o one"
python3 - "$ACM_OBJ" "$TEST_DATA/ec-p256.crt.pem" <<'PY' || fail "object create wrote an object of another shape"
import json, sys
o = json.load(open(sys.argv[1]))
assert sorted(o) == ["certificate", "certificateChain", "encryptedPrivateKey", "encryptionMethod"], o.keys()
assert o["encryptionMethod"] == "SYMMETRIC_DEFAULT" and o["certificateChain"] == ""
assert "BEGIN" not in o["encryptedPrivateKey"] and len(o["encryptedPrivateKey"]) > 100
PY
grep -q 'PRIVATE KEY' "$ACM_OBJ" && fail "the object holds the private key in clear"
ok "enclave-acm object create: KMS Encrypt (credentials from IMDS), the object written and uploaded (PutObject), no key in clear"

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
  runtime_dir: $T/run
  state_dir: $T/state
  sync_interval_secs: 2
  imds_endpoint: $EP
  s3_endpoint: $S3EP
  s3_ca_file: $T/s3-ca.pem
log:
  level: debug
tokens:
  - label: web
    pin: '$PIN_WEB'
    source:
      S3:
        uri: s3://certs-bucket/web.json
  - label: acm
    pin: '$PIN_ACM'
    source:
      Acm:
        certificate_arn: $CERT_ARN
  - label: broken
    source:
      S3:
        uri: s3://certs-bucket/missing.json
EOF
chmod 0600 "$T/acm.yaml"
"$AGENT" --check-config --config "$T/acm.yaml" >"$T/check.out" 2>&1 || fail "--check-config: $(cat "$T/check.out")"
ok "the configuration with S3, Acm, imds_endpoint, s3_endpoint and s3_ca_file is valid"

head -c 1000 /dev/urandom >"$T/data"
ecdsa_to_der() { # IN OUT: PKCS#11's r || s to the DER OpenSSL verifies
        python3 - "$1" "$2" <<'PY'
import sys
raw = open(sys.argv[1], "rb").read()
def integer(b):
    b = b.lstrip(b"\0") or b"\0"
    if b[0] & 0x80:
        b = b"\0" + b
    return b"\x02" + bytes([len(b)]) + b
body = integer(raw[: len(raw) // 2]) + integer(raw[len(raw) // 2 :])
open(sys.argv[2], "wb").write(b"\x30" + bytes([len(body)]) + body)
PY
}
# signs LABEL PIN KEYNAME MECH: the token signs through the module and KEYNAME's public key verifies it
signs() {
        local sig=$T/sig.$1
        rm -f "$sig" "$sig.der"
        "$P11_CLIENT" "$P11_MODULE" "$1" open "login:$2" findkey "sign:$4:$T/data:$sig" >"$T/sign.$1.out" 2>&1 ||
                return 1
        if [[ $4 == ECDSA* ]]; then
                ecdsa_to_der "$sig" "$sig.der"
                sig=$sig.der
        fi
        openssl dgst -sha256 -verify "$TEST_DATA/$3.pub.pem" -signature "$sig" "$T/data" >/dev/null 2>&1
}

start_notify_listener
NOTIFY_SOCKET=$T/notify.sock "$AGENT" --config "$T/acm.yaml" >"$T/agent.log" 2>&1 &
AGENT_PID=$!
wait_for 60 "the S3 token signs with the key from its object" signs web "$PIN_WEB" rsa2048 SHA256-RSA-PKCS
ok "S3 source: IMDS credentials -> signed GetObject -> KMS round -> the token signs with rsa2048's key"
wait_for 30 "the Acm token signs with the key from ACM's object" signs acm "$PIN_ACM" ec-p256 ECDSA-SHA256
ok "Acm source (object made by object create): ACM's name for the role ARN tag -> the token signs with ec-p256's key"
grep -q "GET /$ACM_BUCKET/${ROLE_ARN//:/%3A}/${CERT_ARN//:/%3A} 200" "$T/requests.log" ||
        fail "the Acm object was not fetched at ACM's name: $(grep -v latest "$T/requests.log" | head)"
ok "the Acm object was fetched at <partition>-ec2-enclave-certificate-<region>-prod/<role ARN>/<certificate ARN>"

# the missing object: its own one-line error, the others unaffected
wait_for 20 "the missing object's error" grep -q "Token 'broken': s3://certs-bucket/missing.json: .*no such object (NoSuchKey)" "$T/agent.log"
alive "$AGENT_PID" || fail "the agent died"
signs web "$PIN_WEB" rsa2048 SHA256-RSA-PKCS || fail "web stopped signing beside the failing source"
ok "a missing object fails its token alone with one line (NoSuchKey); the others keep signing"

# unchanged objects: after the first 200, every sync of 'web' is one conditional GET answered 304
wait_for 20 "three syncs of web" bash -c "[[ \$(grep -c 'GET /certs-bucket/web.json 304 conditional' '$T/requests.log') -ge 3 ]]"
n200=$(grep -c 'GET /certs-bucket/web.json 200' "$T/requests.log")
[[ $n200 == 1 ]] || fail "web.json was fetched whole $n200 times while unchanged"
uncond=$(grep 'GET /certs-bucket/web.json' "$T/requests.log" | grep -vc conditional)
[[ $uncond == 1 ]] || fail "$uncond unconditional GETs of web.json (only the first may be)"
syncs=$(grep -c "Syncing token 'web'" "$T/agent.log")
gets=$(grep -c 'GET /certs-bucket/web.json' "$T/requests.log")
((gets <= syncs && gets >= syncs - 1)) || fail "$gets GETs of web.json for $syncs syncs"
ok "unchanged: one conditional GET (304) per sync, counted at the fake ($gets GETs, $syncs syncs)"

# IMDS once per sync pass, not once per token: the pass's credentials serve all its sources (and its
# KMS round). web and acm always sync in the same pass; broken (failing, backing off) may sync in
# passes of its own. So per window: IMDS rounds (token PUTs) <= web's GETs + broken's GETs (+ 1 for a
# pass cut by the window's edge), where one round per token would be web + acm + broken (- 1).
stat_of() { sed -n "s/^$2=//p" "$1" 2>/dev/null; }
count() { grep -c "$1" "$T/requests.log" || true; }
tok0=$(stat_of "$T/aws.stats" imds_token) cred0=$(stat_of "$T/aws.stats" imds_creds)
web0=$(count 'GET /certs-bucket/web.json') acm0=$(count "GET /$ACM_BUCKET/") br0=$(count 'GET /certs-bucket/missing.json')
wait_for 40 "six more syncs of web" bash -c "[[ \$(grep -c 'GET /certs-bucket/web.json' '$T/requests.log') -ge $((web0 + 6)) ]]"
tok=$(($(stat_of "$T/aws.stats" imds_token) - tok0)) cred=$(($(stat_of "$T/aws.stats" imds_creds) - cred0))
web=$(($(count 'GET /certs-bucket/web.json') - web0)) acm=$(($(count "GET /$ACM_BUCKET/") - acm0))
br=$(($(count 'GET /certs-bucket/missing.json') - br0))
((acm >= 4)) || fail "acm synced $acm times while web synced $web times"
((tok <= web + br + 1)) ||
        fail "IMDS asked $tok times for $web+$acm+$br S3 GETs (web+acm+broken): not once per sync pass"
((cred == tok)) || fail "$cred credentials GETs for $tok IMDS sessions"
ok "IMDS once per sync pass: $tok IMDS rounds (token + credentials) for $((web + acm + br)) source syncs (web $web, acm $acm, broken $br), counted at the fake"

# renewal: the object is replaced with another key and certificate: the next sync rotates the token
put_object "$T/objects/certs-bucket/web.json" rsa3072
wait_for 30 "the token signs with the renewed key" signs web "$PIN_WEB" rsa3072 SHA256-RSA-PKCS
grep -q "Token 'web': its object changed (ETag" "$T/agent.log" || fail "no line about the changed object"
grep -q "Token 'web': the key or certificate in its source changed, rotating from key id 1 to 2" "$T/agent.log" ||
        fail "the renewal did not go through the rotation path"
ok "renewal: a replaced object is seen by its ETag and rotates the token (key id 1 -> 2)"
signs acm "$PIN_ACM" ec-p256 ECDSA-SHA256 || fail "the Acm token stopped signing after web's rotation"
ok "the other token is untouched by the rotation"

# expiring credentials: a second fake-aws (same objects) hands out credentials that expire 6 s after
# they are issued, so they are always inside the agent's 300 s refetch margin; an expired generation is
# replaced at the next credentials GET. The running agent is pointed at it by a reload (SIGHUP); the
# tokens' objects are unchanged, so no KMS round is needed, only signed conditional GETs.
"$FAKE_AWS" --port-file "$T/aws2.port" --objects "$T/objects" --region "$REGION" --role "$ROLE" \
        --credentials "$AKID:$SECRET:$SESSION" --role-arn-tag "$ROLE_ARN" --stats "$T/aws2.stats" \
        --cred-ttl 6 --tls-port-file "$T/aws2-tls.port" --ca-out "$T/s3-ca2.pem" \
        --log "$T/requests2.log" >>"$T/fake-aws.log" 2>&1 &
AWS2_PID=$!
wait_for 10 "the second fake-aws is up" test -s "$T/aws2-tls.port"
EP2=http://127.0.0.1:$(cat "$T/aws2.port")
S3EP2=https://localhost:$(cat "$T/aws2-tls.port")
# set_s3 IMDS S3 CA: points the running agent's configuration there (applied at the next SIGHUP)
set_s3() {
        sed -i "s|^  imds_endpoint: .*|  imds_endpoint: $1|; s|^  s3_endpoint: .*|  s3_endpoint: $2|; s|^  s3_ca_file: .*|  s3_ca_file: $3|" "$T/acm.yaml"
}
set_s3 "$EP2" "$S3EP2" "$T/s3-ca2.pem"
kill -HUP "$AGENT_PID"
wait_for 60 "the third credentials generation handed out" bash -c "[[ \$(sed -n 's/^cred_gen=//p' '$T/aws2.stats' 2>/dev/null) -ge 3 ]]"
n304=$(grep -c 'GET /certs-bucket/web.json 304' "$T/requests2.log" || true)
wait_for 30 "two more conditional GETs of web.json after generation 3" \
        bash -c "[[ \$(grep -c 'GET /certs-bucket/web.json 304' '$T/requests2.log') -ge $((n304 + 2)) ]]"
gen=$(stat_of "$T/aws2.stats" cred_gen)
creds=$(stat_of "$T/aws2.stats" imds_creds)
((creds >= gen)) || fail "$gen credential generations but only $creds credentials GETs"
[[ $(stat_of "$T/aws2.stats" s3_bad_sig) == 0 ]] || fail "fake S3 refused signatures: $(cat "$T/aws2.stats")"
alive "$AGENT_PID" || fail "the agent died while its credentials expired"
signs web "$PIN_WEB" rsa3072 SHA256-RSA-PKCS || fail "web stopped signing while its credentials expired"
signs acm "$PIN_ACM" ec-p256 ECDSA-SHA256 || fail "acm stopped signing while its credentials expired"
ok "expiring IMDS credentials are fetched again: generation $gen ($creds credentials GETs), the syncs keep succeeding (304) and the tokens keep signing"

# S3's certificate checked: a CA that did not sign it (the second fake's), then a host name it does not
# carry (127.0.0.1: the certificate names localhost only). Each is refused by libcurl with one line
# naming the token's URI and the endpoint; the fake sees failed handshakes and no request; the tokens
# keep signing with the keys they have.
refused_tls() { # WHAT PATTERN
        wait_for 30 "$1 refused" grep -q "$2" "$T/agent.log"
        alive "$AGENT_PID" || fail "the agent died on $1"
        signs web "$PIN_WEB" rsa3072 SHA256-RSA-PKCS || fail "web stopped signing after $1"
}
URI_RE="Token 'web': s3://certs-bucket/web.json: S3 https://"
n0=$(stat_of "$T/aws.stats" tls_handshake_failed)
set_s3 "$EP" "$S3EP" "$T/s3-ca2.pem"
kill -HUP "$AGENT_PID"
refused_tls "a certificate from another CA" "${URI_RE}localhost:[0-9]*: TLS certificate refused: .*certificate"
# (with another CA the client aborts inside the handshake; with a wrong name, after it)
wait_for 10 "the fake saw the client abort the handshake (unknown CA)" \
        bash -c "[[ \$(sed -n 's/^tls_handshake_failed=//p' '$T/aws.stats') -gt $n0 ]]"
ok "S3 with a certificate the configured CA did not sign: refused, one line naming the URI (the token keeps its key)"
s3_before=$(stat_of "$T/aws.stats" s3_get) # from now on every sync is refused before its request
set_s3 "$EP" "$S3EP_BADNAME" "$T/s3-ca.pem"
kill -HUP "$AGENT_PID"
refused_tls "a wrong host name" "${URI_RE}127.0.0.1:[0-9]*: TLS certificate refused: .*127.0.0.1"
[[ $(stat_of "$T/aws.stats" s3_get) == "$s3_before" ]] ||
        fail "fake S3 answered requests whose TLS the agent should have refused"
grep "TLS certificate refused" "$T/agent.log" | grep -v -e "^<[0-9]>Token '" -e "^<[0-9]>Ready: " | grep -q . &&
        fail "a TLS refusal not on one line of its own naming the token"
ok "S3 under a host name its certificate does not carry: refused, one line naming the URI; no request reached the fake"

# back to the first fake-aws and its CA (the fake KMS accepts its credentials)
set_s3 "$EP" "$S3EP" "$T/s3-ca.pem"
kill -HUP "$AGENT_PID"
nreq=$(wc -l <"$T/requests.log")
wait_for 30 "the agent back at the first fake-aws" bash -c "[[ \$(wc -l <'$T/requests.log') -gt $((nreq + 2)) ]]"
wait_for 30 "web syncing over TLS again" grep -q "GET /certs-bucket/web.json 304" "$T/requests.log"
[[ $(stat_of "$T/aws.stats" s3_plain_refused) == 0 ]] || fail "the agent sent S3 requests over plain HTTP"
(($(stat_of "$T/aws.stats" s3_tls) > 3)) || fail "few S3 requests over TLS: $(cat "$T/aws.stats")"
ok "every S3 request went over TLS ($(stat_of "$T/aws.stats" s3_tls) requests, $(stat_of "$T/aws.stats" tls_handshakes) handshakes)"

# KMS refuses this enclave (its key policy names another PCR0): the renewal fails with one line that
# prints the enclave's PCR0, and the token keeps signing with the key it has
kill -TERM "$KMS_PID"
wait "$KMS_PID" 2>/dev/null || true
rm -f "$T/kms.sock" "$T/kms-ca.pem"
"$FAKE_KMS" serve --listen "unix:path=$T/kms.sock" --ca-out "$T/kms-ca.pem" --credentials "@$T/kms-creds" \
        --region "$REGION" --attestation-root "$T/run/nsm-sim-root.pem" --master-key "$T/master.key" \
        --policy-pcr "0=$(printf '0b%.0s' $(seq 48))" >>"$T/fake-kms.log" 2>&1 &
KMS_PID=$!
wait_for 30 "fake-kms (other policy) wrote its CA" test -s "$T/kms-ca.pem"
put_object "$T/objects/certs-bucket/web.json" rsa2048
wait_for 30 "the KMS refusal naming PCR0" grep -q "Token 'web': TOKEN_ADD failed: KMS denied the Decrypt.*the enclave attested PCR0 $PCR0: the key policy must allow" "$T/agent.log"
alive "$AGENT_PID" || fail "the agent died on a KMS refusal"
signs web "$PIN_WEB" rsa3072 SHA256-RSA-PKCS || fail "web stopped signing with its current key after the refusal"
ok "KMS refusing the enclave: one line with the enclave's PCR0 and the fix; the token keeps its current key"

stop_agent
ok "the agent stops cleanly"
# (the PINs are in runtime_dir's 0400 pin-source files by design: only the credentials are looked for there)
for s in "$SECRET" "$SESSION" "$PIN_WEB" "$PIN_ACM"; do
        if grep -qF -- "$s" "$T/agent.log" "$T/requests.log" "$T/notify.log" "$T/fake-aws.log" "$T/object-create.log"; then
                fail "a secret (credential or PIN) shows up in a log"
        fi
done
for s in "$SECRET" "$SESSION"; do
        grep -rqF -- "$s" "$T/run" "$T/state" && fail "a credential shows up in runtime_dir or state_dir"
done
ok "no credential or PIN in the logs, no credential in the agent's files"
echo "$CHECKS checks passed"
