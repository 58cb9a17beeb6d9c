#!/usr/bin/env bash
# Installs everything reportrunner needs on a fresh Debian/Ubuntu machine, idempotently:
# system libraries for WeasyPrint (apt), a virtualenv in .venv with the pinned
# dependencies of requirements.lock, the demo data, and the browser-test tools
# (Chromium from apt, axe-core from npm). Safe to run again: it only
# does what is missing. Usage: scripts/bootstrap.sh
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

# --- system packages ----------------------------------------------------------------
# libharfbuzz-subset0 is not on a new machine; without it WeasyPrint falls back to
# fontTools for font subsetting and PDFs render about twice as slowly.
APT_PACKAGES=(python3 python3-venv libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core)
# The end-to-end tests drive Debian's Chromium (`playwright install` downloads a browser
# build, which not every network allows); the emoji font draws the dashboard's icons.
APT_PACKAGES+=(chromium fonts-noto-color-emoji)
command -v npm >/dev/null || APT_PACKAGES+=(npm)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  say "installing system packages: ${missing[*]}"
  SUDO=""
  if [[ $(id -u) != 0 ]]; then
    command -v sudo >/dev/null || { echo "error: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
    SUDO="sudo"
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- Python environment -------------------------------------------------------------
PYTHON=${PYTHON:-python3}
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "error: Python 3.11 or newer is needed; set PYTHON=/path/to/python3.11" >&2; exit 1; }
if [[ ! -x .venv/bin/python ]]; then
  say "creating .venv"
  "$PYTHON" -m venv .venv
fi
# The lock includes the test tools, so one stamp covers both modes; this script is in it
# so that a change to how packages are installed reaches existing environments.
stamp=".venv/.installed-$(cat requirements.lock pyproject.toml scripts/bootstrap.sh | sha256sum | cut -c1-16)"
if [[ ! -f $stamp ]]; then
  say "installing pinned dependencies (requirements.lock)"
  .venv/bin/python -m pip install -q --upgrade pip uv==0.13.9
  .venv/bin/uv pip install -q --python .venv/bin/python -r requirements.lock
  # Bytecode is compiled here, once: where PYTHONDONTWRITEBYTECODE is set (many
  # container images), every new process would otherwise compile Prefect, pandas and
  # WeasyPrint from source. Each flow run and render process is a new process;
  # importing the flows took 12.5 s instead of 5.4 s on a 2-core machine without it.
  say "compiling bytecode"
  # `|| true`: a few packages ship files that are not meant to compile (templates).
  .venv/bin/python -m compileall -q -j 0 "$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" >/dev/null || true
  # compat mode puts the checkout on sys.path, so new packages and reports need no reinstall.
  .venv/bin/uv pip install -q --python .venv/bin/python --no-deps -e . --config-settings editable_mode=compat
  rm -f .venv/.installed-*
  touch "$stamp"
fi

# The project's own modules, for the same reason; up-to-date files are skipped.
.venv/bin/python -m compileall -q flows reports dashboard deployments >/dev/null

# --- browser-test tools ------------------------------------------------------------
# axe-core (accessibility checks injected into each page), pinned by package-lock.json.
E2E=tests/e2e
npm_stamp="$E2E/node_modules/.installed-$(sha256sum <"$E2E/package-lock.json" | cut -c1-16)"
if [[ ! -f $npm_stamp ]]; then
  say "installing axe-core for the browser tests (npm ci)"
  (cd "$E2E" && npm ci --silent --no-audit --no-fund)
  touch "$npm_stamp"
fi

# --- demo data ----------------------------------------------------------------------
.venv/bin/reportrunner data setup >/dev/null
say "ready: .venv/bin/reportrunner --help"
