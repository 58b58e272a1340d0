#!/usr/bin/env bash
# Create .venv (Python 3.11 + pip only) and install the pinned requirements, once.
# Reinstalls when requirements.txt or pyproject.toml change (a stamp in .venv records them).
set -euo pipefail
cd "$(dirname "$0")/.."

pick_python() {
  for cand in "${PYTHON:-}" python3.11 python3; do
    [ -n "$cand" ] || continue
    if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      echo "$cand"; return 0
    fi
  done
  echo "probex-kit needs Python 3.11 (set PYTHON=/path/to/python3.11)" >&2
  return 1
}

stamp=$(cat requirements.txt pyproject.toml | sha256sum | cut -c1-16)
if [ -x .venv/bin/python ] && [ "$(cat .venv/.probex-stamp 2>/dev/null)" = "$stamp" ]; then
  exit 0
fi
if [ ! -x .venv/bin/python ]; then
  py=$(pick_python)
  echo "[setup] creating .venv with $py" >&2
  "$py" -m venv .venv
fi
echo "[setup] installing pinned requirements into .venv (first time: a few minutes)" >&2
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt 2> >(grep -v "^WARNING: Location" >&2)
.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e . 2> >(grep -v "^WARNING: Location" >&2)
.venv/bin/python -m ipykernel install --sys-prefix --name probex-kit --display-name "Python (probex-kit)" >/dev/null
echo "$stamp" > .venv/.probex-stamp
echo "[setup] done" >&2
