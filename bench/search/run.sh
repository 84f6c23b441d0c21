#!/usr/bin/env bash
# Search benchmarks P5, P6, P7 of docs/product.md#performance-targets (see bench/README.md, "Search").
# Builds bench/search in release mode, runs 100,000 then 1,000,000 rows, and writes
# bench/results/search-latest.{json,md} plus a dated copy search-YYYY-MM-DD.json.
# Extra arguments go to `SearchBench run` (e.g. --sizes 100000 for a quick run, --keep).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
results="$repo/bench/results"
workroot="$repo/bench/work"
work="$workroot/search-$$"
keep=0
for a in "$@"; do [ "$a" = "--keep" ] && keep=1; done

mkdir -p "$results" "$workroot"
# Folders left by runs killed with kill -9 (their process is gone): they are large.
for d in "$workroot"/search-*; do
    [ -d "$d" ] || continue
    pid="${d##*/search-}"
    if ! kill -0 "$pid" 2>/dev/null; then rm -rf "$d"; fi
done
cleanup() { if [ "$keep" = 0 ]; then rm -rf "$work"; fi; }
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -z "${SEARCH_BENCH_BIN:-}" ]; then
    echo "building bench/search (release)…" >&2
    (cd "$here" && swift build -c release >&2)
    bin="$(cd "$here" && swift build -c release --show-bin-path)/SearchBench"
else
    bin="$SEARCH_BENCH_BIN"
fi

commit="$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)"
dirty=false
if [ -n "$(git -C "$repo" status --porcelain -- Sources schema 2>/dev/null)" ]; then dirty=true; fi
cpu="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
mem="$(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
fs="$(df -T "$workroot" | awk 'NR==2 {print $2}')"

start=$(date +%s)
"$bin" run --work "$work" \
    --out-json "$results/search-latest.json" --out-md "$results/search-latest.md" \
    --machine "nproc=$(nproc)" --machine "cpu=$cpu" --machine "memory=$mem" --machine "kernel=$(uname -r)" \
    --machine "filesystem=$fs" --machine "commit=$commit" --machine "sources_dirty=$dirty" \
    --machine "swift=$(swift --version 2>/dev/null | head -1)" \
    "$@"
cp "$results/search-latest.json" "$results/search-$(date +%F).json"
echo "done in $(( $(date +%s) - start )) s: $results/search-latest.md" >&2
