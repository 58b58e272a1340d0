#!/usr/bin/env bash
# Check that every pin of requirements.txt has a wheel for other Python versions, without
# installing or downloading any wheel: pip resolves from the index's metadata only (--dry-run).
#
#   ./scripts/check_wheels.sh                 # 3.11 3.12 3.13 3.14, x86_64 Linux with glibc >= 2.28
#   ./scripts/check_wheels.sh 3.13            # one version
#   ARCH=aarch64 ./scripts/check_wheels.sh
#
# pip matches --platform tags exactly, so a glibc 2.28 machine is spelled out as every manylinux
# tag it accepts (manylinux_2_28 down to manylinux_2_5 and the legacy names); pure-Python wheels always match.
#
# Prints one line per version (resolved or not, and which torch wheel pip picked); the full pip
# report of each version is kept in $OUT (default: a temporary folder). Exit status 1 if any failed.
set -uo pipefail
cd "$(dirname "$0")/.."

versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=(3.11 3.12 3.13 3.14)
arch=${ARCH:-x86_64}
platforms=()
for minor in $(seq 28 -1 5); do platforms+=(--platform "manylinux_2_${minor}_$arch"); done
for tag in manylinux2014 manylinux2010 manylinux1; do platforms+=(--platform "${tag}_$arch"); done
py=${PYTHON:-.venv/bin/python}
[ -x "$py" ] || py=python3
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
status=0
for v in "${versions[@]}"; do
  report="$out/pip-report-$v.json"
  # --ignore-installed --target: resolve as for an empty environment; --only-binary: wheels only
  if "$py" -m pip install --dry-run --quiet --disable-pip-version-check --ignore-installed --only-binary=:all: \
      --python-version "$v" "${platforms[@]}" --target "$out/target-$v" --report "$report" \
      -r requirements.txt >"$out/pip-$v.log" 2>&1; then
    "$py" - "$v" "$report" <<'EOF'
import json, sys
from pathlib import PurePosixPath
v, report = sys.argv[1], json.load(open(sys.argv[2]))
items = report["install"]
torch = next((i for i in items if i["metadata"]["name"].lower() == "torch"), None)
wheel = PurePosixPath(torch["download_info"]["url"].split("#")[0]).name if torch else "none"
cuda = sorted(i["metadata"]["name"] for i in items if i["metadata"]["name"].lower().startswith("nvidia"))
print(f"python {v}: resolves, {len(items)} packages; torch wheel {wheel}"
      + (f" (CUDA build: pulls {len(cuda)} nvidia-* packages)" if cuda else " (no nvidia-* packages)"))
EOF
  else
    status=1
    echo "python $v: does NOT resolve:"
    grep -E "ERROR|No matching|Could not find|requires" "$out/pip-$v.log" | head -5 | sed 's/^/    /'
  fi
done
echo "(pip reports and logs: $out)"
exit $status
