#!/bin/bash
# The Debian package, end to end on this machine (scripts/test --package): builds enclave-acm_*.deb
# from a temp copy of the source tree (dpkg-buildpackage -us -uc -b, DEB_BUILD_OPTIONS=nocheck),
# lintian reports no error, `dpkg -i` installs it, and then with the package's files only:
# `enclave-acm --version`, `enclave-acm-agent --check-config` on the installed /etc/enclave-acm/acm.yaml,
# `systemd-analyze verify` on the installed unit, the man pages, and the demo's nginx flow: the installed
# agent (local launcher: the installed enclave-token, a File source with a plaintext test key from
# tests/data, the default /run/enclave-acm and /var/lib/enclave-acm) points nginx, loading the installed
# OpenSSL configuration and module, at the key; curl verifies the served chain; `p11-kit list-modules`
# shows the module and the token; `enclave-acm status` shows the token. Then a reinstall keeps an edited
# conffile, `dpkg -r` keeps only the conffiles, `dpkg --purge` removes everything, and the file lists of
# /etc /usr /lib /opt /var/lib before and after are the same (and /run/enclave-acm is gone).
# The package is purged and every process stopped on any exit (trap). Refuses to run (fails) if the
# package or its directories are already on the machine. Needs root.
# Plain script: exit 0 pass, 77 skip (not root), anything else fail. E2E_KEEP=1 keeps the temp dir.
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
. "$SRC/tests/lib/nginx-conf.sh"
PKG=enclave-acm
CHECKS=0
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { CHECKS=$((CHECKS + 1)); echo "ok $CHECKS - $*"; }
alive() { kill -0 "$1" 2>/dev/null; }
# dpkg_retry LOG ARGS...: dpkg ARGS, output in LOG; waits (up to 5 minutes) while another apt or dpkg holds
# the lock on this shared machine.
dpkg_retry() {
        local log=$1 i rc
        shift
        for ((i = 0; i < 60; i++)); do
                rc=0
                dpkg "$@" >"$log" 2>&1 </dev/null || rc=$?
                if ((rc == 0)) || ! grep -q 'frontend lock\|database is locked\|was locked by another' "$log"; then
                        return "$rc"
                fi
                echo "# dpkg $1: the dpkg lock is held by another process, waiting" >&2
                sleep 5
        done
        return "$rc"
}
# pkg_state: dpkg's status of the package ("installed", "config-files", ... or "" when unknown).
pkg_state() { dpkg-query -W -f='${db:Status-Status}' "$PKG" 2>/dev/null || true; }

if [[ $(id -u) != 0 ]]; then
        echo "SKIP: needs root (dpkg -i, nginx as root with www-data workers)"
        exit 77
fi
for t in dpkg-buildpackage lintian dpkg-query systemd-analyze p11-kit nginx curl openssl man; do
        command -v "$t" >/dev/null 2>&1 || [[ -x /usr/sbin/$t ]] || fail "'$t' is not installed (scripts/deps.sh)"
done
export PATH=$PATH:/usr/sbin:/sbin
# Never the real instance metadata service (169.254.169.254) from a test: a closed loopback port.
export ENCLAVE_ACM_IMDS_ENDPOINT=http://127.0.0.1:9

# Never touch an installation or state that is not ours.
[[ -z $(pkg_state) || $(pkg_state) == not-installed ]] ||
        fail "$PKG is already on this machine (dpkg status '$(pkg_state)'): this test installs and purges it; remove it first"
for d in /etc/enclave-acm /var/lib/enclave-acm /run/enclave-acm; do
        [[ ! -e $d ]] || fail "$d exists already: this test would install over it and purge it"
done

