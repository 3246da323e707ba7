#!/bin/bash
# Counters on the signing path: the signing rate through the module of two builds side by side, BASE
# (without enclave-token's counters) and NEW (with them), alternating build by build within each round
# (the order flips every round), each with its own enclave-token and module, so the machine's load
# drifts into both alike. Prints each round's module ops/s per key and thread count, then per row the
# median over the rounds of NEW/BASE and its spread (min..max).
# usage: [ROUNDS=N] [POLL=us] bench/counters.sh BASE_BUILD NEW_BUILD [SECONDS] [THREADS]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
base=${1:?usage: bench/counters.sh BASE_BUILD NEW_BUILD [SECONDS] [THREADS]}
new=${2:?usage: bench/counters.sh BASE_BUILD NEW_BUILD [SECONDS] [THREADS]}
secs=${3:-2}
threads=${4:-1,2}
rounds=${ROUNDS:-5}
poll=${POLL:-50}
export ENCLAVE_ACM_NO_MLOCK=1

for b in "$base" "$new"; do
        for f in enclave-token/enclave-token tools/enclave-acm bench/p11bench p11module/enclave-acm-pkcs11.so; do
                [ -e "$b/$f" ] || { echo "bench/counters.sh: '$b/$f' is missing: build first" >&2; exit 1; }
        done
done

tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
printf '123456' >"$tmp/pin"

run_one() { # BUILD TAG ROUND: one p11bench pass, module rows appended to $tmp/rows as "TAG ROUND key threads ops"
        local b=$1 cases=() k name
        rm -f "$tmp/data.sock" "$tmp/control.sock"
        "$b/enclave-token/enclave-token" --dev --busy-poll "$poll" --data "unix:path=$tmp/data.sock" \
                --control "unix:path=$tmp/control.sock" 2>"$tmp/token.log" &
        pid=$!
        for _ in $(seq 100); do [ -S "$tmp/control.sock" ] && break; sleep 0.05; done
        for k in ec-p256:ecdsa ed25519:eddsa rsa2048:rsa-pss; do
                name=${k%%:*}
                "$b/tools/enclave-acm" --control "unix:path=$tmp/control.sock" token add --label "$name" \
                        --pin-file "$tmp/pin" --key "$top/tests/data/$name.key.pem" \
                        --cert "$top/tests/data/$name.crt.pem" --id 1 >/dev/null
                cases+=("$name:$top/tests/data/$name.key.pem:${k#*:}")
        done
        ENCLAVE_ACM_BUSY_POLL_USEC=$poll "$b/bench/p11bench" --module "$b/p11module/enclave-acm-pkcs11.so" \
                --data "unix:path=$tmp/data.sock" --pin 123456 --seconds "$secs" --threads "$threads" \
                --pings 2000 "${cases[@]}" | awk -v tag="$2" -v r="$3" '$2 == "module" { print tag, r, $1, $3, $4 }' \
                >>"$tmp/rows"
        kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
        pid=
}

echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg);" \
        "$rounds rounds of ${secs} s per row, threads $threads, busy poll $poll us"
echo "# base: $base"
echo "# new:  $new"
: >"$tmp/rows"
for ((r = 1; r <= rounds; r++)); do
        if ((r % 2)); then
                run_one "$base" base "$r"
                run_one "$new" new "$r"
        else
                run_one "$new" new "$r"
                run_one "$base" base "$r"
        fi
done
echo "# load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$tmp/rows" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    tag, r, key, threads, ops = line.split()
    rows.setdefault((key, int(threads)), {}).setdefault(int(r), {})[tag] = float(ops)
print("%-8s %7s %-40s %-40s %8s %s" % ("key", "threads", "base ops/s per round", "new ops/s per round",
                                      "new/base", "(min..max of the rounds' ratios)"))
for (key, threads), by_round in sorted(rows.items()):
    rs = sorted(by_round)
    ratios = [by_round[r]["new"] / by_round[r]["base"] for r in rs]
    print("%-8s %7d %-40s %-40s %7.3fx (%.3f..%.3f)" % (
        key, threads, " ".join("%.0f" % by_round[r]["base"] for r in rs),
        " ".join("%.0f" % by_round[r]["new"] for r in rs), statistics.median(ratios), min(ratios), max(ratios)))
PY
