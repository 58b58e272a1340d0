#!/usr/bin/env bash
# Which Pythons probex-kit accepts (used by setup_env.sh; tested in tests/test_packaging.py).
#
#   scripts/check_python.sh 3.12     exit 0: supported; 0 with a warning: newer than the newest
#                                    checked; 1 with the reason: too old
#   scripts/check_python.sh --pick   prints the first supported interpreter of: $PYTHON (if set,
#                                    and then only it), python3.11, python3.12, python3.13,
#                                    python3.14, python3; exit 1 with the reason if none is
set -uo pipefail

OLDEST=11  # Python 3.11: the version the whole kit was run with, end to end
NEWEST=14  # Python 3.14: the newest whose pinned wheels scripts/check_wheels.sh found
SUPPORTED="3.11 (run end to end), 3.12, 3.13 and 3.14 (pinned wheels checked)"

check() {  # check MAJOR.MINOR
  local v=$1 major minor
  major=${v%%.*}
  minor=${v#*.}
  minor=${minor%%.*}
  if ! [[ $major =~ ^[0-9]+$ && $minor =~ ^[0-9]+$ ]]; then
    echo "not a Python version: '$v'" >&2
    return 2
  fi
  if (( major < 3 || (major == 3 && minor < OLDEST) )); then
    echo "Python $major.$minor is too old for probex-kit: it needs Python 3.$OLDEST or newer" \
         "(supported: $SUPPORTED). Install one, or set PYTHON=/path/to/python3.11" >&2
    return 1
  fi
  if (( major > 3 || minor > NEWEST )); then
    echo "WARNING: Python $major.$minor is newer than the newest checked (3.$NEWEST; supported: $SUPPORTED);" \
         "continuing, but a pinned wheel may be missing (./scripts/check_wheels.sh $major.$minor checks)" >&2
  fi
  return 0
}

version_of() {  # version_of INTERPRETER -> MAJOR.MINOR
  "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null
}

pick() {
  local cand v
  if [ -n "${PYTHON:-}" ]; then
    v=$(version_of "$PYTHON") || { echo "PYTHON=$PYTHON does not run" >&2; return 1; }
    check "$v" || return 1
    echo "$PYTHON"
    return 0
  fi
  for cand in python3.11 python3.12 python3.13 python3.14 python3; do
    command -v "$cand" >/dev/null 2>&1 || continue
    v=$(version_of "$cand") || continue
    if check "$v"; then
      echo "$cand"
      return 0
    fi
  done
  echo "probex-kit found no supported Python (supported: $SUPPORTED); set PYTHON=/path/to/python3.11" >&2
  return 1
}

case "${1:-}" in
  --pick) pick ;;
  "") echo "usage: $0 MAJOR.MINOR | --pick" >&2; exit 2 ;;
  *) check "$1" ;;
esac