T=$(mktemp -d /tmp/eacm-package.XXXXXX)
chmod 0755 "$T"
AGENT_PID=
NGINX_PID_FILE=$T/nginx.pid
cleanup() {
        local rc=$? i
        trap - EXIT
        if [[ -n $AGENT_PID ]] && alive "$AGENT_PID"; then
                kill -TERM "$AGENT_PID" 2>/dev/null || true
                for ((i = 0; i < 100; i++)); do alive "$AGENT_PID" || break; sleep 0.1; done
                alive "$AGENT_PID" && kill -KILL "$AGENT_PID" 2>/dev/null
        fi
        if [[ -s $NGINX_PID_FILE ]]; then
                kill -QUIT "$(cat "$NGINX_PID_FILE")" 2>/dev/null || true
                for ((i = 0; i < 100; i++)); do alive "$(cat "$NGINX_PID_FILE" 2>/dev/null || echo 0)" || break; sleep 0.1; done
        fi
        if [[ -n $(pkg_state) && $(pkg_state) != not-installed ]]; then
                echo "# cleanup: dpkg --purge $PKG (status '$(pkg_state)')" >&2
                dpkg_retry "$T/cleanup-purge.log" --purge "$PKG" || cat "$T/cleanup-purge.log" >&2
        fi
        if [[ $rc -ne 0 ]]; then
                for f in "$T"/agent.log "$T"/nginx-error.log; do
                        [[ -s $f ]] && { echo "--- $f (last 30 lines)" >&2; tail -n 30 "$f" >&2; } || true
                done
        fi
        if [[ -n ${E2E_KEEP:-} ]]; then
                echo "# kept $T" >&2
        else
                rm -rf "$T"
        fi
        exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- build ---------------------------------------------------------------------------------------------
# A copy of the tree as it is (tracked and new files, not ignored ones such as build dirs): the .deb
# lands in the copy's parent, never next to the worktree.
mkdir -p "$T/src/$PKG"
if git -C "$SRC" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        (cd "$SRC" && git ls-files -co --exclude-standard -z | xargs -0 cp --parents -t "$T/src/$PKG")
else
        (cd "$SRC" && tar --exclude='./build*' --exclude=./debian/.debhelper -cf - .) | tar -C "$T/src/$PKG" -xf -
fi
# Files listed by git but deleted in the worktree make cp fail above; nothing else is needed.
VERSION=$(cd "$T/src/$PKG" && dpkg-parsechangelog -S Version)
UPSTREAM=${VERSION%-*}
echo "# building $PKG $VERSION in $T/src (log: build.log)"
if ! (cd "$T/src/$PKG" && DEB_BUILD_OPTIONS="nocheck parallel=$(nproc)" dpkg-buildpackage -us -uc -b) \
        >"$T/build.log" 2>&1; then
        tail -n 40 "$T/build.log" >&2
        fail "dpkg-buildpackage -us -uc -b failed"
fi
ARCH=$(dpkg --print-architecture)
DEB=$T/src/${PKG}_${VERSION}_${ARCH}.deb
[[ -f $DEB ]] || fail "no $DEB after the build: $(ls "$T/src")"
ok "dpkg-buildpackage -us -uc -b: $(basename "$DEB")"

lintian -E --pedantic "$T/src/${PKG}_${VERSION}_${ARCH}.changes" >"$T/lintian.out" 2>&1 || true
grep -q '^E: ' "$T/lintian.out" && { cat "$T/lintian.out" >&2; fail "lintian reports errors"; }
# The kept warnings are listed in debian/README.source; a new one fails so it is looked at.
while read -r line; do
        tag=$(awk '{print $3}' <<<"$line")
        grep -qF -- "$tag" "$SRC/debian/README.source" || fail "lintian: a warning not explained in debian/README.source: $line"
done < <(grep '^W: ' "$T/lintian.out" || true)
ok "lintian: no error, $(grep -c '^W: ' "$T/lintian.out" || true) warnings, each explained in debian/README.source"

# --- install -------------------------------------------------------------------------------------------
# What the file systems hold before: compared after the purge.
snapshot() {
        find /etc /usr /lib /opt /var/lib -xdev \
                \( -path /var/lib/dpkg -o -path /var/lib/apt -o -path /var/lib/systemd/coredump \) -prune \
                -o -print 2>/dev/null | sort
}
snapshot >"$T/before.list"

# Files the package would own must not exist unowned (dpkg would overwrite them, the purge remove them).
while read -r path; do
        [[ -d $path || ! -e $path ]] || fail "$path exists on this machine already (not from the package)"
done < <(dpkg-deb -c "$DEB" | awk '{print $6}' | sed 's|^\./|/|')

dpkg_retry "$T/install.log" -i "$DEB" || { cat "$T/install.log" >&2; fail "dpkg -i $(basename "$DEB") failed"; }
[[ $(pkg_state) == installed ]] || fail "after dpkg -i the package is '$(pkg_state)', not installed"
ok "dpkg -i: $PKG $VERSION installed"

# Where README.md says, with these modes.
declare -A want=(
        [/usr/bin/enclave-acm]=755 [/usr/bin/enclave-token]=755 [/usr/sbin/enclave-acm-agent]=755
        [/usr/libexec/enclave-acm/enclave-init]=755
        [/usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH)/pkcs11/enclave-acm-pkcs11.so]=644
        [/usr/share/p11-kit/modules/enclave-acm.module]=644 [/lib/systemd/system/enclave-acm-agent.service]=644
        [/etc/enclave-acm/acm.yaml]=600 [/etc/enclave-acm/openssl-enclave-acm.cnf]=644
        [/usr/share/doc/enclave-acm/README.md]=644 [/usr/share/doc/enclave-acm/acm.example.yaml]=644
        [/usr/share/man/man1/enclave-acm.1.gz]=644 [/usr/share/man/man5/acm.yaml.5.gz]=644
        [/usr/share/man/man7/enclave-acm-pkcs11.7.gz]=644 [/usr/share/man/man8/enclave-acm-agent.8.gz]=644
        [/usr/share/man/man8/enclave-token.8.gz]=644
)
for p in "${!want[@]}"; do
        [[ -f $p ]] || fail "$p is not installed"
        [[ $(stat -c %a "$p") == "${want[$p]}" ]] || fail "$p has mode $(stat -c %a "$p"), expected ${want[$p]}"
