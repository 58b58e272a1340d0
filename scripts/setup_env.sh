#!/usr/bin/env bash
# Create .venv (Python 3.11 or newer + pip only) and install the pinned requirements, once.
# Reinstalls when requirements.txt or pyproject.toml change (a stamp in .venv records them).
# The interpreter: $PYTHON, else the first of python3.11, python3.12, python3.13, python3.14,
# python3 that scripts/check_python.sh accepts (older than 3.11: refused; newer than 3.14: a warning).
set -euo pipefail
cd "$(dirname "$0")/.."

stamp=$(cat requirements.txt pyproject.toml | sha256sum | cut -c1-16)
if [ -x .venv/bin/python ] && [ "$(cat .venv/.probex-stamp 2>/dev/null)" = "$stamp" ]; then
  exit 0
fi
if [ ! -x .venv/bin/python ]; then
  py=$(scripts/check_python.sh --pick)
  echo "[setup] creating .venv with $py" >&2
  "$py" -m venv .venv
fi
echo "[setup] installing pinned requirements into .venv (first time: a few minutes)" >&2
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt 2> >(grep -v "^WARNING: Location" >&2)
.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e . 2> >(grep -v "^WARNING: Location" >&2)
.venv/bin/python -m ipykernel install --sys-prefix --name probex-kit --display-name "Python (probex-kit)" >/dev/null
echo "$stamp" > .venv/.probex-stamp
echo "[setup] done" >&2
