#!/bin/bash
# The enclave-acm CLI against a real enclave-token --dev: usage errors, bad files, add/replace/remove, status.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
require_tool openssl python3

D=$TEST_DATA
E=$ENCLAVE_ACM
# usage_error DESCRIPTION PATTERN ARGS... : exit code 2 and a message.
usage_error() {
        local desc=$1 pattern=$2 rc=0
        shift 2
        "$E" "$@" >"$T/u.out" 2>&1 || rc=$?
        [[ $rc -eq 2 ]] || { cat "$T/u.out" >&2; fail "$desc: exit code $rc, expected 2"; }
        grep -Eq -- "$pattern" "$T/u.out" || { cat "$T/u.out" >&2; fail "$desc: output lacks /$pattern/"; }
        ok "$desc"
}
# refused DESCRIPTION PATTERN ARGS... : exit code 1 and a message.
refused() {
        local desc=$1 pattern=$2 rc=0
        shift 2
        "$E" "$@" >"$T/u.out" 2>&1 || rc=$?
        [[ $rc -eq 1 ]] || { cat "$T/u.out" >&2; fail "$desc: exit code $rc, expected 1"; }
        grep -Eq -- "$pattern" "$T/u.out" || { cat "$T/u.out" >&2; fail "$desc: output lacks /$pattern/"; }
        ok "$desc"
}

check_output "--version" '^enclave-acm [0-9]+\.[0-9]+' "$E" --version
check_output "--help lists the commands" 'token add' "$E" --help
check_output "token add --help" '--pin-file' "$E" token add --help
# parse_argv everywhere: 1 go on, 0 exit 0 after --help/--version, < 0 a usage error (exit 2 here).
check_output "token remove --help" 'token remove --label' "$E" token remove --help
check_output "status --help" '--runtime-dir' "$E" status --help
check_output "web apply --help" '--stanza FILE' "$E" web apply --help
check_output "enclave-token --version" '^enclave-token [0-9]+\.[0-9]+' "$ENCLAVE_TOKEN" --version
[[ ! -x $AGENT ]] || check_output "enclave-acm-agent --help" '--check-config' "$AGENT" --help
usage_error "no command" 'Missing command' 
usage_error "unknown command" "Unknown command 'frobnicate'" frobnicate
usage_error "unknown option" 'Try' token add --frob
usage_error "bad control address" "Invalid control address 'tcp:1.2.3.4'" --control tcp:1.2.3.4 status
usage_error "missing --label" '--label LABEL is required' token add --pin-file "$T/pin" --key "$D/rsa2048.key.pem" --cert "$D/rsa2048.crt.pem"
usage_error "missing PIN" '--pin-file FILE' token add --label a --key "$D/rsa2048.key.pem" --cert "$D/rsa2048.crt.pem"
usage_error "both PIN options" 'not both' token add --label a --pin 1234 --pin-file "$T/pin" --key "$D/rsa2048.key.pem" --cert "$D/rsa2048.crt.pem"
usage_error "missing --key" '--key KEY.pem and --cert' token add --label a --pin-file "$T/pin" --cert "$D/rsa2048.crt.pem"
usage_error "label too long" 'label' token add --label 123456789012345678901234567890123 --pin-file "$T/pin" --key "$D/rsa2048.key.pem" --cert "$D/rsa2048.crt.pem"
usage_error "id out of range" "--id '65536'" token add --label a --id 65536 --pin-file "$T/pin" --key "$D/rsa2048.key.pem" --cert "$D/rsa2048.crt.pem"
usage_error "id not a number" "--id '1x'" token add --label a --id 1x --pin-file "$T/pin" --key "$D/rsa2048.key.pem" --cert "$D/rsa2048.crt.pem"
usage_error "token without sub-command" 'missing sub-command' token
usage_error "status with an argument" "unexpected argument 'extra'" status extra
usage_error "status with an unknown option" "Try 'enclave-acm status --help'" status --frob
usage_error "web apply without options" '--server nginx\|httpd is required' web apply
usage_error "web apply with a bad port" "--port 'x': not a port" web apply --port x
usage_error "web apply with an unknown option" "Try 'enclave-acm web apply --help'" web apply --frob

refused "daemon not running" "Cannot connect to enclave-token at '$CONTROL_ADDR'" status

start_daemon

# Bad input files: each message names the file and says what is wrong.
refused "missing key file" "Cannot open private key file '$T/nope.pem': No such file or directory" \
        token add --label a --pin-file "$T/pin" --key "$T/nope.pem" --cert "$D/rsa2048.crt.pem"
refused "missing PIN file" "Cannot open PIN file '$T/nope': No such file or directory" \
        token add --label a --pin-file "$T/nope" --key "$D/rsa2048.key.pem" --cert "$D/rsa2048.crt.pem"
