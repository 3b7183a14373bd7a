#!/usr/bin/env bash
# The integration tests that matter for Podman (run, build, sessions, %%mlbox --session, export,
# clean-up after a crash, GPU requests) against a real rootful Podman service through its
# Docker-compatible API (MLBOX_TEST_ENGINE=podman: tests/conftest.py starts it with
# scripts/ensure-podman.sh and points DOCKER_HOST at it). About 4.5 minutes on 2 cores from an
# empty Podman store. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
export MLBOX_TEST_ENGINE=podman
exec .venv/bin/python -m pytest -ra "$@" \
  tests/integration/test_podman_service.py \
  tests/integration/test_run.py \
  tests/integration/test_session.py \
  tests/integration/test_cli_sessions.py \
  tests/integration/test_reliability_cleanup.py \
  tests/integration/test_gpu.py \
  tests/magics/test_session.py \
  tests/export/test_export.py
