#!/bin/bash
# Fills packaging/kiwi/root/ (kiwi's overlay, copied over the image root) from a meson build directory
# configured with -Dnsm_simulator=false: /init = enclave-init, /usr/bin/enclave-token.
# Usage: packaging/kiwi/prepare.sh BUILD_DIR; then, with a kiwi that has the enclave type:
#   kiwi-ng system build --description packaging/kiwi --target-dir /tmp/enclave-kiwi
set -euo pipefail
BUILD=${1:?usage: prepare.sh BUILD_DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
if "$BUILD/enclave-token/enclave-token" --help 2>/dev/null | grep -q -- --nsm-simulator; then
        echo "prepare.sh: $BUILD was configured with the NSM simulator; use -Dnsm_simulator=false" >&2
        exit 1
fi
rm -rf "$HERE/root"
install -D -m 0755 "$BUILD/enclave-init/enclave-init" "$HERE/root/init"
install -D -m 0755 "$BUILD/enclave-token/enclave-token" "$HERE/root/usr/bin/enclave-token"
echo "packaging/kiwi/root/ ready"
