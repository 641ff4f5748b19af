#!/usr/bin/env bash
# Create .venv and install coig-writer with its test tools (prebuilt wheels only: the embedded
# llama.cpp engine is xllamacpp's manylinux wheel, no compiler needed; Ray for the Ray executor).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
# torch first, pinned: its CPU build is what this project tests with (a bare "torch" would pull
# a multi-GB CUDA build); on a GPU machine install the CUDA build of your choice instead.
.venv/bin/python -m pip install -q --disable-pip-version-check "torch==${TORCH_VERSION:-2.13.0}"
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[dev,train]"
echo "coig-writer installed in .venv ($(.venv/bin/coig-writer --help >/dev/null && echo ok))"
