#!/bin/bash
# TLS handshake benchmark: nginx (2 workers as www-data) doing full TLS 1.3 handshakes (session cache
# and tickets off, wrk with `Connection: close` on loopback) with an RSA-2048 and a P-256 key held
#   (a) in a PEM key file,
#   (b) in enclave-token, through the libp11 engine and enclave-acm-pkcs11.so, with enclave-token
#       polling as it does in an enclave (--busy-poll 50, its vsock default) and the module's default,
#   (e) the same as (b) with busy polling off on both ends (enclave-token --busy-poll 0,
#       ENCLAVE_ACM_BUSY_POLL_USEC=0), to show what polling does under load,
#   (c) in SoftHSM, through the libp11 engine in-process,
#   (d) in SoftHSM behind `p11-kit server` (the ACM for Nitro Enclaves topology): libp11 engine ->
#       p11-kit-client.so -> unix socket -> p11-kit server -> SoftHSM.
# Prints req/s and p99 latency side by side (median of ROUNDS interleaved rounds) and the ratios
# (b)/(a) and (b)/(d) against the targets 0.9 and 1.5, both as the ratio of the medians and as the
# median of the per-round ratios (cases of one round run back to back, so a slow drift in the load of
# a shared machine cancels out of the latter). A benchmark, not a test: missing a target does
# not fail it; a case that cannot run or has failed requests does (exit 1).
# LAYOUT "shared" (the default) lets every process use every CPU. "split" models a Nitro host, where
# the enclave's vCPUs are taken from the parent and run nothing else: wrk and nginx are pinned to CPU 0
# (the parent side), enclave-token and p11-kit server + SoftHSM to CPU 1 (the enclave side), in every
# case; (a) and (c) have no enclave side and so use CPU 0 only. Compare (b) with (d) in both layouts;
# compare (b) with (a) in the shared one, where both have the same CPUs.
# usage: bench/tls.sh [BUILD_DIR] [SECONDS] [ROUNDS] [shared|split]  (defaults: build, 8, 3, shared; as root)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/build}
secs=${2:-8}
rounds=${3:-3}
layout=${4:-shared}
case $layout in
shared) parent=() enclave=() ;;
split) parent=(taskset -c 0) enclave=(taskset -c 1) ;;
*) echo "bench/tls.sh: LAYOUT must be shared or split, not '$layout'" >&2; exit 2 ;;
esac
conns=${WRK_CONNECTIONS:-8}
data=$top/tests/data
softhsm_lib=${SOFTHSM_LIB:-/usr/lib/softhsm/libsofthsm2.so}
p11kit_client=${P11KIT_CLIENT:-$(pkg-config --variable=p11_module_path p11-kit-1 2>/dev/null || echo /usr/lib/x86_64-linux-gnu/pkcs11)/p11-kit-client.so}
engine=$(openssl version -e | sed -n 's/^ENGINESDIR: "\(.*\)"$/\1/p')/pkcs11.so
module=$build/p11module/enclave-acm-pkcs11.so
pin=123456
keys=(rsa2048 ec-p256)
cases=(a b e c d)
declare -A case_name=(
        [a]="PEM key file"
        [b]="enclave-token via enclave-acm-pkcs11.so"
        [e]="(b) with busy polling off"
        [c]="SoftHSM in-process (libp11)"
        [d]="p11-kit client > p11-kit server > SoftHSM"
)
export ENCLAVE_ACM_NO_MLOCK=1

die() {
        echo "bench/tls.sh: $*" >&2
        exit 1
}

for t in nginx wrk softhsm2-util p11-kit openssl; do
        command -v "$t" >/dev/null 2>&1 || die "'$t' is not installed"
done
for f in "$build/enclave-token/enclave-token" "$build/tools/enclave-acm" "$module"; do
        [[ -e $f ]] || die "'$f' is missing: build first (meson setup $build && ninja -C $build)"
done
for f in "$engine" "$softhsm_lib" "$p11kit_client"; do
        [[ -e $f ]] || die "'$f' is missing (libengine-pkcs11-openssl, softhsm2, p11-kit-modules)"
done
[[ $(id -u) == 0 ]] || die "run as root: nginx's workers run as www-data"
[[ $layout == shared ]] || (($(nproc) >= 2)) || die "the split layout needs 2 CPUs"

