#!/bin/bash
# Soak (issue 17): enclave-acm-agent with the local launcher (enclave-token --dev as its child, on unix
# sockets) and four File-source tokens (RSA-2048 served by nginx, P-256, P-384, Ed25519), under load for
# MINUTES minutes (default 30):
#   - SOAK_PROCS processes of bench/p11soak (SOAK_THREADS threads each, SOAK_RATE signatures a second per
#     thread) sign with every token in turn through enclave-acm-pkcs11.so, RSA-PSS / RSA PKCS#1 v1.5 /
#     ECDSA / ECDSA-SHA256 / Ed25519, and verify every signature in-process;
#   - wrk drives nginx (TLS with the token's RSA key, a fresh handshake per request: Connection: close,
#     no session cache, no tickets) with SOAK_WRK_CONNS connections, in SOAK_WRK_CHUNK-second runs;
#   - every SOAK_FAULT_EVERY seconds a fault: every third one a SIGKILL of enclave-token (the agent
#     relaunches and re-provisions it), the others a certificate renewal (a new key and certificate in
#     one token's File source: the agent rotates the token, and for the nginx token rewrites the stanza
#     and reloads nginx gracefully). No fault in the last SOAK_FAULT_EVERY seconds.
# Every SOAK_SAMPLE seconds it samples RSS, open fds and threads (/proc) of enclave-token, the agent,
# one nginx worker and one p11soak process, and the signing and wrk counters. At the end
# bench/soak-report.py prints the summary and exits non-zero on leak-like growth, on a wrong
# signature, or on an error outside an injected fault's window (failures while enclave-token is down
# are counted apart, as injected).
#
# usage: [BUILD=DIR] bench/soak.sh [MINUTES]        MINUTES may be fractional (0.5, 2, 30)
#   environment: BUILD (default ./build), SOAK_PROCS (3), SOAK_THREADS (3), SOAK_RATE (100),
#   SOAK_WRK_CONNS (4), SOAK_WRK_CHUNK (5), SOAK_SAMPLE (10; 5 under 10 minutes), SOAK_FAULT_EVERY
#   (MINUTES*2 s, at least 20), SOAK_RENEW (the tokens renewals go to, in turn; default
#   "web ec256 ec384 ed"), SOAK_OUT (a directory to copy the samples and summary to), SOAK_KEEP=1 (keep
#   the temp dir).
# Loopback and unix sockets only; ENCLAVE_ACM_IMDS_ENDPOINT is set to a closed loopback port.
# Functions run from traps and wait_until look unreachable to shellcheck.
# shellcheck disable=SC2317
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/tests/lib/nginx-conf.sh"
minutes=${1:-30}
if ! [[ $minutes =~ ^[0-9]+([.][0-9]+)?$ ]] || [[ $(awk -v m="$minutes" 'BEGIN { print (m > 0 && m <= 1440) }') != 1 ]]; then
        echo "usage: [BUILD=DIR] bench/soak.sh [MINUTES]   (0 < MINUTES <= 1440)" >&2
        exit 2
fi
BUILD=${BUILD:-$top/build}
total_s=$(awk -v m="$minutes" 'BEGIN { printf "%d", m * 60 }')
PROCS=${SOAK_PROCS:-3}
THREADS=${SOAK_THREADS:-3}
RATE=${SOAK_RATE:-100}
WRK_CONNS=${SOAK_WRK_CONNS:-4}
WRK_CHUNK=${SOAK_WRK_CHUNK:-5}
if ((total_s < 600)); then SAMPLE=${SOAK_SAMPLE:-5}; else SAMPLE=${SOAK_SAMPLE:-10}; fi
FAULT_EVERY=${SOAK_FAULT_EVERY:-$((total_s / 30 > 20 ? total_s / 30 : 20))}

export PATH=$PATH:/usr/sbin:/sbin
export ENCLAVE_ACM_IMDS_ENDPOINT=http://127.0.0.1:9
unset OPENSSL_CONF ENCLAVE_ACM_ADDRESS AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN

die() {
        echo "soak: $*" >&2
        exit 2
}
AGENT=$BUILD/agent/enclave-acm-agent
ETOK=$BUILD/enclave-token/enclave-token
MODULE=$BUILD/p11module/enclave-acm-pkcs11.so
P11SOAK=$BUILD/bench/p11soak
for f in "$AGENT" "$ETOK" "$MODULE" "$P11SOAK"; do
        [[ -e $f ]] || die "'$f' is missing: build first (meson setup $BUILD && ninja -C $BUILD)"
