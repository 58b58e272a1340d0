#!/usr/bin/env bash
# Run the test suite (every notebook in the smoke profile included). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")"
./scripts/setup_env.sh
exec .venv/bin/python -m pytest "$@"
