#!/bin/bash
# Threads of one process searching for the token's keys and reading their attributes (what libp11 does
# when an Apache event-MPM child or an nginx worker loads its key) while the token is re-provisioned
# over and over (`token add --replace` with other keys, each a new generation): every search finds the key and every
# read of a found key succeeds. Written to reproduce the CKR_OBJECT_HANDLE_INVALID seen once in
# httpd-rotate-event under load: it has not failed yet (also not with 16 threads and a busy loop per
# CPU, about 200-370 re-provisions and 200 000-360 000 rounds per run), so it is a regression check,
# not a reproduction. The suspected window (find.c: the objects a refresh drops between
# objects_ready() and the lookup) is described in the issue report, not fixed without a failing test.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
# Under valgrind the module's threads run one at a time and a re-provision takes seconds: no race to try.
[[ -z $VALGRIND ]] || { echo "SKIP: a race between threads is not tried under valgrind (it serialises them)"; exit 77; }

SECS=10
start_daemon
provision web ec-p256
timeout $((SECS + 60)) "$P11_CLIENT" "$P11_MODULE" web open "login:$PIN" \
        "findthreads:8:$SECS:$T/stop" >"$T/find.out" 2>&1 &
client=$!
replaced=0
end=$((SECONDS + SECS - 2))
while ((SECONDS < end)) && kill -0 "$client" 2>/dev/null; do
        # Other keys each time (same key id): a new version, a new generation in TOKEN_LIST.
        if ((replaced % 2)); then provision web ec-p256 --replace; else provision web ec-p384 --replace; fi
        replaced=$((replaced + 1))
done
touch "$T/stop"
rc=0
wait "$client" || rc=$?
grep '^#' "$T/find.out" || true
echo "# generations seen by the client: $(grep -c "refresh_apply:" "$T/find.out" || true), objects read: $(grep -c "key(s) cached" "$T/find.out" || true)"
echo "# $replaced re-provisions meanwhile"
((rc == 0)) || { cat "$T/find.out" >&2; fail "a search or a read failed while the token was re-provisioned"; }
((replaced >= 10)) || fail "only $replaced re-provisions: the race was hardly tried"
ok "8 threads searched and read the keys through $replaced re-provisions without a failure"
finish
