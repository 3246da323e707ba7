#!/bin/bash
# enclave-acm-agent with the nitro-cli launcher against tests/data/fake-nitro-cli: the arguments of
# run-enclave, the JSON it prints, READY=1, an enclave that dies (its ProcessID killed) relaunched with
# the dead one terminated, and terminate-enclave on SIGTERM. Exit 0 pass, 77 skip, anything else fail.
set -euo pipefail
. "$(dirname "$0")/agent-lib.sh"

: "${AGENT:?}" "${ENCLAVE_TOKEN:?}" "${TEST_DATA:?}"
command -v python3 >/dev/null 2>&1 || { echo "SKIP: 'python3' is not installed"; exit 77; }

AGENT_PID= NOTIFY_PID=

T=$(mktemp -d /tmp/eacm-nitro.XXXXXX)
cleanup() {
        local rc=$? f
        trap - EXIT
        [[ -n $AGENT_PID ]] && kill -TERM "$AGENT_PID" 2>/dev/null && sleep 1 || true
        [[ -n $AGENT_PID ]] && kill -KILL "$AGENT_PID" 2>/dev/null || true
        for f in "$T"/state/i-*; do [[ -f $f ]] && kill -KILL "$(cat "$f")" 2>/dev/null || true; done
        [[ -n $NOTIFY_PID ]] && kill "$NOTIFY_PID" 2>/dev/null || true
        if [[ $rc -ne 0 && $rc -ne 77 ]]; then
                for f in "$T"/agent.log "$T"/nitro-cli.log "$T"/notify.log; do
                        [[ -s $f ]] && { echo "--- $f (last 30 lines) ---" >&2; tail -n 30 "$f" >&2; } || true
                done
        fi
        keep_logs "$T"
        rm -rf "$T"
        exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM


mkdir -p "$T/bin" "$T/state" "$T/vsock" "$T/run" "$T/agent-state"
ln -s "$TEST_DATA/fake-nitro-cli" "$T/bin/nitro-cli"
export PATH=$T/bin:$PATH FAKE_NITRO_LOG=$T/nitro-cli.log FAKE_NITRO_STATE=$T/state
export ENCLAVE_ACM_TEST_VSOCK_DIR=$T/vsock ENCLAVE_TOKEN ENCLAVE_ACM_NO_MLOCK=1 FAKE_NITRO_PORTS="7001 7002"

cat >"$T/acm.yaml" <<EOF
enclave:
  launcher: nitro-cli
  image_path: /usr/share/enclave-acm/test.eif
  cpu_count: 2
  memory_mib: 512
  cid: 21
  p11kit_port: 7001
  rpc_port: 7002
  boot_timeout_ms: 10000
options:
  service: nginx
  runtime_dir: $T/run
  state_dir: $T/agent-state
  # never the real IMDS: nothing listens on the discard port, so the Acm source fails at once
  imds_endpoint: http://127.0.0.1:9
log:
  level: debug
tokens:
  - label: acm
    source:
      Acm:
        certificate_arn: arn:aws:acm:us-east-1:123456789012:certificate/00000000-0000-0000-0000-000000000000
EOF
"$AGENT" --config "$T/acm.yaml" --check-config >"$T/check.log" 2>&1 || { cat "$T/check.log"; fail "--check-config"; }

start_notify_listener

NOTIFY_SOCKET=$T/notify.sock "$AGENT" --config "$T/acm.yaml" >"$T/agent.log" 2>&1 &
AGENT_PID=$!
wait_for 30 "READY=1" grep -q 'READY=1' "$T/notify.log"
ok "READY=1 with the nitro-cli launcher"
[[ $(head -n 1 "$T/nitro-cli.log") == "run-enclave --eif-path /usr/share/enclave-acm/test.eif --cpu-count 2 --memory 512 --enclave-cid 21" ]] ||
        fail "run-enclave arguments: $(head -n 1 "$T/nitro-cli.log")"
ok "nitro-cli run-enclave got --eif-path, --cpu-count, --memory, --enclave-cid"
[[ $(cat "$T/run/address") == "unix:path=$T/vsock/vsock-21-7001.sock" ]] || fail "address file: $(cat "$T/run/address")"
grep -q "nitro-cli started enclave 'i-0123456789abcdef0-enc00000000000001' (CID 21, process" "$T/agent.log" ||
        fail "the agent did not report EnclaveID/EnclaveCID from the JSON"
ok "JSON parsed: EnclaveID, EnclaveCID (data address for CID 21, p11kit_port 7001), ProcessID"
wait_for 20 "the Acm token's failure in STATUS=" \
        grep -q "STATUS=.*'acm' failed: .*no instance metadata service at http://127.0.0.1:9" "$T/notify.log"
ok "STATUS= names the Acm token and why it failed (no IMDS: not on EC2)"

# The enclave dies: detected through its ProcessID, terminated, relaunched.
ID1=i-0123456789abcdef0-enc00000000000001
kill -KILL "$(cat "$T/state/$ID1")"
wait_for 20 "a second run-enclave" bash -c "(( \$(grep -c '^run-enclave' '$T/nitro-cli.log') == 2 ))"
grep -q "Enclave '$ID1' died" "$T/agent.log" || fail "the death was not logged"
grep -q "^terminate-enclave --enclave-id $ID1\$" "$T/nitro-cli.log" || fail "the dead enclave was not terminated"
wait_for 20 "the second enclave answers" grep -q 'launch 2)' "$T/agent.log"
alive "$AGENT_PID" || fail "the agent exited"
ok "enclave death detected (ProcessID gone): terminate-enclave, then relaunched"

# SIGTERM: terminate-enclave for the running one, exit 0.
ID2=i-0123456789abcdef0-enc00000000000002
PID2=$(cat "$T/state/$ID2")
stop_agent
grep -q "^terminate-enclave --enclave-id $ID2\$" "$T/nitro-cli.log" || fail "no terminate-enclave on SIGTERM"
wait_for 5 "the enclave process ends" bash -c "! kill -0 $PID2 2>/dev/null || grep -q '^[^ ]* ([^)]*) Z' /proc/$PID2/stat"
ok "SIGTERM: terminate-enclave --enclave-id $ID2, exit 0"

# Upgrade: a new image_path and SIGHUP. The allocator (ENCLAVE_ACM_TEST_ALLOCATOR stands in for
# /etc/nitro_enclaves/allocator.yaml) first has room for one enclave: the agent says so and restarts it;
# then for two: the new one runs next to the old one on another CID (the configured one is taken), the
# address file moves to it, and the old one is terminated after the drain (vsock: not counted).
set_image() {
        sed -i "s|^  image_path: .*|  image_path: $1|" "$T/acm.yaml"
        grep -q '^  upgrade_drain_secs:' "$T/acm.yaml" ||
                sed -i 's|^options:$|options:\n  upgrade_drain_secs: 1\n  health_interval_secs: 1\n  health_timeout_ms: 1000|' "$T/acm.yaml"
}
printf 'memory_mib: 512\ncpu_count: 2\n' >"$T/allocator.yaml"
set_image /usr/share/enclave-acm/test.eif
"$AGENT" --config "$T/acm.yaml" --check-config >"$T/check.log" 2>&1 || { cat "$T/check.log"; fail "--check-config"; }
ENCLAVE_ACM_TEST_ALLOCATOR=$T/allocator.yaml NOTIFY_SOCKET= "$AGENT" --config "$T/acm.yaml" >"$T/agent-up.log" 2>&1 &
AGENT_PID=$!
wait_for 20 "an enclave is up" grep -q 'Enclave up (nitro-cli launcher' "$T/agent-up.log"
set_image /usr/share/enclave-acm/test-v2.eif
kill -HUP "$AGENT_PID"
wait_for 20 "no room: restart" grep -q 'no room for a second enclave (the allocator reserves 512 MiB and 2 CPUs, 1 enclave use 512 MiB and 2 CPUs, the new one needs 512 MiB and 2 CPUs): restarting' "$T/agent-up.log"
wait_for 20 "the restarted enclave" bash -c "(( \$(grep -c 'Enclave up (nitro-cli launcher' '$T/agent-up.log') == 2 ))"
grep -q '^describe-enclaves$' "$T/nitro-cli.log" || fail "no describe-enclaves before the restart"
grep -q "^run-enclave --eif-path /usr/share/enclave-acm/test-v2.eif .* --enclave-cid 21\$" "$T/nitro-cli.log" ||
        fail "the restart did not run the new image on CID 21"
ok "upgrade without room for two (allocator 512 MiB / 2 CPUs): said so, restarted with the new image"
printf -- '---\nmemory_mib: 1024 # two\ncpu_pool: 1,3,5-6\n' >"$T/allocator.yaml"
set_image /usr/share/enclave-acm/test-v3.eif
OLDPID=$(cat "$(grep -l . "$T"/state/i-* | tail -n 1)")
kill -HUP "$AGENT_PID"
wait_for 30 "the upgrade ends" grep -q 'Enclave upgrade done' "$T/agent-up.log"
grep -q "^run-enclave --eif-path /usr/share/enclave-acm/test-v3.eif --cpu-count 2 --memory 512\$" "$T/nitro-cli.log" ||
        fail "the upgrade's run-enclave: $(grep '^run-enclave' "$T/nitro-cli.log" | tail -n 1)"
[[ $(cat "$T/run/address") == "unix:path=$T/vsock/vsock-16-7001.sock" ]] || fail "address file: $(cat "$T/run/address")"
grep -q "Enclave upgrade: every token is provisioned in the new enclave" "$T/agent-up.log" || fail "no upgrade step logged"
wait_for 10 "the old enclave ends" bash -c "! kill -0 $OLDPID 2>/dev/null"
ok "upgrade with room for two (1024 MiB / 4 CPUs): new image on CID 16 next to the old one, address file moved, the old one terminated"
stop_agent

# run-enclave failing (no allocator): logged with nitro-cli's message, retried, the agent stays up.
FAKE_NITRO_FAIL=1 NOTIFY_SOCKET= "$AGENT" --config "$T/acm.yaml" >"$T/agent-fail.log" 2>&1 &
AGENT_PID=$!
wait_for 20 "the failure is logged" grep -q 'Insufficient memory requested' "$T/agent-fail.log"
wait_for 20 "a retry" grep -q 'attempt 2' "$T/agent-fail.log"
alive "$AGENT_PID" || fail "the agent exited after run-enclave failed"
ok "run-enclave failure: nitro-cli's error logged, retried with back-off, the agent keeps running"

echo "1..$CHECKS"
