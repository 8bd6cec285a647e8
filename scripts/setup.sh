#!/usr/bin/env bash
# Create .venv and install the project with its test tools (and the services' packages, the
# `test` extra includes them). Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
. .venv/bin/activate
python -m pip install -q --upgrade pip
# Pin torch exactly: a looser spec makes pip fetch a several-GB CUDA build from PyPI.
python -m pip install -q "torch==2.14.1" "torchvision==0.29.1"
python -m pip install -q -e ".[test]"
# `mlflow run` files a run under the experiment MLFLOW_EXPERIMENT_NAME names, else `Default`:
# the activated venv names this project's, as the `pneumonia-aug` commands do (a value set
# before activating wins; `--experiment-name` still chooses another).
grep -q MLFLOW_EXPERIMENT_NAME .venv/bin/activate \
  || echo 'export MLFLOW_EXPERIMENT_NAME="${MLFLOW_EXPERIMENT_NAME:-pneumonia-aug}"' >> .venv/bin/activate
echo "set up: $(python -c 'import torch, mlflow; print("torch", torch.__version__, "mlflow", mlflow.__version__)')"