done
for t in nginx wrk openssl python3; do
        command -v "$t" >/dev/null 2>&1 || die "'$t' is not installed"
done
NGINX=$(command -v nginx)
ENGINE=$(nginx_libp11_engine)
[[ -f $ENGINE ]] || die "the libp11 engine ($ENGINE) is not installed (libengine-pkcs11-openssl)"
if [[ $EUID -ne 0 ]]; then
        # Without root, mlock is bounded by RLIMIT_MEMLOCK (often 64 KiB or 8 MiB).
        export ENCLAVE_ACM_NO_MLOCK=1
fi

T=$(mktemp -d /tmp/enclave-acm-soak.XXXXXX)
chmod 0755 "$T"
mkdir -p "$T/src" "$T/run" "$T/state" "$T/nginx" "$T/gen" "$T/signers"
chmod 0700 "$T/src" "$T/state" "$T/gen"
chmod 0755 "$T/run" "$T/nginx"
AGENT_PID='' WRK_LOOP_PID=''
SIGNER_PIDS=()

now_ms() { date +%s%3N; }
alive() {
        local st
        st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
        [[ $st != Z* ]]
}
# stop PID SIGNAL: signal, wait up to 10 s, then SIGKILL.
stop() {
        local pid=$1 sig=$2 i
        [[ -n $pid ]] || return 0
        kill "-$sig" "$pid" 2>/dev/null || return 0
        for ((i = 0; i < 100; i++)); do alive "$pid" || break; sleep 0.1; done
        alive "$pid" && kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null || true
}
cleanup() {
        local rc=$? p
        trap - EXIT INT TERM
        [[ -n $WRK_LOOP_PID ]] && stop "$WRK_LOOP_PID" TERM
        for p in "${SIGNER_PIDS[@]}"; do stop "$p" TERM; done
        [[ -n $AGENT_PID ]] && stop "$AGENT_PID" TERM
        if [[ -s $T/nginx.pid ]]; then stop "$(cat "$T/nginx.pid")" QUIT; fi
        if [[ $rc -ne 0 ]]; then
                for f in "$T/agent.log" "$T/nginx-error.log"; do
                        [[ -s $f ]] && { echo "--- $f (last 20 lines) ---" >&2; tail -n 20 "$f" >&2; } || true
                done
        fi
        if [[ -n ${SOAK_OUT:-} ]]; then
                mkdir -p "$SOAK_OUT"
                cp "$T"/*.tsv "$T"/header.txt "$T"/summary.txt "$SOAK_OUT"/ 2>/dev/null || true
                grep -v '^<7>' "$T/agent.log" >"$SOAK_OUT/agent.log" 2>/dev/null || true
        fi
        if [[ ${SOAK_KEEP:-0} == 1 ]]; then echo "soak: kept $T" >&2; else rm -rf "$T"; fi
        exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# gen_keycert KIND DIR NAME: a new key and a self-signed certificate (a stand-in for a renewal).
gen_keycert() {
        local kind=$1 dir=$2 name=$3 args
        case $kind in
        rsa2048) args=(-newkey rsa:2048) ;;
        ec-p256) args=(-newkey ec -pkeyopt ec_paramgen_curve:P-256) ;;
        ec-p384) args=(-newkey ec -pkeyopt ec_paramgen_curve:P-384) ;;
        ed25519) args=(-newkey ed25519) ;;
        *) die "unknown key kind $kind" ;;
        esac
        openssl req -x509 "${args[@]}" -nodes -days 30 -subj "/O=enclave-acm soak/CN=$name" \
                -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -keyout "$dir/key.pem" -out "$dir/chain.pem" 2>/dev/null
}
fp_of() { openssl x509 -in "$1" -noout -fingerprint -sha256 | sed 's/^.*=//'; }
served_fp() {
        timeout 10 openssl s_client -connect "127.0.0.1:$PORT" </dev/null 2>/dev/null |
                openssl x509 -noout -fingerprint -sha256 2>/dev/null | sed 's/^.*=//'
}

LABELS=(web ec256 ec384 ed)
read -r -a RENEW <<<"${SOAK_RENEW:-${LABELS[*]}}"
for l in "${RENEW[@]}"; do
        [[ " ${LABELS[*]} " == *" $l "* ]] || die "SOAK_RENEW: no token '$l' (tokens: ${LABELS[*]})"
done
declare -A KIND=([web]=rsa2048 [ec256]=ec-p256 [ec384]=ec-p384 [ed]=ed25519)
declare -A GEN=()
for l in "${LABELS[@]}"; do
        mkdir -p "$T/src/$l"
        GEN[$l]=0
        gen_keycert "${KIND[$l]}" "$T/src/$l" "soak-$l-0"
done

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=placeholder" -keyout "$T/nginx/placeholder.key.pem" \
        -out "$T/nginx/placeholder.crt.pem" 2>/dev/null
cat >"$T/stanza.conf" <<EOF
ssl_certificate $T/nginx/placeholder.crt.pem;
ssl_certificate_key $T/nginx/placeholder.key.pem;
EOF
# every request a full handshake, so every request is a signature in enclave-token
nginx_test_conf "$T" "$PORT" "ssl_session_cache off;" "ssl_session_tickets off;" "keepalive_timeout 0;"
{
        agent_yaml_local "$T" "$ETOK" 2
        cat <<EOF
log:
  level: info
tokens:
EOF
        for l in "${LABELS[@]}"; do
                printf '  - label: %s\n    source:\n      File:\n        key: %s\n        certificate: %s\n' \
                        "$l" "$T/src/$l/key.pem" "$T/src/$l/chain.pem"
                [[ $l == web ]] && printf '    target:\n      NginxStanza:\n        path: %s\n' "$T/stanza.conf"
        done
} >"$T/acm.yaml"
"$AGENT" --config "$T/acm.yaml" --check-config >"$T/check.log" 2>&1 || { cat "$T/check.log" >&2; die "--check-config"; }

nginx_openssl_cnf "$T" "$MODULE"
export ENCLAVE_ACM_ADDRESS_FILE=$T/run/address
OPENSSL_CONF=$T/openssl.cnf "$NGINX" -c "$T/nginx.conf" -e "$T/nginx-error.log" || die "nginx did not start"
OPENSSL_CONF=$T/openssl.cnf "$AGENT" --config "$T/acm.yaml" >"$T/agent.log" 2>&1 &
AGENT_PID=$!

# all_ready [LAUNCHES]: the agent's state file shows every token ready (after launch LAUNCHES or later).
all_ready() {
        local min=${1:-1} l launches
        [[ -s $T/run/status ]] || return 1
        launches=$(sed -n 's/^agent .*launches=\([0-9]*\).*/\1/p' "$T/run/status")
        [[ -n $launches ]] && ((launches >= min)) || return 1
        for l in "${LABELS[@]}"; do
                grep -q "^token label=$l state=ready " "$T/run/status" || return 1
        done
}
key_id() { sed -n "s/^token label=$1 state=ready .*key_id=\([0-9]*\).*/\1/p" "$T/run/status" 2>/dev/null; }
launches() { sed -n 's/^agent .*launches=\([0-9]*\).*/\1/p' "$T/run/status" 2>/dev/null; }
token_pid() { pgrep -P "$AGENT_PID" -x enclave-token | head -n 1; }
nginx_worker() { # the oldest worker that is not shutting down
        local m
        m=$(cat "$T/nginx.pid" 2>/dev/null) || return 0
        pgrep -P "$m" -f '^nginx: worker process$' | sort -n | head -n 1
}
signer_pid() { echo "${SIGNER_PIDS[0]:-}"; }
# wait_until SECONDS COMMAND...: poll every 0.2 s; status 1 if COMMAND never succeeds.
wait_until() {
        local n=$(($1 * 5)) i
        shift
        for ((i = 0; i < n; i++)); do
                "$@" >/dev/null 2>&1 && return 0
                alive "$AGENT_PID" || die "the agent exited"
                sleep 0.2
        done
        return 1
}

