#!/usr/bin/env bash
# Checks the shipped systemd unit, deploy/zyk.service:
#   - `systemd-analyze verify` on a temporary copy whose ExecStart points at the zyk binary built
#     here (${ZYK_BIN:-.build/debug/zyk}, relative to the repository root) instead of
#     /usr/local/bin/zyk, which verify requires to exist. User=/Group= stay zyk: systemd 252's
#     verify does not look the user up. verify exits 0 even for unknown keys and unparsable
#     values (it only prints a warning), so any line it prints about the unit counts as a failure;
#   - that verify's complaints are caught at all: a copy with an unknown key and a bad Restart=
#     value must be flagged;
#   - that the unit keeps Restart=on-failure, NoNewPrivileges=yes, ProtectSystem=strict,
#     ReadWritePaths=, PrivateTmp=yes and User=;
#   - that deploy/zyk.conf.example is accepted by the binary (`zyk migrate --config`).
# Restart behaviour itself is not tested: these machines do not run systemd as init.
#
#   Tests/process/systemd_unit.sh [--bin PATH]
#
# Without systemd-analyze the verify checks are skipped (and said so) unless CI=true, where
# they fail. Prints PASS/FAIL lines and the closing line "N passed, M failed"; exits non-zero
# when anything failed.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
unit="$repo/deploy/zyk.service"
conf="$repo/deploy/zyk.conf.example"
bin="${ZYK_BIN:-.build/debug/zyk}"
while (($#)); do
    case "$1" in
        --bin) bin="${2:?--bin needs a value}"; shift 2 ;;
        --bin=*) bin="${1#*=}"; shift ;;
        -h | --help) sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "systemd_unit.sh: unknown flag $1" >&2; exit 64 ;;
    esac
done
if [[ "$bin" != /* ]]; then bin="$repo/$bin"; fi

passed=0
failed=0
pass() { echo "PASS $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1"; failed=$((failed + 1)); }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "note: restart behaviour (Restart=on-failure) is not tested here: these machines do not run systemd as init"

# 1. The settings the deployment relies on are present in the shipped file.
if [[ ! -f "$unit" ]]; then
    fail "unit file exists: $unit is missing"
else
    pass "unit file exists: deploy/zyk.service"
    for want in '^Restart=on-failure$' '^NoNewPrivileges=yes$' '^ProtectSystem=strict$' '^ReadWritePaths=' '^PrivateTmp=yes$' '^User=' '^ExecStart=/usr/local/bin/zyk serve --config /etc/zyk/zyk.conf$'; do
        if grep -Eq "$want" "$unit"; then
            pass "unit contains ${want//[\^\$]/}"
        else
            fail "unit contains ${want//[\^\$]/}: no line matches $want"
        fi
    done
fi

# 2. The sample config is one the server accepts (a config error would stop the service at start).
if [[ ! -x "$bin" ]]; then
    fail "zyk binary at $bin (run swift build first, or set ZYK_BIN / --bin)"
elif [[ ! -f "$conf" ]]; then
    fail "sample config exists: $conf is missing"
elif out="$("$bin" migrate --config "$conf" --data-root "$work/data" 2>&1)"; then
    pass "zyk accepts deploy/zyk.conf.example (zyk migrate --config)"
else
    fail "zyk accepts deploy/zyk.conf.example: $out"
fi

# 3. systemd-analyze verify on a copy whose ExecStart is the binary built here.
# Prints verify's output; returns 0 when verify exited 0 and said nothing about the unit.
verify_copy() {
    local file="$1" rc=0 out
    out="$(cd "$work" && systemd-analyze verify "$file" 2>&1)" || rc=$?
    if [[ -n "$out" ]]; then printf '%s\n' "$out" | sed 's/^/    systemd-analyze: /'; fi
    echo "    systemd-analyze verify exit status: $rc"
    ((rc == 0)) && ! grep -q "$(basename "$file")" <<<"$out"
}

if ! command -v systemd-analyze >/dev/null 2>&1; then
    if [[ "${CI:-}" == true ]]; then
        fail "systemd-analyze verify: systemd-analyze is not installed and CI=true (scripts/setup-deps installs the Debian package systemd)"
    else
        echo "SKIP systemd-analyze verify: systemd-analyze is not installed (Debian package systemd; scripts/setup-deps installs it). The unit was only grep-checked."
    fi
elif [[ -f "$unit" && -x "$bin" ]]; then
    echo "    $(systemd-analyze --version | head -n 1)"
    mkdir -p "$work/good" "$work/bad"
    copy="$work/good/zyk.service"
    sed "s#^ExecStart=/usr/local/bin/zyk #ExecStart=$bin #" "$unit" >"$copy"
    if ! grep -q "^ExecStart=$bin serve " "$copy"; then
        fail "systemd-analyze verify: could not point ExecStart at $bin (ExecStart line changed?)"
    elif verify_copy "$copy"; then
        pass "systemd-analyze verify deploy/zyk.service (ExecStart -> $bin)"
    else
        fail "systemd-analyze verify deploy/zyk.service (ExecStart -> $bin): see its output above"
    fi
    # The detector must see verify's warnings (verify exits 0 on them).
    broken="$work/bad/zyk.service"
    sed -e 's/^Restart=on-failure$/Restart=on-falure/' -e 's/^PrivateTmp=yes$/PrivateTmp=yes\nPrivatTmp=yes/' "$copy" >"$broken"
    echo "    (a deliberately broken copy follows: a misspelt Restart= value and an unknown key)"
    if verify_copy "$broken" >"$work/broken.log"; then
        sed 's/^/  /' "$work/broken.log"
        fail "a broken unit is caught: verify said nothing about a misspelt Restart= value and an unknown key"
    else
        sed 's/^/  /' "$work/broken.log"
        pass "a broken unit is caught (misspelt Restart= value, unknown key)"
    fi
else
    fail "systemd-analyze verify: needs deploy/zyk.service and the zyk binary (see above)"
fi

echo "$passed passed, $failed failed"
((failed == 0))
