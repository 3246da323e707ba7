# Sourced by the scripts that run a real nginx the agent manages (tests/integration/agent-lib.sh,
# tests/e2e/package.sh, bench/soak.sh): one nginx configuration, and one start of acm.yaml, for all.
#
NGINX_CONF_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# nginx_libp11_engine: the path of the libp11 engine (libengine-pkcs11-openssl) in OpenSSL's engine dir.
nginx_libp11_engine() {
        echo "$(openssl version -e 2>/dev/null | sed -n 's/^ENGINESDIR: "\(.*\)"$/\1/p')/pkcs11.so"
}

# nginx_openssl_cnf DIR MODULE: DIR/openssl.cnf, the packaged OpenSSL configuration
# (packaging/openssl-enclave-acm.cnf) with MODULE and this machine's libp11 engine, for nginx's
# OPENSSL_CONF.
nginx_openssl_cnf() {
        sed "s|^MODULE_PATH = .*|MODULE_PATH = $2|; s|^dynamic_path = .*|dynamic_path = $(nginx_libp11_engine)|" \
                "$NGINX_CONF_SRC/packaging/openssl-enclave-acm.cnf" >"$1/openssl.cnf"
}

# nginx_test_conf DIR PORT [SERVER_LINE...]: writes DIR/nginx.conf: 2 workers (as www-data when run as
# root and the user exists), pid DIR/nginx.pid, the error log DIR/nginx-error.log at info, temp paths
# under DIR/nginx/, and one TLS server on 127.0.0.1:PORT that includes DIR/stanza.conf (the agent's
# target) and answers "ok" to every request; each SERVER_LINE goes into the server block.
nginx_test_conf() {
        local dir=$1 port=$2 user="" extra=""
        shift 2
        if [[ $(id -u) == 0 ]] && id www-data >/dev/null 2>&1; then
                user="user www-data;"
        fi
        (($# == 0)) || extra=$(printf '                %s\n' "$@")
        mkdir -p "$dir/nginx"
        cat >"$dir/nginx.conf" <<EOF
worker_processes 2;
$user
pid $dir/nginx.pid;
error_log $dir/nginx-error.log info;
events {
        worker_connections 256;
}
http {
        access_log off;
        client_body_temp_path $dir/nginx/client_body;
        proxy_temp_path $dir/nginx/proxy;
        fastcgi_temp_path $dir/nginx/fastcgi;
        uwsgi_temp_path $dir/nginx/uwsgi;
        scgi_temp_path $dir/nginx/scgi;
        server {
                listen 127.0.0.1:$port ssl;
                include $dir/stanza.conf;
$extra
                location / {
                        default_type text/plain;
                        return 200 "ok\n";
                }
        }
}
EOF
}

# agent_yaml_local DIR TOKEN_BINARY SYNC_SECS: prints the start of an acm.yaml for an agent with the
# local launcher (TOKEN_BINARY, 10 s to boot) that manages the nginx of nginx_test_conf DIR directly:
# runtime and state under DIR, a sync every SYNC_SECS, and IMDS at a closed loopback port (never the
# real one: an S3 source fails at once). The caller goes on with more options, log: and tokens:.
agent_yaml_local() {
        cat <<EOF
enclave:
  launcher: local
  token_binary: $2
  boot_timeout_ms: 10000
options:
  service: nginx
  server_control: direct
  server_config: $1/nginx.conf
  runtime_dir: $1/run
  state_dir: $1/state
  sync_interval_secs: $3
  reload_wait_ms: 500
  imds_endpoint: http://127.0.0.1:9
EOF
}
