#!/usr/bin/env bash
# Regenerate every figure and table (default profile). Options: --profile, --only, --from, --seed.
set -euo pipefail
cd "$(dirname "$0")"
./scripts/setup_env.sh
exec .venv/bin/python -m probex_lib.runner "$@"
