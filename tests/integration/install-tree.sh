#!/bin/bash
# `meson install --destdir` into a temp dir puts exactly the files an operator needs where README.md
# ("Installed files") says, with their modes, and nothing else: the programs, the module and its p11-kit
# file, the systemd unit (naming the installed agent and configuration), the OpenSSL configuration
# (naming the installed module and an existing libp11 engine), the default acm.yaml (0600, valid for the
# built agent), the docs and the man pages (when scdoc is there). Run from the build dir, with
# --no-rebuild: meson test has built everything first.
# Plain script: exit 0 pass, anything else fail.
set -euo pipefail

: "${BUILD_ROOT:?}" "${AGENT:?}" "${PREFIX:?}" "${BINDIR:?}" "${SBINDIR:?}" "${PKG_SYSCONFDIR:?}" "${DOCDIR:?}"
: "${LIBEXECDIR:?}" "${MANDIR:?}" "${WITH_MAN:?}" "${P11_MODULE_PATH:?}" "${P11_MODULE_CONFIGS:?}" "${UNITDIR:?}" "${ENGINESDIR:?}"
# Under the valgrind setup meson runs this bash under valgrind: leave it (see unit-verify.sh).
if [[ ${ENCLAVE_ACM_UNDER_VALGRIND:-} == 1 && -z ${EACM_IT_REEXEC:-} ]]; then
        EACM_IT_REEXEC=1 exec bash "$0" "$@"
fi

CHECKS=0
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { CHECKS=$((CHECKS + 1)); echo "ok $CHECKS - $*"; }

T=$(mktemp -d /tmp/eacm-install.XXXXXX)
trap 'rm -rf "$T"' EXIT
trap 'exit 130' INT TERM
D=$T/dest

meson install -C "$BUILD_ROOT" --destdir "$D" --no-rebuild --quiet >"$T/install.log" 2>&1 ||
        { cat "$T/install.log" >&2; fail "meson install --destdir failed"; }
ok "meson install --destdir $D"

# path mode: the expected set.
declare -A want=(
        ["$BINDIR/enclave-acm"]=755
        ["$BINDIR/enclave-token"]=755
        ["$SBINDIR/enclave-acm-agent"]=755
        ["$LIBEXECDIR/enclave-acm/enclave-init"]=755
        ["$P11_MODULE_PATH/enclave-acm-pkcs11.so"]=755
        ["$P11_MODULE_CONFIGS/enclave-acm.module"]=644
        ["$UNITDIR/enclave-acm-agent.service"]=644
        ["$PKG_SYSCONFDIR/acm.yaml"]=600
        ["$PKG_SYSCONFDIR/openssl-enclave-acm.cnf"]=644
        ["$DOCDIR/README.md"]=644
        ["$DOCDIR/SECURITY.md"]=644
        ["$DOCDIR/acm.example.yaml"]=644
        ["$DOCDIR/protocol.md"]=644
)
if [[ $WITH_MAN == 1 ]]; then
        want["$MANDIR/man1/enclave-acm.1"]=644
        want["$MANDIR/man5/acm.yaml.5"]=644
        want["$MANDIR/man7/enclave-acm-pkcs11.7"]=644
        want["$MANDIR/man8/enclave-acm-agent.8"]=644
        want["$MANDIR/man8/enclave-token.8"]=644
fi

declare -A got=()
while IFS=' ' read -r mode type path; do
        [[ $type == f ]] || fail "${path#.} is not a regular file (type $type)"
        got["${path#.}"]=$mode
done < <(cd "$D" && find . -not -type d -printf '%m %y %p\n')

for p in "${!want[@]}"; do
        [[ -n ${got[$p]-} ]] || fail "$p was not installed"
        [[ ${got[$p]} == "${want[$p]}" ]] || fail "$p has mode ${got[$p]}, expected ${want[$p]}"
