#!/usr/bin/env bash
# Check the import rule (pyproject.toml, [tool.importlinter]) with import-linter.
# envs/, policies/ and sandbox/ are installed as agentgym.envs, agentgym.policies and
# agentgym.sandbox (package-dir), which import-linter cannot follow from the source tree:
# assemble the installed layout in a temporary folder and check that.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/agentgym"
cp -r agentgym/. "$tmp/agentgym/"
for pkg in envs policies sandbox; do cp -r "$pkg" "$tmp/agentgym/$pkg"; done
find "$tmp" -name __pycache__ -prune -exec rm -rf {} +
cp pyproject.toml "$tmp/"
cd "$tmp"
PYTHONPATH="$tmp" "$OLDPWD/$BIN/lint-imports" pyproject.toml
