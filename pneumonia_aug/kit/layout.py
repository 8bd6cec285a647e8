"""The names `prepare`, `run` and `import` share: the carried folder, what comes back, limits.

The kit is sized for a GPU machine reached through a narrow transfer: the checkout plus the
carried folder at most 64 MiB, one command of about 10 minutes, and at most 8 files of at most
16 MiB each brought back from the output folder (plain names: letters, digits, `.`, `_`, `-`).
"""

from __future__ import annotations

from pneumonia_aug.contract import TABLE_OUTPUTS

MIB = 2**20

# ---- the carried folder (git-ignored), built here by `prepare` ------------------------------
KIT_DIR = ".gpu"
MANIFEST = "kit.json"  # what prepare made: data, wheels, code version, sizes
# The data as one archive: 5856 small files would cost a disk block each (64 MiB on disk for
# 48 MiB of bytes) and a transfer entry each; gzip takes the tar's headers and padding back
# (the JPEGs themselves do not shrink).
DATA_ARCHIVE = "data.tar.gz"
DATA = "chest_xray"  # the folder inside it
WHEELS = "wheels"
MAX_CARRIED = 64 * MIB  # working tree + carried paths

# ---- what `run` writes to --out (8 files at most, each at most 16 MiB) --------------------
STORE_ARCHIVE = "store.tar.xz"  # mlflow.db + mlruns/, weights left behind
TABLE_FILES = TABLE_OUTPUTS  # what compare writes
BENCH = "bench.md"
BENCH_MISSING = "no result"  # in a bench.md heading: that bench made no section
LOG = "kit.log"
RESULT = "result.json"  # what ran, how long, how it ended, where the store was
STAGE_TIMES = "stages.md"  # written by import from the store: each stage run's time and speed
OUT_FILES = (STORE_ARCHIVE, *TABLE_FILES, BENCH, LOG, RESULT)
MAX_OUT_FILE = 16 * MIB
MAX_OUT_FILES = 8

# ---- inside the store archive ---------------------------------------------------------------
STORE_DB = "mlflow.db"
STORE_ARTIFACTS = "mlruns"
LEFT_BEHIND = "left_behind.txt"  # artifact files not packed, and why

# ---- the default time budget ------------------------------------------------------------------
DEFAULT_BUDGET_S = 540  # leaves a minute of a 10-minute command for start-up and slack
PACK_RESERVE_S = 75  # kept back from the study for the fallback compare and the archive
