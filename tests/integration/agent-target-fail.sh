#!/bin/bash
# enclave-acm-agent rotating a File source's key while its nginx-stanza target cannot be written (its
# directory replaced by a regular file: ENOTDIR, for root too). The agent must not retire the key version
# the server still uses: no TOKEN_ADD replace is sent while the target fails (the enclave's generation
# and the agent's debug log agree), key id 1 stays current and still signs well after enclave-token's
# rotation grace (2 s here), the previous stanza is intact. Once the directory is back the rotation goes
# through with exactly one replace, the stanza moves to key id 2 and the new key signs; only then is key
# id 1 retired (gone once the grace is over). Then the stanza can be written but the server's config
# test fails after the replace: the replaced version (the one the server uses) is held, signs well after
# the grace, and no TOKEN_RELEASE is sent; once the test passes the stanza moves, the release is sent
# once, and the old key id stops signing after the grace. Then, as root, the agent's memory
# (/proc/PID/mem) must hold neither key's DER, a 32-byte slice of it, nor a line of its PEM: the key is
# wiped once it is sent. Local launcher; a stand-in `nginx` (its config test passes unless
# $T/nginx-fail exists; no pid file: the server counts as stopped).
# Plain script: exit 0 pass, 77 skip, anything else fail.
set -euo pipefail
. "$(dirname "$0")/agent-lib.sh"

: "${AGENT:?}" "${ENCLAVE_TOKEN:?}" "${P11_MODULE:?}" "${P11_CLIENT:?}" "${TEST_DATA:?}" "${ENCLAVE_ACM:?}"
for t in openssl python3; do
        command -v "$t" >/dev/null 2>&1 || { echo "SKIP: '$t' is not installed"; exit 77; }
done
if [[ ${ENCLAVE_ACM_UNDER_VALGRIND:-} == 1 && -z ${EACM_IT_REEXEC:-} ]]; then
        EACM_IT_REEXEC=1 exec bash "$0" "$@"
fi

