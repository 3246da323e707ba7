#!/bin/bash
# Unprivileged local users against the data socket, with enclave-token's default limits: one uid opening
# thousands of idle connections holds at most its per-uid bound; half-sent frames and connections that
# never send HELLO are closed after their timeouts; a well-behaved client of another uid connects, logs
# in and signs during the attack; and the memory of the burst goes back once the connections close.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
require_tool openssl setpriv
[[ $EUID -eq 0 ]] || { echo "SKIP: needs root to run the attackers as other users"; exit 77; }
[[ -z $VALGRIND ]] || { echo "SKIP: thousands of connections under valgrind"; exit 77; }

PER_UID=1024 # enclave-token's default: a quarter of --max-connections (4096)
FLOOD=4200   # more than the total
ulimit -n 16384 2>/dev/null || ulimit -n "$(ulimit -Hn)"
(($(ulimit -n) > FLOOD + 64)) || { echo "SKIP: RLIMIT_NOFILE $(ulimit -n) is too small"; exit 77; }
chmod 0755 "$T"
mkdir -m 0777 "$T/att" # the attackers' status files
as_uid() { # UID COMMAND...: an unprivileged user without a passwd entry, no groups
        local u=$1
        shift
        setpriv --reuid="$u" --regid="$u" --clear-groups "$@"
}
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$DAEMON_PID/status"; }
status_of() { # FILE KEY: a figure from a junk-client status file
        sed -n "s/.* $2=\([0-9]*\).*/\1/p" "$1"
}

head -c 32 /dev/zero >"$T/data"
openssl x509 -in "$TEST_DATA/rsa2048.crt.pem" -noout -pubkey >"$T/rsa.pub"
start_daemon --socket-mode 0666
provision rsa rsa2048
SOCK=$T/data.sock

# sign NAME: a new root client connects, logs in and signs; the signature must verify.
sign() {
        timeout 60 "$P11_CLIENT" "$P11_MODULE" rsa open "login:$PIN" findkey \
                sign:SHA256-RSA-PKCS:"$T/data":"$T/$1.sig" >"$T/$1.out" 2>&1 || { cat "$T/$1.out" >&2; return 1; }
        openssl dgst -sha256 -verify "$T/rsa.pub" -signature "$T/$1.sig" "$T/data" >/dev/null
}
check "a root client signs before the attack" sign before
base=$(rss_kib)

# Attacker 1 (nobody, whose name is also a group's on some systems: numeric ids throughout): FLOOD connections that complete HELLO, then sit idle.
as_uid "$(id -u nobody)" "$JUNK_CLIENT" "$SOCK" flood "$FLOOD" hello 120 "$T/att/idle.status" >"$T/idle.out" 2>&1 &
idle_pid=$!
BG_PIDS+=("$idle_pid")
for ((i = 0; i < 1000; i++)); do
        [[ -e $T/att/idle.status ]] && break
        kill -0 "$idle_pid" 2>/dev/null || { cat "$T/idle.out" >&2; fail "the idle flood ended early"; }
        sleep 0.1
done
[[ -e $T/att/idle.status ]] || fail "the idle flood did not settle within 100 s"
held=$(status_of "$T/att/idle.status" open)
echo "# nobody opened $FLOOD connections with HELLO; still open: $held (bound $PER_UID)"
((held <= PER_UID)) || fail "one uid holds $held connections, above its bound of $PER_UID"
((held >= PER_UID / 2)) || fail "one uid holds only $held connections: its own idle ones should make room"
ok "an idle flood from one uid holds at most its bound ($held of $FLOOD open)"

# Attackers 2-5 (other uids): half-sent headers before HELLO, half-sent headers and largest bodies after
# it, connections that never send HELLO.
for a in 64999:half-header:200 64996:hello+half-header:200 64998:hello+half-big:200 64997:idle:200; do
        IFS=: read -r uid kind n <<<"$a"
        as_uid "$uid" "$JUNK_CLIENT" "$SOCK" flood "$n" "$kind" 60 >"$T/$kind.out" 2>&1 &
        BG_PIDS+=($!)
        eval "pid_${kind//[-+]/_}=\$!"
done
sleep 1
during=$(rss_kib)
check "a root client connects, logs in and signs during the attack" sign during

for kind in half-header hello+half-header hello+half-big idle; do
        eval "pid=\$pid_${kind//[-+]/_}"
        wait "$pid" || { cat "$T/$kind.out" >&2; fail "the $kind flood failed"; }
        cat "$T/$kind.out"
        opened=$(status_of "$T/$kind.out" opened)
        left=$(status_of "$T/$kind.out" still_open)
        ((opened > 0)) || fail "the $kind flood opened no connection"
        ((left == 0)) || fail "$left of $opened '$kind' connections were still open after 60 s"
        ok "every '$kind' connection ($opened) was closed by the daemon"
done
check "a root client signs after the half-frame attack" sign mid

# The idle flood ends: its connections close, and the memory goes back.
kill "$idle_pid" 2>/dev/null || true
wait "$idle_pid" 2>/dev/null || true
after=$(rss_kib)
for ((i = 0; i < 300 && after >= base + 16384; i++)); do
        sleep 0.1
        after=$(rss_kib)
done
sleep 1
echo "# enclave-token RSS: before ${base} KiB, during ${during} KiB, after ${after} KiB, 1 s later $(rss_kib) KiB"
grep 'Connection limits' "$T/daemon.log" | tail -n 5 || true
((after < base + 16384)) || fail "RSS after the attack ${after} KiB is not within 16 MiB of ${base} KiB"
ok "RSS went back within 16 MiB of the baseline (${base} -> ${during} -> ${after} KiB)"
check "a root client signs after the attack" sign after
finish