echo "not a key" >"$T/junk.txt"
refused "key file without PEM" "private key file '$T/junk.txt' contains no PEM data" \
        token add --label a --pin-file "$T/pin" --key "$T/junk.txt" --cert "$D/rsa2048.crt.pem"
refused "certificate file without PEM" "certificate file '$T/junk.txt' contains no PEM data" \
        token add --label a --pin-file "$T/pin" --key "$D/rsa2048.key.pem" --cert "$T/junk.txt"
refused "certificate file holding a key" "'$D/rsa2048.key.pem' holds no PEM certificate" \
        token add --label a --pin-file "$T/pin" --key "$D/rsa2048.key.pem" --cert "$D/rsa2048.key.pem"
refused "key file holding a certificate" "'$D/rsa2048.crt.pem' holds no usable private key" \
        token add --label a --pin-file "$T/pin" --key "$D/rsa2048.crt.pem" --cert "$D/rsa2048.crt.pem"
openssl pkey -in "$D/ec-p256.key.pem" -aes128 -passout pass:secret -out "$T/encrypted.pem" 2>/dev/null
refused "encrypted key" "holds no usable private key .*unencrypted" \
        token add --label a --pin-file "$T/pin" --key "$T/encrypted.pem" --cert "$D/ec-p256.crt.pem"
refused "key does not match the certificate" "private key in '$D/rsa2048.key.pem' does not match the first certificate in '$D/ec-p256.crt.pem'" \
        token add --label a --pin-file "$T/pin" --key "$D/rsa2048.key.pem" --cert "$D/ec-p256.crt.pem"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:secp256k1 -out "$T/k1.pem" 2>/dev/null
refused "unsupported curve" "curve 'secp256k1'" \
        token add --label a --pin-file "$T/pin" --key "$T/k1.pem" --cert "$D/ec-p256.crt.pem"
printf '12\n' >"$T/short-pin"
refused "PIN too short" "PIN file '$T/short-pin'.* must be 4 to 64 bytes" \
        token add --label a --pin-file "$T/short-pin" --key "$D/rsa2048.key.pem" --cert "$D/rsa2048.crt.pem"
cat "$D/chain-intermediate.crt.pem" "$D/chain-leaf.crt.pem" >"$T/leaf-last.pem"
refused "chain with the leaf last" "does not match the first certificate" \
        token add --label a --pin-file "$T/pin" --key "$D/chain-leaf.key.pem" --cert "$T/leaf-last.pem"
refused "certificate path that is not a regular file" "'/dev/null' is not a regular file" \
        token add --label a --pin-file "$T/pin" --key "$D/rsa2048.key.pem" --cert /dev/null

check_output "status with no tokens" 'Tokens: +0 of at most' "$E" status
check_output "status shows development mode" 'Mode: +development' "$E" status

# Add, replace, remove.
check_output "add an RSA-2048 token" "Added token 'web' in slot [0-9]+: key 1 'web' \(RSA 2048, 1 certificate\)" \
        "$E" token add --label web --pin-file "$T/pin" --key "$D/rsa2048.key.pem" --cert "$D/rsa2048.crt.pem"
grep -q '^PKCS#11 URI: pkcs11:model=enclave-token;manufacturer=enclave-acm;token=web;id=%01;object=web;type=private$' "$T/check.out" ||
        fail "add prints the key's PKCS#11 URI"
ok "add prints the key's PKCS#11 URI"
slot=$(sed -n "s/^Added token 'web' in slot \([0-9]*\):.*/\1/p" "$T/check.out")
refused "adding an existing label" "Cannot add token 'web': a token with this label already exists" \
        token add --label web --pin-file "$T/pin" --key "$D/rsa2048.key.pem" --cert "$D/rsa2048.crt.pem"
refused "replace with the wrong PIN" "Cannot replace token 'web': the PIN is wrong" \
        token add --replace --label web --pin-file "$T/wrong-pin" --key "$D/ec-p256.key.pem" --cert "$D/ec-p256.crt.pem"
check_output "replace with the right PIN and another key: the same slot" "Replaced token 'web' in slot [0-9]+: key 1 'web' \(EC P-256" \
        "$E" token add --replace --label web --pin-file "$T/pin" --key "$D/ec-p256.key.pem" --cert "$D/ec-p256.crt.pem"
old_slot=$slot
slot=$(sed -n "s/^Replaced token 'web' in slot \([0-9]*\):.*/\1/p" "$T/check.out")
[[ -n $slot && $slot == "$old_slot" ]] || fail "a replaced key changed the slot id ($old_slot -> $slot)"
check_output "replace with the same key keeps the slot" "Replaced token 'web' in slot $slot: key 1 'web' \(EC P-256" \
        "$E" token add --replace --label web --pin-file "$T/pin" --key "$D/ec-p256.key.pem" --cert "$D/ec-p256.crt.pem"
