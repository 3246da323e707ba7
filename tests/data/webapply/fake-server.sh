#!/bin/sh
# Stand-in for nginx / apachectl in tests/unit/test-webapply.c. Everything it needs comes in argv.
#
#   fake-server.sh test CONF LOG    the config test: appends "test" to LOG and copies what CONF holds at
#                                   this moment to LOG.seen; then, by CONF's content:
#                                     BROKEN -> prints an nginx-like error quoting the line, exits 1
#                                     CRASH  -> killed by SIGSEGV (as nginx -t with some bad PINs)
#                                     SLOW   -> sleeps 30 s (the caller's timeout must kill it)
#                                     else   -> prints nginx's success lines, exits 0
#   fake-server.sh reload LOG ARG…  the reload: appends "reload" and each ARG on its own line to LOG
#   fake-server.sh fail LOG         a failing reload: appends "fail" to LOG, exits 3
set -u

case "$1" in
test)
        echo test >>"$3"
        cat "$2" >"$3.seen"
        if grep -q CRASH "$2"; then
                kill -SEGV $$
        fi
        if grep -q SLOW "$2"; then
                sleep 30
        fi
        if grep -q BROKEN "$2"; then
                echo "nginx: [emerg] invalid line \"$(grep BROKEN "$2")\" in $2:1" >&2
                echo "nginx: configuration file $2 test failed" >&2
                exit 1
        fi
        echo "nginx: the configuration file $2 syntax is ok" >&2
        echo "nginx: configuration file $2 test is successful" >&2
        ;;
reload)
        log=$2
        shift 2
        echo reload >>"$log"
        for a in "$@"; do
                printf '%s\n' "$a" >>"$log"
        done
        ;;
fail)
        echo fail >>"$2"
        echo "nginx: [error] invalid PID number \"\" in \"/run/nginx.pid\"" >&2
        exit 3
        ;;
*)
        exit 2
        ;;
esac