done
conffiles=$(dpkg-query -W -f='${Conffiles}' "$PKG" | awk 'NF {print $1}' | sort | tr '\n' ' ')
[[ $conffiles == "/etc/enclave-acm/acm.yaml /etc/enclave-acm/openssl-enclave-acm.cnf " ]] ||
        fail "conffiles are '$conffiles'"
ok "${#want[@]} files in place with their modes; conffiles: $conffiles"

out=$(enclave-acm --version)
[[ $out == "enclave-acm $UPSTREAM" ]] || fail "enclave-acm --version said '$out', expected 'enclave-acm $UPSTREAM'"
out=$(enclave-acm-agent --version)
[[ $out == "enclave-acm-agent $UPSTREAM" ]] || fail "enclave-acm-agent --version said '$out'"
ok "enclave-acm --version: $(enclave-acm --version); $(command -v enclave-acm-agent)"

out=$(enclave-acm-agent --config /etc/enclave-acm/acm.yaml --check-config 2>&1) ||
        fail "enclave-acm-agent --check-config on the installed acm.yaml: $out"
grep -q 'valid configuration: 0 tokens' <<<"$out" || fail "unexpected --check-config output: $out"
out2=$(enclave-acm-agent --check-config 2>&1) || fail "enclave-acm-agent --check-config (default path): $out2"
ok "enclave-acm-agent --check-config /etc/enclave-acm/acm.yaml: $(grep -o 'valid configuration.*' <<<"$out")"

UNIT=/lib/systemd/system/enclave-acm-agent.service
rc=0
(cd "$T" && env -u SYSTEMD_LOG_LEVEL SYSTEMD_PAGER= SYSTEMD_COLORS=0 timeout 60 systemd-analyze verify "$UNIT") \
        >"$T/verify.out" 2>&1 || rc=$?
if [[ $rc != 0 ]] || grep -q 'enclave-acm-agent' "$T/verify.out"; then
        cat "$T/verify.out" >&2
        fail "systemd-analyze verify $UNIT: exit $rc"
fi
grep -qx 'ExecStart=/usr/sbin/enclave-acm-agent --config /etc/enclave-acm/acm.yaml' "$UNIT" ||
        fail "the unit's ExecStart is '$(grep ^ExecStart= "$UNIT")'"
[[ ! -e /etc/systemd/system/multi-user.target.wants/enclave-acm-agent.service ]] ||
        fail "the package enabled the unit"
ok "systemd-analyze verify $UNIT: exit 0, nothing about the unit; not enabled"

