#!/bin/bash
# enclave-acm attestation verify: real Nitro documents, a simulator document with --root, and one
# mutated file per failure reason, each with its own exit status (0 ok, 1 I/O, 2 usage, 3 malformed,
# 4 signature, 5 chain, 6 expired, 7 root, 8 pcr). No daemon needed.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
require_tool python3

E=$ENCLAVE_ACM
N=$TEST_DATA/nitro
DOC=$N/capejs_spec_2022-09-15_prod.cose
[[ -f $DOC && -f $TEST_DATA/attest-sim/sim.cose ]] || fail "test data missing under $TEST_DATA"

# expect RC DESCRIPTION PATTERN ARGS... : exit code RC and output matching PATTERN.
expect() {
        local want=$1 desc=$2 pattern=$3 rc=0
        shift 3
        "$E" attestation "$@" >"$T/a.out" 2>&1 || rc=$?
        [[ $rc -eq $want ]] || { cat "$T/a.out" >&2; fail "$desc: exit code $rc, expected $want"; }
        grep -Eq -- "$pattern" "$T/a.out" || { cat "$T/a.out" >&2; fail "$desc: output lacks /$pattern/"; }
        ok "$desc"
}

# mutate IN OUT PYTHON-EXPR-ON-bytearray-d
mutate() {
        python3 - "$1" "$2" "$3" <<'PY'
import sys
d = bytearray(open(sys.argv[1], 'rb').read())
exec(sys.argv[3])
open(sys.argv[2], 'wb').write(d)
PY
}

expect 0 "--help" 'Exit status: 0 verified' verify --help
for f in "$N"/*.cose; do
        expect 0 "$(basename "$f") verifies as of its timestamp" 'Verdict: +ok' verify --at doc "$f"
done
expect 0 "fields printed" 'Module ID: +i-0697c9729fa547b20-enc0183422ede9a5dc8' verify --at doc "$DOC"
expect 0 "timestamp in ISO-8601" '1663263808848 \(2022-09-15T17:43:28\.848Z\)' verify --at doc "$DOC"
expect 0 "PCR8 printed" 'PCR8 +6f1ff0f2a7a0b1c4' verify --at doc "$DOC"
expect 0 "null and sized optional fields" 'User data: +null' verify --at doc "$N/marlin_risczero_2024-12-13_prod.cose"
expect 0 "--json" '"verdict": "ok"' verify --json --at doc "$DOC"
python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert j["timestamp_ms"]==1663263808848 and len(j["pcrs"])==16 and j["user_data"]=={"kind":"bytes","length":250}, j' "$T/a.out" ||
        fail "--json output is not the expected JSON"
ok "--json parses with the expected fields"
expect 0 "--at UNIX_MS inside the leaf window" 'Verdict: +ok' verify --at 1663270000000 "$DOC"
expect 0 "matching --pcr" 'Verdict: +ok' verify --at doc --pcr 8=6f1ff0f2a7a0b1c4e02a3a544eb0ff2dffb8b2922b8908d46365c0f0120934092149ec35814c8d944ef1b8fb564b46c7 "$DOC"
base64 "$DOC" >"$T/doc.b64"
expect 0 "base64 input" 'Verdict: +ok' verify --at doc "$T/doc.b64"

expect 1 "missing file" "Cannot open" verify "$T/nonexistent.cose"
expect 2 "no FILE" 'missing FILE' verify
expect 2 "no sub-command" "expected the sub-command 'verify'" frobnicate
expect 2 "bad --at" "expected now, doc or UNIX milliseconds" verify --at yesterday "$DOC"
expect 2 "bad --pcr index" 'index must be 0..31' verify --pcr 32=00 "$DOC"
expect 2 "bad --pcr value" 'value must be' verify --pcr 1=xyz "$DOC"

mutate "$DOC" "$T/trunc.cose" 'del d[-1]'
expect 3 "truncated: malformed" 'malformed: signature' verify --at doc "$T/trunc.cose"
mutate "$DOC" "$T/trail.cose" 'd.append(0)'
expect 3 "trailing byte: malformed" 'malformed: document \(trailing bytes\) at byte 4690' verify --at doc "$T/trail.cose"
mutate "$DOC" "$T/sig.cose" 'd[-1] ^= 1'
expect 4 "flipped signature bit" 'Verdict: +signature' verify --at doc "$T/sig.cose"
# the last byte of the leaf certificate's DER (inside its signature)
mutate "$DOC" "$T/leaf.cose" '
i = d.index(b"\x6bcertificate\x59") + 12
n = d[i + 1] << 8 | d[i + 2]
d[i + 3 + n - 1] ^= 1'
expect 5 "flipped leaf certificate bit" 'Verdict: +chain' verify --at doc "$T/leaf.cose"
expect 6 "expired now" 'Verdict: +expired' verify "$DOC"
expect 6 "one second after the leaf's notAfter" 'Verdict: +expired' verify --at 1663274608000 "$DOC"
expect 7 "another root" 'Verdict: +root' verify --at doc --root "$TEST_DATA/attest-sim/root.pem" "$DOC"
expect 8 "wrong --pcr" 'pcr: PCR4 expected 00, got 1922848e' verify --at doc --pcr 4=00 "$DOC"
expect 8 "--pcr absent from the document" 'PCR20 expected 00, got nothing' verify --at doc --pcr 20=00 "$DOC"

# a simulator document: its test CA root, never the AWS one
expect 0 "simulator document with --root" 'Verdict: +ok' verify --at doc --root "$TEST_DATA/attest-sim/root.pem" "$TEST_DATA/attest-sim/sim.cose"
expect 0 "simulator optional fields" 'Nonce: +0 bytes' verify --at doc --root "$TEST_DATA/attest-sim/root.pem" "$TEST_DATA/attest-sim/sim.cose"
expect 7 "simulator document against the AWS root" 'Verdict: +root' verify --at doc "$TEST_DATA/attest-sim/sim.cose"
expect 1 "--root that is not a PEM certificate" 'holds no PEM certificate' verify --root "$DOC" "$DOC"
finish