check_output "add with --pin on the command line, PKCS#1 key, id and key label" \
        "Added token 'pin on argv' .*key 300 'my key' \(RSA 2048" \
        "$E" token add --label 'pin on argv' --pin "$PIN" --key "$D/rsa2048.pkcs1.key.pem" \
        --cert "$D/rsa2048.crt.pem" --id 300 --key-label 'my key'
grep -q 'token=pin%20on%20argv;id=%01%2C;object=my%20key;type=private$' "$T/check.out" ||
        { cat "$T/check.out" >&2; fail "URI is percent-encoded, id 300 is %01%2C"; }
ok "URI is percent-encoded, id 300 is %01%2C"
check_output "add a chain (leaf + intermediate)" "Added token 'chain' .*\(EC P-256, 2 certificates\)" \
        "$E" token add --label chain --pin-file "$T/pin" --key "$D/chain-leaf.key.pem" --cert "$D/chain-leaf.chain.pem"
check_output "add Ed25519" "\(Ed25519, 1 certificate\)" \
        "$E" token add --label ed --pin-file "$T/pin" --key "$D/ed25519.key.pem" --cert "$D/ed25519.crt.pem"

# status, human readable.
"$E" status >"$T/status.txt" || fail "status"
for pattern in 'Tokens: +4 of at most [0-9]+' "Token 'web' \(slot $slot, 1 key\)" "Key 1 'web': EC P-256" \
        'Subject: +.*CN *= *ec-p256.enclave-acm.test' 'Not after: +2126-[0-9]{2}-[0-9]{2} [0-9:]{8} UTC' \
        "Key 300 'my key': RSA 2048" "Key 1 'ed': Ed25519" "Key 1 'chain': EC P-256" \
        'URI: +pkcs11:model=enclave-token;manufacturer=enclave-acm;token=chain;id=%01;object=chain;type=private'; do
        grep -Eq -- "$pattern" "$T/status.txt" || { cat "$T/status.txt" >&2; fail "status lacks /$pattern/"; }
done
ok "status shows tokens, keys, subjects, expiry and URIs"

# status --json: valid JSON with the same facts.
"$E" status --json >"$T/status.json" || fail "status --json"
python3 - "$T/status.json" "$slot" <<'PY' || fail "status --json content"
import json, sys
st = json.load(open(sys.argv[1]))
assert st["dev_mode"] is True, st
assert st["token_count"] == 4 and len(st["tokens"]) == 4, st
assert st["token_limit"] >= 4 and st["protocol_version"] == 3
assert isinstance(st["server"], str) and st["server"]
tok = {t["label"]: t for t in st["tokens"]}
web = tok["web"]
assert web["slot"] == int(sys.argv[2]) and web["key_count"] == 1
k = web["keys"][0]
assert (k["id"], k["label"], k["type"], k["bits"]) == (1, "web", "EC", 256), k
assert "ec-p256.enclave-acm.test" in k["subject"], k
assert k["not_after"].startswith("2126-") and k["not_after"].endswith("Z"), k
assert k["uri"] == "pkcs11:model=enclave-token;manufacturer=enclave-acm;token=web;id=%01;object=web;type=private", k
k = tok["pin on argv"]["keys"][0]
assert (k["id"], k["label"], k["type"], k["bits"]) == (300, "my key", "RSA", 2048), k
assert tok["ed"]["keys"][0]["type"] == "Ed25519"
slots = [t["slot"] for t in st["tokens"]]
assert slots == sorted(slots), slots
PY
ok "status --json is valid JSON with tokens, keys and URIs"

# A label that needs JSON escaping.
check "add a token whose label needs escaping" "$E" token add --label 'q"uo\te' --pin-file "$T/pin" \
        --key "$D/ec-p384.key.pem" --cert "$D/ec-p384.crt.pem"
"$E" status --json | python3 -c 'import json,sys; st=json.load(sys.stdin); assert any(t["label"]=="q\"uo\\te" for t in st["tokens"]), st' ||
        fail "JSON escaping of labels"
ok "JSON escaping of labels"

# Remove.
refused "remove with the wrong PIN" "Cannot remove token 'web': the PIN is wrong" \
        token remove --label web --pin-file "$T/wrong-pin"
check_output "remove" "Removed token 'web'" "$E" token remove --label web --pin-file "$T/pin"
refused "remove it again" "Cannot remove token 'web': there is no token with this label" \
        token remove --label web --pin-file "$T/pin"
"$E" status --json | python3 -c 'import json,sys; st=json.load(sys.stdin); assert st["token_count"] == 4 and all(t["label"] != "web" for t in st["tokens"])' ||
        fail "status after remove"
ok "status after remove"

# --control beats ENCLAVE_ACM_CONTROL.
check_output "--control overrides ENCLAVE_ACM_CONTROL" 'Tokens: +4' \
        env ENCLAVE_ACM_CONTROL=unix:path=/nonexistent/x.sock "$E" --control "$CONTROL_ADDR" status
finish
