#!/bin/bash
# enclave-acm eif build | describe | pcr: the issue's toy image and its known PCRs, nitro-cli's output
# shapes, round trip of the sections, reproducible bytes (two directories, two times, a packed ramdisk
# directory), a signed image whose PCR8 and signature verify and stop verifying when a measured byte
# changes, and every malformation refused with its rule, offset and exit status 3. No daemon needed.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
require_tool python3

E=$ENCLAVE_ACM
KEY=$TEST_DATA/ec-p384.key.pem
CERT=$TEST_DATA/ec-p384.crt.pem
[[ -f $KEY && -f $CERT ]] || fail "test data missing under $TEST_DATA"

PCR0=7d2bfb6d7c3d301485045ddbed03e21a0304d6f540a23a4522c8ca9133813c0b3b2956ef72606e06559ce0608a156fdc
PCR1=127d41e69be20fad8308b1d1ab8bf017a2f3b925c1f17ea8edb72c2b83406cbe1309775eebd94ad635ffa19ed7e9fbcd
PCR2=695029c2c04573eb1daf702d94e399b1c92ea53256b3f6683606ddbbb368c9c3b6f0a5059b95c334d8f9dca2d1bcf6b4

# expect RC DESCRIPTION PATTERN ARGS... : exit code RC and output matching PATTERN.
expect() {
        local want=$1 desc=$2 pattern=$3 rc=0
        shift 3
        "$E" eif "$@" >"$T/e.out" 2>&1 || rc=$?
        [[ $rc -eq $want ]] || { cat "$T/e.out" >&2; fail "$desc: exit code $rc, expected $want"; }
        grep -Eq -- "$pattern" "$T/e.out" || { cat "$T/e.out" >&2; fail "$desc: output lacks /$pattern/"; }
        ok "$desc"
}

# eifpy IN OUT PYTHON: runs PYTHON on d (bytearray of IN) with helpers; writes d to OUT.
#   sec(i) -> (offset of section i's header, size); fix() recomputes the CRC; pcr(bytes) the formula.
eifpy() {
        python3 - "$1" "$2" "$3" <<'PY'
import hashlib, struct, sys, zlib
d = bytearray(open(sys.argv[1], 'rb').read())
def sec(i):
        return struct.unpack('>Q', d[28 + 8 * i:36 + 8 * i])[0], struct.unpack('>Q', d[284 + 8 * i:292 + 8 * i])[0]
def fix():
        c = zlib.crc32(bytes(d[:544]))
        c = zlib.crc32(bytes(d[548:]), c)
        d[544:548] = struct.pack('>I', c)
exec(sys.argv[3])
open(sys.argv[2], 'wb').write(d)
PY
}

mkdir -p "$T/in" "$T/a" "$T/b"
printf kernel >"$T/in/kernel"
printf rd0 >"$T/in/rd0"
printf rd1 >"$T/in/rd1"
toy() { # OUT [more args]
        local out=$1
        shift
        "$E" eif build --kernel "$T/in/kernel" --cmdline console=ttyS0 --ramdisk "$T/in/rd0" \
                --ramdisk "$T/in/rd1" --output "$out" "$@"
}

expect 0 "--help" 'Exit status: 0 done' --help
expect 2 "no sub-command" "expected the sub-command"
expect 2 "unknown sub-command" "unknown sub-command 'frob'" frob
expect 2 "build without --kernel" 'are required' build --cmdline x --ramdisk "$T/in/rd0" --output "$T/x.eif"
expect 2 "key without certificate" 'go together' build --kernel "$T/in/kernel" --cmdline x \
        --ramdisk "$T/in/rd0" --output "$T/x.eif" --signing-key "$KEY"
expect 1 "missing kernel file" "Cannot open '$T/in/nope'" build --kernel "$T/in/nope" --cmdline x \
        --ramdisk "$T/in/rd0" --output "$T/x.eif"
expect 1 "cmdline with a trailing newline refused" 'trailing newline in cmdline' build \
        --kernel "$T/in/kernel" --cmdline $'x\n' --ramdisk "$T/in/rd0" --output "$T/x.eif"
[[ ! -e $T/x.eif ]] || fail "a refused build left an output file"
ok "a refused build writes nothing"
expect 2 "pcr needs one input" 'exactly one of' pcr
expect 1 "describe of a missing file" 'Cannot open' describe "$T/nope.eif"

