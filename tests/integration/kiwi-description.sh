#!/bin/bash
# packaging/kiwi/config.xml: well-formed, declares kiwi's enclave type for aws-nitro with nitro-cli's
# command line, and validates against the installed kiwi's schema. Debian 12's kiwi (9.24.56) has no
# enclave type, so when its schema lacks one the description is validated with only that <type>
# swapped for one it knows: everything else must be valid. Skips (77) without xmllint or kiwi.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
require_tool xmllint python3

X=$(cd "$(dirname "$0")/../.." && pwd)/packaging/kiwi/config.xml
# The schema of the kiwi the system's python (Debian's, not a pyenv one first in PATH) imports.
RNG=
for py in /usr/bin/python3 python3; do
        RNG=$("$py" -c 'import kiwi, os; print(os.path.join(os.path.dirname(kiwi.__file__), "schema", "kiwi.rng"))' \
                2>/dev/null) && break || RNG=
done
[[ -n $RNG && -f $RNG ]] || { echo "SKIP: kiwi is not installed (Debian package kiwi)"; exit 77; }

check "config.xml is well-formed" xmllint --noout "$X"
check_output "the enclave type for aws-nitro" 'image="enclave" enclave_format="aws-nitro"' cat "$X"
check_output "nitro-cli's kernel command line" 'kernelcmdline="reboot=k panic=30 pci=off nomodules console=ttyS0' cat "$X"
if grep -q '"enclave"' "$RNG"; then
        check "valid against the installed kiwi's schema" xmllint --noout --relaxng "$RNG" "$X"
else
        sed 's/image="enclave" enclave_format="aws-nitro"/image="tbz"/' "$X" >"$T/swapped.xml"
        check "valid against kiwi $(kiwi-ng --version 2>/dev/null | awk '{print $NF}')'s schema but for the enclave type it lacks" \
                xmllint --noout --relaxng "$RNG" "$T/swapped.xml"
        check_fails "that kiwi indeed refuses the enclave type" 'fails to validate' xmllint --noout --relaxng "$RNG" "$X"
fi
