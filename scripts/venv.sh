# Sourced by scripts/demo.sh and tests/run.sh: make sure .venv (beside this folder) holds a
# Python virtual environment, so that nothing is installed into a system Python that refuses it
# (PEP 668, as on Debian 12 and Ubuntu 24.04). Sets VENV to its path.
VENV="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.venv"
if [ ! -x "$VENV/bin/python" ]; then
  if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
    rm -rf "$VENV"
    # Debian and Ubuntu ship venv apart from Python itself.
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv </dev/null >/dev/null \
        || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive \
             apt-get install -y -q python3-venv </dev/null >/dev/null; }
      python3 -m venv "$VENV"
    else
      echo "Error: python3 cannot make a virtual environment." >&2
      echo "Hint: install the python3-venv package (sudo apt install python3-venv), then run this again." >&2
      exit 69
    fi
  fi
fi
