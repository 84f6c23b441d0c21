#!/usr/bin/env bash
# Fuzzes the parsers of user input in ZiyuankuCore with libFuzzer (issue 12). The harnesses are in
# Sources/ZiyuankuFuzzTargets; this package (bench/fuzz) builds them once with
# -sanitize=fuzzer,address into one executable that runs the target named by ZYK_FUZZ_TARGET.
# Each target starts from a scratch copy of its committed corpus (Tests/fuzz/corpus/<name>/);
# crash, timeout and out-of-memory inputs are copied to Tests/fuzz/crashes/<name>/, which the
# test command replays together with the corpora. Results: bench/results/fuzz-latest.md.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

usage() {
    cat <<'EOF'
usage: bench/fuzz/run.sh [--seconds N] [--only NAME[,NAME…]] [--jobs 1|2] [--keep] [--no-build]

  --seconds N   libFuzzer time per target (default 300)
  --only NAMES  only these targets (comma-separated); default: every target
  --jobs 1|2    targets fuzzed at the same time (default 1: one libFuzzer process at a time)
  --keep        keep the scratch folder (bench/work/fuzz-PID) with the grown corpora and logs
  --no-build    use the fuzzer already built in bench/fuzz/.build-fuzz

Targets: httpDate httpFramer addressRange byteRanges multipart filenames digest tusHeaders csv
jsonMetadata searchQuery searchText searchHighlighter zipEntryNames

Examples:
  bench/fuzz/run.sh --seconds 300                 # every target for 5 minutes (about 70 minutes)
  bench/fuzz/run.sh --seconds 30                  # a quick shake-out of every target
  bench/fuzz/run.sh --only multipart,csv --seconds 600
  ZYK_FUZZ_TARGET=csv bench/fuzz/.build-fuzz/release/ZiyuankuFuzz Tests/fuzz/crashes/csv/*   # replay inputs
EOF
}

seconds=300
only=""
jobs=1
keep=0
build=1
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) seconds="${2:?--seconds needs a number}"; shift 2 ;;
        --only) only="${2:?--only needs a target name}"; shift 2 ;;
        --jobs) jobs="${2:?--jobs needs 1 or 2}"; shift 2 ;;
        --keep) keep=1; shift ;;
        --no-build) build=0; shift ;;
        -h | --help) usage; exit 0 ;;
        *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done
[[ "$seconds" =~ ^[0-9]+$ ]] && [ "$seconds" -gt 0 ] || { echo "--seconds must be a positive whole number" >&2; exit 2; }
[ "$jobs" = 1 ] || [ "$jobs" = 2 ] || { echo "--jobs must be 1 or 2" >&2; exit 2; }

# The code fuzzed is the work tree as built now (noted before the hour of fuzzing starts).
commit="$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)"
dirty=""
if [ -n "$(git -C "$repo" status --porcelain -- Sources 2>/dev/null)" ]; then dirty=" (with uncommitted changes in Sources/)"; fi
started="$(date -u +%Y-%m-%dT%H:%MZ)"
scratch="$here/.build-fuzz"
bin="$scratch/release/ZiyuankuFuzz"
if [ "$build" = 1 ]; then
    echo "building the fuzzers (release, -sanitize=fuzzer,address)…" >&2
    # SwiftPM resolves the root package's dependencies for this package too: reuse its pins.
    if [ -f "$repo/Package.resolved" ] && [ ! -f "$here/Package.resolved" ]; then cp "$repo/Package.resolved" "$here/"; fi
    (cd "$here" && nice -n 10 swift build -c release -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library \
        --scratch-path "$scratch" >&2)
fi
[ -x "$bin" ] || { echo "no fuzzer at $bin (run without --no-build)" >&2; exit 1; }

all=(httpDate httpFramer addressRange byteRanges multipart filenames digest tusHeaders csv jsonMetadata searchQuery searchText
    searchHighlighter zipEntryNames)
targets=()
if [ -n "$only" ]; then
    IFS=',' read -r -a targets <<<"$only"
    for t in "${targets[@]}"; do
        [[ " ${all[*]} " == *" $t "* ]] || { echo "unknown target $t; the targets are: ${all[*]}" >&2; exit 2; }
    done
else
    targets=("${all[@]}")
fi

workroot="$repo/bench/work"
work="$workroot/fuzz-$$"
mkdir -p "$work"
cleanup() { if [ "$keep" = 0 ]; then rm -rf "$work"; else echo "kept $work" >&2; fi; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# One target: fuzz for $seconds, then copy its artifacts into Tests/fuzz/crashes/<name>/.
fuzz_one() {
    local t="$1" dir="$work/$1"
    mkdir -p "$dir/corpus" "$dir/artifacts"
    cp "$repo/Tests/fuzz/corpus/$t/"* "$dir/corpus/" 2>/dev/null || true
    echo "$(ls "$dir/corpus" | wc -l)" >"$dir/seeds"
    # SWIFT_BACKTRACE: the Swift runtime's backtracer would race ASan and libFuzzer for the signal.
    ZYK_FUZZ_TARGET="$t" SWIFT_BACKTRACE=enable=no nice -n 10 "$bin" "$dir/corpus" \
        -max_total_time="$seconds" -max_len=65536 -timeout=5 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$dir/artifacts/" >"$dir/log" 2>&1 || true
    local found=0
    for f in "$dir/artifacts/"*; do
        [ -f "$f" ] || continue
        mkdir -p "$repo/Tests/fuzz/crashes/$t"
        cp "$f" "$repo/Tests/fuzz/crashes/$t/"
        found=$((found + 1))
    done
    echo "$found" >"$dir/crashes"
}

stat_of() { awk -v k="stat::$2:" '$1 == k {print $2}' "$work/$1/log" | tail -1; }

echo "fuzzing ${#targets[@]} target(s) for ${seconds}s each, $jobs at a time" >&2
running=0
for t in "${targets[@]}"; do
    echo "  $t…" >&2
    if [ "$jobs" = 1 ]; then
        fuzz_one "$t"
    else
        fuzz_one "$t" &
        running=$((running + 1))
        if [ "$running" -ge "$jobs" ]; then wait -n || true; running=$((running - 1)); fi
    fi
done
wait

cpu="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
swiftv="$(swift --version 2>/dev/null | head -1)"
results="$repo/bench/results"
mkdir -p "$results"
md="$results/fuzz-latest.md"
total_crashes=0
{
    echo "# Fuzzing (bench/fuzz/run.sh)"
    echo
    echo "Started $started, built from commit $commit$dirty; $swiftv; $(nproc) cores ($cpu);"
    echo "libFuzzer with AddressSanitizer, ${seconds}s per target, $jobs at a time, \`-max_len=65536 -timeout=5 -rss_limit_mb=2048\`."
    echo
    echo "| target | executions | exec/s | corpus (seeds → end) | crashes | peak RSS (MB) |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: |"
    for t in "${targets[@]}"; do
        execs="$(stat_of "$t" number_of_executed_units)"
        rate="$(stat_of "$t" average_exec_per_sec)"
        rss="$(stat_of "$t" peak_rss_mb)"
        corpus="$(ls "$work/$t/corpus" | wc -l)"
        crashes="$(cat "$work/$t/crashes")"
        total_crashes=$((total_crashes + crashes))
        echo "| $t | ${execs:-?} | ${rate:-?} | $(cat "$work/$t/seeds") → $corpus | $crashes | ${rss:-?} |"
    done
    echo
    if [ "$total_crashes" -gt 0 ]; then
        echo "Crash inputs were copied to \`Tests/fuzz/crashes/<target>/\`; \`swift test --filter FuzzCorpusReplay\` replays them."
        echo
        for t in "${targets[@]}"; do
            [ "$(cat "$work/$t/crashes")" -gt 0 ] || continue
            echo "## $t"
            echo
            echo '```'
            grep -m3 -E "Fatal error|ERROR: (AddressSanitizer|libFuzzer)|SUMMARY" "$work/$t/log" || true
            echo '```'
            echo
        done
    else
        echo "No crashes, timeouts or out-of-memory inputs."
    fi
} >"$md"
cat "$md"
[ "$total_crashes" = 0 ]
