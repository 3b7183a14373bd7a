#!/usr/bin/env bash
# Everything a fresh Debian/Ubuntu machine needs before jupyter_mlbox can run: Docker Engine
# (installed and started when missing), the base image (pulled, or bootstrapped offline), and a
# virtual environment at .venv with the package installed. Safe to run again: it skips what's done.
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS="${1:-}"

bash scripts/ensure-docker.sh
bash scripts/ensure-base-image.sh "${MLBOX_BASE_IMAGE:-python:3.11-slim}"

if [ ! -x .venv/bin/python ]; then
  if ! python3 -m venv .venv 2>/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv .venv
  fi
fi
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e ".${EXTRAS:+[$EXTRAS]}"
