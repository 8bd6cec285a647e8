#!/usr/bin/env bash
# The CUDA benchmark on a GPU machine that has PyTorch but not this project installed (e.g. a
# lent GPU box whose image has torch, torchvision, click, pandas, scikit-learn, pillow, but no
# mlflow: the bench needs none of MLflow).
#
#   scripts/gpu_bench.sh prepare [DATA]  here: copy a subset of the Kermany data (all NORMAL
#                                        and 1100 PNEUMONIA training images, 20 test images) into
#                                        .gpu/chest_xray (git-ignored, about 20 MB at 224 px)
#   scripts/gpu_bench.sh run             there, from the repository root, with .gpu carried:
#                                        the bench on CUDA at 256 px, batch 128; writes the GPU
#                                        section of docs/benchmarks.md (and copies it to $OUT)
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  prepare)
    src="${2:-../shared/data/chest_xray}"
    [ -d "$src/train/NORMAL" ] || { echo "no Kermany data at $src (see ../shared/data/SOURCE.md)" >&2; exit 2; }
    rm -rf .gpu/chest_xray
    copy() {  # copy SPLIT LABEL N
      mkdir -p ".gpu/chest_xray/$1/$2"
      # awk, not head: head would stop reading early and pipefail take the SIGPIPE as failure
      find "$src/$1/$2" -maxdepth 1 -type f -name '*.jpeg' | sort | awk -v n="$3" 'NR <= n' \
        | xargs -I{} cp {} ".gpu/chest_xray/$1/$2/"
    }
    copy train NORMAL 100000
    copy train PNEUMONIA 1100
    copy test NORMAL 10
    copy test PNEUMONIA 10
    du -sh .gpu/chest_xray
    echo "now: run 'scripts/gpu_bench.sh run' on the GPU machine with .gpu carried"
    ;;
  run)
    [ -d .gpu/chest_xray/train ] || { echo "run 'scripts/gpu_bench.sh prepare' first (and carry .gpu)" >&2; exit 2; }
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
    export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
    export PNEUMONIA_AUG_CACHE_DIR="${PNEUMONIA_AUG_CACHE_DIR:-/tmp/pneumonia-aug-cache}"
    python3 -m pneumonia_aug.bench --device cuda --image-size 256 --batch-size 128 \
      --data-dir .gpu/chest_xray --max-images 1024
    if [ -n "${OUT:-}" ]; then cp docs/benchmarks.md "$OUT/"; fi
    ;;
  *)
    sed -n '2,11p' "$0" >&2
    exit 2
    ;;
esac
