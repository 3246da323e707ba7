#!/bin/bash
# enclave-acm-agent's configuration for the KMS key path, and its first KMS round without credentials:
# - enclave.nsm_simulator with the nitro-cli launcher is refused (by --check-config and at start);
# - a File source with both key and encrypted_key is refused;
# - nitro-cli with an encrypted_key and no PCRs at all (no expected_pcrs, no image-measurements.json) is
#   refused; with an image-measurements.json beside the EIF it is valid;
# - the local launcher with nsm_simulator and an encrypted_key, and no AWS credentials in the agent's
#   environment: the first round logs one clear line naming what is missing (never the secret that is
#   set), the agent keeps running and retries with back-off, the token's error is in the state file;
# - enclave-acm attestation get, reaching that enclave through the agent's state file, writes a document
#   with the given nonce and the PCR0 the simulator was told to report, which attestation verify accepts
#   against the simulator's root.
# The full encrypted provisioning (simulated NSM, fake KMS) is the e2e of issue 13's merge, not here.
# Plain script: exit 0 pass, 77 skip, anything else fail.
set -euo pipefail
. "$(dirname "$0")/agent-lib.sh"

: "${AGENT:?}" "${ENCLAVE_TOKEN:?}" "${TEST_DATA:?}" "${ENCLAVE_ACM:?}"
command -v python3 >/dev/null 2>&1 || { echo "SKIP: 'python3' is not installed"; exit 77; }

if [[ ${ENCLAVE_ACM_UNDER_VALGRIND:-} == 1 && -z ${EACM_IT_REEXEC:-} ]]; then
        EACM_IT_REEXEC=1 exec bash "$0" "$@"
fi

