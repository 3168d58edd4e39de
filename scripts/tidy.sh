#!/usr/bin/env bash
# At the repository root: apply ruff's safe fixes
# (import order, pyupgrade), format the tree, and list what is left for hand fixes. Configured in
# pyproject.toml ([tool.ruff]). Exits 1 while `ruff check` still finds something.
set -euo pipefail
cd "$(dirname "$0")/.."
RUFF=${RUFF:-.venv/bin/ruff}
"$RUFF" check --fix --exit-zero --silent .
"$RUFF" format .
"$RUFF" check --fix --exit-zero --silent .  # formatting can join an import block that --fix then sorts
git diff --shortstat || true
"$RUFF" check --statistics .
