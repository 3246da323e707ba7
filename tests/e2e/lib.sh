# Shared helpers for the e2e web-server tests: temp dir, enclave-token, provisioning, TLS clients, checks.
# Sourced by each test script, which runs with `set -euo pipefail`.
#
# Environment (set by tests/e2e/meson.build):
#   ENCLAVE_TOKEN   the enclave-token binary          ENCLAVE_ACM     the enclave-acm CLI
#   P11_MODULE      enclave-acm-pkcs11.so             PROVISION_KEYS  tests/e2e/provision-keys
#   OPENSSL_CNF     packaging/openssl-enclave-acm.cnf TEST_DATA       tests/data in the source tree
# Set E2E_KEEP=1 to keep the temp dir (and its logs) after the test.

: "${ENCLAVE_TOKEN:?}" "${ENCLAVE_ACM:?}" "${P11_MODULE:?}" "${PROVISION_KEYS:?}" "${OPENSSL_CNF:?}" "${TEST_DATA:?}"
. "$(dirname "${BASH_SOURCE[0]}")/../integration/keep-logs.sh"
. "$(dirname "${BASH_SOURCE[0]}")/../integration/ports.sh"

# Distinctive, so that a grep of the logs cannot match anything by accident.
PIN=e2e-Pin-7Qx4Kz
CHECKS=0
DAEMON_PID=
BG_PIDS=()
STOP_HOOKS=()

fail() {
        echo "FAIL: $*" >&2
        exit 1
}

ok() {
        CHECKS=$((CHECKS + 1))
        echo "ok $CHECKS - $*"
}

finish() {
        echo "PASS: $CHECKS checks"
}

# The only skip: the web server under test is not installed. A missing client tool or engine fails.
require_server() {
        if ! command -v "$1" >/dev/null 2>&1; then
                echo "SKIP: '$1' is not installed"
                exit 77
        fi
}

require_tool() {
        local t
        for t in "$@"; do
                command -v "$t" >/dev/null 2>&1 || fail "'$t' is not installed (the e2e suite needs it)"
        done
}

# words: a list of lines as one line.
words() {
        tr '\n' ' ' | sed 's/ *$//'
}

# alive PID: the process exists and is not a zombie.
alive() {
        local st
        st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
        [[ $st != Z* ]]
}

# children PID: the pids of PID's children, one per line.
children() {
        ps -o pid= --ppid "$1" 2>/dev/null | tr -d ' ' || true
}

# stop_pids SECONDS PID...: wait up to SECONDS for the processes to end, then SIGKILL those left.
stop_pids() {
        local secs=$1 pid i
        shift
        for ((i = 0; i < secs * 10; i++)); do
                local left=0
                for pid in "$@"; do
                        alive "$pid" && left=1
                done
                ((left)) || return 0
                sleep 0.1
        done
        for pid in "$@"; do
                if alive "$pid"; then
                        echo "# process $pid did not stop within ${secs}s: SIGKILL" >&2
                        kill -KILL "$pid" 2>/dev/null || true
                fi
        done
}

