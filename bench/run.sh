#!/bin/bash
# Signing benchmark: starts a local enclave-token, provisions RSA-2048, P-256 and Ed25519 test keys,
# runs p11bench (module vs in-process OpenSSL, 1/2/4/8 threads, plus the PING null round trip).
# Each POLL value (microseconds; default "50 0") runs the whole table once, with
# `enclave-token --busy-poll POLL` and ENCLAVE_ACM_BUSY_POLL_USEC=POLL in the module, so polling on and
# off are compared side by side in one run. 50 is the module's default and enclave-token's on vsock (in
# an enclave, whose vCPUs serve nothing else); on a unix socket enclave-token does not poll by default.
# ROUNDS=N in the environment repeats each row N times, in-process and module alternating, and prints
# medians (p11bench --rounds). THREADS=1,2 limits the thread counts. Each row also shows the CPU time
# per operation of the benchmark process and of enclave-token: unlike ops/s, it stays comparable on a
# machine that is busy with other work.
# usage: [ROUNDS=N] bench/run.sh [BUILD_DIR] [SECONDS] [POLL...]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/build}
secs=${2:-3}
shift $(($# < 2 ? $# : 2))
polls=("$@")
((${#polls[@]} > 0)) || polls=(50 0)
export ENCLAVE_ACM_NO_MLOCK=1

for f in "$build/enclave-token/enclave-token" "$build/tools/enclave-acm" "$build/bench/p11bench" \
         "$build/p11module/enclave-acm-pkcs11.so"; do
        [ -e "$f" ] || { echo "bench/run.sh: '$f' is missing: build first (meson setup $build && ninja -C $build)" >&2; exit 1; }
done

tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

start_token() { # POLL
        "$build/enclave-token/enclave-token" --dev --busy-poll "$1" --data "unix:path=$tmp/data.sock" \
                --control "unix:path=$tmp/control.sock" 2>"$tmp/token.log" &
        pid=$!
        for _ in $(seq 100); do [ -S "$tmp/control.sock" ] && break; sleep 0.05; done
}
stop_token() {
        kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
        pid=
}

printf '123456' > "$tmp/pin"
echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) CPUs, $(openssl version), enclave-token workers = $(nproc)," \
        "load average $(cut -d' ' -f1-3 /proc/loadavg)"
for poll in "${polls[@]}"; do
        start_token "$poll"
        cases=()
        for k in rsa2048:rsa-pss ec-p256:ecdsa ed25519:eddsa; do
                name=${k%%:*}
                "$build/tools/enclave-acm" --control "unix:path=$tmp/control.sock" token add --label "$name" \
                        --pin-file "$tmp/pin" --key "$top/tests/data/$name.key.pem" \
                        --cert "$top/tests/data/$name.crt.pem" --id 1 >/dev/null
                cases+=("$name:$top/tests/data/$name.key.pem:${k#*:}")
        done
        echo
        echo "## busy poll $poll us (enclave-token --busy-poll $poll, ENCLAVE_ACM_BUSY_POLL_USEC=$poll)"
        ENCLAVE_ACM_BUSY_POLL_USEC=$poll "$build/bench/p11bench" --module "$build/p11module/enclave-acm-pkcs11.so" \
                --data "unix:path=$tmp/data.sock" --pin 123456 --seconds "$secs" --rounds "${ROUNDS:-1}" --server-pid "$pid" ${THREADS:+--threads "$THREADS"} \
                "${cases[@]}"
        stop_token
done
