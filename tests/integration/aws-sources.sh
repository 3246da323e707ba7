#!/bin/bash
# The IMDSv2 and S3 clients (aws/imds-client.c, aws/s3-client.c) against tests/fakes/fake-aws on
# loopback: credentials and the role ARN from IMDS, a SigV4-signed GetObject checked by the fake with
# the credentials it handed out, ETag + If-None-Match = one 304, a changed object seen, credentials
# refreshed after their Expiration, and each refusal as its one-line error. Counts come from the fake.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
: "${FAKE_AWS:?}" "${AWS_FETCH:?}"

REGION=eu-west-1
ROLE=web-role
ROLE_ARN=arn:aws:iam::123456789012:role/$ROLE
CERT_ARN=arn:aws:acm:$REGION:123456789012:certificate/0a1b2c3d-1111-2222-3333-444455556666
AKID=ASIAFAKEIMDSEXAMPLE
mkdir -p "$T/objects/certs-bucket" "$T/objects/aws-ec2-enclave-certificate-$REGION-prod" "$T/objects/denied-bucket"

# An object of ACM's shape; the ciphertext is opaque bytes here (the KMS round is not in this test).
make_object() { # OUT SERIAL
        local ct
        ct=$(printf 'ciphertext-%s' "$2" | base64 -w0)
        cat >"$1" <<JSON
{"certificate":"-----BEGIN CERTIFICATE-----\\nMIIB$2\\n-----END CERTIFICATE-----\\n","certificateChain":"","encryptedPrivateKey":"$ct","encryptionMethod":"SYMMETRIC_DEFAULT"}
JSON
}

FAKE_PID=
start_fake() { # extra fake-aws options...
        stop_fake
        rm -f "$T/port" "$T/stats"
        "$FAKE_AWS" --port-file "$T/port" --objects "$T/objects" --region "$REGION" --role "$ROLE" \
                --credentials "$AKID:fakeSecretKeyForTests/0123456789:FakeSessionToken+/=" \
                --instance-profile arn:aws:iam::123456789012:instance-profile/web-profile \
                --stats "$T/stats" "$@" 2>>"$T/fake-aws.log" &
        FAKE_PID=$!
        BG_PIDS+=("$FAKE_PID")
        wait_for_file "$T/port" 10 || fail "fake-aws did not start"
        EP=http://127.0.0.1:$(cat "$T/port")
}
stop_fake() {
        if [[ -n $FAKE_PID ]]; then
                kill -TERM "$FAKE_PID" 2>/dev/null || true
                wait "$FAKE_PID" 2>/dev/null || true
                FAKE_PID=
        fi
}
stat_of() { sed -n "s/^$1=//p" "$T/stats"; }

# --- IMDS ---
start_fake --role-arn-tag "$ROLE_ARN"
check_output "IMDS: region, partition, role and its ARN from the InstanceRoleArn tag" \
        "role_arn=$ROLE_ARN" "$AWS_FETCH" imds "$EP"
grep -q '^from_tag=1$' "$T/check.out" && grep -q "^region=$REGION$" "$T/check.out" &&
        grep -q '^partition=aws$' "$T/check.out" && grep -q "^akid=${AKID}0001$" "$T/check.out" ||
        fail "IMDS answers not as served: $(cat "$T/check.out")"
ok "IMDS: every value as the fake served it"
! grep -q 'fakeSecretKey\|FakeSessionToken' "$T/check.out" || fail "a secret reached the output"
ok "IMDS: no secret printed"

start_fake
check_output "IMDS: role ARN derived from iam/info without the tag" "role_arn=$ROLE_ARN" "$AWS_FETCH" imds "$EP"
grep -q '^from_tag=0$' "$T/check.out" || fail "the ARN should not come from a tag"
ok "IMDS: derived ARN flagged as not from the tag"

start_fake --no-role
check_fails "IMDS: no instance role is one actionable line" "no IAM role attached to this instance" \
        "$AWS_FETCH" imds "$EP"
stop_fake
# Nothing listens there any more: off EC2, one line, quickly (the client's 1 s timeouts bound it).
check_fails "IMDS: off EC2 (nothing at the endpoint) says so" "no instance metadata service at $EP" \
        timeout 20 "$AWS_FETCH" imds "$EP"

# --- S3 ---
make_object "$T/objects/certs-bucket/web_site.json" 1
start_fake
check_output "S3: signed GetObject through the fake's SigV4 check" "^object=ok" \
        "$AWS_FETCH" s3 "$EP" "$EP" s3://certs-bucket/web/site.json
