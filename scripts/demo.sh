#!/usr/bin/env bash
# The main job, from nothing: set the machine up, then execute an example notebook in a container.
# The executed notebook (with its table and figure, produced in the container) is written to
# example_notebooks/pandas_matplotlib.mlbox.ipynb.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/jupyter mlbox doctor || true
.venv/bin/jupyter mlbox run example_notebooks/pandas_matplotlib.ipynb "$@"
