#!/bin/bash
# Provisioning benchmark (issue 13): N tokens from KMS ciphertexts through the fake KMS, the
# one-attestation-per-round design (one RSA-2048 key, one document, one TLS connection for all the
# round's Decrypts) side by side with the per-key variant AWS's ACM uses (KMS_BEGIN per_key: a new
# key, document and TLS connection for every Decrypt).
#
# Starts fake-kms and enclave-token (NSM simulator, no --dev) on unix sockets in a temp dir, makes the
# ciphertext once, then for each N and each of ROUNDS rounds provisions N tokens in ONE control
# connection (kms-client: begin, N x add, end) once per design, the order alternating from round to
# round; enclave-token is restarted before every run, so every run starts from an empty keystore.
# Measured per run: wall time of the client; CPU (user+sys, /proc/PID/stat, clock-tick resolution) of
# enclave-token and fake-kms as deltas over the run, and of the client (bash's time); the fake's
# connections, handshakes, documents and requests as deltas, which must be 1/1/1/N for the round
# design and N/N/N/N for per-key (the script stops if not).
#
# Every token gets the same ciphertext (KEY's private key, one blob) under its own label: the work per
# Decrypt (SigV4, the document check, the CMS envelope, the key/certificate match) is the same for
# any plaintext, and the fake counts documents, not ciphertexts.
#
# usage: [ROUNDS=3] [KEY=rsa2048] bench/kms-provision.sh [BUILD_DIR] [N[:R]...]   (N default: 1 64 1024)
# N:R runs R rounds for that N instead of ROUNDS (e.g. 1024:1 when a per-key run takes minutes).
# Never part of meson test. Loopback only: unix sockets in a temp dir, no network.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/build}
(($# > 0)) && shift
ns=("$@")
((${#ns[@]} > 0)) || ns=(1 64 1024)
rounds=${ROUNDS:-3}
key=${KEY:-rsa2048}
export ENCLAVE_ACM_NO_MLOCK=1

die() {
        echo "bench/kms-provision.sh: $*" >&2
        exit 1
}

token_bin=$build/enclave-token/enclave-token
kms_bin=$build/tests/fakes/fake-kms
client_bin=$build/tests/integration/kms-client
acm_bin=$build/tools/enclave-acm
for f in "$token_bin" "$kms_bin" "$client_bin" "$acm_bin"; do
        [[ -x $f ]] || die "'$f' is missing: build first (meson setup $build && ninja -C $build)"
done
[[ $rounds =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive number"
declare -A nrounds
max_n=1
for i in "${!ns[@]}"; do
        [[ ${ns[i]} =~ ^([1-9][0-9]*)(:([1-9][0-9]*))?$ ]] || die "N[:ROUNDS] expected, not '${ns[i]}'"
        ns[i]=${BASH_REMATCH[1]}
        nrounds[${ns[i]}]=${BASH_REMATCH[3]:-$rounds}
        ((ns[i] > max_n)) && max_n=${ns[i]}
done
max_tokens=$((max_n > 2048 ? max_n : 2048))
((max_tokens <= 4096)) || die "at most 4096 tokens (enclave-token's ceiling)"
key_pem=$top/tests/data/$key.key.pem
chain=$top/tests/data/$key.crt.pem
[[ -f $top/tests/data/$key.chain.pem ]] && chain=$top/tests/data/$key.chain.pem
[[ -f $key_pem && -f $chain ]] || die "no key '$key' in tests/data"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kms-provision.XXXXXX")
tok_pid=
kms_pid=
cleanup() {
        local p
        for p in $tok_pid $kms_pid; do
                kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
        done
        rm -rf "$tmp"
}
trap cleanup EXIT

hz=$(getconf CLK_TCK)
pcr0=$(printf '5a%.0s' $(seq 48))
control="unix:path=$tmp/control.sock"
kms_addr="unix:path=$tmp/kms.sock"
# Test credentials of the fake (AWS's documentation example), in a file as kms-client wants them.
echo "AKIAIOSFODNN7EXAMPLE:wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY:bench-session-token" >"$tmp/creds"
pin=123456

# CPU of a process so far (user + sys, its threads included, exited ones too), in clock ticks.
cpu_ticks() {
        local s
        s=$(<"/proc/$1/stat")
        s=${s##*) }
        awk '{ print $12 + $13 }' <<<"$s"
}

stat_of() { # FIELD: a top-level counter of the fake's statistics file
        sed -n "s/.*\"$1\": *\([0-9]*\).*/\1/p" "$tmp/kms-stats.json"
}

start_token() {
        rm -f "$tmp/control.sock" "$tmp/data.sock"
        "$token_bin" --log-level notice --data "unix:path=$tmp/data.sock" --control "$control" \
                --max-tokens "$max_tokens" --nsm-simulator --nsm-sim-pcr "0=$pcr0" \
                --nsm-sim-root "$tmp/sim-root.pem" --kms-proxy "$kms_addr" --kms-ca "$tmp/kms-ca.pem" \
                2>>"$tmp/token.log" &
        tok_pid=$!
        for _ in $(seq 400); do
                "$acm_bin" --control "$control" status >/dev/null 2>&1 && return 0
                kill -0 "$tok_pid" 2>/dev/null || { tail "$tmp/token.log" >&2; die "enclave-token exited at start"; }
                sleep 0.05
        done
        die "enclave-token did not answer on $control"
}

stop_token() {
        if kill "$tok_pid" 2>/dev/null; then
                wait "$tok_pid" 2>/dev/null || true
        fi
        tok_pid=
}

start_kms() {
        "$kms_bin" serve --listen "$kms_addr" --ca-out "$tmp/kms-ca.pem" --credentials "@$tmp/creds" \
                --region us-east-1 --attestation-root "$tmp/sim-root.pem" --master-key "$tmp/master.key" \
                --policy-pcr "0=$pcr0" --stats "$tmp/kms-stats.json" 2>"$tmp/fake-kms.log" &
        kms_pid=$!
        for _ in $(seq 600); do
                [[ -s $tmp/kms-ca.pem && -s $tmp/kms-stats.json ]] && return 0
                kill -0 "$kms_pid" 2>/dev/null || { tail "$tmp/fake-kms.log" >&2; die "fake-kms exited at start"; }
                sleep 0.05
        done
        die "fake-kms did not start"
}

# run_once DESIGN N: provisions N tokens in one control connection on a fresh enclave-token; prints
# "wall_ms token_cpu_ms fake_cpu_ms client_cpu_ms connections handshakes documents requests".
run_once() {
        local design=$1 n=$2 words=(begin) opts=() i c0 h0 d0 q0 t0 f0 t1 f1 c h d q wall cu cs
        [[ $design == per-key ]] && opts=(--per-key)
        for ((i = 1; i <= n; i++)); do
                words+=(add "t$i" "$pin" 0 "1:$tmp/key.ct:$chain")
        done
        words+=(end)
        start_token
        c0=$(stat_of connections) h0=$(stat_of handshakes) d0=$(stat_of documents) q0=$(stat_of requests)
        t0=$(cpu_ticks "$tok_pid") f0=$(cpu_ticks "$kms_pid")
        TIMEFORMAT='%3R %3U %3S'
        { time "$client_bin" "$control" --creds "$tmp/creds" "${opts[@]}" "${words[@]}" \
                >"$tmp/client.out" 2>"$tmp/client.err"; } 2>"$tmp/time" ||
                { cat "$tmp/client.err" >&2; die "$design N=$n: kms-client failed"; }
        # The fake rewrites its statistics after it answers: give the last request a moment to land.
        for _ in $(seq 100); do
                (($(stat_of requests) - q0 >= n)) && break
                sleep 0.02
        done
        t1=$(cpu_ticks "$tok_pid") f1=$(cpu_ticks "$kms_pid")
        stop_token
        c=$(($(stat_of connections) - c0)) h=$(($(stat_of handshakes) - h0))
        d=$(($(stat_of documents) - d0)) q=$(($(stat_of requests) - q0))
        read -r wall cu cs <"$tmp/time"
        if ! grep -q '^begin ok' "$tmp/client.out" || ! grep -q '^end ok' "$tmp/client.out" ||
                (($(grep -c '^add ok' "$tmp/client.out") != n)); then
                grep -v '^add ok' "$tmp/client.out" | head >&2
                tail "$tmp/token.log" >&2
                die "$design N=$n: not every call answered ok ($(grep -c '^add ok' "$tmp/client.out") of $n tokens)"
        fi
        local want=1
        [[ $design == per-key ]] && want=$n
        ((c == want && h == want && d == want && q == n)) ||
                die "$design N=$n: the fake saw connections/handshakes/documents/requests $c/$h/$d/$q," \
                        "expected $want/$want/$want/$n"
        awk -v w="$wall" -v cu="$cu" -v cs="$cs" -v t=$((t1 - t0)) -v f=$((f1 - f0)) -v hz="$hz" \
                -v c="$c" -v h="$h" -v d="$d" -v q="$q" \
                'BEGIN { printf "%.1f %.0f %.0f %.0f %d %d %d %d\n", w * 1000, t * 1000 / hz, f * 1000 / hz,
                         (cu + cs) * 1000, c, h, d, q }'
}

median() { # numbers on stdin
        sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

"$kms_bin" keygen --master-key "$tmp/master.key" 2>>"$tmp/fake-kms.log"
"$kms_bin" encrypt --master-key "$tmp/master.key" --key-id bench-key -i "$key_pem" -o "$tmp/key.ct" \
        2>>"$tmp/fake-kms.log" || die "fake-kms encrypt failed"
# enclave-token first: the simulator writes the root the fake checks documents against.
start_token
start_kms
stop_token

commit=$(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$top" diff --quiet HEAD 2>/dev/null || commit="$commit+dirty"
echo "# bench/kms-provision.sh: $(date -u +%Y-%m-%dT%H:%MZ), commit $commit, $(nproc) CPUs" \
        "($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)), $(openssl version | cut -d' ' -f1-2)," \
        "load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# key $key, one ciphertext for every token; N = ${ns[*]}; rounds $(for n in "${ns[@]}"; do printf '%s ' "${nrounds[$n]}"; done)(designs alternating);" \
        "enclave-token restarted before every run; CPU resolution $((1000 / hz)) ms"
echo "# run: N design round: wall ms, CPU ms token/fake/client, fake connections/handshakes/documents/requests"
declare -A res
for n in "${ns[@]}"; do
        for ((r = 1; r <= nrounds[$n]; r++)); do
                order=(round per-key)
                ((r % 2 == 0)) && order=(per-key round)
                for design in "${order[@]}"; do
                        line=$(run_once "$design" "$n")
                        res[$n,$design,$r]=$line
                        read -r w t f c cn hs dc rq <<<"$line"
                        printf '# run: N=%-5d %-8s %d: %10.1f ms, CPU %6d/%6d/%5d ms, fake %d/%d/%d/%d\n' \
                                "$n" "$design" "$r" "$w" "$t" "$f" "$c" "$cn" "$hs" "$dc" "$rq"
                done
        done
done
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

echo
echo "Medians of each N's rounds. CPU ms: enclave-token + fake-kms + kms-client = total."
printf '%-6s %-8s %10s %9s %8s %8s %7s %8s  %s\n' N design "wall ms" tokens/s "token" "fake" "client" "total" \
        "conns/handshakes/docs"
col() { # N DESIGN FIELD(1-based): the median over the rounds
        local r
        for ((r = 1; r <= nrounds[$1]; r++)); do
                awk -v i="$3" '{ print $i }' <<<"${res[$1,$2,$r]}"
        done | median
}
for n in "${ns[@]}"; do
        for design in round per-key; do
                w=$(col "$n" "$design" 1) t=$(col "$n" "$design" 2) f=$(col "$n" "$design" 3)
                c=$(col "$n" "$design" 4)
                read -r _ _ _ _ cn hs dc _ <<<"${res[$n,$design,1]}"
                awk -v n="$n" -v d="$design" -v w="$w" -v t="$t" -v f="$f" -v c="$c" -v x="$cn/$hs/$dc" \
                        'BEGIN { printf "%-6d %-8s %10.1f %9.1f %8.0f %8.0f %7.0f %8.0f  %s\n", n, d, w,
                                 n * 1000 / w, t, f, c, t + f + c, x }'
        done
        # per-key / round: of the medians, and the median of the rounds' own ratios (as bench/run.sh).
        wr=$(for ((r = 1; r <= nrounds[$n]; r++)); do
                awk '{ print $1 }' <<<"${res[$n,per-key,$r]}" | paste - <(awk '{ print $1 }' <<<"${res[$n,round,$r]}") |
                        awk '{ print $1 / $2 }'
        done | median)
        cr=$(for ((r = 1; r <= nrounds[$n]; r++)); do
                paste <(awk '{ print $2 + $3 + $4 }' <<<"${res[$n,per-key,$r]}") \
                        <(awk '{ print $2 + $3 + $4 }' <<<"${res[$n,round,$r]}") |
                        awk '{ print ($2 > 0 ? $1 / $2 : 0) }'
        done | median)
        awk -v n="$n" -v wp="$(col "$n" per-key 1)" -v wo="$(col "$n" round 1)" \
                -v tp="$(col "$n" per-key 2)" -v to="$(col "$n" round 2)" \
                -v cp="$(for ((r = 1; r <= nrounds[$n]; r++)); do awk '{ print $2 + $3 + $4 }' <<<"${res[$n,per-key,$r]}"; done | median)" \
                -v co="$(for ((r = 1; r <= nrounds[$n]; r++)); do awk '{ print $2 + $3 + $4 }' <<<"${res[$n,round,$r]}"; done | median)" \
                -v wr="$wr" -v cr="$cr" \
                'BEGIN { printf "N=%d per-key / round: wall %.2fx (per-round median %.2fx), CPU total %.2fx (per-round median %.2fx), enclave-token CPU %.2fx\n",
                         n, wp / wo, wr, (co > 0 ? cp / co : 0), cr, (to > 0 ? tp / to : 0) }'
done
