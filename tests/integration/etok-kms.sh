#!/bin/bash
# The KMS key path end to end: enclave-token (no --dev) with the NSM simulator, the fake KMS on a unix
# socket (SigV4, the document against the simulator's root, a PCR0 policy, a real CMS envelope), and a
# raw control client (kms-client). Keys arrive as KMS ciphertexts, are decrypted inside the token and
# sign through the PKCS#11 module; refusals, faults, refresh, expiry and the one-document-per-round
# design are checked, and a control call stuck on a slow KMS does not stop signing.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
: "${FAKE_KMS:?}" "${KMS_CLIENT:?}" "${P11_CLIENT:?}"
require_tool openssl python3

PCR0=$(printf '5a%.0s' $(seq 48))
OTHER_PCR0=$(printf '0b%.0s' $(seq 48))
KMS_ADDR="unix:path=$T/kms.sock"
echo "AKIAIOSFODNN7EXAMPLE:wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY:it-session-token" >"$T/creds"
echo "AKIAIOSFODNN7EXAMPLE:not-the-secret-access-key-at-all:it-session-token" >"$T/bad-creds"
KMS_PID=

start_kms() { # [POLICY_PCR0]
        [[ -z $KMS_PID ]] || { kill "$KMS_PID" 2>/dev/null || true; wait "$KMS_PID" 2>/dev/null || true; }
        rm -f "$T/kms.sock" "$T/kms-ca.pem"
        "$FAKE_KMS" serve --listen "$KMS_ADDR" --ca-out "$T/kms-ca.pem" --credentials "@$T/creds" \
                --region us-east-1 --attestation-root "$T/sim-root.pem" --master-key "$T/master.key" \
                --policy-pcr "0=${1:-$PCR0}" --stats "$T/kms-stats.json" --fault-file "$T/fault" \
                >>"$T/fake-kms.log" 2>&1 &
        KMS_PID=$!
        BG_PIDS+=("$KMS_PID")
        wait_for_file "$T/kms.sock" 30 || fail "fake-kms did not start"
        wait_for_file "$T/kms-ca.pem" 30 || fail "fake-kms wrote no CA"
}

stat_of() { # FIELD: from the fake's statistics file
        python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$T/kms-stats.json" "$1"
}

kc() { # kms-client on the control socket with the test credentials
        "$KMS_CLIENT" "$CONTROL_ADDR" --creds "$T/creds" "$@"
}

