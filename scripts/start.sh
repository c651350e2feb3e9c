#!/usr/bin/env bash
# Install vtkernel with JupyterLab, register the kernel, and open the quickstart notebook.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q --disable-pip-version-check -e ".[lab]"
python -m vtkernel install --sys-prefix
args=(--ServerApp.open_browser=True)
[ "$(id -u)" -eq 0 ] && args+=(--allow-root)
exec jupyter lab "${args[@]}" notebooks/quickstart.ipynb
