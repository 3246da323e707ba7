#!/bin/sh
# sigv4-kat must fail on a copy of the suite with one byte of one expected file changed, and say where.
# Usage: sigv4-kat-mutated.sh SIGV4-KAT DATA-DIR
set -eu
# Under `meson test --setup=valgrind` meson runs this shell under valgrind, which reports the shell's own
# leaks (exit 66): leave it (valgrind does not follow exec), as the integration scripts do.
if [ "${ENCLAVE_ACM_UNDER_VALGRIND:-}" = 1 ] && [ -z "${EACM_IT_REEXEC:-}" ]; then
        EACM_IT_REEXEC=1 exec sh "$0" "$@"
fi
kat=$1 data=$2
[ -d "$data/post-vanilla" ] || { echo "missing test data: $data/post-vanilla" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# mutate FILE OFFSET EXPECTED-LINE: copy post-vanilla, change the byte at OFFSET of FILE, expect the line.
mutate() {
        rm -rf "$tmp/suite"
        mkdir -p "$tmp/suite"
        cp -R "$data/post-vanilla" "$tmp/suite/"
        chmod -R u+w "$tmp/suite"
        f="$tmp/suite/post-vanilla/$1"
        byte=$(dd if="$f" bs=1 skip="$2" count=1 2>/dev/null)
        if [ "$byte" = X ]; then new=Y; else new=X; fi
        printf %s "$new" | dd of="$f" bs=1 seek="$2" count=1 conv=notrunc 2>/dev/null
        if "$kat" "$tmp/suite" >"$tmp/out"; then
                echo "sigv4-kat passed with $1 mutated at byte $2:" >&2
                cat "$tmp/out" >&2
                exit 1
        fi
        if ! grep -qxF "$3" "$tmp/out"; then
                echo "expected the line '$3', got:" >&2
                cat "$tmp/out" >&2
                exit 1
        fi
        grep -qxF "1 passed, 1 failed" "$tmp/out" || { cat "$tmp/out" >&2; exit 1; }
        echo "ok: $1 byte $2 -> $3"
}

mutate header-canonical-request.txt 10 "FAIL post-vanilla header: canonical request differs at byte 10"
mutate query-string-to-sign.txt 20 "FAIL post-vanilla query: string to sign differs at byte 20"
mutate header-signature.txt 63 "FAIL post-vanilla header: signature differs at byte 63"
