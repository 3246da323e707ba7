#!/bin/bash
# The modes, owners and groups of every file and directory enclave-acm-agent creates, under a
# restrictive (077) and a permissive (000) umask: the umask must neither widen nor narrow anything.
#   state_dir 0700 (created), state_dir/pins and state_dir/keys 0700, each PIN and key-id file 0600;
#   runtime_dir 0755 (created: the web server's workers read in it), status and address 0644, the
#   control socket 0600, pin-source files 0400 (0440 and the target's group with one), certificate
#   chains 0644; an nginx stanza 0644 (0440 and the target's group with one). All owned by the agent.
# Then a persisted PIN file others may read (0644), or another user's, is refused (the token is not
# provisioned, the error names the file), not silently repaired: its PIN may have been read or planted;
# deleting it gets a new PIN. A pins directory left wider than 0700 is tightened.
# Local launcher, a stand-in `nginx` (config test passes, no pid file). Plain script: 0 pass, 77 skip.
set -euo pipefail
. "$(dirname "$0")/agent-lib.sh"

: "${AGENT:?}" "${ENCLAVE_TOKEN:?}" "${TEST_DATA:?}" "${ENCLAVE_ACM:?}"
command -v python3 >/dev/null 2>&1 || { echo "SKIP: 'python3' is not installed"; exit 77; }
if [[ ${ENCLAVE_ACM_UNDER_VALGRIND:-} == 1 && -z ${EACM_IT_REEXEC:-} ]]; then
        EACM_IT_REEXEC=1 exec bash "$0" "$@"
fi

