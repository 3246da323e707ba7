# free_port: a loopback TCP port nothing listens on now (bash /dev/tcp probe), below the kernel's
# ephemeral range: a port in that range can be taken between the probe and the server's bind() as the
# source port of any outgoing connection on the machine (apache2 once failed with EADDRINUSE so).
# Sourced by tests/e2e/lib.sh and agent-lib.sh; the caller defines fail().
free_port() {
        local p i lo=32768
        read -r lo _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
        ((lo > 12000)) || lo=32768
        for ((i = 0; i < 100; i++)); do
                p=$((10000 + (RANDOM * 32768 + RANDOM) % (lo - 10000)))
                if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
                        echo "$p"
                        return 0
                fi
        done
        fail "no free loopback port found"
}
