#!/bin/bash
# The enclave image boots: packaging/enclave/build-image.sh builds the EIF (enclave-init as PID 1,
# enclave-token, their libraries, the CA bundle) around Debian's kernel with enclave_acm.selfcheck=1;
# the kernel, cmdline and ramdisks are taken back out of the EIF (as the hypervisor does) and booted
# with Debian's qemu-system-x86_64 (software emulation, no nitro-enclave machine before QEMU 9.2). PID 1
# starts enclave-token, the self-check asks it PING and DESCRIBE and prints one line on the serial
# console, and the VM powers off. Passes only on that line and a power-off, within the time bound.
# Also: two builds of the image are byte-identical. Skips (77) without qemu-system-x86_64 or a kernel.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
require_tool qemu-system-x86_64 python3

: "${ENCLAVE_INIT:?}"
BUILD=$(dirname "$(dirname "$ENCLAVE_INIT")")
KERNEL=${EIF_TEST_KERNEL:-$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -1)}
if [[ -z $KERNEL || ! -r $KERNEL ]]; then
        echo "SKIP: no readable kernel in /boot (install linux-image-amd64 or set EIF_TEST_KERNEL)"
        exit 77
fi
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD_IMAGE=$SRC/packaging/enclave/build-image.sh

mkdir -p "$T/a" "$T/b"
"$BUILD_IMAGE" --build "$BUILD" --kernel "$KERNEL" --cmdline "console=ttyS0 panic=-1" --selfcheck \
        --output "$T/a/enclave.eif" >"$T/a/build.out"
ok "image built around $(basename "$KERNEL") ($(stat -c %s "$T/a/enclave.eif") bytes)"
sleep 1
(cd "$T/b" && "$BUILD_IMAGE" --build "$BUILD" --kernel "$KERNEL" --cmdline "console=ttyS0 panic=-1" --selfcheck \
        --output enclave.eif >/dev/null)
cmp "$T/a/enclave.eif" "$T/b/enclave.eif" || fail "two builds of the image differ"
ok "two builds of the image are byte-identical"
"$ENCLAVE_ACM" eif describe "$T/a/enclave.eif" >"$T/describe.out" || fail "describe refused the image"
grep -q 'enclave_acm.selfcheck=1' "$T/describe.out" || fail "the command line lacks the self-check word"
ok "describe accepts the image"

# Out of the EIF: the kernel, the command line, the ramdisks concatenated (the kernel unpacks each).
python3 - "$T/a/enclave.eif" "$T" <<'PY'
import struct, sys
d = open(sys.argv[1], 'rb').read()
rd = b''
for i in range(struct.unpack('>H', d[26:28])[0]):
        o = struct.unpack('>Q', d[28 + 8 * i:36 + 8 * i])[0]
        t, _, n = struct.unpack('>HHQ', d[o:o + 12])
        data = d[o + 12:o + 12 + n]
        if t == 1: open(sys.argv[2] + '/kernel', 'wb').write(data)
        if t == 2: open(sys.argv[2] + '/cmdline', 'wb').write(data)
        if t == 3: rd += data
open(sys.argv[2] + '/initrd', 'wb').write(rd)
PY
rc=0
timeout 240 qemu-system-x86_64 -machine pc -accel tcg -m 512 -nographic -no-reboot -monitor none \
        -serial stdio -kernel "$T/kernel" -initrd "$T/initrd" -append "$(cat "$T/cmdline")" \
        </dev/null >"$T/console.log" 2>&1 || rc=$?
[[ $rc -eq 0 ]] || { tail -40 "$T/console.log" >&2; fail "qemu exited $rc (124: the 240 s bound)"; }
grep -q '^enclave-acm selfcheck: enclave-token answers PING and DESCRIBE' "$T/console.log" ||
        { tail -40 "$T/console.log" >&2; fail "no self-check line on the console"; }
ok "PID 1 started enclave-token; it answered PING and DESCRIBE inside the VM"
grep -q 'reboot: Power down' "$T/console.log" || { tail -20 "$T/console.log" >&2; fail "the VM did not power off"; }
ok "the VM powered off"
