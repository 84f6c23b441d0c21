#!/usr/bin/env bash
# Upkeep benchmarks: P9 of docs/product.md#performance-targets (zyk fixity against openssl dgst -sha256,
# cold and warm), backup throughput (zyk backup against cp -al / cp -a + sync), zyk report and
# zyk verify on 100,000 resources, and the jobs' peak RSS (P10). Builds the release binaries of
# zyk and of bench/search (for `SearchBench make-root`), then hands over to upkeep.py, which
# writes bench/results/upkeep-latest.{json,md} and upkeep-YYYY-MM-DD.json and removes its files.
#
#   bench/upkeep/run.sh                          # everything (~6 minutes on 2 cores, plus the builds)
#   bench/upkeep/run.sh --only fixity            # a subset: fixity, backup, report
#   bench/upkeep/run.sh --runs 5                 # more runs per side (default 3)
#   ZYK_BIN=… SEARCH_BENCH_BIN=… bench/upkeep/run.sh   # measure already built binaries
#
# Run as root: the cold fixity runs drop the page cache (/proc/sys/vm/drop_caches) and the copy
# to another disk filesystem mounts an ext4 image on a loop device. See bench/README.md.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$repo"

need=()
command -v openssl >/dev/null 2>&1 || need+=(openssl)
[ -x /usr/bin/time ] || need+=(time)
command -v mkfs.ext4 >/dev/null 2>&1 || [ -x /usr/sbin/mkfs.ext4 ] || need+=(e2fsprogs)
command -v python3 >/dev/null 2>&1 || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
    echo "[upkeep] installing: ${need[*]}"
    if [ "$(id -u)" -eq 0 ]; then sudo=(); else sudo=(sudo); fi
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
export PATH="$PATH:/usr/sbin:/sbin"
python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || { echo "[upkeep] needs Python ≥ 3.11" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || echo "[upkeep] not root: the cold fixity runs and the loop-mounted ext4 copy will be skipped" >&2

only=""
prev=""
for a in "$@"; do
    [ "$prev" = "--only" ] && only="$a"
    case "$a" in --only=*) only="${a#--only=}" ;; esac
    prev="$a"
done

if [ -n "${ZYK_BIN:-}" ]; then
    bin="$ZYK_BIN"
else
    echo "[upkeep] building zyk (release)"
    swift build -c release --product zyk
    bin="$(swift build -c release --show-bin-path)/zyk"
fi
[ -x "$bin" ] || { echo "[upkeep] no binary at $bin" >&2; exit 1; }

sb="${SEARCH_BENCH_BIN:-}"
if [ -z "$sb" ] && { [ -z "$only" ] || [[ "$only" == *report* ]]; }; then
    echo "[upkeep] building bench/search (release) for SearchBench make-root"
    (cd bench/search && swift build -c release)
    sb="$(cd bench/search && swift build -c release --show-bin-path)/SearchBench"
fi

exec python3 bench/upkeep/upkeep.py --bin "$bin" ${sb:+--search-bench "$sb"} "$@"
