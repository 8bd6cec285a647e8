"""The names `prepare`, `run` and `import` share: the carried folder, what comes back, and the
default limits of the transfer.

The limits are those of the transfer to and from your offline GPU machine, options of `kit
prepare` (`--max-carried-mib`) and `kit run` (`--budget`, `--max-out-files`,
`--max-out-file-mib`). Their defaults (below) fit a narrow one: what the checkout and the
carried folder may weigh, one command's time, and the number and size of the files brought
back from the output folder. Whatever the limits, the names that come back are plain
(letters, digits, `.`, `_`, `-`).
"""

from __future__ import annotations

from pneumonia_aug.contract import TABLE_OUTPUTS

MIB = 2**20

# ---- the carried folder (git-ignored), built here by `prepare` ------------------------------
KIT_DIR = ".gpu"
MANIFEST = "kit.json"  # what prepare made: data, wheels, code version, sizes
# The data as one archive: thousands of small files would cost a disk block and a transfer
# entry each (docs/offline-gpu.md); gzip takes the tar's headers and padding back (the JPEGs
# themselves do not shrink).
DATA_ARCHIVE = "data.tar.gz"
DATA = "chest_xray"  # the folder inside it
WHEELS = "wheels"
CARRIED_STORE = "store.tar.xz"  # `prepare --store`: the database of earlier runs (kit.carry)
# `run`'s work folder unless told: one path, so that runs of a study that grows over several
# `kit run`s record the same data folder (a run's params, and so its reuse key, hold it).
DEFAULT_WORK_DIR = "pneumonia-aug-kit"  # in the system's temp folder

# ---- what `run` writes to --out ---------------------------------------------------------
STORE_ARCHIVE = "store.tar.xz"  # mlflow.db + mlruns/, weights left behind
TABLE_FILES = TABLE_OUTPUTS  # what compare writes
BENCH = "bench.json"  # the benches' records (`measured`), each device named with size and batch
LOG = "kit.log"
RESULT = "result.json"  # what ran, how long, how it ended, where the store was
STAGE_TIMES = "stages.md"  # written by import from the store: each stage run's time and speed
ALLOCATIONS = "allocations.md"  # and which pairs finished in which run (kit.allocations)
OUT_FILES = (STORE_ARCHIVE, *TABLE_FILES, BENCH, LOG, RESULT)

# ---- inside the store archive ---------------------------------------------------------------
STORE_DB = "mlflow.db"
STORE_ARTIFACTS = "mlruns"
LEFT_BEHIND = "left_behind.txt"  # artifact files not packed, and why

# ---- the transfer's limits: the defaults of the options ---------------------------------------
MAX_CARRIED_MIB = 64.0  # working tree + carried folder (`kit prepare --max-carried-mib`)
MAX_OUT_FILES = 8  # files brought back from --out (`kit run --max-out-files`)
MAX_OUT_FILE_MIB = 16.0  # each of them (`kit run --max-out-file-mib`)
# The time budget's default and what the study leaves for packing: config/allocation.py.


def out_files(benches: bool) -> tuple[str, ...]:
    """The files `run` may write to --out (the bench report only when it runs benches)."""
    return tuple(name for name in OUT_FILES if benches or name != BENCH)