# Workers run as www-data: the temp dir must be traversable. A short path for unix sockets.
tmp=$(mktemp -d /tmp/eacm-bench.XXXXXX)
chmod 0755 "$tmp"
token_pid=
token0_pid=
p11kit_pid=
nginx_pid=
stop_nginx() {
        [[ -n $nginx_pid ]] || return 0
        kill -QUIT "$nginx_pid" 2>/dev/null || true
        for _ in $(seq 100); do
                kill -0 "$nginx_pid" 2>/dev/null || break
                sleep 0.1
        done
        kill -KILL "$nginx_pid" 2>/dev/null || true
        wait "$nginx_pid" 2>/dev/null || true
        nginx_pid=
}
cleanup() {
        stop_nginx
        for p in $p11kit_pid $token_pid $token0_pid; do
                kill -TERM "$p" 2>/dev/null || true
                wait "$p" 2>/dev/null || true
        done
        if [[ ${BENCH_KEEP:-0} == 1 ]]; then echo "# kept $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_busy() {
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
port=
for _ in $(seq 100); do
        p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
        if ! port_busy "$p"; then port=$p; break; fi
done
[[ -n $port ]] || die "no free loopback port"

# (b) enclave-token with the keys, one token per key; (e) a second one with busy polling off.
printf '%s' "$pin" >"$tmp/pin"
start_token() { # DIR BUSY_POLL
        mkdir -p "$tmp/$1"
        "${enclave[@]}" "$build/enclave-token/enclave-token" --dev --busy-poll "$2" --data "unix:path=$tmp/$1/data.sock" \
                --control "unix:path=$tmp/$1/control.sock" --socket-mode 0666 >"$tmp/$1/enclave-token.log" 2>&1 &
        for _ in $(seq 100); do [[ -S $tmp/$1/control.sock ]] && break; sleep 0.05; done
        for k in "${keys[@]}"; do
                "$build/tools/enclave-acm" --control "unix:path=$tmp/$1/control.sock" token add --label "$k" \
                        --pin-file "$tmp/pin" --key "$data/$k.key.pem" --cert "$data/$k.crt.pem" --id 1 >/dev/null
        done
}
start_token b 50
token_pid=$!
start_token e 0
token0_pid=$!

# (c) and (d) SoftHSM with the same keys, same labels and ids. reset_on_fork: nginx workers are forks of
# the master that logged in, and SoftHSM must start over in them. Token files belong to www-data, which
# the workers in (c) read them as.
mkdir -p "$tmp/softhsm"
printf 'directories.tokendir = %s/softhsm\nobjectstore.backend = file\nlog.level = ERROR\nlibrary.reset_on_fork = true\n' \
        "$tmp" >"$tmp/softhsm2.conf"
export SOFTHSM2_CONF=$tmp/softhsm2.conf
for k in "${keys[@]}"; do
        softhsm2-util --init-token --free --label "$k" --so-pin 87654321 --pin "$pin" >/dev/null
        softhsm2-util --import "$data/$k.key.pem" --token "$k" --label "$k" --id 01 --pin "$pin" >/dev/null
done
chown -R www-data:www-data "$tmp/softhsm"

# (d) p11-kit server exporting both SoftHSM tokens on a unix socket that the master (root) and the
# workers (www-data) may use. (-u would admit only that user, not the master.)
"${enclave[@]}" p11-kit server -f -n "$tmp/p11kit.sock" --provider "$softhsm_lib" \
        "pkcs11:token=${keys[0]}" "pkcs11:token=${keys[1]}" >"$tmp/p11-kit-server.log" 2>&1 &
p11kit_pid=$!
for _ in $(seq 100); do [[ -S $tmp/p11kit.sock ]] && break; sleep 0.05; done
[[ -S $tmp/p11kit.sock ]] || die "p11-kit server did not create its socket: $(cat "$tmp/p11-kit-server.log")"
chmod 0666 "$tmp/p11kit.sock"

# The OpenSSL config of each engine case: the packaged snippet with another MODULE_PATH.
openssl_conf() { # CASE MODULE
        sed -e "s|^MODULE_PATH = .*|MODULE_PATH = $2|" -e "s|^dynamic_path = .*|dynamic_path = $engine|" \
                "$top/packaging/openssl-enclave-acm.cnf" >"$tmp/openssl-$1.cnf"
}
openssl_conf b "$module"
openssl_conf c "$softhsm_lib"
openssl_conf d "$p11kit_client"

nginx_conf() { # CASE KEY
        local key="$data/$2.key.pem" engine_line=""
        if [[ $1 != a ]]; then
                key="\"engine:pkcs11:pkcs11:token=$2;id=%01;type=private;pin-value=$pin\""
                engine_line="ssl_engine pkcs11;"
        fi
        cat >"$tmp/nginx.conf" <<EOF
daemon off;
worker_processes 2;
user www-data;
pid $tmp/nginx.pid;
error_log $tmp/nginx-error.log warn;
env ENCLAVE_ACM_ADDRESS;
env ENCLAVE_ACM_BUSY_POLL_USEC;
env OPENSSL_CONF;
env SOFTHSM2_CONF;
env P11_KIT_SERVER_ADDRESS;
$engine_line
events {
        worker_connections 1024;
}
http {
        access_log off;
        client_body_temp_path $tmp/client_body;
        proxy_temp_path $tmp/proxy;
        fastcgi_temp_path $tmp/fastcgi;
        uwsgi_temp_path $tmp/uwsgi;
        scgi_temp_path $tmp/scgi;
        server {
                listen 127.0.0.1:$port ssl;
                ssl_protocols TLSv1.3;
                ssl_session_cache off;
                ssl_session_tickets off;
                ssl_certificate $data/$2.crt.pem;
                ssl_certificate_key $key;
                location / {
                        return 200 "ok\n";
                }
        }
}
EOF
}

start_nginx() { # CASE KEY
        local env=(env)
        case $1 in
        b) env+=("OPENSSL_CONF=$tmp/openssl-b.cnf" "ENCLAVE_ACM_ADDRESS=unix:path=$tmp/b/data.sock") ;;
        e) env+=("OPENSSL_CONF=$tmp/openssl-b.cnf" "ENCLAVE_ACM_ADDRESS=unix:path=$tmp/e/data.sock"
                 "ENCLAVE_ACM_BUSY_POLL_USEC=0") ;;
        c) env+=("OPENSSL_CONF=$tmp/openssl-c.cnf") ;;
        d) env+=("OPENSSL_CONF=$tmp/openssl-d.cnf" "P11_KIT_SERVER_ADDRESS=unix:path=$tmp/p11kit.sock") ;;
        esac
        nginx_conf "$1" "$2"
        "${env[@]}" "${parent[@]}" nginx -p "$tmp/" -c "$tmp/nginx.conf" -e "$tmp/nginx-error.log" >>"$tmp/nginx-error.log" 2>&1 &
        nginx_pid=$!
        for _ in $(seq 200); do
                port_busy "$port" && return 0
                kill -0 "$nginx_pid" 2>/dev/null || break
                sleep 0.05
        done
        die "nginx did not start for ($1) $2: $(tail -n 5 "$tmp/nginx-error.log")"
}

