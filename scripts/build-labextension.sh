#!/usr/bin/env bash
# Build the MLBox JupyterLab extension from labextension/ (TypeScript) into
# jupyter_mlbox/labextension/ (the prebuilt extension the wheel ships). `pip install .` and
# `python -m build` run the same build themselves; this script is for a development tree.
# Needs node >= 18 with npm, and a Python environment with jupyterlab on PATH
# (e.g. PATH="$PWD/.venv/bin:$PATH"). Skips the build when sources are unchanged
# (set MLBOX_FORCE_BUILD=1 to build anyway).
set -euo pipefail

cd "$(dirname "$0")/../labextension"
log() { printf '[build-labextension] %s\n' "$*" >&2; }

command -v node >/dev/null || { log "node is missing: install Node.js 18+ (Debian: apt-get install nodejs npm)"; exit 1; }
python -c "import jupyterlab" 2>/dev/null || { log "jupyterlab is not importable by python on PATH: activate the environment with jupyterlab (PATH=\"$(cd .. && pwd)/.venv/bin:\$PATH\")"; exit 1; }

out=../jupyter_mlbox/labextension
stamp=lib/.mlbox-source-hash  # lib/ is gitignored and never shipped
hash=$( (cat package.json package-lock.json tsconfig.json; find src style schema -type f | sort | xargs cat) | sha256sum | cut -d' ' -f1)
if [ -z "${MLBOX_FORCE_BUILD:-}" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$hash" ] \
   && [ -f "$out/package.json" ]; then
  log "sources unchanged since the last build: nothing to do"
  exit 0
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "installing npm dependencies (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
fi
# The same npm script a wheel build runs (pyproject.toml, [tool.hatch.build.hooks.jupyter-builder]):
# tsc, then @jupyterlab/builder against this python's JupyterLab (scripts/bundle-labextension.mjs).
log "compiling TypeScript and bundling (npm run build:prod)"
PYTHON=$(command -v python) npm run --silent build:prod
mkdir -p lib && echo "$hash" > "$stamp"
log "built into jupyter_mlbox/labextension"