wait_until 60 all_ready || die "the tokens are not ready after 60 s"
WEB_FP=$(fp_of "$T/src/web/chain.pem")
served_is() { [[ $(served_fp) == "$1" ]]; }
wait_until 30 served_is "$WEB_FP" || die "nginx does not serve the token's certificate"

# --- the load ---
for ((i = 0; i < PROCS; i++)); do
        "$P11SOAK" --module "$MODULE" --pin-dir "$T/state/pins" --seconds $((total_s + 60)) --threads "$THREADS" \
                --rate "$RATE" --reopen 10 --stats "$T/signers/$i.stats" --events "$T/signers/$i.events" \
                "${LABELS[@]}" >"$T/signers/$i.out" 2>&1 &
        SIGNER_PIDS+=($!)
done
# wrk in chunks, one line each: start_ms end_ms requests connect read write timeout non2xx status
wrk_loop() {
        local s e rc wpid=
        trap '[[ -n $wpid ]] && kill "$wpid" 2>/dev/null; exit 0' TERM
        while :; do
                s=$(now_ms)
                wrk -t1 -c"$WRK_CONNS" -d"${WRK_CHUNK}s" --timeout 5s -H 'Connection: close' \
                        "https://127.0.0.1:$PORT/" >"$T/wrk.out" 2>&1 &
                wpid=$!
                rc=0
                wait "$wpid" || rc=$?
                wpid=
                e=$(now_ms)
                python3 - "$s" "$e" "$rc" "$T/wrk.out" >>"$T/wrk.tsv" <<'PY' || true
import re, sys
s, e, rc, path = sys.argv[1:5]
out = open(path).read()
m = re.search(r"(\d+) requests in", out)
req = int(m.group(1)) if m else 0
se = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
c, r, w, t = map(int, se.groups()) if se else (0, 0, 0, 0)
n = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
print(s, e, req, c, r, w, t, int(n.group(1)) if n else 0, rc, sep="\t")
PY
        done
}
: >"$T/wrk.tsv"
wrk_loop &
WRK_LOOP_PID=$!