# The toy image: known answers, nitro-cli's measurement file, round trip.
(cd "$T/a" && toy toy.eif >"$T/a/stdout")
ok "toy image built"
python3 - "$T/a/image-measurements.json" "$T/a/stdout" "$PCR0" "$PCR1" "$PCR2" <<'PY' || fail "image-measurements.json"
import json, sys
m = json.load(open(sys.argv[1]))
assert list(m) == ["Measurements"], m
assert m["Measurements"] == {"HashAlgorithm": "Sha384 { ... }", "PCR0": sys.argv[3], "PCR1": sys.argv[4],
                             "PCR2": sys.argv[5]}, m
assert json.load(open(sys.argv[2])) == m
PY
ok "image-measurements.json holds the known PCR0/1/2 in nitro-cli's shape, and build printed it"
expect 0 "describe prints PCR0" "PCR0 $PCR0" describe "$T/a/toy.eif"
expect 0 "describe prints the sections" 'ramdisk +at byte 871 +3 bytes' describe "$T/a/toy.eif"
expect 0 "describe --json" '"EifVersion": 4' describe --json "$T/a/toy.eif"
python3 - "$T/e.out" "$PCR0" "$PCR2" <<'PY' || fail "describe --json content"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["Measurements"]["PCR0"] == sys.argv[2] and j["Measurements"]["PCR2"] == sys.argv[3]
assert j["IsSigned"] is False and j["CheckCRC"] is True and "SignatureCheck" not in j
assert j["ImageName"] == "enclave-acm" and j["Metadata"]["BuildTime"] == "1970-01-01T00:00:00+00:00"
assert j["Metadata"]["DockerInfo"] is None and j["Metadata"]["CustomMetadata"] is None
assert [s["Type"] for s in j["Sections"]] == ["kernel", "cmdline", "metadata", "ramdisk", "ramdisk"]
assert j["Cmdline"] == "console=ttyS0" and j["Architecture"] == "x86_64"
PY
ok "describe --json: nitro-cli's keys and values"
eifpy "$T/a/toy.eif" "$T/sections.out" '
parts = []
for i in range(struct.unpack(">H", d[26:28])[0]):
        o, n = sec(i)
        parts.append(bytes(d[o + 12:o + 12 + n]))
assert parts[0] == b"kernel" and parts[1] == b"console=ttyS0" and parts[3] == b"rd0" and parts[4] == b"rd1", parts
' || fail "round trip"
ok "round trip: the sections hold the inputs unchanged"

# The image's own DockerInfo and CustomMetadata values are copied into describe --json verbatim.
eifpy "$T/a/toy.eif" "$T/meta.eif" '
d[:] = bytes(d).replace(b"\"DockerInfo\":null,\"CustomMetadata\":null", b"\"DockerInfo\":true,\"CustomMetadata\":1e-1")
fix()'
expect 0 "describe --json of other metadata values" '"CustomMetadata": 1e-1' describe --json "$T/meta.eif"
python3 -c 'import json,sys; m=json.load(open(sys.argv[1]))["Metadata"]; assert m["DockerInfo"] is True and m["CustomMetadata"] == 0.1, m' \
        "$T/e.out" || fail "describe --json: DockerInfo / CustomMetadata not copied"
ok "describe --json: the image's DockerInfo and CustomMetadata values, parsed back"

# nitro-cli pcr: the formula computed here.
expect 0 "pcr --input" '"PCR": "' pcr --input "$T/in/kernel"
python3 - "$T/e.out" "$T/in/kernel" <<'PY' || fail "pcr --input value"
import hashlib, json, sys
j = json.load(open(sys.argv[1]))
want = hashlib.sha384(bytes(48) + hashlib.sha384(open(sys.argv[2], 'rb').read()).digest()).hexdigest()
assert j == {"PCR": want}, (j, want)
PY
ok "pcr --input equals SHA384(0^48 || SHA384(file))"
expect 0 "pcr --signing-certificate" '"PCR8": "' pcr --signing-certificate "$CERT"
python3 - "$T/e.out" "$CERT" <<'PY' || fail "pcr --signing-certificate value"
import base64, hashlib, json, sys
pem = open(sys.argv[2]).read()
der = base64.b64decode("".join(pem.split("-----BEGIN CERTIFICATE-----")[1].split("-----END CERTIFICATE-----")[0].split()))
want = hashlib.sha384(bytes(48) + hashlib.sha384(der).digest()).hexdigest()
assert json.load(open(sys.argv[1])) == {"PCR8": want}
PY
ok "pcr --signing-certificate equals the formula over the certificate's DER"
PCR8=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["PCR8"])' "$T/e.out")

