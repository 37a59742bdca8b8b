#!/usr/bin/env bash
# Does perflab work when installed from its wheel, away from the checkout?
#
# Builds the wheel from the working tree (tracked and untracked-but-not-ignored files, copied
# to a scratch folder so a stale build/ cannot leak into it), installs it with its
# dependencies into a fresh venv (no system site-packages; pip's cache and the configured
# indexes make this fast), and from a scratch folder outside the checkout runs:
#   perflab --help, models list, scenario check + a tiny `run --device local`,
#   emulate --devices 1 on a private adb server (the packaged profiles are found),
#   and devices probe against that phone (it writes into --config-dir, nowhere else).
# Needs Debian's adb for the emulate step (scripts/setup.sh --dev installs it).
#   scripts/check_wheel.sh            keep nothing; KEEP=1 keeps the scratch folder
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
started=$(date +%s)
PY="${PYTHON:-$("$repo/.venv/bin/python" -c 'import sys; print(sys._base_executable)')}"
work="$(mktemp -d "${TMPDIR:-/tmp}/perflab-wheel.XXXXXX")"
emu_pid=""
adb_port=""

cleanup() {
    if [[ -n $emu_pid ]] && kill -0 "$emu_pid" 2>/dev/null; then
        kill -TERM "$emu_pid" 2>/dev/null || true
        wait "$emu_pid" 2>/dev/null || true
    fi
    if [[ -n $adb_port ]]; then
        adb -P "$adb_port" kill-server >/dev/null 2>&1 || true
    fi
    [[ ${KEEP:-0} == 1 ]] && echo "wheel-check: kept $work" || rm -rf "$work"
    echo "wheel-check: done in $(($(date +%s) - started)) s"
}
trap cleanup EXIT

step() { echo "wheel-check: $* ($(($(date +%s) - started)) s)"; }
# pip warns once per package about the configured file:// indexes that lack it: noise here
quiet_pip() { "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }
fail() { echo "wheel-check: FAILED: $*" >&2; exit 1; }

# 1. the wheel, built from a copy of the working tree
step "copying the working tree"
mkdir -p "$work/src" "$work/dist"
(cd "$repo" && git ls-files -z --cached --others --exclude-standard \
    | tar --null --ignore-failed-read -cf - -T - 2>/dev/null) | tar -xf - -C "$work/src"
step "building the wheel"
quiet_pip "$repo/.venv/bin/python" -m pip wheel -q --no-deps -w "$work/dist" "$work/src"
wheel=("$work"/dist/perflab-*.whl)
[[ -f ${wheel[0]} ]] || fail "no wheel was built"
for member in perflab/data/device_configs/generic.yaml perflab/data/emulator_profiles/pixel7.yaml \
              perflab/report/templates/ perflab/zoo/weights/ perflab/py.typed; do
    "$PY" -c 'import sys, zipfile; names = zipfile.ZipFile(sys.argv[1]).namelist()
sys.exit(0 if any(n.startswith(sys.argv[2]) for n in names) else 1)' "${wheel[0]}" "$member" \
        || fail "the wheel lacks $member"
done

# 2. a clean venv with the wheel and its dependencies
step "installing $(basename "${wheel[0]}") into a clean venv"
"$PY" -m venv "$work/venv"
quiet_pip "$work/venv/bin/python" -m pip install -q --no-compile "${wheel[0]}"
bin="$work/venv/bin"

# 3. from a folder outside the checkout, with nothing of the checkout importable
out="$work/outside"
mkdir -p "$out"
cd "$out"
unset PYTHONPATH
export PERFLAB_CONFIG_DIR="$work/config"   # never the user's ~/.config/perflab
where=$("$bin/python" -c 'import perflab; print(perflab.__file__)')
[[ $where == "$work/venv/"* ]] || fail "perflab was imported from $where, not from the installed wheel"

step "perflab --help"
"$bin/perflab" --help >"$work/help.txt" || fail "perflab --help"
for cmd in run report scenario models devices emulate; do
    grep -q "$cmd" "$work/help.txt" || fail "perflab --help does not list '$cmd'"
done
# --help alone imports no command (they load lazily): each command's own --help imports its
# module from the wheel, so a module or package file the wheel lacks fails here
step "perflab COMMAND --help, every command"
for cmd in $("$bin/python" -c 'from perflab.cli.main import COMMANDS; print(" ".join(c.name for c in COMMANDS))'); do
    "$bin/perflab" "$cmd" --help >/dev/null || fail "perflab $cmd --help"
done

step "perflab models list"
"$bin/perflab" models list >"$work/models.txt" || fail "perflab models list"
grep -q espcn "$work/models.txt" || fail "models list does not show espcn"

cat >tiny.yaml <<'EOF'
# The smallest useful run: one SR model beside bicubic on one small photograph.
name: wheel_tiny
geometry: {lr_width: 96, lr_height: 64, scale: 2}
pacing: {fps: null, also_back_to_back: false}
models:
  - zoo: espcn
    variants: [fp32]
delegates: [xnnpack]
threads: 1
runs: {warmup: 1, iterations: 3, timeout_s: 120}
cooldown: {max_start_temp_c: 120, wait_timeout_s: 0}
inputs:
  images:
    - skimage: coffee
EOF
step "perflab scenario check"
"$bin/perflab" scenario check tiny.yaml || fail "perflab scenario check"

step "perflab run --device local"
"$bin/perflab" run tiny.yaml --device local --out "$out/run" --reports-dir "$out/reports" --no-report \
    || fail "perflab run (exit $?)"
[[ -f $out/run/results.json ]] || fail "the run wrote no results.json"

if ! command -v adb >/dev/null; then
    fail "adb is not installed (scripts/setup.sh --dev installs it); cannot check perflab emulate"
fi
step "perflab emulate --devices 1"
adb_port=$("$bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$bin/perflab" emulate --devices 1 --adb-port "$adb_port" >"$work/emulate.out" 2>"$work/emulate.err" &
emu_pid=$!
serial=""
for _ in $(seq 1 240); do   # the phone prints its serial once it is attached (at most ~60 s)
    serial=$(awk -F'\t' '/\temulated /{print $1; exit}' "$work/emulate.out")
    [[ -n $serial ]] && break
    kill -0 "$emu_pid" 2>/dev/null || break
    sleep 0.25
done
[[ -n $serial ]] || fail "perflab emulate did not attach a phone: $(cat "$work/emulate.err")"
adb -P "$adb_port" devices | grep -q "^$serial[[:space:]]*device" || fail "adb does not list $serial"

step "perflab devices probe $serial"
ANDROID_ADB_SERVER_PORT=$adb_port "$bin/perflab" --config-dir "$work/probed" devices probe "$serial" \
    >"$work/probe.out" || fail "perflab devices probe"
probed=("$work"/probed/device_configs/*.yaml)
[[ -f ${probed[0]} ]] || fail "probe wrote nothing into --config-dir"
grep -q "wrote ${probed[0]}" "$work/probe.out" || fail "probe did not say where it wrote"

kill -TERM "$emu_pid"
rc=0
wait "$emu_pid" || rc=$?
emu_pid=""
[[ $rc == 0 ]] || fail "perflab emulate exited $rc when stopped: $(cat "$work/emulate.err")"

step "ok: the installed wheel works outside the checkout"
