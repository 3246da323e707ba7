#!/bin/bash
# e2e: what the nginx config writer produces is accepted by the real nginx. The outputs are the
# tests/data/nginx/*.expected.conf files that tests/unit/test-nginxconf.c pins byte for byte;
# here `nginx -t` parses them and, through `ssl_engine pkcs11`, loads the key with the libp11
# engine from a SoftHSM token, so a quoting or URI mistake fails the test.
# Exit 0: pass; 77: skip (nginx, SoftHSM or the libp11 engine is not installed); else fail.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
data=${TEST_DATA:-$here/../data}/nginx
softhsm_lib=${SOFTHSM_LIB:-/usr/lib/softhsm/libsofthsm2.so}
pin=ngx-e2e-pin-8c1f
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

for t in nginx openssl softhsm2-util; do
        command -v "$t" >/dev/null 2>&1 || skip "'$t' is not installed"
done
[ -e "$softhsm_lib" ] || skip "no SoftHSM module at $softhsm_lib"
engines_dir=$(openssl version -e | sed -n 's/^ENGINESDIR: "\(.*\)"$/\1/p')
[ -e "$engines_dir/pkcs11.so" ] || skip "no libp11 engine in '$engines_dir'"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The stanza's pin-source path is percent-encoded; keep the temp path free of characters that change.
[[ $tmp =~ ^[A-Za-z0-9/._-]+$ ]] || fail "temp dir '$tmp' would need percent-encoding"
chmod 0755 "$tmp"

# A token matching the URI in stanza-softhsm.expected.conf: model "SoftHSM v2", token
# "enclave-acm e2e", id 01, object "acm key", PIN from a file without a trailing newline
# (libp11 0.4.12 keeps the newline as part of the PIN).
export SOFTHSM2_CONF=$tmp/softhsm2.conf PKCS11_MODULE_PATH=$softhsm_lib
mkdir -p "$tmp/tokens"
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$tmp" >"$SOFTHSM2_CONF"
softhsm2-util --init-token --free --label 'enclave-acm e2e' --so-pin 87654321 --pin "$pin" >/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/key.pem" 2>/dev/null
openssl pkcs8 -topk8 -nocrypt -in "$tmp/key.pem" -out "$tmp/key8.pem"
softhsm2-util --import "$tmp/key8.pem" --token 'enclave-acm e2e' --label 'acm key' --id 01 --pin "$pin" >/dev/null
openssl req -new -x509 -key "$tmp/key.pem" -subj /CN=www.example.com -days 2 -out "$tmp/chain.pem" 2>/dev/null
printf '%s' "$pin" >"$tmp/pin"
chmod 0400 "$tmp/pin"
rm -f "$tmp/key.pem" "$tmp/key8.pem"

sed "s|/run/enclave-acm/e2e|$tmp|g" "$data/stanza-softhsm.expected.conf" >"$tmp/stanza.conf"

# nginx -t binds the listen sockets: move them to free loopback ports (IPv6 ones dropped).
base=$((20000 + $$ % 20000))

# Point the files' host paths (logs, pid, other includes, ports) into the temp dir; keep the rest.
localize() {
        sed -e '/^\s*listen\s\+\[/d' \
            -e "s/^\(\s*listen\s\+\)\([0-9.]*:\)\?80\b/\1127.0.0.1:$base/" \
            -e "s/^\(\s*listen\s\+\)\([0-9.]*:\)\?443\b/\1127.0.0.1:$((base + 1))/" \
            -e "s/^\(\s*listen\s\+\)\([0-9.]*:\)\?8443\b/\1127.0.0.1:$((base + 2))/" \
            -e "s|^\(\s*pid\) .*;|\1 $tmp/nginx.pid;|" \
            -e "s|^\(\s*error_log\) [^;]*;|\1 $tmp/error.log;|" \
            -e "s|^\(\s*access_log\) [^;]*;|\1 $tmp/access.log;|" \
            -e '/^\s*user /d' \
            -e '/include \/etc\/nginx\/modules-enabled\//d' \
            -e '/include \/usr\/share\/nginx\/modules\//d' \
            -e '/include \/etc\/nginx\/conf.d\//d' \
            -e '/include \/etc\/nginx\/default.d\//d' \
            -e '/include \/etc\/letsencrypt\//d' \
            -e '/ssl_ciphers PROFILE=SYSTEM;/d' \
            -e "s|include /etc/nginx/sites-enabled/\*;|include $tmp/site.conf;|" \
            -e "/include \/etc\/nginx\/mime.types;/a access_log $tmp/access.log;" \
            -e "s|/etc/enclave-acm/nginx/[a-z.]*\.conf|$tmp/stanza.conf|" \
            -e "s|/etc/pki/nginx/nginx-acm.conf|$tmp/stanza.conf|" \
            "$1"
}

nginx_t() {
        nginx -t -q -p "$tmp" -c "$tmp/$1" -e "$tmp/error.log" >"$tmp/nginx-t.out" 2>&1
}

# Debian 12: nginx.conf after nginxconf_ensure_main() + the default site after nginxconf_ensure_include().
localize "$data/debian-nginx.main.expected.conf" >"$tmp/nginx.conf"
localize "$data/debian-default-ssl.include.expected.conf" >"$tmp/site.conf"
grep -q "include $tmp/stanza.conf;" "$tmp/site.conf" || fail "site file lost its stanza include"
nginx_t nginx.conf || fail "nginx -t on the Debian config: $(cat "$tmp/nginx-t.out")"
ok "Debian nginx.conf + default site with the stanza: nginx -t loads the key through the engine"

# The same without ssl_engine fails the way ACM users saw it (#124): the writer's edit is needed.
localize "$data/debian-nginx.conf" >"$tmp/nginx-plain.conf"
if nginx_t nginx-plain.conf; then
        fail "nginx -t passed without ssl_engine; the engine check above proves nothing"
fi
grep -q "not initialised" "$tmp/nginx-t.out" || fail "unexpected failure without ssl_engine: $(cat "$tmp/nginx-t.out")"
ok "without ssl_engine nginx -t fails with 'engine not initialised'"

# Amazon Linux 2023 shape, both edits applied to one file.
localize "$data/al2023-nginx.expected.conf" >"$tmp/al2023.conf"
nginx_t al2023.conf || fail "nginx -t on the AL2023 config: $(cat "$tmp/nginx-t.out")"
ok "AL2023 nginx.conf with ssl_engine and the stanza include: nginx -t passes"

# CRLF file, include added inline before a '}' that shares its line, one-line pair disabled.
localize "$data/multi-server-crlf.all.expected.conf" >"$tmp/multi.conf"
nginx_t multi.conf || fail "nginx -t on the CRLF multi-server config: $(cat "$tmp/nginx-t.out")"
ok "CRLF config with two TLS servers edited: nginx -t passes"

# The PIN came from pin-source: it must not show up in anything nginx printed or logged.
if grep -qsF "$pin" "$tmp/error.log" "$tmp/nginx-t.out"; then
        fail "the PIN appears in nginx's output"
fi
ok "the PIN is not in nginx's error log"

echo "1..$checks"
