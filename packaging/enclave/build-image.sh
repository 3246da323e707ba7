#!/bin/bash
# Builds the enclave-acm enclave image (EIF) from parts, without Docker or nitro-cli:
#   ramdisk 0 ("bootstrap", in PCR1): /init = enclave-init, and nsm.ko when given (kernels < 6.8)
#   ramdisk 1 ("application", PCR2):  /usr/bin/enclave-token, the shared libraries both programs load
#                                      (as ldd resolves them here), the CA bundle to verify KMS's TLS
# and writes image-measurements.json beside the EIF. Both ramdisks are reproducible newc cpio archives
# (`enclave-acm eif build --ramdisk-dir`): the same binaries, libraries and kernel give the same bytes
# and the same PCR0 on any machine.
#
# Usage: build-image.sh [--build DIR] --kernel FILE --output FILE.eif [--cmdline TEXT] [--nsm-ko FILE]
#                       [--ca-bundle FILE] [--selfcheck] [--signing-key KEY --signing-certificate CERT]
#   --build DIR     a meson build directory of enclave-acm (configure it with -Dnsm_simulator=false
#                   for production: the simulator must not be in the image); without it, the
#                   installed enclave-acm, enclave-token and libexec/enclave-acm/enclave-init
#   --kernel FILE   nitro-cli's /usr/share/nitro_enclaves/blobs/bzImage on a parent instance, or any
#                   x86_64 bzImage (the QEMU boot test uses Debian's)
#   --cmdline TEXT  default: nitro-cli's x86_64 default command line
#   --selfcheck     appends enclave_acm.selfcheck=1: the image checks itself and powers off (tests only;
#                   it changes PCR0, so it can never pass a production KMS key policy)
# Without --selfcheck, an enclave-token built with the NSM simulator is refused (ALLOW_NSM_SIMULATOR=1
# overrides it for test images).
set -euo pipefail

die() {
        echo "build-image: $*" >&2
        exit 1
}

BUILD= KERNEL= OUTPUT= NSM_KO= SELFCHECK= KEY= CERT=
CA=/etc/ssl/certs/ca-certificates.crt
CMDLINE="reboot=k panic=30 pci=off nomodules console=ttyS0 i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd random.trust_cpu=on"
while [[ $# -gt 0 ]]; do
        case $1 in
        --build) BUILD=$2; shift 2 ;;
        --kernel) KERNEL=$2; shift 2 ;;
        --output) OUTPUT=$2; shift 2 ;;
        --cmdline) CMDLINE=$2; shift 2 ;;
        --nsm-ko) NSM_KO=$2; shift 2 ;;
        --ca-bundle) CA=$2; shift 2 ;;
        --selfcheck) SELFCHECK=1; shift ;;
        --signing-key) KEY=$2; shift 2 ;;
        --signing-certificate) CERT=$2; shift 2 ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
        esac
done
[[ -n $KERNEL && -n $OUTPUT ]] || die "--kernel and --output are required"
if [[ -n $BUILD ]]; then
        EACM=$BUILD/tools/enclave-acm
        TOKEN=$BUILD/enclave-token/enclave-token
        INIT=$BUILD/enclave-init/enclave-init
else # the installed programs (meson install)
        EACM=$(command -v enclave-acm) || die "no --build and no enclave-acm in PATH"
        TOKEN=$(command -v enclave-token) || die "no --build and no enclave-token in PATH"
        INIT=$(dirname "$(dirname "$EACM")")/libexec/enclave-acm/enclave-init
fi
for f in "$EACM" "$TOKEN" "$INIT" "$KERNEL" "$CA"; do
        [[ -f $f ]] || die "'$f' is missing"
done
[[ -z $SELFCHECK ]] || CMDLINE="$CMDLINE enclave_acm.selfcheck=1"
# A production image never carries the NSM simulator (README: "The NSM, and its simulator").
if [[ -z $SELFCHECK && -z ${ALLOW_NSM_SIMULATOR:-} ]] && "$TOKEN" --help 2>/dev/null | grep -q -- --nsm-simulator; then
        die "'$TOKEN' was built with the NSM simulator: configure the build with -Dnsm_simulator=false (or set ALLOW_NSM_SIMULATOR=1 for a test image)"
fi

STAGE=$(mktemp -d "${TMPDIR:-/tmp}/enclave-image.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE/boot" "$STAGE/app/usr/bin" "$STAGE/app/etc/ssl/certs"
install -m 0755 "$INIT" "$STAGE/boot/init"
[[ -z $NSM_KO ]] || install -m 0644 "$NSM_KO" "$STAGE/boot/nsm.ko"
install -m 0755 "$TOKEN" "$STAGE/app/usr/bin/enclave-token"
install -m 0644 "$CA" "$STAGE/app/etc/ssl/certs/ca-certificates.crt"
strip --strip-unneeded "$STAGE/boot/init" "$STAGE/app/usr/bin/enclave-token" 2>/dev/null || true

# The shared libraries and the dynamic loader, at the paths ldd gives (Debian's merged /usr: /lib is
# a link to usr/lib on the host; in the image they are plain directories). Symlinks are resolved.
libs() {
        ldd "$1" | awk '/=> \// { print $3 } /^\t\/[^ ]+ \(/ { print $1 }'
}
for lib in $( (libs "$INIT"; libs "$TOKEN") | sort -u); do
        mkdir -p "$STAGE/app$(dirname "$lib")"
        cp -L "$lib" "$STAGE/app$lib"
        chmod 0755 "$STAGE/app$lib"
done

sign=()
[[ -z $KEY ]] || sign=(--signing-key "$KEY" --signing-certificate "$CERT")
"$EACM" eif build --kernel "$KERNEL" --cmdline "$CMDLINE" --ramdisk-dir "$STAGE/boot" \
        --ramdisk-dir "$STAGE/app" --name enclave-acm "${sign[@]}" --output "$OUTPUT"