# expect_line FILE PATTERN DESCRIPTION
expect_line() {
        grep -Eq -- "$2" "$1" || { cat "$1" >&2; fail "$3: no line /$2/"; }
        ok "$3"
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

sign_ok() { # LABEL KEYNAME MECH DGST: a signature through the module, verified by OpenSSL
        local sig=$T/sig.$1
        "$P11_CLIENT" "$P11_MODULE" "$1" open "login:$PIN" findkey "sign:$3:$T/data:$T/sig.$1" \
                >"$T/sign.$1.out" 2>&1 || { cat "$T/sign.$1.out" >&2; fail "token '$1' does not sign"; }
        if [[ $3 == ECDSA* ]]; then
                ecdsa_to_der "$sig" "$sig.der"
                sig=$sig.der
        fi
        openssl dgst "-$4" -verify "$TEST_DATA/$2.pub.pem" -signature "$sig" "$T/data" >/dev/null ||
                fail "token '$1': the signature does not verify with $2's public key"
}

head -c 1000 /dev/urandom >"$T/data"
"$FAKE_KMS" keygen --master-key "$T/master.key" >>"$T/fake-kms.log" 2>&1
for k in rsa2048 ec-p256 ec-p384 ed25519; do
        "$FAKE_KMS" encrypt --master-key "$T/master.key" --key-id it-key -i "$TEST_DATA/$k.key.pem" \
                -o "$T/$k.ct" >>"$T/fake-kms.log" 2>&1 || fail "fake-kms encrypt $k"
done
ok "four private keys encrypted by the fake KMS"

# One data worker: a control call that took a data worker would stop signing altogether.
start_daemon --no-dev --workers 1 --nsm-simulator --nsm-sim-pcr "0=$PCR0" --nsm-sim-root "$T/sim-root.pem" \
        --kms-proxy "$KMS_ADDR" --kms-ca "$T/kms-ca.pem"
grep -q "NSM SIMULATOR" "$T/daemon.log" || fail "the simulator warns at start"
[[ $(stat -c %a "$T/sim-root.pem") == 644 ]] || fail "--nsm-sim-root is not mode 0644"
ok "enclave-token with the NSM simulator wrote its root (0644)"
start_kms

# ATTEST: the document verifies against the simulator's root with PCR0, never against AWS's.
kc attest "$T/doc.cose" it-nonce-42 >"$T/attest.out"
expect_line "$T/attest.out" '^attest ok bytes=[0-9]+' "ATTEST answers a document"
check "the document verifies against the simulator root with PCR0" \
        "$ENCLAVE_ACM" attestation verify --root "$T/sim-root.pem" --pcr "0=$PCR0" "$T/doc.cose"
rc=0
"$ENCLAVE_ACM" attestation verify "$T/doc.cose" >"$T/verify-aws.out" 2>&1 || rc=$?
[[ $rc -eq 7 ]] || { cat "$T/verify-aws.out" >&2; fail "a simulator document against the AWS root: exit $rc, expected 7"; }
ok "the simulator's document does not verify against the AWS root (exit 7)"

# Plaintext keys without --dev: DENIED, nothing provisioned.
kc add-plain plain "$PIN" 0 "1:$TEST_DATA/ec-p256.key.pem:$TEST_DATA/ec-p256.crt.pem" >"$T/plain.out"
expect_line "$T/plain.out" '^add-plain denied' "plaintext TOKEN_ADD without --dev is DENIED"
# Ciphertexts without KMS_BEGIN: NO_KMS_ROUND.
kc add web "$PIN" 0 "1:$T/rsa2048.ct:$TEST_DATA/rsa2048.crt.pem" >"$T/noround.out"
expect_line "$T/noround.out" '^add no-kms-round' "ciphertexts without KMS_BEGIN: NO_KMS_ROUND"

# One round, three tokens, four keys: one document, one TLS connection, four Decrypts.
kc begin add web "$PIN" 3600 "1:$T/rsa2048.ct:$TEST_DATA/rsa2048.crt.pem" \
        add ec "$PIN" 0 "1:$T/ec-p256.ct:$TEST_DATA/ec-p256.crt.pem" \
        add multi "$PIN" 0 "1:$T/ec-p384.ct:$TEST_DATA/ec-p384.crt.pem,2:$T/ed25519.ct:$TEST_DATA/ed25519.crt.pem" \
        describe web end >"$T/round.out"
expect_line "$T/round.out" '^begin ok parent_time=0' "KMS_BEGIN opens a round with the enclave's clock"
expect_line "$T/round.out" '^add ok slot=[0-9]+ expires=[1-9]' "TOKEN_ADD from a KMS ciphertext, with an expiry"
[[ $(grep -c '^add ok' "$T/round.out") -eq 3 ]] || { cat "$T/round.out" >&2; fail "three tokens added"; }
web_expires=$(sed -n 's/^describe ok found=1 expires=\([0-9]*\)$/\1/p' "$T/round.out")
[[ -n $web_expires && $web_expires -gt $(date +%s) ]] || { cat "$T/round.out" >&2; fail "DESCRIBE gives web's expiry"; }
ok "DESCRIBE shows the token's expiry"
ec_expires=$(sed -n 's/^add ok slot=[0-9]* expires=\([0-9]*\)$/\1/p' "$T/round.out" | sed -n 2p)
now=$(date +%s)
((ec_expires >= now + 47 * 3600 && ec_expires <= now + 48 * 3600 + 60)) ||
        fail "ttl 0 for a KMS token is 48 h (expires $ec_expires, now $now)"
ok "ttl 0 for a KMS token means 48 hours"
[[ $(stat_of connections) -eq 1 && $(stat_of handshakes) -eq 1 ]] ||
        { cat "$T/kms-stats.json" >&2; fail "one round made more than one TLS connection"; }
[[ $(stat_of documents) -eq 1 && $(stat_of requests) -eq 4 ]] ||
        { cat "$T/kms-stats.json" >&2; fail "one round: 1 document and 4 Decrypts expected"; }
ok "the fake KMS saw one TLS connection, one document and four Decrypts for the round"
expect_line "$T/daemon.log" 'KMS round ended: 1 attestation document\(s\), 1 TLS connection\(s\), 4 Decrypt' \
        "enclave-token counted one document and one connection for the round"

sign_ok web rsa2048 SHA256-RSA-PKCS sha256
sign_ok ec ec-p256 ECDSA-SHA256 sha256
ok "the decrypted RSA and EC keys sign through the PKCS#11 module"

# A ciphertext of another token's key under this certificate: KEY_INVALID, the log names the token.
kc begin add swap "$PIN" 0 "1:$T/ec-p256.ct:$TEST_DATA/rsa2048.crt.pem" describe swap end >"$T/swap.out"
expect_line "$T/swap.out" '^add key-invalid' "another token's key under this certificate: KEY_INVALID"
expect_line "$T/swap.out" '^describe ok found=0' "no token 'swap' was made"
expect_line "$T/daemon.log" "Token 'swap': the decrypted key of key id 1 does not match its certificate" \
        "the log line names the token and the key id"

# TOKEN_REFRESH: the same key extends the expiry; another key is KEY_INVALID; a wrong PIN first.
kc begin refresh web "$PIN" 7200 "1:$T/rsa2048.ct" refresh web "$PIN" 0 "1:$T/ec-p256.ct" \
        refresh web "$WRONG_PIN" 0 "1:$T/rsa2048.ct" describe web end >"$T/refresh.out"
new_expires=$(sed -n 's/^refresh ok expires=\([0-9]*\)$/\1/p' "$T/refresh.out")
[[ -n $new_expires && $new_expires -ge $((web_expires + 3600)) ]] ||
        { cat "$T/refresh.out" >&2; fail "refresh moves the expiry (was $web_expires)"; }
ok "TOKEN_REFRESH extends the expiry ($web_expires -> $new_expires)"
expect_line "$T/refresh.out" '^refresh key-invalid' "a refresh with another key is KEY_INVALID"
expect_line "$T/refresh.out" '^refresh pin-incorrect' "a refresh with a wrong PIN is PIN_INCORRECT"
expect_line "$T/refresh.out" "^describe ok found=1 expires=$new_expires\$" "DESCRIBE shows the refreshed expiry"
sign_ok web rsa2048 SHA256-RSA-PKCS sha256

# KMS refusals map to their statuses; nothing is provisioned.
for f in "access-denied:kms-denied" "expired-token:kms-denied" "bad-ciphertext:kms-ciphertext" \
        "garbage:kms-error" "throttle:kms-unavailable" "internal:kms-unavailable" "close:kms-unavailable"; do
        echo "${f%%:*}" >"$T/fault"
        kc begin add "f-${f%%:*}" "$PIN" 0 "1:$T/ec-p256.ct:$TEST_DATA/ec-p256.crt.pem" \
                describe "f-${f%%:*}" end >"$T/fault.out"
        expect_line "$T/fault.out" "^add ${f#*:}\$|^add ${f#*:} " "fault ${f%%:*}: ${f#*:}"
        expect_line "$T/fault.out" '^describe ok found=0' "fault ${f%%:*}: no token"
done
: >"$T/fault"
expect_line "$T/daemon.log" 'KMS Decrypt at kms.us-east-1.amazonaws.com failed \(kms-denied\) after 1 attempt\(s\): HTTP 400 AccessDeniedException' \
        "the log line carries the AWS error type"
expect_line "$T/daemon.log" 'failed \(kms-unavailable\) after 3 attempt\(s\): HTTP [0-9]+ ThrottlingException' \
        "throttling is retried three times"
"$KMS_CLIENT" "$CONTROL_ADDR" --creds "$T/bad-creds" begin add badcreds "$PIN" 0 \
        "1:$T/ec-p256.ct:$TEST_DATA/ec-p256.crt.pem" end >"$T/badcreds.out"
expect_line "$T/badcreds.out" '^add kms-denied' "a wrong secret key (SigV4 mismatch): KMS_DENIED"

# A slow KMS: the control call runs into its bound (KMS_UNAVAILABLE) while signing goes on.
echo "slow=8000" >"$T/fault"
start=$SECONDS
rounds=$(grep -c 'KMS round opened' "$T/daemon.log" || true)
kc begin add slow "$PIN" 0 "1:$T/ec-p256.ct:$TEST_DATA/ec-p256.crt.pem" describe slow end >"$T/slow.out" &
slow_pid=$!
# Its round is open (the key made, the document signed): the Decrypt is on its way to the slow KMS.
for ((i = 0; i < 300; i++)); do
        (($(grep -c 'KMS round opened' "$T/daemon.log" || true) > rounds)) && break
        sleep 0.1
done
sleep 0.5
sign_ok ec ec-p256 ECDSA-SHA256 sha256
sign_ok web rsa2048 SHA256-RSA-PKCS sha256
kill -0 "$slow_pid" 2>/dev/null || { cat "$T/slow.out" >&2; fail "the slow control call ended before the signatures"; }
ok "with one data worker, tokens sign while a control call waits on a slow KMS"
wait "$slow_pid" || fail "kms-client (slow) failed"
expect_line "$T/slow.out" '^add kms-unavailable' "a slow KMS: KMS_UNAVAILABLE"
expect_line "$T/slow.out" '^describe ok found=0' "a slow KMS: no token"
echo "# slow KMS: KMS_UNAVAILABLE after $((SECONDS - start)) s (bound: 3 attempts of 3 s, back-off)"
: >"$T/fault"

# KMS unreachable: the fake is gone.
kill "$KMS_PID"
wait "$KMS_PID" 2>/dev/null || true
kc begin add gone "$PIN" 0 "1:$T/ec-p256.ct:$TEST_DATA/ec-p256.crt.pem" end >"$T/gone.out"
expect_line "$T/gone.out" '^add kms-unavailable' "KMS unreachable: KMS_UNAVAILABLE"
sign_ok ec ec-p256 ECDSA-SHA256 sha256

# A PCR0 the key policy does not allow: KMS_DENIED, no token.
KMS_PID=
start_kms "$OTHER_PCR0"
kc begin add pcr "$PIN" 0 "1:$T/ec-p256.ct:$TEST_DATA/ec-p256.crt.pem" describe pcr end >"$T/pcr.out"
expect_line "$T/pcr.out" '^add kms-denied' "PCR0 not in the key policy: KMS_DENIED"
expect_line "$T/pcr.out" '^describe ok found=0' "PCR0 not in the key policy: no token"
start_kms

# per_key (the benchmark's ACM-like variant): a key, document and connection per Decrypt.
c0=$(stat_of connections)
kc --per-key begin add pk "$PIN" 0 "1:$T/ec-p384.ct:$TEST_DATA/ec-p384.crt.pem,2:$T/ed25519.ct:$TEST_DATA/ed25519.crt.pem" \
        end >"$T/perkey.out"
expect_line "$T/perkey.out" '^add ok' "per_key round provisions"
[[ $(($(stat_of connections) - c0)) -eq 2 && $(stat_of documents) -eq 2 ]] ||
        { cat "$T/kms-stats.json" >&2; fail "per_key: 2 connections and 2 documents expected"; }
ok "per_key: a TLS connection and a document per Decrypt"

# Expiry: a token with a short ttl leaves; an open session gets CKR_TOKEN_NOT_PRESENT; re-added, same
# slot. The ttl leaves the client time to start, log in and sign first (valgrind: much more time).
ttl=5
[[ -n $VALGRIND ]] && ttl=60
kc begin add short "$PIN" "$ttl" "1:$T/ec-p256.ct:$TEST_DATA/ec-p256.crt.pem" end >"$T/short.out"
expect_line "$T/short.out" '^add ok' "a token with ttl $ttl s"
short_slot=$(sed -n 's/^add ok slot=\([0-9]*\) .*/\1/p' "$T/short.out")
"$P11_CLIENT" "$P11_MODULE" short open "login:$PIN" findkey "sign:ECDSA-SHA256:$T/data:$T/sig.short" \
        "touch:$T/signed" "wait:$T/expired" expect:CKR_TOKEN_NOT_PRESENT "sign:ECDSA-SHA256:$T/data:$T/sig.short2" \
        >"$T/expire.out" 2>&1 &
p11_pid=$!
wait_for_file "$T/signed" 60 || { cat "$T/expire.out" >&2; fail "the short token did not sign"; }
for ((i = 0; i < (ttl + 30) * 10; i++)); do
        kc describe short >"$T/desc.out"
        grep -q 'found=0' "$T/desc.out" && break
        sleep 0.1
done
grep -q 'found=0' "$T/desc.out" || fail "the ttl $ttl s token did not expire"
ok "an expired token leaves DESCRIBE"
touch "$T/expired"
wait "$p11_pid" || { cat "$T/expire.out" >&2; fail "signing with an expired token is not CKR_TOKEN_NOT_PRESENT"; }
ok "the module answers CKR_TOKEN_NOT_PRESENT for an expired token"
expect_line "$T/daemon.log" '1 token\(s\) expired, keys wiped' "the expiry is logged"
kc begin add short "$PIN" 0 "1:$T/ec-p256.ct:$TEST_DATA/ec-p256.crt.pem" end >"$T/short2.out"
expect_line "$T/short2.out" "^add ok slot=$short_slot " "provisioned again, the token has the same slot id"
sign_ok short ec-p256 ECDSA-SHA256 sha256

# A round ends with the connection: nothing logs a credential.
! grep -q 'wJalrXUtnFEMI' "$T/daemon.log" || fail "the secret access key is in enclave-token's log"
! grep -q 'it-session-token' "$T/daemon.log" || fail "the session token is in enclave-token's log"
ok "no credential in enclave-token's log"
finish
