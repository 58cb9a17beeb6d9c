#!/usr/bin/env bash
# The main job on one machine: set up, then `reportrunner up` — a Prefect server
# (SQLite, UI on), the deployments, a worker and the dashboard, plus a demo batch
# (carrier-monthly: 16 airlines × 12 months = 192 PDFs). Ctrl-C stops everything.
# Extra arguments go to `reportrunner up` (e.g. --demo-months 2, --schedules on).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/reportrunner up "$@"
