# keep_logs DIR: copies the logs a test produced in DIR (its temp dir: *.log, *.out, *.err, *.txt,
# *.json, valgrind logs) to $EACM_TEST_LOGS/<test>/, and the PINs it used (pin files, state_dir/pins)
# to $EACM_TEST_LOGS/.pins/<test>/, for tests/integration/secret-scan.py, which fails on any PIN or
# key material in a log. <test> is the script's name plus its first argument. No-op when
# EACM_TEST_LOGS is unset (a script run by hand). Sourced by lib.sh, agent-lib.sh, tests/e2e/lib.sh.
KEEP_LOGS_NAME=$(basename "$0" .sh)${1:+-$1}
keep_logs() {
        local dir=$1 logs pins
        [[ -n ${EACM_TEST_LOGS:-} && -d $dir ]] || return 0
        logs=$EACM_TEST_LOGS/$KEEP_LOGS_NAME
        pins=$EACM_TEST_LOGS/.pins/$KEEP_LOGS_NAME
        rm -rf "$logs" "$pins"
        mkdir -p "$logs" "$pins"
        (cd "$dir" && find . -type f -size -64M \( -name '*.log' -o -name '*.out' -o -name '*.err' \
                -o -name '*.txt' -o -name '*.json' -o -path './vg/*' \) -exec cp --parents -t "$logs" {} + &&
                find . -type f -size -1024c \( -path '*/pins/*' -o -name '*pin' -o -name '*.pin' \) \
                        -exec cp --parents -t "$pins" {} +) 2>/dev/null || true
}
