# Debian 12 packages enclave-acm needs to build, test and demo. Sourced by scripts/test and scripts/demo.
# install_deps: installs what is missing (apt-get update once, only when something is missing).

DEPS=(
        # build
        meson ninja-build pkg-config gcc clang libssl-dev libcbor-dev libp11-kit-dev libyaml-dev
        libcurl4-openssl-dev libsystemd-dev
        # the format check (scripts/check-format): clang-format-14 on Debian 12
        clang-format
        # PKCS#11 consumers the tests drive
        p11-kit p11-kit-modules opensc gnutls-bin libengine-pkcs11-openssl softhsm2 openssl
        # Java (SunPKCS11, keytool) and NSS (modutil, certutil) as consumers (tests/e2e/java.sh, consumers-*.sh)
        openjdk-17-jdk-headless libnss3-tools
        # web servers and load tools (e2e and benchmarks)
        nginx apache2 wrk curl
        # test helpers
        valgrind socat python3 util-linux procps ca-certificates
        # promtool (`promtool check metrics` on the agent's /metrics: tests/integration/agent-metrics.sh)
        prometheus
        # gcore (tests/integration/key-memory.sh: no private number in a core of enclave-token)
        gdb
        # systemd-analyze verify on packaging/enclave-acm-agent.service (tests/integration/unit-verify.sh)
        systemd
        # man pages (docs/man/*.scd) and the Debian package (debian/, scripts/test --package)
        scdoc man-db debhelper devscripts lintian fakeroot dpkg-dev
        # the enclave image: booted under QEMU with Debian's kernel (tests/e2e/eif-qemu-boot.sh), and the
        # kiwi description checked against kiwi's schema (tests/integration/kiwi-description.sh)
        qemu-system-x86 linux-image-amd64 kiwi libxml2-utils
)

as_root() {
        if [[ $EUID -eq 0 ]]; then
                "$@"
        elif command -v sudo >/dev/null 2>&1; then
                sudo "$@"
        else
                echo "error: need root (or sudo) to run: $*" >&2
                return 1
        fi
}

missing_deps() {
        local p
        for p in "${DEPS[@]}"; do
                dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || echo "$p"
        done
}

install_deps() {
        local missing
        mapfile -t missing < <(missing_deps)
        if [[ ${#missing[@]} -eq 0 ]]; then
                echo "==> All ${#DEPS[@]} packages are installed"
                return 0
        fi
        if ! command -v apt-get >/dev/null 2>&1; then
                echo "error: missing packages (${missing[*]}) and no apt-get: install them by hand" >&2
                return 1
        fi
        echo "==> Installing ${#missing[@]} missing packages: ${missing[*]}"
        # Package scripts must not start nginx/apache2 on the test machine.
        local policy_added=
        if [[ ! -e /usr/sbin/policy-rc.d ]]; then
                printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
                as_root chmod 0755 /usr/sbin/policy-rc.d
                policy_added=1
        fi
        local rc=0
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q || rc=$?
        if [[ $rc -eq 0 ]]; then
                as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
                        "${missing[@]}" </dev/null || rc=$?
        fi
        [[ -n $policy_added ]] && as_root rm -f /usr/sbin/policy-rc.d
        return "$rc"
}