done
ok "all ${#want[@]} expected files installed with their modes"
for p in "${!got[@]}"; do
        [[ -n ${want[$p]-} ]] || fail "$p was installed but is not in the expected set (add it here and to README.md)"
done
ok "no other file installed (${#got[@]} files)"
# Directories: only the ones that hold our files (and their parents), none left empty.
empty=$(cd "$D" && find . -type d -empty -printf '%p\n')
[[ -z $empty ]] || fail "empty directories installed: $empty"
ok "no empty directory installed"

# The installed programs run and report this version.
version=$(meson introspect "$BUILD_ROOT" --projectinfo | python3 -c 'import json, sys; print(json.load(sys.stdin)["version"])')
for prog in "$BINDIR/enclave-acm" "$SBINDIR/enclave-acm-agent"; do
        out=$("$D$prog" --version) || fail "$prog --version failed"
        [[ $out == "$(basename "$prog") $version" ]] || fail "$prog --version said '$out', expected '$(basename "$prog") $version'"
done
"$D$BINDIR/enclave-token" --help >/dev/null || fail "enclave-token --help failed"
ok "installed programs run (version $version)"

# The unit starts the installed agent with the installed configuration.
unit=$D$UNITDIR/enclave-acm-agent.service
grep -qxF "ExecStart=$SBINDIR/enclave-acm-agent --config $PKG_SYSCONFDIR/acm.yaml" "$unit" ||
        fail "the installed unit's ExecStart is '$(grep '^ExecStart=' "$unit")', not the installed agent and config"
ok "unit: ExecStart=$SBINDIR/enclave-acm-agent --config $PKG_SYSCONFDIR/acm.yaml"

# The OpenSSL configuration loads the installed module through an engine that exists here.
cnf=$D$PKG_SYSCONFDIR/openssl-enclave-acm.cnf
grep -qxF "MODULE_PATH = $P11_MODULE_PATH/enclave-acm-pkcs11.so" "$cnf" ||
        fail "openssl-enclave-acm.cnf: $(grep '^MODULE_PATH' "$cnf"), expected the installed module"
grep -qxF "dynamic_path = $ENGINESDIR/pkcs11.so" "$cnf" || fail "openssl-enclave-acm.cnf: $(grep '^dynamic_path' "$cnf")"
[[ -f $ENGINESDIR/pkcs11.so ]] || fail "the libp11 engine $ENGINESDIR/pkcs11.so does not exist (libengine-pkcs11-openssl)"
OPENSSL_CONF=$cnf openssl version >/dev/null 2>&1 || true # parse only; the engine needs the module installed
ok "openssl-enclave-acm.cnf names the installed module and $ENGINESDIR/pkcs11.so"

grep -qx 'module: enclave-acm-pkcs11.so' "$D$P11_MODULE_CONFIGS/enclave-acm.module" || fail "enclave-acm.module names another module"
ok "enclave-acm.module: module: enclave-acm-pkcs11.so"

# The default configuration is valid (no tokens: one warning).
out=$("$AGENT" --check-config --config "$D$PKG_SYSCONFDIR/acm.yaml" 2>&1) || fail "the installed acm.yaml is invalid: $out"
grep -q 'valid configuration: 0 tokens' <<<"$out" || fail "unexpected --check-config output: $out"
ok "installed acm.yaml: $(grep -o "valid configuration.*" <<<"$out")"

if [[ $WITH_MAN == 1 ]]; then
        for page in "$D$MANDIR"/man*/*; do
                name=$(basename "$page")
                text=$(MANWIDTH=100 man -l "$page" 2>"$T/man.err") || fail "man -l $name failed: $(cat "$T/man.err")"
                [[ ! -s $T/man.err ]] || fail "man -l $name warned: $(cat "$T/man.err")"
                grep -q '^NAME' <<<"$text" || fail "$name has no NAME section"
        done
        ok "every man page renders without a warning"
fi

echo "1..$CHECKS"