cleanup() {
        local rc=$? pid hook
        trap - EXIT
        # Client loops first end their own iteration, servers stop (ending any handshake in flight),
        # then whatever is left of the loops is killed.
        [[ -d ${T-} ]] && touch "$T/stop-clients"
        for hook in "${STOP_HOOKS[@]}"; do
                $hook || true
        done
        if ((${#BG_PIDS[@]})); then
                stop_pids 10 "${BG_PIDS[@]}"
                for pid in "${BG_PIDS[@]}"; do
                        wait "$pid" 2>/dev/null || true
                done
        fi
        if [[ -n $DAEMON_PID ]]; then
                kill -TERM "$DAEMON_PID" 2>/dev/null || true
                stop_pids 5 "$DAEMON_PID"
                wait "$DAEMON_PID" 2>/dev/null || true
        fi
        if [[ $rc -ne 0 && $rc -ne 77 ]]; then
                for f in "$LOGS"/*.log; do
                        [[ -s $f ]] || continue
                        echo "--- $f (last 30 lines) ---" >&2
                        tail -n 30 "$f" >&2 || true
                done
        fi
        keep_logs "$T"
        if [[ ${E2E_KEEP:-0} == 1 ]]; then
                echo "# kept $T" >&2
        else
                rm -rf "$T"
        fi
        exit "$rc"
}

# Workers run as www-data: the temp dir must be traversable and its sockets reachable. A short path:
# unix socket paths are limited to 107 bytes.
T=$(mktemp -d /tmp/eacm-e2e.XXXXXX)
chmod 0755 "$T"
LOGS=$T/logs
mkdir -p "$LOGS"
chmod 0755 "$LOGS"
trap cleanup EXIT
trap 'exit 130' INT TERM
DATA_ADDR="unix:path=$T/data.sock"
CONTROL_ADDR="unix:path=$T/control.sock"
export ENCLAVE_ACM_CONTROL=$CONTROL_ADDR
export ENCLAVE_ACM_NO_MLOCK=${ENCLAVE_ACM_NO_MLOCK:-1}
# The PIN file that the CLI and libp11's pin-source=file: read: no trailing newline (libp11 0.4.12
# keeps it as part of the PIN), readable by root only (the server's master loads the key as root;
# workers log in again with the PIN libp11 cached).
printf '%s' "$PIN" >"$T/pin"
chmod 0400 "$T/pin"
[[ $T =~ ^[A-Za-z0-9/._-]+$ ]] || fail "temp dir '$T' would need percent-encoding in a PKCS#11 URI"

# The OpenSSL config the servers run with: the packaged snippet, pointed at the build tree's module
# and at this machine's libp11 engine.
ENGINE_SO=$(openssl version -e | sed -n 's/^ENGINESDIR: "\(.*\)"$/\1/p')/pkcs11.so
[[ -f $ENGINE_SO ]] || fail "the libp11 engine ($ENGINE_SO, package libengine-pkcs11-openssl) is not installed"
sed -e "s|^MODULE_PATH = .*|MODULE_PATH = $P11_MODULE|" -e "s|^dynamic_path = .*|dynamic_path = $ENGINE_SO|" \
        "$OPENSSL_CNF" >"$T/openssl.cnf"
grep -q "^MODULE_PATH = $P11_MODULE\$" "$T/openssl.cnf" || fail "cannot point $OPENSSL_CNF at the module"
grep -q '^init = 1$' "$T/openssl.cnf" || fail "$OPENSSL_CNF does not initialise the engine"
# Only the servers get this environment; clients (curl, openssl s_client) keep the system config.
# shellcheck disable=SC2034 # used by the scripts that source this file
SERVER_ENV=(env "OPENSSL_CONF=$T/openssl.cnf" "ENCLAVE_ACM_ADDRESS=$DATA_ADDR")

start_token() {
        local i
        "$ENCLAVE_TOKEN" --dev --log-level debug --data "$DATA_ADDR" --control "$CONTROL_ADDR" --socket-mode 0666 \
                >>"$LOGS/enclave-token.log" 2>&1 &
        DAEMON_PID=$!
        for ((i = 0; i < 200; i++)); do
                "$ENCLAVE_ACM" status >/dev/null 2>&1 && return 0
                alive "$DAEMON_PID" || fail "enclave-token exited at start"
                sleep 0.05
        done
        fail "enclave-token did not answer on $CONTROL_ADDR within 10 s"
}

# cert_of NAME: the certificate (chain) file of a test key, as `token add --cert` takes it.
cert_of() {
        if [[ -f $TEST_DATA/$1.chain.pem ]]; then
                echo "$TEST_DATA/$1.chain.pem"
        else
                echo "$TEST_DATA/$1.crt.pem"
        fi
}

# host_of NAME: the DNS name in the test certificate.
host_of() {
        echo "$1.enclave-acm.test"
}

# ca_of NAME: the file a client trusts to verify NAME's certificate.
ca_of() {
        if [[ -f $TEST_DATA/$1.chain.pem ]]; then
                echo "$TEST_DATA/chain-root.crt.pem"
        else
                echo "$TEST_DATA/$1.crt.pem"
        fi
}

# fp_of FILE: SHA-256 fingerprint of the first certificate in FILE.
fp_of() {
        openssl x509 -in "$1" -noout -fingerprint -sha256 | sed 's/^.*=//'
}

# provision LABEL NAME [token add options...]: one key through the operator CLI.
provision() {
        local label=$1 name=$2
        shift 2
        "$ENCLAVE_ACM" token add --label "$label" --pin-file "$T/pin" --key "$TEST_DATA/$name.key.pem" \
                --cert "$(cert_of "$name")" "$@" >"$T/provision.out" 2>&1 ||
                { cat "$T/provision.out" >&2; fail "provisioning token '$label' with $name"; }
}

# provision_keys LABEL [--replace] ID NAME [ID NAME]...: several keys in one token.
provision_keys() {
        local label=$1 args=()
        shift
        if [[ ${1-} == --replace ]]; then
                args+=(--replace)
                shift
        fi
        while (($# >= 2)); do
                args+=("$1" "$TEST_DATA/$2.key.pem" "$(cert_of "$2")")
                shift 2
        done
        "$PROVISION_KEYS" "$CONTROL_ADDR" "$label" "$T/pin" "${args[@]}" >"$T/provision.out" 2>&1 ||
                { cat "$T/provision.out" >&2; fail "provisioning token '$label' with keys ${args[*]}"; }
}

# key_uri LABEL ID: the PKCS#11 URI of a private key, with the PIN read from the 0400 file.
key_uri() {
        printf 'pkcs11:token=%s;id=%%%02x;type=private;pin-source=file:%s' "$1" "$2" "$T/pin"
}

# wait_port PORT: true once something accepts on 127.0.0.1:PORT (10 s at most).
wait_port() {
        local i
        for ((i = 0; i < 200; i++)); do
                (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
                sleep 0.05
        done
        return 1
}

# handshake PORT CAFILE OUT [s_client options...]: one full TLS handshake with openssl s_client that
# verifies the server's certificate against CAFILE (and so the signature made with the token's key).
# Succeeds if the handshake completed and verified; OUT gets s_client's output.
handshake() {
        local port=$1 ca=$2 out=$3
        shift 3
        timeout 30 openssl s_client -connect "127.0.0.1:$port" -CAfile "$ca" -verify_return_error \
                "$@" </dev/null >"$out" 2>&1 || return 1
        grep -q '^Verification: OK$' "$out" && grep -Eq '^New, TLSv1\.[23], Cipher is ' "$out"
}

# served_fp OUT: fingerprint of the certificate in an s_client output.
served_fp() {
        openssl x509 -in "$1" -noout -fingerprint -sha256 2>/dev/null | sed 's/^.*=//'
}

# check_tls PORT NAME PROTO [s_client options...]: a TLS 1.2 or 1.3 handshake (PROTO tls1_2|tls1_3)
# against the server for test key NAME: it completes, verifies with the hostname, uses PROTO, and the
# served certificate is NAME's.
check_tls() {
        local port=$1 name=$2 proto=$3 out want got
        shift 3
        out=$T/s_client.out
        handshake "$port" "$(ca_of "$name")" "$out" -servername "$(host_of "$name")" \
                -verify_hostname "$(host_of "$name")" "-$proto" "$@" ||
                { cat "$out" >&2; fail "$proto handshake with the $name key on port $port ($*)"; }
        grep -q "^New, ${proto/tls1_/TLSv1.}," "$out" || { cat "$out" >&2; fail "$proto was not negotiated"; }
        want=$(fp_of "$(cert_of "$name")")
        got=$(served_fp "$out")
        [[ $got == "$want" ]] || fail "served certificate $got is not the provisioned $name certificate $want"
        ok "${proto/tls1_/TLS 1.} handshake with $name${*:+ ($*)}: verified, served certificate is the provisioned one"
}

# curl_get PORT NAME OUT [curl options...]: one HTTPS request on a new connection (a full handshake:
# each curl process starts without a session), verifying NAME's certificate and hostname.
curl_get() {
        local port=$1 name=$2 out=$3 host
        shift 3
        host=$(host_of "$name")
        timeout 40 curl -sS --max-time 30 --cacert "$(ca_of "$name")" --resolve "$host:$port:127.0.0.1" \
                -H 'Connection: close' -o "$out" -w '%{http_code}\n' "$@" "https://$host:$port/" >"$out.code" 2>"$out.err" &&
                [[ $(cat "$out.code") == 200 ]]
}

# sequential_handshakes PORT NAME N: N requests one after the other, alternating TLS 1.3 and 1.2; all
# must succeed. The response bodies are appended to $T/bodies.
sequential_handshakes() {
        local port=$1 name=$2 n=$3 i failed=0 opt
        for ((i = 0; i < n; i++)); do
                if ((i % 2)); then opt=(--tlsv1.2 --tls-max 1.2); else opt=(--tlsv1.3); fi
                if curl_get "$port" "$name" "$T/seq.body" "${opt[@]}"; then
                        cat "$T/seq.body" >>"$T/bodies"
                else
                        failed=$((failed + 1))
                        echo "# request $i: $(cat "$T/seq.body.err" "$T/seq.body.code" 2>/dev/null)" >&2
                fi
        done
        ((failed == 0)) || fail "$failed of $n sequential handshakes with $name failed"
        ok "$n sequential handshakes (TLS 1.3 and 1.2) with $name all succeeded"
}

# concurrent_handshakes PORT NAME N: N requests started at once; all must succeed.
concurrent_handshakes() {
        local port=$1 name=$2 n=$3 i failed=0 pids=()
        mkdir -p "$T/conc"
        for ((i = 0; i < n; i++)); do
                curl_get "$port" "$name" "$T/conc/$i" &
                pids+=($!)
        done
        for ((i = 0; i < n; i++)); do
                if wait "${pids[$i]}"; then
                        cat "$T/conc/$i" >>"$T/bodies"
                else
                        failed=$((failed + 1))
                        echo "# request $i: $(cat "$T/conc/$i.err" "$T/conc/$i.code" 2>/dev/null)" >&2
                fi
        done
        rm -rf "$T/conc"
        ((failed == 0)) || fail "$failed of $n concurrent handshakes with $name failed"
        ok "$n concurrent handshakes with $name all succeeded"
}

# check_no_pin WHEN: the PIN appears in no log of this test (server error logs, access logs, the
# daemon's log, captured command output).
check_no_pin() {
        local hits
        hits=$(grep -rlF -- "$PIN" "$LOGS" || true)
        [[ -z $hits ]] || fail "the PIN appears in $hits ($1)"
        ok "the PIN appears in no log ($1)"
}

# Rotation client loop: handshakes until $T/stop-clients exists (bounded: MAX_SECONDS), each verified
# against CAFILE, logging "ok <fingerprint>" or "FAIL <n>" per handshake to OUT.
client_loop() {
        local port=$1 ca=$2 out=$3 max=$4 n=0 end
        end=$((SECONDS + max))
        while [[ ! -e $T/stop-clients ]] && ((SECONDS < end)); do
                n=$((n + 1))
                if handshake "$port" "$ca" "$out.s"; then
                        echo "ok $(served_fp "$out.s")" >>"$out"
                else
                        echo "FAIL $n" >>"$out"
                        cp "$out.s" "$out.fail.$n"
                fi
        done
}

# start_clients K PORT CAFILE MAX_SECONDS: K client loops in the background, logs $T/client.<k>.
start_clients() {
        local k=$1 port=$2 ca=$3 max=$4 i
        rm -f "$T/stop-clients" "$T"/client.*
        for ((i = 0; i < k; i++)); do
                client_loop "$port" "$ca" "$T/client.$i" "$max" &
                BG_PIDS+=($!)
        done
}

stop_clients() {
        local pid
        touch "$T/stop-clients"
        for pid in "${BG_PIDS[@]}"; do
                wait "$pid" 2>/dev/null || true
        done
        BG_PIDS=()
}

# client_count PATTERN: handshake lines of the client loops matching PATTERN (grep -E).
client_count() {
        cat "$T"/client.[0-9] 2>/dev/null | grep -Ec -- "$1" || true
}

# wait_clients_progress N: wait until the client loops logged N more handshakes (60 s at most).
wait_clients_progress() {
        local start i
        start=$(client_count '^(ok|FAIL) ')
        for ((i = 0; i < 600; i++)); do
                (($(client_count '^(ok|FAIL) ') >= start + $1)) && return 0
                sleep 0.1
        done
        fail "the client loops made no progress (${1} handshakes in 60 s)"
}
