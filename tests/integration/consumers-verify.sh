#!/bin/bash
# Issue 16, local digests and verification through stock consumers: pkcs11-tool --test (OpenSC's self
# test) ends with "No errors" without "Digests/Verify: not implemented" on an RSA and a P-256 token;
# pkcs11-tool --verify for every key type and mechanism family, accepting what the token and what
# OpenSSL signed and rejecting a corrupted signature and other data; each slot lists only the
# mechanisms its keys can use, with their key sizes.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
require_tool pkcs11-tool openssl

start_daemon
KEYS=(rsa2048 rsa3072 ec-p256 ec-p384 ec-p521 ed25519)
for k in "${KEYS[@]}"; do
        provision "$k" "$k"
done
ok "provisioned ${KEYS[*]}"

for i in $(seq 1 40); do printf 'consumers verify data, line %02d\n' "$i"; done >"$T/data"
printf 'other data\n' >"$T/other"
for alg in sha256 sha384 sha512; do openssl dgst "-$alg" -binary -out "$T/data.$alg" "$T/data"; done
{ printf '\x30\x31\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x01\x05\x00\x04\x20'; cat "$T/data.sha256"; } \
        >"$T/data.di256"

# --- pkcs11-tool --test ----------------------------------------------------------------------------
for label in rsa2048 ec-p256; do
        timeout 120 pkcs11-tool --module "$P11_MODULE" --token-label "$label" --login --pin "$PIN" --test \
                >"$T/test.$label" 2>&1 || { cat "$T/test.$label" >&2; fail "pkcs11-tool --test on '$label'"; }
        grep -q '^No errors' "$T/test.$label" || { cat "$T/test.$label" >&2; fail "--test on '$label': No errors"; }
        ! grep -Eq '^(Digests|Verify): not implemented' "$T/test.$label" ||
                { cat "$T/test.$label" >&2; fail "--test on '$label' still finds digests or verify not implemented"; }
        grep -q 'all 4 digest functions seem to work' "$T/test.$label" ||
                { cat "$T/test.$label" >&2; fail "--test on '$label': digest functions"; }
        ok "pkcs11-tool --test on '$label': No errors, digests and verify implemented"
done
grep -Eq '^ +SHA1-RSA-PKCS: OK' <(sed -n '/^Verify/,$p' "$T/test.rsa2048") ||
        { cat "$T/test.rsa2048" >&2; fail "--test verified SHA1-RSA-PKCS on the RSA token"; }
ok "pkcs11-tool --test verified RSA signatures with the module"

# --- digests, checked against OpenSSL --------------------------------------------------------------
for alg in SHA-1 SHA224 SHA256 SHA384 SHA512; do
        o=${alg/-/}
        o=${o,,}
        p11 --token-label ec-p256 --hash -m "$alg" -i "$T/data" -o "$T/h" >/dev/null 2>&1 || fail "pkcs11-tool --hash -m $alg"
        cmp -s "$T/h" <(openssl dgst "-$o" -binary "$T/data") || fail "pkcs11-tool --hash -m $alg differs from openssl"
done
ok "pkcs11-tool --hash: SHA-1, SHA-224/256/384/512 equal OpenSSL's digests"

