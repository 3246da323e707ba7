# Helpers shared by the agent's integration scripts (agent-local, agent-httpd, agent-nitro-fake).
# Sourced after the script has set T (its temp dir); each script keeps its own cleanup trap.

. "$(dirname "${BASH_SOURCE[0]}")/keep-logs.sh"
. "$(dirname "${BASH_SOURCE[0]}")/ports.sh"
. "$(dirname "${BASH_SOURCE[0]}")/../lib/nginx-conf.sh"
CHECKS=0
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { CHECKS=$((CHECKS + 1)); echo "ok $CHECKS - $*"; }

# wait_for SECONDS DESCRIPTION COMMAND...: poll every 0.1 s, fail with DESCRIPTION at the end.
wait_for() {
        local secs=$1 desc=$2 i
        shift 2
        for ((i = 0; i < secs * 10; i++)); do
                "$@" >/dev/null 2>&1 && return 0
                sleep 0.1
        done
        fail "$desc (not within $secs s)"
}

# alive PID: exists and is not a zombie (an exited child waits a moment to be reaped).
alive() {
        local st
        st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
        [[ $st != Z* ]]
}

fp_of() { openssl x509 -in "$1" -noout -fingerprint -sha256 | sed 's/^.*=//'; }
# served_fp: the fingerprint of the certificate served on 127.0.0.1:$PORT now (no verification).
served_fp() {
        timeout 10 openssl s_client -connect "127.0.0.1:$PORT" </dev/null >"$T/served.out" 2>&1 || true
        openssl x509 -in "$T/served.out" -noout -fingerprint -sha256 2>/dev/null | sed 's/^.*=//'
}
serves() { [[ $(served_fp) == "$1" ]]; }

# start_notify_listener: a NOTIFY_SOCKET at $T/notify.sock logging one line per datagram ('|' for
# newlines) to $T/notify.log; sets NOTIFY_PID.
start_notify_listener() {
        python3 -u -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
while True:
    print(s.recv(4096).decode().replace("\n", "|"), flush=True)
' "$T/notify.sock" >"$T/notify.log" 2>&1 &
        NOTIFY_PID=$!
        wait_for 5 "the notify listener is up" test -S "$T/notify.sock"
}

# stop_agent: SIGTERM; the agent must exit with status 0 within 10 s. Clears AGENT_PID.
stop_agent() {
        local i rc
        kill -TERM "$AGENT_PID"
        for ((i = 0; i < 100; i++)); do alive "$AGENT_PID" || break; sleep 0.1; done
        alive "$AGENT_PID" && fail "the agent did not stop within 10 s"
        wait "$AGENT_PID" && rc=0 || rc=$?
        AGENT_PID=
        [[ $rc == 0 ]] || fail "the agent exited with status $rc"
}

# cleanup_agent RC FILE...: for an EXIT trap: the agent (SIGTERM, then SIGKILL) and the notify listener
# stopped; after a failure (RC neither 0 nor 77) the last 40 lines of each FILE shown.
cleanup_agent() {
        local rc=$1 f
        shift
        [[ -n ${AGENT_PID:-} ]] && kill -TERM "$AGENT_PID" 2>/dev/null && sleep 1 || true
        [[ -n ${AGENT_PID:-} ]] && kill -KILL "$AGENT_PID" 2>/dev/null || true
        [[ -n ${NOTIFY_PID:-} ]] && kill "$NOTIFY_PID" 2>/dev/null || true
        keep_logs "${T-}"
        [[ $rc -ne 0 && $rc -ne 77 ]] || return 0
        for f in "$@"; do
                [[ -s $f ]] && { echo "--- $f (last 40 lines) ---" >&2; tail -n 40 "$f" >&2; } || true
        done
}

# handshakes: 200 TLS handshakes with nginx on 127.0.0.1:$PORT, 50 ms apart (run it in the background
# across a rotation); the number that failed lands in $T/handshake-failures.
handshakes() {
        local i fails=0
        for i in $(seq 200); do
                timeout 10 openssl s_client -connect "127.0.0.1:$PORT" </dev/null >/dev/null 2>&1 ||
                        fails=$((fails + 1))
                sleep 0.05
        done
        echo "$fails" >"$T/handshake-failures"
}

# agent_nginx_skip_unless TOOL...: exits 77 (skip) unless nginx, openssl and the TOOLs are installed,
# the libp11 engine is there, this runs as root and the www-data user exists (nginx's master runs as
# root, its workers as www-data).
agent_nginx_skip_unless() {
        local t engine
        for t in nginx openssl "$@"; do
                command -v "$t" >/dev/null 2>&1 || { echo "SKIP: '$t' is not installed"; exit 77; }
        done
        engine=$(nginx_libp11_engine)
        [[ -f $engine ]] || { echo "SKIP: the libp11 engine ($engine) is not installed"; exit 77; }
        [[ $(id -u) == 0 ]] || { echo "SKIP: needs root (nginx master as root, workers as www-data)"; exit 77; }
        id www-data >/dev/null 2>&1 || { echo "SKIP: no www-data user"; exit 77; }
}

# agent_nginx_conf PORT [SERVER_LINE...]: $T/nginx.conf for an nginx the agent manages, with
# $T/stanza.conf included (the agent's target): tests/lib/nginx-conf.sh.
agent_nginx_conf() {
        nginx_test_conf "$T" "$@"
}
