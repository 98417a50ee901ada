#!/usr/bin/env bash
# The test command (`make test`): notebooks clean and exported, notebook tests, then pytest (its summary is the last line).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
export PYTHONWARNINGS="${PYTHONWARNINGS:-ignore::DeprecationWarning}"

echo "== nbdev-clean: notebooks are committed clean"
$BIN/nbdev-clean
git diff --exit-code --stat -- nbs || { echo "nbdev-clean changed notebooks: run nbdev-clean and commit"; exit 1; }

echo "== nbdev-export: package matches notebooks"
$BIN/nbdev-export
git diff --exit-code --stat -- creativity_llm || { echo "nbdev-export changed creativity_llm/: export and commit"; exit 1; }
untracked=$(git ls-files --others --exclude-standard -- creativity_llm)
[ -z "$untracked" ] || { echo "nbdev-export wrote files not in git: $untracked"; exit 1; }

echo "== README matches nbs/index.ipynb"
$BIN/python tests/readme.py --check

echo "== nbdev-test"
$BIN/nbdev-test --timing 2>&1 | grep -v "Kernel is running over TCP"

echo "== pytest (two workers side by side, one thread each; each makes one smoke run for its tests: tests/conftest.py)"
exec $BIN/python -m pytest tests -q -p no:cacheprovider -n 2 --dist load --durations=10