# --- pkcs11-tool --verify ----------------------------------------------------------------------------
sign() { # LABEL MECH IN OUT [options]
        local label=$1 mech=$2 in=$3 out=$4
        shift 4
        p11 --token-label "$label" --login --pin "$PIN" --sign --id 01 -m "$mech" -i "$in" -o "$out" "$@" \
                >"$T/sign.out" 2>&1 || { cat "$T/sign.out" >&2; fail "sign with $mech on '$label'"; }
}
# verify LABEL MECH IN SIG [options]: pkcs11-tool --verify must accept (no login: the public key object).
verify() {
        local label=$1 mech=$2 in=$3 sig=$4
        shift 4
        p11 --token-label "$label" --verify --id 01 -m "$mech" -i "$in" --signature-file "$sig" "$@" \
                >"$T/verify.out" 2>&1 || { cat "$T/verify.out" >&2; fail "verify $mech on '$label'"; }
        grep -q '^Signature is valid' "$T/verify.out" || { cat "$T/verify.out" >&2; fail "verify $mech on '$label': valid"; }
}
# verify_rejects LABEL MECH IN SIG [options]
verify_rejects() {
        local label=$1 mech=$2 in=$3 sig=$4
        shift 4
        if p11 --token-label "$label" --verify --id 01 -m "$mech" -i "$in" --signature-file "$sig" "$@" \
                >"$T/verify.out" 2>&1 && grep -q '^Signature is valid' "$T/verify.out"; then
                fail "verify $mech on '$label' accepted a bad signature"
        fi
        grep -Eq 'Invalid signature|CKR_SIGNATURE_INVALID|CKR_SIGNATURE_LEN_RANGE' "$T/verify.out" ||
                { cat "$T/verify.out" >&2; fail "verify $mech on '$label': says the signature is invalid"; }
}
corrupt() { # IN OUT: flip one byte in the middle
        local n
        cp "$1" "$2"
        n=$(($(stat -c %s "$1") / 2))
        printf '\x5a' | dd of="$2" bs=1 seek="$n" conv=notrunc status=none
        cmp -s "$1" "$2" && printf '\xa5' | dd of="$2" bs=1 seek="$n" conv=notrunc status=none
        return 0
}
pss256=(--hash-algorithm SHA256 --mgf MGF1-SHA256 --salt-len 32)
for label in rsa2048 rsa3072; do
        sign "$label" RSA-PKCS "$T/data.di256" "$T/sig"
        verify "$label" RSA-PKCS "$T/data.di256" "$T/sig"
        sign "$label" SHA256-RSA-PKCS "$T/data" "$T/sig"
        verify "$label" SHA256-RSA-PKCS "$T/data" "$T/sig"
        verify_rejects "$label" SHA256-RSA-PKCS "$T/other" "$T/sig"
        corrupt "$T/sig" "$T/bad"
        verify_rejects "$label" SHA256-RSA-PKCS "$T/data" "$T/bad"
        head -c 100 "$T/sig" >"$T/short"
        verify_rejects "$label" SHA256-RSA-PKCS "$T/data" "$T/short"
        sign "$label" SHA384-RSA-PKCS "$T/data" "$T/sig"
        verify "$label" SHA384-RSA-PKCS "$T/data" "$T/sig"
        sign "$label" RSA-PKCS-PSS "$T/data.sha256" "$T/sig" "${pss256[@]}"
        verify "$label" RSA-PKCS-PSS "$T/data.sha256" "$T/sig" "${pss256[@]}"
        corrupt "$T/sig" "$T/bad"
        verify_rejects "$label" RSA-PKCS-PSS "$T/data.sha256" "$T/bad" "${pss256[@]}"
        sign "$label" SHA256-RSA-PKCS-PSS "$T/data" "$T/sig"
        verify "$label" SHA256-RSA-PKCS-PSS "$T/data" "$T/sig"
        verify_rejects "$label" SHA256-RSA-PKCS-PSS "$T/other" "$T/sig"
        sign "$label" SHA512-RSA-PKCS-PSS "$T/data" "$T/sig"
        verify "$label" SHA512-RSA-PKCS-PSS "$T/data" "$T/sig"
        # Signed by OpenSSL with the provisioned key, verified by the module.
        openssl dgst -sha256 -sign "$TEST_DATA/$label.key.pem" -out "$T/sig" "$T/data"
        verify "$label" SHA256-RSA-PKCS "$T/data" "$T/sig"
        openssl dgst -sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32 -sign "$TEST_DATA/$label.key.pem" \
                -out "$T/sig" "$T/data"
        verify "$label" SHA256-RSA-PKCS-PSS "$T/data" "$T/sig"
        ok "$label: --verify accepts RSA-PKCS, SHA256/384-RSA-PKCS, PSS raw and hashed (token and OpenSSL signatures), rejects corrupted, short and other-data"
done
for label in ec-p256 ec-p384 ec-p521; do
        sign "$label" ECDSA "$T/data.sha256" "$T/sig"
        verify "$label" ECDSA "$T/data.sha256" "$T/sig"
        for alg in sha256 sha384 sha512; do
                sign "$label" "ECDSA-${alg^^}" "$T/data" "$T/sig"
                verify "$label" "ECDSA-${alg^^}" "$T/data" "$T/sig"
        done
        verify_rejects "$label" ECDSA-SHA512 "$T/other" "$T/sig"
        corrupt "$T/sig" "$T/bad"
        verify_rejects "$label" ECDSA-SHA512 "$T/data" "$T/bad"
        # OpenSSL's DER signature, given to pkcs11-tool as DER.
        openssl dgst -sha256 -sign "$TEST_DATA/$label.key.pem" -out "$T/sig.der" "$T/data"
        verify "$label" ECDSA-SHA256 "$T/data" "$T/sig.der" --signature-format openssl
        ok "$label: --verify accepts ECDSA raw and ECDSA-SHA256/384/512 (token and OpenSSL signatures), rejects corrupted and other data"
done
sign ed25519 EDDSA "$T/data" "$T/sig"
verify ed25519 EDDSA "$T/data" "$T/sig"
verify_rejects ed25519 EDDSA "$T/other" "$T/sig"
corrupt "$T/sig" "$T/bad"
verify_rejects ed25519 EDDSA "$T/data" "$T/bad"
openssl pkeyutl -sign -inkey "$TEST_DATA/ed25519.key.pem" -rawin -in "$T/data" -out "$T/sig"
verify ed25519 EDDSA "$T/data" "$T/sig"
ok "ed25519: --verify accepts EDDSA (token and OpenSSL signatures), rejects corrupted and other data"

