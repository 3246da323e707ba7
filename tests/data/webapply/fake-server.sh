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
#   fake-server.sh fail LOG         a failing reload (or start): appends "fail" to LOG, exits 3
#   fake-server.sh start PID LOG    starts the "server": appends "start" to LOG, runs a sleep in the
#                                   background (left to init when this script exits, as a daemon is)
#                                   and writes its pid to PID
#   fake-server.sh kill PID LOG     a reload that kills the server (as httpd's parent exits when it
#                                   cannot load a key): appends "kill" to LOG, SIGTERM to PID's pid
#   fake-server.sh killfail PID LOG a reload that kills the server and then fails itself: appends
#                                   "killfail" to LOG, SIGTERM to PID's pid, an error, exit 1
#   fake-server.sh -V               nginx -V: configure arguments with --prefix, --conf-path, --pid-path
#   fake-server.sh -t -D DUMP_RUN_CFG [-f CONF]
#                                   httpd's run-time config dump: PidFile is CONF.pid (none when CONF
#                                   holds NOPID), else a default
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
start)
        echo start >>"$3"
        sleep 600 </dev/null >/dev/null 2>&1 &
        echo $! >"$2"
        ;;
kill)
        echo kill >>"$3"
        kill -TERM "$(cat "$2")"
        ;;
killfail)
        echo killfail >>"$3"
        kill -TERM "$(cat "$2")"
        echo "httpd (pid $(cat "$2")) not running" >&2
        exit 1
        ;;
-V)
        echo "nginx version: nginx/1.22.1" >&2
        echo "configure arguments: --with-cc-opt='-g -O2' --prefix=/opt/fake-nginx --conf-path=conf/fake.conf" \
                "--pid-path=run/fake.pid --modules-path=/usr/lib/nginx/modules" >&2
        ;;
-t)
        echo "ServerRoot: \"/etc/apache2\""
        echo "AH00558: apache2: Could not reliably determine the server's fully qualified domain name" >&2
        if [ "${4-}" != -f ]; then
                echo "PidFile: \"/var/run/fake apache2/apache2.pid\""
        elif ! grep -q NOPID "$5"; then
                echo "PidFile: \"$5.pid\""
        fi
        echo "Define: DUMP_RUN_CFG"
        ;;
*)
        exit 2
        ;;
esac
