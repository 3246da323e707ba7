#!/usr/bin/env python3
"""Greps every log the tests kept for PINs and private key material; fails naming file:line of each hit.

  secret-scan.py SOURCE_ROOT LOGS_DIR   scan LOGS_DIR (tests/integration/keep-logs.sh fills it: one
                                        directory per test, the PINs it used under LOGS_DIR/.pins)
  secret-scan.py SOURCE_ROOT --self-test  plant secrets in a scratch dir: each must be found, at its
                                        file:line, and clean lines (public keys, certificates) must not

PINs: those in the test scripts (NAME_PIN=..., PIN=..., `pin: ...` in YAML), in tests/data's YAML, and
the files the tests kept (pin files, generated PINs from state_dir/pins). A PIN matches as a whole
word. Keys: every tests/data/*.key.pem, as any 32-byte slice of its DER written as hex (any case, any
alignment) or base64 (any alignment: this covers its PEM lines), except slices also found in a public
key or certificate in tests/data (an RSA key's DER holds the public modulus, an EC key its point).
The scan is not vacuous: it reports how many logs and bytes it read and fails if it read none.
Exit 0 clean, 1 hits (or nothing scanned), 2 usage.
"""
import base64
import binascii
import os
import re
import sys
import tempfile

WINDOW = 32
MIN_PIN = 6  # shorter PINs ("0000" in a YAML) match hexdumps and counters: listed as not looked for
HEX_RUN = re.compile(rb"[0-9A-Fa-f]{%d,}" % (2 * WINDOW))
B64_RUN = re.compile(rb"[A-Za-z0-9+/]{%d,}" % (4 * WINDOW // 3 + 1))

PIN_PATTERNS = [
    re.compile(r"""\b[A-Za-z_]*(?:PIN|pin)=(['"]?)([^\s'"$`;)]+)\1"""),  # PIN=it-pin-1234, pin='x'
    re.compile(r"""^\s*-?\s*pin:\s*(['"]?)([^\s'"{}$]+)\1\s*$""", re.M),  # YAML pin: '1234'
    re.compile(r"""login:([^\s'"$:]{4,})"""),  # p11-client login:PIN
    re.compile(r"""(?<![\w-])([a-z0-9]+(?:-[a-z0-9]+)*-[pP]in-[A-Za-z0-9]+)(?![\w-])"""),  # it-pin-aaaa anywhere
]


def pem_der(path):
    """The DER of each PEM block in path."""
    out, body = [], None
    with open(path, "rb") as f:
        for line in f:
            line = line.strip()
            if line.startswith(b"-----BEGIN"):
                body = []
            elif line.startswith(b"-----END"):
                if body is not None:
                    out.append(base64.b64decode(b"".join(body)))
                body = None
            elif body is not None:
                body.append(line)
    return out


def windows(data):
    return {data[i : i + WINDOW] for i in range(len(data) - WINDOW + 1)}


def key_windows(data_dir):
    """{32-byte slice: key file name} for the private keys, minus public slices."""
    secret, public = {}, set()
    for name in sorted(os.listdir(data_dir)):
        path = os.path.join(data_dir, name)
        if not name.endswith(".pem"):
            continue
        for der in pem_der(path):
            if name.endswith(".key.pem"):
                for w in windows(der):
                    secret.setdefault(w, name)
            else:
                public |= windows(der)
    for w in public:
        secret.pop(w, None)
    return secret


def collect_pins(root, pins_dir):
    pins = set()
    texts = []
    for sub in ("tests/integration", "tests/e2e", "tests/data/agent"):
        d = os.path.join(root, sub)
        for name in sorted(os.listdir(d)):
            if name.endswith((".sh", ".c", ".yaml")):
                with open(os.path.join(d, name), errors="replace") as f:
                    texts.append(f.read())
    for text in texts:
        for pat in PIN_PATTERNS:
            for m in pat.finditer(text):
                pins.add(m.group(m.lastindex).encode())
    if pins_dir and os.path.isdir(pins_dir):
        for dirpath, _, files in os.walk(pins_dir):
            for name in files:
                with open(os.path.join(dirpath, name), "rb") as f:
                    pin = f.read().strip()
                if pin:
                    pins.add(pin)
    return pins


def pin_regex(pins):
    alts = b"|".join(re.escape(p) for p in sorted(pins, key=len, reverse=True))
    return re.compile(rb"(?<![A-Za-z0-9])(" + alts + rb")(?![A-Za-z0-9])")


def key_hit(data, secret):
    for i in range(len(data) - WINDOW + 1):
        name = secret.get(data[i : i + WINDOW])
        if name:
            return name
    return None


def scan_line(line, pin_re, secret):
    """The reasons line leaks something (empty if clean)."""
    hits = []
    m = pin_re.search(line) if pin_re else None
    if m:
        hits.append("PIN '%s'" % m.group(1).decode(errors="replace"))
    for run in HEX_RUN.findall(line):
        for off in (0, 1):
            s = run[off:]
            s = s[: len(s) // 2 * 2]
            name = key_hit(binascii.unhexlify(s), secret)
            if name:
                hits.append("32 bytes of %s's DER as hex" % name)
                break
    for run in B64_RUN.findall(line):
        for off in range(4):
            s = run[off:]
            s = s[: len(s) // 4 * 4]
            try:
                data = base64.b64decode(s)
            except binascii.Error:
                continue
            name = key_hit(data, secret)
            if name:
                hits.append("32 bytes of %s's DER as base64 (a PEM line?)" % name)
                break
    return hits


def scan(logs_dir, pins, secret):
    """(files, bytes, [file:line: reason])"""
    pin_re = pin_regex(pins) if pins else None
    n_files = n_bytes = 0
    found = []
    for dirpath, dirnames, files in os.walk(logs_dir):
        dirnames[:] = sorted(d for d in dirnames if d != ".pins")
        for name in sorted(files):
            path = os.path.join(dirpath, name)
            with open(path, "rb") as f:
                data = f.read()
            n_files += 1
            n_bytes += len(data)
            for no, line in enumerate(data.split(b"\n"), 1):
                for why in scan_line(line, pin_re, secret):
                    found.append("%s:%d: %s" % (os.path.relpath(path, logs_dir), no, why))
    return n_files, n_bytes, found


def self_test(root, pins, secret):
    data = os.path.join(root, "tests", "data")
    key_pem = open(os.path.join(data, "rsa2048.key.pem"), "rb").read().split(b"\n")
    der = pem_der(os.path.join(data, "ec-p256.key.pem"))[0]
    cert_pem = open(os.path.join(data, "rsa2048.crt.pem"), "rb").read()
    pub_pem = open(os.path.join(data, "ec-p256.pub.pem"), "rb").read()
    pin = b"it-pin-1234"
    assert pin in pins, "the lib.sh PIN was not collected"
    planted = {
        "pin.log": [b"<7>login ok", b"<7>C_Login: pin it-pin-1234 accepted"],
        "pem.log": [b"clean", b"", b"key line " + key_pem[12] + b" end"],
        "hex.log": [b"x", b"sig=" + binascii.hexlify(der[20 : 20 + 40]).upper()],
        "b64.log": [b"blob " + base64.b64encode(b"\x01" + der[7:60])],
        "sub/nested.out": [b"a", b"b", b"c", b"PIN='%s'" % pin],
    }
    expect = {"pin.log:2", "pem.log:3", "hex.log:2", "b64.log:1", "sub/nested.out:4"}
    clean = {
        # Public material: certificates and public keys share bytes with the private keys' DER.
        "public.log": cert_pem + pub_pem,
        "words.log": b"it-pin-12345 xit-pin-1234 slot 265927825 PIN length 31\n" + binascii.hexlify(os.urandom(64)),
    }
    ok = True
    with tempfile.TemporaryDirectory() as d:
        for name, lines in planted.items():
            os.makedirs(os.path.dirname(os.path.join(d, name)), exist_ok=True)
            with open(os.path.join(d, name), "wb") as f:
                f.write(b"\n".join(lines) + b"\n")
        for name, text in clean.items():
            with open(os.path.join(d, name), "wb") as f:
                f.write(text)
        n_files, n_bytes, found = scan(d, pins, secret)
        where = {h.split(": ", 1)[0] for h in found}
        for h in found:
            print("# found " + h)
        for e in sorted(expect - where):
            print("not ok - the planted secret at %s was not found" % e)
            ok = False
        for w in sorted(where - expect):
            print("not ok - a false hit at %s" % w)
            ok = False
        if n_files != len(planted) + len(clean):
            print("not ok - scanned %d files, planted %d" % (n_files, len(planted) + len(clean)))
            ok = False
    with tempfile.TemporaryDirectory() as d:
        n_files, _, _ = scan(d, pins, secret)
        if n_files != 0:
            ok = False
    print("%s - self-test: %d planted secrets found at their file:line, no false hits in %d clean files"
          % ("ok" if ok else "not ok", len(expect), len(clean)))
    return 0 if ok else 1


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    root = argv[1]
    secret = key_windows(os.path.join(root, "tests", "data"))
    if argv[2] == "--self-test":
        return self_test(root, {p for p in collect_pins(root, None) if len(p) >= MIN_PIN}, secret)
    logs_dir = argv[2]
    pins = collect_pins(root, os.path.join(logs_dir, ".pins"))
    short = sorted(p.decode(errors="replace") for p in pins if len(p) < MIN_PIN)
    pins = {p for p in pins if len(p) >= MIN_PIN}
    if not os.path.isdir(logs_dir):
        print("FAIL: no logs kept in '%s' (run the integration tests first)" % logs_dir)
        return 1
    n_files, n_bytes, found = scan(logs_dir, pins, secret)
    print("# %d PINs, %d key slices (%d bytes each) looked for" % (len(pins), len(secret), WINDOW))
    if short:
        print("# PINs too short to grep without false hits, not looked for: %s" % ", ".join(short))
    print("# scanned %d logs, %d bytes, in %s" % (n_files, n_bytes, logs_dir))
    for h in found:
        print("FAIL: " + h)
    if n_files == 0 or n_bytes == 0:
        print("FAIL: nothing to scan in '%s': the tests kept no logs" % logs_dir)
        return 1
    if found:
        print("FAIL: %d log line(s) hold a PIN or key material" % len(found))
        return 1
    print("PASS: no PIN or key material in %d logs (%d bytes)" % (n_files, n_bytes))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
