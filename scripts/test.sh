#!/usr/bin/env bash
# Set up (with test tools), lint, then run every test: unit, integration against a
# real Prefect server started by the test session, and PostgreSQL tests when the
# server on 127.0.0.1:5432 is reachable. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh --test-tools
.venv/bin/ruff check .
exec .venv/bin/python -m pytest "$@"
