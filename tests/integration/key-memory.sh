#!/bin/bash
# enclave-token's key memory seen from outside, as issue 12 found it: after signatures with RSA-2048,
# P-256 and Ed25519 keys, a core file written by gcore (which leaves out MADV_DONTDUMP memory, as
# the kernel does) holds no 32-byte slice of any private number (RSA d, p, q, dP, dQ, qInv; the EC
# scalar; the Ed25519 key), big- or little-endian. Before issue 12 it held p and q, copied by
# OpenSSL's Montgomery cache into ordinary heap. Also the PIN: a LOGIN frame that is read but not
# complete sits in the connection's read buffer, which must be locked and excluded from dumps too;
# before that the core held the PIN. Needs gcore and permission to ptrace (root).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
require_tool gcore python3 openssl
[[ -z $VALGRIND ]] || {
        echo "SKIP: the core of valgrind is not enclave-token's"
        exit 77
}

start_daemon
# Labels the core must contain: proof that it holds enclave-token's ordinary heap at all.
provision kmem-label-rsa-5b1d rsa2048
provision kmem-label-ec-5b1d ec-p256
provision kmem-label-ed-5b1d ed25519
digest_file sha256 "$TEST_DATA/rsa2048.crt.pem" "$T/digest"
C=(timeout 60 "$P11_CLIENT" "$P11_MODULE")
check "RSA-2048 signatures" "${C[@]}" kmem-label-rsa-5b1d open "login:$PIN" findkey \
        "signloop:20:RSA-PKCS-PSS:$T/digest"
check "P-256 signatures" "${C[@]}" kmem-label-ec-5b1d open "login:$PIN" findkey "signloop:20:ECDSA:$T/digest"
check "Ed25519 signatures" "${C[@]}" kmem-label-ed-5b1d open "login:$PIN" findkey "signloop:20:EDDSA:$T/digest"

# A client stopped in the middle of a LOGIN frame: its PIN is in enclave-token's read buffer.
"$JUNK_CLIENT" "$T/data.sock" half-login 30 "$PIN" >"$T/half-login.out" 2>&1 &
HALF_LOGIN=$!
for ((i = 0; i < 200; i++)); do
        grep -q '^half-login: sent' "$T/half-login.out" && break
        sleep 0.05
done
grep -q '^half-login: sent' "$T/half-login.out" || { cat "$T/half-login.out" >&2; fail "junk-client half-login"; }


if ! gcore -o "$T/core" "$DAEMON_PID" >"$T/gcore.out" 2>&1; then
        cat "$T/gcore.out"
        echo "SKIP: gcore cannot attach to enclave-token here (needs ptrace permission)"
        finish
        exit 77
fi
kill "$HALF_LOGIN" 2>/dev/null || true
wait "$HALF_LOGIN" 2>/dev/null || true
python3 - "$T/core.$DAEMON_PID" "$TEST_DATA" "$PIN" <<'EOF'
import re, subprocess, sys

core = open(sys.argv[1], "rb").read()
data = sys.argv[2]
pin = sys.argv[3].encode()
hits = core.count(pin)
print(f"# the PIN: {hits} time(s) in the core")
print(f"# core: {len(core)} bytes")
for label in (b"kmem-label-rsa-5b1d", b"kmem-label-ec-5b1d", b"kmem-label-ed-5b1d"):
    if label not in core:
        sys.exit(f"FAIL: the core lacks the label {label.decode()}: not enclave-token's heap?")

def numbers(key):
    """Each private number of the key file as big-endian bytes, from `openssl pkey -text`."""
    text = subprocess.run(["openssl", "pkey", "-in", f"{data}/{key}.key.pem", "-noout", "-text"],
                          capture_output=True, text=True, check=True).stdout
    for name in ("privateExponent", "prime1", "prime2", "exponent1", "exponent2", "coefficient", "priv"):
        m = re.search(rf"^{name}:\s*\n((?:\s+[0-9a-f:]+\n)+)", text, re.M)
        if m:
            yield name, bytes.fromhex(re.sub(r"[\s:]", "", m.group(1))).lstrip(b"\0")

for key in ("rsa2048", "ec-p256", "ed25519"):
    found = 0
    for name, num in numbers(key):
        mid = (len(num) - 32) // 2
        for order, b in (("BE", num), ("LE", num[::-1])):
            n = core.count(b[mid:mid + 32])
            if n:
                print(f"# {key}: {name} ({order}) found {n} time(s) in the core")
            found += n
    print(f"# {key}: {found} copies of private numbers in the core")
    hits += found
sys.exit(1 if hits else 0)
EOF
ok "no private number of any key in a gcore of enclave-token after signing"
rm -f "$T/core.$DAEMON_PID"

finish
