# The clang + libFuzzer + ASan/UBSan build the fuzz targets run in. Sourced by scripts/test (--fuzz)
# and scripts/fuzz, so both build exactly the same configuration.
#   FUZZ_SETUP_ARGS   meson setup arguments (besides -Dwerror=true, which both callers pass)
#   fuzz_build_is_configured DIR   true when DIR is a meson build dir configured with -Dfuzzing=true
# Callers export CC=clang themselves (meson reads it at setup).

FUZZ_SETUP_ARGS=(-Dfuzzing=true -Db_sanitize=address,undefined -Db_lundef=false
        -Dc_args=-fno-sanitize-recover=all -Dbench=false)

fuzz_build_is_configured() {
        [[ -f $1/build.ninja ]] &&
                meson introspect --buildoptions "$1" 2>/dev/null |
                python3 -c 'import json,sys; o={x["name"]: x["value"] for x in json.load(sys.stdin)}; sys.exit(0 if o.get("fuzzing") is True else 1)'
}
