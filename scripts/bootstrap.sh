#!/usr/bin/env bash
# Installs everything reportrunner needs on a fresh Debian/Ubuntu machine, idempotently:
# system libraries for WeasyPrint (apt), a virtualenv in .venv with the pinned
# dependencies of requirements.lock, and the demo data. With --test-tools, also what
# only the tests need: the pytest/Playwright pins of requirements-dev.lock, Chromium and
# an emoji font (apt), and axe-core (npm). Safe to run again: it only does what is
# missing. Usage: scripts/bootstrap.sh [--test-tools]
set -euo pipefail
cd "$(dirname "$0")/.."

TEST_TOOLS=false
for arg in "$@"; do
  case $arg in
    --test-tools) TEST_TOOLS=true ;;
    *) echo "usage: scripts/bootstrap.sh [--test-tools]" >&2; exit 2 ;;
  esac
done

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

# --- system packages ----------------------------------------------------------------
# libharfbuzz-subset0 is not on a new machine; without it WeasyPrint falls back to
# fontTools for font subsetting and PDFs render about twice as slowly.
APT_PACKAGES=(python3 python3-venv libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core)
if $TEST_TOOLS; then
  # The end-to-end tests drive Debian's Chromium (`playwright install` downloads a
  # browser build, which not every network allows); the emoji font draws the
  # dashboard's icons in screenshots.
  APT_PACKAGES+=(chromium fonts-noto-color-emoji)
  command -v npm >/dev/null || APT_PACKAGES+=(npm)
fi
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
# requirements-dev.lock is requirements.lock plus the test tools (compiled with it as a
# constraint, so the shared pins are equal). The stamp names the lock it installed and
# this script, so a change to either reaches existing environments; an environment
# with the test tools also serves the stack.
LOCK=requirements.lock
$TEST_TOOLS && LOCK=requirements-dev.lock
lock_stamp() { cat "$1" pyproject.toml scripts/bootstrap.sh | sha256sum | cut -c1-16; }
stamp=".venv/.installed-$(lock_stamp "$LOCK")"
dev_stamp=".venv/.installed-$(lock_stamp requirements-dev.lock)"
if [[ ! -f $stamp && ! ( $LOCK == requirements.lock && -f $dev_stamp ) ]]; then
  say "installing pinned dependencies ($LOCK)"
  .venv/bin/python -m pip install -q --upgrade pip uv==0.13.9
  .venv/bin/uv pip install -q --python .venv/bin/python -r "$LOCK"
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
if $TEST_TOOLS; then
  E2E=tests/e2e
  npm_stamp="$E2E/node_modules/.installed-$(sha256sum <"$E2E/package-lock.json" | cut -c1-16)"
  if [[ ! -f $npm_stamp ]]; then
    say "installing axe-core for the browser tests (npm ci)"
    (cd "$E2E" && npm ci --silent --no-audit --no-fund)
    touch "$npm_stamp"
  fi
fi

# --- demo data ----------------------------------------------------------------------
.venv/bin/reportrunner data setup >/dev/null
say "ready: .venv/bin/reportrunner --help"