AGENT_PID='' NOTIFY_PID=''
T=$(mktemp -d /tmp/eacm-modes.XXXXXX)
chmod 0755 "$T"
cleanup() {
        local rc=$?
        trap - EXIT
        cleanup_agent "$rc" "$T"/*/agent.log
        rm -rf "$T"
        exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export ENCLAVE_ACM_NO_MLOCK=1 ENCLAVE_ACM_TIMEOUT_MS=5000
unset ENCLAVE_ACM_ADDRESS ENCLAVE_ACM_CONTROL
mkdir -p "$T/bin"
printf '#!/bin/sh\nexit 0\n' >"$T/bin/nginx"
chmod 0755 "$T/bin/nginx"
export PATH=$T/bin:$PATH

ME=$(id -un)
MYGROUP=$(id -gn)
# A group that is not ours for the 'grp' token's target: only root can hand files to it.
WEBGROUP=
if [[ $(id -u) == 0 ]] && getent group www-data >/dev/null; then
        WEBGROUP=www-data
fi

# expect PATH MODE [USER GROUP]: PATH exists with exactly that mode, owner and group.
expect() {
        local path=$1 mode=$2 user=${3:-$ME} group=${4:-$MYGROUP} got
        got=$(stat -c '%a %U %G' "$path" 2>/dev/null) || fail "$path: missing"
        [[ $got == "$mode $user $group" ]] || fail "$path: '$got', expected '$mode $user $group' (umask $UMASK)"
}

# write_config DIR: acm.yaml for one run in DIR (state and runtime dirs not created: the agent does).
write_config() {
        local d=$1
        mkdir -p "$d/src" "$d/conf"
        cp "$TEST_DATA/ec-p256.key.pem" "$d/src/key.pem"
        cp "$TEST_DATA/ec-p256.crt.pem" "$d/src/chain.pem"
        cat >"$d/acm.yaml" <<EOF
enclave:
  launcher: local
  token_binary: $ENCLAVE_TOKEN
  boot_timeout_ms: 10000
options:
  service: nginx
  server_control: direct
  server_pid_file: $d/nginx.pid
  force_start: false
  runtime_dir: $d/run/enclave-acm
  state_dir: $d/lib/enclave-acm
  sync_interval_secs: 1
log:
  level: debug
tokens:
  - label: web
    source:
      File:
        key: $d/src/key.pem
        certificate: $d/src/chain.pem
    target:
      NginxStanza:
        path: $d/conf/web.conf
EOF
        if [[ -n $WEBGROUP ]]; then
                cat >>"$d/acm.yaml" <<EOF
  - label: grp
    source:
      File:
        key: $d/src/key.pem
        certificate: $d/src/chain.pem
    target:
      NginxStanza:
        path: $d/conf/grp.conf
        group: $WEBGROUP
EOF
        fi
}

# start_agent DIR: the agent under $UMASK; waits for READY=1.
start_agent() {
        local d=$1
        rm -f "$T/notify.sock"
        start_notify_listener
        (umask "$UMASK" && NOTIFY_SOCKET=$T/notify.sock exec "$AGENT" --config "$d/acm.yaml") >>"$d/agent.log" 2>&1 &
        AGENT_PID=$!
        wait_for 30 "the agent sends READY=1" grep -q 'READY=1' "$T/notify.log"
}
stop_all() {
        stop_agent
        kill "$NOTIFY_PID" 2>/dev/null || true
        wait "$NOTIFY_PID" 2>/dev/null || true
        NOTIFY_PID=
}
stanza_done() { grep -q 'pin-source=file:' "$1"; }

for UMASK in 077 000; do
        D=$T/u$UMASK
        mkdir -p "$D"
        write_config "$D"
        "$AGENT" --config "$D/acm.yaml" --check-config >"$D/check.log" 2>&1 || { cat "$D/check.log"; fail "--check-config"; }
        start_agent "$D"
        wait_for 30 "the web stanza is written" stanza_done "$D/conf/web.conf"
        [[ -z $WEBGROUP ]] || wait_for 30 "the grp stanza is written" stanza_done "$D/conf/grp.conf"
        wait_for 10 "the status file is written" test -s "$D/run/enclave-acm/status"
        R=$D/run/enclave-acm S=$D/lib/enclave-acm

        expect "$S" 700
        expect "$S/pins" 700
        expect "$S/pins/web" 600
        for f in "$S"/keys "$S"/keys/*; do
                [[ -e $f ]] || continue
                [[ -d $f ]] && expect "$f" 700 || expect "$f" 600
        done
        expect "$R" 755
        expect "$R/status" 644
        expect "$R/address" 644
        expect "$R/control.sock" 600
        expect "$R/web.pin" 400
        n=0
        for f in "$R"/web.*.crt.pem; do
                [[ -e $f ]] || fail "no certificate chain file for 'web' in $R"
                expect "$f" 644
                n=$((n + 1))
        done
        expect "$D/conf/web.conf" 644
        if [[ -n $WEBGROUP ]]; then
                expect "$S/pins/grp" 600
                expect "$R/grp.pin" 440 "$ME" "$WEBGROUP"
                expect "$D/conf/grp.conf" 440 "$ME" "$WEBGROUP"
        fi
        # Nothing else: every entry the agent made is one of the above (temporary files are gone).
        while IFS= read -r f; do
                case ${f#"$D"/} in
                lib | run | lib/enclave-acm | lib/enclave-acm/pins | lib/enclave-acm/pins/web | lib/enclave-acm/pins/grp) ;;
                lib/enclave-acm/keys | lib/enclave-acm/keys/web | lib/enclave-acm/keys/grp) ;;
                run/enclave-acm | run/enclave-acm/status | run/enclave-acm/address | run/enclave-acm/*.sock) ;;
                run/enclave-acm/web.pin | run/enclave-acm/grp.pin | run/enclave-acm/*.crt.pem) ;;
                *) fail "unexpected file '$f' (mode $(stat -c %a "$f"))" ;;
                esac
        done < <(find "$D/lib" "$D/run" -mindepth 0)
        # Parents the agent had to create are no wider than their child (0700 for the state side).
        expect "$D/lib" 700
        expect "$D/run" 755
        ok "umask $UMASK: state_dir 0700, pins 0700, PIN files 0600, runtime_dir 0755, status/address 0644, control socket 0600, pin-source 0400${WEBGROUP:+/0440 $WEBGROUP}, $n chain file(s) 0644, stanza 0644${WEBGROUP:+/0440 $WEBGROUP}"
        stop_all
done

# refused DESCRIPTION: the agent, started under $UMASK, refuses to start (exit 1 within 30 s) and
# names the PIN file's directory; the web stanza is not written.
refused() {
        local rc=0
        : >"$D/agent.log"
        (umask "$UMASK" && exec timeout 30 "$AGENT" --config "$D/acm.yaml") >>"$D/agent.log" 2>&1 || rc=$?
        [[ $rc == 1 ]] || fail "$1: the agent exited with status $rc, expected 1"
        grep -q "Token 'web': refuses its PIN file in '$S/pins'" "$D/agent.log" || fail "$1: the log does not say why"
        [[ ! -e $D/conf/web.conf ]] || fail "$1: the web stanza was written"
}

# A persisted PIN file others may read: refused at start (as every token setup error is), the error
# names the pins directory, the file is left as it is; the web stanza is not touched.
D=$T/u022
UMASK=022
mkdir -p "$D"
write_config "$D"
start_agent "$D"
wait_for 30 "the web stanza is written" stanza_done "$D/conf/web.conf"
stop_all
S=$D/lib/enclave-acm
PIN_BEFORE=$(md5sum <"$S/pins/web")
rm -f "$D/conf/web.conf"
chmod 0644 "$S/pins/web"
chmod 0755 "$S/pins"
refused "a 0644 PIN file"
expect "$S/pins/web" 644
[[ $(md5sum <"$S/pins/web") == "$PIN_BEFORE" ]] || fail "the refused PIN file was changed"
expect "$S/pins" 700
ok "a 0644 PIN file is refused (the agent exits 1 naming it, the file is left as it is); a 0755 pins dir is tightened to 0700"

# Another user's PIN file (root only): refused too.
if [[ $(id -u) == 0 ]] && id nobody >/dev/null 2>&1; then
        chmod 0600 "$S/pins/web"
        chown nobody "$S/pins/web"
        refused "a PIN file owned by nobody"
        ok "a PIN file owned by another user is refused"
        chown "$ME" "$S/pins/web"
fi

# Fixed by the admin (0600 again): the same PIN is used, the token provisioned.
chmod 0600 "$S/pins/web"
: >"$D/agent.log"
start_agent "$D"
wait_for 30 "the web stanza is written once the PIN file is 0600" stanza_done "$D/conf/web.conf"
[[ $(md5sum <"$S/pins/web") == "$PIN_BEFORE" ]] || fail "the PIN changed"
ok "once the PIN file is 0600 again the same PIN is used and the token provisioned"
stop_all

echo "1..$CHECKS"