ETAG=$(sed -n 's/^etag=//p' "$T/check.out")
[[ $ETAG == \"*\" ]] || fail "no ETag: $ETAG"
[[ $(stat_of s3_200) == 1 && $(stat_of s3_bad_sig) == 0 ]] || fail "fake counted: $(cat "$T/stats")"
ok "S3: one 200, no signature refused"

for i in 1 2 3; do
        check_output "S3: unchanged object, conditional GET $i is a 304" "^status=304" \
                "$AWS_FETCH" s3 "$EP" "$EP" s3://certs-bucket/web/site.json "$ETAG"
done
[[ $(stat_of s3_304) == 3 && $(stat_of s3_get) == 4 && $(stat_of s3_200) == 1 ]] ||
        fail "expected 4 GETs, 3 of them 304: $(cat "$T/stats")"
ok "S3: an unchanged object costs exactly one conditional GET each time (counted at the fake)"

make_object "$T/objects/certs-bucket/web_site.json" 2
check_output "S3: a replaced object (renewal) comes back whole with a new ETag" "^status=200" \
        "$AWS_FETCH" s3 "$EP" "$EP" s3://certs-bucket/web/site.json "$ETAG"
NEW_ETAG=$(sed -n 's/^etag=//p' "$T/check.out")
[[ -n $NEW_ETAG && $NEW_ETAG != "$ETAG" ]] || fail "ETag did not change"
ok "S3: the ETag changed with the object"

make_object "$T/objects/aws-ec2-enclave-certificate-$REGION-prod/${ROLE_ARN//\//_}_${CERT_ARN//\//_}" 3
start_fake --role-arn-tag "$ROLE_ARN"
check_output "ACM: the object at <partition>-ec2-enclave-certificate-<region>-prod/<role ARN>/<certificate ARN>" \
        "^object=ok" "$AWS_FETCH" acm "$EP" "$EP" "$CERT_ARN"
grep -q "^uri=s3://aws-ec2-enclave-certificate-$REGION-prod/$ROLE_ARN/$CERT_ARN$" "$T/check.out" ||
        fail "ACM URI: $(cat "$T/check.out")"
ok "ACM: the URI is ACM's naming"

check_fails "S3 404: object missing" "no such object \(NoSuchKey\)" \
        "$AWS_FETCH" s3 "$EP" "$EP" s3://certs-bucket/missing.json
start_fake --deny denied-bucket
make_object "$T/objects/denied-bucket/k" 4
check_fails "S3 403: the role may not read it (not associated)" "access denied \(AccessDenied\).*associate" \
        "$AWS_FETCH" s3 "$EP" "$EP" s3://denied-bucket/k

head -c $((1024 * 1024 + 1)) /dev/zero | tr '\0' ' ' >"$T/objects/certs-bucket/big"
check_fails "S3: an object over 1 MiB is refused" "over 1048576 bytes" \
        "$AWS_FETCH" s3 "$EP" "$EP" s3://certs-bucket/big

start_fake --slow certs-bucket
check_fails "S3: a slow S3 times out (2 s bound), no hang" "timed out" \
        timeout 20 "$AWS_FETCH" s3 "$EP" "$EP" s3://certs-bucket/web/site.json

start_fake --clock-offset 900
check_fails "S3: clock skew reported by S3 is named" "clock skew" \
        "$AWS_FETCH" s3 "$EP" "$EP" s3://certs-bucket/web/site.json

# Credentials live 2 s: the first fetch gets generation 1; after they expired IMDS hands out
# generation 2, which S3 accepts.
start_fake --cred-ttl 2
check_output "S3 with fresh credentials" "^status=200" "$AWS_FETCH" s3 "$EP" "$EP" s3://certs-bucket/web/site.json
sleep 3
check_output "S3 after the credentials expired: IMDS refreshed them" "^status=200" \
        "$AWS_FETCH" s3 "$EP" "$EP" s3://certs-bucket/web/site.json
[[ $(stat_of cred_gen) -ge 2 && $(stat_of s3_expired) == 0 ]] || fail "credentials not rotated: $(cat "$T/stats")"
ok "credentials: a new generation after Expiration, never an expired one at S3"

# --- S3 over TLS: the fake's own test CA; the certificate names localhost only ---
rm -f "$T/tls-port" "$T/s3-ca.pem"
start_fake --tls-port-file "$T/tls-port" --ca-out "$T/s3-ca.pem"
wait_for_file "$T/tls-port" 10 || fail "fake-aws's TLS port did not open"
S3TLS=https://localhost:$(cat "$T/tls-port")
AWS_FETCH_S3_CA=$T/s3-ca.pem check_output "S3 over TLS, verified against the fake's CA" "^object=ok" \
        "$AWS_FETCH" s3 "$EP" "$S3TLS" s3://certs-bucket/web/site.json
[[ $(stat_of s3_tls) == 1 && $(stat_of tls_handshakes) == 1 ]] || fail "not over TLS: $(cat "$T/stats")"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=other-ca \
        -keyout "$T/other-ca.key" -out "$T/other-ca.pem" >/dev/null 2>&1 || fail "openssl req"
AWS_FETCH_S3_CA=$T/other-ca.pem check_fails "S3 over TLS: a CA that did not sign the certificate" \
        "^error: S3 https://localhost:[0-9]+: TLS certificate refused: " \
        "$AWS_FETCH" s3 "$EP" "$S3TLS" s3://certs-bucket/web/site.json
grep -q '^errno=129$' "$T/check.out" || fail "not EKEYREJECTED: $(cat "$T/check.out")"
check_fails "S3 over TLS: the system's CAs do not know the fake's" "TLS certificate refused" \
        "$AWS_FETCH" s3 "$EP" "$S3TLS" s3://certs-bucket/web/site.json
AWS_FETCH_S3_CA=$T/s3-ca.pem check_fails "S3 over TLS: a host name the certificate does not carry" \
        "^error: S3 https://127.0.0.1:[0-9]+: TLS certificate refused: .*127.0.0.1" \
        "$AWS_FETCH" s3 "$EP" "https://127.0.0.1:$(cat "$T/tls-port")" s3://certs-bucket/web/site.json
[[ $(stat_of s3_get) == 1 ]] || fail "a refused TLS connection reached S3's handler: $(cat "$T/stats")"
check_fails "S3 in plain HTTP to a TLS-only fake: refused by the fake" "HTTP 400 TLSRequired" \
        "$AWS_FETCH" s3 "$EP" "$EP" s3://certs-bucket/web/site.json
ok "S3 over TLS: the right CA and name accepted; another CA, the system's CAs, another name refused before any request"

stop_fake
! grep -q 'fakeSecretKey\|FakeSessionToken' "$T"/*.log "$T/check.out" 2>/dev/null || fail "a secret in a log"
ok "no secret in any log"
finish