for page in enclave-acm.1 acm.yaml.5 enclave-acm-pkcs11.7 enclave-acm-agent.8 enclave-token.8; do
        p=$(man -w "${page##*.}" "${page%.*}" 2>/dev/null) || fail "man ${page##*.} ${page%.*}: no page"
        [[ $p == /usr/share/man/* ]] || fail "man ${page##*.} ${page%.*} found $p"
done
ok "man finds enclave-acm(1), acm.yaml(5), enclave-acm-pkcs11(7), enclave-acm-agent(8), enclave-token(8)"

# --- the demo's nginx flow, with the package's files -----------------------------------------------
export ENCLAVE_ACM_NO_MLOCK=1 # CI's RLIMIT_MEMLOCK is small
mkdir -p "$T/src-keys" "$T/nginx"
chmod 0700 "$T/src-keys"
cp "$SRC/tests/data/chain-leaf.key.pem" "$SRC/tests/data/chain-leaf.chain.pem" "$T/src-keys/"
chmod 0600 "$T/src-keys/chain-leaf.key.pem"
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
HOST=chain-leaf.enclave-acm.test
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=placeholder" -keyout "$T/nginx/placeholder.key.pem" \
        -out "$T/nginx/placeholder.crt.pem" 2>/dev/null
printf 'ssl_certificate %s;\nssl_certificate_key %s;\n' "$T/nginx/placeholder.crt.pem" "$T/nginx/placeholder.key.pem" \
        >"$T/stanza.conf"
nginx_test_conf "$T" "$PORT" "server_name $HOST;"
# The installed OpenSSL configuration, unmodified: the libp11 engine with the installed module.
export OPENSSL_CONF=/etc/enclave-acm/openssl-enclave-acm.cnf
NGINX=$(command -v nginx)
"$NGINX" -c "$T/nginx.conf" -e "$T/nginx-error.log" || fail "nginx did not start"
for ((i = 0; i < 100; i++)); do [[ -s $NGINX_PID_FILE ]] && break; sleep 0.1; done
[[ -s $NGINX_PID_FILE ]] || fail "nginx wrote no pid file"

# The installed agent with its default runtime and state directories and the installed enclave-token.
cat >"$T/acm.yaml" <<EOF
enclave:
  launcher: local
options:
  service: nginx
  server_control: direct
  server_config: $T/nginx.conf
  sync_interval_secs: 10
tokens:
  - label: pkgtest
    source:
      File:
        key: $T/src-keys/chain-leaf.key.pem
        certificate: $T/src-keys/chain-leaf.chain.pem
    target:
      NginxStanza:
        path: $T/stanza.conf
EOF
/usr/sbin/enclave-acm-agent --config "$T/acm.yaml" --check-config >/dev/null 2>&1 ||
        fail "the test's acm.yaml is invalid: $(/usr/sbin/enclave-acm-agent --config "$T/acm.yaml" --check-config 2>&1)"
/usr/sbin/enclave-acm-agent --config "$T/acm.yaml" >"$T/agent.log" 2>&1 &
AGENT_PID=$!
served_subject() {
        timeout 10 openssl s_client -connect "127.0.0.1:$PORT" -servername "$HOST" </dev/null 2>/dev/null |
                openssl x509 -noout -subject 2>/dev/null
}
for ((i = 0; i < 300; i++)); do
        [[ $(served_subject) == *"CN = $HOST"* ]] && break
        alive "$AGENT_PID" || fail "the agent exited"
        sleep 0.1
done
[[ $(served_subject) == *"CN = $HOST"* ]] || fail "nginx does not serve the test certificate after 30 s"
token_pid=$(pgrep -P "$AGENT_PID" -x enclave-token || true)
[[ -n $token_pid && $(readlink "/proc/$token_pid/exe") == /usr/bin/enclave-token ]] ||
        fail "the agent's enclave-token is not the installed /usr/bin/enclave-token (pid '${token_pid}')"
grep -q 'engine:pkcs11:pkcs11:' "$T/stanza.conf" || fail "the stanza does not name a PKCS#11 key: $(cat "$T/stanza.conf")"
[[ -s /run/enclave-acm/address && -d /var/lib/enclave-acm ]] || fail "no /run/enclave-acm/address or /var/lib/enclave-acm"
ok "the installed agent provisioned the key into the installed enclave-token (pid $token_pid) and pointed nginx at it"

body=$(curl -sS --fail --max-time 20 --cacert "$SRC/tests/data/chain-root.crt.pem" \
        --resolve "$HOST:$PORT:127.0.0.1" "https://$HOST:$PORT/") || fail "curl through nginx failed"
[[ $body == "ok" ]] || fail "unexpected body '$body'"
ok "curl verifies https://$HOST:$PORT/ against the test root (leaf and intermediate from the token's chain)"

mods=$(p11-kit list-modules 2>&1) || fail "p11-kit list-modules failed: $mods"
# "enclave-acm: enclave-acm-pkcs11.so" (the .module file's name and its module), then its tokens.
grep -qx 'enclave-acm: enclave-acm-pkcs11.so' <<<"$mods" || fail "p11-kit list-modules does not show enclave-acm: $mods"
awk '/^enclave-acm: / {m = 1; next} /^[^ ]/ {m = 0} m' <<<"$mods" | grep -Eq '^ +token: pkgtest$' ||
        fail "p11-kit list-modules shows no token 'pkgtest' under enclave-acm: $mods"
ok "p11-kit list-modules: module enclave-acm with token pkgtest"

st=$(enclave-acm status 2>&1) || fail "enclave-acm status failed: $st"
grep -q 'pkgtest' <<<"$st" || fail "enclave-acm status does not show the token: $st"
ok "enclave-acm status shows token pkgtest"

kill -TERM "$AGENT_PID"
for ((i = 0; i < 100; i++)); do alive "$AGENT_PID" || break; sleep 0.1; done
alive "$AGENT_PID" && fail "the agent did not stop within 10 s of SIGTERM"
wait "$AGENT_PID" || fail "the agent exited with status $? after SIGTERM"
AGENT_PID=
kill -QUIT "$(cat "$NGINX_PID_FILE")"
for ((i = 0; i < 100; i++)); do [[ -s $NGINX_PID_FILE ]] || break; sleep 0.1; done
ok "agent and nginx stopped"

# --- reinstall, remove, purge --------------------------------------------------------------------------
echo "# edited by the package test" >>/etc/enclave-acm/acm.yaml
dpkg_retry "$T/reinstall.log" -i "$DEB" || { cat "$T/reinstall.log" >&2; fail "reinstall failed"; }
grep -q '^# edited by the package test$' /etc/enclave-acm/acm.yaml || fail "a reinstall lost the edited conffile"
ok "a reinstall keeps the edited /etc/enclave-acm/acm.yaml"

dpkg_retry "$T/remove.log" -r "$PKG" || { cat "$T/remove.log" >&2; fail "dpkg -r failed"; }
[[ $(pkg_state) == config-files ]] || fail "after dpkg -r the package is '$(pkg_state)'"
[[ ! -e /usr/sbin/enclave-acm-agent && ! -e /usr/share/p11-kit/modules/enclave-acm.module ]] ||
        fail "dpkg -r left the programs or the module file"
[[ -f /etc/enclave-acm/acm.yaml && -f /etc/enclave-acm/openssl-enclave-acm.cnf ]] || fail "dpkg -r removed a conffile"
ok "dpkg -r: programs gone, conffiles kept"

dpkg_retry "$T/purge.log" --purge "$PKG" || { cat "$T/purge.log" >&2; fail "dpkg --purge failed"; }
state=$(pkg_state)
[[ -z $state || $state == not-installed ]] || fail "after dpkg --purge the package is '$state'"
for d in /etc/enclave-acm /var/lib/enclave-acm /run/enclave-acm; do
        [[ ! -e $d ]] || fail "dpkg --purge left $d: $(ls -la "$d")"
done
ok "dpkg --purge: /etc/enclave-acm, /var/lib/enclave-acm and /run/enclave-acm are gone"

snapshot >"$T/after.list"
# A path that appeared or vanished meanwhile is ours unless another package owns it (someone else's
# apt-get on this shared machine): those are only reported.
bad=0
while read -r line; do
        path=${line:1}
        if owner=$(dpkg -S "$path" 2>/dev/null); then
                echo "# changed meanwhile, owned by ${owner%%:*}: $line"
        else
                echo "# left behind or removed: $line" >&2
                bad=$((bad + 1))
        fi
done < <(diff "$T/before.list" "$T/after.list" | sed -n 's/^\([<>]\) /\1/p')
((bad == 0)) || fail "$bad paths differ before the install and after the purge"
[[ ! -e /var/lib/dpkg/info/$PKG.list ]] || fail "dpkg still has /var/lib/dpkg/info/$PKG.list"
ok "the file lists of /etc /usr /lib /opt /var/lib are the same before the install and after the purge"

echo "1..$CHECKS"