# The private-key handle verifies with its public half (after login, where pkcs11-tool finds it).
sign ec-p256 ECDSA-SHA256 "$T/data" "$T/sig"
p11 --token-label ec-p256 --login --pin "$PIN" --verify --id 01 -m ECDSA-SHA256 -i "$T/data" --signature-file "$T/sig" \
        >"$T/verify.out" 2>&1 && grep -q '^Signature is valid' "$T/verify.out" ||
        { cat "$T/verify.out" >&2; fail "verify after login"; }
ok "--verify after login"

# --- the module's own rules (p11-verify): handles, lengths, multi-part, C_DigestKey --------------------
: "${P11_VERIFY:?}"
[[ -n $VALGRIND ]] && P11_VERIFY=$(vg_wrap p11-verify "$P11_VERIFY")
pv() { # LABEL CKM SIG_OF: the signature is made on the token first
        "$P11_VERIFY" "$P11_MODULE" "$1" "$T/pin" "$2" "$T/data" "$T/sig" >"$T/pv.out" 2>&1 ||
                { cat "$T/pv.out" >&2; fail "p11-verify on '$1' (mechanism $2)"; }
        cat "$T/pv.out"
}
sign rsa2048 SHA256-RSA-PKCS "$T/data" "$T/sig"
pv rsa2048 0x40 # CKM_SHA256_RSA_PKCS
ok "rsa2048 SHA256-RSA-PKCS: p11-verify's handle, length, multi-part and C_DigestKey rules hold"
sign ec-p384 ECDSA-SHA384 "$T/data" "$T/sig"
pv ec-p384 0x1045 # CKM_ECDSA_SHA384
ok "ec-p384 ECDSA-SHA384: p11-verify's rules hold"
sign ed25519 EDDSA "$T/data" "$T/sig"
pv ed25519 0x1057 # CKM_EDDSA
ok "ed25519 EDDSA: p11-verify's rules hold"

# --- per-slot mechanism lists ---------------------------------------------------------------------
mechs() { p11 --token-label "$1" -M >"$T/M.$1" 2>&1 || { cat "$T/M.$1" >&2; fail "-M on '$1'"; }; }
for label in "${KEYS[@]}"; do mechs "$label"; done
for label in "${KEYS[@]}"; do
        for d in SHA-1 SHA224 SHA256 SHA384 SHA512; do
                grep -Eq "^ +$d, digest\$" "$T/M.$label" || { cat "$T/M.$label" >&2; fail "-M on '$label' lists $d, digest"; }
        done
done
! grep -Eq 'ECDSA|EDDSA' "$T/M.rsa2048" || { cat "$T/M.rsa2048" >&2; fail "RSA token lists EC mechanisms"; }
! grep -Eq 'RSA|EDDSA' "$T/M.ec-p256" || { cat "$T/M.ec-p256" >&2; fail "EC token lists RSA/EdDSA mechanisms"; }
! grep -Eq 'RSA|ECDSA' "$T/M.ed25519" || { cat "$T/M.ed25519" >&2; fail "Ed25519 token lists RSA/ECDSA mechanisms"; }
grep -Eq '^ +SHA256-RSA-PKCS-PSS, keySize=\{2048,2048\}, hw, sign, verify' "$T/M.rsa2048" ||
        { cat "$T/M.rsa2048" >&2; fail "rsa2048: PSS keySize {2048,2048}, sign, verify"; }
grep -Eq '^ +RSA-PKCS, keySize=\{3072,3072\}, hw, decrypt, sign, verify' "$T/M.rsa3072" ||
        { cat "$T/M.rsa3072" >&2; fail "rsa3072: RSA-PKCS keySize {3072,3072}, decrypt, sign, verify"; }
grep -Eq '^ +ECDSA-SHA384, keySize=\{384,384\}, hw, sign, verify' "$T/M.ec-p384" ||
        { cat "$T/M.ec-p384" >&2; fail "ec-p384: keySize {384,384}"; }
grep -Eq '^ +ECDSA, keySize=\{521,521\}' "$T/M.ec-p521" || { cat "$T/M.ec-p521" >&2; fail "ec-p521: keySize {521,521}"; }
grep -Eq '^ +EDDSA, keySize=\{255,255\}, hw, sign, verify' "$T/M.ed25519" || { cat "$T/M.ed25519" >&2; fail "ed25519: EDDSA"; }
ok "each slot lists the digests and only its keys' mechanisms, with CKF_VERIFY and the keys' own sizes"
# A mechanism the slot's keys cannot use: CKR_MECHANISM_INVALID from C_GetMechanismInfo.
check "C_GetMechanismInfo(CKM_RSA_PKCS) on an Ed25519 slot -> CKR_MECHANISM_INVALID" \
        "$P11_CLIENT" "$P11_MODULE" ed25519 expect:CKR_MECHANISM_INVALID mechinfo:RSA-PKCS expect:CKR_OK mechinfo:EDDSA
check "C_GetMechanismInfo(CKM_EDDSA) on an RSA slot -> CKR_MECHANISM_INVALID" \
        "$P11_CLIENT" "$P11_MODULE" rsa2048 expect:CKR_MECHANISM_INVALID mechinfo:EDDSA expect:CKR_OK mechinfo:0x250
finish