GRACE=2
[[ ${ENCLAVE_ACM_UNDER_VALGRIND:-} == 1 ]] && GRACE=10
AGENT_PID='' NOTIFY_PID=''
T=$(mktemp -d /tmp/eacm-tfail.XXXXXX)
cleanup() {
        local rc=$?
        trap - EXIT
        cleanup_agent "$rc" "$T/agent.log" "$T/sign.out" "$T/scan.out"
        while mountpoint -q "$T/conf" 2>/dev/null; do umount -l "$T/conf" || break; done
        while mountpoint -q "$T/full" 2>/dev/null; do umount -l "$T/full" || break; done
        rm -rf "$T"
        exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$T/run" "$T/state" "$T/src" "$T/conf" "$T/bin"
export ENCLAVE_ACM_ADDRESS_FILE=$T/run/address ENCLAVE_ACM_NO_MLOCK=1 ENCLAVE_ACM_TIMEOUT_MS=5000
unset ENCLAVE_ACM_ADDRESS
printf 'target fail %02d\n' $(seq 1 8) >"$T/data"
cp "$TEST_DATA/rsa2048.key.pem" "$T/src/key.pem"
cp "$TEST_DATA/rsa2048.crt.pem" "$T/src/chain.pem"
PIN=it-pin-tfail

# enclave-token with a short rotation grace: the local launcher runs token_binary with its own arguments.
cat >"$T/bin/enclave-token" <<EOF
#!/bin/sh
exec "$ENCLAVE_TOKEN" --rotation-grace $GRACE "\$@"
EOF
# The web server's config test passes unless $T/nginx-fail exists; there is no pid file, so the server
# counts as stopped and is left so (force_start: false): only the stanza file matters here.
cat >"$T/bin/nginx" <<EOF
#!/bin/sh
if [ -e "$T/nginx-fail" ]; then echo 'nginx: [emerg] stand-in config test failure' >&2; exit 1; fi
exit 0
EOF
chmod 0755 "$T/bin/enclave-token" "$T/bin/nginx"
export PATH=$T/bin:$PATH

cat >"$T/acm.yaml" <<EOF
enclave:
  launcher: local
  token_binary: $T/bin/enclave-token
  boot_timeout_ms: 10000
options:
  service: nginx
  server_control: direct
  server_pid_file: $T/nginx.pid
  force_start: false
  runtime_dir: $T/run
  state_dir: $T/state
  sync_interval_secs: 1
log:
  level: debug
tokens:
  - label: web
    pin: '$PIN'
    source:
      File:
        key: $T/src/key.pem
        certificate: $T/src/chain.pem
    target:
      NginxStanza:
        path: $T/conf/stanza.conf
EOF

# signs KEYID PUBNAME: a fresh process finds the key with that CKA_ID and signs; checked with the key.
signs() {
        rm -f "$T/sig"
        "$P11_CLIENT" "$P11_MODULE" web open "login:$PIN" "findkey:$1" "sign:SHA256-RSA-PKCS:$T/data:$T/sig" \
                >"$T/sign.out" 2>&1 &&
                openssl dgst -sha256 -verify "$TEST_DATA/$2.pub.pem" -signature "$T/sig" "$T/data" >>"$T/sign.out" 2>&1
}
# generation: the enclave's generation (bumped by every TOKEN_ADD and TOKEN_REMOVE).
generation() {
        "$ENCLAVE_ACM" status --json --runtime-dir "$T/run" | python3 -c 'import json, sys; print(json.load(sys.stdin)["generation"])'
}
# replaces: the TOKEN_ADDs the agent logged (one line each).
replaces() { grep -c "^<6>Token 'web' provisioned in slot [0-9]* with key id" "$T/agent.log" || true; }
stanza_id() { sed -n 's/.*;id=%\([0-9a-f]*\);.*/\1/p' "$T/conf/stanza.conf"; }
stanza_is() { [[ $(stanza_id) == "$1" ]]; }
attempts() { grep -c "^<3>Token 'web': target '$T/conf/stanza.conf': " "$T/agent.log" || true; }
attempts_at_least() { (($(attempts) >= $1)); }
# releases: the TOKEN_RELEASEs the agent logged.
releases() { grep -c "^<6>Token 'web': the server uses key id [0-9]*; [0-9]* held version(s) released" "$T/agent.log" || true; }
rejected() { grep -c "^<3>Token 'web': target '$T/conf/stanza.conf': the config test rejected" "$T/agent.log" || true; }
rejected_at_least() { (($(rejected) >= $1)); }

"$AGENT" --config "$T/acm.yaml" --check-config >"$T/check.log" 2>&1 || { cat "$T/check.log"; fail "--check-config"; }
start_notify_listener
# Without MALLOC_PERTURB_ (meson sets it): freed memory must keep what was in it, as in production,
# so the memory scan below sees a copy that was freed without being wiped.
NOTIFY_SOCKET=$T/notify.sock env -u MALLOC_PERTURB_ "$AGENT" --config "$T/acm.yaml" >"$T/agent.log" 2>&1 &
AGENT_PID=$!
wait_for 30 "the agent sends READY=1" grep -q 'READY=1' "$T/notify.log"
wait_for 10 "the stanza uses key id 1" stanza_is 01
signs 01 rsa2048 || fail "key id 1 does not sign"
[[ $(replaces) == 1 ]] || fail "expected one TOKEN_ADD at provisioning, the log shows $(replaces)"
ok "provisioned: the stanza uses key id 1, which signs"

# The target's directory becomes a regular file, then the key changes.
mv "$T/conf" "$T/conf.saved"
: >"$T/conf"
GEN0=$(generation)
cp "$TEST_DATA/rsa3072.key.pem" "$T/src/key.pem.new"
cp "$TEST_DATA/rsa3072.crt.pem" "$T/src/chain.pem.new"
mv "$T/src/chain.pem.new" "$T/src/chain.pem"
mv "$T/src/key.pem.new" "$T/src/key.pem"
wait_for 20 "the agent reports the unwritable target" attempts_at_least 1
# Wait out the grace period twice over while the agent keeps retrying.
sleep $((2 * GRACE + 1))
wait_for 20 "a second attempt" attempts_at_least 2
alive "$AGENT_PID" || fail "the agent died"
[[ $(generation) == "$GEN0" ]] || fail "the enclave's generation moved ($GEN0 -> $(generation)): a replace was sent"
[[ $(replaces) == 1 ]] || fail "TOKEN_ADD was sent $(($(replaces) - 1)) more time(s) while the target failed"
grep -q "cannot write a file next to '$T/conf/stanza.conf': Not a directory" "$T/agent.log" ||
        fail "the error does not say why the target cannot be written"
grep -q "the key is not rotated (the server keeps its key id, which stays current in the enclave)" "$T/agent.log" ||
        fail "the error does not say that key id 1 stays current"
ok "target unwritable: $(attempts) attempts, no replace sent (enclave generation $GEN0 unchanged)"
signs 01 rsa2048 || fail "key id 1 no longer signs after the rotation grace, while the server still uses it"
"$P11_CLIENT" "$P11_MODULE" web open "login:$PIN" countkeys:1 >"$T/sign.out" 2>&1 || fail "expected one key"
ok "after twice the rotation grace key id 1, the one the server uses, still signs"
[[ $(sed -n 's/.*;id=%\([0-9a-f]*\);.*/\1/p' "$T/conf.saved/stanza.conf") == 01 ]] || fail "the previous stanza changed"
ok "the previous stanza is intact"

# The directory is back: one replace, the stanza moves to key id 2, which signs.
rm "$T/conf"
mv "$T/conf.saved" "$T/conf"
wait_for 20 "the stanza moves to key id 2" stanza_is 02
[[ $(replaces) == 2 ]] || fail "expected exactly one replace for the rotation, the log shows $(($(replaces) - 1))"
GEN1=$(generation)
[[ $GEN1 == $((GEN0 + 1)) ]] || fail "the enclave's generation moved by $((GEN1 - GEN0)), expected 1"
signs 02 rsa3072 || fail "key id 2 does not sign"
ok "target writable again: exactly one replace, the stanza uses key id 2, which signs"
sleep $((GRACE + 1))
"$P11_CLIENT" "$P11_MODULE" web open "login:$PIN" countkeys:1 findkey:02 >"$T/sign.out" 2>&1 ||
        fail "the token does not hold key id 2 alone"
signs 01 rsa2048 && fail "key id 1 still signs after the server moved and the grace is over"
ok "after the move and the grace period key id 1 is retired"

# As root: the same with the target's directory on a read-only bind mount (EROFS), then on a full
# tmpfs (ENOSPC), rotating back to the first key (under key id 3: a new id for each key).
if [[ $(id -u) != 0 ]] || ! mount --bind "$T/conf" "$T/conf" 2>/dev/null; then
        echo "# SKIP read-only and full file systems: needs root and mount"
else
        mount -o remount,bind,ro "$T/conf" || fail "cannot make the bind mount read-only"
        GEN0=$(generation) N0=$(replaces) A0=$(attempts)
        cp "$TEST_DATA/rsa2048.key.pem" "$T/src/key.pem.new"
        cp "$TEST_DATA/rsa2048.crt.pem" "$T/src/chain.pem.new"
        mv "$T/src/chain.pem.new" "$T/src/chain.pem"
        mv "$T/src/key.pem.new" "$T/src/key.pem"
        wait_for 20 "the agent reports the read-only target twice" attempts_at_least $((A0 + 2))
        grep -q "cannot write a file next to '$T/conf/stanza.conf': Read-only file system" "$T/agent.log" ||
                fail "the error does not say the target is read-only"
        [[ $(generation) == "$GEN0" && $(replaces) == "$N0" ]] || fail "a replace was sent while the target was read-only"
        stanza_is 02 || fail "the stanza changed"
        signs 02 rsa3072 || fail "key id 2, the one the server uses, no longer signs"
        ok "read-only target: $(($(attempts) - A0)) attempts, no replace, key id 2 still current and signing"

        # The full tmpfs goes on top of the read-only bind mount, which stays underneath until the
        # cleanup: unmounting it first would leave the agent's retry a moment with a writable target. It
        # is filled aside and bound over the target in one step: mounted there empty, it was writable
        # while cp and dd ran, and the agent's retry once a second could land in that window and
        # succeed (under ASan it did, rotating to key id 3 before the test had filled the disk).
        mkdir "$T/full"
        mount -t tmpfs -o size=64k,mode=0755 tmpfs "$T/full" || fail "cannot mount a tmpfs"
        cp "$T/conf/stanza.conf" "$T/full/stanza.conf"
        dd if=/dev/zero of="$T/full/fill" bs=4k >/dev/null 2>&1 || true
        mount --bind "$T/full" "$T/conf" || fail "cannot bind the full tmpfs over the target"
        A0=$(attempts)
        wait_for 20 "the agent reports the full target twice" attempts_at_least $((A0 + 2))
        grep -q "cannot write a file next to '$T/conf/stanza.conf': No space left on device" "$T/agent.log" ||
                fail "the error does not say the target's file system is full"
        [[ $(generation) == "$GEN0" && $(replaces) == "$N0" ]] || fail "a replace was sent while the target was full"
        stanza_is 02 || fail "the stanza changed"
        ok "full target: $(($(attempts) - A0)) attempts, no replace, the stanza intact"

        rm "$T/conf/fill"
        wait_for 20 "the stanza moves to key id 3" stanza_is 03
        [[ $(replaces) == $((N0 + 1)) ]] || fail "expected exactly one replace, the log shows $(($(replaces) - N0))"
        [[ $(generation) == $((GEN0 + 1)) ]] || fail "the enclave's generation moved by $(($(generation) - GEN0)), expected 1"
        signs 03 rsa2048 || fail "key id 3 does not sign"
        ok "space freed: exactly one replace, the stanza uses key id 3, which signs"
fi

# The stanza can be written but the server's config test fails after the replace: the version the
# server uses (its key id OLD) is held, so an old worker (logged in before the rotation, as nginx's
# workers are) signs with it well after the grace; no release is sent until the server has moved.
OLD=$(stanza_id)
NEW=$(printf '%02x' $((16#$OLD + 1))) # a new key id for each key
if [[ $OLD == 02 ]]; then NEWKEY=rsa2048 OLDKEY=rsa3072; else NEWKEY=rsa3072 OLDKEY=rsa2048; fi
S=SHA256-RSA-PKCS
"$P11_CLIENT" "$P11_MODULE" web open "login:$PIN" "findkey:$OLD" "sign:$S:$T/data:$T/w0.sig" "touch:$T/w.ready" \
        "wait:$T/w.go1" "sign:$S:$T/data:$T/w1.sig" "touch:$T/w.done1" \
        "wait:$T/w.go2" expect:CKR_KEY_HANDLE_INVALID\|CKR_USER_NOT_LOGGED_IN "sign:$S:$T/data:$T/w2.sig" \
        >"$T/worker.out" 2>&1 &
WORKER_PID=$!
worker_signed() { openssl dgst -sha256 -verify "$TEST_DATA/$OLDKEY.pub.pem" -signature "$1" "$T/data" >/dev/null 2>&1; }
wait_for 20 "the old worker signs before the rotation" test -e "$T/w.ready"
worker_signed "$T/w0.sig" || { cat "$T/worker.out"; fail "the old worker's signature does not verify"; }
GEN0=$(generation) N0=$(replaces) R0=$(releases) J0=$(rejected)
: >"$T/nginx-fail"
cp "$TEST_DATA/$NEWKEY.key.pem" "$T/src/key.pem.new"
cp "$TEST_DATA/$NEWKEY.crt.pem" "$T/src/chain.pem.new"
mv "$T/src/chain.pem.new" "$T/src/chain.pem"
mv "$T/src/key.pem.new" "$T/src/key.pem"
wait_for 20 "the config test rejects the new stanza" rejected_at_least $((J0 + 1))
[[ $(replaces) == $((N0 + 1)) ]] || fail "expected one replace, the log shows $(($(replaces) - N0))"
grep -q "^<6>Token 'web' provisioned in slot [0-9]* with key id [0-9]*; the enclave holds the version(s) it replaced" "$T/agent.log" ||
        fail "the replace did not hold the replaced version"
sleep $((2 * GRACE + 1))
wait_for 20 "the config test rejects it again" rejected_at_least $((J0 + 2))
[[ $(replaces) == $((N0 + 1)) && $(generation) == $((GEN0 + 1)) ]] || fail "the replace was sent again"
[[ $(releases) == "$R0" ]] || fail "TOKEN_RELEASE was sent while the server had not moved"
stanza_is "$OLD" || fail "the stanza changed although the config test failed"
: >"$T/w.go1"
wait_for 20 "the old worker signs again" test -e "$T/w.done1"
worker_signed "$T/w1.sig" ||
        { cat "$T/worker.out"; fail "key id $OLD, the one the server uses, no longer signs after twice the grace"; }
signs "$NEW" "$NEWKEY" || fail "key id $NEW, the current version, does not sign"
ok "config test failing after the replace: $(($(rejected) - J0)) attempts, one replace, no release; key id $OLD still signs after twice the grace"

# The config test passes again: the stanza moves, one TOKEN_RELEASE, and key id OLD goes after the grace.
rm "$T/nginx-fail"
wait_for 20 "the stanza moves to key id $NEW" stanza_is "$NEW"
wait_for 10 "TOKEN_RELEASE is sent" eval '(($(releases) > R0))'
[[ $(releases) == $((R0 + 1)) ]] || fail "expected one TOKEN_RELEASE, the log shows $(($(releases) - R0))"
[[ $(replaces) == $((N0 + 1)) ]] || fail "the replace was sent again"
signs "$NEW" "$NEWKEY" || fail "key id $NEW does not sign"
sleep $((GRACE + 1))
: >"$T/w.go2"
wait "$WORKER_PID" || { cat "$T/worker.out"; fail "key id $OLD still signs for the old worker after the release and the grace"; }
"$P11_CLIENT" "$P11_MODULE" web open "login:$PIN" countkeys:1 "findkey:$NEW" >"$T/sign.out" 2>&1 ||
        fail "the token does not hold key id $NEW alone"
ok "config test fixed: the stanza uses key id $NEW, one TOKEN_RELEASE, key id $OLD gone for the old worker after the grace"

# The agent's memory holds no copy of either private key.
if [[ $(id -u) != 0 ]]; then
        echo "# SKIP memory scan: needs root (the agent is not dumpable)"
else
        for k in rsa2048 rsa3072; do
                openssl pkey -in "$TEST_DATA/$k.key.pem" -outform DER -out "$T/$k.der"
                openssl pkey -in "$TEST_DATA/$k.key.pem" -out "$T/$k.p8.pem"
        done
        python3 - "$AGENT_PID" "$T/rsa2048.der" "$T/rsa2048.p8.pem" "$T/rsa3072.der" "$T/rsa3072.p8.pem" \
                >"$T/scan.out" 2>&1 <<'EOF' || { cat "$T/scan.out" >&2; fail "private key bytes in the agent's memory"; }
import os, platform, re, signal, sys, time

pid = int(sys.argv[1])
needles = []
for der_path, pem_path in zip(sys.argv[2::2], sys.argv[3::2]):
    der = open(der_path, "rb").read()
    lines = open(pem_path, "rb").read().split(b"\n")
    # An RSA key's DER starts with the public modulus (in the certificate too): the slices are taken
    # from its middle (the private exponent or a prime) and its end (the CRT coefficient).
    mid = len(der) // 2
    needles += [(der_path + " DER", der), (der_path + " DER[mid:mid+32]", der[mid:mid + 32]),
                (der_path + " DER[-64:-32]", der[-64:-32]), (pem_path + " PEM line 5", lines[5])]
# The scan runs with the agent stopped in its idle poll(), never in the middle of a sync.
idle = {"x86_64": {"7", "271"}, "aarch64": {"73"}}.get(platform.machine(), set())
for attempt in range(100):
    os.kill(pid, signal.SIGSTOP)
    time.sleep(0.05)
    nr = open("/proc/%d/syscall" % pid).read().split()[0]
    if not idle or nr in idle:
        break
    os.kill(pid, signal.SIGCONT)
    time.sleep(0.03)
else:
    sys.exit("the agent was never seen idle")
found, skipped = [], 0
# Read in chunks that overlap by the longest needle. A mapping over 1 GiB is an AddressSanitizer
# shadow or allocator reservation (the agent's own heap is a few MiB): counted, not read.
CHUNK, overlap = 16 << 20, max(len(n) for _, n in needles)
try:
    with open("/proc/%d/mem" % pid, "rb", 0) as mem:
        for line in open("/proc/%d/maps" % pid):
            m = re.match(r"([0-9a-f]+)-([0-9a-f]+) (\S+)", line)
            if m.group(3)[0] != "r" or line.rstrip().endswith(("[vvar]", "[vsyscall]")):
                continue
            start, end = int(m.group(1), 16), int(m.group(2), 16)
            if end - start > 1 << 30:
                skipped += 1
                continue
            pos = start
            while pos < end:
                try:
                    mem.seek(pos)
                    buf = mem.read(min(CHUNK + overlap, end - pos))
                except OSError:
                    break
                for name, n in needles:
                    if n in buf:
                        found.append("%s at %s" % (name, line.strip()))
                pos += CHUNK
finally:
    os.kill(pid, signal.SIGCONT)
print("\n".join(sorted(set(found))) if found else
      "nothing found (%d needles, %d mappings over 1 GiB not read)" % (len(needles), skipped))
sys.exit(1 if found else 0)
EOF
        ok "the agent's memory holds neither private key (DER, 32-byte slices, PEM): $(cat "$T/scan.out")"
fi

stop_agent
ok "SIGTERM: exit 0"
echo "1..$CHECKS"
