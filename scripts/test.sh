#!/usr/bin/env bash
# Set up a virtual environment with the test dependencies, check the style (ruff) and run the whole test suite.
# Installs Debian's chromium (browser tests) and ffmpeg (decoding tests) when missing (as root, or via sudo).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt

# Debian's chromium drives the browser tests; ffmpeg is on most users' machines, and decoding is
# tested with and without it.
missing=""
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
command -v ffmpeg >/dev/null 2>&1 || missing="$missing ffmpeg"
if [ -n "$missing" ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  if command -v apt-get >/dev/null 2>&1; then
    # shellcheck disable=SC2086  # one word a package
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null \
      || echo "warning: could not install$missing; the tests that need it will say why they skip" >&2
  fi
fi

# Style first (ruff, configured in pyproject.toml): a lint error or an unformatted file fails the
# run before the tests start.
.venv/bin/ruff check .
.venv/bin/ruff format --check .

# Two test processes (pytest-xdist): much of the suite waits on subprocesses, servers and the
# browser, so two keep CI's 2 cores busy. GENRE_TEST_WORKERS=0 runs in one process.
status=0
# --dist loadscope: a module runs on one process, so a module-wide fixture (a trained run) is made once.
.venv/bin/python -m pytest -n "${GENRE_TEST_WORKERS:-2}" --dist loadscope "$@" || status=$?
# pytest's 5 means "no tests collected": a suite that runs nothing must not pass.
exit "$status"
