#!/usr/bin/env bash
# The whole test suite, from nothing: Docker, base image, test dependencies (Chromium, a local
# registry), the JupyterLab extension built from source, then pytest against the real daemon,
# real kernels, a real Jupyter server and a real browser. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
if [ -f scripts/install-test-deps.sh ]; then bash scripts/install-test-deps.sh; fi
export PATH="$PWD/.venv/bin:$PATH"
if [ -f scripts/build-labextension.sh ]; then bash scripts/build-labextension.sh; fi
mkdir -p test-artifacts
exec .venv/bin/python -m pytest -ra "$@"
