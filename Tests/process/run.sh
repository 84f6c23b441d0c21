#!/usr/bin/env bash
# Process-level reliability tests: R1 (kill -9 during plain uploads), R2 (kill -9 during
# version / publish / restore traffic), tus (resumable uploads with the tuspy client: client and
# server killed mid-upload, checksums, offset races) and R6 (disk full), then wire_and_cli.py
# (bad input over a real socket, the CLI) when it is present, then hostile (hostile_wire.py:
# issue 12's hostile clients — absurd dates, a one-grapheme filename, slowloris, the connection
# limit, request desync, error amplification, transfer codings, import and restore paths,
# anonymous access off, quotas, download counting; under 3 minutes), then import (zyk import: R13
# hostile zips, kill -9 midway and resume, a manifest with bad rows), then sync (zyk sync
# against tools/zyk-mock-platform: R9 faults, R10 kill -9 after acks, R11 refusals, a large file),
# then systemd (systemd_unit.sh: `systemd-analyze verify` on deploy/zyk.service and its sample
# config; restart behaviour is not tested, these machines do not run systemd as init).
#
#   Tests/process/run.sh [--only r1|r2|tus|r6|wire|hostile|import|sync|systemd] [flags]
#
# Runs after `swift build`; the server binary is ${ZYK_BIN:-.build/debug/zyk}, relative to the
# repository root. Flags are passed through to the script that knows them:
#   all:     --bin PATH
#   R1, R2, tus, R6, import, sync: --seed N  --deadline SECONDS  --keep
#   R1, R2, tus, import, sync, hostile: --workdir DIR
#   hostile: --keep (its deadline is its own, 170 s)
#   R1, R2, sync: --kills N
#   R1:      --min-mb MB  --max-mb MB
#   R6:      --size-mb MB  --big-mb MB  --rounds N  --request-timeout SECONDS
#   import:  --bomb-mb MB
#   sync:    --items N  --big-mb MB
# Prints each script's output, then the combined closing line "N passed, M failed".
# Exits non-zero if any script fails (R6 skips, and counts as passing, only where mounting a
# tmpfs is not permitted; systemd skips its verify step only where systemd-analyze is missing
# and CI is not true).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$repo"

usage() { sed -n '2,30p' "$here/run.sh" | sed 's/^# \{0,1\}//'; }

only=all
bin="${ZYK_BIN:-.build/debug/zyk}"
r1_args=()
kill_args=()
tus_args=()
import_args=()
r6_args=()
sync_args=()
hostile_args=()
both_args=()
while (($#)); do
    arg="$1"
    shift
    value=""
    if [[ "$arg" == --*=* ]]; then
        value="${arg#*=}"
        arg="${arg%%=*}"
    fi
    case "$arg" in
        -h | --help) usage; exit 0 ;;
        --keep) both_args+=("$arg"); hostile_args+=("$arg") ;;
        --only | --bin | --seed | --deadline | --kills | --min-mb | --max-mb | --workdir | --size-mb | --big-mb | --rounds | --request-timeout | --bomb-mb | --items)
            if [[ -z "$value" ]]; then
                if (($# == 0)); then
                    echo "run.sh: $arg needs a value" >&2
                    exit 64
                fi
                value="$1"
                shift
            fi
            case "$arg" in
                --only) only="$value" ;;
                --bin) bin="$value" ;;
                --seed | --deadline) both_args+=("$arg" "$value") ;;
                --kills) kill_args+=("$arg" "$value") ;;
                --workdir) kill_args+=("$arg" "$value"); tus_args+=("$arg" "$value"); import_args+=("$arg" "$value"); hostile_args+=("$arg" "$value") ;;
                --bomb-mb) import_args+=("$arg" "$value") ;;
                --items) sync_args+=("$arg" "$value") ;;
                --big-mb) r6_args+=("$arg" "$value"); sync_args+=("$arg" "$value") ;;
                --min-mb | --max-mb) r1_args+=("$arg" "$value") ;;
                *) r6_args+=("$arg" "$value") ;;
            esac
            ;;
        *) echo "run.sh: unknown flag $arg (see --help)" >&2; exit 64 ;;
    esac
done
case "$only" in all | r1 | r2 | tus | r6 | wire | hostile | import | sync | systemd) ;; *) echo "run.sh: --only takes r1, r2, tus, r6, wire, hostile, import, sync or systemd" >&2; exit 64 ;; esac

if [[ "$bin" != /* ]]; then bin="$repo/$bin"; fi
if [[ ! -x "$bin" ]]; then
    echo "run.sh: zyk binary not found at $bin (run swift build first, or set ZYK_BIN)" >&2
    exit 1
fi

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
status=0
passed=0
failed=0

run_one() {
    local name="$1"
    shift
    local rc=0
    local runner=(python3 -B)
    if [[ "$1" == *.sh ]]; then runner=(bash); fi
    echo "== $name: $*"
    "${runner[@]}" "$@" 2>&1 | tee "$out/$name.log" || rc=$?
    local line
    line="$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out/$name.log" | tail -n 1 || true)"
    if [[ -z "$line" ]]; then
        echo "$name: no closing line (the script crashed?)"
        failed=$((failed + 1))
        rc=1
    else
        passed=$((passed + $(echo "$line" | cut -d' ' -f1)))
        failed=$((failed + $(echo "$line" | cut -d' ' -f3)))
    fi
    if ((rc != 0)); then
        echo "== $name FAILED (exit $rc)"
        status=1
    fi
    echo
}

if [[ "$only" == all || "$only" == r1 ]]; then
    run_one r1 "$here/r1_kill_uploads.py" --bin "$bin" ${both_args[@]+"${both_args[@]}"} ${kill_args[@]+"${kill_args[@]}"} ${r1_args[@]+"${r1_args[@]}"}
fi
if [[ "$only" == all || "$only" == r2 ]]; then
    run_one r2 "$here/r2_kill_workflow.py" --bin "$bin" ${both_args[@]+"${both_args[@]}"} ${kill_args[@]+"${kill_args[@]}"}
fi
if [[ "$only" == all || "$only" == tus ]]; then
    run_one tus "$here/tus_resumable.py" --bin "$bin" ${both_args[@]+"${both_args[@]}"} ${tus_args[@]+"${tus_args[@]}"}
fi
if [[ "$only" == all || "$only" == r6 ]]; then
    run_one r6 "$here/r6_disk_full.py" --bin "$bin" ${both_args[@]+"${both_args[@]}"} ${r6_args[@]+"${r6_args[@]}"}
fi
if [[ ("$only" == all || "$only" == wire) && -f "$here/wire_and_cli.py" ]]; then
    run_one wire "$here/wire_and_cli.py" --bin "$bin"
fi
if [[ "$only" == all || "$only" == hostile ]]; then
    run_one hostile "$here/hostile_wire.py" --bin "$bin" ${hostile_args[@]+"${hostile_args[@]}"}
fi
if [[ "$only" == all || "$only" == import ]]; then
    run_one import "$here/import_zip.py" --bin "$bin" ${both_args[@]+"${both_args[@]}"} ${import_args[@]+"${import_args[@]}"}
fi
if [[ "$only" == all || "$only" == sync ]]; then
    run_one sync "$here/sync_platform.py" --bin "$bin" ${both_args[@]+"${both_args[@]}"} ${kill_args[@]+"${kill_args[@]}"} ${sync_args[@]+"${sync_args[@]}"}
fi
if [[ "$only" == all || "$only" == systemd ]]; then
    run_one systemd "$here/systemd_unit.sh" --bin "$bin"
fi

echo "$passed passed, $failed failed"
exit "$status"
