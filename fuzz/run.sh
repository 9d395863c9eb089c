#!/usr/bin/env bash
# Builds the libFuzzer target (clang, ASan+UBSan) in build-fuzz/ and fuzzes
# for a bounded time, starting from the committed corpus.
#
# usage: fuzz/run.sh [seconds] [libFuzzer options...]     (default: 60 s)
#   ZP_FUZZ_BUILD=dir   build directory (default build-fuzz)
#   ZP_FUZZ_CODEC_SECONDS=n   seconds for EACH codec decoder target after
#                       zp_fuzz (zp_fuzz_gzip, _deflate, _zlib, _zstd, _lz4,
#                       from fuzz/corpus-codec/<format>); default 5, so CI's
#                       60 s run takes 60 + 5 x 5 s; 0 skips them
#
# New inputs go to <build>/corpus (the committed fuzz/corpus stays as it
# is); a crash is saved in <build>/artifacts/ and the script exits nonzero.
# See fuzz/README.md for longer runs, reproducing and minimising findings.
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-60}
shift || true
build=${ZP_FUZZ_BUILD:-build-fuzz}

if ! command -v clang >/dev/null; then
    echo "fuzz/run.sh: clang is needed (apt-get install clang libclang-rt-14-dev)" >&2
    exit 1
fi
cmake -S fuzz -B "$build" -DCMAKE_C_COMPILER=clang >/dev/null
cmake --build "$build" -j"$(nproc 2>/dev/null || echo 2)"

mkdir -p "$build/corpus" "$build/artifacts"
inputs=(fuzz/corpus)
[[ -d fuzz/regressions ]] && inputs+=(fuzz/regressions)

# every regression input must still pass before fuzzing starts
if [[ -d fuzz/regressions ]]; then
    "$build/zp_fuzz" -runs=0 fuzz/regressions
fi

echo "fuzz/run.sh: fuzzing for ${secs}s"
"$build/zp_fuzz" -max_total_time="$secs" -timeout=10 -rss_limit_mb=4096 \
    -max_len=4096 -print_final_stats=1 -artifact_prefix="$build/artifacts/" \
    "$@" "$build/corpus" "${inputs[@]}" 2>"$build/fuzz.log" || {
    rc=$?
    tail -n 60 "$build/fuzz.log" >&2
    echo "fuzz/run.sh: FAILED (exit $rc); the input is in $build/artifacts/" >&2
    exit "$rc"
}
grep -E '^(stat::number_of_executed_units|stat::average_exec_per_sec|stat::new_units_added)' \
    "$build/fuzz.log" || true
grep -E '^#[0-9]+[[:space:]]+DONE' "$build/fuzz.log" | tail -n 1 || true
echo "fuzz/run.sh: no finding in ${secs}s"

codec_secs=${ZP_FUZZ_CODEC_SECONDS:-5}
if [[ $codec_secs -gt 0 ]]; then
    for fmt in gzip deflate zlib zstd lz4; do
        target=$build/zp_fuzz_$fmt
        if [[ ! -x $target ]]; then
            echo "fuzz/run.sh: $target was not built (its engine is missing: see the configure output)" >&2
            exit 1
        fi
        mkdir -p "$build/corpus-$fmt"
        echo "fuzz/run.sh: fuzzing zp_fuzz_$fmt for ${codec_secs}s"
        "$target" -max_total_time="$codec_secs" -timeout=10 -rss_limit_mb=4096 \
            -max_len=65536 -print_final_stats=1 -artifact_prefix="$build/artifacts/" \
            "$build/corpus-$fmt" "fuzz/corpus-codec/$fmt" 2>"$build/fuzz-$fmt.log" || {
            rc=$?
            tail -n 60 "$build/fuzz-$fmt.log" >&2
            echo "fuzz/run.sh: zp_fuzz_$fmt FAILED (exit $rc); the input is in $build/artifacts/" >&2
            exit "$rc"
        }
        grep -E '^stat::number_of_executed_units' "$build/fuzz-$fmt.log" || true
    done
    echo "fuzz/run.sh: no finding in the codec decoders (${codec_secs}s each)"
fi
