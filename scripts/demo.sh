#!/usr/bin/env bash
# The README's first command: install portcall into .venv and run `portcall demo`.
# Arguments go to `portcall demo` (for example --json).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh
"$VENV/bin/python" -m pip install -q --disable-pip-version-check .
exec "$VENV/bin/portcall" demo "$@"