# Reproducible: another directory, a second later, another umask, relative and absolute paths.
sleep 1
(cd "$T/b" && umask 077 && toy "$T/b/toy.eif" >/dev/null)
cmp "$T/a/toy.eif" "$T/b/toy.eif" || fail "two builds of the same inputs differ"
cmp "$T/a/image-measurements.json" "$T/b/image-measurements.json" || fail "measurements differ"
ok "two builds in two directories at two times are byte-identical"
SOURCE_DATE_EPOCH=1700000000 toy "$T/b/dated.eif" >/dev/null
expect 0 "SOURCE_DATE_EPOCH sets BuildTime" 'BuildTime +2023-11-14T22:13:20\+00:00' describe "$T/b/dated.eif"

# A ramdisk directory packed twice from two trees made differently: the same cpio, the same image.
mk_tree() { # DIR UMASK
        (umask "$2" && mkdir -p "$1/etc/ssl" "$1/bin" && printf 'ca\n' >"$1/etc/ssl/ca.pem" &&
                printf '#!/bin/sh\n' >"$1/bin/init" && chmod +x "$1/bin/init" && ln -s bin/init "$1/init" &&
                printf z >"$1/zz" && touch -d @123456 "$1/zz")
}
mk_tree "$T/tree1" 022
sleep 1
mk_tree "$T/tree2" 077
"$E" eif build --kernel "$T/in/kernel" --cmdline console=ttyS0 --ramdisk "$T/in/rd0" --ramdisk-dir "$T/tree1" \
        --output "$T/a/dir.eif" >/dev/null
"$E" eif build --kernel "$T/in/kernel" --cmdline console=ttyS0 --ramdisk "$T/in/rd0" --ramdisk-dir "$T/tree2" \
        --output "$T/b/dir.eif" >/dev/null
cmp "$T/a/dir.eif" "$T/b/dir.eif" || fail "ramdisk directories made at other times / umasks give other images"
ok "packed ramdisk directories are reproducible (mtimes and umask do not leak)"
eifpy "$T/a/dir.eif" "$T/cpio.out" '
o, n = sec(4)
c = bytes(d[o + 12:o + 12 + n])
names, p = [], 0
while True:
        h = c[p:p + 110]
        assert h[:6] == b"070701", h
        f = [int(h[6 + 8 * k:14 + 8 * k], 16) for k in range(13)]
        ino, mode, uid, gid, nlink, mtime, size, namesize = f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[11]
        name = c[p + 110:p + 110 + namesize - 1].decode()
        p += 110 + namesize
        p += (4 - p % 4) % 4
        if name == "TRAILER!!!":
                break
        assert uid == 0 and gid == 0 and mtime == 0, (name, uid, gid, mtime)
        want = {"bin": 0o40755, "etc": 0o40755, "etc/ssl": 0o40755, "bin/init": 0o100755, "etc/ssl/ca.pem": 0o100644,
                "init": 0o120777, "zz": 0o100644}[name]
        assert mode == want, (name, oct(mode))
        data = c[p:p + size]
        if name == "init": assert data == b"bin/init"
        if name == "etc/ssl/ca.pem": assert data == b"ca\n"
        p += size
        p += (4 - p % 4) % 4
        names.append(name)
assert names == sorted(names) == ["bin", "bin/init", "etc", "etc/ssl", "etc/ssl/ca.pem", "init", "zz"], names
assert p == len(c)
' || fail "packed cpio content"
ok "the packed cpio: sorted names, owner 0, fixed mtime, normalised modes, contents intact"

# Signed: PCR8, signature check, and a changed measured byte (CRC fixed) breaks it.
toy "$T/a/signed.eif" --signing-key "$KEY" --signing-certificate "$CERT" >"$T/a/signed.out"
python3 - "$T/a/image-measurements.json" "$PCR0" "$PCR8" <<'PY' || fail "signed measurements"
import json, sys
m = json.load(open(sys.argv[1]))["Measurements"]
assert list(m) == ["HashAlgorithm", "PCR0", "PCR1", "PCR2", "PCR8"] and m["PCR0"] == sys.argv[2] and m["PCR8"] == sys.argv[3], m
PY
ok "a signed image keeps PCR0 and adds PCR8 (the certificate's) to image-measurements.json"
expect 0 "signed image: signature verifies" 'Signature check: +ok' describe "$T/a/signed.eif"
expect 0 "signed image: PCR8 printed" "PCR8 $PCR8" describe "$T/a/signed.eif"
expect 0 "signed image --json" '"SignatureCheck": true' describe --json "$T/a/signed.eif"
for i in 0 1 3 4; do
        eifpy "$T/a/signed.eif" "$T/mut.eif" "o, n = sec($i); d[o + 12] ^= 1; fix()"
        expect 4 "a changed byte in section $i breaks the signature" 'signed PCR0 differs' describe "$T/mut.eif"
