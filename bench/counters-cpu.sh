#!/bin/bash
# What enclave-token's counters cost per signature, in-process (bench/keybench, no socket, no module):
# etok_key_sign() alone against etok_key_sign() with the keystore's counter hooks (two monotonic clock
# reads, etok_stats_op() on one counter set shared by all threads), alternating without/with in every
# round (the order flips each round). Compares the threads' CPU time per signature, which a loaded
# machine disturbs far less than the wall-clock rate; prints the rates too.
# usage: [ROUNDS=N] bench/counters-cpu.sh [BUILD_DIR] [SECONDS] [THREADS...]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/build}
secs=${2:-1}
shift $(($# < 2 ? $# : 2))
threads=("$@")
((${#threads[@]} > 0)) || threads=(1 2)
rounds=${ROUNDS:-7}
kb=$build/bench/keybench
[ -x "$kb" ] || { echo "bench/counters-cpu.sh: '$kb' is missing: build first" >&2; exit 1; }
d=$top/tests/data
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT

echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg);" \
        "$rounds rounds of ${secs} s per row"
for ((r = 1; r <= rounds; r++)); do
        for t in "${threads[@]}"; do
                order=("" --stats)
                ((r % 2)) || order=(--stats "")
                for o in "${order[@]}"; do
                        # shellcheck disable=SC2086
                        "$kb" $o --seconds "$secs" --threads "$t" "$d/ec-p256.key.pem" "$d/ec-p256.crt.pem" ecdsa \
                                "$d/ed25519.key.pem" "$d/ed25519.crt.pem" eddsa \
                                "$d/rsa2048.key.pem" "$d/rsa2048.crt.pem" rsa-pss | sed "s/^/$r /" >>"$tmp"
                done
        done
done
echo "# load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$tmp" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    f = line.split()
    # ROUND MECH malloc|arena none|counters threads N RATE sign/s CPU us/sign
    r, mech, kind, threads, rate, cpu = int(f[0]), f[1], f[3], int(f[5]), float(f[6]), float(f[8])
    rows.setdefault((mech, threads), {}).setdefault(r, {})[kind] = (rate, cpu)
print("%-8s %7s %12s %12s %14s %s" % ("mech", "threads", "CPU us none", "CPU us cnt", "CPU cnt/none",
                                      "(min..max)   rate cnt/none (min..max)"))
for (mech, threads), by in sorted(rows.items()):
    rs = [r for r in sorted(by) if "none" in by[r] and "counters" in by[r]]
    cpu = [by[r]["counters"][1] / by[r]["none"][1] for r in rs]
    rate = [by[r]["counters"][0] / by[r]["none"][0] for r in rs]
    print("%-8s %7d %12.2f %12.2f %13.4fx (%.3f..%.3f)   %.3fx (%.3f..%.3f)" % (
        mech, threads, statistics.median(by[r]["none"][1] for r in rs),
        statistics.median(by[r]["counters"][1] for r in rs), statistics.median(cpu), min(cpu), max(cpu),
        statistics.median(rate), min(rate), max(rate)))
PY
