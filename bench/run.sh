#!/usr/bin/env bash
# Benchmarks P1–P4 and P10 of docs/product.md#performance-targets against anchors measured in the same
# run (dd, nginx). Installs missing tools (Debian packages), builds the release binary, then hands
# over to bench/bench.py, which starts zyk and nginx on free loopback ports, measures, writes
# bench/results/{latest.json,latest.md,YYYY-MM-DD.json} and removes its temporary files.
#
#   bench/run.sh                      # everything, 5 runs per side (~6 minutes on 2 cores)
#   bench/run.sh --runs 3             # quicker
#   bench/run.sh --only P3,P4         # a subset (P10 is always reported)
#   ZYK_BIN=/path/to/zyk bench/run.sh # skip the build and measure that binary
#
# See bench/README.md for what each figure means.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v curl >/dev/null 2>&1 || need+=(curl)
[ -x /usr/bin/time ] || need+=(time)
command -v python3 >/dev/null 2>&1 || need+=(python3)
command -v git >/dev/null 2>&1 || need+=(git)
if [ ${#need[@]} -gt 0 ]; then
    echo "[bench] installing: ${need[*]}"
    if [ "$(id -u)" -eq 0 ]; then sudo=(); else sudo=(sudo); fi
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
export PATH="$PATH:/usr/sbin:/sbin"

python_ok() { python3 -c 'import sys, hashlib; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; }
python_ok || { echo "[bench] needs Python ≥ 3.11 (hashlib.file_digest)" >&2; exit 1; }

if [ -n "${ZYK_BIN:-}" ]; then
    bin="$ZYK_BIN"
else
    echo "[bench] building the release binary"
    swift build -c release --product zyk
    bin="$(swift build -c release --show-bin-path)/zyk"
fi
[ -x "$bin" ] || { echo "[bench] no binary at $bin" >&2; exit 1; }

exec python3 bench/bench.py --bin "$bin" "$@"