# --- sampling and faults ---
: >"$T/procs.tsv" # ms proc pid rss_kB fds threads
: >"$T/ops.tsv"   # ms signatures failed badsig wrk_requests wrk_errors load1
: >"$T/faults.tsv" # kind start_ms end_ms detail
: >"$T/heap.tsv"   # ms heap_kB (the first p11soak process: malloc's live allocations)
sample_proc() { # NAME PID
        local name=$1 pid=$2 rss thr fds
        [[ -n $pid && -r /proc/$pid/status ]] || return 0
        rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null) || return 0
        thr=$(awk '/^Threads:/ { print $2 }' "/proc/$pid/status" 2>/dev/null) || return 0
        fds=$(find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l) || return 0
        [[ -n $rss && -n $thr ]] || return 0
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$3" "$name" "$pid" "$rss" "$fds" "$thr" >>"$T/procs.tsv"
}
sample() {
        local ms ops=0 err=0 bad=0 f wreq wer
        ms=$(now_ms)
        sample_proc enclave-token "$(token_pid)" "$ms"
        sample_proc agent "$AGENT_PID" "$ms"
        sample_proc nginx-worker "$(nginx_worker)" "$ms"
        sample_proc p11soak "$(signer_pid)" "$ms"
        # the first signer's malloc figure (heap_kB=, live allocations) next to its RSS
        f=$T/signers/0.stats
        if [[ -s $f ]] && read -r _ _ _ _ _ h _ <"$f" && [[ $h == heap_kB=* ]]; then
                printf '%s\t%s\n' "$ms" "${h#heap_kB=}" >>"$T/heap.tsv"
        fi
        for f in "$T"/signers/*.stats; do
                [[ -s $f ]] || continue
                read -r _ o e b _ <"$f" || continue
                ops=$((ops + ${o#ops=})) err=$((err + ${e#errors=})) bad=$((bad + ${b#badsig=}))
        done
        wreq=$(awk -F'\t' '{ s += $3 } END { print s + 0 }' "$T/wrk.tsv")
        wer=$(awk -F'\t' '{ s += $4 + $5 + $6 + $7 + $8 } END { print s + 0 }' "$T/wrk.tsv")
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$ms" "$ops" "$err" "$bad" "$wreq" "$wer" \
                "$(cut -d' ' -f1 /proc/loadavg)" >>"$T/ops.tsv"
}
fault_kill() {
        local pid before s e
        pid=$(token_pid)
        before=$(launches)
        [[ -n $pid ]] || { echo "soak: no enclave-token to kill" >&2; return 1; }
        s=$(now_ms)
        kill -KILL "$pid"
        if wait_until 60 all_ready $((before + 1)); then
                e=$(now_ms)
                printf 'kill\t%s\t%s\tpid %s, launch %s\n' "$s" "$e" "$pid" "$((before + 1))" >>"$T/faults.tsv"
        else
                printf 'kill\t%s\t%s\tpid %s, NOT RECOVERED within 60 s\n' "$s" "$(now_ms)" "$pid" >>"$T/faults.tsv"
        fi
}
RENEW_I=0
fault_renew() {
        local l=${RENEW[RENEW_I % ${#RENEW[@]}]} before s e fp g
        RENEW_I=$((RENEW_I + 1))
        before=$(key_id "$l")
        g=$((GEN[$l] + 1))
        GEN[$l]=$g
        rm -rf "$T/gen/$l" && mkdir -p "$T/gen/$l"
        gen_keycert "${KIND[$l]}" "$T/gen/$l" "soak-$l-$g"
        s=$(now_ms)
        # The certificate first, then the key: both renamed into place (what a renewal hook would do).
        mv "$T/gen/$l/chain.pem" "$T/src/$l/chain.pem"
        mv "$T/gen/$l/key.pem" "$T/src/$l/key.pem"
        key_changed() { local k; k=$(key_id "$l"); [[ -n $k && $k != "$before" ]]; }
        if wait_until 60 key_changed; then
                if [[ $l == web ]]; then
                        fp=$(fp_of "$T/src/web/chain.pem")
                        wait_until 30 served_is "$fp" || {
                                printf 'renew\t%s\t%s\t%s: key id %s -> %s, nginx NOT serving it within 30 s\n' "$s" \
                                        "$(now_ms)" "$l" "$before" "$(key_id "$l")" >>"$T/faults.tsv"
                                return 0
                        }
                fi
                e=$(now_ms)
                printf 'renew\t%s\t%s\t%s: key id %s -> %s\n' "$s" "$e" "$l" "$before" "$(key_id "$l")" >>"$T/faults.tsv"
        else
                printf 'renew\t%s\t%s\t%s: NOT ROTATED within 60 s (key id %s)\n' "$s" "$(now_ms)" "$l" "$before" \
                        >>"$T/faults.tsv"
        fi
}

START_MS=$(now_ms)
{
        echo "# bench/soak.sh $minutes: $(date -u +%Y-%m-%dT%H:%MZ), commit $(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo '?'),"
        echo "# $(nproc) CPUs ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n 1)), $(openssl version | cut -d' ' -f1-2),"
        echo "# load average at the start $(cut -d' ' -f1-3 /proc/loadavg); build $BUILD"
        echo "# $PROCS p11soak processes x $THREADS threads at $RATE signatures/s each, tokens ${LABELS[*]};" \
                "wrk $WRK_CONNS connections in ${WRK_CHUNK} s runs; a sample every $SAMPLE s, a fault every $FAULT_EVERY s" \
                "(every third a kill of enclave-token, the others a renewal of ${RENEW[*]} in turn);" \
                "mlock $([[ ${ENCLAVE_ACM_NO_MLOCK:-0} == 1 ]] && echo off || echo on)"
} >"$T/header.txt"
cat "$T/header.txt"
end_ms=$((START_MS + total_s * 1000))
next_sample=$START_MS
next_fault=$((START_MS + FAULT_EVERY * 1000))
last_fault=$((end_ms - FAULT_EVERY * 1000))
n_fault=0
while :; do
        ms=$(now_ms)
        ((ms < end_ms)) || break
        alive "$AGENT_PID" || die "the agent exited"
        if ((ms >= next_sample)); then
                sample
                next_sample=$((next_sample + SAMPLE * 1000))
                ((next_sample > ms)) || next_sample=$((ms + SAMPLE * 1000))
        fi
        if ((ms >= next_fault && ms <= last_fault)); then
                n_fault=$((n_fault + 1))
                if ((n_fault % 3 == 0)); then fault_kill; else fault_renew; fi
                next_fault=$(($(now_ms) + FAULT_EVERY * 1000))
                continue
        fi
        sleep 0.5
done
sample
echo "# load average at the end $(cut -d' ' -f1-3 /proc/loadavg)" >>"$T/header.txt"

# Stop the load, then the final counters.
stop "$WRK_LOOP_PID" TERM
WRK_LOOP_PID=
for p in "${SIGNER_PIDS[@]}"; do stop "$p" TERM; done
SIGNER_PIDS=()
cat "$T"/signers/*.events >"$T/events.tsv" 2>/dev/null || : >"$T/events.tsv"
grep -E '^<[0-4]>' "$T/agent.log" | sed 's/^<\([0-9]\)>/\1\t/' >"$T/agent-warnings.tsv" || true
grep -cE '\[(emerg|alert|crit)\]' "$T/nginx-error.log" >"$T/nginx-crit.count" || true

rc=0
python3 "$top/bench/soak-report.py" "$T" >"$T/summary.txt" || rc=$?
cat "$T/header.txt" "$T/summary.txt"
exit "$rc"
