#!/usr/bin/env bash
# mypy on tokenpulse.core (configuration: [tool.mypy] in pyproject.toml).
# The repository's folders (core/, schemas/, ...) install as tokenpulse.core, tokenpulse.schemas,
# ... (package-dir in pyproject.toml); mypy resolves modules from directory names only, so the
# check runs on a tree of symbolic links under .cache/typecheck that has the installed layout.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
tree=.cache/typecheck
rm -rf "$tree/tokenpulse"
mkdir -p "$tree/tokenpulse"
for f in tokenpulse/*; do ln -s "$PWD/$f" "$tree/tokenpulse/$(basename "$f")"; done
for d in core schemas collectors stream_jobs loader sql alerts sdk insights; do ln -s "$PWD/$d" "$tree/tokenpulse/$d"; done
MYPYPATH="$tree" "$PY" -m mypy --config-file pyproject.toml --cache-dir "$tree/.mypy_cache" \
    --python-executable "$PY" -p tokenpulse.core "$@"