# check_handshake CASE KEY: one verified request, so that a case that cannot sign is not measured.
check_handshake() {
        local host=$2.enclave-acm.test
        curl -sS --max-time 20 --cacert "$data/$2.crt.pem" --resolve "$host:$port:127.0.0.1" -o /dev/null \
                "https://$host:$port/" 2>"$tmp/curl.err" ||
                die "($1) $2: a verified handshake failed: $(cat "$tmp/curl.err"); $(tail -n 5 "$tmp/nginx-error.log")"
}

# run_wrk SECONDS OUT: full handshakes only (a new connection per request).
run_wrk() {
        "${parent[@]}" wrk -t1 -c"$conns" -d"$1"s --latency -H 'Connection: close' "https://127.0.0.1:$port/" >"$2" 2>&1
}

# cpu_ticks -> "BUSY TOTAL": all CPUs' jiffies from /proc/stat (idle and iowait are not busy).
cpu_ticks() {
        awk '$1 == "cpu" { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t; exit }' /proc/stat
}

# parse OUT -> "req/s p99_ms errors"
parse() {
        awk '
        function ms(v) {
                if (v ~ /us$/) { sub(/us$/, "", v); return v / 1000 }
                if (v ~ /ms$/) { sub(/ms$/, "", v); return v + 0 }
                if (v ~ /m$/) { sub(/m$/, "", v); return v * 60000 }
                if (v ~ /s$/) { sub(/s$/, "", v); return v * 1000 }
                return v
        }
        $1 == "99%" { p99 = ms($2) }
        /^Requests\/sec:/ { rps = $2 }
        /Socket errors:/ { gsub(/,/, ""); err += $4 + $6 + $8 + $10 }
        /Non-2xx or 3xx responses:/ { err += $5 }
        END { printf "%.1f %.2f %d\n", rps, p99, err }' "$1"
}

