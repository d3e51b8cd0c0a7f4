#!/bin/sh
# Run one fuzz harness for the fuzz-smoke suite.
#   run-fuzz.sh libfuzzer EXE CORPUS SECONDS   real libFuzzer, bounded time
#   run-fuzz.sh replay    EXE CORPUS MUTATIONS replay driver (gcc builds)
# libFuzzer writes what it discovers into its first corpus directory: that
# is a scratch copy, never the seed corpus in the source tree.
set -eu
mode=$1 exe=$2 corpus=$3 amount=$4
[ -d "$corpus" ] || { echo "no seed corpus at $corpus"; exit 1; }
case $mode in
libfuzzer)
    work=$(mktemp -d "${TMPDIR:-/tmp}/pvio-fuzz.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    mkdir "$work/corpus"
    # -timeout: one input taking 10 s is a hang; -rss_limit_mb: a leak.
    "$exe" -max_total_time="$amount" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$work/" "$work/corpus" "$corpus" || {
        rc=$?
        for f in "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-*; do
            [ -f "$f" ] || continue
            echo "finding: $(basename "$f") (base64 below; replay with: $exe FILE)"
            base64 "$f"
        done
        exit $rc
    }
    ;;
replay)
    exec "$exe" --mutations "$amount" "$corpus"
    ;;
*)
    echo "usage: $0 libfuzzer|replay EXE CORPUS SECONDS|MUTATIONS" >&2
    exit 2
    ;;
esac
