#!/usr/bin/env bash
# The main job on one machine: set up, start a local Prefect server (SQLite, UI on),
# and render the demo batch (carrier-monthly: 16 airlines × 12 months = 192 PDFs).
# Extra arguments go to `reportrunner demo` (e.g. --months 3, --keep).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/reportrunner demo "$@"