AGENT_PID='' NOTIFY_PID=''
T=$(mktemp -d /tmp/eacm-kmscfg.XXXXXX)
cleanup() {
        local rc=$?
        trap - EXIT
        cleanup_agent "$rc" "$T/agent.log" "$T/check.out"
        rm -rf "$T"
        exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$T/run" "$T/state" "$T/eif"
export ENCLAVE_ACM_NO_MLOCK=1
PCR_A=3a4b5c6d7e8f9a0b1c2d3e4f5061728394a5b6c7d8e9fa0b1c2d3e4f5061728394a5b6c7d8e9fa0b1c2d3e4f50617283
# Not a real KMS ciphertext (the round never gets to send it here): a blob shaped like one, base64.
head -c 300 /dev/urandom | base64 -w0 >"$T/web.key.kms"

# check_refused FILE PATTERN DESCRIPTION: --check-config exits 1 and names PATTERN.
check_refused() {
        local rc=0
        "$AGENT" --check-config --config "$1" >"$T/check.out" 2>&1 || rc=$?
        [[ $rc == 1 ]] || fail "$3: --check-config exited $rc, expected 1"
        grep -q -- "$2" "$T/check.out" || fail "$3: the output does not say '$2'"
        ok "$3"
}

# 1. nsm_simulator with nitro-cli
cat >"$T/nitro-sim.yaml" <<EOF
enclave:
  cpu_count: 2
  memory_mib: 256
  nsm_simulator: true
  expected_pcrs: {0: $PCR_A}
tokens:
  - label: web
    source: {File: {encrypted_key: $T/web.key.kms, certificate: $TEST_DATA/rsa2048.crt.pem}}
EOF
check_refused "$T/nitro-sim.yaml" \
        "nitro-sim.yaml:4:3: error: enclave.nsm_simulator: not allowed with enclave.launcher: nitro-cli" \
        "nsm_simulator with the nitro-cli launcher is refused, with file:line:column"
# ... and the service refuses to start with it (exit status 1, nothing launched)
rc=0
timeout 20 "$AGENT" --config "$T/nitro-sim.yaml" >"$T/check.out" 2>&1 || rc=$?
[[ $rc == 1 ]] || fail "the agent started with nsm_simulator under nitro-cli (exit status $rc)"
grep -q "enclave.nsm_simulator: not allowed" "$T/check.out" || fail "the agent's refusal does not name the key"
ok "the agent does not start with nsm_simulator under nitro-cli"

# 2. key and encrypted_key both
cat >"$T/both.yaml" <<EOF
enclave:
  launcher: local
  nsm_simulator: true
  token_binary: $ENCLAVE_TOKEN
tokens:
  - label: web
    source:
      File:
        key: $TEST_DATA/rsa2048.key.pem
        encrypted_key: $T/web.key.kms
        certificate: $TEST_DATA/rsa2048.crt.pem
EOF
check_refused "$T/both.yaml" "error: tokens\[0\].source.File.encrypted_key: give either key" \
        "a File source with both key and encrypted_key is refused"

# 3. nitro-cli, encrypted_key, no PCRs anywhere; then image-measurements.json beside the EIF
cat >"$T/nitro-nopcr.yaml" <<EOF
enclave:
  cpu_count: 2
  memory_mib: 256
  image_path: $T/eif/enclave-acm.eif
tokens:
  - label: web
    source: {File: {encrypted_key: $T/web.key.kms, certificate: $TEST_DATA/rsa2048.crt.pem}}
EOF
check_refused "$T/nitro-nopcr.yaml" "nothing says which enclave image may receive the AWS credentials" \
        "nitro-cli with an encrypted key and no expected PCRs is refused"
printf '{"Measurements": {"HashAlgorithm": "Sha384 { ... }", "PCR0": "%s", "PCR1": "%s", "PCR2": "%s"}}\n' \
        "$PCR_A" "$PCR_A" "$PCR_A" >"$T/eif/image-measurements.json"
"$AGENT" --check-config --config "$T/nitro-nopcr.yaml" >"$T/check.out" 2>&1 ||
        fail "image-measurements.json beside the EIF is not taken: $(cat "$T/check.out")"
ok "image-measurements.json beside enclave.image_path provides the expected PCRs"
printf '{"Measurements": {"HashAlgorithm": "Sha384 { ... }", "PCR0": "%s"}}\n' "$PCR_A" \
        >"$T/eif/image-measurements.json"
check_refused "$T/nitro-nopcr.yaml" "image-measurements.json': line 1 column .*has no PCR1" \
        "a broken image-measurements.json is an error naming the file and the place"

# 3b. what `enclave-acm eif build` writes beside an EIF, and `eif describe --json`, are measurements the agent
# takes (the shapes of nitro-cli build-enclave and describe-eif)
head -c 4096 /dev/urandom >"$T/eif2-kernel"
mkdir -p "$T/eif2-rd" "$T/eif2"
echo init >"$T/eif2-rd/init"
"$ENCLAVE_ACM" eif build --kernel "$T/eif2-kernel" --cmdline "console=ttyS0" --ramdisk-dir "$T/eif2-rd" \
        --output "$T/eif2/enclave-acm.eif" >"$T/check.out" 2>&1 || fail "eif build: $(cat "$T/check.out")"
[[ -s $T/eif2/image-measurements.json ]] || fail "eif build wrote no image-measurements.json"
sed "s|$T/eif/enclave-acm.eif|$T/eif2/enclave-acm.eif|" "$T/nitro-nopcr.yaml" >"$T/nitro-eif.yaml"
"$AGENT" --check-config --config "$T/nitro-eif.yaml" >"$T/check.out" 2>&1 ||
        fail "eif build's image-measurements.json is not taken: $(cat "$T/check.out")"
"$ENCLAVE_ACM" eif describe "$T/eif2/enclave-acm.eif" --json >"$T/eif2/image-measurements.json" 2>"$T/check.out" ||
        fail "eif describe: $(cat "$T/check.out")"
"$AGENT" --check-config --config "$T/nitro-eif.yaml" >"$T/check.out" 2>&1 ||
        fail "eif describe --json is not taken as measurements: $(cat "$T/check.out")"
ok "the measurements enclave-acm eif build and eif describe --json write are taken"

# 4. the local launcher, the simulator, an encrypted key, no credentials
# A build without the simulator (-Dnsm_simulator=false, the enclave image's) cannot run this part; an
# enclave-token with the simulator but without the switches the agent passes is a failure.
help=$("$ENCLAVE_TOKEN" --help 2>&1 || true)
if ! grep -q -- "--nsm-simulator" <<<"$help"; then
        echo "SKIP: enclave-token is built without the NSM simulator (-Dnsm_simulator=false)"
        exit 77
fi
for opt in --nsm-sim-root --nsm-sim-pcr; do
        grep -q -- "$opt" <<<"$help" ||
                fail "enclave-token has --nsm-simulator but not $opt, which the agent's local launcher passes"
done
cat >"$T/acm.yaml" <<EOF
enclave:
  launcher: local
  token_binary: $ENCLAVE_TOKEN
  boot_timeout_ms: 10000
  nsm_simulator: true
  expected_pcrs: {0: $PCR_A}
options:
  runtime_dir: $T/run
  state_dir: $T/state
  sync_interval_secs: 600
log:
  level: debug
tokens:
  - label: web
    source:
      File:
        encrypted_key: $T/web.key.kms
        certificate: $TEST_DATA/rsa2048.crt.pem
EOF
"$AGENT" --check-config --config "$T/acm.yaml" >"$T/check.out" 2>&1 || fail "$(cat "$T/check.out")"
ok "the local launcher with nsm_simulator and an encrypted key is a valid configuration"

start_notify_listener
# A secret that is set must never show up; the access key id is what is missing.
SECRET=itSecretKMSvalue0123456789abcdefXYZ/+
env -u AWS_ACCESS_KEY_ID -u AWS_SESSION_TOKEN -u AWS_PROFILE AWS_SECRET_ACCESS_KEY="$SECRET" \
        AWS_REGION=eu-west-1 NOTIFY_SOCKET="$T/notify.sock" \
        "$AGENT" --config "$T/acm.yaml" >"$T/agent.log" 2>&1 &
AGENT_PID=$!

grep -q "NSM simulator: attestation proves nothing; for development and tests only" "$T/agent.log" ||
        wait_for 10 "the simulator warning" grep -q "NSM simulator: attestation proves nothing" "$T/agent.log"
ok "the agent warns loudly that the NSM simulator proves nothing"
wait_for 30 "the enclave is up" grep -q "Enclave up" "$T/agent.log"
wait_for 20 "the first round names the missing credential" \
        grep -q "KMS round: AWS credentials: AWS_ACCESS_KEY_ID is not set" "$T/agent.log"
wait_for 10 "the first attempt's end" grep -q "Token 'web': attempt 1 failed" "$T/agent.log"
# up to the end of the first attempt: one line, the round's (the token's own line adds no second one)
first=$(sed -n "1,/Token 'web': attempt 1 failed/p" "$T/agent.log" | grep -c "AWS_ACCESS_KEY_ID is not set" || true)
[[ $first == 1 ]] || fail "the first round logged $first lines about the missing credential, expected 1"
ok "the first round fails with one line naming AWS_ACCESS_KEY_ID"
grep "AWS_ACCESS_KEY_ID is not set" "$T/agent.log" | grep -q "^<3>" ||
        fail "the credential line is not logged at error priority"

# back-off: a second attempt a second or two later, the agent still running
wait_for 20 "a retry" grep -q "Token 'web': attempt 2 failed" "$T/agent.log"
alive "$AGENT_PID" || fail "the agent died after a round without credentials"
grep -q "Token 'web': attempt 1 failed, retrying in 1 s" "$T/agent.log" ||
        fail "the first failure is not retried with the back-off"
ok "the agent keeps running and retries with back-off"

wait_for 10 "the state file names the error" grep -q "AWS_ACCESS_KEY_ID" "$T/run/status"
ok "the state file shows the token's error"
# missing credentials need the operator: systemd still gets READY=1 (or it would kill the agent)
wait_for 10 "READY=1" grep -q "READY=1" "$T/notify.log"
grep "STATUS=" "$T/notify.log" | tail -1 | grep -q "'web' failed: AWS credentials: AWS_ACCESS_KEY_ID is not set" ||
        fail "STATUS= does not name the missing credential: $(grep STATUS= "$T/notify.log" | tail -1)"
ok "systemd gets READY=1 and a STATUS= naming the missing credential"

# nothing was sent: no attestation was asked for, no KMS round begun
grep -q "KMS round open" "$T/agent.log" && fail "a KMS round began without credentials"
if grep -rq -- "$SECRET" "$T/agent.log" "$T/run" "$T/notify.log"; then
        fail "the secret access key shows up in the agent's output"
fi
ok "the secret access key appears nowhere"

# enclave-acm attestation get: a fresh document from the simulated NSM, found through the agent's state
# file, with our nonce and the PCR0 the agent made the simulator report; verified against its root
NONCE=00112233445566778899aabbccddeeff
"$ENCLAVE_ACM" attestation get --runtime-dir "$T/run" --nonce "$NONCE" -o "$T/doc.cose" >"$T/get.out" 2>&1 ||
        fail "attestation get: $(cat "$T/get.out")"
[[ -s $T/doc.cose ]] || fail "attestation get wrote nothing"
"$ENCLAVE_ACM" attestation verify "$T/doc.cose" --root "$T/run/nsm-sim-root.pem" --pcr "0=$PCR_A" --json \
        >"$T/verify.json" 2>&1 || fail "the document does not verify: $(cat "$T/verify.json")"
python3 -c 'import json, sys; n = json.load(open(sys.argv[1]))["nonce"]; sys.exit(n != {"kind": "bytes", "length": 16})' \
        "$T/verify.json" || fail "the document does not carry a 16-byte nonce: $(cat "$T/verify.json")"
ok "attestation get writes a document with our nonce and PCR0 that verifies against the simulator's root"
rc=0
"$ENCLAVE_ACM" attestation get --runtime-dir "$T/run" >"$T/get.out" 2>&1 </dev/null || rc=$?
[[ $rc == 0 && -s $T/get.out ]] || fail "attestation get to a pipe: exit status $rc"
ok "attestation get writes to a pipe"

stop_agent
ok "the agent stops cleanly (exit status 0)"
echo "$CHECKS checks passed"
