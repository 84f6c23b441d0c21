#!/usr/bin/env bash
# Sync benchmark: P8 of docs/product.md#performance-targets. `zyk sync run` of 1,000 published resources
# with small files to the loopback mock platform (tools/zyk-mock-platform) against `curl
# --parallel` sending the same 3,000 signed requests; the same at concurrency 8; MB/s for a few
# large files; and diagnostics of where zyk's time goes (strace counts, a tmpfs data root).
# Installs what is missing (Debian packages), builds the release binary, then hands over to
# bench/sync/sync.py, which writes bench/results/sync-latest.{json,md} and sync-YYYY-MM-DD.json
# and removes its files.
#
#   bench/sync/run.sh                      # everything (~6 minutes on 2 cores, plus the build)
#   bench/sync/run.sh --runs 5             # more runs per side (default 3)
#   bench/sync/run.sh --concurrency 4      # P8 only, no concurrency-8 series
#   bench/sync/run.sh --large-files 0 --no-diag   # the small-file figures only
#   ZYK_BIN=/path/to/zyk bench/sync/run.sh # measure an already built binary
#
# See bench/README.md ("Sync: P8").
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$repo"

need=()
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v strace >/dev/null 2>&1 || need+=(strace)
[ -x /usr/bin/time ] || need+=(time)
command -v python3 >/dev/null 2>&1 || need+=(python3)
command -v git >/dev/null 2>&1 || need+=(git)
if [ ${#need[@]} -gt 0 ]; then
    echo "[sync] installing: ${need[*]}"
    if [ "$(id -u)" -eq 0 ]; then sudo=(); else sudo=(sudo); fi
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || { echo "[sync] needs Python ≥ 3.11" >&2; exit 1; }
# curl --parallel needs curl ≥ 7.66
curl --version | awk 'NR==1 { split($2, v, "."); exit !(v[1] > 7 || (v[1] == 7 && v[2] >= 66)) }' \
    || { echo "[sync] needs curl ≥ 7.66 (--parallel)" >&2; exit 1; }

if [ -n "${ZYK_BIN:-}" ]; then
    bin="$ZYK_BIN"
else
    echo "[sync] building zyk (release)"
    swift build -c release --product zyk
    bin="$(swift build -c release --show-bin-path)/zyk"
fi
[ -x "$bin" ] || { echo "[sync] no binary at $bin" >&2; exit 1; }

# sync.py copies the binary (and its *.resources bundles) into its work folder first, so a
# rebuild while it runs does not change what is measured.
exec python3 bench/sync/sync.py --bin "$bin" "$@"