done
eifpy "$T/a/signed.eif" "$T/mut.eif" 'o, n = sec(5); d[o + 12 + n - 10] ^= 1; fix()'
expect 4 "a changed byte in the COSE signature" 'bad signature|malformed' describe "$T/mut.eif"
eifpy "$T/a/signed.eif" "$T/mut.eif" 'o, n = sec(0); d[o + 12] ^= 1'
expect 3 "a changed kernel byte, CRC not fixed" 'not a valid EIF: CRC mismatch at byte 544' describe "$T/mut.eif"

# Every malformation: exit 3, the rule and its offset.
mal() { # DESCRIPTION PATTERN PYTHON
        eifpy "$T/a/toy.eif" "$T/mal.eif" "$3"
        expect 3 "$1" "$2" describe "$T/mal.eif"
}
mal "bad magic" 'bad magic at byte 0' 'd[0:4] = b".EIF"; fix()'
mal "version 3" 'unsupported version at byte 4' 'd[5] = 3; fix()'
mal "version 5" 'unsupported version at byte 4' 'd[5] = 5; fix()'
mal "bad CRC" 'CRC mismatch at byte 544' 'd[547] ^= 0xff'
mal "unknown flag" 'unknown header flags at byte 6' 'd[7] = 2; fix()'
mal "section type 0" 'bad section type at byte 548' 'd[549] = 0; fix()'
mal "section type 6" 'bad section type at byte 548' 'd[549] = 6; fix()'
mal "section count 33" 'section count out of range at byte 26' 'd[27] = 33; fix()'
mal "section count 1" 'section count out of range at byte 26' 'd[27] = 1; fix()'
mal "overlap" 'section overlap at byte 36' 'o, n = sec(1); d[36:44] = struct.pack(">Q", o - 2); fix()'
mal "gap" 'section gap at byte 36' '
o, n = sec(1)
d[o:o] = b"\0" * 8
for i in range(1, 5):
        d[28 + 8 * i:36 + 8 * i] = struct.pack(">Q", sec(i)[0] + 8)
fix()'
mal "out-of-file section" 'section outside the file' '
o, n = sec(4)
d[284 + 32:292 + 32] = struct.pack(">Q", 1 << 40)
d[o + 4:o + 12] = struct.pack(">Q", 1 << 40)
fix()'
mal "size mismatch" 'section size mismatch at byte 552' 'd[559] = 7; fix()'
mal "section flags" 'section flags not zero at byte 550' 'd[551] = 1; fix()'
mal "trailing bytes" 'trailing bytes at byte 886' 'd.extend(b"x"); fix()'
mal "missing metadata" 'missing metadata section' '
o, n = sec(2)
del d[o:o + 12 + n]
cnt = 4
offs = [sec(0)[0], sec(1)[0], sec(3)[0] - 12 - n, sec(4)[0] - 12 - n]
sizes = [sec(0)[1], sec(1)[1], sec(3)[1], sec(4)[1]]
d[26:28] = struct.pack(">H", cnt)
d[28:284] = b"".join(struct.pack(">Q", x) for x in offs) + bytes(8 * 28)
d[284:540] = b"".join(struct.pack(">Q", x) for x in sizes) + bytes(8 * 28)
fix()'
mal "metadata without BuildTime" 'metadata key missing at byte 603: \$.BuildMetadata.BuildTime' '
o, n = sec(2)
d[o + 12:o + 12 + n] = bytes(d[o + 12:o + 12 + n]).replace(b"BuildTime", b"BuildXime")
fix()'

# Truncation at every byte (the binary itself: hundreds of runs, valgrind would take too long).
len=$(stat -c %s "$T/a/toy.eif")
for ((n = 0; n < len; n++)); do
        head -c "$n" "$T/a/toy.eif" >"$T/trunc.eif"
        rc=0
        "$ENCLAVE_ACM_BIN" eif describe "$T/trunc.eif" >"$T/trunc.out" 2>&1 || rc=$?
        [[ $rc -eq 3 ]] || { cat "$T/trunc.out" >&2; fail "cut at $n bytes: exit $rc, expected 3"; }
        grep -Eq 'not a valid EIF: .* at byte [0-9]+' "$T/trunc.out" || fail "cut at $n bytes: no rule and offset"
done
ok "every truncation ($len) is refused with a rule and an offset"

echo "all $CHECKS checks passed"