declare -A rps p99 errs last
median() {
        printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
echo "# bench/tls.sh: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, load average $load_before"
echo "# $(nginx -v 2>&1 | sed 's/^nginx version: //'), $(openssl version | cut -d' ' -f1-2), softhsm $(softhsm2-util --version)," \
        "wrk -t1 -c$conns -d${secs}s, $rounds round(s), TLS 1.3 full handshakes (no resumption), $layout layout"
for ((r = 1; r <= rounds; r++)); do
        for k in "${keys[@]}"; do
                for c in "${cases[@]}"; do
                        start_nginx "$c" "$k"
                        check_handshake "$c" "$k"
                        run_wrk 1 "$tmp/warmup.out" || true
                        read -r busy0 total0 < <(cpu_ticks)
                        run_wrk "$secs" "$tmp/wrk.out" || die "wrk failed for ($c) $k: $(cat "$tmp/wrk.out")"
                        read -r busy1 total1 < <(cpu_ticks)
                        stop_nginx
                        read -r v p e < <(parse "$tmp/wrk.out")
                        [[ $v != 0.0 ]] || die "no requests completed for ($c) $k: $(cat "$tmp/wrk.out")"
                        rps[$k.$c]+="$v "
                        p99[$k.$c]+="$p "
                        errs[$k.$c]=$((${errs[$k.$c]:-0} + e))
                        last[$c]=$v
                        echo "# round $r: $k ($c) $v req/s, p99 $p ms, $e errors," \
                                "CPUs $((100 * (busy1 - busy0) / (total1 - total0 > 0 ? total1 - total0 : 1)))% busy"
                done
                rps[$k.ba]+="$(awk -v b="${last[b]}" -v a="${last[a]}" 'BEGIN { printf "%.3f", b / a }') "
                rps[$k.bd]+="$(awk -v b="${last[b]}" -v d="${last[d]}" 'BEGIN { printf "%.3f", b / d }') "
                rps[$k.be]+="$(awk -v b="${last[b]}" -v e="${last[e]}" 'BEGIN { printf "%.3f", b / e }') "
        done
done
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
printf '%-8s %-46s %9s %9s %7s\n' key "key path" "req/s" "p99 ms" errors
status=0
for k in "${keys[@]}"; do
        declare -A med=()
        for c in "${cases[@]}"; do
                # shellcheck disable=SC2086 # the values are a space-separated list
                med[$c]=$(median ${rps[$k.$c]})
                # shellcheck disable=SC2086
                printf '%-8s %-46s %9.1f %9.2f %7d\n' "$k" "($c) ${case_name[$c]}" "${med[$c]}" "$(median ${p99[$k.$c]})" \
                        "${errs[$k.$c]}"
                ((${errs[$k.$c]} == 0)) || status=1
        done
        ba=$(awk -v b="${med[b]}" -v a="${med[a]}" 'BEGIN { printf "%.2f", b / a }')
        bd=$(awk -v b="${med[b]}" -v d="${med[d]}" 'BEGIN { printf "%.2f", b / d }')
        # shellcheck disable=SC2086 # the values are a space-separated list
        pba=$(median ${rps[$k.ba]} | awk '{ printf "%.2f", $1 }')
        # shellcheck disable=SC2086
        pbd=$(median ${rps[$k.bd]} | awk '{ printf "%.2f", $1 }')
        ma=$(awk -v x="$ba" -v y="$pba" 'BEGIN { print (x >= 0.9 && y >= 0.9) ? "met" : (x >= 0.9 || y >= 0.9) ? "borderline" : "MISSED" }')
        md=$(awk -v x="$bd" -v y="$pbd" 'BEGIN { print (x >= 1.5 && y >= 1.5) ? "met" : (x >= 1.5 || y >= 1.5) ? "borderline" : "MISSED" }')
        echo "$k: (b)/(a) = $ba, per-round median $pba (target >= 0.90: $ma); (b)/(d) = $bd, per-round median $pbd (target >= 1.50: $md)"
        # shellcheck disable=SC2086
        echo "$k: (b)/(e), busy polling on vs off = $(awk -v b="${med[b]}" -v e="${med[e]}" 'BEGIN { printf "%.2f", b / e }'), per-round median $(median ${rps[$k.be]} | awk '{ printf "%.2f", $1 }')"
        unset med
done
((status == 0)) || echo "bench/tls.sh: some requests failed (errors column): the numbers are not comparable" >&2
exit "$status"
