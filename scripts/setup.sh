#!/usr/bin/env bash
# Install wam and everything it needs on a fresh Debian/Ubuntu machine (root, or a user with sudo).
#   bash scripts/setup.sh          # library + every simulator suite
#   bash scripts/setup.sh --dev    # ... plus the test tools
# Set WAM_TORCH to choose the PyTorch build (default: torch==2.13.0; any version in pyproject's range works,
# e.g. a CUDA build you installed beforehand is kept).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
EXTRA="all"
[[ "${1:-}" == "--dev" ]] && EXTRA="dev"

# Headless OpenGL for MuJoCo (EGL / OSMesa) and MiniWorld (pyglet over EGL).
APT_PKGS=(libegl1 libegl-mesa0 libgl1-mesa-dri libosmesa6 libglu1-mesa)
missing=()
for pkg in "${APT_PKGS[@]}"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
if (( ${#missing[@]} )); then
  SUDO=""; [[ "$(id -u)" != 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PIP=("$PY" -m pip install -q --disable-pip-version-check --root-user-action=ignore)
# Keep an installed torch if it satisfies our range; otherwise install the pinned build.
if ! "$PY" -c "import torch, sys; v=tuple(int(x) for x in torch.__version__.split('+')[0].split('.')[:2]); sys.exit(not ((2,4) <= v < (2,15)))" 2>/dev/null; then
  "${PIP[@]}" "${WAM_TORCH:-torch==2.13.0}"
fi
# metaworld 3.1.1 breaks on mujoco 4.x, and a 4.x -> 3.3 downgrade leaves mujoco-core behind: install 3.3.0 first.
if ! "$PY" -c "import mujoco, sys; sys.exit(mujoco.__version__ != '3.3.0')" 2>/dev/null; then
  "$PY" -m pip uninstall -q -y mujoco mujoco-core >/dev/null 2>&1 || true
  "${PIP[@]}" "mujoco==3.3.0"
fi
"${PIP[@]}" -e ".[${EXTRA}]"
# pyenv only exposes new console scripts (the `wam` command) after a rehash.
if command -v pyenv >/dev/null 2>&1; then pyenv rehash; fi
echo "wam installed ($("$PY" -c 'import wam, torch; print(f"wam {wam.__version__}, torch {torch.__version__}")'))"
