#!/bin/bash
# e2e: what the httpd config writer produces is accepted by the real Apache httpd. The outputs are
# the tests/data/httpd/*.expected.conf files that tests/unit/test-httpdconf.c pins byte for byte;
# here each is included from a minimal server config and checked with `apache2 -t`, which parses
# every directive, resolves `SSLCryptoDevice pkcs11` to the libp11 engine and checks the
# certificate path. (-t does not load keys; the TLS e2e tests do.)
# Exit 0: pass; 77: skip (apache2, mod_ssl or the libp11 engine is not installed); else fail.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
data=${TEST_DATA:-$here/../data}/httpd
modules=${APACHE_MODULES:-/usr/lib/apache2/modules}
checks=0

skip() {
        echo "SKIP: $*"
        exit 77
}

fail() {
        echo "FAIL: $*" >&2
        exit 1
}

ok() {
        checks=$((checks + 1))
        echo "ok $checks - $*"
}

apache=$(command -v apache2 || command -v httpd || true)
[ -n "$apache" ] || skip "apache2 is not installed"
command -v openssl >/dev/null 2>&1 || skip "openssl is not installed"
[ -e "$modules/mod_ssl.so" ] || skip "no mod_ssl in '$modules'"
engines_dir=$(openssl version -e | sed -n 's/^ENGINESDIR: "\(.*\)"$/\1/p')
[ -e "$engines_dir/pkcs11.so" ] || skip "no libp11 engine in '$engines_dir'"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/logs"
openssl req -new -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tmp/key.pem" \
        -subj /CN=www.example.com -days 2 -out "$tmp/chain.pem" 2>/dev/null

cat >"$tmp/httpd.conf" <<EOF
ServerRoot $tmp
Define APACHE_LOG_DIR $tmp/logs
LoadModule mpm_event_module $modules/mod_mpm_event.so
LoadModule authz_core_module $modules/mod_authz_core.so
LoadModule alias_module $modules/mod_alias.so
LoadModule socache_shmcb_module $modules/mod_socache_shmcb.so
LoadModule setenvif_module $modules/mod_setenvif.so
LoadModule ssl_module $modules/mod_ssl.so
PidFile $tmp/httpd.pid
ErrorLog $tmp/logs/error.log
ServerName localhost
Listen 127.0.0.1:8080
Include $tmp/site.conf
EOF

# Point the host paths of the samples into the temp dir; everything else stays as written.
localize() {
        sed -e "s|/run/enclave-acm/certs/www.example.com.pem|$tmp/chain.pem|" \
            -e "s|exec:/usr/libexec/httpd-ssl-pass-dialog|builtin|" \
            -e "s|shmcb:/run/httpd/sslcache|shmcb:$tmp/sslcache|" \
            "$1"
}

check() {
        localize "$data/$1" >"$tmp/site.conf"
        if ! "$apache" -t -f "$tmp/httpd.conf" >"$tmp/apache-t.out" 2>&1; then
                fail "apache2 -t on $1: $(cat "$tmp/apache-t.out")"
        fi
        grep -qi '^ *SSLCryptoDevice pkcs11' "$tmp/site.conf" || fail "$1 has no SSLCryptoDevice pkcs11"
        ok "$1: apache2 -t passes"
}

check debian-default-ssl.expected.conf
check rhel-ssl.expected.conf
check acm-httpd.expected.conf
check multi-vhost-crlf.all.expected.conf

# The check has teeth: the same file with another engine name is refused by mod_ssl.
localize "$data/debian-default-ssl.expected.conf" | sed 's/SSLCryptoDevice pkcs11/SSLCryptoDevice nosuchengine/' \
        >"$tmp/site.conf"
if "$apache" -t -f "$tmp/httpd.conf" >"$tmp/apache-t.out" 2>&1; then
        fail "apache2 -t accepted an unknown SSLCryptoDevice"
fi
ok "apache2 -t refuses an unknown SSLCryptoDevice"

echo "1..$checks"
