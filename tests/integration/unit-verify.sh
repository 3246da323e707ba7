#!/bin/bash
# `systemd-analyze verify` on packaging/enclave-acm-agent.service: a copy in a temp dir with ExecStart=
# pointed at the built agent (the only path in the unit that must exist and is not on the test machine)
# must load without a warning or error line about the unit and verify with exit 0. Two controls run
# first: a minimal unit must verify cleanly (else systemd-analyze cannot run here: skip, saying why), and
# a copy of our unit with an unknown key and a missing ExecStart binary must be reported (the filter
# below sees what systemd-analyze prints about the unit).
# Plain script: exit 0 pass, 77 skip (systemd-analyze cannot run in this environment), anything else fail.
set -euo pipefail

: "${AGENT:?}" "${TEST_DATA:?}"
# Under `meson test --setup=valgrind` meson runs this script's bash under valgrind, which reports bash's
# own leaks (exit 66) from every subshell: leave it (valgrind does not follow exec), as lib.sh does.
if [[ ${ENCLAVE_ACM_UNDER_VALGRIND:-} == 1 && -z ${EACM_IT_REEXEC:-} ]]; then
        EACM_IT_REEXEC=1 exec bash "$0" "$@"
fi
SRC_ROOT=$(cd "$TEST_DATA/../.." && pwd)
NAME=enclave-acm-agent.service
UNIT=$SRC_ROOT/packaging/$NAME

CHECKS=0
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { CHECKS=$((CHECKS + 1)); echo "ok $CHECKS - $*"; }

# Not a skip: scripts/deps.sh installs it (Debian package systemd) like every other test tool.
command -v systemd-analyze >/dev/null 2>&1 ||
        fail "'systemd-analyze' is not installed: run scripts/deps.sh (Debian package 'systemd')"
[[ -f $UNIT ]] || fail "no $UNIT"
[[ -x $AGENT ]] || fail "the agent ($AGENT) is not built"

T=$(mktemp -d /tmp/eacm-unit.XXXXXX)
trap 'rm -rf "$T"' EXIT
trap 'exit 130' INT TERM

# verify DIR UNIT-FILE: systemd-analyze verify, output (stdout and stderr) in DIR/verify.out, exit status
# in DIR/verify.rc. Without the caller's log level (debug lines name the unit too), no pager, no colour.
verify() {
        local rc=0
        (cd "$1" && env -u SYSTEMD_LOG_LEVEL -u SYSTEMD_LOG_TARGET SYSTEMD_PAGER= SYSTEMD_COLORS=0 \
                timeout 60 systemd-analyze verify "$2") >"$1/verify.out" 2>&1 || rc=$?
        echo "$rc" >"$1/verify.rc"
}
# about DIR NAME: the lines of the last verify that are about unit NAME (its name or its file).
about() {
        grep -F -e "$2" "$1/verify.out" || true
}

# Control 1: a minimal unit. If even this does not verify, systemd-analyze cannot run here (no /proc,
# a seccomp filter, a read-only or missing unit search path...): that is the environment, not the unit.
# The agent's path as a unit file takes it: quoted (a build path may hold a space), '%' doubled (specifiers).
AGENT_U=\"${AGENT//%/%%}\"
mkdir -p "$T/canary"
printf '[Unit]\nDescription=enclave-acm test canary\n\n[Service]\nType=oneshot\nExecStart=%s --help\n' \
        "$AGENT_U" >"$T/canary/eacm-canary.service"
verify "$T/canary" "$T/canary/eacm-canary.service"
if [[ $(cat "$T/canary/verify.rc") != 0 || -n $(about "$T/canary" eacm-canary) ]]; then
        echo "# systemd-analyze verify on a minimal unit exited $(cat "$T/canary/verify.rc"):"
        sed 's/^/#   /' "$T/canary/verify.out"
        rc=$(cat "$T/canary/verify.rc")
        ((rc == 124)) && fail "systemd-analyze verify hung on a minimal unit"
        echo "SKIP: systemd-analyze cannot verify units in this environment (see above), so $NAME cannot be checked"
        exit 77
fi
ok "systemd-analyze ($(systemd-analyze --version | head -n 1)) verifies a minimal unit"

# The unit as packaged, with ExecStart= at the built agent (same arguments).
mkdir -p "$T/unit"
AGENT_SED=$(printf '%s' "$AGENT_U" | sed 's/[\\|&]/\\&/g')
sed "s|^ExecStart=/usr/s\{0,1\}bin/enclave-acm-agent |ExecStart=$AGENT_SED |" "$UNIT" >"$T/unit/$NAME"
grep -qxF "ExecStart=$AGENT_U --config /etc/enclave-acm/acm.yaml" "$T/unit/$NAME" ||
        fail "cannot point ExecStart= at the built agent: $(grep '^ExecStart=' "$T/unit/$NAME")"
# The other programs the unit runs (ExecReload=/bin/kill) are used as they are: they must exist here.
while read -r prog; do
        [[ -x $prog ]] || fail "$NAME runs '$prog', which does not exist here"
done < <(sed -n 's/^Exec[A-Za-z]*=[-@:+!]*\(\/[^ ]*\).*/\1/p' "$T/unit/$NAME")

# Control 2: the same file with a typo'd key and a missing binary is reported, with the unit's name.
mkdir -p "$T/bad"
sed -e "s|^ExecStart=.*|ExecStart=$T/no-such-agent --config /etc/enclave-acm/acm.yaml|" \
        -e 's|^NoNewPrivileges=yes|NoNewPrivileges=yes\nNoNewPrivilege=yes|' "$T/unit/$NAME" >"$T/bad/$NAME"
verify "$T/bad" "$T/bad/$NAME"
about "$T/bad" "$NAME" | grep -q "Unknown key 'NoNewPrivilege'" ||
        { cat "$T/bad/verify.out"; fail "an unknown key in a copy of $NAME was not reported"; }
about "$T/bad" "$NAME" | grep -q "no-such-agent" ||
        { cat "$T/bad/verify.out"; fail "a missing ExecStart= binary in a copy of $NAME was not reported"; }
[[ $(cat "$T/bad/verify.rc") != 0 ]] || fail "systemd-analyze verify exits 0 on a missing ExecStart= binary"
ok "controls: a copy with an unknown key and a missing binary is reported ($(about "$T/bad" "$NAME" | wc -l) lines, exit $(cat "$T/bad/verify.rc"))"

verify "$T/unit" "$T/unit/$NAME"
rc=$(cat "$T/unit/verify.rc")
lines=$(about "$T/unit" "$NAME")
if [[ -n $lines || $rc != 0 ]]; then
        echo "--- systemd-analyze verify $NAME: exit $rc ---" >&2
        cat "$T/unit/verify.out" >&2
        fail "systemd-analyze verify reports problems in $NAME"
fi
other=$(grep -c . "$T/unit/verify.out" || true)
note=
((other == 0)) || note=" ($other lines about other units of this host ignored)"
ok "systemd-analyze verify $NAME: exit 0, no warning or error about the unit$note"

echo "1..$CHECKS"
