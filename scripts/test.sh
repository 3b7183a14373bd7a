#!/usr/bin/env bash
# The whole test suite, from nothing: Docker, base image, test dependencies (Chromium, a local
# registry), the JupyterLab extension built from source, then pytest against the real daemon,
# real kernels, a real Jupyter server and a real browser; then the integration tests of run,
# sessions and export against a real Podman service. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
bash scripts/install-test-deps.sh
export PATH="$PWD/.venv/bin:$PATH"
bash scripts/build-labextension.sh
(cd labextension && npm test --silent)   # front-end unit tests (node --test)
mkdir -p test-artifacts
.venv/bin/python -m pytest -ra "$@"
bash scripts/test-podman.sh "$@"   # the same API against a real Podman service
