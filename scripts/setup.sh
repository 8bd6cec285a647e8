#!/usr/bin/env bash
# Create .venv and install the project with its test tools (and the services' packages, the
# `test` extra includes them). Safe to re-run. PYTHON=/usr/bin/python3 picks the interpreter,
# VENV=folder another venv than .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
# The floor pyproject.toml's requires-python states (tests/test_environments.py checks).
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "setup: needs Python 3.11 or later; $PYTHON is $("$PYTHON" -V 2>&1)" >&2; exit 1; }
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
. "$VENV/bin/activate"
python -m pip install -q --upgrade pip
# Pin torch exactly: a looser spec makes pip fetch a several-GB CUDA build from PyPI.
TORCH=("torch==2.14.1" "torchvision==0.29.1")
# uv installs in parallel what pip installs one file at a time (about 1 minute instead of 2 on 2
# cores) and fills uv's cache, from which an `--env-manager uv` environment is then built in
# seconds. uv reads neither pip's configuration nor its certificates: it is given the folders pip
# takes torch from here (none where pip downloads it) and the system's certificate authorities.
# Where uv cannot install (an index only pip's configuration names, say), pip does.
# Bytecode: Python compiles a module the first time a process imports it and keeps the result,
# so only what is used gets compiled (about a quarter of the installed files). Where
# PYTHONDONTWRITEBYTECODE is set nothing would be kept and every process would compile again:
# there uv compiles every file now (about 70 CPU-s on 2 cores).
COMPILE=()
if [ -n "${PYTHONDONTWRITEBYTECODE:-}" ]; then COMPILE=(--compile-bytecode); fi
install_with_uv() {
  python -m pip install -q "uv>=0.11" || return 1
  local links
  links="$(python scripts/uv_find_links.py "${TORCH[@]}")" || return 1
  UV_SYSTEM_CERTS="${UV_SYSTEM_CERTS:-true}" UV_FIND_LINKS="${links:-${UV_FIND_LINKS:-}}" \
    uv pip install -q --python "$VENV/bin/python" "${COMPILE[@]}" "${TORCH[@]}" -e ".[test]"
}
if ! install_with_uv; then
  echo "setup: uv could not install the project; installing it with pip" >&2
  python -m pip install -q "${TORCH[@]}"
  python -m pip install -q -e ".[test]"
fi
# `mlflow run` files a run under the experiment MLFLOW_EXPERIMENT_NAME names, else `Default`:
# the activated venv names this project's, as the `pneumonia-aug` commands do (a value set
# before activating wins; `--experiment-name` still chooses another).
grep -q MLFLOW_EXPERIMENT_NAME "$VENV/bin/activate" \
  || echo 'export MLFLOW_EXPERIMENT_NAME="${MLFLOW_EXPERIMENT_NAME:-pneumonia-aug}"' >> "$VENV/bin/activate"
# uv (`mlflow run --env-manager uv`) trusts only its own list of certificate authorities unless
# told otherwise; pip trusts the system's. Behind a proxy whose authority only the system knows,
# uv fails (`invalid peer certificate: UnknownIssuer`): the activated venv has it trust the
# system's too (uv 0.11 or later reads UV_SYSTEM_CERTS; a value set before activating wins).
grep -q UV_SYSTEM_CERTS "$VENV/bin/activate" \
  || echo 'export UV_SYSTEM_CERTS="${UV_SYSTEM_CERTS:-true}"' >> "$VENV/bin/activate"
echo "set up: $(python -c 'import torch, mlflow; print("torch", torch.__version__, "mlflow", mlflow.__version__)')"
