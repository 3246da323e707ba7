#!/bin/bash
# The module follows its address file while it is busy: a process signing without a pause, whose pooled
# connection never breaks, moves to the enclave the file names within a few seconds of the change (the
# agent's enclave upgrade relies on this to drain the old enclave instead of stopping it under its
# clients). Two enclave-token processes hold the same token; the client keeps signing across the move
# without a failure, and the old one ends up with no data connection while the new one has it.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
require_tool openssl

head -c 300 /dev/urandom >"$T/data"

# A: the usual daemon of lib.sh; B: a second one on its own sockets, with the same token.
start_daemon
provision web rsa2048
B_DATA="unix:path=$T/data-b.sock"
B_CONTROL="unix:path=$T/control-b.sock"
"$ENCLAVE_TOKEN" --dev --log-level debug --data "$B_DATA" --control "$B_CONTROL" --workers 2 \
        >>"$T/daemon-b.log" 2>&1 &
B_PID=$!
BG_PIDS+=("$B_PID")
for ((i = 0; i < 1200; i++)); do
        ENCLAVE_ACM_CONTROL=$B_CONTROL "$ENCLAVE_ACM_BIN" status >/dev/null 2>&1 && break
        kill -0 "$B_PID" 2>/dev/null || fail "the second enclave-token exited at start"
        sleep 0.05
done
ENCLAVE_ACM_CONTROL=$B_CONTROL provision web rsa2048

# Connected (not listening) sockets at a unix path, as the agent counts an enclave's clients.
connections() { # PATH
        awk -v p="$1" '$4 !~ /10000$/ && $6 == "03" && $8 == p { n++ } END { print n + 0 }' /proc/net/unix
}
a_path=${DATA_ADDR#unix:path=}
b_path=${B_DATA#unix:path=}

# The client reads the address file, as it does when the agent runs it.
printf '%s\n' "$DATA_ADDR" >"$T/address"
(
        unset ENCLAVE_ACM_ADDRESS
        export ENCLAVE_ACM_ADDRESS_FILE=$T/address
        exec timeout 120 "$P11_CLIENT" "$P11_MODULE" web open "login:$PIN" findkey touch:"$T/ready" \
                signuntil:"$T/stop":100000000:SHA256-RSA-PKCS:"$T/data"
) >"$T/client.out" 2>&1 &
CLIENT=$!
BG_PIDS+=("$CLIENT")
wait_for_file "$T/ready" 60 || { cat "$T/client.out" >&2; fail "the client did not start"; }
end=$((SECONDS + 60))
until (($(connections "$a_path") >= 1)); do
        ((SECONDS < end)) || fail "the client has no connection to the first enclave-token"
        sleep 0.1
done
ok "a busy client signs through the first enclave-token"

# The move: the file names B (written aside and renamed, as the agent writes it).
printf '%s\n' "$B_DATA" >"$T/address.new"
mv "$T/address.new" "$T/address"
end=$((SECONDS + 60))
until (($(connections "$a_path") == 0 && $(connections "$b_path") >= 1)); do
        kill -0 "$CLIENT" 2>/dev/null || { cat "$T/client.out" >&2; fail "the client stopped during the move"; }
        ((SECONDS < end)) || fail "60 s after the address file changed: $(connections "$a_path") connection(s) to the old enclave-token, $(connections "$b_path") to the new one"
        sleep 0.1
done
ok "the address file names another enclave-token: the busy client's connections left the old one for it"

# Nothing failed across the move: every call was answered by one of the two.
sleep 1
touch "$T/stop"
wait "$CLIENT" || { cat "$T/client.out" >&2; fail "a signature failed across the move"; }
BG_PIDS=("$B_PID")
ok "no failed call across the move (the module logged in on the new enclave-token by itself)"

finish
