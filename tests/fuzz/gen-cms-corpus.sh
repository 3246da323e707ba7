#!/bin/sh
# Regenerates the seeds of fuzz-cms: CMS envelopes for tests/data/rsa2048.crt.pem (whose key
# fuzz-cms.c embeds) in the shapes KMS uses and a few it must refuse, plus the sdk-c vector.
# Run from the source root: tests/fuzz/gen-cms-corpus.sh
set -eu
out=tests/fuzz/corpus/fuzz-cms
cert=tests/data/rsa2048.crt.pem
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"
printf 'seed plaintext, about the size of a short key file\n' > "$tmp/pem"
head -c 4096 /dev/zero | tr '\0' 'k' > "$tmp/max"
printf 'x' > "$tmp/one"
oaep="-keyopt rsa_padding_mode:oaep -keyopt rsa_oaep_md:sha256 -keyopt rsa_mgf1_md:sha256"
enc() { # name input cipher extra-args...
        name=$1 in=$2 cipher=$3
        shift 3
        # shellcheck disable=SC2086
        openssl cms -encrypt -binary "$cipher" -in "$in" -recip "$cert" -outform DER -out "$out/$name" "$@"
}
# shellcheck disable=SC2086
enc ber-keyid-oaep256 "$tmp/pem" -aes256 -stream -keyid $oaep
# shellcheck disable=SC2086
enc der-keyid-oaep256 "$tmp/pem" -aes256 -keyid $oaep
# shellcheck disable=SC2086
enc der-issuer-oaep256 "$tmp/one" -aes256 $oaep
# shellcheck disable=SC2086
enc ber-keyid-oaep256-4096 "$tmp/max" -aes256 -stream -keyid $oaep
# shellcheck disable=SC2086
enc refused-aes128 "$tmp/one" -aes128 -stream -keyid $oaep
enc refused-pkcs1 "$tmp/one" -aes256 -stream -keyid
enc refused-oaep-sha1 "$tmp/one" -aes256 -keyid -keyopt rsa_padding_mode:oaep
cp tests/data/nitro/kms_cms_envelopeddata_sdkc_vec1.ber "$out/sdkc-vec1.ber"
